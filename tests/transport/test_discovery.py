"""Discovery records and PyUsbTransport against simulated devices."""

from __future__ import annotations

import errno
import logging

import pytest
import usb.core

from dfuse.clock import VirtualClock
from dfuse.errors import DeviceGoneError, StallError, TransportError
from dfuse.protocol.constants import Request
from dfuse.sim import SimBackend, Stm32F411
from dfuse.sim.usbmodel import SetupPacket, Stall, UsbDeviceModel
from dfuse.transport.base import AltSetting, DeviceInfo, DeviceMode, describe_request
from dfuse.transport.discovery import find_devices, select_device
from dfuse.transport.pyusb import PyUsbTransport


class Keyboard(UsbDeviceModel):
    """A USB device without a DFU interface (a HID boot keyboard)."""

    def device_descriptor(self) -> bytes:
        return bytes([18, 1, 0x00, 0x02, 0, 0, 0, 64, 0x6D, 0x04, 0x1C, 0xC3, 0, 1, 0, 0, 0, 1])

    def configuration_descriptor(self, index: int = 0) -> bytes:
        interface = bytes([9, 4, 0, 0, 0, 0x03, 0x01, 0x01, 0])
        body = interface
        total = 9 + len(body)
        return bytes([9, 2, total, 0, 1, 1, 0, 0x80, 50]) + body

    def strings(self) -> dict[int, str]:
        return {}

    def handle_class_request(self, setup: SetupPacket, data: bytes, timeout_ms: int) -> bytes:
        raise Stall("no class requests")


def test_non_dfu_devices_are_not_listed() -> None:
    backend = SimBackend([Keyboard(port_numbers=(4,)), Stm32F411(serial="X")])
    found = find_devices(backend=backend)
    assert [d.serial for d in found] == ["X"]


def test_records() -> None:
    bad = AltSetting.from_name(0, "@not a layout")
    assert bad.layout is None
    assert bad.label == "@not a layout"
    assert AltSetting.from_name(3, None).label == "alt 3"
    assert AltSetting.from_name(1, "@Option Bytes  /0x1FFFC000/01*016 e").matches("option bytes")
    assert AltSetting.from_name(1, "@Option Bytes  /0x1FFFC000/01*016 e").matches(1)
    assert not AltSetting.from_name(1, None).matches("x")
    info = DeviceInfo(
        vid=0x0483,
        pid=0xDF11,
        bcd_device=0x2200,
        serial=None,
        manufacturer=None,
        product=None,
        bus=2,
        port_numbers=(),
        address=5,
        mode=DeviceMode.DFU,
        interface=0,
        alt_settings=(AltSetting.from_name(0, "@Flash /0x08000000/2*1Kg"),),
        functional=None,
    )
    assert info.path == "2"
    assert info.transfer_size is None
    assert (
        str(info) == "0483:df11 path=2 bcdDevice=2200 dfu mode\n  alt 0: '@Flash /0x08000000/2*1Kg'"
    )
    assert select_device([info], "any") is info
    with pytest.raises(ValueError, match="no pyusb device handle"):
        PyUsbTransport(info, object())
    assert describe_request(0x42, 1, 2) == "request 0x42"
    assert describe_request(Request.DETACH, 255, 0) == "DETACH (timeout 255 ms)"
    assert describe_request(Request.UPLOAD, 3, 64) == "UPLOAD block 3 (64 bytes)"


def test_transport_requests_strings_reset_and_reopen(caplog: pytest.LogCaptureFixture) -> None:
    chip = Stm32F411(serial="T1")
    backend = SimBackend([chip])
    (info,) = find_devices(backend=backend)
    assert info.functional is not None
    assert info.transfer_size == 2048
    with PyUsbTransport.open(info, backend) as transport:
        assert transport.backend is backend
        assert (
            repr(transport)
            == "PyUsbTransport(0483:df11 path=1-1 serial='T1' bcdDevice=2200 dfu mode)"
        )
        assert transport.interface == 0
        assert transport.get_string(0) is None
        assert transport.get_string(info.handle.iProduct) == "STM32  BOOTLOADER"  # type: ignore[attr-defined]
        with pytest.raises(StallError, match="GET_DESCRIPTOR string 99"):
            transport.get_string(99)
        with pytest.raises(ValueError, match="negative"):
            transport.control_in(Request.GETSTATUS, 0, -1)
        with (
            caplog.at_level(logging.DEBUG, logger="dfuse.transport"),
            pytest.raises(StallError, match=r"^UPLOAD block 1 \(16 bytes\): stalled"),
        ):
            transport.control_in(Request.UPLOAD, 1, 16)
        assert "UPLOAD block 1 (16 bytes) wValue=1 wLength=16 -> UPLOAD block 1" in caplog.text
        with pytest.raises(TransportError, match="SET_INTERFACE 0 alt 9"):
            transport.set_alt_setting(9)
        transport.set_alt_setting(2)
        assert chip.alt_setting == 2
        transport.reset()
        # After a reset the device comes back at the same path: reopen finds it.
        chip.power_cycle(0.3)
        clock = backend.clock
        assert isinstance(clock, VirtualClock)
        again = transport.reopen(2.0, clock)
        assert again.info.serial == "T1"
        assert again.control_in(Request.GETSTATE, 0, 1) == b"\x02"
        chip.unplug()
        with pytest.raises(DeviceGoneError, match=r"did not re-appear within 0\.2 s"):
            again.reopen(0.2, clock)
        with pytest.raises(DeviceGoneError, match="GETSTATE"):
            again.control_in(Request.GETSTATE, 0, 1)
        again.close()
        again.close()


def test_requests_to_a_vanished_device_and_a_failing_bus() -> None:
    chip = Stm32F411(serial="T2")
    backend = SimBackend([chip])
    (info,) = find_devices(backend=backend)
    transport = PyUsbTransport.open(info, backend)
    chip.unplug()
    with pytest.raises(DeviceGoneError, match="SET_INTERFACE 0 alt 1"):
        transport.set_alt_setting(1)
    with pytest.raises(DeviceGoneError, match="USB reset"):
        transport.reset()
    transport.close()

    class BrokenBus(SimBackend):
        def enumerate_devices(self):  # type: ignore[no-untyped-def]
            raise usb.core.USBError("Input/output error", -1, errno.EIO)

    with pytest.raises(TransportError, match="enumerating USB devices: USB error"):
        find_devices(backend=BrokenBus([]))
