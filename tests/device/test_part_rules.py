"""The host follows each part's rules (issue 13 item 3): identification, padding to the
programming unit, the erase strategy by modelled time, the timeouts from the worst case,
and one test per quirk workaround, each checked against the simulated board's memory."""

from __future__ import annotations

import dataclasses
import io
import itertools
import json
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dfuse.cli import main
from dfuse.device import DfuDevice
from dfuse.errors import SafetyError
from dfuse.parts import Part, Quirks, all_parts, get
from dfuse.planning.rules import (
    COMMAND_S,
    QUIRK_RULES,
    choose_erase,
    pad_segments,
    rules_for,
    worst_case_s,
)
from dfuse.protocol.plan import EraseMode, EraseSector, MassErase
from dfuse.protocol.session import SessionRules
from dfuse.sim import SimBackend, VirtualClock, board
from dfuse.sim.rom import RomBootloader


def _open(model: RomBootloader) -> DfuDevice:
    clock = VirtualClock()
    return DfuDevice.open(backend=SimBackend([model], clock=clock), clock=clock)


def _erases(dev: DfuDevice, image: bytes, address: int) -> tuple[object, ...]:
    (plan,) = dev.plan(image, address=address, verify=False)
    return plan.plan.erases


# --------------------------------------------------------------------------- identity


def test_the_device_knows_its_part_and_an_unknown_one_keeps_the_defaults() -> None:
    with _open(board("stm32l476")) as dev:
        assert dev.part is get("stm32l476")
        assert dev.rules == rules_for(get("stm32l476"))
    other = board("stm32l476")
    other.alt_strings = ("@Internal Flash  /0x08000000/0512*0002Kg",)  # not the row's strings
    with _open(other) as dev:
        assert dev.part is None
        assert dev.rules == SessionRules()
        assert dev.layout is not None
        assert dev.layout.size == 1 << 20


def test_rules_given_win_over_the_part_and_busy_timeout_over_both() -> None:
    given_rules = SessionRules(busy_timeout_s=5.0)
    with DfuDevice.open(backend=SimBackend([board("stm32h743")]), rules=given_rules) as dev:
        assert dev.rules == given_rules
    with DfuDevice.open(backend=SimBackend([board("stm32h743")]), busy_timeout=9.0) as dev:
        assert dev.rules.busy_timeout_s == 9.0
        assert dev.rules.clear_status_when_overdue == 2  # still the part's workaround


def test_every_quirk_is_in_the_one_table() -> None:
    fields = {f.name for f in dataclasses.fields(Quirks)} - {"evidence"}
    assert set(QUIRK_RULES) == fields
    rule_fields = {f.name for f in dataclasses.fields(SessionRules)}
    assert {name for entries in QUIRK_RULES.values() for name, _ in entries} <= rule_fields


@pytest.mark.parametrize("part", all_parts(), ids=lambda p: p.name)
def test_the_busy_timeout_covers_the_parts_worst_case(part: Part) -> None:
    rules = rules_for(part)
    assert rules.busy_timeout_s >= 2 * worst_case_s(part)
    assert worst_case_s(part) >= part.flash.mass_erase.max


# --------------------------------------------------------------------------- padding


def test_padding_fills_units_with_the_erased_value_and_joins_shared_units() -> None:
    segs: list[tuple[int, bytes | memoryview]] = [(0x1003, b"\x01\x02"), (0x1009, b"\x03")]
    assert pad_segments(segs, 8, 0xFF) == [
        (0x1000, b"\xff\xff\xff\x01\x02\xff\xff\xff" + b"\xff\x03" + b"\xff" * 6)
    ]
    assert pad_segments(segs, 1, 0xFF) is segs
    with pytest.raises(SafetyError, match="8-byte units"):
        pad_segments(segs, 8, 0xFF, erased=False)
    aligned: list[tuple[int, bytes | memoryview]] = [(0x1000, b"\x00" * 16)]
    assert pad_segments(aligned, 8, 0xFF, erased=False) == [(0x1000, b"\x00" * 16)]


@given(
    pieces=st.lists(st.tuples(st.integers(0, 400), st.binary(min_size=1, max_size=40)), max_size=5),
    unit=st.sampled_from([2, 4, 8, 16, 32]),
)
@settings(max_examples=40)
def test_padding_keeps_every_byte_and_covers_whole_units(
    pieces: list[tuple[int, bytes]], unit: int
) -> None:
    segs: list[tuple[int, bytes | memoryview]] = []
    end = 0
    for gap, data in pieces:  # non-overlapping pieces
        segs.append((end + gap, data))
        end += gap + len(data)
    padded = pad_segments(segs, unit, 0xFF)
    for (a, d), (b, _e) in itertools.pairwise(padded):
        assert a + len(d) < b  # no unit shared between runs
    flat = {a + i: byte for a, d in padded for i, byte in enumerate(d)}
    for a, d in padded:
        assert a % unit == 0
        assert len(d) % unit == 0
    for a, d in segs:
        assert bytes(flat[a + i] for i in range(len(d))) == d
    image = {a + i for a, d in segs for i in range(len(d))}
    assert all(v == 0xFF for k, v in flat.items() if k not in image)


@pytest.mark.parametrize("name", ["stm32h743", "stm32l476", "stm32u575", "stm32f072"])
def test_an_odd_image_lands_padded_to_the_unit(name: str) -> None:
    model = board(name)
    flash = model.part.flash
    image = random.Random(name).randbytes(1001)
    at = flash.address + 3 * flash.program_unit + 1 if flash.program_unit > 1 else flash.address
    with _open(model) as dev:
        dev.download(image, address=at)
    assert model.peek(at, len(image)) == image
    lo = at - at % flash.program_unit
    assert model.peek(lo, at - lo) == b"\xff" * (at - lo)


def test_padding_over_memory_not_erased_is_refused_before_any_traffic() -> None:
    model = board("stm32l476")
    with _open(model) as dev:
        before = model.requests["DNLOAD"]
        with pytest.raises(SafetyError, match="does not erase"):
            dev.download(b"\x01\x02\x03", address=0x08000000, erase="none")
        assert model.requests["DNLOAD"] == before


# --------------------------------------------------------------------------- erase


def test_a_whole_flash_image_on_l4_is_one_mass_erase_a_partial_one_page_erases() -> None:
    part = get("stm32l476")
    with _open(board("stm32l476")) as dev:
        whole = bytes(part.flash.size)
        assert _erases(dev, whole, part.flash.address) == (MassErase(),)
        almost = bytes(part.flash.size - 2048)  # the last page is not covered
        erases = _erases(dev, almost, part.flash.address)
        assert len(erases) == 511
        assert all(isinstance(e, EraseSector) for e in erases)


def test_f405_class_parts_erase_sector_by_sector() -> None:
    """A device answering as an F407 may be an F405, whose mass erase the host must wait
    out for its datasheet maximum (32 s): the sectors are quicker."""
    part = get("stm32f407")
    assert rules_for(part).mass_erase_wait_ms == 32_000
    with _open(board("stm32f405")) as dev:
        erases = _erases(dev, bytes(part.flash.size), part.flash.address)
        assert erases
        assert all(isinstance(e, EraseSector) for e in erases)


def test_the_erase_choice_follows_the_datasheet_times() -> None:
    part = get("stm32l476")
    with _open(board("stm32l476")) as dev:
        layout = dev.layout
    segs: list[tuple[int, bytes | memoryview]] = [(part.flash.address, bytes(part.flash.size))]
    choice = choose_erase(part, layout, segs, EraseMode.SECTORS)
    assert choice.mode is EraseMode.MASS
    assert choice.mass_s == pytest.approx(part.flash.mass_erase.typ + COMMAND_S)
    assert choice.sectors_s == pytest.approx(512 * (part.flash.erase_time(2048).typ + COMMAND_S))
    assert choose_erase(part, layout, segs, EraseMode.NONE).mode is EraseMode.NONE
    assert choose_erase(None, layout, segs, EraseMode.SECTORS).mode is EraseMode.SECTORS


# --------------------------------------------------------------------------- quirks


def test_h743_bank_2_wedge_is_ended_by_the_clrstatus_pair() -> None:
    model = board("stm32h743")
    image = random.Random(1).randbytes(4096)
    with _open(model) as dev:
        dev.download(image, address=0x08100000)
    assert model.peek(0x08100000, len(image)) == image
    assert model.requests["CLRSTATUS"] >= 2


def test_l4_stalled_getstatus_while_busy_is_retried() -> None:
    model = board("stm32l476", honest=False)
    model.quirks = dataclasses.replace(model.quirks, busy_stall_probability=1.0)
    model.timing.timing = dataclasses.replace(model.timing.timing, spread=1.0)
    image = random.Random(2).randbytes(8192)
    with _open(model) as dev:
        dev.download(image, address=0x08010000)
        assert dev.status_retries > 0
    assert model.peek(0x08010000, len(image)) == image


def test_f405_mass_erase_outlasting_its_poll_timeout_is_waited_out() -> None:
    model = board("stm32f405")
    model.poke(0x080E0000, b"\x00" * 16)
    with _open(model) as dev:
        dev.download(b"\x5a" * 64, address=0x08000000, erase="mass")
    assert model.peek(0x080E0000, 16) == b"\xff" * 16
    assert model.peek(0x08000000, 64) == b"\x5a" * 64


@pytest.mark.parametrize("name", ["gd32vf103", "stm32h743", "stm32g0b1"])
def test_a_rom_that_leaves_without_a_status_is_let_go(name: str) -> None:
    model = board(name)
    assert rules_for(model.part).status_after_leave is False
    image = b"\x00\x00\x00\x20" + bytes(range(1, 29))
    with _open(model) as dev:
        dev.download(image, address=model.part.flash.address, leave=True)
    assert [s.address for s in model.app_starts] == [model.part.flash.address]
    assert model.peek(model.part.flash.address, len(image)) == image  # the board's own memory


def test_gd32vf103_is_driven_by_its_physical_flash() -> None:
    model = board("gd32vf103")
    flash = model.part.flash
    with _open(model) as dev:
        layout = dev.layout
        assert layout is not None
        assert (layout.address, layout.size, len(layout.sectors)) == (flash.address, 128 << 10, 128)
        last = layout.sectors[-1]
        image = random.Random(3).randbytes(last.size)
        dev.download(image, address=last.address)
    assert model.peek(last.address, last.size) == image


def test_clrstatus_outside_error_follows_the_row() -> None:
    answers = [p for p in all_parts() if not p.quirks.stall_clrstatus_outside_error]
    stalls = [p for p in all_parts() if p.quirks.stall_clrstatus_outside_error]
    assert answers
    assert stalls
    assert all(rules_for(p).clear_status_outside_error for p in answers)
    assert not any(rules_for(p).clear_status_outside_error for p in stalls)


def test_f7_fixed_program_poll_timeout_is_not_slept_through() -> None:
    """STM32F7 ROMs report 104 ms for a 2 KiB block programmed in ~8 ms (fwupd#2696) and
    hold the next GETSTATUS until done: the host waits the datasheet's time."""
    model = board("stm32f722")
    image = random.Random(4).randbytes(16 * 2048)
    with _open(model) as dev:
        t0 = dev.clock.now
        dev.download(image, address=0x08000000, verify=False)
        seconds = dev.clock.now - t0
    assert model.peek(0x08000000, len(image)) == image
    assert seconds < 16 * 0.104


# --------------------------------------------------------------------------- property

NAMES = sorted(p.name for p in all_parts())


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(NAMES), seed=st.integers(0, 2**32 - 1))
def test_random_images_on_random_parts_land_and_nothing_else_changes(name: str, seed: int) -> None:
    """Any part, any place (both banks too), any length: the image lands byte for byte and
    every physical unit it does not touch keeps its contents (peek before and after)."""
    r = random.Random(seed)
    model = board(name, seed=seed)
    flash = model.part.flash
    old = r.randbytes(flash.size)
    model.poke(flash.address, old)
    length = r.randrange(1, 3000)
    start = flash.address + r.randrange(0, flash.size - length)
    image = r.randbytes(length)
    with _open(model) as dev:
        dev.download(image, address=start)
    assert model.peek(start, length) == image
    at = flash.address
    for size in flash.unit_sizes():
        if at + size <= start or at >= start + length:
            assert model.peek(at, size) == old[at - flash.address : at - flash.address + size]
        at += size


def test_dfuse_list_names_the_part(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DFUSE_DEVICE", raising=False)
    out = io.StringIO()
    assert main(["list", "-d", "sim:stm32h743", "--json"], stdout=out, stderr=io.StringIO()) == 0
    assert [d["part"] for d in json.loads(out.getvalue())["devices"]] == ["stm32h743"]
    out = io.StringIO()
    assert main(["list", "-d", "sim:stm32f405"], stdout=out, stderr=io.StringIO()) == 0
    assert "part=stm32f407" in out.getvalue()  # an F405 answers as an F407 (one ROM)
