"""DfuDevice against a plain DFU 1.1 device: the simulator's :class:`dfuse.sim.PlainDfuDevice`
for what an honest device does (download, manifestation, upload, a failed block), and a small
scripted Transport only for replies no honest device sends (scripted GETSTATUS sequences,
injected transport errors at chosen requests) and for a run-time device."""

from __future__ import annotations

import logging

import pytest

from dfuse.clock import VirtualClock
from dfuse.device import DfuDevice, Phase, check_file_ids
from dfuse.errors import (
    DeviceGoneError,
    DeviceStatusError,
    ProtocolError,
    SafetyError,
    StallError,
    TransferTimeoutError,
    TransportError,
    UsageError,
    VerifyError,
)
from dfuse.file.model import DfuFile, DfuSeFile, Element, Target
from dfuse.protocol.constants import Request, State, Status
from dfuse.protocol.descriptors import Attributes, FunctionalDescriptor, StatusReply
from dfuse.sim import Event, Fault, FaultKind, PlainDfuDevice, SimBackend
from dfuse.transport.base import AltSetting, DeviceInfo, DeviceMode, Transport

BASE = 0x0800_0000


def _plain(board: PlainDfuDevice) -> tuple[DfuDevice, SimBackend, VirtualClock]:
    clock = VirtualClock()
    backend = SimBackend([board], clock=clock)
    return DfuDevice.open(backend=backend, clock=clock), backend, clock


def _info(
    mode: DeviceMode,
    attrs: int = 0x07,
    pid: int = 0x1234,
    *,
    version: int = 0x0110,
    functional: bool = True,
) -> DeviceInfo:
    return DeviceInfo(
        vid=0x1209,
        pid=pid,
        bcd_device=0x0100,
        serial="FAKE1",
        manufacturer=None,
        product=None,
        bus=3,
        port_numbers=(1, 4),
        address=7,
        mode=mode,
        interface=0,
        alt_settings=(AltSetting.from_name(0, "firmware"),),
        functional=FunctionalDescriptor(Attributes(attrs), 500, 64, version)
        if functional
        else None,
    )


class PlainDfu(Transport):
    """A DFU 1.1 device: DNLOAD blocks from 0 append to ``memory``; UPLOAD reads it."""

    def __init__(self, info: DeviceInfo, *, fail_block: int | None = None) -> None:
        super().__init__()
        self._info = info
        self.state = State.dfuIDLE if info.mode is DeviceMode.DFU else State.appIDLE
        self.status = Status.OK
        self.memory = bytearray()
        self.blocks: list[int] = []
        self.fail_block = fail_block
        self.was_reset = False
        self.closed = False
        self.reopened: PlainDfu | None = None
        #: GETSTATUS replies to send before the state machine's own (scripted states).
        self.script: list[StatusReply] = []
        #: Exceptions to raise once, by bRequest (or "reset").
        self.fail_on: dict[int | str, Exception] = {}
        #: Override of UPLOAD (and GETSTATE) replies.
        self.reply: bytes | None = None

    def _scripted(self, request: int | str) -> None:
        if request in self.fail_on:
            raise self.fail_on.pop(request)

    @property
    def info(self) -> DeviceInfo:
        return self._info

    def _control_in(
        self, request: int, value: int, length: int, timeout_ms: int, what: str
    ) -> bytes:
        self._scripted(request)
        if request == Request.GETSTATUS and self.script:
            reply = self.script.pop(0)
            self.state = State(reply.state)
            return reply.to_bytes()
        if request in (Request.UPLOAD, Request.GETSTATE) and self.reply is not None:
            return self.reply
        if request == Request.GETSTATUS:
            if self.state == State.dfuDNLOAD_SYNC:
                self.state = State.dfuDNBUSY
                return StatusReply(self.status, 5, self.state).to_bytes()
            if self.state == State.dfuDNBUSY:
                self.state = State.dfuDNLOAD_IDLE
            if self.state == State.dfuMANIFEST_SYNC:
                tolerant = self._info.functional.attributes & Attributes.MANIFESTATION_TOLERANT  # type: ignore[union-attr]
                self.state = State.dfuIDLE if tolerant else State.dfuMANIFEST_WAIT_RESET
            return StatusReply(self.status, 0, self.state).to_bytes()
        if request == Request.UPLOAD:
            start = value * self._info.functional.transfer_size  # type: ignore[union-attr]
            self.state = State.dfuUPLOAD_IDLE
            return bytes(self.memory[start : start + length])
        if request == Request.GETSTATE:
            return bytes([self.state])
        raise StallError("unexpected IN request", request=what)

    def _control_out(
        self,
        request: int,
        value: int,
        data: bytes | bytearray | memoryview,
        timeout_ms: int,
        what: str,
    ) -> None:
        self._scripted(request)
        if request == Request.DNLOAD:
            if not data:
                self.state = State.dfuMANIFEST_SYNC
                return
            self.blocks.append(value)
            if value == self.fail_block:
                self.state = State.dfuERROR
                self.status = Status.errWRITE
                return
            self.memory += bytes(data)
            self.state = State.dfuDNLOAD_SYNC
        elif request == Request.ABORT:
            self.state = State.dfuIDLE
        elif request == Request.CLRSTATUS:
            self.state, self.status = State.dfuIDLE, Status.OK
        elif request == Request.DETACH:
            self.state = State.appDETACH
        else:
            raise StallError("unexpected OUT request", request=what)

    def set_alt_setting(self, alt: int) -> None:
        pass

    def get_string(self, index: int) -> str | None:
        return None

    def reset(self) -> None:
        self.was_reset = True
        self._scripted("reset")

    def close(self) -> None:
        self.closed = True

    def reopen(self, timeout_s: float, clock: object = None) -> Transport:
        self.reopened = PlainDfu(_info(DeviceMode.DFU))
        return self.reopened


def test_plain_dfu_download_upload_and_manifest() -> None:
    board = PlainDfuDevice(transfer_size=64, size=4096, manifestation_tolerant=True)
    dev, _backend, _clock = _plain(board)
    assert not dev.is_dfuse
    assert dev.transfer_size == 64
    payload = bytes(range(256)) * 2 + b"tail"
    events: list[tuple[Phase, int, int]] = []
    plans = dev.download(
        DfuFile(payload, vendor_id=0x1209, product_id=0x0001),
        progress=lambda p, d, t: events.append((p, d, t)),
    )
    assert plans[0].alt is None
    assert board.peek(BASE, len(payload)) == payload  # the device's memory, not a read-back
    assert board.peek(BASE + len(payload), 16) == b"\xff" * 16
    assert board.requests["DNLOAD"] == 9 + 1  # 9 blocks of 64, then the zero-length one
    assert (Phase.LEAVE, 1, 1) in events
    # read back after the manifestation (the device is manifestation tolerant and uploads)
    assert events[-1] == (Phase.VERIFY, len(payload), len(payload))
    assert (Phase.WRITE, len(payload), len(payload)) in events
    # Manifestation tolerant: back to dfuIDLE, no reset, the old firmware did not start
    assert board.manifestations == 1
    assert not board.app_started
    assert board.state is State.dfuIDLE


def test_plain_dfu_reset_when_not_manifestation_tolerant() -> None:
    board = PlainDfuDevice(manifestation_tolerant=False)
    dev, _backend, _clock = _plain(board)
    dev.download(b"abc")
    assert board.app_started  # the host's USB reset started the new firmware
    assert board.peek(BASE, 3) == b"abc"


def test_plain_dfu_upload_until_a_short_block() -> None:
    board = PlainDfuDevice(transfer_size=64, size=150)
    board.poke(BASE, b"x" * 150)
    dev, _backend, _clock = _plain(board)
    assert dev.upload_dfu() == b"x" * 150
    assert dev.state == State.dfuIDLE
    with pytest.raises(UsageError, match="needs a DfuSe device"):
        dev.upload(0, 10)
    with pytest.raises(UsageError, match="does not speak DfuSe"):
        dev.mass_erase()
    with pytest.raises(SafetyError, match="plain DFU device"):
        dev.download(Target(0, "x", (Element(0, b"1"),)))


def test_plain_dfu_error_status_names_the_block() -> None:
    board = PlainDfuDevice(
        transfer_size=64, faults=[Fault(FaultKind.ERR_WRITE, Event.WRITE, nth=3)]
    )
    dev, _backend, _clock = _plain(board)
    with pytest.raises(DeviceStatusError, match=r"writing block 2 \(64 bytes\): errWRITE") as info:
        dev.download(b"z" * 500)
    assert info.value.status == Status.errWRITE
    assert board.state is State.dfuIDLE  # the host cleared the error
    assert board.peek(BASE, 128) == b"z" * 128  # blocks 0 and 1 landed, block 2 did not
    assert board.peek(BASE + 128, 64) == b"\xff" * 64


def test_runtime_device_detaches_and_reenumerates() -> None:
    transport = PlainDfu(_info(DeviceMode.RUNTIME, attrs=0x07))
    dev = DfuDevice(transport, VirtualClock())
    assert dev.initial_status is None
    with pytest.raises(UsageError, match="run-time mode"):
        dev.upload_dfu()  # (download() detaches by itself: see test_download_detaches_...)
    new = dev.detach()
    assert transport.was_reset  # WILL_DETACH not set: the host resets
    assert new.info.mode is DeviceMode.DFU
    assert new.initial_status is not None
    assert new.initial_status.state == State.dfuIDLE
    with pytest.raises(UsageError, match="already in DFU mode"):
        new.detach()


def test_file_id_checks(caplog: pytest.LogCaptureFixture) -> None:
    info = _info(DeviceMode.DFU)
    check_file_ids(0xFFFF, 0xFFFF, info)
    check_file_ids(0x1209, 0x1234, info)
    with pytest.raises(SafetyError, match="file is for device 0483:df11"):
        check_file_ids(0x0483, 0xDF11, info)
    with pytest.warns(UserWarning, match="anyway"):
        check_file_ids(0x0483, 0xDF11, info, force=True)
    with pytest.warns(UserWarning, match="product ID 0x0000"):
        check_file_ids(0x1209, 0x0000, info)
    dev = DfuDevice(PlainDfu(info), VirtualClock())
    with pytest.raises(SafetyError, match="force=True"):
        dev.download(DfuSeFile((), vendor_id=0x0483, product_id=0xDF11))
    with pytest.raises(TypeError, match="DfuSeFile, DfuFile, Target or bytes"):
        dev.download("firmware.bin")  # type: ignore[arg-type]
    with caplog.at_level(logging.DEBUG, logger="dfuse.transport"):
        dev.status()
    assert "GETSTATUS" in caplog.text


def _reply(state: State, status: Status = Status.OK, poll: int = 0) -> StatusReply:
    return StatusReply(status, poll, state)


def test_open_waits_out_a_busy_device_and_gives_up_on_a_stuck_one() -> None:
    transport = PlainDfu(_info(DeviceMode.DFU))
    transport.script = [_reply(State.dfuDNBUSY, poll=40), _reply(State.dfuDNLOAD_IDLE)]
    clock = VirtualClock()
    dev = DfuDevice(transport, clock)
    assert dev.initial_status == _reply(State.dfuDNBUSY, poll=40)
    assert clock.now == pytest.approx(0.040)
    assert transport.state == State.dfuIDLE  # busy, then ABORT from dfuDNLOAD-IDLE
    stuck = PlainDfu(_info(DeviceMode.DFU))
    stuck.script = [_reply(State.dfuMANIFEST)]
    with pytest.raises(ProtocolError, match="could not bring the device to dfuIDLE"):
        DfuDevice(stuck, VirtualClock())


def test_odd_replies_are_protocol_errors(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="dfuse.device"):
        dev = DfuDevice(PlainDfu(_info(DeviceMode.DFU, functional=False)), VirtualClock())
    assert dev.transfer_size == 1024
    assert "no wTransferSize" in caplog.text
    assert dev.functional is None
    transport = PlainDfu(_info(DeviceMode.DFU))
    dev = DfuDevice(transport, VirtualClock(), transfer_size=32)
    assert dev.transfer_size == 32
    assert "DfuDevice(1209:1234 path=3-1.4" in repr(dev)
    transport.reply = b""
    with pytest.raises(ProtocolError, match="GETSTATE reply must be 1 byte"):
        dev.get_state()
    transport.script = [_reply(State.dfuDNBUSY, poll=1), _reply(State.dfuUPLOAD_IDLE)]
    with pytest.raises(ProtocolError, match="expected dfuDNLOAD_IDLE, the device reports"):
        dev.download(b"x")
    with pytest.raises(ValueError, match="negative"):
        dev.upload(0, -1)


def test_dfuse_device_short_upload_and_missing_layout() -> None:
    transport = PlainDfu(_info(DeviceMode.DFU, version=0x011A))
    dev = DfuDevice(transport, VirtualClock())
    assert dev.is_dfuse
    transport.reply = b"abc"
    with pytest.raises(ProtocolError, match=r"asked for 10 bytes .* the device sent 3"):
        dev.upload(0x100, 10)
    with pytest.raises(ProtocolError, match="no memory layout to read"):
        dev.upload_alt()
    with pytest.raises(SafetyError, match="no memory layout"):
        dev.download(b"x", address=0x100)


def test_leave_paths() -> None:
    # The device vanishes on the zero-length DNLOAD: it has left.
    gone = PlainDfu(_info(DeviceMode.DFU))
    dev = DfuDevice(gone, VirtualClock())
    gone.fail_on[Request.DNLOAD] = DeviceGoneError("gone", request="DNLOAD")
    dev.leave()
    assert gone.closed
    # It answers GETSTATUS with a stall: also left.
    stall = PlainDfu(_info(DeviceMode.DFU))
    dev = DfuDevice(stall, VirtualClock())
    stall.fail_on[Request.GETSTATUS] = StallError("stall", request="GETSTATUS")
    dev.leave()
    # It reports an error status.
    bad = PlainDfu(_info(DeviceMode.DFU))
    dev = DfuDevice(bad, VirtualClock())
    bad.script = [_reply(State.dfuERROR, Status.errNOTDONE)]
    with pytest.raises(DeviceStatusError, match="leaving DFU mode: errNOTDONE"):
        dev.leave()
    # An unexpected state.
    odd = PlainDfu(_info(DeviceMode.DFU))
    dev = DfuDevice(odd, VirtualClock())
    odd.script = [_reply(State.dfuUPLOAD_IDLE)]
    with pytest.raises(ProtocolError, match="expected dfuMANIFEST"):
        dev.leave()
    # Manifesting forever: the host stops waiting after busy_timeout; a failed reset is fine.
    slow = PlainDfu(_info(DeviceMode.DFU, attrs=0x03))
    clock = VirtualClock()
    dev = DfuDevice(slow, clock, busy_timeout=1.0)
    slow.script = [_reply(State.dfuMANIFEST_SYNC, poll=300)] * 10
    slow.fail_on["reset"] = TransportError("no reset", request="reset")
    dev.leave()
    assert slow.was_reset
    assert 1.0 <= clock.now < 1.5
    # The zero-length DNLOAD itself stalls: a real error.
    refused = PlainDfu(_info(DeviceMode.DFU))
    dev = DfuDevice(refused, VirtualClock())
    refused.fail_on[Request.DNLOAD] = StallError("stall", request="DNLOAD block 0 (0 bytes)")
    with pytest.raises(StallError, match="while leaving DFU mode"):
        dev.leave()


def test_detach_tolerates_a_stall_and_a_failed_reset() -> None:
    transport = PlainDfu(_info(DeviceMode.RUNTIME, attrs=0x0F))
    dev = DfuDevice(transport, VirtualClock())
    transport.fail_on[Request.DETACH] = StallError("stall", request="DETACH")
    new = dev.detach()
    assert not transport.was_reset  # WILL_DETACH: the device goes by itself
    assert new.info.mode is DeviceMode.DFU
    other = PlainDfu(_info(DeviceMode.RUNTIME, attrs=0x03))
    other.fail_on["reset"] = TransportError("no reset", request="reset")
    assert DfuDevice(other, VirtualClock()).detach().info.mode is DeviceMode.DFU


def test_timeouts_during_upload_name_the_request() -> None:
    transport = PlainDfu(_info(DeviceMode.DFU))
    dev = DfuDevice(transport, VirtualClock())
    transport.fail_on[Request.UPLOAD] = TransferTimeoutError("timed out", request="UPLOAD block 0")
    with pytest.raises(TransferTimeoutError, match=r"while reading block 0"):
        dev.upload_dfu()


def test_no_option_bytes_alt() -> None:
    dev = DfuDevice(PlainDfu(_info(DeviceMode.DFU)), VirtualClock())
    with pytest.raises(ProtocolError, match="no 'Option Bytes' alternate setting"):
        dev.read_option_bytes()


def test_plain_dfu_verify() -> None:
    board = PlainDfuDevice(transfer_size=64, size=160)
    board.poke(BASE, b"firmware" * 20)
    dev, _backend, _clock = _plain(board)
    dev.verify(DfuFile(b"firmware" * 20, vendor_id=0x0483, product_id=0xDF11))  # IDs not checked
    with pytest.raises(VerifyError, match="verify failed at 0x00000008: expected 0x46, found 0x66"):
        dev.verify(b"firmwareF")
    with pytest.raises(ProtocolError, match="uploaded 160 bytes of firmware, the image has 161"):
        dev.verify(b"firmware" * 20 + b"!")


def test_failed_recovery_and_failed_diagnosis_keep_the_first_error() -> None:
    transport = PlainDfu(_info(DeviceMode.DFU), fail_block=0)
    dev = DfuDevice(transport, VirtualClock())
    transport.fail_on[Request.CLRSTATUS] = StallError("stall", request="CLRSTATUS")
    with pytest.raises(DeviceStatusError, match="errWRITE"):
        dev.download(b"x")
    transport = PlainDfu(_info(DeviceMode.DFU))
    dev = DfuDevice(transport, VirtualClock())
    transport.fail_on[Request.DNLOAD] = StallError("stalled", request="DNLOAD block 0 (1 bytes)")
    transport.fail_on[Request.GETSTATUS] = DeviceGoneError("gone", request="GETSTATUS")
    with pytest.raises(StallError, match=r"stalled \(while writing block 0 \(1 bytes\)\)"):
        dev.download(b"x")
