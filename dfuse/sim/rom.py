"""One STM32/GD32 ROM bootloader model (USB DFU, DfuSe, AN3156), built from a part row.

:class:`RomBootloader` is the ROM as the bus sees it, for any part of :mod:`dfuse.parts`:
the descriptors from the row's USB identity, one alternate setting per alt string, the DFU
state machine (:data:`dfuse.sim.dfu.DFUSE_TRANSITIONS`), the DfuSe commands and the
block-addressed reads and writes, over memories with the part's rules:

* flash in the part's physical erase units, with NOR semantics, its programming unit and
  alignment, the not-erased check where the flash has one (errPROG), and the read-back
  check of ROMs that verify after programming (errVERIFY);
* option bytes whose RDP byte the board decodes itself, by the reference manual's rule
  from the row (and the F4 nWRP bits where the row says so);
* OTP with lock bytes (F2/F4/F7), other OTP (never erased), data EEPROM, the device
  feature area, the unique ID and the flash-size register.

Timing as the silicon does it: the ROM *reports* the typical duration as bwPollTimeout,
while the operation really takes a draw between typical and the datasheet maximum
(``Timing.spread``), so it can outlast the timeout it reported. ``honest=True`` reports the
real duration instead, for tests that need exact timing.

The memory map comes from the row's numbers, never from the host's layout parser; the
simulator shares facts with the host (the part table), not logic.

>>> from dfuse.parts import get
>>> board = RomBootloader(get("stm32l476"), serial="SIM1")
>>> board.peek(0x08000000, 4)
b'\\xff\\xff\\xff\\xff'
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path

from dfuse.clock import Clock
from dfuse.parts import AltSetting, MemoryKind, Part
from dfuse.protocol.constants import (
    DFU_INTERFACE_CLASS,
    DFU_INTERFACE_SUBCLASS,
    DFU_PROTOCOL_DFU_MODE,
    DfuseCommand,
    Request,
    State,
    Status,
)
from dfuse.protocol.descriptors import Attributes, FunctionalDescriptor, StatusReply
from dfuse.sim.dfu import DfuFailure, DfuModel, Operation, RequestRecord, request_name
from dfuse.sim.faults import Event, Fault
from dfuse.sim.flash import MemoryArea, NorFlash, OtpMemory, RamArea
from dfuse.sim.quirks import Quirks
from dfuse.sim.timing import Duration, FlashTiming, Timing
from dfuse.sim.usbmodel import SetupPacket, Stall

__all__ = [
    "ENTRIES",
    "ERASE",
    "READ",
    "WRITE",
    "AppStart",
    "RomBootloader",
    "configuration",
    "device_descriptor",
    "interface_descriptor",
    "quirks_of",
    "timing_of",
]

#: Access bits of a DfuSe access letter (``ord(letter) - ord('a') + 1``).
READ, ERASE, WRITE = 1, 2, 4

_SYSTEM_MEMORY_F4 = (0x1FFF_0000, 0x7800)
#: The serial of a board whose row records none (the simulator's historical default).
DEFAULT_SERIAL = "3276347F3034"


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
    vid: int,
    pid: int,
    bcd_device: int,
    *,
    bcd_usb: int = 0x0200,
    strings: tuple[int, int, int] = (1, 2, 3),
) -> bytes:
    """An 18-byte full-speed device descriptor (class at interface level, EP0 64)."""
    return struct.pack(
        "<BBHBBBBHHHBBBB", 18, 0x01, bcd_usb, 0, 0, 0, 64, vid, pid, bcd_device, *strings, 1
    )


def configuration(
    interfaces: list[bytes], extra: bytes, *, max_power_ma: int = 100, self_powered: bool = True
) -> bytes:
    """A configuration descriptor holding ``interfaces`` then ``extra`` (wTotalLength set)."""
    body = b"".join(interfaces) + extra
    attributes = 0xC0 if self_powered else 0x80
    return (
        struct.pack("<BBHBBBBB", 9, 0x02, 9 + len(body), 1, 1, 0, attributes, max_power_ma // 2)
        + body
    )


def interface_descriptor(alt: int, protocol: int, istring: int) -> bytes:
    """A DFU interface descriptor (interface 0, no endpoints)."""
    return bytes(
        (9, 0x04, 0, alt, 0, DFU_INTERFACE_CLASS, DFU_INTERFACE_SUBCLASS, protocol, istring)
    )


def _duration(d: object) -> Duration:
    typ, max_ = getattr(d, "typ"), getattr(d, "max")  # noqa: B009 - parts.Duration
    return Duration(float(typ), float(max_))


def timing_of(part: Part, *, spread: float = 0.1) -> Timing:
    """The simulator's :class:`Timing` for a part row (its datasheet figures)."""
    flash = part.flash
    ob = part.option_bytes
    return Timing(
        flash=FlashTiming(
            word_program=_duration(flash.program_time),
            sector_erase=tuple(
                (e.size, _duration(e.duration))
                for e in sorted(flash.erase_times, key=lambda e: e.size)
            ),
            mass_erase=_duration(flash.mass_erase),
            mass_erase_size=flash.size,
            option_write=_duration(ob.write_time) if ob is not None else Duration(0.0, 0.0),
            program_width=flash.program_width,
            bank_erase=_duration(flash.bank_erase) if flash.bank_erase is not None else None,
        ),
        spread=spread,
    )


def quirks_of(part: Part) -> Quirks:
    """The simulator switches for a part row's quirks."""
    q = part.quirks
    return Quirks(
        mass_erase_poll_timeout_ms=q.mass_erase_poll_timeout_ms,
        leave_needs_set_address=q.leave_needs_set_address,
        leave_without_status=q.leave_without_status,
        first_status_error=q.first_status_error,
        first_status_error_on_reset=q.first_status_error_on_reset,
        stall_getstatus_while_busy=q.stall_getstatus_while_busy,
        busy_status_held=q.busy_status_held,
        stall_dnload_while_busy=q.stall_dnload_while_busy,
        stall_clrstatus_outside_error=q.stall_clrstatus_outside_error,
        wedged_erase_from=q.wedged_erase_from,
        set_address_skips_busy=q.set_address_skips_busy,
        over_reported_layout=q.layout_over_reported,
        string_length_claimed=q.string_length_claimed,
    )


#: How a ROM can be entered (:class:`RomBootloader`'s ``entry``).
ENTRIES: tuple[str, ...] = ("power_on", "reset")


class _AltMap:
    """One alternate setting's sector map, as the row's numbers: access checks by run."""

    def __init__(self, alt: AltSetting) -> None:
        self.alt = alt
        runs: list[tuple[int, int, int, int]] = []  # start, end, unit size, access bits
        for region in alt.regions:
            at = region.address
            for g in region.groups:
                runs.append((at, at + g.count * g.size, g.size, ord(g.letter) - ord("a") + 1))
                at += g.count * g.size
        self.runs = sorted(runs)

    def contains(self, address: int, length: int) -> bool:
        return self.allows(address, length, 0)

    def allows(self, address: int, length: int, access: int) -> bool:
        """Whether every byte of the span lies in sectors with at least ``access``."""
        at, stop = address, address + max(length, 1)
        for start, end, _size, bits in self.runs:
            if end <= at:
                continue
            if start > at or bits & access != access:
                return False
            at = end
            if at >= stop:
                return True
        return False


class RomBootloader(DfuModel):
    """The ROM bootloader of ``part`` in DFU mode.

    Args:
        part: the part row (:func:`dfuse.parts.get`).
        serial: the serial-number string (default: one a real ROM reported; it also seeds
            the simulated unique ID).
        clock: the clock (a :class:`SimBackend` shares its own).
        timing: operation durations (default: the row's datasheet figures); ``seed`` makes
            their spread reproducible.
        honest: report the real duration of each operation as bwPollTimeout (default: the
            typical one, as the ROMs do, while the real duration spreads up to the maximum).
        faults: faults to inject (:class:`dfuse.sim.faults.Fault`).
        quirks: the simulator switches (default: the row's quirks, :func:`quirks_of`).
        firmware_check: overrides the row's first-GETSTATUS errFIRMWARE rule: ``True`` =
            ``"no_application"``, ``False`` = ``"never"``.
        transfer_size: overrides the row's wTransferSize.
        entry: how the ROM is entered: ``"power_on"`` (a cold start with the boot pins
            set, the default) or ``"reset"`` (a reset with the boot pins set, no power
            loss). The first-GETSTATUS rule is the row's ``first_status_error`` on power-on
            and its ``first_status_error_on_reset`` on reset, where a log shows they differ
            (STM32F429: dfuERROR from a cold start, dfuIDLE after a reset).
        app: the application that runs after leave (it joins the bus then).
        return_after_leave: seconds after a leave until the bootloader is back on the bus;
            ``None``: the application keeps running until :meth:`reset_to_bootloader`.
        state_file: a JSON file with the board's memories: loaded now if it exists, saved
            whenever the host lets go of the board (closes it, or the board leaves the bus)
            after a change (:meth:`save_state`).

    Attributes:
        part: the row.
        flash: the main flash (:class:`NorFlash` in the row's erase units).
        areas: every memory (flash, option bytes, OTP, feature area, EEPROM, signature,
            SRAM), for :meth:`peek` and :meth:`poke`.
        pointer: the DfuSe address pointer.
        app_starts: every jump to the application.
    """

    def __init__(
        self,
        part: Part,
        serial: str | None = None,
        *,
        clock: Clock | None = None,
        timing: Timing | None = None,
        honest: bool = False,
        seed: int = 0,
        faults: Iterable[Fault] = (),
        quirks: Quirks | None = None,
        firmware_check: bool | None = None,
        transfer_size: int | None = None,
        entry: str = "power_on",
        app: DfuModel | None = None,
        return_after_leave: float | None = None,
        bus: int = 1,
        address: int = 1,
        port_numbers: tuple[int, ...] = (1,),
        state_file: str | os.PathLike[str] | None = None,
    ) -> None:
        self.part = part
        self.serial = serial or part.usb.serial or DEFAULT_SERIAL
        self.alt_strings: tuple[str, ...] = part.alt_strings
        self._maps = tuple(_AltMap(a) for a in part.alts)
        self.honest = honest
        if entry not in ENTRIES:
            raise ValueError(f"entry must be one of {', '.join(ENTRIES)}, got {entry!r}")
        self.entry = entry
        quirks = quirks if quirks is not None else quirks_of(part)
        if firmware_check is not None:
            quirks = replace(
                quirks,
                first_status_error="no_application" if firmware_check else "never",
                first_status_error_on_reset=None,
            )
        self.flash = NorFlash(part.flash.address, part.flash.unit_sizes(), erased=part.flash.erased)
        self._build_areas()
        ts = transfer_size if transfer_size is not None else part.usb.transfer_size
        attrs = Attributes(part.usb.attributes)
        self.functional = FunctionalDescriptor(attrs, part.usb.detach_timeout_ms, ts, 0x011A)
        self.pointer = part.flash.address
        self.app_starts: list[AppStart] = []
        self.app = app
        if return_after_leave is not None and (app is not None or return_after_leave < 0):
            raise ValueError("return_after_leave needs no app and a non-negative delay")
        self.return_after_leave = return_after_leave
        self._set_address_last = False
        self._wedged = False
        self.state_file = Path(state_file) if state_file is not None else None
        self._dirty = False
        self._stall_rng = random.Random(seed)
        if self.state_file is not None and self.state_file.exists():
            self.load_state(self.state_file)
        super().__init__(
            clock=clock,
            timing=timing if timing is not None else timing_of(part),
            seed=seed,
            faults=faults,
            quirks=quirks,
            transfer_size=ts,
            bus=bus,
            address=address,
            port_numbers=port_numbers,
        )
        if app is not None:
            setattr(app, "bootloader", self)  # noqa: B010 - any run-time model
            self.unplug()

    @property
    def firmware_check(self) -> bool:
        """Whether the board boots into dfuERROR/errFIRMWARE without a valid application."""
        return self.quirks.first_status_error == "no_application"

    # ------------------------------------------------------------------ memories

    def _build_areas(self) -> None:
        part = self.part
        areas: list[MemoryArea] = [self.flash]
        self.option_area: RamArea | None = None
        self.otp: NorFlash | OtpMemory | None = None
        self.feature_area: RamArea | None = None
        self.eeprom: RamArea | None = None
        ob = part.option_bytes
        if ob is not None:
            self.option_area = RamArea("option bytes", ob.address, ob.size)
            self.option_area.poke(ob.address, ob.factory)
            areas.append(self.option_area)
        for alt in part.alts:
            lo, hi = alt.address, alt.end
            if alt.memory is MemoryKind.OTP:
                for region in alt.regions:  # F42x: one OTP region per bank
                    otp: NorFlash | OtpMemory
                    if part.otp_lock_blocks is not None:
                        blocks, size = part.otp_lock_blocks
                        otp = OtpMemory(region.address, blocks, size)
                    else:
                        otp = NorFlash(region.address, (region.size,), name="OTP")
                    if self.otp is None:
                        self.otp = otp
                    areas.append(otp)
            elif alt.memory is MemoryKind.FEATURE and self.feature_area is None:
                self.feature_area = RamArea("device feature", lo, hi - lo, fill=0x00)
                areas.append(self.feature_area)
            elif alt.memory is MemoryKind.EEPROM and self.eeprom is None:
                self.eeprom = RamArea("data EEPROM", lo, hi - lo, fill=0x00)
                areas.append(self.eeprom)
            elif alt.memory is MemoryKind.OPTION_BYTES and ob is not None:
                for region in alt.regions:  # a second bank of option bytes (G4)
                    if not region.address <= ob.address < region.end:
                        extra = RamArea("option bytes", region.address, region.size)
                        areas.append(extra)
        uid = hashlib.sha256(self.serial.encode()).digest()[:12]
        self.signature: RamArea | None = None
        if part.uid_address is not None:
            end = part.uid_address + 12
            if part.flash_size_register is not None and 0 <= part.flash_size_register - end < 0x40:
                end = part.flash_size_register + 2
            self.signature = RamArea("device signature", part.uid_address, end - part.uid_address)
            self.signature.poke(part.uid_address, uid)
            areas.append(self.signature)
        register = part.flash_size_register
        if register is not None:
            holder = next((a for a in areas if a.contains(register, 2)), None)
            if holder is None:
                holder = RamArea("flash size register", register, 2)
                areas.append(holder)
            holder.poke(register, struct.pack("<H", part.flash.size // 1024))
        if part.family.startswith("STM32F4"):
            base, size = _SYSTEM_MEMORY_F4
            self.system_memory = RamArea("system memory", base, size, 0x00)
            areas.append(self.system_memory)
        self.sram = RamArea("SRAM", part.sram[0], part.sram[1], fill=0x00)
        areas.append(self.sram)
        self.areas: tuple[MemoryArea, ...] = tuple(areas)

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

    # ------------------------------------------------------------------ state file

    def memory_state(self) -> dict[str, object]:
        """The board's memories as a JSON-able record: the part, the serial, and every
        memory's bytes (hex) in runs that are not erased (flash: per erase unit)."""
        memories: dict[str, str] = {}
        for area in self.areas:
            if area is self.sram:
                continue
            if isinstance(area, NorFlash) and area is self.flash:
                for span in area.sectors:
                    if not area.is_erased(span.address, span.size):
                        memories[f"0x{span.address:08X}"] = area.read(span.address, span.size).hex()
            else:
                memories[f"0x{area.base:08X}"] = area.read(area.base, area.size).hex()
        return {"format": 1, "part": self.part.name, "serial": self.serial, "memories": memories}

    def save_state(self, path: str | os.PathLike[str] | None = None) -> None:
        """Write :meth:`memory_state` to ``path`` (default: the board's state file), atomically."""
        target = Path(path) if path is not None else self.state_file
        if target is None:
            raise ValueError("no state file: pass a path")
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_text(json.dumps(self.memory_state(), indent=1) + "\n", encoding="utf-8")
        os.replace(tmp, target)
        self._dirty = False

    def load_state(self, path: str | os.PathLike[str]) -> None:
        """Restore the memories from a file :meth:`save_state` wrote (ValueError if it is
        not one, or holds another part)."""
        try:
            doc = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ValueError(f"{path}: not a simulated board's state file ({exc})") from None
        if not isinstance(doc, dict) or doc.get("format") != 1:
            raise ValueError(f"{path}: not a simulated board's state file (format 1)")
        if doc.get("part") != self.part.name:
            raise ValueError(f"{path}: holds a {doc.get('part')!r} board, not a {self.part.name!r}")
        memories = doc.get("memories")
        if not isinstance(memories, dict):
            raise ValueError(f"{path}: no memories")
        self.flash.mass_erase()
        for where, data in memories.items():
            try:
                address, raw = int(where, 16), bytes.fromhex(data)
            except (TypeError, ValueError):
                raise ValueError(f"{path}: bad memory entry {where!r}") from None
            area = self._area(address, len(raw))
            if area is None:
                raise ValueError(f"{path}: 0x{address:08X}+{len(raw)} is no memory of this part")
            area.poke(address, raw)

    def _save_if_changed(self) -> None:
        if self._dirty and self.state_file is not None:
            self.save_state()

    def release_all(self, owner: object) -> None:
        """The host closed its handle: save the state file if the memories changed."""
        super().release_all(owner)
        self._save_if_changed()

    def disconnect(self) -> None:
        """Leaving the bus (leave, reset, power loss): save the state file first."""
        self._save_if_changed()
        super().disconnect()

    # ------------------------------------------------------------------ option bytes

    @property
    def option_bytes(self) -> bytes:
        """The raw option-byte block (empty for a part whose ROM exposes none)."""
        ob = self.part.option_bytes
        if ob is None or self.option_area is None:
            return b""
        return self.option_area.read(ob.address, ob.size)

    @property
    def rdp_level(self) -> int:
        """Read-protection level 0, 1 or 2, decoded from the RDP byte by the reference
        manual's rule (the row's level-0 and level-2 values; anything else is level 1)."""
        ob = self.part.option_bytes
        if ob is None:
            return 0
        return self._rdp_of(self.option_bytes)

    def _rdp_of(self, block: bytes) -> int:
        ob = self.part.option_bytes
        assert ob is not None
        value = block[ob.rdp_offset]
        if value == ob.rdp_level0:
            return 0
        return 2 if ob.rdp_level2 is not None and value == ob.rdp_level2 else 1

    def _nwrp(self) -> int:
        block = self.option_bytes
        return block[8] | block[9] << 8

    @property
    def wrp_sectors(self) -> int:
        """How many flash sectors have an nWRP bit in the block at 0x1FFFC000 (F4 rule):
        8 (RM0383, F401/F411: bits 8-14 of the half-word are not used) or, on a part with
        more than 8 sectors, 12 (RM0090 §3.6.4, nWRPi for 0 ≤ i ≤ 11: F405/F407, sectors
        0-11 of the F42x/F43x, whose sectors 12-23 have theirs in the second block at
        0x1FFEC000, not modelled: never protected here); 0 where nWRP is not modelled."""
        ob = self.part.option_bytes
        if ob is None or ob.wrp != "f4":
            return 0
        return 12 if len(self.flash.sectors) > 8 else 8

    def is_write_protected(self, sector: int) -> bool:
        """Whether flash sector ``sector`` is write-protected. Modelled for the F4 rule
        (RM0383 §3.6, RM0090 §3.6.4: nWRP bit ``i`` at 0 protects sector ``i``, for the
        :attr:`wrp_sectors` first sectors; with SPRMOD set, bit at 1 selects PCROP, which
        RM0090 §3.7.4 says also blocks writes); other parts and sectors: never."""
        if not 0 <= sector < self.wrp_sectors:
            return False
        nwrp = self._nwrp()
        bit = nwrp >> sector & 1
        return bool(bit) if nwrp & 0x8000 else not bit

    def set_read_protection(self, level: int) -> None:
        """Preset the RDP level (0, 1 or 2) directly in the option bytes."""
        ob = self.part.option_bytes
        if ob is None or self.option_area is None:
            raise ValueError(f"{self.part.name}: the ROM exposes no option bytes")
        if level not in (0, 1, 2):
            raise ValueError(f"RDP level must be 0, 1 or 2, got {level}")
        if level == self.rdp_level:
            return
        if level == 2 and ob.rdp_level2 is None:
            raise ValueError(f"{self.part.name} has no RDP level 2")
        value = {0: ob.rdp_level0, 1: 0x55, 2: ob.rdp_level2}[level]
        if level == 1 and value in (ob.rdp_level0, ob.rdp_level2):
            value = 0x00
        assert value is not None
        self._set_option_byte(ob.rdp_offset, value)

    def set_write_protection(self, sectors: Iterable[int]) -> None:
        """Preset the option bytes so that exactly ``sectors`` (0 to :attr:`wrp_sectors`
        - 1) are write-protected (F4 rule, in the polarity SPRMOD selects)."""
        count = self.wrp_sectors
        if not count:
            raise ValueError(f"{self.part.name}: write protection is not modelled")
        want = set(sectors)
        for s in want:
            if not 0 <= s < count:
                raise ValueError(f"sector numbers must be 0..{count - 1}, got {s!r}")
        nwrp = self._nwrp()
        sprmod = bool(nwrp & 0x8000)
        mask = (1 << count) - 1
        bits = 0
        for i in range(count):
            if (i in want) == sprmod:
                bits |= 1 << i
        nwrp = (nwrp & ~mask) | bits
        self._set_option_byte(8, nwrp & 0xFF)
        if count > 8:
            self._set_option_byte(9, nwrp >> 8)

    def _set_option_byte(self, offset: int, value: int) -> None:
        """Set one byte of a raw value/complement block, keeping its complement (the byte
        two further on) in step, as the F4/F1 block stores it."""
        ob = self.part.option_bytes
        assert ob is not None
        assert self.option_area is not None
        block = bytearray(self.option_bytes)
        block[offset] = value
        if ob.exposure == "raw" and ob.wrp == "f4" and offset % 8 < 2:
            block[offset + 2] = value ^ 0xFF
        self.option_area.poke(ob.address, bytes(block))

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

    # ------------------------------------------------------------------ descriptors

    def device_descriptor(self) -> bytes:
        """The ROM's device descriptor (bcdUSB and bcdDevice from the row)."""
        usb = self.part.usb
        bcd = usb.bcd_device if usb.bcd_device is not None else 0x0200
        return device_descriptor(usb.vid, usb.pid, bcd, bcd_usb=usb.bcd_usb)

    def configuration_descriptor(self, index: int = 0) -> bytes:
        """One configuration, one interface with an alternate setting per memory, then the
        DFU functional descriptor (after the last interface descriptor, as on the device)."""
        interfaces = [
            interface_descriptor(alt, DFU_PROTOCOL_DFU_MODE, 4 + alt)
            for alt in range(len(self.alt_strings))
        ]
        usb = self.part.usb
        return configuration(
            interfaces,
            self.functional.to_bytes(),
            max_power_ma=usb.max_power_ma,
            self_powered=usb.self_powered,
        )

    def strings(self) -> dict[int, str]:
        """Manufacturer, product, serial, then the memory-layout strings (4, 5, ...)."""
        usb = self.part.usb
        out = {1: usb.manufacturer, 2: usb.product, 3: self.serial}
        for alt, text in enumerate(self.alt_strings):
            out[4 + alt] = text
        return out

    # ------------------------------------------------------------------ requests

    def handle_class_request(self, setup: SetupPacket, data: bytes, timeout_ms: int) -> bytes:
        """The DFU requests, with the part's deviations: GETSTATUS must ask for 6 bytes;
        CLRSTATUS outside dfuERROR and the H7 rev V wedge follow the quirks."""
        if setup.kind == 1 and setup.recipient == 1 and setup.index == self.interface_number:
            if setup.request == Request.GETSTATUS and setup.is_in and setup.length != 6:
                self._reject(f"GETSTATUS with wLength {setup.length}, expected 6")
            if setup.request == Request.CLRSTATUS and not setup.is_in:
                if self._wedged:
                    self._wedged = False
                    self._busy = None
                    self.state, self.status = State.dfuERROR, Status.errUNKNOWN
                    return b""
                if (
                    self.state is not State.dfuERROR
                    and not self.quirks.stall_clrstatus_outside_error
                ):
                    self._pending = None
                    self.state, self.status = State.dfuERROR, Status.errUNKNOWN
                    return b""
            if setup.request == Request.GETSTATUS and self._wedged:
                return StatusReply(Status.OK, self._wedge_poll_ms, State.dfuDNBUSY).to_bytes()
        return super().handle_class_request(setup, data, timeout_ms)

    def control_transfer(
        self,
        setup: SetupPacket,
        data: bytes = b"",
        timeout_ms: int = 0,
        *,
        generation: int | None = None,
    ) -> bytes:
        """As :meth:`DfuModel.control_transfer`; an L4-class ROM answers a GETSTATUS that
        arrives while it is still busy at once (dfuDNBUSY and the time left), or stalls it
        (the state stays dfuDNBUSY), instead of holding it until the operation ends; with
        ``busy_status_held`` (STM32F072) one it does not stall is held as usual."""
        quirks = self.quirks
        if quirks.stall_dnload_while_busy and setup.kind == 1 and setup.request == Request.DNLOAD:
            with self.lock:
                self.poll()
                busy = self._busy
                if busy is not None and self.connected and self.clock.now < busy.ends_at:
                    self._answer_early(setup, len(data), generation)
                    raise Stall("DNLOAD while busy: stalled (F405 after a mass erase)")
        if (
            quirks.stall_getstatus_while_busy
            and setup.kind == 1
            and setup.request == Request.GETSTATUS
            and setup.length == 6
        ):
            with self.lock:
                self.poll()
                busy = self._busy
                if busy is not None and self.connected and self.clock.now < busy.ends_at:
                    stalled = self._stall_rng.random() < quirks.busy_stall_probability
                    if stalled or not quirks.busy_status_held:
                        self._answer_early(setup, 0, generation)
                    if stalled:
                        raise Stall("GETSTATUS while busy: stalled (L4-class ROM)")
                    if not quirks.busy_status_held:
                        left = max(1, math.ceil((busy.ends_at - self.clock.now) * 1000))
                        return StatusReply(Status.OK, left, State.dfuDNBUSY).to_bytes()
        return super().control_transfer(setup, data, timeout_ms, generation=generation)

    def _answer_early(self, setup: SetupPacket, data_length: int, generation: int | None) -> None:
        """Account for a request a busy ROM answers (or stalls) at once, as
        :meth:`DfuModel.control_transfer` does for the others."""
        self._check_alive(generation)
        name = request_name(setup)
        self.requests[name] += 1
        self.request_log.append(RequestRecord(self.clock.now, name, setup, data_length))
        self.clock.sleep(self.timing.transfer_cost(0))

    # ------------------------------------------------------------------ access rules

    def _check(self, address: int, length: int, access: int, what: str) -> _AltMap:
        amap = next((m for m in self._maps if m.contains(address, length)), None)
        if amap is None:
            raise DfuFailure(Status.errTARGET, f"{what} 0x{address:08X}+{length}: no memory")
        if not amap.allows(address, length, access):
            raise DfuFailure(Status.errTARGET, f"{what} 0x{address:08X}+{length}: not allowed")
        protected_ok = (MemoryKind.OPTION_BYTES, MemoryKind.FEATURE)
        if self.rdp_level and amap.alt.memory not in protected_ok:
            raise DfuFailure(Status.errVENDOR, f"{what} 0x{address:08X}: read protection")
        return amap

    def _physical(self, address: int, length: int, what: str) -> None:
        if not self.flash.contains(address, length):  # the ROM reported more than there is
            raise DfuFailure(
                Status.errTARGET, f"{what} 0x{address:08X}+{length}: beyond the physical flash"
            )

    def _reported(self, typical: float, kind: str = "") -> int | None:
        """bwPollTimeout to report: the fixed value the row records for ``kind`` (``erase``,
        ``program``, ``set_address``), else the typical duration; ``None`` (report the real
        duration) when honest."""
        if self.honest:
            return None
        poll = self.part.poll_timeouts
        fixed = getattr(poll, kind, None) if poll is not None and kind else None
        if isinstance(fixed, int):
            return fixed
        return max(0, math.ceil(typical * 1000 - 1e-9))

    # ------------------------------------------------------------------ DFU hooks

    def on_boot(self) -> None:
        """Back to the reset state: pointer at flash, the first-status rule of the part."""
        self.pointer = self.part.flash.address
        self._set_address_last = False
        self._wedged = False
        rule = self.quirks.first_status_error
        if self.entry == "reset" and self.quirks.first_status_error_on_reset is not None:
            rule = self.quirks.first_status_error_on_reset
        if rule == "always" or (rule == "no_application" and not self._valid_application()):
            self.state, self.status = State.dfuERROR, Status.errFIRMWARE

    def string_descriptor(self, index: int, langid: int = 0x0409) -> bytes:
        """As :meth:`UsbDeviceModel.string_descriptor`; a ROM with the
        ``string_length_claimed`` quirk claims more bytes in that descriptor's bLength than
        it sends (the host sees a short descriptor)."""
        raw = super().string_descriptor(index, langid)
        claimed = self.quirks.string_length_claimed
        if claimed is not None and claimed[0] == index:
            return bytes((claimed[1],)) + raw[1:]
        return raw

    def should_enumerate(self) -> bool:
        """At RDP level 2 the system bootloader is disabled: the device never enumerates."""
        return self.rdp_level != 2

    def _valid_application(self) -> bool:
        base, size = self.part.sram
        sp = int.from_bytes(self.flash.read(self.flash.base, 4), "little")
        return base <= sp <= base + size

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
        command_time = self.timing.timing.command
        if cmd == DfuseCommand.SET_ADDRESS_POINTER and len(arg) == 4:
            address = int.from_bytes(arg, "little")

            def set_pointer(_fraction: float) -> Status:
                self.pointer = address
                return Status.OK

            return Operation(
                Event.COMMAND,
                command_time,
                set_pointer,
                f"set address pointer 0x{address:08X}",
                reported_ms=self._reported(command_time, "set_address"),
            )
        if cmd == DfuseCommand.ERASE and len(arg) == 4:
            return self._erase(int.from_bytes(arg, "little"))
        if cmd == DfuseCommand.ERASE and not arg:
            return self._mass_erase()
        if cmd == DfuseCommand.READ_UNPROTECT and not arg and cmd in self.part.commands:
            return self._read_unprotect()
        if cmd == DfuseCommand.GET and not arg:
            return Operation(Event.COMMAND, command_time, lambda _f: Status.OK, "get")
        raise DfuFailure(Status.errSTALLEDPKT, f"unknown DfuSe command {data.hex(' ')}")

    def _begin(self, op: Operation, *, count: bool = True) -> StatusReply:
        if self.quirks.set_address_skips_busy and self._set_address_last and count:
            op.apply(1.0)
            self.state = State.dfuDNLOAD_IDLE
            return StatusReply(Status.OK, 0, State.dfuDNLOAD_IDLE)
        return super()._begin(op, count=count)

    def _erase(self, address: int) -> Operation:
        amap = self._check(address, 1, ERASE, "erase")
        if amap.alt.memory is MemoryKind.OPTION_BYTES and self.option_area is not None:
            area = self.option_area

            def erase_options(_fraction: float) -> Status:
                area.poke(area.base, b"\xff" * area.size)
                return Status.OK

            return Operation(
                Event.ERASE, self.timing.option_write_time(), erase_options, "erase option bytes"
            )
        if amap.alt.memory is not MemoryKind.FLASH:
            raise DfuFailure(Status.errTARGET, f"erase 0x{address:08X}: not flash")
        self._physical(address, 1, "erase")
        span = self.flash.sector_at(address)
        assert span is not None
        detail = f"erase sector {span.index} at 0x{span.address:08X}"
        if self.is_write_protected(span.index):
            return Operation(
                Event.ERASE, self.timing.timing.command, lambda _f: Status.OK, detail + " (WRP)"
            )
        actual, typical = self.timing.draw(self.timing.timing.flash.erase_duration(span.size))
        wedge = self.quirks.wedged_erase_from
        wedges = wedge is not None and span.address >= wedge

        def erase(fraction: float) -> Status:
            self.flash.erase_sector(span.index, fraction)
            if wedges and fraction >= 1.0:
                self._wedged = True
            return Status.OK

        return Operation(
            Event.ERASE, actual, erase, detail, reported_ms=self._reported(typical, "erase")
        )

    @property
    def _wedge_poll_ms(self) -> int:
        return max(
            1,
            round(self.timing.timing.flash.erase_duration(self.flash.sectors[-1].size).typ * 1000),
        )

    def _complete(self, op: Operation, apply: Callable[[float], Status]) -> None:
        self._dirty = True
        super()._complete(op, apply)
        if self._wedged and self.state is State.dfuDNLOAD_SYNC:
            self.state = State.dfuDNBUSY

    def _mass_erase(self) -> Operation:
        command = self.part.flash.mass_erase_command
        if not command.supported:
            # the ROM has no mass erase (STM32L0): it refuses the command with the row's
            # status (an estimate where the row says so) and the flash is unchanged
            assert command.refusal is not None
            estimate = " (status: estimate)" if command.estimate else ""
            raise DfuFailure(
                Status[command.refusal], f"mass erase: not supported by this ROM{estimate}"
            )
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
        actual, typical = self.timing.draw(self.timing.timing.flash.mass_erase)

        def erase(fraction: float) -> Status:
            self.flash.mass_erase(fraction)
            return Status.OK

        reported = self.quirks.mass_erase_poll_timeout_ms
        if reported is None:
            reported = self._reported(typical)
        return Operation(Event.MASS_ERASE, actual, erase, "mass erase", reported_ms=reported)

    def _read_unprotect(self) -> Operation:
        actual, typical = self.timing.draw(self.timing.timing.flash.mass_erase)

        def unprotect(fraction: float) -> Status:
            self.flash.mass_erase(fraction)
            if fraction >= 1.0 and self.part.option_bytes is not None:
                self._set_option_byte(
                    self.part.option_bytes.rdp_offset, self.part.option_bytes.rdp_level0
                )
            return Status.OK

        return Operation(
            Event.READ_UNPROTECT,
            actual,
            unprotect,
            "read unprotect",
            reset_after=True,
            reported_ms=self._reported(typical),
        )

    def _write(self, address: int, data: bytes) -> Operation:
        length = len(data)
        amap = self._check(address, length, WRITE, "write")
        detail = f"write {length} bytes at 0x{address:08X}"
        memory = amap.alt.memory
        if memory is MemoryKind.OPTION_BYTES:
            return self._option_write(address, data)
        holder = self._area(address, length)
        if memory is MemoryKind.OTP and isinstance(holder, NorFlash | OtpMemory):
            otp = holder

            def program_otp(fraction: float) -> Status:
                otp.program(address, data, fraction)
                return Status.OK

            return Operation(Event.WRITE, self.timing.program_time(length), program_otp, detail)
        if memory in (MemoryKind.FEATURE, MemoryKind.EEPROM, MemoryKind.RAM):
            area = self._area(address, length)
            if not isinstance(area, RamArea):
                raise DfuFailure(Status.errTARGET, f"{detail}: no memory")
            ram = area

            def write_ram(_fraction: float) -> Status:
                ram.write(address, data)
                return Status.OK

            return Operation(Event.WRITE, self.timing.timing.command, write_ram, detail)
        return self._flash_write(address, data, detail)

    def _flash_write(self, address: int, data: bytes, detail: str) -> Operation:
        length = len(data)
        self._physical(address, length, "write")
        unit = self.part.flash.program_unit
        if address % unit:
            raise DfuFailure(
                Status.errTARGET, f"{detail}: not aligned to the {unit}-byte programming unit"
            )
        if length % unit:
            raise DfuFailure(
                Status.errPROG, f"{detail}: not a whole number of {unit}-byte programming units"
            )
        flash = self.flash
        if self.part.flash.not_erased == "error":
            for at in range(address, address + length, unit):
                if not flash.is_erased(at, unit):
                    raise DfuFailure(Status.errPROG, f"{detail}: unit at 0x{at:08X} is not erased")
        # bytes in write-protected sectors are silently left alone
        pieces: list[tuple[int, bytes]] = []
        for span in flash.sectors:
            lo, hi = max(span.address, address), min(span.end, address + length)
            if lo < hi and not self.is_write_protected(span.index):
                pieces.append((lo, data[lo - address : hi - address]))
        total = sum(len(p) for _a, p in pieces)
        verify = self.part.flash.verify_after_program
        width = self.timing.timing.flash.program_width
        units = (total + width - 1) // width
        actual, typical = self.timing.draw(self.timing.timing.flash.word_program, units)

        def program(fraction: float) -> Status:
            # on power loss, whole programming units up to the fraction reached
            budget = (int(total * fraction) // unit * unit) if fraction < 1.0 else total
            for addr, piece in pieces:
                part = piece[:budget]
                flash.program(addr, part)
                budget -= len(part)
                if budget <= 0:
                    break
            if verify and fraction >= 1.0:
                for addr, piece in pieces:
                    if flash.read(addr, len(piece)) != piece:
                        return Status.errVERIFY
            return Status.OK

        return Operation(
            Event.WRITE, actual, program, detail, reported_ms=self._reported(typical, "program")
        )

    def _option_write(self, address: int, data: bytes) -> Operation:
        ob = self.part.option_bytes
        if ob is None or address != ob.address or len(data) != ob.size:
            where = f"{ob.size} bytes at 0x{ob.address:08X}" if ob is not None else "not at all"
            raise DfuFailure(
                Status.errTARGET,
                f"option bytes are written as {where}, got {len(data)} at 0x{address:08X}",
            )
        old_level = self.rdp_level
        new_level = self._rdp_of(data)
        regression = old_level == 1 and new_level == 0
        duration = self.timing.option_write_time()
        if regression:
            duration += self.timing.mass_erase_time(self.flash.size)
        area = self.option_area
        assert area is not None

        def write(fraction: float) -> Status:
            if regression:
                self.flash.mass_erase(fraction)
            if fraction >= 1.0:
                area.write(address, data)
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
            return self.part.commands
        if block == 1:
            raise DfuFailure(Status.errSTALLEDPKT, "UPLOAD block 1 is not used by DfuSe")
        address = self.pointer + (block - 2) * self.transfer_size
        self._check(address, length, READ, "read")
        area = self._area(address, length)
        if area is None:
            raise DfuFailure(Status.errTARGET, f"read 0x{address:08X}+{length}: no memory")
        return area.read(address, length)

    def on_zero_length_download(self, block: int) -> None:
        """STM32C0 quirk: without a Set Address right before, the leave fails (the
        GETSTATUS answers dfuERROR; IntergatedCircuits/LibUsbDfu#13: "Dfu state
        ManifestWaitReset wasn't reached, device returned Error"; the status is not
        quoted: errUNKNOWN, estimate) and the application does not start; GD32: the device
        leaves at once."""
        if self.quirks.leave_needs_set_address and not self._set_address_last:
            self._pending = None
            self.state, self.status = State.dfuERROR, Status.errUNKNOWN
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
        app = self.app
        if app is not None:
            app.power_cycle(at=self.event_time + self.timing.timing.reenumerate)
        elif self.return_after_leave is not None:
            self.power_cycle(at=self.event_time + self.return_after_leave)

    def reset_to_bootloader(self, delay: float = 0.0) -> None:
        """Reset with BOOT0 high: the bootloader comes back on the bus after ``delay``."""
        if self.app is not None:
            self.app.unplug()
        self.power_cycle(delay)
