"""Build a DfuSe .dfu from an Intel HEX (or S-record) file: the step a build script adds.

    python3 examples/build_dfu.py build/app.hex build/app.dfu
    python3 examples/build_dfu.py app.hex app.dfu --vid 0483 --pid df11 --name "Internal Flash"

The .dfu keeps the hex's gaps as separate elements and carries the USB IDs in its
suffix, so a flasher refuses it for the wrong device.
"""

from __future__ import annotations

import argparse
import sys

import dfuse


def build(source: str, output: str, *, vid: int, pid: int, name: str) -> dfuse.DfuSeFile:
    """Read ``source`` (.hex/.s19, recognised by content) and write ``output`` (.dfu)."""
    loaded = dfuse.load(source)
    if not isinstance(loaded, dfuse.DfuSeFile):
        raise SystemExit(f"{source}: a plain DFU file has no addresses")
    target = loaded.targets[0]
    image = dfuse.DfuSeFile(
        (dfuse.Target(0, name, target.elements),), vendor_id=vid, product_id=pid
    )
    image.save(output)
    return image


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", help="the .hex or .s19 the linker produced")
    parser.add_argument("output", help="the .dfu to write")
    parser.add_argument("--vid", default="0483", help="idVendor, hex (default 0483)")
    parser.add_argument("--pid", default="df11", help="idProduct, hex (default df11)")
    parser.add_argument("--name", default="Internal Flash", help="the target's name")
    args = parser.parse_args(argv)
    try:
        image = build(
            args.source, args.output, vid=int(args.vid, 16), pid=int(args.pid, 16), name=args.name
        )
    except (dfuse.DfuseError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(image.summary())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
