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
