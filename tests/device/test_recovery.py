"""After a failed request the error says what the host was doing, and the same DfuDevice
brings the device back to dfuIDLE before its next operation."""

from __future__ import annotations

import random

import pytest

from dfuse.device import DfuDevice
from dfuse.errors import DeviceGoneError, StallError, TransferTimeoutError
from dfuse.protocol.session import SessionRules
from dfuse.sim import Event, Fault, FaultKind, SimBackend, Stm32F411

BASE = 0x08000000
IMAGE = random.Random(2).randbytes(3 * 2048)


def _open(chip: Stm32F411, *, busy_timeout: float | None = None) -> DfuDevice:
    return DfuDevice.open(backend=SimBackend([chip]), busy_timeout=busy_timeout)


def test_one_stalled_poll_of_a_busy_device_is_retried_and_counted() -> None:
    # GETSTATUS 1 is the open; 2-3 the erase; the 2nd poll of the erase (after a busy
    # reply) stalls, as F072/L4 ROMs do: retried after the poll timeout (dfu-util too)
    chip = Stm32F411(faults=[Fault(FaultKind.STALL, Event.GETSTATUS, nth=3)])
    dev = _open(chip)
    dev.download(IMAGE, address=BASE)
    assert chip.peek(BASE, len(IMAGE)) == IMAGE
    assert dev.status_retries == 1


def test_stalled_polls_past_the_bound_name_the_operation_and_the_same_object_recovers() -> None:
    # the erase's polls stall 4 times in a row: 3 retries (the default), then the error
    stalls = [Fault(FaultKind.STALL, Event.GETSTATUS, nth=n) for n in (3, 4, 5, 6)]
    chip = Stm32F411(faults=stalls)
    dev = _open(chip)
    with pytest.raises(StallError, match=r"while erasing sector 0 at 0x08000000"):
        dev.download(IMAGE, address=BASE)
    assert dev.status_retries == 3
    dev.download(IMAGE, address=BASE)  # same object: back to dfuIDLE first
    assert chip.peek(BASE, len(IMAGE)) == IMAGE


def test_stalled_polls_are_not_retried_when_the_rules_say_so() -> None:
    chip = Stm32F411(faults=[Fault(FaultKind.STALL, Event.GETSTATUS, nth=3)])
    dev = DfuDevice.open(backend=SimBackend([chip]), rules=SessionRules(status_stall_retries=0))
    with pytest.raises(StallError, match=r"while erasing sector 0 at 0x08000000"):
        dev.download(IMAGE, address=BASE)
    assert dev.status_retries == 0


def test_timed_out_poll_while_writing() -> None:
    chip = Stm32F411(faults=[Fault(FaultKind.TIMEOUT, Event.GETSTATUS, nth=5)])
    dev = _open(chip)
    with pytest.raises(TransferTimeoutError, match=r"while (writing block|setting the address)"):
        dev.download(IMAGE, address=BASE)
    dev.download(IMAGE, address=BASE)
    assert chip.peek(BASE, len(IMAGE)) == IMAGE


def test_device_busy_past_the_hosts_limit_is_waited_out_next_time() -> None:
    chip = Stm32F411(faults=[Fault(FaultKind.BUSY_LONGER, Event.ERASE, nth=1, extra=5.0)])
    dev = _open(chip, busy_timeout=2.0)
    with pytest.raises(TransferTimeoutError, match="stayed dfuDNBUSY"):
        dev.download(IMAGE, address=BASE)
    dev.busy_timeout = 30.0
    dev.download(IMAGE, address=BASE)
    assert chip.peek(BASE, len(IMAGE)) == IMAGE


def test_read_back_poll_failure_says_reading() -> None:
    chip = Stm32F411()
    dev = _open(chip)
    chip.inject(Fault(FaultKind.DISCONNECT, Event.GETSTATUS, nth=chip.requests["GETSTATUS"] + 1))
    with pytest.raises(DeviceGoneError, match=r"for reading 0x08000000 \(16 bytes\)"):
        dev.upload(BASE, 16)


def test_failure_while_opening_says_opening() -> None:
    chip = Stm32F411(faults=[Fault(FaultKind.STALL, Event.GETSTATUS, nth=1)])
    with pytest.raises(StallError, match=r"while opening 0483:df11"):
        _open(chip)
