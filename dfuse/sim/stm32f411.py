"""The STM32F411 system bootloader (USB DFU, DfuSe, AN3156) and a run-time application.

:class:`Stm32F411` is the ROM bootloader as the bus sees it: the descriptors of the
real device, four alternate settings whose strings are the memory layouts, the DFU
state machine (:data:`dfuse.sim.dfu.DFUSE_TRANSITIONS`), the DfuSe commands and
block-addressed reads and writes, over memories with real semantics (NOR flash,
option bytes with RDP and nWRP, OTP with lock bytes, the device feature area).

>>> dev = Stm32F411(serial="TEST0001")
>>> dev.peek(0x1FFF7A22, 2)  # flash-size register: 512 KiB
b'\\x00\\x02'
>>> dev.poke(0x08000000, b"\\x00\\x10\\x00\\x20")
>>> dev.peek(0x08000000, 4).hex()
'00100020'

:class:`Stm32F411App` is an application exposing the DFU run-time interface: a
DETACH makes it leave the bus and the bootloader come up in its place.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from dfuse.clock import Clock
from dfuse.parts import get as get_part
from dfuse.protocol.constants import DFU_PROTOCOL_RUNTIME, State
from dfuse.protocol.descriptors import Attributes, FunctionalDescriptor
from dfuse.sim.dfu import RUNTIME_TRANSITIONS, DfuModel
from dfuse.sim.faults import Fault
from dfuse.sim.quirks import Quirks
from dfuse.sim.rom import (
    AppStart,
    RomBootloader,
    configuration,
    device_descriptor,
    interface_descriptor,
    quirks_of,
)
from dfuse.sim.timing import STM32F411_TIMING, Timing

__all__ = [
    "FACTORY_OPTION_BYTES",
    "AppStart",
    "Stm32F411",
    "Stm32F411App",
    "device_descriptor",
]


def _factory_option_bytes() -> bytes:
    spec = get_part("stm32f411xe").option_bytes
    assert spec is not None
    return spec.factory


#: Option bytes as shipped (OPTCR 0x0FFFAAED): RDP level 0, no sector write-protected,
#: complement half-words filled in (the F411 row's ``option_bytes.factory``).
FACTORY_OPTION_BYTES = _factory_option_bytes()

_PARTS_BY_FLASH = {512 * 1024: "stm32f411xe", 256 * 1024: "stm32f411xc"}


class Stm32F411(RomBootloader):
    """The STM32F411 ROM bootloader in DFU mode: the generic :class:`RomBootloader` built
    from the ``stm32f411xe`` (or, with ``flash_size=256 KiB``, ``stm32f411xc``) part row.

    Its defaults are the ones this class always had: no first-GETSTATUS errFIRMWARE unless
    ``firmware_check=True``; the row's other quirks apply (``quirks`` replaces them).

    Args:
        serial: the serial-number string (also seeds the fake unique ID).
        flash_size: 512 KiB (F411xE) or 256 KiB (F411xC).
        clock: and the other keywords: see :class:`RomBootloader`.
        firmware_check: start in dfuERROR/errFIRMWARE when no valid application is in
            flash (its first word is not a stack pointer in SRAM), as F4 ROMs do.
    """

    def __init__(
        self,
        serial: str = "3276347F3034",
        flash_size: int = 512 * 1024,
        *,
        clock: Clock | None = None,
        timing: Timing | None = None,
        seed: int = 0,
        honest: bool = False,
        faults: Iterable[Fault] = (),
        quirks: Quirks | None = None,
        firmware_check: bool = False,
        transfer_size: int = 2048,
        app: Stm32F411App | None = None,
        return_after_leave: float | None = None,
        bus: int = 1,
        address: int = 1,
        port_numbers: tuple[int, ...] = (1,),
        state_file: str | os.PathLike[str] | None = None,
    ) -> None:
        name = _PARTS_BY_FLASH.get(flash_size)
        if name is None:
            raise ValueError(f"flash_size must be 512 KiB or 256 KiB, got {flash_size}")
        part = get_part(name)
        super().__init__(
            part,
            serial,
            clock=clock,
            timing=timing if timing is not None else STM32F411_TIMING,
            seed=seed,
            honest=honest,
            faults=faults,
            quirks=quirks if quirks is not None else quirks_of(part),
            firmware_check=firmware_check,
            transfer_size=transfer_size,
            app=app,
            return_after_leave=return_after_leave,
            bus=bus,
            address=address,
            port_numbers=port_numbers,
            state_file=state_file,
        )


class Stm32F411App(DfuModel):
    """An application with the DFU run-time interface (class 0xFE/0x01/0x01).

    DETACH → appDETACH; the device then (bitWillDetach) leaves the bus and the
    bootloader comes up in its place after the re-enumeration delay. Without
    ``will_detach`` it waits for a USB reset within wDetachTimeOut.
    """

    transitions = RUNTIME_TRANSITIONS
    initial_state = State.appIDLE

    def __init__(
        self,
        serial: str = "206B3A8E5553",
        *,
        bootloader: RomBootloader | None = None,
        vid: int = 0x0483,
        pid: int = 0x5740,
        product: str = "dfuse demo application",
        will_detach: bool = True,
        detach_timeout_ms: int = 1000,
        clock: Clock | None = None,
        timing: Timing = STM32F411_TIMING,
        faults: Iterable[Fault] = (),
        bus: int = 1,
        address: int = 1,
        port_numbers: tuple[int, ...] = (1,),
    ) -> None:
        self.serial = serial
        self.vid, self.pid, self.product = vid, pid, product
        attrs = Attributes(0x03) | (Attributes.WILL_DETACH if will_detach else Attributes(0))
        self.functional = FunctionalDescriptor(attrs, detach_timeout_ms, 2048, 0x011A)
        self.detaches = 0
        self._detach_deadline: float | None = None
        super().__init__(
            clock=clock,
            timing=timing,
            faults=faults,
            bus=bus,
            address=address,
            port_numbers=port_numbers,
        )
        self.bootloader: RomBootloader | None = None
        if bootloader is None:
            bootloader = Stm32F411(serial=serial, clock=self.clock, app=self)
        else:
            bootloader.app = self
            bootloader.unplug()
        self.bootloader = bootloader

    def bind_clock(self, clock: Clock) -> None:
        """Share ``clock`` with the bootloader too."""
        super().bind_clock(clock)
        if self.bootloader is not None:
            self.bootloader.bind_clock(clock)

    def device_descriptor(self) -> bytes:
        """A full-speed device with the application's VID/PID."""
        return device_descriptor(self.vid, self.pid, 0x0100)

    def configuration_descriptor(self, index: int = 0) -> bytes:
        """One interface: DFU run-time, functional descriptor right after it."""
        return configuration(
            [interface_descriptor(0, DFU_PROTOCOL_RUNTIME, 4)], self.functional.to_bytes()
        )

    def strings(self) -> dict[int, str]:
        """Manufacturer, product, serial, interface name."""
        return {1: "STMicroelectronics", 2: self.product, 3: self.serial, 4: "DFU run-time"}

    def detach(self, timeout_ms: int) -> None:
        """Record the DETACH; leave now (WillDetach) or wait for a reset."""
        self.detaches += 1
        self.state = State.appDETACH
        if self.functional.attributes & Attributes.WILL_DETACH:
            self._busy = None
            self._switch()
        else:
            self._detach_deadline = (
                self.clock.now + min(timeout_ms, self.functional.detach_timeout_ms) / 1000
            )

    def poll(self) -> None:
        """Also: a DETACH not followed by a reset in time falls back to appIDLE."""
        with self.lock:
            if self._detach_deadline is not None and self.clock.now > self._detach_deadline:
                self._detach_deadline = None
                if self.state is State.appDETACH:
                    self.state = State.appIDLE
        super().poll()

    def reset(self) -> None:
        """A USB reset in appDETACH re-enumerates as the bootloader."""
        with self.lock:
            if self.state is State.appDETACH:
                self._switch()
                return
        super().reset()

    def _switch(self) -> None:
        self._detach_deadline = None
        self.unplug()
        if self.bootloader is not None:
            self.bootloader.power_cycle(at=self.event_time + self.timing.timing.reenumerate)
