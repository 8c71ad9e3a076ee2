"""Tracing cost: a 512 KiB flash of the simulated STM32F411, traced and not, in one run.

The simulated board lives on a virtual clock, so a flash's *device time* (erases, writes,
USB transfers as the datasheet and the bus make them last) is a number we can read, and the
host's own work is the wall time the run takes. Tracing adds host work only: one JSON line
per control transfer, written and flushed. The goal (issue 15): tracing must not slow a flash
by more than 2 % of its device time, i.e. ``(wall traced - wall plain) / device time <= 0.02``.

Each variant runs ``--repeat`` times; the fastest run of each is compared (the least
disturbed by other processes on the machine).

Run: ``python benchmarks/bench_trace.py [--json out.json] [--size KiB] [--repeat N]``.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import dfuse
from dfuse.selector import bench
from dfuse.trace.format import read_trace
from dfuse.trace.recorder import TraceRecorder

BASE = 0x08000000
GOAL = 0.02


@dataclass(frozen=True)
class Run:
    """One flash: wall and CPU time on the host, device time on the virtual clock."""

    traced: bool
    wall_seconds: float
    cpu_seconds: float
    device_seconds: float
    transfers: int
    trace_bytes: int


def flash(image: bytes, trace: Path | None) -> Run:
    b = bench("sim:stm32f411")
    assert b.clock is not None
    recorder = TraceRecorder(trace) if trace is not None else None
    start_device = b.clock.now
    wall, cpu = time.perf_counter(), time.process_time()
    with b.open(trace=recorder) as dev:
        dev.download(image, address=BASE, verify=True)
        transfers = dev.transport.transfers
    if recorder is not None:
        recorder.close()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    device = b.clock.now - start_device
    if b.boards[0].peek(BASE, len(image)) != image:
        raise SystemExit("the flash did not write the image")
    size = trace.stat().st_size if trace is not None else 0
    if trace is not None:  # every DFU class request the transport made is in the trace
        # (the trace also holds standard requests: SET_INTERFACE, string descriptors)
        recorded = read_trace(trace).transfers
        if sum(1 for t in recorded if t.request_type & 0x60 == 0x20) != transfers:
            raise SystemExit("the trace does not hold every transfer")
    return Run(trace is not None, wall, cpu, device, transfers, size)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512, help="image size in KiB (default 512)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each variant (default 3)")
    parser.add_argument("--json", metavar="PATH", help="also write the results here")
    args = parser.parse_args(argv)
    image = random.Random(15).randbytes(args.size * 1024)
    runs: list[Run] = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "trace.jsonl"
        flash(image, None)  # warm up imports and caches
        for _ in range(args.repeat):
            runs.append(flash(image, None))
            runs.append(flash(image, path))
    plain = min((r for r in runs if not r.traced), key=lambda r: r.wall_seconds)
    traced = min((r for r in runs if r.traced), key=lambda r: r.wall_seconds)
    added = max(0.0, traced.wall_seconds - plain.wall_seconds)
    ratio = added / traced.device_seconds
    result = {
        "image_bytes": len(image),
        "dfuse": dfuse.__version__,
        "plain": asdict(plain),
        "traced": asdict(traced),
        "added_host_seconds": added,
        "added_per_transfer_us": added / traced.transfers * 1e6,
        "ratio_to_device_time": ratio,
        "goal": GOAL,
        "ok": ratio <= GOAL,
    }
    print(f"flash of {len(image) // 1024} KiB into the simulated STM32F411, best of {args.repeat}:")
    print(f"  device time        {traced.device_seconds:8.3f} s ({traced.transfers} transfers)")
    print(f"  host, untraced     {plain.wall_seconds:8.3f} s")
    print(f"  host, traced       {traced.wall_seconds:8.3f} s (trace {traced.trace_bytes} bytes)")
    print(f"  tracing added      {added * 1000:8.1f} ms ({result['added_per_transfer_us']:.1f} µs"
          " per transfer)")  # fmt: skip
    verdict = "ok" if result["ok"] else "MISSED"
    print(f"  ratio to device    {ratio:8.2%} (goal <= {GOAL:.0%}): {verdict}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
