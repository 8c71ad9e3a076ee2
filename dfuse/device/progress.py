"""Progress reporting of device operations: the phases a download goes through, the
callback type, and the accumulators the device layer reports through."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

__all__ = ["Phase", "Progress", "ProgressCallback", "Relay"]


class Phase(StrEnum):
    """What a download is doing, as the progress callback reports it."""

    ERASE = "erase"
    WRITE = "write"
    VERIFY = "verify"
    LEAVE = "leave"
    READ = "read"


#: ``progress(phase, done, total)``: bytes done out of total in the phase (leave: 0/1, 1/1).
ProgressCallback = Callable[[Phase, int, int], None]


@dataclass(slots=True)
class Progress:
    """Running totals per phase, reported to ``callback`` (if any) as they grow.

    Attributes:
        callback: where ``(phase, done, total)`` goes (``None``: nowhere).
        totals: the expected total per phase (a phase without one reports done as total).
        done: the bytes done so far per phase.
    """

    callback: ProgressCallback | None
    totals: dict[Phase, int] = field(default_factory=dict)
    done: dict[Phase, int] = field(default_factory=dict)

    def add(self, phase: Phase, n: int) -> None:
        """Count ``n`` more bytes done in ``phase`` and report the new total."""
        if self.callback is None:
            return
        value = self.done.get(phase, 0) + n
        self.done[phase] = value
        self.callback(phase, value, self.totals.get(phase, value))


@dataclass(slots=True)
class Relay:
    """A progress callback for a sub-operation that adds its increments to ``report``."""

    report: Progress
    phase: Phase
    seen: int = 0

    def __call__(self, _phase: Phase, done: int, _total: int) -> None:
        self.report.add(self.phase, done - self.seen)
        self.seen = done
