"""Simulated USB DFU devices that plug in under pyusb.

The ROM bootloader of every part in :mod:`dfuse.parts` (:func:`board`, one generic
:class:`RomBootloader` built from the part's row; :data:`PARTS` maps names to rows), the
STM32F411 (:class:`Stm32F411`, the F411 row's board), an application with the DFU
run-time interface (:class:`Stm32F411App`) and a plain DFU 1.1 device
(:class:`PlainDfuDevice`), hosted by :class:`SimBackend`, a pyusb backend::

    import usb.core
    from dfuse.sim import SimBackend, Stm32F411

    backend = SimBackend([Stm32F411(serial="3276347F3034")])
    dev = usb.core.find(idVendor=0x0483, idProduct=0xDF11, backend=backend)

Time is virtual by default (``backend.clock``): erases and writes take their
datasheet durations on the clock, nothing sleeps. Faults are injected by schedule
(:mod:`dfuse.sim.faults`). See docs/simulator.md.
"""

from collections.abc import Mapping
from typing import Any

from dfuse.clock import RealClock, VirtualClock
from dfuse.parts import Part, parts_by_name
from dfuse.sim.backend import SimBackend
from dfuse.sim.dfu import DfuModel, RequestRecord
from dfuse.sim.faults import Event, Fault, FaultKind, FaultPlan, FaultRecord
from dfuse.sim.plain import PlainDfuDevice
from dfuse.sim.quirks import (
    GD32_QUIRKS,
    NO_QUIRKS,
    STM32C0_QUIRKS,
    STM32F405_QUIRKS,
    STM32H7_QUIRKS,
    Quirks,
)
from dfuse.sim.replayer import ReplayReport, replay
from dfuse.sim.rom import AppStart, RomBootloader
from dfuse.sim.stm32f411 import Stm32F411, Stm32F411App
from dfuse.sim.timing import STM32F411_TIMING, Duration, FlashTiming, Timing, UsbTiming

__all__ = [
    "GD32_QUIRKS",
    "NO_QUIRKS",
    "PARTS",
    "STM32C0_QUIRKS",
    "STM32F405_QUIRKS",
    "STM32F411_TIMING",
    "STM32H7_QUIRKS",
    "AppStart",
    "DfuModel",
    "Duration",
    "Event",
    "Fault",
    "FaultKind",
    "FaultPlan",
    "FaultRecord",
    "FlashTiming",
    "PlainDfuDevice",
    "Quirks",
    "RealClock",
    "ReplayReport",
    "RequestRecord",
    "RomBootloader",
    "SimBackend",
    "Stm32F411",
    "Stm32F411App",
    "Timing",
    "UsbTiming",
    "VirtualClock",
    "board",
    "replay",
]

#: Every part the simulator can be, by name and alias (:func:`dfuse.parts.parts_by_name`).
PARTS: Mapping[str, Part] = parts_by_name()


def board(name: str, *, rom: int | None = None, **options: Any) -> RomBootloader:
    """A simulated ROM bootloader of the part called ``name``, for :class:`SimBackend`.

    ``rom`` picks another ROM version of the part by its bcdDevice (the row of
    :func:`dfuse.parts.rom_version`: ``board("stm32f407", rom=0x2100)`` is the
    STM32F4DISCOVERY's V2.1 ROM, the row ``stm32f407_v21``). ``options`` are
    :class:`RomBootloader`'s (``serial``, ``clock``, ``timing``, ``honest``, ``seed``,
    ``faults``, ``quirks``, ``firmware_check``, ``entry``, ...). The board follows its
    row: its quirks are on (``quirks=NO_QUIRKS`` turns them off).

    >>> b = board("stm32l476")
    >>> b.part.name, len(b.alt_strings) > 0
    ('stm32l476', True)
    >>> board("stm32f407", rom=0x2100).alt_strings[1]
    '@Option Bytes  /0x1FFFC000/01*016 g'

    Raises:
        KeyError: no part has that name, or the part has no ROM version ``rom`` (the
            message lists the ones it has).
    """
    from dfuse.parts import get, rom_version, variants

    part = get(name)
    if rom is not None:
        found = rom_version(name, rom)
        if found is None:
            have = ", ".join(
                f"0x{p.usb.bcd_device:04X} ({p.name})"
                for p in variants(name)
                if p.usb.bcd_device is not None
            )
            raise KeyError(f"{name} has no ROM version 0x{rom:04X}; it has: {have}")
        part = found
    return RomBootloader(part, **options)
