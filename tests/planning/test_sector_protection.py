"""Write-protection planning against the nWRP bits a device's option block has
(dfuse.planning.protection: nwrp_bits, flash_sector_numbers, plan_option_bytes): 8 on
an F411, 12 on an F407 and on an F429 (whose sectors 12-23 live in a second block that
is not modelled), checked before any traffic."""

from __future__ import annotations

import pytest

from dfuse.errors import UsageError
from dfuse.layout import MemoryLayout
from dfuse.optionbytes import FACTORY_DEFAULT, OptionBytes
from dfuse.parts import get
from dfuse.planning import protection as prot
from dfuse.protocol.plan import WriteOptions
from dfuse.transport.base import AltSetting, DeviceInfo, DeviceMode


def _info(part: str) -> DeviceInfo:
    strings = get(part).alt_strings
    alts = tuple(AltSetting(n, s, MemoryLayout.parse(s)) for n, s in enumerate(strings))
    return DeviceInfo(0x0483, 0xDF11, 0x2200, None, None, None, 1, (), 2, DeviceMode.DFU, 0,
                      alts, None)  # fmt: skip


@pytest.mark.parametrize(
    ("part", "bits"), [("stm32f411xe", 8), ("stm32f411xc", 8), ("stm32f407", 12), ("stm32f429", 12)]
)
def test_the_nwrp_bits_follow_the_flash_alt(part: str, bits: int) -> None:
    assert prot.nwrp_bits(_info(part)) == bits


def test_sector_numbers_are_checked_against_the_layout_and_the_modelled_bits() -> None:
    assert prot.flash_sector_numbers(_info("stm32f407"), [11, 8]) == {8, 11}
    with pytest.raises(UsageError, match=r"0\.\.7, got 8") as info:
        prot.flash_sector_numbers(_info("stm32f411xe"), [8])
    assert info.value.expected == "0..7"
    assert prot.flash_sector_numbers(_info("stm32f429"), [0, 11]) == {0, 11}
    with pytest.raises(UsageError, match="flash sector 12: dfuse models") as info:
        prot.flash_sector_numbers(_info("stm32f429"), [3, 12])
    assert info.value.value == 12
    assert info.value.expected == "0..11"
    with pytest.raises(UsageError, match="got True"):
        prot.flash_sector_numbers(_info("stm32f407"), [True])


def test_a_change_in_nwrp_bits_8_to_11_alone_is_written() -> None:
    info = _info("stm32f407")
    current = OptionBytes.parse(FACTORY_DEFAULT.to_bytes())  # decoded with 8 bits
    wanted = OptionBytes.parse(current.to_bytes(), sectors=12).with_sectors_protected({9})
    assert (current.optcr >> 16) & 0xFF == (wanted.optcr >> 16) & 0xFF
    plan = prot.plan_option_bytes(info, current, wanted)
    (write,) = [s for s in plan.steps if isinstance(s, WriteOptions)]
    assert write.data == wanted.to_bytes()
    assert prot.plan_option_bytes(info, wanted, wanted).steps == ()
