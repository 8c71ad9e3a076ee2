"""dfuse.segments: the one place segments are merged and overlaps refused."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dfuse.errors import ImageError, UsageError
from dfuse.file import Element, Target
from dfuse.file.convert import read_hex
from dfuse.protocol.plan import normalize_segments
from dfuse.segments import first_overlap, merge, merge_views

segments = st.lists(st.tuples(st.integers(0, 4096), st.binary(max_size=16)), max_size=12)


def _reference(items: list[tuple[int, bytes]]) -> list[tuple[int, bytes]] | None:
    """Byte by byte: None when an address is written twice, else the runs."""
    memory: dict[int, int] = {}
    for address, data in items:
        for i, byte in enumerate(data):
            if address + i in memory:
                return None
            memory[address + i] = byte
    runs: list[tuple[int, bytearray]] = []
    for address in sorted(memory):
        if runs and runs[-1][0] + len(runs[-1][1]) == address:
            runs[-1][1].append(memory[address])
        else:
            runs.append((address, bytearray([memory[address]])))
    return [(a, bytes(d)) for a, d in runs]


@settings(max_examples=200)
@given(segments)
def test_merge_agrees_with_a_byte_by_byte_reference(items: list[tuple[int, bytes]]) -> None:
    expected = _reference(items)
    if expected is None:
        with pytest.raises(ImageError, match="overlap"):
            merge(items)
        assert first_overlap([(a, len(d)) for a, d in items]) is not None
    else:
        assert merge(items) == expected
        assert [(a, bytes(v)) for a, v in merge_views(items)] == expected
        assert first_overlap([(a, len(d)) for a, d in items]) is None


def test_one_wording_for_every_layer() -> None:
    """Records, elements and the planner report an overlap in the same words."""
    messages = []
    with pytest.raises(ImageError) as records:
        read_hex(":0400000001020304F2\n:02000200AABB97\n")
    messages.append(str(records.value))
    with pytest.raises(ImageError) as elements:
        Target(0, "", [Element(0, b"\x01\x02\x03\x04"), Element(2, b"\xaa\xbb")])
    messages.append(str(elements.value))
    with pytest.raises(ImageError) as plan:
        normalize_segments([(0, b"\x01\x02\x03\x04"), (2, b"\xaa\xbb")])
    messages.append(str(plan.value))
    for message in messages:
        assert "overlap: expected each address written once, found " in message
        assert "at 0x00000000-0x00000003 and " in message
        assert "at 0x00000002-0x00000003" in message


def test_addresses_must_fit_32_bits() -> None:
    with pytest.raises(ImageError, match="go beyond 32-bit addresses"):
        merge([(0xFFFF_FFFF, b"ab")])
    assert merge([(0xFFFF_FFFE, b"ab")]) == [(0xFFFF_FFFE, b"ab")]
    with pytest.raises(UsageError, match="negative address -1"):
        merge([(-1, b"a")])
