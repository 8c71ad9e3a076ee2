"""The trace format is the bottom of the trace layer, and the replayer lives in the
simulator: neither may import the host's transport, device, file or layout layers."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2] / "dfuse"
FORBIDDEN = ("dfuse.transport", "dfuse.device", "dfuse.file", "dfuse.layout", "dfuse.selector")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


@pytest.mark.parametrize(
    ("module", "allowed"),
    [
        ("trace/format.py", ("dfuse.errors",)),
        ("trace/__init__.py", ("dfuse.trace",)),
        ("sim/replayer.py", None),
    ],
)
def test_the_trace_format_and_the_replayer_import_downward_only(
    module: str, allowed: tuple[str, ...] | None
) -> None:
    imports = {name for name in _imports(ROOT / module) if name.startswith("dfuse")}
    assert not {name for name in imports if name.startswith(FORBIDDEN)}
    if allowed is not None:
        assert all(name.startswith(allowed) for name in imports), imports
