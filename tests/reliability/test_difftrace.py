"""scripts/difftrace.py, the differential trace recorder: two runs of the same version
record the same conversation (it is deterministic, or comparing versions means nothing),
and a change to one transfer, one progress report or one time is reported."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "difftrace.py"


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, check=False
    )


def _edit(path: Path, index: int, key: str, delta: float) -> None:
    """Change ``key`` of the ``index``-th transfer of a trace by ``delta``."""
    lines = path.read_text().splitlines()
    at = [i for i, line in enumerate(lines) if '"transfer"' in line][index]
    record = json.loads(lines[at])
    record[key] += delta
    lines[at] = json.dumps(record)
    path.write_text("\n".join(lines) + "\n")


def test_two_runs_agree_and_every_kind_of_difference_is_reported(tmp_path: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    for out in (one, two):
        done = _run("run", str(out), "--only", "plain_tolerant")
        assert done.returncode == 0, done.stderr
    same = _run("compare", str(one), str(two))
    assert same.returncode == 0, same.stdout
    scenarios = len(list(one.glob("*.json")))
    assert scenarios > 30
    assert f"compared {scenarios} scenarios" in same.stdout
    assert " 0 differences" in same.stdout

    changed = tmp_path / "changed"
    shutil.copytree(two, changed)
    _edit(changed / "plain_tolerant.download_verify_leave.jsonl", 3, "wValue", 1)
    _edit(changed / "plain_tolerant.upload_dfu.jsonl", 2, "t", 0.001)
    outcome = changed / "plain_tolerant.download_noverify.json"
    record = json.loads(outcome.read_text())
    record["progress"][0] += 1
    outcome.write_text(json.dumps(record))
    diff = _run("compare", str(one), str(changed))
    assert diff.returncode == 1
    assert "plain_tolerant.download_verify_leave: traces differ" in diff.stdout
    assert "plain_tolerant.upload_dfu: same transfers, times differ" in diff.stdout
    assert "plain_tolerant.download_noverify: outcomes differ" in diff.stdout
    assert " 3 differences" in diff.stdout
