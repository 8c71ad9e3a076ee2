"""The driver honours every SessionRules field, checked against the simulator's quirk
switches (the quirks of real ROMs, dfuse.sim.quirks)."""

from __future__ import annotations

import random

import pytest

from dfuse.device import DfuDevice
from dfuse.errors import DeviceStatusError, TransferTimeoutError
from dfuse.protocol.session import SessionRules
from dfuse.sim import GD32_QUIRKS, STM32C0_QUIRKS, STM32H7_QUIRKS, SimBackend, Stm32F411
from dfuse.sim.quirks import Quirks

BASE = 0x08000000
IMAGE = random.Random(5).randbytes(6000)
_BUSY_ANSWERING = Quirks(busy_past_poll_timeout=True, mass_erase_poll_timeout_ms=100)


def _open(chip: Stm32F411, rules: SessionRules | None = None) -> tuple[DfuDevice, SimBackend]:
    backend = SimBackend([chip])
    return DfuDevice.open(backend=backend, rules=rules), backend


def test_c0_leaves_only_with_set_address_before_leave() -> None:
    chip = Stm32F411(quirks=STM32C0_QUIRKS)
    dev, backend = _open(chip)
    dev.download(IMAGE, address=BASE, leave=True)
    backend.poll()
    assert chip.app_starts[-1].address == BASE
    # the rule switched off: no Set Address right before the leave, the C0 stays
    chip = Stm32F411(quirks=STM32C0_QUIRKS)
    dev, backend = _open(chip, SessionRules(set_address_before_leave=False))
    dev.download(IMAGE, address=BASE, verify=False)  # the last request: a data block
    with pytest.raises(DeviceStatusError, match="errUNKNOWN"):  # LibUsbDfu#13: "returned Error"
        dev.leave()
    backend.poll()
    assert not chip.app_starts


def test_gd32_leave_without_status_sends_no_getstatus() -> None:
    chip = Stm32F411(quirks=GD32_QUIRKS)
    dev, backend = _open(chip, SessionRules(status_after_leave=False))
    dev.download(IMAGE, address=BASE)
    polls = chip.requests["GETSTATUS"]
    dev.leave()
    assert chip.requests["GETSTATUS"] == polls + 2  # the Set Address's; none after leaving
    backend.poll()
    assert chip.app_starts[-1].address == BASE
    # by default the host asks, gets no answer, and counts that as left
    chip = Stm32F411(quirks=GD32_QUIRKS)
    dev, backend = _open(chip)
    dev.download(IMAGE, address=BASE, leave=True)
    backend.poll()
    assert chip.app_starts[-1].address == BASE


def test_h7_busy_past_its_poll_timeout_is_polled_out() -> None:
    chip = Stm32F411(quirks=STM32H7_QUIRKS)
    dev, _backend = _open(chip)
    dev.download(IMAGE, address=BASE)
    assert chip.peek(BASE, len(IMAGE)) == IMAGE


def test_poll_floor_and_ceiling_shape_the_waits() -> None:
    # a ROM that answers GETSTATUS while busy, with 100 ms for a mass erase that takes
    # seconds: with a 5 ms ceiling the host polls far more often; with a 1 s floor less
    counts = {}
    for name, rules in (
        ("ceiling", SessionRules(max_poll_ms=5)),
        ("floor", SessionRules(min_poll_ms=1000)),
    ):
        chip = Stm32F411(quirks=_BUSY_ANSWERING)
        dev, _backend = _open(chip, rules)
        before = chip.requests["GETSTATUS"]
        dev.mass_erase()
        counts[name] = chip.requests["GETSTATUS"] - before
    assert counts["ceiling"] > 10 * counts["floor"]


def test_busy_timeout_rule() -> None:
    chip = Stm32F411(quirks=_BUSY_ANSWERING)
    dev, _backend = _open(chip, SessionRules(busy_timeout_s=0.5))
    with pytest.raises(TransferTimeoutError, match=r"more than 0\.5 s"):
        dev.mass_erase()
    assert dev.busy_timeout == 0.5
    dev.busy_timeout = 60.0
    assert dev.rules.busy_timeout_s == 60.0
    dev.mass_erase()  # waits out the first one, then does it again
