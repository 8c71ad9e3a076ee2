"""Open any firmware file dfuse understands, recognised by its contents."""

from __future__ import annotations

import os
from pathlib import Path

from dfuse.errors import FileFormatError
from dfuse.file.convert import MAX_FILE_SIZE, FileKind, detect_kind, read_file
from dfuse.file.model import DfuFile, DfuSeFile, Target

__all__ = ["MAX_FILE_SIZE", "load", "load_bytes", "read_file"]


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

    The extension is a promise too: a file named ``.dfu``, ``.hex``/``.ihex``/``.ihx`` or
    ``.s19``/``.srec``/``.mot``/... whose contents are of another kind is refused, so a
    damaged .dfu is never flashed as a raw binary.

    Raises:
        FileFormatError: the file is empty, malformed, a raw binary without ``address``,
            its contents contradict its extension, or it is not a regular file (a device
            such as ``/dev/zero``) or larger than :data:`MAX_FILE_SIZE` (:func:`read_file`).

    >>> from dfuse.data import example_hex_path
    >>> f = load(example_hex_path())
    >>> [hex(e.address) for e in f.targets[0].elements]
    ['0x8000000', '0x8010000']
    """
    p = Path(path)
    return load_bytes(read_file(p), address=address, verify_crc=verify_crc, name=p.name)


def _check_extension(name: str, kind: FileKind, data: bytes) -> None:
    promised = _EXTENSION_KINDS.get(Path(name).suffix.lower())
    if promised is not None and kind not in promised:
        raise FileFormatError(
            f"{name}: the extension says {_KIND_NAMES[promised[0]]} but the contents are "
            f"not ({_KIND_NAMES[kind]})",
            offset=0,
            expected=_EXPECTED_START[promised[0]],
            found=data[:8],
        )


_DFU_KINDS = (FileKind.DFUSE, FileKind.DFU)
_HEX_KINDS = (FileKind.IHEX,)
_SREC_KINDS = (FileKind.SREC,)
_EXTENSION_KINDS: dict[str, tuple[FileKind, ...]] = {
    ".dfu": _DFU_KINDS,
    ".hex": _HEX_KINDS,
    ".ihex": _HEX_KINDS,
    ".ihx": _HEX_KINDS,
    ".s19": _SREC_KINDS,
    ".s28": _SREC_KINDS,
    ".s37": _SREC_KINDS,
    ".srec": _SREC_KINDS,
    ".mot": _SREC_KINDS,
}
_KIND_NAMES = {
    FileKind.DFUSE: "a .dfu file",
    FileKind.DFU: "a .dfu file",
    FileKind.IHEX: "Intel HEX",
    FileKind.SREC: "S-records",
    FileKind.BINARY: "they look like a raw binary",
}
_EXPECTED_START = {
    FileKind.DFUSE: "a 'DfuSe' prefix or a 16-byte 'UFD' DFU suffix",
    FileKind.IHEX: "':' records (Intel HEX)",
    FileKind.SREC: "'S0'-'S9' records (S-record)",
}


def load_bytes(
    data: bytes,
    *,
    address: int | None = None,
    verify_crc: bool = True,
    name: str | os.PathLike[str] | None = None,
) -> DfuSeFile | DfuFile:
    """:func:`load` for contents already in memory.

    ``name`` is the file's name, if it has one: its extension is checked against the
    contents as :func:`load` does (and it prefixes the error messages).
    """
    if not data:
        raise FileFormatError(
            "empty file", expected="a .dfu, Intel HEX, S-record or binary file", found="0 bytes"
        )
    kind = detect_kind(data)
    if name is not None:
        _check_extension(Path(name).name, kind, data)
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
