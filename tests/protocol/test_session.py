"""The host session against literal tables written from DFU 1.1 (appendix A) and AN3156,
in the manner of h11's tests/test_state.py: no simulator, no USB, no clock."""

from __future__ import annotations

import itertools

import pytest

from dfuse.errors import (
    DeviceStatusError,
    ProtocolError,
    ReadProtectedError,
    StallError,
    TransferTimeoutError,
    UsageError,
)
from dfuse.protocol.constants import Request, State, Status
from dfuse.protocol.descriptors import StatusReply
from dfuse.protocol.session import (
    HOST_TRANSITIONS,
    Done,
    Event,
    Fail,
    Goal,
    Send,
    Session,
    SessionRules,
    Wait,
)

S = State
E = Event

#: Written from DFU 1.1 appendix A.2 (state transition summary) and AN3156 §4-6; ABORT
#: in the sync/idle states of a transfer as ST's usbd_dfu.c DFU_Abort accepts it.
EXPECTED = {
    (S.dfuIDLE, E.DNLOAD): S.dfuDNLOAD_SYNC,  # A.2.3: DFU_DNLOAD, wLength > 0
    (S.dfuIDLE, E.DNLOAD_ZERO): S.dfuMANIFEST_SYNC,  # AN3156 §6.3: DfuSe leave
    (S.dfuIDLE, E.UPLOAD): S.dfuUPLOAD_IDLE,  # A.2.3: DFU_UPLOAD
    (S.dfuIDLE, E.ABORT): S.dfuIDLE,  # A.2.3: DFU_ABORT
    (S.dfuDNLOAD_SYNC, E.ABORT): S.dfuIDLE,  # usbd_dfu.c
    (S.dfuDNLOAD_IDLE, E.DNLOAD): S.dfuDNLOAD_SYNC,  # A.2.6
    (S.dfuDNLOAD_IDLE, E.DNLOAD_ZERO): S.dfuMANIFEST_SYNC,  # A.2.6: wLength = 0
    (S.dfuDNLOAD_IDLE, E.ABORT): S.dfuIDLE,  # A.2.6
    (S.dfuMANIFEST_SYNC, E.ABORT): S.dfuIDLE,  # usbd_dfu.c
    (S.dfuUPLOAD_IDLE, E.UPLOAD): S.dfuUPLOAD_IDLE,  # A.2.10 (a short block: dfuIDLE)
    (S.dfuUPLOAD_IDLE, E.ABORT): S.dfuIDLE,  # A.2.10
    (S.dfuERROR, E.CLRSTATUS): S.dfuIDLE,  # A.2.11: only CLRSTATUS leaves dfuERROR
}


def reply(state: State, status: Status = Status.OK, poll: int = 0) -> StatusReply:
    return StatusReply(status, poll, state)


def test_the_table_is_the_literal_one() -> None:
    assert HOST_TRANSITIONS == EXPECTED


@pytest.mark.parametrize(("state", "event"), list(itertools.product(State, Event)))
def test_every_cell(state: State, event: Event) -> None:
    session = Session(state=state)
    if (state, event) in EXPECTED:
        session.sent(event)
        assert session.state == EXPECTED[(state, event)]
    else:
        # a request the device would stall (dfuERROR/errSTALLEDPKT): a host bug
        with pytest.raises(UsageError, match=f"sent {event.value} in {state.name}"):
            session.sent(event)
        assert session.state == state


@pytest.mark.parametrize(
    ("state", "needed"),
    [
        (S.dfuIDLE, ()),
        (S.dfuDNLOAD_IDLE, ()),  # a data block continues the download
        (S.dfuUPLOAD_IDLE, (Request.ABORT,)),  # AN3156: ABORT after an upload
        (S.dfuDNLOAD_SYNC, (Request.ABORT,)),
        (S.dfuMANIFEST_SYNC, (Request.ABORT,)),
    ],
)
def test_what_goes_before_a_dnload(state: State, needed: tuple[Request, ...]) -> None:
    assert Session(state=state).before(E.DNLOAD) == needed


def test_upload_after_a_command_needs_abort() -> None:
    # AN3156 §6: reads need dfuIDLE or dfuUPLOAD-IDLE; after Set Address: ABORT first
    assert Session(state=S.dfuDNLOAD_IDLE).before(E.UPLOAD) == (Request.ABORT,)
    assert Session(state=S.dfuUPLOAD_IDLE).before(E.UPLOAD) == ()


# --------------------------------------------------------------------------- DNLOAD polls


def _dnload(rules: SessionRules | None = None, goal: Goal = Goal.DNLOAD) -> Session:
    session = Session(rules or SessionRules(), state=S.dfuIDLE)
    session.sent(E.DNLOAD)
    session.start(goal, "erasing sector 1", 0.0)
    return session


def test_dnload_poll_busy_then_idle() -> None:
    # AN3156 §6: the DNLOAD executes at the GETSTATUS (dfuDNBUSY + bwPollTimeout), the
    # next GETSTATUS answers dfuDNLOAD-IDLE
    session = _dnload()
    assert session.on_status(reply(S.dfuDNBUSY, poll=250), 0.001, 0.0) == Wait(0.249)
    assert session.state == S.dfuDNBUSY
    done = session.on_status(reply(S.dfuDNLOAD_IDLE), 0.251, 0.250)
    assert done == Done(reply(S.dfuDNLOAD_IDLE))
    assert session.state == S.dfuDNLOAD_IDLE


def test_poll_timeout_floor_and_ceiling() -> None:
    session = _dnload()
    assert session.on_status(reply(S.dfuDNBUSY, poll=0), 0.0, 0.0) == Wait(0.001)
    session = _dnload(SessionRules(min_poll_ms=5, max_poll_ms=100))
    assert session.on_status(reply(S.dfuDNBUSY, poll=0), 0.0, 0.0) == Wait(0.005)
    assert session.on_status(reply(S.dfuDNBUSY, poll=5000), 0.0, 0.0) == Wait(0.1)


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (Status.errWRITE, DeviceStatusError),
        (Status.errTARGET, DeviceStatusError),  # AN3156: a bad address
        (Status.errVENDOR, ReadProtectedError),  # AN3156: read protection active
    ],
)
def test_error_status_fails_and_clears(status: Status, error: type[Exception]) -> None:
    session = _dnload()
    decision = session.on_status(reply(S.dfuERROR, status), 0.0, 0.0)
    assert isinstance(decision, Fail)
    assert decision.clear  # CLRSTATUS: the only way out of dfuERROR
    assert type(decision.error) is error
    assert isinstance(decision.error, DeviceStatusError)
    assert decision.error.status == status
    assert decision.error.state == S.dfuERROR
    assert decision.error.action == "erasing sector 1"


def test_read_protected_names_unprotect() -> None:
    session = _dnload()
    decision = session.on_status(reply(S.dfuERROR, Status.errVENDOR), 0.0, 0.0)
    assert isinstance(decision, Fail)
    assert "read-protected" in str(decision.error)
    assert "dfuse unprotect --yes" in str(decision.error)


def test_unexpected_state_is_a_protocol_error() -> None:
    decision = _dnload().on_status(reply(S.dfuUPLOAD_IDLE), 0.0, 0.0)
    assert isinstance(decision, Fail)
    assert type(decision.error) is ProtocolError
    assert "expected dfuDNLOAD_IDLE, the device reports dfuUPLOAD_IDLE" in str(decision.error)


def test_busy_past_the_limit_times_out() -> None:
    session = _dnload(SessionRules(busy_timeout_s=2.0))
    assert isinstance(session.on_status(reply(S.dfuDNBUSY, poll=500), 0.0, 0.0), Wait)
    # the last wait is cut at the deadline
    assert session.on_status(reply(S.dfuDNBUSY, poll=5000), 1.5, 1.5) == Wait(0.5)
    decision = session.on_status(reply(S.dfuDNBUSY, poll=500), 2.0, 2.0)
    assert isinstance(decision, Fail)
    assert isinstance(decision.error, TransferTimeoutError)
    assert "stayed dfuDNBUSY for more than 2 s" in str(decision.error)


def test_stalled_status_after_a_busy_reply_is_retried_with_a_bound() -> None:
    # dfu-util dfuse.c: LIBUSB_ERROR_PIPE with a poll timeout known: retry, at most 3
    session = _dnload()
    session.on_status(reply(S.dfuDNBUSY, poll=20), 0.0, 0.0)
    stall = StallError("pipe")
    for _ in range(3):
        assert session.on_status_failed(stall, stalled=True, gone=False) == Wait(0.02)
    assert session.stall_retries == 3
    assert session.on_status_failed(stall, stalled=True, gone=False) == Fail(stall, explain=True)


def test_stalled_status_with_no_busy_reply_is_not_retried() -> None:
    stall = StallError("pipe")
    session = _dnload()
    assert session.on_status_failed(stall, stalled=True, gone=False) == Fail(stall, explain=True)
    session = _dnload(SessionRules(status_stall_retries=0))
    session.on_status(reply(S.dfuDNBUSY, poll=20), 0.0, 0.0)
    assert session.on_status_failed(stall, stalled=True, gone=False) == Fail(stall, explain=True)


def test_h7_overdue_busy_is_cleared_twice() -> None:
    # STM32H7 rev V stays dfuDNBUSY past its poll timeout and needs CLRSTATUS twice
    session = _dnload(SessionRules(clear_status_when_overdue=2))
    assert isinstance(session.on_status(reply(S.dfuDNBUSY, poll=10), 0.0, 0.0), Wait)
    assert session.on_status(reply(S.dfuDNBUSY, poll=10), 0.01, 0.01) == Send(Request.CLRSTATUS)
    assert session.on_status(reply(S.dfuDNBUSY, poll=10), 0.02, 0.02) == Send(Request.CLRSTATUS)
    assert isinstance(session.on_status(reply(S.dfuDNBUSY, poll=10), 0.03, 0.03), Wait)
    assert session.on_status(reply(S.dfuIDLE), 0.04, 0.04) == Done(reply(S.dfuIDLE))
    # without the rule, the default keeps polling
    session = _dnload()
    session.on_status(reply(S.dfuDNBUSY, poll=10), 0.0, 0.0)
    assert isinstance(session.on_status(reply(S.dfuDNBUSY, poll=10), 0.01, 0.01), Wait)


@pytest.mark.parametrize("state", [S.dfuDNLOAD_IDLE, S.dfuMANIFEST, S.dfuIDLE])
def test_reset_goal_accepts_a_device_that_applies_and_resets(state: State) -> None:
    # AN3156: option bytes and Read Unprotect: the device resets right after
    session = _dnload(goal=Goal.RESET)
    assert session.on_status(reply(state), 0.0, 0.0) == Done(reply(state))
    session = _dnload(goal=Goal.RESET)
    gone = session.on_status_failed(StallError("pipe"), stalled=True, gone=False)
    assert gone == Done(None, gone=True)


# --------------------------------------------------------------------------- to dfuIDLE


def _idle(rules: SessionRules | None = None) -> Session:
    session = Session(rules or SessionRules())
    session.start(Goal.IDLE, "opening", 0.0)
    return session


@pytest.mark.parametrize(
    ("found", "recovery"),
    [
        (reply(S.dfuERROR, Status.errFIRMWARE), Request.CLRSTATUS),  # F4: no valid app
        (reply(S.dfuERROR, Status.errSTALLEDPKT), Request.CLRSTATUS),
        (reply(S.dfuDNLOAD_IDLE), Request.ABORT),
        (reply(S.dfuUPLOAD_IDLE), Request.ABORT),
        (reply(S.dfuDNLOAD_SYNC), Request.ABORT),
        (reply(S.dfuMANIFEST_SYNC), Request.ABORT),
    ],
)
def test_to_idle_recovers(found: StatusReply, recovery: Request) -> None:
    session = _idle()
    assert session.on_status(found, 0.0, 0.0) == Send(recovery)
    # the reply found first is what the operation returns
    assert session.on_status(reply(S.dfuIDLE), 0.0, 0.0) == Done(found)


def test_to_idle_waits_out_busy_then_gives_up_after_three_recoveries() -> None:
    session = _idle()
    assert session.on_status(reply(S.dfuDNBUSY, poll=100), 0.0, 0.0) == Wait(0.1)
    for _ in range(3):
        assert session.on_status(reply(S.dfuERROR, Status.errUNKNOWN), 0.1, 0.1) == Send(
            Request.CLRSTATUS
        )
    decision = session.on_status(reply(S.dfuERROR, Status.errUNKNOWN), 0.1, 0.1)
    assert isinstance(decision, Fail)
    assert "could not bring the device to dfuIDLE" in str(decision.error)
    assert "found dfuDNBUSY when opened" in str(decision.error)


def test_non_ok_status_outside_error_is_aborted_when_clrstatus_would_stall() -> None:
    # ST's usbd_dfu.c turns CLRSTATUS outside dfuERROR into dfuERROR/errUNKNOWN
    odd = reply(S.dfuDNLOAD_IDLE, Status.errUNKNOWN)
    assert _idle().on_status(odd, 0.0, 0.0) == Send(Request.CLRSTATUS)
    rules = SessionRules(clear_status_outside_error=False)
    assert _idle(rules).on_status(odd, 0.0, 0.0) == Send(Request.ABORT)


def test_appidle_cannot_be_brought_to_dfuidle() -> None:
    decision = _idle().on_status(reply(S.appIDLE), 0.0, 0.0)
    assert isinstance(decision, Fail)


# --------------------------------------------------------------------------- leave


def _leave(dfuse: bool = True, tolerant: bool = False) -> Session:
    session = Session(state=S.dfuIDLE)
    session.sent(E.DNLOAD_ZERO)
    session.start(Goal.LEAVE, "leaving DFU mode", 0.0, dfuse=dfuse, tolerant=tolerant)
    return session


def test_dfuse_leave_manifests_and_lets_go() -> None:
    # AN3156 §6.3: GETSTATUS answers dfuMANIFEST; the device detaches
    decision = _leave().on_status(reply(S.dfuMANIFEST, poll=30), 0.0, 0.0)
    assert decision == Done(reply(S.dfuMANIFEST, poll=30), linger_s=0.03, gone=True)


def test_leave_may_end_in_a_stall_or_no_device() -> None:
    for stalled, gone in ((True, False), (False, True)):
        decision = _leave().on_status_failed(StallError("x"), stalled=stalled, gone=gone)
        assert decision == Done(None, gone=True)


def test_manifest_wait_reset_is_reset() -> None:
    decision = _leave().on_status(reply(S.dfuMANIFEST_WAIT_RESET), 0.0, 0.0)
    assert decision == Done(reply(S.dfuMANIFEST_WAIT_RESET), reset=True, gone=True)


def test_plain_dfu_is_polled_through_manifest() -> None:
    session = _leave(dfuse=False, tolerant=True)
    assert session.on_status(reply(S.dfuMANIFEST_SYNC, poll=5), 0.0, 0.0) == Wait(0.005)
    assert session.on_status(reply(S.dfuMANIFEST, poll=5), 0.0, 0.0) == Wait(0.005)
    # a manifestation-tolerant device comes back to dfuIDLE and stays
    assert session.on_status(reply(S.dfuIDLE), 0.0, 0.0) == Done(reply(S.dfuIDLE))
    # one that is not tolerant waits for a reset
    session = _leave(dfuse=False, tolerant=False)
    assert session.on_status(reply(S.dfuIDLE), 0.0, 0.0).reset  # type: ignore[union-attr]


def test_leave_with_an_error_status_fails() -> None:
    decision = _leave().on_status(reply(S.dfuERROR, Status.errNOTDONE), 0.0, 0.0)
    assert isinstance(decision, Fail)
    assert isinstance(decision.error, DeviceStatusError)


def test_rules_are_checked() -> None:
    with pytest.raises(UsageError):
        SessionRules(min_poll_ms=-1)
    with pytest.raises(UsageError):
        SessionRules(min_poll_ms=10, max_poll_ms=5)
    with pytest.raises(UsageError):
        SessionRules(busy_timeout_s=0)
    with pytest.raises(UsageError, match="no poll in progress"):
        Session().on_status(reply(S.dfuIDLE), 0.0, 0.0)


@pytest.mark.parametrize(("state", "event"), list(itertools.product(State, Event)))
def test_allows_is_the_table(state: State, event: Event) -> None:
    assert Session(state=state).allows(event) is ((state, event) in EXPECTED)
