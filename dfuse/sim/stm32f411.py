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

import hashlib
import struct
from collections.abc import Iterable
from dataclasses import dataclass

from dfuse.clock import Clock
from dfuse.layout import (
    STM32F411XC_ALT_STRINGS,
    STM32F411XE_ALT_STRINGS,
    Access,
    MemoryLayout,
)
from dfuse.optionbytes import FACTORY_DEFAULT, OptionBytes, RdpLevel
from dfuse.protocol.constants import (
    DFU_INTERFACE_CLASS,
    DFU_INTERFACE_SUBCLASS,
    DFU_PROTOCOL_DFU_MODE,
    DFU_PROTOCOL_RUNTIME,
    DfuseCommand,
    State,
    Status,
)
from dfuse.protocol.descriptors import Attributes, FunctionalDescriptor
from dfuse.sim.dfu import RUNTIME_TRANSITIONS, DfuFailure, DfuModel, Operation
from dfuse.sim.faults import Event, Fault
from dfuse.sim.flash import MemoryArea, NorFlash, OtpMemory, RamArea
from dfuse.sim.quirks import NO_QUIRKS, Quirks
from dfuse.sim.timing import STM32F411_TIMING, Timing

__all__ = [
    "FACTORY_OPTION_BYTES",
    "AppStart",
    "Stm32F411",
    "Stm32F411App",
    "device_descriptor",
]

FLASH_BASE = 0x0800_0000
SYSTEM_MEMORY = 0x1FFF_0000
SYSTEM_MEMORY_SIZE = 0x7800
OTP_BASE = 0x1FFF_7800
UNIQUE_ID = 0x1FFF_7A10
FLASH_SIZE_REGISTER = 0x1FFF_7A22
OPTION_BYTES = 0x1FFF_C000
OPTION_BYTES_SIZE = 16
DEVICE_FEATURE = 0xFFFF_0000
SRAM_BASE = 0x2000_0000
SRAM_SIZE = 128 * 1024

#: Option bytes as shipped (OPTCR 0x0FFFAAED, :data:`dfuse.optionbytes.FACTORY_DEFAULT`):
#: RDP level 0, no sector write-protected, complement half-words filled in.
FACTORY_OPTION_BYTES = FACTORY_DEFAULT.to_bytes()

#: The commands UPLOAD block 0 lists (AN3156): Get, Set Address, Erase, Read Unprotect.
SUPPORTED_COMMANDS = bytes(
    (
        DfuseCommand.GET,
        DfuseCommand.SET_ADDRESS_POINTER,
        DfuseCommand.ERASE,
        DfuseCommand.READ_UNPROTECT,
    )
)

VENDOR_ID = 0x0483
PRODUCT_ID = 0xDF11
BCD_DEVICE = 0x2200


@dataclass(frozen=True, slots=True)
class AppStart:
    """The bootloader left and jumped to the application.

    Attributes:
        address: where it jumped (the address pointer at the time).
        time: clock time of the jump.
    """

    address: int
    time: float


def device_descriptor(
    vid: int, pid: int, bcd_device: int, *, strings: tuple[int, int, int] = (1, 2, 3)
) -> bytes:
    """An 18-byte USB 2.0 full-speed device descriptor (class at interface level, EP0 64)."""
    return struct.pack(
        "<BBHBBBBHHHBBBB",
        18,
        0x01,
        0x0200,
        0,
        0,
        0,
        64,
        vid,
        pid,
        bcd_device,
        *strings,
        1,
    )


def _configuration(interfaces: list[bytes], extra: bytes, *, max_power_ma: int = 100) -> bytes:
    body = b"".join(interfaces) + extra
    return struct.pack("<BBHBBBBB", 9, 0x02, 9 + len(body), 1, 1, 0, 0xC0, max_power_ma // 2) + body


def _interface(alt: int, protocol: int, istring: int) -> bytes:
    return bytes(
        (9, 0x04, 0, alt, 0, DFU_INTERFACE_CLASS, DFU_INTERFACE_SUBCLASS, protocol, istring)
    )


class Stm32F411(DfuModel):
    """The STM32F411 ROM bootloader in DFU mode (VID 0x0483, PID 0xDF11).

    Args:
        serial: the serial-number string (also seeds the fake unique ID).
        flash_size: 512 KiB (F411xE) or 256 KiB (F411xC).
        clock: the clock (a :class:`SimBackend` shares its own).
        timing: operation durations; ``seed`` makes their spread reproducible.
        faults: faults to inject (:class:`dfuse.sim.faults.Fault`).
        quirks: switch on quirks of other parts (:mod:`dfuse.sim.quirks`).
        firmware_check: start in dfuERROR/errFIRMWARE when no valid application is in
            flash (its first word is not a stack pointer in SRAM), as some F4 ROMs do.
        app: the application that runs after leave (it joins the bus then).
        return_after_leave: seconds after a leave until the bootloader is back on the bus
            (BOOT0 held high and the board reset: a watchdog, the user); ``None``: the
            application keeps running until :meth:`reset_to_bootloader`. Not with ``app``
            (then the application is what comes back).

    Attributes:
        flash, otp, option_area, feature_area, system_memory, signature, sram: the memories.
        pointer: the DfuSe address pointer.
        app_starts: every jump to the application (:class:`AppStart`).
    """

    def __init__(
        self,
        serial: str = "3276347F3034",
        flash_size: int = 512 * 1024,
        *,
        clock: Clock | None = None,
        timing: Timing = STM32F411_TIMING,
        seed: int = 0,
        faults: Iterable[Fault] = (),
        quirks: Quirks = NO_QUIRKS,
        firmware_check: bool = False,
        transfer_size: int = 2048,
        app: Stm32F411App | None = None,
        return_after_leave: float | None = None,
        bus: int = 1,
        address: int = 1,
        port_numbers: tuple[int, ...] = (1,),
    ) -> None:
        if flash_size == 512 * 1024:
            alt_strings = STM32F411XE_ALT_STRINGS
        elif flash_size == 256 * 1024:
            alt_strings = STM32F411XC_ALT_STRINGS
        else:
            raise ValueError(f"flash_size must be 512 KiB or 256 KiB, got {flash_size}")
        self.serial = serial
        self.alt_strings: tuple[str, ...] = tuple(alt_strings)
        self.layouts: tuple[MemoryLayout, ...] = tuple(
            MemoryLayout.parse(s) for s in self.alt_strings
        )
        self.flash = NorFlash(FLASH_BASE, [s.size for s in self.layouts[0].sectors])
        self.option_area = RamArea("option bytes", OPTION_BYTES, OPTION_BYTES_SIZE)
        self.option_area.poke(OPTION_BYTES, FACTORY_OPTION_BYTES)
        self.otp = OtpMemory(OTP_BASE)
        self.feature_area = RamArea("device feature", DEVICE_FEATURE, 4, fill=0x00)
        self.system_memory = RamArea("system memory", SYSTEM_MEMORY, SYSTEM_MEMORY_SIZE, 0x00)
        self.signature = RamArea("device signature", UNIQUE_ID, 0x20, fill=0xFF)
        uid = hashlib.sha256(serial.encode()).digest()[:12]
        self.signature.poke(UNIQUE_ID, uid)
        self.signature.poke(FLASH_SIZE_REGISTER, struct.pack("<H", flash_size // 1024))
        self.sram = RamArea("SRAM", SRAM_BASE, SRAM_SIZE, fill=0x00)
        self.areas: tuple[MemoryArea, ...] = (
            self.flash,
            self.option_area,
            self.otp,
            self.feature_area,
            self.system_memory,
            self.signature,
            self.sram,
        )
        self.functional = FunctionalDescriptor(Attributes(0x0B), 255, transfer_size, 0x011A)
        self.firmware_check = firmware_check
        self.pointer = FLASH_BASE
        self.app_starts: list[AppStart] = []
        self.app = app
        if return_after_leave is not None and (app is not None or return_after_leave < 0):
            raise ValueError("return_after_leave needs no app and a non-negative delay")
        self.return_after_leave = return_after_leave
        self._set_address_last = False
        super().__init__(
            clock=clock,
            timing=timing,
            seed=seed,
            faults=faults,
            quirks=quirks,
            transfer_size=transfer_size,
            bus=bus,
            address=address,
            port_numbers=port_numbers,
        )
        if app is not None:
            app.bootloader = self
            self.unplug()

    # ------------------------------------------------------------------ descriptors

    def device_descriptor(self) -> bytes:
        """The device descriptor of the ROM bootloader."""
        return device_descriptor(VENDOR_ID, PRODUCT_ID, BCD_DEVICE)

    def configuration_descriptor(self, index: int = 0) -> bytes:
        """One configuration, one interface with an alternate setting per memory, then the
        DFU functional descriptor (after the last interface descriptor, as on the device)."""
        interfaces = [
            _interface(alt, DFU_PROTOCOL_DFU_MODE, 4 + alt) for alt in range(len(self.alt_strings))
        ]
        return _configuration(interfaces, self.functional.to_bytes())

    def strings(self) -> dict[int, str]:
        """Manufacturer, product, serial, then the memory-layout strings (4, 5, 6, 7)."""
        out = {1: "STMicroelectronics", 2: "STM32  BOOTLOADER", 3: self.serial}
        for alt, text in enumerate(self.alt_strings):
            out[4 + alt] = text
        return out

    # ------------------------------------------------------------------ back door

    def _area(self, address: int, length: int) -> MemoryArea | None:
        for area in self.areas:
            if area.contains(address, length):
                return area
        return None

    def peek(self, address: int, length: int) -> bytes:
        """Read any memory directly (no USB, no time); ValueError outside every memory."""
        self.poll()
        area = self._area(address, length)
        if area is None:
            raise ValueError(f"0x{address:08X}+{length} is not inside one simulated memory")
        return area.read(address, length)

    def poke(self, address: int, data: bytes) -> None:
        """Preset any memory directly, bypassing its semantics (no USB, no time)."""
        self.poll()
        area = self._area(address, len(data))
        if area is None:
            raise ValueError(f"0x{address:08X}+{len(data)} is not inside one simulated memory")
        area.poke(address, bytes(data))

    @property
    def option_bytes(self) -> bytes:
        """The 16 option bytes at 0x1FFFC000."""
        return self.option_area.read(OPTION_BYTES, OPTION_BYTES_SIZE)

    @property
    def options(self) -> OptionBytes:
        """The option bytes, decoded (:class:`dfuse.optionbytes.OptionBytes`)."""
        return OptionBytes.parse(self.option_bytes)

    @property
    def rdp_level(self) -> int:
        """Read-protection level 0, 1 or 2 (from the RDP option byte)."""
        return int(self.options.rdp_level)

    def is_write_protected(self, sector: int) -> bool:
        """True when flash sector ``sector`` is write-protected (nWRP, SPRMOD-aware)."""
        return self.options.is_write_protected(sector)

    def set_read_protection(self, level: int) -> None:
        """Preset the RDP level (0, 1 or 2) directly in the option bytes."""
        if level not in (0, 1, 2):
            raise ValueError(f"RDP level must be 0, 1 or 2, got {level}")
        new = self.options.with_rdp(level, allow_level_2=True)
        self.option_area.poke(OPTION_BYTES, new.to_bytes())

    def set_write_protection(self, sectors: Iterable[int]) -> None:
        """Preset the option bytes so that exactly ``sectors`` (0-7) are write-protected."""
        new = self.options.with_write_protection(sectors)
        self.option_area.poke(OPTION_BYTES, new.to_bytes())

    @property
    def running_app(self) -> AppStart | None:
        """The last jump to the application while the device is off the bus, else None."""
        self.poll()
        if self.connected or not self.app_starts:
            return None
        return self.app_starts[-1]

    @property
    def alt_setting(self) -> int:
        """The selected alternate setting of interface 0."""
        return self.alt_settings.get(0, 0)

    # ------------------------------------------------------------------ access rules

    def _check(self, address: int, length: int, access: Access, what: str) -> MemoryLayout:
        layout = next((lay for lay in self.layouts if lay.contains(address, length)), None)
        if layout is None:
            raise DfuFailure(Status.errTARGET, f"{what} 0x{address:08X}+{length}: no memory")
        if not layout.allows(address, length, access):
            raise DfuFailure(Status.errTARGET, f"{what} 0x{address:08X}+{length}: not allowed")
        if self.rdp_level and layout is not self.layouts[1] and layout is not self.layouts[3]:
            raise DfuFailure(Status.errVENDOR, f"{what} 0x{address:08X}: read protection")
        return layout

    # ------------------------------------------------------------------ DFU hooks

    def on_boot(self) -> None:
        """Back to the reset state: pointer 0x08000000, optional firmware check."""
        self.pointer = FLASH_BASE
        self._set_address_last = False
        if self.firmware_check and not self._valid_application():
            self.state, self.status = State.dfuERROR, Status.errFIRMWARE

    def should_enumerate(self) -> bool:
        """At RDP level 2 the system bootloader is disabled: the device never enumerates."""
        return self.rdp_level != 2

    def _valid_application(self) -> bool:
        sp = int.from_bytes(self.flash.read(FLASH_BASE, 4), "little")
        return SRAM_BASE <= sp <= SRAM_BASE + SRAM_SIZE

    def download_operation(self, block: int, data: bytes) -> Operation:
        """Decode a DfuSe command (block 0) or a data block (block >= 2)."""
        set_address = block == 0 and len(data) == 5 and data[0] == DfuseCommand.SET_ADDRESS_POINTER
        self._set_address_last = set_address
        if block == 0:
            return self._command(data)
        if block == 1:
            raise DfuFailure(Status.errSTALLEDPKT, "DNLOAD block 1 is not used by DfuSe")
        address = self.pointer + (block - 2) * self.transfer_size
        return self._write(address, data)

    def _command(self, data: bytes) -> Operation:
        cmd, arg = data[0], data[1:]
        timing = self.timing
        if cmd == DfuseCommand.SET_ADDRESS_POINTER and len(arg) == 4:
            address = int.from_bytes(arg, "little")

            def set_pointer(_fraction: float) -> Status:
                self.pointer = address
                return Status.OK

            return Operation(
                Event.COMMAND,
                timing.timing.command,
                set_pointer,
                f"set address pointer 0x{address:08X}",
            )
        if cmd == DfuseCommand.ERASE and len(arg) == 4:
            return self._erase(int.from_bytes(arg, "little"))
        if cmd == DfuseCommand.ERASE and not arg:
            return self._mass_erase()
        if cmd == DfuseCommand.READ_UNPROTECT and not arg:
            return self._read_unprotect()
        if cmd == DfuseCommand.GET and not arg:
            return Operation(Event.COMMAND, timing.timing.command, lambda _f: Status.OK, "get")
        raise DfuFailure(Status.errSTALLEDPKT, f"unknown DfuSe command {data.hex(' ')}")

    def _erase(self, address: int) -> Operation:
        self._check(address, 1, Access.ERASE, "erase")
        span = self.flash.sector_at(address)
        if span is None:  # erasable only in flash; layouts say so too
            raise DfuFailure(Status.errTARGET, f"erase 0x{address:08X}: not flash")
        detail = f"erase sector {span.index} at 0x{span.address:08X}"
        if self.is_write_protected(span.index):
            return Operation(
                Event.ERASE, self.timing.timing.command, lambda _f: Status.OK, detail + " (WRP)"
            )

        def erase(fraction: float) -> Status:
            self.flash.erase_sector(span.index, fraction)
            return Status.OK

        return Operation(Event.ERASE, self.timing.erase_time(span.size), erase, detail)

    def _mass_erase(self) -> Operation:
        if self.rdp_level:
            raise DfuFailure(Status.errVENDOR, "mass erase: read protection")
        protected = [s.index for s in self.flash.sectors if self.is_write_protected(s.index)]
        if protected:  # the flash interface refuses a mass erase (WRPERR): nothing changes
            return Operation(
                Event.MASS_ERASE,
                self.timing.timing.command,
                lambda _f: Status.OK,
                f"mass erase refused, sectors {protected} write-protected",
            )

        def erase(fraction: float) -> Status:
            self.flash.mass_erase(fraction)
            return Status.OK

        return Operation(
            Event.MASS_ERASE,
            self.timing.mass_erase_time(self.flash.size),
            erase,
            "mass erase",
            reported_ms=self.quirks.mass_erase_poll_timeout_ms,
        )

    def _read_unprotect(self) -> Operation:
        def unprotect(fraction: float) -> Status:
            self.flash.mass_erase(fraction)
            if fraction >= 1.0:
                cleared = self.options.with_rdp(RdpLevel.LEVEL_0)
                self.option_area.poke(OPTION_BYTES, cleared.to_bytes())
            return Status.OK

        return Operation(
            Event.READ_UNPROTECT,
            self.timing.mass_erase_time(self.flash.size),
            unprotect,
            "read unprotect",
            reset_after=True,
        )

    def _write(self, address: int, data: bytes) -> Operation:
        length = len(data)
        layout = self._check(address, length, Access.WRITE, "write")
        detail = f"write {length} bytes at 0x{address:08X}"
        if layout is self.layouts[1]:
            if address != OPTION_BYTES or length != OPTION_BYTES_SIZE:
                raise DfuFailure(
                    Status.errTARGET,
                    f"option bytes are written as 16 bytes at 0x{OPTION_BYTES:08X}, "
                    f"got {length} at 0x{address:08X}",
                )
            return self._option_write(data)
        if layout is self.layouts[2]:

            def program_otp(fraction: float) -> Status:
                self.otp.program(address, data, fraction)
                return Status.OK

            return Operation(Event.WRITE, self.timing.program_time(length), program_otp, detail)
        if layout is self.layouts[3]:

            def write_feature(_fraction: float) -> Status:
                self.feature_area.write(address, data)
                return Status.OK

            return Operation(Event.WRITE, self.timing.timing.command, write_feature, detail)

        # flash: bytes in write-protected sectors are silently left alone
        pieces: list[tuple[int, bytes]] = []
        for span in self.flash.sectors:
            lo, hi = max(span.address, address), min(span.end, address + length)
            if lo < hi and not self.is_write_protected(span.index):
                pieces.append((lo, data[lo - address : hi - address]))
        total = sum(len(p) for _a, p in pieces)

        def program(fraction: float) -> Status:
            # on power loss, whole 32-bit words up to the fraction reached
            budget = int(total * fraction) & ~3 if fraction < 1.0 else total
            for addr, piece in pieces:
                part = piece[:budget]
                self.flash.program(addr, part)
                budget -= len(part)
                if budget <= 0:
                    break
            return Status.OK

        return Operation(Event.WRITE, self.timing.program_time(total), program, detail)

    def _option_write(self, data: bytes) -> Operation:
        old_level = self.rdp_level
        new_level = int(OptionBytes.parse(data).rdp_level)
        regression = old_level == 1 and new_level == 0
        duration = self.timing.option_write_time()
        if regression:
            duration += self.timing.mass_erase_time(self.flash.size)

        def write(fraction: float) -> Status:
            if regression:
                self.flash.mass_erase(fraction)
            if fraction >= 1.0:
                self.option_area.write(OPTION_BYTES, data)
            return Status.OK

        return Operation(
            Event.OPTION_WRITE,
            duration,
            write,
            f"option bytes {data.hex()}" + (" (RDP 1→0: mass erase)" if regression else ""),
            reset_after=True,
        )

    def upload_block(self, block: int, length: int) -> bytes:
        """Block 0: the command list; blocks >= 2: memory at the address pointer."""
        if block == 0:
            return SUPPORTED_COMMANDS
        if block == 1:
            raise DfuFailure(Status.errSTALLEDPKT, "UPLOAD block 1 is not used by DfuSe")
        address = self.pointer + (block - 2) * self.transfer_size
        self._check(address, length, Access.READ, "read")
        area = self._area(address, length)
        if area is None:
            raise DfuFailure(Status.errTARGET, f"read 0x{address:08X}+{length}: no memory")
        return area.read(address, length)

    def on_zero_length_download(self, block: int) -> None:
        """STM32C0 quirk: without a Set Address right before, the leave is ignored."""
        if self.quirks.leave_needs_set_address and not self._set_address_last:
            self._pending = None
            self.state = State.dfuIDLE
            return
        if self.quirks.leave_without_status:
            self._leave()

    def manifest(self) -> None:
        """Leave: detach from the bus and jump to the address pointer."""
        self._leave()

    def _leave(self) -> None:
        self.state = State.dfuMANIFEST_WAIT_RESET
        self.app_starts.append(AppStart(self.pointer, self.event_time))
        self.unplug()
        if self.app is not None:
            self.app.power_cycle(at=self.event_time + self.timing.timing.reenumerate)
        elif self.return_after_leave is not None:
            self.power_cycle(at=self.event_time + self.return_after_leave)

    def reset_to_bootloader(self, delay: float = 0.0) -> None:
        """Reset with BOOT0 high: the bootloader comes back on the bus after ``delay``."""
        if self.app is not None:
            self.app.unplug()
        self.power_cycle(delay)


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
        bootloader: Stm32F411 | None = None,
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
        self.bootloader: Stm32F411 | None = None
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
        return _configuration([_interface(0, DFU_PROTOCOL_RUNTIME, 4)], self.functional.to_bytes())

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
