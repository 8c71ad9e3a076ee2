"""benchmarks/bench_file.py runs and writes its JSON (no timing assertions here)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_file.py"


def test_bench_file_quick_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = importlib.util.spec_from_file_location("bench_file", BENCH)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "file.json"
    assert module.main(["--smoke", "--output", str(out)]) == 0  # small inputs: it runs
    results = json.loads(out.read_text())
    parse = results["parse_1mib_4_targets_vs_zlib_crc32"]
    assert parse["file_bytes"] > 1 << 20
    assert parse["ratio"] > 0
    assert results["hex_to_dfu_vs_bincopy_load"]["ratio"] > 0
    assert results["1mib_2000_elements_vs_zlib_crc32"]["to_bytes_ratio"] > 0
    assert "ratio" in capsys.readouterr().out
