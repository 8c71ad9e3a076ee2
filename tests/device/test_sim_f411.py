"""DfuDevice against the simulated STM32F411 bootloader, through pyusb and PyUsbTransport."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from dfuse.data import example_hex_path
from dfuse.device import DfuDevice, Phase
from dfuse.errors import (
    DeviceBusyError,
    DeviceGoneError,
    DeviceNotFoundError,
    DeviceStatusError,
    SafetyError,
    StallError,
    TransferTimeoutError,
    UsageError,
    VerifyError,
)
from dfuse.file import load
from dfuse.file.model import DfuSeFile, Element, Target
from dfuse.planning.record import Dnload
from dfuse.protocol.constants import State, Status
from dfuse.sim import (
    GD32_QUIRKS,
    STM32C0_QUIRKS,
    STM32F405_QUIRKS,
    STM32H7_QUIRKS,
    Event,
    Fault,
    FaultKind,
    SimBackend,
    Stm32F411,
    Stm32F411App,
)
from dfuse.transport.base import DeviceMode
from dfuse.transport.discovery import find_devices

BASE = 0x08000000


def _open(chip: Stm32F411, **kwargs: object) -> tuple[DfuDevice, SimBackend]:
    backend = SimBackend([chip])
    return DfuDevice.open(backend=backend, **kwargs), backend  # type: ignore[arg-type]


def _state(chip: Stm32F411) -> State:
    """The simulated device's state (a function call, so that mypy does not narrow it)."""
    return chip.state


def _image(size: int, seed: int = 1) -> bytes:
    return bytes((i * 7 + seed + (i >> 8)) & 0xFF for i in range(size))


# --------------------------------------------------------------------------- the seed flow


def test_seed_flow_hex_to_dfu_download_verify_upload_leave(tmp_path: Path) -> None:
    hex_file = load(example_hex_path())
    assert isinstance(hex_file, DfuSeFile)
    dfu_path = tmp_path / "blinky.dfu"
    DfuSeFile(hex_file.targets, vendor_id=0x0483, product_id=0xDF11).save(dfu_path)
    image = load(dfu_path)
    assert isinstance(image, DfuSeFile)

    chip = Stm32F411(serial="SEED")
    backend = SimBackend([chip])
    events: list[tuple[Phase, int, int]] = []
    with DfuDevice.open(vid=0x0483, pid=0xDF11, backend=backend) as dev:
        assert dev.clock is backend.clock
        assert dev.initial_status is not None
        assert dev.initial_status.state == State.dfuIDLE
        plans = dev.download(image, progress=lambda *e: events.append(e))
        (target_plan,) = plans
        assert [e.index for e in target_plan.plan.erases] == [0, 1, 2, 4]  # type: ignore[union-attr]
        dev.verify(image)
        # Upload into a file that equals the image.
        elements = [
            Element(e.address, dev.upload(e.address, len(e.data)))
            for e in image.targets[0].elements
        ]
        back = DfuSeFile(
            [Target(0, image.targets[0].name, elements)], vendor_id=0x0483, product_id=0xDF11
        )
        back.save(tmp_path / "back.dfu")
        assert (tmp_path / "back.dfu").read_bytes() == dfu_path.read_bytes()
        dev.leave()
    for element in image.targets[0].elements:
        assert chip.peek(element.address, len(element.data)) == element.data
    # Memory outside the image stays erased (the gap in sector 4, sector 3 untouched).
    assert chip.peek(BASE + 0xC000, 0x4000) == b"\xff" * 0x4000
    backend.poll()
    assert [s.address for s in chip.app_starts] == [BASE]
    phases = [e[0] for e in events]
    assert phases.index(Phase.ERASE) < phases.index(Phase.WRITE) < phases.index(Phase.VERIFY)
    assert events[-1] == (Phase.LEAVE, 1, 1) or Phase.LEAVE not in phases
    last_write = [e for e in events if e[0] is Phase.WRITE][-1]
    assert last_write[1] == last_write[2] == target_plan.plan.write_bytes


def test_download_raw_bytes_with_leave_and_progress() -> None:
    chip = Stm32F411()
    dev, backend = _open(chip)
    data = _image(70000)
    events: list[tuple[Phase, int, int]] = []
    dev.download(data, address=BASE + 0x4000, leave=True, progress=lambda *e: events.append(e))
    assert chip.peek(BASE + 0x4000, len(data)) == data
    assert events[-1] == (Phase.LEAVE, 1, 1)
    assert (Phase.VERIFY, len(data), len(data)) in events
    backend.poll()
    assert chip.app_starts[-1].address == BASE
    with pytest.raises(UsageError, match="closed"):
        dev.status() if False else dev.upload(BASE, 4)


def test_ff_blocks_are_not_sent_and_still_verified() -> None:
    chip = Stm32F411()
    dev, _ = _open(chip)
    data = b"\x11" * 2048 + b"\xff" * 8192 + b"\x22" * 10
    before = chip.requests["DNLOAD"]
    (plan,) = dev.download(data, address=BASE)
    # erase, set address, two blocks, and the Set Address of the read-back
    assert chip.requests["DNLOAD"] - before == 1 + 1 + 2 + 1
    assert plan.plan.skipped_bytes == 8192
    assert chip.peek(BASE, len(data)) == data


def test_dry_run_makes_no_usb_traffic_and_refuses_unsafe_writes() -> None:
    chip = Stm32F411()
    dev, _ = _open(chip)
    before = sum(chip.requests.values())
    (plan,) = dev.plan(b"\x00" * 10, address=BASE)
    assert "erase sector 0 at 0x08000000" in str(plan)
    with pytest.raises(SafetyError, match="outside the device's memory layout"):
        dev.download(b"\x00" * 16, address=BASE + 0x80000 - 8)
    with pytest.raises(SafetyError, match="outside"):
        dev.download(DfuSeFile([Target(0, "x", [Element(0x20000000, b"\x00")])]))
    with pytest.raises(ValueError, match="address="):
        dev.download(b"\x00")
    assert sum(chip.requests.values()) == before


def test_alt_setting_by_name_and_upload_alt() -> None:
    chip = Stm32F411()
    dev, _ = _open(chip, alt="Option Bytes")
    assert dev.alt == 1
    target = dev.upload_alt()
    assert target.alt_setting == 1
    assert target.name == "Option Bytes"
    assert target.elements[0].data == chip.peek(0x1FFFC000, 16)
    otp = dev.upload_alt("@OTP Memory /0x1FFF7800/01*512 e,01*016 e")
    assert [(e.address, len(e.data)) for e in otp.elements] == [(0x1FFF7800, 528)]
    dev.select_alt(0)
    assert dev.layout is not None
    assert dev.layout.label == "Internal Flash"
    with pytest.raises(DeviceNotFoundError, match="no alternate setting 'SRAM'") as info:
        dev.select_alt("SRAM")
    assert "0: '@Internal Flash" in str(info.value)
    dev.close()


def test_erase_and_mass_erase() -> None:
    chip = Stm32F411()
    chip.poke(BASE, b"\x00" * 16)
    chip.poke(BASE + 0x20000, b"\x00" * 16)
    dev, _ = _open(chip)
    layout = dev.layout
    assert layout is not None
    events: list[tuple[Phase, int, int]] = []
    dev.erase([BASE + 0x20010, layout.sectors[5]], progress=lambda *e: events.append(e))
    assert events == [(Phase.ERASE, 0x20000, 0x20000)]  # sector 5 once
    assert chip.peek(BASE + 0x20000, 16) == b"\xff" * 16
    assert chip.peek(BASE, 16) == b"\x00" * 16
    dev.erase("all")
    assert chip.peek(BASE, 16) == b"\xff" * 16
    with pytest.raises(ValueError, match="'all'"):
        dev.erase("everything")
    with pytest.raises(SafetyError, match="in no sector"):
        dev.erase([0x20000000])
    dev.select_alt(1)
    with pytest.raises(SafetyError, match="not erasable"):
        dev.erase([0x1FFFC000])


def test_read_unprotect_needs_confirmation() -> None:
    chip = Stm32F411()
    chip.poke(BASE, b"\x00" * 4)
    chip.set_read_protection(1)
    dev, backend = _open(chip)
    with pytest.raises(SafetyError, match="confirm=True"):
        dev.read_unprotect()
    with pytest.raises(DeviceStatusError, match=r"reading 0x08000000 \(4 bytes\): errVENDOR"):
        dev.upload(BASE, 4)
    dev.read_unprotect(confirm=True)
    backend.clock.sleep(10)
    backend.poll()
    assert chip.rdp_level == 0
    assert chip.peek(BASE, 4) == b"\xff" * 4
    with DfuDevice.open(backend=backend) as again:
        assert again.upload(BASE, 4) == b"\xff" * 4


# --------------------------------------------------------------------------- opening


def test_open_clears_dferror_from_a_missing_application() -> None:
    chip = Stm32F411(firmware_check=True)
    dev, _ = _open(chip)
    assert dev.initial_status is not None
    assert dev.initial_status.state == State.dfuERROR
    assert dev.initial_status.status == Status.errFIRMWARE
    assert chip.state == State.dfuIDLE
    assert chip.requests["CLRSTATUS"] == 1


def test_open_aborts_an_interrupted_transfer() -> None:
    chip = Stm32F411()
    dev, backend = _open(chip)
    dev.set_address(BASE)  # leaves dfuDNLOAD-IDLE behind
    dev.close()
    assert _state(chip) is State.dfuDNLOAD_IDLE
    again = DfuDevice.open(backend=backend)
    assert again.initial_status is not None
    assert again.initial_status.state == State.dfuDNLOAD_IDLE
    assert chip.state == State.dfuIDLE
    again.upload(BASE, 2048)
    again.transport.control_in(2, 3, 16)  # an UPLOAD left half done: dfuUPLOAD-IDLE
    again.close()
    assert _state(chip) is State.dfuUPLOAD_IDLE
    with DfuDevice.open(backend=backend) as third:
        assert third.initial_status is not None
        assert third.initial_status.state == State.dfuUPLOAD_IDLE
        assert third.get_state() == State.dfuIDLE


def test_selection_among_several_devices() -> None:
    a = Stm32F411(serial="AAA", port_numbers=(1,))
    b = Stm32F411(serial="BBB", port_numbers=(2, 3))
    backend = SimBackend([a, b])
    found = find_devices(backend=backend)
    assert [d.serial for d in found] == ["AAA", "BBB"]
    assert [d.path for d in found] == ["1-1", "1-2.3"]
    assert all(d.mode is DeviceMode.DFU for d in found)
    assert find_devices(backend=backend, ids=[(0x0483, None)], serial="BBB")[0].path == "1-2.3"
    assert find_devices(backend=backend, vid=0x1234) == []
    assert find_devices(backend=backend, ids=[(0x1234, 1), (0x0483, 0xDF11)], path="1-1")[
        0
    ].serial == ("AAA")
    with pytest.raises(DeviceNotFoundError, match="2 DFU devices match") as info:
        DfuDevice.open(backend=backend)
    assert "serial='AAA'" in str(info.value)
    assert len(info.value.candidates) == 2
    with pytest.raises(DeviceNotFoundError, match="no DFU device found matching serial=CCC"):
        DfuDevice.open(backend=backend, serial="CCC")
    with DfuDevice.open(backend=backend, path="1-2.3") as dev:
        assert dev.info.serial == "BBB"
        # A second handle on the same interface is refused as busy.
        with pytest.raises(DeviceBusyError, match="busy"):
            DfuDevice.open(backend=backend, serial="BBB")
    with pytest.raises(ValueError, match="16-bit"):
        find_devices(backend=backend, vid=0x10000)


def test_detach_from_the_runtime_application() -> None:
    app = Stm32F411App(serial="APP1")
    backend = SimBackend([app])
    (info,) = find_devices(backend=backend)
    assert info.mode is DeviceMode.RUNTIME
    runtime = DfuDevice.open(backend=backend)
    with pytest.raises(UsageError, match="run-time mode"):
        runtime.upload(BASE, 4)
    dev = runtime.detach()
    assert dev.info.mode is DeviceMode.DFU
    assert dev.info.serial == "APP1"
    dev.download(b"\x00\x00\x02\x20", address=BASE)
    assert app.bootloader is not None
    assert app.bootloader.peek(BASE, 4) == b"\x00\x00\x02\x20"
    dev.close()


# --------------------------------------------------------------------------- faults


def test_erase_failure_names_the_sector() -> None:
    chip = Stm32F411(faults=[Fault(FaultKind.ERR_ERASE, Event.ERASE, nth=2)])
    dev, _ = _open(chip)
    with pytest.raises(DeviceStatusError) as info:
        dev.download(b"\x00" * 0x30000, address=BASE + 0x10000)
    assert str(info.value) == (
        "erasing sector 5 at 0x08020000: errERASE — memory erase function failed "
        "(device state dfuERROR)"
    )
    assert info.value.status == Status.errERASE
    assert chip.state == State.dfuIDLE  # the host cleared it
    dev.download(b"\x00" * 16, address=BASE)  # and the device is usable again


def test_write_failure_names_the_block() -> None:
    chip = Stm32F411(faults=[Fault(FaultKind.ERR_WRITE, Event.WRITE, nth=3)])
    dev, _ = _open(chip)
    with pytest.raises(
        DeviceStatusError,
        match=r"^writing block 4 at 0x08001000 \(2048 bytes\): errWRITE — device is unable",
    ):
        dev.download(_image(10000), address=BASE)


def test_injected_verify_status_and_read_back_mismatch() -> None:
    chip = Stm32F411(faults=[Fault(FaultKind.ERR_VERIFY, Event.WRITE, nth=1)])
    dev, _ = _open(chip)
    with pytest.raises(DeviceStatusError, match="errVERIFY"):
        dev.download(b"\x01" * 100, address=BASE)
    # A write-protected sector silently keeps its contents: read-back catches it.
    chip.set_write_protection([1])
    with pytest.raises(VerifyError) as info:
        dev.download(b"\x00" * 0x200, address=BASE + 0x4000 - 0x100)
    assert info.value.address == BASE + 0x4000
    assert info.value.expected == 0x00
    assert info.value.found == 0xFF
    assert info.value.mismatches == 0x100
    with pytest.raises(VerifyError, match="verify failed at 0x08004000"):
        dev.verify(b"\x00" * 0x200, address=BASE + 0x4000 - 0x100)


def test_stall_without_error_status_is_a_stall_error() -> None:
    chip = Stm32F411(faults=[Fault(FaultKind.STALL, Event.DNLOAD, nth=2)])
    dev, _ = _open(chip)
    with pytest.raises(StallError, match=r"^DNLOAD block 0 \(5 bytes\): stalled") as info:
        dev.download(b"\x00" * 16, address=BASE)
    assert "while setting the address pointer to 0x08000000" in str(info.value)


def test_protocol_stall_is_explained_by_getstatus() -> None:
    chip = Stm32F411()
    dev, _ = _open(chip)
    # The device stalls an UPLOAD longer than wTransferSize and says why in GETSTATUS.
    with pytest.raises(DeviceStatusError, match=r"errSTALLEDPKT") as info:
        dev._upload_block(2, 4096, "reading too much at once")
    assert isinstance(info.value.__cause__, StallError)
    assert str(info.value).startswith("reading too much at once: errSTALLEDPKT")
    assert chip.state == State.dfuIDLE
    # An unknown command is accepted, then reported by the GETSTATUS that runs it.
    with pytest.raises(DeviceStatusError, match=r"^sending a bogus command: errSTALLEDPKT"):
        dev._send(Dnload(0, b"\x55", "sending a bogus command"))


def test_timeout_and_disconnect() -> None:
    chip = Stm32F411(faults=[Fault(FaultKind.TIMEOUT, Event.UPLOAD, nth=2)])
    dev, _ = _open(chip)
    with pytest.raises(TransferTimeoutError, match=r"^UPLOAD block 3 \(2048 bytes\): timed out"):
        dev.upload(BASE, 8192)
    chip.inject(Fault(FaultKind.DISCONNECT, Event.ERASE, nth=1, reconnect_after=None))
    with pytest.raises(DeviceGoneError, match="device is gone"):
        dev.download(b"\x00" * 4, address=BASE)


def test_device_busy_longer_than_it_said_is_polled() -> None:
    chip = Stm32F411(faults=[Fault(FaultKind.BUSY_LONGER, Event.ERASE, nth=1, extra=2.0)])
    dev, backend = _open(chip)
    dev.download(b"\x00" * 4, address=BASE)
    assert chip.peek(BASE, 4) == b"\x00" * 4
    assert backend.clock.now > 2.0
    chip.inject(Fault(FaultKind.BUSY_LONGER, Event.ERASE, nth=2, extra=60.0))
    dev.busy_timeout = 5.0
    with pytest.raises(TransferTimeoutError, match="stayed dfuDNBUSY for more than 5 s"):
        dev.download(b"\x00" * 4, address=BASE)


def test_option_bytes_alt_write_needs_no_erase() -> None:
    chip = Stm32F411()
    dev, _ = _open(chip, alt=1)
    current = chip.peek(0x1FFFC000, 16)
    (plan,) = dev.plan(current, address=0x1FFFC000, allow_option_bytes=True)
    assert plan.plan.erases == ()
    assert plan.name == "Option Bytes"


def test_file_for_another_device_is_refused() -> None:
    chip = Stm32F411()
    dev, _ = _open(chip)
    other = DfuSeFile([Target(0, "x", [Element(BASE, b"\x00")])], vendor_id=0x1234, product_id=1)
    with pytest.raises(SafetyError, match="1234:0001"):
        dev.download(other)
    with pytest.warns(UserWarning, match="force=True"):
        dev.download(other, force=True)
    st_manager = DfuSeFile(
        [Target(0, "x", [Element(BASE, b"\x01")])], vendor_id=0x0483, product_id=0
    )
    with pytest.warns(UserWarning, match="0x0000"):
        dev.download(st_manager)
    assert chip.peek(BASE, 1) == b"\x01"


def test_request_log(caplog: pytest.LogCaptureFixture) -> None:
    chip = Stm32F411()
    dev, _ = _open(chip)
    with caplog.at_level(logging.DEBUG, logger="dfuse.transport"):
        dev.download(b"\x12" * 3000, address=BASE, verify=False)
    text = caplog.text
    assert "OUT DNLOAD block 3 (952 bytes) wValue=3 wLength=952 -> ok" in text
    assert "IN  GETSTATUS wValue=0 wLength=6 -> 6 bytes" in text
    assert dev.transport.transfers == sum(dev.transport.counts.values())


# --------------------------------------------------------------------------- quirks


@pytest.mark.parametrize("quirks", [STM32H7_QUIRKS, STM32F405_QUIRKS])
def test_busy_quirks_are_polled_through(quirks: object) -> None:
    chip = Stm32F411(quirks=quirks)  # type: ignore[arg-type]
    dev, _ = _open(chip)
    dev.download(b"\x5a" * 5000, address=BASE, erase="mass")
    assert chip.peek(BASE, 5000) == b"\x5a" * 5000


@pytest.mark.parametrize("quirks", [STM32C0_QUIRKS, GD32_QUIRKS])
def test_leave_quirks(quirks: object) -> None:
    chip = Stm32F411(quirks=quirks)  # type: ignore[arg-type]
    dev, backend = _open(chip)
    dev.download(b"\x00" * 8, address=BASE)
    dev.leave()
    backend.clock.sleep(0.1)
    backend.poll()
    assert [s.address for s in chip.app_starts] == [BASE]


def test_leave_to_an_address_and_unknown_alt_in_file() -> None:
    chip = Stm32F411()
    dev, backend = _open(chip)
    bad = DfuSeFile([Target(7, "x", [Element(BASE, b"\x00")])])
    with pytest.raises(DeviceNotFoundError, match="no alternate setting 7"):
        dev.download(bad)
    dev.leave(BASE + 0x200)
    backend.clock.sleep(0.1)
    backend.poll()
    assert chip.app_starts[-1].address == BASE + 0x200


def test_random_full_flash_round_trip() -> None:
    chip = Stm32F411()
    dev, backend = _open(chip)
    data = os.urandom(512 * 1024)
    dev.download(data, address=BASE)
    assert chip.peek(BASE, len(data)) == data
    assert dev.upload(BASE, len(data)) == data
    assert backend.clock.now < 12


def test_block_counter_limit_resets_the_pointer_on_the_device() -> None:
    chip = Stm32F411()
    dev, _ = _open(chip)
    dev.max_block = 5  # as if wBlockNum were 3 bits wide: the 16-bit limit's code path
    data = _image(10 * 2048 + 100)
    dev.download(data, address=BASE)
    assert chip.peek(BASE, len(data)) == data
    data_blocks = [r.setup.value for r in chip.request_log if r.name in ("DNLOAD", "UPLOAD")]
    assert max(data_blocks) == 5
    commands = [
        r
        for r in chip.request_log
        if r.name == "DNLOAD" and r.setup.value == 0 and r.data_length == 5
    ]
    # two erases (sectors 0 and 1), 3 pointers for the download, 3 for the read-back
    assert len(commands) == 2 + 3 + 3
    assert dev.upload(BASE + 1, len(data) - 1) == data[1:]
    with pytest.raises(ValueError, match="max_block"):
        DfuDevice(dev.transport, max_block=1)


def test_option_bytes_read_and_write() -> None:
    chip = Stm32F411()
    dev, backend = _open(chip)
    current = dev.read_option_bytes()
    assert current.rdp_level == 0
    assert dev.alt == 0  # selected again afterwards
    assert dev.initial_state == State.dfuIDLE
    with pytest.raises(SafetyError, match="level 2"):
        dev.write_option_bytes(current.with_rdp(2, allow_level_2=True))
    dev.write_option_bytes(current.with_write_protection({3}))
    backend.clock.sleep(2.0)
    backend.poll()
    assert chip.is_write_protected(3)
    with DfuDevice.open(backend=backend) as again:
        assert again.read_option_bytes().write_protected == frozenset({3})
        again.write_option_bytes(again.read_option_bytes().with_rdp(1))
    backend.clock.sleep(2.0)
    backend.poll()
    assert chip.rdp_level == 1
    with DfuDevice.open(backend=backend) as third:
        protected = third.read_option_bytes()
        with pytest.raises(SafetyError, match="mass-erases"):
            third.write_option_bytes(protected.with_rdp(0))


def test_open_waits_for_an_erase_left_running() -> None:
    chip = Stm32F411(quirks=STM32H7_QUIRKS)  # answers GETSTATUS while busy
    chip.poke(BASE, b"\x00" * 4)
    dev, backend = _open(chip)
    dev.transport.control_out(1, 0, b"\x41")  # mass erase ...
    dev.transport.control_in(3, 0, 6)  # ... started by its GETSTATUS
    dev.close()  # and the host goes away
    with DfuDevice.open(backend=backend) as again:
        assert again.initial_state == State.dfuDNBUSY
        assert again.state == State.dfuIDLE
    assert chip.peek(BASE, 4) == b"\xff" * 4


def test_upload_alt_progress_counts_the_whole_alt() -> None:
    chip = Stm32F411()
    dev, _ = _open(chip, alt=2)
    events: list[tuple[Phase, int, int]] = []
    target = dev.upload_alt(progress=lambda *e: events.append(e))
    assert target.size == 528
    assert events[-1] == (Phase.READ, 528, 528)
    assert [e[1] for e in events] == sorted(e[1] for e in events)


def test_stalled_read_unprotect_and_option_write() -> None:
    chip = Stm32F411(faults=[Fault(FaultKind.STALL, Event.DNLOAD, nth=1)])
    dev, _ = _open(chip)
    with pytest.raises(StallError, match="while removing read protection"):
        dev.read_unprotect(confirm=True)
    chip.inject(Fault(FaultKind.STALL, Event.DNLOAD, nth=5))  # the write, after 3 Set Address
    with pytest.raises(StallError, match="while writing the option bytes at 0x1FFFC000"):
        dev.write_option_bytes(dev.read_option_bytes())
