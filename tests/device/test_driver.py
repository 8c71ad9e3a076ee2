"""The thin driver's fixes: a busy device's strings (R1), bad arguments (G-a), read
protection, automatic detach, uploads past the end of a memory, DownloadOptions,
error fields."""

from __future__ import annotations

import errno
import random
from typing import Any

import pytest
import usb.core

from dfuse.device import DfuDevice, DownloadOptions
from dfuse.errors import (
    DeviceStatusError,
    ReadProtectedError,
    SafetyError,
    TransferTimeoutError,
    TransportError,
    UsageError,
)
from dfuse.file.model import DfuSeFile, Target
from dfuse.protocol.constants import Status
from dfuse.sim import Event, Fault, FaultKind, SimBackend, Stm32F411, Stm32F411App
from dfuse.transport.base import DeviceMode

BASE = 0x08000000
IMAGE = random.Random(3).randbytes(5000)


def test_r1_reopening_a_device_still_busy_reads_its_layout() -> None:
    # the device stays busy past the host's limit; opened again at once, it answered no
    # string descriptor while busy: the host waits it out and reads them again
    chip = Stm32F411(faults=[Fault(FaultKind.BUSY_LONGER, Event.ERASE, nth=1, extra=20.0)])
    backend = SimBackend([chip])
    dev = DfuDevice.open(backend=backend, busy_timeout=2.0)
    with pytest.raises(TransferTimeoutError, match="stayed dfuDNBUSY"):
        dev.download(IMAGE, address=BASE)
    dev.close()
    again = DfuDevice.open(backend=backend)
    assert again.layout is not None
    assert again.layout.address == BASE
    assert again.info.serial == chip.serial
    again.download(IMAGE, address=BASE)
    assert chip.peek(BASE, len(IMAGE)) == IMAGE


class _MuteStrings(SimBackend):
    """A backend whose device never sends a string descriptor (a device still busy)."""

    def ctrl_transfer(self, dev_handle: Any, bmRequestType: int, bRequest: int,  # noqa: N803
                      wValue: int, wIndex: int, data: Any, timeout: int) -> int:  # noqa: N803  # fmt: skip
        if bmRequestType == 0x80 and bRequest == 6 and wValue >> 8 == 3:
            raise usb.core.USBTimeoutError("timed out", -7, errno.ETIMEDOUT)
        return int(super().ctrl_transfer(dev_handle, bmRequestType, bRequest, wValue, wIndex,
                                         data, timeout))  # fmt: skip


def test_r1_strings_that_never_come_are_an_error_that_says_why() -> None:
    with pytest.raises(TransferTimeoutError, match="may still be busy") as info:
        DfuDevice.open(backend=_MuteStrings([Stm32F411()]))
    assert info.value.errno == errno.ETIMEDOUT


def test_ga_bad_addresses_are_usage_errors_before_any_traffic() -> None:
    chip = Stm32F411()
    dev = DfuDevice.open(backend=SimBackend([chip]))
    before = dict(chip.requests)
    for bad in (-1, 1 << 32, True):
        with pytest.raises(UsageError, match="is not an address") as info:
            dev.download(IMAGE, address=bad)
        assert info.value.value == bad
        with pytest.raises(UsageError):
            dev.plan(IMAGE, leave_address=bad)
    with pytest.raises(UsageError, match="erase='bogus'"):
        dev.download(IMAGE, address=BASE, erase="bogus")
    with pytest.raises(UsageError, match="address="):
        dev.download(IMAGE)  # raw bytes with no address
    assert chip.requests == before


def test_read_protected_board_names_unprotect() -> None:
    chip = Stm32F411()
    chip.set_read_protection(1)
    dev = DfuDevice.open(backend=SimBackend([chip]))
    with pytest.raises(ReadProtectedError, match=r"dfuse unprotect --yes") as info:
        dev.download(IMAGE, address=BASE)
    assert isinstance(info.value, DeviceStatusError)
    assert info.value.status == Status.errVENDOR
    for read in (lambda: dev.upload(BASE, 16), lambda: dev.erase([BASE])):
        with pytest.raises(ReadProtectedError, match="read-protected"):
            read()
    dev.read_unprotect(confirm=True, reconnect=True)
    dev.download(IMAGE, address=BASE)
    assert chip.peek(BASE, len(IMAGE)) == IMAGE


def test_download_on_a_running_application_detaches_first() -> None:
    app = Stm32F411App(serial="APP7")
    dev = DfuDevice.open(backend=SimBackend([app]))
    modes = [dev.info.mode]
    dev.download(IMAGE, address=BASE)
    modes.append(dev.info.mode)
    assert modes == [DeviceMode.RUNTIME, DeviceMode.DFU]
    assert app.bootloader is not None
    assert app.bootloader.peek(BASE, len(IMAGE)) == IMAGE


def test_upload_past_the_end_of_the_memory_is_refused_before_any_request() -> None:
    chip = Stm32F411()
    dev = DfuDevice.open(backend=SimBackend([chip]))
    end = BASE + 512 * 1024
    before = dict(chip.requests)
    with pytest.raises(UsageError, match="goes past the memory 'Internal Flash'"):
        dev.upload(end - 16, 32)
    with pytest.raises(UsageError, match="must not be negative"):
        dev.upload(BASE, -1)
    assert chip.requests == before
    assert dev.upload(end - 16, 16) == chip.peek(end - 16, 16)


def test_download_options_are_one_frozen_object() -> None:
    chip = Stm32F411()
    dev = DfuDevice.open(backend=SimBackend([chip]))
    options = DownloadOptions(address=BASE, verify=False)
    assert options.replace(leave=True).leave
    with pytest.raises(UsageError, match="unknown download option"):
        options.replace(bogus=1)
    (plan,) = dev.plan(IMAGE, options)
    assert plan.plan.verify_bytes == 0
    (plan,) = dev.plan(IMAGE, options, verify=True)  # a keyword wins over the object
    assert plan.plan.verify_bytes == len(IMAGE)
    dev.download(IMAGE, options)
    assert chip.peek(BASE, len(IMAGE)) == IMAGE


def test_errors_carry_fields() -> None:
    chip = Stm32F411()
    dev = DfuDevice.open(backend=SimBackend([chip]))
    other = DfuSeFile((Target.from_segments([(BASE, b"x")], alt_setting=0),), 0x1234, 0x5678)
    with pytest.raises(SafetyError) as info:
        dev.download(other)
    assert info.value.override == "force"
    option_image = DfuSeFile((Target.from_segments([(0x1FFFC000, b"\xff" * 16)], alt_setting=1),))
    with pytest.raises(SafetyError) as info:
        dev.download(option_image)
    assert info.value.override == "allow_option_bytes"
    with pytest.raises(SafetyError) as info:
        dev.read_unprotect()
    assert info.value.override == "confirm"
    assert TransportError("x", cause=OSError(errno.EACCES, "denied")).errno == errno.EACCES
    assert TransportError("x", errno=errno.ENODEV).errno == errno.ENODEV
    assert TransportError("x").errno is None
