"""dfuse's own Intel HEX / S-record reader: every record checked, any order, linear merge."""

from __future__ import annotations

import random

import bincopy
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dfuse.errors import FileFormatError, ImageError
from dfuse.file.convert import read_hex, read_srec, write_hex, write_srec


def _ihex(kind: int, address: int, data: bytes) -> str:
    body = bytes([len(data), address >> 8, address & 0xFF, kind]) + data
    return ":" + (body + bytes([-sum(body) & 0xFF])).hex().upper()


def _srec(kind: str, address: int, data: bytes) -> str:
    width = {"0": 2, "1": 2, "2": 3, "3": 4, "5": 2, "6": 3, "7": 4, "8": 3, "9": 2}[kind]
    body = bytes([width + len(data) + 1]) + address.to_bytes(width, "big") + data
    return f"S{kind}" + (body + bytes([~sum(body) & 0xFF])).hex().upper()


@st.composite
def disjoint_segments(draw: st.DrawFn) -> list[tuple[int, bytes]]:
    address = draw(st.integers(0, 0xFFFF_0000))
    segments = []
    for _ in range(draw(st.integers(0, 5))):
        data = draw(st.binary(min_size=1, max_size=100))
        if address + len(data) > 1 << 32:
            break
        segments.append((address, data))
        address += len(data) + draw(st.integers(1, 0x30000))
    return segments


@settings(max_examples=60, deadline=None)
@given(disjoint_segments(), st.sampled_from([8, 16, 32]), st.randoms(use_true_random=False))
def test_shuffled_srec_records_read_like_sorted_ones(
    segments: list[tuple[int, bytes]], per_record: int, rnd: random.Random
) -> None:
    lines = write_srec(segments, bytes_per_record=per_record).splitlines()
    data_lines = [line for line in lines if line[:2] in ("S1", "S2", "S3")]
    rnd.shuffle(data_lines)
    assert read_srec("\n".join(data_lines) + "\n") == segments


@settings(max_examples=60, deadline=None)
@given(disjoint_segments(), st.sampled_from(["hex", "srec"]))
def test_same_segments_as_bincopy(segments: list[tuple[int, bytes]], kind: str) -> None:
    text = write_hex(segments) if kind == "hex" else write_srec(segments)
    ours = read_hex(text) if kind == "hex" else read_srec(text)
    theirs = bincopy.BinFile()
    theirs.add_ihex(text) if kind == "hex" else theirs.add_srec(text)
    assert ours == [(s.minimum_address, bytes(s.data)) for s in theirs.segments]
    assert ours == segments


def test_records_out_of_order_merge_into_one_segment() -> None:
    text = "\n".join(
        [
            _ihex(4, 0, b"\x08\x00"),
            _ihex(0, 0x0004, b"efgh"),
            _ihex(0, 0x0000, b"abcd"),
            _ihex(0, 0x0010, b"far"),
            _ihex(1, 0, b""),
        ]
    )
    assert read_hex(text) == [(0x08000000, b"abcdefgh"), (0x08000010, b"far")]


def test_extended_segment_and_linear_addresses() -> None:
    text = "\n".join(
        [
            _ihex(2, 0, b"\x10\x00"),  # segment 0x1000: base 0x10000
            _ihex(0, 0x0002, b"seg"),
            _ihex(2, 0, b"\x00\x00"),
            _ihex(4, 0, b"\x08\x01"),  # linear 0x0801 << 16
            _ihex(0, 0x0000, b"lin"),
            _ihex(3, 0, b"\x00\x00\x12\x34"),  # start segment address: skipped
            _ihex(5, 0, b"\x08\x00\x01\x01"),  # start linear address: skipped
            _ihex(0, 0x0000, b""),  # an empty data record: nothing
            _ihex(1, 0, b""),
        ]
    )
    assert read_hex(text) == [(0x10002, b"seg"), (0x08010000, b"lin")]


def test_srec_header_count_and_start_records_are_skipped() -> None:
    text = "\r\n".join(
        [
            _srec("0", 0, b"hdr"),
            _srec("1", 0x1000, b"ab"),
            _srec("2", 0x123456, b"cd"),
            _srec("3", 0x08000000, b"ef"),
            _srec("3", 0x08000004, b""),  # no data: nothing
            _srec("5", 3, b""),
            _srec("6", 3, b""),
            _srec("7", 0x08000000, b""),
            _srec("8", 0x123456, b""),
            _srec("9", 0x1000, b""),
        ]
    )
    assert read_srec(text) == [(0x1000, b"ab"), (0x123456, b"cd"), (0x08000000, b"ef")]


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        ("\n" + _ihex(0, 0, b"ab") + "\nxyz\n", 3, "does not start with ':'"),
        (":0G\n", 1, "not pairs of hex digits"),
        (":00000001\n", 1, "4 bytes, at least 5 needed"),
        (_ihex(0, 0, b"ab")[:-2] + "00" + "\n", 1, "checksum 0x00, expected 0x"),
        (":02000000AAFE\n", 1, "byte count 2, but 1 data bytes"),
        (_ihex(6, 0, b"") + "\n", 1, "record type 06, expected 00..05"),
        (_ihex(4, 0, b"\x08") + "\n", 1, "1 data bytes in a type 04 record, expected 2"),
        (_ihex(2, 0, b"\x08\x00\x00") + "\n", 1, "3 data bytes in a type 02 record, expected 2"),
        (_ihex(5, 0, b"\x08\x00") + "\n", 1, "2 data bytes in a type 05 record, expected 4"),
        (_ihex(1, 0, b"\x00") + "\n", 1, "1 data bytes in a type 01 record, expected 0"),
    ],
)
def test_bad_hex_record_says_why(text: str, line: int, reason: str) -> None:
    with pytest.raises(FileFormatError, match=f"line {line}") as info:
        read_hex(text)
    assert reason in str(info.value)
    assert "expected a valid Intel HEX record" in str(info.value)


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        (_srec("1", 0, b"a") + "\n:00000001FF\n", 2, "does not start with 'S'"),
        ("S4030000FC\n", 1, "record type S4, expected S0..S3, S5..S9"),
        ("S\n", 1, "record type S, expected"),
        ("S1030000ZZ\n", 1, "not pairs of hex digits"),
        ("S30500000000\n", 1, "5 bytes, at least 6 needed"),
        ("S1040000FB\n", 1, "byte count 4, but 3 bytes follow"),
        (_srec("1", 0x10, b"ab")[:-2] + "00\n", 1, "checksum 0x00, expected 0x"),
    ],
)
def test_bad_srec_record_says_why(text: str, line: int, reason: str) -> None:
    with pytest.raises(FileFormatError, match=f"line {line}") as info:
        read_srec(text)
    assert reason in str(info.value)
    assert "expected a valid S-record record" in str(info.value)


def test_a_long_bad_record_is_shortened_in_the_message() -> None:
    with pytest.raises(FileFormatError) as info:
        read_hex(":" + "0" * 1001 + "\n")
    assert len(str(info.value)) < 300
    assert "..." in str(info.value)


@pytest.mark.parametrize("same", [True, False])
def test_overlap_names_both_lines(same: bool) -> None:
    first = _ihex(0, 0x0100, b"abcd")
    second = _ihex(0, 0x0102, b"cd" if same else b"XY")
    text = "\n".join([first, _ihex(0, 0x0200, b"elsewhere"), second]) + "\n"
    with pytest.raises(ImageError, match="Intel HEX records overlap") as info:
        read_hex(text)
    message = str(info.value)  # the one wording of dfuse.segments.overlap_error
    assert "line 1 at 0x00000100-0x00000103 and line 3 at 0x00000102-0x00000103" in message


def test_srec_overlap_and_32_bit_limit() -> None:
    with pytest.raises(ImageError, match="S-record records overlap"):
        read_srec("\n".join([_srec("3", 0x10, b"abc"), _srec("3", 0x0E, b"abc")]))
    with pytest.raises(
        ImageError, match=r"beyond 32-bit .* line 2 at 0xFFFFFFFF with 2 bytes, up to 0x100000001"
    ):
        read_srec("\n".join([_srec("3", 0, b"a"), _srec("3", 0xFFFFFFFF, b"ab")]))
    assert read_srec(_srec("3", 0xFFFFFFFE, b"ab") + "\n") == [(0xFFFFFFFE, b"ab")]
