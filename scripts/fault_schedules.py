#!/usr/bin/env python3
"""Faults on the wire: the fault matrix, then seeded random fault schedules.

    python3 scripts/fault_schedules.py                   # matrix + 1,000 schedules
    python3 scripts/fault_schedules.py --count 5000 --start 1000
    python3 scripts/fault_schedules.py --no-matrix --verbose

Every schedule flashes a random image over a random old firmware on a simulated
STM32F411 with 2-5 random faults (stall, timeout, disconnect, errWRITE, errERASE,
errVERIFY, busy longer than reported, power loss, start in dfuERROR), judges the
download by the simulator's memory, then recovers the board and flashes again.
Exit status 1 on any silent corruption, escaped exception or unrecovered board.
See docs/reliability.md.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.reliability.faultlab import (
    ScheduleSummary,
    run_matrix,
    run_option_schedule,
    run_schedule,
)


def main(argv: list[str] | None = None) -> int:
    """Run the matrix and the schedules; print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=1000, help="number of schedules")
    parser.add_argument("--start", type=int, default=0, help="first seed")
    parser.add_argument("--no-matrix", action="store_true", help="skip the fault matrix")
    parser.add_argument("--verbose", action="store_true", help="print every schedule")
    parser.add_argument(
        "--option-bytes",
        type=int,
        default=200,
        metavar="N",
        help="also N option-byte schedules (change_option_bytes / download under faults)",
    )
    args = parser.parse_args(argv)
    ok = True
    if not args.no_matrix:
        started = time.perf_counter()
        cells = run_matrix()
        print(f"fault matrix: {len(cells)} cells ({time.perf_counter() - started:.1f} s)")
        for cell in cells:
            print(("  ok  " if cell.ok else "  !!  ") + cell.line())
        verdicts: dict[str, int] = {}
        for cell in cells:
            verdicts[cell.run.verdict.value] = verdicts.get(cell.run.verdict.value, 0) + 1
        same = sum(c.recovered_same_object is True for c in cells)
        tried = sum(c.recovered_same_object is not None for c in cells)
        print(
            "matrix: "
            + ", ".join(f"{k} {v}" for k, v in sorted(verdicts.items()))
            + f"; recovered {sum(c.recovered for c in cells)}/{len(cells)}"
            + f" (same DfuDevice object {same}/{tried})"
        )
        ok = ok and all(c.recovered and not c.run.bad for c in cells)
    started = time.perf_counter()
    summary = ScheduleSummary()
    for seed in range(args.start, args.start + args.count):
        result = run_schedule(seed)
        summary.add(result)
        if args.verbose or result.first.bad or not result.recovered:
            faults = "; ".join(f.describe() for f in result.faults)
            print(f"seed {seed}: {result.first.verdict.value} [{faults}] {result.first.error}")
            if not result.recovered:
                print(f"    UNRECOVERED: {result.error}")
    elapsed = time.perf_counter() - started
    print(
        f"\nrandom schedules: seeds {args.start}..{args.start + args.count - 1} ({elapsed:.1f} s)"
    )
    print(summary.text())
    ok = ok and summary.ok
    if args.option_bytes:
        started = time.perf_counter()
        options = ScheduleSummary()
        for seed in range(args.start, args.start + args.option_bytes):
            result = run_option_schedule(seed)
            options.add(result)
            if result.first.bad or not result.recovered:
                print(f"option-byte seed {seed}: {result.first.verdict.value} {result.error}")
        elapsed = time.perf_counter() - started
        print(f"\noption-byte schedules: {args.option_bytes} ({elapsed:.1f} s)")
        print(options.text())
        ok = ok and options.ok
    print("RESULT:", "ok" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
