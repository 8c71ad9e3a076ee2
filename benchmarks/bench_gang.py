"""Gang-flashing benchmark: N simulated boards in parallel against one, on real time.

Measured in one run: :func:`dfuse.flash_many` flashes a small random image (32 KiB
by default: two 16 KiB sector erases and 16 blocks, about 0.8 s per board) into one
simulated STM32F411, then into eight at once. The simulated boards share one
:class:`~dfuse.sim.SimBackend` on a :class:`~dfuse.clock.RealClock`, so every
erase, program and USB transfer takes its (typical) real time; the host runs one
thread per board. Prints the wall-clock times and the ratio (goal: 8 boards
<= 1.25 x one board), after checking every board's flash against the image.

Run: ``python benchmarks/bench_gang.py [--json out.json] [--boards N] [--size KiB]``.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from dataclasses import asdict, dataclass

from dfuse.clock import RealClock
from dfuse.gang import flash_many
from dfuse.sim import STM32F411_TIMING, SimBackend, Stm32F411
from dfuse.transport.discovery import find_devices

BASE = 0x08000000
GOAL = 1.25


@dataclass(frozen=True)
class Result:
    """One pair of gang runs."""

    boards: int
    image_bytes: int
    one_board_seconds: float
    gang_seconds: float
    ratio: float
    goal: float
    sequential_estimate_seconds: float


def flash(boards: int, image: bytes) -> float:
    """Wall time of flash_many over ``boards`` fresh simulated boards (real clock)."""
    chips = [
        Stm32F411(serial=f"GANG{i:02d}", timing=STM32F411_TIMING.typical()) for i in range(boards)
    ]
    backend = SimBackend(chips, clock=RealClock())
    found = find_devices(backend=backend)
    start = time.perf_counter()
    report = flash_many(found, image, backend=backend, address=BASE)
    wall = time.perf_counter() - start
    if not report.ok:
        raise SystemExit("a board failed:\n" + report.summary())
    for chip in chips:
        if chip.peek(BASE, len(image)) != image:
            raise SystemExit(f"board {chip.serial}: the flash differs from the image")
    return wall


def run(boards: int = 8, size_kib: int = 32) -> Result:
    """One board, then ``boards`` boards; wall-clock times and their ratio."""
    image = random.Random(8).randbytes(size_kib * 1024)
    one = flash(1, image)
    gang = flash(boards, image)
    return Result(
        boards=boards,
        image_bytes=len(image),
        one_board_seconds=one,
        gang_seconds=gang,
        ratio=gang / one,
        goal=GOAL,
        sequential_estimate_seconds=one * boards,
    )


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print the ratio, optionally write JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="write the result to this file")
    parser.add_argument("--boards", type=int, default=8, help="boards in the gang (default 8)")
    parser.add_argument("--size", type=int, default=32, help="image size in KiB (default 32)")
    args = parser.parse_args(argv)
    r = run(args.boards, args.size)
    print(f"{r.image_bytes // 1024} KiB image, simulated STM32F411 boards on the real-time clock")
    print(f"1 board           {r.one_board_seconds:7.3f} s wall")
    print(
        f"{r.boards} boards (gang)  {r.gang_seconds:7.3f} s wall "
        f"(one after another: ~{r.sequential_estimate_seconds:.1f} s)"
    )
    verdict = "meets" if r.ratio <= r.goal else "MISSES"
    print(f"ratio {r.boards} boards / 1 board: {r.ratio:.3f} ({verdict} the goal <= {r.goal})")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(asdict(r), fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
