"""From the device options of a command to a :class:`dfuse.selector.Bench`.

The selector grammar and the simulated boards are the library's
(:mod:`dfuse.selector`); this module only merges ``-d`` (or ``$DFUSE_DEVICE``) with
the dfu-util style short options ``-a``, ``-S`` and ``-p`` (and ``--wait``: wait for the
device to appear). A simulated board lives
only as long as the command: its memory starts erased every time (``dfuse demo``
runs the whole flow in one process).
"""

from __future__ import annotations

import argparse
import dataclasses
import os

from dfuse.cli.parser import DEFAULT_DEVICE_ENV
from dfuse.cli.selector import parse_alt
from dfuse.selector import Bench, DeviceSelector, sim_bench

__all__ = ["open_bench", "selector_text", "sim_bench"]


def selector_text(args: argparse.Namespace) -> str:
    """The ``-d`` selector, else ``$DFUSE_DEVICE``, else ``usb:`` (any USB DFU device)."""
    text: str = args.device or os.environ.get(DEFAULT_DEVICE_ENV) or "usb:"
    return text


def open_bench(args: argparse.Namespace) -> Bench:
    """The bench for the command's device options (simulated boards are created here).

    For ``sim:``, the selector's ``serial`` names the board it creates; ``-S`` and
    ``-p`` filter which of the boards to open, as for real devices.
    """
    from dfuse.cli.cmd_station import parse_wait

    base = DeviceSelector.parse(selector_text(args))
    alt = parse_alt(args.alt) if args.alt is not None else None
    selector = base.with_overrides(alt=alt, serial=args.serial, path=args.path)
    wait = parse_wait(getattr(args, "wait", None))
    if not base.is_sim:
        return Bench(selector, wait=wait)
    return dataclasses.replace(sim_bench(base, selector), wait=wait)
