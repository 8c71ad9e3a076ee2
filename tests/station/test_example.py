"""examples/custom_station.py runs and does what it says (against the simulator)."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

from dfuse.data import example_hex_path
from dfuse.station import RecordStore

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "custom_station.py"


def test_custom_station(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    example = runpy.run_path(str(EXAMPLE), run_name="example")
    assert EXAMPLE.read_text().count("\n") < 40
    log = tmp_path / "line.sqlite"
    argv = [str(example_hex_path()), "sim:stm32f411?boards=3&arrive=0.5", "--count", "3"]
    assert example["main"]([*argv, "--log", str(log)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert sorted(line.split()[2] for line in lines[:3]) == ["#1000", "#1001", "#1002"]
    assert lines[-1].startswith("3 passed, 0 failed")
    with RecordStore.open(log) as store:
        records = store.query()
    assert len(records) == 3
    assert all(r.ok for r in records)
    assert records[0].image_sha256 != ""
