"""DfuDevice's one loop (``_follow``): whatever stops a verb part-way, an error of the
transport or an interrupt (KeyboardInterrupt, SystemExit) between two operations, the
verb's flow sees it and runs its cleanup (a plain DFU device that leaves is closed), its
causes are kept, nothing is chained to it that did not happen while handling it, and no
flow is left suspended (to be closed later by the garbage collector, where a cleanup
cannot run)."""

from __future__ import annotations

import gc
import inspect
import random
import sys
import traceback
from collections.abc import Callable, Iterator
from types import FrameType, TracebackType
from typing import Any

import pytest

from dfuse.device import DfuDevice
from dfuse.errors import StallError
from dfuse.protocol.constants import Request, State
from dfuse.sim import Event, Fault, FaultKind, PlainDfuDevice, SimBackend, Stm32F411

IMAGE = random.Random(5).randbytes(5000)
BASE = 0x08000000


@pytest.fixture
def unraisable(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """What the interpreter could not raise (e.g. a flow that ignored GeneratorExit)."""
    seen: list[str] = []

    def hook(u: Any) -> None:
        seen.append(f"{u.exc_type.__name__}: {u.exc_value} in {u.object!r}")

    monkeypatch.setattr(sys, "unraisablehook", hook)
    yield seen
    gc.collect()


def _flows_of(tb: TracebackType | None) -> list[object]:
    """The flows the device's loop was following when ``tb`` was raised through it."""
    out = []
    while tb is not None:
        if tb.tb_frame.f_code is DfuDevice._follow.__code__:
            out.append(tb.tb_frame.f_locals["flow"])
        tb = tb.tb_next
    return out


def _count_operations(dev: DfuDevice) -> list[int]:
    performed = [0]
    real = dev._perform

    def perform(op: Any) -> object:
        performed[0] += 1
        return real(op)

    dev._perform = perform  # type: ignore[method-assign]
    return performed


def _interrupt_in_loop(dev: DfuDevice, after: int, exc: BaseException) -> Callable[[], None]:
    """Raise ``exc`` in the device's loop itself, between two operations, once ``after``
    were performed: where a Ctrl-C lands that arrives as an operation returns. The
    returned function stops it."""
    performed = _count_operations(dev)
    previous = sys.gettrace()
    fired = [False]

    def local(frame: FrameType, event: str, _arg: object) -> Any:
        if event == "line" and performed[0] >= after and not fired[0]:
            fired[0] = True
            raise exc
        return local

    def tracer(frame: FrameType, _event: str, _arg: object) -> Any:
        return local if frame.f_code is DfuDevice._follow.__code__ else None

    sys.settrace(tracer)
    return lambda: sys.settrace(previous)


def _fail_transport(dev: DfuDevice, request: Request, nth: int, exc: BaseException) -> None:
    """The transport raises ``exc`` on the ``nth`` ``request``."""
    transport, count = dev.transport, [0]
    for name in ("control_in", "control_out"):
        real = getattr(transport, name)

        def hook(req: int, *args: Any, _real: Any = real, **kwargs: Any) -> Any:
            if req == request:
                count[0] += 1
                if count[0] == nth:
                    raise exc
            return _real(req, *args, **kwargs)

        setattr(transport, name, hook)


@pytest.mark.parametrize("exc", [KeyboardInterrupt(), SystemExit(2)])
def test_an_interrupt_between_two_operations_still_closes_a_plain_device_that_leaves(
    exc: BaseException, unraisable: list[str]
) -> None:
    chip = PlainDfuDevice(manifestation_tolerant=True)
    dev = DfuDevice.open(backend=SimBackend([chip]))
    uploads = chip.requests["UPLOAD"]
    stop = _interrupt_in_loop(dev, after=13, exc=exc)  # 5 blocks, the leave, 2 verify reads
    try:
        with pytest.raises(type(exc)) as info:
            dev.download(IMAGE, leave=True)
    finally:
        stop()
    assert chip.requests["UPLOAD"] > uploads  # it was reading the firmware back
    assert dev.closed  # the verify's cleanup ran: the device has left DFU mode
    assert info.value.__context__ is None
    flows = _flows_of(info.tb)
    assert flows
    assert all(inspect.getgeneratorstate(f) == inspect.GEN_CLOSED for f in flows)  # type: ignore[arg-type]
    del info, flows
    gc.collect()
    assert unraisable == []  # no flow was closed by the collector


def test_an_interrupt_between_two_operations_leaves_no_flow_suspended(
    unraisable: list[str],
) -> None:
    chip = Stm32F411()
    dev = DfuDevice.open(backend=SimBackend([chip]))
    stop = _interrupt_in_loop(dev, after=6, exc=KeyboardInterrupt())
    try:
        with pytest.raises(KeyboardInterrupt) as info:
            dev.download(IMAGE, address=BASE)
    finally:
        stop()
    flows = _flows_of(info.tb)
    assert flows
    assert all(inspect.getgeneratorstate(f) == inspect.GEN_CLOSED for f in flows)  # type: ignore[arg-type]
    del info, flows
    dev.download(IMAGE, address=BASE)  # the same object recovers
    assert chip.peek(BASE, len(IMAGE)) == IMAGE
    assert unraisable == []


@pytest.mark.parametrize("leave", [True, False])
def test_a_keyboard_interrupt_in_the_transport_runs_the_plain_verify_cleanup(
    leave: bool, unraisable: list[str]
) -> None:
    chip = PlainDfuDevice(manifestation_tolerant=True)
    dev = DfuDevice.open(backend=SimBackend([chip]))
    _fail_transport(dev, Request.UPLOAD, 1, KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt) as info:
        dev.download(IMAGE, leave=leave)
    assert dev.closed  # a plain DFU download always ends with its manifestation: it leaves
    text = "".join(traceback.format_exception(info.value))
    assert "During handling of the above exception" not in text
    assert info.value.__cause__ is None
    assert info.value.__context__ is None
    assert chip.peek(BASE, len(IMAGE)) == IMAGE


def test_a_device_error_keeps_its_cause_and_gains_no_context(unraisable: list[str]) -> None:
    chip = Stm32F411(faults=[Fault(FaultKind.STALL, Event.UPLOAD, nth=1)])
    dev = DfuDevice.open(backend=SimBackend([chip]))
    with pytest.raises(StallError) as info:
        dev.download(IMAGE, address=BASE)
    err = info.value
    assert type(err.__cause__) is StallError  # the transport's, with the request named
    assert "UPLOAD block 2" in str(err.__cause__)
    assert err.__context__ is err.__cause__  # raise ... from, nothing else
    text = "".join(traceback.format_exception(err))
    assert "During handling of the above exception" not in text
    assert all(inspect.getgeneratorstate(f) == inspect.GEN_CLOSED for f in _flows_of(info.tb))  # type: ignore[arg-type]
    assert chip.state == State.dfuIDLE
