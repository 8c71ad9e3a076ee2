"""Descriptors of the simulated STM32F411 bootloader, byte by byte, through raw pyusb."""

from __future__ import annotations

import pytest
import usb.core
import usb.util

from dfuse.protocol.descriptors import FunctionalDescriptor
from dfuse.sim import SimBackend, Stm32F411
from tests.sim.conftest import Rig, make_rig

LAYOUTS = [
    "@Internal Flash  /0x08000000/04*016Kg,01*064Kg,03*128Kg",
    "@Option Bytes  /0x1FFFC000/01*016 e",
    "@OTP Memory /0x1FFF7800/01*512 e,01*016 e",
    "@Device Feature/0xFFFF0000/01*004 e",
]


def get_descriptor(rig: Rig, dtype: int, index: int, length: int, lang: int = 0) -> bytes:
    return bytes(rig.dev.ctrl_transfer(0x80, 6, dtype << 8 | index, lang, length))


def test_device_descriptor_bytes(rig: Rig) -> None:
    """bcdUSB 1.00: F4 ROMs report it (dfu-util device-logs/stm32f4discovery.lsusb)."""
    raw = get_descriptor(rig, 1, 0, 18)
    assert raw == bytes.fromhex(
        "12 01 0001 00 00 00 40 8304 11df 0022 01 02 03 01".replace(" ", "")
    )


def test_device_descriptor_fields() -> None:
    rig = make_rig()
    d = rig.dev
    assert (d.idVendor, d.idProduct, d.bcdDevice, d.bcdUSB) == (0x0483, 0xDF11, 0x2200, 0x0100)
    assert d.bMaxPacketSize0 == 64
    assert d.bNumConfigurations == 1
    assert d.speed == 2  # LIBUSB_SPEED_FULL


def test_configuration_descriptor_bytes(rig: Rig) -> None:
    head = get_descriptor(rig, 2, 0, 9)
    assert head[:2] == b"\x09\x02"
    total = head[2] | head[3] << 8
    assert total == 9 + 4 * 9 + 9
    raw = get_descriptor(rig, 2, 0, total)
    # self-powered, 100 mA, one interface, configuration value 1
    assert raw[:9] == bytes((9, 2, total, 0, 1, 1, 0, 0xC0, 50))
    for alt in range(4):
        intf = raw[9 + alt * 9 : 18 + alt * 9]
        assert intf == bytes((9, 4, 0, alt, 0, 0xFE, 0x01, 0x02, 4 + alt))
    func = raw[9 + 36 :]
    assert func == bytes.fromhex("09 21 0b ff 00 00 08 1a 01".replace(" ", ""))
    fd = FunctionalDescriptor.parse(func)
    assert (int(fd.attributes), fd.detach_timeout_ms, fd.transfer_size, fd.dfu_version) == (
        0x0B,
        255,
        2048,
        0x011A,
    )


def test_short_descriptor_reads_are_truncated(rig: Rig) -> None:
    assert get_descriptor(rig, 1, 0, 8) == bytes.fromhex("1201000100000040")


def test_strings(rig: Rig) -> None:
    d = rig.dev
    assert get_descriptor(rig, 3, 0, 255) == b"\x04\x03\x09\x04"
    assert usb.util.get_string(d, d.iManufacturer) == "STMicroelectronics"
    assert usb.util.get_string(d, d.iProduct) == "STM32  BOOTLOADER"
    assert usb.util.get_string(d, d.iSerialNumber) == "TEST0001"
    raw = get_descriptor(rig, 3, 2, 255, 0x0409)
    assert raw == bytes((2 + 34, 3)) + "STM32  BOOTLOADER".encode("utf-16-le")


def test_alternate_settings_and_layout_strings(rig: Rig) -> None:
    cfg = rig.dev.get_active_configuration()
    alts = list(cfg)
    assert [i.bAlternateSetting for i in alts] == [0, 1, 2, 3]
    assert [usb.util.get_string(rig.dev, i.iInterface) for i in alts] == LAYOUTS
    # libusb hands the functional descriptor to the interface descriptor it follows
    assert bytes(alts[3].extra_descriptors) == bytes.fromhex("09210bff0000081a01")
    for alt in range(4):
        rig.dev.set_interface_altsetting(0, alt)
        assert rig.model.alt_setting == alt
        assert bytes(rig.dev.ctrl_transfer(0x81, 0x0A, 0, 0, 1)) == bytes((alt,))


def test_missing_string_and_alt_stall(rig: Rig) -> None:
    with pytest.raises(usb.core.USBError) as info:
        get_descriptor(rig, 3, 42, 255, 0x0409)
    assert info.value.errno == 32
    with pytest.raises(usb.core.USBError) as info:
        rig.dev.ctrl_transfer(0x01, 0x0B, 4, 0, None)
    assert info.value.backend_error_code == -9


def test_256k_part_layout_and_flash_size_register() -> None:
    model = Stm32F411(serial="C", flash_size=256 * 1024)
    rig = make_rig(model)
    text = usb.util.get_string(rig.dev, rig.dev[0][(0, 0)].iInterface)
    assert text == "@Internal Flash  /0x08000000/04*016Kg,01*064Kg,01*128Kg"
    assert model.peek(0x1FFF7A22, 2) == (256).to_bytes(2, "little")
    assert Stm32F411().peek(0x1FFF7A22, 2) == (512).to_bytes(2, "little")


def test_several_devices_have_own_position_and_serial() -> None:
    devices = [Stm32F411(serial=f"SN{i}") for i in range(3)]
    backend = SimBackend(devices)
    found = list(usb.core.find(find_all=True, idVendor=0x0483, backend=backend))
    assert len(found) == 3
    assert len({(d.bus, d.address) for d in found}) == 3
    assert len({d.port_numbers for d in found}) == 3
    assert sorted(usb.util.get_string(d, d.iSerialNumber) for d in found) == ["SN0", "SN1", "SN2"]
    one = usb.core.find(backend=backend, custom_match=lambda d: d.serial_number == "SN1")
    assert one is not None
    assert one.port_numbers == devices[1].port_numbers
