"""Gang flashing: one image into several boards at once, one thread per board.

>>> import dfuse
>>> # report = dfuse.flash_many(["3276347F3034", "1-2.4"], dfuse.file.load("fw.hex"))
>>> # print(report.summary())
>>> # raise SystemExit(len(report.failed))

Each board is flashed by its own thread with its own :class:`~dfuse.device.DfuDevice`
(the same plan, erase, write and verify as :meth:`DfuDevice.download`). A board that
fails (not found, stalls, verify mismatch, unplugged, ...) gets a failed
:class:`FlashReport`; the others carry on. USB waits (bwPollTimeout, the transfers
themselves) release the GIL, so boards flash in parallel: the wall time of a gang is
about that of its slowest board.

Progress comes as ``progress(name, phase, percent)`` for each board (``name`` is the
serial number, else the bus path); calls are serialised, so the callback need not be
thread-safe itself.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Unpack

from dfuse.clock import Clock, RealClock
from dfuse.device import DfuDevice, Image
from dfuse.errors import CancelledError, DeviceNotFoundError, UsageError
from dfuse.planning.download import DownloadOptions, OptionFields, resolve_options
from dfuse.progress import GangProgressCallback, Phase
from dfuse.transport.base import DeviceInfo, DeviceMode
from dfuse.transport.discovery import find_devices
from dfuse.transport.pyusb import PyUsbTransport, get_backend

if TYPE_CHECKING:
    from dfuse.station.store import RecordStore

__all__ = [
    "DeviceTarget",
    "FlashReport",
    "GangPhase",
    "GangProgressCallback",
    "GangReport",
    "flash_many",
]

_log = logging.getLogger(__name__)


#: The phases of one board: the same enum as :class:`~dfuse.progress.Phase`.
GangPhase = Phase

#: A board to flash: an opened device (left open), a discovered device, or a serial
#: number / bus path (``"3276347F3034"``, ``"1-2.4"``) to look up among the DFU devices.
DeviceTarget = DfuDevice | DeviceInfo | str


@dataclass(frozen=True, slots=True)
class FlashReport:
    """How flashing one board went.

    Attributes:
        serial: the board's serial number (``None`` if it has none or was not found).
        path: its bus path (``""`` if it was not found).
        ok: True when the image was written (and verified, if asked).
        error: what went wrong, in words (``None`` when ok).
        error_type: the exception's class name (``"VerifyError"``; ``None`` when ok).
        duration: seconds on the gang's clock from opening to done or failure.
        bytes: bytes written to the board (blocks sent; skipped blocks excluded).
        selector: the serial number or bus path the board was asked for by (``None``
            when it was given as a device).
        exception: the exception itself (not compared, not serialised).
        retries: stalled GETSTATUS the host retried on this board (see
            :attr:`~dfuse.protocol.session.SessionRules.status_stall_retries`).
    """

    serial: str | None
    path: str
    ok: bool
    error: str | None = None
    error_type: str | None = None
    duration: float = 0.0
    bytes: int = 0
    selector: str | None = None
    exception: BaseException | None = field(default=None, compare=False, repr=False)
    retries: int = 0

    @property
    def name(self) -> str:
        """The board's name in reports: its serial number, else its bus path, else what
        it was asked for by."""
        return self.serial or self.path or self.selector or "?"

    def to_dict(self) -> dict[str, object]:
        """A JSON-serialisable record."""
        return {
            "serial": self.serial,
            "path": self.path,
            "ok": self.ok,
            "error": self.error,
            "error_type": self.error_type,
            "duration": round(self.duration, 6),
            "bytes": self.bytes,
            "selector": self.selector,
            "retries": self.retries,
        }


@dataclass(frozen=True, slots=True)
class GangReport:
    """The outcome of :func:`flash_many`: one :class:`FlashReport` per board, in the order
    the boards were given.

    Attributes:
        devices: the per-board reports.
        duration: seconds on the gang's clock for the whole gang.
    """

    devices: tuple[FlashReport, ...]
    duration: float

    def __iter__(self) -> Iterator[FlashReport]:
        return iter(self.devices)

    def __len__(self) -> int:
        return len(self.devices)

    @property
    def ok(self) -> bool:
        """True when every board was flashed."""
        return all(r.ok for r in self.devices)

    @property
    def succeeded(self) -> tuple[FlashReport, ...]:
        """The boards that were flashed."""
        return tuple(r for r in self.devices if r.ok)

    @property
    def failed(self) -> tuple[FlashReport, ...]:
        """The boards that failed (``len(report.failed)`` makes a good exit code)."""
        return tuple(r for r in self.devices if not r.ok)

    @property
    def bytes(self) -> int:
        """Bytes written over all boards."""
        return sum(r.bytes for r in self.devices)

    def summary(self) -> str:
        """A table: one line per board (name, path, result, time, bytes, error), then totals."""
        rows = [("device", "path", "result", "time", "bytes", "error")]
        for r in self.devices:
            rows.append(
                (
                    r.name,
                    r.path or "-",
                    "ok" if r.ok else "FAILED",
                    f"{r.duration:.2f} s",
                    str(r.bytes),
                    "" if r.ok else f"{r.error_type}: {r.error}",
                )
            )
        widths = [max(len(row[i]) for row in rows) for i in range(5)]
        lines = [
            "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:5])) + "  " + row[5]
            for row in rows
        ]
        lines.append(
            f"{len(self.succeeded)} of {len(self.devices)} board(s) flashed, "
            f"{len(self.failed)} failed, in {self.duration:.2f} s"
        )
        return "\n".join(line.rstrip() for line in lines)

    def to_dict(self) -> dict[str, object]:
        """A JSON-serialisable report."""
        return {
            "ok": self.ok,
            "duration": round(self.duration, 6),
            "succeeded": len(self.succeeded),
            "failed": len(self.failed),
            "devices": [r.to_dict() for r in self.devices],
        }


@dataclass(frozen=True, slots=True)
class _Job:
    """One board to flash: an open device, a device to open, or a lookup that failed."""

    device: DfuDevice | None
    info: DeviceInfo | None
    error: BaseException | None = None
    selector: str | None = None


def _resolve(targets: Sequence[DeviceTarget], backend: object) -> list[_Job]:
    """Turn the targets into jobs; serial numbers and paths are looked up (once)."""
    found: list[DeviceInfo] | None = None
    jobs: list[_Job] = []
    for target in targets:
        if isinstance(target, DfuDevice):
            jobs.append(_Job(target, target.info))
        elif isinstance(target, DeviceInfo):
            jobs.append(_Job(None, target))
        elif isinstance(target, str):
            if found is None:
                found = find_devices(backend=backend, mode=DeviceMode.DFU)
            matches = [i for i in found if target in (i.serial, i.path)]
            if len(matches) == 1:
                jobs.append(_Job(None, matches[0], selector=target))
            else:
                what = "no DFU device" if not matches else f"{len(matches)} DFU devices"
                error = DeviceNotFoundError(
                    f"{what} with serial number or bus path {target!r}",
                    candidates=tuple(i.describe() for i in (matches or found)),
                )
                jobs.append(_Job(None, None, error, selector=target))
        else:
            raise TypeError(
                "flash_many() takes DfuDevice, DeviceInfo or serial/path strings, "
                f"got {type(target).__name__}"
            )
    seen: dict[tuple[int, str], int] = {}
    for n, job in enumerate(jobs):
        if job.info is None:
            continue
        key = (job.info.bus, job.info.path)
        if key in seen:
            raise UsageError(
                f"board {job.info.describe()} is given twice (targets {seen[key]} and {n})",
                value=job.info.path,
                expected="each board once",
            )
        seen[key] = n
    return jobs


@dataclass(slots=True)
class _Reporter:
    """Per-board progress, turned into percentages and serialised through one lock."""

    callback: GangProgressCallback | None
    lock: threading.Lock
    name: str

    def emit(self, phase: GangPhase, percent: float) -> None:
        """Report progress; an exception from the callback aborts this board."""
        if self.callback is None:
            return
        with self.lock:
            self.callback(self.name, phase, percent)

    def final(self, phase: GangPhase, percent: float) -> None:
        """Report the outcome; an exception from the callback is logged, not raised (the
        board's report is already decided)."""
        try:
            self.emit(phase, percent)
        except Exception as exc:
            _log.warning("the progress callback failed for %s: %r", self.name, exc)

    def __call__(self, phase: Phase, done: int, total: int) -> None:
        percent = 100.0 * done / total if total > 0 else 100.0
        self.emit(GangPhase(phase.value), percent)


def flash_many(
    selectors_or_devices: Iterable[DeviceTarget],
    image: Image,
    *,
    backend: object = None,
    clock: Clock | None = None,
    progress: GangProgressCallback | None = None,
    max_workers: int | None = None,
    alt: int | str | None = None,
    record: RecordStore | None = None,
    station_id: str | None = None,
    image_name: str = "",
    options: DownloadOptions | None = None,
    **changes: Unpack[OptionFields],
) -> GangReport:
    """Flash ``image`` into several boards in parallel, one thread per board.

    Args:
        selectors_or_devices: the boards: opened :class:`~dfuse.device.DfuDevice`\\ s (left
            open afterwards), :class:`~dfuse.transport.base.DeviceInfo`\\ s from
            :func:`~dfuse.transport.discovery.find_devices`, or serial numbers / bus
            paths of DFU-mode devices (a string matching no device, or several, gives a
            failed report for it; the others are flashed).
        image: what :meth:`DfuDevice.download` takes.
        backend: the pyusb backend to find and open devices with (e.g. a
            :class:`dfuse.sim.SimBackend`; default: the system's libusb).
        clock: the clock the boards this function opens poll on, and durations are
            measured with (default: the backend's own clock if it has one; for opened
            devices only, their clock when they share one; else
            :class:`~dfuse.clock.RealClock`). Opened devices keep their own clock.
        options: the :class:`~dfuse.planning.DownloadOptions` of every board's
            download; its fields may also be given as keywords (``verify=``,
            ``address=``, ``erase=``, ``incremental=``, ``leave=``, ``force=``, ...), as
            for :meth:`DfuDevice.download`.
        cancel: (a field of ``options``, or a keyword) a :class:`threading.Event`; once
            set, every board stops at its next safe point and gets a failed report with
            a :class:`~dfuse.errors.CancelledError` (what was erased and written);
            boards not started yet are not opened.
        alt: the alternate setting to select on boards this function opens.
        progress: ``progress(name, phase, percent)`` per board (serialised). An
            exception it raises while a board is being flashed makes that board fail
            (a way to cancel one); raised for the final ``done``/``failed`` call, it is
            logged.
        max_workers: at most this many boards at a time (default: all of them).
        record: a :class:`~dfuse.station.RecordStore` (``dfuse flash --all --log``):
            every board that was opened gets a flash record, ok or failed (with the
            error, and for a cancelled board what was erased and written), as
            :func:`dfuse.station.recording` writes it. A record that cannot be written
            makes that board's report fail with the
            :class:`~dfuse.errors.RecordStoreError`. Default: nothing is recorded.
        station_id: the station name in the records (default: the host name).
        image_name: the image's name in the records (e.g. its file name).

    Returns:
        A :class:`GangReport`; a board that failed has ``ok=False`` and the error,
        and does not stop the others. Raises only for misuse (no boards, a board
        given twice, an argument of the wrong type).
    """
    opts = resolve_options(options, changes)
    targets = list(selectors_or_devices)
    if not targets:
        raise UsageError(
            "flash_many() needs at least one board, got none", value=targets, expected="a board"
        )
    if max_workers is not None and max_workers < 1:
        raise UsageError(
            f"max_workers must be at least 1, got {max_workers!r}",
            value=max_workers,
            expected="at least 1, or None (one thread per board)",
        )
    be = get_backend(backend) if any(not isinstance(t, DfuDevice) for t in targets) else None
    if clock is None:
        own = getattr(be if be is not None else backend, "clock", None)
        clocks = {id(t.clock): t.clock for t in targets if isinstance(t, DfuDevice)}
        if not isinstance(own, Clock) and be is None and len(clocks) == 1:
            own = next(iter(clocks.values()))  # opened devices sharing one clock
        clock = own if isinstance(own, Clock) else RealClock()
    gang_clock: Clock = clock
    jobs = _resolve(targets, be)
    lock = threading.Lock()
    if record is not None:
        from dfuse.station.core import recording

    def run(job: _Job) -> FlashReport:
        info = job.info
        serial = info.serial if info is not None else None
        path = info.path if info is not None else ""
        reporter = _Reporter(progress, lock, serial or path or job.selector or "?")
        start = gang_clock.now
        if job.error is not None:
            reporter.final(GangPhase.FAILED, 0.0)
            return _failure(serial, path, job.error, 0.0, job.selector)
        assert info is not None
        device = job.device
        written = 0
        try:
            if opts.cancel is not None and opts.cancel.is_set():
                raise CancelledError("cancelled before the board was opened")
            reporter.emit(GangPhase.OPEN, 0.0)
            if device is None:
                transport = PyUsbTransport.open(info, be)
                try:
                    device = DfuDevice(transport, gang_clock, alt=alt)
                except BaseException:
                    transport.close()
                    raise
            reporter.emit(GangPhase.OPEN, 100.0)
            if record is None:
                plans = device.download(image, opts, progress=reporter)
            else:
                with recording(
                    record, device, image, image_name=image_name, station_id=station_id
                ) as rec:
                    plans = rec.plans = device.download(image, opts, progress=reporter)
            written = sum(p.plan.write_bytes for p in plans)
        except Exception as exc:  # one board failing must not stop the others
            _log.info("flashing %s failed: %s", info.describe(), exc)
            reporter.final(GangPhase.FAILED, 0.0)
            retries = device.status_retries if device is not None else 0
            return _failure(serial, path, exc, gang_clock.now - start, job.selector, retries)
        finally:
            if device is not None and job.device is None:
                device.close()
        reporter.final(GangPhase.DONE, 100.0)
        duration = gang_clock.now - start
        return FlashReport(
            serial,
            path,
            True,
            duration=duration,
            bytes=written,
            selector=job.selector,
            retries=device.status_retries,
        )

    # One thread per board; at most max_workers of them flash at a time.
    slots = threading.BoundedSemaphore(max_workers or len(jobs))
    results: list[FlashReport | None] = [None] * len(jobs)

    def worker(n: int, job: _Job) -> None:
        with slots:
            started_at = gang_clock.now
            try:
                results[n] = run(job)
            except BaseException as exc:  # SystemExit & co. raised in this board's thread
                results[n] = _failure(
                    job.info.serial if job.info else None,
                    job.info.path if job.info else "",
                    exc,
                    gang_clock.now - started_at,
                    job.selector,
                )

    started = gang_clock.now
    threads = [
        threading.Thread(target=worker, args=(n, job), name=f"dfuse-gang-{n}", daemon=True)
        for n, job in enumerate(jobs)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    reports = tuple(r for r in results if r is not None)
    assert len(reports) == len(jobs)
    return GangReport(reports, gang_clock.now - started)


def _failure(
    serial: str | None,
    path: str,
    exc: BaseException,
    duration: float,
    selector: str | None,
    retries: int = 0,
) -> FlashReport:
    return FlashReport(
        serial,
        path,
        False,
        error=str(exc),
        error_type=type(exc).__name__,
        duration=duration,
        selector=selector,
        exception=exc,
        retries=retries,
    )
