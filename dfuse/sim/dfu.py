"""The DFU 1.1 device side: state tables and a base model with time, faults and logs.

The state machine is data: :data:`DFUSE_TRANSITIONS` (the STM32 system bootloader,
AN3156), :data:`DFU_TRANSITIONS` (a plain DFU 1.1 device) and
:data:`RUNTIME_TRANSITIONS` (an application's run-time interface) map
``(state, incoming)`` to the next state. A request whose cell is absent stalls;
in DFU mode it also moves the device to dfuERROR with errSTALLEDPKT (in dfuERROR
itself the status is kept). Handlers may divert from the nominal next state when
an operation fails (→ dfuERROR) or completes (dfuDNLOAD-SYNC → dfuDNLOAD-IDLE).

Time: a DNLOAD is executed at the next GETSTATUS. That reply is dfuDNBUSY with
bwPollTimeout = the operation's duration; the device is busy until then. A request
that arrives while it is busy is held until the operation ends (with a virtual clock
the clock jumps there); if that is beyond the transfer's timeout the request times
out, as on real hardware.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import NoReturn

from dfuse.clock import Clock, VirtualClock
from dfuse.protocol.constants import Request, State, Status
from dfuse.protocol.descriptors import StatusReply
from dfuse.sim.faults import Event, Fault, FaultKind, FaultPlan, FaultRecord
from dfuse.sim.quirks import NO_QUIRKS, Quirks
from dfuse.sim.timing import STM32F411_TIMING, Timing, TimingModel
from dfuse.sim.usbmodel import Gone, SetupPacket, Stall, Timeout, UsbDeviceModel

__all__ = [
    "DFUSE_TRANSITIONS",
    "DFU_TRANSITIONS",
    "RUNTIME_TRANSITIONS",
    "DfuFailure",
    "DfuModel",
    "Incoming",
    "Operation",
    "RequestRecord",
]

_log = logging.getLogger(__name__)

_S = State


class Incoming(Enum):
    """A DFU class request as the state table sees it (a zero-length DNLOAD is its own kind)."""

    DETACH = Request.DETACH
    DNLOAD = Request.DNLOAD
    DNLOAD_ZERO = "DNLOAD with wLength 0"
    UPLOAD = Request.UPLOAD
    GETSTATUS = Request.GETSTATUS
    CLRSTATUS = Request.CLRSTATUS
    GETSTATE = Request.GETSTATE
    ABORT = Request.ABORT

    @property
    def request(self) -> Request:
        """The bRequest code."""
        return Request.DNLOAD if self is Incoming.DNLOAD_ZERO else Request(self.value)

    @classmethod
    def classify(cls, request: Request, length: int) -> Incoming:
        """The table key of a request with ``length`` data bytes."""
        if request is Request.DNLOAD and length == 0:
            return cls.DNLOAD_ZERO
        return cls(request)


_COMMON: dict[tuple[State, Incoming], State] = {
    (_S.dfuIDLE, Incoming.DNLOAD): _S.dfuDNLOAD_SYNC,
    (_S.dfuIDLE, Incoming.UPLOAD): _S.dfuUPLOAD_IDLE,
    (_S.dfuIDLE, Incoming.GETSTATUS): _S.dfuIDLE,
    (_S.dfuIDLE, Incoming.GETSTATE): _S.dfuIDLE,
    (_S.dfuIDLE, Incoming.ABORT): _S.dfuIDLE,
    # a pending block: dfuDNBUSY; after it completed: dfuDNLOAD-IDLE
    (_S.dfuDNLOAD_SYNC, Incoming.GETSTATUS): _S.dfuDNBUSY,
    (_S.dfuDNLOAD_SYNC, Incoming.GETSTATE): _S.dfuDNLOAD_SYNC,
    # only reachable when a device answers GETSTATUS while busy (quirk, fault)
    (_S.dfuDNBUSY, Incoming.GETSTATUS): _S.dfuDNBUSY,
    (_S.dfuDNLOAD_IDLE, Incoming.DNLOAD): _S.dfuDNLOAD_SYNC,
    (_S.dfuDNLOAD_IDLE, Incoming.DNLOAD_ZERO): _S.dfuMANIFEST_SYNC,
    (_S.dfuDNLOAD_IDLE, Incoming.GETSTATUS): _S.dfuDNLOAD_IDLE,
    (_S.dfuDNLOAD_IDLE, Incoming.GETSTATE): _S.dfuDNLOAD_IDLE,
    (_S.dfuDNLOAD_IDLE, Incoming.ABORT): _S.dfuIDLE,
    (_S.dfuMANIFEST_SYNC, Incoming.GETSTATUS): _S.dfuMANIFEST,
    (_S.dfuMANIFEST_SYNC, Incoming.GETSTATE): _S.dfuMANIFEST_SYNC,
    (_S.dfuUPLOAD_IDLE, Incoming.UPLOAD): _S.dfuUPLOAD_IDLE,
    (_S.dfuUPLOAD_IDLE, Incoming.GETSTATUS): _S.dfuUPLOAD_IDLE,
    (_S.dfuUPLOAD_IDLE, Incoming.GETSTATE): _S.dfuUPLOAD_IDLE,
    (_S.dfuUPLOAD_IDLE, Incoming.ABORT): _S.dfuIDLE,
    (_S.dfuERROR, Incoming.GETSTATUS): _S.dfuERROR,
    (_S.dfuERROR, Incoming.GETSTATE): _S.dfuERROR,
    (_S.dfuERROR, Incoming.CLRSTATUS): _S.dfuIDLE,
}

#: The STM32 system bootloader (AN3156). Like ST's USB device library it also takes a
#: zero-length DNLOAD in dfuIDLE as "leave" (AN3156's download flow chart: "wLength > 0?
#: No → Leave DFU"). An UPLOAD whose reply is shorter than wLength (a short frame: only
#: the command list of block 0 can be) ends the upload, → dfuIDLE (DFU 1.1 §A.2.10; ST's
#: library does the same for its Get command); full-length reads stay in dfuUPLOAD-IDLE
#: (the host ends them with ABORT). dfuMANIFEST accepts nothing: the device leaves the bus.
DFUSE_TRANSITIONS: Mapping[tuple[State, Incoming], State] = {
    **_COMMON,
    (_S.dfuIDLE, Incoming.DNLOAD_ZERO): _S.dfuMANIFEST_SYNC,
}

#: A plain DFU 1.1 device (manifestation tolerant or not). A short UPLOAD ends the upload
#: (→ dfuIDLE, decided by the handler).
DFU_TRANSITIONS: Mapping[tuple[State, Incoming], State] = {
    **_COMMON,
    (_S.dfuMANIFEST, Incoming.GETSTATUS): _S.dfuMANIFEST,
    (_S.dfuMANIFEST, Incoming.GETSTATE): _S.dfuMANIFEST,
    (_S.dfuMANIFEST_WAIT_RESET, Incoming.GETSTATUS): _S.dfuMANIFEST_WAIT_RESET,
    (_S.dfuMANIFEST_WAIT_RESET, Incoming.GETSTATE): _S.dfuMANIFEST_WAIT_RESET,
}

#: An application's DFU run-time interface (DFU 1.1 §5.1).
RUNTIME_TRANSITIONS: Mapping[tuple[State, Incoming], State] = {
    (_S.appIDLE, Incoming.DETACH): _S.appDETACH,
    (_S.appIDLE, Incoming.GETSTATUS): _S.appIDLE,
    (_S.appIDLE, Incoming.GETSTATE): _S.appIDLE,
    (_S.appDETACH, Incoming.GETSTATUS): _S.appDETACH,
    (_S.appDETACH, Incoming.GETSTATE): _S.appDETACH,
}


class DfuFailure(Exception):
    """Raised by device hooks: the operation failed with a DFU status."""

    def __init__(self, status: Status, detail: str = "") -> None:
        self.status = status
        super().__init__(f"{status.name}: {detail}" if detail else status.name)


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One control transfer that reached a device.

    Attributes:
        time: clock time when it arrived.
        name: ``"DNLOAD"``, ``"GET_DESCRIPTOR"``, ...
        setup: the SETUP packet.
        data_length: bytes in the OUT data stage.
    """

    time: float
    name: str
    setup: SetupPacket
    data_length: int


@dataclass(slots=True)
class Operation:
    """Work a device does after a GETSTATUS (an erase, a write, a command).

    Attributes:
        event: the fault event it counts as.
        duration: seconds it really takes.
        apply: performs it; takes the fraction done (1.0 normally, less on power loss)
            and returns the resulting status.
        detail: a description for logs, e.g. ``"erase sector 5 at 0x08020000"``.
        reset_after: the device resets when it is done (option bytes, read unprotect).
        reported_ms: bwPollTimeout to report instead of the duration (quirks).
    """

    event: Event
    duration: float
    apply: Callable[[float], Status]
    detail: str = ""
    reset_after: bool = False
    reported_ms: int | None = None


@dataclass(slots=True)
class _Busy:
    ends_at: float
    finish: Callable[[], None]
    answers_getstatus: bool = False


_STANDARD_NAMES = {
    0x00: "GET_STATUS",
    0x01: "CLEAR_FEATURE",
    0x03: "SET_FEATURE",
    0x05: "SET_ADDRESS",
    0x06: "GET_DESCRIPTOR",
    0x08: "GET_CONFIGURATION",
    0x09: "SET_CONFIGURATION",
    0x0A: "GET_INTERFACE",
    0x0B: "SET_INTERFACE",
}

_IN_REQUESTS = frozenset({Request.UPLOAD, Request.GETSTATUS, Request.GETSTATE})


def request_name(setup: SetupPacket) -> str:
    """A short name for a request: the DFU request name or the standard request name."""
    if setup.kind == 1 and setup.request in Request._value2member_map_:
        return Request(setup.request).name
    if setup.kind == 0:
        return _STANDARD_NAMES.get(setup.request, f"STANDARD_0x{setup.request:02X}")
    return f"{('STANDARD', 'CLASS', 'VENDOR', 'RESERVED')[setup.kind]}_0x{setup.request:02X}"


class DfuModel(UsbDeviceModel):
    """A USB device with one DFU interface: state machine, clock, timing, faults, logs.

    Subclasses provide the descriptors and the hooks :meth:`download_operation`,
    :meth:`upload_block`, :meth:`manifest` (and optionally :meth:`detach`).

    Attributes:
        clock: the clock the device lives on (the backend shares its own).
        timing: draws operation durations.
        faults: the fault schedule (:class:`FaultPlan`); add more with :meth:`inject`.
        fault_log: every fault that fired, in order.
        requests: control transfers received, counted by name (``"DNLOAD"``, ...).
        request_log: every control transfer received, in order.
        state, status: the DFU state and status.
    """

    transitions: Mapping[tuple[State, Incoming], State] = DFUSE_TRANSITIONS
    interface_number: int = 0
    initial_state: State = State.dfuIDLE

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        timing: Timing = STM32F411_TIMING,
        seed: int = 0,
        faults: Iterable[Fault] = (),
        quirks: Quirks = NO_QUIRKS,
        transfer_size: int = 2048,
        bus: int = 1,
        address: int = 1,
        port_numbers: tuple[int, ...] = (1,),
    ) -> None:
        super().__init__(bus=bus, address=address, port_numbers=port_numbers)
        if transfer_size <= 0 or transfer_size > 0xFFFF:
            raise ValueError(f"transfer_size must be within 1..65535, got {transfer_size}")
        self.clock: Clock = clock if clock is not None else VirtualClock()
        self.timing = TimingModel(timing, seed)
        self.quirks = quirks
        self.transfer_size = transfer_size
        self.faults = FaultPlan(faults)
        self.fault_log: list[FaultRecord] = []
        self.requests: Counter[str] = Counter()
        self.request_log: list[RequestRecord] = []
        self.state: State = self.initial_state
        self.status: Status = Status.OK
        self.istring = 0
        self.boots = 0
        self._pending: tuple[int, bytes] | None = None
        self._busy: _Busy | None = None
        self._reconnect_at: float | None = None
        self._event_time: float | None = None
        self._power_on_state()

    # ------------------------------------------------------------------ public

    def inject(self, fault: Fault) -> None:
        """Schedule one more fault."""
        self.faults.add(fault)

    def bind_clock(self, clock: Clock) -> None:
        """Live on ``clock`` from now on (the backend shares its clock this way)."""
        self.clock = clock

    @property
    def busy(self) -> bool:
        """True while an operation is in progress."""
        self.poll()
        return self._busy is not None

    def poll(self) -> None:
        """Bring the device up to ``clock.now``: finish operations, come back on the bus."""
        with self.lock:
            now = self.clock.now
            busy = self._busy
            if busy is not None and now >= busy.ends_at:
                self._finish(busy)
            if not self.connected and self._reconnect_at is not None and now >= self._reconnect_at:
                self._reconnect_at = None
                self.power_on()

    @property
    def event_time(self) -> float:
        """When the event being processed happened: the end of the operation that is
        finishing (the clock may already be past it), else ``clock.now``."""
        return self._event_time if self._event_time is not None else self.clock.now

    def _finish(self, busy: _Busy) -> None:
        if self._busy is busy:
            self._busy = None
        self._event_time = busy.ends_at
        try:
            busy.finish()
        finally:
            self._event_time = None

    def power_cycle(self, delay: float = 0.0, *, at: float | None = None) -> None:
        """Drop off the bus and boot again after ``delay`` seconds (a reset), or at clock
        time ``at`` when given."""
        with self.lock:
            self._busy = None
            self.disconnect()
            self._reconnect_at = at if at is not None else self.event_time + delay
        self.poll()

    def unplug(self) -> None:
        """Drop off the bus for good (until :meth:`plug`)."""
        with self.lock:
            self._busy = None
            self._reconnect_at = None
            self.disconnect()

    def plug(self) -> None:
        """Come back on the bus now, freshly booted."""
        self.power_on()

    def power_on(self) -> None:
        """Boot (state back to its start) and join the bus."""
        with self.lock:
            self._power_on_state()
            if self.should_enumerate():
                self.reconnect()

    def should_enumerate(self) -> bool:
        """Hook: whether the device appears on the bus after booting (default: yes)."""
        return True

    # ------------------------------------------------------------------ transfers

    def control_transfer(
        self,
        setup: SetupPacket,
        data: bytes = b"",
        timeout_ms: int = 0,
        *,
        generation: int | None = None,
    ) -> bytes:
        """One control transfer, with waiting, faults, logging and its USB time cost
        (``generation``: see :meth:`UsbDeviceModel.control_transfer`)."""
        with self.lock:
            self.poll()  # a power loss or reset that is due happens before the request
            self._check_alive(generation)
            name = request_name(setup)
            self.requests[name] += 1
            self.request_log.append(RequestRecord(self.clock.now, name, setup, len(data)))
            busy = self._busy
            if busy is not None and not (
                busy.answers_getstatus and setup.kind == 1 and setup.request == Request.GETSTATUS
            ):
                self._wait_while_busy(busy, timeout_ms)
            if setup.kind == 1:
                self._request_faults(setup, timeout_ms)
            usb = self.timing
            try:
                reply = super().control_transfer(setup, data, timeout_ms, generation=generation)
            except Stall:
                self.clock.sleep(usb.transfer_cost(0))
                raise
            self.clock.sleep(usb.transfer_cost(len(reply) if setup.is_in else len(data)))
            return reply

    def _wait_while_busy(self, busy: _Busy, timeout_ms: int) -> None:
        generation = self.generation
        remaining = busy.ends_at - self.clock.now
        if remaining > 0:
            if timeout_ms > 0 and remaining > timeout_ms / 1000:
                self.clock.sleep(timeout_ms / 1000)
                self.poll()
                raise Timeout(
                    f"device busy for {remaining * 1000:.0f} ms more, "
                    f"beyond the {timeout_ms} ms timeout"
                )
            self.clock.sleep(remaining)
        if self.clock.now < busy.ends_at and isinstance(self.clock, VirtualClock):
            self.clock.advance_to(busy.ends_at)
        self.poll()
        if self._busy is busy:  # a clock whose sleep falls a hair short: the wait is over
            self._finish(busy)
            self.poll()
        if not self.connected or self.generation != generation:
            # a reset or power loss while the request waited: even if the device is back
            # already, it is a new enumeration and the request died with the old one
            raise Gone("device left the bus while busy")

    def _request_faults(self, setup: SetupPacket, timeout_ms: int) -> None:
        fault = self.faults.fire(Event.ANY_REQUEST)
        if setup.request in Request._value2member_map_:
            fault = self.faults.fire(Event[Request(setup.request).name]) or fault
        if fault is None:
            return
        self._record(fault, f"{request_name(setup)} wValue={setup.value}")
        if fault.kind is FaultKind.STALL:
            raise Stall(f"injected: {fault.describe()}")
        if fault.kind is FaultKind.TIMEOUT:
            self.clock.sleep((timeout_ms or 5000) / 1000)
            raise Timeout(f"injected: {fault.describe()}")
        self._drop(fault.reconnect_after)
        raise Gone(f"injected: {fault.describe()}")

    def _drop(self, reconnect_after: float | None) -> None:
        self._busy = None
        self.disconnect()
        self._reconnect_at = None if reconnect_after is None else self.event_time + reconnect_after

    def _record(self, fault: Fault, detail: str) -> None:
        record = FaultRecord(fault, self.event_time, detail)
        self.fault_log.append(record)
        _log.debug("fault fired: %s (%s)", fault.describe(), detail)

    # ------------------------------------------------------------------ DFU requests

    def handle_class_request(self, setup: SetupPacket, data: bytes, timeout_ms: int) -> bytes:
        """Dispatch a DFU class request through the state table."""
        if setup.kind != 1 or setup.recipient != 1:
            raise Stall(f"{request_name(setup)}: only DFU class requests to the interface")
        if setup.index != self.interface_number:
            raise Stall(f"no interface {setup.index}")
        if setup.request not in Request._value2member_map_:
            self._reject(f"unknown DFU request 0x{setup.request:02X}")
        request = Request(setup.request)
        if setup.is_in != (request in _IN_REQUESTS):
            self._reject(f"{request.name} in the wrong direction")
        incoming = Incoming.classify(request, setup.length if setup.is_in else len(data))
        nominal = self.transitions.get((self.state, incoming))
        if nominal is None:
            self._reject(f"{incoming.name} not allowed in {self.state.name}")
        if incoming is Incoming.GETSTATUS:
            return self._getstatus().to_bytes()
        if incoming is Incoming.GETSTATE:
            return bytes((self.state,))
        if incoming is Incoming.CLRSTATUS:
            self.state, self.status, self.istring = State.dfuIDLE, Status.OK, 0
            return b""
        if incoming is Incoming.ABORT:
            self._pending = None
            self.state = nominal
            self.on_abort()
            return b""
        if incoming is Incoming.DETACH:
            self.detach(setup.value)
            return b""
        if incoming is Incoming.UPLOAD:
            if setup.length > self.transfer_size:
                self._reject(f"UPLOAD of {setup.length} bytes > wTransferSize")
            return self._upload(setup.value, setup.length)
        # DNLOAD
        if len(data) > self.transfer_size:
            self._reject(f"DNLOAD of {len(data)} bytes > wTransferSize {self.transfer_size}")
        self._pending = (setup.value, bytes(data))
        self.state = nominal
        if incoming is Incoming.DNLOAD_ZERO:
            self.on_zero_length_download(setup.value)
        return b""

    def _reject(self, why: str) -> NoReturn:
        if self.state not in (State.appIDLE, State.appDETACH, State.dfuERROR):
            self.state, self.status = State.dfuERROR, Status.errSTALLEDPKT
        raise Stall(why)

    def _fail(self, status: Status, why: str) -> NoReturn:
        self.state, self.status = State.dfuERROR, status
        raise Stall(why)

    def _upload(self, block: int, length: int) -> bytes:
        fault = self.faults.fire(Event.READ) if block >= 2 else None
        if fault is not None:
            self._record(fault, f"UPLOAD block {block}")
            if fault.kind in (FaultKind.DISCONNECT, FaultKind.POWER_LOSS):
                self._drop(fault.reconnect_after)
                raise Gone(f"injected: {fault.describe()}")
            if fault.kind is FaultKind.BUSY_LONGER:
                self.clock.sleep(fault.extra)
            else:
                self._fail(_FAULT_STATUS[fault.kind], f"injected: {fault.describe()}")
        try:
            reply = self.upload_block(block, length)
        except DfuFailure as failure:
            self._fail(failure.status, str(failure))
        self.state = self.transitions[(self.state, Incoming.UPLOAD)]
        reply = reply[:length]
        if len(reply) < length:  # a short frame ends the upload (DFU 1.1 §A.2.10)
            self.state = State.dfuIDLE
        return reply

    def _getstatus(self) -> StatusReply:
        if self.state is State.dfuDNLOAD_SYNC:
            if self._pending is None:
                self.state = State.dfuDNLOAD_IDLE
            else:
                block, payload = self._pending
                self._pending = None
                try:
                    op = self.download_operation(block, payload)
                except DfuFailure as failure:
                    # refused outright: no operation starts, so no fault event counts
                    failed = Operation(Event.COMMAND, 0.0, _const(failure.status), str(failure))
                    return self._begin(failed, count=False)
                return self._begin(op)
        elif self.state is State.dfuMANIFEST_SYNC:
            self._pending = None
            return self._begin_manifest()
        elif self.state is State.dfuDNBUSY and self._busy is not None:
            left = max(0.0, self._busy.ends_at - self.clock.now)
            return StatusReply(Status.OK, _ms(left), State.dfuDNBUSY)
        return StatusReply(self.status, 0, self.state, self.istring)

    def _begin(self, op: Operation, *, count: bool = True) -> StatusReply:
        now = self.clock.now
        fault = self.faults.fire(op.event) if count else None
        actual, apply = op.duration, op.apply
        reported = op.reported_ms if op.reported_ms is not None else _ms(op.duration)
        answers = self.quirks.busy_past_poll_timeout
        if answers:
            reported = _ms(op.duration * self.quirks.busy_report_fraction)
        finish: Callable[[], None] = lambda: self._complete(op, apply)  # noqa: E731
        ends_at = now + actual
        if fault is not None:
            kind = fault.kind
            if kind in (FaultKind.ERR_WRITE, FaultKind.ERR_ERASE):
                apply = _const(_FAULT_STATUS[kind])
                self._record(fault, f"{op.detail}: not done, {_FAULT_STATUS[kind].name}")
            elif kind is FaultKind.ERR_VERIFY:
                apply = _then(op.apply, Status.errVERIFY)
                self._record(fault, f"{op.detail}: done, reported errVERIFY")
            elif kind is FaultKind.BUSY_LONGER:
                ends_at += fault.extra
                answers = True
                self._record(fault, f"{op.detail}: {fault.extra:.3f} s past the poll timeout")
            elif kind is FaultKind.POWER_LOSS:
                ends_at = now + actual * fault.progress
                finish = lambda: self._power_loss(op, fault)  # noqa: E731
            else:  # DISCONNECT: gone before the operation starts
                self._record(fault, f"{op.detail}: not started")
                self._drop(fault.reconnect_after)
                return StatusReply(Status.OK, reported, State.dfuDNBUSY)
        self.state = State.dfuDNBUSY
        self._busy = _Busy(ends_at, finish, answers)
        return StatusReply(Status.OK, reported, State.dfuDNBUSY)

    def _complete(self, op: Operation, apply: Callable[[float], Status]) -> None:
        status = apply(1.0)
        if status is Status.OK:
            self.state = State.dfuDNLOAD_SYNC
            if op.reset_after:
                self.power_cycle(self.timing.timing.reenumerate)
        else:
            self.state, self.status = State.dfuERROR, status
        _log.debug("%s → %s", op.detail, status.name)

    def _power_loss(self, op: Operation, fault: Fault) -> None:
        op.apply(fault.progress)
        self._record(fault, f"{op.detail}: power lost at {fault.progress:.0%}")
        self._drop(fault.reconnect_after)

    def _begin_manifest(self) -> StatusReply:
        fault = self.faults.fire(Event.LEAVE)
        duration = self.timing.timing.manifest
        if fault is not None:
            status = _FAULT_STATUS.get(fault.kind)
            if status is not None:
                self._record(fault, f"leave refused with {status.name}")
                self.state, self.status = State.dfuERROR, status
                return StatusReply(status, 0, State.dfuERROR)
            if fault.kind is FaultKind.BUSY_LONGER:
                self._record(fault, f"manifestation {fault.extra:.3f} s longer")
                duration += fault.extra
            else:
                self._record(fault, "power lost while leaving: the application did not start")
                self._drop(fault.reconnect_after)
                return StatusReply(Status.OK, _ms(duration), State.dfuMANIFEST)
        self.state = State.dfuMANIFEST
        self._busy = _Busy(self.clock.now + duration, self._finish_manifest)
        return StatusReply(Status.OK, _ms(duration), State.dfuMANIFEST)

    def _finish_manifest(self) -> None:
        self.manifest()

    def _power_on_state(self) -> None:
        self.boots += 1
        self.state, self.status, self.istring = self.initial_state, Status.OK, 0
        self._pending = None
        self._busy = None
        self.on_boot()
        fault = self.faults.fire(Event.BOOT)
        if fault is not None:
            self._record(fault, "boot")
            self.state, self.status = State.dfuERROR, Status.errFIRMWARE

    # ------------------------------------------------------------------ hooks

    def download_operation(self, block: int, data: bytes) -> Operation:
        """Hook: the operation a DNLOAD of ``data`` at ``block`` starts (at its GETSTATUS).

        Raise :class:`DfuFailure` for a request that fails outright.
        """
        raise DfuFailure(Status.errSTALLEDPKT, "downloads not supported")

    def upload_block(self, block: int, length: int) -> bytes:
        """Hook: the data of UPLOAD ``block``; raise :class:`DfuFailure` to fail it."""
        raise DfuFailure(Status.errSTALLEDPKT, "uploads not supported")

    def manifest(self) -> None:
        """Hook: manifestation finished (the bootloader leaves here)."""
        self.state = State.dfuMANIFEST_WAIT_RESET

    def on_zero_length_download(self, block: int) -> None:
        """Hook: a zero-length DNLOAD moved the device to dfuMANIFEST-SYNC."""

    def on_abort(self) -> None:
        """Hook: ABORT was accepted."""

    def on_boot(self) -> None:
        """Hook: the device (re)starts; the state is back to ``initial_state``."""

    def detach(self, timeout_ms: int) -> None:
        """Hook: DETACH accepted (run-time devices)."""
        self.state = State.appDETACH

    def reset(self) -> None:
        """USB bus reset: back to the start state (configuration is kept by the host)."""
        with self.lock:
            self._pending = None
            self._busy = None
            if self.state not in (State.appIDLE, State.appDETACH):
                self.state, self.status = State.dfuIDLE, Status.OK


_FAULT_STATUS = {
    FaultKind.ERR_WRITE: Status.errWRITE,
    FaultKind.ERR_ERASE: Status.errERASE,
    FaultKind.ERR_VERIFY: Status.errVERIFY,
}


def _ms(seconds: float) -> int:
    return min(max(0, math.ceil(seconds * 1000 - 1e-9)), 0xFFFFFF)


def _const(status: Status) -> Callable[[float], Status]:
    return lambda _fraction: status


def _then(apply: Callable[[float], Status], status: Status) -> Callable[[float], Status]:
    def run(fraction: float) -> Status:
        apply(fraction)
        return status

    return run
