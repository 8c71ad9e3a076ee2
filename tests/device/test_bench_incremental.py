"""The incremental benchmark script runs (small image) and reports consistent numbers."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_incremental.py"


def test_bench_incremental_small_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = importlib.util.spec_from_file_location("bench_incremental", BENCH)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_incremental"] = module
    spec.loader.exec_module(module)
    out = tmp_path / "bench.json"
    assert module.main(["--size", "64", "--sector", "1", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["changed_sector"] == 1
    assert result["sectors_skipped"] == 3
    assert result["sectors_rewritten"] == 1
    assert result["incremental_bytes_written"] == 16384
    assert 0 < result["incremental_seconds"] < result["full_seconds"]
    assert result["ratio"] == pytest.approx(result["incremental_seconds"] / result["full_seconds"])
    assert "ratio incremental/full" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="16 KiB sectors"):
        module.main(["--sector", "4"])
    with pytest.raises(SystemExit, match="does not cover"):
        module.main(["--size", "16", "--sector", "1"])
