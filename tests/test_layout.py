"""MemoryLayout: parsing DfuSe alternate-setting strings, queries, str() round trip."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dfuse.errors import LayoutError
from dfuse.layout import (
    STM32F411XC_ALT_STRINGS,
    STM32F411XC_FLASH,
    STM32F411XE_ALT_STRINGS,
    STM32F411XE_DEVICE_FEATURE,
    STM32F411XE_FLASH,
    STM32F411XE_OPTION_BYTES,
    STM32F411XE_OTP,
    Access,
    MemoryLayout,
    Region,
    Sector,
)

KIB = 1024

# --------------------------------------------------------------------------- STM32F411


def test_f411xe_flash_sectors_match_rm0383() -> None:
    flash = STM32F411XE_FLASH
    assert flash.name == "Internal Flash  "
    assert flash.label == "Internal Flash"
    assert len(flash.regions) == 1
    # RM0383 table 4: sectors 0-3 16 KiB, 4 64 KiB, 5-7 128 KiB from 0x08000000.
    expected = [
        (0x08000000, 16 * KIB),
        (0x08004000, 16 * KIB),
        (0x08008000, 16 * KIB),
        (0x0800C000, 16 * KIB),
        (0x08010000, 64 * KIB),
        (0x08020000, 128 * KIB),
        (0x08040000, 128 * KIB),
        (0x08060000, 128 * KIB),
    ]
    assert [(s.address, s.size) for s in flash.sectors] == expected
    assert [s.index for s in flash.sectors] == list(range(8))
    assert all(s.readable and s.erasable and s.writable for s in flash.sectors)
    assert flash.size == 512 * KIB
    assert flash.address == 0x08000000
    assert flash.end == 0x08080000
    assert len(flash) == 8
    assert list(flash) == list(flash.sectors)


def test_f411xc_flash_is_256k() -> None:
    assert STM32F411XC_FLASH.size == 256 * KIB
    assert [s.size // KIB for s in STM32F411XC_FLASH.sectors] == [16, 16, 16, 16, 64, 128]
    assert STM32F411XC_ALT_STRINGS[1:] == STM32F411XE_ALT_STRINGS[1:]


def test_f411_other_alt_settings() -> None:
    ob = STM32F411XE_OPTION_BYTES
    assert ob.name == "Option Bytes  "
    assert [(s.address, s.size, s.access) for s in ob.sectors] == [
        (0x1FFFC000, 16, Access.READ | Access.WRITE)
    ]
    otp = STM32F411XE_OTP
    assert otp.label == "OTP Memory"
    assert [(s.address, s.size, s.letter) for s in otp.sectors] == [
        (0x1FFF7800, 512, "e"),
        (0x1FFF7A00, 16, "e"),
    ]
    assert not otp.sectors[0].erasable
    feat = STM32F411XE_DEVICE_FEATURE
    assert feat.name == "Device Feature"
    assert [(s.address, s.size, s.letter) for s in feat.sectors] == [(0xFFFF0000, 4, "e")]
    assert feat.end == 0xFFFF0004


@pytest.mark.parametrize("text", STM32F411XE_ALT_STRINGS + STM32F411XC_ALT_STRINGS[:1])
def test_f411_strings_round_trip_exactly(text: str) -> None:
    layout = MemoryLayout.parse(text)
    assert str(layout) == text
    # The canonical spelling (no remembered text) is the ST spelling too.
    rebuilt = MemoryLayout(layout.name, tuple(Region(r.address, r.sectors) for r in layout.regions))
    assert str(rebuilt) == text
    assert rebuilt == layout


# --------------------------------------------------------------------------- queries


def test_sector_at() -> None:
    flash = STM32F411XE_FLASH
    assert flash.sector_at(0x08000000) == flash.sectors[0]
    assert flash.sector_at(0x08003FFF) == flash.sectors[0]
    assert flash.sector_at(0x08004000) == flash.sectors[1]
    assert flash.sector_at(0x0807FFFF) == flash.sectors[7]
    assert flash.sector_at(0x08080000) is None
    assert flash.sector_at(0x07FFFFFF) is None
    assert flash.sector_at(0) is None
    assert 0x08000010 in flash.sectors[0]
    assert 0x08004000 not in flash.sectors[0]


def test_sectors_for() -> None:
    flash = STM32F411XE_FLASH
    s = flash.sectors
    assert flash.sectors_for(0x08000000, 1) == (s[0],)
    assert flash.sectors_for(0x08003FFF, 2) == (s[0], s[1])
    assert flash.sectors_for(0x08000000, 0x80000) == s
    assert flash.sectors_for(0x07000000, 0x2000000) == s
    assert flash.sectors_for(0x08010000, 0x10001) == (s[4], s[5])
    assert flash.sectors_for(0x08000000, 0) == ()
    assert flash.sectors_for(0x09000000, 16) == ()
    assert flash.sectors_for(0x00000000, 16) == ()
    with pytest.raises(ValueError, match="negative"):
        flash.sectors_for(0x08000000, -1)


def test_contains_and_allows_with_gaps() -> None:
    layout = MemoryLayout.parse("@Gappy/0x1000/02*001Ka/0x2000/01*001Kg/0x3000/01*1Kg")
    assert layout.contains(0x1000, 0x800)
    assert not layout.contains(0x17FF, 2)  # 0x1800 is in no sector
    assert layout.contains(0x1000)
    assert not layout.contains(0x0FFF)
    assert layout.contains(0x2000, 0x400)
    assert layout.contains(0x2000, 0)
    assert layout.allows(0x1000, 0x800, Access.READ)
    assert not layout.allows(0x1000, 0x800, Access.WRITE)
    assert layout.allows(0x2000, 0x400, Access.READ | Access.ERASE | Access.WRITE)
    assert not layout.allows(0x2000, 0x1001, Access(0))  # gap 0x2400-0x2FFF
    assert not layout.allows(0x3000, 0x401)  # past the end
    with pytest.raises(ValueError, match="negative"):
        layout.allows(0x1000, -1)


def test_regions_keep_string_order_sectors_address_order() -> None:
    layout = MemoryLayout.parse("@Two/0x2000/01*1Kg/0x1000/02*512 a")
    assert [r.address for r in layout.regions] == [0x2000, 0x1000]
    assert [s.address for s in layout.sectors] == [0x1000, 0x1200, 0x2000]
    assert [s.index for s in layout.sectors] == [0, 1, 2]
    assert [s.index for s in layout.regions[0].sectors] == [2]
    assert layout.regions[1].size == 1024
    assert layout.regions[1].end == 0x1400
    assert str(layout) == "@Two/0x2000/01*1Kg/0x1000/02*512 a"


@pytest.mark.parametrize(
    ("letter", "r", "e", "w"),
    [
        ("a", True, False, False),
        ("b", False, True, False),
        ("c", True, True, False),
        ("d", False, False, True),
        ("e", True, False, True),
        ("f", False, True, True),
        ("g", True, True, True),
    ],
)
def test_access_letters_per_dfuse_mem_c(letter: str, r: bool, e: bool, w: bool) -> None:
    # dfu-util: memtype = letter & 7; bit0 readable, bit1 erasable, bit2 writeable
    layout = MemoryLayout.parse(f"@X/0x0/1*1K{letter}")
    (s,) = layout.sectors
    assert (s.readable, s.erasable, s.writable) == (r, e, w)
    assert s.letter == letter
    assert Access.from_letter(letter) == s.access


def test_multipliers() -> None:
    sizes = [s.size for s in MemoryLayout.parse("@M/0x0/1*3 a,1*3Ba,1*3Ka,1*3Ma,1*3a").sectors]
    assert sizes == [3, 3, 3 * KIB, 3 * 1024 * KIB, 3]


def test_sloppy_real_device_forms() -> None:
    # no multiplier, access letter right after the size: 1536 sectors of 128 bytes
    layout = MemoryLayout.parse("@Internal Flash  /0x08000000/1536*128g")
    assert len(layout.sectors) == 1536
    assert {s.size for s in layout.sectors} == {128}
    assert layout.size == 1536 * 128
    assert layout.sectors[-1].address == 0x08000000 + 1535 * 128
    # whitespace before counts and sizes (C's %d skips it), and before the address digits
    spaced = MemoryLayout.parse("@Flash /0x 08000000/ 04*016Kg, 01* 064Kg")
    assert [s.size // KIB for s in spaced.sectors] == [16, 16, 16, 16, 64]
    assert str(spaced) == "@Flash /0x 08000000/ 04*016Kg, 01* 064Kg"
    # lower-case hex and long zero-padded numbers
    odd = MemoryLayout.parse("@x/0x1fff7800/0000001*0000512 e")
    assert odd.sectors[0].address == 0x1FFF7800
    assert odd.sectors[0].size == 512


def test_address_limits() -> None:
    top = MemoryLayout.parse("@Top/0xFFFFFC00/1*1Kg")
    assert top.end == 1 << 32
    assert MemoryLayout.parse("@Z/0x000000000000FFFF0000/1*4 e").address == 0xFFFF0000


def test_constructor_checks() -> None:
    with pytest.raises(ValueError, match="positive"):
        Sector(0, 0, True, True, True)
    with pytest.raises(ValueError, match="32-bit"):
        Sector(0xFFFFFFFF, 2, True, True, True)
    with pytest.raises(ValueError, match="32-bit"):
        Sector(-1, 2, True, True, True)
    with pytest.raises(ValueError, match="readable, erasable or writable"):
        Sector(0, 2, False, False, False)
    with pytest.raises(ValueError, match="at least one sector"):
        Region(0, ())
    with pytest.raises(ValueError, match="contiguous"):
        Region(0, (Sector(0, 4, True, True, True), Sector(8, 4, True, True, True)))
    sector = Sector.with_access(0, 4, "g")
    region = Region(0, (sector,))
    with pytest.raises(ValueError, match="name"):
        MemoryLayout("", (region,))
    with pytest.raises(ValueError, match="name"):
        MemoryLayout("a/b", (region,))
    with pytest.raises(ValueError, match="at least one region"):
        MemoryLayout("a", ())
    with pytest.raises(ValueError, match="overlap"):
        MemoryLayout("a", (region, Region(2, (Sector.with_access(2, 4, Access.READ),))))
    with pytest.raises(ValueError, match=r"'a'\.\.'g'"):
        Access.from_letter("h")
    with pytest.raises(ValueError, match="no access letter"):
        _ = Access(0).letter


def test_stale_spelling_is_not_used() -> None:
    layout = MemoryLayout.parse("@F/0x08000000/04*016Kg")
    region = layout.regions[0]
    changed = dataclasses.replace(region, sectors=region.sectors[:2])
    assert str(changed) == "/0x08000000/02*016Kg"
    moved = Region(0x1000, (Sector.with_access(0x1000, 16 * KIB, "g"),), "/0x08000000/01*016Kg")
    assert str(moved) == "/0x00001000/01*016Kg"
    broken = Region(0x1000, (Sector.with_access(0x1000, 16, "g"),), "not a region")
    assert str(broken) == "/0x00001000/01*016 g"
    two = Region(0, (Sector.with_access(0, 16, "g"),), "/0x0/1*16g/0x10/1*16g")
    assert str(two) == "/0x00000000/01*016 g"


def test_parse_needs_str() -> None:
    with pytest.raises(TypeError):
        MemoryLayout.parse(b"@x/0x0/1*1Kg")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- errors

BAD = [
    # (string, position, words in the message)
    ("", 0, "missing '@'"),
    ("Internal Flash/0x08000000/1*1Kg", 0, "missing '@'"),
    (" @Flash/0x08000000/1*1Kg", 0, "missing '@'"),
    ("@", 1, "missing name"),
    ("@/0x08000000/1*1Kg", 1, "missing name"),
    ("@Flash", 6, "missing region address"),
    ("@Flash/", 7, "missing region address"),
    ("@Flash/08000000/1*1Kg", 8, "missing region address"),
    ("@Flash/0X08000000/1*1Kg", 8, "missing region address"),
    ("@Flash/0x/1*1Kg", 9, "missing region address"),
    ("@Flash/0xZZ/1*1Kg", 9, "missing region address"),
    ("@Flash/0x08000000", 17, "malformed region address"),
    ("@Flash/0x0800G000/1*1Kg", 13, "malformed region address"),
    ("@Flash/0x100000000/1*1Kg", 9, "past 2**32"),
    ("@Flash/0x08000000/", 18, "missing sector count"),
    ("@Flash/0x08000000/*1Kg", 18, "missing sector count"),
    ("@Flash/0x08000000/-1*1Kg", 18, "missing sector count"),
    ("@Flash/0x08000000/+1*1Kg", 18, "missing sector count"),
    ("@Flash/0x08000000/1Kg", 19, "malformed sector group"),
    ("@Flash/0x08000000/1*Kg", 20, "missing sector size"),
    ("@Flash/0x08000000/1*", 20, "missing sector size"),
    ("@Flash/0x08000000/1*1", 21, "unknown multiplier"),
    ("@Flash/0x08000000/1*1Gg", 21, "unknown multiplier"),
    ("@Flash/0x08000000/1*1kg", 21, "unknown multiplier"),
    ("@Flash/0x08000000/1*1h", 21, "unknown multiplier"),
    ("@Flash/0x08000000/1*1K", 22, "unknown access letter"),
    ("@Flash/0x08000000/1*1Kh", 22, "unknown access letter"),
    ("@Flash/0x08000000/1*1KG", 22, "unknown access letter"),
    ("@Flash/0x08000000/1*1K,1*1Kg", 22, "unknown access letter"),
    ("@Flash/0x08000000/1*16  e", 23, "unknown access letter"),
    ("@Flash/0x08000000/1*1Kgg", 23, "unexpected text"),
    ("@Flash/0x08000000/1*1Kg ", 23, "unexpected text"),
    ("@Flash/0x08000000/1*1ga", 22, "unexpected text"),
    ("@Flash/0x08000000/1*1Kg,", 24, "missing sector count"),
    ("@Flash/0x08000000/1*1Kg/", 24, "missing region address"),
    ("@Flash/0x08000000/1*1Kg/foo", 24, "missing region address"),
    ("@Flash/0x08000000/0*1Kg", 18, "zero sector count"),
    ("@Flash/0x08000000/1*0Kg", 20, "zero sector size"),
    ("@Flash/0x08000000/1*000 g", 20, "zero sector size"),
    ("@Flash/0x08000000/99999999999*1Kg", 18, "too large"),
    ("@Flash/0x08000000/1*99999999999Kg", 20, "too large"),
    ("@Flash/0xFFFFFC00/2*1Kg", 18, "past 2**32"),
    ("@Flash/0x00000000/4096*1024Kg/0x0/1*1 a", 32, "regions overlap"),
    ("@Flash/0x00000400/4096*1024Kg", 18, "past 2**32"),
    ("@Flash/0xFFFFFC00/1*4 e,1*1Kg", 24, "past 2**32"),
    ("@x/0x08000000/1*" + "0" * 4300 + "1Kg", 16, "sector size too long"),  # issue 17 L1
    ("@x/0x08000000/" + "0" * 33 + "1*1Kg", 14, "sector count too long"),
    ("@A/0x00000000/2*1Kg/0x00000400/1*1Kg", 22, "regions overlap"),
    ("@A/0x00000800/1*1Kg/0x00000000/4*1Kg", 22, "regions overlap"),
]


@pytest.mark.parametrize(("text", "position", "words"), BAD, ids=lambda v: str(v)[:60])
def test_bad_strings_raise_layout_error(text: str, position: int, words: str) -> None:
    with pytest.raises(LayoutError) as info:
        MemoryLayout.parse(text)
    err = info.value
    assert words in str(err)
    assert err.position == position
    assert err.text == text
    assert err.expected is not None
    assert err.found is not None
    if position < len(text):
        assert repr(text[position]) == err.found
    else:
        assert err.found == "end of string"


# --------------------------------------------------------------------------- properties

_names = st.text(
    alphabet=st.characters(exclude_characters="/", exclude_categories=["Cs"]),
    min_size=1,
    max_size=20,
)
_sizes = st.one_of(
    st.integers(1, 4096),
    st.integers(1, 512).map(lambda k: k * KIB),
    st.integers(1, 4).map(lambda m: m << 20),
)
_group = st.tuples(st.integers(1, 6), _sizes, st.integers(1, 7))


@st.composite
def layouts(draw: st.DrawFn) -> MemoryLayout:
    """A random valid layout: 1-3 regions with gaps, random groups, random region order."""
    address = draw(st.integers(0, 0x7FFF_FFFF))
    regions = []
    for _ in range(draw(st.integers(1, 3))):
        groups = draw(st.lists(_group, min_size=1, max_size=4))
        sectors = []
        at = address
        for count, size, access in groups:
            for _ in range(count):
                sectors.append(Sector.with_access(at, size, Access(access)))
                at += size
        if at > 1 << 32:
            break
        regions.append(Region(address, tuple(sectors)))
        address = at + draw(st.integers(0, 0x10000))
    if not regions:
        regions.append(Region(0, (Sector.with_access(0, 1, "a"),)))
    order = draw(st.permutations(regions))
    return MemoryLayout(draw(_names), tuple(order))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(layouts())
def test_generated_layouts_round_trip(layout: MemoryLayout) -> None:
    text = str(layout)
    again = MemoryLayout.parse(text)
    assert again == layout
    assert str(again) == text
    assert [s.index for s in again.sectors] == list(range(len(again.sectors)))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(layouts(), st.data())
def test_queries_agree_with_brute_force(layout: MemoryLayout, data: st.DataObject) -> None:
    lo = max(layout.address - 64, 0)
    address = data.draw(st.integers(lo, layout.end + 64))
    length = data.draw(st.integers(0, 4 * KIB))
    expected = tuple(
        s for s in layout.sectors if s.address < address + length and address < s.end and length
    )
    assert layout.sectors_for(address, length) == expected
    covered = sum(min(s.end, address + length) - max(s.address, address) for s in expected)
    assert layout.contains(address, length) == (covered == length)
    holder = [s for s in layout.sectors if address in s]
    assert layout.sector_at(address) == (holder[0] if holder else None)


def _parse_or_error(text: str) -> MemoryLayout | LayoutError:
    """Parse, or return the LayoutError (any other exception propagates and fails the test)."""
    try:
        return MemoryLayout.parse(text)
    except LayoutError as err:
        return err


_ALPHABET = "@/0x123456789abcdefgABCDEFKMB*, -+\t"


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=_ALPHABET, max_size=40) | st.text(max_size=30))
def test_random_strings_raise_only_layout_error(text: str) -> None:
    result = _parse_or_error(text)
    if isinstance(result, LayoutError):
        assert result.position is not None
        assert 0 <= result.position <= len(text)
    else:
        assert str(result) == text


@settings(max_examples=400, deadline=None)
@given(
    st.sampled_from(STM32F411XE_ALT_STRINGS),
    st.lists(
        st.tuples(st.integers(0, 80), st.sampled_from(["del", "ins", "rep"]), st.characters()),
        min_size=1,
        max_size=4,
    ),
)
def test_mutated_real_strings_raise_only_layout_error(
    text: str, edits: list[tuple[int, str, str]]
) -> None:
    for pos, op, ch in edits:
        pos = min(pos, len(text))
        if op == "del":
            text = text[:pos] + text[pos + 1 :]
        elif op == "ins":
            text = text[:pos] + ch + text[pos:]
        else:
            text = text[:pos] + ch + text[pos + 1 :]
    result = _parse_or_error(text)
    if isinstance(result, LayoutError):
        assert result.position is not None
    else:
        assert str(result) == text
        assert MemoryLayout.parse(str(result)) == result


# --------------------------------------------------------------------------- real strings
#
# Alternate-setting strings of real devices, collected from public sources (cited per entry),
# each with its expected sector map worked out by hand from the string: a list of runs
# (first address, count, sector size, access letter), the number of sectors, the first and
# the last sector's address and the total size. Every string must also round-trip exactly.


@dataclasses.dataclass(frozen=True)
class Real:
    """One collected string and its hand-computed map."""

    family: str
    source: str
    text: str
    label: str
    runs: tuple[tuple[int, int, int, str], ...]  # (address, count, size, letter)
    count: int
    first: int
    last: int
    total: int


REAL = [
    Real(
        "F0 (STM32F042) flash",
        "devanlai/dap42 FLASHING.md, dfu-util --list of the F042 ROM bootloader",
        "@Internal Flash  /0x08000000/032*0001Kg",
        "Internal Flash",
        ((0x08000000, 32, 1024, "g"),),
        32,
        0x08000000,
        0x08007C00,
        32 * KIB,
    ),
    Real(
        "F0 (STM32F042) option bytes",
        "devanlai/dap42 FLASHING.md",
        "@Option Bytes  /0x1FFFF800/01*016 e",
        "Option Bytes",
        ((0x1FFFF800, 1, 16, "e"),),
        1,
        0x1FFFF800,
        0x1FFFF800,
        16,
    ),
    Real(
        "F1-class (2 KiB pages, option bytes at 0x1FFFF800)",
        "EmberHeavyIndustries/HID2AMI issue #5 and keirf/flashfloppy issue #462 (dfu-util -l)",
        "@Internal Flash  /0x08000000/128*002Kg",
        "Internal Flash",
        ((0x08000000, 128, 2 * KIB, "g"),),
        128,
        0x08000000,
        0x0803F800,
        256 * KIB,
    ),
    Real(
        "F3 (STM32F303)",
        "betaflight/betaflight-configurator src/js/protocols/stm32usbdfu.js (comment)",
        "@Internal Flash  /0x08000000/128*0002Kg",
        "Internal Flash",
        ((0x08000000, 128, 2 * KIB, "g"),),
        128,
        0x08000000,
        0x0803F800,
        256 * KIB,
    ),
    Real(
        "F4 (STM32F40x/F41x, 1 MiB)",
        "betaflight-configurator stm32usbdfu.js; micropython ports/stm32/mboot/main.c",
        "@Internal Flash  /0x08000000/04*016Kg,01*064Kg,07*128Kg",
        "Internal Flash",
        (
            (0x08000000, 4, 16 * KIB, "g"),
            (0x08010000, 1, 64 * KIB, "g"),
            (0x08020000, 7, 128 * KIB, "g"),
        ),
        12,
        0x08000000,
        0x080E0000,
        1024 * KIB,
    ),
    Real(
        "F4 (STM32F411, black pill)",
        "zmkfirmware/zmk issue #1711 (dfu-util --list); same strings as PROTOCOL.md",
        "@Internal Flash  /0x08000000/04*016Kg,01*064Kg,03*128Kg",
        "Internal Flash",
        (
            (0x08000000, 4, 16 * KIB, "g"),
            (0x08010000, 1, 64 * KIB, "g"),
            (0x08020000, 3, 128 * KIB, "g"),
        ),
        8,
        0x08000000,
        0x08060000,
        512 * KIB,
    ),
    Real(
        "F4 dual bank (STM32F42x/F43x, 2 MiB)",
        "dfu-util -l listing in public LEIA firmware docs (found by code search)",
        "@Internal Flash  /0x08000000/04*016Kg,01*064Kg,07*128Kg,04*016Kg,01*064Kg,07*128Kg",
        "Internal Flash",
        (
            (0x08000000, 4, 16 * KIB, "g"),
            (0x08010000, 1, 64 * KIB, "g"),
            (0x08020000, 7, 128 * KIB, "g"),
            (0x08100000, 4, 16 * KIB, "g"),
            (0x08110000, 1, 64 * KIB, "g"),
            (0x08120000, 7, 128 * KIB, "g"),
        ),
        24,
        0x08000000,
        0x081E0000,
        2048 * KIB,
    ),
    Real(
        "F4 dual bank option bytes (two regions, the second below the first)",
        "same listing as above",
        "@Option Bytes  /0x1FFFC000/01*016 e/0x1FFEC000/01*016 e",
        "Option Bytes",
        ((0x1FFEC000, 1, 16, "e"), (0x1FFFC000, 1, 16, "e")),
        2,
        0x1FFEC000,
        0x1FFFC000,
        32,
    ),
    Real(
        "F7 (STM32F72x; note the 2-digit size '64')",
        "betaflight-configurator stm32usbdfu.js (comment)",
        "@Internal Flash  /0x08000000/04*016Kg,01*64Kg,03*128Kg",
        "Internal Flash",
        (
            (0x08000000, 4, 16 * KIB, "g"),
            (0x08010000, 1, 64 * KIB, "g"),
            (0x08020000, 3, 128 * KIB, "g"),
        ),
        8,
        0x08000000,
        0x08060000,
        512 * KIB,
    ),
    Real(
        "F7 (STM32F74x)",
        "betaflight-configurator stm32usbdfu.js (comment)",
        "@Internal Flash  /0x08000000/04*032Kg,01*128Kg,03*256Kg",
        "Internal Flash",
        (
            (0x08000000, 4, 32 * KIB, "g"),
            (0x08020000, 1, 128 * KIB, "g"),
            (0x08040000, 3, 256 * KIB, "g"),
        ),
        8,
        0x08000000,
        0x080C0000,
        1024 * KIB,
    ),
    Real(
        "F7 (STM32F76x/F77x, single bank)",
        "micropython ports/stm32/mboot/main.c (FLASH_LAYOUT_STR)",
        "@Internal Flash  /0x08000000/04*032Kg,01*128Kg,07*256Kg",
        "Internal Flash",
        (
            (0x08000000, 4, 32 * KIB, "g"),
            (0x08020000, 1, 128 * KIB, "g"),
            (0x08040000, 7, 256 * KIB, "g"),
        ),
        12,
        0x08000000,
        0x081C0000,
        2048 * KIB,
    ),
    Real(
        "H7 (STM32H743/H750 ROM bootloader, three spaces after the name)",
        "plugdata-team/plugdata Source/Heavy/DaisyExporter.h (dfu-util -l in a comment)",
        "@Internal Flash   /0x08000000/16*128Kg",
        "Internal Flash",
        ((0x08000000, 16, 128 * KIB, "g"),),
        16,
        0x08000000,
        0x081E0000,
        2048 * KIB,
    ),
    Real(
        "H7 option bytes (mapped at the flash registers)",
        "plugdata DaisyExporter.h (same listing)",
        "@Option Bytes   /0x5200201C/01*128 e",
        "Option Bytes",
        ((0x5200201C, 1, 128, "e"),),
        1,
        0x5200201C,
        0x5200201C,
        128,
    ),
    Real(
        "H7 QSPI bootloader (three regions)",
        "plugdata DaisyExporter.h (Daisy bootloader listing)",
        "@Flash /0x90000000/64*4Kg/0x90040000/60*64Kg/0x90400000/60*64Kg",
        "Flash",
        (
            (0x90000000, 64, 4 * KIB, "g"),
            (0x90040000, 60, 64 * KIB, "g"),
            (0x90400000, 60, 64 * KIB, "g"),
        ),
        184,
        0x90000000,
        0x907B0000,
        256 * KIB + 2 * 60 * 64 * KIB,
    ),
    Real(
        "H7 (STM32H750 external flash, read-only tail)",
        "betaflight-configurator stm32usbdfu.js (SPRacing H7 EXST comment)",
        "@External Flash /0x90000000/998*128Kg,1*128Kg,4*128Kg,21*128Ka",
        "External Flash",
        ((0x90000000, 1003, 128 * KIB, "g"), (0x97D60000, 21, 128 * KIB, "a")),
        1024,
        0x90000000,
        0x97FE0000,
        128 * 1024 * KIB,
    ),
    Real(
        "H7 (STM32H7B3, 7-digit option-byte address as reported)",
        "community.st.com 'Problem using dfu-util with STM32H7B3I EVAL board' (2022)",
        "@Option Bytes  /0x1FF8000/01*128 e",
        "Option Bytes",
        ((0x01FF8000, 1, 128, "e"),),
        1,
        0x01FF8000,
        0x01FF8000,
        128,
    ),
    Real(
        "H7 (STM32H7B3) flash",
        "community.st.com, same thread",
        "@Internal Flash  /0x08000000/256*02Kg",
        "Internal Flash",
        ((0x08000000, 256, 2 * KIB, "g"),),
        256,
        0x08000000,
        0x0807F800,
        512 * KIB,
    ),
    Real(
        "L0 (STM32L083, sloppy: no multiplier, 128-byte pages)",
        "PexMor/bigclown-notes README.md (dfu-util -l; dfu-util warns 'Non-valid multiplier')",
        "@Internal Flash  /0x08000000/1536*128g",
        "Internal Flash",
        ((0x08000000, 1536, 128, "g"),),
        1536,
        0x08000000,
        0x0802FF80,
        192 * KIB,
    ),
    Real(
        "L0 data EEPROM (no leading zeros, read+write only)",
        "PexMor/bigclown-notes README.md",
        "@DATA Memory /0x08080000/2*3Ke",
        "DATA Memory",
        ((0x08080000, 2, 3 * KIB, "e"),),
        2,
        0x08080000,
        0x08080C00,
        6 * KIB,
    ),
    Real(
        "L0/L1 option bytes",
        "PexMor/bigclown-notes README.md; mafredri/openbttn README.md",
        "@Option Bytes  /0x1FF80000/01*032 e",
        "Option Bytes",
        ((0x1FF80000, 1, 32, "e"),),
        1,
        0x1FF80000,
        0x1FF80000,
        32,
    ),
    Real(
        "L1 (256-byte pages, ' ' multiplier)",
        "mafredri/openbttn README.md (dfu-util --list of the bt.tn button)",
        "@Internal Flash  /0x08000000/1024*256 g",
        "Internal Flash",
        ((0x08000000, 1024, 256, "g"),),
        1024,
        0x08000000,
        0x0803FF00,
        256 * KIB,
    ),
    Real(
        "L1 data EEPROM",
        "mafredri/openbttn README.md",
        "@DATA Memory /0x08080000/02*004Ke",
        "DATA Memory",
        ((0x08080000, 2, 4 * KIB, "e"),),
        2,
        0x08080000,
        0x08081000,
        8 * KIB,
    ),
    Real(
        "L4 (4-digit counts and sizes)",
        "mobilinkd/tnc3-firmware issue #12 (dfu-util -l)",
        "@Internal Flash  /0x08000000/0128*0002Kg",
        "Internal Flash",
        ((0x08000000, 128, 2 * KIB, "g"),),
        128,
        0x08000000,
        0x0803F800,
        256 * KIB,
    ),
    Real(
        "L4 option bytes",
        "mobilinkd/tnc3-firmware issue #12",
        "@Option Bytes  /0x1FFF7800/01*040 e",
        "Option Bytes",
        ((0x1FFF7800, 1, 40, "e"),),
        1,
        0x1FFF7800,
        0x1FFF7800,
        40,
    ),
    Real(
        "L4 OTP",
        "mobilinkd/tnc3-firmware issue #12",
        "@OTP Memory /0x1FFF7000/01*0001Ke",
        "OTP Memory",
        ((0x1FFF7000, 1, 1 * KIB, "e"),),
        1,
        0x1FFF7000,
        0x1FFF7000,
        1 * KIB,
    ),
    Real(
        "G4 (STM32G474) flash",
        "dfu-util -l in a public WeAct STM32G474 Zephyr board write-up (code search)",
        "@Internal Flash   /0x08000000/256*02Kg",
        "Internal Flash",
        ((0x08000000, 256, 2 * KIB, "g"),),
        256,
        0x08000000,
        0x0807F800,
        512 * KIB,
    ),
    Real(
        "G4 (STM32G474) option bytes, two banks",
        "betaflight-configurator stm32usbdfu.js (G474 comment); same write-up",
        "@Option Bytes   /0x1FFF7800/01*048 e/0x1FFFF800/01*048 e",
        "Option Bytes",
        ((0x1FFF7800, 1, 48, "e"), (0x1FFFF800, 1, 48, "e")),
        2,
        0x1FFF7800,
        0x1FFFF800,
        96,
    ),
    Real(
        "G4 (STM32G474) OTP, 1024 bytes without multiplier",
        "same write-up",
        "@OTP Memory   /0x1FFF7000/01*1024 e",
        "OTP Memory",
        ((0x1FFF7000, 1, 1024, "e"),),
        1,
        0x1FFF7000,
        0x1FFF7000,
        1024,
    ),
    Real(
        "WB (STM32WB55)",
        "micropython ports/stm32/mboot/main.c (FLASH_LAYOUT_STR for STM32WB)",
        "@Internal Flash  /0x08000000/256*04Kg",
        "Internal Flash",
        ((0x08000000, 256, 4 * KIB, "g"),),
        256,
        0x08000000,
        0x080FF000,
        1024 * KIB,
    ),
    Real(
        "GD32 (GD32VF103, Longan Nano / Pinecil)",
        "aw/fiveforths issue #20; Spagett1/pineflash issue #70 (dfu-util -l, 28e9:0189)",
        "@Internal Flash  /0x08000000/512*002Kg",
        "Internal Flash",
        ((0x08000000, 512, 2 * KIB, "g"),),
        512,
        0x08000000,
        0x080FF800,
        1024 * KIB,
    ),
    Real(
        "GD32 option bytes (all rights)",
        "aw/fiveforths issue #20",
        "@Option Bytes  /0x1FFFF800/01*016 g",
        "Option Bytes",
        ((0x1FFFF800, 1, 16, "g"),),
        1,
        0x1FFFF800,
        0x1FFFF800,
        16,
    ),
    Real(
        "Particle P1 external flash at address 0",
        "particle-iot/device-os issue #706 (dfu-util -l)",
        "@Serial Flash   /0x00000000/256*004Kg",
        "Serial Flash",
        ((0x00000000, 256, 4 * KIB, "g"),),
        256,
        0x00000000,
        0x000FF000,
        1024 * KIB,
    ),
    Real(
        "ST USB device library app (mixed rights, 'B' multiplier, two regions)",
        "usbd_dfu_if.c FLASH_DESC_STR in a public STM32Cube DFU project (code search)",
        "@DiceFlash/0x08000000/63*001Ka,01*256Bc,01*256Bd,32*016Be,32*004Kg/0x08080000/96*064Bg",
        "DiceFlash",
        (
            (0x08000000, 63, 1 * KIB, "a"),
            (0x0800FC00, 1, 256, "c"),
            (0x0800FD00, 1, 256, "d"),
            (0x0800FE00, 32, 16, "e"),
            (0x08010000, 32, 4 * KIB, "g"),
            (0x08080000, 96, 64, "g"),
        ),
        225,
        0x08000000,
        0x080817C0,
        63 * KIB + 512 + 512 + 128 * KIB + 96 * 64,
    ),
    Real(
        "ST USB device library app (five adjacent regions)",
        "usbd_dfu_if.c FLASH_DESC_STR in a public STM32Cube DFU project (code search)",
        "@Dice /0x08005400/43*001Kg/0x08010000/64*001Kg/0x08020000/64*001Kg"
        "/0x08080000/1*256Bf/0x08080100/79*256Bg",
        "Dice",
        (
            (0x08005400, 43, 1 * KIB, "g"),
            (0x08010000, 64, 1 * KIB, "g"),
            (0x08020000, 64, 1 * KIB, "g"),
            (0x08080000, 1, 256, "f"),
            (0x08080100, 79, 256, "g"),
        ),
        251,
        0x08005400,
        0x08084F00,
        171 * KIB + 80 * 256,
    ),
]


@pytest.mark.parametrize("real", REAL, ids=[r.family for r in REAL])
def test_real_device_strings(real: Real) -> None:
    layout = MemoryLayout.parse(real.text)
    assert layout.label == real.label
    sectors = layout.sectors
    assert len(sectors) == real.count
    assert sectors[0].address == real.first
    assert sectors[-1].address == real.last
    assert layout.size == real.total
    # the sector list, run by run
    i = 0
    for address, count, size, letter in real.runs:
        for k in range(count):
            s = sectors[i]
            assert (s.address, s.size, s.letter) == (address + k * size, size, letter), i
            i += 1
    assert i == real.count
    assert str(layout) == real.text
    assert MemoryLayout.parse(str(layout)) == layout
