"""Running a plan's steps, without USB traffic: the DNLOAD each step is (:func:`dnload_of`),
and what a run has done so far (:class:`RunRecord`: the progress report, the sectors
erased and bytes written for :class:`~dfuse.errors.CancelledError`, the phase each step
belongs to, the bytes its reads returned). The driver (:class:`dfuse.device.DfuDevice`)
performs the requests and fills the record in."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from dfuse.errors import CancelledError, ProtocolError, TransportError
from dfuse.progress import Phase, Progress
from dfuse.protocol import dfuse as cmd
from dfuse.protocol import plan as steps
from dfuse.protocol.descriptors import StatusReply
from dfuse.protocol.session import Event, Fail, Goal, SessionRules, status_error
from dfuse.transport.base import DeviceInfo

__all__ = [
    "DEFAULT_ENTRY",
    "PHASES",
    "Dnload",
    "RunRecord",
    "checked_block",
    "dnload_of",
    "explained",
    "leave_of",
    "leaves",
    "opening",
    "with_action",
    "zero_length",
]

#: Where the ST bootloader starts an application when no memory says otherwise.
DEFAULT_ENTRY = 0x08000000

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


@dataclass(frozen=True, slots=True)
class Dnload:
    """The DNLOAD that performs one step.

    Attributes:
        block: wBlockNum (0: a DfuSe command).
        payload: the data.
        action: what it does, in words (for errors).
        goal: what the GETSTATUS polls after it wait for (RESET: the device resets).
        dfuse: a DfuSe command (needs a DfuSe device).
        floor_s: the least wait before the GETSTATUS after a busy reply
            (:attr:`~dfuse.protocol.session.SessionRules.mass_erase_wait_ms`).
        event: what it is to the session (the zero-length DNLOAD: DNLOAD_ZERO).
        what: the request's name in the Transport's errors and logs.
        poll: GETSTATUS after it (:attr:`SessionRules.status_after_leave`).
    """

    block: int
    payload: bytes | memoryview
    action: str
    goal: Goal = Goal.DNLOAD
    dfuse: bool = True
    floor_s: float = 0.0
    event: Event = Event.DNLOAD
    what: str = ""
    poll: bool = True

    @property
    def may_vanish(self) -> bool:
        """The device may drop off the bus on it (it resets or leaves): not a failure."""
        return self.goal in {Goal.RESET, Goal.LEAVE}


def dnload_of(step: steps.Step, rules: SessionRules) -> Dnload | None:
    """The DNLOAD ``step`` is (``None`` for a step that is not one), under ``rules``."""
    if isinstance(step, steps.WriteBlock):
        where = "" if step.address is None else f" at 0x{step.address:08X}"
        action = f"writing block {step.block}{where} ({len(step.data)} bytes)"
        return Dnload(step.block, step.data, action, dfuse=False)
    if isinstance(step, steps.SetAddress):
        why = f" for {step.purpose}" if step.purpose else ""
        action = f"setting the address pointer to 0x{step.address:08X}{why}"
        return Dnload(0, cmd.encode_set_address(step.address), action)
    if isinstance(step, steps.EraseSector):
        action = f"erasing sector {step.index} at 0x{step.address:08X}"
        return Dnload(0, cmd.encode_erase(step.address), action)
    if isinstance(step, steps.MassErase):
        wait_s = (rules.mass_erase_wait_ms or 0) / 1000
        return Dnload(0, cmd.encode_mass_erase(), "mass erasing the flash", floor_s=wait_s)
    if isinstance(step, steps.ReadUnprotect):
        return Dnload(0, cmd.encode_read_unprotect(), "removing read protection", Goal.RESET)
    if isinstance(step, steps.WriteOptions):
        action = f"writing the option bytes at 0x{step.address:08X}"
        return Dnload(cmd.FIRST_DATA_BLOCK, step.data, action, Goal.RESET, dfuse=False)
    return None


def leave_of(
    step: steps.Leave, plan: steps.Plan, info: DeviceInfo, rules: SessionRules
) -> tuple[int | None, int, bool]:
    """``(address, block, stay)`` of leaving: DfuSe sets the address ``step`` names, or
    the start of the first memory (:attr:`SessionRules.set_address_before_leave`), and
    sends the zero-length DNLOAD as block 2; plain DFU numbers it after the last data
    block, and ``stay`` (for the read-back) when the plan verifies."""
    if not plan.dfuse:
        return None, len(plan.writes) & cmd.MAX_BLOCK, bool(plan.verifies)
    address = step.address
    if address is None and rules.set_address_before_leave:
        layouts = [a.layout for a in info.alt_settings if a.layout is not None]
        address = layouts[0].address if layouts else DEFAULT_ENTRY
    return address, cmd.FIRST_DATA_BLOCK, False


def leaves(plan: steps.Plan) -> bool:
    """Whether ``plan`` leaves DFU mode (a plain DFU device read back after its
    manifestation is closed afterwards)."""
    return any(isinstance(step, steps.Leave) for step in plan.steps)


def zero_length(block: int, rules: SessionRules) -> Dnload:
    """The zero-length DNLOAD (as block ``block``) that leaves DFU mode."""
    what = f"DNLOAD block {block} (0 bytes, leave)"
    return Dnload(block, b"", "leaving DFU mode", Goal.LEAVE, dfuse=False,
                  event=Event.DNLOAD_ZERO, what=what, poll=rules.status_after_leave)  # fmt: skip


def explained(exc: TransportError, reply: StatusReply | None, action: str) -> Fail:
    """What to raise for a failed request ``exc`` naming ``action``: what the device
    says (``reply``, the GETSTATUS after a stall) when it reports an error, to clear
    first; else ``exc`` itself."""
    if reply is not None and not reply.ok:
        return Fail(status_error(reply, action), clear=True)
    return Fail(with_action(exc, action))


def opening(device: str, busy: bool) -> str:
    """What the host was doing when opening ``device`` failed (``busy``: it answered a
    GETSTATUS first, so it may still be busy with an earlier operation)."""
    hint = (
        " (the device may still be busy with an earlier operation: wait for it to finish, or "
        "replug it, and retry)"
    )
    return f"opening {device}{hint if busy else ''}"


def with_action(exc: TransportError, action: str) -> TransportError:
    """The same kind of error, naming what the host was doing (raise it ``from exc``)."""
    new = type(exc)(f"{exc} (while {action})", cause=exc.cause, errno=exc.errno)
    new.request = exc.request
    return new


def checked_block(step: steps.ReadBlock, data: bytes) -> bytes:
    """``data`` read for ``step``; :class:`~dfuse.errors.ProtocolError` if it is short."""
    if len(data) != step.length:
        raise ProtocolError(
            f"reading 0x{step.address:08X}: asked for {step.length} bytes "
            f"(UPLOAD block {step.block}), the device sent {len(data)}"
        )
    return data


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

    def start_read(self, phase: Phase, size: int) -> int:
        """Before a read of ``size`` bytes, reported as ``phase`` (READ: counted into its
        total too; VERIFY's total is the plan's): where its bytes start in :attr:`data`."""
        self.reading = phase
        if phase is Phase.READ:
            self.report.totals[phase] = self.report.totals.get(phase, 0) + size
        return len(self.data)

    def enter(self, step: steps.Step) -> CancelledError | None:
        """Before ``step`` (a safe point): the error to raise when cancelled, else
        ``None`` after noting the step's phase."""
        phase = self.reading if isinstance(step, steps.ReadBlock) else PHASES.get(type(step))
        if self.cancel is not None and self.cancel.is_set():
            done = (self.phase or phase or Phase.WRITE).value
            return CancelledError(erased=tuple(self.erased), written=self.written, phase=done)
        self.phase = phase or self.phase
        return None

    def done(self, step: steps.Step) -> None:
        """After ``step``: what it erased and wrote, and its progress."""
        if isinstance(step, steps.WriteBlock):
            self.written += len(step.data)
            self.report.add(Phase.WRITE, len(step.data))
        elif isinstance(step, steps.EraseSector):
            self.erased.append(step.address)
            self.report.add(Phase.ERASE, step.size)
        elif isinstance(step, steps.MassErase):
            self.erased.append("mass")
        elif isinstance(step, steps.ReadBlock):
            self.written += step.length if self.reading is Phase.READ else 0
            self.report.add(self.reading, step.length)
        elif isinstance(step, steps.WriteOptions):
            self.report.add(Phase.WRITE, len(step.data))
        elif isinstance(step, steps.ConfirmOptions):
            self.report.add(Phase.VERIFY, len(step.data))
        elif isinstance(step, steps.Leave):
            self.report.add(Phase.LEAVE, 1)
