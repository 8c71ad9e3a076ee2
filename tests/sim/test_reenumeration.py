"""A handle opened before the device left the bus stays dead after the device is back.

On libusb a handle is bound to one enumeration of a device: after a power loss or a
reset the device comes back under a new address and every transfer on the old
handle fails with LIBUSB_ERROR_NO_DEVICE (ENODEV), however soon it returned.
"""

from __future__ import annotations

import errno

import pytest
import usb.core

from dfuse.protocol.constants import State
from dfuse.sim import Event, Fault, FaultKind, Stm32F411
from dfuse.sim.usbmodel import Gone, SetupPacket
from tests.sim.conftest import make_rig

ERASE_SECTOR_0 = b"\x41\x00\x00\x00\x08"


def test_old_handle_is_gone_even_when_the_device_is_already_back() -> None:
    fault = Fault(FaultKind.POWER_LOSS, Event.ERASE, nth=1, progress=0.3, reconnect_after=0.05)
    rig = make_rig(Stm32F411(faults=[fault]))
    rig.dnload(0, ERASE_SECTOR_0)
    rig.getstatus()  # dfuDNBUSY: the erase runs
    rig.clock.sleep(2.0)  # power lost ~30% into the erase, back 50 ms later
    with pytest.raises(usb.core.USBError) as info:
        rig.getstatus()
    assert info.value.errno == errno.ENODEV
    assert rig.model.connected  # it is back: the old handle is dead all the same
    assert rig.model.boots == 2
    # the new enumeration opens and talks normally
    again = usb.core.find(idVendor=0x0483, idProduct=0xDF11, backend=rig.backend)
    assert again is not None
    state = bytes(again.ctrl_transfer(0xA1, 5, 0, 0, 1))[0]
    assert state == State.dfuIDLE


def test_old_handle_is_gone_for_standard_requests_too() -> None:
    rig = make_rig()
    rig.model.power_cycle(0.01)
    rig.clock.sleep(0.1)
    with pytest.raises(usb.core.USBError) as info:
        rig.dev.ctrl_transfer(0x80, 0x06, 0x0100, 0, 18)  # GET_DESCRIPTOR(device)
    assert info.value.errno == errno.ENODEV
    assert rig.model.connected


def test_a_request_waiting_on_an_operation_dies_with_a_power_loss() -> None:
    # the device reboots at once (reconnect_after=0) while GETSTATE waits for the erase:
    # the request must fail, not be answered by the rebooted device
    fault = Fault(FaultKind.POWER_LOSS, Event.ERASE, nth=1, progress=0.5, reconnect_after=0.0)
    model = Stm32F411(faults=[fault])
    rig = make_rig(model)
    rig.dnload(0, ERASE_SECTOR_0)
    rig.getstatus()
    with pytest.raises(Gone):
        model.control_transfer(SetupPacket(0xA1, 5, 0, 0, 1))  # GETSTATE waits while busy
    assert model.connected
    assert model.boots == 2


def test_the_model_checks_the_generation_after_catching_up_with_the_clock() -> None:
    # what a front door relies on: another thread may move the shared clock between its
    # own look at the device and the transfer; the model checks again after its poll
    rig = make_rig()
    model = rig.model
    old = model.generation
    model.power_cycle(0.05)
    rig.clock.sleep(0.1)  # the clock moves on; nobody polls the device
    assert not model.connected  # it has not caught up yet: back on the bus when polled
    get_state = SetupPacket(0xA1, 5, 0, 0, 1)
    with pytest.raises(Gone, match="re-enumerated"):
        model.control_transfer(get_state, generation=old)
    # a caller without a handle (no generation) talks to the device as it is now
    assert model.control_transfer(get_state) == bytes([State.dfuIDLE])
    assert model.control_transfer(get_state, generation=model.generation) == bytes([State.dfuIDLE])
