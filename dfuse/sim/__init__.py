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


def board(name: str, **options: Any) -> RomBootloader:
    """A simulated ROM bootloader of the part called ``name``, for :class:`SimBackend`.

    ``options`` are :class:`RomBootloader`'s (``serial``, ``clock``, ``timing``,
    ``honest``, ``seed``, ``faults``, ``quirks``, ``firmware_check``, ...). The board
    follows its row: its quirks are on (``quirks=NO_QUIRKS`` turns them off).

    >>> b = board("stm32l476")
    >>> b.part.name, len(b.alt_strings) > 0
    ('stm32l476', True)

    Raises:
        KeyError: no part has that name (the message lists the known ones).
    """
    from dfuse.parts import get

    return RomBootloader(get(name), **options)
