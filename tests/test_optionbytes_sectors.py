"""OptionBytes with the 12 nWRP bits of the RM0090 parts (F405/F407, bank 1 of the
F42x/F43x): bits 0-11 of the half-word at 0x1FFFC008 (FLASH_OPTCR bits 27:16), decoded and
encoded, against the 8-bit F411 block; a sector the block cannot protect is a UsageError."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dfuse.errors import UsageError
from dfuse.optionbytes import (
    FACTORY_DEFAULT,
    FACTORY_OPTCR,
    WRP_SECTORS,
    WRP_SECTORS_RM0090,
    OptionBytes,
    nwrp_sectors,
)

#: The factory block (OPTCR 0x0FFFAAED; the F4 rows' factory bytes), as an F407 holds it.
FACTORY_BLOCK = bytes.fromhex("ffaa0055ffffffffff7f0080ffffffff")


def test_the_count_follows_the_number_of_flash_sectors() -> None:
    assert (WRP_SECTORS, WRP_SECTORS_RM0090) == (8, 12)
    assert [nwrp_sectors(n) for n in (6, 8, 9, 12, 24)] == [8, 8, 12, 12, 12]


def test_the_factory_block_has_nothing_protected_either_way() -> None:
    for sectors in (8, 12):
        ob = OptionBytes.parse(FACTORY_BLOCK, sectors=sectors)
        assert ob.write_protected == frozenset()
        assert ob.optcr == FACTORY_OPTCR
        assert (
            OptionBytes.from_optcr(FACTORY_OPTCR, sectors=sectors).to_bytes()[8:12]
            == (FACTORY_BLOCK[8:12])
        )
    assert FACTORY_DEFAULT.sectors == 8
    assert FACTORY_DEFAULT.to_bytes() == FACTORY_BLOCK


def test_sector_10_is_bit_10_of_the_half_word_and_bit_26_of_optcr() -> None:
    ob = OptionBytes.parse(FACTORY_BLOCK, sectors=12).with_sectors_protected({10})
    assert ob.nwrp == 0x7FFF & ~(1 << 10)
    block = ob.to_bytes()
    assert block[8:12] == bytes((0xFF, 0x7B, 0x00, 0x84))  # value, then its complement
    assert ob.optcr == FACTORY_OPTCR & ~(1 << 26)
    assert ob.write_protected == {10}
    assert ob.is_write_protected(10)
    again = OptionBytes.parse(block, sectors=12, strict=True)
    assert again == ob
    # the same bytes read as an F411 block: bit 10 is a not-used bit there
    assert OptionBytes.parse(block).write_protected == frozenset()
    assert OptionBytes.from_optcr(ob.optcr, sectors=12) == ob
    back = ob.with_sectors_unprotected({10})
    assert back.write_protected == frozenset()
    assert back.to_bytes() == FACTORY_BLOCK


def test_an_8_bit_block_refuses_sectors_8_to_11_with_a_usage_error() -> None:
    ob = OptionBytes.parse(FACTORY_BLOCK)
    for sector in (8, 11):
        with pytest.raises(UsageError, match=rf"sector numbers must be 0\.\.7, got {sector}") as e:
            ob.with_sectors_protected({sector})
        assert e.value.value == sector
        assert "sectors=12" in str(e.value)
    with pytest.raises(UsageError, match=r"0\.\.11, got 12"):
        OptionBytes.parse(FACTORY_BLOCK, sectors=12).with_sectors_protected({12})
    with pytest.raises(ValueError, match="sectors must be 8 or 12"):
        OptionBytes.parse(FACTORY_BLOCK, sectors=24)


def test_sprmod_pcrop_covers_the_12_bits_but_not_the_f411s_unused_ones() -> None:
    # SPRMOD set, bits 8-14 at 1: on an F411 those are not-used bits, no PCROP there
    nwrp = 0x8000 | 0x7F00 | 0x0001
    f411 = OptionBytes(user=0xFF, rdp=0xAA, nwrp=nwrp)
    assert f411.pcrop == {0}
    f429 = OptionBytes(user=0xFF, rdp=0xAA, nwrp=nwrp, sectors=12)
    assert f429.pcrop == {0, 8, 9, 10, 11}


@given(st.frozensets(st.integers(0, 11)), st.booleans(), st.integers(0, 0xFFFF))
def test_any_set_of_the_12_sectors_round_trips(
    sectors: frozenset[int], sprmod: bool, start: int
) -> None:
    ob = OptionBytes(user=0xFF, rdp=0xAA, nwrp=start, sectors=12).with_sprmod(sprmod)
    changed = ob.with_write_protection(sectors)
    assert changed.write_protected == sectors
    assert changed.nwrp & ~0x0FFF == ob.nwrp & ~0x0FFF  # SPRMOD and bits 12-14 kept
    assert OptionBytes.parse(changed.to_bytes(), sectors=12, strict=True) == changed
    assert OptionBytes.from_optcr(changed.optcr, sectors=12).write_protected == sectors
