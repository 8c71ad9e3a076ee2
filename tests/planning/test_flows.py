"""The verbs' flows (dfuse.planning.flows) driven with scripted results and no device.

The script below answers each operation a flow yields the way the driver would: it
keeps a DfuSe address pointer and a memory (bytes at addresses), answers UPLOAD blocks
from them (block ``n`` at ``pointer + (n - 2) * wTransferSize``, AN3156 §6), selects
alternate settings, closes, and throws in the errors a test scripts. What the flows
yield, in order, is checked against literal expectations.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

import pytest

from dfuse.errors import (
    CancelledError,
    ProtocolError,
    SafetyError,
    TransferTimeoutError,
    VerifyError,
)
from dfuse.layout import MemoryLayout
from dfuse.optionbytes import FACTORY_DEFAULT, OtpArea, RdpLevel
from dfuse.parts import Part
from dfuse.planning import flows
from dfuse.planning.record import Dnload, RunRecord
from dfuse.progress import Phase, Progress
from dfuse.protocol import plan as steps
from dfuse.protocol.constants import State, Status
from dfuse.protocol.descriptors import StatusReply
from dfuse.protocol.session import Done, Event, Goal, SessionRules
from dfuse.transport.base import AltSetting, DeviceInfo, DeviceMode

# The STM32F4 ROM's alt strings (AN3156; dfu-util -l of an STM32F411).
F411_ALTS = (
    "@Internal Flash  /0x08000000/04*016Kg,01*064Kg,03*128Kg",
    "@Option Bytes  /0x1FFFC000/01*016 e",
    "@OTP Memory /0x1FFF7800/01*512 e,01*016 e",
)
FLASH = 0x08000000
OK_IDLE = StatusReply(Status.OK, 0, State.dfuIDLE)


@dataclass
class Fake:
    """A device's facts as a flow reads them, and a memory the script answers from."""

    info: DeviceInfo
    alt: int | None = 0
    transfer_size: int = 2048
    max_block: int = 0xFFFF
    part: Part | None = None
    rules: SessionRules = field(default_factory=SessionRules)
    closed: bool = False
    memory: dict[int, int] = field(default_factory=dict)
    pointer: int = 0

    @property
    def layout(self) -> MemoryLayout | None:
        return None if self.alt is None else self.info.alt(self.alt).layout

    def put(self, address: int, data: bytes) -> None:
        self.memory.update((address + i, b) for i, b in enumerate(data))


def _fake(**changes: object) -> Fake:
    alts = tuple(AltSetting(n, s, MemoryLayout.parse(s)) for n, s in enumerate(F411_ALTS))
    info = DeviceInfo(0x0483, 0xDF11, 0x2200, None, None, None, 1, (), 2, DeviceMode.DFU, 0,
                      alts, None)  # fmt: skip
    return Fake(info, **changes)  # type: ignore[arg-type]


Answer = Callable[[flows.Op], object]
T = TypeVar("T")


def _script(
    dev: Fake, flow: flows.Flow[T], answer: Answer | None = None
) -> tuple[list[flows.Op], T]:
    """Drive ``flow`` to its end as the driver would; ``answer`` overrides the default
    result of an operation (an exception is thrown into the flow)."""
    seen: list[flows.Op] = []
    result: object = None
    while True:
        try:
            op = flow.throw(result) if isinstance(result, BaseException) else flow.send(result)
        except StopIteration as end:
            return seen, end.value
        seen.append(op)
        scripted = answer(op) if answer is not None else None
        result = scripted if scripted is not None else _default(dev, op)


def _default(dev: Fake, op: flows.Op) -> object:
    if isinstance(op, Dnload):
        if op.block == 0 and bytes(op.payload[:1]) == b"\x21":
            dev.pointer = int.from_bytes(bytes(op.payload[1:5]), "little")
        return Done(OK_IDLE)
    if isinstance(op, flows.Upload):
        start = dev.pointer + (op.block - 2) * dev.transfer_size
        return bytes(dev.memory.get(start + i, 0xFF) for i in range(op.length))
    if isinstance(op, steps.SelectAlt):
        dev.alt = int(op.alt)
        return dev.info.alt(dev.alt)
    if op == flows.CLOSE:
        dev.closed = True
    return None


def _names(ops: list[flows.Op]) -> list[str]:
    """Each operation in words: the DNLOAD's action, an UPLOAD's block and length."""
    out = []
    for op in ops:
        if isinstance(op, Dnload):
            out.append(op.action)
        elif isinstance(op, flows.Upload):
            out.append(f"UPLOAD {op.block} {op.length}")
        elif isinstance(op, steps.SelectAlt):
            out.append(f"select {op.alt}")
        elif isinstance(op, flows.Prepare):
            out.append(f"prepare {op.action}")
        elif isinstance(op, flows.Ready):
            out.append(f"ready {op.event.name}")
        elif isinstance(op, flows.Sleep):
            out.append(f"sleep {op.seconds}")
        elif isinstance(op, flows.Signal):
            out.append(op.name)
        else:
            out.append(repr(op))
    return out


# --------------------------------------------------------------------------- reads


def test_a_read_sets_the_address_uploads_blocks_from_2_and_aborts() -> None:
    dev = _fake()
    dev.put(FLASH, bytes(range(256)) * 20)
    ops, got = _script(dev, flows.read(dev, [(None, [(FLASH, 5000)])], RunRecord(Progress(None))))
    assert _names(ops) == [
        "prepare upload",
        "setting the address pointer to 0x08000000 for reading 0x08000000 (5000 bytes)",
        "UPLOAD 2 2048",
        "UPLOAD 3 2048",
        "UPLOAD 4 904",
        "ready DNLOAD",
    ]
    assert got == [[(FLASH, (bytes(range(256)) * 20)[:5000])]]


def test_a_read_past_max_block_sets_the_address_again() -> None:
    dev = _fake(transfer_size=16, max_block=3)
    dev.put(FLASH, bytes(range(48)))
    ops, got = _script(dev, flows.read(dev, [(None, [(FLASH, 48)])], RunRecord(Progress(None))))
    assert [n.split(" for ")[0] for n in _names(ops)] == [
        "prepare upload",
        "setting the address pointer to 0x08000000",
        "UPLOAD 2 16",
        "UPLOAD 3 16",
        "setting the address pointer to 0x08000020",
        "UPLOAD 2 16",
        "ready DNLOAD",
    ]
    assert got == [[(FLASH, bytes(range(48)))]]


def test_reading_another_alternate_setting_selects_it_and_back() -> None:
    dev = _fake()
    dev.put(0x1FFFC000, bytes(FACTORY_DEFAULT.to_bytes()))
    ops, got = _script(dev, flows.read_options(dev))
    assert _names(ops)[:3] == ["prepare read the option bytes", "prepare upload", "select 1"]
    assert _names(ops)[-2:] == ["select 0", "ready DNLOAD"]
    assert got == FACTORY_DEFAULT
    assert dev.alt == 0


def test_a_short_upload_block_is_a_protocol_error() -> None:
    dev = _fake()

    def short(op: flows.Op) -> object:
        return b"\x00" * 10 if isinstance(op, flows.Upload) else None

    flow = flows.read(dev, [(None, [(FLASH, 64)])], RunRecord(Progress(None)))
    with pytest.raises(ProtocolError, match=r"asked for 64 bytes .* the device sent 10"):
        _script(dev, flow, short)


def test_a_plain_dfu_upload_stops_at_the_first_short_block() -> None:
    dev = _fake(transfer_size=8)
    sizes = iter([8, 8, 3])

    def firmware(op: flows.Op) -> object:
        return b"\xab" * next(sizes) if isinstance(op, flows.Upload) else None

    ops, got = _script(dev, flows.upload_dfu(dev, 1 << 20), firmware)
    assert _names(ops) == [
        "prepare upload",
        "UPLOAD 0 8",
        "UPLOAD 1 8",
        "UPLOAD 2 8",
        "ready DNLOAD",
    ]
    assert got == b"\xab" * 19


# --------------------------------------------------------------------------- running plans


def test_a_cancel_stops_at_the_next_step_and_says_what_was_erased() -> None:
    dev = _fake()
    cancel = threading.Event()
    plan = steps.Plan(
        (steps.EraseSector(0, FLASH, 0x4000), steps.EraseSector(1, FLASH + 0x4000, 0x4000)), 2048
    )

    def cancel_after_the_first(op: flows.Op) -> object:
        cancel.set()
        return None

    seen: list[flows.Op] = []

    def watch(op: flows.Op) -> object:
        seen.append(op)
        return cancel_after_the_first(op)

    with pytest.raises(CancelledError) as caught:
        _script(dev, flows.drive(dev, plan, None, cancel), watch)
    assert caught.value.erased == (FLASH,)
    assert _names(seen) == ["erasing sector 0 at 0x08000000", "idle"]  # back to dfuIDLE


def test_a_dfuse_verify_compares_what_it_reads() -> None:
    dev = _fake()
    dev.put(FLASH, b"\x01\x02\x03\x04")
    plan = steps.Plan((steps.Verify(FLASH, memoryview(b"\x01\x02\x09\x04")),), 2048)
    with pytest.raises(VerifyError) as caught:
        _script(dev, flows.drive(dev, plan))
    assert caught.value.address == FLASH + 2


def test_an_option_write_closes_the_device_it_resets() -> None:
    dev = _fake()
    write = steps.WriteOptions(0x1FFFC000, FACTORY_DEFAULT.to_bytes())
    ops, _ = _script(dev, flows.drive(dev, steps.Plan((write,), 16)))
    assert isinstance(ops[0], Dnload)
    assert ops[0].goal is Goal.RESET
    assert ops[1:] == [flows.CLOSE]


# --------------------------------------------------------------------------- leaving


@pytest.mark.parametrize(
    ("done", "stay", "after"),
    [
        (Done(OK_IDLE, reset=True), False, ["reset", "close"]),
        (Done(OK_IDLE, linger_s=0.5), False, ["sleep 0.5", "close"]),
        (Done(OK_IDLE), True, []),  # manifestation tolerant: stays, to be read back
        (Done(None, gone=True), True, ["close"]),
        (Done(None), True, ["close"]),  # left without a status reply
    ],
)
def test_how_a_manifestation_ends(done: Done, stay: bool, after: list[str]) -> None:
    dev = _fake()

    def manifest(op: flows.Op) -> object:
        return done if isinstance(op, Dnload) and op.event is Event.DNLOAD_ZERO else None

    ops, _ = _script(dev, flows.leave(dev, None, 2, stay), manifest)
    assert _names(ops) == ["leaving DFU mode", *after]


def test_a_dfuse_leave_sets_the_address_first() -> None:
    dev = _fake()
    ops, _ = _script(dev, flows.leave(dev, FLASH, 2))
    assert _names(ops)[:2] == ["setting the address pointer to 0x08000000", "leaving DFU mode"]


def test_a_plain_device_that_left_is_let_go_even_when_its_read_back_fails() -> None:
    dev = _fake()
    plan = steps.Plan((steps.Leave(), steps.Verify(0, memoryview(b"abcd"))), 64, dfuse=False)

    def timeout_on_upload(op: flows.Op) -> object:
        if isinstance(op, flows.Upload):
            return TransferTimeoutError("timed out", request="UPLOAD")
        return None

    seen: list[flows.Op] = []

    def record(op: flows.Op) -> object:
        seen.append(op)
        return timeout_on_upload(op)

    with pytest.raises(TransferTimeoutError):
        _script(dev, flows.drive(dev, plan), record)
    assert seen[-1] == flows.CLOSE  # after the failed UPLOAD: the plan leaves


def test_a_closed_plain_device_is_not_read_back() -> None:
    dev = _fake(closed=True)
    plan = steps.Plan((steps.Verify(0, memoryview(b"abcd")),), 64, dfuse=False)
    with pytest.raises(ProtocolError, match="nothing could be read back"):
        _script(dev, flows.drive(dev, plan))


# --------------------------------------------------------------------------- option bytes, OTP


def test_option_bytes_the_device_holds_already_are_not_written() -> None:
    dev = _fake()
    dev.put(0x1FFFC000, FACTORY_DEFAULT.to_bytes())
    ops, got = _script(dev, flows.change_options(dev, FACTORY_DEFAULT))
    assert got == FACTORY_DEFAULT
    assert _names(ops).count("prepare read the option bytes") == 1  # read once, not again
    assert not [op for op in ops if isinstance(op, Dnload) and op.goal is Goal.RESET]


def test_a_change_waits_for_the_device_confirms_and_reads_again() -> None:
    dev = _fake()
    dev.put(0x1FFFC000, FACTORY_DEFAULT.to_bytes())
    new = FACTORY_DEFAULT.with_write_protection({2})

    def apply(op: flows.Op) -> object:
        if isinstance(op, Dnload) and op.goal is Goal.RESET:
            dev.put(0x1FFFC000, bytes(op.payload))  # the device applies them, then resets
        return None

    ops, got = _script(dev, flows.protect_sectors(dev, [2], True, wait_s=3.0), apply)
    names = _names(ops)
    reset = next(i for i, op in enumerate(ops) if isinstance(op, steps.AwaitReset))
    assert ops[reset] == steps.AwaitReset(3.0)
    assert names[reset - 1] == "close"
    assert got == new
    assert got.write_protected == frozenset({2})
    assert names[-1] == "ready DNLOAD"
    assert names.count("prepare read the option bytes") == 3


def test_level_2_is_returned_unconfirmed_the_device_never_comes_back() -> None:
    dev = _fake()
    dev.put(0x1FFFC000, FACTORY_DEFAULT.to_bytes())
    ops, got = _script(dev, flows.set_read_protection(dev, 2, rdp2=True))
    assert _names(ops)[0] == "prepare set read protection"
    assert got.rdp_level is RdpLevel.LEVEL_2
    assert ops[-1] == flows.CLOSE  # nothing after the write: no wait, no read
    assert not [op for op in ops if isinstance(op, steps.AwaitReset)]


def test_otp_that_holds_the_data_already_is_neither_written_nor_read_again() -> None:
    dev = _fake()
    dev.put(0x1FFF7800, b"\x00" * 32 + b"\xff" * (512 - 32) + b"\xff" * 16)
    ops, got = _script(dev, flows.write_otp(dev, 0, b"\x00" * 32, lock=False))
    assert got.blocks[0] == b"\x00" * 32
    assert not got.is_locked(0)
    assert not [op for op in ops if isinstance(op, Dnload) and op.block >= 2]
    assert _names(ops).count("prepare upload") == 1


def test_an_otp_lock_writes_the_lock_byte_and_reads_back() -> None:
    dev = _fake()
    dev.put(0x1FFF7800, OtpArea.blank().to_bytes())
    writes: list[tuple[int, bytes]] = []

    def program(op: flows.Op) -> object:
        if isinstance(op, Dnload) and op.block >= 2:
            dev.put(dev.pointer, bytes(op.payload))
            writes.append((dev.pointer, bytes(op.payload)))
        return None

    ops, got = _script(dev, flows.write_otp(dev, 3, None, lock=True, confirm=True), program)
    assert writes == [(0x1FFF7A03, b"\x00")]
    assert got.is_locked(3)
    # read first, read back to verify, and read again for what is returned
    assert _names(ops).count("prepare upload") == 3


def test_an_otp_lock_is_refused_without_confirm_before_any_request() -> None:
    dev = _fake()
    with pytest.raises(SafetyError, match="pass confirm=True"):
        next(flows.write_otp(dev, 3, None, lock=True))


def test_read_unprotect_refuses_without_confirm_before_any_request() -> None:
    dev = _fake()
    flow = flows.read_unprotect(dev, confirm=False, reconnect=False, wait_s=1.0)
    with pytest.raises(SafetyError, match="pass confirm=True"):
        next(flow)


def test_read_unprotect_that_leaves_read_protection_on_is_reported() -> None:
    dev = _fake()
    dev.put(0x1FFFC000, FACTORY_DEFAULT.with_rdp(1).to_bytes())  # still level 1 when back
    flow = flows.read_unprotect(dev, confirm=True, reconnect=True, wait_s=1.0)
    with pytest.raises(ProtocolError, match="reports read protection level 1, expected 0"):
        _script(dev, flow)


def test_the_phase_of_a_read_is_read() -> None:
    dev = _fake()
    seen: list[tuple[Phase, int, int]] = []
    run = RunRecord(Progress(lambda p, d, t: seen.append((p, d, t))))
    _script(dev, flows.read(dev, [(None, [(FLASH, 4096)])], run))
    assert seen == [(Phase.READ, 2048, 4096), (Phase.READ, 4096, 4096)]
