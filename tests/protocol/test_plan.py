"""Download planning, without any device."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dfuse.errors import ImageError, SafetyError
from dfuse.layout import MemoryLayout
from dfuse.protocol.plan import (
    EraseMode,
    EraseSector,
    Leave,
    MassErase,
    PlanOptions,
    SetAddress,
    Verify,
    WriteBlock,
    plan_dfu_download,
    plan_download,
)

F411 = MemoryLayout.parse("@Internal Flash  /0x08000000/04*016Kg,01*064Kg,03*128Kg")
OPTION_BYTES = MemoryLayout.parse("@Option Bytes  /0x1FFFC000/01*016 e")
BASE = 0x08000000


def test_small_image_erases_one_sector_and_sets_address_once() -> None:
    data = bytes(range(256)) * 20  # 5120 bytes: 3 blocks of 2048
    plan = plan_download([(BASE, data)], F411, 2048)
    assert plan.steps[0] == EraseSector(0, BASE, 0x4000)
    assert plan.steps[1] == SetAddress(BASE)
    writes = plan.writes
    assert [w.block for w in writes] == [2, 3, 4]
    assert [w.address for w in writes] == [BASE, BASE + 2048, BASE + 4096]
    assert b"".join(bytes(w.data) for w in writes) == data
    assert plan.verifies == (Verify(BASE, memoryview(data)),)
    assert plan.write_bytes == len(data)
    assert plan.image_size == len(data)
    assert plan.skipped_bytes == 0
    assert not any(isinstance(s, Leave) for s in plan)


def test_sector_numbers_and_order_for_a_spanning_image() -> None:
    data = b"\x00" * (0x30000)  # from 0x08010000: sector 4 (64K) and sector 5 (128K)
    plan = plan_download([(BASE + 0x10000, data)], F411, 2048)
    assert [(e.index, e.address) for e in plan.erases if isinstance(e, EraseSector)] == [
        (4, 0x08010000),
        (5, 0x08020000),
    ]
    assert plan.erase_bytes == 0x10000 + 0x20000


def test_blocks_of_ff_in_erased_memory_are_skipped_without_resetting_the_pointer() -> None:
    data = b"\x01" * 2048 + b"\xff" * 4096 + b"\x02" * 100
    plan = plan_download([(BASE, data)], F411, 2048)
    assert [type(s).__name__ for s in plan] == [
        "EraseSector",
        "SetAddress",
        "WriteBlock",
        "WriteBlock",
        "Verify",
    ]
    assert [(w.block, w.address, w.length) for w in plan.writes] == [
        (2, BASE, 2048),
        (5, BASE + 6144, 100),
    ]
    assert plan.skipped_bytes == 4096
    no_skip = plan_download([(BASE, data)], F411, 2048, PlanOptions(skip_erased=False))
    assert len(no_skip.writes) == 4


def test_ff_blocks_are_written_when_nothing_is_erased() -> None:
    data = b"\xff" * 4096
    plan = plan_download([(BASE, data)], F411, 2048, PlanOptions(erase=EraseMode.NONE))
    assert plan.erases == ()
    assert len(plan.writes) == 2


def test_leading_ff_blocks_defer_the_address_pointer() -> None:
    data = b"\xff" * 2048 + b"\x00" * 16
    plan = plan_download([(BASE, data)], F411, 2048)
    assert SetAddress(BASE + 2048) in plan.steps
    assert [w.block for w in plan.writes] == [2]


def test_mass_erase_and_leave() -> None:
    opts = PlanOptions(erase=EraseMode.MASS, leave=True, leave_address=BASE, verify=False)
    plan = plan_download([(BASE, b"\x00" * 10)], F411, 2048, opts)
    assert plan.steps[0] == MassErase()
    assert plan.steps[-1] == Leave(BASE)
    assert plan.verifies == ()


def test_gap_that_is_a_multiple_of_the_transfer_size_reuses_the_pointer() -> None:
    plan = plan_download([(BASE, b"\x00" * 2048), (BASE + 8192, b"\x11" * 10)], F411, 2048)
    assert [s for s in plan if isinstance(s, SetAddress)] == [SetAddress(BASE)]
    assert [w.block for w in plan.writes] == [2, 6]
    odd = plan_download([(BASE, b"\x00" * 10), (BASE + 100, b"\x11" * 10)], F411, 2048)
    assert [s for s in odd if isinstance(s, SetAddress)] == [
        SetAddress(BASE),
        SetAddress(BASE + 100),
    ]
    assert len(odd.verifies) == 2


def test_adjacent_segments_are_joined_into_one_run() -> None:
    plan = plan_download([(BASE + 3, b"b" * 5), (BASE, b"aaa")], F411, 4)
    assert plan.segments == 1
    assert [bytes(w.data) for w in plan.writes] == [b"aaab", b"bbbb"]


def test_block_counter_overflow_resets_the_pointer() -> None:
    data = bytes(range(1, 101))
    plan = plan_download([(BASE, data)], F411, 10, PlanOptions(max_block=5))
    # Blocks 2..5 reach 4 blocks from each pointer: 10 blocks need 3 pointers.
    pointers = [s.address for s in plan if isinstance(s, SetAddress)]
    assert pointers == [BASE, BASE + 40, BASE + 80]
    assert [w.block for w in plan.writes] == [2, 3, 4, 5, 2, 3, 4, 5, 2, 3]
    assert all(w.block <= 5 for w in plan.writes)


def test_full_sixteen_bit_counter_is_used() -> None:
    data = b"\x00" * (0xFFFF - 2 + 2)  # one block more than a pointer reaches at size 1
    layout = MemoryLayout.parse("@Big /0x08000000/01*128Kg")
    plan = plan_download([(BASE, data)], layout, 1, PlanOptions(verify=False))
    sets = [s for s in plan if isinstance(s, SetAddress)]
    assert sets == [SetAddress(BASE), SetAddress(BASE + 0xFFFE)]
    assert max(w.block for w in plan.writes) == 0xFFFF


def test_write_outside_the_layout_is_refused() -> None:
    with pytest.raises(SafetyError, match="outside the device's memory layout") as info:
        plan_download([(BASE + 0x7FFF0, b"\x00" * 32)], F411, 2048)
    assert "0x08080000" in str(info.value)
    with pytest.raises(SafetyError, match="outside"):
        plan_download([(0x2000_0000, b"\x00")], F411, 2048)


def test_write_to_a_read_only_sector_is_refused() -> None:
    ro = MemoryLayout.parse("@Flash /0x08000000/02*016Ka,02*016Kg")
    with pytest.raises(SafetyError, match=r"sector 1 at 0x08004000 \(16 KiB\) is not writable"):
        plan_download([(BASE + 0x4000, b"\x00")], ro, 2048)
    plan_download([(BASE + 0x8000, b"\x00")], ro, 2048)


def test_write_only_sectors_are_not_erased() -> None:
    plan = plan_download([(0x1FFFC000, b"\xaa" * 16)], OPTION_BYTES, 2048)
    assert plan.erases == ()
    assert len(plan.writes) == 1  # 0xFF blocks would be written too: nothing erased


def test_overlapping_segments_are_an_image_error() -> None:
    with pytest.raises(ImageError, match="overlap"):
        plan_download([(BASE, b"\x00" * 10), (BASE + 5, b"\x00")], F411, 2048)
    with pytest.raises(ImageError, match="32-bit"):
        plan_download([(0xFFFF_FFF0, b"\x00" * 32)], F411, 2048)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="positive"):
        plan_download([], F411, 0)
    with pytest.raises(ValueError, match="positive"):
        plan_dfu_download(b"", 0)
    with pytest.raises(ValueError, match="max_block"):
        PlanOptions(max_block=1)
    with pytest.raises(ValueError, match="negative"):
        plan_download([(-1, b"\x00")], F411, 2048)


def test_empty_image_plans_nothing_but_leave() -> None:
    plan = plan_download([(BASE, b"")], F411, 2048, PlanOptions(leave=True))
    assert plan.steps == (Leave(),)


def test_plain_dfu_plan() -> None:
    plan = plan_dfu_download(bytearray(b"x" * 5000), 2048)
    assert not plan.dfuse
    assert [(w.block, w.address, w.length) for w in plan.writes] == [
        (0, None, 2048),
        (1, None, 2048),
        (2, None, 904),
    ]
    assert plan.steps[-1] == Leave()
    assert "DFU 1.1 download plan" in str(plan)
    assert "write blocks 0..2 (5000 bytes)" in str(plan)
    assert plan_dfu_download(b"x", 1, leave=False).steps[-1] == WriteBlock(
        0, None, memoryview(b"x")
    )


def test_dry_run_text() -> None:
    data = b"\x01" * 5000
    plan = plan_download([(BASE, data)], F411, 2048, PlanOptions(leave=True))
    text = str(plan)
    assert text.splitlines() == [
        "DfuSe download plan: 5000 bytes in 1 segment(s), transfer size 2048; "
        "3 block(s) (5000 bytes) to write, 0 bytes skipped as erased",
        "  erase sector 0 at 0x08000000 (16 KiB)",
        "  set address pointer to 0x08000000",
        "  write blocks 2..4 at 0x08000000..0x08001387 (5000 bytes)",
        "  verify 0x08000000..0x08001387 (5000 bytes)",
        "  leave DFU mode (zero-length DNLOAD)",
    ]
    verbose = plan.describe(verbose=True)
    assert "  write block 3 at 0x08000800 (2048 bytes)" in verbose.splitlines()
    assert MassErase().describe() == "mass erase"
    assert Leave(BASE).describe() == "leave DFU mode, jumping to 0x08000000"
    assert EraseSector(5, 0x08020000, 100).describe().endswith("(100 bytes)")


# --------------------------------------------------------------------------- properties


@st.composite
def images(draw: st.DrawFn) -> tuple[list[tuple[int, bytes]], int]:
    """Random non-overlapping segments inside the F411 flash, with many 0xFF runs."""
    transfer = draw(st.sampled_from([16, 64, 256, 2048]))
    count = draw(st.integers(1, 5))
    starts = sorted(draw(st.sets(st.integers(0, 0x7F000), min_size=count, max_size=count)))
    segments = []
    for i, start in enumerate(starts):
        limit = (starts[i + 1] if i + 1 < count else 0x80000) - start
        length = draw(st.integers(1, min(limit, 3000)))
        pieces = draw(
            st.lists(
                st.tuples(st.sampled_from([0x00, 0xFF, 0x5A]), st.integers(1, 600)),
                min_size=1,
                max_size=8,
            )
        )
        body = b"".join(bytes([b]) * n for b, n in pieces)
        body = (body * (length // len(body) + 1))[:length]
        segments.append((BASE + start, body))
    return segments, transfer


@settings(max_examples=60, deadline=None)
@given(images(), st.booleans())
def test_every_byte_is_written_once_or_skipped_as_erased(
    image: tuple[list[tuple[int, bytes]], int], skip: bool
) -> None:
    segments, transfer = image
    plan = plan_download(segments, F411, transfer, PlanOptions(skip_erased=skip))
    # Replay the plan the way a DfuSe device executes it.
    written: dict[int, int] = {}
    pointer = None
    for step in plan:
        if isinstance(step, SetAddress):
            pointer = step.address
        elif isinstance(step, WriteBlock):
            assert pointer is not None
            assert 2 <= step.block <= 0xFFFF
            address = pointer + (step.block - 2) * transfer
            assert address == step.address
            for i, byte in enumerate(step.data):
                assert address + i not in written, "byte written twice"
                written[address + i] = byte
    expected = {a + i: b for a, data in segments for i, b in enumerate(data)}
    for address, byte in expected.items():
        if address in written:
            assert written[address] == byte
        else:
            assert skip
            assert byte == 0xFF
    assert set(written) <= set(expected)
    # Erased sectors are exactly those touched, each once, in address order.
    touched = sorted({s.index for a, data in segments for s in F411.sectors_for(a, len(data))})
    erased = [e.index for e in plan.erases if isinstance(e, EraseSector)]
    assert erased == touched
    # Verification covers the whole image.
    assert sum(v.length for v in plan.verifies) == sum(len(d) for _, d in segments)


@settings(max_examples=30, deadline=None)
@given(st.binary(max_size=3000), st.integers(1, 700))
def test_plain_dfu_blocks_concatenate_to_the_payload(payload: bytes, transfer: int) -> None:
    plan = plan_dfu_download(payload, transfer)
    assert b"".join(bytes(w.data) for w in plan.writes) == payload
    assert [w.block for w in plan.writes] == list(range(len(plan.writes)))


MIXED = MemoryLayout.parse("@Flash /0x08000000/02*016Ka,02*016Kg/0x08100000/02*016Kg")


@settings(max_examples=60, deadline=None)
@given(st.integers(0x07FF_F000, 0x0810_9000), st.integers(1, 0x9000))
def test_safety_refuses_exactly_the_unwritable_ranges(start: int, length: int) -> None:
    writable = all(
        (s := MIXED.sector_at(a)) is not None and s.writable for a in (start, start + length - 1)
    ) and MIXED.allows(start, length, MIXED.sectors[2].access)
    if not writable:
        with pytest.raises(SafetyError, match=f"refusing to write 0x{start:08X}"):
            plan_download([(start, b"\x00" * length)], MIXED, 2048)
        return
    plan = plan_download([(start, b"\x00" * length)], MIXED, 2048)
    assert sum(w.length for w in plan.writes) == length
