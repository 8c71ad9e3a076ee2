"""Conversions between memory images and Intel HEX, Motorola S-record and raw binary.

Reading is done here (a linear pass over the records, then one sort and merge in
:func:`dfuse.segments.merge`), so that files of many small, scattered records load in
linear time; bincopy does the writing (imported only then). Plain ``(address, bytes)``
segments go in and out, and errors are dfuse errors (never a bincopy exception).
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
import stat
from collections.abc import Iterable
from typing import Any

from dfuse import segments as _segments
from dfuse.errors import FileFormatError

__all__ = [
    "MAX_FILE_SIZE",
    "FileKind",
    "Segment",
    "Source",
    "detect_kind",
    "read_file",
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


MAX_FILE_SIZE = 256 * 1024 * 1024
"""The largest firmware file dfuse reads (256 MiB: far above any DfuSe memory, whose
addresses are 32 bits, even as Intel HEX text). Reads stop there with a
:class:`~dfuse.errors.FileFormatError` instead of filling the memory."""


def read_file(path: str | os.PathLike[str], *, limit: int = MAX_FILE_SIZE) -> bytes:
    """The contents of the firmware file at ``path``, read with a bound.

    A regular file or a pipe (``<(...)``) is read, at most ``limit`` bytes; a device
    (``/dev/zero``), a directory or a socket is refused before reading.

    Raises:
        FileFormatError: ``path`` is not a regular file or a pipe, or holds more than
            ``limit`` bytes.
        OSError: the file cannot be opened or read.
    """
    name = os.fspath(path)
    with open(path, "rb") as stream:
        mode = os.fstat(stream.fileno()).st_mode
        if not (stat.S_ISREG(mode) or stat.S_ISFIFO(mode)):
            raise FileFormatError(
                f"{name}: not a regular file",
                expected="a firmware file (.dfu, .hex, .s19, .bin) or a pipe",
                found=_file_type(mode),
            )
        data = stream.read(limit + 1)
    if len(data) > limit:
        raise FileFormatError(
            f"{name}: too large for a firmware file",
            expected=f"at most {limit} bytes",
            found=f"more than {limit} bytes",
        )
    return data


def _file_type(mode: int) -> str:
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return f"file mode 0o{stat.S_IFMT(mode):o}"


def read_source(source: Source) -> str:
    """Return the record text of ``source`` (see the module docstring for the rules)."""
    if isinstance(source, bytes):
        raw = source
    elif isinstance(source, str) and "\n" in source:
        return source
    elif isinstance(source, str | os.PathLike):
        raw = read_file(source)
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
    """Read Intel HEX records into sorted, non-overlapping segments.

    Record types 00 (data), 01 (end of file), 02 (extended segment address), 03
    (start segment address), 04 (extended linear address) and 05 (start linear
    address) are understood; every record's byte count and checksum are checked.
    Records may come in any order; writing an address twice is an :class:`ImageError`.
    """
    return _merge(_ihex_records(read_source(source)), "Intel HEX")


def read_srec(source: Source) -> list[Segment]:
    """Read Motorola S-records into sorted, non-overlapping segments.

    S1/S2/S3 records carry data; S0 (header), S5/S6 (record count) and S7/S8/S9
    (start address) are checked and skipped. Every record's byte count and checksum
    are checked. Records may come in any order; writing an address twice is an
    :class:`ImageError`.
    """
    return _merge(_srec_records(read_source(source)), "S-record")


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


def _binfile(segments: Iterable[Segment]) -> Any:
    import bincopy  # only writing hex/s19 needs it (with pyelftools, a third of `import dfuse`)

    binfile = bincopy.BinFile()
    for address, data in segments:
        if data:
            binfile.add_binary(data, address)
    return binfile


_Record = tuple[int, int, bytes]
"""A data record: ``(address, line number, data)``."""

_SREC_ADDRESS_BYTES = {"0": 2, "1": 2, "2": 3, "3": 4, "5": 2, "6": 3, "7": 4, "8": 3, "9": 2}
_IHEX_DATA_SIZE = {1: 0, 2: 2, 3: 4, 4: 2, 5: 4}  # record type -> data bytes, types 1..5


def _bad_record(what: str, number: int, record: str, reason: str) -> FileFormatError:
    shown = record if len(record) <= 80 else record[:77] + "..."
    return FileFormatError(
        f"bad {what} record on line {number}",
        expected=f"a valid {what} record",
        found=f"{shown!r} ({reason})",
    )


def _hex_bytes(what: str, number: int, record: str, digits: str) -> bytes:
    try:
        return bytes.fromhex(digits)
    except ValueError:
        raise _bad_record(what, number, record, "not pairs of hex digits") from None


def _ihex_records(text: str) -> list[_Record]:
    """The data records of Intel HEX ``text``, with absolute addresses, in file order."""
    what = "Intel HEX"
    records: list[_Record] = []
    base = 0  # extended segment address (type 02) + extended linear address (type 04)
    segment_base = linear_base = 0
    for number, line in enumerate(text.splitlines(), start=1):
        record = line.strip()
        if not record:
            continue
        if record[0] != ":":
            raise _bad_record(what, number, record, "does not start with ':'")
        value = _hex_bytes(what, number, record, record[1:])
        if len(value) < 5:
            raise _bad_record(what, number, record, f"{len(value)} bytes, at least 5 needed")
        size = value[0]
        if size != len(value) - 5:
            raise _bad_record(
                what, number, record, f"byte count {size}, but {len(value) - 5} data bytes"
            )
        if sum(value) & 0xFF:
            expected = -sum(value[:-1]) & 0xFF
            raise _bad_record(
                what, number, record, f"checksum 0x{value[-1]:02X}, expected 0x{expected:02X}"
            )
        kind = value[3]
        if kind == 0:
            if size:
                records.append((base + (value[1] << 8 | value[2]), number, value[4:-1]))
            continue
        if kind not in _IHEX_DATA_SIZE:
            raise _bad_record(what, number, record, f"record type {kind:02X}, expected 00..05")
        if size != _IHEX_DATA_SIZE[kind]:
            raise _bad_record(
                what,
                number,
                record,
                f"{size} data bytes in a type {kind:02X} record, expected {_IHEX_DATA_SIZE[kind]}",
            )
        if kind == 2:
            segment_base = (value[4] << 8 | value[5]) << 4
        elif kind == 4:
            linear_base = (value[4] << 8 | value[5]) << 16
        base = segment_base + linear_base
    return records


def _srec_records(text: str) -> list[_Record]:
    """The data records (S1/S2/S3) of S-record ``text``, in file order."""
    what = "S-record"
    records: list[_Record] = []
    for number, line in enumerate(text.splitlines(), start=1):
        record = line.strip()
        if not record:
            continue
        if record[0] != "S":
            raise _bad_record(what, number, record, "does not start with 'S'")
        kind = record[1:2]
        width = _SREC_ADDRESS_BYTES.get(kind)
        if width is None:
            raise _bad_record(what, number, record, f"record type S{kind}, expected S0..S3, S5..S9")
        value = _hex_bytes(what, number, record, record[2:])
        if len(value) < width + 2:
            raise _bad_record(
                what, number, record, f"{len(value)} bytes, at least {width + 2} needed"
            )
        if value[0] != len(value) - 1:
            raise _bad_record(
                what, number, record, f"byte count {value[0]}, but {len(value) - 1} bytes follow"
            )
        if sum(value) & 0xFF != 0xFF:
            expected = ~sum(value[:-1]) & 0xFF
            raise _bad_record(
                what, number, record, f"checksum 0x{value[-1]:02X}, expected 0x{expected:02X}"
            )
        if kind in "123" and len(value) > width + 2:
            address = int.from_bytes(value[1 : 1 + width], "big")
            records.append((address, number, value[1 + width : -1]))
    return records


def _merge(records: list[_Record], what: str) -> list[Segment]:
    """Sort ``records`` by address (then line) and join adjacent ones into segments.

    Any address written twice is an error, even with the same value.
    """
    return _segments.merge(
        [(address, data) for address, _, data in records],
        what=f"{what} records",
        label=lambda i: f"line {records[i][1]}",
    )
