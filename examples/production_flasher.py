"""A custom production flasher: flash every STM32 in DFU mode, verify, start it, log it.

    python3 examples/production_flasher.py firmware.dfu            # real boards
    python3 examples/production_flasher.py firmware.hex --sim 4    # four simulated boards

One line per board (serial number, result, seconds); the exit status is the number of
boards that failed, so a test station's script can act on it. One board failing does not
stop the others.
"""

from __future__ import annotations

import argparse
import sys
import time

import dfuse


def flash_all(image: dfuse.DfuSeFile | dfuse.DfuFile, backend: object = None) -> int:
    """Flash ``image`` to every ST bootloader on the bus; return how many failed."""
    boards = dfuse.list("usb:0483:df11", backend=backend)
    if not boards:
        print("no board in DFU mode (BOOT0 high, then reset)", file=sys.stderr)
        return 1
    failed = 0
    for info in boards:
        start = time.perf_counter()
        try:
            with dfuse.open(f"usb:path={info.path}", backend=backend) as dev:
                dev.download(image, verify=True)  # erase, write, read back and compare
                dev.leave()  # start the application
        except dfuse.DfuseError as exc:
            failed += 1
            print(f"{info.serial}  FAILED  {exc}")
            continue
        print(f"{info.serial}  OK  {time.perf_counter() - start:.2f} s")
    return failed


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("firmware", help=".dfu, .hex or .s19")
    parser.add_argument("--sim", type=int, metavar="N", help="use N simulated boards instead")
    args = parser.parse_args(argv)
    image = dfuse.load(args.firmware)
    backend = None
    if args.sim:
        from dfuse.sim import SimBackend, Stm32F411

        boards = [
            Stm32F411(serial=f"SIM{i:04d}", address=i, port_numbers=(i,))
            for i in range(1, args.sim + 1)
        ]
        backend = SimBackend(boards)
    return flash_all(image, backend)


if __name__ == "__main__":
    raise SystemExit(main())
