#!/usr/bin/env python3
"""Control transfers per 2048-byte block: dfu-util (over the usbdevfs bridge) vs dfuse.

Both write the same image to a fresh simulated STM32F411 (datasheet timing unless
``--fast``); the board counts the DFU class requests it receives (standard requests
such as GET_DESCRIPTOR are left out). dfu-util 0.11 runs unmodified through
libusb and umockdev; dfuse runs its device layer over the pyusb simulator backend
(the same board model; the bridge test shows both front doors see the same
requests). Prints a table and, with ``--json``, the numbers as JSON.

    python3 scripts/usbdevfs_transfer_counts.py [--kib 64] [--fast] [--json out.json]

Needs Linux, umockdev, PyGObject and dfu-util (see docs/usbdevfs-bridge.md).
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from dfuse.device import DfuDevice
from dfuse.sim import Duration, FlashTiming, SimBackend, Stm32F411, Timing
from dfuse.sim.usbdevfs import UsbdevfsBridge

FLASH = 0x0800_0000
STANDARD = {"GET_DESCRIPTOR", "SET_CONFIGURATION", "SET_INTERFACE", "GET_STATUS"}
QUICK = Duration(0.005, 0.005)
FAST = Timing(
    flash=FlashTiming(
        sector_erase=((16 * 1024, QUICK), (64 * 1024, QUICK), (128 * 1024, QUICK)),
        mass_erase=Duration(0.02, 0.02),
        option_write=QUICK,
    ),
    spread=0.0,
)


def class_requests(board: Stm32F411) -> dict[str, int]:
    return {k: v for k, v in sorted(board.requests.items()) if k not in STANDARD}


def delta(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0)}


def by_dfu_util(args: list[str], board: Stm32F411, workdir: Path) -> dict[str, int]:
    with UsbdevfsBridge() as bridge:
        bridge.add(board)
        before = class_requests(board)
        proc = subprocess.Popen(
            ["umockdev-wrapper", "dfu-util", *args],
            env=bridge.child_env(),
            cwd=workdir,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        while proc.poll() is None:
            bridge.iterate(0.002)
        if proc.returncode != 0:
            err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            sys.exit(f"dfu-util {' '.join(args)} failed: {err}")
        return delta(class_requests(board), before)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kib", type=int, default=64, help="image size in KiB (default 64)")
    parser.add_argument("--fast", action="store_true", help="millisecond flash timing")
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args()
    timing = FAST if args.fast else Timing(spread=0.0)
    image = random.Random(0).randbytes(args.kib * 1024)
    blocks = -(-len(image) // 2048)
    rows: dict[str, dict[str, int]] = {}
    seconds: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "image.bin").write_bytes(image)

        board = Stm32F411(timing=timing)
        t0 = time.monotonic()
        rows["dfu-util -D (erase+write)"] = by_dfu_util(
            ["-a", "0", "-s", f"0x{FLASH:08x}", "-D", "image.bin"], board, work
        )
        seconds["dfu-util -D (erase+write)"] = time.monotonic() - t0
        assert board.peek(FLASH, len(image)) == image
        t0 = time.monotonic()
        rows["dfu-util -U (read)"] = by_dfu_util(
            ["-a", "0", "-s", f"0x{FLASH:08x}:{len(image)}", "-U", "back.bin"], board, work
        )
        seconds["dfu-util -U (read)"] = time.monotonic() - t0
        assert (work / "back.bin").read_bytes() == image

    for verify in (False, True):
        board = Stm32F411(timing=timing)
        with DfuDevice.open(vid=0x0483, pid=0xDF11, backend=SimBackend([board]), alt=0) as dev:
            before = class_requests(board)
            dev.download(image, address=FLASH, verify=verify)
            name = "dfuse download" + (" (erase+write+verify)" if verify else " (erase+write)")
            rows[name] = delta(class_requests(board), before)
            if not verify:
                before = class_requests(board)
                assert dev.upload(FLASH, len(image)) == image
                rows["dfuse upload (read)"] = delta(class_requests(board), before)
        assert board.peek(FLASH, len(image)) == image

    print(f"image: {len(image)} bytes = {blocks} blocks of 2048; DFU class requests per run:")
    for name, counts in rows.items():
        total = sum(counts.values())
        took = f"  ({seconds[name]:.2f} s real time)" if name in seconds else ""
        detail = ", ".join(f"{k} {v}" for k, v in counts.items())
        print(f"  {name:38s} {total:5d}  {total / blocks:5.2f}/block  [{detail}]{took}")
    if args.json:
        args.json.write_text(json.dumps({"blocks": blocks, "counts": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
