"""DfuSe commands, block addressing and memory rules (AN3156), through raw pyusb."""

from __future__ import annotations

import errno

import pytest
import usb.core

from dfuse.protocol.constants import State, Status
from dfuse.sim import SimBackend, Stm32F411
from tests.sim.conftest import Rig, make_rig

OK_IDLE = (0, 0, State.dfuDNLOAD_IDLE, 0)


def _state(rig: Rig) -> State | int:
    return rig.model.state


def test_get_command_list(rig: Rig) -> None:
    assert rig.upload(0, 2048) == b"\x00\x21\x41\x92"
    assert rig.model.state is State.dfuIDLE  # a short frame ends the upload
    assert rig.upload(0, 4) == b"\x00\x21\x41\x92"
    assert _state(rig) is State.dfuUPLOAD_IDLE  # (a call: mypy keeps no narrowing across it)
    rig.abort()
    assert rig.run(0, b"\x00") == OK_IDLE


def test_write_and_read_back_with_block_addressing(rig: Rig) -> None:
    data = bytes(range(256)) * 16 + b"tail"  # 4100 bytes: two full blocks and a short one
    rig.erase(0x08004000)
    rig.write(0x08004000, data)
    assert rig.model.peek(0x08004000, len(data)) == data
    assert rig.read(0x08004000, len(data)) == data


def test_short_last_block_lands_at_block_times_transfer_size(rig: Rig) -> None:
    rig.set_address(0x08000000)
    rig.run(3, b"\x00" * 16)  # block 3 → pointer + 2048, whatever wLength
    assert rig.model.peek(0x08000800, 16) == bytes(16)
    assert rig.model.peek(0x08000000, 16) == b"\xff" * 16


def test_programming_only_clears_bits(rig: Rig) -> None:
    rig.write(0x08000000, b"\x0f\xf0\xff\xff")
    rig.write(0x08000000, b"\xf0\xff\x00\xff")
    assert rig.model.peek(0x08000000, 4) == b"\x00\xf0\x00\xff"
    assert rig.erase(0x08000000) == OK_IDLE
    assert rig.model.peek(0x08000000, 4) == b"\xff" * 4


def test_erase_sector_holding_an_address(rig: Rig) -> None:
    rig.model.poke(0x08020000, b"\x00" * 8)
    rig.model.poke(0x0801FFF8, b"\x00" * 8)
    assert rig.erase(0x08030000) == OK_IDLE  # inside sector 5
    assert rig.model.peek(0x08020000, 8) == b"\xff" * 8
    assert rig.model.peek(0x0801FFF8, 8) == b"\x00" * 8


def test_mass_erase(rig: Rig) -> None:
    rig.model.poke(0x08000000, b"\x00" * 4)
    rig.model.poke(0x0807FFFC, b"\x00" * 4)
    rig.model.poke(0x1FFF7800, b"\x00" * 4)  # OTP survives
    assert rig.run(0, b"\x41") == OK_IDLE
    assert rig.model.peek(0x08000000, 4) == b"\xff" * 4
    assert rig.model.peek(0x0807FFFC, 4) == b"\xff" * 4
    assert rig.model.peek(0x1FFF7800, 4) == b"\x00" * 4


@pytest.mark.parametrize(
    "command",
    [b"\x41\x00\x00\x08\x08", b"\x41\x00\xc0\xff\x1f", b"\x41\x00\x00\x00\x00"],
    ids=["past-flash", "option-bytes", "zero"],
)
def test_bad_erase_address_is_errtarget(rig: Rig, command: bytes) -> None:
    assert rig.run(0, command) == (Status.errTARGET, 0, State.dfuERROR, 0)


def test_bad_write_address_is_errtarget(rig: Rig) -> None:
    rig.set_address(0x0807FFF0)
    assert rig.run(2, b"\x00" * 32) == (Status.errTARGET, 0, State.dfuERROR, 0)
    rig.clrstatus()
    rig.set_address(0x30000000)
    assert rig.run(2, b"\x00" * 4)[0] == Status.errTARGET


def test_bad_read_address_stalls_with_errtarget(rig: Rig) -> None:
    rig.set_address(0x40000000)
    rig.abort()
    with pytest.raises(usb.core.USBError) as info:
        rig.upload(2, 64)
    assert info.value.errno == errno.EPIPE
    assert rig.getstatus()[:3] == (Status.errTARGET, 0, State.dfuERROR)


@pytest.mark.parametrize(
    "command", [b"\x55", b"\x21\x00\x00", b"\x41\x00\x00\x00", b"\x92\x00", b"\x00\x01"]
)
def test_unknown_or_malformed_command_is_errstalledpkt(rig: Rig, command: bytes) -> None:
    assert rig.run(0, command) == (Status.errSTALLEDPKT, 0, State.dfuERROR, 0)


def test_block_one_is_not_used(rig: Rig) -> None:
    assert rig.run(1, b"\x00" * 4)[0] == Status.errSTALLEDPKT
    rig.clrstatus()
    with pytest.raises(usb.core.USBError):
        rig.upload(1, 4)


def test_reads_need_idle_or_upload_idle(rig: Rig) -> None:
    rig.set_address(0x08000000)  # dfuDNLOAD-IDLE
    with pytest.raises(usb.core.USBError):
        rig.upload(2, 16)
    assert rig.model.state is State.dfuERROR


def test_read_protection(rig: Rig) -> None:
    m = rig.model
    m.poke(0x08000000, b"\x12\x34")
    m.set_read_protection(1)
    assert m.rdp_level == 1
    assert rig.set_address(0x08000000) == OK_IDLE  # Set Address still works
    rig.abort()
    with pytest.raises(usb.core.USBError):
        rig.upload(2, 16)
    assert rig.getstatus()[0] == Status.errVENDOR
    rig.clrstatus()
    assert rig.erase(0x08000000)[0] == Status.errVENDOR
    rig.clrstatus()
    assert rig.run(0, b"\x41")[0] == Status.errVENDOR
    rig.clrstatus()
    rig.set_address(0x08000000)
    assert rig.run(2, b"\x00")[0] == Status.errVENDOR
    assert m.peek(0x08000000, 2) == b"\x12\x34"


def test_write_protected_sector_is_silently_unchanged(rig: Rig) -> None:
    m = rig.model
    m.set_write_protection([1])
    assert m.is_write_protected(1)
    assert not m.is_write_protected(0)
    m.poke(0x08004000, b"\x00" * 4)
    assert rig.erase(0x08004000) == OK_IDLE
    assert m.peek(0x08004000, 4) == b"\x00" * 4
    # a write across sectors 0 and 1 changes only sector 0
    rig.erase(0x08000000)
    rig.set_address(0x08003800)
    assert rig.run(2, b"\x11" * 2048)[0] == 0
    rig.set_address(0x08004000)
    rig.run(2, b"\x22" * 16)
    assert m.peek(0x08003800, 2048) == b"\x11" * 2048
    assert m.peek(0x08004000, 4) == b"\x00" * 4
    assert m.peek(0x08004004, 12) == b"\xff" * 12
    # a mass erase is refused as a whole while a sector is protected
    assert rig.run(0, b"\x41") == OK_IDLE
    assert m.peek(0x08003800, 4) == b"\x11" * 4


def reenumerate(rig: Rig) -> usb.core.Device:
    rig.clock.sleep(1.0)
    dev = usb.core.find(idVendor=0x0483, idProduct=0xDF11, backend=rig.backend)
    assert dev is not None
    return dev


def test_option_byte_write_resets_the_device(rig: Rig) -> None:
    m = rig.model
    new = bytearray(m.option_bytes)
    new[8] = 0xFE  # protect sector 0
    rig.dev.set_interface_altsetting(0, 1)
    rig.set_address(0x1FFFC000)
    rig.dnload(2, bytes(new))
    assert rig.getstatus()[2] == State.dfuDNBUSY
    with pytest.raises(usb.core.USBError) as info:  # no second GETSTATUS answer
        rig.getstatus()
    assert info.value.errno == errno.ENODEV
    dev = reenumerate(rig)
    assert dev.address != rig.dev.address
    assert m.option_bytes == bytes(new)
    assert m.is_write_protected(0)
    assert m.boots == 2


def test_option_bytes_must_be_written_whole(rig: Rig) -> None:
    rig.set_address(0x1FFFC000)
    assert rig.run(2, b"\xaa" * 8)[0] == Status.errTARGET


def test_rdp_regression_through_option_bytes_mass_erases(rig: Rig) -> None:
    m = rig.model
    m.poke(0x08000000, b"\x00" * 4)
    m.set_read_protection(1)
    new = bytearray(m.option_bytes)
    new[1] = 0xAA
    rig.set_address(0x1FFFC000)
    rig.dnload(2, bytes(new))
    poll = rig.getstatus()[1]
    assert poll >= 4000  # includes the mass erase
    rig.clock.sleep(poll / 1000)
    reenumerate(rig)
    assert m.rdp_level == 0
    assert m.peek(0x08000000, 4) == b"\xff" * 4


def test_read_unprotect(rig: Rig) -> None:
    m = rig.model
    m.poke(0x08000000, b"\x00" * 4)
    m.poke(0x1FFF7800, b"\x00")
    m.set_read_protection(1)
    rig.dnload(0, b"\x92")
    status, poll, state, _ = rig.getstatus()
    assert (status, state) == (0, State.dfuDNBUSY)
    rig.clock.sleep(poll / 1000)
    with pytest.raises(usb.core.USBError):
        rig.getstatus()
    reenumerate(rig)
    assert m.rdp_level == 0
    assert m.peek(0x08000000, 4) == b"\xff" * 4
    assert m.peek(0x1FFF7800, 1) == b"\x00"  # OTP is never erased


def test_rdp_level_2_disables_the_bootloader(rig: Rig) -> None:
    new = bytearray(rig.model.option_bytes)
    new[1] = 0xCC
    rig.set_address(0x1FFFC000)
    rig.dnload(2, bytes(new))
    rig.getstatus()
    rig.clock.sleep(2.0)
    assert usb.core.find(idVendor=0x0483, backend=rig.backend) is None


def test_otp_lock_bytes_and_no_erase(rig: Rig) -> None:
    rig.dev.set_interface_altsetting(0, 2)
    m = rig.model
    rig.set_address(0x1FFF7800)
    rig.run(2, b"\x5a" * 32 + b"\xa5" * 32)
    rig.set_address(0x1FFF7A00)
    rig.run(2, b"\x00")  # lock block 0
    rig.set_address(0x1FFF7800)
    rig.run(2, b"\x00" * 64)
    assert m.peek(0x1FFF7800, 32) == b"\x5a" * 32  # locked: unchanged
    assert m.peek(0x1FFF7820, 32) == bytes(32)
    assert rig.erase(0x1FFF7800)[0] == Status.errTARGET


def test_device_feature_area(rig: Rig) -> None:
    rig.dev.set_interface_altsetting(0, 3)
    rig.set_address(0xFFFF0000)
    rig.run(2, b"\x01\x02\x03\x04")
    assert rig.read(0xFFFF0000, 4) == b"\x01\x02\x03\x04"


def test_leave_runs_the_application() -> None:
    rig = make_rig()
    rig.set_address(0x08004000)
    rig.dnload(2, None)
    status, _poll, state, _ = rig.getstatus()
    assert (status, state) == (0, State.dfuMANIFEST)
    with pytest.raises(usb.core.USBError) as info:
        rig.getstatus()
    assert info.value.errno == errno.ENODEV
    start = rig.model.running_app
    assert start is not None
    assert start.address == 0x08004000
    assert usb.core.find(idVendor=0x0483, backend=rig.backend) is None
    rig.model.reset_to_bootloader()
    assert usb.core.find(idVendor=0x0483, backend=rig.backend) is not None
    assert rig.model.running_app is None


def test_peek_poke_any_memory() -> None:
    m = Stm32F411(serial="X")
    assert m.peek(0x1FFFC000, 16)[1] == 0xAA
    assert len(m.peek(0x1FFF7A10, 12)) == 12
    assert m.peek(0x1FFF7A10, 12) != Stm32F411(serial="Y").peek(0x1FFF7A10, 12)
    m.poke(0x1FFF0000, b"ROM")
    assert m.peek(0x1FFF0000, 3) == b"ROM"
    m.poke(0x20000000, b"\x01")
    with pytest.raises(ValueError, match="not inside"):
        m.peek(0x60000000, 4)
    with pytest.raises(ValueError, match="not inside"):
        m.poke(0x0807FFFF, b"\x00\x00")
    with pytest.raises(ValueError, match="flash_size"):
        Stm32F411(flash_size=1024)


def test_firmware_check_starts_in_errfirmware() -> None:
    m = Stm32F411(firmware_check=True)
    rig = make_rig(m)
    assert rig.getstatus()[:3] == (Status.errFIRMWARE, 0, State.dfuERROR)
    rig.clrstatus()
    rig.write(0x08000000, b"\x00\x00\x02\x20")
    m.reset_to_bootloader()
    assert m.state is State.dfuIDLE


def test_requests_are_counted_and_logged() -> None:
    model = Stm32F411()
    backend = SimBackend([model])
    assert sum(model.requests.values()) == 0  # enumeration is not a host request
    dev = usb.core.find(idVendor=0x0483, backend=backend)
    assert dev is not None
    dev.ctrl_transfer(0xA1, 3, 0, 0, 6)
    dev.ctrl_transfer(0xA1, 5, 0, 0, 1)
    assert model.requests["GETSTATUS"] == 1
    assert model.requests["GETSTATE"] == 1
    assert [r.name for r in model.request_log] == ["GETSTATUS", "GETSTATE"]


def test_bootloader_returns_after_leave_when_asked() -> None:
    rig = make_rig(Stm32F411(return_after_leave=2.0))
    rig.dnload(2, None)
    rig.getstatus()
    rig.clock.sleep(0.5)
    assert usb.core.find(idVendor=0x0483, backend=rig.backend) is None
    rig.clock.sleep(2.0)
    assert usb.core.find(idVendor=0x0483, backend=rig.backend) is not None
    assert len(rig.model.app_starts) == 1
    with pytest.raises(ValueError, match="return_after_leave"):
        Stm32F411(return_after_leave=-1)
