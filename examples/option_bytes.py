"""Read and decode the option bytes of an STM32F4: read protection, write protection, BOR.

    python3 examples/option_bytes.py                 # the board in DFU mode
    python3 examples/option_bytes.py --sim           # a simulated STM32F411
    python3 examples/option_bytes.py --file ob.bin   # 16 bytes saved earlier

The option bytes are alternate setting 1 of the bootloader ("@Option Bytes"), one
16-byte block at 0x1FFFC000; :class:`dfuse.OptionBytes` decodes it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import dfuse
from dfuse.optionbytes import OPTION_BYTES_ADDRESS, OPTION_BYTES_SIZE


def read_option_bytes(backend: object = None) -> dfuse.OptionBytes:
    """Read the 16-byte block from the one board in DFU mode and decode it."""
    with dfuse.open("usb:0483:df11", alt="Option Bytes", backend=backend) as dev:
        return dfuse.OptionBytes.parse(dev.upload(OPTION_BYTES_ADDRESS, OPTION_BYTES_SIZE))


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sim", action="store_true", help="read a simulated STM32F411")
    parser.add_argument("--file", help="decode 16 bytes from this file instead")
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args(argv)
    try:
        if args.file:
            ob = dfuse.OptionBytes.parse(Path(args.file).read_bytes())
        elif args.sim:
            from dfuse.sim import SimBackend, Stm32F411

            board = Stm32F411()
            board.set_write_protection([0, 1])  # something to see
            ob = read_option_bytes(SimBackend([board]))
        else:
            ob = read_option_bytes()
    except (dfuse.DfuseError, OSError) as exc:  # no board, no libusb, a bad file: one line
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(ob.to_dict(), indent=2) if args.json else ob.describe())
    if ob.rdp_level != dfuse.RdpLevel.LEVEL_0:
        print("note: read protection is active; `dfuse unprotect --yes` removes it (erases flash)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
