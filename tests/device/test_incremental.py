"""Incremental downloads (download(..., incremental=True)) against the simulated F411."""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dfuse.device import DfuDevice, Phase
from dfuse.errors import ProtocolError, SafetyError
from dfuse.file.model import Target
from dfuse.protocol.plan import SectorAction
from dfuse.sim import STM32F411_TIMING, PlainDfuDevice, SimBackend, Stm32F411

BASE = 0x08000000
KIB = 1024
#: F411xE sectors: (address, size).
SECTORS = [
    (BASE + a, s * KIB)
    for a, s in zip(
        [0, 0x4000, 0x8000, 0xC000, 0x10000, 0x20000, 0x40000, 0x60000],
        [16, 16, 16, 16, 64, 128, 128, 128],
        strict=True,
    )
]


def _open(chip: Stm32F411) -> tuple[DfuDevice, SimBackend]:
    backend = SimBackend([chip])
    return DfuDevice.open(backend=backend), backend


def test_unchanged_image_skips_every_sector_and_writes_nothing() -> None:
    image = random.Random(3).randbytes(40 * KIB)
    chip = Stm32F411()
    dev, _backend = _open(chip)
    dev.download(image, address=BASE)
    dnloads = chip.requests["DNLOAD"]
    (plan,) = dev.download(image, address=BASE, incremental=True)
    # one Set Address for the read-back; no erase, no data block
    assert chip.requests["DNLOAD"] == dnloads + 1
    assert [d.action for d in plan.plan.sectors] == [SectorAction.SKIP] * 3
    assert plan.plan.erases == ()
    assert plan.plan.writes == ()
    assert plan.plan.verifies == ()
    assert plan.plan.unchanged_bytes == len(image)
    assert "3 of 3 sector(s) unchanged" in str(plan)
    assert chip.peek(BASE, len(image)) == image


def test_changed_sector_is_erased_and_rewritten_others_kept() -> None:
    rng = random.Random(4)
    image = bytearray(rng.randbytes(64 * KIB))  # sectors 0..3
    chip = Stm32F411()
    dev, _backend = _open(chip)
    dev.download(bytes(image), address=BASE)
    # something outside the image in sector 4: untouched by both kinds of download
    chip.poke(BASE + 0x10000 + 5, b"\x12\x34")
    image[0x8000 + 77] ^= 0x01  # sector 2
    events: list[tuple[Phase, int, int]] = []
    (plan,) = dev.download(
        bytes(image), address=BASE, incremental=True, progress=lambda *e: events.append(e)
    )
    decisions = plan.plan.sectors
    assert [d.action for d in decisions] == [
        SectorAction.SKIP,
        SectorAction.SKIP,
        SectorAction.REWRITE,
        SectorAction.SKIP,
    ]
    changed = decisions[2]
    assert (changed.index, changed.differing, changed.first_difference) == (
        2,
        1,
        BASE + 0x8000 + 77,
    )
    assert "1 of 16384 image byte(s) differ from 0x0800804D" in changed.describe()
    assert [e.index for e in plan.plan.erases] == [2]  # type: ignore[union-attr]
    assert plan.plan.write_bytes == 16 * KIB
    assert [(v.address, v.length) for v in plan.plan.verifies] == [(BASE + 0x8000, 16 * KIB)]
    assert chip.peek(BASE, len(image)) == bytes(image)
    assert chip.peek(BASE + 0x10005, 2) == b"\x12\x34"
    read = [e for e in events if e[0] is Phase.READ]
    assert read[-1] == (Phase.READ, len(image), len(image))
    assert (Phase.WRITE, 16 * KIB, 16 * KIB) in events


def test_dry_run_reads_but_never_writes() -> None:
    chip = Stm32F411()
    dev, _backend = _open(chip)
    image = b"\x5a" * 20 * KIB
    dnloads = chip.requests["DNLOAD"]
    (plan,) = dev.plan(image, address=BASE, incremental=True)
    assert chip.requests["DNLOAD"] == dnloads + 1  # the Set Address of the read-back
    assert chip.peek(BASE, 4) == b"\xff" * 4
    assert [d.action for d in plan.plan.sectors] == [SectorAction.REWRITE] * 2
    assert "rewrite sector 1 at 0x08004000 (16 KiB)" in str(plan)


def test_incremental_refuses_before_any_traffic() -> None:
    chip = Stm32F411()
    dev, _backend = _open(chip)
    before = sum(chip.requests.values())
    with pytest.raises(ValueError, match="mass-erase"):
        dev.download(b"\x00" * 16, address=BASE, incremental=True, erase="mass")
    with pytest.raises(SafetyError, match="outside"):
        dev.download(b"\x00" * 16, address=0x20000000, incremental=True)
    assert sum(chip.requests.values()) == before


def test_incremental_needs_dfuse() -> None:
    plain = PlainDfuDevice()
    backend = SimBackend([plain])
    dev = DfuDevice.open(backend=backend)
    with pytest.raises(ProtocolError, match="needs a DfuSe device"):
        dev.download(b"\x00" * 64, incremental=True)
    dev.close()


def test_incremental_ratio_one_sector_of_512k() -> None:
    """The benchmark's scenario, small enough for a unit test: a correct result only
    (the ratio itself is in benchmarks/bench_incremental.py)."""
    rng = random.Random(5)
    image = bytearray(rng.randbytes(512 * KIB))
    chip = Stm32F411(timing=STM32F411_TIMING.typical())
    dev, backend = _open(chip)
    dev.download(bytes(image), address=BASE)
    image[0xC000 : 0xC000 + 64] = bytes(64)
    (plan,) = dev.download(bytes(image), address=BASE, incremental=True)
    assert [d.index for d in plan.plan.changed_sectors] == [3]
    assert chip.peek(BASE, len(image)) == bytes(image)
    assert backend.clock.now > 0


@st.composite
def _scenario(draw: st.DrawFn) -> tuple[int, bytes, list[tuple[int, bytes]], int]:
    """An image somewhere in sectors 0-4, then changes to it (possibly none)."""
    start = (
        draw(st.integers(0, 0x14000)) & ~3 if draw(st.booleans()) else draw(st.integers(0, 0x14000))
    )
    size = draw(st.integers(1, 0x1C000 - start))
    seed = draw(st.integers(0, 2**32))
    image = random.Random(seed).randbytes(size)
    changes = draw(
        st.lists(
            st.tuples(st.integers(0, size - 1), st.binary(min_size=1, max_size=64)),
            max_size=3,
        )
    )
    garbage_seed = draw(st.integers(0, 2**32))
    return start, image, changes, garbage_seed


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_scenario())
def test_property_incremental_equals_full_download(
    scenario: tuple[int, bytes, list[tuple[int, bytes]], int],
) -> None:
    """After an incremental reflash of a changed image, the flash holds the new image
    over its span, sectors without a change were neither erased nor written, and the
    rest of the flash is as the first download left it."""
    offset, image, changes, garbage_seed = scenario
    chip = Stm32F411()
    # arbitrary old content everywhere (never-erased flash need not be 0xFF)
    chip.poke(BASE, random.Random(garbage_seed).randbytes(0x20000))
    dev, _backend = _open(chip)
    target = Target.from_segments([(BASE + offset, image)])
    dev.download(target)
    before = chip.peek(BASE, 0x20000)
    new = bytearray(image)
    for at, data in changes:
        new[at : at + len(data)] = data[: len(new) - at]
    (plan,) = dev.download(Target.from_segments([(BASE + offset, bytes(new))]), incremental=True)
    after = chip.peek(BASE, 0x20000)
    assert after[offset : offset + len(new)] == bytes(new)
    changed = {d.index for d in plan.plan.changed_sectors}
    for index, (address, size) in enumerate(SECTORS[:5]):
        lo, hi = address - BASE, address - BASE + size
        overlaps = lo < offset + len(new) and offset < hi
        differs = overlaps and (
            before[max(lo, offset) : min(hi, offset + len(new))]
            != bytes(new)[max(lo, offset) - offset : min(hi, offset + len(new)) - offset]
        )
        assert (index in changed) == differs, index
        if not differs:  # skipped or untouched: byte-for-byte as before
            assert after[lo:hi] == before[lo:hi], index
        else:  # rewritten: erased, then the image's bytes
            outside = bytes(after[lo:hi])
            for i in range(lo, hi):
                if not offset <= i < offset + len(new):
                    assert outside[i - lo] == 0xFF
