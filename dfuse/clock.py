"""Time as an injected dependency.

The device layer never calls :func:`time.sleep` directly: it waits through a
:class:`Clock`. Real hardware uses :class:`RealClock`; the simulator and the tests
use :class:`VirtualClock`, where waiting advances a counter instead of sleeping,
so a full-flash test runs in milliseconds and ``clock.now`` afterwards is the
device-bound time of the operation.

This module lives at the bottom of the layer stack (beside ``errors``) because
both the device layer and the simulator need it; ``dfuse.sim`` re-exports the
clocks for convenience.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol, runtime_checkable

__all__ = ["Clock", "RealClock", "ScaledClock", "VirtualClock"]


@runtime_checkable
class Clock(Protocol):
    """Something that tells time in seconds and can wait."""

    @property
    def now(self) -> float:
        """Seconds since an arbitrary origin (monotonic)."""
        ...

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` (non-positive values return at once)."""
        ...


class RealClock:
    """Wall-clock time: :func:`time.monotonic` and :func:`time.sleep`."""

    @property
    def now(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)

    def __repr__(self) -> str:
        return "RealClock()"


class VirtualClock:
    """Simulated time: :meth:`sleep` advances :attr:`now` and returns at once.

    Thread-safe: several host threads may share one virtual clock; time only
    moves forward.

    >>> clock = VirtualClock()
    >>> clock.sleep(0.25)
    >>> clock.now
    0.25
    """

    def __init__(self, start: float = 0.0) -> None:
        self._now = float(start)
        self._lock = threading.Lock()

    @property
    def now(self) -> float:
        return self._now

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self.advance(seconds)

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds`` (must not be negative)."""
        if seconds < 0:
            raise ValueError(f"cannot move a clock backwards by {seconds} s")
        with self._lock:
            self._now += seconds

    def advance_to(self, when: float) -> None:
        """Move time forward to ``when`` if it is later than now."""
        with self._lock:
            if when > self._now:
                self._now = when

    def __repr__(self) -> str:
        return f"VirtualClock(now={self._now:.6f})"


class ScaledClock:
    """Real time, sped up: :meth:`sleep` waits ``seconds / speed`` of wall time and
    :attr:`now` runs ``speed`` times faster than :func:`time.monotonic`.

    Shared by a simulated board and the host, it makes the simulator's datasheet
    timings visible at a watchable pace (``dfuse demo``, ``sim:stm32f411?speed=10``).
    ``speed=1`` is real time.

    >>> clock = ScaledClock(speed=1000)
    >>> clock.sleep(0.5)  # waits 0.5 ms of wall time
    >>> clock.now >= 0.5
    True
    """

    def __init__(self, speed: float = 1.0) -> None:
        if not speed > 0 or speed == float("inf"):
            raise ValueError(f"speed must be a positive finite number, got {speed}")
        self.speed = float(speed)
        self._origin = time.monotonic()

    @property
    def now(self) -> float:
        """Scaled seconds since this clock was made."""
        return (time.monotonic() - self._origin) * self.speed

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of scaled time (``seconds / speed`` of wall time)."""
        if seconds > 0:
            time.sleep(seconds / self.speed)

    def __repr__(self) -> str:
        return f"ScaledClock(speed={self.speed:g})"
