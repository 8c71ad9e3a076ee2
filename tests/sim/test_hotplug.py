"""SimBackend hot-plug: plug/unplug at any time, arrival schedules, hotplug callbacks."""

from __future__ import annotations

import threading

import pytest

from dfuse.clock import VirtualClock
from dfuse.device import DfuDevice
from dfuse.errors import DeviceGoneError
from dfuse.sim import SimBackend, Stm32F411
from dfuse.transport.discovery import find_devices


def _serials(backend: SimBackend) -> list[str | None]:
    return [d.serial for d in find_devices(backend=backend)]


def test_plug_unplug_and_callbacks() -> None:
    clock = VirtualClock()
    backend = SimBackend(clock=clock)
    seen: list[tuple[str, str]] = []
    backend.add_hotplug_callback(lambda dev, what: seen.append((dev.serial, what)))  # type: ignore[attr-defined]
    a, b = Stm32F411(serial="A"), Stm32F411(serial="B")
    backend.plug(a)
    backend.plug(b)
    assert _serials(backend) == ["A", "B"]
    address = find_devices(backend=backend, serial="B")[0].address
    backend.unplug(b)
    assert _serials(backend) == ["A"]
    backend.plug(b)  # back, freshly enumerated at a new address
    again = find_devices(backend=backend, serial="B")[0]
    assert again.address != address
    assert seen == [("A", "arrived"), ("B", "arrived"), ("B", "left"), ("B", "arrived")]
    with pytest.raises(ValueError, match="not on this bus"):
        backend.unplug(Stm32F411(serial="C"))


def test_schedule_plugs_boards_in_when_the_clock_reaches_them() -> None:
    clock = VirtualClock()
    backend = SimBackend(clock=clock)
    backend.schedule(Stm32F411(serial="LATE"), 2.0)
    backend.schedule(Stm32F411(serial="EARLY"), 1.0)
    assert backend.next_arrival == 1.0
    assert _serials(backend) == []
    clock.advance_to(1.5)
    assert _serials(backend) == ["EARLY"]
    assert backend.next_arrival == 2.0
    clock.advance_to(2.0)
    assert sorted(s or "" for s in _serials(backend)) == ["EARLY", "LATE"]
    assert backend.next_arrival is None


def test_a_board_yanked_mid_download_is_enodev() -> None:
    board = Stm32F411(serial="Y")
    backend = SimBackend([board])
    dev = DfuDevice.open(backend=backend)
    pulled = threading.Event()

    def progress(phase: object, done: int, total: int) -> None:
        if str(phase) == "write" and done >= 4096 and not pulled.is_set():
            pulled.set()
            backend.unplug(board)

    with pytest.raises(DeviceGoneError):
        dev.download(bytes(16384), address=0x08000000, progress=progress)
    assert pulled.is_set()
    dev.close()
    backend.plug(board)
    with DfuDevice.open(backend=backend) as again:  # the next insertion works
        again.download(bytes(range(256)) * 64, address=0x08000000)
    assert board.peek(0x08000000, 16384) == bytes(range(256)) * 64
