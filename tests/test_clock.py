"""ScaledClock: real time sped up by a factor (the demo's and ``sim:…?speed=`` clock)."""

from __future__ import annotations

import math
import time

import pytest

from dfuse.clock import Clock, ScaledClock


def test_is_a_clock() -> None:
    assert isinstance(ScaledClock(), Clock)
    assert repr(ScaledClock(2.5)) == "ScaledClock(speed=2.5)"


def test_sleep_waits_the_scaled_share_of_wall_time() -> None:
    clock = ScaledClock(speed=100.0)
    wall = time.monotonic()
    before = clock.now
    clock.sleep(1.0)  # 10 ms of wall time
    waited = time.monotonic() - wall
    assert 0.009 <= waited < 0.5
    # scaled time moved by about speed x the wall time that passed
    assert clock.now - before >= 1.0 - 1e-6
    assert clock.now - before == pytest.approx(waited * 100.0, rel=0.5)


def test_now_is_monotonic_and_starts_near_zero() -> None:
    clock = ScaledClock(speed=10.0)
    first = clock.now
    assert 0.0 <= first < 1.0
    assert clock.now >= first


def test_non_positive_sleep_returns_at_once() -> None:
    clock = ScaledClock(speed=0.001)  # one scaled second would be 1000 s of wall time
    wall = time.monotonic()
    clock.sleep(0)
    clock.sleep(-5)
    assert time.monotonic() - wall < 0.5


@pytest.mark.parametrize("speed", [0, -1.0, math.nan, math.inf])
def test_rejects_a_speed_that_is_not_positive_and_finite(speed: float) -> None:
    with pytest.raises(ValueError, match="speed must be a positive finite number"):
        ScaledClock(speed)


def test_the_docstring_examples_run() -> None:
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module("dfuse.clock"))
    assert result.attempted > 0
    assert result.failed == 0
