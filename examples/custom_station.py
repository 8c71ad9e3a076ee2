"""A custom station: flash each board as it arrives, stamp a number from a shared counter.

Run: ``custom_station.py fw.hex "sim:stm32f411?boards=4&arrive=0.5" --count 4``
(real boards: ``custom_station.py fw.hex usb:0483:df11 --log line.sqlite``).
"""

import argparse

import dfuse
from dfuse.station import BoardEvent, RecordStore, Station, parse_stamp


def show(event: BoardEvent) -> None:
    """One line per finished board: serial, result, its number, seconds, error."""
    if (r := event.record) is not None:
        number = next((s["value"] for s in r.stamps if s["spec"].startswith("counter")), "-")
        print(f"{event.name}  {r.result.upper()}  #{number}  {r.duration:.2f} s  {r.error or ''}")


def main(argv: list[str] | None = None) -> int:
    """Run until --count boards are done (or Ctrl-C); the exit status counts failures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("firmware")
    parser.add_argument("selector", nargs="?", default="usb:0483:df11")
    parser.add_argument("--log", default=":memory:", help="SQLite file or postgresql:// URL")
    parser.add_argument("--count", type=int, help="stop after N boards (default: Ctrl-C)")
    args = parser.parse_args(argv)
    number = parse_stamp("0x0807FF00:counter:1000:4")  # in the last flash sector
    with RecordStore.open(args.log) as store:
        station = Station(dfuse.load(args.firmware), args.selector, store=store,
                          stamps=[number], on_event=show, leave=True)  # fmt: skip
        summary = station.run(count=args.count)
    print(summary.summary())
    return summary.failed


if __name__ == "__main__":
    raise SystemExit(main())
