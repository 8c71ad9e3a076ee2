"""Device discovery: every DFU-capable USB device, filtered like dfu-util's ``-d``/``-S``/``-p``.

>>> import dfuse
>>> # dfuse.find_devices(vid=0x0483, pid=0xDF11)                  # an ST bootloader
>>> # dfuse.find_devices(ids=[(0x0483, 0xDF11), (0x1209, None)])   # several VID:PIDs
>>> # dfuse.find_devices(path="1-2.3", backend=dfuse.sim.SimBackend(...))
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterable
from typing import Any

from dfuse.clock import Clock, RealClock, VirtualClock
from dfuse.errors import CancelledError, DeviceNotFoundError, UsageError
from dfuse.transport.base import DeviceInfo, DeviceMode
from dfuse.transport.pyusb import PyUsbTransport, enumerate_devices, get_backend

__all__ = [
    "DEFAULT_POLL_INTERVAL_S",
    "BusWatcher",
    "clock_for",
    "find_devices",
    "open_one",
    "select_device",
    "wait_for",
]

#: How often the bus is enumerated while waiting, when it offers no hotplug events.
DEFAULT_POLL_INTERVAL_S = 0.1
#: Real seconds a wait on a simulated clock pauses between two looks at the bus.
_SIM_THROTTLE_S = 0.002


def _check_id(name: str, value: int | None) -> None:
    if value is not None and not 0 <= value <= 0xFFFF:
        raise ValueError(f"{name} must be a 16-bit number, got {value}")


def find_devices(
    *,
    vid: int | None = None,
    pid: int | None = None,
    serial: str | None = None,
    path: str | None = None,
    backend: object = None,
    ids: Iterable[tuple[int | None, int | None]] = (),
    mode: DeviceMode | None = None,
) -> list[DeviceInfo]:
    """Every DFU-capable device (run-time and DFU mode) that matches, sorted by bus path.

    Args:
        vid, pid: match this idVendor / idProduct (either may be omitted).
        serial: match this serial-number string exactly.
        path: match this bus path (``"1-2.3"``, as dfu-util's ``-p``).
        backend: the pyusb backend (default: the system's libusb, else the one
            bundled with ``libusb-package``); e.g. a :class:`dfuse.sim.SimBackend`.
        ids: several ``(vid, pid)`` pairs, any of which may match (``None``: any).
            Combined with ``vid``/``pid`` when both are given.
        mode: only devices in this :class:`DeviceMode`.

    Raises:
        LibusbNotFoundError: no backend given and no libusb can be loaded.
    """
    _check_id("vid", vid)
    _check_id("pid", pid)
    pairs = list(ids)
    for v, p in pairs:
        _check_id("vid", v)
        _check_id("pid", p)
    if vid is not None or pid is not None:
        pairs.append((vid, pid))
    found = [
        info
        for info in enumerate_devices(backend, ids=tuple(pairs))
        if (serial is None or info.serial == serial)
        and (path is None or info.path == path)
        and (mode is None or info.mode is mode)
    ]
    found.sort(key=lambda i: (i.bus, i.port_numbers, i.address))
    return found


def select_device(candidates: list[DeviceInfo], criteria: str) -> DeviceInfo:
    """The one device of ``candidates``; :class:`DeviceNotFoundError` if there are none
    or several (listing them), ``criteria`` saying what was asked for."""
    if not candidates:
        raise DeviceNotFoundError(f"no DFU device found matching {criteria}")
    if len(candidates) > 1:
        raise DeviceNotFoundError(
            f"{len(candidates)} DFU devices match {criteria}; choose one by serial or path",
            candidates=tuple(c.describe() for c in candidates),
        )
    return candidates[0]


class BusWatcher:
    """Waits for the bus to change: hotplug events where the backend offers them
    (a :class:`dfuse.sim.SimBackend`: ``add_hotplug_callback``), else a poll interval.

    pyusb has no hotplug API, so on real hardware the watcher polls: each
    :meth:`wait` returns after ``interval`` seconds and the caller enumerates again.
    On a simulated bus a device arriving or leaving ends the wait at once, and a
    scheduled arrival (``backend.next_arrival``) ends it when the clock reaches it.

    Args:
        backend: the pyusb backend that is enumerated (``None``: the system's libusb).
        clock: the clock waits are measured on (default: the backend's own, else real time).
        interval: the longest wait between two looks at the bus, in clock seconds.
    """

    def __init__(
        self,
        backend: object = None,
        clock: Clock | None = None,
        *,
        interval: float = DEFAULT_POLL_INTERVAL_S,
    ) -> None:
        if not interval > 0:
            raise UsageError(
                f"interval must be a positive number of seconds, got {interval!r}",
                value=interval,
                expected="a number of seconds > 0",
            )
        self.clock: Clock = clock_for(backend, clock)
        self.backend = backend
        self.interval = interval
        self._changed = threading.Event()
        self._subscribe: Any = getattr(backend, "add_hotplug_callback", None)
        self._unsubscribe: Any = getattr(backend, "remove_hotplug_callback", None)
        if self._subscribe is not None:
            self._subscribe(self._on_hotplug)

    @property
    def hotplug(self) -> bool:
        """Whether the backend reports arrivals (else the bus is polled)."""
        return self._subscribe is not None

    def _on_hotplug(self, _device: object, _event: str) -> None:
        self._changed.set()

    def wait(
        self,
        timeout: float | None = None,
        *,
        cancel: threading.Event | None = None,
        advance: bool = True,
    ) -> None:
        """Wait until the bus may have changed, at most ``min(timeout, interval)`` clock
        seconds; a set ``cancel`` ends the wait early.

        On a :class:`~dfuse.clock.VirtualClock` the wait moves the clock forward;
        ``advance=False`` only pauses briefly in real time instead, for a caller whose
        other threads move the clock (a station while boards are being flashed: time
        pushed forward by the waiter would eat into their devices' timeouts)."""
        step = self.interval if timeout is None else max(0.0, min(timeout, self.interval))
        arrival = getattr(self.backend, "next_arrival", None)
        if isinstance(arrival, float | int):
            step = min(step, max(0.0, float(arrival) - self.clock.now))
        if self._changed.is_set():
            self._changed.clear()
            return
        if isinstance(self.clock, RealClock):
            waker = self._changed if self.hotplug or cancel is None else cancel
            waker.wait(step)
        else:
            # simulated time: do not spin the CPU while nothing can happen in real time
            if isinstance(self.clock, VirtualClock):
                (cancel or self._changed).wait(_SIM_THROTTLE_S)
                if not advance:
                    self._changed.clear()
                    return
            if not self._changed.is_set():
                self.clock.sleep(step)
        self._changed.clear()

    def close(self) -> None:
        """Stop listening for hotplug events."""
        if self._unsubscribe is not None:
            self._unsubscribe(self._on_hotplug)
            self._unsubscribe = None

    def __enter__(self) -> BusWatcher:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def wait_for(
    find: Callable[[], list[DeviceInfo]],
    *,
    backend: object = None,
    clock: Clock | None = None,
    timeout: float | None = None,
    cancel: threading.Event | None = None,
    interval: float = DEFAULT_POLL_INTERVAL_S,
    what: str = "a DFU device",
) -> list[DeviceInfo]:
    """Call ``find()`` until it returns devices (and return them), waiting between calls
    with a :class:`BusWatcher`.

    ``timeout`` is in clock seconds (``None`` or ``inf``: wait forever). Raises
    :class:`~dfuse.errors.DeviceNotFoundError` when it passes, and
    :class:`~dfuse.errors.CancelledError` (phase ``"wait"``) when ``cancel`` is set.
    """
    if timeout is not None and (
        isinstance(timeout, bool)
        or not isinstance(timeout, int | float)
        or math.isnan(timeout)
        or timeout < 0
    ):
        raise UsageError(
            f"timeout must be a number of seconds >= 0 (or None: wait forever), got {timeout!r}",
            value=timeout,
            expected="a number of seconds >= 0, or None",
        )
    with BusWatcher(backend, clock, interval=interval) as watcher:
        deadline = None if timeout is None or math.isinf(timeout) else watcher.clock.now + timeout
        while True:
            found = find()
            if found:
                return found
            if cancel is not None and cancel.is_set():
                raise CancelledError("stopped waiting for " + what, phase="wait")
            remaining = None if deadline is None else deadline - watcher.clock.now
            if remaining is not None and remaining <= 0:
                raise DeviceNotFoundError(
                    f"no {what.removeprefix('a ')} appeared within {timeout:g} s"
                )
            watcher.wait(remaining, cancel=cancel)


def clock_for(backend: object, clock: Clock | None = None) -> Clock:
    """``clock``, else the backend's own ``clock`` (a simulated bus keeps virtual time),
    else :class:`~dfuse.clock.RealClock`."""
    if clock is not None:
        return clock
    own = getattr(backend, "clock", None)
    return own if isinstance(own, Clock) else RealClock()


def open_one(
    *,
    vid: int | None = None,
    pid: int | None = None,
    serial: str | None = None,
    path: str | None = None,
    backend: object = None,
    clock: Clock | None = None,
    ids: Iterable[tuple[int | None, int | None]] = (),
) -> tuple[PyUsbTransport, Clock]:
    """Find exactly one DFU device matching the selectors and open it: its transport,
    and ``clock`` (default: the backend's own ``clock`` when it has one, else
    :class:`~dfuse.clock.RealClock`). :class:`DeviceNotFoundError` when none or several
    match (listing them)."""
    be = get_backend(backend)
    found = find_devices(vid=vid, pid=pid, serial=serial, path=path, backend=be, ids=ids)
    given = (
        ("vid", None if vid is None else f"{vid:04x}"),
        ("pid", None if pid is None else f"{pid:04x}"),
        ("serial", serial),
        ("path", path),
    )
    criteria = ", ".join(f"{k}={v}" for k, v in given if v is not None)
    info = select_device(found, criteria or "(any)")
    return PyUsbTransport.open(info, be), clock_for(be, clock)
