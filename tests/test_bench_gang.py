"""The gang benchmark script runs (two boards, tiny image) and reports consistent numbers."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_gang.py"


def test_bench_gang_small_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = importlib.util.spec_from_file_location("bench_gang", BENCH)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_gang"] = module
    spec.loader.exec_module(module)
    out = tmp_path / "bench.json"
    assert module.main(["--boards", "2", "--size", "2", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["boards"] == 2
    assert result["image_bytes"] == 2048
    assert result["ratio"] == pytest.approx(result["gang_seconds"] / result["one_board_seconds"])
    assert "ratio 2 boards / 1 board" in capsys.readouterr().out
