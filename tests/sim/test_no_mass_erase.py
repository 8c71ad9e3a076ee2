"""A ROM without a mass erase (the part row's ``mass_erase_command``, STM32L0): the DfuSe
``0x41`` without an address is refused at its second GETSTATUS with the row's status and
the flash is unchanged (judged by ``peek``), at the level of raw requests; the page
erase still works; a part whose row has the command still mass-erases."""

from __future__ import annotations

import usb.core

from dfuse.parts import get
from dfuse.protocol.constants import State, Status
from dfuse.sim import board
from tests.sim.test_part_boards import clear_boot_error, rig_for


def test_the_l0_row_says_its_rom_has_no_mass_erase_with_evidence() -> None:
    command = get("stm32l072").flash.mass_erase_command
    assert not command.supported
    assert command.refusal == "errTARGET"
    assert command.estimate  # no log quotes the status
    assert any("F_NO_ME" in e for e in command.evidence)
    assert any("stm32loader/pull/65" in e for e in command.evidence)


def test_the_l0_board_refuses_a_mass_erase_and_keeps_its_flash() -> None:
    model = board("stm32l072")
    image = bytes(range(1, 129)) * 4
    model.poke(0x08000000, image)
    model.poke(0x0802FF80, image[:128])
    rig = rig_for(model)
    clear_boot_error(rig)
    rig.dnload(0, b"\x41")
    status, _poll, state, _ = rig.getstatus()
    assert (status, state) == (Status.OK, State.dfuDNBUSY)  # executed at this GETSTATUS
    status, _poll, state, _ = rig.getstatus()
    assert (status, state) == (Status.errTARGET, State.dfuERROR)
    assert model.peek(0x08000000, len(image)) == image
    assert model.peek(0x0802FF80, 128) == image[:128]
    rig.clrstatus()
    assert rig.getstatus()[2] == State.dfuIDLE
    # the page erase is the way to erase it (to 0x00 on the L0)
    assert rig.erase(0x08000080)[:3:2] == (Status.OK, State.dfuDNLOAD_IDLE)
    assert model.peek(0x08000080, 128) == bytes(128)
    assert model.peek(0x08000000, 128) == image[:128]


def test_a_rom_with_the_command_mass_erases() -> None:
    model = board("stm32l476")
    assert get("stm32l476").flash.mass_erase_command.supported
    model.poke(0x08000000, b"\x12" * 16)
    rig = rig_for(model)
    clear_boot_error(rig)
    rig.dnload(0, b"\x41")
    _status, poll, state, _ = rig.getstatus()
    assert state == State.dfuDNBUSY
    rig.clock.sleep(poll / 1000 + 1)
    for _ in range(50):
        try:
            status, poll, state, _ = rig.getstatus()
        except usb.core.USBError:  # an L4 stalls a GETSTATUS while busy: retried
            rig.clock.sleep(0.05)
            continue
        if state != State.dfuDNBUSY:
            break
        rig.clock.sleep(poll / 1000)
    assert (status, state) == (Status.OK, State.dfuDNLOAD_IDLE)
    assert model.peek(0x08000000, 16) == b"\xff" * 16
