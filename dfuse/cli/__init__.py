"""The ``dfuse`` command line (console script ``dfuse`` and ``python -m dfuse``).

A thin shell over the library: it parses arguments, turns a device selector
into :meth:`dfuse.device.DfuDevice.open` arguments, shows progress and prints
results; the work is done by the public API. :func:`main` returns an exit code
(see :class:`~dfuse.cli.exitcodes.ExitCode`) instead of exiting, so it can be
called from tests and other programs::

    >>> from dfuse.cli import main
    >>> main(["udev-rules"])  # doctest: +SKIP
    0
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING, TextIO

from dfuse.cli.exitcodes import ExitCode, UsageError, classify
from dfuse.cli.parser import build_parser

if TYPE_CHECKING:
    import logging

    from dfuse.cli.output import Ui

__all__ = ["ExitCode", "main"]

Handler = Callable[[argparse.Namespace, "Ui"], int]


def main(
    argv: Sequence[str] | None = None,
    *,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """Run the ``dfuse`` command with ``argv`` (default: ``sys.argv[1:]``); return the exit code.

    ``stdout``/``stderr`` default to the process's streams at call time.
    """
    out = stdout if stdout is not None else sys.stdout
    err = stderr if stderr is not None else sys.stderr
    parser = build_parser()
    try:
        args = _parse(parser, argv, out, err)
    except SystemExit as exc:  # --help, --version, or a usage error argparse reported
        return exc.code if isinstance(exc.code, int) else ExitCode.USAGE
    from dfuse.cli.output import Ui  # after parsing: --help and --version do without rich

    ui = Ui(stdout=out, stderr=err, json_mode=args.json, quiet=args.quiet)
    log_handler = _configure_logging(args.verbose, err)
    try:
        handler = _resolve(args.handler)
        with _tracing(args):
            return int(handler(args, ui))
    except BrokenPipeError:  # `dfuse list | head -1`: the reader left, nothing to report
        _silence_stdout(out)
        return ExitCode.OK
    except (Exception, KeyboardInterrupt) as exc:
        if args.debug:
            import traceback

            err.write("".join(traceback.format_exception(exc)))
        failure = classify(exc)
        ui.error(failure)
        return int(failure.code)
    finally:
        if log_handler is not None:
            import logging

            logger = logging.getLogger("dfuse")
            logger.removeHandler(log_handler)
            logger.setLevel(logging.NOTSET)


def _parse(
    parser: argparse.ArgumentParser,
    argv: Sequence[str] | None,
    out: TextIO,
    err: TextIO,
) -> argparse.Namespace:
    """Parse with argparse's own messages going to ``out``/``err``."""
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = out, err
    try:
        return parser.parse_args(None if argv is None else list(argv))
    finally:
        sys.stdout, sys.stderr = saved


def _tracing(args: argparse.Namespace) -> AbstractContextManager[object]:
    """``--trace FILE``: record the command's USB session (:func:`dfuse.tracing`)."""
    path: str | None = getattr(args, "trace", None)
    if path is None:
        if getattr(args, "trace_redact", False):
            raise UsageError("--trace-redact needs --trace FILE")
        return nullcontext()
    if args.command == "flash" and getattr(args, "all", False):
        raise UsageError("--trace records one board: use it without --all")
    if args.command == "station" and getattr(args, "count", None) != 1:
        raise UsageError("--trace records one board: with station, add --count 1")
    from dfuse.trace.recorder import tracing

    return tracing(path, redact=bool(args.trace_redact))


def _silence_stdout(out: TextIO) -> None:
    """After a broken pipe, point stdout at /dev/null so the interpreter's final flush is quiet."""
    if out is sys.stdout:
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError):
            pass


def _configure_logging(verbose: int, stream: TextIO) -> logging.Handler | None:
    """``-v``: the request-level log of the ``dfuse`` logger at DEBUG, on stderr."""
    if not verbose:
        return None
    import logging

    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(relativeCreated)8.1f ms %(name)s: %(message)s"))
    logger = logging.getLogger("dfuse")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    return handler


def _resolve(spec: str) -> Handler:
    """Import a ``"module:function"`` handler."""
    module_name, _, func_name = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise UsageError(
            f"this command is not available in this build of dfuse ({exc.name} is missing)"
        ) from exc
    handler: Handler = getattr(module, func_name)
    return handler
