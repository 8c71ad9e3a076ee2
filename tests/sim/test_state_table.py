"""Every cell of the DFU state table, exercised with raw pyusb control transfers, against a
literal table written from DFU 1.1 and AN3156 (not the simulator's own table)."""

from __future__ import annotations

import errno
from collections.abc import Callable

import pytest
import usb.core

from dfuse.protocol.constants import State, Status
from dfuse.sim import NO_QUIRKS, STM32H7_QUIRKS, Stm32F411
from dfuse.sim.dfu import DFU_TRANSITIONS, DFUSE_TRANSITIONS, RUNTIME_TRANSITIONS, Incoming
from tests.sim.conftest import Rig, make_rig

SET_ADDRESS = b"\x21\x00\x00\x00\x08"


def to_sync(rig: Rig) -> None:
    rig.dnload(0, SET_ADDRESS)


def to_dnload_idle(rig: Rig) -> None:
    rig.set_address(0x08000000)


def to_manifest_sync(rig: Rig) -> None:
    rig.set_address(0x08000000)
    rig.dnload(2, None)


def to_upload_idle(rig: Rig) -> None:
    rig.upload(0, 4)  # the whole command list: not a short frame


def to_error(rig: Rig) -> None:
    """An unknown DfuSe command: dfuDNBUSY, then dfuERROR/errSTALLEDPKT (AN3156)."""
    rig.dnload(0, b"\x77")
    assert rig.getstatus()[2] == State.dfuDNBUSY
    assert rig.getstatus()[:3:2] == (Status.errSTALLEDPKT, State.dfuERROR)


SETUPS: dict[State, Callable[[Rig], None]] = {
    State.dfuIDLE: lambda rig: None,
    State.dfuDNLOAD_SYNC: to_sync,
    State.dfuDNLOAD_IDLE: to_dnload_idle,
    State.dfuMANIFEST_SYNC: to_manifest_sync,
    State.dfuUPLOAD_IDLE: to_upload_idle,
    State.dfuERROR: to_error,
}


def send(rig: Rig, incoming: Incoming) -> None:
    d = rig.dev
    if incoming is Incoming.DETACH:
        d.ctrl_transfer(0x21, 0, 1000, 0, None)
    elif incoming is Incoming.DNLOAD:
        d.ctrl_transfer(0x21, 1, 0, 0, SET_ADDRESS)
    elif incoming is Incoming.DNLOAD_ZERO:
        d.ctrl_transfer(0x21, 1, 2, 0, None)
    elif incoming is Incoming.UPLOAD:
        d.ctrl_transfer(0xA1, 2, 0, 0, 4)
    elif incoming is Incoming.GETSTATUS:
        d.ctrl_transfer(0xA1, 3, 0, 0, 6)
    elif incoming is Incoming.CLRSTATUS:
        d.ctrl_transfer(0x21, 4, 0, 0, None)
    elif incoming is Incoming.GETSTATE:
        d.ctrl_transfer(0xA1, 5, 0, 0, 1)
    else:
        d.ctrl_transfer(0x21, 6, 0, 0, None)


_I = Incoming
_S = State
STALL = "stall"

#: The DFU 1.1 state table (USB DFU 1.1 §A.2, "DFU state transition summary") for the states
#: a DfuSe host reaches, written out cell by cell; a missing cell stalls (and, outside
#: dfuERROR, moves the device to dfuERROR/errSTALLEDPKT). Two AN3156 readings: a zero-length
#: DNLOAD in dfuIDLE is the DfuSe "leave" (AN3156 §6.3 flow chart), and GETSTATUS in
#: dfuDNLOAD-SYNC with a command pending answers dfuDNBUSY (the command then runs).
DFU11: dict[tuple[State, Incoming], State] = {
    (_S.dfuIDLE, _I.DNLOAD): _S.dfuDNLOAD_SYNC,
    (_S.dfuIDLE, _I.DNLOAD_ZERO): _S.dfuMANIFEST_SYNC,  # AN3156 leave
    (_S.dfuIDLE, _I.UPLOAD): _S.dfuUPLOAD_IDLE,
    (_S.dfuIDLE, _I.ABORT): _S.dfuIDLE,
    (_S.dfuIDLE, _I.GETSTATUS): _S.dfuIDLE,
    (_S.dfuIDLE, _I.GETSTATE): _S.dfuIDLE,
    (_S.dfuDNLOAD_SYNC, _I.GETSTATUS): _S.dfuDNBUSY,
    (_S.dfuDNLOAD_SYNC, _I.GETSTATE): _S.dfuDNLOAD_SYNC,
    (_S.dfuDNLOAD_IDLE, _I.DNLOAD): _S.dfuDNLOAD_SYNC,
    (_S.dfuDNLOAD_IDLE, _I.DNLOAD_ZERO): _S.dfuMANIFEST_SYNC,
    (_S.dfuDNLOAD_IDLE, _I.ABORT): _S.dfuIDLE,
    (_S.dfuDNLOAD_IDLE, _I.GETSTATUS): _S.dfuDNLOAD_IDLE,
    (_S.dfuDNLOAD_IDLE, _I.GETSTATE): _S.dfuDNLOAD_IDLE,
    (_S.dfuMANIFEST_SYNC, _I.GETSTATUS): _S.dfuMANIFEST,  # bitManifestationTolerant = 0
    (_S.dfuMANIFEST_SYNC, _I.GETSTATE): _S.dfuMANIFEST_SYNC,
    (_S.dfuUPLOAD_IDLE, _I.UPLOAD): _S.dfuUPLOAD_IDLE,  # a full-length block
    (_S.dfuUPLOAD_IDLE, _I.ABORT): _S.dfuIDLE,
    (_S.dfuUPLOAD_IDLE, _I.GETSTATUS): _S.dfuUPLOAD_IDLE,
    (_S.dfuUPLOAD_IDLE, _I.GETSTATE): _S.dfuUPLOAD_IDLE,
    (_S.dfuERROR, _I.CLRSTATUS): _S.dfuIDLE,
    (_S.dfuERROR, _I.GETSTATUS): _S.dfuERROR,
    (_S.dfuERROR, _I.GETSTATE): _S.dfuERROR,
}

#: ST's ROMs answer CLRSTATUS outside dfuERROR instead of stalling it, and go to
#: dfuERROR/errUNKNOWN (betaflight-configurator 8ac29e0 on an H743: "Issue DFU_CLRSTATUS, which
#: ends up with (14,10) = (errUNKNOWN, dfuERROR)"; 1f5da8e: "Older ST/AT32/GD32 bootloaders
#: tolerate a CLRSTATUS issued outside dfuERROR"). The C5 ROM stalls it, as DFU 1.1 says.
ST_CLRSTATUS = {
    (state, _I.CLRSTATUS): _S.dfuERROR
    for state in (
        _S.dfuIDLE,
        _S.dfuDNLOAD_SYNC,
        _S.dfuDNLOAD_IDLE,
        _S.dfuMANIFEST_SYNC,
        _S.dfuUPLOAD_IDLE,
    )
}

CELLS = [(state, incoming) for state in SETUPS for incoming in Incoming]


def _check_cell(
    rig: Rig, table: dict[tuple[State, Incoming], State], cell: tuple[State, Incoming]
) -> None:
    state, incoming = cell
    SETUPS[state](rig)
    assert rig.model.state is state
    status_before = rig.model.status
    expected = table.get(cell, STALL)
    if expected == STALL:
        with pytest.raises(usb.core.USBError) as info:
            send(rig, incoming)
        assert info.value.errno == errno.EPIPE
        assert info.value.backend_error_code == -9
        assert rig.model.state is State.dfuERROR
        if state is State.dfuERROR:
            assert rig.model.status is status_before
        else:
            assert rig.model.status is Status.errSTALLEDPKT
    else:
        send(rig, incoming)
        assert rig.model.state is expected


@pytest.mark.parametrize("cell", CELLS, ids=[f"{s.name}-{i.name}" for s, i in CELLS])
def test_cell_dfu11(cell: tuple[State, Incoming]) -> None:
    """A board with no quirks follows the literal DFU 1.1 table."""
    _check_cell(make_rig(Stm32F411(quirks=NO_QUIRKS)), DFU11, cell)


@pytest.mark.parametrize("cell", CELLS, ids=[f"{s.name}-{i.name}" for s, i in CELLS])
def test_cell_st_rom(cell: tuple[State, Incoming]) -> None:
    """The F411 row's board: DFU 1.1 with ST's CLRSTATUS answered outside dfuERROR."""
    rig = make_rig()
    _check_cell(rig, {**DFU11, **ST_CLRSTATUS}, cell)
    if cell in ST_CLRSTATUS:
        assert rig.model.status is Status.errUNKNOWN


def test_the_simulator_table_is_the_literal_one() -> None:
    """The simulator's own table agrees with the literal one, cell for cell."""
    for state in SETUPS:
        for incoming in Incoming:
            expected = DFU11.get((state, incoming))
            assert DFUSE_TRANSITIONS.get((state, incoming)) == expected, (state, incoming)


def test_error_state_reports_through_getstatus_and_getstate() -> None:
    rig = make_rig()
    to_error(rig)
    assert rig.getstate() == State.dfuERROR
    assert rig.getstatus() == (Status.errSTALLEDPKT, 0, State.dfuERROR, 0)
    rig.clrstatus()
    assert rig.getstatus() == (0, 0, State.dfuIDLE, 0)


def test_sync_completes_to_dnload_idle() -> None:
    rig = make_rig()
    rig.dnload(0, SET_ADDRESS)
    assert rig.getstatus()[2] == State.dfuDNBUSY
    assert rig.getstate() == State.dfuDNLOAD_SYNC  # block done, not yet acknowledged
    assert rig.getstatus()[2] == State.dfuDNLOAD_IDLE


@pytest.mark.parametrize("incoming", list(Incoming), ids=lambda i: i.name)
def test_manifest_leaves_the_bus(incoming: Incoming) -> None:
    rig = make_rig()
    to_manifest_sync(rig)
    assert rig.getstatus()[2] == State.dfuMANIFEST
    with pytest.raises(usb.core.USBError) as info:
        send(rig, incoming)
    assert info.value.errno == errno.ENODEV


def test_dnbusy_answers_getstatus_with_h7_quirk() -> None:
    rig = make_rig(Stm32F411(quirks=STM32H7_QUIRKS))
    rig.dnload(0, b"\x41\x00\x00\x02\x08")
    first = rig.getstatus()
    assert first[2] == State.dfuDNBUSY
    second = rig.getstatus()  # asked at once: still busy, answered anyway
    assert second[2] == State.dfuDNBUSY
    assert 0 < second[1] <= first[1] * 2
    assert rig.model.state is State.dfuDNBUSY
    rig.clock.sleep(3.0)
    assert rig.getstatus()[2] == State.dfuDNLOAD_IDLE


def test_other_requests_wait_for_a_busy_device() -> None:
    rig = make_rig()
    rig.dnload(0, b"\x41\x00\x00\x00\x08")  # 16 KiB erase, 250..500 ms
    poll = rig.getstatus()[1]
    t0 = rig.clock.now
    assert rig.getstate() == State.dfuDNLOAD_SYNC  # held until the erase ended
    assert rig.clock.now - t0 >= poll / 1000 * 0.99


def test_tables_are_consistent() -> None:
    for table in (DFUSE_TRANSITIONS, DFU_TRANSITIONS):
        assert table[(State.dfuERROR, Incoming.CLRSTATUS)] is State.dfuIDLE
        assert {i for (s, i) in table if s is State.dfuERROR} == {
            Incoming.GETSTATUS,
            Incoming.GETSTATE,
            Incoming.CLRSTATUS,
        }
        assert all(not s.name.startswith("app") for s, _ in table)
    assert all(s.name.startswith("app") for s, _ in RUNTIME_TRANSITIONS)


def test_request_validation_stalls() -> None:
    rig = make_rig()
    with pytest.raises(usb.core.USBError):  # unknown DFU request
        rig.dev.ctrl_transfer(0x21, 9, 0, 0, None)
    assert rig.getstate() == State.dfuERROR
    rig.clrstatus()
    with pytest.raises(usb.core.USBError):  # GETSTATUS as OUT
        rig.dev.ctrl_transfer(0x21, 3, 0, 0, None)
    rig.clrstatus()
    with pytest.raises(usb.core.USBError):  # bigger than wTransferSize
        rig.dev.ctrl_transfer(0x21, 1, 2, 0, bytes(4096))
    rig.clrstatus()
    with pytest.raises(usb.core.USBError):
        rig.dev.ctrl_transfer(0xA1, 2, 2, 0, 4096)
    rig.clrstatus()
    with pytest.raises(usb.core.USBError):  # vendor request
        rig.dev.ctrl_transfer(0x41, 1, 0, 0, None)
    assert rig.model.state is State.dfuIDLE
