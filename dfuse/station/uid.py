"""Where a part keeps its 96-bit unique ID, and whether its ROM bootloader lets DFU read it.

The one place the ``uid`` stamp looks the location up (when the part database lands,
:data:`UID_LOCATIONS` becomes a read of its UID column).

Facts:

* STM32F4 (F401/F405/F407/F411/F446...): the unique ID is 12 bytes at 0x1FFF7A10
  (RM0383 §24.2 for the F411; RM0090 §39.1 and RM0368 §24.2 give the same address).
  The ROM's DFU alternate settings list no memory that covers it (internal flash,
  option bytes at 0x1FFFC000, OTP 0x1FFF7800-0x1FFF7A0F, device feature), and an
  UPLOAD there is reported to fail on an STM32F40x ("Can you read the device electronic
  signature via DFU mode?", ST community, 2013-04-22). So DFU cannot read it: the
  ``uid`` stamp is refused on these parts. The ROM derives its USB serial string from
  the UID (F2/F4: UID0+UID2 as 8 hex digits, then the upper 16 bits of UID1; libopencm3
  issue #760), so stamp ``serial`` instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from dfuse.layout import Access, MemoryLayout
from dfuse.station.stamps import UID_SIZE, StampError
from dfuse.transport.base import DeviceInfo

__all__ = ["UID_LOCATIONS", "UidLocation", "part_name", "uid_location", "uid_readable"]

_ST_DFU = (0x0483, 0xDF11)
_F4_OPTION_BYTES = 0x1FFFC000


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


#: The unique-ID location by part family (see the module documentation for evidence).
UID_LOCATIONS: dict[str, UidLocation] = {
    "STM32F4": UidLocation(
        0x1FFF7A10,
        UID_SIZE,
        via_dfu=False,
        source="RM0383 §24.2; no DFU alternate setting covers it (ST community, 2013)",
    ),
}


def _layouts(info: DeviceInfo) -> list[MemoryLayout]:
    return [alt.layout for alt in info.alt_settings if alt.layout is not None]


def part_name(info: DeviceInfo) -> str:
    """The part (family) of a DFU device, for the flash record and the UID lookup.

    An ST ROM bootloader (0483:df11) with 16 option bytes at 0x1FFFC000 is an STM32F4;
    its first memory's size is added (``"STM32F4 512K"``). Another device is named by
    its USB identity (``"0483:df11"``).
    """
    layouts = _layouts(info)
    if (info.vid, info.pid) == _ST_DFU and any(
        lay.address == _F4_OPTION_BYTES and lay.size == 16 for lay in layouts
    ):
        flash = layouts[0].size // 1024 if layouts else 0
        return f"STM32F4 {flash}K"
    return f"{info.vid:04x}:{info.pid:04x}"


def uid_location(part: str) -> UidLocation | None:
    """The unique-ID location of ``part`` (a :func:`part_name`), if known."""
    family = part.split(" ", 1)[0]
    return UID_LOCATIONS.get(family)


def uid_readable(part: str, layouts: Sequence[tuple[int, MemoryLayout]]) -> tuple[int, int]:
    """``(alt, address)`` to read the unique ID of ``part`` from, given the device's
    ``(alternate setting, memory layout)`` pairs, or :class:`StampError` saying why a
    ``uid`` stamp cannot be made (before anything is written)."""
    where = uid_location(part)
    if where is None:
        raise StampError(
            f"the unique-ID location of {part} is not known: a uid stamp cannot be made",
            value=part,
            expected="a part with a known unique-ID location (e.g. STM32F4)",
        )
    for alt, layout in layouts:
        if layout.allows(where.address, where.size, Access.READ):
            return alt, where.address
    reason = (
        "its ROM bootloader does not expose it through DFU"
        if not where.via_dfu
        else "no alternate setting of this device covers it"
    )
    raise StampError(
        f"{part} keeps its unique ID at 0x{where.address:08X}, but {reason} ({where.source});"
        " stamp 'serial' instead (the ROM derives it from the unique ID)",
        value="uid",
        expected="serial, counter, sha256 or time on this part",
    )
