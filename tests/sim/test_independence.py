"""Issue 17.4: the simulator borrows no host logic. It may share facts (the part table, the
DFU constants and the status/descriptor codecs), never the host's parsers or drivers: a bug
written by the host must not be "confirmed" by the simulator."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import dfuse.sim

SIM_DIR = Path(dfuse.sim.__file__).parent
FORBIDDEN = ("dfuse.layout", "dfuse.optionbytes", "dfuse.device", "dfuse.transport", "dfuse.file")
ALLOWED = (
    "dfuse.sim",
    "dfuse.parts",
    "dfuse.clock",
    "dfuse.errors",
    "dfuse.protocol.constants",
    "dfuse.protocol.descriptors",
    # the trace format (reading and checking trace files), shared by the recorder and the
    # replayer (dfuse.sim.replayer): a codec of facts, like the descriptors
    "dfuse.trace.format",
)


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out: list[str] = []
    for node in ast.walk(tree):  # every import, also those inside functions
        if isinstance(node, ast.Import):
            out.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append(node.module)
    return out


@pytest.mark.parametrize("path", sorted(SIM_DIR.glob("*.py")), ids=lambda p: p.name)
def test_no_sim_module_imports_host_logic(path: Path) -> None:
    for name in _imports(path):
        if name == "dfuse" or name.startswith("dfuse."):
            assert not name.startswith(FORBIDDEN), f"{path.name} imports {name}"
            assert name.startswith(ALLOWED), f"{path.name} imports {name}, not a shared fact"


def test_importing_the_simulator_loads_no_host_module() -> None:
    """Transitively too: a fresh interpreter that imports dfuse.sim and builds a board of
    every part has none of the host's modules loaded. (The ``dfuse`` package's own
    ``__init__`` re-exports the whole public API, host included; it is replaced by a bare
    package here so that only what the simulator itself imports gets loaded.)"""
    code = (
        "import sys, types\n"
        f"pkg = types.ModuleType('dfuse'); pkg.__path__ = [{str(SIM_DIR.parent)!r}]\n"
        "sys.modules['dfuse'] = pkg\n"
        "import dfuse.sim as s\n"
        "[s.board(n) for n in {p.name for p in s.PARTS.values()}]\n"
        f"bad = sorted(m for m in sys.modules if m.startswith({FORBIDDEN!r}))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == ""
