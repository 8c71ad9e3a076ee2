"""Whole-flash benchmark on every part of the part database (issue 13 item 6).

For each part, a random image as large as the part's physical main flash goes into a fresh
simulated board of that part (typical datasheet timings: ``spread=0``), on its virtual
clock, three ways measured in one run:

* **dfuse**: ``DfuDevice.download(image, verify=False)``, the host following the part's
  rules (padding, erase strategy by modelled time, the quirks' workarounds);
* **floor**: what no DfuSe host can beat: the quickest erase the datasheet allows for a
  whole-flash image (every page/sector one by one, or one mass erase where the ROM has
  one), programming every byte (``program_time`` per ``program_width`` bytes, as the
  simulator charges it), and the USB time the simulator charges for the requests no host
  can do without: each data block's DNLOAD and one GETSTATUS after it, one DNLOAD +
  GETSTATUS per erase command and one Set Address;
* **pydfu**: MicroPython's ``tools/pydfu.py`` protocol (its default, page erases; a Set
  Address before every block; GETSTATUS twice per request, never sleeping, so that the
  device holds the request until it is done), replayed with our own code. pydfu cannot
  survive four quirks, so its board has them off (its best case): an L4-class ROM that
  answers (or stalls) a GETSTATUS while busy, the H743 rev V bank-2 wedge, the U5's
  Set Address that is never busy, and the
  GD32VF103's over-reported layout (the replay erases the physical pages, as if pydfu
  had dfu-util's fix).

Goal (issue 13): dfuse within 5 % of the floor on every part and never slower than
pydfu; on L4/G4-class parts several times quicker than pydfu.

Run: ``python benchmarks/bench_parts.py [--json out.json] [--parts f072,l476]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import random
import struct
import sys
from dataclasses import asdict, dataclass

import usb.core
import usb.util

from dfuse.device import DfuDevice
from dfuse.parts import Part, all_parts
from dfuse.protocol.constants import State
from dfuse.sim import SimBackend, VirtualClock, board
from dfuse.sim.rom import timing_of

INTF = 0


@dataclass(frozen=True)
class Result:
    """One part's whole-flash numbers (device seconds on the virtual clock)."""

    part: str
    flash_bytes: int
    erase: str
    dfuse_s: float
    floor_s: float
    pydfu_s: float

    @property
    def vs_floor(self) -> float:
        """dfuse / floor."""
        return self.dfuse_s / self.floor_s

    @property
    def vs_pydfu(self) -> float:
        """dfuse / pydfu."""
        return self.dfuse_s / self.pydfu_s


def _board(part: Part, *, pydfu: bool = False) -> tuple[SimBackend, object]:
    model = board(part.name, timing=timing_of(part, spread=0.0), firmware_check=False)
    if pydfu:
        model.quirks = dataclasses.replace(
            model.quirks,
            stall_getstatus_while_busy=False,
            wedged_erase_from=None,
            over_reported_layout=False,
            set_address_skips_busy=False,
        )
    clock = VirtualClock()
    return SimBackend([model], clock=clock), model


def floor_s(part: Part) -> tuple[float, str]:
    """The floor for a whole-flash image of ``part`` and the erase it assumes."""
    flash = part.flash
    usb = timing_of(part).usb
    block = part.usb.transfer_size
    sizes = flash.unit_sizes()
    pages = sum(flash.erase_time(s).typ for s in sizes)
    mass = flash.mass_erase.typ
    quicker = mass < pages and flash.mass_erase_command.supported  # the L0 ROM has none
    erase, commands, how = (mass, 1, "mass") if quicker else (pages, len(sizes), "sectors")
    program = 0.0
    transfers = usb.transfer_cost(5) + usb.transfer_cost(6)  # one Set Address
    for offset in range(0, flash.size, block):
        n = min(block, flash.size - offset)
        program += math.ceil(n / flash.program_width) * flash.program_time.typ
        transfers += usb.transfer_cost(n) + usb.transfer_cost(6)
    transfers += commands * (usb.transfer_cost(5) + usb.transfer_cost(6))
    return erase + program + transfers, how


def run_dfuse(part: Part, image: bytes) -> tuple[float, str]:
    """dfuse's device time for ``image`` at the flash start, and the erase it chose."""
    backend, model = _board(part)
    with DfuDevice.open(backend=backend, clock=backend.clock) as dev:
        assert dev.part is not None, f"{part.name}: not identified"
        t0 = backend.clock.now
        (plan,) = dev.download(image, address=part.flash.address, verify=False)
        seconds = backend.clock.now - t0
    if model.peek(part.flash.address, len(image)) != image:  # type: ignore[attr-defined]
        raise SystemExit(f"{part.name}: dfuse: the board's flash differs from the image")
    erase = "mass" if any(e.to_dict().get("all") for e in plan.plan.erases) else "sectors"
    return seconds, erase


class Pydfu:
    """pydfu's requests, in pydfu's order, with pydfu's timeouts."""

    def __init__(self, backend: SimBackend) -> None:
        self.dev = usb.core.find(backend=backend)
        assert self.dev is not None
        self.dev.set_configuration()
        usb.util.claim_interface(self.dev, INTF)
        for _ in range(4):  # pydfu's init: clear an error, abort a transfer
            state = self.status()
            if state == State.dfuIDLE:
                break
            request = 6 if state in (State.dfuDNLOAD_IDLE, State.dfuUPLOAD_IDLE) else 4
            self.dev.ctrl_transfer(0x21, request, 0, INTF, None, 4000)

    def status(self) -> int:
        return int(self.dev.ctrl_transfer(0xA1, 3, 0, INTF, 6, 20000)[4])

    def command(self, block: int, data: bytes) -> None:
        self.dev.ctrl_transfer(0x21, 1, block, INTF, data, 4000)
        if self.status() != State.dfuDNBUSY:
            raise SystemExit("pydfu: DNLOAD failed")
        if self.status() != State.dfuDNLOAD_IDLE:
            raise SystemExit("pydfu: DNLOAD failed")

    def write_elements(self, part: Part, address: int, data: bytes, block: int) -> None:
        flash = part.flash
        pages, at = [], flash.address
        for size in flash.unit_sizes():
            pages.append((at, size))
            at += size
        for page, size in pages:  # pydfu: erase the page, write it chunk by chunk
            self.command(0, struct.pack("<BI", 0x41, page))
            lo = page - address
            for offset in range(lo, lo + size, block):
                self.command(0, struct.pack("<BI", 0x21, address + offset))
                self.command(2, data[offset : min(offset + block, lo + size)])


def run_pydfu(part: Part, image: bytes) -> float:
    """pydfu's device time for ``image`` at the flash start."""
    backend, model = _board(part, pydfu=True)
    host = Pydfu(backend)
    t0 = backend.clock.now
    host.write_elements(part, part.flash.address, image, part.usb.transfer_size)
    seconds = backend.clock.now - t0
    usb.util.dispose_resources(host.dev)
    if model.peek(part.flash.address, len(image)) != image:  # type: ignore[attr-defined]
        raise SystemExit(f"{part.name}: pydfu: the board's flash differs from the image")
    return seconds


def measure(part: Part) -> Result:
    """Every number of one part."""
    image = random.Random(part.name).randbytes(part.flash.size)
    ours, erase = run_dfuse(part, image)
    floor, _how = floor_s(part)
    return Result(part.name, len(image), erase, ours, floor, run_pydfu(part, image))


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print the table, optionally write JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="write the results to this file")
    parser.add_argument("--parts", help="comma-separated part names (default: every part)")
    args = parser.parse_args(argv)
    wanted = set(args.parts.split(",")) if args.parts else None
    parts = [p for p in all_parts() if wanted is None or wanted & set(p.names)]
    print("whole-flash download per part, device seconds on the virtual clock (typical timings)")
    print(
        f"{'part':<14}{'flash':>9}{'erase':>9}{'dfuse s':>10}{'floor s':>10}{'pydfu s':>10}"
        f"{'dfuse/floor':>13}{'dfuse/pydfu':>13}{'pydfu/dfuse':>13}"
    )
    results = []
    for part in parts:
        r = measure(part)
        results.append(r)
        print(
            f"{r.part:<14}{r.flash_bytes // 1024:>8}K{r.erase:>9}{r.dfuse_s:>10.3f}"
            f"{r.floor_s:>10.3f}{r.pydfu_s:>10.3f}{r.vs_floor:>13.3f}{r.vs_pydfu:>13.3f}"
            f"{1 / r.vs_pydfu:>13.2f}"
        )
    missed = [r for r in results if r.vs_floor > 1.05 or r.vs_pydfu > 1.0]
    print(
        f"goal (within 5 % of the floor, never above pydfu): "
        f"{len(results) - len(missed)}/{len(results)} parts"
        + (f"; missed: {', '.join(r.part for r in missed)}" if missed else "")
    )
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            rows = [{**asdict(r), "vs_floor": r.vs_floor, "vs_pydfu": r.vs_pydfu} for r in results]
            json.dump(rows, fh, indent=2)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
