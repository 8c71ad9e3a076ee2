"""Shared helpers for the file-codec tests: round-trip assertions, a hand-written
(struct-based, independent of dfuse) DfuSe packer, and hypothesis strategies."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence
from typing import Any, Protocol, TypeVar

from hypothesis import strategies as st

from dfuse.file import DfuFile, DfuSeFile, Element, Target


class _Codec(Protocol):
    def to_bytes(self) -> bytes: ...


C = TypeVar("C", DfuSeFile, DfuFile)


def assert_bytes_round_trip(cls: type[C], data: bytes) -> C:
    """``cls.parse(data).to_bytes() == data``, and the parsed model is stable."""
    parsed = cls.parse(data)
    assert parsed.to_bytes() == data
    assert cls.parse(parsed.to_bytes()) == parsed
    return parsed


def assert_model_round_trip(model: C) -> bytes:
    """``type(model).parse(model.to_bytes()) == model`` and the bytes are stable."""
    data = model.to_bytes()
    again = type(model).parse(data)
    assert again == model
    assert again.to_bytes() == data
    return data


# ------------------------------------------------------------------ hand packer


def dfu_suffix(body: bytes, *, bcd_dfu: int = 0x011A, vid: int = 0xFFFF, pid: int = 0xFFFF,
               device: int = 0xFFFF, signature: bytes = b"UFD", length: int = 16,
               crc: int | None = None) -> bytes:  # fmt: skip
    """``body`` with a DFU suffix appended (CRC computed unless given)."""
    head = struct.pack("<HHHH3sB", device, pid, vid, bcd_dfu, signature, length)
    value = zlib.crc32(body + head) ^ 0xFFFFFFFF if crc is None else crc
    return body + head + struct.pack("<I", value)


def pack_element(address: int, data: bytes, *, size: int | None = None) -> bytes:
    """An element header and its data (``size`` overrides dwElementSize)."""
    return struct.pack("<II", address, len(data) if size is None else size) + data


def pack_target(alt: int, name_field: bytes, elements: Sequence[bytes], *, named: int = 1,
                size: int | None = None, count: int | None = None,
                signature: bytes = b"Target") -> bytes:  # fmt: skip
    """A target prefix followed by already packed elements."""
    payload = b"".join(elements)
    return (
        struct.pack(
            "<6sBI255sII",
            signature,
            alt,
            named,
            name_field,
            len(payload) if size is None else size,
            len(elements) if count is None else count,
        )
        + payload
    )


def pack_dfuse(targets: Sequence[bytes], *, include_suffix: bool = False,
               image_size: int | None = None, n_targets: int | None = None,
               signature: bytes = b"DfuSe", version: int = 1, **suffix: Any) -> bytes:  # fmt: skip
    """A whole DfuSe file from packed targets."""
    body = b"".join(targets)
    size = 11 + len(body) + (16 if include_suffix else 0)
    prefix = struct.pack(
        "<5sBIB",
        signature,
        version,
        size if image_size is None else image_size,
        len(targets) if n_targets is None else n_targets,
    )
    return dfu_suffix(prefix + body, **suffix)


def simple_file(**kwargs: Any) -> bytes:
    """A small valid DfuSe file: two targets, three elements."""
    t0 = pack_target(
        0,
        b"Internal Flash".ljust(255, b"\0"),
        [pack_element(0x08000000, bytes(range(40))), pack_element(0x08004000, b"\xaa" * 8)],
    )
    t1 = pack_target(1, bytes(255), [pack_element(0x1FFFC000, b"\x01" * 16)], named=0)
    return pack_dfuse([t0, t1], **kwargs)


# ------------------------------------------------------------------ strategies

names = st.text(
    st.characters(blacklist_categories=["Cs"], blacklist_characters="\0"), max_size=12
).filter(lambda s: len(s.encode("utf-8")) <= 255)


@st.composite
def element_lists(draw: st.DrawFn, max_elements: int = 4) -> tuple[Element, ...]:
    """Non-overlapping elements (possibly empty ones), in any order."""
    count = draw(st.integers(0, max_elements))
    address = draw(st.integers(0, 0xFFFF_FFFF - 4096))
    elements = []
    for _ in range(count):
        data = draw(st.binary(max_size=64))
        if address + len(data) > 1 << 32:
            break
        elements.append(Element(address, data))
        address += len(data) + draw(st.integers(0, 300))
    return tuple(draw(st.permutations(elements)))


@st.composite
def targets(draw: st.DrawFn) -> Target:
    """Targets, some with ST-style garbage after the name's NUL."""
    name = draw(names)
    alt = draw(st.integers(0, 255))
    elements = draw(element_lists())
    if draw(st.booleans()):
        raw = name.encode("utf-8")
        garbage = draw(st.binary(min_size=254 - len(raw), max_size=254 - len(raw)))
        field = raw + b"\0" + garbage
        return Target(alt, name, elements, field[:255], draw(st.integers(0, 0xFFFF_FFFF)))
    return Target(alt, name, elements)


ids = st.integers(0, 0xFFFF)

dfuse_files = st.builds(
    DfuSeFile,
    st.lists(targets(), max_size=3).map(tuple),
    ids,
    ids,
    ids,
    st.booleans(),
)

dfu_files = st.builds(DfuFile, st.binary(max_size=300), ids, ids, ids, ids)
