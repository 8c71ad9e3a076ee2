"""``dfuse station`` (flash every board as it arrives) and ``dfuse log`` (the flash record).

The parsers are added by :func:`add_commands` (called from :func:`dfuse.cli.parser.build_parser`);
the work is the library's :class:`dfuse.station.Station` and
:class:`dfuse.station.RecordStore`.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from dfuse.cli.exitcodes import ExitCode, UsageError
from dfuse.cli.output import Ui

__all__ = ["add_commands", "add_log_option", "cmd_log", "cmd_station", "open_log", "parse_wait"]

_STATION = "dfuse.cli.cmd_station"


def parse_wait(value: str | None) -> float | None:
    """``--wait[=SECONDS]``: ``None`` (not given), ``inf`` (given alone) or the seconds."""
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if not seconds >= 0:
        raise UsageError(f"invalid --wait {value!r}: expected a number of seconds >= 0")
    return seconds


def add_commands(
    sub: Any,
    make: Callable[..., argparse.ArgumentParser],
    device_options: Callable[..., None],
) -> None:
    """Add ``station`` and ``log`` to the ``dfuse`` subcommands (``make`` is the parser's
    ``_sub``, ``device_options`` its ``_device_options``)."""
    p = make(
        sub,
        "station",
        f"{_STATION}:cmd_station",
        "flash every board that arrives, stamp and record each (production)",
        description=(
            "Wait for boards and flash each one that appears in DFU mode and matches the"
            " selector (a serial number not seen before, or seen again after it was"
            " removed), each in its own worker: erase, write, verify and, with --leave,"
            " start it. Runs until Ctrl-C or --count boards are done. Every board is"
            " recorded in the flash record (--log; `dfuse log` shows it)."
        ),
    )
    device_options(p, wait=False)
    p.add_argument("image", metavar="IMAGE", help="the firmware (.dfu, .hex, .s19, .bin)")
    p.add_argument(
        "--address", metavar="ADDR", help="load address of a raw .bin (default 0x08000000)"
    )
    p.add_argument(
        "--count", metavar="N", type=int, help="stop after N boards (passed or failed)"
    )
    p.add_argument(
        "--stamp",
        metavar="ADDRESS:SPEC",
        action="append",
        default=[],
        help=(
            "write per-board data at ADDRESS, in the same download (repeat); SPEC: serial,"
            " uid, counter[:START[:WIDTH]], sha256 or time"
        ),
    )
    p.add_argument(
        "--log",
        metavar="PATH|URL",
        help=(
            "the flash record: an SQLite file or postgresql://USER@HOST/DB (default:"
            " $DFUSE_LOG, else records.sqlite in the user's data directory)"
        ),
    )
    p.add_argument("--station-id", metavar="NAME", help="this station's name in the record")
    p.add_argument("--leave", action="store_true", help="start each board's application")
    p.add_argument("--no-verify", action="store_true", help="skip the read-back")

    p = make(
        sub,
        "log",
        f"{_STATION}:cmd_log",
        "show the flash record (what each station flashed)",
        description=(
            "Show the flash record: one line per board flashed by `dfuse station` (or by"
            " a command given --log). --json prints one document {\"records\": [...]}."
        ),
    )
    p.add_argument("--log", metavar="PATH|URL", help="the record store (as for station)")
    p.add_argument("--serial", metavar="S", help="only this board")
    p.add_argument("--since", metavar="TIME", help="only records at or after TIME (ISO 8601)")
    p.add_argument("--failed", action="store_true", help="only failed boards")
    p.add_argument("--station-id", metavar="NAME", help="only this station")
    p.add_argument("--limit", metavar="N", type=int, help="only the last N records")
    p.add_argument("--csv", action="store_true", help="print CSV instead of a table")


def add_log_option(parser: argparse.ArgumentParser) -> None:
    """``--log PATH|URL`` for a command that records its flash (``dfuse flash``)."""
    parser.add_argument(
        "--log",
        metavar="PATH|URL",
        help="record this flash in the flash record (an SQLite file or postgresql:// URL;"
        " see `dfuse log`)",
    )


def open_log(args: argparse.Namespace) -> Any:
    """The record store ``--log`` names (opened now, before any device), or ``None``."""
    location = getattr(args, "log", None)
    if location is None:
        return None
    from dfuse.station import RecordStore

    return RecordStore.open(location)


# --------------------------------------------------------------------------- station


class _Table:
    """The live table: one row per board (serial, phase, progress, result, time)."""

    def __init__(self) -> None:
        self.rows: dict[str, list[str]] = {}

    def update(self, event: Any) -> None:
        row = self.rows.setdefault(event.name, [event.name, "", "", "", ""])
        if event.kind in ("done", "failed"):
            record = event.record
            row[1] = "done" if event.kind == "done" else event.phase
            row[2] = "100%" if event.kind == "done" else row[2]
            row[3] = "ok" if event.kind == "done" else "FAILED"
            if record is not None and record.error:
                row[3] = f"FAILED: {record.error[:60]}"
        elif event.kind == "removed":
            row[1] = "removed"
        else:
            row[1], row[2] = event.phase, f"{event.percent:.0f}%"
        row[4] = f"{event.elapsed:.1f} s"

    def render(self) -> Any:
        from rich.table import Table

        table = Table(title="dfuse station", expand=False)
        for name in ("serial", "phase", "progress", "result", "time"):
            table.add_column(name)
        for row in self.rows.values():
            table.add_row(*row)
        return table


def cmd_station(args: argparse.Namespace, ui: Ui) -> int:
    """``dfuse station IMAGE``."""
    from dfuse.cli.session import open_bench
    from dfuse.errors import CancelledError
    from dfuse.station import RecordStore, StampError, Station, parse_stamp

    if args.count is not None and args.count < 1:
        raise UsageError(f"invalid --count {args.count}: expected at least 1")
    try:
        stamps = [parse_stamp(text) for text in args.stamp]
    except StampError as exc:
        raise UsageError(f"--stamp: {exc}") from exc
    image = _image(args)
    store = RecordStore.open(args.log)  # unreachable or read-only: an error before any board
    try:
        bench = open_bench(args)
        table = _Table()
        out: IO[str] = ui.out.file
        live = not ui.json_mode and not ui.quiet and ui.err.is_terminal
        live_console = ui.err if live else None

        def on_event(event: Any) -> None:
            if ui.json_mode:
                if event.kind != "progress":
                    out.write(json.dumps(event.to_dict(), default=str) + "\n")
                    out.flush()
                return
            table.update(event)
            if live_console is None and event.kind in ("done", "failed") and not ui.quiet:
                record = event.record
                error = record.error if record is not None else ""
                result = "ok" if event.kind == "done" else f"FAILED: {error}"
                ui.err.print(f"{event.name}: {result} ({event.elapsed:.2f} s)", markup=False)

        station = Station(
            image,
            bench,
            store=store,
            stamps=stamps,
            station_id=args.station_id,
            image_name=args.image,
            verify=not args.no_verify,
            leave=args.leave,
            on_event=on_event,
        )
        ui.note(f"station: waiting for boards matching {bench.selector} (Ctrl-C to stop)")
        cancel = threading.Event()
        result: dict[str, Any] = {}
        finished = threading.Event()

        def run() -> None:
            try:
                result["summary"] = station.run(count=args.count, cancel=cancel)
            except BaseException as exc:
                result["error"] = exc
            finally:
                finished.set()

        worker = threading.Thread(target=run, name="dfuse-station", daemon=True)
        interrupted = False
        display = None
        if live_console is not None:
            from rich.live import Live

            display = Live(table.render(), console=live_console, refresh_per_second=8)
            display.start()
        try:
            worker.start()
            # wait on an Event, not Thread.join(): a Ctrl-C that interrupts join() can
            # leave the thread looking finished while it still runs (CPython)
            while not finished.is_set():
                try:
                    finished.wait(0.1)
                    if display is not None:
                        display.update(table.render())
                except KeyboardInterrupt:
                    interrupted = True
                    cancel.set()
                    ui.note("station: stopping (the boards in progress stop at a safe point)")
        finally:
            if display is not None:
                display.update(table.render())
                display.stop()
        worker.join()
        if "error" in result:
            raise result["error"]
        summary = result["summary"]
        if ui.json_mode:
            out.write(
                json.dumps(
                    {
                        "event": "summary",
                        "passed": summary.passed,
                        "failed": summary.failed,
                        "duration": round(summary.duration, 6),
                        "reasons": dict(summary.reasons()),
                        "log": store.url,
                    }
                )
                + "\n"
            )
        else:
            ui.text(summary.summary())
            ui.note(f"record: {store.url}")
        if interrupted or summary.cancelled:
            return int(ExitCode.INTERRUPTED)
        if any(r.error_type == CancelledError.__name__ for r in summary.records):
            return int(ExitCode.INTERRUPTED)
        return ExitCode.gang(summary.failed)
    finally:
        store.close()


def _image(args: argparse.Namespace) -> Any:
    """The image to flash (a raw binary goes to --address, default 0x08000000)."""
    from dfuse.cli.cmd_files import DEFAULT_BIN_ADDRESS, load_firmware
    from dfuse.cli.selector import parse_int

    address = parse_int(args.address, what="address") if args.address else None
    _kind, image = load_firmware(args.image, address=address or DEFAULT_BIN_ADDRESS)
    return image


# --------------------------------------------------------------------------- log


def _existing_store(location: str | None) -> None:
    """``dfuse log --log PATH`` reads a store: a PATH that holds none (a typo) is refused
    rather than created empty and reported as "0 record(s)". The default store (no --log,
    no $DFUSE_LOG) may not exist yet: that is no records."""
    import os

    from dfuse.station.store import DEFAULT_LOG_ENV

    text = location if location is not None else os.environ.get(DEFAULT_LOG_ENV)
    if not text or text == ":memory:" or "://" in text:
        return
    path = Path(text).expanduser()
    if not path.exists():
        raise UsageError(
            f"--log {text}: no record store there (expected an existing SQLite file;"
            " `dfuse station` and `dfuse flash --log` create one)"
        )


def cmd_log(args: argparse.Namespace, ui: Ui) -> int:
    """``dfuse log``."""
    from dfuse.station import RecordStore
    from dfuse.station.store import CSV_FIELDS

    if args.limit is not None and args.limit < 1:
        raise UsageError(f"invalid --limit {args.limit}: expected at least 1")
    if args.csv and ui.json_mode:
        raise UsageError("--csv and --json are two output formats: give one of them")
    _existing_store(args.log)
    with RecordStore.open(args.log) as store:
        records = store.query(
            serial=args.serial,
            since=args.since,
            failed=args.failed,
            station=args.station_id,
            limit=args.limit,
        )
    if ui.json_mode:
        ui.emit({"records": [r.to_dict() for r in records]})
        return int(ExitCode.OK)
    if args.csv:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(CSV_FIELDS)
        for record in records:
            row = record.to_dict()
            row["stamps"] = json.dumps(row["stamps"])
            writer.writerow(["" if row[k] is None else row[k] for k in CSV_FIELDS])
        ui.text(buffer.getvalue().rstrip("\n"))
        return int(ExitCode.OK)
    from rich.table import Table

    table = Table(expand=False)
    for name in ("time", "station", "serial", "part", "result", "stamps", "time (s)"):
        table.add_column(name)
    for record in records:
        stamps = ", ".join(f"{s['spec'].split(':')[0]}={s['value']}" for s in record.stamps)
        result = "ok" if record.ok else f"FAILED: {record.error_type}: {record.error}"
        table.add_row(
            record.time,
            record.station,
            record.serial or "-",
            record.part,
            result,
            stamps,
            f"{record.duration:.2f}",
        )
    ui.print(table)
    ui.note(f"{len(records)} record(s) in {store.url}")
    return int(ExitCode.OK)
