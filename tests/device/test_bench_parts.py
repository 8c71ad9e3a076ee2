"""The per-part whole-flash benchmark runs (two small parts) and its numbers hold together."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_parts.py"


def test_bench_parts_small_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = importlib.util.spec_from_file_location("bench_parts", BENCH)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_parts"] = module
    spec.loader.exec_module(module)
    out = tmp_path / "bench.json"
    assert module.main(["--parts", "stm32f072,stm32l476", "--json", str(out)]) == 0
    rows = {r["part"]: r for r in json.loads(out.read_text())}
    assert set(rows) == {"stm32f072", "stm32l476"}
    for row in rows.values():
        assert row["floor_s"] <= row["dfuse_s"] <= 1.05 * row["floor_s"]
        assert row["dfuse_s"] < row["pydfu_s"]
    assert rows["stm32l476"]["erase"] == "mass"  # one mass erase instead of 512 pages
    assert rows["stm32l476"]["pydfu_s"] > 2 * rows["stm32l476"]["dfuse_s"]
    assert "dfuse/floor" in capsys.readouterr().out
