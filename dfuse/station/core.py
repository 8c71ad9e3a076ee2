"""The station: flash every board that arrives, each in its own worker, and record it.

>>> from dfuse.file import DfuSeFile
>>> from dfuse.station import RecordStore, Station
>>> image = DfuSeFile.from_bin(bytes(range(256)) * 16, address=0x08000000)
>>> store = RecordStore.open(":memory:")
>>> station = Station(image, "sim:stm32f411?boards=3&arrive=0.5", store=store)
>>> summary = station.run(count=3)
>>> summary.passed, summary.failed
(3, 0)

A board *appears* when a serial number not seen before is on the bus in DFU mode, or
one seen before comes back after it was removed; it is flashed once per insertion.
A board that fails never stops the others. Stamps are merged into the image before
planning (:func:`~dfuse.station.stamps.apply_stamps`); every board gets a
:class:`~dfuse.station.store.FlashRecord` in the store.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from dfuse.clock import Clock
from dfuse.device import DfuDevice, Image, Phase
from dfuse.errors import CancelledError, DfuseError, RecordStoreError, SafetyError, UsageError
from dfuse.protocol.plan import EraseSector, MassErase
from dfuse.selector import Bench, DeviceSelector, bench
from dfuse.station.stamps import (
    BoardFacts,
    StampError,
    StampSpec,
    apply_stamps,
    check_stamps,
    check_writable,
    image_sha256,
    to_dfuse_file,
)
from dfuse.station.store import FlashRecord, RecordStore, utc_now
from dfuse.station.uid import part_name, uid_readable
from dfuse.trace.recorder import traced
from dfuse.transport.base import DeviceInfo, DeviceMode
from dfuse.transport.discovery import DEFAULT_POLL_INTERVAL_S, BusWatcher, clock_for
from dfuse.transport.pyusb import PyUsbTransport

__all__ = [
    "BoardEvent",
    "EventKind",
    "Recording",
    "Station",
    "StationSummary",
    "flash_board",
    "recording",
]

_log = logging.getLogger(__name__)

EventKind = Literal["arrived", "phase", "progress", "done", "failed", "removed"]


@dataclass(frozen=True, slots=True)
class BoardEvent:
    """Something that happened to one board at the station.

    Attributes:
        kind: ``arrived`` (a worker starts), ``phase`` (a new phase begins), ``progress``
            (within a phase; not printed by ``--json``), ``done``, ``failed``, ``removed``.
        serial: the board's serial number (``None`` if it has none).
        path: its bus path.
        phase: ``open``, ``erase``, ``write``, ``verify``, ``leave`` (or the last one).
        percent: how far the phase is (0-100).
        elapsed: clock seconds since the board arrived.
        record: the board's record (``done``/``failed`` only).
    """

    kind: EventKind
    serial: str | None
    path: str
    phase: str = ""
    percent: float = 0.0
    elapsed: float = 0.0
    record: FlashRecord | None = None

    @property
    def name(self) -> str:
        """The serial number, else the bus path."""
        return self.serial or self.path

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable event (``dfuse station --json`` prints one per line)."""
        out: dict[str, Any] = {
            "event": self.kind,
            "serial": self.serial,
            "path": self.path,
            "phase": self.phase,
            "percent": round(self.percent, 1),
            "elapsed": round(self.elapsed, 6),
        }
        if self.record is not None:
            out["record"] = self.record.to_dict()
        return out


@dataclass(slots=True)
class StationSummary:
    """What a :meth:`Station.run` did.

    Attributes:
        records: one per board flashed (or failed), in the order they finished.
        duration: clock seconds the station ran.
        record_seconds: wall seconds spent writing records and allocating counters.
        cancelled: whether the run was stopped by its cancel token.
    """

    records: list[FlashRecord] = field(default_factory=list)
    duration: float = 0.0
    record_seconds: float = 0.0
    cancelled: bool = False

    @property
    def passed(self) -> int:
        """Boards flashed."""
        return sum(1 for r in self.records if r.ok)

    @property
    def failed(self) -> int:
        """Boards that failed."""
        return sum(1 for r in self.records if not r.ok)

    def reasons(self) -> Counter[str]:
        """How many boards failed for each reason (``"VerifyError: ..."``)."""
        return Counter(f"{r.error_type}: {r.error}" for r in self.records if not r.ok)

    def summary(self) -> str:
        """``N passed, M failed in T s`` and one line per failure reason."""
        lines = [
            f"{self.passed} passed, {self.failed} failed in {self.duration:.2f} s"
            + (" (stopped)" if self.cancelled else "")
        ]
        for reason, n in self.reasons().most_common():
            lines.append(f"  {n} x {reason}")
        return "\n".join(lines)


class _Tracker:
    """One board's progress: phase durations on the clock, events on phase changes."""

    def __init__(self, station: Station, info: DeviceInfo, started: float) -> None:
        self.station = station
        self.info = info
        self.started = started
        self.phase = "open"
        self.since = started
        self.durations: dict[str, float] = {}

    def enter(self, phase: str, percent: float = 0.0) -> None:
        now = self.station.clock.now
        if phase != self.phase:
            self.durations[self.phase] = self.durations.get(self.phase, 0.0) + now - self.since
            self.phase, self.since = phase, now
            self.station._emit("phase", self.info, phase, percent, now - self.started)
        else:
            self.station._emit("progress", self.info, phase, percent, now - self.started)

    def close(self) -> None:
        now = self.station.clock.now
        self.durations[self.phase] = self.durations.get(self.phase, 0.0) + now - self.since
        self.since = now

    def __call__(self, phase: Phase, done: int, total: int) -> None:
        self.enter(phase.value, 100.0 * done / total if total > 0 else 100.0)


class _Either(threading.Event):
    """Set when set itself or when ``other`` is set (what a download's cancel token is
    asked through :meth:`is_set`): the station's own stop, joined to the caller's cancel."""

    def __init__(self, other: threading.Event | None) -> None:
        super().__init__()
        self.other = other

    def is_set(self) -> bool:
        return super().is_set() or (self.other is not None and self.other.is_set())

    def wait(self, timeout: float | None = None) -> bool:
        if self.other is None:
            return super().wait(timeout)
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.is_set():
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return False
            self.other.wait(0.01 if left is None else min(0.01, left))
        return True


class _Fatal(Exception):
    """A station-wide error in a worker (configuration, record store): stop the station."""


class Station:
    """Flash every matching board that arrives in DFU mode, in parallel, and record each.

    Args:
        image: what to flash (a :class:`~dfuse.file.DfuSeFile`, ... as for
            :meth:`DfuDevice.download`).
        selector: which boards: a selector string (``"usb:0483:df11"``,
            ``"sim:stm32f411?boards=8&arrive=0.5"``), a :class:`DeviceSelector`, or a
            :class:`~dfuse.selector.Bench` (a backend with simulated boards to inspect).
        store: where records go and counters come from (``None``: nothing recorded,
            and ``counter`` stamps are refused).
        stamps: per-board stamps (:func:`~dfuse.station.stamps.parse_stamp`).
        station_id: the ``station`` of the records (default: the host name).
        image_name: the image's name in the records.
        verify: read back and compare after writing.
        leave: start the application after flashing.
        address: where raw image bytes go.
        on_event: ``on_event(BoardEvent)`` for every board event; calls are serialised.
        interval: how often the bus is enumerated when it offers no hotplug events.
        clock: the clock waits and durations use (default: the bench's, else real time).

    Raises:
        StampError: overlapping stamps, or ``counter`` stamps without a store.
    """

    def __init__(
        self,
        image: Image,
        selector: str | DeviceSelector | Bench = "usb:",
        *,
        store: RecordStore | None = None,
        stamps: Sequence[StampSpec] = (),
        station_id: str | None = None,
        image_name: str = "",
        verify: bool = True,
        leave: bool = False,
        address: int | None = None,
        on_event: Callable[[BoardEvent], None] | None = None,
        interval: float = DEFAULT_POLL_INTERVAL_S,
        clock: Clock | None = None,
    ) -> None:
        chosen = selector if isinstance(selector, Bench) else bench(selector)
        # the station waits in its own loop: each look at the bus returns at once
        self.bench = dataclasses.replace(chosen, wait=None)
        self.stamps = tuple(stamps)
        self.image: Image = to_dfuse_file(image, address=address) if self.stamps else image
        self.address = address if not self.stamps else None
        if self.stamps:
            check_stamps(to_dfuse_file(self.image), self.stamps)
        if store is None and any(s.kind == "counter" for s in self.stamps):
            raise StampError(
                "counter stamps need a record store to allocate numbers from",
                value="counter",
                expected="a store (--log)",
            )
        self.store = store
        self.sha256 = image_sha256(image)
        self.station_id = station_id or socket.gethostname()
        self.image_name = image_name
        self.verify = verify
        self.leave = leave
        self.on_event = on_event
        self.interval = interval
        self.clock: Clock = clock_for(
            self.bench.backend, clock if clock is not None else self.bench.clock
        )
        self._lock = threading.Lock()
        self._events = threading.Lock()
        self._summary = StationSummary()
        self._fatal: BaseException | None = None
        # serial (else path) -> (the board as its insertion enumerated, its worker); kept
        # across runs, so a board still plugged in is not flashed again by the next run
        self._present: dict[str, tuple[DeviceInfo, threading.Thread]] = {}
        self._stop: threading.Event = threading.Event()

    # ------------------------------------------------------------------ events

    def _emit(
        self,
        kind: EventKind,
        info: DeviceInfo,
        phase: str = "",
        percent: float = 0.0,
        elapsed: float = 0.0,
        record: FlashRecord | None = None,
    ) -> None:
        if self.on_event is None:
            return
        event = BoardEvent(kind, info.serial, info.path, phase, percent, elapsed, record)
        with self._events:
            try:
                self.on_event(event)
            except Exception as exc:  # a display problem must not fail a board
                _log.warning("the station's event callback failed: %r", exc)

    # ------------------------------------------------------------------ running

    def run(
        self,
        *,
        count: int | None = None,
        timeout: float | None = None,
        cancel: threading.Event | None = None,
    ) -> StationSummary:
        """Flash boards as they arrive until ``count`` boards are done (passed or
        failed), ``timeout`` clock seconds have passed, or ``cancel`` is set; then wait
        for the boards in progress (a set ``cancel`` stops them at their next safe
        point) and return the summary. A board flashed by an earlier run of this station
        and still plugged in is not flashed again.

        Raises:
            StampError, SafetyError: a stamp cannot be made for, or does not fit, the
                boards (found on the first board, before anything is written to it).
            RecordStoreError: a record or a counter could not be written.
        """
        if count is not None and count < 1:
            raise UsageError(
                f"count must be at least 1 (or None: run until cancelled), got {count!r}",
                value=count,
                expected="at least 1",
            )
        # the workers stop on this: the caller's cancel, or a station-wide error (the
        # caller's event itself is never set by the station)
        stop = _Either(cancel)
        self._stop = stop
        self._fatal = None

        summary = self._summary = StationSummary()
        start = self.clock.now
        deadline = None if timeout is None else start + timeout
        present = self._present
        workers: list[threading.Thread] = []
        started = 0
        with BusWatcher(self.bench.backend, self.clock, interval=self.interval) as watcher:
            while not stop.is_set() and self._fatal is None:
                if count is not None and started >= count:
                    break
                try:
                    found = self.bench.find(mode=DeviceMode.DFU)
                except DfuseError as exc:
                    _log.warning("enumeration failed: %s", exc)
                    found = []
                # A board is the same insertion while its bus address is the same, even
                # if it was too busy to send its strings this time (serial unread).
                by_address = {(i.bus, i.address): key for key, (i, _t) in present.items()}
                here: dict[str, DeviceInfo] = {}
                for info in found:
                    known = by_address.get((info.bus, info.address))
                    if known is not None:
                        here.setdefault(known, info)
                    elif not _unreadable(info):
                        here[_key(info)] = info
                for key in list(present):
                    if key not in here and not present[key][1].is_alive():
                        gone, _thread = present.pop(key)
                        self._emit("removed", gone, "removed")
                for key, info in here.items():
                    if count is not None and started >= count:
                        break
                    seen = present.get(key)
                    if seen is not None:
                        # the same insertion (same bus address), or a new one whose
                        # predecessor's worker has not finished yet
                        before = seen[0]
                        if (before.bus, before.address) == (info.bus, info.address):
                            continue
                        if seen[1].is_alive():
                            continue
                    thread = threading.Thread(
                        target=self._worker, args=(info,), name=f"dfuse-station-{key}", daemon=True
                    )
                    present[key] = (info, thread)
                    workers.append(thread)
                    started += 1
                    self._emit("arrived", info, "open")
                    thread.start()
                if count is not None and started >= count:
                    break
                remaining = None if deadline is None else deadline - self.clock.now
                if remaining is not None and remaining <= 0:
                    break
                busy = any(thread.is_alive() for thread in workers)
                watcher.wait(remaining, cancel=stop, advance=not busy)
            for thread in workers:
                while thread.is_alive():
                    thread.join(0.05)
        summary.duration = self.clock.now - start
        summary.cancelled = cancel is not None and cancel.is_set()
        if self._fatal is not None:
            raise self._fatal
        return summary

    # ------------------------------------------------------------------ one board

    def _worker(self, info: DeviceInfo) -> None:
        try:
            record, reserved, _error = self._flash(info)
        except _Fatal as exc:
            cause = exc.__cause__ if exc.__cause__ is not None else exc
            with self._lock:
                if self._fatal is None:
                    self._fatal = cause
            self._stop.set()
            return
        t0 = time.perf_counter()
        try:
            if self.store is not None:
                record_id = self.store.add(record, release=reserved if not record.ok else ())
                record = _with_id(record, record_id)
        except RecordStoreError as exc:
            done = "was flashed" if record.ok else "failed"
            error = RecordStoreError(
                f"board {info.serial or info.path} {done} but its record could not be "
                f"written: {exc}",
                url=exc.url,
            )
            with self._lock:
                if self._fatal is None:
                    self._fatal = error
            self._stop.set()
        finally:
            with self._lock:
                self._summary.record_seconds += time.perf_counter() - t0
                self._summary.records.append(record)
        self._emit(
            "done" if record.ok else "failed",
            info,
            "done" if record.ok else (record.error_type or "failed"),
            100.0 if record.ok else 0.0,
            record.duration,
            record,
        )

    def _preflight(self, info: DeviceInfo, part: str) -> tuple[int, int] | None:
        """Check the stamps against this board's memories (no USB traffic): where its
        unique ID is read from, if a ``uid`` stamp needs it."""
        if not self.stamps:
            return None
        first = info.alt_settings[0].layout if info.alt_settings else None
        check_writable(self.stamps, first)
        if any(s.kind == "uid" for s in self.stamps):
            layouts = [(a.number, a.layout) for a in info.alt_settings if a.layout is not None]
            return uid_readable(part, layouts)
        return None

    def _checked(self, info: DeviceInfo, part: str) -> tuple[int, int] | None:
        """:meth:`_preflight`, a failure of which stops the station (a configuration error)."""
        try:
            return self._preflight(info, part)
        except (StampError, SafetyError) as exc:
            raise _Fatal(str(exc)) from exc

    def _allocate(self, reserved: list[tuple[str, int]]) -> dict[str, int]:
        counters: dict[str, int] = {}
        assert self.store is not None or not any(s.kind == "counter" for s in self.stamps)
        for spec in self.stamps:
            if spec.kind == "counter" and self.store is not None:
                t0 = time.perf_counter()
                value = self.store.allocate(spec.key, start=spec.start)
                with self._lock:
                    self._summary.record_seconds += time.perf_counter() - t0
                reserved.append((spec.key, value))
                counters[spec.key] = value
        return counters

    def _flash(
        self, info: DeviceInfo, opened: DfuDevice | None = None
    ) -> tuple[FlashRecord, list[tuple[str, int]], BaseException | None]:
        """Flash one board (``opened``: a device the caller opened and keeps); return its
        record, the counter numbers reserved for it, and its error (``None`` if ok).
        Raises :class:`_Fatal` for a station-wide problem found before any write."""
        started = self.clock.now
        when = utc_now()
        tracker = _Tracker(self, info, started)
        part = part_name(info)
        reserved: list[tuple[str, int]] = []
        values: tuple[dict[str, object], ...] = ()
        erased = written = 0
        error: BaseException | None = None
        device: DfuDevice | None = None
        # the stamps are checked against the board's memories before anything is sent
        # to it; a board too busy to send its memory strings when it was enumerated is
        # checked once it is open (its strings read again)
        known = any(alt.layout is not None for alt in info.alt_settings)
        uid_at: tuple[int, int] | None = None
        if known:
            uid_at = self._checked(info, part)
        try:
            try:
                counters = self._allocate(reserved)
            except RecordStoreError as exc:
                raise _Fatal(str(exc)) from exc
            if opened is not None:
                device = opened
            else:
                # recorded under `dfuse station --count 1 --trace FILE`
                transport = traced(PyUsbTransport.open(info, self.bench.backend), self.clock)
                try:
                    device = DfuDevice(transport, self.clock, alt=self.bench.selector.alt)
                except BaseException:
                    transport.close()
                    raise
            if not known:
                uid_at = self._checked(device.info, part)
            uid = None
            if uid_at is not None:
                alt, address = uid_at
                previous = device.alt
                device.select_alt(alt)
                uid = device.upload(address, 12)
                if previous is not None:
                    device.select_alt(previous)
            image = self.image
            if self.stamps:
                stamped = apply_stamps(
                    image,
                    self.stamps,
                    BoardFacts(info.serial, uid, counters, int(time.time())),
                    sha256=self.sha256,
                )
                image = stamped.image
                values = tuple(v.to_dict() for v in stamped.values)
            tracker.enter("erase")
            if self._stop.is_set():
                raise CancelledError("stopped before the download", phase="open")
            plans = device.download(
                image,
                verify=self.verify,
                progress=tracker,
                leave=self.leave,
                address=self.address,
                cancel=self._stop,
            )
            for target in plans:
                erased += sum(
                    1 for s in target.plan.steps if isinstance(s, EraseSector | MassErase)
                )
                written += target.plan.write_bytes
        except _Fatal:
            self._release_quietly(reserved)
            raise
        except Exception as exc:  # one board failing never stops the others
            error = exc
            if isinstance(exc, CancelledError):
                erased = len(exc.erased)
                written = exc.written
            _log.info("board %s failed: %s", info.describe(), exc)
        finally:
            if device is not None and opened is None:
                device.close()
            tracker.close()
        record = FlashRecord(
            time=when,
            station=self.station_id,
            serial=info.serial,
            part=part,
            image_name=self.image_name,
            image_sha256=self.sha256,
            result="ok" if error is None else "failed",
            error=None if error is None else str(error),
            error_type=None if error is None else type(error).__name__,
            stamps=values,
            path=info.path,
            sectors_erased=erased,
            bytes_written=written,
            durations=dict(tracker.durations),
            duration=self.clock.now - started,
        )
        return record, reserved, error

    def _release_quietly(self, reserved: list[tuple[str, int]]) -> None:
        if self.store is None:
            return
        for key, value in reserved:
            try:
                self.store.release(key, [value])
            except RecordStoreError as exc:
                _log.warning("could not give counter %s number %d back: %s", key, value, exc)


def flash_board(
    device: DfuDevice,
    image: Image,
    *,
    stamps: Sequence[StampSpec] = (),
    record: RecordStore | None = None,
    station_id: str | None = None,
    image_name: str = "",
    verify: bool = True,
    leave: bool = False,
    address: int | None = None,
    cancel: threading.Event | None = None,
    on_event: Callable[[BoardEvent], None] | None = None,
) -> FlashRecord:
    """Flash one board the caller has opened, with per-board ``stamps``, as a station
    does; with ``record`` (a :class:`RecordStore`) the flash is recorded, ok or failed.

    The stamps are merged into the image before planning; ``counter`` stamps need
    ``record``. ``cancel`` stops the download at its next safe point. The device stays
    open (closed only if it left DFU mode).

    Returns the board's :class:`FlashRecord` (with its ``id`` when recorded).

    Raises:
        StampError, SafetyError: a stamp does not fit this board (before any write).
        RecordStoreError: the record could not be written.
        DfuseError: the flash failed (after its failed record was written).
    """
    station = Station(
        image,
        Bench(DeviceSelector(), None, (), device.clock),
        store=record,
        stamps=stamps,
        station_id=station_id,
        image_name=image_name,
        verify=verify,
        leave=leave,
        address=address,
        on_event=on_event,
        clock=device.clock,
    )
    station._stop = cancel if cancel is not None else threading.Event()
    try:
        result, reserved, error = station._flash(device.info, device)
    except _Fatal as exc:
        raise (exc.__cause__ or exc) from None
    if record is not None:
        result = _with_id(result, record.add(result, release=reserved if error else ()))
    if error is not None:
        raise error
    return result


class Recording:
    """What :func:`recording` records: set :attr:`plans` to the download's result."""

    def __init__(self) -> None:
        self.plans: Sequence[Any] = ()
        self.record: FlashRecord | None = None


@contextlib.contextmanager
def recording(
    store: RecordStore | None,
    device: DfuDevice,
    image: Image,
    *,
    image_name: str = "",
    station_id: str | None = None,
) -> Iterator[Recording]:
    """Record the flash done inside the ``with`` block (``dfuse flash --log``): ok when the
    block ends normally (set ``.plans`` to what :meth:`DfuDevice.download` returned, for
    the sectors and bytes), failed with the error when it raises (the error goes on).
    With ``store=None`` nothing is recorded.

    >>> # with recording(store, dev, image, image_name="fw.hex") as rec:
    >>> #     rec.plans = dev.download(image)
    """
    rec = Recording()
    if store is None:
        yield rec
        return
    info = device.info
    started, when = device.clock.now, utc_now()
    error: BaseException | None = None
    try:
        yield rec
    except BaseException as exc:
        error = exc
        raise
    finally:
        erased = sum(
            1
            for target in rec.plans
            for step in target.plan.steps
            if isinstance(step, EraseSector | MassErase)
        )
        written = sum(target.plan.write_bytes for target in rec.plans)
        if isinstance(error, CancelledError):
            erased, written = len(error.erased), error.written
        rec.record = FlashRecord(
            time=when,
            station=station_id or socket.gethostname(),
            serial=info.serial,
            part=part_name(info),
            image_name=image_name,
            image_sha256=image_sha256(image),
            result="ok" if error is None else "failed",
            error=None if error is None else str(error) or type(error).__name__,
            error_type=None if error is None else type(error).__name__,
            path=info.path,
            sectors_erased=erased,
            bytes_written=written,
            duration=device.clock.now - started,
        )
        rec.record = _with_id(rec.record, store.add(rec.record))


def _unreadable(info: DeviceInfo) -> bool:
    """Whether a DFU-mode device sent none of its strings (busy, e.g. flashing or booting):
    who it is is not known yet; the next look at the bus will tell."""
    return info.serial is None and all(alt.name is None for alt in info.alt_settings)


def _key(info: DeviceInfo) -> str:
    """A board's identity at the station: its serial number, else its bus path."""
    return info.serial or f"path:{info.bus}-{info.path}"


def _with_id(record: FlashRecord, record_id: int) -> FlashRecord:
    from dataclasses import replace

    return replace(record, id=record_id)
