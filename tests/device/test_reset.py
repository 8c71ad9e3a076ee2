"""`DfuDevice.reset()`: a USB port reset; the ROM's DFU state starts over and the object
is closed (open the device again)."""

from __future__ import annotations

import pytest

from dfuse import DfuDevice, State, UsageError
from dfuse.sim import SimBackend, board


def test_reset_returns_the_rom_to_dfu_idle_and_closes_the_device() -> None:
    f411 = board("stm32f411")
    backend = SimBackend([f411])
    dev = DfuDevice.open(backend=backend)
    dev.set_address(0x08004000)
    before = f411.state
    dev.reset()
    after = f411.state
    assert (before, after) == (State.dfuDNLOAD_IDLE, State.dfuIDLE)
    with pytest.raises(UsageError):
        dev.upload(0x08000000, 16)
    dev.reset()  # already closed: still no error
    with DfuDevice.open(backend=backend) as again:
        assert again.upload(0x08000000, 16) == b"\xff" * 16
