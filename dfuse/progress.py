"""Progress reporting: the one phase enum that :meth:`DfuDevice.download
<dfuse.device.DfuDevice.download>` and :func:`dfuse.flash_many` share, the callback
types, and the accumulators the device layer reports through."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

__all__ = ["GangProgressCallback", "Phase", "Progress", "ProgressCallback", "Relay"]


class Phase(StrEnum):
    """What a download (or one board of a gang) is doing.

    A download reports READ (incremental read-back), ERASE, WRITE, VERIFY and LEAVE;
    a gang board also OPEN first and DONE or FAILED last.
    """

    OPEN = "open"
    READ = "read"
    ERASE = "erase"
    WRITE = "write"
    VERIFY = "verify"
    LEAVE = "leave"
    DONE = "done"
    FAILED = "failed"


#: ``progress(phase, done, total)``: bytes done out of total in the phase (leave: 0/1, 1/1).
ProgressCallback = Callable[[Phase, int, int], None]
#: ``progress(name, phase, percent)``: the same phases, per board of a gang (0.0-100.0).
GangProgressCallback = Callable[[str, Phase, float], None]


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
