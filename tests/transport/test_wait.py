"""Waiting for a device: hotplug on the simulator, polling elsewhere, timeouts, cancel."""

from __future__ import annotations

import threading

import pytest

from dfuse.clock import RealClock, VirtualClock
from dfuse.errors import CancelledError, DeviceNotFoundError
from dfuse.selector import bench, wait_for_device
from dfuse.sim import SimBackend, Stm32F411
from dfuse.transport.discovery import BusWatcher, find_devices, wait_for


def test_wait_for_device_returns_when_the_board_arrives() -> None:
    with wait_for_device("sim:stm32f411?arrive=3", timeout=10) as dev:
        assert dev.info.serial == "3276347F3034"
        assert 3.0 <= dev.clock.now < 3.5  # woken by the arrival, not long after


def test_wait_times_out_and_cancels() -> None:
    with pytest.raises(DeviceNotFoundError, match="within 1 s"):
        wait_for_device("sim:stm32f411?arrive=3", timeout=1)
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(CancelledError):
        wait_for_device("sim:stm32f411?arrive=3", cancel=cancel)


def test_hotplug_wakes_a_real_time_wait() -> None:
    backend = SimBackend(clock=RealClock())
    board = Stm32F411(serial="HOT")
    timer = threading.Timer(0.05, backend.plug, args=(board,))
    timer.start()
    with BusWatcher(backend, interval=5.0) as watcher:
        assert watcher.hotplug
        found = wait_for(lambda: find_devices(backend=backend), backend=backend, timeout=5.0)
    timer.join()
    assert [d.serial for d in found] == ["HOT"]


def test_without_hotplug_the_bus_is_polled() -> None:
    clock = VirtualClock()
    calls: list[float] = []
    found: list[object] = ["x"]

    def find() -> list[object]:
        calls.append(clock.now)
        return found if len(calls) == 4 else []

    class NoHotplug:
        pass

    result = wait_for(find, backend=NoHotplug(), clock=clock, interval=0.25)  # type: ignore[arg-type]
    assert result == found
    assert calls == [0.0, 0.25, 0.5, 0.75]
    assert not BusWatcher(NoHotplug(), clock).hotplug


def test_bench_wait_for_finds_scheduled_boards() -> None:
    b = bench("sim:stm32f411?boards=3&arrive=0.5")
    assert b.find() == []
    assert [d.serial for d in b.wait_for(10)] == ["3276347F3001"]


@pytest.mark.parametrize("timeout", [-1, -0.5, float("nan"), "5", True])
def test_a_bad_timeout_is_a_usage_error_naming_it(timeout: object) -> None:
    from dfuse.errors import UsageError

    with pytest.raises(UsageError) as info:
        wait_for_device("sim:stm32f411", timeout=timeout)  # type: ignore[arg-type]
    assert str(info.value.value) == str(timeout)
    assert repr(timeout) in str(info.value)
    assert ">= 0" in str(info.value)


@pytest.mark.parametrize("interval", [0, -1.0, float("nan")])
def test_a_bad_poll_interval_is_a_usage_error_naming_it(interval: float) -> None:
    from dfuse.errors import UsageError

    with pytest.raises(UsageError, match="interval must be a positive number") as info:
        BusWatcher(None, VirtualClock(), interval=interval)
    assert str(info.value.value) == str(interval)
