"""OptionBytes (STM32F4 option-byte block) and OtpArea."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dfuse.errors import OptionBytesError
from dfuse.layout import STM32F411XE_OPTION_BYTES, STM32F411XE_OTP
from dfuse.optionbytes import (
    FACTORY_DEFAULT,
    FACTORY_OPTCR,
    OPTION_BYTES_ADDRESS,
    OPTION_BYTES_SIZE,
    OTP_ADDRESS,
    OTP_LOCK_ADDRESS,
    OTP_SIZE,
    BorLevel,
    OptionBytes,
    OtpArea,
    RdpLevel,
)

# --------------------------------------------------------------------------- block layout


def test_block_matches_the_alt_setting() -> None:
    (sector,) = STM32F411XE_OPTION_BYTES.sectors
    assert (sector.address, sector.size) == (OPTION_BYTES_ADDRESS, OPTION_BYTES_SIZE)
    assert STM32F411XE_OTP.address == OTP_ADDRESS
    assert STM32F411XE_OTP.sectors[1].address == OTP_LOCK_ADDRESS
    assert STM32F411XE_OTP.size == OTP_SIZE


def test_factory_default_bytes() -> None:
    # OPTCR 0x0FFFAAED: USER bits 7:5 = 1, BOR_LEV = 11, not-used bits (4, 1:0) read as 1
    # -> 0xFF; RDP 0xAA; nWRP 0xFF, SPRMOD 0, bits 14:8 not used -> 0x7FFF; complements
    # 0x5500 and 0x8000; reserved bytes erased.
    assert FACTORY_DEFAULT.to_bytes() == bytes.fromhex("ffaa0055ffffffffff7f0080ffffffff")
    assert FACTORY_DEFAULT.optcr == FACTORY_OPTCR == 0x0FFFAAED
    assert FACTORY_DEFAULT.rdp_level is RdpLevel.LEVEL_0
    assert FACTORY_DEFAULT.write_protected == frozenset()
    assert FACTORY_DEFAULT.bor_level is BorLevel.OFF
    assert FACTORY_DEFAULT.wdg_sw
    assert FACTORY_DEFAULT.nrst_stop
    assert FACTORY_DEFAULT.nrst_stdby
    assert not FACTORY_DEFAULT.sprmod
    assert bytes(FACTORY_DEFAULT) == FACTORY_DEFAULT.to_bytes()


def test_parse_fields_by_hand() -> None:
    # USER 0x41 = 0100 0001: nRST_STDBY 0, nRST_STOP 1, WDG_SW 0, BOR_LEV 00 (level 3)
    # RDP 0x33: level 1; nWRP 0x00F6 = sectors 0 and 3 protected, bits 8-15 clear
    block = bytes.fromhex("4133becc01020304f60009ff05060708")
    ob = OptionBytes.parse(block, strict=True)
    assert ob.user == 0x41
    assert ob.rdp == 0x33
    assert ob.rdp_level is RdpLevel.LEVEL_1
    assert not ob.nrst_stdby
    assert ob.nrst_stop
    assert not ob.wdg_sw
    assert ob.bor_level is BorLevel.LEVEL_3
    assert ob.nwrp == 0x00F6
    assert ob.write_protected == {0, 3}
    assert ob.is_write_protected(0)
    assert not ob.is_write_protected(1)
    assert not ob.is_write_protected(8)
    assert ob.reserved == bytes.fromhex("0102030405060708")
    assert ob.to_bytes() == block


def test_sprmod_makes_nwrp_active_high() -> None:
    # nWRP 0x8003: SPRMOD set, bits 0 and 1 high -> PCROP (and write protection) on 0 and 1
    ob = OptionBytes(user=0xFF, rdp=0xAA, nwrp=0x8003)
    assert ob.sprmod
    assert ob.pcrop == {0, 1}
    assert ob.write_protected == {0, 1}
    assert FACTORY_DEFAULT.pcrop == frozenset()
    assert ob.with_write_protection({5}).nwrp == 0x8020
    assert ob.optcr & 0x8000_0000


def test_simulator_style_block_without_complements() -> None:
    # A block with erased complement bytes parses leniently, but not strictly.
    block = bytes.fromhex("ecaaffffffffffffff0fffffffffffff")
    ob = OptionBytes.parse(block)
    assert ob.rdp_level is RdpLevel.LEVEL_0
    assert ob.bor_level is BorLevel.OFF
    assert ob.write_protected == frozenset()
    with pytest.raises(OptionBytesError) as info:
        OptionBytes.parse(block, strict=True)
    assert info.value.offset == 2
    assert info.value.expected == bytes.fromhex("1355")
    assert info.value.found == b"\xff\xff"
    good_low = bytes.fromhex("ecaa1355ffffffffff0fffffffffffff")
    with pytest.raises(OptionBytesError, match="offsets 8-9") as info:
        OptionBytes.parse(good_low, strict=True)
    assert info.value.offset == 10


@pytest.mark.parametrize("size", [0, 15, 17, 32])
def test_wrong_size(size: int) -> None:
    with pytest.raises(OptionBytesError, match="wrong size") as info:
        OptionBytes.parse(bytes(size))
    assert info.value.found == f"{size} bytes"
    assert info.value.expected == "16 bytes"
    assert info.value.offset == min(size, 16)


@given(st.integers(0, 255))
def test_rdp_levels(rdp: int) -> None:
    ob = OptionBytes(user=0xFF, rdp=rdp, nwrp=0x7FFF)
    expected = {0xAA: RdpLevel.LEVEL_0, 0xCC: RdpLevel.LEVEL_2}.get(rdp, RdpLevel.LEVEL_1)
    assert ob.rdp_level is expected


@pytest.mark.parametrize(
    ("bits", "level"),
    [(0b00, BorLevel.LEVEL_3), (0b01, BorLevel.LEVEL_2), (0b10, BorLevel.LEVEL_1)],
)
def test_bor_levels(bits: int, level: BorLevel) -> None:
    ob = OptionBytes(user=0xF3 | bits << 2, rdp=0xAA, nwrp=0x7FFF)
    assert ob.bor_level is level
    assert f"VBOR{3 - bits}" in level.description
    assert "off" in BorLevel.OFF.description


# --------------------------------------------------------------------------- properties


def _valid_block(draw: st.DrawFn) -> bytes:
    low = draw(st.binary(min_size=2, max_size=2))
    wrp = draw(st.binary(min_size=2, max_size=2))
    res = draw(st.binary(min_size=8, max_size=8))

    def comp(b: bytes) -> bytes:
        return bytes(x ^ 0xFF for x in b)

    return low + comp(low) + res[:4] + wrp + comp(wrp) + res[4:]


valid_blocks = st.composite(_valid_block)()
option_bytes = st.builds(
    OptionBytes,
    user=st.integers(0, 255),
    rdp=st.integers(0, 255),
    nwrp=st.integers(0, 0xFFFF),
    reserved=st.binary(min_size=8, max_size=8),
)


@settings(max_examples=200)
@given(valid_blocks)
def test_valid_blocks_round_trip(block: bytes) -> None:
    assert OptionBytes.parse(block, strict=True).to_bytes() == block


@settings(max_examples=200)
@given(option_bytes)
def test_objects_round_trip(ob: OptionBytes) -> None:
    assert OptionBytes.parse(ob.to_bytes(), strict=True) == ob
    json.dumps(ob.to_dict())
    assert f"0x{ob.rdp:02X}" in ob.describe()


def _parse_or_error(data: bytes) -> OptionBytes | OptionBytesError:
    try:
        return OptionBytes.parse(data, strict=True)
    except OptionBytesError as err:
        return err


@settings(max_examples=200)
@given(st.binary(max_size=20))
def test_random_bytes_raise_only_option_bytes_error(data: bytes) -> None:
    result = _parse_or_error(data)
    if isinstance(result, OptionBytesError):
        assert result.offset is not None
    else:
        assert result.to_bytes() == data
    if len(data) == 16:
        lenient = OptionBytes.parse(data)
        assert (lenient.user, lenient.rdp) == (data[0], data[1])


@settings(max_examples=200)
@given(
    st.integers(0, 0xFF),
    st.integers(0, 0xFF),
    st.sampled_from([0xE0, 0xC0, 0x20, 0x00, 0x80, 0x40, 0xA0, 0x60]),
    st.integers(0, 3),
    st.booleans(),
)
def test_optcr_round_trip(nwrp: int, rdp: int, flags: int, bor: int, sprmod: bool) -> None:
    optcr = (sprmod << 31) | 0x0F00_0000 | nwrp << 16 | rdp << 8 | flags | bor << 2 | 0x01
    ob = OptionBytes.from_optcr(optcr)
    assert ob.optcr == optcr
    assert ob.rdp == rdp
    assert ob.nwrp & 0xFF == nwrp
    assert ob.sprmod == sprmod
    assert ob.bor_level == BorLevel(bor)


def test_from_optcr_range() -> None:
    with pytest.raises(ValueError, match="32-bit"):
        OptionBytes.from_optcr(1 << 32)


# --------------------------------------------------------------------------- changes


def test_with_rdp() -> None:
    assert FACTORY_DEFAULT.with_rdp(1).rdp == 0x55
    assert FACTORY_DEFAULT.with_rdp(1).rdp_level is RdpLevel.LEVEL_1
    assert FACTORY_DEFAULT.with_rdp(1).with_rdp(0).rdp == 0xAA
    odd = OptionBytes(user=0xFF, rdp=0x12, nwrp=0x7FFF)
    assert odd.with_rdp(1).rdp == 0x12  # already level 1: the raw byte stays
    with pytest.raises(ValueError, match="irreversible"):
        FACTORY_DEFAULT.with_rdp(2)
    assert FACTORY_DEFAULT.with_rdp(RdpLevel.LEVEL_2, allow_level_2=True).rdp == 0xCC
    with pytest.raises(ValueError, match="not a valid"):
        FACTORY_DEFAULT.with_rdp(3)
    assert "permanent" in RdpLevel.LEVEL_2.description


def test_with_write_protection() -> None:
    ob = FACTORY_DEFAULT.with_write_protection({0, 7})
    assert ob.write_protected == {0, 7}
    assert ob.nwrp == 0x7F7E  # bits 0 and 7 cleared, not-used bits kept
    assert ob.with_sectors_protected([3]).write_protected == {0, 3, 7}
    assert ob.with_sectors_unprotected([0]).write_protected == {7}
    assert ob.with_write_protection([]).nwrp == FACTORY_DEFAULT.nwrp
    with pytest.raises(ValueError, match=r"0\.\.7"):
        FACTORY_DEFAULT.with_write_protection({8})
    with pytest.raises(ValueError, match=r"0\.\.7"):
        FACTORY_DEFAULT.with_sectors_protected({-1})
    pcrop = ob.with_sprmod(True)
    assert pcrop.sprmod
    assert pcrop.write_protected == set(range(1, 7))  # same bits, opposite meaning
    assert pcrop.with_sprmod(False) == ob


def test_with_user_settings() -> None:
    ob = FACTORY_DEFAULT.with_bor_level(BorLevel.LEVEL_1)
    assert ob.bor_level is BorLevel.LEVEL_1
    assert ob.user == 0xFB
    ob = ob.with_user_flags(wdg_sw=False, nrst_stop=False, nrst_stdby=False)
    assert (ob.wdg_sw, ob.nrst_stop, ob.nrst_stdby) == (False, False, False)
    assert ob.user == 0x1B
    back = ob.with_user_flags(wdg_sw=True, nrst_stop=True, nrst_stdby=True)
    assert back.user == 0xFB
    assert back.with_user_flags() == back
    assert "hardware" in ob.describe()
    assert "reset on entering Stop" in ob.describe()


def test_constructor_checks() -> None:
    with pytest.raises(ValueError, match="user"):
        OptionBytes(user=256, rdp=0, nwrp=0)
    with pytest.raises(ValueError, match="rdp"):
        OptionBytes(user=0, rdp=-1, nwrp=0)
    with pytest.raises(ValueError, match="nwrp"):
        OptionBytes(user=0, rdp=0, nwrp=0x10000)
    with pytest.raises(ValueError, match="reserved"):
        OptionBytes(user=0, rdp=0, nwrp=0, reserved=b"\xff")


def test_to_dict() -> None:
    d = FACTORY_DEFAULT.with_write_protection({2}).to_dict()
    assert d["rdp_level"] == 0
    assert d["write_protected"] == [2]
    assert d["bor_level"] == "OFF"
    assert d["optcr"] == 0x0FFBAAED
    assert json.loads(json.dumps(d)) == d


# --------------------------------------------------------------------------- OTP


def test_otp_blank_and_addresses() -> None:
    otp = OtpArea.blank()
    assert otp.to_bytes() == b"\xff" * 528
    assert otp.locked == frozenset()
    assert otp.blank_blocks == set(range(16))
    assert OtpArea.block_address(0) == 0x1FFF7800
    assert OtpArea.block_address(15) == 0x1FFF79E0
    assert OtpArea.lock_address(0) == 0x1FFF7A00
    assert OtpArea.lock_address(15) == 0x1FFF7A0F
    assert OtpArea.parse(bytes(otp)) == otp


def test_otp_parse_by_hand() -> None:
    data = bytearray(b"\xff" * 528)
    data[32:36] = b"\x12\x34\x56\x78"  # block 1
    data[512 + 1] = 0x00  # lock block 1
    data[512 + 2] = 0x0F  # partly programmed lock byte: not a lock (only 0x00 locks)
    otp = OtpArea.parse(data)
    assert otp.blocks[1][:4] == b"\x12\x34\x56\x78"
    assert otp.locked == {1}
    assert otp.is_locked(1)
    assert not otp.is_locked(2)
    assert 1 not in otp.blank_blocks
    assert otp.to_bytes() == bytes(data)
    assert "locked" in otp.describe().splitlines()[1]
    assert otp.to_dict()["locked"] == [1]


@pytest.mark.parametrize("size", [0, 512, 527, 529])
def test_otp_wrong_size(size: int) -> None:
    with pytest.raises(OptionBytesError, match="OTP area") as info:
        OtpArea.parse(bytes(size))
    assert info.value.found == f"{size} bytes"


def test_otp_programming_rules() -> None:
    otp = OtpArea.blank()
    data = bytes(range(32))
    written = otp.with_block(3, data)
    assert written.blocks[3] == data
    assert written.can_write(3, bytes(32))  # clearing more bits is fine
    assert not written.can_write(3, b"\xff" * 32)  # 0 -> 1 is impossible
    with pytest.raises(ValueError, match="bits set back to 1"):
        written.with_block(3, b"\xff" * 32)
    locked = written.with_lock(3)
    assert locked.locked == {3}
    assert not locked.can_write(3, bytes(32))
    with pytest.raises(ValueError, match="is locked"):
        locked.with_block(3, bytes(32))
    with pytest.raises(ValueError, match="32 bytes"):
        otp.can_write(0, b"short")
    with pytest.raises(ValueError, match=r"0\.\.15"):
        otp.with_lock(16)
    with pytest.raises(ValueError, match=r"0\.\.15"):
        OtpArea.block_address(-1)


def test_otp_constructor_checks() -> None:
    with pytest.raises(ValueError, match="blocks"):
        OtpArea((b"\xff" * 32,) * 15, b"\xff" * 16)
    with pytest.raises(ValueError, match="blocks"):
        OtpArea((b"\xff" * 31,) * 16, b"\xff" * 16)
    with pytest.raises(ValueError, match="lock bytes"):
        OtpArea((b"\xff" * 32,) * 16, b"\xff" * 15)


@settings(max_examples=100)
@given(st.binary(min_size=528, max_size=528))
def test_otp_round_trip(data: bytes) -> None:
    otp = OtpArea.parse(data)
    assert otp.to_bytes() == data
    assert otp.locked == {i for i in range(16) if data[512 + i] == 0}
