"""Conversions between memory images and Intel HEX, Motorola S-record and raw binary.

bincopy does the reading and writing; this module only adapts it to dfuse: plain
``(address, bytes)`` segments in, out, and dfuse errors (never a bincopy exception).
Adjacent data merges into one segment; gaps keep segments apart.

A *source* is where record text comes from:

- ``bytes``: the file's contents;
- ``os.PathLike``: a path to read;
- ``str``: record text if it contains a newline, otherwise a path.
"""

from __future__ import annotations

import enum
import os
import re
from collections.abc import Iterable
from pathlib import Path

import bincopy

from dfuse.errors import FileFormatError, ImageError

__all__ = [
    "FileKind",
    "Segment",
    "Source",
    "detect_kind",
    "read_hex",
    "read_source",
    "read_srec",
    "write_bin",
    "write_hex",
    "write_srec",
]

Segment = tuple[int, bytes]
"""A contiguous run of memory: ``(address, data)``."""

Source = str | bytes | os.PathLike[str]
"""Record text (``bytes``, or a ``str`` with a newline) or a path (``PathLike`` or ``str``)."""

_SREC_START = re.compile(rb"S[0-9]")
_ADDRESS_LIMIT = 1 << 32


class FileKind(enum.Enum):
    """What :func:`detect_kind` recognised in a file's contents."""

    DFUSE = "dfuse"
    """A DfuSe file ("DfuSe" prefix)."""
    DFU = "dfu"
    """A plain DFU 1.1 file (payload + DFU suffix, no DfuSe prefix)."""
    IHEX = "ihex"
    """Intel HEX records."""
    SREC = "srec"
    """Motorola S-records."""
    BINARY = "binary"
    """Anything else: raw bytes without an address."""


def detect_kind(data: bytes | bytearray | memoryview) -> FileKind:
    """Recognise a firmware file by its contents (not its name).

    A DFU suffix ("UFD", bLength 16 in the last 16 bytes) or a "DfuSe" prefix makes a
    .dfu file; text whose first non-blank character is ``:`` is Intel HEX, ``S`` and a
    digit S-record; anything else is a raw binary.
    """
    mv = memoryview(data).cast("B") if not isinstance(data, bytes) else memoryview(data)
    n = len(mv)
    if bytes(mv[:5]) == b"DfuSe":
        return FileKind.DFUSE
    head = bytes(mv[:64]).lstrip()
    if n >= 16 and bytes(mv[n - 8 : n - 5]) == b"UFD" and mv[n - 5] == 16:
        return FileKind.DFU
    if head[:1] == b":":
        return FileKind.IHEX
    if _SREC_START.match(head):
        return FileKind.SREC
    return FileKind.BINARY


def read_source(source: Source) -> str:
    """Return the record text of ``source`` (see the module docstring for the rules)."""
    if isinstance(source, bytes):
        raw = source
    elif isinstance(source, str) and "\n" in source:
        return source
    elif isinstance(source, str | os.PathLike):
        raw = Path(source).read_bytes()
    else:
        raise TypeError(f"expected bytes, str or a path, got {type(source).__name__}")
    try:
        return raw.decode("ascii")
    except UnicodeDecodeError as exc:
        raise FileFormatError(
            "record text must be ASCII",
            offset=exc.start,
            expected="an ASCII character",
            found=raw[exc.start : exc.start + 1],
        ) from None


def read_hex(source: Source) -> list[Segment]:
    """Read Intel HEX records into sorted, non-overlapping segments."""
    return _read(read_source(source), "Intel HEX", "add_ihex", bincopy.unpack_ihex)


def read_srec(source: Source) -> list[Segment]:
    """Read Motorola S-records into sorted, non-overlapping segments."""
    return _read(read_source(source), "S-record", "add_srec", bincopy.unpack_srec)


def write_hex(segments: Iterable[Segment], *, bytes_per_record: int = 32) -> str:
    """Intel HEX text for ``segments`` (32-bit extended linear addresses, EOF record)."""
    return str(_binfile(segments).as_ihex(bytes_per_record, 32))


def write_srec(segments: Iterable[Segment], *, bytes_per_record: int = 32) -> str:
    """Motorola S-record text for ``segments`` (S3 records with 32-bit addresses)."""
    return str(_binfile(segments).as_srec(bytes_per_record, 32))


def write_bin(segments: Iterable[Segment], *, fill: int = 0xFF) -> Segment:
    """One contiguous binary covering ``segments``: ``(start address, data)``.

    Gaps between segments are filled with ``fill`` (0xFF by default, the value of
    erased NOR flash). No segments give ``(0, b"")``.
    """
    if not 0 <= fill <= 0xFF:
        raise ValueError(f"fill must be a byte value, got {fill}")
    items = sorted((a, d) for a, d in segments if d)
    if not items:
        return (0, b"")
    start = items[0][0]
    end = max(a + len(d) for a, d in items)
    out = bytearray([fill]) * (end - start)
    for address, data in items:
        out[address - start : address - start + len(data)] = data
    return (start, bytes(out))


# ------------------------------------------------------------------ internals


def _binfile(segments: Iterable[Segment]) -> bincopy.BinFile:
    binfile = bincopy.BinFile()
    for address, data in segments:
        if data:
            binfile.add_binary(data, address)
    return binfile


def _read(text: str, what: str, method: str, unpack: object) -> list[Segment]:
    binfile = bincopy.BinFile()
    try:
        getattr(binfile, method)(text)
    except bincopy.AddDataError as exc:
        raise ImageError(
            f"{what} records overlap", expected="each address written once", found=str(exc)
        ) from None
    except (bincopy.Error, ValueError, IndexError, TypeError) as exc:
        line, record = _first_bad_line(text, unpack)
        raise FileFormatError(
            f"bad {what} record on line {line}",
            expected=f"a valid {what} record",
            found=f"{record!r} ({exc})",
        ) from None
    segments: list[Segment] = []
    for segment in binfile.segments:
        start, end = segment.minimum_address, segment.maximum_address
        if end > _ADDRESS_LIMIT:
            raise ImageError(
                f"{what} data goes beyond 32-bit addresses",
                expected=f"addresses below 0x{_ADDRESS_LIMIT:X}",
                found=f"data up to 0x{end:X}",
            )
        segments.append((start, bytes(segment.data)))
    return segments


def _first_bad_line(text: str, unpack: object) -> tuple[int, str]:
    """The 1-based line number and text of the first record that ``unpack`` rejects
    (or, for Intel HEX, whose record type is not 0..5); ``(0, "")`` if none is."""
    for number, line in enumerate(text.splitlines(), start=1):
        record = line.strip()
        if not record or not callable(unpack):
            continue
        try:
            fields = unpack(record)
        except (bincopy.Error, ValueError, IndexError, TypeError):
            return (number, record)
        if unpack is bincopy.unpack_ihex and not 0 <= fields[0] <= 5:
            return (number, record)
    return (0, "")  # pragma: no cover - bincopy rejected the text as a whole
