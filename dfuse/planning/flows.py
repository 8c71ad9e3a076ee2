"""What each verb does, step by step, as a generator of the driver's operations (no I/O).

A *flow* is a generator. It yields an operation (:data:`Op`): a DNLOAD and the
GETSTATUS polls after it, an UPLOAD block, selecting an alternate setting, waiting for
a device that reset itself, ... The driver (:class:`dfuse.device.DfuDevice`) performs
it and sends the result back (or throws the error in), and the flow goes on; what it
returns is the verb's result. Everything a verb decides between two requests lives
here: the order of a plan's steps and the safe points for a cancel (:func:`run`),
what a read returns (:func:`read`), what a verify compares, how a manifestation ends
(:func:`leave`), what an option-byte or OTP change reads first, writes and returns.
A test drives a flow with scripted results and no device (tests/planning/test_flows.py).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from dfuse.layout import MemoryLayout
from dfuse.optionbytes import OptionBytes, OtpArea, RdpLevel
from dfuse.parts import Part
from dfuse.planning import protection as prot
from dfuse.planning import reading
from dfuse.planning.download import TargetPlan
from dfuse.planning.protection import DEFAULT_RESET_WAIT_S
from dfuse.planning.record import Dnload, RunRecord, checked_block, dnload_of, leave_of, leaves
from dfuse.planning.record import zero_length as zero_length_dnload
from dfuse.progress import Phase, Progress, ProgressCallback
from dfuse.protocol import plan as steps
from dfuse.protocol.plan import Plan
from dfuse.protocol.session import Done, Event, Goal, SessionRules
from dfuse.transport.base import DeviceInfo

__all__ = [
    "CLOSE",
    "IDLE",
    "RESET",
    "Facts",
    "Flow",
    "Op",
    "Prepare",
    "Ready",
    "Signal",
    "Sleep",
    "Upload",
    "change_options",
    "drive",
    "leave",
    "protect_sectors",
    "read",
    "read_options",
    "read_otp",
    "read_unprotect",
    "run",
    "set_read_protection",
    "targets",
    "upload_dfu",
    "write_options",
    "write_otp",
]

T = TypeVar("T")


class Facts(Protocol):
    """What a flow reads of the device it runs on (facts only: no I/O). They may change
    while it runs: a device that resets and comes back is another part, other rules."""

    max_block: int

    @property
    def info(self) -> DeviceInfo: ...
    @property
    def part(self) -> Part | None: ...
    @property
    def rules(self) -> SessionRules: ...
    @property
    def alt(self) -> int | None: ...
    @property
    def layout(self) -> MemoryLayout | None: ...
    @property
    def transfer_size(self) -> int: ...
    @property
    def closed(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class Prepare:
    """Check the device may do ``action`` now (open, in DFU mode, DfuSe when ``dfuse``),
    and bring it back to dfuIDLE if the last operation failed. Result: ``None``."""

    action: str
    dfuse: bool = False


@dataclass(frozen=True, slots=True)
class Upload:
    """UPLOAD ``length`` bytes as wBlockNum ``block``. Result: the bytes the device sent."""

    block: int
    length: int
    action: str


@dataclass(frozen=True, slots=True)
class Ready:
    """Send what the session says must come before ``event`` (the ABORT that ends a
    read), naming ``action`` in errors. Result: ``None``."""

    event: Event
    action: str


@dataclass(frozen=True, slots=True)
class Sleep:
    """Wait ``seconds`` on the device's clock. Result: ``None``."""

    seconds: float


@dataclass(frozen=True, slots=True)
class Signal:
    """An operation without arguments (:data:`IDLE`, :data:`CLOSE`, :data:`RESET`).
    Result: ``None``."""

    name: str


#: Bring the device back to dfuIDLE, if it is open in DFU mode (after a cancel).
IDLE = Signal("idle")
#: Release the device: it reset itself or left DFU mode.
CLOSE = Signal("close")
#: USB-reset the device (best effort: it may already be gone).
RESET = Signal("reset")

#: What a flow asks the driver for. A :class:`~dfuse.planning.record.Dnload` results in
#: the :class:`~dfuse.protocol.session.Done` that ended its polls; ``SelectAlt`` in the
#: selected setting; ``AwaitReset`` in ``None`` once the device is back.
Op = Prepare | Upload | Ready | Sleep | Signal | Dnload | steps.SelectAlt | steps.AwaitReset

#: A verb as a generator: yields :data:`Op`, is sent their results, returns ``T``.
Flow = Generator[Op, Any, T]


def run(dev: Facts, plan: Plan, record: RunRecord) -> Flow[None]:
    """Run ``plan``'s steps, recording what they do in ``record``. Every step boundary is
    a safe point: once ``record.cancel`` is set, the device is brought back to dfuIDLE
    and :class:`~dfuse.errors.CancelledError` says what was done."""
    for step in plan.steps:
        if (stop := record.enter(step)) is not None:
            yield IDLE  # ABORT back to dfuIDLE
            raise stop
        yield from _step(dev, step, plan, record)
        record.done(step)


def drive(dev: Facts, plan: Plan, progress: ProgressCallback | None = None,
          cancel: threading.Event | None = None) -> Flow[None]:  # fmt: skip
    """:func:`run` ``plan`` on its own: ``progress`` sees its totals, ``cancel`` stops it."""
    yield from run(dev, plan, RunRecord(Progress(progress, reading.totals([plan])), cancel))


def targets(dev: Facts, plans: Iterable[TargetPlan], record: RunRecord) -> Flow[None]:
    """Run each target's plan on its alternate setting (selected first when another)."""
    for target in plans:
        if target.alt is not None and target.alt != dev.alt:
            yield steps.SelectAlt(target.alt)
        yield from run(dev, target.plan, record)


def _step(dev: Facts, step: steps.Step, plan: Plan, record: RunRecord) -> Flow[None]:
    if (request := dnload_of(step, dev.rules)) is not None:
        yield request
        if request.goal is Goal.RESET:
            yield CLOSE  # the device erases its flash or applies the options, and resets
    elif isinstance(step, steps.ReadBlock):
        data = yield Upload(step.block, step.length, reading.action_of(step))
        record.data += checked_block(step, data)
    elif isinstance(step, steps.Verify) and plan.dfuse:
        job = (None, [(step.address, step.length)])
        ((_at, back),) = (yield from read(dev, [job], record, Phase.VERIFY))[0]
        reading.compare(step.address, step.data, back)
    elif isinstance(step, steps.Verify):  # plain DFU: the firmware from block 0 on
        reading.readable_after_leave(dev.closed)
        try:
            back = reading.whole_firmware((yield from upload_dfu(dev, step.length)), step.length)
        except GeneratorExit:
            raise  # its driver gave up on the flow: nothing may be yielded now
        except BaseException:
            if leaves(plan):
                yield CLOSE  # it has left DFU mode as far as the host is concerned
            raise
        if leaves(plan):
            yield CLOSE
        record.report.add(Phase.VERIFY, step.length)
        reading.compare(step.address, step.data, back)
    elif isinstance(step, steps.Leave):
        record.report.add(Phase.LEAVE, 0)
        yield from leave(dev, *leave_of(step, plan, dev.info, dev.rules))
    elif isinstance(step, steps.SelectAlt | steps.AwaitReset):
        yield step
    elif isinstance(step, steps.ConfirmOptions):
        reading.confirm_options(step, (yield from read_options(dev)).to_bytes())


def leave(dev: Facts, address: int | None, block: int, stay: bool = False) -> Flow[None]:
    """Set the address (DfuSe, unless ``None``), send the zero-length DNLOAD as ``block``
    and see the manifestation through: reset the device when the session says so, or
    give it time. The device is closed afterwards, unless ``stay`` and it came back to
    dfuIDLE (a manifestation-tolerant plain DFU device, to be read back)."""
    if address is not None:
        yield from drive(dev, Plan((steps.SetAddress(address),), dev.transfer_size))
    done: Done = yield zero_length_dnload(block, dev.rules)
    if done.reset:
        yield RESET
    elif done.linger_s:
        yield Sleep(done.linger_s)
    if done.gone or done.reply is None or not stay:
        yield CLOSE


def read(
    dev: Facts,
    jobs: reading.ReadJobs,
    record: RunRecord,
    phase: Phase = Phase.READ,
    restore: bool = False,
) -> Flow[list[list[tuple[int, bytes]]]]:
    """Upload each job's ``(address, length)`` ranges from its alternate setting
    (``None``: the selected one; ``restore`` selects it again after), reported as
    ``phase``; the bytes, per range per job."""
    yield Prepare("upload", dfuse=True)
    plan, ranges = reading.jobs_plan(
        jobs, dev.alt, dev.transfer_size, dev.max_block, restore=restore
    )
    mark = record.start_read(phase, plan.image_size)
    yield from run(dev, plan, record)
    yield Ready(Event.DNLOAD, reading.ending(ranges))
    data = bytes(record.data[mark:])
    del record.data[mark:]
    return reading.cut(data, ranges)


def upload_dfu(dev: Facts, max_length: int) -> Flow[bytes]:
    """Plain DFU 1.1 upload: blocks from 0 until a short one (or ``max_length`` bytes)."""
    yield Prepare("upload")
    out = bytearray()
    for block, n, action in reading.dfu_blocks(dev.transfer_size, max_length, out):
        out += yield Upload(block, n, action)
    yield Ready(Event.DNLOAD, f"reading the firmware ({len(out)} bytes)")
    return bytes(out)


def _read_one(dev: Facts, job: tuple[int, list[tuple[int, int]]]) -> Flow[bytes]:
    """Upload ``job``'s one range, then select the previous alternate setting again."""
    result = yield from read(dev, [job], RunRecord(Progress(None)), restore=True)
    return result[0][0][1]


def read_options(dev: Facts) -> Flow[OptionBytes]:
    """Read the option-byte block (the ``Option Bytes`` alternate setting)."""
    yield Prepare("read the option bytes")
    raw = yield from _read_one(dev, prot.option_job(dev.info, dev.part))
    return OptionBytes.parse(raw, sectors=prot.nwrp_bits(dev.info))  # 12 on an F405/F407


def read_otp(dev: Facts) -> Flow[OtpArea]:
    """Read the OTP area (16 blocks of 32 bytes and their 16 lock bytes)."""
    return OtpArea.parse((yield from _read_one(dev, prot.otp_job(dev.info))))


def write_options(dev: Facts, options: OptionBytes, *, confirm: bool, rdp2: bool) -> Flow[None]:
    """Write the option-byte block as it is asked (the device applies it and resets)."""
    prot.guard_rdp2(options.rdp_level, rdp2)
    yield Prepare("write the option bytes")
    current = yield from read_options(dev)
    yield from drive(dev, prot.plan_option_bytes(dev.info, current, options, confirm=confirm,
                     allow_permanent_rdp2=rdp2, reconnect=False, always=True))  # fmt: skip


def change_options(dev: Facts, options: OptionBytes, *, confirm: bool = False,
                   rdp2: bool = False, wait_s: float = DEFAULT_RESET_WAIT_S
                   ) -> Flow[OptionBytes]:  # fmt: skip
    """Change the option bytes to ``options`` (:func:`_change`); level 2 is refused
    without ``rdp2`` before anything is read."""
    prot.guard_rdp2(options.rdp_level, rdp2)
    return (yield from _change(dev, lambda _now: options, "change the option bytes",
                               confirm=confirm, rdp2=rdp2, wait_s=wait_s))  # fmt: skip


def set_read_protection(dev: Facts, level: int, *, confirm: bool = False, rdp2: bool = False,
                        wait_s: float = DEFAULT_RESET_WAIT_S) -> Flow[OptionBytes]:  # fmt: skip
    """Change the read-protection level of the option bytes the device holds
    (:func:`_change`); level 2 is refused without ``rdp2`` before anything is read."""
    prot.guard_rdp2(RdpLevel(level), rdp2)

    def edit(now: OptionBytes) -> OptionBytes:
        return now.with_rdp(RdpLevel(level), allow_level_2=rdp2)

    return (yield from _change(dev, edit, "set read protection", confirm=confirm, rdp2=rdp2,
                               wait_s=wait_s))  # fmt: skip


def protect_sectors(dev: Facts, sectors: Iterable[int], protect: bool,
                    wait_s: float = DEFAULT_RESET_WAIT_S) -> Flow[OptionBytes]:  # fmt: skip
    """Add write protection to flash ``sectors`` (``protect``) or remove it from them
    (:func:`_change`); sector numbers the flash does not have are refused first."""
    chosen = prot.flash_sector_numbers(dev.info, sectors)

    def edit(now: OptionBytes) -> OptionBytes:
        if protect:
            return now.with_sectors_protected(chosen)
        return now.with_sectors_unprotected(chosen)

    return (yield from _change(dev, edit, None, wait_s=wait_s))


def _change(
    dev: Facts,
    edit: Callable[[OptionBytes], OptionBytes],
    action: str | None,
    *,
    confirm: bool = False,
    rdp2: bool = False,
    wait_s: float = DEFAULT_RESET_WAIT_S,
) -> Flow[OptionBytes]:
    """Change the option bytes to ``edit(current)``: write them, wait for the device to
    come back (``wait_s``), confirm and return them. Nothing is written when the device
    holds them already; level 2 (the device never comes back) is returned unconfirmed."""
    if action is not None:
        yield Prepare(action)
    current = yield from read_options(dev)
    new = edit(current)
    plan = prot.plan_option_bytes(dev.info, current, new, confirm=confirm, wait_s=wait_s,
                                  allow_permanent_rdp2=rdp2, previous=dev.alt)  # fmt: skip
    if not plan.steps:
        return current
    yield from drive(dev, plan)
    return new if new.rdp_level is RdpLevel.LEVEL_2 else (yield from read_options(dev))


def read_unprotect(dev: Facts, *, confirm: bool, reconnect: bool, wait_s: float
                   ) -> Flow[OptionBytes | None]:  # fmt: skip
    """Read Unprotect; with ``reconnect``, the option bytes of the device come back (RDP
    level 0, else :class:`~dfuse.errors.ProtocolError`)."""
    plan = prot.plan_read_unprotect(confirm=confirm, reconnect=reconnect, wait_s=wait_s)
    yield Prepare("remove read protection", dfuse=True)
    yield from drive(dev, plan)
    return prot.unprotected((yield from read_options(dev))) if reconnect else None


def write_otp(dev: Facts, block: int, data: bytes | None, *, lock: bool, confirm: bool = False
              ) -> Flow[OtpArea]:  # fmt: skip
    """Program OTP ``block`` with ``data`` (``None``: only lock it) and/or lock it; the
    area read back (nothing is written, or read again, when it holds them already). A bad
    block number or size, or a lock without ``confirm``, is refused before any request."""
    prot.check_otp_block(block, lock=lock, confirm=confirm, data=data)
    yield Prepare("write OTP")
    plan, expected = prot.plan_otp(dev.info, (yield from read_otp(dev)), block, data, lock=lock,
                                   previous=dev.alt)  # fmt: skip
    yield from drive(dev, plan)
    return expected if not plan.steps else (yield from read_otp(dev))
