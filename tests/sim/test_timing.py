"""Timing: durations within datasheet bounds, the clock advances, transfers can time out."""

from __future__ import annotations

import pytest
import usb.core
from hypothesis import given, settings
from hypothesis import strategies as st

from dfuse.sim import STM32F405_QUIRKS, Duration, RealClock, SimBackend, Stm32F411, Timing
from dfuse.sim.timing import TimingModel, UsbTiming
from tests.sim.conftest import make_rig


@pytest.mark.parametrize(
    ("address", "typ", "max_"),
    [(0x08000000, 250, 500), (0x08010000, 550, 1100), (0x08020000, 1000, 2000)],
)
def test_erase_poll_timeout_within_typ_max_and_clock_advances(
    address: int, typ: int, max_: int
) -> None:
    rig = make_rig(Stm32F411(timing=Timing(spread=1.0), seed=7))
    rig.dnload(0, b"\x41" + address.to_bytes(4, "little"))
    t0 = rig.clock.now
    _s, poll, state, _ = rig.getstatus()
    assert state == 4
    assert typ <= poll <= max_
    rig.clock.sleep(poll / 1000)
    assert rig.getstatus()[2] == 5
    assert rig.clock.now - t0 >= poll / 1000


def test_getstatus_too_early_is_held_then_times_out() -> None:
    rig = make_rig()
    rig.dnload(0, b"\x41\x00\x00\x02\x08")  # 128 KiB: about 1 s
    poll = rig.getstatus()[1]
    t0 = rig.clock.now
    with pytest.raises(usb.core.USBTimeoutError):
        rig.dev.ctrl_transfer(0xA1, 3, 0, 0, 6, 100)
    assert rig.clock.now - t0 == pytest.approx(0.1)
    # a long enough timeout: answered when the erase ends
    assert rig.getstatus(timeout=5000)[2] == 5
    assert rig.clock.now - t0 >= poll / 1000 - 0.002


def test_usb_transfer_costs() -> None:
    usb_t = UsbTiming()
    assert usb_t.transfer_cost(0) == pytest.approx(0.001)
    assert usb_t.transfer_cost(2048) == pytest.approx(0.001 + 32 / 19 / 1000)
    rig = make_rig()
    t0 = rig.clock.now
    rig.getstate()
    assert rig.clock.now - t0 == pytest.approx(0.001 + 1 / 19 / 1000)


def test_full_flash_device_bound_time() -> None:
    rig = make_rig(Stm32F411(timing=Timing(spread=0.0)))
    rig.run(0, b"\x41")
    rig.write(0x08000000, bytes(64 * 1024))
    # mass erase 4 s + 32 blocks x (8.2 ms program + ~2.7 ms DNLOAD + 2 GETSTATUS)
    assert 4.3 < rig.clock.now < 4.6


def test_f405_quirk_reports_a_short_mass_erase_poll_timeout() -> None:
    rig = make_rig(Stm32F411(quirks=STM32F405_QUIRKS))
    rig.dnload(0, b"\x41")
    assert rig.getstatus()[1] == 100
    rig.clock.sleep(0.1)
    with pytest.raises(usb.core.USBTimeoutError):
        rig.getstatus(timeout=1000)


def test_real_clock_really_waits() -> None:
    model = Stm32F411(timing=Timing(spread=0.0))
    backend = SimBackend([model], clock=RealClock())
    dev = usb.core.find(idVendor=0x0483, backend=backend)
    assert dev is not None
    t0 = backend.clock.now
    dev.ctrl_transfer(0x21, 1, 0, 0, b"\x41\x00\x00\x00\x08")  # 250 ms erase
    dev.ctrl_transfer(0xA1, 3, 0, 0, 6)
    assert bytes(dev.ctrl_transfer(0xA1, 3, 0, 0, 6))[4] == 5
    assert backend.clock.now - t0 >= 0.25


@settings(max_examples=50, deadline=None)
@given(
    typ=st.floats(0, 10),
    extra=st.floats(0, 10),
    spread=st.floats(0, 1),
    seed=st.integers(0, 2**32),
)
def test_samples_stay_within_typ_and_max(
    typ: float, extra: float, spread: float, seed: int
) -> None:
    model = TimingModel(Timing(spread=spread), seed)
    d = Duration(typ, typ + extra)
    for _ in range(5):
        assert d.typ <= model.sample(d) <= d.max + 1e-9


def test_same_seed_same_durations() -> None:
    a, b = TimingModel(Timing(), 5), TimingModel(Timing(), 5)
    assert [a.erase_time(16384) for _ in range(5)] == [b.erase_time(16384) for _ in range(5)]


def test_timing_validation() -> None:
    with pytest.raises(ValueError, match="typ"):
        Duration(2, 1)
    with pytest.raises(ValueError, match="spread"):
        Timing(spread=2)
    assert Timing(spread=0.5).typical().spread == 0
