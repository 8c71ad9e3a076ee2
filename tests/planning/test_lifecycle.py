"""The driver's housekeeping decisions (dfuse.planning.lifecycle) and the failed-request
and leave decisions of dfuse.planning.record, without a device."""

from __future__ import annotations

import dataclasses

import pytest

from dfuse.errors import (
    DeviceGoneError,
    DeviceStatusError,
    ReadProtectedError,
    StallError,
    UsageError,
)
from dfuse.planning import lifecycle as life
from dfuse.planning import record
from dfuse.protocol.constants import State, Status
from dfuse.protocol.descriptors import Attributes, FunctionalDescriptor, StatusReply
from dfuse.protocol.session import Event, Goal, SessionRules
from dfuse.transport.base import AltSetting, DeviceInfo, DeviceMode


def _fd(attributes: Attributes, detach_ms: int = 255) -> FunctionalDescriptor:
    return FunctionalDescriptor(attributes, detach_ms, 2048, 0x011A)


def _info(*numbers: int) -> DeviceInfo:
    return DeviceInfo(0x0483, 0xDF11, 0x2200, None, None, None, 1, (), 2, DeviceMode.DFU, 0,
                      tuple(AltSetting(n, f"@alt {n}") for n in numbers), None)  # fmt: skip


@pytest.mark.parametrize(
    ("closed", "mode", "needs_dfuse", "words"),
    [
        (True, DeviceMode.DFU, False, "cannot erase: the device is closed"),
        (False, DeviceMode.RUNTIME, False, "cannot erase: the device is in run-time mode"),
        (False, DeviceMode.DFU, True, "cannot erase: the device does not speak DfuSe"),
        (True, DeviceMode.RUNTIME, True, "cannot erase: the device is closed"),
    ],
)
def test_check_usable_refuses_naming_the_action(
    closed: bool, mode: DeviceMode, needs_dfuse: bool, words: str
) -> None:
    with pytest.raises(UsageError, match=words):
        life.check_usable("erase", closed=closed, mode=mode, needs_dfuse=needs_dfuse)


def test_check_usable_lets_an_open_dfu_device_through() -> None:
    life.check_usable("erase", closed=False, mode=DeviceMode.DFU, needs_dfuse=False)


@pytest.mark.parametrize(
    ("fd", "timeout_ms", "expected"),
    [
        (None, None, (1000, True)),  # no descriptor: 1 s, and the host resets
        (None, 70000, (0xFFFF, True)),  # wValue is 16 bits
        (_fd(Attributes(0), 255), None, (255, True)),
        (_fd(Attributes.WILL_DETACH, 255), None, (255, False)),  # detaches by itself
        (_fd(Attributes.WILL_DETACH, 255), 10, (10, False)),
    ],
)
def test_detach_request(
    fd: FunctionalDescriptor | None, timeout_ms: int | None, expected: tuple[int, bool]
) -> None:
    info = dataclasses.replace(_info(0), mode=DeviceMode.RUNTIME, functional=fd)
    assert life.detach_request(info, timeout_ms) == expected


def test_detach_request_refuses_a_device_in_dfu_mode() -> None:
    with pytest.raises(UsageError, match="already in DFU mode"):
        life.detach_request(_info(0), None)


@pytest.mark.parametrize("max_block", [2, 65535])
def test_check_max_block_takes_2_to_65535(max_block: int) -> None:
    life.check_max_block(max_block)


@pytest.mark.parametrize("max_block", [-1, 0, 1, 65536])
def test_check_max_block_refuses_the_rest(max_block: int) -> None:
    with pytest.raises(UsageError, match=f"max_block must be in 2..65535, got {max_block}"):
        life.check_max_block(max_block)


def test_is_tolerant_reads_bit_manifestation_tolerant() -> None:
    assert life.is_tolerant(_fd(Attributes.MANIFESTATION_TOLERANT))
    assert not life.is_tolerant(_fd(Attributes.WILL_DETACH))
    assert not life.is_tolerant(None)


def test_reopen_pause_retries_until_the_deadline_then_names_the_wait() -> None:
    exc = StallError("stalled")
    assert life.reopen_pause(exc, 1.0, 2.0, 2.0, "STM32 BOOTLOADER") == life.REOPEN_RETRY_S
    with pytest.raises(DeviceGoneError, match=r"within 2 s \(stalled\)") as caught:
        life.reopen_pause(exc, 2.0, 2.0, 2.0, "STM32 BOOTLOADER")
    assert caught.value.__cause__ is exc
    assert caught.value.request == "waiting for STM32 BOOTLOADER to re-enumerate"


@pytest.mark.parametrize(
    ("previous", "numbers", "current", "expected"),
    [(1, (0, 1), 0, 1), (1, (0, 1), 1, None), (2, (0, 1), 0, None), (None, (0, 1), 0, None)],
)
def test_reselect(
    previous: int | None, numbers: tuple[int, ...], current: int, expected: int | None
) -> None:
    assert life.reselect(previous, _info(*numbers), current) == expected


def test_explained_prefers_what_the_device_says() -> None:
    exc = StallError("stalled")
    vendor = StatusReply(Status.errVENDOR, 0, State.dfuERROR)
    decision = record.explained(exc, vendor, "erasing sector 1")
    assert isinstance(decision.error, ReadProtectedError)
    assert decision.clear
    target = StatusReply(Status.errTARGET, 0, State.dfuERROR)
    error = record.explained(exc, target, "erasing sector 1").error
    assert isinstance(error, DeviceStatusError)
    assert error.status == Status.errTARGET


@pytest.mark.parametrize("reply", [None, StatusReply(Status.OK, 0, State.dfuIDLE)])
def test_explained_otherwise_names_the_action(reply: StatusReply | None) -> None:
    decision = record.explained(StallError("stalled"), reply, "erasing sector 1")
    assert isinstance(decision.error, StallError)
    assert not decision.clear
    assert str(decision.error) == "stalled (while erasing sector 1)"


@pytest.mark.parametrize("status_after_leave", [True, False])
def test_zero_length_leaves(status_after_leave: bool) -> None:
    rules = SessionRules(status_after_leave=status_after_leave)
    request = record.zero_length(5, rules)
    assert (request.block, bytes(request.payload), request.goal) == (5, b"", Goal.LEAVE)
    assert request.event is Event.DNLOAD_ZERO
    assert request.may_vanish
    assert request.poll is status_after_leave
    assert not request.dfuse
    assert request.what == "DNLOAD block 5 (0 bytes, leave)"
    assert not record.Dnload(2, b"x", "writing").may_vanish
