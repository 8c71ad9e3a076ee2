"""A failed ABORT sent as a step of an operation names that operation (bug B1, rest)."""

from __future__ import annotations

import pytest

from dfuse.device import DfuDevice
from dfuse.errors import DeviceGoneError, StallError, TransferTimeoutError, TransportError
from dfuse.sim import Event, Fault, FaultKind, PlainDfuDevice, SimBackend, Stm32F411

BASE = 0x08000000


def _open_with_abort_fault(kind: FaultKind) -> tuple[Stm32F411, DfuDevice]:
    chip = Stm32F411()
    dev = DfuDevice.open(backend=SimBackend([chip]))
    chip.inject(Fault(kind, Event.ABORT, nth=chip.requests["ABORT"] + 1, reconnect_after=None))
    return chip, dev


@pytest.mark.parametrize(
    ("kind", "error"),
    [
        (FaultKind.STALL, StallError),
        (FaultKind.TIMEOUT, TransferTimeoutError),
        (FaultKind.DISCONNECT, DeviceGoneError),
    ],
)
def test_abort_after_set_address_names_the_read(
    kind: FaultKind, error: type[TransportError]
) -> None:
    # upload(): Set Address leaves dfuDNLOAD-IDLE, the ABORT before reading fails
    _chip, dev = _open_with_abort_fault(kind)
    with pytest.raises(error, match=r"reading 0x08000000 \(16 bytes\)"):
        dev.upload(BASE, 16)


def test_abort_after_the_last_block_names_the_read() -> None:
    chip = Stm32F411()
    dev = DfuDevice.open(backend=SimBackend([chip]))
    # the ABORT after Set Address is the next one; the one after the last block fails
    chip.inject(Fault(FaultKind.STALL, Event.ABORT, nth=chip.requests["ABORT"] + 2))
    with pytest.raises(StallError, match=r"reading 0x08000000 \(4096 bytes\)"):
        dev.upload(BASE, 4096)
    assert dev.upload(BASE, 16) == chip.peek(BASE, 16)  # the same object recovers


def test_abort_after_a_plain_dfu_upload_names_the_read() -> None:
    chip = PlainDfuDevice(size=4096)
    dev = DfuDevice.open(backend=SimBackend([chip]))
    chip.inject(Fault(FaultKind.STALL, Event.ABORT, nth=chip.requests["ABORT"] + 1))
    with pytest.raises(StallError, match=r"reading the firmware \(2048 bytes\)"):
        dev.upload_dfu(2048)  # a full read: dfuUPLOAD-IDLE, then the ABORT fails
