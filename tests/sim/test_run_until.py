"""SimBackend.run_until: simulated boards finish on their own after the host lets go."""

from __future__ import annotations

import pytest

from dfuse.device import DfuDevice
from dfuse.sim import SimBackend, Stm32F411, VirtualClock


def _leave_and_close(board: Stm32F411, backend: SimBackend) -> None:
    with DfuDevice.open(backend=backend, clock=backend.clock) as dev:
        dev.download(bytes(range(256)) * 4, address=0x08000000)
        dev.leave()


def test_a_board_finishes_leaving_only_when_the_bus_runs() -> None:
    board = Stm32F411()
    backend = SimBackend([board])
    _leave_and_close(board, backend)
    before = backend.clock.now
    assert backend.run_until(lambda: bool(board.app_starts)) is True
    assert board.app_starts[-1].address == 0x08000000
    assert not board.connected  # it left the bus for its application
    assert backend.clock.now >= before


def test_returns_at_once_when_the_condition_already_holds() -> None:
    clock = VirtualClock()
    backend = SimBackend([Stm32F411()], clock=clock)
    assert backend.run_until(lambda: True) is True
    assert clock.now == 0.0


def test_gives_up_after_the_timeout_of_clock_time() -> None:
    clock = VirtualClock()
    backend = SimBackend([Stm32F411()], clock=clock)
    calls = []

    def never() -> bool:
        calls.append(clock.now)
        return False

    assert backend.run_until(never, timeout=0.5, step=0.1) is False
    assert clock.now == pytest.approx(0.5)
    assert len(calls) == 6  # at 0.0, 0.1, ..., 0.5


@pytest.mark.parametrize("step", [0, -0.01])
def test_rejects_a_step_that_is_not_positive(step: float) -> None:
    with pytest.raises(ValueError, match="step must be positive"):
        SimBackend([]).run_until(lambda: True, step=step)


def test_the_docstring_examples_run() -> None:
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module("dfuse.sim.backend"))
    assert result.attempted > 0
    assert result.failed == 0
