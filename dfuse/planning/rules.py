"""The host follows the part's rules: from a part row (:mod:`dfuse.parts`) to what the
host does differently, without USB traffic.

* :func:`rules_for` - the :class:`~dfuse.protocol.session.SessionRules` of a part: the
  busy timeout from its worst-case operation, and each quirk's workaround, looked up in
  ONE table, :data:`QUIRK_RULES` (quirk → rule fields), not in code paths;
* :func:`corrected_info` - the device record with the part's physical flash where the ROM
  over-reports its layout (GD32VF103: dfu-util's ``quirks.c`` fix);
* :func:`pad_segments` - the image padded to the flash's programming unit (H7: 32-byte
  flash words; L4/G0/G4/WB: 8-byte double words; U5: 16 bytes) with the erased value;
* :func:`choose_erase` - page/sector erases or one mass erase, by modelled time (the
  datasheet's typical times, as pyOCD weighs its erase strategies), and only when the
  image covers everything the mass erase wipes.

An unknown device (no part) keeps the defaults: every function here is then the identity.
The simulator models the same rows (:mod:`dfuse.sim`); the two share facts, never logic.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from dfuse.errors import SafetyError
from dfuse.layout import MemoryLayout
from dfuse.parts import MemoryKind, Part, all_parts, identify_info
from dfuse.protocol.plan import EraseMode, normalize_segments
from dfuse.protocol.session import SessionRules
from dfuse.transport.base import AltSetting, DeviceInfo

__all__ = [
    "COMMAND_S",
    "MASS_ERASE_MARGIN",
    "MIN_BUSY_TIMEOUT_S",
    "QUIRK_RULES",
    "EraseChoice",
    "choose_erase",
    "corrected_info",
    "flash_layout",
    "follow",
    "pad_segments",
    "rules_for",
    "twins",
    "worst_case_s",
]

Segments = list[tuple[int, bytes | memoryview]]

#: The busy timeout never drops below this (USB and OS scheduling on a loaded host).
MIN_BUSY_TIMEOUT_S = 2.0
#: The busy timeout is this many times the part's slowest operation (its datasheet max).
BUSY_TIMEOUT_FACTOR = 2.0
#: A mass erase replaces page/sector erases only when its modelled time is at most this
#: fraction of theirs: the figures are typical values (some estimates), and within that
#: margin the erases that wipe nothing more are kept (the STM32L0 row models its mass
#: erase as its 1536 page erases).
MASS_ERASE_MARGIN = 0.9
#: The USB cost of one erase command: its DNLOAD and the GETSTATUS that reports it done,
#: about one 1 ms full-speed frame each (USB 2.0 §5.5; the GETSTATUS that starts the erase
#: overlaps with it).
COMMAND_S = 0.002


def _ms(seconds: float) -> int:
    return math.ceil(seconds * 1000)


#: Each quirk of :class:`dfuse.parts.Quirks` → the :class:`SessionRules` fields that work
#: around it, as ``(field, value of (quirk value, part))``. A quirk that needs no rule
#: (the generic host already copes) maps to ``()`` with the reason beside it; a test
#: checks that every quirk field is listed here.
QUIRK_RULES: Mapping[str, tuple[tuple[str, Callable[[object, Part], object]], ...]] = {
    # STM32H743 rev V: a bank-2 erase stays dfuDNBUSY for good; CubeProgrammer's
    # CLRSTATUS pair ends it (the erase is done)
    "wedged_erase_from": (("clear_status_when_overdue", lambda v, _p: 2 if v is not None else 0),),
    # L4-class ROMs stall a GETSTATUS that comes while busy: retry it (dfu-util: 3);
    # the others hold it until done: ask 1 ms early (bwPollTimeout is rounded up)
    "stall_getstatus_while_busy": (
        ("status_stall_retries", lambda v, _p: 8 if v else 3),
        ("poll_lead_ms", lambda v, _p: 0 if v else 1),
    ),
    # DFU 1.1 ROMs stall CLRSTATUS outside dfuERROR: recover with ABORT there
    "stall_clrstatus_outside_error": (("clear_status_outside_error", lambda v, _p: not v),),
    # GD32 (and H7) leave without answering the GETSTATUS after the zero-length DNLOAD
    "leave_without_status": (("status_after_leave", lambda v, _p: not v),),
    # STM32C0 manifests only after a Set Address right before the zero-length DNLOAD
    "leave_needs_set_address": (("set_address_before_leave", lambda v, _p: True),),
    # STM32F405 reports 100 ms for a mass erase of up to 32 s: wait the datasheet max
    "mass_erase_poll_timeout_ms": (
        ("mass_erase_wait_ms", lambda v, p: None if v is None else _ms(p.flash.mass_erase.max)),
    ),
    # a DNLOAD while busy stalls (F405 after its mass erase): the host sends none before
    # the device reports it is done (with mass_erase_wait_ms above)
    "stall_dnload_while_busy": (),
    # dfuERROR/errFIRMWARE on the first GETSTATUS: opening clears it (CLRSTATUS) anyway
    "first_status_error": (),
    # the ROM's sector map is wrong: corrected_info() gives the host the physical one
    "layout_over_reported": (),
    # a non-zero poll timeout for Set Address: the host honours what the ROM reports
    "set_address_poll_timeout_ms": (),
    # Set Address answers dfuDNLOAD-IDLE at once: the session takes it as done
    "set_address_skips_busy": (),
    # dfuIDLE after a reset where a cold start gives dfuERROR: opening copes with both
    "first_status_error_on_reset": (),
    # a busy GETSTATUS that is not stalled is held (F072): what the generic host expects;
    # the stalls are retried (stall_getstatus_while_busy)
    "busy_status_held": (),
    # a string descriptor claims more bytes than it sends (F429xG): the host decodes the
    # bytes it receives
    "string_length_claimed": (),
}


def worst_case_s(part: Part) -> float:
    """The part's slowest single operation, datasheet maximum, in seconds: a mass or bank
    erase, the largest page/sector erase, an option-byte write, or one block programmed."""
    flash = part.flash
    times = [flash.mass_erase.max, *(e.duration.max for e in flash.erase_times)]
    if flash.bank_erase is not None:
        times.append(flash.bank_erase.max)
    if part.option_bytes is not None:
        times.append(part.option_bytes.write_time.max)
    units = math.ceil(part.usb.transfer_size / max(flash.program_width, 1))
    times.append(units * flash.program_time.max)
    return max(times)


def twins(part: Part) -> tuple[Part, ...]:
    """The rows a device identified as ``part`` may really be: ``part`` and every row
    whose ROM reports exactly its identity (``identifiable = false``: an STM32F405 answers
    as an STM32F407)."""
    same = [
        p
        for p in all_parts()
        if p is not part
        and not p.identifiable
        and (p.usb.vid, p.usb.pid) == (part.usb.vid, part.usb.pid)
        and p.alt_strings == part.alt_strings
    ]
    return (part, *same)


def rules_for(
    part: Part | None, given: SessionRules | None = None, busy_timeout: float | None = None
) -> SessionRules:
    """The rules the host follows for ``part``: ``given`` rules win (the defaults for
    an unknown device); else a busy timeout of twice the slowest operation's datasheet
    maximum (at least :data:`MIN_BUSY_TIMEOUT_S`) and every quirk's workaround from
    :data:`QUIRK_RULES`, then the workarounds of the quirks a :func:`twins` row has
    and ``part`` has not (the device may be that row). ``busy_timeout`` (seconds)
    wins over both."""
    if given is not None or part is None:
        rules = given if given is not None else SessionRules()
        if busy_timeout is None:
            return rules
        return dataclasses.replace(rules, busy_timeout_s=busy_timeout)
    rules = SessionRules()
    rows = twins(part)
    worst = max(worst_case_s(p) for p in rows)
    changes: dict[str, object] = {
        "busy_timeout_s": max(MIN_BUSY_TIMEOUT_S, BUSY_TIMEOUT_FACTOR * worst)
    }
    for row in rows:
        active = row.quirks.active()
        for quirk, entries in QUIRK_RULES.items():
            if row is part or quirk in active:
                value = getattr(row.quirks, quirk)
                changes.update((name, rule(value, row)) for name, rule in entries)
    fixed = part.poll_timeouts
    holds = not part.quirks.stall_getstatus_while_busy
    if fixed is not None and fixed.program is not None and holds:
        # the ROM reports a fixed poll timeout for a block, far longer than programming it
        # (STM32F7: 104 ms for ~8 ms, fwupd#2696) and holds a GETSTATUS until it is done:
        # wait no longer than the datasheet's typical block, and a mass erase (whose hold
        # would outlast the transfer timeout) its maximum
        flash = part.flash
        block = math.ceil(part.usb.transfer_size / flash.program_width) * flash.program_time.typ
        changes["max_poll_ms"] = max(rules.min_poll_ms, _ms(block))
        changes["mass_erase_wait_ms"] = _ms(flash.mass_erase.max)
    if busy_timeout is not None:
        changes["busy_timeout_s"] = busy_timeout
    return dataclasses.replace(rules, **changes)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- layout


def _is_flash(part: Part, setting: AltSetting) -> bool:
    alt = next((a for a in part.alts if a.number == setting.number), None)
    return alt is not None and alt.memory is MemoryKind.FLASH


def flash_layout(part: Part, reported: MemoryLayout) -> MemoryLayout:
    """The part's physical main flash as a layout named like ``reported`` (with the access
    letter of its first sector)."""
    flash = part.flash
    letter = reported.sectors[0].letter if len(reported.sectors) else "g"
    groups = ",".join(
        f"{count}*{size // 1024}K{letter}" if size % 1024 == 0 else f"{count}*{size} {letter}"
        for count, size in flash.units
    )
    return MemoryLayout.parse(f"@{reported.name}/0x{flash.address:08X}/{groups}")


def corrected_info(info: DeviceInfo, part: Part | None) -> DeviceInfo:
    """``info`` with the part's physical flash layout on its flash alternate settings when
    the ROM over-reports it (:attr:`dfuse.parts.Quirks.layout_over_reported`: the
    GD32VF103 reports 512 × 2 KiB for 128 × 1 KiB); else ``info`` itself."""
    if part is None or not part.quirks.layout_over_reported:
        return info
    alts = tuple(
        dataclasses.replace(a, layout=flash_layout(part, a.layout))
        if a.layout is not None and _is_flash(part, a)
        else a
        for a in info.alt_settings
    )
    return dataclasses.replace(info, alt_settings=alts)


def follow(info: DeviceInfo) -> tuple[Part | None, DeviceInfo]:
    """The part a device is (:func:`dfuse.parts.identify_info`) and its record as the host
    uses it (:func:`corrected_info`)."""
    part = identify_info(info)
    return part, corrected_info(info, part)


def is_main_flash(part: Part | None, layout: MemoryLayout | None) -> bool:
    """Whether ``layout`` is the part's main flash (where its programming rules apply)."""
    if part is None or layout is None:
        return False
    flash = part.flash
    return flash.address <= layout.address < flash.end and layout.label.casefold() == next(
        (a.name.strip().casefold() for a in part.alts if a.memory is MemoryKind.FLASH), ""
    )


# --------------------------------------------------------------------------- padding


def pad_segments(segs: Segments, unit: int, fill: int, *, erased: bool = True) -> Segments:
    """``segs`` padded outwards to whole ``unit``-byte programming units with ``fill`` (the
    flash's erased value: programming it leaves a unit as it is). Pieces that share a
    unit are joined into one run (the gap filled too): a unit is programmed once.

    ``erased``: the download erases every sector it writes. Without it, padding would
    program bytes the image does not hold over whatever the flash holds there:
    :class:`~dfuse.errors.SafetyError`, naming the first such byte.
    """
    if unit <= 1:
        return segs
    runs: list[tuple[int, bytearray]] = []
    for address, data in normalize_segments(segs):
        lo = address - address % unit
        hi = -(-(address + len(data)) // unit) * unit
        if not erased and (lo, hi) != (address, address + len(data)):
            first = lo if lo < address else address + len(data)
            raise SafetyError(
                f"the flash is programmed in {unit}-byte units: the image's "
                f"{len(data)} bytes at 0x{address:08X} would be padded to "
                f"0x{lo:08X}..0x{hi - 1:08X}, over memory this download does not erase "
                f"(first at 0x{first:08X}); align the image to {unit} bytes or erase"
            )
        if runs and lo <= runs[-1][0] + len(runs[-1][1]):
            start, buf = runs[-1]
            del buf[address - start :]  # the previous piece's padding up to this one
            buf.extend(bytes([fill]) * (address - start - len(buf)))
        else:
            start, buf = lo, bytearray(bytes([fill]) * (address - lo))
            runs.append((start, buf))
        buf.extend(data)
        buf.extend(bytes([fill]) * (hi - start - len(buf)))
    return [(a, bytes(b)) for a, b in runs]


# --------------------------------------------------------------------------- erase


@dataclass(frozen=True, slots=True)
class EraseChoice:
    """How a download erases one memory, and why.

    Attributes:
        mode: the erase mode chosen.
        sectors_s: the typical time of erasing every touched page/sector one by one
            (each command's USB cost, :data:`COMMAND_S`, included).
        mass_s: the typical time of one mass erase, its USB cost included (``None``: not
            possible here, since the image does not cover everything it wipes, the part's
            ROM has no mass erase, or the part is unknown).
    """

    mode: EraseMode
    sectors_s: float = 0.0
    mass_s: float | None = None


def choose_erase(
    part: Part | None, layout: MemoryLayout | None, segs: Segments, mode: EraseMode
) -> EraseChoice:
    """The erase for ``segs`` in ``layout``: what was asked (``mode``), except that erasing
    sector by sector becomes one mass erase where the part's datasheet says it is quicker
    AND the image touches every erasable sector of the main flash, so that the mass erase
    wipes nothing the sector erases would have kept (L4/G0/G4/WB/U5: one mass erase costs
    about one page erase), and saves at least 10 % (:data:`MASS_ERASE_MARGIN`)."""
    if mode is not EraseMode.SECTORS or part is None or layout is None:
        return EraseChoice(mode)
    if not is_main_flash(part, layout):
        return EraseChoice(mode)
    touched: set[int] = set()
    for address, data in normalize_segments(segs):
        touched.update(s.index for s in layout.sectors_for(address, len(data)))
    flash = part.flash
    sizes = [s.size for s in layout.sectors if s.index in touched and s.erasable]
    sectors_s = sum(flash.erase_time(size).typ + COMMAND_S for size in sizes)
    everything = all(  # a mass erase wipes read-only sectors too: they must be erased anyway
        s.index in touched and s.erasable
        for s in layout.sectors
        if flash.address <= s.address < flash.end
    )
    covers = everything and layout.address == flash.address and layout.end >= flash.end
    if not covers or not flash.mass_erase_command.supported:  # no mass erase (STM32L0)
        return EraseChoice(mode, sectors_s)
    wait_ms = rules_for(part).mass_erase_wait_ms  # the host waits longer (F405)
    mass_s = max(flash.mass_erase.typ, (wait_ms or 0) / 1000) + COMMAND_S
    chosen = EraseMode.MASS if mass_s <= MASS_ERASE_MARGIN * sectors_s else mode
    return EraseChoice(chosen, sectors_s, mass_s)
