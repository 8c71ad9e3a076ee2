"""Option bytes, write/read protection and OTP through DfuDevice, checked against the
simulated F411's memory (peek) and request counters."""

from __future__ import annotations

import pytest

from dfuse.device import DfuDevice
from dfuse.errors import (
    DeviceGoneError,
    DeviceStatusError,
    ProtocolError,
    SafetyError,
    VerifyError,
)
from dfuse.file.model import DfuSeFile, Element, Target
from dfuse.optionbytes import (
    FACTORY_DEFAULT,
    OTP_ADDRESS,
    OTP_LOCK_ADDRESS,
    BorLevel,
    OptionBytes,
    OtpArea,
)
from dfuse.planning import flows
from dfuse.sim import Event, Fault, FaultKind, PlainDfuDevice, SimBackend, Stm32F411

BASE = 0x08000000
SECTOR1 = BASE + 0x4000
OPTION_BYTES = 0x1FFFC000


def _open(chip: Stm32F411) -> tuple[DfuDevice, SimBackend]:
    backend = SimBackend([chip])
    return DfuDevice.open(backend=backend), backend


def _traffic(chip: Stm32F411) -> int:
    return sum(chip.requests.values())


def test_protect_sectors_resets_reconnects_and_the_sector_really_stays() -> None:
    chip = Stm32F411(serial="WRP")
    chip.poke(SECTOR1, b"\x11" * 16)
    dev, backend = _open(chip)
    address_before = chip.address
    options = dev.protect_sectors([1])
    assert options.write_protected == frozenset({1})
    assert chip.is_write_protected(1)
    assert not chip.is_write_protected(0)
    assert chip.address != address_before  # it re-enumerated
    assert dev.alt == 0
    assert dev.read_option_bytes() == options
    # an erase and a write of sector 1 leave it unchanged: verify catches it
    with pytest.raises(VerifyError) as info:
        dev.download(b"\x22" * 0x8000, address=BASE)
    assert info.value.address == SECTOR1
    assert chip.peek(SECTOR1, 16) == b"\x11" * 16
    assert chip.peek(BASE, 16) == b"\x22" * 16  # sector 0 was written
    options = dev.unprotect_sectors([1])
    assert options.write_protected == frozenset()
    dev.download(b"\x22" * 0x8000, address=BASE)
    assert chip.peek(SECTOR1, 16) == b"\x22" * 16
    assert backend.clock.now > 1.0  # two resets at 0.5 s each


def test_change_option_bytes_no_change_does_not_reset() -> None:
    chip = Stm32F411()
    dev, _backend = _open(chip)
    current = dev.read_option_bytes()
    before = chip.requests["DNLOAD"]
    assert dev.change_option_bytes(current) == current
    assert chip.requests["DNLOAD"] == before + 1  # the Set Address of the read only
    changed = dev.change_option_bytes(current.with_bor_level(BorLevel.LEVEL_2))
    assert changed.bor_level is BorLevel.LEVEL_2
    assert OptionBytes.parse(chip.option_bytes).bor_level is BorLevel.LEVEL_2


def test_sector_numbers_checked_before_traffic() -> None:
    chip = Stm32F411()
    dev, _backend = _open(chip)
    before = _traffic(chip)
    with pytest.raises(ValueError, match=r"0\.\.7, got 8"):
        dev.protect_sectors([8])
    with pytest.raises(ValueError, match="got -1"):
        dev.unprotect_sectors([-1])
    assert _traffic(chip) == before


def test_rdp2_refused_before_any_usb_traffic() -> None:
    chip = Stm32F411()
    dev, _backend = _open(chip)
    current = dev.read_option_bytes()
    level2 = current.with_rdp(2, allow_level_2=True)
    before = _traffic(chip)
    with pytest.raises(SafetyError, match="allow_permanent_rdp2=True"):
        dev.change_option_bytes(level2, confirm=True)
    with pytest.raises(SafetyError, match="allow_permanent_rdp2=True"):
        dev.set_read_protection(2, confirm=True)
    with pytest.raises(SafetyError, match="allow_permanent_rdp2=True"):
        dev.write_option_bytes(level2, confirm=True)
    assert _traffic(chip) == before
    assert chip.rdp_level == 0


def test_rdp2_with_the_flag_disables_the_bootloader_for_good() -> None:
    chip = Stm32F411()
    dev, backend = _open(chip)
    result = dev.set_read_protection(2, allow_permanent_rdp2=True)
    assert int(result.rdp_level) == 2
    backend.clock.sleep(5)
    backend.poll()
    assert chip.rdp_level == 2
    with pytest.raises(DeviceGoneError):
        dev.reconnect(1.0)


def test_rdp1_blocks_reads_and_unprotect_erases_flash_but_not_otp() -> None:
    chip = Stm32F411()
    chip.poke(BASE, b"\xab" * 64)
    chip.poke(OTP_ADDRESS, b"\x01" * 32)
    dev, _backend = _open(chip)
    options = dev.set_read_protection(1)
    assert int(options.rdp_level) == 1
    assert chip.rdp_level == 1
    with pytest.raises(DeviceStatusError, match="errVENDOR"):
        dev.upload(BASE, 64)
    with pytest.raises(DeviceStatusError, match="errVENDOR"):
        dev.read_otp()
    assert chip.peek(BASE, 64) == b"\xab" * 64  # still there, just not readable
    with pytest.raises(SafetyError, match="confirm=True"):
        dev.read_unprotect(reconnect=True)
    after = dev.read_unprotect(confirm=True, reconnect=True)
    assert after is not None
    assert int(after.rdp_level) == 0
    assert chip.peek(BASE, 64) == b"\xff" * 64  # really erased
    assert chip.peek(OTP_ADDRESS, 32) == b"\x01" * 32  # OTP is never erased
    assert dev.upload(BASE, 4) == b"\xff" * 4


def test_rdp_1_to_0_through_option_bytes_needs_confirm_and_mass_erases() -> None:
    chip = Stm32F411()
    chip.poke(BASE, b"\x00" * 8)
    chip.set_read_protection(1)
    dev, _backend = _open(chip)
    before = chip.requests["DNLOAD"]
    with pytest.raises(SafetyError, match="mass-erases"):
        dev.set_read_protection(0)
    assert chip.requests["DNLOAD"] == before + 1  # the option bytes were only read
    options = dev.set_read_protection(0, confirm=True)
    assert int(options.rdp_level) == 0
    assert chip.peek(BASE, 8) == b"\xff" * 8


def test_option_write_that_did_not_happen_is_a_verify_error() -> None:
    # the device drops off the bus instead of writing, and comes back unchanged
    chip = Stm32F411(
        faults=[Fault(FaultKind.DISCONNECT, Event.OPTION_WRITE, nth=1, reconnect_after=0.2)]
    )
    dev, _backend = _open(chip)
    current = dev.read_option_bytes()
    with pytest.raises(VerifyError, match="0x1FFFC008: expected 0xFB, found 0xFF"):
        dev.change_option_bytes(current.with_write_protection({2}))
    assert not chip.is_write_protected(2)


def test_reconnect_times_out_when_the_device_stays_away() -> None:
    chip = Stm32F411(
        faults=[Fault(FaultKind.DISCONNECT, Event.OPTION_WRITE, nth=1, reconnect_after=None)]
    )
    dev, _backend = _open(chip)
    current = dev.read_option_bytes()
    with pytest.raises(DeviceGoneError, match="re-appear within 2 s"):
        dev.change_option_bytes(current.with_write_protection({2}), wait_s=2.0)
    assert not chip.is_write_protected(2)


def test_otp_read_write_lock() -> None:
    chip = Stm32F411()
    dev, _backend = _open(chip)
    area = dev.read_otp()
    assert area == OtpArea.blank()
    assert dev.alt == 0
    data = bytes(range(32))
    area = dev.write_otp(3, data)
    assert area.blocks[3] == data
    assert not area.is_locked(3)
    assert chip.peek(OTP_ADDRESS + 3 * 32, 32) == data
    # bits may still go 1 -> 0
    area = dev.write_otp(3, bytes(b & 0xF0 for b in data))
    assert chip.peek(OTP_ADDRESS + 3 * 32, 32) == bytes(b & 0xF0 for b in data)
    # ... never 0 -> 1: refused before any DNLOAD
    before = chip.requests["DNLOAD"]
    with pytest.raises(SafetyError, match=r"byte 0 at 0x1FFF7860 is 0x00 and cannot become 0xFF"):
        dev.write_otp(3, b"\xff" * 32)
    assert chip.requests["DNLOAD"] == before + 1  # the read's Set Address only
    # locking needs confirmation, refused before any traffic
    total = _traffic(chip)
    with pytest.raises(SafetyError, match="confirm=True"):
        dev.lock_otp(3)
    with pytest.raises(SafetyError, match="confirm=True"):
        dev.write_otp(4, b"\x00" * 32, lock=True)
    assert _traffic(chip) == total
    area = dev.lock_otp(3, confirm=True)
    assert area.is_locked(3)
    assert chip.peek(OTP_LOCK_ADDRESS + 3, 1) == b"\x00"
    assert dev.lock_otp(3, confirm=True) == area  # already locked: nothing to do
    # a locked block: refused before any DNLOAD, and it stays as it is
    before = chip.requests["DNLOAD"]
    with pytest.raises(SafetyError, match="block 3 at 0x1FFF7860: it is locked"):
        dev.write_otp(3, b"\x00" * 32)
    assert chip.requests["DNLOAD"] == before + 1
    assert chip.peek(OTP_ADDRESS + 3 * 32, 32) == bytes(b & 0xF0 for b in data)
    # write and lock in one go
    area = dev.write_otp(5, b"\x42" * 32, lock=True, confirm=True)
    assert area.blocks[5] == b"\x42" * 32
    assert area.locked == frozenset({3, 5})
    # OTP survives a mass erase
    dev.mass_erase()
    assert chip.peek(OTP_ADDRESS + 5 * 32, 32) == b"\x42" * 32


def test_otp_argument_checks() -> None:
    chip = Stm32F411()
    dev, _backend = _open(chip)
    before = _traffic(chip)
    with pytest.raises(ValueError, match=r"0\.\.15"):
        dev.write_otp(16, b"\x00" * 32)
    with pytest.raises(ValueError, match="32 bytes, got 3"):
        dev.write_otp(0, b"abc")
    with pytest.raises(ValueError, match=r"0\.\.15"):
        dev.lock_otp(-1, confirm=True)
    assert _traffic(chip) == before


def test_otp_write_interrupted_by_an_unplug() -> None:
    chip = Stm32F411(faults=[Fault(FaultKind.DISCONNECT, Event.WRITE, nth=1, reconnect_after=None)])
    dev, _backend = _open(chip)
    with pytest.raises(DeviceGoneError):
        dev.write_otp(0, b"\x00" * 32)
    assert chip.peek(OTP_ADDRESS, 32) == b"\xff" * 32


def test_otp_write_that_does_not_stick_is_a_verify_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    chip = Stm32F411()
    chip.poke(OTP_LOCK_ADDRESS, b"\x00")  # block 0 locked behind the host's back
    dev, _backend = _open(chip)
    real = flows.read_otp
    stale = [OtpArea.blank()]  # what the host saw just before someone locked the block

    def read_otp(dev: flows.Facts) -> flows.Flow[OtpArea]:
        if stale:
            return stale.pop()
        return (yield from real(dev))

    monkeypatch.setattr(flows, "read_otp", read_otp)
    with pytest.raises(VerifyError, match="0x1FFF7800: expected 0x00, found 0xFF"):
        dev.write_otp(0, b"\x00" * 32)
    assert chip.peek(OTP_ADDRESS, 32) == b"\xff" * 32  # the simulator ignored the write


def test_no_otp_or_option_bytes_on_a_plain_dfu_device() -> None:
    backend = SimBackend([PlainDfuDevice()])
    dev = DfuDevice.open(backend=backend)
    with pytest.raises(ProtocolError, match="no 'OTP Memory' alternate setting"):
        dev.read_otp()
    with pytest.raises(ProtocolError, match="no 'Option Bytes' alternate setting"):
        dev.change_option_bytes(OptionBytes.parse(bytes(FACTORY_DEFAULT)))
    dev.close()


def test_reconnect_gives_up_on_a_device_that_never_settles(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    chip = Stm32F411()
    dev, _backend = _open(chip)
    attempts: list[int] = []

    def adopt(transport: object) -> None:
        attempts.append(1)
        raise DeviceGoneError("gone again", request="GETSTATUS")

    monkeypatch.setattr(dev, "_adopt", adopt)
    with pytest.raises(DeviceGoneError, match="did not come back in a usable state within 1 s"):
        dev.reconnect(1.0)
    assert len(attempts) > 1  # it retried


def test_read_unprotect_that_did_not_happen_is_reported() -> None:
    chip = Stm32F411(
        faults=[Fault(FaultKind.DISCONNECT, Event.READ_UNPROTECT, nth=1, reconnect_after=0.1)]
    )
    chip.poke(BASE, b"\x00" * 4)
    chip.set_read_protection(1)
    dev, _backend = _open(chip)
    with pytest.raises(ProtocolError, match="reports read protection level 1, expected 0"):
        dev.read_unprotect(confirm=True, reconnect=True)
    assert chip.peek(BASE, 4) == b"\x00" * 4


# --------------------------------------------------------------------------- files


def _file(*targets: tuple[int, int, bytes]) -> DfuSeFile:
    return DfuSeFile(
        [Target(alt, "t", [Element(address, data)]) for alt, address, data in targets],
        vendor_id=0xFFFF,
        product_id=0xFFFF,
    )


def test_option_bytes_in_a_file_need_a_flag_and_go_last() -> None:
    chip = Stm32F411()
    dev, _backend = _open(chip)
    protected = OptionBytes.parse(chip.option_bytes).with_write_protection([7])
    image = _file((1, OPTION_BYTES, protected.to_bytes()), (0, BASE, b"\x33" * 64))
    before = _traffic(chip)
    with pytest.raises(SafetyError, match="allow_option_bytes=True"):
        dev.download(image)
    with pytest.raises(SafetyError, match="allow_option_bytes=True"):
        dev.plan(image)
    assert _traffic(chip) == before
    plans = dev.download(image, allow_option_bytes=True)
    assert [p.alt for p in plans] == [0, 1]  # the option bytes last: they reset the device
    assert chip.peek(BASE, 64) == b"\x33" * 64
    assert chip.is_write_protected(7)
    assert dev.read_option_bytes() == protected  # reopened in place
    # unchanged option bytes, incremental: nothing written, no reset
    address = chip.address
    (plan,) = dev.download(
        _file((1, OPTION_BYTES, protected.to_bytes())), allow_option_bytes=True, incremental=True
    )
    assert plan.plan.writes == ()
    assert chip.address == address


def test_option_bytes_file_checks() -> None:
    chip = Stm32F411()
    dev, _backend = _open(chip)
    current = OptionBytes.parse(chip.option_bytes)
    raw = bytearray(current.to_bytes())
    raw[1] = 0xCC  # RDP level 2
    before = _traffic(chip)
    with pytest.raises(SafetyError, match="allow_permanent_rdp2=True"):
        dev.download(_file((1, OPTION_BYTES, bytes(raw))), allow_option_bytes=True)
    with pytest.raises(
        SafetyError, match=r"one 16-byte block at 0x1FFFC000; the image has 4 bytes"
    ):
        dev.download(_file((1, OPTION_BYTES, bytes(4))), allow_option_bytes=True)
    assert _traffic(chip) == before
    assert chip.rdp_level == 0


def test_rdp_1_to_0_in_a_file_is_refused() -> None:
    chip = Stm32F411()
    chip.poke(BASE, b"\x00" * 4)
    chip.set_read_protection(1)
    dev, _backend = _open(chip)
    level0 = OptionBytes.parse(chip.option_bytes).with_rdp(0)
    dnloads = chip.requests["DNLOAD"]
    with pytest.raises(SafetyError, match=r"change_option_bytes\(\.\.\., confirm=True\)"):
        dev.download(_file((1, OPTION_BYTES, level0.to_bytes())), allow_option_bytes=True)
    assert chip.requests["DNLOAD"] == dnloads + 1  # the read's Set Address only
    assert chip.rdp_level == 1
    assert chip.peek(BASE, 4) == b"\x00" * 4


def test_otp_in_a_file() -> None:
    chip = Stm32F411()
    dev, _backend = _open(chip)
    before = _traffic(chip)
    with pytest.raises(SafetyError, match="allow_otp=True"):
        dev.download(_file((2, OTP_ADDRESS, b"\x00" * 32)))
    with pytest.raises(SafetyError, match="locks block 1 for good; pass allow_otp_lock=True"):
        dev.download(_file((2, OTP_LOCK_ADDRESS, b"\xff\x00")), allow_otp=True)
    assert _traffic(chip) == before
    dev.download(_file((2, OTP_ADDRESS + 32, b"\x5a" * 32)), allow_otp=True)
    assert chip.peek(OTP_ADDRESS + 32, 32) == b"\x5a" * 32
    dnloads = chip.requests["DNLOAD"]
    with pytest.raises(SafetyError, match="0x1FFF7820: it holds 0x5A and cannot become 0xFF"):
        dev.download(_file((2, OTP_ADDRESS + 32, b"\xff" * 32)), allow_otp=True)
    assert chip.requests["DNLOAD"] == dnloads + 1  # the read's Set Address, no write
    dev.download(_file((2, OTP_LOCK_ADDRESS + 1, b"\x00")), allow_otp=True, allow_otp_lock=True)
    assert dev.read_otp().locked == frozenset({1})
    dnloads = chip.requests["DNLOAD"]
    with pytest.raises(SafetyError, match="block 1 at 0x1FFF7820: it is locked"):
        dev.download(_file((2, OTP_ADDRESS + 32, b"\x00" * 32)), allow_otp=True)
    assert chip.requests["DNLOAD"] == dnloads + 1  # the read's Set Address, no write
    assert chip.peek(OTP_ADDRESS + 32, 32) == b"\x5a" * 32
    # the same bytes into a locked block change nothing: allowed
    dev.download(_file((2, OTP_ADDRESS + 32, b"\x5a" * 32)), allow_otp=True)


def test_option_bytes_file_with_leave() -> None:
    chip = Stm32F411()
    chip.poke(BASE, (0x20001000).to_bytes(4, "little") + b"\x01\x02\x00\x08")
    dev, _backend = _open(chip)
    protected = OptionBytes.parse(chip.option_bytes).with_write_protection([6])
    dev.download(
        _file((1, OPTION_BYTES, protected.to_bytes())), allow_option_bytes=True, leave=True
    )
    assert chip.is_write_protected(6)
    assert chip.running_app is not None  # it left DFU mode after coming back
