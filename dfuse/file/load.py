"""Open any firmware file dfuse understands, recognised by its contents."""

from __future__ import annotations

import os
from pathlib import Path

from dfuse.errors import FileFormatError
from dfuse.file.convert import FileKind, detect_kind
from dfuse.file.model import DfuFile, DfuSeFile, Target

__all__ = ["load", "load_bytes"]


def load(
    path: str | os.PathLike[str], *, address: int | None = None, verify_crc: bool = True
) -> DfuSeFile | DfuFile:
    """Read a .dfu (DfuSe or plain DFU 1.1), Intel HEX, S-record or raw binary file.

    The format is recognised by content (see :func:`~dfuse.file.convert.detect_kind`),
    whatever the file's extension. Intel HEX, S-records and raw binaries become a
    one-target :class:`DfuSeFile` for alternate setting 0 (gaps between data stay
    separate elements); a plain .dfu gives a :class:`DfuFile`.

    Args:
        path: the file to read.
        address: where a raw binary goes (required for raw binaries, ignored otherwise).
        verify_crc: check the DFU suffix CRC of .dfu files.

    Raises:
        FileFormatError: the file is empty, malformed, or a raw binary without ``address``.

    >>> from dfuse.data import example_hex_path
    >>> f = load(example_hex_path())
    >>> [hex(e.address) for e in f.targets[0].elements]
    ['0x8000000', '0x8010000']
    """
    return load_bytes(Path(path).read_bytes(), address=address, verify_crc=verify_crc)


def load_bytes(
    data: bytes, *, address: int | None = None, verify_crc: bool = True
) -> DfuSeFile | DfuFile:
    """:func:`load` for contents already in memory."""
    if not data:
        raise FileFormatError(
            "empty file", expected="a .dfu, Intel HEX, S-record or binary file", found="0 bytes"
        )
    kind = detect_kind(data)
    if kind is FileKind.DFUSE:
        return DfuSeFile.parse(data, verify_crc=verify_crc)
    if kind is FileKind.DFU:
        return DfuFile.parse(data, verify_crc=verify_crc)
    if kind is FileKind.IHEX:
        return DfuSeFile((Target.from_hex(data),))
    if kind is FileKind.SREC:
        return DfuSeFile((Target.from_srec(data),))
    if address is None:
        raise FileFormatError(
            "not a .dfu, Intel HEX or S-record file: to flash it as a raw binary, "
            "pass address= (e.g. address=0x08000000)",
            offset=0,
            expected="a DFU suffix, ':' (Intel HEX) or 'S0'-'S9' (S-record)",
            found=data[:8],
        )
    return DfuSeFile((Target.from_bin(data, address=address),))
