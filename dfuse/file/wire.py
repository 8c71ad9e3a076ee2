"""The DFU 1.1 / DfuSe records as precompiled :class:`struct.Struct` codecs (no construct).

:mod:`dfuse.file.structs` declares the same records with construct, as the format's table
(the documentation); this module is what the codec runs: parsing and building go through
these precompiled structs, so ``import dfuse`` does not load construct and no intermediate
object is built per field. ``tests/file/test_structs.py`` derives each :class:`StructInfo`
from its construct declaration and checks that both agree field by field.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field
from typing import Any

from dfuse.errors import SignatureError, TruncatedFileError

__all__ = [
    "DFUSE_SIGNATURE",
    "DFUSE_VERSION",
    "DFU_SUFFIX_SIGNATURE",
    "DFU_VERSION_DFUSE",
    "DFU_VERSION_PLAIN",
    "ELEMENT",
    "NAME_FIELD_SIZE",
    "PREFIX",
    "SUFFIX",
    "SUFFIX_LENGTH",
    "TARGET",
    "TARGET_SIGNATURE",
    "StructInfo",
    "dfu_crc",
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


@dataclass(frozen=True, slots=True)
class StructInfo:
    """One flat, fixed-size record: its fields, constant fields and precompiled codec.

    Attributes:
        name: a human name for messages ("DfuSe prefix", ...).
        names: the field names, in order.
        format: the :mod:`struct` format (little-endian).
        constants: ``(offset, field name, expected bytes)`` for every constant field.
        codec: ``struct.Struct(format)``.
    """

    name: str
    names: tuple[str, ...]
    format: str
    constants: tuple[tuple[int, str, bytes], ...] = ()
    codec: struct.Struct = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "codec", struct.Struct(self.format))

    @property
    def size(self) -> int:
        """The record's size in bytes."""
        return self.codec.size


SUFFIX = StructInfo(
    "DFU suffix",
    ("bcdDevice", "idProduct", "idVendor", "bcdDFU", "ucDfuSignature", "bLength", "dwCRC"),
    "<HHHH3sBL",
    ((8, "ucDfuSignature", DFU_SUFFIX_SIGNATURE), (11, "bLength", bytes([SUFFIX_LENGTH]))),
)
"""The DFU suffix: the last 16 bytes of every .dfu file (DFU 1.1 appendix B)."""
PREFIX = StructInfo(
    "DfuSe prefix",
    ("szSignature", "bVersion", "DFUImageSize", "bTargets"),
    "<5sBLB",
    ((0, "szSignature", DFUSE_SIGNATURE), (5, "bVersion", bytes([DFUSE_VERSION]))),
)
"""The DfuSe prefix: the first 11 bytes of a DfuSe file (UM0391 §2.1)."""
TARGET = StructInfo(
    "target prefix",
    (
        "szSignature",
        "bAlternateSetting",
        "bTargetNamed",
        "szTargetName",
        "dwTargetSize",
        "dwNbElements",
    ),
    f"<6sBL{NAME_FIELD_SIZE}sLL",
    ((0, "szSignature", TARGET_SIGNATURE),),
)
"""A target prefix, 274 bytes, followed by its elements (UM0391 §2.2)."""
ELEMENT = StructInfo("element header", ("dwElementAddress", "dwElementSize"), "<LL")
"""An element header, 8 bytes, followed by dwElementSize bytes of data (UM0391 §2.3)."""


def unpack(
    info: StructInfo,
    data: bytes | bytearray | memoryview,
    offset: int,
    where: str = "",
    within: str = "file",
) -> dict[str, Any]:
    """Decode the record described by ``info`` at ``offset`` of ``data``, as a dict.

    ``where`` qualifies the record ("of target 2") and ``within`` names what ``data`` is
    ("file", "image") in messages.

    Raises:
        TruncatedFileError: fewer than ``info.size`` bytes remain.
        SignatureError: a constant field (signature, version, length) is wrong.
    """
    check(info, data, offset, where, within)
    return dict(zip(info.names, info.codec.unpack_from(data, offset), strict=True))


def check(
    info: StructInfo,
    data: bytes | bytearray | memoryview,
    offset: int,
    where: str = "",
    within: str = "file",
) -> None:
    """Raise what :func:`unpack` raises for a record that is cut short or has a bad constant."""
    label = f"{info.name}{where}"
    if offset + info.size > len(data):
        raise TruncatedFileError(
            f"{within} ends inside the {label}",
            offset=offset,
            expected=f"{info.size} bytes",
            found=f"{max(len(data) - offset, 0)} bytes",
        )
    for rel, name, expected in info.constants:
        found = bytes(data[offset + rel : offset + rel + len(expected)])
        if found != expected:
            raise SignatureError(
                f"bad {name} in the {label}", offset=offset + rel, expected=expected, found=found
            )


def dfu_crc(data: bytes | bytearray | memoryview) -> int:
    """The DFU suffix CRC of ``data`` (everything but the last four bytes of a file).

    It is the reflected CRC-32 started at 0xFFFFFFFF without final inversion, as
    dfu-util computes it: ``zlib.crc32(data) ^ 0xFFFFFFFF``.
    """
    return zlib.crc32(data) ^ 0xFFFFFFFF
