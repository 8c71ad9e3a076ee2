"""The .dfu file codec (DfuSe and plain DFU 1.1) and conversions from/to hex, s19, bin.

>>> from dfuse.file import DfuSeFile, Target, Element
>>> f = DfuSeFile([Target(0, "Internal Flash", [Element(0x08000000, b"\\x00" * 8)])])
>>> DfuSeFile.parse(f.to_bytes()) == f
True

See ``docs/file-format.md``.
"""

from __future__ import annotations

from dfuse.file.convert import FileKind, detect_kind
from dfuse.file.load import load, load_bytes
from dfuse.file.model import DfuFile, DfuSeFile, Element, Target
from dfuse.file.save import kind_for_path, save

__all__ = [
    "DfuFile",
    "DfuSeFile",
    "Element",
    "FileKind",
    "Target",
    "detect_kind",
    "kind_for_path",
    "load",
    "load_bytes",
    "save",
]
