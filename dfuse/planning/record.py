"""What one run of a plan's steps has done so far, without USB traffic: the progress
report, the sectors erased and bytes written (for :class:`~dfuse.errors.CancelledError`),
the phase each step belongs to, and the bytes its reads returned. The driver
(:class:`dfuse.device.DfuDevice`) fills it in as it performs the steps."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from dfuse.errors import CancelledError
from dfuse.progress import Phase, Progress
from dfuse.protocol import plan as steps

__all__ = ["PHASES", "RunRecord"]

#: The progress phase of each kind of step (a ReadBlock reports as :attr:`RunRecord.reading`).
PHASES: dict[type, Phase] = {
    steps.EraseSector: Phase.ERASE,
    steps.MassErase: Phase.ERASE,
    steps.WriteBlock: Phase.WRITE,
    steps.WriteOptions: Phase.WRITE,
    steps.Verify: Phase.VERIFY,
    steps.ConfirmOptions: Phase.VERIFY,
    steps.Leave: Phase.LEAVE,
}


@dataclass(slots=True)
class RunRecord:
    """What one run of steps has done so far.

    Attributes:
        report: the progress report.
        cancel: once set, the run stops at its next safe point.
        erased: the sectors erased (addresses; ``"mass"`` for a mass erase).
        written: bytes written (or read, for a read).
        phase: the phase of the step running.
        reading: what a ReadBlock reports as (VERIFY, or READ for an upload).
        data: what the ReadBlocks read.
    """

    report: Progress
    cancel: threading.Event | None = None
    erased: list[int | str] = field(default_factory=list)
    written: int = 0
    phase: Phase | None = None
    reading: Phase = Phase.VERIFY
    data: bytearray = field(default_factory=bytearray)

    def enter(self, step: steps.Step) -> CancelledError | None:
        """Before ``step`` (a safe point): the error to raise when cancelled, else
        ``None`` after noting the step's phase."""
        phase = self.reading if isinstance(step, steps.ReadBlock) else PHASES.get(type(step))
        if self.cancel is not None and self.cancel.is_set():
            done = (self.phase or phase or Phase.WRITE).value
            return CancelledError(erased=tuple(self.erased), written=self.written, phase=done)
        self.phase = phase or self.phase
        return None
