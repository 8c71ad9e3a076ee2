"""What the command line prints: results, progress, errors.

* Results go to stdout: readable text (rich tables on a terminal, plain text when
  piped), or one JSON document with ``--json``.
* Progress goes to stderr: rich progress bars when stderr is a terminal, one plain
  line per phase step when it is not (logs, CI), nothing with ``--json`` or ``--quiet``.
* Errors go to stderr as ``dfuse: error: …`` plus a ``hint:`` line; with ``--json``
  an error object is printed on stdout too.

rich is imported only for a terminal (colours, bars): piped output is written directly,
with the few style tags the commands use removed, so scripts start faster.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Protocol, TextIO

from dfuse.cli.exitcodes import Failure

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress, TaskID

__all__ = ["NullProgress", "PlainProgress", "ProgressSink", "RichProgress", "Ui"]

#: How many plain progress lines a phase prints at most (0 %, 25 %, ..., 100 %).
_PLAIN_STEPS = 4


class ProgressSink(Protocol):
    """Receives progress as (phase, bytes done, bytes total), or per board of a gang."""

    def update(self, phase: str, done: int, total: int) -> None:
        """Report that ``done`` of ``total`` bytes of ``phase`` are finished."""
        ...

    def board(self, name: str, phase: str, percent: float) -> None:
        """Report that board ``name`` is ``percent`` % through ``phase`` (gang flashing)."""
        ...


class NullProgress:
    """Shows nothing (``--json``, ``--quiet``)."""

    def update(self, phase: str, done: int, total: int) -> None:
        """Ignore the update."""

    def board(self, name: str, phase: str, percent: float) -> None:
        """Ignore the update."""


class PlainProgress:
    """One line per quarter of each phase, for logs and pipes.

    >>> import io
    >>> buf = io.StringIO()
    >>> p = PlainProgress(buf)
    >>> for done in range(0, 4097, 1024):
    ...     p.update("write", done, 4096)
    >>> print(buf.getvalue().splitlines()[-1])
    write    100%  4096/4096 bytes
    """

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._phase = ""
        self._step = -1
        self._boards: dict[str, str] = {}

    def board(self, name: str, phase: str, percent: float) -> None:
        """One line per board each time its phase changes, and when it is done or failed."""
        if self._boards.get(name) != phase:
            self._boards[name] = phase
            self._write(f"{name:<16} {phase}\n")

    def update(self, phase: str, done: int, total: int) -> None:
        """Print a line when the phase changes or crosses the next quarter."""
        if phase != self._phase:
            self._phase = phase
            self._step = -1
        if total <= 1:  # a phase without a byte count (leave, mass erase): report the end
            if done >= total and self._step < _PLAIN_STEPS:
                self._step = _PLAIN_STEPS
                self._write(f"{phase:<8} done\n")
            return
        step = min(_PLAIN_STEPS, done * _PLAIN_STEPS // total)
        if self._step < 0:  # the phase's first report always prints
            step = max(step, 0)
        if step > self._step:
            self._step = step
            self._write(f"{phase:<8} {done * 100 // total:3d}%  {done}/{total} bytes\n")

    def _write(self, line: str) -> None:
        self._stream.write(line)
        self._stream.flush()


class RichProgress:
    """A rich progress bar per phase, on a terminal."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._tasks: dict[str, TaskID] = {}

    def board(self, name: str, phase: str, percent: float) -> None:
        """One bar per board; its label shows the board's phase."""
        key = f"board:{name}"
        task = self._tasks.get(key)
        label = f"{name} {phase}"
        if task is None:
            task = self._progress.add_task(label, total=100)
            self._tasks[key] = task
        self._progress.update(task, description=label, completed=percent, total=100)

    def update(self, phase: str, done: int, total: int) -> None:
        """Create the phase's bar on first sight, then move it."""
        task = self._tasks.get(phase)
        if task is None:
            task = self._progress.add_task(phase, total=max(total, 1))
            self._tasks[phase] = task
        self._progress.update(task, completed=done, total=max(total, 1))


#: The rich style tags the commands' messages use; without a terminal they are removed.
_STYLE_TAG = re.compile(r"\[/?(?:bold|green|red|yellow|cyan|dim|bold cyan)\]")


def _console(stream: TextIO, *, tty: bool, stdout: bool) -> Console:
    """A rich console on ``stream`` that lets a broken pipe propagate (``main`` ends
    quietly with 0) instead of rich's ``SystemExit(1)``."""
    from rich.console import Console

    class _Console(Console):
        def on_broken_pipe(self) -> None:
            self.quiet = True
            raise BrokenPipeError("the reader of the output went away")

    return _Console(
        file=stream,
        highlight=False,
        soft_wrap=not tty if stdout else True,
        width=None if tty else 120,
    )


class Ui:
    """The command's view of the terminal (one per ``main()`` call; no global state)."""

    def __init__(
        self,
        *,
        stdout: TextIO,
        stderr: TextIO,
        json_mode: bool = False,
        quiet: bool = False,
        progress: bool | None = None,
    ) -> None:
        self.json_mode = json_mode
        self.quiet = quiet
        self._stdout = stdout
        self._stderr = stderr
        self._out_tty = _isatty(stdout)
        self._err_tty = _isatty(stderr)
        self._out: Console | None = None
        self._err: Console | None = None
        # bars only when both streams are a terminal: `dfuse demo | cat` gets plain lines
        self._bars = (self._err_tty and self._out_tty) if progress is None else progress

    @property
    def out(self) -> Console:
        """The rich console on stdout (made on first use)."""
        if self._out is None:
            self._out = _console(self._stdout, tty=self._out_tty, stdout=True)
        return self._out

    @property
    def err(self) -> Console:
        """The rich console on stderr (made on first use)."""
        if self._err is None:
            self._err = _console(self._stderr, tty=self._err_tty, stdout=False)
        return self._err

    def _line(self, stream: TextIO, text: str) -> None:
        stream.write(text + "\n")
        stream.flush()

    # ------------------------------------------------------------------ results

    def print(self, *objects: Any) -> None:
        """Print a human result to stdout, with rich markup on a terminal (nothing in
        ``--json`` mode)."""
        if self.json_mode:
            return
        if self._out_tty or not all(isinstance(o, str) for o in objects):
            self.out.print(*objects)  # a rich renderable (a table) is rendered, plain when piped
        else:
            self._line(self._stdout, _STYLE_TAG.sub("", " ".join(str(o) for o in objects)))

    def text(self, text: str) -> None:
        """Print plain text (no markup) to stdout (nothing in ``--json`` mode)."""
        if self.json_mode:
            return
        if self._out_tty:
            self.out.print(text, markup=False, highlight=False)
        else:
            self._line(self._stdout, text)

    def hint(self, text: str) -> None:
        """A plain line on stderr for people (nothing in ``--json`` mode)."""
        if not self.json_mode:
            self._err_line(text)

    def _err_line(self, text: str, *, markup: bool = False) -> None:
        if self._err_tty:
            self.err.print(text, markup=markup)
        else:
            self._line(self._stderr, _STYLE_TAG.sub("", text) if markup else text)

    def emit(self, data: Mapping[str, Any]) -> None:
        """Print the machine result as one JSON document (only in ``--json`` mode)."""
        if self.json_mode:
            import json

            self._stdout.write(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")
            self._stdout.flush()

    def note(self, text: str) -> None:
        """A line of narration on stderr (suppressed by ``--json`` and ``--quiet``)."""
        if not (self.json_mode or self.quiet):
            self._err_line(text, markup=True)

    def warn(self, text: str) -> None:
        """A warning on stderr (always shown)."""
        self._err_line(f"dfuse: warning: {text}")

    def error(self, failure: Failure) -> None:
        """Report a failure: two lines on stderr; an error object on stdout with ``--json``."""
        self._err_line(f"dfuse: error: {failure.message}")
        if failure.hint:
            self._err_line(f"hint: {failure.hint}")
        if self.json_mode:
            self.emit(
                {
                    "ok": False,
                    "error": {
                        "kind": failure.kind,
                        "message": failure.message,
                        "hint": failure.hint,
                        "exit_code": int(failure.code),
                    },
                }
            )

    # ------------------------------------------------------------------ progress

    @contextmanager
    def progress(self, *, boards: bool = False) -> Iterator[ProgressSink]:
        """A progress sink for the duration of an operation (``boards``: one bar per
        board of a gang, in percent, instead of one per phase, in bytes)."""
        if self.json_mode or self.quiet:
            yield NullProgress()
            return
        if not self._bars:
            yield PlainProgress(self._stderr)
            return
        from rich.progress import (  # only a terminal with bars needs them (start-up time)
            BarColumn,
            DownloadColumn,
            Progress,
            TaskProgressColumn,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        if boards:
            bars = Progress(
                TextColumn("{task.description:<24}"),
                BarColumn(),
                TaskProgressColumn(),
                console=self.err,
                transient=False,
            )
        else:
            bars = Progress(
                TextColumn("{task.description:<8}"),
                BarColumn(),
                DownloadColumn(binary_units=True),
                TransferSpeedColumn(),
                TimeRemainingColumn(),
                console=self.err,
                transient=False,
            )
        with bars:
            yield RichProgress(bars)


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def elapsed(start: float) -> str:
    """Seconds since ``start`` (from :func:`time.perf_counter`) as ``"1.23 s"``."""
    return f"{time.perf_counter() - start:.2f} s"
