"""The typed model: round trips, field decoding, validation of models built in memory."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from hypothesis import given, settings

from dfuse.errors import ImageError
from dfuse.file import DfuFile, DfuSeFile, Element, Target, load
from tests.file.helpers import (
    assert_bytes_round_trip,
    assert_model_round_trip,
    dfu_files,
    dfu_suffix,
    dfuse_files,
    pack_dfuse,
    pack_element,
    pack_target,
    simple_file,
)

# ------------------------------------------------------------------ round trips


@settings(max_examples=60, deadline=None)
@given(dfuse_files)
def test_dfuse_model_round_trip(model: DfuSeFile) -> None:
    assert_model_round_trip(model)


@settings(max_examples=60, deadline=None)
@given(dfuse_files)
def test_dfuse_bytes_round_trip(model: DfuSeFile) -> None:
    assert_bytes_round_trip(DfuSeFile, model.to_bytes())


@settings(max_examples=40, deadline=None)
@given(dfu_files)
def test_dfu_model_and_bytes_round_trip(model: DfuFile) -> None:
    data = assert_model_round_trip(model)
    assert_bytes_round_trip(DfuFile, data)


def test_hand_packed_file_decodes_field_by_field() -> None:
    raw = simple_file(vid=0x0483, pid=0xDF11, device=0x2200)
    f = assert_bytes_round_trip(DfuSeFile, raw)
    assert (f.vendor_id, f.product_id, f.device_version) == (0x0483, 0xDF11, 0x2200)
    assert not f.size_includes_suffix
    assert [t.alt_setting for t in f.targets] == [0, 1]
    assert f.targets[0].name == "Internal Flash"
    assert f.targets[0].named == 1
    assert f.targets[1].name == ""
    assert f.targets[1].named == 0
    assert f.targets[0].elements == (
        Element(0x08000000, bytes(range(40))),
        Element(0x08004000, b"\xaa" * 8),
    )
    assert f.targets[1].elements == (Element(0x1FFFC000, b"\x01" * 16),)
    assert f.stored_crc == int.from_bytes(raw[-4:], "little")
    assert f.size == 40 + 8 + 16


def test_image_size_with_suffix_is_preserved() -> None:
    raw = simple_file(include_suffix=True)
    f = assert_bytes_round_trip(DfuSeFile, raw)
    assert f.size_includes_suffix
    assert struct.unpack_from("<I", raw, 6)[0] == len(raw)


def test_st_name_with_garbage_after_nul_round_trips() -> None:
    field = b"ST...\0" + bytes(range(1, 250))
    raw = pack_dfuse([pack_target(0, field, [pack_element(0x08000000, b"abc")])], pid=0)
    f = assert_bytes_round_trip(DfuSeFile, raw)
    assert f.targets[0].name == "ST..."
    assert f.targets[0].name_field == field
    assert f.product_id == 0


def test_micropython_padded_elements_round_trip() -> None:
    # MicroPython's dfu.py pads every element to a multiple of 8 bytes.
    elements = [
        pack_element(0x08000000, b"\x11" * 13 + bytes(3)),
        pack_element(0x08020000, b"z" * 8),
    ]
    raw = pack_dfuse([pack_target(0, b"ST...".ljust(255, b"\0"), elements)])
    f = assert_bytes_round_trip(DfuSeFile, raw)
    assert [e.size for e in f.targets[0].elements] == [16, 8]


def test_unsorted_and_empty_elements_keep_file_order() -> None:
    elements = [
        pack_element(0x08004000, b"b"),
        pack_element(0x08000000, b"a"),
        pack_element(0x08000000, b""),
    ]
    f = assert_bytes_round_trip(DfuSeFile, pack_dfuse([pack_target(0, bytes(255), elements)]))
    assert [e.address for e in f.targets[0].elements] == [0x08004000, 0x08000000, 0x08000000]
    assert f.targets[0].segments() == [(0x08000000, b"a"), (0x08004000, b"b")]
    assert f.targets[0].start_address == 0x08000000


def test_latin1_name_is_decoded_and_kept() -> None:
    field = b"Fl\xe9sh".ljust(255, b"\0")
    f = assert_bytes_round_trip(DfuSeFile, pack_dfuse([pack_target(0, field, [])]))
    assert f.targets[0].name == "Flésh"


def test_zero_targets_file() -> None:
    f = assert_bytes_round_trip(DfuSeFile, pack_dfuse([]))
    assert f.targets == ()


def test_plain_dfu_file_fields() -> None:
    raw = dfu_suffix(b"payload", bcd_dfu=0x0100, vid=0x1209, pid=0x0001, device=0x0102)
    f = assert_bytes_round_trip(DfuFile, raw)
    assert f == DfuFile(b"payload", 0x1209, 0x0001, 0x0102)
    assert f.dfu_version == 0x0100


def test_model_defaults() -> None:
    t = Target(3, "Option Bytes")
    assert t.name_field == b"Option Bytes".ljust(255, b"\0")
    assert t.named == 1
    assert Target().named == 0
    f = DfuSeFile([t])
    assert f.targets == (t,)
    assert (f.vendor_id, f.product_id, f.device_version) == (0xFFFF, 0xFFFF, 0xFFFF)
    assert Element(0, bytearray(b"ab")).data == b"ab"  # type: ignore[arg-type]
    assert DfuFile(memoryview(b"xy")).payload == b"xy"  # type: ignore[arg-type]


def test_build_is_a_deprecated_alias_of_to_bytes() -> None:
    f = DfuSeFile([Target(0, "x", [Element(0x08000000, b"data")])])
    d = DfuFile(b"abc")
    for model in (f, d):
        with pytest.warns(DeprecationWarning, match=r"build\(\) is deprecated: use to_bytes"):
            assert model.build() == model.to_bytes()


def test_save_round_trips(tmp_path: Path) -> None:
    f = DfuSeFile([Target(0, "x", [Element(0x08000000, b"data")])])
    f.save(tmp_path / "a.dfu")
    assert DfuSeFile.from_path(tmp_path / "a.dfu") == f
    d = DfuFile(b"abc")
    d.save(tmp_path / "b.dfu")
    assert DfuFile.from_path(tmp_path / "b.dfu") == d


@pytest.mark.parametrize("name", ["x.hex", "x.s19", "x.bin", "x.dfu"])
def test_dfusefile_save_writes_by_extension(tmp_path: Path, name: str) -> None:
    """Never DfuSe bytes into a .hex: save() follows the extension like dfuse.save."""
    f = DfuSeFile([Target(0, "x", [Element(0x08000000, b"data")])])
    path = tmp_path / name
    f.save(path)
    loaded = load(path, address=0x08000000)
    assert isinstance(loaded, DfuSeFile)
    assert loaded.targets[0].segments() == [(0x08000000, b"data")]
    if name.endswith(".hex"):
        assert path.read_text().startswith(":")


def test_dfusefile_save_refuses_several_targets_outside_a_dfu(tmp_path: Path) -> None:
    f = DfuSeFile([Target(0, "", [Element(0, b"a")]), Target(1, "", [Element(0, b"b")])])
    with pytest.raises(ValueError, match=r"only in a \.dfu"):
        f.save(tmp_path / "x.hex")
    assert not (tmp_path / "x.hex").exists()


def test_dfufile_save_refuses_a_record_extension(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cannot be written as ihex records"):
        DfuFile(b"abc").save(tmp_path / "x.hex")


def test_summary_and_dict() -> None:
    f = DfuSeFile.parse(simple_file(vid=0x0483, pid=0xDF11))
    text = f.summary()
    for needle in [
        "2 target(s)",
        "0x0483",
        "0xDF11",
        "0xFFFF (any)",
        "(valid)",
        "'Internal Flash'",
        "0x08000000-0x08000027",
        "0x1FFFC000-0x1FFFC00F",
    ]:
        assert needle in text
    assert str(f) == text
    info = f.to_dict()
    assert info["crc_ok"] is True
    assert info["targets"][0]["elements"][1] == {
        "address": 0x08004000,
        "size": 8,
        "end": 0x08004008,
    }
    import json

    assert json.loads(json.dumps(info)) == info
    plain = DfuFile.parse(dfu_suffix(b"abc", bcd_dfu=0x0100))
    assert "bcdDFU        0x0100" in plain.summary()
    assert plain.to_dict()["payload_size"] == 3
    assert str(plain) == plain.summary()


def test_summary_of_a_model_built_in_memory() -> None:
    f = DfuSeFile([Target(0, "x", [Element(0x08000000, b"abc")])])
    crc = int.from_bytes(f.to_bytes()[-4:], "little")
    assert f"CRC           0x{crc:08X}\n" in f.summary()
    assert f.to_dict()["crc"] == crc


def test_file_over_4_gib_is_refused_without_building_it() -> None:
    # 255 targets sharing one 17 MiB buffer: 4.3 GB of image, 17 MiB of memory.
    shared = bytes(17 << 20)
    f = DfuSeFile([Target(alt, "", [Element(0, shared)]) for alt in range(255)])
    with pytest.raises(ImageError, match="4 GiB"):
        f.to_bytes()


def test_summary_reports_a_crc_mismatch() -> None:
    raw = bytearray(simple_file())
    raw[20] ^= 0xFF
    f = DfuSeFile.parse(bytes(raw), verify_crc=False)
    assert "MISMATCH" in f.summary()
    assert f.to_dict()["crc_ok"] is False
    plain = DfuFile.parse(dfu_suffix(b"abc", crc=0x1234), verify_crc=False)
    assert "MISMATCH" in plain.summary()


def test_target_lookup_and_conversions() -> None:
    f = DfuSeFile.parse(simple_file())
    assert f.target(1).elements[0].address == 0x1FFFC000
    with pytest.raises(ValueError, match="2 targets"):
        f.target()
    with pytest.raises(KeyError):
        f.target(7)
    assert f.to_bin(0) == bytes(range(40)) + b"\xff" * (0x4000 - 40) + b"\xaa" * 8
    assert f.to_bin(0, fill=0) == bytes(range(40)) + bytes(0x4000 - 40) + b"\xaa" * 8
    assert Target.from_hex(f.to_hex(1)).segments() == f.target(1).segments()
    assert Target.from_srec(f.to_srec(0)).segments() == f.target(0).segments()
    twins = DfuSeFile([Target(0), Target(0)])
    with pytest.raises(ValueError, match="share"):
        twins.target(0)


def test_reprs_stay_short() -> None:
    e = Element(0x08000000, bytes(1 << 20))
    assert len(repr(e)) < 100
    assert "size=1048576" in repr(e)
    assert "<5 bytes>" in repr(DfuFile(b"12345"))


# ------------------------------------------------------------------ validation


@pytest.mark.parametrize(
    ("address", "size"), [(-1, 1), (0xFFFF_FFFF, 2), (1 << 32, 0), (0xFFFF_FFF0, 0x11)]
)
def test_element_beyond_32_bits(address: int, size: int) -> None:
    with pytest.raises(ImageError, match="32-bit"):
        Element(address, bytes(size))


def test_element_at_the_top_of_the_address_space_is_fine() -> None:
    assert Element(0xFFFF_FFFF, b"x").end == 1 << 32


def test_overlapping_elements_rejected() -> None:
    with pytest.raises(ImageError, match="overlap") as info:
        Target(0, "", [Element(0x100, bytes(16)), Element(0x10F, b"x")])
    assert "0x00000100-0x0000010F" in str(info.value)


def test_adjacent_elements_are_fine() -> None:
    assert len(Target(0, "", [Element(0x100, bytes(16)), Element(0x110, b"x")]).elements) == 2


def test_name_over_255_bytes_rejected() -> None:
    Target(0, "n" * 255)
    with pytest.raises(ImageError, match="255"):
        Target(0, "n" * 256)
    with pytest.raises(ImageError, match="255"):
        Target(0, "é" * 128)  # 256 bytes in UTF-8
    with pytest.raises(ImageError, match="NUL"):
        Target(0, "a\0b")


def test_too_many_targets_rejected() -> None:
    DfuSeFile([Target(i % 256) for i in range(255)])
    with pytest.raises(ImageError, match="255"):
        DfuSeFile([Target(i % 256) for i in range(256)])


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Target(256), "8 bits"),
        (lambda: Target(0, "a", (), b"b".ljust(255, b"\0")), "disagrees"),
        (lambda: Target(0, "a", (), b"a"), "255 bytes"),
        (lambda: Target(0, "a", (), b"", -1), "32 bits"),
        (lambda: DfuSeFile((), vendor_id=0x10000), "16 bits"),
        (lambda: DfuSeFile((), product_id=-1), "16 bits"),
        (lambda: DfuFile(b"", dfu_version=0x10000), "16 bits"),
    ],
)
def test_api_misuse_raises_value_error(make: object, message: str) -> None:
    assert callable(make)
    with pytest.raises(ValueError, match=message):
        make()


@pytest.mark.parametrize(
    "make",
    [
        lambda: Element(0, "text"),  # type: ignore[arg-type]
        lambda: Element(1.5, b""),  # type: ignore[arg-type]
        lambda: Target(0, "", [b"not an element"]),  # type: ignore[list-item]
        lambda: Target(0, "", 5),  # type: ignore[arg-type]
        lambda: DfuSeFile([Element(0, b"")]),  # type: ignore[list-item]
        lambda: DfuSeFile(7),  # type: ignore[arg-type]
        lambda: DfuFile("text"),  # type: ignore[arg-type]
    ],
)
def test_wrong_types_raise_type_error(make: object) -> None:
    assert callable(make)
    with pytest.raises(TypeError):
        make()
