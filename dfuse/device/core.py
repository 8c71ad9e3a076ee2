"""The :class:`DfuDevice` driver: open, close, reconnect and detach; one loop that performs
what a verb's flow (:mod:`dfuse.planning.flows`) asks for, through the
:class:`~dfuse.protocol.session.Session` and the Transport, sleeping on the injected
Clock; the public verbs, each of which builds a plan or a flow and drives it. It
decides nothing itself.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Iterable
from types import TracebackType
from typing import NoReturn, Self, TypeVar, Unpack, cast

from dfuse.clock import Clock, RealClock
from dfuse.errors import DeviceGoneError, StallError, TransferTimeoutError, TransportError
from dfuse.file.model import DfuSeFile, Target
from dfuse.layout import MemoryLayout, Sector
from dfuse.optionbytes import OptionBytes, OtpArea
from dfuse.parts import Part
from dfuse.planning import download as dl
from dfuse.planning import flows, reading, record
from dfuse.planning import lifecycle as life
from dfuse.planning.download import DownloadOptions, Image, OptionFields, TargetPlan
from dfuse.planning.protection import DEFAULT_RESET_WAIT_S
from dfuse.planning.record import DEFAULT_ENTRY, RunRecord
from dfuse.planning.rules import follow, rules_for
from dfuse.progress import Progress, ProgressCallback
from dfuse.protocol import plan as steps
from dfuse.protocol.constants import Request, State
from dfuse.protocol.descriptors import FunctionalDescriptor, StatusReply
from dfuse.protocol.dfuse import MAX_BLOCK
from dfuse.protocol.plan import Plan
from dfuse.protocol.session import Done, Event, Fail, Goal, Send, Session, SessionRules, Wait
from dfuse.trace.recorder import TraceRecorder, traced
from dfuse.transport.base import AltSetting, DeviceInfo, DeviceMode, Transport
from dfuse.transport.discovery import open_one

__all__ = ["DEFAULT_BUSY_TIMEOUT_S", "DEFAULT_ENTRY", "DfuDevice"]

_log = logging.getLogger(__name__)
T = TypeVar("T")

#: Longest a device may stay busy (dfuDNBUSY) on one request before the host gives up.
DEFAULT_BUSY_TIMEOUT_S = SessionRules().busy_timeout_s


class DfuDevice:
    """A DFU (DfuSe) device opened for flashing; a context manager (closed on exit).

    Use :meth:`open` to find and open a USB device, or wrap any
    :class:`~dfuse.transport.base.Transport`. ``rules`` says how to talk to it
    (:class:`~dfuse.protocol.session.SessionRules`: a part's quirks);
    ``transfer_size`` overrides wTransferSize (plain DFU only).

    Attributes:
        transport: the transport requests go through.
        clock: the clock polls wait on.
        max_block: the highest wBlockNum used before the address pointer is set again.
        initial_status: the GETSTATUS reply found when the device was opened
            (``None`` for a device in run-time mode).
    """

    def __init__(self, transport: Transport, clock: Clock | None = None, *,
                 alt: int | str | None = None, busy_timeout: float | None = None,
                 transfer_size: int | None = None, max_block: int = MAX_BLOCK,
                 rules: SessionRules | None = None) -> None:  # fmt: skip
        life.check_max_block(max_block)
        self.transport, self.max_block = transport, max_block
        self.clock: Clock = clock if clock is not None else RealClock()
        self._given, self._busy_timeout = rules, busy_timeout
        self._session = Session(rules_for(None, rules, busy_timeout))
        self._transfer_size = reading.transfer_size_for(transport.info, transfer_size)
        self._adopt(transport, alt)

    def _adopt(self, transport: Transport, alt: int | str | None = None) -> None:
        """Take over ``transport`` (opened, or the device re-enumerated); reach dfuIDLE;
        know the part it is (:func:`dfuse.parts.identify_info`) and follow its rules."""
        info, self._part = transport.info, None
        self.transport, self._info, self._closed, self._suspect = transport, info, False, False
        self._session.state = State.dfuIDLE
        self._alt = info.alt_settings[0] if info.alt_settings else None
        self.initial_status: StatusReply | None = None
        if info.mode is not DeviceMode.DFU:
            return
        try:
            self.initial_status = self._to_idle()
            if self.is_dfuse and any(a.name is None for a in info.alt_settings):
                transport.refresh()  # idle now: the strings it was too busy to send before
        except TransportError as exc:
            busy = self.initial_status is not None
            raise record.with_action(exc, record.opening(info.describe(), busy)) from exc
        self._part, self._info = follow(transport.info)
        self._session.rules = rules_for(self._part, self._given, self._busy_timeout)
        self._alt = self._info.alt_settings[0] if self._info.alt_settings else None
        if alt is not None:
            self.select_alt(alt)

    @classmethod
    def open(cls, *, vid: int | None = None, pid: int | None = None, serial: str | None = None,
             path: str | None = None, alt: int | str | None = None, backend: object = None,
             clock: Clock | None = None, ids: Iterable[tuple[int | None, int | None]] = (),
             busy_timeout: float | None = None, rules: SessionRules | None = None,
             trace: TraceRecorder | None = None) -> DfuDevice:  # fmt: skip
        """Find exactly one DFU device matching the selectors, open it and bring it to
        dfuIDLE (:func:`~dfuse.transport.discovery.open_one`: ``backend`` is any pyusb
        backend, e.g. a :class:`dfuse.sim.SimBackend`; ``clock`` defaults to its own).
        ``trace`` records the session (default: the recorder of an enclosing
        :func:`dfuse.tracing` block, if any)."""
        opened, clock = open_one(vid=vid, pid=pid, serial=serial, path=path,
                                 backend=backend, clock=clock, ids=ids)  # fmt: skip
        transport = traced(opened, clock, trace)
        try:
            return cls(transport, clock, alt=alt, busy_timeout=busy_timeout, rules=rules)
        except BaseException:
            transport.close()
            raise

    def close(self) -> None:
        """Release the interface (idempotent)."""
        if not self._closed:
            self._closed = True
            self.transport.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:  # fmt: skip
        self.close()

    def __repr__(self) -> str:
        return f"DfuDevice({self.info.describe()}, alt={self.alt})"

    # ------------------------------------------------------------------ facts

    @property
    def info(self) -> DeviceInfo:
        """The device record (VID/PID, serial, path, alternate settings, ...); where the
        part's ROM over-reports its flash (GD32VF103), with the physical layout."""
        return self._info

    @property
    def part(self) -> Part | None:
        """The part the device is, from its USB identity and alt strings
        (:func:`dfuse.parts.identify`); ``None`` for a device the database does not know
        (it is then driven from its alt strings alone). Its rules: :attr:`rules`."""
        return self._part

    @property
    def functional(self) -> FunctionalDescriptor | None:
        """The DFU functional descriptor."""
        return self.info.functional

    @property
    def transfer_size(self) -> int:
        """wTransferSize: the largest data block per DNLOAD/UPLOAD."""
        return self._transfer_size

    @property
    def is_dfuse(self) -> bool:
        """True for an ST DfuSe device (bcdDFUVersion 0x011A)."""
        return self.functional is not None and self.functional.is_dfuse

    @property
    def closed(self) -> bool:
        """True once the device is released: :meth:`close`, or it reset or left DFU mode."""
        return self._closed

    @property
    def alt(self) -> int | None:
        """The selected alternate setting's number."""
        return self._alt.number if self._alt is not None else None

    @property
    def layout(self) -> MemoryLayout | None:
        """The memory layout of the selected alternate setting (``None`` if it has none)."""
        return self._alt.layout if self._alt is not None else None

    @property
    def initial_state(self) -> State | int | None:
        """The DFU state found when the device was opened (``None`` in run-time mode)."""
        return self.initial_status.state if self.initial_status is not None else None

    @property
    def state(self) -> State | int:
        """The DFU state the host last saw (no USB traffic; see :meth:`status`)."""
        return self._session.state

    @property
    def rules(self) -> SessionRules:
        """How the host talks to this device (settable)."""
        return self._session.rules

    @rules.setter
    def rules(self, rules: SessionRules) -> None:
        self._given = self._session.rules = rules

    @property
    def busy_timeout(self) -> float:
        """Longest total wait (seconds) for one busy operation (settable)."""
        return self._session.rules.busy_timeout_s

    @busy_timeout.setter
    def busy_timeout(self, seconds: float) -> None:
        self.rules = dataclasses.replace(self.rules, busy_timeout_s=seconds)

    @property
    def status_retries(self) -> int:
        """Stalled GETSTATUS retried so far (:attr:`SessionRules.status_stall_retries`)."""
        return self._session.stall_retries

    # ------------------------------------------------------------------ requests

    def status(self) -> StatusReply:
        """GETSTATUS."""
        reply = StatusReply.parse(self.transport.control_in(Request.GETSTATUS, 0, StatusReply.SIZE))
        self._session.reported(reply)
        return reply

    def get_state(self) -> State | int:
        """GETSTATE."""
        return self._session.got_state(self.transport.control_in(Request.GETSTATE, 0, 1))

    def clear_status(self) -> None:
        """CLRSTATUS (dfuERROR → dfuIDLE)."""
        self.transport.control_out(Request.CLRSTATUS, 0)
        self._session.state = State.dfuIDLE

    def abort(self) -> None:
        """ABORT (back to dfuIDLE from the idle states of a transfer)."""
        self.transport.control_out(Request.ABORT, 0)
        self._session.state = State.dfuIDLE

    def _recover(self, request: Request, action: str | None = None, raw: bool = False) -> None:
        """CLRSTATUS or ABORT; a failure raises (:meth:`_failed`, naming ``action``), or
        is only logged without ``action`` (clearing after an error, best effort)."""
        try:
            (self.clear_status if request is Request.CLRSTATUS else self.abort)()
        except TransportError as exc:
            if action is None:
                _log.debug("%s after an error failed: %s", request.name, exc)
            else:
                self._failed(exc, action, raw)

    def _ready(self, event: Event, action: str) -> None:
        """Send what the session says must come before ``event`` (ABORT); from a state
        it has no rule for, bring the device back to dfuIDLE first."""
        needed = self._session.before(event)
        if not needed and not self._session.allows(event):
            self._to_idle()
        for request in needed:
            self._recover(request, action)

    def select_alt(self, alt: int | str) -> AltSetting:
        """Select an alternate setting by number or name (SET_INTERFACE)."""
        setting = self.info.alt(alt)
        action = f"selecting alternate setting {setting.number} ({setting.name or 'no name'})"
        try:
            if self.state != State.dfuIDLE:
                self.abort()
            self.transport.set_alt_setting(setting.number)
        except TransportError as exc:
            self._failed(exc, action)
        self._alt = setting
        return setting

    def _failed(self, exc: TransportError, action: str, raw: bool = False) -> NoReturn:
        """Raise for a failed request: what the device says after a stall, or ``exc``
        naming ``action`` (``raw``: ``exc`` itself, while reaching dfuIDLE). The next
        operation first brings the device back to dfuIDLE."""
        if raw:
            raise exc
        self._suspect = True
        try:
            reply = self.status() if isinstance(exc, StallError) else None
        except TransportError:
            reply = None
        self._fail(record.explained(exc, reply, action), exc)

    def _fail(self, decision: Fail, cause: BaseException | None = None) -> NoReturn:
        if decision.clear:
            self._recover(self._session.recovery())
        elif decision.unsettled:
            self._suspect = True  # the next operation waits it out first
        raise decision.error from cause

    def _await(self, goal: Goal, action: str, floor_s: float = 0.0) -> Done:
        """GETSTATUS until the session says the operation is over (the one poll loop)."""
        tolerant = life.is_tolerant(self.functional)
        self._session.start(goal, action, self.clock.now, dfuse=self.is_dfuse, tolerant=tolerant,
                            floor_s=floor_s)  # fmt: skip
        while True:
            sent = self.clock.now
            try:
                decision = self._session.on_status(self.status(), self.clock.now, sent)
            except TransportError as exc:
                decision = self._session.on_status_failed(exc)
                if isinstance(decision, Fail):
                    self._failed(exc, action, raw=goal is Goal.IDLE)
            if isinstance(decision, Wait):
                self.clock.sleep(decision.seconds)
            elif isinstance(decision, Send):
                self._recover(decision.request, action, raw=goal is Goal.IDLE)
            elif isinstance(decision, Done):
                return decision
            else:
                self._fail(decision)

    def _to_idle(self) -> StatusReply:
        """Bring the device to dfuIDLE from whatever state it is in; return what was found."""
        reply = self._await(Goal.IDLE, "bringing the device to dfuIDLE").reply
        assert reply is not None
        return reply

    def _prepare(self, action: str, *, dfuse: bool = False) -> None:
        life.check_usable(action, closed=self._closed, mode=self.info.mode,
                          needs_dfuse=dfuse and not self.is_dfuse)  # fmt: skip
        if self._suspect:
            self._suspect = False
            _log.info("the last operation failed: bringing the device back to dfuIDLE")
            self._to_idle()

    def _send(self, request: record.Dnload) -> Done:
        """DNLOAD one block (or command), then poll until the session says it is done."""
        action = request.action
        self._prepare(f"go on {action}", dfuse=request.dfuse)
        self._ready(request.event, action)
        try:
            self.transport.control_out(Request.DNLOAD, request.block, request.payload,
                                       what=request.what)  # fmt: skip
        except TransportError as exc:
            if request.may_vanish and isinstance(exc, DeviceGoneError):
                return Done(None, gone=True)
            self._failed(exc, action)
        self._session.sent(request.event)
        return self._await(request.goal, action, request.floor_s) if request.poll else Done(None)

    def set_address(self, address: int, why: str = "") -> None:
        """DfuSe Set Address Pointer."""
        plan = Plan((steps.SetAddress(address, why),), self._transfer_size)
        self._follow(flows.drive(self, plan))

    # ------------------------------------------------------------------ the one loop

    def _follow(self, flow: flows.Flow[T]) -> T:
        """Perform each operation ``flow`` asks for, sending it the result (or throwing in
        the error), until it returns: the one loop every verb goes through."""
        result: object = None
        error: BaseException | None = None
        while True:
            try:
                op = flow.send(result) if error is None else flow.throw(error)
            except StopIteration as end:
                return cast(T, end.value)
            try:
                result, error = self._perform(op), None
            except BaseException as exc:
                result, error = None, exc

    def _perform(self, op: flows.Op) -> object:
        """Perform one operation a flow asks for; the result goes back to the flow."""
        match op:
            case record.Dnload():
                return self._send(op)
            case flows.Upload(block, length, action):
                return self._upload_block(block, length, action)
            case steps.SelectAlt(alt):
                return self.select_alt(alt)
            case flows.Prepare(action, dfuse):
                self._prepare(action, dfuse=dfuse)
            case flows.Ready(event, action):
                self._ready(event, action)
            case flows.Sleep(seconds):
                self.clock.sleep(seconds)
            case steps.AwaitReset(wait_s):
                self.reconnect(wait_s)
            case flows.IDLE if not self._closed and self.info.mode is DeviceMode.DFU:
                self._to_idle()
            case flows.CLOSE:
                self.close()
            case flows.RESET:
                try:
                    self.transport.reset()
                except TransportError as exc:
                    _log.debug("reset after manifestation: %s", exc)
        return None

    # ------------------------------------------------------------------ download

    def plan(self, image: Image, options: DownloadOptions | None = None, *,
             progress: ProgressCallback | None = None, **changes: Unpack[OptionFields],
             ) -> tuple[TargetPlan, ...]:  # fmt: skip
        """Plan a download without writing (a dry run: ``print(*dev.plan(img))``); takes
        what :meth:`download` takes and refuses what it refuses, before any writing.
        ``incremental=True`` reads the image's ranges back first (:attr:`Phase.READ`)."""
        return self._plan(image, dl.resolve_options(options, changes), Progress(progress))

    def _plan(self, image: Image, opts: DownloadOptions, report: Progress
              ) -> tuple[TargetPlan, ...]:  # fmt: skip
        def read_back(alt: int, ranges: list[tuple[int, int]]) -> list[tuple[int, bytes]]:
            run = RunRecord(report, opts.cancel)
            return self._follow(flows.read(self, [(alt, ranges)], run))[0]

        return dl.plan_image(image, opts, self.info, alt=self.alt, layout=self.layout,
                             transfer_size=self._transfer_size, max_block=self.max_block,
                             part=self._part, read_back=read_back, read_otp=self.read_otp,
                             read_options=self.read_option_bytes)  # fmt: skip

    def download(self, image: Image, options: DownloadOptions | None = None, *,
                 progress: ProgressCallback | None = None, **changes: Unpack[OptionFields],
                 ) -> tuple[TargetPlan, ...]:  # fmt: skip
        """Write ``image``: plan (every safety check first), erase, write, verify by
        read-back, optionally leave DFU mode; returns the executed plans.

        ``image``: a :class:`~dfuse.file.DfuSeFile` (each target to its alternate
        setting), a :class:`~dfuse.file.Target`, a :class:`~dfuse.file.DfuFile`, or
        raw bytes (with ``address``). ``options``: a
        :class:`~dfuse.planning.DownloadOptions`, whose fields may also be given as
        keywords (``verify=``, ``force=``, ``leave=``, ``incremental=``, ``cancel=``,
        ...), which win. ``progress(phase, done, total)`` sees READ (incremental), ERASE,
        WRITE, VERIFY and LEAVE. A device running its application is detached first.
        Once ``cancel`` is set, the download stops at the next step (after the current
        block or erase), the device is brought back to dfuIDLE and
        :class:`~dfuse.errors.CancelledError` says what was erased and written. Guarded
        memories (option bytes, OTP) are refused with :class:`~dfuse.errors.SafetyError`
        (its ``override`` names the keyword that allows them); see docs/api.md.
        """
        opts = dl.resolve_options(options, changes)
        if not self._closed and self.info.mode is DeviceMode.RUNTIME:
            _log.info("%s runs its application: detaching", self.info.describe())
            self._adopt(self.detach().transport)
        self._prepare("download")
        plans = self._plan(image, opts, Progress(progress))
        run = RunRecord(Progress(progress, reading.totals(p.plan for p in plans)), opts.cancel)
        self._follow(flows.targets(self, plans, run))
        return plans

    def execute(self, plan: Plan, *, progress: ProgressCallback | None = None,
                cancel: threading.Event | None = None) -> None:  # fmt: skip
        """Run a plan's steps on the selected alternate setting (a plan for another kind
        of device, or cut to another transfer size: UsageError before any traffic)."""
        reading.check_plan(plan, is_dfuse=self.is_dfuse, transfer_size=self._transfer_size)
        self._prepare("download")
        self._follow(flows.drive(self, plan, progress, cancel))

    def erase(self, sectors: Iterable[Sector | int] | str, *,
              progress: ProgressCallback | None = None) -> None:  # fmt: skip
        """Erase sectors (``Sector`` objects, or addresses in them) of the selected
        alternate setting, each once in address order, or ``"all"`` (mass erase). Sectors
        not erasable are refused (SafetyError) before any traffic; on an STM32F2/F4, a
        mass erase while any sector is write-protected (nWRP) too, after reading the
        option bytes (the flash refuses it while the ROM reports it done)."""
        self._prepare("erase", dfuse=True)
        plan = reading.erase_plan(self.layout, sectors, self._transfer_size)
        dl.guard_mass_erase(self.layout, plan, self._part, self.info, self.read_option_bytes)
        self._follow(flows.drive(self, plan, progress))

    def mass_erase(self) -> None:
        """Erase the whole flash (DfuSe ``0x41`` without an address)."""
        self.erase("all")

    # ------------------------------------------------------------------ protection

    def read_unprotect(self, *, confirm: bool = False, reconnect: bool = False,
                       wait_s: float = DEFAULT_RESET_WAIT_S) -> OptionBytes | None:  # fmt: skip
        """Remove read protection (DfuSe ``0x92``; needs ``confirm=True``): the device
        erases its flash and resets. This object is closed afterwards, unless
        ``reconnect``: then the device is waited for (``wait_s``), reopened in place, and
        its option bytes (RDP level 0) returned."""
        return self._follow(flows.read_unprotect(self, confirm=confirm, reconnect=reconnect,
                                                 wait_s=wait_s))  # fmt: skip

    def reconnect(self, wait_s: float = DEFAULT_RESET_WAIT_S) -> None:
        """After the device reset itself: wait up to ``wait_s`` for it to re-enumerate,
        reopen it in place, reach dfuIDLE and select the same alternate setting again
        (:class:`~dfuse.errors.DeviceGoneError` when it does not come back)."""
        previous, deadline = self.alt, self.clock.now + wait_s
        self.close()
        while True:
            transport = self.transport.reopen(max(deadline - self.clock.now, 0.0), self.clock)
            try:
                self._adopt(transport)
                break
            except (DeviceGoneError, StallError, TransferTimeoutError) as exc:
                transport.close()
                who = self.info.describe()
                self.clock.sleep(life.reopen_pause(exc, self.clock.now, deadline, wait_s, who))
        if (again := life.reselect(previous, self.info, self.alt)) is not None:
            self.select_alt(again)

    def read_option_bytes(self) -> OptionBytes:
        """Read the option-byte block (the ``Option Bytes`` alternate setting)."""
        return self._follow(flows.read_options(self))

    def write_option_bytes(self, options: OptionBytes, *, confirm: bool = False,
                           allow_permanent_rdp2: bool = False) -> None:  # fmt: skip
        """Write the option-byte block; the device applies it and resets (closed after;
        :meth:`change_option_bytes` waits and confirms). Level 2 needs
        ``allow_permanent_rdp2``, lowering to 0 ``confirm``."""
        self._follow(flows.write_options(self, options, confirm=confirm,
                                         rdp2=allow_permanent_rdp2))  # fmt: skip

    def change_option_bytes(self, options: OptionBytes, *, confirm: bool = False,
                            allow_permanent_rdp2: bool = False,
                            wait_s: float = DEFAULT_RESET_WAIT_S) -> OptionBytes:  # fmt: skip
        """Write the option bytes, wait for the device to come back (``wait_s``), reopen
        it and confirm them; returns them (nothing is written when the device holds them
        already). Level 2 needs ``allow_permanent_rdp2`` (the device never comes back:
        returned unconfirmed), lowering 1 → 0 ``confirm``; VerifyError when it comes
        back with other values, DeviceGoneError when it does not come back."""
        return self._follow(flows.change_options(self, options, confirm=confirm,
                            rdp2=allow_permanent_rdp2, wait_s=wait_s))  # fmt: skip

    def protect_sectors(self, sectors: Iterable[int], *,
                        wait_s: float = DEFAULT_RESET_WAIT_S) -> OptionBytes:  # fmt: skip
        """Write-protect flash ``sectors`` too (an option-byte change, confirmed)."""
        return self._follow(flows.protect_sectors(self, sectors, True, wait_s))

    def unprotect_sectors(self, sectors: Iterable[int], *,
                          wait_s: float = DEFAULT_RESET_WAIT_S) -> OptionBytes:  # fmt: skip
        """Remove write protection from flash ``sectors`` (an option-byte change)."""
        return self._follow(flows.protect_sectors(self, sectors, False, wait_s))

    def set_read_protection(self, level: int, *, confirm: bool = False,
                            allow_permanent_rdp2: bool = False,
                            wait_s: float = DEFAULT_RESET_WAIT_S) -> OptionBytes:  # fmt: skip
        """Set the read-protection level (0, 1 or 2): see :meth:`change_option_bytes`."""
        return self._follow(flows.set_read_protection(self, level, confirm=confirm,
                            rdp2=allow_permanent_rdp2, wait_s=wait_s))  # fmt: skip

    def read_otp(self) -> OtpArea:
        """Read the OTP area (16 blocks of 32 bytes and their 16 lock bytes)."""
        return self._follow(flows.read_otp(self))

    def write_otp(self, block: int, data: bytes, *, lock: bool = False,
                  confirm: bool = False) -> OtpArea:  # fmt: skip
        """Program OTP ``block`` (0-15) with 32 bytes, optionally lock it (``confirm``),
        and return the area read back. A locked block, or a 0 bit back to 1, is refused
        (SafetyError) before anything is written."""
        return self._follow(flows.write_otp(self, block, bytes(data), lock=lock, confirm=confirm))

    def lock_otp(self, block: int, *, confirm: bool = False) -> OtpArea:
        """Lock OTP ``block`` (0-15) for good; needs ``confirm=True``."""
        return self._follow(flows.write_otp(self, block, None, lock=True, confirm=confirm))

    # ------------------------------------------------------------------ upload / verify

    def upload(self, address: int, length: int, *, progress: ProgressCallback | None = None,
               cancel: threading.Event | None = None) -> bytes:  # fmt: skip
        """Read ``length`` bytes at ``address`` (DfuSe: Set Address, ABORT, UPLOAD blocks).
        A negative length, or a range past the end of the selected memory, is refused
        (UsageError) before any request; ``cancel`` stops it between blocks."""
        reading.check_upload(self.layout, address, length, is_dfuse=self.is_dfuse)
        job = (None, [(address, length)])
        return self._follow(flows.read(self, [job], RunRecord(Progress(progress), cancel)))[0][0][1]

    def _upload_block(self, block: int, length: int, action: str) -> bytes:
        self._ready(Event.UPLOAD, action)
        try:
            data = self.transport.control_in(Request.UPLOAD, block, length)
        except TransportError as exc:
            self._failed(exc, action)
        self._session.sent(Event.UPLOAD)
        return data

    def upload_dfu(self, max_length: int = 1 << 24) -> bytes:
        """Plain DFU 1.1 upload: blocks from 0 until a short one (or ``max_length`` bytes)."""
        return self._follow(flows.upload_dfu(self, max_length))

    def upload_alt(self, alt: int | str | None = None, *,
                   progress: ProgressCallback | None = None) -> Target:  # fmt: skip
        """Read every readable sector of an alternate setting (default: the selected one)
        into a :class:`~dfuse.file.Target` (one element per contiguous readable run)."""
        if alt is not None:
            self.select_alt(alt)
        layout = reading.layout_of(self._alt, self.alt)
        jobs, run = [(None, reading.readable_runs(layout))], RunRecord(Progress(progress))
        (segments,) = self._follow(flows.read(self, jobs, run))
        return Target.from_segments(segments, alt_setting=self.alt or 0, name=layout.label)

    def backup(self, plans: Iterable[TargetPlan], *,
               progress: ProgressCallback | None = None) -> DfuSeFile:  # fmt: skip
        """Read what ``plans`` will erase, before running them (``dfuse flash --backup``):
        one target per plan, with the device's IDs, to flash back to undo them.

        >>> # plans = dev.plan(image); dev.backup(plans).save("before.dfu"); dev.download(image)
        """
        jobs = reading.backup_ranges(plans, self.info)
        run = RunRecord(Progress(progress))
        read = self._follow(flows.read(self, [(p.alt, r) for p, r in jobs], run))
        return reading.backup_file(jobs, read, self.info)

    def verify(self, image: Image, *, address: int | None = None,
               progress: ProgressCallback | None = None) -> None:  # fmt: skip
        """Read back every byte of ``image`` and compare; :class:`~dfuse.errors.VerifyError`
        (first differing address, bytes expected and found) on a mismatch."""
        DownloadOptions(address=address)  # checks the address
        jobs = dl.image_jobs(image, self.info, is_dfuse=self.is_dfuse, alt=self.alt,
                             layout=self.layout, address=address, check_ids=False)  # fmt: skip
        plan = reading.verify_plan(jobs, self.alt, self._transfer_size, dfuse=self.is_dfuse)
        self._follow(flows.drive(self, plan, progress))

    # ------------------------------------------------------------------ leave / detach

    def leave(self, address: int | None = None) -> None:
        """Leave DFU mode and start the application; the device is closed afterwards.

        DfuSe: Set Address to ``address`` (default: the start of the first memory,
        0x08000000 on an STM32: :attr:`SessionRules.set_address_before_leave`), a
        zero-length DNLOAD and GETSTATUS (dfuMANIFEST). A device that drops off the bus
        or stalls after that has left: success."""
        self._prepare("leave DFU mode")
        leave = Plan((steps.Leave(address),), self._transfer_size, dfuse=self.is_dfuse)
        self._follow(flows.drive(self, leave))

    def reset(self) -> None:
        """USB port reset (dfu-util's ``-R``): the device re-enumerates (a ROM bootloader
        restarts; a run-time device may start its application). A device already gone
        counts as reset. This object is closed afterwards: open the device again."""
        try:
            self.transport.reset()
        except DeviceGoneError as exc:
            _log.debug("reset: %s (already gone)", exc)
        finally:
            self.close()

    def detach(self, *, timeout_ms: int | None = None, wait_s: float = 5.0) -> DfuDevice:
        """Switch a run-time device to DFU mode: DETACH, a USB reset unless the device
        detaches by itself, then wait (up to ``wait_s``) for it to re-enumerate.
        Returns a new :class:`DfuDevice` for the device in DFU mode; this one is closed."""
        wait_ms, reset = life.detach_request(self.info, timeout_ms)
        try:
            self.transport.control_out(Request.DETACH, wait_ms)
        except (StallError, DeviceGoneError) as exc:
            _log.debug("DETACH: %s (the device may already be detaching)", exc)
        if reset:
            try:
                self.transport.reset()
            except TransportError as exc:
                _log.debug("reset after DETACH: %s", exc)
        new = self.transport.reopen(wait_s, self.clock)
        self._closed = True
        return DfuDevice(new, self.clock, rules=self._given, busy_timeout=self._busy_timeout)
