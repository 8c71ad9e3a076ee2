"""Bad input: the fuzzers in CI (a few thousand inputs), and the worst cases by hand.

The full runs are ``scripts/fuzz_files.py`` (10**6 inputs) and ``scripts/fuzz_layout.py``
(10**5); see docs/reliability.md for their numbers.
"""

from __future__ import annotations

import struct
import sys
import time
import tracemalloc
import zlib
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from _typeshed import TraceFunction

import pytest

from dfuse.errors import (
    DfuseError,
    FileFormatError,
    ImageError,
    LayoutError,
    SizeMismatchError,
    TruncatedFileError,
)
from dfuse.file import DfuFile, DfuSeFile, load_bytes
from dfuse.file.convert import write_hex, write_srec
from dfuse.layout import MemoryLayout
from tests.reliability import fuzzing
from tests.reliability.fuzzing import FuzzTarget, check, fix_crc, run

#: Inputs per target in CI: a few seconds in all.
CI_COUNTS = {
    FuzzTarget.DFUSE: 2500,
    FuzzTarget.DFU: 1500,
    FuzzTarget.LOAD: 1200,
    FuzzTarget.LAYOUT: 600,
}


@pytest.mark.parametrize("target", list(FuzzTarget))
def test_fuzz_in_ci(target: FuzzTarget) -> None:
    stats = run(target, CI_COUNTS[target], seed=20261126, trace_every=8)
    assert stats.ran == CI_COUNTS[target]
    assert stats.failed == 0, "\n".join(str(v) for v in stats.violations[:10])
    # the mutator reaches both sides of the parser, and the deep checks
    assert stats.accepted > 0
    assert stats.rejected > 0
    assert stats.traced > 0
    if target is not FuzzTarget.LAYOUT:
        assert len(stats.errors) >= 3, stats.errors


def test_fuzz_reaches_the_deep_dfuse_checks() -> None:
    """CRC and size fix-ups get mutated files past the suffix to the element checks."""
    stats = run(FuzzTarget.DFUSE, 2000, seed=5, trace_every=0)
    assert stats.errors["SizeMismatchError"] > 50
    assert stats.errors["TruncatedFileError"] > 50
    assert stats.errors["SignatureError"] > 50
    assert stats.errors["CrcMismatchError"] > 0


# --------------------------------------------------------------------------- the oracle bites


def _with_checker(monkeypatch: pytest.MonkeyPatch, checker: Callable[[bytes], bool]) -> None:
    monkeypatch.setitem(fuzzing._CHECKERS, FuzzTarget.DFU, checker)


def test_oracle_flags_a_foreign_exception(monkeypatch: pytest.MonkeyPatch) -> None:
    def leaky(data: bytes) -> bool:
        return bool(data[1000])  # IndexError

    _with_checker(monkeypatch, leaky)
    outcome = check(FuzzTarget.DFU, b"abc")
    assert outcome.violation is not None
    assert outcome.violation.kind == "exception"
    assert "IndexError" in outcome.violation.detail


def test_oracle_accepts_dfuse_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuses(data: bytes) -> bool:
        raise TruncatedFileError("short", offset=0, expected=16, found=len(data))

    _with_checker(monkeypatch, refuses)
    outcome = check(FuzzTarget.DFU, b"abc")
    assert outcome.violation is None
    assert outcome.error == "TruncatedFileError"
    assert not outcome.accepted


def test_oracle_flags_a_broken_round_trip(monkeypatch: pytest.MonkeyPatch) -> None:
    data = DfuFile(b"payload").to_bytes()
    original = DfuFile.to_bytes
    monkeypatch.setattr(DfuFile, "to_bytes", lambda self: original(self) + b"\0")
    outcome = check(FuzzTarget.DFU, data)
    assert outcome.violation is not None
    assert outcome.violation.kind == "round-trip"


def test_oracle_flags_memory_and_time(monkeypatch: pytest.MonkeyPatch) -> None:
    def hungry(data: bytes) -> bool:
        block = bytearray(fuzzing.MEMORY_BASE * 2)
        return bool(block)

    _with_checker(monkeypatch, hungry)
    outcome = check(FuzzTarget.DFU, b"x", trace_memory=True)
    assert outcome.violation is not None
    assert outcome.violation.kind == "memory"

    def slow(data: bytes) -> bool:
        time.sleep(0.02)
        return True

    _with_checker(monkeypatch, slow)
    monkeypatch.setattr(fuzzing, "TIME_BASE", 0.001)
    outcome = check(FuzzTarget.DFU, b"x")
    assert outcome.violation is not None
    assert outcome.violation.kind == "time"


def test_failing_inputs_are_saved(tmp_path: Path) -> None:
    violation = fuzzing.Violation(FuzzTarget.LOAD, "exception", "boom", b"\x01\x02", "test")
    path = fuzzing.save_violation(tmp_path / "out", violation)
    assert path.read_bytes() == b"\x01\x02"
    assert "boom" in path.with_suffix(".txt").read_text()


def test_script_entry_point(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = fuzzing.main(
        ["--count", "300", "--seed", "3", "--out", str(tmp_path)],
        shares=fuzzing.FILE_SHARES,
        default_count=10**6,
        prog="fuzz_files.py",
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "TOTAL ran 300, failed 0" in out
    assert "inputs/s" in out


# --------------------------------------------------------------------------- worst cases


def _dfuse_file(*, image_size: int | None = None, targets: int = 1, target_size: int | None = None,
                count: int | None = None, element_size: int | None = None) -> bytes:  # fmt: skip
    """One target with one 4-byte element, fields overridable, CRC always right."""
    element = struct.pack("<II", 0x08000000, 4 if element_size is None else element_size)
    element += b"\xde\xad\xbe\xef"
    target = b"Target" + struct.pack("<BI", 0, 1) + b"flash".ljust(255, b"\0")
    target += struct.pack("<II", len(element) if target_size is None else target_size,
                          1 if count is None else count)  # fmt: skip
    body_len = 11 + len(target) + len(element)
    prefix = b"DfuSe\x01" + struct.pack(
        "<IB", body_len if image_size is None else image_size, targets
    )
    body = prefix + target + element
    head = struct.pack("<HHHH3sB", 0xFFFF, 0xFFFF, 0xFFFF, 0x011A, b"UFD", 16)
    return body + head + struct.pack("<I", zlib.crc32(body + head) ^ 0xFFFFFFFF)


HUGE_CLAIMS: list[tuple[str, bytes, type[DfuseError]]] = [
    ("DFUImageSize 4 GiB", _dfuse_file(image_size=0xFFFFFFFF), TruncatedFileError),
    ("bTargets 255", _dfuse_file(targets=255), SizeMismatchError),
    ("dwTargetSize 4 GiB", _dfuse_file(target_size=0xFFFFFFFF), TruncatedFileError),
    ("dwNbElements 4 G", _dfuse_file(count=0xFFFFFFFF), SizeMismatchError),
    ("dwElementSize 4 GiB", _dfuse_file(element_size=0xFFFFFFFF), SizeMismatchError),
    ("dwElementSize 2 GiB", _dfuse_file(element_size=0x80000000), SizeMismatchError),
]


@pytest.mark.parametrize(("name", "data", "error"), HUGE_CLAIMS, ids=[c[0] for c in HUGE_CLAIMS])
def test_huge_claims_allocate_nothing(name: str, data: bytes, error: type[DfuseError]) -> None:
    assert DfuSeFile.parse(_dfuse_file()).size == 4  # the unmutated file is valid
    for parse in (DfuSeFile.parse, load_bytes):
        tracemalloc.start()
        try:
            with pytest.raises(error):
                parse(data)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak < 64 * 1024, f"{name}: {peak} bytes"


def test_huge_claims_in_records_and_layouts() -> None:
    over_4g = b":02000004FFFFFC\n:10FFF80000000000000000000000000000000000F9\n:00000001FF\n"
    far_apart = write_srec([(0x00000000, b"\x01"), (0xFFFFFFF0, b"\x02")]).encode()
    tracemalloc.start()
    try:
        with pytest.raises(ImageError, match="beyond 32-bit"):
            load_bytes(over_4g)
        # two bytes 4 GiB apart: two elements, never a 4 GiB buffer
        loaded = load_bytes(far_apart)
        assert isinstance(loaded, DfuSeFile)
        assert [e.size for e in loaded.target().elements] == [1, 1]
        for text in ("@x/0x0/4294967295*4294967295Mg", "@x/0x1/1*4096Mg"):
            with pytest.raises(LayoutError):
                MemoryLayout.parse(text)
        # many sectors are fine: kept as one run, never one object each (issue 13.7)
        assert len(MemoryLayout.parse("@x/0x0/4294967295*1 g").sectors) == 4294967295
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 512 * 1024


def test_load_rejects_what_it_cannot_place() -> None:
    with pytest.raises(FileFormatError, match="address="):
        load_bytes(b"\x00\x01\x02")
    with pytest.raises(FileFormatError, match="empty"):
        load_bytes(b"")
    data = fix_crc(b"\x00" * 8 + b"\xff\xff\xff\xff\x1a\x01UFD\x10" + b"\0" * 4)
    assert isinstance(load_bytes(data), DfuFile)


def _lines_executed(fn: Callable[[], object]) -> int:
    """How many lines of Python ``fn`` executes: a count of operations that, unlike a
    wall-clock time, does not depend on how busy the machine is."""
    count = 0

    def tracer(frame: FrameType, event: str, arg: object) -> TraceFunction:
        nonlocal count
        if event == "line":
            count += 1
        return tracer

    previous = sys.gettrace()
    sys.settrace(tracer)
    try:
        fn()
    finally:
        sys.settrace(previous)
    return count


@pytest.mark.parametrize("writer", [write_hex, write_srec], ids=["ihex", "srec"])
def test_record_import_is_linear_in_disjoint_records(
    writer: Callable[[list[tuple[int, bytes]]], str],
) -> None:
    """Found by this suite (bincopy's Segments.add scanned its segment list for every
    record: 1,000 / 4,000 / 16,000 records took 20 ms / 266 ms / 4.6 s); fixed since.
    Counted in executed lines, not seconds (a 2 ms wall-clock baseline failed under load)."""

    def text(n: int) -> bytes:
        return writer([(0x08000000 + i * 32, b"\x01\x02") for i in range(n)]).encode()

    small, large = text(1000), text(4000)  # 4x the records
    n_small = _lines_executed(lambda: load_bytes(small))
    n_large = _lines_executed(lambda: load_bytes(large))
    # linear: about 4x; quadratic: about 16x
    assert 3 < n_large / n_small < 5, f"{n_small} -> {n_large} lines"
