"""Device discovery: every DFU-capable USB device, filtered like dfu-util's ``-d``/``-S``/``-p``.

>>> import dfuse
>>> # dfuse.find_devices(vid=0x0483, pid=0xDF11)                  # an ST bootloader
>>> # dfuse.find_devices(ids=[(0x0483, 0xDF11), (0x1209, None)])   # several VID:PIDs
>>> # dfuse.find_devices(path="1-2.3", backend=dfuse.sim.SimBackend(...))
"""

from __future__ import annotations

from collections.abc import Iterable

from dfuse.clock import Clock, RealClock
from dfuse.errors import DeviceNotFoundError
from dfuse.transport.base import DeviceInfo, DeviceMode
from dfuse.transport.pyusb import PyUsbTransport, enumerate_devices, get_backend

__all__ = ["find_devices", "open_one", "select_device"]


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
    if clock is None:
        own = getattr(be, "clock", None)
        clock = own if isinstance(own, Clock) else RealClock()
    return PyUsbTransport.open(info, be), clock
