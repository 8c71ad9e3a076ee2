"""The station benchmark script runs (two boards, tiny image) and reports consistent numbers."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_station.py"


def test_bench_station_small_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = importlib.util.spec_from_file_location("bench_station", BENCH)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_station"] = module
    spec.loader.exec_module(module)
    out = tmp_path / "bench.json"
    assert module.main(["--boards", "2", "--size", "2", "--no-pg", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["boards"] == 2
    assert result["image_bytes"] == 2048
    assert result["ratio"] == pytest.approx(
        result["many"]["wall_seconds"] / result["one"]["wall_seconds"]
    )
    assert result["overhead_sqlite"] == pytest.approx(
        result["many"]["replay_seconds"] / result["many"]["device_seconds"]
    )
    text = capsys.readouterr().out
    assert "ratio 2 boards / 1 board" in text
    assert "recording overhead, sqlite" in text
