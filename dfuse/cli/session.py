"""From a selector to an open device: the ``usb:`` and ``sim:`` schemes.

``usb:`` selectors go to the system's libusb (through pyusb); ``sim:`` selectors
build simulated boards on a :class:`dfuse.sim.SimBackend` inside this process.
A simulated board lives only as long as the command: its memory starts erased
every time (``dfuse demo`` runs the whole flow in one process).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

from dfuse.cli.parser import DEFAULT_DEVICE_ENV
from dfuse.cli.selector import DeviceSelector, parse_alt
from dfuse.clock import Clock, VirtualClock
from dfuse.device import DfuDevice
from dfuse.sim import SimBackend, Stm32F411, Stm32F411App
from dfuse.sim.usbmodel import UsbDeviceModel
from dfuse.transport.base import DeviceInfo
from dfuse.transport.discovery import find_devices

__all__ = ["Bench", "ScaledClock", "open_bench", "selector_text", "sim_bench", "sim_boards"]

#: Serial number of the first simulated board (the simulator's default).
_SIM_SERIAL = "3276347F3034"


class ScaledClock:
    """Real time, sped up: :meth:`sleep` waits ``seconds / speed`` of wall time and
    :attr:`now` runs ``speed`` times faster than :func:`time.monotonic`.

    Shared by a simulated board and the host, it makes the simulator's datasheet
    timings visible at a watchable pace (``dfuse demo``).
    """

    def __init__(self, speed: float = 1.0) -> None:
        if not speed > 0:
            raise ValueError(f"speed must be positive, got {speed}")
        self.speed = speed
        self._origin = time.monotonic()

    @property
    def now(self) -> float:
        """Scaled seconds since this clock was made."""
        return (time.monotonic() - self._origin) * self.speed

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of scaled time."""
        if seconds > 0:
            time.sleep(seconds / self.speed)

    def __repr__(self) -> str:
        return f"ScaledClock(speed={self.speed:g})"


def selector_text(args: argparse.Namespace) -> str:
    """The ``-d`` selector, else ``$DFUSE_DEVICE``, else ``usb:`` (any USB DFU device)."""
    text: str = args.device or os.environ.get(DEFAULT_DEVICE_ENV) or "usb:"
    return text


@dataclass
class Bench:
    """What a selector gives: the pyusb backend to search, and the simulated boards on it.

    Attributes:
        selector: the selector.
        backend: ``None`` for the system's libusb; a :class:`~dfuse.sim.SimBackend` for ``sim:``.
        boards: the simulated boards (empty for ``usb:``), for tests and the demo to inspect.
        clock: the clock the device waits on (``None``: the library's default).
    """

    selector: DeviceSelector
    backend: object | None = None
    boards: tuple[Stm32F411, ...] = ()
    clock: Clock | None = None

    def settle(self, until: Callable[[], bool], timeout: float = 2.0) -> bool:
        """Let simulated boards catch up with the clock (finish manifesting, re-enumerate)
        until ``until()`` is true or ``timeout`` seconds of clock time pass; returns
        ``until()``. Real boards need no help: returns ``until()`` at once."""
        if not isinstance(self.backend, SimBackend) or self.clock is None:
            return until()
        deadline = self.clock.now + timeout
        while not until():
            self.backend.poll()
            if self.clock.now >= deadline:
                return until()
            self.clock.sleep(0.01)
        return True

    def find(self) -> list[DeviceInfo]:
        """Every DFU device the selector matches."""
        sel = self.selector
        return find_devices(
            vid=sel.vid, pid=sel.pid, serial=sel.serial, path=sel.path, backend=self.backend
        )

    def open(self) -> DfuDevice:
        """Open the one device the selector matches (DeviceNotFoundError otherwise)."""
        sel = self.selector
        return DfuDevice.open(
            vid=sel.vid,
            pid=sel.pid,
            serial=sel.serial,
            path=sel.path,
            alt=sel.alt,
            backend=self.backend,
            clock=self.clock,
        )


def sim_boards(
    selector: DeviceSelector, clock: Clock | None = None, *, first_port: int = 1
) -> tuple[Stm32F411, ...]:
    """The simulated boards a ``sim:`` selector describes, on ports ``first_port``, ``+1``, ..."""
    boards = []
    for i in range(selector.count):
        if selector.serial is not None:
            serial = selector.serial if selector.count == 1 else f"{selector.serial}{i + 1:02d}"
        else:
            serial = _SIM_SERIAL if selector.count == 1 else f"{_SIM_SERIAL[:-2]}{i + 1:02d}"
        boards.append(
            Stm32F411(
                serial=serial,
                flash_size=selector.flash_size or 512 * 1024,
                clock=clock,
                address=first_port + i,
                port_numbers=(first_port + i,),
            )
        )
    return tuple(boards)


def open_bench(args: argparse.Namespace) -> Bench:
    """The backend for the command's device options (simulated boards are created here).

    For ``sim:``, the selector's ``serial`` names the board it creates; ``-S`` and
    ``-p`` filter which of the boards to open, as for real devices.
    """
    base = DeviceSelector.parse(selector_text(args))
    alt = parse_alt(args.alt) if args.alt is not None else None
    selector = base.with_overrides(alt=alt, serial=args.serial, path=args.path)
    if base.scheme == "usb":
        return Bench(selector)
    return sim_bench(base, selector)


def sim_bench(base: DeviceSelector, selector: DeviceSelector | None = None) -> Bench:
    """Simulated boards as ``base`` describes them, searched with ``selector`` (default: base)."""
    clock: Clock = VirtualClock() if base.speed is None else ScaledClock(base.speed)
    boards = sim_boards(base, clock)
    models: list[UsbDeviceModel] = []
    for board in boards:
        if base.mode == "app":
            models.append(Stm32F411App(board.serial, bootloader=board, clock=clock))
        models.append(board)
    backend = SimBackend(models, clock=clock)
    search = selector if selector is not None else base
    if search.serial == base.serial and base.count > 1:
        search = dataclasses.replace(search, serial=None)
    return Bench(search, backend, boards, clock)
