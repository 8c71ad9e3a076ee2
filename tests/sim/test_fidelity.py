"""Fidelity audit: each PROTOCOL.md / DFU 1.1 / AN3156 fact, checked with raw pyusb transfers.

Every test names the fact it checks (docs/simulator.md, "Fidelity", lists them with their
sources). Only raw control transfers and the model's back door are used: no host code.
"""

from __future__ import annotations

import errno

import pytest
import usb.core
import usb.util

from dfuse.protocol.constants import State, Status
from dfuse.sim import PlainDfuDevice, SimBackend, Stm32F411, Timing
from dfuse.sim.usbmodel import SetupPacket, Stall
from tests.sim.conftest import Rig, make_rig
from tests.sim.test_state_table import SETUPS

COMMANDS = b"\x00\x21\x41\x92"


def stalls(call: object, *args: object) -> usb.core.USBError:
    assert callable(call)
    with pytest.raises(usb.core.USBError) as info:
        call(*args)
    assert info.value.errno == errno.EPIPE
    return info.value


def gone(call: object, *args: object) -> None:
    assert callable(call)
    with pytest.raises(usb.core.USBError) as info:
        call(*args)
    assert info.value.errno == errno.ENODEV


# ---------------------------------------------------------------- UPLOAD block 0 (Get)


@pytest.mark.parametrize(
    ("length", "state"),
    [
        (1, State.dfuUPLOAD_IDLE),
        (4, State.dfuUPLOAD_IDLE),
        (5, State.dfuIDLE),
        (2048, State.dfuIDLE),
    ],
)
def test_get_command_content_length_and_short_frame(length: int, state: int) -> None:
    """AN3156: UPLOAD block 0 returns 00 21 41 92; DFU 1.1 §A.2.10: a reply shorter than
    wLength (a short frame) ends the upload (→ dfuIDLE), a full one stays dfuUPLOAD-IDLE."""
    rig = make_rig()
    assert rig.upload(0, length) == COMMANDS[:length]
    assert rig.getstate() == state
    assert rig.getstatus() == (Status.OK, 0, state, 0)


def test_get_command_works_from_upload_idle_and_abort_ends_it(rig: Rig) -> None:
    """dfuUPLOAD-IDLE accepts further UPLOADs; ABORT → dfuIDLE (DFU 1.1 §A.2.10)."""
    rig.upload(0, 2)
    assert rig.upload(0, 4) == COMMANDS
    assert rig.getstate() == State.dfuUPLOAD_IDLE
    rig.abort()
    assert rig.getstatus() == (Status.OK, 0, State.dfuIDLE, 0)


# ---------------------------------------------------------------- zero-length DNLOAD


def test_zero_length_dnload_in_idle_is_a_leave() -> None:
    """AN3156 download flow: dfuIDLE or dfuDNLOAD-IDLE, wLength 0 → Leave DFU; GETSTATUS
    answers dfuMANIFEST, then the device is gone and runs from the pointer (0x08000000)."""
    rig = make_rig()
    rig.dnload(2, None)
    assert rig.getstate() == State.dfuMANIFEST_SYNC
    status, poll, state, _ = rig.getstatus()
    assert (status, state) == (Status.OK, State.dfuMANIFEST)
    assert poll == 5  # Timing.manifest
    gone(rig.getstatus)
    start = rig.model.running_app
    assert start is not None
    assert start.address == 0x08000000


def test_leave_completes_without_further_requests() -> None:
    """After the dfuMANIFEST reply the device leaves on its own (no request needed)."""
    rig = make_rig()
    rig.dnload(0, None)  # dfu-util uses block 2, any block number will do
    assert rig.getstatus()[2] == State.dfuMANIFEST
    assert rig.backend.run_until(lambda: not rig.model.connected, timeout=0.1)
    assert usb.core.find(idVendor=0x0483, backend=rig.backend) is None


def test_plain_dfu_zero_length_dnload_in_idle_stalls() -> None:
    """DFU 1.1 §A.2.3: in dfuIDLE a DNLOAD with wLength 0 stalls → dfuERROR/errSTALLEDPKT
    (the plain device follows the spec; only DfuSe treats it as a leave)."""
    backend = SimBackend([PlainDfuDevice()])
    dev = usb.core.find(idVendor=0x1209, backend=backend)
    assert dev is not None
    stalls(dev.ctrl_transfer, 0x21, 1, 0, 0, None)
    reply = bytes(dev.ctrl_transfer(0xA1, 3, 0, 0, 6))
    assert (reply[0], reply[4]) == (Status.errSTALLEDPKT, State.dfuERROR)


# ---------------------------------------------------------------- GETSTATE / ABORT / wrong state


@pytest.mark.parametrize("state", list(SETUPS), ids=lambda s: s.name)
def test_getstate_answers_in_every_state_and_changes_nothing(state: State) -> None:
    """DFU 1.1: GETSTATE is accepted in every DFU-mode state and causes no transition."""
    rig = make_rig()
    SETUPS[state](rig)
    assert rig.getstate() == state
    assert rig.getstate() == state
    assert rig.model.state is state


def test_getstate_while_busy_is_held_until_the_operation_ends(rig: Rig) -> None:
    """A busy ROM does not answer (NAK) until the flash operation ends; then dfuDNLOAD-SYNC."""
    rig.dnload(0, b"\x41\x00\x00\x01\x08")  # erase the 64 KiB sector 4
    poll = rig.getstatus()[1]
    t0 = rig.clock.now
    assert rig.getstate() == State.dfuDNLOAD_SYNC
    assert rig.clock.now - t0 >= poll / 1000 * 0.99


def test_abort_in_idle_is_accepted(rig: Rig) -> None:
    """DFU 1.1 §A.2.3: ABORT in dfuIDLE → dfuIDLE, no error."""
    rig.abort()
    assert rig.getstatus() == (Status.OK, 0, State.dfuIDLE, 0)


def test_upload_in_dnload_idle_stalls(rig: Rig) -> None:
    """AN3156: reads need dfuIDLE or dfuUPLOAD-IDLE; in dfuDNLOAD-IDLE an UPLOAD stalls and
    the device reports dfuERROR/errSTALLEDPKT."""
    rig.set_address(0x08000000)
    stalls(rig.upload, 2, 16)
    assert rig.getstatus() == (Status.errSTALLEDPKT, 0, State.dfuERROR, 0)


def test_dnload_in_upload_idle_stalls(rig: Rig) -> None:
    """AN3156: DNLOAD needs dfuIDLE or dfuDNLOAD-IDLE."""
    rig.upload(2, 16)
    stalls(rig.dnload, 2, b"\x00" * 4)
    assert rig.getstatus()[:3] == (Status.errSTALLEDPKT, 0, State.dfuERROR)


def test_error_state_accepts_only_getstatus_getstate_clrstatus(rig: Rig) -> None:
    """PROTOCOL.md: in dfuERROR only CLRSTATUS (→ dfuIDLE), GETSTATUS and GETSTATE are
    accepted; others stall and the status is kept."""
    assert rig.run(0, b"\x41\x00\x00\x08\x08")[0] == Status.errTARGET
    for call, args in ((rig.abort, ()), (rig.upload, (0, 4)), (rig.dnload, (0, b"\x00"))):
        stalls(call, *args)
        assert rig.getstatus() == (Status.errTARGET, 0, State.dfuERROR, 0)
    rig.clrstatus()
    assert rig.getstatus() == (Status.OK, 0, State.dfuIDLE, 0)


# ---------------------------------------------------------------- request validation


def test_request_to_another_interface_never_reaches_dfu(rig: Rig) -> None:
    """A DFU request whose wIndex is not the DFU interface (0): the host stack refuses it
    (libusb/usbfs: no such interface to claim, ENOENT); sent anyway, the device stalls it.
    Either way the DFU state machine is left alone."""
    rig.set_address(0x08000000)
    with pytest.raises(usb.core.USBError) as info:
        rig.dev.ctrl_transfer(0xA1, 3, 0, 1, 6)
    assert info.value.errno == errno.ENOENT
    with pytest.raises(Stall):
        rig.model.control_transfer(SetupPacket(0x21, 6, 0, 1, 0))
    assert rig.getstatus() == (Status.OK, 0, State.dfuDNLOAD_IDLE, 0)


@pytest.mark.parametrize("length", [0, 1, 5, 7, 64])
def test_getstatus_with_a_wlength_other_than_6_is_an_error(rig: Rig, length: int) -> None:
    """DFU 1.1 §6.1.2: GETSTATUS has wLength 6. Any other length is a request error (a
    stall, dfuERROR/errSTALLEDPKT), never a shortened reply; the pending command does not
    start."""
    rig.dnload(0, b"\x21\x00\x40\x00\x08")
    stalls(lambda: rig.dev.ctrl_transfer(0xA1, 3, 0, 0, length))
    assert rig.getstatus() == (Status.errSTALLEDPKT, 0, State.dfuERROR, 0)
    assert rig.model.pointer == 0x08000000


def test_dnload_longer_than_transfer_size_stalls(rig: Rig) -> None:
    """DFU 1.1: wLength must not exceed wTransferSize (2048): the request stalls."""
    rig.set_address(0x08000000)
    stalls(rig.dnload, 2, b"\x00" * 2049)
    assert rig.getstatus()[:3] == (Status.errSTALLEDPKT, 0, State.dfuERROR)
    assert rig.model.peek(0x08000000, 4) == b"\xff" * 4


@pytest.mark.parametrize(
    "command",
    [b"\x21\x00\x00\x00", b"\x21\x00\x40\x00\x08\x00", b"\x21"],
    ids=["3-byte-address", "5-byte-address", "no-address"],
)
def test_set_address_with_a_wrong_length_is_errstalledpkt(rig: Rig, command: bytes) -> None:
    """AN3156: Set Address is exactly 0x21 + u32; anything else → dfuERROR/errSTALLEDPKT,
    and the pointer is unchanged."""
    assert rig.run(0, command) == (Status.errSTALLEDPKT, 0, State.dfuERROR, 0)
    assert rig.model.pointer == 0x08000000


# ---------------------------------------------------------------- addressing


def test_erase_with_an_address_inside_a_sector_erases_that_whole_sector(rig: Rig) -> None:
    """AN3156: 0x41 + address erases the sector holding the address (here the last byte of
    the 64 KiB sector 4); the neighbours are untouched."""
    m = rig.model
    for addr in (0x0800FFFC, 0x08010000, 0x0801FFFC, 0x08020000):
        m.poke(addr, b"\x00" * 4)
    assert rig.erase(0x0801FFFF) == (Status.OK, 0, State.dfuDNLOAD_IDLE, 0)
    assert m.peek(0x08010000, 4) == m.peek(0x0801FFFC, 4) == b"\xff" * 4
    assert m.peek(0x0800FFFC, 4) == m.peek(0x08020000, 4) == b"\x00" * 4


@pytest.mark.parametrize("address", [0x08080000, 0x20000000, 0x1FFF0000, 0xFFFF0000])
def test_erase_outside_flash_is_errtarget(rig: Rig, address: int) -> None:
    """PROTOCOL.md: bad addresses report errTARGET (past the end of flash, SRAM, system
    memory, the device feature area: nothing there is erasable)."""
    assert rig.erase(address) == (Status.errTARGET, 0, State.dfuERROR, 0)


def test_read_across_the_end_of_flash_is_errtarget(rig: Rig) -> None:
    """A read that runs past the last flash byte fails (stall, then dfuERROR/errTARGET);
    the same read ending at the last byte works."""
    rig.model.poke(0x0807FFF0, bytes(range(16)))
    assert rig.read(0x0807FFF0, 16) == bytes(range(16))
    rig.set_address(0x0807FFF0)
    rig.abort()
    stalls(rig.upload, 2, 32)
    assert rig.getstatus() == (Status.errTARGET, 0, State.dfuERROR, 0)


def test_default_pointer_is_flash_base_and_comes_back_after_reset(rig: Rig) -> None:
    """AN3156: without a Set Address the pointer is 0x08000000 (also after a reset)."""
    rig.model.poke(0x08000000, b"\x12\x34\x56\x78")
    assert rig.upload(2, 4) == b"\x12\x34\x56\x78"
    rig.abort()
    rig.set_address(0x08004000)
    rig.model.reset_to_bootloader()
    assert rig.model.pointer == 0x08000000


def test_block_number_is_16_bit_and_never_wraps(rig: Rig) -> None:
    """wBlockNum is a 16-bit wValue: block 257 (> 8 bits) lands at pointer + 255 × 2048;
    block 0xFFFF is pointer + 65533 × 2048 (outside flash: errTARGET), not a wrapped block."""
    rig.set_address(0x08000000)
    assert rig.run(257, b"\xa5" * 16) == (Status.OK, 0, State.dfuDNLOAD_IDLE, 0)
    assert rig.model.peek(0x0807F800, 16) == b"\xa5" * 16
    assert rig.run(0xFFFF, b"\x00" * 4)[:3] == (Status.errTARGET, 0, State.dfuERROR)
    assert rig.model.peek(0x08000000 + (0xFFFF % 256 - 2) * 2048, 4) == b"\xff" * 4


def test_short_last_upload_block_is_addressed_by_transfer_size(rig: Rig) -> None:
    """PROTOCOL.md: UPLOAD block n reads at pointer + (n − 2) × 2048 whatever wLength."""
    rig.model.poke(0x08000800, b"\x77" * 8)
    rig.set_address(0x08000000)
    rig.abort()
    assert rig.upload(3, 8) == b"\x77" * 8


# ---------------------------------------------------------------- timing (bwPollTimeout)


def busy_poll(rig: Rig, block: int, data: bytes | None) -> int:
    rig.dnload(block, data)
    status, poll, state, _ = rig.getstatus()
    assert (status, state) == (Status.OK, State.dfuDNBUSY)
    rig.clock.sleep(poll / 1000)
    return poll


def test_poll_timeouts_follow_the_timing_table() -> None:
    """bwPollTimeout is the operation's duration (PROTOCOL.md timing, typical values with
    spread 0): Set Address 0 ms, 2048-byte write 512 × 16 µs → 9 ms, sector erases
    250/550/1000 ms, mass erase 4000 ms, option bytes 250 ms, Read Unprotect 4000 ms."""
    rig = make_rig(Stm32F411(timing=Timing(spread=0.0)))
    assert busy_poll(rig, 0, b"\x21\x00\x00\x00\x08") == 0
    rig.getstatus()
    assert busy_poll(rig, 2, b"\x00" * 2048) == 9
    rig.getstatus()
    for address, expected in ((0x08004000, 250), (0x08010000, 550), (0x08040000, 1000)):
        assert busy_poll(rig, 0, b"\x41" + address.to_bytes(4, "little")) == expected
        rig.getstatus()
    assert busy_poll(rig, 0, b"\x41") == 4000
    rig.getstatus()
    rig.set_address(0x1FFFC000)
    assert busy_poll(rig, 2, rig.model.option_bytes) == 250
    gone(rig.getstatus)  # reset right after the option-byte write
    fresh = make_rig(Stm32F411(timing=Timing(spread=0.0)))
    assert busy_poll(fresh, 0, b"\x92") == 4000
    gone(fresh.getstatus)


def test_option_byte_write_gives_no_second_getstatus_even_when_asked_early() -> None:
    """AN3156: after the dfuDNBUSY reply the device writes the option bytes and resets; a
    GETSTATUS sent before the poll timeout is not answered either (held, then ENODEV)."""
    rig = make_rig()
    rig.set_address(0x1FFFC000)
    rig.dnload(2, rig.model.option_bytes)
    assert rig.getstatus()[2] == State.dfuDNBUSY
    gone(rig.getstate)
    assert rig.model.boots == 1
    rig.clock.sleep(1.0)
    rig.backend.poll()
    assert rig.model.boots == 2


# ---------------------------------------------------------------- OTP, firmware check


def test_otp_programming_only_clears_bits_and_lock_bytes_stick() -> None:
    """PROTOCOL.md: OTP programming clears bits only, 0x00 in a lock byte locks its block,
    and a locked block cannot be unlocked by writing 0xFF to its lock byte."""
    rig = make_rig()
    rig.dev.set_interface_altsetting(0, 2)
    m = rig.model
    rig.write(0x1FFF7840, b"\x0f" * 4)
    rig.write(0x1FFF7840, b"\xf0\xff\xf0\xff")
    assert m.peek(0x1FFF7840, 4) == b"\x00\x0f\x00\x0f"
    rig.write(0x1FFF7A02, b"\x00")  # lock block 2 (0x1FFF7840)
    rig.write(0x1FFF7A02, b"\xff")
    assert m.peek(0x1FFF7A02, 1) == b"\x00"
    rig.write(0x1FFF7840, b"\x00" * 4)
    assert m.peek(0x1FFF7840, 4) == b"\x00\x0f\x00\x0f"


@pytest.mark.parametrize(
    ("stack_pointer", "valid"),
    [
        (0x20020000, True),  # top of the 128 KiB SRAM: the usual initial SP
        (0x20001000, True),
        (0x20020004, False),
        (0x1FFFFFFC, False),
        (0xFFFFFFFF, False),  # erased flash
    ],
)
def test_firmware_check_validity_is_an_sram_stack_pointer(stack_pointer: int, valid: bool) -> None:
    """PROTOCOL.md (observed on F4 ROMs): with no valid application the first GETSTATUS
    reports dfuERROR/errFIRMWARE; the sim calls an application valid when its initial
    stack pointer (first word of flash) lies within SRAM 0x20000000..0x20020000."""
    model = Stm32F411(firmware_check=True)
    model.poke(0x08000000, stack_pointer.to_bytes(4, "little"))
    model.reset_to_bootloader()
    rig = make_rig(model)
    expected = (0, 0, State.dfuIDLE) if valid else (Status.errFIRMWARE, 0, State.dfuERROR)
    assert rig.getstatus()[:3] == expected


# ---------------------------------------------------------------- descriptors


def test_device_and_configuration_descriptor_fields(rig: Rig) -> None:
    """PROTOCOL.md: bcdDevice 0x2200, bMaxPacketSize0 64, self-powered (0xC0), 100 mA
    (bMaxPower 50), interface 0xFE/0x01/0x02 without endpoints."""
    d = rig.dev
    assert (d.bcdDevice, d.bMaxPacketSize0, d.bDeviceClass) == (0x2200, 64, 0)
    cfg = d.get_active_configuration()
    assert (cfg.bmAttributes, cfg.bMaxPower, cfg.bNumInterfaces) == (0xC0, 50, 1)
    for intf in cfg:
        assert (intf.bInterfaceClass, intf.bInterfaceSubClass) == (0xFE, 0x01)
        assert (intf.bInterfaceProtocol, intf.bNumEndpoints) == (0x02, 0)


def test_interface_strings_keep_their_double_spaces(rig: Rig) -> None:
    """PROTOCOL.md: the iInterface strings are byte-exact, including the double spaces."""
    raw = bytes(rig.dev.ctrl_transfer(0x80, 6, 0x0300 | 4, 0x0409, 255))
    text = raw[2:].decode("utf-16-le")
    assert text == "@Internal Flash  /0x08000000/04*016Kg,01*064Kg,03*128Kg"
    assert raw[0] == 2 + 2 * len(text)
    product = usb.util.get_string(rig.dev, rig.dev.iProduct)
    assert product == "STM32  BOOTLOADER"
    assert usb.util.get_string(rig.dev, 5) == "@Option Bytes  /0x1FFFC000/01*016 e"
