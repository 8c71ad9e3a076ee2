"""Write protection beyond what the host decodes: a request for a flash sector whose nWRP
bit the host's OptionBytes does not model is refused with a dfuse error before anything
is written (never a silent no-op, never another sector), judged by the simulated board's
option bytes and request log."""

from __future__ import annotations

import pytest

from dfuse.device import DfuDevice
from dfuse.errors import DfuseError, SafetyError, UsageError, VerifyError
from dfuse.optionbytes import OptionBytes, nwrp_sectors
from dfuse.sim import SimBackend, VirtualClock, board


@pytest.mark.parametrize("sector", [8, 10, 11])
def test_protecting_a_sector_past_the_modelled_nwrp_bits_is_refused_before_writing(
    sector: int,
) -> None:
    b = board("stm32f407")
    before = b.option_bytes
    clock = VirtualClock()
    with DfuDevice.open(backend=SimBackend([b], clock=clock), clock=clock) as dev:
        with pytest.raises(UsageError) as info:
            dev.protect_sectors([sector])
        assert isinstance(info.value, DfuseError)
        assert str(sector) in str(info.value)
    assert b.option_bytes == before
    assert not any(b.is_write_protected(s) for s in range(12))


def test_a_sector_past_the_modelled_option_block_is_refused_before_any_request() -> None:
    # the F429's sectors 12-23 have their nWRP bits in the second block (0x1FFEC000)
    b = board("stm32f429")
    clock = VirtualClock()
    with DfuDevice.open(backend=SimBackend([b], clock=clock), clock=clock) as dev:
        before = sum(b.requests.values())
        with pytest.raises(UsageError, match="flash sector 15: dfuse models") as info:
            dev.protect_sectors([15])
        assert info.value.expected == "0..11"
        assert sum(b.requests.values()) == before
        with pytest.raises(UsageError, match=r"0\.\.23, got 24"):
            dev.protect_sectors([24])


SECTOR9, SECTOR10, SECTOR11 = 0x080A0000, 0x080C0000, 0x080E0000


def test_sector_10_protected_with_the_12_bit_block_stays_on_the_board() -> None:
    """End to end on the simulated F407: protect sector 10 with a block decoded for 12
    nWRP bits; a download over sectors 9-11 is caught by verify, and the board's memory
    (peek) shows sector 10 unchanged and its neighbours written; a mass erase is refused
    before anything is erased; unprotected, the download lands."""
    b = board("stm32f407")
    old = bytes(range(7, 199)) * 8
    b.poke(SECTOR10, old)
    clock = VirtualClock()
    image = bytes(range(256)) * (3 * 0x20000 // 256)  # sectors 9, 10 and 11
    with DfuDevice.open(backend=SimBackend([b], clock=clock), clock=clock) as dev:
        raw = dev.read_option_bytes().to_bytes()
        current = OptionBytes.parse(raw, sectors=nwrp_sectors(len(dev.layout.sectors)))
        assert current.sectors == 12
        dev.change_option_bytes(current.with_sectors_protected({10}))
        assert b.is_write_protected(10)
        assert [s for s in range(12) if b.is_write_protected(s)] == [10]
        assert OptionBytes.parse(b.option_bytes, sectors=12).write_protected == {10}
        with pytest.raises(VerifyError) as info:
            dev.download(image, address=SECTOR9)
        assert info.value.address == SECTOR10
        assert b.peek(SECTOR10, len(old)) == old
        assert b.peek(SECTOR9, 4096) == image[:4096]
        assert b.peek(SECTOR11, 4096) == image[0x40000 : 0x40000 + 4096]
        with pytest.raises(SafetyError, match=r"write-protected \(sectors 10\)"):
            dev.download(image, address=SECTOR9, erase="mass")
        assert b.peek(SECTOR9, 4096) == image[:4096]  # nothing was erased
        now = OptionBytes.parse(dev.read_option_bytes().to_bytes(), sectors=12)
        dev.change_option_bytes(now.with_sectors_unprotected({10}))
        assert not b.is_write_protected(10)
        dev.download(image, address=SECTOR9)
    assert b.peek(SECTOR9, len(image)) == image
