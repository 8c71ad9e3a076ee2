"""``dfuse sim replay``: replay a trace on a simulated board (:func:`dfuse.sim.replay`)."""

from __future__ import annotations

import argparse

from dfuse.cli.exitcodes import ExitCode, UsageError
from dfuse.cli.output import Ui
from dfuse.errors import UsageError as LibraryUsageError

__all__ = ["cmd_sim_replay"]


def cmd_sim_replay(args: argparse.Namespace, ui: Ui) -> int:
    """Replay ``args.file``; exit 0 when the simulator agreed everywhere, else
    :attr:`ExitCode.VERIFY_FAILED` with the first divergences listed."""
    from dfuse.sim.replayer import POLL_TOLERANCE, POLL_TOLERANCE_MS, replay

    if args.limit < 1:
        raise UsageError(f"invalid --limit {args.limit}: expected 1 or more")
    if args.poll_tolerance is not None and args.poll_tolerance < 0:
        raise UsageError(f"invalid --poll-tolerance {args.poll_tolerance}: must not be negative")
    try:
        report = replay(
            args.file,
            part=args.part,
            poll_tolerance_ms=(
                POLL_TOLERANCE_MS if args.poll_tolerance is None else args.poll_tolerance
            ),
            poll_tolerance=POLL_TOLERANCE if args.poll_tolerance is None else 0.0,
            compare_memory=not args.no_memory,
            limit=args.limit,
        )
    except LibraryUsageError as exc:
        raise UsageError(str(exc)) from exc
    ui.emit({"ok": report.ok, "replay": report.to_dict()})
    ui.text(report.summary(limit=args.limit))
    return ExitCode.OK if report.ok else ExitCode.VERIFY_FAILED
