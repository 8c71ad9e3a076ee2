"""nWRP on the 12-sector F405/F407 (RM0090 §3.6.4: nWRPi for 0 ≤ i ≤ 11, bits 0-11 of the
half-word at 0x1FFFC008) as the simulated ROM decodes it itself from its option bytes:
a protected sector 8-11 keeps its bytes through erases and writes (judged by ``peek``);
the F411's block has 8 bits; the F429's sectors 12-23 (second block) are not modelled."""

from __future__ import annotations

import pytest
import usb.core

from dfuse.protocol.constants import State, Status
from dfuse.sim import board
from tests.sim.conftest import Rig
from tests.sim.test_part_boards import clear_boot_error, rig_for

SECTOR10 = 0x080C0000  # 4 x 16 KiB, 64 KiB, 5 x 128 KiB
SECTOR9 = 0x080A0000
OPTIONS = 0x1FFFC000


def test_the_f407_board_has_12_nwrp_bits_the_f411_8() -> None:
    assert board("stm32f407").wrp_sectors == 12
    assert board("stm32f405").wrp_sectors == 12
    assert board("stm32f411xe").wrp_sectors == 8
    assert board("stm32f429").wrp_sectors == 12  # sectors 12-23: the second block
    assert board("stm32l476").wrp_sectors == 0


def test_presetting_sector_10_clears_bit_10_and_keeps_the_complement() -> None:
    model = board("stm32f407")
    model.set_write_protection([10])
    block = model.option_bytes
    assert block[8:12] == bytes((0xFF, 0x7B, 0x00, 0x84))
    assert [s for s in range(12) if model.is_write_protected(s)] == [10]
    model.set_write_protection([])
    assert model.option_bytes[8:12] == bytes((0xFF, 0x7F, 0x00, 0x80))
    with pytest.raises(ValueError, match=r"0\.\.7, got 10"):
        board("stm32f411xe").set_write_protection([10])


def test_a_protected_sector_10_keeps_its_bytes_through_erase_and_write() -> None:
    model = board("stm32f407")
    model.poke(SECTOR10, b"\x11" * 64)
    model.poke(SECTOR9, b"\x22" * 64)
    model.set_write_protection([10])
    rig = rig_for(model)
    clear_boot_error(rig)
    assert rig.erase(SECTOR10)[:3:2] == (Status.OK, State.dfuDNLOAD_IDLE)  # no error...
    assert model.peek(SECTOR10, 64) == b"\x11" * 64  # ...and nothing erased
    rig.write(SECTOR10, b"\x00" * 64)
    assert model.peek(SECTOR10, 64) == b"\x11" * 64
    assert rig.erase(SECTOR9)[0] == Status.OK  # sector 9 is not protected
    assert model.peek(SECTOR9, 64) == b"\xff" * 64
    rig.dnload(0, b"\x41")  # the flash refuses a mass erase while a sector is protected
    _status, poll, _state, _ = rig.getstatus()
    rig.clock.sleep(poll / 1000)
    assert rig.getstatus()[:3:2] == (Status.OK, State.dfuDNLOAD_IDLE)
    assert model.peek(SECTOR10, 64) == b"\x11" * 64
    assert model.peek(0x08000000, 4) == b"\xff" * 4


def test_a_block_written_over_usb_with_bit_11_clear_protects_sector_11() -> None:
    model = board("stm32f407")
    sector11 = 0x080E0000
    model.poke(sector11, b"\x33" * 16)
    rig = rig_for(model, alt=1)
    clear_boot_error(rig)
    block = bytearray(model.option_bytes)
    block[9] &= ~(1 << 3) & 0xFF  # nWRP bit 11
    block[11] = block[9] ^ 0xFF
    assert rig.set_address(OPTIONS)[0] == Status.OK
    rig.dnload(2, bytes(block))
    assert rig.getstatus()[2] == State.dfuDNBUSY  # it writes the block, then resets
    rig.clock.sleep(1.0)
    dev = usb.core.find(idVendor=0x0483, idProduct=0xDF11, backend=rig.backend)
    assert dev is not None
    assert model.option_bytes == bytes(block)
    assert model.is_write_protected(11)
    assert not model.is_write_protected(10)
    dev.set_interface_altsetting(0, 0)
    rig = Rig(model, rig.backend, dev)  # type: ignore[arg-type]
    clear_boot_error(rig)
    assert rig.erase(sector11)[0] == Status.OK
    assert model.peek(sector11, 16) == b"\x33" * 16


def test_the_f429s_second_bank_sectors_are_never_protected_here() -> None:
    model = board("stm32f429")
    assert not any(model.is_write_protected(s) for s in range(12, 24))
    with pytest.raises(ValueError, match=r"0\.\.11, got 12"):
        model.set_write_protection([12])
