"""Malformed files: every error is a FileFormatError subclass naming offset, expected, found."""

from __future__ import annotations

import contextlib
import struct
import tracemalloc

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dfuse.errors import (
    CrcMismatchError,
    FileFormatError,
    ImageError,
    SignatureError,
    SizeMismatchError,
    TruncatedFileError,
)
from dfuse.file import DfuFile, DfuSeFile
from tests.file.helpers import (
    dfu_suffix,
    dfuse_files,
    pack_dfuse,
    pack_element,
    pack_target,
    simple_file,
)

NAME = b"Internal Flash".ljust(255, b"\0")


def _one_target(
    elements: list[bytes], *, size: int | None = None, count: int | None = None
) -> bytes:
    return pack_dfuse([pack_target(0, NAME, elements, size=size, count=count)])


def _raises(exc: type[FileFormatError], data: bytes, offset: int | None) -> FileFormatError:
    with pytest.raises(exc) as info:
        DfuSeFile.parse(data)
    error = info.value
    assert error.offset == offset
    if offset is not None:
        assert f"at offset {offset} " in str(error)
    assert "expected" in str(error)
    assert "found" in str(error)
    return error


# ------------------------------------------------------------------ prefix


def test_bad_dfuse_signature() -> None:
    raw = simple_file(signature=b"DfuSx")
    error = _raises(SignatureError, raw, 0)
    assert error.expected == b"DfuSe"
    assert error.found == b"DfuSx"


def test_version_other_than_1() -> None:
    error = _raises(SignatureError, simple_file(version=2), 5)
    assert error.found == b"\x02"


@pytest.mark.parametrize("length", [0, 1, 5, 10])
def test_shorter_than_the_prefix(length: int) -> None:
    _raises(TruncatedFileError, simple_file()[:length], 0)


@pytest.mark.parametrize("include_suffix", [False, True])
def test_truncation_anywhere(include_suffix: bool) -> None:
    raw = simple_file(include_suffix=include_suffix)
    for cut in range(11, len(raw)):
        with pytest.raises(TruncatedFileError) as info:
            DfuSeFile.parse(raw[:cut])
        assert info.value.offset is not None


def test_prefix_only_file_is_truncated() -> None:
    raw = struct.pack("<5sBIB", b"DfuSe", 1, 11, 0) + bytes(4)
    _raises(TruncatedFileError, raw, len(raw))


def test_image_size_smaller_than_the_data() -> None:
    raw = simple_file(image_size=100)
    error = _raises(SizeMismatchError, raw, 6)
    assert error.found == 100
    assert f"{len(raw) - 16} (without suffix) or {len(raw)}" in str(error.expected)


def test_image_size_larger_than_the_file() -> None:
    raw = simple_file(image_size=0xFFFF_FFFF)
    error = _raises(TruncatedFileError, raw, len(raw))
    assert "DFUImageSize" in str(error)


# ------------------------------------------------------------------ suffix


def test_bad_suffix_signature() -> None:
    raw = simple_file()
    raw = raw[:-8] + b"DFU" + raw[-5:]
    error = _raises(SignatureError, raw, len(raw) - 8)
    assert error.expected == b"UFD"


@pytest.mark.parametrize("length", [0, 15, 17, 255])
def test_bad_suffix_length(length: int) -> None:
    raw = simple_file(length=length)
    error = _raises(SignatureError, raw, len(raw) - 5)
    assert "bLength" in str(error)
    assert error.found == bytes([length])


def test_dfuse_file_needs_bcd_dfu_011a() -> None:
    raw = simple_file(bcd_dfu=0x0100)
    error = _raises(SignatureError, raw, len(raw) - 10)
    assert error.expected == 0x011A
    assert error.found == 0x0100


def test_crc_mismatch_names_both_crcs_and_can_be_skipped() -> None:
    raw = simple_file(crc=0xDEADBEEF)
    good = simple_file()
    error = _raises(CrcMismatchError, raw, len(raw) - 4)
    assert isinstance(error, CrcMismatchError)
    assert error.stored == 0xDEADBEEF
    assert error.computed == int.from_bytes(good[-4:], "little")
    assert "0xDEADBEEF" in str(error)
    assert "verify_crc=False" in str(error)
    f = DfuSeFile.parse(raw, verify_crc=False)
    assert f == DfuSeFile.parse(good)
    assert f.stored_crc == 0xDEADBEEF


def test_a_flipped_data_bit_is_a_crc_error() -> None:
    raw = bytearray(simple_file())
    raw[300] ^= 0x01
    _raises(CrcMismatchError, bytes(raw), len(raw) - 4)


# ------------------------------------------------------------------ targets


def test_bad_target_signature() -> None:
    raw = pack_dfuse([pack_target(0, NAME, [], signature=b"Tarjet")])
    error = _raises(SignatureError, raw, 11)
    assert error.expected == b"Target"


def test_bad_second_target_signature_offset() -> None:
    t0 = pack_target(0, NAME, [pack_element(0, b"abcd")])
    raw = pack_dfuse([t0, pack_target(1, NAME, [], signature=b"target")])
    _raises(SignatureError, raw, 11 + len(t0))


def test_more_targets_announced_than_present() -> None:
    raw = pack_dfuse([pack_target(0, NAME, [])], n_targets=3)
    error = _raises(SizeMismatchError, raw, 10)
    assert error.found == 3
    assert error.expected == 1


def test_fewer_targets_announced_than_present() -> None:
    t = pack_target(0, NAME, [pack_element(0, b"x")])
    raw = pack_dfuse([t, t], n_targets=1)
    error = _raises(SizeMismatchError, raw, 11 + len(t))
    assert "bTargets" in str(error)


def test_target_prefix_cut_short_inside_a_consistent_file() -> None:
    body = b"Target" + bytes(100)
    raw = pack_dfuse([body], n_targets=1)
    error = _raises(TruncatedFileError, raw, 11)
    assert error.expected == "274 bytes"


def test_target_size_past_the_end() -> None:
    raw = _one_target([pack_element(0, b"abc")], size=0x7FFF_FFFF)
    error = _raises(TruncatedFileError, raw, 11 + 266)
    assert error.found == 0x7FFF_FFFF


def test_target_size_smaller_than_its_elements() -> None:
    raw = _one_target([pack_element(0, b"abcdefgh")], size=10)
    error = _raises(SizeMismatchError, raw, 11 + 274 + 4)
    assert error.found == 8


def test_target_size_larger_than_its_elements() -> None:
    elements = [pack_element(0, b"abc")]
    raw = pack_dfuse([pack_target(0, NAME, elements, size=11 + 5) + bytes(5)])
    error = _raises(SizeMismatchError, raw, 11 + 266)
    assert error.expected == 11
    assert error.found == 16


def test_element_count_too_large_is_refused_before_looping() -> None:
    raw = _one_target([pack_element(0, b"abc")], count=0xFFFF_FFFF)
    error = _raises(SizeMismatchError, raw, 11 + 270)
    assert error.found == 0xFFFF_FFFF


def test_element_count_too_small() -> None:
    raw = _one_target([pack_element(0, b"abc"), pack_element(8, b"d")], count=1)
    _raises(SizeMismatchError, raw, 11 + 266)


def test_huge_element_size_allocates_nothing() -> None:
    raw = _one_target([pack_element(0x08000000, b"tiny", size=0xFFFF_FFFF)])
    tracemalloc.start()
    try:
        error = _raises(SizeMismatchError, raw, 11 + 274 + 4)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert error.found == 0xFFFF_FFFF
    assert peak < 1 << 20


def test_element_header_cut_short() -> None:
    # dwTargetSize leaves 4 bytes for element 1's 8-byte header; the next target follows.
    t0 = pack_target(0, NAME, [pack_element(0, bytes(12)) + b"\x01\x02\x03\x04"], count=2)
    raw = pack_dfuse([t0, pack_target(1, NAME, [])])
    error = _raises(TruncatedFileError, raw, 11 + 274 + 20)
    assert "element 1 of target 0" in str(error)
    assert "dwTargetSize" in str(error)


def test_overlapping_elements_in_a_file() -> None:
    e0 = pack_element(0x08000000, bytes(32))
    raw = _one_target([e0, pack_element(0x08000010, b"x")])
    error = _raises(ImageError, raw, 11 + 274 + len(e0))
    assert "overlap" in str(error)


def test_element_beyond_32_bits_in_a_file() -> None:
    raw = _one_target([pack_element(0xFFFF_FFF0, bytes(32))])
    error = _raises(ImageError, raw, 11 + 274)
    assert "32-bit" in str(error)


# ------------------------------------------------------------------ plain DFU


def test_plain_file_too_short() -> None:
    with pytest.raises(TruncatedFileError) as info:
        DfuFile.parse(b"UFD\x10")
    assert info.value.offset == 0


def test_plain_file_bad_signature_and_crc() -> None:
    raw = dfu_suffix(b"payload", bcd_dfu=0x0100, signature=b"XYZ")
    with pytest.raises(SignatureError) as info:
        DfuFile.parse(raw)
    assert info.value.offset == len(raw) - 8
    with pytest.raises(CrcMismatchError) as crc:
        DfuFile.parse(dfu_suffix(b"payload", crc=5))
    assert crc.value.stored == 5
    assert DfuFile.parse(dfu_suffix(b"payload", crc=5), verify_crc=False).payload == b"payload"


# ------------------------------------------------------------------ fuzzing


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(dfuse_files, st.data())
def test_mutated_files_only_raise_file_format_errors(model: DfuSeFile, data: st.DataObject) -> None:
    raw = bytearray(model.to_bytes())
    for _ in range(data.draw(st.integers(1, 4))):
        kind = data.draw(st.sampled_from(["flip", "cut", "insert"]))
        position = data.draw(st.integers(0, max(len(raw) - 1, 0)))
        if kind == "flip" and raw:
            raw[position] ^= data.draw(st.integers(1, 255))
        elif kind == "cut":
            del raw[position : position + data.draw(st.integers(1, 300))]
        else:
            raw[position:position] = data.draw(st.binary(min_size=1, max_size=8))
    for verify in (True, False):
        with contextlib.suppress(FileFormatError):
            DfuSeFile.parse(bytes(raw), verify_crc=verify)
        with contextlib.suppress(FileFormatError):
            DfuFile.parse(bytes(raw), verify_crc=verify)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=400))
def test_random_bytes_only_raise_file_format_errors(raw: bytes) -> None:
    for candidate in (raw, b"DfuSe\x01" + raw):
        with contextlib.suppress(FileFormatError):
            DfuSeFile.parse(candidate, verify_crc=False)
