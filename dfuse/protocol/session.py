"""The host side of the DFU conversation, with no I/O (in the manner of h11).

:data:`HOST_TRANSITIONS` says which request the host may send in which state and
which state the device is then in, before the next GETSTATUS tells more. A
:class:`Session` keeps the host's view of the state and, for every GETSTATUS reply
(or a failed GETSTATUS), returns what to do next **as a value**:

* :class:`Wait` - sleep ``seconds`` on the clock, then GETSTATUS again;
* :class:`Send` - send ``request`` (CLRSTATUS or ABORT: a recovery), then GETSTATUS;
* :class:`Done` - the operation is over (with what to do about the device after a
  manifestation: reset it, give it time, let it go);
* :class:`Fail` - raise ``error`` (after a best-effort CLRSTATUS when ``clear``).

The driver (:class:`dfuse.device.DfuDevice`) performs the requests and the sleeps.
Quirks of particular ROMs are data: a frozen :class:`SessionRules`, whose defaults
are what dfuse does for an unknown device.

Sources: USB DFU 1.1 appendix A (state transitions); ST AN3156 (DfuSe commands,
leave); ST's USB device library ``usbd_dfu.c`` (ABORT accepted in dfuIDLE,
dfuDNLOAD-SYNC, dfuDNLOAD-IDLE, dfuMANIFEST-SYNC and dfuUPLOAD-IDLE; CLRSTATUS
outside dfuERROR sets dfuERROR/errUNKNOWN); dfu-util's ``dfuse.c`` (a stalled
GETSTATUS after a busy reply is retried up to 3 times, reusing the last poll timeout:
STM32L4 ROMs).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from dfuse.errors import (
    DeviceGoneError,
    DeviceStatusError,
    ProtocolError,
    ReadProtectedError,
    StallError,
    TransferTimeoutError,
    TransportError,
    UsageError,
)
from dfuse.protocol.constants import Request, State, Status
from dfuse.protocol.descriptors import StatusReply

__all__ = [
    "ABORTABLE",
    "BUSY",
    "HOST_TRANSITIONS",
    "Decision",
    "Done",
    "Event",
    "Fail",
    "Goal",
    "Send",
    "Session",
    "SessionRules",
    "Wait",
    "status_error",
]


class Event(Enum):
    """What the host sends, as the transition table tells requests apart."""

    DNLOAD = "DNLOAD"  # a data block or a DfuSe command (wLength > 0)
    DNLOAD_ZERO = "DNLOAD_ZERO"  # the zero-length DNLOAD that ends a download / leaves
    UPLOAD = "UPLOAD"
    ABORT = "ABORT"
    CLRSTATUS = "CLRSTATUS"


_S = State
_EPSILON_S = 1e-6
#: ``(state, event) -> state`` the device is in right after the request, before the
#: next GETSTATUS (DFU 1.1 appendix A; AN3156). A pair that is not here stalls on the
#: device and puts it in dfuERROR: the host never sends it.
HOST_TRANSITIONS: dict[tuple[State, Event], State] = {
    (_S.dfuIDLE, Event.DNLOAD): _S.dfuDNLOAD_SYNC,
    # AN3156: a DfuSe device leaves from dfuIDLE (DFU 1.1 would stall it).
    (_S.dfuIDLE, Event.DNLOAD_ZERO): _S.dfuMANIFEST_SYNC,
    (_S.dfuIDLE, Event.UPLOAD): _S.dfuUPLOAD_IDLE,
    (_S.dfuIDLE, Event.ABORT): _S.dfuIDLE,
    (_S.dfuDNLOAD_SYNC, Event.ABORT): _S.dfuIDLE,
    (_S.dfuDNLOAD_IDLE, Event.DNLOAD): _S.dfuDNLOAD_SYNC,
    (_S.dfuDNLOAD_IDLE, Event.DNLOAD_ZERO): _S.dfuMANIFEST_SYNC,
    (_S.dfuDNLOAD_IDLE, Event.ABORT): _S.dfuIDLE,
    (_S.dfuMANIFEST_SYNC, Event.ABORT): _S.dfuIDLE,
    (_S.dfuUPLOAD_IDLE, Event.UPLOAD): _S.dfuUPLOAD_IDLE,
    (_S.dfuUPLOAD_IDLE, Event.ABORT): _S.dfuIDLE,
    (_S.dfuERROR, Event.CLRSTATUS): _S.dfuIDLE,
}

#: States in which a device is still working on the last request: poll again.
BUSY = frozenset({_S.dfuDNLOAD_SYNC, _S.dfuDNBUSY, _S.dfuMANIFEST_SYNC})
#: States an ABORT brings back to dfuIDLE (other than dfuIDLE itself).
ABORTABLE = frozenset(
    {_S.dfuDNLOAD_SYNC, _S.dfuDNLOAD_IDLE, _S.dfuUPLOAD_IDLE, _S.dfuMANIFEST_SYNC}
)


@dataclass(frozen=True, slots=True)
class SessionRules:
    """How the host talks to one kind of device: the defaults fit the STM32 ROMs dfuse
    knows; a part's quirks are other values (data, not code paths).

    Attributes:
        min_poll_ms: the shortest wait between two GETSTATUS (a floor for bwPollTimeout 0).
        max_poll_ms: the longest (a ceiling for a device that asks for too long;
            ``None``: honour the device).
        busy_timeout_s: the longest a device may stay busy on one request.
        status_stall_retries: how many stalled GETSTATUS (LIBUSB_ERROR_PIPE) to retry
            after a busy reply, reusing its poll timeout (F072/L4 ROMs; dfu-util: 3).
        clear_status_when_overdue: CLRSTATUS this many times when the device is still
            dfuDNBUSY after its poll timeout (STM32H7 rev V: 2); 0 keeps polling.
        set_address_before_leave: send Set Address right before the zero-length DNLOAD
            that leaves (STM32C0 manifests only then).
        status_after_leave: ask GETSTATUS after the leave request (GD32: ``False``,
            they leave without answering).
        clear_status_outside_error: recover a non-OK status outside dfuERROR with
            CLRSTATUS (``False``: ABORT, for ROMs that stall CLRSTATUS there).
        max_recoveries: CLRSTATUS/ABORT sent at most this often to reach dfuIDLE.
        mass_erase_wait_ms: wait at least this long after a mass erase before the
            next GETSTATUS, whatever bwPollTimeout says (``None``: honour it). A ROM
            that reports far too short a timeout (STM32F405: 100 ms for up to 32 s,
            dfu-util 47af500) holds the GETSTATUS until the erase ends, past the
            host's transfer timeout.
        poll_lead_ms: send the GETSTATUS after a busy reply this much before its poll
            timeout ends (a ROM that holds a GETSTATUS until it is done, as ST's do,
            answers it when it is; bwPollTimeout is whole milliseconds, rounded up); not
            for a request after which the device resets.
    """

    min_poll_ms: int = 1
    max_poll_ms: int | None = None
    busy_timeout_s: float = 30.0
    status_stall_retries: int = 3
    clear_status_when_overdue: int = 0
    set_address_before_leave: bool = True
    status_after_leave: bool = True
    clear_status_outside_error: bool = True
    max_recoveries: int = 3
    mass_erase_wait_ms: int | None = None
    poll_lead_ms: int = 0

    def __post_init__(self) -> None:
        for name in ("min_poll_ms", "status_stall_retries", "clear_status_when_overdue",
                     "mass_erase_wait_ms", "poll_lead_ms"):  # fmt: skip
            if (getattr(self, name) or 0) < 0:
                raise UsageError(f"{name} must not be negative", value=getattr(self, name))
        if self.max_poll_ms is not None and self.max_poll_ms < self.min_poll_ms:
            raise UsageError(
                "max_poll_ms must be at least min_poll_ms",
                value=self.max_poll_ms,
                expected=f">= {self.min_poll_ms}",
            )
        if not self.busy_timeout_s > 0:
            raise UsageError("busy_timeout_s must be positive", value=self.busy_timeout_s)

    def poll_s(self, poll_timeout_ms: int) -> float:
        """The wait the host honours for a reply's bwPollTimeout, in seconds."""
        ms = max(poll_timeout_ms, self.min_poll_ms)
        if self.max_poll_ms is not None:
            ms = min(ms, self.max_poll_ms)
        return ms / 1000


class Goal(Enum):
    """What a run of GETSTATUS polls waits for."""

    IDLE = "idle"  # reach dfuIDLE from any state (opening, recovery)
    DNLOAD = "dnload"  # a DNLOAD executed: dfuDNLOAD-IDLE
    RESET = "reset"  # a request after which the device resets (option bytes, unprotect)
    LEAVE = "leave"  # the zero-length DNLOAD: manifestation


@dataclass(frozen=True, slots=True)
class Wait:
    """Sleep ``seconds``, then GETSTATUS again."""

    seconds: float


@dataclass(frozen=True, slots=True)
class Send:
    """Send ``request`` (CLRSTATUS or ABORT), then GETSTATUS again."""

    request: Request


@dataclass(frozen=True, slots=True)
class Done:
    """The operation is over.

    Attributes:
        reply: the reply that ended it (``None`` when the device went away as expected).
        reset: USB-reset the device (it manifested and waits for a reset).
        linger_s: give the device this long before letting it go (dfuMANIFEST).
        gone: the device has left (or is resetting): close it.
    """

    reply: StatusReply | None
    reset: bool = False
    linger_s: float = 0.0
    gone: bool = False


@dataclass(frozen=True, slots=True)
class Fail:
    """Raise ``error``; first CLRSTATUS (best effort) when ``clear``. ``explain``: the
    error is a transfer failure; ask GETSTATUS whether the device says why."""

    error: Exception
    clear: bool = False
    explain: bool = False

    @property
    def unsettled(self) -> bool:
        """The device may still be busy or in an unknown state (not a transfer failure,
        or a timeout): the next operation first brings it back to dfuIDLE."""
        return not isinstance(self.error, TransportError) or isinstance(
            self.error, TransferTimeoutError
        )


Decision = Wait | Send | Done | Fail


def _name(value: object) -> str:
    return str(getattr(value, "name", value))


def status_error(reply: StatusReply, action: str) -> DeviceStatusError:
    """The error for a reply with an error status: :class:`ReadProtectedError` for
    errVENDOR (what an STM32 ROM answers to reads, writes and erases under read
    protection, AN3156), else :class:`DeviceStatusError`."""
    cls = ReadProtectedError if reply.status == Status.errVENDOR else DeviceStatusError
    return cls(reply.status, reply.state, action=action, istring=reply.istring)


@dataclass(slots=True)
class _Poll:
    goal: Goal
    action: str
    started: float
    dfuse: bool = True
    tolerant: bool = False
    first: StatusReply | None = None
    last: StatusReply | None = None
    deadline: float | None = None
    recoveries: int = 0
    stalls: int = 0
    overdue_clears: int = 0
    floor_s: float = 0.0


@dataclass
class Session:
    """The host's view of one DFU conversation; see the module docstring.

    Attributes:
        rules: the device's rules.
        state: the state the host believes the device is in.
        stall_retries: stalled GETSTATUS retried so far (reported by the driver).
    """

    rules: SessionRules = field(default_factory=SessionRules)
    state: State | int = State.dfuIDLE
    stall_retries: int = 0
    _poll: _Poll | None = field(default=None, init=False, repr=False)

    # ------------------------------------------------------------------ requests

    def before(self, event: Event) -> tuple[Request, ...]:
        """The requests to send before ``event`` so that the device accepts it
        (ABORT out of an upload or a download in progress)."""
        if (self.state, event) in HOST_TRANSITIONS:
            return ()
        if event is not Event.ABORT and self.state in ABORTABLE:
            return (Request.ABORT,)
        return ()

    def allows(self, event: Event) -> bool:
        """Whether the table allows ``event`` in the host's state."""
        return (self.state, event) in HOST_TRANSITIONS

    def sent(self, event: Event) -> None:
        """Record that ``event`` went out. A request the table does not allow in the
        host's state is a host bug: :class:`UsageError`."""
        key = (self.state, event)
        if key not in HOST_TRANSITIONS:
            raise UsageError(
                f"the host sent {event.value} in {_name(self.state)}",
                value=event.value,
                expected=" or ".join(
                    sorted(e.value for s, e in HOST_TRANSITIONS if s == self.state)
                ),
            )
        self.state = HOST_TRANSITIONS[key]

    def recovery(self) -> Request:
        """What clears an error status in the host's state: CLRSTATUS in dfuERROR (or
        anywhere, :attr:`SessionRules.clear_status_outside_error`), else ABORT."""
        if self.state == State.dfuERROR or self.rules.clear_status_outside_error:
            return Request.CLRSTATUS
        return Request.ABORT

    def got_state(self, data: bytes) -> State | int:
        """Take a GETSTATE reply (:class:`~dfuse.errors.ProtocolError` unless 1 byte)."""
        if len(data) != 1:
            raise ProtocolError(f"GETSTATE reply must be 1 byte, got {len(data)}")
        self.state = State(data[0]) if data[0] in State._value2member_map_ else data[0]
        return self.state

    def reported(self, reply: StatusReply) -> None:
        """Take the state a GETSTATUS/GETSTATE reported."""
        self.state = reply.state

    # ------------------------------------------------------------------ polls

    def start(
        self,
        goal: Goal,
        action: str,
        now: float,
        *,
        dfuse: bool = True,
        tolerant: bool = False,
        floor_s: float = 0.0,
    ) -> None:
        """Begin waiting for ``goal`` (the GETSTATUS polls of one operation).

        ``dfuse``: the device speaks DfuSe; ``tolerant``: a plain DFU device that is
        manifestation tolerant (it comes back to dfuIDLE after leaving); ``floor_s``:
        the least time from ``now`` to the GETSTATUS after a busy reply
        (:attr:`SessionRules.mass_erase_wait_ms`)."""
        self._poll = _Poll(goal, action, now, dfuse=dfuse, tolerant=tolerant, floor_s=floor_s)

    def _current(self) -> _Poll:
        if self._poll is None:
            raise UsageError("no poll in progress: call Session.start() first")
        return self._poll

    def on_status(self, reply: StatusReply, now: float, sent_at: float) -> Decision:
        """The next step after a GETSTATUS ``reply`` (sent at ``sent_at``, seen ``now``)."""
        poll = self._current()
        self.reported(reply)
        if poll.first is None:
            poll.first = reply
        previous, poll.last = poll.last, reply
        if poll.goal is Goal.IDLE:
            return self._to_idle(poll, reply, now)
        if poll.goal is Goal.LEAVE:
            return self._leave(poll, reply, now)
        ok_error = reply.status == Status.OK and reply.state != State.dfuERROR
        if (
            not ok_error
            and 0 < poll.overdue_clears < self.rules.clear_status_when_overdue
            and reply.state == State.dfuERROR
            and reply.status == Status.errUNKNOWN
        ):
            # the first CLRSTATUS of the pair answered (errUNKNOWN, dfuERROR): the
            # second brings the device to dfuIDLE, the operation done (STM32H7 rev V)
            poll.overdue_clears += 1
            return Send(Request.CLRSTATUS)
        if not ok_error:
            return Fail(status_error(reply, poll.action), clear=True)
        done = {State.dfuDNLOAD_IDLE}
        if poll.goal is Goal.RESET:
            done |= {State.dfuMANIFEST, State.dfuIDLE}
        if poll.overdue_clears:
            done.add(State.dfuIDLE)
        if reply.state in done:
            return Done(reply)
        if reply.state not in BUSY:
            return Fail(
                ProtocolError(
                    f"{poll.action}: expected "
                    + " or ".join(_name(s) for s in sorted(done))
                    + f", the device reports {_name(reply.state)}"
                )
            )
        if poll.deadline is None:
            poll.deadline = now + self.rules.busy_timeout_s
        elif (
            now >= poll.deadline - _EPSILON_S
        ):  # a sleep of (deadline - now) may fall short by rounding
            return Fail(
                TransferTimeoutError(
                    f"the device stayed {_name(reply.state)} for more than "
                    f"{self.rules.busy_timeout_s:g} s",
                    request=poll.action,
                )
            )
        if (
            self.rules.clear_status_when_overdue
            and reply.state == State.dfuDNBUSY
            and previous is not None
            and previous.state == State.dfuDNBUSY
            and poll.overdue_clears < self.rules.clear_status_when_overdue
        ):
            poll.overdue_clears += 1
            return Send(Request.CLRSTATUS)
        # early only where the device answers when done (not when it resets instead)
        early = self.rules.poll_lead_ms if poll.goal is Goal.DNLOAD else 0
        lead = min(early, reply.poll_timeout_ms - self.rules.min_poll_ms)
        poll_s = self.rules.poll_s(reply.poll_timeout_ms) - max(lead, 0) / 1000
        until = max(sent_at + poll_s, poll.started + poll.floor_s)
        wait = min(until, poll.deadline) - now
        return Wait(max(wait, self.rules.min_poll_ms / 1000))

    def on_status_failed(
        self, error: Exception, *, stalled: bool | None = None, gone: bool | None = None
    ) -> Decision:
        """The next step after a GETSTATUS that failed (``stalled``: a STALL/pipe error;
        ``gone``: the device dropped off the bus or timed out; by default, from the kind
        of ``error``)."""
        if stalled is None:
            stalled = isinstance(error, StallError)
        if gone is None:
            gone = isinstance(error, DeviceGoneError | TransferTimeoutError)
        poll = self._current()
        if poll.goal is Goal.LEAVE or (poll.goal is Goal.RESET and (stalled or gone)):
            return Done(None, gone=True)  # it left / reset, as expected
        last = poll.last
        if (
            stalled
            and last is not None
            and last.state in BUSY
            and last.poll_timeout_ms > 0
            and poll.stalls < self.rules.status_stall_retries
        ):
            poll.stalls += 1
            self.stall_retries += 1
            return Wait(self.rules.poll_s(last.poll_timeout_ms))
        return Fail(error, explain=stalled)

    def _to_idle(self, poll: _Poll, reply: StatusReply, now: float) -> Decision:
        if reply.state == State.dfuIDLE and reply.status == Status.OK:
            return Done(poll.first)
        if poll.deadline is None:
            poll.deadline = now + self.rules.busy_timeout_s
        if reply.state == State.dfuDNBUSY and now < poll.deadline:
            return Wait(self.rules.poll_s(reply.poll_timeout_ms))
        if poll.recoveries < self.rules.max_recoveries:
            request: Request | None = None
            clear = reply.status != Status.OK and self.rules.clear_status_outside_error
            if reply.state == State.dfuERROR or clear:
                request = Request.CLRSTATUS
            elif reply.state in ABORTABLE:
                request = Request.ABORT
            if request is not None:
                poll.recoveries += 1
                return Send(request)
        first = poll.first if poll.first is not None else reply
        return Fail(
            ProtocolError(
                "could not bring the device to dfuIDLE: it reports "
                f"{_name(reply.state)}/{_name(reply.status)}"
                f" (found {_name(first.state)} when opened)"
            )
        )

    def _leave(self, poll: _Poll, reply: StatusReply, now: float) -> Decision:
        if reply.status != Status.OK or reply.state == State.dfuERROR:
            return Fail(status_error(reply, poll.action), clear=True)
        waiting = {State.dfuMANIFEST_SYNC, State.dfuDNBUSY}
        if not poll.dfuse:
            # plain DFU is polled through dfuMANIFEST too: a reset before it reaches
            # dfuMANIFEST-WAIT-RESET (or dfuIDLE) would cut its manifestation short
            waiting.add(State.dfuMANIFEST)
        if reply.state in waiting:
            if poll.deadline is None:
                poll.deadline = now + self.rules.busy_timeout_s
            if now < poll.deadline:
                return Wait(self.rules.poll_s(reply.poll_timeout_ms))
        if reply.state == State.dfuMANIFEST_WAIT_RESET or (not poll.dfuse and not poll.tolerant):
            return Done(reply, reset=True, gone=True)
        if reply.state == State.dfuMANIFEST:
            # give the device the time it asked for to manifest before letting it go
            return Done(reply, linger_s=reply.poll_timeout_ms / 1000, gone=True)
        if reply.state != State.dfuIDLE:
            return Fail(
                ProtocolError(
                    f"{poll.action}: expected dfuMANIFEST after the zero-length DNLOAD, "
                    f"the device reports {_name(reply.state)}"
                )
            )
        return Done(reply, gone=poll.dfuse)
