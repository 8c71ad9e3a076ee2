"""Device commands: list, flash, read, verify, erase, unprotect, leave, detach, option-bytes.

Each opens one device through a :class:`dfuse.selector.Bench` (a real board for
``usb:``, a simulated one for ``sim:``) and calls the library; this module only
turns arguments into calls and results into text or JSON (the records' own
``to_dict()``).
"""

from __future__ import annotations

import argparse
import itertools
import signal
import sys
import threading
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from dfuse.cli.cmd_files import load_firmware
from dfuse.cli.cmd_station import open_log
from dfuse.cli.exitcodes import ExitCode, UsageError
from dfuse.cli.output import ProgressSink, Ui
from dfuse.cli.selector import parse_address, parse_int, parse_size
from dfuse.cli.session import open_bench
from dfuse.device import DfuDevice, Phase, TargetPlan
from dfuse.errors import (
    DeviceNotFoundError,
    DfuseError,
    SafetyError,
)
from dfuse.file import DfuFile, DfuSeFile, FileKind, Target, kind_for_path, save
from dfuse.file.convert import read_file
from dfuse.gang import GangPhase, flash_many
from dfuse.layout import MemoryLayout, Sector
from dfuse.optionbytes import (
    OTP_BLOCK_SIZE,
    OTP_BLOCKS,
    WRP_SECTORS,
    WRP_SECTORS_RM0090,
    BorLevel,
)
from dfuse.parts import identify_info
from dfuse.protocol.plan import EraseSector
from dfuse.selector import Bench
from dfuse.station.core import recording
from dfuse.transport.base import DeviceInfo, DeviceMode

__all__ = [
    "cmd_detach",
    "cmd_erase",
    "cmd_flash",
    "cmd_leave",
    "cmd_list",
    "cmd_option_bytes",
    "cmd_otp",
    "cmd_read",
    "cmd_unprotect",
    "cmd_verify",
    "save_target",
]


# --------------------------------------------------------------------------- helpers


def _progress(sink: ProgressSink) -> Any:
    """Adapt the library's ``progress(phase, done, total)`` to a sink."""

    def callback(phase: Phase, done: int, total: int) -> None:
        sink.update(str(phase), done, total)

    return callback


@contextmanager
def _device(args: argparse.Namespace, ui: Ui) -> Iterator[tuple[DfuDevice, Bench]]:
    """Open the selected device; library warnings become ``dfuse: warning:`` lines."""
    bench = open_bench(args)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            with bench.open() as dev:
                yield dev, bench
            # a simulated board finishes what it started (manifesting after a leave)
            bench.settle()
        finally:
            for w in caught:
                ui.warn(str(w.message))


def _size(n: int) -> str:
    if n >= 1024 * 1024 and n % (1024 * 1024) == 0:
        return f"{n // (1024 * 1024)} MiB"
    if n >= 1024 and n % 1024 == 0:
        return f"{n // 1024} KiB"
    return f"{n} bytes"


def _layout_summary(layout: MemoryLayout) -> str:
    groups: list[tuple[int, int, str]] = []
    for s in layout.sectors:
        if groups and groups[-1][1] == s.size and groups[-1][2] == s.letter:
            count, size, letter = groups[-1]
            groups[-1] = (count + 1, size, letter)
        else:
            groups.append((1, s.size, s.letter))
    access = {"a": "r", "b": "e", "c": "re", "d": "w", "e": "rw", "f": "ew", "g": "rew"}
    parts = [f"{n}×{_size(size)} {access.get(letter, letter)}" for n, size, letter in groups]
    return (
        f"0x{layout.address:08X}  {_size(layout.size):>8}  {len(layout.sectors)} sector(s): "
        + ", ".join(parts)
    )


def _for_alt(
    firmware: DfuSeFile | DfuFile, kind: FileKind, dev: DfuDevice, args: argparse.Namespace
) -> DfuSeFile | DfuFile:
    """A .hex, .s19 or .bin carries no alternate setting: it goes to the memory ``-a``
    selected (by number or name), not to alt 0. A .dfu keeps its targets' settings."""
    if (
        args.alt is None
        or kind not in (FileKind.IHEX, FileKind.SREC, FileKind.BINARY)
        or not isinstance(firmware, DfuSeFile)
        or dev.alt is None
    ):
        return firmware
    layout = dev.layout
    targets = tuple(
        Target(dev.alt, layout.label if layout is not None else t.name, t.elements)
        for t in firmware.targets
    )
    return DfuSeFile(targets, firmware.vendor_id, firmware.product_id, firmware.device_version)


def save_target(target: Target, path: str, info: DeviceInfo) -> str:
    """Write memory read from a device to ``path`` (``-``: raw binary on stdout); the format
    follows the extension (:func:`dfuse.file.save`). Returns the format's name."""
    if path == "-":
        sys.stdout.buffer.write(target.to_bin())
        sys.stdout.flush()
        return "bin"
    kind = save(
        target, path, vendor_id=info.vid, product_id=info.pid, device_version=info.bcd_device
    )
    return _FORMAT_NAMES.get(kind, "bin")


_FORMAT_NAMES = {FileKind.DFUSE: "dfu", FileKind.IHEX: "hex", FileKind.SREC: "srec"}


# --------------------------------------------------------------------------- list


def cmd_list(args: argparse.Namespace, ui: Ui) -> int:
    """``dfuse list``: every DFU device the selector matches, with its memory layouts."""
    bench = open_bench(args)
    devices = bench.find()
    parts = [identify_info(d) for d in devices]  # the part each one is, if known
    levels = [_rdp_level(info, bench) for info in devices]
    ui.emit(
        {
            "ok": True,
            "devices": [
                {**d.to_dict(), "rdp_level": level, "part": part.name if part else None}
                for d, level, part in zip(devices, levels, parts, strict=True)
            ],
        }
    )
    if not devices:
        ui.print("no DFU devices found")
        ui.hint(
            "hint: put the board in DFU mode (BOOT0 high, then reset); on Linux install the"
            " udev rule (`dfuse udev-rules --help`); or try `dfuse list -d sim:stm32f411`"
        )
        return ExitCode.OK
    for info, level, part in zip(devices, levels, parts, strict=True):
        name = " ".join(x for x in (info.manufacturer, info.product) if x) or "?"
        known = f"part={part.name}  " if part else ""
        rdp = "" if level is None else f"  read protection: RDP level {level}"
        ui.print(
            f"[bold]{info.vid:04x}:{info.pid:04x}[/bold]  {name}  {known}"
            f"serial={info.serial or '-'}  path={info.path}  bcdDevice={info.bcd_device:04x}  "
            f"{info.mode.value} mode  transfer size {info.transfer_size or '-'}{rdp}"
        )
        for alt in info.alt_settings:
            if alt.layout is not None:
                ui.text(f"  alt {alt.number}  {alt.layout.label:<16} {_layout_summary(alt.layout)}")
            else:
                ui.text(f"  alt {alt.number}  {alt.name or '(no name)'}")
    return ExitCode.OK


def _rdp_level(info: DeviceInfo, bench: Bench) -> int | None:
    """The read protection level of a DFU-mode board with an option-bytes memory, read
    from it (``None`` where it cannot be read: run-time mode, no such memory, busy)."""
    if info.mode is not DeviceMode.DFU or not any(
        alt.layout is not None and alt.layout.label.casefold() == "option bytes"
        for alt in info.alt_settings
    ):
        return None
    try:
        with DfuDevice.open(
            vid=info.vid,
            pid=info.pid,
            serial=info.serial,
            path=info.path,
            backend=bench.backend,
            clock=bench.clock,
        ) as dev:
            return int(dev.read_option_bytes().rdp_level)
    except DfuseError:
        return None


# --------------------------------------------------------------------------- flash


def _load_image(
    path: str, address_text: str | None
) -> tuple[FileKind, DfuSeFile | DfuFile, int | None]:
    address = None if address_text is None else parse_address(address_text)
    kind, firmware = load_firmware(path, address=address)
    if address is not None and kind in (FileKind.IHEX, FileKind.SREC, FileKind.DFUSE):
        raise UsageError(
            f"--address applies to raw .bin and plain DFU files; {path} ({kind.value}) "
            "carries its own addresses"
        )
    return kind, firmware, address


def _need_address(firmware: DfuSeFile | DfuFile, address: int | None, dev: DfuDevice) -> None:
    """A plain DFU file has no address: a DfuSe device needs ``--address`` for it."""
    if isinstance(firmware, DfuFile) and dev.is_dfuse and address is None:
        raise UsageError(
            "a plain DFU file carries no address and this is a DfuSe device:"
            " give --address (e.g. --address 0x08000000)"
        )


def _check_backup_contiguous(plans: tuple[TargetPlan, ...], path: str) -> None:
    """Refuse a raw-binary backup of sectors with a gap between them: the binary would fill
    the gap with 0xFF, memory the download never erases, and flashing the backup back
    would wipe it."""
    spans = sorted(
        (step.address, step.address + step.size)
        for plan in plans
        for step in plan.plan.erases
        if isinstance(step, EraseSector)
    )
    for (_lo, end), (start, _hi) in itertools.pairwise(spans):
        if start != end:
            raise UsageError(
                f"--backup {path}: the sectors to back up are not contiguous (a gap from "
                f"0x{end:08X} to 0x{start - 1:08X}); a raw binary would hold 0xFF there, not "
                "what the device holds, and flashing it back would erase that memory: "
                "use a .dfu, .hex or .s19 backup"
            )


def _backup(dev: DfuDevice, plans: tuple[TargetPlan, ...], path: str, ui: Ui) -> dict[str, Any]:
    """Read every sector the plans erase (what will be overwritten) into ``path``."""
    if any(plan.alt is None for plan in plans):
        raise UsageError("--backup needs a DfuSe device (plain DFU has no addresses)")
    if len({plan.alt for plan in plans}) > 1 and kind_for_path(path) is not FileKind.DFUSE:
        raise UsageError(f"--backup {path}: several alternate settings fit only in a .dfu file")
    if kind_for_path(path) is FileKind.BINARY:
        _check_backup_contiguous(plans, path)
    with ui.progress() as sink:
        backup = dev.backup(plans, progress=_progress(sink))
    save(backup, path)
    return {"path": path, "bytes": sum(target.size for target in backup.targets)}


@contextmanager
def _ctrl_c_cancels() -> Iterator[threading.Event]:
    """A cancel token that Ctrl-C sets: the download stops at its next safe point (after the
    current block or erase, never inside a request), brings the device back to dfuIDLE and
    raises :class:`~dfuse.errors.CancelledError` (what was erased and written; exit code
    130). A second Ctrl-C interrupts at once. Outside the main thread (where no signal
    handler can be set), or when SIGINT is ignored, the token is only returned."""
    cancel = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield cancel
        return
    previous = signal.getsignal(signal.SIGINT)
    if previous in (signal.SIG_IGN, None):
        yield cancel
        return

    def on_sigint(_signum: int, _frame: object) -> None:
        cancel.set()
        signal.signal(signal.SIGINT, previous)  # the next Ctrl-C interrupts at once

    signal.signal(signal.SIGINT, on_sigint)
    try:
        yield cancel
    finally:
        signal.signal(signal.SIGINT, previous)


def cmd_flash(args: argparse.Namespace, ui: Ui) -> int:
    """``dfuse flash FILE``: erase what the image touches, write, verify, optionally leave."""
    kind, firmware, address = _load_image(args.file, args.address)
    guards = {
        "allow_option_bytes": args.allow_option_bytes,
        "allow_otp": args.allow_otp,
        "allow_otp_lock": args.allow_otp_lock,
        "allow_permanent_rdp2": args.permanently_lock,
    }
    if args.all:
        if any(guards.values()):
            raise UsageError("--all flashes the main memory only: no --allow-* flags with it")
        return _flash_all(args, ui, firmware, address)
    options: dict[str, Any] = {
        "address": address,
        "verify": not args.no_verify,
        "force": args.force,
        "leave": args.leave,
        "incremental": args.incremental,
        **{key: True for key, given in guards.items() if given},
    }
    log = open_log(args)  # --log: unusable store = an error before the device is touched
    with _device(args, ui) as (dev, _bench):
        _need_address(firmware, address, dev)
        firmware = _for_alt(firmware, kind, dev, args)
        result: dict[str, Any] = {
            "ok": True,
            "file": args.file,
            "device": dev.info.to_dict(),
            "dry_run": args.dry_run,
        }
        if args.dry_run or args.backup:
            with ui.progress() as sink:  # an incremental plan reads the device back first
                plans = dev.plan(firmware, progress=_progress(sink), **options)
            result["targets"] = [p.to_dict() for p in plans]
            if args.dry_run:
                ui.emit(result)
                ui.print(f"[bold]dry run[/bold]: {args.file} → {dev.info.describe()}")
                for plan in plans:
                    ui.text(str(plan))
                return ExitCode.OK
            result["backup"] = _backup(dev, plans, args.backup, ui)
            ui.note(f"backed up {result['backup']['bytes']} bytes to {args.backup}")
        start = time.perf_counter()
        device_start = dev.clock.now
        with (
            ui.progress() as sink,
            recording(log, dev, firmware, image_name=args.file) as rec,
            _ctrl_c_cancels() as cancel,
        ):
            plans = rec.plans = dev.download(
                firmware, progress=_progress(sink), cancel=cancel, **options
            )
        result["seconds"] = round(time.perf_counter() - start, 3)
        result["device_seconds"] = round(dev.clock.now - device_start, 3)
        # a plain DFU device that resets after manifesting cannot be read back
        result["verified"] = not args.no_verify and all(
            p.plan.verifies or not p.plan.writes for p in plans
        )
        result["left"] = args.leave
        result["targets"] = [p.to_dict() for p in plans]
    ui.emit(result)
    for plan in plans:
        p = plan.plan
        where = f"alt {plan.alt} ({plan.name})" if plan.alt is not None else "the device"
        unchanged = (
            f"; {len(p.skipped_sectors)} of {len(p.sectors)} sector(s) unchanged"
            if p.incremental
            else ""
        )
        ui.print(
            f"flashed {p.image_size} bytes to {where}: erased {len(p.erases)} sector(s)"
            f" ({_size(p.erase_bytes)}), wrote {len(p.writes)} block(s)"
            f" ({p.write_bytes} bytes, {p.skipped_bytes} skipped){unchanged}"
        )
    if result["verified"]:
        tail = "verified"
    elif args.no_verify:
        tail = "not verified (--no-verify)"
    else:
        tail = "not verified (the device cannot be read back after it manifests the firmware)"
    ui.print(
        f"[green]done[/green]: {tail}"
        + (", application started" if args.leave else "")
        + f" in {result['seconds']:.2f} s (device time {result['device_seconds']:.2f} s)"
    )
    return ExitCode.OK


def _flash_all(
    args: argparse.Namespace, ui: Ui, firmware: DfuSeFile | DfuFile, address: int | None
) -> int:
    """``flash --all``: every matching DFU-mode board at once (:func:`dfuse.gang.flash_many`)."""
    if args.dry_run or args.backup:
        raise UsageError("--all cannot be combined with --dry-run or --backup")
    log = open_log(args)  # --log: unusable store = an error before any board is touched
    bench = open_bench(args)
    boards = [info for info in bench.find() if info.mode is DeviceMode.DFU]
    if not boards:
        raise DeviceNotFoundError(f"no DFU-mode device found matching {bench.selector}")
    if isinstance(firmware, DfuFile) and address is None:
        raise UsageError("a plain DFU file carries no address: give --address")
    with ui.progress(boards=True) as sink, _ctrl_c_cancels() as cancel:

        def progress(name: str, phase: GangPhase, percent: float) -> None:
            sink.board(name, str(phase), percent)

        report = flash_many(
            boards,
            firmware,
            backend=bench.backend,
            clock=bench.clock,
            verify=not args.no_verify,
            progress=progress,
            address=address,
            alt=bench.selector.alt,
            incremental=args.incremental,
            leave=args.leave,
            force=args.force,
            record=log,
            image_name=args.file,
            cancel=cancel,
        )
    bench.settle()
    ui.emit({"file": args.file, **report.to_dict()})
    ui.text(report.summary())
    if report.ok:
        return ExitCode.OK
    if cancel.is_set():
        return ExitCode.INTERRUPTED
    return ExitCode.gang(len(report.failed))


# --------------------------------------------------------------------------- read / verify


def cmd_read(args: argparse.Namespace, ui: Ui) -> int:
    """``dfuse read OUTPUT``: upload memory to a file."""
    if (args.address is None) != (args.length is None):
        raise UsageError("give both --address and --length, or neither (the whole memory)")
    if args.output == "-" and ui.json_mode:
        raise UsageError(
            "read - writes the memory to stdout, where --json prints its result:"
            " write the memory to a file, or leave out --json"
        )
    address = None if args.address is None else parse_address(args.address)
    length = None if args.length is None else parse_size(args.length, what="length")
    if length == 0:
        raise UsageError(f"--length {args.length} reads nothing: give at least 1 byte")
    with _device(args, ui) as (dev, _bench):
        start = time.perf_counter()
        with ui.progress() as sink:
            if address is None or length is None:
                target = dev.upload_alt(progress=_progress(sink))
            else:
                data = dev.upload(address, length, progress=_progress(sink))
                layout = dev.layout
                target = Target.from_segments(
                    [(address, data)],
                    alt_setting=dev.alt or 0,
                    name=layout.label if layout is not None else "",
                )
        fmt = save_target(target, args.output, dev.info)
        info = dev.info
    seconds = time.perf_counter() - start
    ui.emit(
        {
            "ok": True,
            "output": args.output,
            "format": fmt,
            "alt_setting": target.alt_setting,
            "address": target.start_address,
            "size": target.size,
            "seconds": round(seconds, 3),
            "device": info.to_dict(),
        }
    )
    if args.output != "-":
        start_text = f"0x{target.start_address:08X}" if target.start_address is not None else "-"
        ui.print(
            f"read {target.size} bytes from {start_text} (alt {target.alt_setting})"
            f" into {args.output} ({fmt}) in {seconds:.2f} s"
        )
    return ExitCode.OK


def cmd_verify(args: argparse.Namespace, ui: Ui) -> int:
    """``dfuse verify FILE``: compare device memory with a file (exit 5 on a mismatch)."""
    kind, firmware, address = _load_image(args.file, args.address)
    with _device(args, ui) as (dev, _bench):
        _need_address(firmware, address, dev)
        firmware = _for_alt(firmware, kind, dev, args)
        with ui.progress() as sink:
            dev.verify(firmware, address=address, progress=_progress(sink))
    size = firmware.size if isinstance(firmware, DfuSeFile) else len(firmware.payload)
    ui.emit({"ok": True, "file": args.file, "verified_bytes": size, "match": True})
    ui.print(f"[green]match[/green]: the device holds the {size} bytes of {args.file}")
    return ExitCode.OK


# --------------------------------------------------------------------------- erase & co


def _sectors(specs: list[str], layout: MemoryLayout | None) -> list[Sector | int]:
    """Sector numbers, ranges (``0-3``) and addresses (``0x08004000``) → the library's terms."""
    if layout is None:
        raise UsageError("the selected alternate setting has no memory layout to erase")
    chosen: list[Sector | int] = []
    count = len(layout.sectors)
    for spec in specs:
        for part in filter(None, spec.split(",")):
            first, dash, last = part.partition("-")
            if part.lower().startswith("0x") and not dash:
                chosen.append(parse_address(part))
                continue
            lo = parse_int(first, what="sector number")
            hi = parse_int(last, what="sector number") if dash else lo
            if lo > hi or hi >= count:
                raise UsageError(
                    f"invalid sector {part!r}: {layout.label} has sectors 0 to {count - 1}"
                )
            chosen.extend(layout.sectors[lo : hi + 1])
    return chosen


def cmd_erase(args: argparse.Namespace, ui: Ui) -> int:
    """``dfuse erase SECTOR... | --all``."""
    if bool(args.sectors) == bool(args.all):
        raise UsageError("give the sectors to erase, or --all for a mass erase (not both)")
    if args.all and not args.yes:
        raise SafetyError(
            "a mass erase wipes the whole flash; pass confirm=True to do it", override="confirm"
        )
    with _device(args, ui) as (dev, _bench):
        start = time.perf_counter()
        if args.all:
            with ui.progress() as sink:
                sink.update("erase", 0, 1)
                dev.mass_erase()
                sink.update("erase", 1, 1)
            erased: list[dict[str, Any]] = [{"all": True}]
        else:
            sectors = _sectors(args.sectors, dev.layout)
            with ui.progress() as sink:
                dev.erase(sectors, progress=_progress(sink))
            layout = dev.layout
            assert layout is not None
            found = {
                s.address: s
                for s in (w if isinstance(w, Sector) else layout.sector_at(w) for w in sectors)
                if s is not None
            }
            erased = [
                {"sector": s.index, "address": s.address, "size": s.size}
                for s in sorted(found.values(), key=lambda s: s.address)
            ]
    seconds = time.perf_counter() - start
    ui.emit({"ok": True, "erased": erased, "seconds": round(seconds, 3)})
    if args.all:
        ui.print(f"mass erase done in {seconds:.2f} s")
    else:
        names = ", ".join(f"{e['sector']} (0x{e['address']:08X})" for e in erased)
        ui.print(f"erased sector(s) {names} in {seconds:.2f} s")
    return ExitCode.OK


def cmd_unprotect(args: argparse.Namespace, ui: Ui) -> int:
    """``dfuse unprotect --yes``: Read Unprotect (mass-erases the flash; the device resets)."""
    if not args.yes:  # the library's guard, checked before the device is opened
        raise SafetyError(
            "Read Unprotect mass-erases the whole flash and resets the device;"
            " pass confirm=True to do it",
            override="confirm",
        )
    with _device(args, ui) as (dev, _bench):
        options = dev.read_unprotect(confirm=args.yes, reconnect=True)
    level = None if options is None else int(options.rdp_level)
    ui.emit({"ok": True, "unprotected": True, "rdp_level": level})
    ui.print(
        "read protection removed: the flash was erased, the device reset and now reports"
        f" RDP level {level}"
    )
    return ExitCode.OK


def cmd_leave(args: argparse.Namespace, ui: Ui) -> int:
    """``dfuse leave``: start the application."""
    address = None if args.address is None else parse_address(args.address)
    with _device(args, ui) as (dev, _bench):
        dev.leave(address)
    ui.emit({"ok": True, "left": True, "address": address})
    where = f" at 0x{address:08X}" if address is not None else ""
    ui.print(f"left DFU mode: the application starts{where}")
    return ExitCode.OK


def cmd_detach(args: argparse.Namespace, ui: Ui) -> int:
    """``dfuse detach``: run-time mode → DFU mode."""
    with _device(args, ui) as (dev, _bench):
        new = dev.detach()
        try:
            info = new.info
        finally:
            new.close()
    ui.emit({"ok": True, "device": info.to_dict()})
    ui.print(f"detached: now in DFU mode as {info.describe()}")
    return ExitCode.OK


# --------------------------------------------------------------------------- option bytes


def _sector_numbers(text: str) -> list[int]:
    """``"0,1,4-7"`` → [0, 1, 4, 5, 6, 7]."""
    numbers: list[int] = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        first, dash, last = part.partition("-")
        lo = parse_int(first, what="sector number")
        hi = parse_int(last, what="sector number") if dash else lo
        if lo > hi or hi >= WRP_SECTORS_RM0090:
            raise UsageError(
                f"invalid sector {part!r}: write protection covers sectors 0 to "
                f"{WRP_SECTORS_RM0090 - 1} (0 to {WRP_SECTORS - 1} on an 8-sector F401/F411)"
            )
        numbers.extend(range(lo, hi + 1))
    if not numbers:
        raise UsageError(f"invalid sector list {text!r}: expected e.g. 0,1,4-7")
    return numbers


def cmd_option_bytes(args: argparse.Namespace, ui: Ui) -> int:
    """``dfuse option-bytes``: show them decoded; change them with ``--yes``."""
    changing = any(x is not None for x in (args.rdp, args.protect, args.unprotect, args.bor))
    if args.rdp == 2 and not args.permanently_lock:
        raise SafetyError(
            "RDP level 2 is permanent: the chip can never again be read, debugged or"
            " reflashed over DFU; add --permanently-lock (and --yes) if that is really wanted"
        )
    protect = _sector_numbers(args.protect) if args.protect is not None else []
    unprotect = _sector_numbers(args.unprotect) if args.unprotect is not None else []
    with _device(args, ui) as (dev, _bench):
        current = dev.read_option_bytes()
        if not changing:
            ui.emit({"ok": True, "option_bytes": current.to_dict()})
            ui.text(current.describe())
            return ExitCode.OK
        new = current
        if args.rdp is not None:
            new = new.with_rdp(args.rdp, allow_level_2=args.permanently_lock)
        if protect:
            new = new.with_sectors_protected(protect)
        if unprotect:
            new = new.with_sectors_unprotected(unprotect)
        if args.bor is not None:
            new = new.with_bor_level(
                BorLevel.OFF if args.bor == "off" else BorLevel[f"LEVEL_{args.bor}"]
            )
        if new == current:
            ui.emit({"ok": True, "changed": False, "option_bytes": current.to_dict()})
            ui.print("the option bytes already hold these values: nothing written")
            return ExitCode.OK
        if not args.yes:
            ui.print("the option bytes would become:")
            ui.text(new.describe())
            erase = (
                " and erases the whole flash (RDP 1 → 0)"
                if current.rdp_level == 1 and new.rdp_level == 0
                else ""
            )
            raise SafetyError(
                f"writing the option bytes resets the device{erase}; add --yes to write them"
            )
        # writes, waits for the reset and re-enumeration, reads back to confirm
        confirmed = dev.change_option_bytes(
            new, confirm=True, allow_permanent_rdp2=args.permanently_lock
        )
        if new.rdp_level == 2:  # the bootloader is gone for good: nothing to read back
            ui.emit({"ok": True, "changed": True, "option_bytes": new.to_dict()})
            ui.print("RDP level 2 set: the chip is locked for good (no DFU, no debug)")
            return ExitCode.OK
    ui.emit({"ok": True, "changed": True, "option_bytes": confirmed.to_dict()})
    ui.print("option bytes written; the device reset and reads back:")
    ui.text(confirmed.describe())
    return ExitCode.OK


# --------------------------------------------------------------------------- OTP


def _otp_block(text: str) -> int:
    block = parse_int(text, what="OTP block")
    if block >= OTP_BLOCKS:
        raise UsageError(f"invalid OTP block {text!r}: expected 0 to {OTP_BLOCKS - 1}")
    return block


def _otp_data(args: argparse.Namespace) -> bytes:
    if args.data_file is not None:
        data = read_file(args.data_file)
    elif args.data is not None:
        try:
            data = bytes.fromhex(args.data.replace(":", " "))
        except ValueError:
            raise UsageError(f"invalid --data {args.data!r}: expected hex bytes") from None
    else:
        raise UsageError("--write needs --data HEX or --data-file PATH")
    if not 0 < len(data) <= OTP_BLOCK_SIZE:
        raise UsageError(f"an OTP block holds 1 to {OTP_BLOCK_SIZE} bytes, got {len(data)}")
    return data.ljust(OTP_BLOCK_SIZE, b"\xff")


def cmd_otp(args: argparse.Namespace, ui: Ui) -> int:
    """``dfuse otp``: show the OTP area; ``--write N --data HEX``; ``--lock N --yes``."""
    write = _otp_block(args.write) if args.write is not None else None
    lock = _otp_block(args.lock) if args.lock is not None else None
    if write is None and (args.data is not None or args.data_file is not None):
        raise UsageError("--data/--data-file need --write BLOCK")
    data = _otp_data(args) if write is not None else b""
    if lock is not None and not args.yes:
        raise SafetyError(
            f"locking OTP block {lock} is permanent (it can never be written again);"
            " add --yes to confirm"
        )
    with _device(args, ui) as (dev, _bench):
        if write is not None:
            area = dev.write_otp(write, data, lock=lock == write, confirm=args.yes)
        if lock is not None and lock != write:
            area = dev.lock_otp(lock, confirm=args.yes)
        if write is None and lock is None:
            area = dev.read_otp()
    ui.emit({"ok": True, "written": write, "locked_now": lock, "otp": area.to_dict()})
    if write is not None:
        ui.print(f"programmed OTP block {write}")
    if lock is not None:
        ui.print(f"locked OTP block {lock}")
    ui.text(area.describe())
    return ExitCode.OK
