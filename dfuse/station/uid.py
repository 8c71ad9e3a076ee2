"""Where a part keeps its 96-bit unique ID, and whether its ROM bootloader lets DFU read it.

The facts come from the part database (:mod:`dfuse.parts`): a device identified as a part
(:func:`dfuse.parts.identify_info`, by its USB identity and alt strings) is named by the
part's row (``"stm32f411xe"``), and its unique ID lies at the row's ``uid_address``. A
``uid`` stamp reads it through the first DFU alternate setting whose memory map covers
those 12 bytes with read access; where none does, the stamp is refused before anything
is written, naming the part, the address and the reason.

No ROM row in the database today lists a memory that covers its unique ID (the F4 ROM's
alternate settings are internal flash, option bytes at 0x1FFFC000, OTP 0x1FFF7800-
0x1FFF7A0F and the device feature; an UPLOAD at 0x1FFF7A10 is reported to fail on an
STM32F40x: "Can you read the device electronic signature via DFU mode?", ST community,
2013-04-22), so the stamp is refused on every one of them; a row that gains such an alt
(or a device whose alt strings list one) gets it without a code change. The ROM derives
its USB serial string from the UID (F2/F4: libopencm3 issue #760): stamp ``serial``.

:data:`UID_LOCATIONS` keeps locations by a name the database does not have (``"STM32F4"``,
the family name this module used before the database).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from dfuse.layout import Access, MemoryLayout
from dfuse.parts import identify_info, parts_by_name
from dfuse.station.stamps import UID_SIZE, StampError
from dfuse.transport.base import DeviceInfo

__all__ = ["UID_LOCATIONS", "UidLocation", "part_name", "uid_location", "uid_readable"]


#: Families whose ROM derives its USB serial string from the unique ID (libopencm3 #760).
_SERIAL_FROM_UID = ("STM32F2", "STM32F4")


@dataclass(frozen=True, slots=True)
class UidLocation:
    """A part's unique ID: address and size, and whether the ROM's DFU exposes it.

    Attributes:
        address: where the ID is in the part's memory map.
        size: its size in bytes (12 for 96 bits).
        via_dfu: whether an UPLOAD from the ROM bootloader can read it.
        source: where the facts come from.
    """

    address: int
    size: int
    via_dfu: bool
    source: str


#: Unique-ID locations by a name the part database does not have (the family names of
#: dfuse before the database); a database part's own row comes first.
UID_LOCATIONS: dict[str, UidLocation] = {
    "STM32F4": UidLocation(
        0x1FFF7A10,
        UID_SIZE,
        via_dfu=False,
        source="RM0383 §24.2; no DFU alternate setting covers it (ST community, 2013)",
    ),
}


def part_name(info: DeviceInfo) -> str:
    """The part a DFU device is, for the flash record and the UID lookup: the name of the
    part database row it is identified as (``"stm32f411xe"``), else its USB identity
    (``"0483:df11"``)."""
    part = identify_info(info)
    return part.name if part is not None else f"{info.vid:04x}:{info.pid:04x}"


def uid_location(part: str) -> UidLocation | None:
    """The unique-ID location of ``part`` (a :func:`part_name`: a part database name or
    alias, or a name of :data:`UID_LOCATIONS`), ``None`` if not known. ``via_dfu`` says
    whether the row's own alternate settings cover it."""
    row = parts_by_name().get(part.strip().lower())
    if row is not None:
        if row.uid_address is None:
            return None
        address = row.uid_address
        covered = any(
            region.address <= address
            and address + UID_SIZE <= region.end
            and all(g.readable for g in region.groups)
            for alt in row.alts
            for region in alt.regions
        )
        refs = ", ".join(row.references[:2])
        return UidLocation(
            address, UID_SIZE, via_dfu=covered, source=f"part {row.name}: {refs}; {row.source}"
        )
    if part in UID_LOCATIONS:
        return UID_LOCATIONS[part]
    return UID_LOCATIONS.get(part.split(" ", 1)[0])


def uid_readable(part: str, layouts: Sequence[tuple[int, MemoryLayout]]) -> tuple[int, int]:
    """``(alt, address)`` to read the unique ID of ``part`` from, given the device's
    ``(alternate setting, memory layout)`` pairs, or :class:`StampError` saying why a
    ``uid`` stamp cannot be made (before anything is written)."""
    where = uid_location(part)
    if where is None:
        raise StampError(
            f"the unique-ID location of {part} is not known: a uid stamp cannot be made",
            value=part,
            expected="a part of the part database with a unique ID (dfuse sim parts)",
        )
    for alt, layout in layouts:
        if layout.allows(where.address, where.size, Access.READ):
            return alt, where.address
    reason = (
        "its ROM bootloader does not expose it through DFU"
        if not where.via_dfu
        else "no alternate setting of this device covers it"
    )
    row = parts_by_name().get(part.strip().lower())
    family = row.family if row is not None else part.split(" ", 1)[0]
    derived = " (the F2/F4 ROMs derive it from the unique ID)" if family in _SERIAL_FROM_UID else ""
    raise StampError(
        f"{part} keeps its unique ID at 0x{where.address:08X}, but {reason} ({where.source});"
        f" stamp 'serial' instead{derived}",
        value="uid",
        expected="serial, counter, sha256 or time on this part",
    )
