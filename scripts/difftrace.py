#!/usr/bin/env python3
"""Differential traces: the same verbs on the same simulated boards, recorded, so that two
versions of dfuse can be compared transfer by transfer.

    PYTHONPATH=/path/to/old python3 scripts/difftrace.py run /tmp/old
    PYTHONPATH=/path/to/new python3 scripts/difftrace.py run /tmp/new
    python3 scripts/difftrace.py compare /tmp/old /tmp/new

``run`` plays a fixed, seeded script of verbs (downloads with and without verify and
leave, incremental, upload, upload_alt, verify, erase, backup, option bytes, read
protection, OTP, leave; injected faults and cancels) on every part of
:data:`dfuse.sim.PARTS` and on plain DFU 1.1 devices, each scenario on a fresh board
with the virtual clock and a trace (:class:`dfuse.trace.TraceRecorder`), and writes one
JSON file per scenario: the trace's transfers and events, the outcome (the result, or
the exception's type, message, ``__cause__`` and ``__context__`` chain) and a digest of
the board's memory afterwards. ``compare`` reports every difference (transfers, events,
times, outcomes, memory) and exits 1 if there is one.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import re
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dfuse.device import DfuDevice
from dfuse.file import DfuSeFile, Element, Target
from dfuse.optionbytes import OPTION_BYTES_ADDRESS, OTP_ADDRESS
from dfuse.progress import Phase
from dfuse.sim import (
    PARTS,
    Event,
    Fault,
    FaultKind,
    PlainDfuDevice,
    SimBackend,
    Stm32F411App,
    board,
)
from dfuse.sim.dfu import DfuModel
from dfuse.trace.recorder import TraceRecorder

Scenario = Callable[["Ctx"], object]
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")
_HEADER_VOLATILE = ("created", "dfuse", "python", "os", "libusb")


@dataclass
class Ctx:
    """What a scenario works on: the device, its board and a seeded image."""

    dev: DfuDevice
    chip: DfuModel
    base: int
    image: bytes
    events: list[tuple[str, int, int]]

    def progress(self, phase: Phase, done: int, total: int) -> None:
        """A progress callback: every report is compared too."""
        self.events.append((phase.value, done, total))


def _closed(dev: DfuDevice) -> bool:
    """``dev.closed`` (``_closed`` before the property existed: the script runs on both)."""
    return bool(getattr(dev, "closed", getattr(dev, "_closed", None)))


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def _summary(value: object) -> object:
    """A deterministic summary of a verb's result."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, dict):
        return {str(k): _summary(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_summary(v) for v in value]
    if isinstance(value, bytes | bytearray):
        return {"bytes": len(value), "sha": _digest(bytes(value))}
    text = _ADDRESS.sub("", repr(value))
    return {"type": type(value).__name__, "sha": _digest(text.encode()), "len": len(text)}


def _chain(exc: BaseException | None, depth: int = 0) -> object:
    if exc is None or depth > 6:
        return None
    return {
        "type": f"{type(exc).__module__}.{type(exc).__qualname__}",
        "message": _ADDRESS.sub("", str(exc)),
        "cause": _chain(exc.__cause__, depth + 1),
        "context": None if exc.__suppress_context__ else _chain(exc.__context__, depth + 1),
        "suppress_context": exc.__suppress_context__,
    }


# --------------------------------------------------------------------------- scenarios


def _dl(**kw: Any) -> Scenario:
    def go(c: Ctx) -> object:
        return c.dev.download(c.image, address=c.base, progress=c.progress, **kw)

    return go


def _dl_twice(**kw: Any) -> Scenario:
    """A download (which may fail), then a recovery download on the same object."""

    def go(c: Ctx) -> object:
        first: object
        try:
            first = c.dev.download(c.image, address=c.base, progress=c.progress, **kw)
        except Exception as exc:
            first = _chain(exc)
        if _closed(c.dev):
            return {"first": first, "again": "closed"}
        return {"first": first, "again": _summary(c.dev.download(c.image, address=c.base))}

    return go


def _incremental(c: Ctx) -> object:
    c.dev.download(c.image, address=c.base)
    changed = bytearray(c.image)
    changed[len(changed) - 7] ^= 0x5A
    return c.dev.download(bytes(changed), address=c.base, incremental=True)


def _upload(c: Ctx) -> object:
    c.dev.download(c.image, address=c.base, verify=False)
    return c.dev.upload(c.base, len(c.image) - 3, progress=c.progress)


def _upload_alt(c: Ctx) -> object:
    out: list[object] = []
    for alt in c.dev.info.alt_settings:
        c.dev.select_alt(alt.number)
        layout = c.dev.layout
        if layout is not None and layout.size > 256 * 1024:
            out.append(("skipped", alt.number))
            continue
        try:
            out.append(_summary(c.dev.upload_alt(alt.number, progress=c.progress)))
        except Exception as exc:
            out.append(_chain(exc))
    return out


def _verify(c: Ctx) -> object:
    c.dev.download(c.image, address=c.base, verify=False)
    c.dev.verify(c.image, address=c.base, progress=c.progress)
    wrong = bytearray(c.image)
    wrong[100] ^= 1
    c.dev.verify(bytes(wrong), address=c.base)
    return None


def _erase_sector(c: Ctx) -> object:
    c.dev.download(c.image, address=c.base, verify=False)
    layout = c.dev.layout
    assert layout is not None
    c.dev.erase([layout.sectors[min(1, len(layout.sectors) - 1)]])
    return c.dev.upload(c.base, len(c.image))


def _erase_all(c: Ctx) -> object:
    c.dev.erase("all", progress=c.progress)
    return None


def _backup(c: Ctx) -> object:
    plans = c.dev.plan(c.image, address=c.base)
    return c.dev.backup(plans, progress=c.progress)


def _options_read(c: Ctx) -> object:
    return c.dev.read_option_bytes()


def _options_same(c: Ctx) -> object:
    now = c.dev.read_option_bytes()
    changed = c.dev.change_option_bytes(now)
    c.dev.write_option_bytes(now)
    return [changed, _closed(c.dev)]


def _options_protect(c: Ctx) -> object:
    return [c.dev.protect_sectors([1]), c.dev.unprotect_sectors([1])]


def _options_rdp(c: Ctx) -> object:
    out: list[object] = [c.dev.set_read_protection(1)]
    try:
        out.append(c.dev.set_read_protection(0))
    except Exception as exc:
        out.append(_chain(exc))
    out.append(c.dev.set_read_protection(0, confirm=True))
    return out


def _options_rdp2_refused(c: Ctx) -> object:
    return c.dev.set_read_protection(2)


def _read_unprotect(c: Ctx) -> object:
    c.dev.download(c.image, address=c.base, verify=False)
    c.dev.set_read_protection(1)
    return c.dev.read_unprotect(confirm=True, reconnect=True)


def _read_unprotect_closed(c: Ctx) -> object:
    c.dev.read_unprotect(confirm=True)
    return _closed(c.dev)


def _otp(c: Ctx) -> object:
    area = c.dev.read_otp()
    data = random.Random(3).randbytes(32)
    return [
        area,
        c.dev.write_otp(0, data),
        c.dev.write_otp(0, data),
        c.dev.lock_otp(1, confirm=True),
    ]


def _leave(c: Ctx) -> object:
    c.dev.leave()
    return _closed(c.dev)


def _alt_named(c: Ctx, label: str) -> int | None:
    return next((a.number for a in c.dev.info.alt_settings if a.label == label), None)


def _file_multi(c: Ctx) -> object:
    """A DfuSe file: two flash targets (two sectors) and, where there is one, OTP."""
    layout = c.dev.layout
    assert layout is not None
    far = layout.sectors[min(2, len(layout.sectors) - 1)].address
    targets = [
        Target(0, "boot", (Element(c.base, c.image[:700]),)),
        Target(0, "app", (Element(far, c.image[700:1900]),)),
    ]
    otp = _alt_named(c, "OTP Memory")
    if otp is not None:
        targets.append(Target(otp, "otp", (Element(OTP_ADDRESS, b"\x5a" * 32),)))
    image = DfuSeFile(tuple(targets), vendor_id=c.dev.info.vid, product_id=c.dev.info.pid)
    plans = c.dev.download(image, allow_otp=True, progress=c.progress)
    return [plans, c.dev.alt, c.dev.backup(plans, progress=c.progress)]


def _file_options(c: Ctx) -> object:
    """Option bytes as a target of a file (allow_option_bytes): the device resets."""
    alt = _alt_named(c, "Option Bytes")
    if alt is None:
        return "no option bytes"
    new = c.dev.read_option_bytes().with_sectors_protected([2])
    block = Target.from_segments([(OPTION_BYTES_ADDRESS, new.to_bytes())], alt_setting=alt)
    plans = c.dev.download(DfuSeFile(targets=(block,)), allow_option_bytes=True)
    return [plans, _closed(c.dev)]


def _write_options_changed(c: Ctx) -> object:
    now = c.dev.read_option_bytes()
    c.dev.write_option_bytes(now.with_sectors_protected([0]))
    return _closed(c.dev)


def _rdp2(c: Ctx) -> object:
    return [c.dev.set_read_protection(2, allow_permanent_rdp2=True), _closed(c.dev)]


def _refusals(c: Ctx) -> object:
    out: list[object] = []
    for call in (
        lambda: c.dev.read_unprotect(),
        lambda: c.dev.lock_otp(1),
        lambda: c.dev.write_otp(16, b"\0" * 32),
        lambda: c.dev.protect_sectors([999]),
        lambda: c.dev.upload(c.base, -1),
        lambda: c.dev.erase([0x00000001]),
    ):
        try:
            out.append(_summary(call()))
        except Exception as exc:
            out.append(_chain(exc))
    return out


def _misc(c: Ctx) -> object:
    c.dev.set_address(c.base)
    c.dev.mass_erase()
    aligned = c.image[: len(c.image) // 32 * 32]
    c.dev.download(aligned, address=c.base, erase="none", skip_erased=False, verify=False)
    (plan,) = c.dev.plan(c.image, address=c.base)
    c.dev.execute(plan.plan, progress=c.progress)
    target = c.dev.upload_alt(c.dev.info.alt_settings[-1].label, progress=c.progress)
    c.dev.leave(c.base)
    return [target, _closed(c.dev)]


def _cancel_at(phase: Phase, after: int) -> Scenario:
    def go(c: Ctx) -> object:
        cancel = threading.Event()

        def progress(p: Phase, done: int, total: int) -> None:
            c.progress(p, done, total)
            if p is phase and done >= after:
                cancel.set()

        first: object
        try:
            first = c.dev.download(c.image, address=c.base, cancel=cancel, progress=progress)
        except Exception as exc:
            first = _chain(exc)
        return {"first": first, "again": _summary(c.dev.download(c.image, address=c.base))}

    return go


def _options_fault(c: Ctx) -> object:
    now = c.dev.read_option_bytes()
    return c.dev.protect_sectors([1]) if now is not None else None


def _plain_upload(c: Ctx) -> object:
    return c.dev.upload_dfu()


def _plain_dl(**kw: Any) -> Scenario:
    def go(c: Ctx) -> object:
        return c.dev.download(c.image, progress=c.progress, **kw)

    return go


def _plain_dl_twice(**kw: Any) -> Scenario:
    def go(c: Ctx) -> object:
        first: object
        try:
            first = c.dev.download(c.image, progress=c.progress, **kw)
        except Exception as exc:
            first = _chain(exc)
        if _closed(c.dev):
            return {"first": first, "again": "closed"}
        return {"first": first, "again": _summary(c.dev.download(c.image, verify=False))}

    return go


def _faults() -> dict[str, tuple[Fault, ...]]:
    r = Fault
    return {
        "stall_dnload5": (r(FaultKind.STALL, Event.DNLOAD, nth=5),),
        "stall_getstatus9": (r(FaultKind.STALL, Event.GETSTATUS, nth=9),),
        "timeout_getstatus7": (r(FaultKind.TIMEOUT, Event.GETSTATUS, nth=7),),
        "timeout_upload2": (r(FaultKind.TIMEOUT, Event.UPLOAD, nth=2),),
        "stall_upload1": (r(FaultKind.STALL, Event.UPLOAD, nth=1),),
        "disconnect_dnload6": (r(FaultKind.DISCONNECT, Event.DNLOAD, nth=6),),
        "disconnect_dnload6_gone": (
            r(FaultKind.DISCONNECT, Event.DNLOAD, nth=6, reconnect_after=None),
        ),
        "disconnect_upload1": (r(FaultKind.DISCONNECT, Event.UPLOAD, nth=1),),
        "err_write2": (r(FaultKind.ERR_WRITE, Event.WRITE, nth=2),),
        "err_verify2": (r(FaultKind.ERR_VERIFY, Event.WRITE, nth=2),),
        "err_erase1": (r(FaultKind.ERR_ERASE, Event.ERASE, nth=1),),
        "busy_longer_write1": (r(FaultKind.BUSY_LONGER, Event.WRITE, nth=1, extra=30.0),),
        "power_loss_write3": (r(FaultKind.POWER_LOSS, Event.WRITE, nth=3),),
        "disconnect_leave": (r(FaultKind.DISCONNECT, Event.LEAVE, nth=1),),
        "stall_abort1": (r(FaultKind.STALL, Event.ABORT, nth=1),),
    }


def scenarios(kind: str) -> Iterator[tuple[str, Scenario, tuple[Fault, ...]]]:
    """Every scenario of a DfuSe part (``kind="dfuse"``) or a plain DFU device."""
    if kind == "dfuse":
        yield "download_verify", _dl(), ()
        yield "download_noverify", _dl(verify=False), ()
        yield "download_leave", _dl(leave=True), ()
        yield "download_leave_noverify", _dl(leave=True, verify=False), ()
        yield "download_mass", _dl(erase="mass"), ()
        yield "incremental", _incremental, ()
        yield "upload", _upload, ()
        yield "upload_alt", _upload_alt, ()
        yield "verify", _verify, ()
        yield "erase_sector", _erase_sector, ()
        yield "erase_all", _erase_all, ()
        yield "backup", _backup, ()
        yield "options_read", _options_read, ()
        yield "options_same", _options_same, ()
        yield "options_protect", _options_protect, ()
        yield "options_rdp", _options_rdp, ()
        yield "options_rdp2_refused", _options_rdp2_refused, ()
        yield "read_unprotect", _read_unprotect, ()
        yield "read_unprotect_closed", _read_unprotect_closed, ()
        yield "otp", _otp, ()
        yield "leave", _leave, ()
        yield "file_multi", _file_multi, ()
        yield "file_options", _file_options, ()
        yield "write_options_changed", _write_options_changed, ()
        yield "rdp2", _rdp2, ()
        yield "refusals", _refusals, ()
        yield "misc", _misc, ()
        for name, faults in _faults().items():
            yield f"fault_{name}", _dl_twice(), faults
            yield f"fault_leave_{name}", _dl_twice(leave=True), faults
        yield (
            "fault_option_write_gone",
            _options_fault,
            (Fault(FaultKind.DISCONNECT, Event.OPTION_WRITE, nth=1, reconnect_after=None),),
        )
        yield (
            "fault_option_upload_stall",
            _options_fault,
            (Fault(FaultKind.STALL, Event.UPLOAD, nth=2),),
        )
        for phase, after in ((Phase.ERASE, 1), (Phase.WRITE, 1), (Phase.WRITE, 4096),
                             (Phase.VERIFY, 1)):  # fmt: skip
            yield f"cancel_{phase.value}_{after}", _cancel_at(phase, after), ()
    elif kind == "app":  # an application with the DFU run-time interface: detached first
        yield "download", _dl(), ()
        yield "download_leave", _dl(leave=True), ()
        yield "read_options_refused", _options_read, ()
        for name, faults in _faults().items():
            yield f"fault_{name}", _dl_twice(), faults
    else:
        yield "download_verify_leave", _plain_dl(leave=True), ()
        yield "download_verify_stay", _plain_dl(), ()
        yield "download_noverify", _plain_dl(verify=False), ()
        yield "download_noverify_leave", _plain_dl(verify=False, leave=True), ()
        yield "upload_dfu", _plain_upload, ()
        yield "leave", _leave, ()
        for name, faults in _faults().items():
            yield f"fault_{name}", _plain_dl_twice(leave=True), faults
            yield f"fault_stay_{name}", _plain_dl_twice(), faults


def boards() -> Iterator[tuple[str, str, Callable[[tuple[Fault, ...]], DfuModel]]]:
    """(name, kind, make) for every part and the plain DFU devices."""

    def rom(name: str) -> Callable[[tuple[Fault, ...]], DfuModel]:
        return lambda faults: board(name, seed=11, faults=faults)

    def plain(tolerant: bool) -> Callable[[tuple[Fault, ...]], DfuModel]:
        return lambda faults: PlainDfuDevice(
            seed=11, faults=faults, manifestation_tolerant=tolerant
        )

    for name in sorted({p.name for p in PARTS.values()}):
        yield name, "dfuse", rom(name)
    yield "app_stm32f411", "app", lambda faults: Stm32F411App(faults=faults)
    for tolerant in (False, True):
        yield f"plain_{'tolerant' if tolerant else 'intolerant'}", "plain", plain(tolerant)


def _image(size: int, seed: str) -> bytes:
    return random.Random(seed).randbytes(size)


def run_one(make: Callable[[tuple[Fault, ...]], DfuModel], kind: str, scenario: Scenario,
            faults: tuple[Fault, ...], trace: Path) -> dict[str, object]:  # fmt: skip
    """Run ``scenario`` on a fresh board under a recorder; the outcome."""
    chip = make(faults)
    backend = SimBackend([chip])
    recorder = TraceRecorder(trace)
    outcome: dict[str, object] = {}
    dev: DfuDevice | None = None
    try:
        dev = DfuDevice.open(backend=backend, trace=recorder)
        layout = dev.layout
        if kind != "plain" and layout is not None:
            first = layout.sectors[0]
            size = min(first.size + 1500, 40 * 1024)
            base = first.address
        else:
            size, base = 5000, 0x08000000
        image = _image(size, f"{kind}-{size}")
        ctx = Ctx(dev, chip, base, image, [])
        try:
            outcome["result"] = _summary(scenario(ctx))
        finally:
            outcome["progress"] = [len(ctx.events), _digest(repr(ctx.events).encode())]
        memory: Any = getattr(chip, "bootloader", None) or chip  # an application: its ROM
        outcome["memory"] = _digest(memory.peek(base, size))
    except BaseException as exc:
        outcome["error"] = _chain(exc)
    finally:
        if dev is not None:
            outcome["closed"] = _closed(dev)
            dev.close()
        recorder.close()
    outcome["state"] = int(chip.state)
    outcome["now"] = round(backend.clock.now, 9)
    return outcome


def run_gang(out: Path) -> None:
    """flash_many on three F411 boards (one with errWRITE, one stalling), each traced."""
    from dfuse.gang import flash_many

    faults: list[tuple[Fault, ...]] = [
        (),
        (Fault(FaultKind.ERR_WRITE, Event.WRITE, nth=3),),
        (Fault(FaultKind.STALL, Event.DNLOAD, nth=4),),
    ]
    recorders, devices = [], []
    for i, f in enumerate(faults):
        recorder = TraceRecorder(out / f"gang.board{i}.jsonl")
        chip = board("stm32f411xe", seed=11, faults=f, serial=f"GANG{i}", bus=i + 1)
        devices.append(DfuDevice.open(backend=SimBackend([chip]), trace=recorder))
        recorders.append(recorder)
    image = _image(40000, "gang")
    report = flash_many(devices, image, address=0x08000000)
    outcome = [
        {k: getattr(r, k) for k in ("serial", "ok", "error", "error_type", "bytes", "retries")}
        for r in report
    ]
    for dev, recorder in zip(devices, recorders, strict=True):
        dev.close()
        recorder.close()
    for i in range(len(faults)):
        (out / f"gang.board{i}.json").write_text(json.dumps(outcome[i], indent=1))


def run(out: Path, only: str | None) -> int:
    import dfuse

    print(f"dfuse from {dfuse.__file__}")
    out.mkdir(parents=True, exist_ok=True)
    count = 0
    if not only:
        run_gang(out)
    for name, kind, make in boards():
        if only and only not in name:
            continue
        for label, scenario, faults in scenarios(kind):
            trace = out / f"{name}.{label}.jsonl"
            outcome = run_one(make, kind, scenario, faults, trace)
            (out / f"{name}.{label}.json").write_text(json.dumps(outcome, indent=1, default=str))
            count += 1
    print(f"{count} scenarios written to {out}")
    return 0


def _lines(path: Path) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    for line in lines:
        if line.get("type") == "header":
            for key in _HEADER_VOLATILE:
                line.pop(key, None)
    return lines


def _strip_t(line: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in line.items() if k != "t"}


def compare(a: Path, b: Path) -> int:
    names = sorted(p.name for p in a.glob("*.json"))
    other = sorted(p.name for p in b.glob("*.json"))
    bad = 0
    transfers = 0
    if names != other:
        print(f"scenario sets differ: {sorted(set(names) ^ set(other))[:10]}")
        bad += 1
    for name in names:
        if not (b / name).exists():
            continue
        stem = name[: -len(".json")]
        la, lb = _lines(a / f"{stem}.jsonl"), _lines(b / f"{stem}.jsonl")
        transfers += sum(line.get("type") == "transfer" for line in la)
        oa, ob = json.loads((a / name).read_text()), json.loads((b / name).read_text())
        if [_strip_t(x) for x in la] != [_strip_t(x) for x in lb]:
            bad += 1
            print(f"{stem}: traces differ ({len(la)} vs {len(lb)} lines)")
            for i, (x, y) in enumerate(zip(la, lb, strict=False)):
                if _strip_t(x) != _strip_t(y):
                    print(f"   first at line {i}:\n     old {x}\n     new {y}")
                    break
        elif la != lb:
            bad += 1
            print(f"{stem}: same transfers, times differ")
        if oa != ob:
            bad += 1
            print(f"{stem}: outcomes differ\n   old {oa}\n   new {ob}")
    print(f"compared {len(names)} scenarios, {transfers} transfers: {bad} differences")
    return 1 if bad else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="record every scenario into a directory")
    r.add_argument("out", type=Path)
    r.add_argument("--only", help="boards whose name contains this")
    c = sub.add_parser("compare", help="compare two directories written by run")
    c.add_argument("old", type=Path)
    c.add_argument("new", type=Path)
    args = parser.parse_args(argv)
    if args.command == "run":
        return run(args.out, args.only)
    return compare(args.old, args.new)


if __name__ == "__main__":
    sys.exit(main())
