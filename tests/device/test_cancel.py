"""Cancellation: a cancel token stops download, upload and flash_many at the next safe
point (after the current block or erase), the device is back in dfuIDLE, the error
says truthfully what was erased and written, and the next run succeeds."""

from __future__ import annotations

import random
import threading

import pytest

from dfuse.device import DfuDevice, DownloadOptions, Phase
from dfuse.errors import CancelledError
from dfuse.gang import flash_many
from dfuse.protocol.constants import State
from dfuse.sim import SimBackend, Stm32F411

BASE = 0x08000000
#: Sectors 0-2 (16 KiB each) and 10 KiB of sector 3: 4 erases, 29 blocks.
IMAGE = random.Random(7).randbytes(3 * 0x4000 + 10 * 1024)
SECTORS = (0x08000000, 0x08004000, 0x08008000, 0x0800C000)


def _open(chip: Stm32F411) -> DfuDevice:
    return DfuDevice.open(backend=SimBackend([chip]))


def _cancel_at(phase: Phase, after: int, cancel: threading.Event):  # type: ignore[no-untyped-def]
    """A progress callback that sets ``cancel`` when ``phase`` has done ``after`` bytes."""

    def progress(p: Phase, done: int, _total: int) -> None:
        if p is phase and done >= after:
            cancel.set()

    return progress


@pytest.mark.parametrize(
    ("phase", "after", "erased", "written"),
    [
        (Phase.ERASE, 1, SECTORS[:1], 0),  # after the first erase
        (Phase.ERASE, 0x10000, SECTORS, 0),  # after the last erase, before any block
        (Phase.WRITE, 1, SECTORS, 2048),  # after the first block
        (Phase.WRITE, 20 * 2048, SECTORS, 20 * 2048),
        (Phase.VERIFY, 1, SECTORS, len(IMAGE)),  # after the first block read back
    ],
)
def test_download_stops_at_the_next_safe_point(
    phase: Phase, after: int, erased: tuple[int, ...], written: int
) -> None:
    chip = Stm32F411()
    for sector in SECTORS:
        chip.poke(sector, b"\x00" * 16)
    dev = _open(chip)
    cancel = threading.Event()
    dnloads = []

    def progress(p: Phase, done: int, total: int) -> None:
        dnloads.append(chip.requests["DNLOAD"])
        _cancel_at(phase, after, cancel)(p, done, total)

    with pytest.raises(CancelledError) as info:
        dev.download(IMAGE, address=BASE, cancel=cancel, progress=progress)
    err = info.value
    assert err.phase == phase.value
    assert err.erased == erased
    assert err.written == written
    # nothing was sent after the request that completed when the token was set
    assert chip.requests["DNLOAD"] == dnloads[-1]
    assert chip.state == State.dfuIDLE  # brought back with ABORT
    assert chip.peek(BASE, written) == IMAGE[:written]  # what it says was written, was
    for sector in SECTORS[len(erased) :]:
        assert chip.peek(sector, 16) == b"\x00" * 16  # not erased
    # the next run recovers and completes
    dev.download(IMAGE, address=BASE)
    assert chip.peek(BASE, len(IMAGE)) == IMAGE


def test_cancel_in_download_options_and_before_anything() -> None:
    chip = Stm32F411()
    chip.poke(BASE, b"\x00" * 16)
    dev = _open(chip)
    cancel = threading.Event()
    cancel.set()
    options = DownloadOptions(address=BASE, cancel=cancel)
    with pytest.raises(CancelledError) as info:
        dev.download(IMAGE, options)
    assert info.value.erased == ()
    assert info.value.written == 0
    assert chip.peek(BASE, 16) == b"\x00" * 16  # nothing erased
    assert chip.state == State.dfuIDLE


def test_incremental_read_back_is_cancelled() -> None:
    chip = Stm32F411()
    dev = _open(chip)
    cancel = threading.Event()
    with pytest.raises(CancelledError) as info:
        dev.download(
            IMAGE,
            address=BASE,
            incremental=True,
            cancel=cancel,
            progress=_cancel_at(Phase.READ, 1, cancel),
        )
    assert info.value.phase == "read"
    assert info.value.erased == ()
    assert info.value.written == 2048  # bytes read
    assert chip.state == State.dfuIDLE
    dev.download(IMAGE, address=BASE, incremental=True)
    assert chip.peek(BASE, len(IMAGE)) == IMAGE


def test_upload_is_cancelled_between_blocks() -> None:
    chip = Stm32F411()
    dev = _open(chip)
    cancel = threading.Event()
    uploads = []

    def progress(_p: Phase, done: int, _t: int) -> None:
        uploads.append(chip.requests["UPLOAD"])
        if done >= 3 * 2048:
            cancel.set()

    with pytest.raises(CancelledError) as info:
        dev.upload(BASE, 0x4000, cancel=cancel, progress=progress)
    assert info.value.phase == "read"
    assert info.value.written == 3 * 2048
    assert chip.requests["UPLOAD"] == uploads[-1]
    assert chip.state == State.dfuIDLE
    assert dev.upload(BASE, 16) == chip.peek(BASE, 16)


def test_flash_many_cancels_every_board() -> None:
    chips = [Stm32F411(serial=f"B{n}") for n in range(3)]
    backend = SimBackend(chips)
    cancel = threading.Event()

    def progress(_name: str, phase: Phase, _percent: float) -> None:
        if phase is Phase.WRITE:
            cancel.set()

    report = flash_many(
        ["B0", "B1", "B2"], IMAGE, backend=backend, address=BASE, cancel=cancel, progress=progress
    )
    assert not report.ok
    for board in report:
        assert board.error_type == "CancelledError"
        assert isinstance(board.exception, CancelledError)
    for chip in chips:
        assert chip.state == State.dfuIDLE
    again = flash_many(["B0", "B1", "B2"], IMAGE, backend=backend, address=BASE)
    assert again.ok
    assert all(chip.peek(BASE, len(IMAGE)) == IMAGE for chip in chips)
