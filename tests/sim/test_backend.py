"""SimBackend as pyusb sees it: errors like libusb's, hot-plug, handles, run-time device."""

from __future__ import annotations

import errno

import pytest
import usb.core
import usb.util
from hypothesis import given, settings
from hypothesis import strategies as st

from dfuse.protocol.constants import State
from dfuse.sim import (
    GD32_QUIRKS,
    STM32C0_QUIRKS,
    SimBackend,
    Stm32F411,
    Stm32F411App,
    VirtualClock,
)
from dfuse.sim.backend import usb_error
from dfuse.sim.flash import NorFlash, OtpMemory
from tests.sim.conftest import make_rig


def test_default_clock_is_virtual_and_shared() -> None:
    a, b = Stm32F411(serial="A"), Stm32F411(serial="B")
    backend = SimBackend([a, b])
    assert isinstance(backend.clock, VirtualClock)
    assert a.clock is backend.clock
    assert b.clock is backend.clock


def test_error_objects_match_libusb1() -> None:
    pipe = usb_error(-9)
    assert (pipe.errno, pipe.backend_error_code, pipe.strerror) == (errno.EPIPE, -9, "Pipe error")
    gone = usb_error(-4)
    assert gone.errno == errno.ENODEV
    assert str(gone) == "[Errno 19] No such device (it may have been disconnected)"
    assert isinstance(usb_error(-7), usb.core.USBTimeoutError)
    assert usb_error(-6).errno == errno.EBUSY


def test_interface_busy_for_a_second_handle() -> None:
    model = Stm32F411()
    backend = SimBackend([model])
    first = usb.core.find(idVendor=0x0483, backend=backend)
    second = usb.core.find(idVendor=0x0483, backend=backend)
    assert first is not None
    assert second is not None
    usb.util.claim_interface(first, 0)
    with pytest.raises(usb.core.USBError) as info:
        usb.util.claim_interface(second, 0)
    assert info.value.errno == errno.EBUSY
    assert info.value.backend_error_code == -6
    usb.util.dispose_resources(first)
    usb.util.claim_interface(second, 0)


def test_hot_plug_add_and_remove() -> None:
    backend = SimBackend()
    assert usb.core.find(backend=backend) is None
    model = Stm32F411(serial="HOT")
    backend.add(model)
    dev = usb.core.find(backend=backend)
    assert dev is not None
    assert dev.serial_number == "HOT"
    dev.ctrl_transfer(0xA1, 5, 0, 0, 1)
    backend.remove(model)
    with pytest.raises(usb.core.USBError) as info:
        dev.ctrl_transfer(0xA1, 5, 0, 0, 1)
    assert info.value.errno == errno.ENODEV
    assert usb.core.find(backend=backend) is None
    usb.util.dispose_resources(dev)  # releasing a gone device is fine, as with libusb
    with pytest.raises(ValueError, match="not on this bus"):
        backend.remove(model)


def test_stale_device_cannot_be_opened_after_reenumeration() -> None:
    rig = make_rig()
    stale = usb.core.find(idVendor=0x0483, backend=rig.backend)
    assert stale is not None
    rig.model.power_cycle(0.1)
    rig.clock.sleep(0.2)
    with pytest.raises(usb.core.USBError) as info:
        stale.ctrl_transfer(0xA1, 5, 0, 0, 1)
    assert info.value.errno == errno.ENODEV


def test_reset_device_returns_to_idle_and_keeps_configuration() -> None:
    rig = make_rig()
    rig.dnload(0, b"\x21\x00\x00\x00\x08")
    rig.dev.reset()
    assert rig.model.state is State.dfuIDLE
    assert rig.model.configuration == 1
    assert not rig.dev.is_kernel_driver_active(0)
    with pytest.raises(usb.core.USBError):
        rig.dev.detach_kernel_driver(0)


def test_runtime_device_detach_reenumerates_as_bootloader() -> None:
    app = Stm32F411App(serial="APP1")
    backend = SimBackend([app])
    assert app.bootloader is not None
    assert app.bootloader in backend.devices
    dev = usb.core.find(idVendor=0x0483, idProduct=0x5740, backend=backend)
    assert dev is not None
    assert usb.core.find(idProduct=0xDF11, backend=backend) is None
    intf = dev[0][(0, 0)]
    assert (intf.bInterfaceClass, intf.bInterfaceSubClass, intf.bInterfaceProtocol) == (
        0xFE,
        1,
        1,
    )
    assert bytes(dev.ctrl_transfer(0xA1, 5, 0, 0, 1)) == bytes((State.appIDLE,))
    with pytest.raises(usb.core.USBError):  # DNLOAD is not a run-time request
        dev.ctrl_transfer(0x21, 1, 0, 0, b"\x00")
    assert app.state is State.appIDLE
    dev.ctrl_transfer(0x21, 0, 1000, 0, None)  # DETACH
    assert app.detaches == 1
    backend.clock.sleep(1.0)
    boot = usb.core.find(idVendor=0x0483, idProduct=0xDF11, backend=backend)
    assert boot is not None
    assert boot.serial_number == "APP1"
    assert usb.core.find(idProduct=0x5740, backend=backend) is None
    assert boot.port_numbers == dev.port_numbers  # same chip, same port
    assert boot.address != dev.address  # a new enumeration
    # leave the bootloader: the application comes back
    boot.ctrl_transfer(0x21, 1, 2, 0, None)
    boot.ctrl_transfer(0xA1, 3, 0, 0, 6)
    backend.clock.sleep(1.0)
    assert usb.core.find(idProduct=0x5740, backend=backend) is not None


def test_runtime_device_without_will_detach_needs_a_reset() -> None:
    app = Stm32F411App(will_detach=False)
    backend = SimBackend([app])
    dev = usb.core.find(idProduct=0x5740, backend=backend)
    assert dev is not None
    dev.ctrl_transfer(0x21, 0, 500, 0, None)
    assert app.state is State.appDETACH
    with pytest.raises(usb.core.USBError) as info:
        dev.reset()
    assert info.value.backend_error_code == -5  # re-enumerated as another device
    backend.clock.sleep(1.0)
    assert usb.core.find(idProduct=0xDF11, backend=backend) is not None


def test_runtime_detach_times_out_without_reset() -> None:
    app = Stm32F411App(will_detach=False)
    backend = SimBackend([app])
    dev = usb.core.find(idProduct=0x5740, backend=backend)
    assert dev is not None
    dev.ctrl_transfer(0x21, 0, 500, 0, None)
    backend.clock.sleep(0.6)
    assert bytes(dev.ctrl_transfer(0xA1, 5, 0, 0, 1)) == bytes((State.appIDLE,))


def test_c0_quirk_leaves_only_after_set_address() -> None:
    """IntergatedCircuits/LibUsbDfu#13 (STM32C071): without a Set Address right before the
    zero-length DNLOAD the device 'returned Error' and did not start the application."""
    rig = make_rig(Stm32F411(quirks=STM32C0_QUIRKS))
    rig.dnload(2, None)
    assert rig.getstatus()[2] == State.dfuERROR
    assert not rig.model.app_starts
    rig.clrstatus()
    rig.set_address(0x08000000)
    rig.dnload(2, None)
    assert rig.getstatus()[2] == State.dfuMANIFEST


def test_gd32_quirk_leaves_without_answering() -> None:
    rig = make_rig(Stm32F411(quirks=GD32_QUIRKS))
    rig.set_address(0x08000000)
    rig.dnload(2, None)
    with pytest.raises(usb.core.USBError) as info:
        rig.getstatus()
    assert info.value.errno == errno.ENODEV
    assert rig.model.app_starts


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 60), st.binary(min_size=1, max_size=4)), max_size=10))
def test_nor_flash_only_clears_bits(writes: list[tuple[int, bytes]]) -> None:
    flash = NorFlash(0x1000, (32, 32))
    shadow = bytearray(b"\xff" * 64)
    for offset, data in writes:
        data = data[: 64 - offset]
        flash.program(0x1000 + offset, data)
        for i, byte in enumerate(data):
            shadow[offset + i] &= byte
    assert flash.read(0x1000, 64) == bytes(shadow)
    flash.erase_sector(1)
    assert flash.read(0x1020, 32) == b"\xff" * 32
    assert flash.read(0x1000, 32) == bytes(shadow[:32])


def test_memory_model_errors() -> None:
    flash = NorFlash(0, (16,))
    with pytest.raises(ValueError, match="outside"):
        flash.read(8, 16)
    with pytest.raises(ValueError, match="negative"):
        flash.read(0, -1)
    with pytest.raises(ValueError, match="size"):
        NorFlash(0, (0,))
    assert flash.sector_at(20) is None
    assert flash.is_erased(0, 16)
    otp = OtpMemory(0, blocks=2, block_size=4)
    otp.program(8, b"\x00")
    assert otp.is_locked(0)
    assert not otp.is_locked(1)


def test_two_apps_keep_separate_ports() -> None:
    first, second = Stm32F411App(serial="A"), Stm32F411App(serial="B")
    backend = SimBackend([first, second])
    assert first.port_numbers != second.port_numbers
    assert first.bootloader is not None
    assert second.bootloader is not None
    assert first.bootloader.port_numbers == first.port_numbers
    assert second.bootloader.port_numbers == second.port_numbers
    assert len(backend.devices) == 4
