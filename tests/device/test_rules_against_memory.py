"""Red-team properties of the host's part rules (padding to the programming unit, the
erase choice), judged by the simulated board's memory, never by the host's read-back:
after a download, every sector the image touches holds the image over the erased value,
every other sector is as it was (a mass erase: erased), on random parts with random
segments at unit and sector edges."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dfuse.device import DfuDevice
from dfuse.errors import SafetyError
from dfuse.file.model import Target
from dfuse.parts import Part
from dfuse.sim import PARTS, SimBackend, VirtualClock, board

NAMES = sorted({p.name for p in PARTS.values() if p.name != "stm32h750"})


def _sectors(part: Part) -> list[tuple[int, int]]:
    out, address = [], part.flash.address
    for count, size in part.flash.units:
        for _ in range(count):
            out.append((address, size))
            address += size
    return out


@st.composite
def _cases(draw: st.DrawFn) -> tuple[str, list[tuple[int, bytes]], str]:
    name = draw(st.sampled_from(NAMES))
    sectors = _sectors(PARTS[name])
    segs: list[tuple[int, bytes]] = []
    for _ in range(draw(st.integers(1, 3))):
        start, size = draw(st.sampled_from([sectors[0], sectors[-1], *sectors]))
        length = draw(st.integers(1, 48))
        edge = draw(st.sampled_from(["start", "end", "end-1", "inside"]))
        offset = {
            "start": draw(st.integers(0, 7)),
            "end": size - length,
            "end-1": size - length - 1,
            "inside": draw(st.integers(0, size - length)),
        }[edge]
        fill = draw(st.sampled_from([0x00, 0xFF, None]))
        data = (
            bytes([fill]) * length
            if fill is not None
            else draw(st.binary(min_size=length, max_size=length))
        )
        segs.append((start + max(offset, 0), data))
        if draw(st.booleans()):  # a piece just after it: the two may share a unit
            gap = draw(st.integers(0, 9))
            follow = start + max(offset, 0) + length + gap
            if follow + 4 <= start + size:
                segs.append((follow, draw(st.binary(min_size=1, max_size=4))))
    segs.sort()
    clean: list[tuple[int, bytes]] = []
    for address, data in segs:
        if not clean or address >= clean[-1][0] + len(clean[-1][1]):
            clean.append((address, data))
    return name, clean, draw(st.sampled_from(["sectors", "mass"]))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_cases())
def test_every_sector_holds_what_the_download_promised(
    case: tuple[str, list[tuple[int, bytes]], str],
) -> None:
    name, segs, erase = case
    b = board(name)
    flash = b.part.flash
    before = (bytes(range(1, 256)) * (flash.size // 255 + 1))[: flash.size]
    b.poke(flash.address, before)
    clock = VirtualClock()
    with DfuDevice.open(backend=SimBackend([b], clock=clock), clock=clock) as dev:
        if erase == "mass" and not flash.mass_erase_command.supported:
            # the ROM has no mass erase (STM32L0): refused, nothing erased or written
            with pytest.raises(SafetyError, match="has no mass erase"):
                dev.download(Target.from_segments(segs), erase=erase)
            assert b.peek(flash.address, flash.size) == before
            return
        dev.download(Target.from_segments(segs), erase=erase)
    expected = bytearray(before)
    for start, size in _sectors(b.part):
        lo = start - flash.address
        if erase == "mass" or any(a < start + size and a + len(d) > start for a, d in segs):
            expected[lo : lo + size] = bytes([flash.erased]) * size
    for address, data in segs:
        expected[address - flash.address : address - flash.address + len(data)] = data
    after = b.peek(flash.address, flash.size)
    assert after == bytes(expected), next(
        f"0x{flash.address + i:08X}: 0x{after[i]:02X}, expected 0x{expected[i]:02X}"
        for i in range(flash.size)
        if after[i] != expected[i]
    )


@pytest.mark.parametrize("name", ["stm32l072", "gd32vf103", "stm32l476", "stm32h743"])
def test_an_image_past_the_flash_end_is_refused_at_its_own_address(name: str) -> None:
    b = board(name)
    flash = b.part.flash
    address = flash.end - 1  # one byte inside, the rest beyond: not unit-aligned
    clock = VirtualClock()
    dev = DfuDevice.open(backend=SimBackend([b], clock=clock), clock=clock)
    with dev, pytest.raises(SafetyError, match=f"refusing to write 0x{address:08X}"):
        dev.download(b"\x12" * 9, address=address)


@pytest.mark.parametrize("name", ["stm32l476", "stm32h743", "stm32l072", "gd32vf103"])
def test_incremental_keeps_a_sector_whose_image_bytes_are_unchanged(name: str) -> None:
    # the image ends mid-unit, where an earlier, longer image left its bytes: the
    # padding must not make the sector look changed (its image bytes are the same), so
    # the flash beside the image (an application's settings) is kept, as documented
    b = board(name)
    flash = b.part.flash
    image = bytes(range(1, 252)) * 4 + b"\x42"  # 1005 bytes
    unit = flash.program_unit
    # the next unit but one after the image: in its sector, outside its units
    beside = flash.address + -(-len(image) // unit) * unit + unit
    clock = VirtualClock()
    with DfuDevice.open(backend=SimBackend([b], clock=clock), clock=clock) as dev:
        dev.download(image + b"\x99\x98\x97", address=flash.address)
        b.poke(beside, b"\x5a\xa5")
        (plan,) = dev.download(image, address=flash.address, incremental=True)
        assert plan.plan.erases == ()
        assert b.peek(beside, 2) == b"\x5a\xa5"
        changed = image[:-1] + b"\x43"
        (plan,) = dev.download(changed, address=flash.address, incremental=True)
        assert plan.plan.erases != ()
    assert b.peek(flash.address, len(changed)) == changed
    tail = -(-len(changed) // unit) * unit - len(changed)
    assert b.peek(flash.address + len(changed), tail) == bytes([flash.erased]) * tail
    assert b.peek(beside, 2) == bytes([flash.erased]) * 2  # rewritten: erased as documented
