"""SimBackend and its devices under several host threads."""

from __future__ import annotations

import threading
import time

from dfuse.clock import RealClock
from dfuse.sim import SimBackend, Stm32F411


def test_re_enumeration_and_enumeration_on_two_threads_do_not_deadlock() -> None:
    """A device coming back on the bus holds its own lock and then takes the bus lock
    (to get an address); enumeration must not take them the other way round."""
    a, b = Stm32F411(serial="A"), Stm32F411(serial="B")
    backend = SimBackend([a, b])
    stop = threading.Event()
    counts = [0, 0]

    def cycle() -> None:
        while not stop.is_set():
            a.power_cycle(0.0)
            counts[0] += 1

    def enumerate_bus() -> None:
        while not stop.is_set():
            list(backend.enumerate_devices())
            counts[1] += 1

    threads = [threading.Thread(target=f, daemon=True) for f in (cycle, enumerate_bus)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    stop.set()
    for t in threads:
        t.join(5.0)
    assert not any(t.is_alive() for t in threads), "deadlock"
    assert min(counts) > 0


def test_opening_a_device_does_not_wait_for_another_devices_transfer() -> None:
    a, b = Stm32F411(serial="A"), Stm32F411(serial="B")
    backend = SimBackend([a, b], clock=RealClock())
    refs = {r.model: r for r in backend.enumerate_devices()}
    held = threading.Event()
    release = threading.Event()

    def hold_a() -> None:  # like a transfer of A waiting out its device time
        with a.lock:
            held.set()
            release.wait(5.0)

    t = threading.Thread(target=hold_a, daemon=True)
    t.start()
    held.wait(5.0)
    start = time.monotonic()
    handle = backend.open_device(refs[b])
    elapsed = time.monotonic() - start
    release.set()
    t.join(5.0)
    backend.close_device(handle)
    assert elapsed < 1.0
