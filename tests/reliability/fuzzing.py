"""A seeded, structure-aware fuzzer for dfuse's parsers, and the oracle it checks.

Targets (:class:`FuzzTarget`): ``DfuSeFile.parse``, ``DfuFile.parse``,
``dfuse.file.load_bytes`` (DfuSe, plain DFU, Intel HEX, S-record and raw binary,
recognised by content) and ``MemoryLayout.parse``.

Inputs come from :class:`Mutator`: valid files and layout strings built from a seeded
random generator, then mutated knowing their structure (a size or count field set
to a huge or off-by-one value, a truncation at a field boundary, a stretched or
duplicated element, a spliced file, bit flips, Intel HEX / S-record lines with a
wrong byte count or type, ...), usually with the DFU suffix CRC, DFUImageSize or the
record checksum fixed up afterwards so that the deep parser is reached; plus plain
random bytes and text.

The oracle (:func:`check`) for every input:

* the only exceptions allowed are :class:`~dfuse.errors.DfuseError` subclasses
  (anything else is a violation, and so is an error whose ``str()`` fails);
* an accepted input round-trips: ``parse(data).to_bytes() == data`` for .dfu files,
  the same segments back from ``to_hex()``/``to_srec()``, ``to_bin() == data`` for
  raw binaries, ``str(layout) == text`` and ``parse(str(layout)) == layout``;
* time and memory stay within a linear budget of the input's size (memory through
  :mod:`tracemalloc` peaks, on a sample of inputs and on every input that claims a
  huge size or count).

``scripts/fuzz_files.py`` and ``scripts/fuzz_layout.py`` drive :func:`run` for the
long runs; ``tests/reliability/test_fuzz.py`` runs a few thousand inputs in CI.
"""

from __future__ import annotations

import contextlib
import enum
import hashlib
import random
import struct
import time
import tracemalloc
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from dfuse.errors import DfuseError
from dfuse.file import DfuFile, DfuSeFile, Target, load_bytes
from dfuse.file.convert import FileKind, detect_kind, write_hex, write_srec
from dfuse.layout import MemoryLayout, Region

__all__ = [
    "FuzzTarget",
    "Mutator",
    "Stats",
    "Violation",
    "check",
    "run",
    "save_violation",
]

_U32 = 0xFFFFFFFF
_SUFFIX = 16
#: Memory allowed to any single parse: a fixed overhead plus this many bytes per input byte.
MEMORY_BASE = 2 << 20
MEMORY_PER_BYTE = 8
#: A layout keeps its sectors as count*size runs (expanded lazily), so any string stays
#: small whatever the number of sectors it describes; this bounds the memory of a check.
LAYOUT_MEMORY_CAP = 8 << 20
#: Time allowed to any single check (parse + round trip): a fixed overhead plus per byte.
TIME_BASE = 0.5
TIME_PER_BYTE = 20e-6
#: Like LAYOUT_MEMORY_CAP for time: the check parses and prints a layout five times and
#: queries a bounded number of its sectors.
LAYOUT_TIME_CAP = 4.0
#: Inputs at least this large (or claiming sizes/counts this large) always get a
#: tracemalloc check.
HUGE = 1 << 24


class FuzzTarget(enum.StrEnum):
    """What a fuzz input is fed to."""

    DFUSE = "dfuse"
    """``DfuSeFile.parse`` (with and without CRC verification)."""
    DFU = "dfu"
    """``DfuFile.parse``."""
    LOAD = "load"
    """``dfuse.file.load_bytes`` without and with ``address=`` (format detection)."""
    LAYOUT = "layout"
    """``MemoryLayout.parse`` (input bytes decoded as Latin-1)."""


@dataclass(frozen=True, slots=True)
class Violation:
    """An input that broke the oracle.

    Attributes:
        target: what it was fed to.
        kind: ``"exception"``, ``"round-trip"``, ``"time"`` or ``"memory"``.
        detail: what happened.
        data: the input.
        strategy: how the input was made.
    """

    target: FuzzTarget
    kind: str
    detail: str
    data: bytes
    strategy: str = ""

    def __str__(self) -> str:
        return (
            f"[{self.target}] {self.kind} ({self.strategy}, {len(self.data)} bytes): {self.detail}"
        )


@dataclass(slots=True)
class Stats:
    """What a run did."""

    target: FuzzTarget
    ran: int = 0
    accepted: int = 0
    rejected: int = 0
    traced: int = 0
    seconds: float = 0.0
    errors: Counter[str] = field(default_factory=Counter)
    strategies: Counter[str] = field(default_factory=Counter)
    violations: list[Violation] = field(default_factory=list)
    max_peak_bytes: int = 0
    max_peak_input: int = 0
    slowest_seconds: float = 0.0
    slowest_input: int = 0

    @property
    def failed(self) -> int:
        """Inputs that broke the oracle."""
        return len(self.violations)

    @property
    def rate(self) -> float:
        """Inputs per second."""
        return self.ran / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> str:
        """A few lines for humans."""
        top = ", ".join(f"{name} {n}" for name, n in self.errors.most_common(6))
        return "\n".join(
            [
                f"target {self.target}: ran {self.ran}, failed {self.failed}, "
                f"accepted {self.accepted}, rejected {self.rejected} "
                f"({self.rate:,.0f} inputs/s, {self.seconds:.1f} s)",
                f"  memory-traced inputs {self.traced}; largest peak "
                f"{self.max_peak_bytes:,} bytes (input of {self.max_peak_input:,} bytes)",
                f"  slowest input {self.slowest_seconds * 1000:.1f} ms "
                f"({self.slowest_input:,} bytes)",
                f"  rejections: {top or 'none'}",
            ]
        )


# --------------------------------------------------------------------------- the oracle


class _Broken(Exception):
    """A round-trip violation found by a checker."""


def _dfuse(data: bytes) -> bool:
    try:
        parsed = DfuSeFile.parse(data)
    except DfuseError as exc:
        str(exc)
        lenient: DfuSeFile | None
        try:
            lenient = DfuSeFile.parse(data, verify_crc=False)
        except DfuseError as exc2:
            str(exc2)
            lenient = None
        if lenient is not None:
            rebuilt = lenient.to_bytes()
            if rebuilt[:-4] != data[:-4]:
                raise _Broken("verify_crc=False: to_bytes() differs before the CRC") from None
        raise
    if parsed.to_bytes() != data:
        raise _Broken("DfuSeFile.parse(data).to_bytes() != data")
    if DfuSeFile.parse(parsed.to_bytes()) != parsed:
        raise _Broken("DfuSeFile.parse(f.to_bytes()) != f")
    return True


def _dfu(data: bytes) -> bool:
    parsed = DfuFile.parse(data)
    if parsed.to_bytes() != data:
        raise _Broken("DfuFile.parse(data).to_bytes() != data")
    if DfuFile.parse(parsed.to_bytes()) != parsed:
        raise _Broken("DfuFile.parse(f.to_bytes()) != f")
    return True


def _same_target(target: Target, again: Target, what: str) -> None:
    if again.segments() != target.segments():
        raise _Broken(f"{what}: the segments read back differ")


def _load(data: bytes) -> bool:
    kind = detect_kind(data)
    outcome: DfuseError | None = None
    accepted = False
    for address in (None, 0x08000000):
        try:
            loaded = load_bytes(data, address=address)
        except DfuseError as exc:
            str(exc)
            outcome = exc
            continue
        accepted = True
        if isinstance(loaded, DfuFile) or kind in (FileKind.DFUSE, FileKind.DFU):
            if loaded.to_bytes() != data:
                raise _Broken(f"load_bytes ({kind.value}) then to_bytes() != data")
            continue
        target = loaded.target()
        if kind is FileKind.IHEX:
            again = load_bytes(target.to_hex().encode())
            assert isinstance(again, DfuSeFile)
            _same_target(target, again.target(), "Intel HEX → to_hex() → load_bytes")
        elif kind is FileKind.SREC:
            again = load_bytes(target.to_srec().encode())
            assert isinstance(again, DfuSeFile)
            _same_target(target, again.target(), "S-record → to_srec() → load_bytes")
        else:
            if target.to_bin() != data or target.start_address != address:
                raise _Broken("raw binary: to_bin() != data or wrong address")
    # a file name (its extension is checked against the contents) may refuse the file,
    # but never changes what is loaded
    name = _NAMES[len(data) % len(_NAMES)]
    try:
        named = load_bytes(data, address=0x08000000, name=name)
    except DfuseError as exc:
        str(exc)
    else:
        if named != load_bytes(data, address=0x08000000):
            raise _Broken(f"load_bytes(name={name!r}) loaded something else than without it")
    if not accepted and outcome is not None:
        raise outcome
    return True


_NAMES = ("fw.dfu", "fw.hex", "fw.s19", "fw.bin", "fw.srec", "firmware")


def _layout(data: bytes) -> bool:
    text = data.decode("latin-1")
    layout = MemoryLayout.parse(text)
    if str(layout) != text:
        raise _Broken("str(MemoryLayout.parse(text)) != text")
    if MemoryLayout.parse(str(layout)) != layout:
        raise _Broken("MemoryLayout.parse(str(layout)) != layout")
    canonical = MemoryLayout(
        layout.name, tuple(Region(r.address, r.sectors) for r in layout.regions)
    )
    if MemoryLayout.parse(str(canonical)) != layout:
        raise _Broken("the canonical spelling does not parse back to the same layout")
    # the queries work on whatever was parsed
    sectors = layout.sectors
    first, last = sectors[0], sectors[-1]
    if layout.sector_at(first.address) != first or layout.sector_at(last.address) != last:
        raise _Broken("sector_at disagrees with sectors[0] / sectors[-1]")
    layout.sectors_for(layout.address, min(layout.end - layout.address, 64 * first.size))
    layout.allows(layout.address, layout.end - layout.address)
    layout.allows(layout.address, 1)
    return True


_CHECKERS: dict[FuzzTarget, Callable[[bytes], bool]] = {
    FuzzTarget.DFUSE: _dfuse,
    FuzzTarget.DFU: _dfu,
    FuzzTarget.LOAD: _load,
    FuzzTarget.LAYOUT: _layout,
}


@dataclass(frozen=True, slots=True)
class Outcome:
    """The result of one :func:`check`."""

    accepted: bool
    error: str
    seconds: float
    peak: int | None
    violation: Violation | None


def check(
    target: FuzzTarget, data: bytes, *, trace_memory: bool = False, strategy: str = ""
) -> Outcome:
    """Feed ``data`` to ``target`` and apply the oracle (see the module docstring)."""
    checker = _CHECKERS[target]
    error = ""
    accepted = False
    violation: Violation | None = None
    peak: int | None = None
    tracing = trace_memory and not tracemalloc.is_tracing()
    if tracing:
        tracemalloc.start()
    start = time.perf_counter()
    try:
        accepted = checker(data)
    except DfuseError as exc:
        error = type(exc).__name__
        try:
            str(exc)
        except Exception as bad:
            violation = Violation(target, "exception", f"str() of {error} raised {bad!r}", data)
    except _Broken as exc:
        violation = Violation(target, "round-trip", str(exc), data, strategy)
    except Exception as exc:
        violation = Violation(target, "exception", f"{type(exc).__name__}: {exc}", data, strategy)
    elapsed = time.perf_counter() - start
    if tracing:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    if violation is None and peak is not None:
        budget = MEMORY_BASE + MEMORY_PER_BYTE * len(data)
        if target is FuzzTarget.LAYOUT:
            budget = max(budget, LAYOUT_MEMORY_CAP)
        if peak > budget:
            violation = Violation(
                target, "memory", f"peak {peak:,} bytes > budget {budget:,}", data, strategy
            )
    time_budget = TIME_BASE + TIME_PER_BYTE * len(data)
    if target is FuzzTarget.LAYOUT:
        time_budget = max(time_budget, LAYOUT_TIME_CAP)
    if violation is None and elapsed > time_budget:
        # confirm (the box is shared): the best of three runs must also be over budget
        best = elapsed
        for _ in range(3):
            t0 = time.perf_counter()
            with contextlib.suppress(Exception):
                checker(data)
            best = min(best, time.perf_counter() - t0)
        if best > time_budget:
            violation = Violation(
                target, "time", f"{best:.3f} s for {len(data)} bytes", data, strategy
            )
    return Outcome(accepted, error, elapsed, peak, violation)


# --------------------------------------------------------------------------- generators

_INTERESTING_U32 = (
    0, 1, 2, 3, 4, 7, 8, 15, 16, 0x7F, 0x80, 0xFF, 0x100, 0x112, 0x7FFF, 0xFFFF, 0x10000,
    0x7FFFFFFF, 0x80000000, 0xFFFFFFF0, 0xFFFFFFF8, 0xFFFFFFFE, 0xFFFFFFFF, 0x08000000,
)  # fmt: skip
_INTERESTING_U8 = (0, 1, 2, 0x7F, 0x80, 0xFE, 0xFF)


@dataclass(frozen=True, slots=True)
class _Field:
    offset: int
    width: int  # 1, 2 or 4 bytes (little-endian) or the size of a byte string


def _suffix(body: bytes, *, bcd: int, vid: int, pid: int, device: int) -> bytes:
    head = struct.pack("<HHHH3sB", device, pid, vid, bcd, b"UFD", 16)
    return body + head + struct.pack("<I", zlib.crc32(body + head) ^ _U32)


def fix_crc(data: bytes) -> bytes:
    """``data`` with its last four bytes replaced by the DFU suffix CRC of the rest."""
    if len(data) < 4:
        return data
    return data[:-4] + struct.pack("<I", zlib.crc32(data[:-4]) ^ _U32)


def fix_image_size(data: bytes, *, with_suffix: bool) -> bytes:
    """``data`` with DFUImageSize set to agree with its length (if it has a DfuSe prefix)."""
    if len(data) < 11 or not data.startswith(b"DfuSe"):
        return data
    size = len(data) - (0 if with_suffix else _SUFFIX)
    return data[:6] + struct.pack("<I", size & _U32) + data[10:]


class Mutator:
    """Seeded generator of fuzz inputs for every :class:`FuzzTarget`.

    >>> m = Mutator(1)
    >>> data, how = m.next_input(FuzzTarget.DFUSE)
    >>> isinstance(data, bytes) and isinstance(how, str)
    True
    """

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    # ------------------------------------------------------------------ valid inputs

    def _element_data(self) -> bytes:
        r = self.rng
        n = r.choice((0, 1, 2, 3, 4, 7, 8, 16, 31, 64, r.randrange(0, 300)))
        return r.randbytes(n) if r.random() < 0.7 else bytes([r.randrange(256)]) * n

    def dfuse_file(self) -> tuple[bytes, list[_Field]]:
        """A valid DfuSe file and the offsets of its numeric fields."""
        r = self.rng
        body = bytearray(b"DfuSe\x01\0\0\0\0\0")
        fields = [_Field(6, 4), _Field(10, 1)]
        n_targets = r.choice((0, 1, 1, 1, 2, 3))
        body[10] = n_targets
        for _t in range(n_targets):
            start = len(body)
            name = r.choice((b"", b"Internal Flash", b"ST...", r.randbytes(r.randrange(0, 40))))
            name = name.replace(b"\0", b"_")[:255]
            name_field = name.ljust(255, b"\0")
            if r.random() < 0.2:  # ST's DFU File Manager leaves garbage after the NUL
                name_field = (name + b"\0" + r.randbytes(254 - len(name)))[:255]
            elements = bytearray()
            element_fields: list[_Field] = []
            address = r.choice((0x08000000, 0, 0x20000000, r.randrange(0, 1 << 32)))
            n_elements = r.choice((0, 1, 1, 2, 3, 5))
            for _e in range(n_elements):
                data = self._element_data()
                if address + len(data) > 1 << 32:
                    break
                element_fields += [
                    _Field(start + 274 + len(elements), 4),
                    _Field(start + 278 + len(elements), 4),
                ]
                elements += struct.pack("<II", address, len(data)) + data
                address += len(data) + r.choice((0, 0, 4, 0x100, 0x4000))
                if address >= 1 << 32:
                    break
            count = len(element_fields) // 2
            named = 1 if name else 0
            alt = r.choice((0, 0, 1, 2, 3, r.randrange(256)))
            body += (
                b"Target"
                + struct.pack("<BI", alt, named)
                + name_field
                + struct.pack("<II", len(elements), count)
                + elements
            )
            fields += [
                _Field(start + 6, 1),
                _Field(start + 7, 4),
                _Field(start + 266, 4),
                _Field(start + 270, 4),
                *element_fields,
            ]
        with_suffix = r.random() < 0.3
        image_size = len(body) + (_SUFFIX if with_suffix else 0)
        body[6:10] = struct.pack("<I", image_size)
        vid, pid = r.choice(((0xFFFF, 0xFFFF), (0x0483, 0xDF11), (0x0483, 0x0000)))
        data = _suffix(bytes(body), bcd=0x011A, vid=vid, pid=pid, device=0xFFFF)
        n = len(data)
        fields += [_Field(n - 16, 2), _Field(n - 14, 2), _Field(n - 12, 2), _Field(n - 10, 2)]
        fields += [_Field(n - 5, 1)]
        return data, fields

    def dfu_file(self) -> tuple[bytes, list[_Field]]:
        """A valid plain DFU file and its suffix fields."""
        r = self.rng
        payload = r.randbytes(r.choice((0, 1, 5, 16, 100, r.randrange(0, 2000))))
        bcd = r.choice((0x0100, 0x0100, 0x011A, 0x0110))
        data = _suffix(payload, bcd=bcd, vid=0x0483, pid=r.choice((0xDF11, 0xFFFF)), device=0x0200)
        n = len(data)
        return data, [_Field(n - 16 + i, w) for i, w in ((0, 2), (2, 2), (4, 2), (6, 2), (11, 1))]

    def _segments(self) -> list[tuple[int, bytes]]:
        r = self.rng
        address = r.choice((0x08000000, 0, 0x1000, r.randrange(0, 1 << 31)))
        out = []
        for _ in range(r.choice((0, 1, 1, 2, 3, 6))):
            data = r.randbytes(r.choice((1, 2, 16, 33, r.randrange(1, 600))))
            out.append((address, data))
            address += len(data) + r.choice((1, 4, 0x100, 0x10000, 0x1000000))
            if address + 1000 >= 1 << 32:
                break
        return out

    def hex_text(self) -> bytes:
        """Valid Intel HEX text."""
        r = self.rng
        return write_hex(self._segments(), bytes_per_record=r.choice((8, 16, 32))).encode()

    def srec_text(self) -> bytes:
        """Valid Motorola S-record text."""
        r = self.rng
        return write_srec(self._segments(), bytes_per_record=r.choice((8, 16, 32))).encode()

    def layout_text(self) -> str:
        """A valid (or nearly valid) DfuSe alternate-setting string."""
        r = self.rng
        if r.random() < 0.15:
            return r.choice(
                (
                    "@Internal Flash  /0x08000000/04*016Kg,01*064Kg,03*128Kg",
                    "@Option Bytes  /0x1FFFC000/01*016 e",
                    "@OTP Memory /0x1FFF7800/01*512 e,01*016 e",
                    "@Device Feature/0xFFFF0000/01*004 e",
                    "@Internal Flash   /0x08000000/1536*128g",
                    "@Flash /0x08000000/ 4*016Kg, 1*064Kg",
                )
            )
        name = r.choice(("Internal Flash  ", "x", " ", "OTP Memory ", "Ünïcode", "a@b"))
        out = ["@", name]
        address = r.choice((0x08000000, 0, 0x1FFF0000, r.randrange(0, 1 << 31)))
        for _ in range(r.choice((1, 1, 2, 3))):
            width = r.choice((8, 8, 1, 4, 10))
            out.append(f"/0x{address:0{width}X}/" if r.random() < 0.8 else f"/0x{address:x}/")
            groups = []
            for _g in range(r.choice((1, 1, 2, 3, 4))):
                count = r.choice((1, 2, 4, 8, r.randrange(1, 100)))
                size = r.choice((1, 2, 4, 16, 64, 128, 512, r.randrange(1, 1000)))
                mult = r.choice((" ", "B", "K", "K", "M", ""))
                letter = r.choice("abcdefgg")
                pad = r.choice(("", "0", "00", " "))
                groups.append(f"{pad}{count:02d}*{size:03d}{mult}{letter}")
                address += count * size * {" ": 1, "B": 1, "K": 1024, "M": 1 << 20, "": 1}[mult]
            out.append(",".join(groups))
            address += r.choice((0, 0x100, 0x10000))
            if address >= 1 << 32:
                break
        return "".join(out)

    # ------------------------------------------------------------------ mutations

    def _interesting(self, current: int, width: int, data_len: int) -> int:
        r = self.rng
        if width == 1:
            return r.choice((*_INTERESTING_U8, (current + 1) & 0xFF, (current - 1) & 0xFF))
        limit = (1 << (8 * width)) - 1
        choices = (
            *_INTERESTING_U32,
            current + 1,
            current - 1,
            current + 8,
            current - 8,
            current * 2,
            current + 0x10000,
            data_len,
            data_len - 16,
            data_len + 16,
            r.randrange(0, 1 << 32),
        )
        return r.choice(choices) & limit

    def mutate_binary(self, data: bytes, fields: list[_Field]) -> tuple[bytes, str]:
        """Apply 1-3 structure-aware mutations, then maybe fix sizes and the CRC."""
        r = self.rng
        buf = bytearray(data)
        names = []
        for _ in range(r.choice((1, 1, 1, 2, 3))):
            op = r.choice(
                (
                    "field", "field", "field", "flip", "bytes", "truncate", "extend",
                    "insert", "delete", "duplicate", "splice", "huge",
                )
            )  # fmt: skip
            names.append(op)
            n = len(buf)
            if op in ("field", "huge") and fields:
                f = r.choice(fields)
                if f.offset + f.width <= n:
                    cur = int.from_bytes(buf[f.offset : f.offset + f.width], "little")
                    if op == "huge" and f.width == 4:
                        value = r.choice((0xFFFFFFFF, 0xFFFFFFF0, 0x80000000, 0x7FFFFFFF, 1 << 30))
                    else:
                        value = self._interesting(cur, f.width, n)
                    buf[f.offset : f.offset + f.width] = value.to_bytes(f.width, "little")
            elif op == "flip" and n:
                i = r.randrange(n)
                buf[i] ^= 1 << r.randrange(8)
            elif op == "bytes" and n:
                i = r.randrange(n)
                k = r.randrange(1, 9)
                buf[i : i + k] = r.randbytes(min(k, n - i))
            elif op == "truncate" and n:
                cut = r.choice([f.offset for f in fields] + [r.randrange(n + 1), n - 1, n - 16])
                del buf[max(cut, 0) :]
            elif op == "extend":
                buf += r.choice((b"\0" * r.randrange(1, 64), r.randbytes(r.randrange(1, 300))))
            elif op == "insert":
                i = r.randrange(n + 1)
                buf[i:i] = r.randbytes(r.choice((1, 4, 8, 274, r.randrange(1, 100))))
            elif op == "delete" and n:
                i = r.randrange(n)
                del buf[i : i + r.choice((1, 4, 8, 274, r.randrange(1, 100)))]
            elif op == "duplicate" and n:
                i = r.randrange(n)
                k = r.randrange(1, min(n - i, 600) + 1)
                j = r.randrange(n + 1)
                buf[j:j] = buf[i : i + k]
            elif op == "splice":
                other, _ = self.dfuse_file() if r.random() < 0.7 else self.dfu_file()
                a, b = r.randrange(len(buf) + 1), r.randrange(len(other) + 1)
                buf = buf[:a] + other[b:]
        out = bytes(buf)
        if r.random() < 0.6:
            out = fix_image_size(out, with_suffix=r.random() < 0.3)
            names.append("fix-size")
        if r.random() < 0.85:
            out = fix_crc(out)
            names.append("fix-crc")
        return out, "+".join(names)

    def mutate_records(self, text: bytes, *, srec: bool) -> tuple[bytes, str]:
        """Line-level mutations of Intel HEX / S-record text (checksums usually fixed)."""
        r = self.rng
        lines = text.decode("ascii").splitlines()
        names = []
        for _ in range(r.choice((1, 1, 2, 3))):
            op = r.choice(
                ("count", "type", "address", "char", "drop", "dup", "swap", "ext", "blank", "huge")
            )
            names.append(op)
            if not lines:
                lines.append(":00000001FF" if not srec else "S9030000FC")
                continue
            i = r.randrange(len(lines))
            line = lines[i]
            if op == "count" and len(line) > 3:
                lines[i] = line[: 1 + srec] + f"{r.randrange(256):02X}" + line[3 + srec :]
            elif op == "type" and len(line) > 8:
                if srec:
                    lines[i] = "S" + r.choice("0123456789AZ") + line[2:]
                else:
                    kind = r.choice((0, 1, 2, 3, 4, 5, 6, 0xFF))
                    lines[i] = line[:7] + f"{kind:02X}" + line[9:]
            elif op == "address" and len(line) > 8:
                lines[i] = line[: 3 + srec] + r.randbytes(2).hex().upper() + line[7 + srec :]
            elif op == "char" and line:
                j = r.randrange(len(line))
                lines[i] = line[:j] + r.choice("0F:GSz \t\x00é") + line[j + 1 :]
            elif op == "drop":
                del lines[i]
            elif op == "dup":
                lines.insert(i, line)
            elif op == "swap" and len(lines) > 1:
                j = r.randrange(len(lines))
                lines[i], lines[j] = lines[j], lines[i]
            elif op == "ext":
                upper = r.choice((0xFFFF, 0x0800, 0x1FFF, r.randrange(0x10000)))
                lines.insert(i, ":02000004" + f"{upper:04X}" + "00" if not srec else "S5030000FC")
            elif op == "blank":
                lines.insert(i, r.choice(("", "   ", "\t")))
            elif op == "huge":
                # many records far apart: stresses the segment bookkeeping
                k = r.randrange(50, 400)
                extra = write_hex if not srec else write_srec
                segs = [(0x08000000 + j * 64, b"\x01") for j in range(k)]
                lines[i:i] = extra(segs).splitlines()[:-1]
        if r.random() < 0.75:
            lines = [_fix_record(line, srec=srec) for line in lines]
            names.append("fix-checksum")
        sep = r.choice(("\n", "\n", "\r\n"))
        return sep.join(lines).encode("latin-1", "replace") + sep.encode(), "+".join(names)

    def mutate_layout(self, text: str) -> tuple[str, str]:
        """Character- and token-level mutations of a layout string."""
        r = self.rng
        names = []
        alphabet = "@/0x123456789*,KMBabcdefghX \t-+."
        for _ in range(r.choice((0, 1, 1, 2, 3))):
            op = r.choice(("insert", "delete", "replace", "number", "dup", "cut", "repeat"))
            names.append(op)
            n = len(text)
            i = r.randrange(n + 1)
            if op == "insert":
                text = text[:i] + r.choice(alphabet) + text[i:]
            elif op == "delete" and n:
                text = text[:i] + text[i + 1 :]
            elif op == "replace" and n:
                text = text[:i] + r.choice(alphabet) + text[i + 1 :]
            elif op == "number":
                digits = [j for j, ch in enumerate(text) if ch.isdigit()]
                if digits:
                    j = r.choice(digits)
                    if r.random() < 0.8:  # out of range: refused before any sector exists
                        big = r.choice(
                            ("4294967296", "9999999999", "00000000000000000001", "65537",
                             "0", "1" * 40, "FFFFFFFF", "100000000", "99", "00")
                        )  # fmt: skip
                    else:  # in range but many sectors: kept as runs, never expanded
                        big = r.choice(("4096", "65535", "65536", "32768"))
                    text = text[:j] + big + text[j + 1 :]
            elif op == "dup" and n:
                j = r.randrange(i, n + 1)
                text = text[:j] + text[i:j] + text[j:]
            elif op == "cut":
                text = text[:i]
            elif op == "repeat":
                text = text + ("," + "01*001 g") * r.randrange(1, 600)
        return text, "+".join(names) or "valid"

    # ------------------------------------------------------------------ dispatch

    def random_bytes(self) -> bytes:
        """Unstructured bytes, sometimes with a recognisable head or tail."""
        r = self.rng
        data = r.randbytes(r.choice((0, 1, 10, 16, 17, 100, r.randrange(0, 3000))))
        roll = r.random()
        if roll < 0.1:
            data = b"DfuSe\x01" + data
        elif roll < 0.2:
            data = fix_crc(data + b"\0" * 8 + b"UFD\x10" + b"\0" * 4)
        elif roll < 0.3:
            data = b":" + data
        elif roll < 0.4:
            data = b"S3" + data
        return data

    def next_input(self, target: FuzzTarget) -> tuple[bytes, str]:
        """The next input for ``target`` and a label of how it was made."""
        r = self.rng
        roll = r.random()
        if target is FuzzTarget.LAYOUT:
            if roll < 0.1:
                chars = "@/0x123456789*,KMBabcdefgh \t"
                text = "".join(r.choice(chars) for _ in range(r.randrange(0, 80)))
                return text.encode("latin-1"), "random-text"
            if roll < 0.13:
                return self.random_bytes(), "random-bytes"
            text, how = self.mutate_layout(self.layout_text())
            return text.encode("latin-1", "replace"), how
        if roll < 0.12:
            return self.random_bytes(), "random-bytes"
        if target is FuzzTarget.LOAD:
            pick = r.random()
            if pick < 0.3:
                data, how = self.mutate_records(self.hex_text(), srec=False)
                return data, "ihex:" + how
            if pick < 0.55:
                data, how = self.mutate_records(self.srec_text(), srec=True)
                return data, "srec:" + how
            if pick < 0.6:
                return self.hex_text() if r.random() < 0.5 else self.srec_text(), "valid-records"
        if target is FuzzTarget.DFU or (target is FuzzTarget.LOAD and r.random() < 0.3):
            data, fields = self.dfu_file()
            if r.random() < 0.1:
                return data, "dfu-valid"
            out, how = self.mutate_binary(data, fields)
            return out, "dfu:" + how
        data, fields = self.dfuse_file()
        if r.random() < 0.1:
            return data, "dfuse-valid"
        out, how = self.mutate_binary(data, fields)
        return out, "dfuse:" + how


def _fix_record(line: str, *, srec: bool) -> str:
    """Recompute the checksum (and for S-records the byte count) of one record line."""
    try:
        if srec:
            if len(line) < 4 or line[0] != "S":
                return line
            body = bytes.fromhex(line[4:-2]) if len(line) >= 6 else b""
            count = len(body) + 1
            checksum = ~(count + sum(body)) & 0xFF
            return f"{line[:2]}{count:02X}{body.hex().upper()}{checksum:02X}"
        if len(line) < 11 or line[0] != ":":
            return line
        body = bytes.fromhex(line[1:-2])
        checksum = (-sum(body)) & 0xFF
        return f":{body.hex().upper()}{checksum:02X}"
    except ValueError:
        return line


# --------------------------------------------------------------------------- runner


def save_violation(directory: Path, violation: Violation) -> Path:
    """Write the failing input to ``directory`` (named by target, kind and hash)."""
    directory.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha1(violation.data).hexdigest()[:16]
    path = directory / f"{violation.target}-{violation.kind}-{digest}.bin"
    path.write_bytes(violation.data)
    path.with_suffix(".txt").write_text(str(violation) + "\n")
    return path


def run(
    target: FuzzTarget,
    count: int,
    *,
    seed: int = 0,
    trace_every: int = 16,
    on_violation: Callable[[Violation], None] | None = None,
    max_violations: int = 100,
) -> Stats:
    """Feed ``count`` generated inputs to ``target`` and collect :class:`Stats`.

    Memory is traced on every ``trace_every``-th input (0: never) and on every input
    that is large or claims a huge size or count.
    """
    mutator = Mutator(seed)
    stats = Stats(target)
    start = time.perf_counter()
    for i in range(count):
        data, how = mutator.next_input(target)
        strategy = how.split(":", 1)[0] + ":" + how.split("+", 1)[0].split(":")[-1]
        stats.strategies[strategy] += 1
        trace = (trace_every > 0 and i % trace_every == 0) or len(data) >= HUGE
        if "huge" in how or ("repeat" in how and i % 4 == 0):
            trace = True
        outcome = check(target, data, trace_memory=trace, strategy=how)
        stats.ran += 1
        if outcome.peak is not None:
            stats.traced += 1
            if outcome.peak > stats.max_peak_bytes:
                stats.max_peak_bytes, stats.max_peak_input = outcome.peak, len(data)
        if outcome.seconds > stats.slowest_seconds:
            stats.slowest_seconds, stats.slowest_input = outcome.seconds, len(data)
        if outcome.accepted:
            stats.accepted += 1
        else:
            stats.rejected += 1
            if outcome.error:
                stats.errors[outcome.error] += 1
        if outcome.violation is not None:
            if len(stats.violations) < max_violations:
                stats.violations.append(outcome.violation)
            if on_violation is not None:
                on_violation(outcome.violation)
    stats.seconds = time.perf_counter() - start
    return stats


# --------------------------------------------------------------------------- command line

#: How a file-fuzzing run divides its inputs among the file targets.
FILE_SHARES: tuple[tuple[FuzzTarget, float], ...] = (
    (FuzzTarget.DFUSE, 0.45),
    (FuzzTarget.DFU, 0.15),
    (FuzzTarget.LOAD, 0.40),
)


def _split(
    total: int, shares: tuple[tuple[FuzzTarget, float], ...]
) -> list[tuple[FuzzTarget, int]]:
    counts = [(t, int(total * share)) for t, share in shares]
    counts[0] = (counts[0][0], counts[0][1] + total - sum(n for _, n in counts))
    return counts


def main(
    argv: list[str] | None,
    *,
    shares: tuple[tuple[FuzzTarget, float], ...],
    default_count: int,
    prog: str,
) -> int:
    """The fuzz scripts' command line: returns 0 when no input failed, 1 otherwise."""
    import argparse

    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=default_count, help="inputs to run")
    parser.add_argument("--seed", type=int, default=0, help="seed of the mutator")
    parser.add_argument(
        "--out", type=Path, default=Path("fuzz-failures"), help="where failing inputs go"
    )
    parser.add_argument(
        "--trace-every",
        type=int,
        default=16,
        help="trace memory (tracemalloc) on every Nth input (0: only suspicious ones)",
    )
    parser.add_argument(
        "--atheris",
        action="store_true",
        help="coverage-guided fuzzing with atheris (pip install atheris) instead",
    )
    args = parser.parse_args(argv)
    if args.atheris:
        return _atheris(args.count, args.seed, args.out, [t for t, _ in shares])
    failed = 0
    ran = 0
    seconds = 0.0

    def report(violation: Violation) -> None:
        path = save_violation(args.out, violation)
        print(f"FAIL {violation} -> {path}", flush=True)

    for index, (target, n) in enumerate(_split(args.count, shares)):
        stats = run(
            target,
            n,
            seed=args.seed * 1000 + index,
            trace_every=args.trace_every,
            on_violation=report,
        )
        print(stats.summary(), flush=True)
        failed += stats.failed
        ran += stats.ran
        seconds += stats.seconds
    rate = ran / seconds if seconds else 0.0
    print(f"TOTAL ran {ran}, failed {failed}, {rate:,.0f} inputs/s, {seconds:.1f} s", flush=True)
    return 1 if failed else 0


def _atheris(count: int, seed: int, out: Path, targets: list[FuzzTarget]) -> int:
    """Coverage-guided mode: libFuzzer (through atheris) mutates, our oracle judges.

    The first byte of each input picks the target. A seed corpus of valid inputs
    from :class:`Mutator` is written to ``out/corpus``. libFuzzer ends the process
    itself after ``count`` runs, so the summary is printed from the last run.
    """
    import sys
    import tempfile

    import atheris  # type: ignore[import-untyped]

    atheris.instrument_all()
    mutator = Mutator(seed)
    corpus = Path(tempfile.mkdtemp(prefix="dfuse-corpus-"))
    for i in range(200):
        which = i % len(targets)
        data, _ = mutator.next_input(targets[which])
        (corpus / f"seed{i:04d}").write_bytes(bytes((which,)) + data)
    ran = [0]
    failures = [0]

    def one(data: bytes) -> None:
        ran[0] += 1
        if data:
            target = targets[data[0] % len(targets)]
            outcome = check(target, data[1:], strategy="atheris")
            if outcome.violation is not None:
                failures[0] += 1
                path = save_violation(out, outcome.violation)
                print(f"FAIL {outcome.violation} -> {path}", flush=True)
        if ran[0] % 10000 == 0 or ran[0] >= count:
            print(f"atheris: ran {ran[0]}, failed {failures[0]}", flush=True)

    atheris.Setup([sys.argv[0], f"-runs={count}", f"-seed={seed or 1}", str(corpus)], one)
    atheris.Fuzz()
    return 1 if failures[0] else 0  # pragma: no cover - libFuzzer exits by itself
