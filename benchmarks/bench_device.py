"""Download benchmark: 512 KiB into the simulated STM32F411 on its virtual clock.

Measured in one run, for dfuse's planner and for a naive baseline host that sets
the address pointer before every block (the simplest correct DfuSe host):

* device-bound time (the virtual ``backend.clock``) against the sum of the
  datasheet's typical erase and program times for the image (goal: host overhead
  <= 5 %);
* control transfers per 2048-byte block (goal <= 3.0), counted by the
  transport and cross-checked with the simulator's request counters;
* host CPU time per MiB (``time.process_time``).

Run: ``python benchmarks/bench_device.py [--json out.json] [--size KiB]``.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from dataclasses import asdict, dataclass

from dfuse.device import DfuDevice
from dfuse.layout import MemoryLayout
from dfuse.protocol.plan import PlanOptions, plan_download
from dfuse.sim import STM32F411_TIMING, SimBackend, Stm32F411

BASE = 0x08000000
BLOCK = 2048
DFU_REQUESTS = ("DNLOAD", "UPLOAD", "GETSTATUS", "CLRSTATUS", "GETSTATE", "ABORT")


@dataclass(frozen=True)
class Result:
    """One measured download."""

    name: str
    image_bytes: int
    blocks: int
    device_seconds: float
    datasheet_seconds: float
    overhead: float
    transfers: int
    transfers_per_block: float
    write_phase_transfers_per_block: float
    usb_floor_seconds: float
    sim_requests: int
    cpu_seconds: float
    cpu_seconds_per_mib: float


def datasheet_seconds(image_size: int, layout: MemoryLayout) -> float:
    """Typical erase time of the sectors an image at BASE touches (or of one mass erase,
    when the image covers the whole flash and that is quicker: what dfuse then does),
    plus word programming."""
    flash = STM32F411_TIMING.flash
    touched = layout.sectors_for(BASE, image_size)
    erase = sum(flash.erase_duration(s.size).typ for s in touched)
    if len(touched) == len(layout.sectors):
        erase = min(erase, flash.mass_erase.typ)
    program = (image_size + 3) // 4 * flash.word_program.typ
    return erase + program


def run(name: str, data: bytes, *, verify: bool, naive: bool) -> Result:
    """Download ``data`` at BASE into a fresh simulated F411 (typical timings)."""
    chip = Stm32F411(serial="BENCH", timing=STM32F411_TIMING.typical())
    backend = SimBackend([chip])
    with DfuDevice.open(backend=backend) as dev:
        layout = dev.layout
        assert layout is not None
        sim_before = sum(chip.requests[r] for r in DFU_REQUESTS)
        host_before = dev.transport.transfers
        t0 = backend.clock.now
        erase_done = [host_before]

        def progress(phase: str, done: int, total: int) -> None:
            if phase == "erase" and done == total:
                erase_done[0] = dev.transport.transfers

        cpu0 = time.process_time()
        if naive:
            # Baseline: Set Address before every block (max_block=2), no 0xFF skipping.
            options = PlanOptions(verify=verify, skip_erased=False, max_block=2)
            plan = plan_download([(BASE, data)], layout, dev.transfer_size, options)
            dev.execute(plan, progress=progress)
        else:
            dev.download(data, address=BASE, verify=verify, progress=progress)
        cpu = time.process_time() - cpu0
        device = backend.clock.now - t0
        transfers = dev.transport.transfers - host_before
        erase_transfers = erase_done[0] - host_before
        sim_requests = sum(chip.requests[r] for r in DFU_REQUESTS) - sim_before
    if chip.peek(BASE, len(data)) != data:
        raise SystemExit(f"{name}: flash contents differ from the image")
    sheet = datasheet_seconds(len(data), layout)
    blocks = -(-len(data) // BLOCK)
    usb = STM32F411_TIMING.usb
    # The USB time no DfuSe host can avoid: each block's DNLOAD and one GETSTATUS after
    # the device is done (the GETSTATUS that starts the operation overlaps with it).
    floor = sum(usb.transfer_cost(min(BLOCK, len(data) - o)) for o in range(0, len(data), BLOCK))
    floor += blocks * usb.transfer_cost(6)
    return Result(
        name=name,
        image_bytes=len(data),
        blocks=blocks,
        device_seconds=device,
        datasheet_seconds=sheet,
        overhead=device / sheet - 1.0,
        transfers=transfers,
        transfers_per_block=transfers / blocks,
        write_phase_transfers_per_block=(transfers - erase_transfers) / blocks,
        usb_floor_seconds=floor,
        sim_requests=sim_requests,
        cpu_seconds=cpu,
        cpu_seconds_per_mib=cpu / (len(data) / (1 << 20)),
    )


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print a table, optionally write JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="write the results to this file")
    parser.add_argument("--size", type=int, default=512, help="image size in KiB (default 512)")
    args = parser.parse_args(argv)
    rng = random.Random(411)
    data = bytes(rng.getrandbits(8) for _ in range(args.size * 1024))
    results = [
        run("dfuse, no verify", data, verify=False, naive=False),
        run("dfuse, verify", data, verify=True, naive=False),
        run("naive host, no verify", data, verify=False, naive=True),
    ]
    print(f"{args.size} KiB random image into a simulated STM32F411 (typical datasheet timings)")
    header = (
        f"{'host':<24}{'device s':>10}{'sheet s':>10}{'overhead':>10}"
        f"{'xfers/blk':>11}{'write x/b':>11}{'sim reqs':>10}{'CPU s/MiB':>11}"
    )
    print(header)
    for r in results:
        print(
            f"{r.name:<24}{r.device_seconds:>10.3f}{r.datasheet_seconds:>10.3f}"
            f"{r.overhead:>10.1%}{r.transfers_per_block:>11.3f}"
            f"{r.write_phase_transfers_per_block:>11.3f}{r.sim_requests:>10}"
            f"{r.cpu_seconds_per_mib:>11.3f}"
        )
    ours, naive = results[0], results[2]
    print(
        f"USB floor for this image (DNLOAD data + one GETSTATUS per block): "
        f"{ours.usb_floor_seconds:.3f} s = {ours.usb_floor_seconds / ours.datasheet_seconds:.1%} "
        f"of the datasheet time; dfuse's overhead above the floor: "
        f"{ours.device_seconds - ours.datasheet_seconds - ours.usb_floor_seconds:.3f} s"
    )
    print(
        f"ratio naive/dfuse: device time {naive.device_seconds / ours.device_seconds:.3f}x, "
        f"transfers {naive.transfers / ours.transfers:.3f}x"
    )
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump([asdict(r) for r in results], fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
