"""Scheduled faults fire exactly when scheduled, do what they say, and are recorded."""

from __future__ import annotations

import errno

import pytest
import usb.core

from dfuse.protocol.constants import State, Status
from dfuse.sim import Event, Fault, FaultKind, FaultPlan, Stm32F411
from tests.sim.conftest import make_rig


def test_stall_on_the_nth_dnload() -> None:
    rig = make_rig(Stm32F411(faults=[Fault(FaultKind.STALL, Event.DNLOAD, nth=3)]))
    rig.set_address(0x08000000)
    rig.set_address(0x08000000)
    with pytest.raises(usb.core.USBError) as info:
        rig.dnload(0, b"\x21\x00\x00\x00\x08")
    assert info.value.errno == errno.EPIPE
    [record] = rig.model.fault_log
    assert record.kind is FaultKind.STALL
    assert record.fault.nth == 3
    assert rig.set_address(0x08000000)[2] == State.dfuDNLOAD_IDLE  # fires once


def test_timeout_fault_costs_the_transfer_timeout() -> None:
    rig = make_rig(Stm32F411(faults=[Fault(FaultKind.TIMEOUT, Event.GETSTATUS, nth=1)]))
    t0 = rig.clock.now
    with pytest.raises(usb.core.USBTimeoutError) as info:
        rig.dev.ctrl_transfer(0xA1, 3, 0, 0, 6, 750)
    assert info.value.errno == errno.ETIMEDOUT
    assert info.value.backend_error_code == -7
    assert rig.clock.now - t0 == pytest.approx(0.75)


def test_disconnect_and_come_back() -> None:
    fault = Fault(FaultKind.DISCONNECT, Event.ANY_REQUEST, nth=2, reconnect_after=0.2)
    rig = make_rig(Stm32F411(faults=[fault]))
    rig.getstate()
    with pytest.raises(usb.core.USBError) as info:
        rig.getstate()
    assert info.value.errno == errno.ENODEV
    with pytest.raises(usb.core.USBError):  # the old handle stays dead
        rig.getstate()
    assert usb.core.find(idVendor=0x0483, backend=rig.backend) is None
    rig.clock.sleep(0.3)
    dev = usb.core.find(idVendor=0x0483, backend=rig.backend)
    assert dev is not None
    assert bytes(dev.ctrl_transfer(0xA1, 5, 0, 0, 1)) == bytes((State.dfuIDLE,))


@pytest.mark.parametrize(
    ("kind", "status"),
    [(FaultKind.ERR_ERASE, Status.errERASE), (FaultKind.ERR_WRITE, Status.errWRITE)],
)
def test_error_status_faults_change_nothing(kind: FaultKind, status: Status) -> None:
    on = Event.ERASE if kind is FaultKind.ERR_ERASE else Event.WRITE
    rig = make_rig(Stm32F411(faults=[Fault(kind, on, nth=2)]))
    m = rig.model
    m.poke(0x08000000, b"\x00" * 4)
    m.poke(0x08004000, b"\x00" * 4)
    if kind is FaultKind.ERR_ERASE:
        assert rig.erase(0x08000000)[0] == 0
        assert rig.erase(0x08004000)[:3] == (status, 0, State.dfuERROR)
        assert m.peek(0x08004000, 4) == b"\x00" * 4
    else:
        rig.erase(0x08000000)
        rig.set_address(0x08000000)
        assert rig.run(2, b"\x01")[0] == 0
        assert rig.run(3, b"\x02")[:3] == (status, 0, State.dfuERROR)
        assert m.peek(0x08000800, 1) == b"\xff"
    assert [r.kind for r in m.fault_log] == [kind]


def test_err_verify_writes_then_reports() -> None:
    rig = make_rig(Stm32F411(faults=[Fault(FaultKind.ERR_VERIFY, Event.WRITE)]))
    rig.set_address(0x08000000)
    assert rig.run(2, b"\x5a")[0] == Status.errVERIFY
    assert rig.model.peek(0x08000000, 1) == b"\x5a"


def test_busy_longer_than_reported() -> None:
    fault = Fault(FaultKind.BUSY_LONGER, Event.ERASE, extra=0.8)
    rig = make_rig(Stm32F411(faults=[fault], seed=3, honest=True))  # exact timing
    rig.dnload(0, b"\x41\x00\x00\x00\x08")
    _s, poll, _state, _ = rig.getstatus()
    rig.clock.sleep(poll / 1000)
    again = rig.getstatus()  # still busy: the host has to poll again
    assert again[2] == State.dfuDNBUSY
    assert 700 <= again[1] <= 801
    rig.clock.sleep(again[1] / 1000)
    assert rig.getstatus()[2] == State.dfuDNLOAD_IDLE


def test_power_loss_mid_erase_leaves_a_partly_erased_sector() -> None:
    fault = Fault(FaultKind.POWER_LOSS, Event.ERASE, nth=1, progress=0.25, reconnect_after=0.1)
    rig = make_rig(Stm32F411(faults=[fault]))
    m = rig.model
    m.poke(0x08000000, bytes(16384))
    rig.dnload(0, b"\x41\x00\x00\x00\x08")
    _s, poll, _st, _ = rig.getstatus()
    with pytest.raises(usb.core.USBError) as info:
        rig.getstatus()
    assert info.value.errno == errno.ENODEV
    assert m.peek(0x08000000, 4096) == b"\xff" * 4096
    assert m.peek(0x08001000, 16384 - 4096) == bytes(16384 - 4096)
    [record] = m.fault_log
    assert "25%" in record.detail
    assert record.time == pytest.approx(poll / 1000 * 0.25, abs=0.01)
    rig.clock.sleep(0.2)
    assert usb.core.find(idVendor=0x0483, backend=rig.backend) is not None


def test_power_loss_mid_write_leaves_a_partly_written_block() -> None:
    fault = Fault.after_fraction(FaultKind.POWER_LOSS, Event.WRITE, 0.5, total=4, progress=0.5)
    assert fault.nth == 3
    rig = make_rig(Stm32F411(faults=[fault]))
    rig.set_address(0x08000000)
    rig.run(2, bytes(2048))
    rig.run(3, bytes(2048))
    rig.dnload(4, bytes(2048))
    rig.getstatus()
    with pytest.raises(usb.core.USBError):
        rig.getstatus()
    m = rig.model
    assert m.peek(0x08001000, 1024) == bytes(1024)
    assert m.peek(0x08001400, 1024) == b"\xff" * 1024


def test_boot_error_fault() -> None:
    rig = make_rig(Stm32F411(faults=[Fault(FaultKind.BOOT_ERROR, Event.BOOT)]))
    assert rig.getstatus()[:3] == (Status.errFIRMWARE, 0, State.dfuERROR)


def test_read_fault_stalls_with_status() -> None:
    rig = make_rig(Stm32F411(faults=[Fault(FaultKind.ERR_VERIFY, Event.READ, nth=2)]))
    rig.read(0x08000000, 2048)
    with pytest.raises(usb.core.USBError):
        rig.read(0x08000000, 2048)
    assert rig.getstatus()[0] == Status.errVERIFY


def test_disconnect_before_an_operation() -> None:
    fault = Fault(FaultKind.DISCONNECT, Event.MASS_ERASE, reconnect_after=None)
    rig = make_rig(Stm32F411(faults=[fault]))
    rig.model.poke(0x08000000, b"\x00")
    rig.dnload(0, b"\x41")
    rig.getstatus()
    rig.clock.sleep(10)
    assert usb.core.find(idVendor=0x0483, backend=rig.backend) is None
    assert rig.model.peek(0x08000000, 1) == b"\x00"
    rig.model.plug()
    assert usb.core.find(idVendor=0x0483, backend=rig.backend) is not None


def test_fault_validation() -> None:
    with pytest.raises(ValueError, match="nth"):
        Fault(FaultKind.STALL, Event.DNLOAD, nth=0)
    with pytest.raises(ValueError, match="operation event"):
        Fault(FaultKind.ERR_WRITE, Event.DNLOAD)
    with pytest.raises(ValueError, match="request event"):
        Fault(FaultKind.STALL, Event.ERASE)
    with pytest.raises(ValueError, match="BOOT"):
        Fault(FaultKind.BOOT_ERROR, Event.ERASE)
    with pytest.raises(ValueError, match="BOOT"):
        Fault(FaultKind.STALL, Event.BOOT)
    with pytest.raises(ValueError, match="progress"):
        Fault(FaultKind.POWER_LOSS, Event.ERASE, progress=2)
    with pytest.raises(ValueError, match="extra"):
        Fault(FaultKind.BUSY_LONGER, Event.ERASE, extra=-1)
    with pytest.raises(ValueError, match="fraction"):
        Fault.after_fraction(FaultKind.STALL, Event.DNLOAD, 1.0, total=3)
    with pytest.raises(ValueError, match="total"):
        Fault.after_fraction(FaultKind.STALL, Event.DNLOAD, 0.5, total=0)


def test_plan_counts_and_describes() -> None:
    plan = FaultPlan()
    plan.add(Fault(FaultKind.STALL, Event.DNLOAD, nth=2))
    assert plan.fire(Event.DNLOAD) is None
    fired = plan.fire(Event.DNLOAD)
    assert fired is not None
    assert fired.describe() == "STALL on the 2nd DNLOAD request"
    assert plan.pending == ()
    assert plan.counts[Event.DNLOAD] == 2
    assert Fault(FaultKind.STALL, Event.DNLOAD, nth=13).describe().endswith("13th DNLOAD request")


def test_refused_operations_do_not_count_as_events() -> None:
    rig = make_rig(Stm32F411(faults=[Fault(FaultKind.ERR_ERASE, Event.ERASE, nth=1)]))
    assert rig.erase(0x09000000)[0] == Status.errTARGET  # refused: not an erase
    rig.clrstatus()
    assert rig.erase(0x08000000)[0] == Status.errERASE


@pytest.mark.parametrize(
    ("kind", "gone"),
    [(FaultKind.ERR_WRITE, False), (FaultKind.BUSY_LONGER, True), (FaultKind.POWER_LOSS, True)],
)
def test_leave_faults(kind: FaultKind, gone: bool) -> None:
    rig = make_rig(Stm32F411(faults=[Fault(kind, Event.LEAVE, reconnect_after=None)]))
    rig.set_address(0x08000000)
    rig.dnload(2, None)
    status, _poll, state, _ = rig.getstatus()
    if not gone:
        assert (status, state) == (Status.errWRITE, State.dfuERROR)
        return
    assert state == State.dfuMANIFEST
    rig.clock.sleep(2.0)
    with pytest.raises(usb.core.USBError):
        rig.getstatus()
    assert bool(rig.model.app_starts) is (kind is FaultKind.BUSY_LONGER)
