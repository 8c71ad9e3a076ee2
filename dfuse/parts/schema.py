"""The part database's schema: frozen dataclasses, and the loader that builds them from TOML.

A part row is data (``dfuse/parts/data/*.toml``, one file per family, probe-rs style); this
module only checks it against the schema and turns it into typed, frozen objects. Every fact
carries its evidence (a citation) and whether it was *observed* on a real device or is
*unconfirmed*/*estimated* (derived from a reference manual or datasheet pattern).

File shape (see docs/parts.md for every field)::

    [family]                  # defaults merged into every [[part]] of the file (deep merge)
    family = "STM32F4"
    [family.usb]
    vid = 0x0483
    ...
    [[part]]
    name = "stm32f411xe"
    aliases = ["stm32f411"]
    [[part.alt]]
    string = "@Internal Flash  /0x08000000/04*016Kg,01*064Kg,03*128Kg"
    memory = "flash"
    regions = [{ address = 0x08000000, sectors = [[4, 16384, "g"], [1, 65536, "g"]] }]
    status = "observed"
    evidence = ["owner/repo:path@commit"]

The loader imports nothing from dfuse but :mod:`dfuse.errors`: the host and the simulator
both read these rows and share their facts, never their logic.
"""

from __future__ import annotations

import enum
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Literal, cast

from dfuse.errors import PartDataError

__all__ = [
    "ACCESS_LETTERS",
    "AltSetting",
    "Bank",
    "Duration",
    "EraseTime",
    "Flash",
    "MassEraseCommand",
    "MemoryKind",
    "OptionBytesSpec",
    "Part",
    "PollTimeouts",
    "Quirks",
    "SectorGroup",
    "SectorRun",
    "Usb",
    "load_file",
    "load_text",
]

#: DfuSe access letters: a read, b erase, c read+erase, d write, e read+write, f erase+write,
#: g all three (bit 0 read, bit 1 erase, bit 2 write of ``ord(letter) - ord('a') + 1``).
ACCESS_LETTERS = "abcdefg"

Status = Literal["observed", "unconfirmed"]


class MemoryKind(enum.StrEnum):
    """What an alternate setting exposes."""

    FLASH = "flash"
    OPTION_BYTES = "option_bytes"
    OTP = "otp"
    FEATURE = "feature"
    EEPROM = "eeprom"
    RAM = "ram"


@dataclass(frozen=True, slots=True)
class SectorGroup:
    """``count`` sectors of ``size`` bytes with the rights of DfuSe access ``letter``."""

    count: int
    size: int
    letter: str

    @property
    def readable(self) -> bool:
        """Bit 0 of the access letter."""
        return bool((ord(self.letter) - 96) & 1)

    @property
    def erasable(self) -> bool:
        """Bit 1 of the access letter."""
        return bool((ord(self.letter) - 96) & 2)

    @property
    def writable(self) -> bool:
        """Bit 2 of the access letter."""
        return bool((ord(self.letter) - 96) & 4)


@dataclass(frozen=True, slots=True)
class SectorRun:
    """One ``/0x…/…`` region of an alt string, as numbers: its address and sector groups."""

    address: int
    groups: tuple[SectorGroup, ...]

    @property
    def size(self) -> int:
        """Bytes in the region."""
        return sum(g.count * g.size for g in self.groups)

    @property
    def end(self) -> int:
        """One past the region's last address."""
        return self.address + self.size

    def sectors(self) -> Iterator[tuple[int, int, str]]:
        """Every sector as ``(address, size, letter)``, in address order."""
        at = self.address
        for g in self.groups:
            for _ in range(g.count):
                yield at, g.size, g.letter
                at += g.size


@dataclass(frozen=True, slots=True)
class AltSetting:
    """One alternate setting of the ROM's DFU interface.

    Attributes:
        number: bAlternateSetting.
        string: the iInterface string exactly as the ROM reports it (spaces kept).
        memory: what it exposes (:class:`MemoryKind`).
        regions: the sector map the string describes, as numbers (a test checks that the
            host's :meth:`dfuse.layout.MemoryLayout.parse` of ``string`` gives the same map).
        status: ``"observed"`` (seen in a log of a real device, cited in ``evidence``) or
            ``"unconfirmed"`` (derived from the reference manual; ``evidence`` says how).
        evidence: citations.
    """

    number: int
    string: str
    memory: MemoryKind
    regions: tuple[SectorRun, ...]
    status: Status
    evidence: tuple[str, ...]

    @property
    def name(self) -> str:
        """The text between ``@`` and the first ``/`` (spaces kept)."""
        return self.string[1:].split("/", 1)[0]

    @property
    def observed(self) -> bool:
        """Whether a log of a real device shows this exact string."""
        return self.status == "observed"

    @property
    def address(self) -> int:
        """The lowest address of the map."""
        return min(r.address for r in self.regions)

    @property
    def end(self) -> int:
        """One past the highest address of the map."""
        return max(r.end for r in self.regions)

    def sectors(self) -> Iterator[tuple[int, int, str]]:
        """Every sector of every region as ``(address, size, letter)``, in address order."""
        for region in sorted(self.regions, key=lambda r: r.address):
            yield from region.sectors()

    def letter_at(self, address: int) -> str | None:
        """The access letter of the sector holding ``address`` (``None`` outside the map)."""
        for region in self.regions:
            if region.address <= address < region.end:
                at = region.address
                for g in region.groups:
                    if address < at + g.count * g.size:
                        return g.letter
                    at += g.count * g.size
        return None


@dataclass(frozen=True, slots=True)
class Duration:
    """A typical and a maximum duration in seconds, with where they come from.

    Attributes:
        estimate: ``True`` when not read from a datasheet table for this part (a family
            pattern, a scaled figure); ``evidence`` says which.
    """

    typ: float
    max: float
    estimate: bool = False
    evidence: str = ""


@dataclass(frozen=True, slots=True)
class EraseTime:
    """The erase time of one physical page/sector size."""

    size: int
    duration: Duration


@dataclass(frozen=True, slots=True)
class MassEraseCommand:
    """Whether the ROM executes DfuSe's mass erase (AN3156: ``0x41`` with no address).

    AN3156 documents the command for every ROM; a part whose bootloader refuses it (the
    STM32L0: its flash is erased page by page, or wholly only by an RDP 1 → 0 change)
    says so here, with the evidence, and the host never plans one on it.

    Attributes:
        supported: ``True`` (the default, AN3156) or ``False``.
        refusal: where not supported, the DFU status the ROM reports at the second
            GETSTATUS after the command (the simulator answers with it; the flash is
            unchanged): a name of :class:`dfuse.protocol.constants.Status`.
        estimate: ``True`` when no source quotes that status (it is then modelled).
        evidence: citations (required where not supported).
    """

    supported: bool = True
    refusal: str | None = None
    estimate: bool = False
    evidence: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Bank:
    """One flash bank: ``size`` bytes from ``address``."""

    address: int
    size: int

    @property
    def end(self) -> int:
        """One past the bank's last address."""
        return self.address + self.size


@dataclass(frozen=True, slots=True)
class Flash:
    """The physical main flash and the rules the silicon (and its ROM) programs it by.

    Attributes:
        address: first address.
        units: the physical erase units (pages or sectors) as ``(count, size)`` runs, in
            address order. Usually the alt string's map; differs where the ROM misreports
            (GD32VF103).
        banks: the banks, in address order (one for a single-bank part).
        program_unit: the granularity a DNLOAD must respect: its address and length are
            multiples of it (1 on F2/F4/F7, whose ROMs accept any length; 2 on F0/F1/F3;
            8 on L4/G0/G4/WB; 16 on U5; 32 on H7; 4 on L0).
        program_width: bytes one ``program_time`` covers (the flash's parallelism: 4 for
            F4 at x32, 64 for the L0's half-page).
        erased: the value of an erased byte (0xFF; 0x00 on the STM32L0/L1, whose flash
            programming sets bits).
        not_erased: what programming a unit that is not erased does: ``"and"`` (NOR: bits
            only clear), ``"error"`` (the flash interface refuses, the ROM reports errPROG).
        verify_after_program: the ROM reads back after programming and reports errVERIFY
            when the flash does not hold the data.
        program_time: programming ``program_width`` bytes.
        erase_times: erase time per unit size.
        mass_erase: erasing all of the flash at once (by the DfuSe command, or where the
            ROM has none, by the RDP 1 → 0 change that erases it).
        bank_erase: erasing one bank (dual-bank parts), ``None`` if not documented.
        evidence: citations for the geometry and rules.
        mass_erase_command: whether the ROM executes DfuSe's mass erase
            (:class:`MassEraseCommand`).
    """

    address: int
    units: tuple[tuple[int, int], ...]
    banks: tuple[Bank, ...]
    program_unit: int
    program_width: int
    erased: int
    not_erased: Literal["and", "error"]
    verify_after_program: bool
    program_time: Duration
    erase_times: tuple[EraseTime, ...]
    mass_erase: Duration
    bank_erase: Duration | None
    evidence: tuple[str, ...]
    mass_erase_command: MassEraseCommand = MassEraseCommand()

    @property
    def size(self) -> int:
        """Bytes of flash."""
        return sum(c * s for c, s in self.units)

    @property
    def end(self) -> int:
        """One past the last flash address."""
        return self.address + self.size

    def unit_sizes(self) -> tuple[int, ...]:
        """The size of every erase unit, in address order."""
        return tuple(s for c, s in self.units for _ in range(c))

    def units_for(self, address: int, length: int) -> tuple[tuple[int, int], ...]:
        """The physical erase units ``(address, size)`` overlapping ``[address, address +
        length)``, in address order (what erasing for a write there takes). Computed run by
        run: fast for any number of units.

        >>> from dfuse.parts import get
        >>> get("stm32f411xe").flash.units_for(0x08003FFF, 2)
        ((134217728, 16384), (134234112, 16384))
        """
        out: list[tuple[int, int]] = []
        stop, at = address + length, self.address
        for count, size in self.units:
            end = at + count * size
            if length > 0 and at < stop and address < end:
                first = max(0, (address - at) // size)
                last = min(count, -(-(stop - at) // size))
                out.extend((at + i * size, size) for i in range(first, last))
            at = end
        return tuple(out)

    def bank_of(self, address: int) -> int | None:
        """The index of the bank holding ``address`` (``None`` outside the flash)."""
        return next((i for i, b in enumerate(self.banks) if b.address <= address < b.end), None)

    def erase_time(self, size: int) -> Duration:
        """The erase time of a unit of ``size`` bytes (the smallest listed size ≥ ``size``;
        beyond the largest, scaled by size and marked an estimate)."""
        for entry in sorted(self.erase_times, key=lambda e: e.size):
            if size <= entry.size:
                return entry.duration
        largest = max(self.erase_times, key=lambda e: e.size)
        f = size / largest.size
        d = largest.duration
        return Duration(d.typ * f, d.max * f, True, f"scaled from {largest.size} bytes")


@dataclass(frozen=True, slots=True)
class OptionBytesSpec:
    """How the ROM exposes the option bytes.

    Attributes:
        exposure: ``"raw"`` (the option-byte block itself: value/complement pairs, F0-F4,
            F7, L0) or ``"registers"`` (the flash interface's option registers, L4/G0/G4/
            WB/U5/H7).
        address, size: where the alt reads and writes them.
        factory: the bytes as shipped (the data file may give fewer: the rest is 0xFF).
        rdp_offset: the byte offset of the RDP byte within the block.
        rdp_level0, rdp_level2: RDP byte values of level 0 and 2 (anything else: level 1;
            ``rdp_level2`` ``None`` where the part has no level 2, STM32F1/GD32).
        wrp: the write-protection encoding the simulator models: ``"f4"`` (nWRP bits at
            offset 8, SPRMOD at offset 9 bit 7, RM0383 §3.6; on a part with more than 8
            sectors, nWRP bits 0-11 over offsets 8-9, RM0090 §3.6.4) or ``"none"`` (not
            modelled).
        write_time: programming them (before the reset that loads them).
        evidence: citations.
    """

    exposure: Literal["raw", "registers"]
    address: int
    size: int
    factory: bytes
    rdp_offset: int
    rdp_level0: int
    rdp_level2: int | None
    wrp: Literal["f4", "none"]
    write_time: Duration
    evidence: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class PollTimeouts:
    """Fixed bwPollTimeout values a ROM reports, in ms, whatever the operation really takes
    (``None``: not observed; the simulator then reports the typical duration).

    Attributes:
        erase: reported for a page/sector erase.
        program: reported for a data block.
        set_address: reported for Set Address (non-zero on many ROMs: dfu-util d0ecfe7).
    """

    erase: int | None
    program: int | None
    set_address: int | None
    evidence: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Usb:
    """The ROM's USB identity and DFU functional descriptor.

    Attributes:
        bcd_device: ``None`` where no log shows it.
        bcd_usb: bcdUSB of the device descriptor (F4 ROMs: 0x0100).
        serial: a serial-number string a real ROM of this part reported (the simulated
            board's default; ST ROMs derive it from the unique ID); ``None`` if no log
            shows one.
        estimated: names of fields here that are estimates, not observed.
    """

    vid: int
    pid: int
    bcd_device: int | None
    bcd_usb: int
    manufacturer: str
    product: str
    transfer_size: int
    detach_timeout_ms: int
    attributes: int
    max_power_ma: int
    self_powered: bool
    serial: str | None
    evidence: tuple[str, ...]
    estimated: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Quirks:
    """A part's deviations from AN3156/DFU 1.1, as typed data. ``evidence`` maps each
    field that is set to its citation (the loader refuses a quirk without one).

    Attributes:
        first_status_error: when the first GETSTATUS after boot answers
            dfuERROR/errFIRMWARE: ``"never"``, ``"no_application"`` (flash holds no valid
            application: its first word is not a stack pointer in SRAM) or ``"always"``.
            It holds when the ROM is entered from power-on (a cold start).
        first_status_error_on_reset: the same rule when the ROM is entered by a reset with
            the boot pins already set (no power loss), where a log shows it differs;
            ``None``: as ``first_status_error`` (no evidence of a difference).
        mass_erase_poll_timeout_ms: bwPollTimeout reported for a mass erase, far shorter
            than the erase (STM32F405: 100 ms).
        wedged_erase_from: a sector erase at or above this address leaves the ROM in
            dfuDNBUSY past its poll timeout for good; CLRSTATUS answers errUNKNOWN/dfuERROR
            and a second CLRSTATUS OK/dfuIDLE, and the erase was done (STM32H743 rev V,
            bank 2: STM32CubeProgrammer's undocumented recovery).
        stall_getstatus_while_busy: stalls a GETSTATUS that arrives while it is busy
            (L4-class; dfu-util retries up to 3 times).
        busy_status_held: with ``stall_getstatus_while_busy``, a GETSTATUS it does not
            stall is held until the operation ends (then dfuDNLOAD-IDLE), instead of
            answered dfuDNBUSY at once (STM32F072: openmv/openmv#1508).
        stall_dnload_while_busy: stalls a DNLOAD that arrives while an operation still runs
            (the F405 after a mass erase that reported 100 ms: the next Set Address stalls).
        stall_clrstatus_outside_error: stalls CLRSTATUS in any state but dfuERROR (as DFU 1.1
            says) instead of answering it.
        leave_without_status: leaves right after the zero-length DNLOAD, without answering
            the GETSTATUS (GD32).
        leave_needs_set_address: manifests only after a Set Address right before the
            zero-length DNLOAD (STM32C0).
        layout_over_reported: the alt string reports more or bigger pages than the flash
            has (GD32VF103): :attr:`Flash.units` holds the truth.
        set_address_poll_timeout_ms: a non-zero bwPollTimeout reported for Set Address.
        set_address_skips_busy: Set Address answers its first GETSTATUS with dfuDNLOAD-IDLE
            directly, without dfuDNBUSY (STM32U5).
        string_length_claimed: ``(index, bLength)``: the string descriptor ``index``
            claims ``bLength`` bytes in its first byte but sends only its string (the
            STM32F429xG ROM: 166 claimed, 112 sent).
    """

    first_status_error: Literal["never", "no_application", "always"] = "never"
    first_status_error_on_reset: Literal["never", "no_application", "always"] | None = None
    mass_erase_poll_timeout_ms: int | None = None
    wedged_erase_from: int | None = None
    stall_getstatus_while_busy: bool = False
    busy_status_held: bool = False
    stall_dnload_while_busy: bool = False
    stall_clrstatus_outside_error: bool = True
    leave_without_status: bool = False
    leave_needs_set_address: bool = False
    layout_over_reported: bool = False
    set_address_poll_timeout_ms: int | None = None
    set_address_skips_busy: bool = False
    string_length_claimed: tuple[int, int] | None = None
    evidence: Mapping[str, str] = field(default_factory=dict, compare=False)

    def active(self) -> dict[str, object]:
        """The quirks that differ from the documented behaviour, by field name."""
        base = Quirks()
        return {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if f.name != "evidence" and getattr(self, f.name) != getattr(base, f.name)
        }


@dataclass(frozen=True, slots=True, repr=False)
class Part:
    """One part's ROM bootloader, as data (see the module docstring).

    Attributes:
        name: the canonical name (``"stm32f411xe"``).
        aliases: other names that select it (``"stm32f411"``).
        title: a display name.
        family: the family (``"STM32F4"``).
        references: reference manual, datasheet, application notes.
        usb: identity and functional descriptor.
        alts: the alternate settings, in bAlternateSetting order.
        flash: the main flash and its rules.
        option_bytes: ``None`` where the ROM exposes none.
        otp_lock_blocks: ``(blocks, block size)`` for an OTP alt with lock bytes after the
            data (F2/F4/F7), else ``None``.
        uid_address: the 96-bit unique ID's address, ``None`` if the part has none.
        flash_size_register: the address of the flash-size register (u16, KiB).
        sram: ``(address, size)`` of the main SRAM (a valid application's stack pointer
            lies in it).
        commands: the DfuSe commands UPLOAD block 0 lists.
        quirks: deviations, each with evidence.
        poll_timeouts: fixed bwPollTimeout values the ROM was seen to report.
        identifiable: ``False`` for a row whose ROM reports exactly another row's identity
            (same die, same ROM): :func:`dfuse.parts.identify` then names the other one.
        variant_of: for another ROM version of a part (its own bcdDevice and strings), the
            name of the part's main row (``"stm32f407"``); ``None`` for a main row.
        notes: free text for the docs.
        source: the data file it came from.
    """

    name: str
    aliases: tuple[str, ...]
    title: str
    family: str
    references: tuple[str, ...]
    usb: Usb
    alts: tuple[AltSetting, ...]
    flash: Flash
    option_bytes: OptionBytesSpec | None
    otp_lock_blocks: tuple[int, int] | None
    uid_address: int | None
    flash_size_register: int | None
    sram: tuple[int, int]
    commands: bytes
    quirks: Quirks
    poll_timeouts: PollTimeouts | None = None
    identifiable: bool = True
    notes: str = ""
    source: str = ""
    variant_of: str | None = None

    def __repr__(self) -> str:
        return f"Part({self.name!r})"

    @property
    def names(self) -> tuple[str, ...]:
        """The name and every alias."""
        return (self.name, *self.aliases)

    @property
    def alt_strings(self) -> tuple[str, ...]:
        """Every alt string, in alt order."""
        return tuple(a.string for a in self.alts)

    @property
    def observed(self) -> bool:
        """Whether every alt string was seen in a log of a real device."""
        return all(a.observed for a in self.alts)

    def alt(self, memory: MemoryKind) -> AltSetting | None:
        """The first alt exposing ``memory`` (``None`` if none does)."""
        return next((a for a in self.alts if a.memory is memory), None)

    def erase_plan_time(self, unit_sizes: list[int]) -> Duration:
        """Typical and maximum time to erase these physical units one by one."""
        ds = [self.flash.erase_time(s) for s in unit_sizes]
        return Duration(sum(d.typ for d in ds), sum(d.max for d in ds), any(d.estimate for d in ds))


# --------------------------------------------------------------------------- loader


class _Reader:
    """Typed access to one TOML table, with errors that name the file, part and field."""

    def __init__(self, data: Mapping[str, Any], source: str, part: str, path: str) -> None:
        self.data = data
        self.source, self.part, self.path = source, part, path
        self.used: set[str] = set()

    def fail(self, key: str, message: str) -> PartDataError:
        where = f"{self.path}.{key}" if self.path else key
        return PartDataError(message, source=self.source, part=self.part, field=where)

    def has(self, key: str) -> bool:
        return key in self.data

    def raw(self, key: str) -> Any:
        self.used.add(key)
        if key not in self.data:
            raise self.fail(key, "missing")
        return self.data[key]

    def integer(
        self, key: str, default: int | None = None, *, low: int = 0, high: int = 2**32
    ) -> int:
        if default is not None and key not in self.data:
            self.used.add(key)
            return default
        value = self.raw(key)
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise self.fail(key, f"expected an integer {low}..{high}, got {value!r}")
        return value

    def opt_int(self, key: str, *, low: int = 0, high: int = 2**32) -> int | None:
        if key not in self.data:
            self.used.add(key)
            return None
        return self.integer(key, low=low, high=high)

    def text(self, key: str, default: str | None = None) -> str:
        if default is not None and key not in self.data:
            self.used.add(key)
            return default
        value = self.raw(key)
        if not isinstance(value, str):
            raise self.fail(key, f"expected a string, got {value!r}")
        return value

    def flag(self, key: str, default: bool) -> bool:
        if key not in self.data:
            self.used.add(key)
            return default
        value = self.raw(key)
        if not isinstance(value, bool):
            raise self.fail(key, f"expected true or false, got {value!r}")
        return value

    def number(self, key: str) -> float:
        value = self.raw(key)
        if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
            raise self.fail(key, f"expected a non-negative number, got {value!r}")
        return float(value)

    def strings(self, key: str, *, required: bool = False) -> tuple[str, ...]:
        if key not in self.data and not required:
            self.used.add(key)
            return ()
        value = self.raw(key)
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(key, f"expected a list of strings, got {value!r}")
        if required and not value:
            raise self.fail(key, "expected at least one citation")
        return tuple(value)

    def choice(self, key: str, options: tuple[str, ...], default: str | None = None) -> str:
        value = self.text(key, default)
        if value not in options:
            raise self.fail(key, f"expected one of {', '.join(options)}, got {value!r}")
        return value

    def table(self, key: str) -> _Reader:
        value = self.raw(key)
        if not isinstance(value, dict):
            raise self.fail(key, f"expected a table, got {value!r}")
        return _Reader(value, self.source, self.part, f"{self.path}.{key}" if self.path else key)

    def tables(self, key: str) -> list[_Reader]:
        value = self.raw(key)
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise self.fail(key, "expected an array of tables")
        base = f"{self.path}.{key}" if self.path else key
        return [_Reader(v, self.source, self.part, f"{base}[{i}]") for i, v in enumerate(value)]

    def done(self) -> None:
        unknown = sorted(set(self.data) - self.used)
        if unknown:
            raise self.fail(unknown[0], f"unknown field (known: {', '.join(sorted(self.used))})")


def _duration(r: _Reader) -> Duration:
    d = Duration(
        r.number("typ"), r.number("max"), r.flag("estimate", False), r.text("evidence", "")
    )
    if d.typ > d.max:
        raise r.fail("typ", f"typ {d.typ} exceeds max {d.max}")
    if not d.evidence:
        raise r.fail("evidence", "every duration needs a citation")
    r.done()
    return d


def _groups(r: _Reader, key: str) -> tuple[SectorGroup, ...]:
    value = r.raw(key)
    out = []
    if not isinstance(value, list) or not value:
        raise r.fail(key, "expected a non-empty list of [count, size, letter]")
    for item in value:
        ok = (
            isinstance(item, list)
            and len(item) == 3
            and all(isinstance(x, int) and not isinstance(x, bool) and x > 0 for x in item[:2])
            and isinstance(item[2], str)
            and len(item[2]) == 1
            and item[2] in ACCESS_LETTERS
        )
        if not ok:
            raise r.fail(key, f"expected [count, size, access letter a-g], got {item!r}")
        out.append(SectorGroup(item[0], item[1], item[2]))
    return tuple(out)


def _alt(r: _Reader, number: int) -> AltSetting:
    string = r.text("string")
    if not string.startswith("@") or "/" not in string:
        raise r.fail("string", f"an alt string starts with '@' and has a '/', got {string!r}")
    regions = []
    for rr in r.tables("regions"):
        regions.append(SectorRun(rr.integer("address"), _groups(rr, "sectors")))
        rr.done()
    if not regions:
        raise r.fail("regions", "at least one region")
    for region in regions:
        if region.end > 2**32:
            raise r.fail("regions", f"region at 0x{region.address:08X} passes 2**32")
    status = cast(Status, r.choice("status", ("observed", "unconfirmed")))
    alt = AltSetting(
        number,
        string,
        MemoryKind(r.choice("memory", tuple(m.value for m in MemoryKind))),
        tuple(regions),
        status,
        r.strings("evidence", required=True),
    )
    r.done()
    return alt


def _flash(r: _Reader) -> Flash:
    units = []
    for item in r.raw("units"):
        if not (
            isinstance(item, list) and len(item) == 2 and all(isinstance(x, int) for x in item)
        ):
            raise r.fail("units", f"expected [count, size] pairs, got {item!r}")
        units.append((item[0], item[1]))
    address = r.integer("address")
    size = sum(c * s for c, s in units)
    banks: list[Bank] = []
    if r.has("banks"):
        for br in r.tables("banks"):
            banks.append(Bank(br.integer("address"), br.integer("size", low=1)))
            br.done()
    else:
        r.used.add("banks")
        banks.append(Bank(address, size))
    if sum(b.size for b in banks) != size or banks[0].address != address:
        raise r.fail("banks", f"banks must tile the {size} bytes of flash from 0x{address:08X}")
    erase_times = []
    for er in r.tables("erase_times"):
        size_ = er.integer("size", low=1)
        er.used.add("size")
        erase_times.append(EraseTime(size_, _duration(er)))
    bank_erase = _duration(r.table("bank_erase")) if r.has("bank_erase") else None
    r.used.add("bank_erase")
    command = (
        _mass_erase_command(r.table("mass_erase_command"))
        if r.has("mass_erase_command")
        else MassEraseCommand()
    )
    r.used.add("mass_erase_command")
    program_unit = r.integer("program_unit", low=1, high=256)
    if program_unit & (program_unit - 1):
        raise r.fail("program_unit", f"expected a power of two, got {program_unit}")
    flash = Flash(
        address=address,
        units=tuple(units),
        banks=tuple(banks),
        program_unit=program_unit,
        program_width=r.integer("program_width", program_unit, low=1, high=4096),
        erased=r.integer("erased", 0xFF, high=0xFF),
        not_erased=cast(Literal["and", "error"], r.choice("not_erased", ("and", "error"))),
        verify_after_program=r.flag("verify_after_program", False),
        program_time=_duration(r.table("program_time")),
        erase_times=tuple(erase_times),
        mass_erase=_duration(r.table("mass_erase")),
        bank_erase=bank_erase,
        evidence=r.strings("evidence", required=True),
        mass_erase_command=command,
    )
    r.done()
    return flash


#: The DFU status names a ROM may refuse a command with (DFU 1.1 §6.1.2, errTARGET..
#: errSTALLEDPKT; the schema imports nothing from dfuse.protocol).
REFUSAL_STATUSES = (
    "errTARGET", "errFILE", "errWRITE", "errERASE", "errCHECK_ERASED", "errPROG",
    "errVERIFY", "errADDRESS", "errNOTDONE", "errFIRMWARE", "errVENDOR", "errUSBR",
    "errPOR", "errUNKNOWN", "errSTALLEDPKT",
)  # fmt: skip


def _mass_erase_command(r: _Reader) -> MassEraseCommand:
    supported = r.flag("supported", True)
    refusal = r.text("refusal") if r.has("refusal") else None
    r.used.add("refusal")
    command = MassEraseCommand(
        supported=supported,
        refusal=refusal,
        estimate=r.flag("estimate", False),
        evidence=r.strings("evidence", required=True),
    )
    if supported and refusal is not None:
        raise r.fail("refusal", "a supported mass erase has no refusal status")
    if not supported and refusal not in REFUSAL_STATUSES:
        raise r.fail(
            "refusal",
            f"expected the DFU status the ROM refuses it with ({', '.join(REFUSAL_STATUSES)}), "
            f"got {refusal!r}",
        )
    r.done()
    return command


def _option_bytes(r: _Reader) -> OptionBytesSpec:
    size = r.integer("size", low=1, high=4096)
    factory_hex = r.text("factory")
    try:
        factory = bytes.fromhex(factory_hex)
    except ValueError:
        raise r.fail("factory", f"expected hex bytes, got {factory_hex!r}") from None
    if len(factory) > size:
        raise r.fail("factory", f"expected at most {size} bytes, got {len(factory)}")
    factory += b"\xff" * (size - len(factory))  # the rest reads 0xFF
    spec = OptionBytesSpec(
        exposure=cast(Literal["raw", "registers"], r.choice("exposure", ("raw", "registers"))),
        address=r.integer("address"),
        size=size,
        factory=factory,
        rdp_offset=r.integer("rdp_offset", high=size - 1),
        rdp_level0=r.integer("rdp_level0", high=0xFF),
        rdp_level2=r.opt_int("rdp_level2", high=0xFF),
        wrp=cast(Literal["f4", "none"], r.choice("wrp", ("f4", "none"), "none")),
        write_time=_duration(r.table("write_time")),
        evidence=r.strings("evidence", required=True),
    )
    r.done()
    return spec


def _usb(r: _Reader) -> Usb:
    usb = Usb(
        vid=r.integer("vid", high=0xFFFF),
        pid=r.integer("pid", high=0xFFFF),
        bcd_device=r.opt_int("bcd_device", high=0xFFFF),
        bcd_usb=r.integer("bcd_usb", high=0xFFFF),
        manufacturer=r.text("manufacturer"),
        product=r.text("product"),
        transfer_size=r.integer("transfer_size", low=8, high=0xFFFF),
        detach_timeout_ms=r.integer("detach_timeout_ms", high=0xFFFF),
        attributes=r.integer("attributes", high=0xFF),
        max_power_ma=r.integer("max_power_ma", 100, high=500),
        self_powered=r.flag("self_powered", True),
        serial=r.text("serial") if r.has("serial") else None,
        evidence=r.strings("evidence", required=True),
        estimated=r.strings("estimated"),
    )
    r.used.add("serial")
    known = {f.name for f in fields(Usb)}
    for name in usb.estimated:
        if name not in known:
            raise r.fail("estimated", f"no field {name!r}")
    r.done()
    return usb


_QUIRK_FIELDS = {f.name: f for f in fields(Quirks) if f.name != "evidence"}


def _quirks(r: _Reader) -> Quirks:
    values: dict[str, Any] = {}
    evidence: dict[str, str] = {}
    for name in list(r.data):
        if name not in _QUIRK_FIELDS:
            raise r.fail(name, f"unknown quirk (known: {', '.join(sorted(_QUIRK_FIELDS))})")
        q = r.table(name)
        value = q.raw("value")
        evidence[name] = " ".join(q.strings("evidence", required=True))
        q.done()
        default = _QUIRK_FIELDS[name].default
        if name == "string_length_claimed":
            if not (
                isinstance(value, list)
                and len(value) == 2
                and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
                and 0 < value[0] < 256
                and 2 <= value[1] < 256
            ):
                raise q.fail("value", f"expected [string index, bLength], got {value!r}")
            value = (value[0], value[1])
        elif name in ("first_status_error", "first_status_error_on_reset"):
            if value not in ("never", "no_application", "always"):
                raise q.fail("value", f"expected never, no_application or always, got {value!r}")
        elif isinstance(default, bool):
            if not isinstance(value, bool):
                raise q.fail("value", f"expected true or false, got {value!r}")
        elif not (isinstance(value, int) and not isinstance(value, bool) and value >= 0):
            raise q.fail("value", f"expected a non-negative integer, got {value!r}")
        values[name] = value
    r.done()
    return Quirks(**values, evidence=evidence)


def _poll(r: _Reader) -> PollTimeouts:
    poll = PollTimeouts(
        erase=r.opt_int("erase", high=0xFFFFFF),
        program=r.opt_int("program", high=0xFFFFFF),
        set_address=r.opt_int("set_address", high=0xFFFFFF),
        evidence=r.strings("evidence", required=True),
    )
    r.done()
    return poll


def _merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _part(data: Mapping[str, Any], source: str) -> Part:
    name = data.get("name")
    r = _Reader(data, source, name if isinstance(name, str) else "", "")
    name = r.text("name")
    if name != name.lower() or not name.replace("_", "").isalnum():
        raise r.fail("name", f"expected a lower-case alphanumeric name, got {name!r}")
    alts = tuple(_alt(ar, i) for i, ar in enumerate(r.tables("alt")))
    flash = _flash(r.table("flash"))
    option_bytes = _option_bytes(r.table("option_bytes")) if r.has("option_bytes") else None
    r.used.add("option_bytes")
    otp = r.raw("otp_lock_blocks") if r.has("otp_lock_blocks") else None
    r.used.add("otp_lock_blocks")
    if otp is not None and not (
        isinstance(otp, list) and len(otp) == 2 and all(isinstance(x, int) and x > 0 for x in otp)
    ):
        raise r.fail("otp_lock_blocks", f"expected [blocks, block size], got {otp!r}")
    sram = r.raw("sram")
    if not (isinstance(sram, list) and len(sram) == 2 and all(isinstance(x, int) for x in sram)):
        raise r.fail("sram", f"expected [address, size], got {sram!r}")
    commands = r.raw("commands") if r.has("commands") else [0x00, 0x21, 0x41, 0x92]
    r.used.add("commands")
    part = Part(
        name=name,
        aliases=r.strings("aliases"),
        title=r.text("title"),
        family=r.text("family"),
        references=r.strings("references", required=True),
        usb=_usb(r.table("usb")),
        alts=alts,
        flash=flash,
        option_bytes=option_bytes,
        otp_lock_blocks=(otp[0], otp[1]) if otp is not None else None,
        uid_address=r.opt_int("uid_address"),
        flash_size_register=r.opt_int("flash_size_register"),
        sram=(sram[0], sram[1]),
        commands=bytes(commands),
        quirks=_quirks(r.table("quirks")) if r.has("quirks") else Quirks(),
        poll_timeouts=_poll(r.table("poll_timeouts")) if r.has("poll_timeouts") else None,
        identifiable=r.flag("identifiable", True),
        notes=r.text("notes", ""),
        source=source,
        variant_of=r.text("variant_of") if r.has("variant_of") else None,
    )
    r.used.add("variant_of")
    r.used.update(("quirks", "poll_timeouts"))
    r.done()
    _check(part, r)
    return part


def _check(part: Part, r: _Reader) -> None:
    """Rules a row must keep with itself (the alt strings against the host's parser are
    checked by tests/parts, which may import dfuse.layout)."""
    flash_alt = part.alt(MemoryKind.FLASH)
    if flash_alt is None:
        raise r.fail("alt", "a part needs a flash alt")
    if not part.quirks.layout_over_reported:
        mapped = [(a, s) for a, s, _l in flash_alt.sectors()]
        physical, at = [], part.flash.address
        for size in part.flash.unit_sizes():
            physical.append((at, size))
            at += size
        if mapped != physical:
            raise r.fail(
                "flash.units",
                f"the flash alt's sectors {flash_alt.string!r} differ from the physical units "
                "(set the layout_over_reported quirk, with evidence, if the ROM misreports)",
            )
    for a in part.alts:
        if a.string.count("/") < 2:
            raise r.fail(f"alt[{a.number}].string", "expected '/0x<address>/<sectors>'")
    if part.option_bytes is not None:
        ob_alt = part.alt(MemoryKind.OPTION_BYTES)
        if ob_alt is not None and not any(
            reg.address <= part.option_bytes.address
            and part.option_bytes.address + part.option_bytes.size <= reg.end
            for reg in ob_alt.regions
        ):
            raise r.fail("option_bytes.address", "outside the option-byte alt's map")
    sizes = {s for _c, s in part.flash.units}
    listed = {e.size for e in part.flash.erase_times}
    if not sizes <= listed:
        raise r.fail("flash.erase_times", f"no erase time for unit sizes {sorted(sizes - listed)}")


def load_text(text: str, source: str = "") -> list[Part]:
    """The parts of one data file's text (:class:`~dfuse.errors.PartDataError` if it breaks
    the schema)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PartDataError(f"not valid TOML: {exc}", source=source) from None
    family = data.get("family", {})
    rows = data.get("part", [])
    extra = sorted(set(data) - {"family", "part"})
    if extra:
        raise PartDataError(f"unknown top-level table {extra[0]!r}", source=source)
    if not isinstance(family, dict) or not isinstance(rows, list):
        raise PartDataError("expected [family] and [[part]] tables", source=source)
    return [_part(_merge(family, row), source) for row in rows]


def load_file(path: str, text: str) -> list[Part]:
    """Same as :func:`load_text`, naming ``path`` in errors."""
    return load_text(text, path)
