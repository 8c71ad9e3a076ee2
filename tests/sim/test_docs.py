"""The simulator's documentation examples run (docs/simulator.md and the module doctests)."""

from __future__ import annotations

import doctest
import importlib
import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "simulator.md"

MODULES = [
    "dfuse.sim.backend",
    "dfuse.sim.faults",
    "dfuse.sim.flash",
    "dfuse.sim.plain",
    "dfuse.sim.quirks",
    "dfuse.sim.rom",
    "dfuse.sim",
    "dfuse.parts",
    "dfuse.sim.stm32f411",
    "dfuse.sim.timing",
]


@pytest.mark.parametrize("name", MODULES)
def test_module_doctests(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0


def test_simulator_page_examples_run() -> None:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    assert blocks
    namespace: dict[str, object] = {}
    exec(compile(blocks[0], str(DOC), "exec"), namespace)
    # the parts example
    (parts_example,) = [b for b in blocks if 'board("stm32l476")' in b]
    exec(compile(parts_example, str(DOC), "exec"), {})
    # the fault example builds its board (the loop over fault_log needs a run first)
    (fault,) = [b for b in blocks if "Fault(" in b and "fault_log" in b]
    exec(compile(fault.split("...")[0], str(DOC), "exec"), {})
