"""Write protection of flash sectors 8-11 (the 12-sector F405/F407: nWRP bits 0-11 of the
half-word at 0x1FFFC008, RM0090 §3.6.4) through DfuDevice, judged by the simulated board's
option bytes and memory (``peek``): the sector really is protected, never another one; a
sector the host cannot protect (an F411's 8-11, an F42x's 12-23 in the second block) is
refused with a dfuse error before any request."""

from __future__ import annotations

import pytest

from dfuse.device import DfuDevice
from dfuse.errors import DfuseError, SafetyError, UsageError, VerifyError
from dfuse.optionbytes import OptionBytes
from dfuse.sim import RomBootloader, SimBackend, VirtualClock, board

SECTOR9, SECTOR10, SECTOR11 = 0x080A0000, 0x080C0000, 0x080E0000


def _open(model: RomBootloader) -> DfuDevice:
    clock = VirtualClock()
    return DfuDevice.open(backend=SimBackend([model], clock=clock), clock=clock)


@pytest.mark.parametrize("sector", [8, 10, 11])
def test_protect_sectors_8_to_11_of_an_f407_protects_exactly_that_sector(sector: int) -> None:
    b = board("stm32f407")
    with _open(b) as dev:
        options = dev.protect_sectors([sector])
        assert options.sectors == 12
        assert options.write_protected == {sector}
        assert [s for s in range(12) if b.is_write_protected(s)] == [sector]
        assert OptionBytes.parse(b.option_bytes, sectors=12, strict=True) == options
        assert dev.read_option_bytes().write_protected == {sector}
        options = dev.unprotect_sectors([sector])
        assert options.write_protected == frozenset()
    assert not any(b.is_write_protected(s) for s in range(12))


@pytest.mark.parametrize(
    ("part", "sector", "expected"),
    [("stm32f411xe", 8, "0..7"), ("stm32f411xe", 10, "0..7"), ("stm32f429", 15, "0..11")],
)
def test_a_sector_the_host_cannot_protect_is_refused_before_any_request(
    part: str, sector: int, expected: str
) -> None:
    b = board(part)
    before_block = b.option_bytes
    with _open(b) as dev:
        before = sum(b.requests.values())
        with pytest.raises(UsageError) as info:
            dev.protect_sectors([sector])
        assert isinstance(info.value, DfuseError)
        assert f"sector {sector}" in str(info.value) or f"got {sector}" in str(info.value)
        assert info.value.expected == expected
        assert sum(b.requests.values()) == before
    assert b.option_bytes == before_block


def test_the_f429s_second_block_sectors_are_named_as_not_modelled() -> None:
    with _open(board("stm32f429")) as dev:
        with pytest.raises(UsageError, match="flash sector 15: dfuse models") as info:
            dev.protect_sectors([15])
        assert "0x1FFEC000" in str(info.value)
        with pytest.raises(UsageError, match=r"0\.\.23, got 24"):
            dev.protect_sectors([24])


def test_a_protected_sector_10_stays_on_the_board_through_a_download() -> None:
    """End to end on the simulated F407: with sector 10 protected, a download over
    sectors 9-11 is caught by verify and the board's memory (peek) shows sector 10
    unchanged and its neighbours written; a mass erase is refused before anything is
    erased; unprotected, the download lands."""
    b = board("stm32f407")
    old = bytes(range(7, 199)) * 8
    b.poke(SECTOR10, old)
    image = bytes(range(256)) * (3 * 0x20000 // 256)  # sectors 9, 10 and 11
    with _open(b) as dev:
        dev.protect_sectors([10])
        with pytest.raises(VerifyError) as info:
            dev.download(image, address=SECTOR9)
        assert info.value.address == SECTOR10
        assert b.peek(SECTOR10, len(old)) == old
        assert b.peek(SECTOR9, 4096) == image[:4096]
        assert b.peek(SECTOR11, 4096) == image[0x40000 : 0x40000 + 4096]
        with pytest.raises(SafetyError, match=r"write-protected \(sectors 10\)"):
            dev.download(image, address=SECTOR9, erase="mass")
        assert b.peek(SECTOR9, 4096) == image[:4096]  # nothing was erased
        dev.unprotect_sectors([10])
        dev.download(image, address=SECTOR9)
    assert b.peek(SECTOR9, len(image)) == image


def test_an_option_change_in_nwrp_bits_8_to_11_only_is_written() -> None:
    # the block read with 8 bits and the same block with bit 10 clear have the same
    # OPTCR bits 23:16: the change must still be written, not planned as nothing to do
    b = board("stm32f407")
    with _open(b) as dev:
        current = dev.read_option_bytes()
        eight = OptionBytes.parse(current.to_bytes())
        wanted = OptionBytes.parse(current.to_bytes(), sectors=12).with_sectors_protected({10})
        assert (eight.optcr >> 16) & 0xFF == (wanted.optcr >> 16) & 0xFF
        dev.change_option_bytes(OptionBytes.parse(wanted.to_bytes()))  # an 8-bit decoding
    assert b.is_write_protected(10)
