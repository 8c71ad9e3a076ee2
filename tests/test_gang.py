"""flash_many: several simulated boards at once, one thread each."""

from __future__ import annotations

import json
import random
import threading

import pytest

from dfuse.clock import RealClock
from dfuse.device import DfuDevice
from dfuse.gang import FlashReport, GangPhase, GangReport, flash_many
from dfuse.sim import STM32F411_TIMING, Event, Fault, FaultKind, SimBackend, Stm32F411
from dfuse.transport.discovery import find_devices

BASE = 0x08000000
IMAGE = random.Random(7).randbytes(24 * 1024)


def _boards(n: int, **faults: list[Fault]) -> list[Stm32F411]:
    return [Stm32F411(serial=f"GANG{i}", faults=faults.get(f"GANG{i}", [])) for i in range(n)]


def test_four_boards_on_one_backend_all_flashed() -> None:
    boards = _boards(4)
    backend = SimBackend(boards)
    events: list[tuple[str, GangPhase, float]] = []
    threads: set[str] = set()

    def progress(name: str, phase: GangPhase, percent: float) -> None:
        threads.add(threading.current_thread().name)
        events.append((name, phase, percent))

    report = flash_many(
        [b.serial for b in boards], IMAGE, backend=backend, address=BASE, progress=progress
    )
    assert report.ok
    assert len(report) == 4
    assert [r.serial for r in report] == ["GANG0", "GANG1", "GANG2", "GANG3"]
    assert all(r.bytes == len(IMAGE) for r in report)
    for board in boards:
        assert board.peek(BASE, len(IMAGE)) == IMAGE
        name = board.serial
        mine = [(p, pc) for n, p, pc in events if n == name]
        assert mine[0] == (GangPhase.OPEN, 0.0)
        assert (GangPhase.WRITE, 100.0) in mine
        assert (GangPhase.VERIFY, 100.0) in mine
        assert mine[-1] == (GangPhase.DONE, 100.0)
    assert len(threads) >= 2  # the boards really ran on several threads
    assert report.failed == ()
    assert "4 of 4 board(s) flashed, 0 failed" in report.summary()
    doc = json.loads(json.dumps(report.to_dict()))
    assert doc["succeeded"] == 4
    assert doc["devices"][0]["serial"] == "GANG0"


def test_one_failing_board_does_not_stop_the_others() -> None:
    fault = Fault(FaultKind.ERR_WRITE, Event.WRITE, nth=3)
    boards = _boards(4, GANG2=[fault])
    backend = SimBackend(boards)
    report = flash_many(find_devices(backend=backend), IMAGE, backend=backend, address=BASE)
    assert not report.ok
    (failed,) = report.failed
    assert failed.serial == "GANG2"
    assert failed.error_type == "DeviceStatusError"
    assert failed.error is not None
    assert "errWRITE" in failed.error
    assert failed.exception is not None
    assert [r.serial for r in report.succeeded] == ["GANG0", "GANG1", "GANG3"]
    for board in boards:
        flashed = board.peek(BASE, len(IMAGE)) == IMAGE
        assert flashed == (board.serial != "GANG2")
    table = report.summary()
    assert "GANG2" in table
    assert "FAILED" in table
    assert "DeviceStatusError" in table
    assert "3 of 4 board(s) flashed, 1 failed" in table


def test_unplugged_board_and_unknown_serial_are_reported() -> None:
    gone = Fault(FaultKind.DISCONNECT, Event.WRITE, nth=2, reconnect_after=None)
    boards = _boards(3, GANG1=[gone])
    backend = SimBackend(boards)
    phases: list[tuple[str, GangPhase]] = []
    report = flash_many(
        ["GANG0", "GANG1", "NOPE", "1-3"],
        IMAGE,
        backend=backend,
        address=BASE,
        progress=lambda n, p, _pc: phases.append((n, p)),
    )
    by_name = {r.name: r for r in report}
    assert by_name["GANG0"].ok
    assert by_name["GANG2"].ok  # found by its bus path
    assert by_name["GANG2"].path == "1-3"
    assert by_name["GANG1"].error_type == "DeviceGoneError"
    nope = by_name["NOPE"]
    assert not nope.ok
    assert nope.error_type == "DeviceNotFoundError"
    assert nope.path == ""
    assert ("NOPE", GangPhase.FAILED) in phases
    assert ("GANG1", GangPhase.FAILED) in phases
    assert len(report.failed) == 2


def test_open_devices_are_used_and_left_open() -> None:
    boards = _boards(2)
    backend = SimBackend(boards)
    devices = [DfuDevice.open(serial=b.serial, backend=backend) for b in boards]
    report = flash_many(devices, IMAGE, address=BASE, incremental=True)
    assert report.ok
    assert report.duration > 0.4  # measured on the devices' (virtual) clock: erases included
    assert report.bytes == 2 * len(IMAGE)
    for dev in devices:  # still usable
        assert dev.upload(BASE, 16) == IMAGE[:16]
    again = flash_many(devices, IMAGE, address=BASE, incremental=True)
    assert again.bytes == 0  # nothing changed: nothing written
    for dev in devices:
        dev.close()


def test_real_clock_boards_run_in_parallel() -> None:
    """Four boards with real waits finish in well under four times one board's time
    (a loose bound: the measured ratio is in benchmarks/bench_gang.py)."""
    timing = STM32F411_TIMING.typical()
    boards = [Stm32F411(serial=f"RT{i}", timing=timing) for i in range(4)]
    backend = SimBackend(boards, clock=RealClock())
    small = IMAGE[:2048]
    report = flash_many(find_devices(backend=backend), small, backend=backend, address=BASE)
    assert report.ok
    slowest = max(r.duration for r in report)
    assert report.duration < 3 * slowest


def test_misuse() -> None:
    backend = SimBackend(_boards(1))
    with pytest.raises(ValueError, match="at least one board"):
        flash_many([], IMAGE, backend=backend)
    with pytest.raises(ValueError, match="max_workers"):
        flash_many(["GANG0"], IMAGE, backend=backend, max_workers=0)
    with pytest.raises(ValueError, match="given twice"):
        flash_many(["GANG0", "1-1"], IMAGE, backend=backend)
    with pytest.raises(TypeError, match="got int"):
        flash_many([3], IMAGE, backend=backend)  # type: ignore[list-item]


def test_report_types() -> None:
    ok = FlashReport("A", "1-1", True, duration=1.5, bytes=10)
    bad = FlashReport(None, "1-2", False, error="boom", error_type="VerifyError", duration=2.0)
    report = GangReport((ok, bad), 2.5)
    assert ok.name == "A"
    assert bad.name == "1-2"
    assert report.failed == (bad,)
    assert report.bytes == 10
    lines = report.summary().splitlines()
    assert lines[0].split() == ["device", "path", "result", "time", "bytes", "error"]
    assert lines[2].split()[:3] == ["1-2", "1-2", "FAILED"]
    assert lines[-1] == "1 of 2 board(s) flashed, 1 failed, in 2.50 s"


def test_a_serial_number_shared_by_two_boards_is_ambiguous() -> None:
    twins = [Stm32F411(serial="TWIN"), Stm32F411(serial="TWIN"), Stm32F411(serial="OTHER")]
    backend = SimBackend(twins)
    report = flash_many(["TWIN", "OTHER"], IMAGE, backend=backend, address=BASE)
    twin, other = report.devices
    assert not twin.ok
    assert twin.error_type == "DeviceNotFoundError"
    assert twin.error is not None
    assert "2 DFU devices with serial number or bus path 'TWIN'" in twin.error
    assert twin.selector == "TWIN"
    assert other.ok
    assert twins[2].peek(BASE, len(IMAGE)) == IMAGE
    assert twins[0].peek(BASE, 4) == b"\xff" * 4


def test_a_progress_callback_can_cancel_one_board(caplog: pytest.LogCaptureFixture) -> None:
    boards = _boards(3)
    backend = SimBackend(boards)

    def progress(name: str, phase: GangPhase, percent: float) -> None:
        if name == "GANG1" and phase is GangPhase.WRITE:
            raise KeyError("cancelled by the operator")
        if name == "GANG2" and phase is GangPhase.OPEN and percent == 0.0:
            raise SystemExit  # kills the board's thread itself
        if phase in (GangPhase.DONE, GangPhase.FAILED):
            raise ValueError("a broken display")

    report = flash_many(
        ["GANG0", "GANG1", "GANG2"], IMAGE, backend=backend, address=BASE, progress=progress
    )
    first, cancelled, dead = report.devices
    assert first.ok
    assert boards[0].peek(BASE, len(IMAGE)) == IMAGE
    assert cancelled.error_type == "KeyError"
    assert dead.error_type == "SystemExit"
    assert boards[2].peek(BASE, 4) == b"\xff" * 4
    assert "the progress callback failed for GANG0" in caplog.text


def test_record_writes_one_flash_record_per_board_ok_or_failed() -> None:
    from dfuse.station import RecordStore

    fault = Fault(FaultKind.ERR_WRITE, Event.WRITE, nth=3)
    boards = _boards(3, GANG1=[fault])
    backend = SimBackend(boards)
    store = RecordStore.open(":memory:")
    report = flash_many(
        find_devices(backend=backend),
        IMAGE,
        backend=backend,
        address=BASE,
        record=store,
        station_id="line-1",
        image_name="app.bin",
    )
    assert [r.ok for r in report] == [True, False, True]
    records = {r.serial: r for r in store.query()}
    assert sorted(s or "" for s in records) == ["GANG0", "GANG1", "GANG2"]
    for board in boards:
        record = records[board.serial]
        assert record.station == "line-1"
        assert record.image_name == "app.bin"
        if board.serial == "GANG1":
            assert record.result == "failed"
            assert record.error_type == "DeviceStatusError"
            assert record.error is not None
            assert "errWRITE" in record.error
        else:
            assert board.peek(BASE, len(IMAGE)) == IMAGE
            assert record.result == "ok"
            assert record.error is None
            assert record.bytes_written == len(IMAGE)
            assert record.sectors_erased == 2  # 24 KiB from 0x08000000: two 16 KiB sectors
    # without record= nothing is written
    flash_many(find_devices(backend=backend), IMAGE, backend=backend, address=BASE)
    assert len(store.query()) == 3


def test_misuse_is_a_usage_error_naming_the_value() -> None:
    from dfuse.errors import UsageError

    backend = SimBackend(_boards(1))
    with pytest.raises(UsageError, match="at least one board"):
        flash_many([], IMAGE, backend=backend, address=BASE)
    with pytest.raises(UsageError, match="max_workers must be at least 1, got 0") as info:
        flash_many(["GANG0"], IMAGE, backend=backend, address=BASE, max_workers=0)
    assert info.value.value == 0
    [board] = find_devices(backend=backend)
    with pytest.raises(UsageError, match="given twice") as info:
        flash_many([board, board], IMAGE, backend=backend, address=BASE)
    assert info.value.value == board.path
