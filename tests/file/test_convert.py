"""Intel HEX / S-record / binary conversions (bincopy underneath)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dfuse.errors import FileFormatError, ImageError
from dfuse.file import DfuSeFile, Element, Target
from dfuse.file.convert import read_hex, read_source, read_srec, write_bin, write_hex, write_srec
from tests.file.helpers import assert_model_round_trip


@st.composite
def separated_segments(draw: st.DrawFn) -> list[tuple[int, bytes]]:
    """Sorted segments with real gaps between them (so bincopy cannot merge them)."""
    address = draw(st.integers(0, 0xFFFF_0000))
    segments = []
    for _ in range(draw(st.integers(0, 4))):
        data = draw(st.binary(min_size=1, max_size=80))
        if address + len(data) > 1 << 32:
            break
        segments.append((address, data))
        address += len(data) + draw(st.integers(1, 0x20000))
    return segments


@settings(max_examples=40, deadline=None)
@given(separated_segments(), st.sampled_from(["hex", "srec"]))
def test_text_round_trip_keeps_gaps_as_elements(
    segments: list[tuple[int, bytes]], kind: str
) -> None:
    target = Target.from_segments(segments, alt_setting=2, name="x")
    text = target.to_hex() if kind == "hex" else target.to_srec()
    back = Target.from_hex(text) if kind == "hex" else Target.from_srec(text)
    assert back.segments() == segments
    assert [(e.address, e.data) for e in back.elements] == segments
    assert_model_round_trip(DfuSeFile([back]))


@settings(max_examples=40, deadline=None)
@given(separated_segments(), st.integers(0, 255))
def test_bin_fills_gaps(segments: list[tuple[int, bytes]], fill: int) -> None:
    start, data = write_bin(segments, fill=fill)
    if not segments:
        assert (start, data) == (0, b"")
        return
    assert start == segments[0][0]
    assert len(data) == segments[-1][0] + len(segments[-1][1]) - start
    covered: set[int] = set()
    for address, chunk in segments:
        assert data[address - start : address - start + len(chunk)] == chunk
        covered.update(range(address - start, address - start + len(chunk)))
    assert all(data[i] == fill for i in range(len(data)) if i not in covered)


def test_adjacent_records_merge_into_one_element() -> None:
    text = write_hex([(0x08000000, b"ab"), (0x08000002, b"cd")])
    assert Target.from_hex(text).elements == (Element(0x08000000, b"abcd"),)


def test_from_bin_forms(tmp_path: Path) -> None:
    path = tmp_path / "fw.bin"
    path.write_bytes(b"\x01\x02")
    a = DfuSeFile.from_bin(path, address=0x08000000, name="Internal Flash", vendor_id=0x0483)
    b = DfuSeFile.from_bin(b"\x01\x02", address=0x08000000, name="Internal Flash")
    assert a.targets == b.targets
    assert DfuSeFile.from_bin(str(path), address=0x08000000, name="Internal Flash") == b
    assert a.vendor_id == 0x0483
    assert a.to_bin() == b"\x01\x02"
    assert b.target().name == "Internal Flash"


def test_source_forms(tmp_path: Path) -> None:
    text = write_hex([(0x08000000, b"hello")])
    path = tmp_path / "a.hex"
    path.write_text(text)
    expected = [(0x08000000, b"hello")]
    assert read_hex(text) == expected
    assert read_hex(text.encode()) == expected
    assert read_hex(path) == expected
    assert read_hex(str(path)) == expected
    assert DfuSeFile.from_hex(path, alt_setting=1).targets[0].alt_setting == 1
    srec = write_srec(expected)
    (tmp_path / "a.s19").write_text(srec)
    assert read_srec(tmp_path / "a.s19") == expected
    assert DfuSeFile.from_srec(srec, product_id=0xDF11).product_id == 0xDF11
    with pytest.raises(TypeError):
        read_source(42)  # type: ignore[arg-type]


def test_several_targets_from_several_inputs() -> None:
    flash = Target.from_hex(write_hex([(0x08000000, b"code"), (0x08010000, b"conf")]), name="F")
    option = Target.from_bin(bytes(16), address=0x1FFFC000, alt_setting=1, name="Option Bytes")
    f = DfuSeFile([flash, option], vendor_id=0x0483, product_id=0xDF11)
    data = assert_model_round_trip(f)
    assert len(DfuSeFile.parse(data).target(0).elements) == 2
    assert f.to_srec(1).startswith("S3")


@pytest.mark.parametrize(
    ("text", "line"),
    [
        (":020000040800F2\n:03000000010203F8\n", 2),
        (":0200000408\n", 1),
        ("\n\nhello\n", 3),
        (":00000009F7\n", 1),
        (":0300000001020Z\n", 1),
    ],
)
def test_bad_hex_names_the_line(text: str, line: int) -> None:
    with pytest.raises(FileFormatError, match=f"line {line}") as info:
        read_hex(text)
    assert "expected a valid Intel HEX record" in str(info.value)


def test_bad_srec_names_the_line() -> None:
    good = write_srec([(0x100, b"abc")]).splitlines()
    bad = "\n".join([good[0], good[0][:-2] + "00", *good[1:]]) + "\n"
    with pytest.raises(FileFormatError, match="line 2"):
        read_srec(bad)


def test_overlapping_hex_records() -> None:
    record = ":03000000010203F7\n"
    with pytest.raises(ImageError, match="overlap"):
        read_hex(record + record)


def test_hex_past_32_bits() -> None:
    # Extended linear address 0xFFFF, then 2 bytes at 0xFFFF: the second byte is at 2**32.
    text = ":02000004FFFFFC\n:02FFFF00AABB9B\n:00000001FF\n"
    with pytest.raises(ImageError, match="32-bit"):
        read_hex(text)


def test_non_ascii_text() -> None:
    with pytest.raises(FileFormatError, match="ASCII") as info:
        read_hex(b":00\xff\n")
    assert info.value.offset == 3


def test_bin_fill_must_be_a_byte() -> None:
    with pytest.raises(ValueError, match="byte"):
        write_bin([(0, b"a")], fill=256)
