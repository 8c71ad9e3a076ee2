"""The part database: every STM32/GD32 DFU ROM bootloader dfuse knows, as data.

One row per part (``dfuse/parts/data/*.toml``, one file per family, as probe-rs keeps its
chip families): USB identity, every alt string exactly as the ROM reports it (observed or
unconfirmed, each with its evidence), the sector map as numbers next to each string, the
flash's programming unit and erase/program times (typ/max, estimates marked), option-byte
exposure, the unique-ID address and the quirks, each with evidence. The host and the
simulator both read these rows: they share facts, never logic.

Why TOML files and a typed loader rather than Python literals: the rows are reviewed and
extended by people who read datasheets, not code (probe-rs's YAML and fwupd's quirk files
are the model); a file per family diffs cleanly; and the loader's schema check refuses an
unknown field or a missing citation, which a literal would carry silently.

>>> part = get("stm32f411")
>>> part.name, part.usb.transfer_size, part.flash.program_unit
('stm32f411xe', 2048, 1)
>>> part.alts[0].string
'@Internal Flash  /0x08000000/04*016Kg,01*064Kg,03*128Kg'
>>> identify(0x0483, 0xDF11, part.alt_strings) is part
True
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from importlib import resources
from typing import Protocol

from dfuse.errors import PartDataError
from dfuse.parts.schema import (
    AltSetting,
    Bank,
    Duration,
    EraseTime,
    Flash,
    MassEraseCommand,
    MemoryKind,
    OptionBytesSpec,
    Part,
    PollTimeouts,
    Quirks,
    SectorGroup,
    SectorRun,
    Usb,
    load_text,
)

__all__ = [
    "AltSetting",
    "Bank",
    "Duration",
    "EraseTime",
    "Flash",
    "MassEraseCommand",
    "MemoryKind",
    "OptionBytesSpec",
    "Part",
    "PartDataError",
    "PollTimeouts",
    "Quirks",
    "SectorGroup",
    "SectorRun",
    "Usb",
    "all_parts",
    "get",
    "identify",
    "identify_info",
    "names",
    "parts_by_name",
    "rom_version",
    "variants",
]


@functools.cache
def all_parts() -> tuple[Part, ...]:
    """Every part row, sorted by name (loaded once, on first use; the rows are frozen)."""
    found: list[Part] = []
    data = resources.files("dfuse.parts") / "data"
    for entry in sorted(data.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".toml"):
            found.extend(load_text(entry.read_text(encoding="utf-8"), f"parts/data/{entry.name}"))
    seen: dict[str, str] = {}
    for part in found:
        for name in part.names:
            if name in seen:
                raise PartDataError(
                    f"name {name!r} is used by {seen[name]} too", source=part.source, part=part.name
                )
            seen[name] = part.name
    for part in found:
        if part.variant_of is not None and part.variant_of not in seen:
            raise PartDataError(
                f"variant_of names no part: {part.variant_of!r}", source=part.source, part=part.name
            )
    return tuple(sorted(found, key=lambda p: p.name))


@functools.cache
def parts_by_name() -> Mapping[str, Part]:
    """Every part under its name and each of its aliases."""
    return {name: part for part in all_parts() for name in part.names}


def names() -> tuple[str, ...]:
    """Every name and alias a part can be selected by, sorted."""
    return tuple(sorted(parts_by_name()))


def get(name: str) -> Part:
    """The part called ``name`` (case-insensitive; aliases too).

    Raises:
        KeyError: no part has that name (the message lists the known ones).
    """
    part = parts_by_name().get(name.strip().lower())
    if part is None:
        raise KeyError(f"no part {name!r}; known: {', '.join(names())}")
    return part


def variants(name: str) -> tuple[Part, ...]:
    """The part called ``name`` and every other ROM version of it (rows whose
    ``variant_of`` is its main row), the main row first.

    >>> [p.name for p in variants("stm32f407")]
    ['stm32f407', 'stm32f407_v21']

    Raises:
        KeyError: no part has that name.
    """
    part = get(name)
    main = get(part.variant_of) if part.variant_of is not None else part
    return (main, *(p for p in all_parts() if p.variant_of == main.name))


def rom_version(name: str, bcd_device: int) -> Part | None:
    """The ROM version of part ``name`` that reports ``bcd_device`` (the main row or one
    of its :func:`variants`), ``None`` if no row records that bcdDevice.

    >>> rom_version("stm32f407", 0x2100).name
    'stm32f407_v21'

    Raises:
        KeyError: no part has that name.
    """
    return next((p for p in variants(name) if p.usb.bcd_device == bcd_device), None)


def identify(
    vid: int,
    pid: int,
    alt_strings: Sequence[str | None],
    *,
    bcd_device: int | None = None,
) -> Part | None:
    """The part a device is, from its USB identity and its alt strings, or ``None``.

    A part matches when VID:PID are its ROM's and the device reports exactly the part's alt
    strings, in order (spaces included). When several rows share those (a part whose
    strings are unconfirmed may equal a sibling's), ``bcd_device`` decides where a row
    records it; still ambiguous: ``None`` (an unknown device works from its alt strings).
    """
    strings = tuple(s or "" for s in alt_strings)
    matches = [
        p
        for p in all_parts()
        if p.identifiable and (p.usb.vid, p.usb.pid) == (vid, pid) and p.alt_strings == strings
    ]
    if len(matches) > 1 and bcd_device is not None:
        exact = [p for p in matches if p.usb.bcd_device == bcd_device]
        matches = exact or matches
    return matches[0] if len(matches) == 1 else None


class _AltLike(Protocol):
    @property
    def name(self) -> str | None: ...


class _InfoLike(Protocol):
    @property
    def vid(self) -> int: ...
    @property
    def pid(self) -> int: ...
    @property
    def bcd_device(self) -> int: ...
    @property
    def alt_settings(self) -> Iterable[_AltLike]: ...


def identify_info(info: _InfoLike) -> Part | None:
    """:func:`identify` for a :class:`dfuse.transport.DeviceInfo` (or anything with
    ``vid``, ``pid``, ``bcd_device`` and ``alt_settings`` whose items have ``name``)."""
    return identify(
        info.vid,
        info.pid,
        [a.name for a in info.alt_settings],
        bcd_device=info.bcd_device,
    )
