"""plan_incremental: which sectors an incremental download skips, without any device."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dfuse.errors import SafetyError
from dfuse.layout import MemoryLayout
from dfuse.protocol.plan import (
    EraseMode,
    EraseSector,
    MassErase,
    Plan,
    PlanOptions,
    SectorAction,
    SetAddress,
    Verify,
    WriteBlock,
    plan_download,
    plan_incremental,
)

F411 = MemoryLayout.parse("@Internal Flash  /0x08000000/04*016Kg,01*064Kg,03*128Kg")
#: sectors 0-1 readable+writable but not erasable ('e'), sector 2 full ('g')
ODD = MemoryLayout.parse("@Odd /0x08000000/02*001Ke,01*001Kg")
BASE = 0x08000000
FLASH = 512 * 1024


def _run(plan: Plan, memory: bytearray, base: int = BASE) -> None:
    """Execute a plan on a NOR model: erase → 0xFF, programming ANDs bits in."""
    for step in plan:
        if isinstance(step, EraseSector):
            memory[step.address - base : step.address - base + step.size] = b"\xff" * step.size
        elif isinstance(step, MassErase):
            memory[:] = b"\xff" * len(memory)
        elif isinstance(step, WriteBlock):
            assert step.address is not None
            at = step.address - base
            for i, b in enumerate(step.data):
                memory[at + i] &= b
        elif isinstance(step, Verify):
            at = step.address - base
            assert memory[at : at + step.length] == step.data


def test_equal_sectors_skipped_and_different_ones_rewritten_in_one_run() -> None:
    image = bytes(range(256)) * 256  # 64 KiB: sectors 0-3
    current = bytearray(image)
    current[0x4000 + 10] = 0  # sector 1 differs
    current[0x8000 + 3] = 0  # sector 2 differs: joined with sector 1
    plan = plan_incremental([(BASE, image)], F411, 2048, [(BASE, bytes(current))])
    assert [(d.index, d.action) for d in plan.sectors] == [
        (0, SectorAction.SKIP),
        (1, SectorAction.REWRITE),
        (2, SectorAction.REWRITE),
        (3, SectorAction.SKIP),
    ]
    assert [e.index for e in plan.erases if isinstance(e, EraseSector)] == [1, 2]
    assert [s for s in plan if isinstance(s, SetAddress)] == [SetAddress(BASE + 0x4000)]
    assert [w.block for w in plan.writes] == list(range(2, 18))
    assert plan.verifies == (Verify(BASE + 0x4000, memoryview(image)[0x4000:0xC000]),)
    assert plan.incremental
    assert plan.unchanged_bytes == 0x8000
    assert plan.skipped_bytes == 0x8000
    text = plan.describe()
    assert "2 of 4 sector(s) unchanged (32768 bytes), 2 to update" in text
    assert "skip    sector 0 at 0x08000000 (16 KiB): unchanged" in text
    assert "rewrite sector 1 at 0x08004000 (16 KiB): 1 of 16384 image byte(s) differ" in text
    assert plan.sectors[1].first_difference == BASE + 0x4000 + 10


def test_missing_readback_counts_as_different() -> None:
    image = b"\x00" * 0x5000  # sectors 0 and 1
    plan = plan_incremental([(BASE, image)], F411, 2048, [(BASE, b"\x00" * 0x4000)])
    assert [d.action for d in plan.sectors] == [SectorAction.SKIP, SectorAction.REWRITE]
    assert plan.sectors[1].differing == 0x1000
    assert plan.sectors[1].first_difference == BASE + 0x4000
    nothing = plan_incremental([(BASE, image)], F411, 2048, [])
    assert all(d.action is SectorAction.REWRITE for d in nothing.sectors)


def test_erase_none_and_not_erasable_sectors_are_written_without_erase() -> None:
    image = b"\x0f" * 3072
    current = b"\xff" * 3072
    plan = plan_incremental([(BASE, image)], ODD, 1024, [(BASE, current)])
    assert [d.action for d in plan.sectors] == [
        SectorAction.WRITE,
        SectorAction.WRITE,
        SectorAction.REWRITE,
    ]
    assert [e.index for e in plan.erases if isinstance(e, EraseSector)] == [2]
    assert "written without an erase" in plan.sectors[0].reason
    no_erase = plan_incremental(
        [(BASE, image)], F411, 1024, [(BASE, current)], PlanOptions(erase=EraseMode.NONE)
    )
    assert no_erase.erases == ()
    assert [d.action for d in no_erase.sectors] == [SectorAction.WRITE]


def test_refusals() -> None:
    with pytest.raises(ValueError, match="mass-erase"):
        plan_incremental([(BASE, b"1")], F411, 2048, [], PlanOptions(erase=EraseMode.MASS))
    with pytest.raises(ValueError, match="transfer size"):
        plan_incremental([(BASE, b"1")], F411, 0, [])
    with pytest.raises(SafetyError, match="outside"):
        plan_incremental([(0x20000000, b"1")], F411, 2048, [])


def test_full_plan_has_no_sector_decisions() -> None:
    plan = plan_download([(BASE, b"\x00" * 16)], F411, 2048)
    assert plan.sectors == ()
    assert not plan.incremental
    assert plan.unchanged_bytes == 0
    assert "incremental" not in plan.describe()


@settings(max_examples=60, deadline=None)
@given(
    start=st.integers(0, 0x18000),
    size=st.integers(1, 0x9000),
    seed=st.integers(0, 255),
    flips=st.lists(st.integers(0, 0x8FFF), max_size=4),
    other=st.binary(min_size=0, max_size=64),
)
def test_property_incremental_leaves_what_a_full_download_leaves(
    start: int, size: int, seed: int, flips: list[int], other: bytes
) -> None:
    """On a NOR model: the image ends up in memory exactly as after a full download,
    only sectors with a difference are erased or written, and a second incremental
    plan has nothing to do."""
    image = bytes((i * 31 + seed) & 0xFF for i in range(size))
    memory = bytearray(b"\xff" * 0x40000)
    memory[start : start + size] = image
    for f in flips:  # the device differs here
        if f < size:
            memory[start + f] ^= 0x5A
    memory[0x30000 : 0x30000 + len(other)] = other
    before = bytes(memory)
    plan = plan_incremental([(BASE + start, image)], F411, 2048, [(BASE, before)], PlanOptions())
    _run(plan, memory)
    assert memory[start : start + size] == image
    changed = {d.address for d in plan.changed_sectors}
    for sector in F411.sectors[:6]:
        lo, hi = sector.address - BASE, sector.end - BASE
        if sector.address not in changed:
            assert memory[lo:hi] == before[lo:hi]
    again = plan_incremental([(BASE + start, image)], F411, 2048, [(BASE, bytes(memory))])
    assert again.steps == ()
    assert again.changed_sectors == ()
