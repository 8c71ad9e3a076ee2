"""Stamps: parsing, overlap and writability checks, merging into the image, the UID lookup."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dfuse.errors import SafetyError
from dfuse.file import DfuFile, DfuSeFile, Element, Target
from dfuse.layout import STM32F411XE_ALT_STRINGS, MemoryLayout
from dfuse.station.stamps import (
    SERIAL_FIELD,
    BoardFacts,
    StampError,
    StampSpec,
    apply_stamps,
    check_writable,
    image_sha256,
    parse_stamp,
)
from dfuse.station.uid import UID_LOCATIONS, uid_location, uid_readable

F411_LAYOUTS = [MemoryLayout.parse(s) for s in STM32F411XE_ALT_STRINGS]
IMAGE = DfuSeFile([Target(0, "Internal Flash", [Element(0x08000000, bytes(range(64)))])])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0x08004000:serial", StampSpec(0x08004000, "serial")),
        ("134234112:uid", StampSpec(0x08004000, "uid")),
        ("0x08004000:counter", StampSpec(0x08004000, "counter", 1, 4)),
        ("0x08004000:counter:1000", StampSpec(0x08004000, "counter", 1000, 4)),
        ("0x08004000:counter:0x10:2", StampSpec(0x08004000, "counter", 16, 2)),
        (" 0x08004000 : SHA256 ", StampSpec(0x08004000, "sha256")),
        ("0x08004000:time", StampSpec(0x08004000, "time")),
    ],
)
def test_parse(text: str, expected: StampSpec) -> None:
    assert parse_stamp(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "0x08004000",
        "serial",
        "0x08004000:colour",
        "0x08004000:serial:3",
        "0xZZ:serial",
        "-1:serial",
        "0x08004000:counter:1:0",
        "0x08004000:counter:1:9",
        "0x08004000:counter:256:1",
        "0x08004000:counter:1:2:3",
        "0xFFFFFFF0:sha256",
    ],
)
def test_parse_refuses(text: str) -> None:
    with pytest.raises(StampError) as info:
        parse_stamp(text)
    assert "ADDRESS:SPEC" in info.value.expected or info.value.expected


@given(
    st.integers(0, 0xFFFF_0000),
    st.sampled_from(["serial", "uid", "sha256", "time", "counter"]),
    st.integers(1, 8),
    st.data(),
)
def test_parse_round_trips(address: int, kind: str, width: int, data: st.DataObject) -> None:
    start = data.draw(st.integers(0, (1 << (8 * width)) - 1))
    if kind == "counter":
        spec = StampSpec(address, "counter", start, width)
    else:
        spec = StampSpec(address, kind)  # type: ignore[arg-type]
    assert parse_stamp(str(spec)) == spec


def test_apply_merges_every_kind_into_alt_0() -> None:
    specs = [
        parse_stamp("0x08004000:serial"),
        parse_stamp("0x08004020:uid"),
        parse_stamp("0x08004030:counter:100:2"),
        parse_stamp("0x08004040:sha256"),
        parse_stamp("0x08004060:time"),
    ]
    uid = bytes(range(12))
    facts = BoardFacts("ABC123", uid, {specs[2].key: 258}, time=1_700_000_000)
    stamped = apply_stamps(IMAGE, specs, facts)
    digest = hashlib.sha256(IMAGE.to_bytes()).hexdigest()
    assert [v.value for v in stamped.values] == ["ABC123", uid.hex(), 258, digest, 1_700_000_000]
    target = stamped.image.target(0)
    segments = dict(target.segments())
    assert segments[0x08000000] == bytes(range(64))
    assert segments[0x08004000] == b"ABC123".ljust(SERIAL_FIELD, b"\0")
    assert segments[0x08004020] == uid
    assert segments[0x08004030] == b"\x02\x01"
    assert segments[0x08004040] == bytes.fromhex(digest)
    assert segments[0x08004060] == (1_700_000_000).to_bytes(8, "little")
    assert [v.to_dict()["spec"] for v in stamped.values][2] == "counter:100:2"
    assert image_sha256(IMAGE) == digest


def test_apply_adds_a_target_for_alt_0_when_missing() -> None:
    image = DfuSeFile([Target(1, "Option Bytes", [Element(0x1FFFC000, bytes(16))])])
    stamped = apply_stamps(image, [parse_stamp("0x08004000:time")], BoardFacts(time=5))
    assert stamped.image.target(1) == image.targets[0]
    assert stamped.image.target(0).segments() == [(0x08004000, (5).to_bytes(8, "little"))]


@pytest.mark.parametrize(
    "stamps",
    [
        ["0x08000020:serial"],  # inside the image
        ["0x07FFFFF9:time"],  # its last byte is the image's first
        ["0x08004000:sha256", "0x08004010:time"],  # two stamps overlap
    ],
)
def test_overlaps_are_refused(stamps: list[str]) -> None:
    with pytest.raises(StampError, match="overlap"):
        apply_stamps(IMAGE, [parse_stamp(s) for s in stamps], BoardFacts("S", time=1))


def test_adjacent_stamps_are_allowed() -> None:
    specs = [parse_stamp("0x07FFFFF8:time"), parse_stamp("0x08000040:time")]
    stamped = apply_stamps(IMAGE, specs, BoardFacts("S", time=1))
    addresses = [a for a, _ in stamped.image.target(0).segments()]
    assert addresses == [0x07FFFFF8, 0x08000000, 0x08000040]


def test_writable_memory_is_checked() -> None:
    check_writable([parse_stamp("0x0807FFF8:time")], F411_LAYOUTS[0])
    for text in ("0x0807FFFC:time", "0x20000000:serial", "0x1FFFC000:counter"):
        with pytest.raises(SafetyError, match="outside the writable memory"):
            check_writable([parse_stamp(text)], F411_LAYOUTS[0])
    with pytest.raises(SafetyError, match="lists no memory"):
        check_writable([parse_stamp("0x08004000:time")], None)


def test_missing_facts_are_refused() -> None:
    with pytest.raises(StampError, match="serial"):
        apply_stamps(IMAGE, [parse_stamp("0x08004000:serial")], BoardFacts(None))
    with pytest.raises(StampError, match="serial"):
        apply_stamps(IMAGE, [parse_stamp("0x08004000:serial")], BoardFacts("X" * 33))
    with pytest.raises(StampError, match="unique ID"):
        apply_stamps(IMAGE, [parse_stamp("0x08004000:uid")], BoardFacts("S"))
    spec = parse_stamp("0x08004000:counter:1:1")
    with pytest.raises(StampError, match="overflowed"):
        apply_stamps(IMAGE, [spec], BoardFacts("S", counters={spec.key: 256}))
    with pytest.raises(StampError, match="plain DFU"):
        apply_stamps(DfuFile(b"abc"), [parse_stamp("0x08004000:time")], BoardFacts())


def test_uid_is_refused_on_the_f4_rom_with_the_reason() -> None:
    where = uid_location("STM32F4 512K")
    assert where is not None
    assert (where.address, where.size) == (0x1FFF7A10, 12)
    with pytest.raises(StampError, match=r"0x1FFF7A10.*does not expose it through DFU"):
        uid_readable("STM32F4 512K", list(enumerate(F411_LAYOUTS)))
    with pytest.raises(StampError, match="not known"):
        uid_readable("1209:0001", list(enumerate(F411_LAYOUTS)))


def test_uid_is_read_where_a_memory_covers_it(monkeypatch: pytest.MonkeyPatch) -> None:
    # a part whose bootloader lists the UID range in an alternate setting
    from dfuse.station import uid as uid_module

    monkeypatch.setitem(
        UID_LOCATIONS, "TESTPART", uid_module.UidLocation(0x1FF80050, 12, True, "test")
    )
    signature = MemoryLayout.parse("@Signature /0x1FF80050/01*012 a")
    layouts = [*enumerate(F411_LAYOUTS), (6, signature)]
    assert uid_readable("TESTPART", layouts) == (6, 0x1FF80050)
