"""Concurrency: a second host gets "device busy"; boards flashed from threads share nothing."""

from __future__ import annotations

import random
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from dfuse.clock import VirtualClock
from dfuse.device import DfuDevice, Phase
from dfuse.errors import DeviceBusyError
from dfuse.sim import SimBackend, Stm32F411

BASE = 0x0800_0000
CLASS_REQUESTS = ("DNLOAD", "UPLOAD", "GETSTATUS", "CLRSTATUS", "GETSTATE", "ABORT", "DETACH")


def _class_requests(chip: Stm32F411) -> int:
    return sum(chip.requests[name] for name in CLASS_REQUESTS)


def test_second_host_gets_device_busy_and_the_first_is_unharmed() -> None:
    chip = Stm32F411(serial="SHARED")
    backend = SimBackend([chip])
    image = random.Random(1).randbytes(20000)
    with DfuDevice.open(backend=backend) as first:
        before = _class_requests(chip)
        with pytest.raises(DeviceBusyError, match="busy") as info:
            DfuDevice.open(backend=backend)
        assert "another program" in str(info.value)
        assert _class_requests(chip) == before  # the loser sent no DFU request
        first.download(image, address=BASE)
    assert chip.peek(BASE, len(image)) == image
    # once the first host lets go, the second can have it
    with DfuDevice.open(backend=backend) as second:
        second.download(image[::-1], address=BASE)
    assert chip.peek(BASE, len(image)) == image[::-1]


def test_second_host_on_another_bus_context_during_a_download() -> None:
    """Two pyusb contexts (two programs) see the same board; the second tries to open it
    in the middle of the first one's download."""
    clock = VirtualClock()
    chip = Stm32F411(serial="SHARED2")
    host_a = SimBackend([chip], clock=clock)
    host_b = SimBackend([chip], clock=clock)
    image = random.Random(2).randbytes(3 * 16384)
    refusals: list[str] = []

    def meanwhile(phase: Phase, done: int, total: int) -> None:
        if phase is Phase.WRITE and not refusals:
            try:
                DfuDevice.open(backend=host_b)
            except DeviceBusyError as exc:
                refusals.append(str(exc))

    with DfuDevice.open(backend=host_a) as first:
        first.download(image, address=BASE, progress=meanwhile)
    assert len(refusals) == 1
    assert "busy" in refusals[0]
    assert chip.peek(BASE, len(image)) == image


def _flash(backend: SimBackend, serial: str, image: bytes, start: threading.Barrier) -> str:
    start.wait()
    with DfuDevice.open(backend=backend, serial=serial) as dev:
        dev.download(image, address=BASE + 0x4000)
        return serial


@pytest.mark.parametrize("layout", ["one bus", "four buses"])
def test_boards_flashed_from_threads_share_nothing(layout: str) -> None:
    serials = [f"BOARD{i}" for i in range(4)]
    chips = [Stm32F411(serial=s, port_numbers=(i + 1,)) for i, s in enumerate(serials)]
    if layout == "one bus":
        shared = SimBackend(chips)
        backends = [shared] * 4
    else:
        backends = [SimBackend([chip]) for chip in chips]
    images = [random.Random(10 + i).randbytes(24000 + 1000 * i) for i in range(4)]
    start = threading.Barrier(4)
    with ThreadPoolExecutor(max_workers=4) as pool:
        jobs = [pool.submit(_flash, backends[i], serials[i], images[i], start) for i in range(4)]
        assert [job.result(timeout=60) for job in jobs] == serials
    for chip, image in zip(chips, images, strict=True):
        assert chip.peek(BASE + 0x4000, len(image)) == image
        # untouched outside the image: nobody else's data landed here
        assert chip.peek(BASE, 0x4000) == b"\xff" * 0x4000
        tail = BASE + 0x4000 + len(image)
        assert chip.peek(tail, 0x100) == b"\xff" * 0x100


def test_devices_in_threads_have_their_own_state() -> None:
    """Two DfuDevice objects on two boards do not share plans, pointers or alt settings."""
    chips = [Stm32F411(serial="A", port_numbers=(1,)), Stm32F411(serial="B", port_numbers=(2,))]
    backend = SimBackend(chips)
    with (
        DfuDevice.open(backend=backend, serial="A") as a,
        DfuDevice.open(backend=backend, serial="B", alt=2) as b,
    ):
        assert (a.alt, b.alt) == (0, 2)
        a.download(b"\x11" * 3000, address=BASE)
        assert b.alt == 2
        assert b.upload(0x1FFF7800, 16) == b"\xff" * 16
        assert chips[1].peek(BASE, 4) == b"\xff" * 4
        assert chips[0].peek(BASE, 3000) == b"\x11" * 3000
