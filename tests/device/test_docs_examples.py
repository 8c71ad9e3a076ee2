"""The incremental and protection examples of docs/device.md and the example of
docs/gang.md run against the simulator."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs"


def _blocks(page: str, marker: str) -> list[str]:
    text = (DOCS / page).read_text(encoding="utf-8")
    return [b for b in re.findall(r"```python\n(.*?)```", text, flags=re.S) if marker in b]


@pytest.mark.parametrize(
    ("page", "marker"),
    [
        ("device.md", "incremental=True"),
        ("device.md", "protect_sectors"),
        ("gang.md", "flash_many("),
    ],
)
def test_example_runs(page: str, marker: str, capsys: pytest.CaptureFixture[str]) -> None:
    (block,) = _blocks(page, marker)
    exec(compile(block, str(DOCS / page), "exec"), {"__name__": "docs_example"})
    if page == "gang.md":
        out = capsys.readouterr().out
        assert "3 of 4 board(s) flashed, 1 failed" in out
        assert "BOARD2  1-3   FAILED" in out
