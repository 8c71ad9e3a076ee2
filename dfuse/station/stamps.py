"""Per-board stamps: data unique to each board, merged into the image before planning.

A stamp is written in the same download as the image (same erase, same verify). Its
place and kind come from a ``--stamp ADDRESS:SPEC`` string (:func:`parse_stamp`)::

    0x0807FF00:serial            the board's USB serial string, ASCII, NUL-padded to 32 bytes
    0x0807FF20:uid               the 96-bit unique ID (12 bytes) where the part exposes it
    0x0807FF30:counter           the next number of a shared sequence, 4 bytes little-endian
    0x0807FF30:counter:1000:2    ... starting at 1000, 2 bytes wide
    0x0807FF40:sha256            the SHA-256 of the (unstamped) image, 32 bytes
    0x0807FF60:time              the flash time, Unix seconds, 8 bytes little-endian

>>> spec = parse_stamp("0x0807FF30:counter:1000:2")
>>> hex(spec.address), spec.kind, spec.start, spec.size
('0x807ff30', 'counter', 1000, 2)
>>> image = DfuSeFile([Target(0, "", [Element(0x08000000, bytes(16))])])
>>> stamped = apply_stamps(image, [spec], BoardFacts(serial="A1", counters={spec.key: 1001}))
>>> stamped.values[0].value, stamped.image.targets[0].elements[-1].data.hex()
(1001, 'e903')

Everything is checked before any USB traffic: a stamp that overlaps the image's own
data or another stamp (:func:`check_stamps`), or falls outside writable memory
(:func:`check_writable`), is refused with a :class:`StampError`.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from dfuse.device import Image
from dfuse.errors import SafetyError, UsageError
from dfuse.file import DfuFile, DfuSeFile, Element, Target
from dfuse.layout import Access, MemoryLayout

__all__ = [
    "SERIAL_FIELD",
    "STAMP_KINDS",
    "BoardFacts",
    "StampError",
    "StampSpec",
    "StampValue",
    "StampedImage",
    "apply_stamps",
    "check_stamps",
    "check_writable",
    "image_sha256",
    "parse_stamp",
    "to_dfuse_file",
]

StampKind = Literal["serial", "uid", "counter", "sha256", "time"]
#: The stamp kinds ``--stamp ADDRESS:SPEC`` accepts.
STAMP_KINDS: tuple[StampKind, ...] = ("serial", "uid", "counter", "sha256", "time")
#: Bytes a ``serial`` stamp occupies (the ASCII serial, NUL-padded).
SERIAL_FIELD = 32
UID_SIZE = 12
_FIXED_SIZE: dict[str, int] = {"serial": SERIAL_FIELD, "uid": UID_SIZE, "sha256": 32, "time": 8}
_COUNTER_DEFAULT_START = 1
_COUNTER_DEFAULT_WIDTH = 4
_NUMBER = re.compile(r"^(0[xX][0-9a-fA-F]{1,16}|[0-9]{1,20})$")
_EXPECTED = (
    "ADDRESS:SPEC with SPEC serial, uid, counter[:START[:WIDTH]], sha256 or time"
    " (e.g. 0x0807FF00:counter:1000:4)"
)


class StampError(UsageError):
    """A stamp is malformed, overlaps the image or another stamp, does not fit writable
    memory, or cannot be made for this board (no unique ID through DFU, a serial too
    long). Raised before anything is written.

    The message names the offending value and what was expected.
    """

    def __init__(self, message: str, *, value: object = None, expected: str = "") -> None:
        detail = f" (got {value!r}" if value is not None else ""
        if expected:
            detail += ("; " if detail else " (") + f"expected {expected}"
        super().__init__(message + (detail + ")" if detail else ""), value=value, expected=expected)


def _number(text: str, what: str, spec: str) -> int:
    text = text.strip()
    if not _NUMBER.match(text):
        raise StampError(f"invalid {what} in stamp {spec!r}", value=text, expected=_EXPECTED)
    return int(text, 0) if text[:2].lower() == "0x" else int(text, 10)


@dataclass(frozen=True, slots=True)
class StampSpec:
    """Where a stamp goes and what it holds.

    Attributes:
        address: the first byte of the stamp.
        kind: ``serial``, ``uid``, ``counter``, ``sha256`` or ``time``.
        start: the first number of a counter's sequence.
        width: a counter's size in bytes (1-8).
    """

    address: int
    kind: StampKind
    start: int = _COUNTER_DEFAULT_START
    width: int = _COUNTER_DEFAULT_WIDTH

    def __post_init__(self) -> None:
        if self.kind not in STAMP_KINDS:
            raise StampError("unknown stamp kind", value=self.kind, expected=_EXPECTED)
        if not 0 <= self.address <= 0xFFFF_FFFF or self.end > 0x1_0000_0000:
            raise StampError(
                "stamp address out of range", value=self.address, expected="a 32-bit address"
            )
        if not 1 <= self.width <= 8:
            raise StampError("invalid counter width", value=self.width, expected="1 to 8 bytes")
        if not 0 <= self.start < 1 << (8 * self.width):
            raise StampError(
                f"counter start does not fit {self.width} byte(s)",
                value=self.start,
                expected=f"0 to {(1 << (8 * self.width)) - 1}",
            )

    @property
    def size(self) -> int:
        """Bytes the stamp occupies."""
        return self.width if self.kind == "counter" else _FIXED_SIZE[self.kind]

    @property
    def end(self) -> int:
        """First address after the stamp."""
        return self.address + self.size

    @property
    def spec(self) -> str:
        """The SPEC part as written back (``counter:1000:2``)."""
        if self.kind == "counter":
            return f"counter:{self.start}:{self.width}"
        return self.kind

    @property
    def key(self) -> str:
        """The name of a counter's sequence in the record store: stations stamping the same
        address with the same ``counter:START:WIDTH`` share one sequence."""
        return f"0x{self.address:08X}:{self.spec}"

    def __str__(self) -> str:
        return f"0x{self.address:08X}:{self.spec}"


def parse_stamp(text: str) -> StampSpec:
    """Parse ``ADDRESS:SPEC`` (see the module documentation)."""
    parts = [p.strip() for p in text.strip().split(":")]
    if len(parts) < 2:
        raise StampError("invalid stamp", value=text, expected=_EXPECTED)
    address = _number(parts[0], "address", text)
    kind = parts[1].lower()
    if kind == "counter":
        if len(parts) > 4:
            raise StampError("invalid counter stamp", value=text, expected=_EXPECTED)
        start = _number(parts[2], "counter start", text) if len(parts) > 2 else 1
        width = _number(parts[3], "counter width", text) if len(parts) > 3 else 4
        return StampSpec(address, "counter", start, width)
    if kind not in STAMP_KINDS or len(parts) != 2:
        raise StampError("invalid stamp", value=text, expected=_EXPECTED)
    return StampSpec(address, kind)


@dataclass(frozen=True, slots=True)
class StampValue:
    """A stamp as written into one board.

    Attributes:
        address: where it was written.
        spec: its SPEC (``counter:1:4``).
        value: the value: a ``str`` for ``serial``, the hex digits for ``uid`` and
            ``sha256``, an ``int`` for ``counter`` and ``time`` (Unix seconds).
        data: the bytes written.
    """

    address: int
    spec: str
    value: int | str
    data: bytes = field(repr=False)

    def to_dict(self) -> dict[str, object]:
        """``{"address": int, "spec": str, "value": ...}`` (the record's form)."""
        return {"address": self.address, "spec": self.spec, "value": self.value}


@dataclass(frozen=True, slots=True)
class BoardFacts:
    """What the stamps of one board are made from.

    Attributes:
        serial: the board's USB serial string.
        uid: its unique ID (``None``: not read, or not exposed by the part).
        counters: the number reserved for each counter stamp, by :attr:`StampSpec.key`.
        time: the flash time in Unix seconds.
    """

    serial: str | None = None
    uid: bytes | None = None
    counters: Mapping[str, int] = field(default_factory=dict)
    time: int = 0


@dataclass(frozen=True, slots=True)
class StampedImage:
    """:func:`apply_stamps`' result: the image to download, and the values stamped."""

    image: DfuSeFile
    values: tuple[StampValue, ...]


def to_dfuse_file(image: Image, *, address: int | None = None) -> DfuSeFile:
    """The image as a :class:`DfuSeFile` (raw bytes need ``address``; a plain DFU file,
    which has no addresses, cannot take stamps)."""
    if isinstance(image, DfuSeFile):
        return image
    if isinstance(image, Target):
        return DfuSeFile((image,))
    if isinstance(image, DfuFile):
        raise StampError(
            "a plain DFU file has no addresses: stamps need a DfuSe image (.dfu, .hex, .s19)",
            value="DfuFile",
            expected="a DfuSe image",
        )
    if address is None:
        raise StampError("raw image bytes need an address", value=None, expected="an address")
    return DfuSeFile.from_bin(bytes(image), address=address)


def image_sha256(image: Image) -> str:
    """The SHA-256 of an image's contents, as hex: the DfuSe file's bytes (its elements,
    targets and suffix), a plain DFU file's bytes, or raw bytes."""
    if isinstance(image, DfuSeFile | DfuFile):
        return hashlib.sha256(image.to_bytes()).hexdigest()
    if isinstance(image, Target):
        return hashlib.sha256(DfuSeFile((image,)).to_bytes()).hexdigest()
    return hashlib.sha256(bytes(image)).hexdigest()


def check_stamps(image: DfuSeFile, stamps: Sequence[StampSpec]) -> None:
    """Refuse stamps that overlap each other or the image's data (any target)."""
    ranges = sorted((s.address, s.end, f"stamp {s}") for s in stamps)
    for a, b in itertools.pairwise(ranges):
        if b[0] < a[1]:
            raise StampError(
                f"{a[2]} and {b[2]} overlap", value=str(b[2]), expected="disjoint stamps"
            )
    for stamp in stamps:
        for target in image.targets:
            for element in target.elements:
                if stamp.address < element.end and element.address < stamp.end:
                    raise StampError(
                        f"stamp {stamp} (0x{stamp.address:08X}-0x{stamp.end - 1:08X}) overlaps "
                        f"the image's data at 0x{element.address:08X}-0x{element.end - 1:08X}",
                        value=str(stamp),
                        expected="an address outside the image's data",
                    )


def check_writable(stamps: Iterable[StampSpec], layout: MemoryLayout | None) -> None:
    """Refuse (:class:`~dfuse.errors.SafetyError`) a stamp outside the writable memory of
    ``layout``, the memory of the device's alternate setting 0 (where stamps go;
    ``None``: the device lists no memory there)."""
    for stamp in stamps:
        if layout is None or not layout.allows(stamp.address, stamp.size, Access.WRITE):
            where = f" ({layout})" if layout is not None else " (it lists no memory)"
            raise SafetyError(
                f"stamp {stamp} (0x{stamp.address:08X}+{stamp.size}) is outside the writable "
                f"memory of alternate setting 0{where}"
            )


def _value(spec: StampSpec, facts: BoardFacts, sha256: str) -> tuple[int | str, bytes]:
    if spec.kind == "serial":
        serial = facts.serial or ""
        raw = serial.encode("ascii", "replace")
        if not serial or len(raw) > SERIAL_FIELD:
            raise StampError(
                "the board's serial cannot be stamped",
                value=serial,
                expected=f"1 to {SERIAL_FIELD} ASCII characters",
            )
        return serial, raw.ljust(SERIAL_FIELD, b"\0")
    if spec.kind == "uid":
        if facts.uid is None or len(facts.uid) != UID_SIZE:
            raise StampError(
                "no unique ID for this board", value=facts.uid, expected=f"{UID_SIZE} bytes"
            )
        return facts.uid.hex(), facts.uid
    if spec.kind == "counter":
        if spec.key not in facts.counters:
            raise StampError("no counter value reserved", value=spec.key, expected="a number")
        number = facts.counters[spec.key]
        if not 0 <= number < 1 << (8 * spec.width):
            raise StampError(
                f"counter {spec.key} overflowed its {spec.width} byte(s)",
                value=number,
                expected=f"below {1 << (8 * spec.width)}",
            )
        return number, number.to_bytes(spec.width, "little")
    if spec.kind == "sha256":
        return sha256, bytes.fromhex(sha256)
    return facts.time, facts.time.to_bytes(8, "little")


def apply_stamps(
    image: Image,
    stamps: Sequence[StampSpec],
    facts: BoardFacts,
    *,
    sha256: str | None = None,
) -> StampedImage:
    """Merge the stamps into ``image`` (as elements of its alternate setting 0 target),
    so that one download writes, erases and verifies both.

    ``sha256`` is the image's digest for ``sha256`` stamps (computed when not given).
    Raises :class:`StampError` for overlapping stamps or missing board facts.
    """
    base = to_dfuse_file(image)
    if not stamps:
        return StampedImage(base, ())
    check_stamps(base, stamps)
    digest = sha256 if sha256 is not None else image_sha256(image)
    values = []
    for spec in stamps:
        value, data = _value(spec, facts, digest)
        values.append(StampValue(spec.address, spec.spec, value, data))
    extra = [Element(v.address, v.data) for v in values]
    targets = list(base.targets)
    for n, target in enumerate(targets):
        if target.alt_setting == 0:
            elements = sorted([*target.elements, *extra], key=lambda e: e.address)
            targets[n] = Target(0, target.name, elements)
            break
    else:
        targets.append(Target(0, "", sorted(extra, key=lambda e: e.address)))
    stamped = DfuSeFile(
        targets,
        vendor_id=base.vendor_id,
        product_id=base.product_id,
        device_version=base.device_version,
        size_includes_suffix=base.size_includes_suffix,
    )
    return StampedImage(stamped, tuple(values))
