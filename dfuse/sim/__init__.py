"""Simulated USB DFU devices that plug in under pyusb.

The STM32F411 system bootloader (:class:`Stm32F411`), an application with the DFU
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

from dfuse.clock import RealClock, VirtualClock
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
from dfuse.sim.replay import ReplayReport, replay
from dfuse.sim.stm32f411 import AppStart, Stm32F411, Stm32F411App
from dfuse.sim.timing import STM32F411_TIMING, Duration, FlashTiming, Timing, UsbTiming

__all__ = [
    "GD32_QUIRKS",
    "NO_QUIRKS",
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
    "SimBackend",
    "Stm32F411",
    "Stm32F411App",
    "Timing",
    "UsbTiming",
    "VirtualClock",
    "replay",
]
