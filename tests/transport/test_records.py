"""DeviceInfo.to_dict / AltSetting.to_dict: the device records of ``dfuse list --json``."""

from __future__ import annotations

import json

from dfuse.sim import SimBackend, Stm32F411
from dfuse.transport.base import AltSetting, DeviceMode
from dfuse.transport.discovery import find_devices


def test_alt_setting_records() -> None:
    flash = AltSetting.from_name(0, "@Internal Flash  /0x08000000/04*016Kg")
    assert flash.layout is not None
    assert flash.to_dict() == {
        "number": 0,
        "name": "@Internal Flash  /0x08000000/04*016Kg",
        "layout": flash.layout.to_dict(),
    }
    assert AltSetting.from_name(3, "not a layout").to_dict() == {
        "number": 3,
        "name": "not a layout",
        "layout": None,
    }
    assert AltSetting(1, None).to_dict() == {"number": 1, "name": None, "layout": None}


def test_a_simulated_bootloader_record() -> None:
    [info] = find_devices(backend=SimBackend([Stm32F411(serial="ABC", port_numbers=(2, 3))]))
    record = json.loads(json.dumps(info.to_dict()))
    assert record["id"] == "0483:df11"
    assert (record["vid"], record["pid"]) == (0x0483, 0xDF11)
    assert record["serial"] == "ABC"
    assert record["path"] == info.path == "1-2.3"
    assert record["mode"] == DeviceMode.DFU.value == "dfu"
    assert record["transfer_size"] == info.transfer_size == 2048
    assert record["bcd_device"] == info.bcd_device
    assert [a["number"] for a in record["alt_settings"]] == [a.number for a in info.alt_settings]
    assert record["alt_settings"][0]["layout"]["name"] == "Internal Flash"
    assert record["configuration"] == info.configuration == 1


class _SecondConfiguration(Stm32F411):
    """A bootloader whose DFU interface is in configuration 2 (bConfigurationValue)."""

    def configuration_descriptor(self, index: int = 0) -> bytes:
        raw = bytearray(super().configuration_descriptor(index))
        raw[5] = 2
        return bytes(raw)


def test_the_configuration_value_comes_from_the_descriptor() -> None:
    [info] = find_devices(backend=SimBackend([_SecondConfiguration(serial="C2")]))
    assert info.configuration == 2
    assert info.to_dict()["configuration"] == 2


def test_an_alt_setting_matches_its_name_with_or_without_the_at_sign() -> None:
    ob = AltSetting.from_name(1, "@Option Bytes  /0x1FFFC000/01*016 e")
    for selector in ("@Option Bytes", "@option bytes", "Option Bytes", " @Option Bytes "):
        assert ob.matches(selector), selector
    assert ob.matches("@Option Bytes  /0x1FFFC000/01*016 e")
    assert not ob.matches("@Internal Flash")
    assert not ob.matches("@")
    odd = AltSetting.from_name(2, "@not a layout")  # no layout: the name is the label
    assert odd.matches("@not a layout")
    assert odd.matches("not a layout")


def test_the_library_opens_an_alt_by_its_at_name() -> None:
    import dfuse

    backend = SimBackend([Stm32F411(serial="AT")])
    with dfuse.open("usb:", backend=backend, alt="@Option Bytes") as dev:
        assert dev.alt == 1
