"""Red-team checks for silent corruption: the host reports success, the board holds
something else.

Every test judges by the simulated chip's memory (``board.peek``), never by what the
host reports: a download that returns must leave exactly the image's bytes in place and
every byte the user did not ask to change as it was (a sector erase clears the rest of
the sectors the image touches, as documented; nothing else moves).
"""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import dfuse
from dfuse.clock import VirtualClock
from dfuse.device import DfuDevice
from dfuse.errors import ProtocolError, SafetyError, VerifyError
from dfuse.file import Element, Target
from dfuse.gang import flash_many
from dfuse.protocol.dfuse import MAX_BLOCK
from dfuse.protocol.plan import Leave, PlanOptions, Verify, plan_dfu_download, plan_download
from dfuse.sim import Event, Fault, FaultKind, PlainDfuDevice, SimBackend, Stm32F411
from dfuse.sim.dfu import Operation

BASE = 0x08000000


def _rig(transfer_size: int = 2048) -> tuple[Stm32F411, SimBackend, VirtualClock]:
    clock = VirtualClock()
    board = Stm32F411(clock=clock, transfer_size=transfer_size)
    return board, SimBackend([board], clock=clock), clock


# --------------------------------------------------------------------------- transfer size


def test_a_dfuse_transfer_size_other_than_the_devices_is_refused() -> None:
    """A DfuSe device places block n at pointer + (n - 2) x its own wTransferSize. A host
    that cut blocks to another size wrote them at the wrong addresses, and its read-back
    (same arithmetic) matched: a success report over scattered bytes."""
    board, backend, clock = _rig()
    with DfuDevice.open(backend=backend, clock=clock) as opened:
        with pytest.raises(ValueError, match="wTransferSize 2048"):
            DfuDevice(opened.transport, clock, transfer_size=1024)
        same = DfuDevice(opened.transport, clock, transfer_size=2048)
        image = bytes(range(256)) * 12
        same.download(image, address=BASE)
    assert board.peek(BASE, len(image)) == image


def test_execute_refuses_a_plan_cut_to_another_transfer_size() -> None:
    """A plan made for 1024-byte blocks, run on a 2048-byte DfuSe device, scattered the
    image (block 3 at +2048, not +1024) and reported success without a verify."""
    board, backend, clock = _rig()
    image = bytes(range(256)) * 12
    with DfuDevice.open(backend=backend, clock=clock) as dev:
        assert dev.layout is not None
        before = len(board.request_log)
        wrong = plan_download([(BASE, image)], dev.layout, 1024, PlanOptions(verify=False))
        with pytest.raises(ValueError, match="cut to 1024 bytes"):
            dev.execute(wrong)
        with pytest.raises(ValueError, match="plain DFU plan cannot run on a DfuSe device"):
            dev.execute(plan_dfu_download(image, 2048))
        assert len(board.request_log) == before  # refused before any traffic
        dev.execute(plan_download([(BASE, image)], dev.layout, dev.transfer_size))
    assert board.peek(BASE, len(image)) == image


# --------------------------------------------------------------------------- memory model

FIVE = [(BASE + 0x4000 * i, 0x4000) for i in range(4)] + [(BASE + 0x10000, 0x10000)]
SPAN = 0x20000  # sectors 0-4: where the images go


def _sectors(address: int, length: int) -> list[tuple[int, int]]:
    return [(s, n) for s, n in FIVE if s < address + length and s + n > address]


def _random_memory(r: random.Random) -> bytearray:
    memory = bytearray(b"\xff" * SPAN)
    for _ in range(r.randint(0, 6)):
        at = r.randrange(SPAN)
        n = min(r.randint(1, 6000), SPAN - at)
        memory[at : at + n] = r.randbytes(n)
    return memory


def _random_image(r: random.Random, memory: bytes, step: int) -> list[tuple[int, bytes]]:
    """1-4 segments, some block-aligned, some unaligned; some 0xFF runs, some equal to
    the current content (with a byte or two changed)."""
    segments: list[tuple[int, bytes]] = []
    for _ in range(r.randint(1, 4)):
        at = r.randrange(SPAN - 1)
        if r.random() < 0.3:
            at -= at % step
        n = min(r.randint(1, 5000), SPAN - at)
        if any(at < a + len(d) and a < at + n for a, d in segments):
            continue
        kind = r.random()
        data = bytearray(b"\xff" * n) if kind < 0.3 else bytearray(r.randbytes(n))
        if 0.3 <= kind < 0.55:
            data = bytearray(memory[at : at + n])
        for _ in range(r.randint(0, 2)):
            data[r.randrange(n)] = r.randrange(256)
        segments.append((at, bytes(data)))
    return segments


def _expected(
    memory: bytes, segments: list[tuple[int, bytes]], *, erase: str, incremental: bool
) -> bytes:
    """What the flash must hold after a download that reports success: the touched sectors
    erased (an incremental download keeps those whose image bytes already match), then the
    image programmed (NOR: bits only clear)."""
    model = bytearray(memory)
    if erase == "sectors":
        touched = sorted({s for a, d in segments for s in _sectors(BASE + a, len(d))})
        for start, size in touched:
            lo, hi = start - BASE, start - BASE + size
            same = all(
                memory[max(a, lo) : min(a + len(d), hi)]
                == d[max(a, lo) - a : min(a + len(d), hi) - a]
                for a, d in segments
                if a < hi and lo < a + len(d)  # a segment outside: a negative slice end
            )
            if not (incremental and same):
                model[lo:hi] = b"\xff" * size
    for at, data in segments:
        for i, byte in enumerate(data):
            model[at + i] &= byte
    return bytes(model)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1))
def test_a_reported_success_leaves_exactly_the_modelled_memory(seed: int) -> None:
    """Random flash contents, random images (unaligned, sharing sectors and blocks, 0xFF
    runs, bytes equal to the current ones), random erase mode, ``skip_erased``,
    ``incremental``, transfer size and block-number limit (pointer reuse and re-setting):
    whenever the download returns, sectors 0-4 hold exactly the model."""
    r = random.Random(seed)
    step = r.choice([2048, 1024, 256, 100, 33])
    board, backend, clock = _rig(step)
    memory = _random_memory(r)
    board.poke(BASE, bytes(memory))
    segments = _random_image(r, bytes(memory), step)
    erase = r.choice(["sectors", "sectors", "none"])
    incremental = r.random() < 0.5
    target = Target.from_segments([(BASE + a, d) for a, d in segments])
    with DfuDevice.open(backend=backend, clock=clock) as dev:
        dev.max_block = r.choice([MAX_BLOCK, 2, 3, 5])
        try:
            dev.download(target, erase=erase, skip_erased=r.random() < 0.7, incremental=incremental)
        except VerifyError:
            # only writing over unerased bytes may fail: the host then says so
            assert erase == "none"
            return
    expected = _expected(bytes(memory), segments, erase=erase, incremental=incremental)
    assert board.peek(BASE, SPAN) == expected
    for at, data in segments:
        assert board.peek(BASE + at, len(data)) == data


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1))
def test_flashing_a_backup_back_restores_every_erased_byte(seed: int) -> None:
    """``backup(plans)``, download, then download the backup: the whole flash is back as
    it was, bytes the image did not cover included (sector erases, incremental plans and a
    mass erase)."""
    r = random.Random(seed)
    board, backend, clock = _rig()
    size = 0x80000
    original = bytearray(b"\xff" * size)
    for _ in range(8):
        at = r.randrange(size)
        n = min(r.randint(1, 40000), size - at)
        original[at : at + n] = r.randbytes(n)
    board.poke(BASE, bytes(original))
    first = r.randrange(0x30000)
    segments = [(BASE + first, r.randbytes(r.randint(1, 9000)))]
    second = first + len(segments[0][1]) + r.randint(0, 70000)
    if second < size - 3000:
        segments.append((BASE + second, r.randbytes(r.randint(1, 3000))))
    target = Target.from_segments(segments)
    erase = r.choice(["sectors", "mass"])
    incremental = erase == "sectors" and r.random() < 0.5
    with DfuDevice.open(backend=backend, clock=clock) as dev:
        backup = dev.backup(dev.plan(target, erase=erase, incremental=incremental))
        dev.download(target, erase=erase, incremental=incremental)
        for at, data in segments:
            assert board.peek(at, len(data)) == data
        dev.download(backup)
    assert board.peek(BASE, size) == bytes(original)


# --------------------------------------------------------------------------- plain DFU


class _Flaky(PlainDfuDevice):
    """A plain DFU device whose programming drops bit 0 of one byte (a weak cell)."""

    def download_operation(self, block: int, data: bytes) -> Operation:
        if block == 1:
            data = data[:4] + bytes([data[4] & 0xFE]) + data[5:]
        return super().download_operation(block, data)


def _plain(tolerant: bool) -> tuple[_Flaky, SimBackend, VirtualClock]:
    clock = VirtualClock()
    chip = _Flaky(transfer_size=64, manifestation_tolerant=tolerant, clock=clock)
    return chip, SimBackend([chip], clock=clock), clock


def test_a_plain_dfu_download_is_read_back_when_the_device_can_be() -> None:
    """verify=True (the default) on a plain DFU device read nothing back: a corrupted
    download was reported as a success. A manifestation-tolerant device is back in
    dfuIDLE after manifesting: it is read back then."""
    image = bytes(range(1, 201))  # 200 bytes: 3 full blocks of 64 and a short one
    chip, backend, clock = _plain(tolerant=True)
    with DfuDevice.open(backend=backend, clock=clock) as dev:
        (plan,) = dev.plan(image)
        assert plan.plan.verify_bytes == len(image)
        assert isinstance(plan.plan.steps[-1], Verify)  # after the manifestation
        with pytest.raises(
            VerifyError, match="verify failed at 0x00000044: expected 0x45, found 0x44"
        ):
            dev.download(image)
        assert chip.peek(chip.memory.base + 68, 1) == b"\x44"
    chip, backend, clock = _plain(tolerant=True)
    chip.download_operation = super(_Flaky, chip).download_operation  # type: ignore[method-assign]
    with DfuDevice.open(backend=backend, clock=clock) as dev:
        (done,) = dev.download(image)
        assert done.plan.verify_bytes == len(image)
    assert chip.peek(chip.memory.base, len(image)) == image
    assert chip.manifestations == 1


def test_a_plain_dfu_device_that_resets_cannot_be_verified_and_says_so() -> None:
    """A device that is not manifestation tolerant resets into its application: nothing
    can be read back, and the plan says so (no verify step, 0 bytes verified)."""
    image = bytes(range(1, 201))
    chip, backend, clock = _plain(tolerant=False)
    with DfuDevice.open(backend=backend, clock=clock) as dev:
        (plan,) = dev.plan(image)
        assert plan.plan.verifies == ()
        (done,) = dev.download(image)
        assert done.plan.verify_bytes == 0
    # The host polled through dfuMANIFEST before the reset: a reset while the device still
    # said dfuMANIFEST cut its manifestation short (it came back in DFU mode, the
    # application never started) and the download was reported a success.
    assert chip.manifestations == 1
    assert chip.app_started


def test_a_closed_plain_device_cannot_be_verified() -> None:
    _chip, backend, clock = _plain(tolerant=True)
    with DfuDevice.open(backend=backend, clock=clock) as dev:
        dev.close()
        with pytest.raises(ProtocolError, match="nothing could be read back"):
            dev.verify(b"firmware")


# --------------------------------------------------------------------------- leave, OTP


def test_leave_waits_for_every_verify_of_every_target() -> None:
    """A board whose sector 0 is write-protected (erase and write silently ignored): the
    verify fails, and the device must not have been told to leave before it."""
    board, backend, clock = _rig()
    board.poke(BASE, b"\x00" * 16)
    board.set_write_protection([0])
    image = dfuse.DfuSeFile(
        (
            Target(2, "otp", (Element(0x1FFF7800, b"\x5a" * 32),)),
            Target(0, "flash", (Element(BASE, b"\x11" * 64),)),
        ),
        0x0483,
        0xDF11,
    )
    with DfuDevice.open(backend=backend, clock=clock) as dev:
        plans = dev.plan(image, leave=True, allow_otp=True)
        leaves = [
            (n, i)
            for n, p in enumerate(plans)
            for i, s in enumerate(p.plan.steps)
            if isinstance(s, Leave)
        ]
        assert leaves == [(len(plans) - 1, len(plans[-1].plan.steps) - 1)]  # once, at the end
        with pytest.raises(VerifyError):
            dev.download(image, leave=True, allow_otp=True)
    assert board.app_starts == []


@pytest.mark.parametrize("already", [b"\xff" * 32, b"\x5a" * 32, b"\x7f" * 32])
def test_incremental_otp_writes_only_what_differs(already: bytes) -> None:
    board, backend, clock = _rig()
    assert board.otp is not None
    board.otp.program(0x1FFF7800, already)
    wanted = Element(0x1FFF7800, b"\x5a" * 32)
    with DfuDevice.open(backend=backend, clock=clock) as dev:
        (plan,) = dev.plan(Target(2, "otp", (wanted,)), incremental=True, allow_otp=True)
        assert bool(plan.plan.writes) == (already != wanted.data)
        dev.download(Target(2, "otp", (wanted,)), incremental=True, allow_otp=True)
    assert board.peek(0x1FFF7800, 32) == wanted.data
    assert board.peek(0x1FFF7820, 32) == b"\xff" * 32  # the next block untouched


# --------------------------------------------------------------------------- gang


def test_gang_boards_each_get_the_image_and_only_that() -> None:
    """Four boards on one backend, each with its own old contents, one failing mid-way:
    every board reported flashed holds the image, its untouched sectors keep their own
    contents (no board's data lands on another), and the failed one is reported."""
    clock = VirtualClock()
    fault = Fault(FaultKind.ERR_WRITE, Event.WRITE, nth=2)
    boards = [
        Stm32F411(serial=f"G{i}", clock=clock, faults=[fault] if i == 2 else []) for i in range(4)
    ]
    olds = []
    for i, board in enumerate(boards):
        old = random.Random(i).randbytes(0x40000)
        board.poke(BASE, old)
        olds.append(old)
    backend = SimBackend(boards, clock=clock)
    segments = [(BASE + 0x100, random.Random(9).randbytes(5000)), (BASE + 0x20010, b"\x42" * 3000)]
    report = flash_many(
        [b.serial for b in boards], Target.from_segments(segments), backend=backend, clock=clock
    )
    assert [r.ok for r in report] == [True, True, False, True]
    for board, old, result in zip(boards, olds, report, strict=True):
        got = board.peek(BASE, 0x40000)
        assert got[0x4000:0x20000] == old[0x4000:0x20000]  # sectors 1-4: never touched
        if result.ok:
            expected = bytearray(b"\xff" * 0x4000) + old[0x4000:0x20000] + b"\xff" * 0x20000
            for at, data in segments:
                expected[at - BASE : at - BASE + len(data)] = data
            assert got == bytes(expected)


def test_an_address_for_a_plain_dfu_device_is_refused_not_ignored() -> None:
    """A plain DFU device has no addresses: ``address=0x08004000`` was ignored and the
    firmware written at the device's start, over what was there."""
    chip, backend, clock = _plain(tolerant=True)
    chip.download_operation = super(_Flaky, chip).download_operation  # type: ignore[method-assign]
    with DfuDevice.open(backend=backend, clock=clock) as dev:
        before = len(chip.request_log)
        with pytest.raises(SafetyError, match="plain DFU device has no addresses"):
            dev.download(b"\x42" * 100, address=0x08004000)
        with pytest.raises(SafetyError, match="plain DFU device has no addresses"):
            dev.verify(b"\x42" * 100, address=0x08004000)
        assert len(chip.request_log) == before
    assert chip.peek(chip.memory.base, 4) == b"\xff" * 4
