"""The on-disk structures of DFU 1.1 and DfuSe (ST UM0391) files, as construct declarations.

Each declaration reads like the format's table; every field is little-endian::

    file   = DfuSePrefix, (TargetPrefix, (ElementHeader, data)*)*, DfuSuffix   (DfuSe)
    file   = payload, DfuSuffix                                               (plain DFU 1.1)

These declarations are the documented format. The codec itself runs on the precompiled
:class:`struct.Struct` records of :mod:`dfuse.file.wire` (so ``import dfuse`` does not load
construct); :func:`info_of` derives a record from a declaration and
``tests/file/test_structs.py`` checks that it equals the one in :mod:`dfuse.file.wire`.
"""

from __future__ import annotations

from typing import Any

from construct import Bytes, Const, FormatField, Int8ul, Int16ul, Int32ul, Renamed, Struct

from dfuse.file.wire import (
    DFU_SUFFIX_SIGNATURE,
    DFU_VERSION_DFUSE,
    DFU_VERSION_PLAIN,
    DFUSE_SIGNATURE,
    DFUSE_VERSION,
    ELEMENT,
    NAME_FIELD_SIZE,
    PREFIX,
    SUFFIX,
    SUFFIX_LENGTH,
    TARGET,
    TARGET_SIGNATURE,
    StructInfo,
    dfu_crc,
    unpack,
)

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
    "DfuSePrefix",
    "DfuSuffix",
    "ElementHeader",
    "StructInfo",
    "TargetPrefix",
    "dfu_crc",
    "info_of",
    "pack",
    "unpack",
]

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


# ------------------------------------------------------------------ derived records


def info_of(name: str, declaration: Any) -> StructInfo:
    """The :class:`~dfuse.file.wire.StructInfo` a flat construct ``Struct`` of fixed-size
    fields describes (its field names, ``struct`` format and constant fields)."""
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
        else:
            raise TypeError(f"unsupported field {sub!r} in {name}")
        names.append(str(sub.name))
        offset += sub.sizeof()
    info = StructInfo(name, tuple(names), "<" + "".join(formats), tuple(constants))
    if info.size != declaration.sizeof():
        raise TypeError(f"{name}: struct format disagrees with the declaration")
    return info


def pack(declaration: Any, **fields: Any) -> bytes:
    """Encode one structure from its fields through construct (constant fields fill
    themselves in). The codec uses :mod:`dfuse.file.wire`; this is for tests and tools."""
    return bytes(declaration.build(fields))
