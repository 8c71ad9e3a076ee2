"""The part database: every row keeps to the schema, to its own alt strings (as the host's
layout parser reads them) and to its evidence rules; identify() finds each part."""

from __future__ import annotations

import dataclasses
import re

import pytest

from dfuse import parts
from dfuse.errors import PartDataError
from dfuse.layout import MemoryLayout
from dfuse.parts import MemoryKind, Part

ROWS = parts.all_parts()
IDS = [p.name for p in ROWS]

REQUIRED = [
    "stm32f072",
    "stm32f107",
    "stm32f303",
    "stm32f407",
    "stm32f411",
    "stm32f411xe",
    "stm32f411xc",
    "stm32f429",
    "stm32f722",
    "stm32f746",
    "stm32h743",
    "stm32l072",
    "stm32l476",
    "stm32g0b1",
    "stm32g474",
    "stm32wb55",
    "stm32u575",
    "gd32vf103",
]


def test_every_required_name_is_known() -> None:
    for name in REQUIRED:
        assert parts.get(name).name.startswith(name[:9])
    assert parts.get("stm32f411") is parts.get("STM32F411XE")


def test_an_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(KeyError, match="stm32f411xe") as info:
        parts.get("stm32f999")
    assert "stm32f999" in str(info.value)


@pytest.mark.parametrize("part", ROWS, ids=IDS)
def test_sector_maps_equal_the_hosts_parse_of_each_alt_string(part: Part) -> None:
    """The numbers next to each alt string are what dfuse.layout reads from it."""
    for alt in part.alts:
        layout = MemoryLayout.parse(alt.string)
        assert layout.name == alt.name
        host = [(s.address, s.size, s.letter) for s in layout.sectors]
        assert host == list(alt.sectors()), alt.string
        assert len(layout.regions) == len(alt.regions)


@pytest.mark.parametrize("part", ROWS, ids=IDS)
def test_flash_units_equal_the_flash_alt_unless_the_rom_misreports(part: Part) -> None:
    flash_alt = part.alt(MemoryKind.FLASH)
    assert flash_alt is not None
    mapped = [(a, s) for a, s, _l in flash_alt.sectors()]
    physical, at = [], part.flash.address
    for size in part.flash.unit_sizes():
        physical.append((at, size))
        at += size
    if part.quirks.layout_over_reported:
        assert mapped != physical
        assert "layout_over_reported" in part.quirks.evidence
    else:
        assert mapped == physical


@pytest.mark.parametrize("part", ROWS, ids=IDS)
def test_every_fact_carries_evidence(part: Part) -> None:
    assert part.usb.evidence
    assert part.flash.evidence
    for alt in part.alts:
        assert alt.evidence, alt.string
        if alt.status == "unconfirmed":
            assert any(
                w in " ".join(alt.evidence) for w in ("derived", "seen on", "alt", "a flash script")
            )
    for name in part.quirks.active():
        assert part.quirks.evidence.get(name), name
    durations = [part.flash.program_time, part.flash.mass_erase]
    durations += [e.duration for e in part.flash.erase_times]
    for d in durations:
        assert d.evidence
        assert 0 <= d.typ <= d.max
    if part.option_bytes is not None:
        assert part.option_bytes.evidence


@pytest.mark.parametrize("part", ROWS, ids=IDS)
def test_geometry_rules(part: Part) -> None:
    flash = part.flash
    assert flash.size == sum(b.size for b in flash.banks)
    assert flash.banks[0].address == flash.address
    assert all(s % flash.program_unit == 0 for s in flash.unit_sizes())
    assert part.usb.transfer_size % flash.program_unit == 0
    if part.option_bytes is not None:
        ob = part.option_bytes
        assert ob.factory[ob.rdp_offset] == ob.rdp_level0  # as shipped: level 0


@pytest.mark.parametrize("part", ROWS, ids=IDS)
def test_identify_finds_each_identifiable_part(part: Part) -> None:
    found = parts.identify(
        part.usb.vid, part.usb.pid, part.alt_strings, bcd_device=part.usb.bcd_device
    )
    if part.identifiable:
        assert found is part
    else:
        assert found is not None
        assert found.alt_strings == part.alt_strings


def test_identify_needs_exact_strings() -> None:
    f411 = parts.get("stm32f411")
    assert parts.identify(0x0483, 0xDF11, f411.alt_strings) is f411
    squeezed = [re.sub("  +", " ", s) for s in f411.alt_strings]
    assert parts.identify(0x0483, 0xDF11, squeezed) is None
    assert parts.identify(0x0483, 0xDF12, f411.alt_strings) is None
    assert parts.identify(0x0483, 0xDF11, f411.alt_strings[:2]) is None


def test_identify_info_reads_a_device_info() -> None:
    @dataclasses.dataclass
    class Alt:
        name: str | None

    @dataclasses.dataclass
    class Info:
        vid: int
        pid: int
        bcd_device: int
        alt_settings: tuple[Alt, ...]

    gd = parts.get("gd32vf103")
    info = Info(0x28E9, 0x0189, 0x1000, tuple(Alt(s) for s in gd.alt_strings))
    assert parts.identify_info(info) is gd


# --------------------------------------------------------------------------- broken rows

GOOD = """
[[part]]
name = "x1"
title = "X"
family = "X"
references = ["RM"]
sram = [0x20000000, 0x1000]
[part.usb]
vid = 1
pid = 2
bcd_usb = 0x0200
manufacturer = "M"
product = "P"
transfer_size = 1024
detach_timeout_ms = 255
attributes = 0x0B
evidence = ["log"]
[[part.alt]]
string = "@Internal Flash  /0x08000000/02*001Kg"
memory = "flash"
regions = [{ address = 0x08000000, sectors = [[2, 1024, "g"]] }]
status = "observed"
evidence = ["log"]
[part.flash]
address = 0x08000000
units = [[2, 1024]]
program_unit = 8
not_erased = "error"
program_time = { typ = 1e-4, max = 2e-4, evidence = "DS" }
erase_times = [{ size = 1024, typ = 0.02, max = 0.04, evidence = "DS" }]
mass_erase = { typ = 0.02, max = 0.04, evidence = "DS" }
evidence = ["RM"]
"""


def test_a_good_row_loads() -> None:
    (part,) = parts.schema.load_text(GOOD, "good.toml")
    assert part.flash.size == 2048
    assert part.alts[0].letter_at(0x08000400) == "g"


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (("units = [[2, 1024]]", "units = [[1, 2048]]"), "differ from the physical units"),
        (('evidence = ["log"]\n[[part.alt]]', "evidence = []\n[[part.alt]]"), "citation"),
        (
            (
                'typ = 0.02, max = 0.04, evidence = "DS" }]',
                'typ = 0.05, max = 0.04, evidence = "DS" }]',
            ),
            "exceeds max",
        ),
        (('status = "observed"', 'status = "seen"'), "observed, unconfirmed"),
        (("program_unit = 8", "program_unit = 6"), "power of two"),
        (('memory = "flash"', 'memory = "flash"\ncolour = "red"'), "unknown field"),
        (('"g"]] }]', '"h"]] }]'), "access letter"),
        (
            (
                "[part.flash]",
                "[part.quirks.leave_without_status]\nvalue = true\nevidence = []\n[part.flash]",
            ),
            "citation",
        ),
        (
            (
                "[part.flash]",
                '[part.quirks.teleport]\nvalue = true\nevidence = ["x"]\n[part.flash]',
            ),
            "unknown quirk",
        ),
        (('title = "X"', 'title = "X'), "not valid TOML"),
    ],
)
def test_a_broken_row_is_refused_with_its_place(change: tuple[str, str], match: str) -> None:
    old, new = change
    assert old in GOOD
    with pytest.raises(PartDataError, match=match) as info:
        parts.schema.load_text(GOOD.replace(old, new, 1), "bad.toml")
    assert info.value.source == "bad.toml"


def test_the_host_constants_and_the_simulators_timing_equal_the_f411_rows() -> None:
    """The F411 facts live in the part rows; the older constants elsewhere must agree."""
    from dfuse.layout import STM32F411XC_ALT_STRINGS, STM32F411XE_ALT_STRINGS
    from dfuse.sim import STM32F411_TIMING
    from dfuse.sim.rom import timing_of

    assert parts.get("stm32f411xe").alt_strings == STM32F411XE_ALT_STRINGS
    assert parts.get("stm32f411xc").alt_strings == STM32F411XC_ALT_STRINGS
    assert timing_of(parts.get("stm32f411xe")) == STM32F411_TIMING


@pytest.mark.parametrize("part", ROWS, ids=IDS)
def test_units_for_agrees_with_the_expanded_units(part: Part) -> None:
    flash = part.flash
    units, at = [], flash.address
    for size in flash.unit_sizes():
        units.append((at, size))
        at += size
    rng = __import__("random").Random(part.name)
    for _ in range(20):
        address = flash.address + rng.randrange(-4096, flash.size + 4096)
        length = rng.randrange(0, 300_000)
        want = tuple(u for u in units if u[0] < address + length and address < u[0] + u[1])
        assert flash.units_for(address, length) == (want if length else ())
    assert flash.bank_of(flash.address) == 0
    assert flash.bank_of(flash.end - 1) == len(flash.banks) - 1
    assert flash.bank_of(flash.end) is None
