"""Write memory contents to a file whose extension names the format (the inverse of ``load``)."""

from __future__ import annotations

import os
from pathlib import Path

from dfuse.file.convert import FileKind
from dfuse.file.model import DfuSeFile, Target

__all__ = ["kind_for_path", "save"]

_ANY = 0xFFFF

_KINDS: dict[str, FileKind] = {
    ".dfu": FileKind.DFUSE,
    ".hex": FileKind.IHEX,
    ".ihex": FileKind.IHEX,
    ".ihx": FileKind.IHEX,
    ".s19": FileKind.SREC,
    ".s28": FileKind.SREC,
    ".s37": FileKind.SREC,
    ".srec": FileKind.SREC,
    ".mot": FileKind.SREC,
}


def kind_for_path(path: str | os.PathLike[str]) -> FileKind:
    """The format :func:`save` writes for ``path``: by extension, raw binary for any other.

    >>> kind_for_path("backup.s19")
    <FileKind.SREC: 'srec'>
    >>> kind_for_path("flash.img")
    <FileKind.BINARY: 'binary'>
    """
    return _KINDS.get(Path(path).suffix.lower(), FileKind.BINARY)


def save(
    image: Target | DfuSeFile,
    path: str | os.PathLike[str],
    *,
    vendor_id: int = _ANY,
    product_id: int = _ANY,
    device_version: int = _ANY,
) -> FileKind:
    """Write ``image`` to ``path`` in the format its extension names; return that format.

    ``.dfu`` → a DfuSe file (a lone :class:`Target` is wrapped with the given suffix IDs;
    a :class:`DfuSeFile` keeps its own), ``.hex``/``.ihex``/``.ihx`` → Intel HEX,
    ``.s19``/``.srec``/``.mot``/``.s28``/``.s37`` → S-records, anything else → a raw binary
    from the lowest address (gaps filled with 0xFF). :func:`dfuse.file.load` reads every
    one of them back (a raw binary needs its ``address``).

    Raises:
        ValueError: a :class:`DfuSeFile` with several targets, to a format other than .dfu
            (only a .dfu file holds several alternate settings).

    >>> import tempfile, pathlib
    >>> from dfuse.file import Element, load
    >>> t = Target(0, "Internal Flash", [Element(0x08000000, b"\\x01\\x02")])
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "readback.hex"
    >>> save(t, out)
    <FileKind.IHEX: 'ihex'>
    >>> load(out).targets[0].segments() == t.segments()
    True
    """
    kind = kind_for_path(path)
    if kind is FileKind.DFUSE:
        if isinstance(image, Target):
            image = DfuSeFile((image,), vendor_id, product_id, device_version)
        Path(path).write_bytes(image.to_bytes())
        return kind
    if isinstance(image, DfuSeFile):
        if len(image.targets) != 1:
            raise ValueError(
                f"{os.fspath(path)}: {len(image.targets)} targets (alternate settings) fit"
                " only in a .dfu file; expected a path ending in .dfu"
            )
        image = image.targets[0]
    if kind is FileKind.IHEX:
        Path(path).write_text(image.to_hex())
    elif kind is FileKind.SREC:
        Path(path).write_text(image.to_srec())
    else:
        Path(path).write_bytes(image.to_bin())
    return kind
