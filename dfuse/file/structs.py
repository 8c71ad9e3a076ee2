"""The on-disk structures of DFU 1.1 and DfuSe (ST UM0391) files, as construct declarations.

Each declaration reads like the format's table; every field is little-endian::

    file   = DfuSePrefix, (TargetPrefix, (ElementHeader, data)*)*, DfuSuffix   (DfuSe)
    file   = payload, DfuSuffix                                               (plain DFU 1.1)

The typed model (:mod:`dfuse.file.model`) is what users touch; construct ``Container``
objects never leave this package. :func:`unpack` checks the length and the constant
fields itself, so malformed data raises a precise :class:`~dfuse.errors.FileFormatError`
(never a construct exception).
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from typing import Any

from construct import Bytes, Const, FormatField, Int8ul, Int16ul, Int32ul, Renamed, Struct

from dfuse.errors import SignatureError, TruncatedFileError

__all__ = [
    "DFUSE_SIGNATURE",
    "DFUSE_VERSION",
    "DFU_SUFFIX_SIGNATURE",
    "DFU_VERSION_DFUSE",
    "DFU_VERSION_PLAIN",
    "NAME_FIELD_SIZE",
    "SUFFIX_LENGTH",
    "TARGET_SIGNATURE",
    "DfuSePrefix",
    "DfuSuffix",
    "ElementHeader",
    "StructInfo",
    "TargetPrefix",
    "dfu_crc",
    "pack",
    "unpack",
]

DFUSE_SIGNATURE = b"DfuSe"
"""szSignature of the DfuSe prefix."""
DFUSE_VERSION = 1
"""bVersion of the DfuSe prefix (the only version UM0391 defines)."""
TARGET_SIGNATURE = b"Target"
"""szSignature of a target prefix."""
DFU_SUFFIX_SIGNATURE = b"UFD"
"""ucDfuSignature as stored in file order ("DFU" reversed)."""
SUFFIX_LENGTH = 16
"""bLength of the DFU suffix, and its size in bytes."""
DFU_VERSION_PLAIN = 0x0100
"""bcdDFU of a plain DFU 1.1 file."""
DFU_VERSION_DFUSE = 0x011A
"""bcdDFU of a DfuSe file."""
NAME_FIELD_SIZE = 255
"""Size of szTargetName."""

# ------------------------------------------------------------------ the tables

#: The DFU suffix: the last 16 bytes of every .dfu file (DFU 1.1 appendix B).
DfuSuffix = Struct(
    "bcdDevice" / Int16ul,  # firmware version, 0xFFFF = any
    "idProduct" / Int16ul,  # 0xFFFF = any
    "idVendor" / Int16ul,  # 0xFFFF = any
    "bcdDFU" / Int16ul,  # 0x0100 plain DFU, 0x011A DfuSe
    "ucDfuSignature" / Const(DFU_SUFFIX_SIGNATURE),
    "bLength" / Const(SUFFIX_LENGTH, Int8ul),
    "dwCRC" / Int32ul,  # zlib.crc32(file[:-4]) ^ 0xFFFFFFFF
)

#: The DfuSe prefix: the first 11 bytes of a DfuSe file (UM0391 §2.1).
DfuSePrefix = Struct(
    "szSignature" / Const(DFUSE_SIGNATURE),
    "bVersion" / Const(DFUSE_VERSION, Int8ul),
    "DFUImageSize" / Int32ul,  # file length without (UM0391) or with (dfuse-pack.py) suffix
    "bTargets" / Int8ul,
)

#: A target prefix, 274 bytes, followed by its elements (UM0391 §2.2).
TargetPrefix = Struct(
    "szSignature" / Const(TARGET_SIGNATURE),
    "bAlternateSetting" / Int8ul,
    "bTargetNamed" / Int32ul,  # 0 or 1
    "szTargetName" / Bytes(NAME_FIELD_SIZE),  # NUL-padded
    "dwTargetSize" / Int32ul,  # all elements, headers included
    "dwNbElements" / Int32ul,
)

#: An element header, 8 bytes, followed by dwElementSize bytes of data (UM0391 §2.3).
ElementHeader = Struct(
    "dwElementAddress" / Int32ul,
    "dwElementSize" / Int32ul,
)


# ------------------------------------------------------------------ checked access


@dataclass(frozen=True, slots=True)
class StructInfo:
    """What :func:`unpack` needs to know about one declaration, derived from it once.

    Parsing goes through a :class:`struct.Struct` built from the declaration's own
    fields (a few times faster than construct for these flat records); building goes
    through construct. ``tests/file/test_structs.py`` checks that both agree.

    Attributes:
        name: a human name for messages ("DfuSe prefix", ...).
        size: the fixed size in bytes.
        names: the field names, in order.
        constants: ``(offset, field name, expected bytes)`` for every ``Const`` field.
        codec: the equivalent :class:`struct.Struct`.
    """

    name: str
    size: int
    names: tuple[str, ...]
    constants: tuple[tuple[int, str, bytes], ...]
    codec: struct.Struct

    @classmethod
    def of(cls, name: str, declaration: Any) -> StructInfo:
        """Describe ``declaration``, a flat construct ``Struct`` of fixed-size fields."""
        names: list[str] = []
        constants: list[tuple[int, str, bytes]] = []
        formats: list[str] = []
        offset = 0
        for sub in declaration.subcons:
            inner = sub.subcon if isinstance(sub, Renamed) else sub
            if isinstance(inner, Const):
                constants.append((offset, str(sub.name), bytes(inner.subcon.build(inner.value))))
                inner = inner.subcon
            if isinstance(inner, FormatField):
                formats.append(str(inner.fmtstr)[1:])
            elif isinstance(inner, Bytes):
                formats.append(f"{inner.length}s")
            else:  # pragma: no cover - a declaration error, caught at import
                raise TypeError(f"unsupported field {sub!r} in {name}")
            names.append(str(sub.name))
            offset += sub.sizeof()
        codec = struct.Struct("<" + "".join(formats))
        if codec.size != declaration.sizeof():  # pragma: no cover - a declaration error
            raise TypeError(f"{name}: struct format disagrees with the declaration")
        return cls(name, codec.size, tuple(names), tuple(constants), codec)


SUFFIX = StructInfo.of("DFU suffix", DfuSuffix)
"""Checked-access info for :data:`DfuSuffix`."""
PREFIX = StructInfo.of("DfuSe prefix", DfuSePrefix)
"""Checked-access info for :data:`DfuSePrefix`."""
TARGET = StructInfo.of("target prefix", TargetPrefix)
"""Checked-access info for :data:`TargetPrefix`."""
ELEMENT = StructInfo.of("element header", ElementHeader)
"""Checked-access info for :data:`ElementHeader`."""


def unpack(
    info: StructInfo, data: memoryview, offset: int, where: str = "", within: str = "file"
) -> dict[str, Any]:
    """Decode the structure described by ``info`` at ``offset`` of ``data``.

    Returns the fields as a plain dict (construct's ``Container`` stays here).
    ``where`` qualifies the structure ("of target 2") and ``within`` names what
    ``data`` is ("file", "image") in messages.

    Raises:
        TruncatedFileError: fewer than ``info.size`` bytes remain.
        SignatureError: a constant field (signature, version, length) is wrong.
    """
    label = f"{info.name}{where}"
    end = offset + info.size
    if end > len(data):
        raise TruncatedFileError(
            f"{within} ends inside the {label}",
            offset=offset,
            expected=f"{info.size} bytes",
            found=f"{max(len(data) - offset, 0)} bytes",
        )
    for rel, field, expected in info.constants:
        found = bytes(data[offset + rel : offset + rel + len(expected)])
        if found != expected:
            raise SignatureError(
                f"bad {field} in the {label}",
                offset=offset + rel,
                expected=expected,
                found=found,
            )
    return dict(zip(info.names, info.codec.unpack_from(data, offset), strict=True))


def pack(declaration: Any, **fields: Any) -> bytes:
    """Encode one structure from its fields (constant fields fill themselves in)."""
    return bytes(declaration.build(fields))


def dfu_crc(data: bytes | bytearray | memoryview) -> int:
    """The DFU suffix CRC of ``data`` (everything but the last four bytes of a file).

    It is the reflected CRC-32 started at 0xFFFFFFFF without final inversion, as
    dfu-util computes it: ``zlib.crc32(data) ^ 0xFFFFFFFF``.
    """
    return zlib.crc32(data) ^ 0xFFFFFFFF
