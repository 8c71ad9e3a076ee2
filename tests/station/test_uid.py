"""The ``uid`` stamp's facts come from the part database: part names, UID addresses, and
whether a DFU alternate setting exposes the ID."""

from __future__ import annotations

import pytest

from dfuse.layout import MemoryLayout
from dfuse.parts import get
from dfuse.parts.schema import load_text
from dfuse.sim import SimBackend, board
from dfuse.station import uid as uid_module
from dfuse.station.stamps import StampError
from dfuse.station.uid import part_name, uid_location, uid_readable
from dfuse.transport import find_devices


def _layouts(name: str) -> list[tuple[int, MemoryLayout]]:
    return [(i, MemoryLayout.parse(s)) for i, s in enumerate(get(name).alt_strings)]


@pytest.mark.parametrize("name", ["stm32f411xe", "stm32l476", "stm32h743", "stm32f407_v21"])
def test_a_simulated_board_is_named_by_its_row(name: str) -> None:
    backend = SimBackend([board(name)])
    (info,) = find_devices(backend=backend)
    assert part_name(info) == name


@pytest.mark.parametrize("name", ["stm32f411xe", "stm32l476", "stm32h743"])
def test_the_uid_address_is_the_rows_and_the_stamp_is_refused_where_no_alt_covers_it(
    name: str,
) -> None:
    row = get(name)
    where = uid_location(name)
    assert where is not None
    assert row.uid_address is not None
    assert (where.address, where.size, where.via_dfu) == (row.uid_address, 12, False)
    with pytest.raises(StampError, match=rf"{name} keeps its unique ID at 0x{row.uid_address:08X}"):
        uid_readable(name, _layouts(name))


def test_an_unknown_device_is_named_by_its_usb_identity_and_refused() -> None:
    with pytest.raises(StampError, match="not known"):
        uid_readable("1209:0001", _layouts("stm32f411xe"))


ROW = """
[[part]]
name = "testuid"
title = "a part whose ROM lists its signature area"
family = "TEST"
references = ["none"]
sram = [0x20000000, 0x5000]
uid_address = 0x1FF80050
[part.usb]
vid = 0x1209
pid = 0x0001
bcd_usb = 0x0200
manufacturer = "test"
product = "test"
max_power_ma = 100
self_powered = false
transfer_size = 1024
detach_timeout_ms = 255
attributes = 0x0B
evidence = ["test"]
[[part.alt]]
string = "@Internal Flash  /0x08000000/0064*0002Kg"
memory = "flash"
regions = [{ address = 0x08000000, sectors = [[64, 2048, "g"]] }]
status = "unconfirmed"
evidence = ["test"]
[[part.alt]]
string = "@Signature /0x1FF80050/01*012 a"
memory = "feature"
regions = [{ address = 0x1FF80050, sectors = [[1, 12, "a"]] }]
status = "unconfirmed"
evidence = ["test"]
[part.flash]
address = 0x08000000
program_unit = 8
not_erased = "error"
units = [[64, 2048]]
erase_times = [{ size = 2048, typ = 0.02, max = 0.03, estimate = true, evidence = "test" }]
mass_erase = { typ = 0.02, max = 0.03, estimate = true, evidence = "test" }
program_time = { typ = 1e-4, max = 2e-4, estimate = true, evidence = "test" }
evidence = ["test"]
"""


def test_a_row_whose_alt_covers_the_uid_reads_it_there(monkeypatch: pytest.MonkeyPatch) -> None:
    (row,) = load_text(ROW, "test")
    monkeypatch.setattr(uid_module, "parts_by_name", lambda: {"testuid": row})
    where = uid_location("testuid")
    assert where is not None
    assert where.via_dfu
    layouts = [(i, MemoryLayout.parse(s)) for i, s in enumerate(row.alt_strings)]
    assert uid_readable("testuid", layouts) == (1, 0x1FF80050)
