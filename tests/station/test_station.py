"""The station on the simulator: boards arriving on a schedule, stamps, records, failures."""

from __future__ import annotations

import threading

import pytest

from dfuse.errors import SafetyError
from dfuse.file import DfuSeFile
from dfuse.selector import bench
from dfuse.sim import RomBootloader
from dfuse.station import BoardEvent, RecordStore, StampError, Station, parse_stamp
from tests.station.conftest import IMAGE_BASE, STAMP_BASE

STAMPS = [
    f"0x{STAMP_BASE:08X}:counter:500:4",
    f"0x{STAMP_BASE + 0x10:08X}:serial",
    f"0x{STAMP_BASE + 0x40:08X}:sha256",
    f"0x{STAMP_BASE + 0x60:08X}:time",
]


def _expected(
    board: RomBootloader, record_stamps: list[dict[str, object]], image: DfuSeFile
) -> None:
    """The board's flash holds the image and exactly the stamps its record lists."""
    data = image.targets[0].elements[0].data
    assert board.peek(IMAGE_BASE, len(data)) == data
    values = {s["spec"]: s["value"] for s in record_stamps}
    assert int.from_bytes(board.peek(STAMP_BASE, 4), "little") == values["counter:500:4"]
    assert board.peek(STAMP_BASE + 0x10, 32) == board.serial.encode().ljust(32, b"\0")
    assert values["serial"] == board.serial
    assert board.peek(STAMP_BASE + 0x40, 32).hex() == values["sha256"]
    assert int.from_bytes(board.peek(STAMP_BASE + 0x60, 8), "little") == values["time"]


def test_boards_arriving_on_a_schedule_are_each_flashed_once(image: DfuSeFile) -> None:
    store = RecordStore.open(":memory:")
    b = bench("sim:stm32f411?boards=8&arrive=0.5")
    assert b.find() == []  # nobody on the bus at the start
    events: list[BoardEvent] = []
    station = Station(
        image, b, store=store, stamps=[parse_stamp(s) for s in STAMPS], on_event=events.append,
        image_name="fw.dfu",
    )  # fmt: skip
    summary = station.run(count=8)
    assert (summary.passed, summary.failed) == (8, 0)
    records = store.query()
    serials = sorted(board.serial or "" for board in b.boards)
    assert sorted(r.serial or "" for r in records) == serials
    assert sorted(r.stamps[0]["value"] for r in records) == list(range(500, 508))
    by_serial = {r.serial: r for r in records}
    for board in b.boards:
        record = by_serial[board.serial]
        assert record.ok
        assert record.part == "stm32f411xe"
        assert record.image_name == "fw.dfu"
        assert record.sectors_erased == 2
        assert record.bytes_written == 16 * 1024 + 4 + 32 + 32 + 8
        assert set(record.durations) >= {"erase", "write", "verify"}
        _expected(board, [dict(s) for s in record.stamps], image)
    arrived = [e.serial or "" for e in events if e.kind == "arrived"]
    assert sorted(arrived) == sorted(board.serial or "" for board in b.boards)
    assert [e.kind for e in events if e.serial == b.boards[0].serial][-1] == "done"


def test_a_board_present_is_not_flashed_again_until_it_is_replugged(image: DfuSeFile) -> None:
    store = RecordStore.open(":memory:")
    b = bench("sim:stm32f411?count=3")  # on the bus at the start: they count as arriving
    station = Station(image, b, store=store)
    summary = station.run(timeout=5.0)  # 5 s of virtual time: many looks at the bus
    assert summary.passed == 3
    assert len(store.query()) == 3
    backend = b.backend
    assert backend is not None
    board = b.boards[1]
    backend.unplug(board)  # type: ignore[attr-defined]
    backend.plug(board)  # type: ignore[attr-defined]
    summary = station.run(timeout=5.0)
    assert [r.serial for r in summary.records] == [board.serial]


def test_unplugged_mid_write_fails_and_the_next_insertion_succeeds(image: DfuSeFile) -> None:
    store = RecordStore.open(":memory:")
    b = bench("sim:stm32f411?count=3")
    victim = b.boards[1]
    backend = b.backend
    assert backend is not None
    pulled = threading.Event()

    def on_event(event: BoardEvent) -> None:
        if event.serial != victim.serial:
            return
        if event.kind == "progress" and event.phase == "write" and event.percent >= 50:
            if not pulled.is_set():
                pulled.set()
                backend.unplug(victim)  # type: ignore[attr-defined]
        elif event.kind == "failed":
            backend.plug(victim)  # type: ignore[attr-defined]

    station = Station(
        image, b, store=store, stamps=[parse_stamp(STAMPS[0])], on_event=on_event
    )
    summary = station.run(count=4)
    assert (summary.passed, summary.failed) == (3, 1)
    failed = store.query(failed=True)
    assert [(r.serial, r.error_type) for r in failed] == [(victim.serial, "DeviceGoneError")]
    ok = [r for r in store.query() if r.ok]
    assert sorted(r.serial or "" for r in ok) == sorted(board.serial for board in b.boards)
    # the failed board's number went back and was used again: no number lost
    numbers = sorted(int(r.stamps[0]["value"]) for r in ok)
    assert numbers == [500, 501, 502]
    assert int.from_bytes(victim.peek(STAMP_BASE, 4), "little") in numbers
    data = image.targets[0].elements[0].data
    for board in b.boards:
        assert board.peek(IMAGE_BASE, len(data)) == data


def test_a_failing_board_does_not_stop_the_others(image: DfuSeFile) -> None:
    from dfuse.sim.faults import Event, Fault, FaultKind

    store = RecordStore.open(":memory:")
    b = bench("sim:stm32f411?count=3")
    b.boards[0].inject(Fault(FaultKind.ERR_WRITE, Event.WRITE, nth=3))
    summary = Station(image, b, store=store).run(count=3)
    assert (summary.passed, summary.failed) == (2, 1)
    [failed] = [r for r in summary.records if not r.ok]
    assert failed.serial == b.boards[0].serial
    assert failed.error_type == "DeviceStatusError"
    assert "failed" in summary.summary()
    assert summary.reasons()


def test_stamp_outside_writable_memory_stops_before_any_write(image: DfuSeFile) -> None:
    store = RecordStore.open(":memory:")
    b = bench("sim:stm32f411?count=2")
    station = Station(image, b, store=store, stamps=[parse_stamp("0x0807FFFC:time")])
    cancel = threading.Event()
    with pytest.raises(SafetyError, match="writable"):
        station.run(count=2, cancel=cancel)
    assert not cancel.is_set()  # the station stops itself; the caller's token is its own
    assert store.query() == []
    for board in b.boards:
        assert board.peek(IMAGE_BASE, 16) == b"\xff" * 16


def test_uid_stamp_is_refused_on_the_f411(image: DfuSeFile) -> None:
    b = bench("sim:stm32f411")
    station = Station(image, b, stamps=[parse_stamp("0x08004000:uid")])
    with pytest.raises(StampError, match="does not expose it through DFU"):
        station.run(count=1)
    assert b.boards[0].peek(IMAGE_BASE, 16) == b"\xff" * 16


def test_counter_stamps_need_a_store_and_overlaps_are_refused_up_front(image: DfuSeFile) -> None:
    with pytest.raises(StampError, match="record store"):
        Station(image, "sim:stm32f411", stamps=[parse_stamp("0x08004000:counter")])
    with pytest.raises(StampError, match="overlaps"):
        Station(image, "sim:stm32f411", stamps=[parse_stamp("0x08000010:serial")])


def test_cancel_stops_waiting(image: DfuSeFile) -> None:
    cancel = threading.Event()
    b = bench("sim:stm32f411?arrive=1000")
    timer = threading.Timer(0.2, cancel.set)
    timer.start()
    summary = Station(image, b).run(cancel=cancel)
    timer.join()
    assert summary.cancelled
    assert summary.records == []


def test_flash_board_records_one_board_from_the_library(image: DfuSeFile) -> None:
    from dfuse.errors import DeviceGoneError
    from dfuse.station import flash_board

    store = RecordStore.open(":memory:")
    b = bench("sim:stm32f411")
    board = b.boards[0]
    specs = [parse_stamp(s) for s in STAMPS]
    with b.open() as dev:
        record = flash_board(dev, image, stamps=specs, record=store, image_name="fw.dfu")
    assert record.ok
    assert record.id == store.query()[0].id
    _expected(board, [dict(s) for s in record.stamps], image)
    # a failure is recorded, then raised; its number goes back
    backend = b.backend
    assert backend is not None

    def pull(event: BoardEvent) -> None:
        if event.kind == "progress" and event.phase == "write":
            backend.unplug(board)  # type: ignore[attr-defined]

    with b.open() as dev, pytest.raises(DeviceGoneError):
        flash_board(dev, image, stamps=specs, record=store, on_event=pull)
    assert [r.result for r in store.query()] == ["ok", "failed"]
    assert store.allocate(specs[0].key, start=500) == 501
    # without a store nothing is recorded
    backend.plug(board)  # type: ignore[attr-defined]
    with b.open() as dev:
        assert flash_board(dev, image).ok
    assert len(store.query()) == 2
