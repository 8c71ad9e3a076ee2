"""The device benchmark script runs (small image) and reports consistent numbers."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_device.py"


def test_bench_device_small_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = importlib.util.spec_from_file_location("bench_device", BENCH)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_device"] = module
    spec.loader.exec_module(module)
    out = tmp_path / "bench.json"
    assert module.main(["--size", "32", "--json", str(out)]) == 0
    results = json.loads(out.read_text())
    assert [r["name"] for r in results] == [
        "dfuse, no verify",
        "dfuse, verify",
        "naive host, no verify",
    ]
    ours, naive = results[0], results[2]
    assert ours["transfers"] < naive["transfers"]
    assert ours["device_seconds"] > ours["datasheet_seconds"]
    assert "ratio naive/dfuse" in capsys.readouterr().out
