"""The typed, frozen model of .dfu files: :class:`DfuSeFile` (targets of elements) and
:class:`DfuFile` (a plain DFU 1.1 payload with its suffix).

Parsing checks every size, count, signature and the CRC, and raises a
:class:`~dfuse.errors.FileFormatError` subclass that names the offset, what was expected
and what was found. Building is the exact inverse: ``DfuSeFile.parse(b).to_bytes() == b``
for every valid file, and ``DfuSeFile.parse(f.to_bytes()) == f`` for every model.
"""

from __future__ import annotations

import os
import struct
import warnings
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from dfuse.errors import (
    CrcMismatchError,
    ImageError,
    SignatureError,
    SizeMismatchError,
    TruncatedFileError,
)
from dfuse.file import convert, wire
from dfuse.file.wire import (
    DFU_VERSION_DFUSE,
    DFU_VERSION_PLAIN,
    NAME_FIELD_SIZE,
    SUFFIX_LENGTH,
)
from dfuse.segments import first_overlap, overlap_error

__all__ = ["DfuFile", "DfuSeFile", "Element", "Target"]

Buffer = bytes | bytearray | memoryview
_ADDRESS_LIMIT = 1 << 32
_ANY = 0xFFFF
# Offsets of fields inside the structures, for error messages.
_PREFIX_IMAGE_SIZE, _PREFIX_TARGETS = 6, 10
_TARGET_SIZE, _TARGET_COUNT = 266, 270
_SUFFIX_BCD_DFU, _SUFFIX_CRC = 6, 12


def _view(data: Buffer) -> memoryview:
    mv = memoryview(data)
    return mv if mv.format == "B" and mv.ndim == 1 else mv.cast("B")


def _check_u16(name: str, value: int) -> None:
    if not 0 <= value <= 0xFFFF:
        raise ValueError(f"{name} must fit 16 bits, got {value}")


def _hex_id(value: int) -> str:
    return f"0x{value:04X}" + (" (any)" if value == _ANY else "")


class _ToBytes(Protocol):
    def to_bytes(self) -> bytes: ...


def _deprecated_build(file: _ToBytes) -> bytes:
    """``file.build()``: warn that it is deprecated, return ``file.to_bytes()``."""
    warnings.warn(
        f"{type(file).__name__}.build() is deprecated: use to_bytes()",
        DeprecationWarning,
        stacklevel=3,
    )
    return file.to_bytes()


# ------------------------------------------------------------------ Element


@dataclass(frozen=True, slots=True)
class Element:
    """A contiguous run of bytes to place at ``address`` (one DfuSe image element).

    ``data`` is stored as ``bytes`` (a ``bytearray`` or ``memoryview`` is copied).

    Raises:
        ImageError: the element does not fit the 32-bit address space.

    >>> Element(0x08000000, b"\\x00\\x00\\x02\\x20").end == 0x08000004
    True
    """

    address: int
    data: bytes

    def __post_init__(self) -> None:
        data: object = self.data
        address: object = self.address
        if not isinstance(data, bytes):
            if not isinstance(data, bytearray | memoryview):
                raise TypeError(f"Element.data must be bytes, got {type(data).__name__}")
            object.__setattr__(self, "data", bytes(data))
        if not isinstance(address, int):
            raise TypeError(f"Element.address must be int, got {type(address).__name__}")
        if not 0 <= self.address < _ADDRESS_LIMIT or self.address + len(self.data) > _ADDRESS_LIMIT:
            raise ImageError(
                "element does not fit 32-bit addresses",
                expected=f"0 <= address < 0x{_ADDRESS_LIMIT:X} and address + size <= that",
                found=f"address 0x{self.address:X}, size {len(self.data)}",
            )

    @property
    def size(self) -> int:
        """Number of data bytes."""
        return len(self.data)

    @property
    def end(self) -> int:
        """First address after the element."""
        return self.address + len(self.data)

    def __repr__(self) -> str:
        head = self.data[:8].hex()
        more = "…" if len(self.data) > 8 else ""
        return f"Element(address=0x{self.address:08X}, size={len(self.data)}, data={head}{more})"


def _check_overlap(
    elements: Sequence[Element], where: str, offsets: Sequence[int] | None = None
) -> None:
    """Refuse overlapping elements (:func:`dfuse.segments.overlap_error`)."""
    pair = first_overlap([(e.address, len(e.data)) for e in elements])
    if pair is not None:
        a, b = elements[pair[0]], elements[pair[1]]
        raise overlap_error(
            f"elements{where}",
            (a.address, len(a.data), f"element {pair[0]}"),
            (b.address, len(b.data), f"element {pair[1]}"),
            offset=None if offsets is None else offsets[pair[1]],
        )


_set = object.__setattr__


def _element(address: int, data: bytes) -> Element:
    """An :class:`Element` from checked values, without :meth:`Element.__post_init__`."""
    element = object.__new__(Element)
    _set(element, "address", address)
    _set(element, "data", data)
    return element


# ------------------------------------------------------------------ Target


def _decode_name(field_bytes: bytes) -> str:
    raw = field_bytes.split(b"\0", 1)[0]
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


@dataclass(frozen=True, slots=True)
class Target:
    """One DfuSe target: the elements for one alternate setting (memory) of the device.

    Attributes:
        alt_setting: bAlternateSetting, the DFU alternate setting this target is for.
        name: the target name (szTargetName up to its first NUL).
        elements: the elements in file order; they never overlap.
        name_field: the raw 255-byte szTargetName. Derived from ``name`` (NUL-padded)
            when not given; parsing keeps the bytes after the NUL (ST's DFU File
            Manager leaves garbage there) so a file round-trips byte for byte.
        named: bTargetNamed as stored; derived as ``1 if name else 0`` when not given.

    Raises:
        ImageError: elements overlap, or the name does not fit 255 bytes.

    >>> t = Target(0, "Internal Flash", [Element(0x08000000, bytes(16))])
    >>> t.size, t.named
    (16, 1)
    """

    alt_setting: int = 0
    name: str = ""
    elements: Sequence[Element] = ()
    name_field: bytes = b""
    named: int | None = None

    def __post_init__(self) -> None:
        given: object = self.elements
        if not isinstance(given, tuple):
            if not isinstance(given, Iterable):
                raise TypeError(f"elements must be a sequence, got {type(given).__name__}")
            object.__setattr__(self, "elements", tuple(given))
        items: Sequence[object] = self.elements
        for element in items:
            if not isinstance(element, Element):
                raise TypeError(f"Target.elements must hold Element, got {type(element).__name__}")
        if not 0 <= self.alt_setting <= 0xFF:
            raise ValueError(f"alt_setting must fit 8 bits, got {self.alt_setting}")
        if not self.name_field:
            encoded = self.name.encode("utf-8")
            if len(encoded) > NAME_FIELD_SIZE or b"\0" in encoded:
                raise ImageError(
                    "target name does not fit szTargetName",
                    expected=f"at most {NAME_FIELD_SIZE} bytes without NUL",
                    found=f"{len(encoded)} bytes {self.name[:40]!r}",
                )
            object.__setattr__(self, "name_field", encoded.ljust(NAME_FIELD_SIZE, b"\0"))
        else:
            if len(self.name_field) != NAME_FIELD_SIZE:
                raise ValueError(
                    f"name_field must be {NAME_FIELD_SIZE} bytes, got {len(self.name_field)}"
                )
            if _decode_name(self.name_field) != self.name:
                raise ValueError(f"name {self.name!r} disagrees with name_field")
        if self.named is None:
            object.__setattr__(self, "named", 1 if self.name else 0)
        elif not 0 <= self.named < _ADDRESS_LIMIT:
            raise ValueError(f"named (bTargetNamed) must fit 32 bits, got {self.named}")
        _check_overlap(self.elements, f" of target alt {self.alt_setting}")

    # -------------------------------------------------------------- views

    @property
    def size(self) -> int:
        """Total data bytes of all elements."""
        return sum(len(e.data) for e in self.elements)

    @property
    def target_size(self) -> int:
        """dwTargetSize: the elements with their 8-byte headers."""
        return wire.ELEMENT.size * len(self.elements) + sum(len(e.data) for e in self.elements)

    def segments(self) -> list[tuple[int, bytes]]:
        """The non-empty elements as ``(address, data)``, sorted by address."""
        return sorted((e.address, e.data) for e in self.elements if e.data)

    @property
    def start_address(self) -> int | None:
        """Lowest address holding data (``None`` without data)."""
        segs = self.segments()
        return segs[0][0] if segs else None

    # -------------------------------------------------------------- builders

    @classmethod
    def from_segments(
        cls, segments: Iterable[tuple[int, Buffer]], *, alt_setting: int = 0, name: str = ""
    ) -> Target:
        """A target with one element per ``(address, data)`` segment, sorted by address."""
        elements = sorted((Element(a, bytes(d)) for a, d in segments), key=lambda e: e.address)
        return cls(alt_setting, name, tuple(elements))

    @classmethod
    def from_hex(cls, source: convert.Source, *, alt_setting: int = 0, name: str = "") -> Target:
        """A target from Intel HEX (text, bytes or a path; see :mod:`dfuse.file.convert`).

        Each contiguous run of data becomes an element; gaps separate elements.
        """
        return cls.from_segments(convert.read_hex(source), alt_setting=alt_setting, name=name)

    @classmethod
    def from_srec(cls, source: convert.Source, *, alt_setting: int = 0, name: str = "") -> Target:
        """A target from Motorola S-records (text, bytes or a path)."""
        return cls.from_segments(convert.read_srec(source), alt_setting=alt_setting, name=name)

    @classmethod
    def from_bin(
        cls,
        data: Buffer | str | os.PathLike[str],
        *,
        address: int,
        alt_setting: int = 0,
        name: str = "",
    ) -> Target:
        """A target holding one element: ``data`` (bytes, or a path as ``str``/``PathLike``)
        at ``address``."""
        raw = convert.read_file(data) if isinstance(data, str | os.PathLike) else bytes(data)
        return cls(alt_setting, name, (Element(address, raw),))

    # -------------------------------------------------------------- the way back

    def to_hex(self, *, bytes_per_record: int = 32) -> str:
        """Intel HEX text of this target's data."""
        return convert.write_hex(self.segments(), bytes_per_record=bytes_per_record)

    def to_srec(self, *, bytes_per_record: int = 32) -> str:
        """Motorola S-record (S3) text of this target's data."""
        return convert.write_srec(self.segments(), bytes_per_record=bytes_per_record)

    def to_bin(self, *, fill: int = 0xFF) -> bytes:
        """Raw binary from :attr:`start_address` to the end of the last element.

        Gaps between elements are filled with ``fill`` (0xFF: erased flash).
        """
        return convert.write_bin(self.segments(), fill=fill)[1]

    def to_dict(self) -> dict[str, Any]:
        """JSON-able description (no data bytes)."""
        return {
            "alt_setting": self.alt_setting,
            "name": self.name,
            "named": self.named,
            "size": self.size,
            "elements": [
                {"address": e.address, "size": len(e.data), "end": e.end} for e in self.elements
            ],
        }

    def _describe(self, index: int) -> list[str]:
        lines = [
            f"Target {index}: alt {self.alt_setting}, name {self.name!r}, "
            f"{len(self.elements)} element(s), {self.size} bytes"
        ]
        for i, e in enumerate(self.elements):
            last = f"0x{e.end - 1:08X}" if e.data else "(empty)"
            lines.append(f"  element {i}: 0x{e.address:08X}-{last}  {len(e.data):>8} bytes")
        return lines


# ------------------------------------------------------------------ suffix helpers


@dataclass(frozen=True, slots=True)
class _Suffix:
    device_version: int
    product_id: int
    vendor_id: int
    dfu_version: int
    crc: int


def _read_suffix(mv: memoryview, verify_crc: bool) -> _Suffix:
    n = len(mv)
    if n < SUFFIX_LENGTH:
        raise TruncatedFileError(
            "file too short for a DFU suffix", offset=0, expected="at least 16 bytes", found=n
        )
    wire.check(wire.SUFFIX, mv, n - SUFFIX_LENGTH)
    device, product, vendor, dfu, _, _, crc = wire.SUFFIX.codec.unpack_from(mv, n - SUFFIX_LENGTH)
    suffix = _Suffix(device, product, vendor, dfu, crc)
    if verify_crc:
        computed = wire.dfu_crc(mv[: n - 4])
        if computed != suffix.crc:
            raise CrcMismatchError(suffix.crc, computed, offset=n - 4)
    return suffix


_SUFFIX_HEAD = struct.Struct(wire.SUFFIX.format[:-1])  # the suffix without dwCRC
_CRC = struct.Struct("<I")
_PREFIX_PACK = wire.PREFIX.codec.pack
_TARGET_PACK = wire.TARGET.codec.pack
_ELEMENT_PACK = wire.ELEMENT.codec.pack
_ELEMENT_UNPACK = wire.ELEMENT.codec.unpack_from


def _suffix_head(device: int, product: int, vendor: int, bcd_dfu: int) -> bytes:
    return _SUFFIX_HEAD.pack(
        device, product, vendor, bcd_dfu, wire.DFU_SUFFIX_SIGNATURE, SUFFIX_LENGTH
    )


def _suffix_bytes(body: bytes, device: int, product: int, vendor: int, bcd_dfu: int) -> bytes:
    head = _suffix_head(device, product, vendor, bcd_dfu)
    crc = zlib.crc32(head, zlib.crc32(body)) ^ 0xFFFFFFFF
    return head + _CRC.pack(crc)


def _crc_lines(stored: int | None, computed: int) -> str:
    if stored is None:
        return f"0x{computed:08X}"
    state = "valid" if stored == computed else f"MISMATCH, computed 0x{computed:08X}"
    return f"0x{stored:08X} ({state})"


# ------------------------------------------------------------------ DfuSeFile


@dataclass(frozen=True, slots=True)
class DfuSeFile:
    """A DfuSe (.dfu) file: targets of elements, and the DFU suffix's device IDs.

    Attributes:
        targets: the targets in file order (at most 255).
        vendor_id: idVendor of the suffix (0xFFFF: any).
        product_id: idProduct of the suffix (0xFFFF: any).
        device_version: bcdDevice of the suffix (0xFFFF: any).
        size_includes_suffix: whether DFUImageSize counts the 16-byte suffix
            (dfu-util's dfuse-pack.py) or not (UM0391, ST's DFU File Manager: the default).
        stored_crc: the CRC read from the file by :meth:`parse` (``None`` for a model
            built in memory); not part of equality.

    >>> f = DfuSeFile([Target(0, "Internal Flash", [Element(0x08000000, b"hi")])])
    >>> DfuSeFile.parse(f.to_bytes()) == f
    True
    """

    targets: Sequence[Target] = ()
    vendor_id: int = _ANY
    product_id: int = _ANY
    device_version: int = _ANY
    size_includes_suffix: bool = False
    stored_crc: int | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        given: object = self.targets
        if not isinstance(given, tuple):
            if not isinstance(given, Iterable):
                raise TypeError(f"targets must be a sequence, got {type(given).__name__}")
            object.__setattr__(self, "targets", tuple(given))
        items: Sequence[object] = self.targets
        for target in items:
            if not isinstance(target, Target):
                raise TypeError(f"DfuSeFile.targets must hold Target, got {type(target).__name__}")
        if len(self.targets) > 0xFF:
            raise ImageError(
                "too many targets for bTargets", expected="at most 255", found=len(self.targets)
            )
        _check_u16("vendor_id", self.vendor_id)
        _check_u16("product_id", self.product_id)
        _check_u16("device_version", self.device_version)

    # -------------------------------------------------------------- parsing

    @classmethod
    def parse(cls, data: Buffer, *, verify_crc: bool = True) -> DfuSeFile:
        """Decode a DfuSe file.

        Args:
            data: the whole file.
            verify_crc: check the suffix CRC (pass ``False`` to read a damaged file).

        Raises:
            SignatureError: "DfuSe", bVersion, "Target", "UFD", bLength or bcdDFU is wrong.
            TruncatedFileError: the file is shorter than its structures announce.
            SizeMismatchError: DFUImageSize, bTargets, dwTargetSize, dwNbElements or
                dwElementSize disagrees with the data.
            CrcMismatchError: the suffix CRC is wrong (both CRCs are in the error).
            ImageError: elements of one target overlap.
        """
        mv = _view(data)
        n = len(mv)
        prefix = wire.unpack(wire.PREFIX, mv, 0)
        image_size: int = prefix["DFUImageSize"]
        n_targets: int = prefix["bTargets"]
        body_end = n - SUFFIX_LENGTH
        if image_size == body_end and body_end >= wire.PREFIX.size:
            includes = False
        elif image_size == n and body_end >= wire.PREFIX.size:
            includes = True
        elif image_size > body_end or body_end < wire.PREFIX.size:
            raise TruncatedFileError(
                "file is shorter than DFUImageSize announces",
                offset=n,
                expected=f"{max(image_size, wire.PREFIX.size) + SUFFIX_LENGTH} bytes "
                f"(DFUImageSize {image_size} plus the suffix, or {image_size} with it)",
                found=f"{n} bytes",
            )
        else:
            raise SizeMismatchError(
                "DFUImageSize disagrees with the file length",
                offset=_PREFIX_IMAGE_SIZE,
                expected=f"{body_end} (without suffix) or {n} (with suffix)",
                found=image_size,
            )
        if includes and bytes(mv[n - 8 : n - 5]) != wire.DFU_SUFFIX_SIGNATURE:
            raise TruncatedFileError(
                "DFU suffix missing: the file ends where DFUImageSize says the image ends",
                offset=n,
                expected=f"{SUFFIX_LENGTH} more bytes (the suffix)",
                found="end of file",
            )
        suffix = _read_suffix(mv, verify_crc)
        if suffix.dfu_version != DFU_VERSION_DFUSE:
            raise SignatureError(
                "bcdDFU of a DfuSe file",
                offset=body_end + _SUFFIX_BCD_DFU,
                expected=DFU_VERSION_DFUSE,
                found=suffix.dfu_version,
            )
        body = mv[:body_end]
        offset = wire.PREFIX.size
        targets: list[Target] = []
        for t in range(n_targets):
            if offset >= body_end:
                raise SizeMismatchError(
                    f"bTargets announces {n_targets} targets but the image ends after {t}",
                    offset=_PREFIX_TARGETS,
                    expected=t,
                    found=n_targets,
                )
            target, offset = _parse_target(body, offset, t)
            targets.append(target)
        if offset != body_end:
            raise SizeMismatchError(
                f"data after the last of the {n_targets} target(s) announced by bTargets",
                offset=offset,
                expected=f"the DFU suffix at offset {offset}",
                found=f"{body_end - offset} more bytes before the suffix",
            )
        return cls(
            tuple(targets),
            suffix.vendor_id,
            suffix.product_id,
            suffix.device_version,
            includes,
            suffix.crc,
        )

    @classmethod
    def from_path(cls, path: str | os.PathLike[str], *, verify_crc: bool = True) -> DfuSeFile:
        """Read and :meth:`parse` the file at ``path``."""
        return cls.parse(convert.read_file(path), verify_crc=verify_crc)

    # -------------------------------------------------------------- building

    def to_bytes(self) -> bytes:
        """Encode the file: prefix, targets with their elements, suffix with CRC.

        Headers are packed with precompiled :mod:`struct` codecs; the CRC runs over the
        pieces as they are made, and the output is joined once.
        """
        pack_element = _ELEMENT_PACK
        crc32 = zlib.crc32
        parts: list[bytes] = [b""]  # the prefix goes first, once its size is known
        body_size = wire.PREFIX.size
        for target in self.targets:
            elements = target.elements
            target_size = wire.ELEMENT.size * len(elements)
            for element in elements:
                target_size += len(element.data)
            parts.append(
                _TARGET_PACK(
                    wire.TARGET_SIGNATURE,
                    target.alt_setting,
                    target.named,
                    target.name_field,
                    target_size,
                    len(elements),
                )
            )
            for element in elements:
                data = element.data
                parts.append(pack_element(element.address, len(data)))
                parts.append(data)
            body_size += wire.TARGET.size + target_size
        image_size = body_size + (SUFFIX_LENGTH if self.size_includes_suffix else 0)
        if image_size >= _ADDRESS_LIMIT:
            raise ImageError(
                "file too large for DFUImageSize", expected="under 4 GiB", found=image_size
            )
        parts[0] = _PREFIX_PACK(
            wire.DFUSE_SIGNATURE, wire.DFUSE_VERSION, image_size, len(self.targets)
        )
        head = _suffix_head(self.device_version, self.product_id, self.vendor_id, DFU_VERSION_DFUSE)
        crc = 0
        for part in parts:
            crc = crc32(part, crc)
        parts.append(head)
        parts.append(_CRC.pack(crc32(head, crc) ^ 0xFFFFFFFF))
        return b"".join(parts)

    def build(self) -> bytes:
        """Deprecated: use :meth:`to_bytes` (the same bytes).

        Kept because the design's layer contract (DESIGN.md) names it; it warns and goes
        in a later release.
        """
        return _deprecated_build(self)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the file to ``path`` in the format its extension names, as
        :func:`dfuse.save` does: ``.dfu`` gets :meth:`to_bytes`; ``.hex``, ``.s19``, ...
        get the one target's data as records; any other extension a raw binary.

        Raises:
            ValueError: several targets to a format other than .dfu.
        """
        from dfuse.file.save import save

        save(self, path)

    # -------------------------------------------------------------- builders

    @classmethod
    def from_hex(
        cls,
        source: convert.Source,
        *,
        alt_setting: int = 0,
        name: str = "",
        vendor_id: int = _ANY,
        product_id: int = _ANY,
        device_version: int = _ANY,
    ) -> DfuSeFile:
        """A one-target file from Intel HEX (see :meth:`Target.from_hex`)."""
        target = Target.from_hex(source, alt_setting=alt_setting, name=name)
        return cls((target,), vendor_id, product_id, device_version)

    @classmethod
    def from_srec(
        cls,
        source: convert.Source,
        *,
        alt_setting: int = 0,
        name: str = "",
        vendor_id: int = _ANY,
        product_id: int = _ANY,
        device_version: int = _ANY,
    ) -> DfuSeFile:
        """A one-target file from Motorola S-records (see :meth:`Target.from_srec`)."""
        target = Target.from_srec(source, alt_setting=alt_setting, name=name)
        return cls((target,), vendor_id, product_id, device_version)

    @classmethod
    def from_bin(
        cls,
        data: Buffer | str | os.PathLike[str],
        *,
        address: int,
        alt_setting: int = 0,
        name: str = "",
        vendor_id: int = _ANY,
        product_id: int = _ANY,
        device_version: int = _ANY,
    ) -> DfuSeFile:
        """A one-target file holding ``data`` (bytes or a path) at ``address``."""
        target = Target.from_bin(data, address=address, alt_setting=alt_setting, name=name)
        return cls((target,), vendor_id, product_id, device_version)

    # -------------------------------------------------------------- access

    def target(self, alt_setting: int | None = None) -> Target:
        """The target for ``alt_setting`` (the only target when ``None``).

        Raises:
            KeyError: no target has that alternate setting.
            ValueError: ``None`` was given and the file has not exactly one target,
                or several targets share the alternate setting.
        """
        if alt_setting is None:
            if len(self.targets) != 1:
                raise ValueError(
                    f"the file has {len(self.targets)} targets: name an alt_setting "
                    f"({', '.join(str(t.alt_setting) for t in self.targets) or 'none'})"
                )
            return self.targets[0]
        matches = [t for t in self.targets if t.alt_setting == alt_setting]
        if not matches:
            raise KeyError(f"no target for alt setting {alt_setting}")
        if len(matches) > 1:
            raise ValueError(f"{len(matches)} targets share alt setting {alt_setting}")
        return matches[0]

    def to_hex(self, alt_setting: int | None = None, *, bytes_per_record: int = 32) -> str:
        """Intel HEX of one target (see :meth:`target` for ``alt_setting``)."""
        return self.target(alt_setting).to_hex(bytes_per_record=bytes_per_record)

    def to_srec(self, alt_setting: int | None = None, *, bytes_per_record: int = 32) -> str:
        """S-records of one target (see :meth:`target` for ``alt_setting``)."""
        return self.target(alt_setting).to_srec(bytes_per_record=bytes_per_record)

    def to_bin(self, alt_setting: int | None = None, *, fill: int = 0xFF) -> bytes:
        """Raw binary of one target, gaps filled with ``fill`` (see :meth:`Target.to_bin`)."""
        return self.target(alt_setting).to_bin(fill=fill)

    @property
    def size(self) -> int:
        """Total data bytes in all targets."""
        return sum(t.size for t in self.targets)

    # -------------------------------------------------------------- inspection

    def to_dict(self) -> dict[str, Any]:
        """JSON-able description of the file (for ``--json``; no data bytes)."""
        raw = self.to_bytes()
        computed = int.from_bytes(raw[-4:], "little")
        return {
            "format": "dfuse",
            "file_size": len(raw),
            "image_size": len(raw) - (0 if self.size_includes_suffix else SUFFIX_LENGTH),
            "image_size_includes_suffix": self.size_includes_suffix,
            "vendor_id": self.vendor_id,
            "product_id": self.product_id,
            "device_version": self.device_version,
            "dfu_version": DFU_VERSION_DFUSE,
            "crc": computed if self.stored_crc is None else self.stored_crc,
            "crc_computed": computed,
            "crc_ok": self.stored_crc is None or self.stored_crc == computed,
            "targets": [t.to_dict() for t in self.targets],
        }

    def summary(self) -> str:
        """Readable text, like DfuSe's File Manager and ``dfu-suffix -c`` show."""
        info = self.to_dict()
        convention = "with suffix" if self.size_includes_suffix else "without suffix, UM0391"
        lines = [
            f"DfuSe file v1, {len(self.targets)} target(s), {self.size} bytes of data",
            f"  file size     {info['file_size']} bytes",
            f"  DFUImageSize  {info['image_size']} ({convention})",
            f"  Vendor ID     {_hex_id(self.vendor_id)}",
            f"  Product ID    {_hex_id(self.product_id)}",
            f"  bcdDevice     {_hex_id(self.device_version)}",
            f"  bcdDFU        0x{DFU_VERSION_DFUSE:04X}",
            f"  CRC           {_crc_lines(self.stored_crc, info['crc_computed'])}",
        ]
        for i, target in enumerate(self.targets):
            lines.extend(target._describe(i))
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()


def _parse_target(body: memoryview, offset: int, index: int) -> tuple[Target, int]:
    """Decode target ``index`` at ``offset`` of ``body`` (the file without its suffix).

    The element headers are read with one precompiled ``struct`` call each; the
    elements are made without re-checking what was checked here.
    """
    body_end = len(body)
    where = f" of target {index}"
    wire.check(wire.TARGET, body, offset, where, "image (before the suffix)")
    _, alt, named, name_field, target_size, count = wire.TARGET.codec.unpack_from(body, offset)
    start = offset + wire.TARGET.size
    if target_size > body_end - start:
        raise TruncatedFileError(
            f"dwTargetSize{where} runs past the end of the image",
            offset=offset + _TARGET_SIZE,
            expected=f"at most {body_end - start} bytes before the suffix",
            found=target_size,
        )
    end = start + target_size
    header_size = wire.ELEMENT.size
    if count * header_size > target_size:
        raise SizeMismatchError(
            f"dwNbElements{where} does not fit dwTargetSize",
            offset=offset + _TARGET_COUNT,
            expected=f"at most {target_size // header_size} elements in {target_size} bytes",
            found=count,
        )
    elements: list[Element] = []
    append = elements.append
    unpack_header = _ELEMENT_UNPACK
    make = _element
    pos = start
    last_end = 0  # elements in address order need no sort for the overlap check
    in_order = True
    for e in range(count):
        if pos + header_size > end:
            wire.check(
                wire.ELEMENT, body[:end], pos, f" of element {e}{where}", f"dwTargetSize{where}"
            )
        address, size = unpack_header(body, pos)
        data_start = pos + header_size
        pos = data_start + size
        if pos > end:
            raise SizeMismatchError(
                f"dwElementSize of element {e}{where} runs past dwTargetSize",
                offset=data_start - 4,
                expected=f"at most {end - data_start} bytes",
                found=size,
            )
        if address + size > _ADDRESS_LIMIT:
            raise ImageError(
                f"element {e}{where} goes beyond 32-bit addresses",
                offset=data_start - header_size,
                expected=f"address + size <= 0x{_ADDRESS_LIMIT:X}",
                found=f"0x{address:08X} + {size}",
            )
        if size:
            if address < last_end:
                in_order = False
            last_end = address + size
        append(make(address, body[data_start:pos].tobytes()))
    if pos != end:
        raise SizeMismatchError(
            f"dwTargetSize{where} disagrees with its {count} element(s)",
            offset=offset + _TARGET_SIZE,
            expected=pos - start,
            found=target_size,
        )
    if not in_order:
        offsets: list[int] = []
        at = start
        for element in elements:
            offsets.append(at)
            at += header_size + len(element.data)
        _check_overlap(elements, where, offsets)
    target = object.__new__(Target)
    _set(target, "alt_setting", alt)
    _set(target, "name", _decode_name(name_field))
    _set(target, "elements", tuple(elements))
    _set(target, "name_field", name_field)
    _set(target, "named", named)
    return target, end


# ------------------------------------------------------------------ DfuFile


@dataclass(frozen=True, slots=True)
class DfuFile:
    """A plain DFU 1.1 file: a firmware payload followed by the 16-byte DFU suffix.

    Attributes:
        payload: the firmware bytes (everything before the suffix).
        vendor_id: idVendor (0xFFFF: any).
        product_id: idProduct (0xFFFF: any).
        device_version: bcdDevice (0xFFFF: any).
        dfu_version: bcdDFU (0x0100 for plain DFU 1.1; kept as found when parsing).
        stored_crc: the CRC read by :meth:`parse` (``None`` for a model); not part of equality.

    >>> f = DfuFile(b"firmware", vendor_id=0x0483, product_id=0xDF11)
    >>> DfuFile.parse(f.to_bytes()) == f
    True
    """

    payload: bytes
    vendor_id: int = _ANY
    product_id: int = _ANY
    device_version: int = _ANY
    dfu_version: int = DFU_VERSION_PLAIN
    stored_crc: int | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        payload: object = self.payload
        if not isinstance(payload, bytes):
            if not isinstance(payload, bytearray | memoryview):
                raise TypeError(f"DfuFile.payload must be bytes, got {type(payload).__name__}")
            object.__setattr__(self, "payload", bytes(payload))
        _check_u16("vendor_id", self.vendor_id)
        _check_u16("product_id", self.product_id)
        _check_u16("device_version", self.device_version)
        _check_u16("dfu_version", self.dfu_version)

    def __repr__(self) -> str:
        return (
            f"DfuFile(payload=<{len(self.payload)} bytes>, vendor_id=0x{self.vendor_id:04X}, "
            f"product_id=0x{self.product_id:04X}, device_version=0x{self.device_version:04X}, "
            f"dfu_version=0x{self.dfu_version:04X})"
        )

    @classmethod
    def parse(cls, data: Buffer, *, verify_crc: bool = True) -> DfuFile:
        """Decode a file with a DFU suffix; the payload is everything before it.

        Raises:
            TruncatedFileError: shorter than 16 bytes.
            SignatureError: "UFD" or bLength (16) is wrong.
            CrcMismatchError: the CRC is wrong and ``verify_crc`` is true.
        """
        mv = _view(data)
        suffix = _read_suffix(mv, verify_crc)
        return cls(
            bytes(mv[: len(mv) - SUFFIX_LENGTH]),
            suffix.vendor_id,
            suffix.product_id,
            suffix.device_version,
            suffix.dfu_version,
            suffix.crc,
        )

    @classmethod
    def from_path(cls, path: str | os.PathLike[str], *, verify_crc: bool = True) -> DfuFile:
        """Read and :meth:`parse` the file at ``path``."""
        return cls.parse(convert.read_file(path), verify_crc=verify_crc)

    def to_bytes(self) -> bytes:
        """The payload followed by the suffix and its CRC."""
        return self.payload + _suffix_bytes(
            self.payload, self.device_version, self.product_id, self.vendor_id, self.dfu_version
        )

    def build(self) -> bytes:
        """Deprecated: use :meth:`to_bytes` (the same bytes).

        Kept because the design's layer contract (DESIGN.md) names it; it warns and goes
        in a later release.
        """
        return _deprecated_build(self)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write :meth:`to_bytes` (payload and suffix) to ``path``.

        Raises:
            ValueError: ``path`` names a record format (``.hex``, ``.s19``, ...), which
                cannot hold a DFU suffix.
        """
        from dfuse.file.save import kind_for_path

        kind = kind_for_path(path)
        if kind in (convert.FileKind.IHEX, convert.FileKind.SREC):
            raise ValueError(
                f"{os.fspath(path)}: a plain DFU file (payload + suffix) cannot be written as"
                f" {kind.value} records; expected a path ending in .dfu or .bin"
            )
        Path(path).write_bytes(self.to_bytes())

    def to_dict(self) -> dict[str, Any]:
        """JSON-able description of the file (for ``--json``; no payload bytes)."""
        raw = self.to_bytes()
        computed = int.from_bytes(raw[-4:], "little")
        return {
            "format": "dfu",
            "file_size": len(raw),
            "payload_size": len(self.payload),
            "vendor_id": self.vendor_id,
            "product_id": self.product_id,
            "device_version": self.device_version,
            "dfu_version": self.dfu_version,
            "crc": computed if self.stored_crc is None else self.stored_crc,
            "crc_computed": computed,
            "crc_ok": self.stored_crc is None or self.stored_crc == computed,
        }

    def summary(self) -> str:
        """Readable text, like ``dfu-suffix -c`` shows."""
        info = self.to_dict()
        return "\n".join(
            [
                f"DFU file (suffix only), {len(self.payload)} bytes of payload",
                f"  file size     {info['file_size']} bytes",
                f"  Vendor ID     {_hex_id(self.vendor_id)}",
                f"  Product ID    {_hex_id(self.product_id)}",
                f"  bcdDevice     {_hex_id(self.device_version)}",
                f"  bcdDFU        0x{self.dfu_version:04X}",
                f"  Length        {SUFFIX_LENGTH}",
                f"  CRC           {_crc_lines(self.stored_crc, info['crc_computed'])}",
            ]
        )

    def __str__(self) -> str:
        return self.summary()
