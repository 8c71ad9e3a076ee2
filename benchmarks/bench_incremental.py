"""Incremental reflash benchmark: one changed 16 KiB sector of a 512 KiB image.

Measured in one run on the simulated STM32F411 and its virtual clock (typical
datasheet timings, so both runs draw the same durations):

1. a full download (erase, write, verify) of a random 512 KiB image into a blank
   board: the baseline;
2. the image with bytes changed inside one 16 KiB sector (sector 2 by default),
   downloaded again with ``incremental=True`` (read back, erase and write only the
   differing sector, verify it).

Prints the device-bound times (``backend.clock.now`` deltas) and their ratio
(goal: incremental <= 1/5 of full), after checking the flash against the image.

Run: ``python benchmarks/bench_incremental.py [--json out.json] [--size KiB] [--sector N]``.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from dataclasses import asdict, dataclass

from dfuse.device import DfuDevice
from dfuse.sim import STM32F411_TIMING, SimBackend, Stm32F411

BASE = 0x08000000
#: The F411's 16 KiB sectors (0-3): their offsets from BASE.
SMALL_SECTORS = (0x0000, 0x4000, 0x8000, 0xC000)
GOAL = 0.2


@dataclass(frozen=True)
class Result:
    """One measured pair of downloads."""

    image_bytes: int
    changed_sector: int
    full_seconds: float
    incremental_seconds: float
    ratio: float
    goal: float
    sectors_skipped: int
    sectors_rewritten: int
    incremental_bytes_written: int
    incremental_bytes_read: int


def run(size_kib: int = 512, sector: int = 2, seed: int = 411) -> Result:
    """Full download, change bytes in ``sector``, incremental download; both timed."""
    if not 0 <= sector < len(SMALL_SECTORS):
        raise SystemExit(f"--sector must be one of the 16 KiB sectors 0..3, got {sector}")
    rng = random.Random(seed)
    image = bytearray(rng.randbytes(size_kib * 1024))
    offset = SMALL_SECTORS[sector]
    if offset + 0x4000 > len(image):
        raise SystemExit(f"a {size_kib} KiB image does not cover sector {sector}")
    chip = Stm32F411(serial="BENCH", timing=STM32F411_TIMING.typical())
    backend = SimBackend([chip])
    with DfuDevice.open(backend=backend) as dev:
        t0 = backend.clock.now
        dev.download(bytes(image), address=BASE)
        full = backend.clock.now - t0
        # change a few scattered bytes inside the one sector
        for _ in range(16):
            at = offset + rng.randrange(0x4000)
            image[at] ^= 0xFF
        uploads_before = chip.requests["UPLOAD"]
        t0 = backend.clock.now
        (plan,) = dev.download(bytes(image), address=BASE, incremental=True)
        incremental = backend.clock.now - t0
        uploads = chip.requests["UPLOAD"] - uploads_before
    if chip.peek(BASE, len(image)) != bytes(image):
        raise SystemExit("the flash differs from the image after the incremental download")
    changed = [d.index for d in plan.plan.changed_sectors]
    if changed != [sector]:
        raise SystemExit(f"expected only sector {sector} to be rewritten, got {changed}")
    return Result(
        image_bytes=len(image),
        changed_sector=sector,
        full_seconds=full,
        incremental_seconds=incremental,
        ratio=incremental / full,
        goal=GOAL,
        sectors_skipped=len(plan.plan.skipped_sectors),
        sectors_rewritten=len(changed),
        incremental_bytes_written=plan.plan.write_bytes,
        incremental_bytes_read=uploads * dev.transfer_size,
    )


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print the ratio, optionally write JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="write the result to this file")
    parser.add_argument("--size", type=int, default=512, help="image size in KiB (default 512)")
    parser.add_argument("--sector", type=int, default=2, help="the 16 KiB sector to change")
    args = parser.parse_args(argv)
    r = run(args.size, args.sector)
    print(
        f"{r.image_bytes // 1024} KiB image, sector {r.changed_sector} changed, simulated "
        "STM32F411 (typical timings, virtual clock)"
    )
    print(f"full download         {r.full_seconds:8.3f} s device time")
    print(
        f"incremental download  {r.incremental_seconds:8.3f} s device time "
        f"({r.sectors_skipped} sector(s) skipped, {r.sectors_rewritten} rewritten, "
        f"{r.incremental_bytes_written} bytes written)"
    )
    verdict = "meets" if r.ratio <= r.goal else "MISSES"
    print(f"ratio incremental/full: {r.ratio:.3f} ({verdict} the goal <= {r.goal})")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(asdict(r), fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
