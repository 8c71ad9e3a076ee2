"""Helpers for the command-line tests: run ``main(argv)`` in-process and capture its output."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from dfuse.cli import main


@dataclass(frozen=True)
class Result:
    """What one ``dfuse`` invocation returned and printed."""

    code: int
    out: str
    err: str

    def json(self) -> Any:
        """stdout parsed as the one JSON document ``--json`` prints."""
        return json.loads(self.out)


Runner = Callable[..., Result]


@pytest.fixture
def run(monkeypatch: pytest.MonkeyPatch) -> Runner:
    """``run("info", "app.hex")`` → :class:`Result` (no real USB: DFUSE_DEVICE unset)."""
    monkeypatch.delenv("DFUSE_DEVICE", raising=False)

    def _run(*argv: str) -> Result:
        out, err = io.StringIO(), io.StringIO()
        code = main(list(argv), stdout=out, stderr=err)
        return Result(code, out.getvalue(), err.getvalue())

    return _run


@pytest.fixture
def example_hex() -> Path:
    """The bundled example firmware."""
    from dfuse.data import example_hex_path

    return example_hex_path()


@pytest.fixture
def sim(monkeypatch: pytest.MonkeyPatch) -> Callable[..., Any]:
    """Make every ``sim:`` selector of the next commands use the same boards.

    ``board = sim()`` (or ``sim(Stm32F411(faults=...))``) returns the board; its
    memory then persists across ``run(...)`` calls, so a test can flash in one
    command and verify in the next, and inspect the board directly.
    """
    from dfuse.cli import session
    from dfuse.clock import VirtualClock
    from dfuse.selector import Bench
    from dfuse.sim import SimBackend, Stm32F411

    def _install(*boards: Stm32F411) -> Stm32F411:
        clock = VirtualClock()
        chosen = boards or (Stm32F411(),)
        for board in chosen:
            board.bind_clock(clock)
        backend = SimBackend(list(chosen), clock=clock)

        def fake_sim_bench(base: Any, selector: Any = None) -> Bench:
            search = selector if selector is not None else base
            return Bench(search, backend, chosen, clock)

        monkeypatch.setattr(session, "sim_bench", fake_sim_bench)
        return chosen[0]

    return _install
