"""Cancelling a station at every phase: the board recovers and the record tells the truth."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from dfuse.file import DfuSeFile
from dfuse.selector import bench
from dfuse.station import BoardEvent, RecordStore, Station, parse_stamp
from tests.station.conftest import IMAGE_BASE, STAMP_BASE

COUNTER = f"0x{STAMP_BASE:08X}:counter:1:4"


@pytest.mark.parametrize("phase", ["erase", "write", "verify"])
def test_cancel_in_each_phase(image: DfuSeFile, phase: str) -> None:
    store = RecordStore.open(":memory:")
    b = bench("sim:stm32f411")
    board = b.boards[0]
    cancel = threading.Event()

    def on_event(event: BoardEvent) -> None:
        # once the phase has made some progress: the next safe point is inside it
        if event.kind == "progress" and event.phase == phase and 0 < event.percent < 100:
            cancel.set()

    summary = Station(
        image, b, store=store, stamps=[parse_stamp(COUNTER)], on_event=on_event
    ).run(count=1, cancel=cancel)
    assert summary.cancelled
    [record] = store.query()
    assert record.result == "failed"
    assert record.error_type == "CancelledError"
    assert f"during {phase}" in (record.error or "")
    data = image.targets[0].elements[0].data
    flash = board.peek(IMAGE_BASE, len(data))
    # the record says how far it got, and the board agrees
    if phase == "erase":
        assert record.sectors_erased == 1
        assert record.bytes_written == 0
    else:
        assert record.sectors_erased == 2
        assert 0 < record.bytes_written <= len(data) + 4
        written = min(record.bytes_written, len(data))
        assert flash[:written] == data[:written]
        assert flash[written:] == b"\xff" * (len(data) - written)
    # the number reserved for the cancelled board went back
    # the next run (a new station, as the next `dfuse station`) recovers the board
    summary = Station(image, b, store=store, stamps=[parse_stamp(COUNTER)]).run(count=1)
    assert summary.passed == 1
    assert board.peek(IMAGE_BASE, len(data)) == data
    assert int.from_bytes(board.peek(STAMP_BASE, 4), "little") == 1
    assert [r.result for r in store.query()] == ["failed", "ok"]


def test_ctrl_c_stops_the_station_with_exit_130(image_file: Path, tmp_path: Path) -> None:
    log = tmp_path / "r.sqlite"
    # real time (speed=1): the flash takes long enough to be interrupted in the middle
    proc = subprocess.Popen(
        [sys.executable, "-m", "dfuse", "station", str(image_file),
         "-d", "sim:stm32f411?speed=1", "--log", str(log), "--json",
         "--stamp", COUNTER],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ),
    )  # fmt: skip
    assert proc.stdout is not None
    lines = []
    for line in proc.stdout:
        lines.append(json.loads(line))
        if lines[-1]["event"] == "phase" and lines[-1]["phase"] == "write":
            proc.send_signal(signal.SIGINT)
            break
    out, err = proc.communicate(timeout=60)
    lines += [json.loads(line) for line in out.splitlines()]
    assert proc.returncode == 130, err
    failed = [e for e in lines if e["event"] == "failed"]
    assert len(failed) == 1
    assert failed[0]["record"]["error_type"] == "CancelledError"
    assert lines[-1]["event"] == "summary"
    with RecordStore.open(log) as store:
        [record] = store.query()
        assert record.error_type == "CancelledError"
        assert store.allocate(COUNTER.split(":", 1)[0] + ":counter:1:4") == 1  # given back
