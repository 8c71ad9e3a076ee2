"""`dfuse station --count 1 --trace FILE` records the one board's session (and it replays);
more boards than one are refused, as `flash --all --trace` is."""

from __future__ import annotations

from pathlib import Path

from dfuse.data import example_hex_path as blinky_path
from dfuse.sim import replay
from dfuse.trace.format import read_trace

from .conftest import run_cli


def test_station_with_one_board_is_traced_and_replays(tmp_path: Path) -> None:
    path = tmp_path / "station.jsonl"
    log = tmp_path / "records.sqlite"
    result = run_cli(
        "station", str(blinky_path()), "-d", "sim:stm32f411", "--count", "1",
        "--log", str(log), "--trace", str(path), "-q",
    )  # fmt: skip
    assert result.code == 0, result.err
    trace = read_trace(path)
    assert len(trace.transfers) > 50  # erase, write, verify of the example image
    assert trace.end.transfers == len(trace.transfers)
    report = replay(path)
    assert report.ok, report.summary()


def test_station_trace_of_several_boards_is_refused(tmp_path: Path) -> None:
    for count in ((), ("--count", "2")):
        result = run_cli(
            "station", str(blinky_path()), "-d", "sim:stm32f411", *count,
            "--log", str(tmp_path / "r.sqlite"), "--trace", str(tmp_path / "t.jsonl"),
        )  # fmt: skip
        assert result.code == 2
        assert "--count 1" in result.err
        assert not (tmp_path / "t.jsonl").exists()
