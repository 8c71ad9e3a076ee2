"""Station benchmark: 16 boards arriving together against one board, and the cost of the record.

Measured in one run, on the real-time clock (every erase, program and USB transfer of
the simulated STM32F411 takes its typical time; the host runs one worker per board):

1. one board through :class:`dfuse.station.Station` (a 32 KiB image, a ``counter`` and a
   ``serial`` stamp, recorded in SQLite): its wall time;
2. 16 boards plugged in together, same station setup: the wall time, and the ratio to
   one board's (goal: <= 1.3);
3. the recording overhead, for SQLite and for PostgreSQL (``--pg URL``; without it a
   throwaway server is started when Debian's ``postgresql`` is installed, else the
   PostgreSQL figure is reported as skipped): the time the store takes for what the
   run recorded (one counter allocation and one record per board, replayed one after
   another into the same kind of store), over the boards' device time (goal: < 2 %).
   The wall time the workers spent inside store calls during the run is printed too:
   it also counts waiting for the other 15 workers' transactions and for the GIL,
   which the simulated boards (pure Python, in the same process) hold far more than
   real USB transfers do.

Every board's flash is checked against the stamped image before the numbers count.

Run: ``python benchmarks/bench_station.py [--boards 16] [--size 32] [--pg URL] [--json out.json]``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pwd
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from dfuse.clock import RealClock
from dfuse.file import DfuSeFile
from dfuse.selector import Bench, DeviceSelector
from dfuse.sim import STM32F411_TIMING, SimBackend, Stm32F411
from dfuse.station import RecordStore, Station, parse_stamp

BASE = 0x08000000
STAMPS = ("0x08010000:counter:1:4", "0x08010010:serial")
RATIO_GOAL = 1.3
OVERHEAD_GOAL = 0.02


@dataclass(frozen=True)
class Run:
    """One station run."""

    boards: int
    wall_seconds: float
    device_seconds: float
    record_seconds: float
    replay_seconds: float

    @property
    def overhead(self) -> float:
        """The store's time for this run's records over the device time."""
        return self.replay_seconds / self.device_seconds

    @property
    def in_run(self) -> float:
        """Wall time inside store calls during the run over the device time."""
        return self.record_seconds / self.device_seconds


def station_run(boards: int, image: DfuSeFile, log: str) -> Run:
    """Plug ``boards`` fresh boards in together and run a station until all are flashed."""
    chips = [
        Stm32F411(serial=f"ST{i:02d}", timing=STM32F411_TIMING.typical(), address=i + 1,
                  port_numbers=(i + 1,))
        for i in range(boards)
    ]  # fmt: skip
    clock = RealClock()
    backend = SimBackend(chips, clock=clock)
    bench = Bench(DeviceSelector("sim"), backend, tuple(chips), clock)
    with RecordStore.open(log) as store:
        station = Station(image, bench, store=store, stamps=[parse_stamp(s) for s in STAMPS])
        start = time.perf_counter()
        summary = station.run(count=boards)
        wall = time.perf_counter() - start
        records = store.query(limit=boards)
    if summary.failed or len(records) != boards:
        raise SystemExit("a board failed:\n" + summary.summary())
    data = image.targets[0].elements[0].data
    numbers = {r.serial: r.stamps[0]["value"] for r in records}
    for chip in chips:
        if chip.peek(BASE, len(data)) != data:
            raise SystemExit(f"board {chip.serial}: the flash differs from the image")
        if int.from_bytes(chip.peek(0x08010000, 4), "little") != numbers[chip.serial]:
            raise SystemExit(f"board {chip.serial}: the counter stamp differs from its record")
    device = sum(r.duration for r in summary.records)
    with RecordStore.open(log) as store:
        start = time.perf_counter()
        for record in summary.records:  # the same work, without the run around it
            store.allocate(f"replay-{boards}", start=1)
            store.add(record)
        replay = time.perf_counter() - start
    return Run(boards, wall, device, summary.record_seconds, replay)


@contextlib.contextmanager
def throwaway_postgres() -> Iterator[str | None]:
    """A PostgreSQL server for the run (Debian's binaries, as ``nobody`` when root)."""
    bins = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not bins:
        yield None
        return
    bindir = bins[-1].parent
    root = Path(tempfile.mkdtemp(prefix="dfuse-bench-pg-"))
    as_user: dict[str, str] = {"cwd": str(root)}
    if os.geteuid() == 0:
        entry = pwd.getpwnam("nobody")
        os.chmod(root, 0o755)
        os.chown(root, entry.pw_uid, entry.pw_gid)
        as_user["user"] = "nobody"
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    data = root / "data"
    try:
        subprocess.run([str(bindir / "initdb"), "-D", str(data), "-U", "postgres",
                        "--auth=trust", "--no-sync"], check=True, capture_output=True,
                       **as_user)  # type: ignore[call-overload]  # fmt: skip
        subprocess.run([str(bindir / "pg_ctl"), "-D", str(data), "-w", "-l", str(root / "log"),
                        "-o", f"-c listen_addresses=127.0.0.1 -p {port} -k {root}", "start"],
                       check=True, capture_output=True, **as_user)  # type: ignore[call-overload]  # fmt: skip
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True, **as_user)  # type: ignore[call-overload]  # fmt: skip
        shutil.rmtree(root, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print the figures, optionally write JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--boards", type=int, default=16, help="boards arriving together")
    parser.add_argument("--size", type=int, default=32, help="image size in KiB (default 32)")
    parser.add_argument("--pg", metavar="URL", help="a PostgreSQL database to record into")
    parser.add_argument("--no-pg", action="store_true", help="skip the PostgreSQL figure")
    parser.add_argument("--json", help="write the results to this file")
    args = parser.parse_args(argv)
    image = DfuSeFile.from_bin(random.Random(16).randbytes(args.size * 1024), address=BASE)
    results: dict[str, object] = {"boards": args.boards, "image_bytes": args.size * 1024}
    with tempfile.TemporaryDirectory() as tmp:
        log = str(Path(tmp) / "records.sqlite")
        one = station_run(1, image, log)
        many = station_run(args.boards, image, log)
    ratio = many.wall_seconds / one.wall_seconds
    print(f"{args.size} KiB image + 2 stamps, simulated STM32F411 boards, real-time clock")
    print(f"1 board                   {one.wall_seconds:7.3f} s wall")
    print(f"{args.boards} boards arriving together {many.wall_seconds:7.3f} s wall")
    verdict = "meets" if ratio <= RATIO_GOAL else "MISSES"
    print(f"ratio {args.boards} boards / 1 board: {ratio:.3f} ({verdict} the goal <= {RATIO_GOAL})")
    results.update(one=asdict(one), many=asdict(many), ratio=ratio, ratio_goal=RATIO_GOAL)
    overheads = {"sqlite": many}
    if not args.no_pg:
        with contextlib.ExitStack() as stack:
            url = args.pg or stack.enter_context(throwaway_postgres())
            if url is None:
                print("PostgreSQL: skipped (no server: pass --pg URL or install postgresql)")
            else:
                overheads["postgresql"] = station_run(args.boards, image, url)
    for name, run in overheads.items():
        verdict = "meets" if run.overhead < OVERHEAD_GOAL else "MISSES"
        print(f"recording overhead, {name:10s} {100 * run.overhead:6.3f} % of device time "
              f"({run.replay_seconds * 1000:.1f} ms for {run.boards} boards over "
              f"{run.device_seconds:.1f} s; {verdict} the goal < {100 * OVERHEAD_GOAL:.0f} %)")
        print(f"  in the run, with {run.boards} workers contending: {100 * run.in_run:.3f} % "
              f"({run.record_seconds * 1000:.1f} ms)")  # fmt: skip
        results[f"overhead_{name}"] = run.overhead
        results[f"in_run_{name}"] = run.in_run
    results["overhead_goal"] = OVERHEAD_GOAL
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(results, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
