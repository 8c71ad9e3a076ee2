"""``dfuse demo``: the seed's whole flow on a simulated STM32F411, in a few seconds.

BOOT0 high → the system bootloader enumerates → build a .dfu from the bundled
example firmware → download (erase + write) → verify → upload and compare →
leave DFU mode. The simulated board runs on a real-time clock (sped up with
``--speed``) so the progress bars move at the pace of a real board.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

from dfuse.cli.cmd_device import _layout_summary, _progress
from dfuse.cli.exitcodes import ExitCode, UsageError
from dfuse.cli.output import Ui
from dfuse.data import EXAMPLE_HEX_NAME, example_hex_path
from dfuse.errors import VerifyError
from dfuse.file import DfuSeFile, Target, save
from dfuse.selector import DeviceSelector, sim_bench

__all__ = ["cmd_demo"]

_STEPS = 6


def cmd_demo(args: argparse.Namespace, ui: Ui) -> int:
    """Run the demo; with ``--keep DIR`` the built .dfu and the read-back stay in DIR."""
    if not args.speed > 0:
        raise UsageError(f"invalid --speed {args.speed}: expected a positive number")
    if args.keep:
        Path(args.keep).mkdir(parents=True, exist_ok=True)
        return _demo(args, ui, Path(args.keep))
    with tempfile.TemporaryDirectory(prefix="dfuse-demo-") as tmp:
        return _demo(args, ui, Path(tmp))


def _step(ui: Ui, n: int, text: str) -> None:
    ui.print(f"\n[bold cyan][{n}/{_STEPS}][/bold cyan] [bold]{text}[/bold]")


def _demo(args: argparse.Namespace, ui: Ui, workdir: Path) -> int:
    started = time.perf_counter()
    report: dict[str, Any] = {"ok": True, "workdir": str(workdir)}

    _step(ui, 1, "BOOT0 high, reset: the simulated STM32F411 starts its system bootloader")
    bench = sim_bench(DeviceSelector(scheme="sim", speed=args.speed))
    board = bench.boards[0]
    [info] = bench.find()
    ui.text(f"found {info.describe()}  ({info.product})")
    for alt in info.alt_settings:
        if alt.layout is not None:
            ui.text(f"  alt {alt.number}  {alt.layout.label:<16} {_layout_summary(alt.layout)}")
    report["device"] = info.to_dict()

    _step(ui, 2, f"build app.dfu from the bundled example firmware ({EXAMPLE_HEX_NAME})")
    source = DfuSeFile.from_hex(
        example_hex_path(),
        name="Internal Flash",
        vendor_id=info.vid,
        product_id=info.pid,
    )
    dfu_path = workdir / "app.dfu"
    source.save(dfu_path)
    image = DfuSeFile.from_path(dfu_path)
    target = image.targets[0]
    for element in target.elements:
        ui.text(
            f"  element 0x{element.address:08X}-0x{element.end - 1:08X}  {element.size:>6} bytes"
        )
    ui.text(f"wrote {dfu_path} ({dfu_path.stat().st_size} bytes, CRC checked on re-read)")
    report["dfu"] = {"path": str(dfu_path), "size": dfu_path.stat().st_size}

    with bench.open() as dev:
        _step(ui, 3, "download: erase only the sectors the image touches, then write")
        ui.text(f"  transfer size {dev.transfer_size} bytes; the plan:")
        for plan in dev.plan(image):
            for line in plan.plan.describe().splitlines():
                ui.text(f"  {line}")
        device_start = dev.clock.now
        with ui.progress() as sink:
            plans = dev.download(image, verify=True, progress=_progress(sink))
        report["download"] = [p.to_dict() for p in plans]

        _step(ui, 4, "verify: the bootloader read every written byte back, and it matched")
        verified = sum(p.plan.verify_bytes for p in plans)
        ui.text(f"  {verified} bytes read back and compared: identical")

        _step(ui, 5, "upload: read the flash back into a file and compare with the image")
        segments = []
        grand_total = target.size
        with ui.progress() as sink:
            offset = 0
            for element in target.elements:

                def reading(_phase: object, done: int, _total: int, base: int = offset) -> None:
                    sink.update("read", base + done, grand_total)

                segments.append(
                    (element.address, dev.upload(element.address, element.size, progress=reading))
                )
                offset += element.size
        readback = Target.from_segments(segments, alt_setting=0, name="Internal Flash")
        readback_path = workdir / "readback.hex"
        save(readback, readback_path)
        for (address, data), element in zip(segments, target.elements, strict=True):
            if data != element.data:
                first = next(i for i in range(len(data)) if data[i] != element.data[i])
                raise VerifyError(address + first, element.data[first], data[first])
            if board.peek(address, len(data)) != data:  # the simulator's own memory agrees
                raise VerifyError(address, element.data[0], board.peek(address, 1)[0])
        ui.text(f"  wrote {readback_path}: identical to the image (and to the simulator's flash)")
        report["readback"] = {"path": str(readback_path), "size": readback.size}

        _step(ui, 6, "leave DFU mode: the board resets into the new application")
        dev.leave()
        device_seconds = dev.clock.now - device_start
    bench.settle(lambda: bool(board.app_starts))
    start = board.app_starts[-1] if board.app_starts else None
    jumped = f"0x{start.address:08X}" if start is not None else "?"
    ui.text(f"  the bootloader detached from USB and jumped to {jumped}")
    report["application_start"] = start.address if start is not None else None

    wall = time.perf_counter() - started
    report["seconds"] = round(wall, 3)
    report["device_seconds"] = round(device_seconds / args.speed, 3)
    ui.print(
        f"\n[green]done[/green] in {wall:.1f} s. On a real board: the same commands with the"
        " board plugged in, e.g. [bold]dfuse flash app.hex --leave[/bold]"
        " (see [bold]dfuse --help[/bold])."
    )
    ui.emit(report)
    return ExitCode.OK
