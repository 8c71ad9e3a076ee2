"""Property tests: random raw request sequences against the simulated bootloader.

Whatever a host sends, the device answers with data, a stall or ENODEV/timeout (never a
Python error), its state is always a DFU-mode state, and every accepted request follows
the state table."""

from __future__ import annotations

import errno

import usb.core
from hypothesis import given, settings
from hypothesis import strategies as st

from dfuse.protocol.constants import State
from dfuse.sim import NO_QUIRKS, Stm32F411, Timing
from dfuse.sim.dfu import DFUSE_TRANSITIONS, Incoming
from tests.sim.conftest import make_rig

COMMANDS = [
    b"",
    b"\x00",
    b"\x21\x00\x00\x00\x08",
    b"\x21\x00\xc0\xff\x1f",
    b"\x41\x00\x00\x00\x08",
    b"\x41\x00\x00\x00\x00",
    b"\x41",
    b"\x77",
]

requests = st.one_of(
    st.tuples(st.just("dnload"), st.integers(0, 4), st.sampled_from(COMMANDS)),
    st.tuples(st.just("upload"), st.integers(0, 4), st.sampled_from([0, 4, 2048])),
    st.tuples(
        st.sampled_from(["getstatus", "getstate", "clrstatus", "abort", "detach", "wait"]),
        st.just(0),
        st.just(b""),
    ),
)


@settings(max_examples=40, deadline=None)
@given(st.lists(requests, max_size=25))
def test_random_requests_follow_the_table(seq: list[tuple[str, int, object]]) -> None:
    rig = make_rig(Stm32F411(timing=Timing(spread=0.0), quirks=NO_QUIRKS))  # DFU 1.1 strict
    model = rig.model
    for kind, value, arg in seq:
        if kind == "wait":
            rig.clock.sleep(0.6)
            continue
        was_busy = model.busy  # a held request is decided after the wait
        before = model.state
        try:
            if kind == "dnload":
                assert isinstance(arg, bytes)
                incoming = Incoming.DNLOAD if arg else Incoming.DNLOAD_ZERO
                rig.dev.ctrl_transfer(0x21, 1, value, 0, arg or None, 5000)
            elif kind == "upload":
                assert isinstance(arg, int)
                incoming = Incoming.UPLOAD
                rig.dev.ctrl_transfer(0xA1, 2, value, 0, arg, 5000)
            else:
                incoming = Incoming[kind.upper()]
                req = {"getstatus": 3, "getstate": 5, "clrstatus": 4, "abort": 6, "detach": 0}[kind]
                rtype = 0xA1 if kind in ("getstatus", "getstate") else 0x21
                length = {"getstatus": 6, "getstate": 1}.get(kind)
                rig.dev.ctrl_transfer(rtype, req, 0, 0, length, 5000)
        except usb.core.USBError as e:
            error: usb.core.USBError | None = e
        else:
            error = None
        assert model.state.name.startswith("dfu")
        if error is not None:
            if error.errno == errno.ENODEV:
                return  # left the bus (leave, reset): nothing more to check
            assert error.errno == errno.EPIPE
            assert model.state is State.dfuERROR
            continue
        if not was_busy:
            assert (before, incoming) in DFUSE_TRANSITIONS
