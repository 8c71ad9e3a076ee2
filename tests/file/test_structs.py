"""The construct declarations: sizes, checked unpacking, the DFU CRC."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dfuse.errors import SignatureError, TruncatedFileError
from dfuse.file import DfuSeFile, Element, Target, structs, wire


def _bitwise_dfu_crc(data: bytes) -> int:
    """The DFU 1.1 appendix B CRC, bit by bit (an oracle independent of zlib)."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xEDB88320 if crc & 1 else crc >> 1
    return crc


@pytest.mark.parametrize(
    ("info", "size"),
    [(structs.SUFFIX, 16), (structs.PREFIX, 11), (structs.TARGET, 274), (structs.ELEMENT, 8)],
)
def test_sizes_match_the_format_table(info: structs.StructInfo, size: int) -> None:
    assert info.size == size


def test_constant_fields_are_found_with_their_offsets() -> None:
    assert structs.PREFIX.constants == ((0, "szSignature", b"DfuSe"), (5, "bVersion", b"\x01"))
    assert structs.SUFFIX.constants == ((8, "ucDfuSignature", b"UFD"), (11, "bLength", b"\x10"))
    assert structs.TARGET.constants == ((0, "szSignature", b"Target"),)


@settings(max_examples=50)
@given(st.integers(0, 0xFFFF), st.integers(0, 0xFFFF), st.integers(0, 0xFFFF_FFFF))
def test_suffix_pack_unpack_round_trip(device: int, product: int, crc: int) -> None:
    raw = structs.pack(
        structs.DfuSuffix,
        bcdDevice=device,
        idProduct=product,
        idVendor=0x0483,
        bcdDFU=0x011A,
        dwCRC=crc,
    )
    assert len(raw) == 16
    assert raw[8:12] == b"UFD\x10"
    fields = structs.unpack(structs.SUFFIX, memoryview(raw), 0)
    assert (fields["bcdDevice"], fields["idProduct"], fields["dwCRC"]) == (device, product, crc)
    assert type(fields) is dict


@settings(max_examples=50)
@given(st.integers(0, 255), st.binary(min_size=255, max_size=255), st.integers(0, 2**32 - 1))
def test_target_prefix_round_trip(alt: int, name: bytes, size: int) -> None:
    raw = structs.pack(
        structs.TargetPrefix,
        bAlternateSetting=alt,
        bTargetNamed=1,
        szTargetName=name,
        dwTargetSize=size,
        dwNbElements=3,
    )
    fields = structs.unpack(structs.TARGET, memoryview(b"xx" + raw), 2)
    assert fields["szTargetName"] == name
    assert fields["dwTargetSize"] == size
    assert fields["bAlternateSetting"] == alt


def test_unpack_reports_truncation_with_offset() -> None:
    with pytest.raises(TruncatedFileError, match="offset 3") as info:
        structs.unpack(structs.ELEMENT, memoryview(bytes(10)), 3, " of element 0")
    assert info.value.offset == 3
    assert info.value.expected == "8 bytes"
    assert info.value.found == "7 bytes"


def test_unpack_reports_a_bad_signature_with_offset() -> None:
    raw = b"DfuSe\x02" + bytes(5)
    with pytest.raises(SignatureError, match="bVersion") as info:
        structs.unpack(structs.PREFIX, memoryview(raw), 0)
    assert info.value.offset == 5
    assert info.value.expected == b"\x01"
    assert info.value.found == b"\x02"


@settings(max_examples=30)
@given(st.binary(max_size=200))
def test_dfu_crc_matches_the_bitwise_definition(data: bytes) -> None:
    assert structs.dfu_crc(data) == _bitwise_dfu_crc(data)


@settings(max_examples=40)
@given(st.data())
def test_fast_unpack_agrees_with_construct(data: st.DataObject) -> None:
    for info, declaration in [
        (structs.SUFFIX, structs.DfuSuffix),
        (structs.PREFIX, structs.DfuSePrefix),
        (structs.TARGET, structs.TargetPrefix),
        (structs.ELEMENT, structs.ElementHeader),
    ]:
        raw = bytearray(data.draw(st.binary(min_size=info.size, max_size=info.size)))
        for offset, _, expected in info.constants:
            raw[offset : offset + len(expected)] = expected
        ours = structs.unpack(info, memoryview(bytes(raw)), 0)
        theirs = declaration.parse(bytes(raw))
        assert ours == {k: v for k, v in theirs.items() if not k.startswith("_")}
        assert structs.pack(declaration, **ours) == bytes(raw)


@pytest.mark.parametrize(
    ("name", "declaration", "record"),
    [
        ("DFU suffix", structs.DfuSuffix, wire.SUFFIX),
        ("DfuSe prefix", structs.DfuSePrefix, wire.PREFIX),
        ("target prefix", structs.TargetPrefix, wire.TARGET),
        ("element header", structs.ElementHeader, wire.ELEMENT),
    ],
)
def test_precompiled_records_equal_the_construct_declarations(
    name: str, declaration: object, record: wire.StructInfo
) -> None:
    """The codec runs on dfuse.file.wire; the documented format is the construct table."""
    assert structs.info_of(name, declaration) == record
    assert record.codec.format == record.format


@settings(max_examples=25)
@given(
    st.lists(
        st.tuples(st.integers(0, 0xFFFF_0000), st.binary(max_size=24)), min_size=0, max_size=6
    ),
    st.integers(0, 255),
    st.booleans(),
)
def test_to_bytes_agrees_with_a_construct_parse(
    chunks: list[tuple[int, bytes]], alt: int, with_suffix: bool
) -> None:
    """Every header to_bytes() packs with struct reads back through the construct table."""
    elements, address = [], 0
    for gap, data in chunks:  # non-overlapping: each element after the previous one
        address = min(address + gap % 4096, 0xFFFF_FF00 - len(data))
        elements.append(Element(address, data))
        address += len(data)
    model = DfuSeFile(
        [Target(alt, "Internal Flash", elements)],
        vendor_id=0x0483,
        product_id=0xDF11,
        size_includes_suffix=with_suffix,
    )
    raw = model.to_bytes()
    prefix = structs.DfuSePrefix.parse(raw)
    assert prefix.bTargets == 1
    assert prefix.DFUImageSize == len(raw) - (0 if with_suffix else 16)
    target = structs.TargetPrefix.parse(raw[11:])
    assert (target.bAlternateSetting, target.dwNbElements) == (alt, len(elements))
    assert target.szTargetName.rstrip(b"\0") == b"Internal Flash"
    pos = 11 + 274
    for element in elements:
        header = structs.ElementHeader.parse(raw[pos:])
        assert (header.dwElementAddress, header.dwElementSize) == (element.address, element.size)
        pos += 8 + element.size
    suffix = structs.DfuSuffix.parse(raw[-16:])
    assert (suffix.idVendor, suffix.idProduct, suffix.bcdDFU) == (0x0483, 0xDF11, 0x011A)
    assert suffix.dwCRC == structs.dfu_crc(raw[:-4])
    assert DfuSeFile.parse(raw) == model
