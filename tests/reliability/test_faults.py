"""Faults on the wire: the fault matrix and random fault schedules against ``download``.

The verdicts are taken from the simulator's memory (``peek``), never from the host.
``scripts/fault_schedules.py`` runs the full 1,000-schedule campaign.
"""

from __future__ import annotations

import functools
import random

import pytest

from dfuse.device import DfuDevice
from dfuse.errors import DeviceGoneError
from dfuse.protocol.constants import State, Status
from dfuse.sim import Event, Fault, FaultKind
from tests.reliability import faultlab
from tests.reliability.faultlab import (
    BASE,
    MATRIX_KINDS,
    PHASES,
    Cell,
    MatrixKind,
    Phase,
    Rig,
    ScheduleSummary,
    Verdict,
    attempt,
    run_option_schedule,
    run_schedules,
)


@functools.cache
def _matrix() -> dict[tuple[MatrixKind, Phase], Cell]:
    return {(c.kind, c.phase): c for c in faultlab.run_matrix()}


def _cells() -> list[tuple[MatrixKind, Phase]]:
    image = faultlab._matrix_image()
    marks = faultlab._landmarks(faultlab._reference_log(image))
    return [
        (k, p) for k in MATRIX_KINDS for p in PHASES if faultlab.faults_for(k, p, marks) is not None
    ]


CELLS = _cells()
IDS = [f"{k.value}-{p.value}".replace(" ", "_") for k, p in CELLS]


def test_matrix_covers_every_kind_and_phase() -> None:
    assert {k for k, _ in CELLS} == set(MatrixKind)
    assert {p for _, p in CELLS} == set(Phase)
    assert len(CELLS) == len(_matrix()) == 68


@pytest.mark.parametrize(("kind", "phase"), CELLS, ids=IDS)
def test_matrix_never_lies_and_always_recovers(kind: MatrixKind, phase: Phase) -> None:
    cell = _matrix()[(kind, phase)]
    assert cell.fired > 0, f"the fault never fired: {cell.faults}"
    assert cell.run.verdict is not Verdict.SILENT_CORRUPTION, cell.line()
    assert cell.run.verdict is not Verdict.ESCAPED, cell.line()
    assert cell.run.verdict in (Verdict.SUCCESS, Verdict.CLEAR_ERROR, Verdict.UNCLEAR_ERROR)
    assert cell.recovered, cell.line()


@pytest.mark.parametrize(("kind", "phase"), CELLS, ids=IDS)
def test_matrix_errors_name_the_fault_and_the_phase(kind: MatrixKind, phase: Phase) -> None:
    cell = _matrix()[(kind, phase)]
    assert cell.run.verdict in (Verdict.SUCCESS, Verdict.CLEAR_ERROR), cell.line()


@pytest.mark.parametrize(
    ("kind", "phase"),
    [(k, p) for k, p in CELLS if _matrix()[(k, p)].recovered_same_object is not None],
)
def test_matrix_same_object_downloads_again(kind: MatrixKind, phase: Phase) -> None:
    """When the board stayed on the bus, the DfuDevice that saw the fault can download again."""
    assert _matrix()[(kind, phase)].recovered_same_object is True


@pytest.mark.parametrize("kind", [FaultKind.STALL, FaultKind.TIMEOUT, FaultKind.DISCONNECT])
def test_a_failed_abort_during_verify_names_the_operation(kind: FaultKind) -> None:
    rig = Rig.build([Fault(kind, Event.ABORT, nth=1)])
    image = random.Random(3).randbytes(5000)
    run, _ = attempt(rig, None, BASE, image, words=(faultlab.OPERATION_WORDS,))
    assert rig.chip.fault_log, "the fault did not fire"
    assert run.verdict is Verdict.CLEAR_ERROR, run.error


def test_matrix_faults_really_damage_the_memory() -> None:
    """The matrix is not vacuous: a power loss mid-write leaves neither image in place."""
    image = faultlab._matrix_image()
    rig = Rig.build([Fault(FaultKind.POWER_LOSS, Event.WRITE, nth=2, progress=0.5)])
    run, _ = attempt(rig, None, faultlab.MATRIX_ADDRESS, image)
    assert run.verdict is not Verdict.SUCCESS
    now = rig.chip.peek(faultlab.MATRIX_ADDRESS, len(image))
    assert now != image
    assert now != rig.old[0x3000 : 0x3000 + len(image)]
    assert now[:2048] == image[:2048]  # the first block made it, the second half did


def test_harness_catches_a_silent_corruption(monkeypatch: pytest.MonkeyPatch) -> None:
    """A download that returns without writing is reported as a silent corruption."""
    monkeypatch.setattr(DfuDevice, "download", lambda self, *a, **k: ())
    rig = Rig.build([])
    run, _ = attempt(rig, None, BASE, b"\x00" * 16)
    assert run.verdict is Verdict.SILENT_CORRUPTION


def test_reboot_into_dferror_after_power_loss_is_cleared_on_reopen() -> None:
    faults = [
        Fault(FaultKind.POWER_LOSS, Event.WRITE, nth=1, progress=0.3, reconnect_after=0.2),
        Fault(FaultKind.BOOT_ERROR, Event.BOOT, nth=2),
    ]
    rig = Rig.build(faults)
    image = random.Random(1).randbytes(5000)
    run, _ = attempt(rig, None, BASE, image)
    assert run.error_type == "DeviceGoneError"
    rig.settle()
    assert rig.chip.state == State.dfuERROR
    with DfuDevice.open(backend=rig.backend) as dev:
        assert dev.initial_status is not None
        assert dev.initial_status.status == Status.errFIRMWARE
        dev.download(image, address=BASE)
    assert rig.holds(BASE, image)


def test_a_handle_from_before_a_power_loss_sees_the_device_gone() -> None:
    # power lost 30% into the first erase (~75 ms); the board is back 50 ms later, well
    # before the host's next GETSTATUS (250 ms): the old handle must see ENODEV, as on libusb
    fault = Fault(FaultKind.POWER_LOSS, Event.ERASE, nth=1, progress=0.3, reconnect_after=0.05)
    rig = Rig.build([fault])
    image = random.Random(2).randbytes(2049)
    run, _ = attempt(rig, None, BASE + 0x4000, image)
    assert rig.chip.boots == 2  # it did reboot
    # today: ProtocolError "expected dfuDNLOAD_IDLE, the device reports dfuIDLE"
    assert run.error_type == DeviceGoneError.__name__, run.error


def test_random_schedules_in_ci() -> None:
    summary = run_schedules(range(120))
    assert summary.silent_corruptions == 0, summary.text()
    assert summary.escaped == 0, summary.text()
    assert summary.unrecovered == 0, summary.text()
    # the schedules exercise both outcomes and most of their faults fire
    assert summary.succeeded > 5
    assert summary.clear_errors > 50
    assert summary.faults_fired > summary.faults_scheduled // 2


def test_option_byte_schedules_in_ci() -> None:
    """change_option_bytes and download(allow_option_bytes=True) under random faults:
    the option bytes are what was asked, or a DfuseError says otherwise."""
    summary = ScheduleSummary()
    for seed in range(60):
        summary.add(run_option_schedule(seed))
    assert summary.ok, summary.text()
    assert summary.succeeded > 5
    assert summary.clear_errors > 20


@pytest.mark.parametrize("kind", [FaultKind.POWER_LOSS, FaultKind.DISCONNECT])
@pytest.mark.parametrize("what", ["option bytes", "otp"])
def test_a_failed_protected_read_keeps_its_own_error(kind: FaultKind, what: str) -> None:
    rig = Rig.build([Fault(kind, Event.READ, nth=1)])
    with DfuDevice.open(backend=rig.backend) as dev:
        read = dev.read_otp if what == "otp" else dev.read_option_bytes
        with pytest.raises(DeviceGoneError) as info:
            read()
    assert rig.chip.fault_log, "the fault did not fire"
    assert "reading 0x" in str(info.value), str(info.value)
