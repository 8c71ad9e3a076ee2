"""Checks and plans for the driver's other verbs, without USB traffic: what an erase,
an upload, a backup or a read of a whole memory covers, whether a plan fits a
device, and how a read-back is compared."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator

from dfuse.errors import ProtocolError, SafetyError, UsageError, VerifyError
from dfuse.file.model import DfuSeFile, Target
from dfuse.layout import MemoryLayout, Sector
from dfuse.optionbytes import OptionBytes
from dfuse.planning.download import Segments, TargetPlan
from dfuse.progress import Phase
from dfuse.protocol.dfuse import FIRST_DATA_BLOCK, MAX_BLOCK
from dfuse.protocol.plan import (
    ConfirmOptions,
    EraseSector,
    MassErase,
    Plan,
    ReadBlock,
    SelectAlt,
    SetAddress,
    Step,
    Verify,
)
from dfuse.transport.base import AltSetting, DeviceInfo

__all__ = [
    "ReadJobs",
    "action_of",
    "backup_file",
    "backup_ranges",
    "check_plan",
    "check_read",
    "check_upload",
    "compare",
    "confirm_options",
    "cut",
    "dfu_blocks",
    "ending",
    "erase_plan",
    "jobs_plan",
    "layout_of",
    "read_plan",
    "readable_after_leave",
    "readable_runs",
    "totals",
    "transfer_size_for",
    "verify_plan",
    "whole_firmware",
]

_log = logging.getLogger(__name__)


def transfer_size_for(info: DeviceInfo, override: int | None) -> int:
    """The block size to use: ``override`` (plain DFU only: a DfuSe device places blocks
    wTransferSize apart), else the functional descriptor's, else 1024."""
    fd = info.functional
    own = fd.transfer_size if fd is not None else 0
    if override and own > 0 and fd is not None and fd.is_dfuse and override != own:
        raise UsageError(
            f"a DfuSe device places data blocks {own} bytes apart (its wTransferSize "
            f"{own}); transfer_size={override} would write and read them at the wrong "
            "addresses",
            value=override,
            expected=str(own),
        )
    if not (override or own):
        _log.warning("%s has no wTransferSize: using 1024", info.describe())
    return override or own or 1024


def check_plan(plan: Plan, *, is_dfuse: bool, transfer_size: int) -> None:
    """Refuse a plan made for another kind of device, or cut to another transfer size."""
    if plan.dfuse != is_dfuse:
        kind, other = ("DfuSe", "plain DFU") if plan.dfuse else ("plain DFU", "DfuSe")
        raise UsageError(f"a {kind} plan cannot run on a {other} device")
    if plan.dfuse and plan.transfer_size != transfer_size:
        raise UsageError(
            f"the plan's blocks are cut to {plan.transfer_size} bytes; this device places "
            f"them {transfer_size} bytes apart (its wTransferSize): they would land at the "
            "wrong addresses",
            value=plan.transfer_size,
            expected=str(transfer_size),
        )


def erase_plan(
    layout: MemoryLayout | None, sectors: Iterable[Sector | int] | str, transfer_size: int
) -> Plan:
    """Erase steps for ``sectors`` (Sector objects or addresses in them), each once in
    address order, or ``"all"`` (one mass erase); SafetyError for an address in no sector
    or a sector not erasable, UsageError for another string."""
    if isinstance(sectors, str):
        if sectors != "all":
            raise UsageError(f"erase() takes sectors or 'all', got {sectors!r}", value=sectors)
        return Plan((MassErase(),), transfer_size)
    label = layout.label if layout is not None else "the selected alternate setting"
    chosen: dict[int, Sector] = {}
    for which in sectors:
        address = which.address if isinstance(which, Sector) else which
        s = layout.sector_at(address) if layout is not None else None
        if s is None or (isinstance(which, Sector) and s != which):
            raise SafetyError(f"refusing to erase 0x{address:08X}: it is in no sector of {label}")
        if not s.erasable:
            raise SafetyError(
                f"refusing to erase sector {s.index} at 0x{s.address:08X}: "
                "the layout marks it not erasable"
            )
        chosen[s.address] = s
    steps = tuple(EraseSector(s.index, s.address, s.size) for _a, s in sorted(chosen.items()))
    return Plan(steps, transfer_size)


def check_read(layout: MemoryLayout | None, address: int, length: int) -> None:
    """Refuse a negative length, or a read that starts in ``layout`` and runs past its end."""
    if not isinstance(length, int) or isinstance(length, bool) or length < 0:
        raise UsageError(f"length must not be negative, got {length}", value=length)
    if layout is not None and layout.address <= address < layout.end < address + length:
        span = f"0x{layout.address:08X}..0x{layout.end - 1:08X}"
        raise UsageError(
            f"reading {length} bytes at 0x{address:08X} goes past the memory "
            f"{layout.label!r} ({span})",
            value=(address, length),
            expected=f"a range inside {span}",
        )


def check_upload(layout: MemoryLayout | None, address: int, length: int, *, is_dfuse: bool) -> None:
    """:func:`check_read`, and :class:`~dfuse.errors.UsageError` unless the device speaks
    DfuSe (a plain DFU device has no addresses: ``upload_dfu()``)."""
    check_read(layout, address, length)
    if not is_dfuse:
        raise UsageError("upload(address, length) needs a DfuSe device; use upload_dfu()")


def read_plan(address: int, length: int, transfer_size: int, max_block: int) -> Plan:
    """Read ``length`` bytes at ``address``: Set Address, then UPLOAD blocks from
    wBlockNum 2 (the pointer set again past ``max_block``)."""
    steps: list[Step] = []
    offset, block = 0, max_block + 1
    while offset < length:
        where, n = address + offset, min(transfer_size, length - offset)
        if block > max_block:
            purpose = f"reading 0x{where:08X} ({length - offset} bytes)"
            steps.append(SetAddress(where, purpose))
            block = FIRST_DATA_BLOCK
        steps.append(ReadBlock(block, where, n))
        offset, block = offset + n, block + 1
    return Plan(tuple(steps), transfer_size, image_size=length, segments=1)


def dfu_blocks(
    transfer_size: int, max_length: int, out: bytearray
) -> Iterator[tuple[int, int, str]]:
    """The UPLOAD blocks of a plain DFU upload into ``out``, as ``(wBlockNum, length,
    action)``: from block 0 until one comes back short (``out`` grew by less than
    asked) or ``out`` holds ``max_length`` bytes."""
    block = 0
    while len(out) < max_length:
        n, before = min(transfer_size, max_length - len(out)), len(out)
        yield block & MAX_BLOCK, n, f"reading block {block}"
        block += 1
        if len(out) - before < n:
            return


def action_of(step: ReadBlock) -> str:
    """What reading ``step`` does, in words (for errors)."""
    return f"reading 0x{step.address:08X} ({step.length} bytes)"


def layout_of(setting: AltSetting | None, number: int | None) -> MemoryLayout:
    """The memory layout of the selected alternate ``setting`` (number ``number``), or
    :class:`~dfuse.errors.ProtocolError` when it has none to read."""
    if setting is None or setting.layout is None:
        raise ProtocolError(
            f"alternate setting {number} has no memory layout to read "
            f"(its name is {setting.name if setting else None!r})"
        )
    return setting.layout


def readable_after_leave(closed: bool) -> None:
    """Refuse (:class:`~dfuse.errors.ProtocolError`) to read a plain DFU device back
    once it has left (``closed``)."""
    if closed:
        raise ProtocolError(
            "verifying: the device left after manifesting the firmware (it is closed): "
            "nothing could be read back"
        )


def whole_firmware(back: bytes, length: int) -> bytes:
    """``back``, the plain DFU firmware read to verify ``length`` bytes, unless short
    (:class:`~dfuse.errors.ProtocolError`)."""
    if len(back) < length:
        raise ProtocolError(
            f"verifying: the device uploaded {len(back)} bytes of firmware, the image has {length}"
        )
    return back


#: What to read: ``(alt, ranges)`` jobs, ``alt`` ``None`` for the selected alternate setting
#: and each range ``(address, length)``.
ReadJobs = Iterable[tuple[int | None, Iterable[tuple[int, int]]]]


def jobs_plan(
    jobs: ReadJobs, current: int | None, transfer_size: int, max_block: int, *, restore: bool
) -> tuple[Plan, list[list[tuple[int, int]]]]:
    """Read every range of ``jobs`` (:func:`read_plan`), selecting each alternate setting
    that is not ``current`` first (and ``current`` again at the end when ``restore``);
    also the ranges, per job, to cut the bytes read into (:func:`cut`)."""
    out: list[Step] = []
    ranges: list[list[tuple[int, int]]] = []
    at = current
    for alt, wanted in jobs:
        if alt is not None and alt != at:
            out.append(SelectAlt(alt))
            at = alt
        ranges.append(list(wanted))
        for address, length in ranges[-1]:
            out.extend(read_plan(address, length, transfer_size, max_block).steps)
    if restore and current is not None and at != current:
        out.append(SelectAlt(current))
    size = sum(n for job in ranges for _a, n in job)
    return Plan(tuple(out), transfer_size, image_size=size, segments=len(ranges)), ranges


def ending(ranges: list[list[tuple[int, int]]]) -> str:
    """What the ABORT that ends a :func:`jobs_plan` read is for, in words (the last range)."""
    address, length = next(((a, n) for job in reversed(ranges) for a, n in reversed(job)), (0, 0))
    return f"reading 0x{address:08X} ({length} bytes)"


def cut(data: bytes, ranges: list[list[tuple[int, int]]]) -> list[list[tuple[int, bytes]]]:
    """``data``, read by a :func:`jobs_plan`, as ``(address, bytes)`` per range per job."""
    out: list[list[tuple[int, bytes]]] = []
    offset = 0
    for job in ranges:
        out.append([])
        for address, length in job:
            out[-1].append((address, data[offset : offset + length]))
            offset += length
    return out


def readable_runs(layout: MemoryLayout) -> list[tuple[int, int]]:
    """``(address, size)`` of each contiguous run of readable sectors."""
    runs: list[tuple[int, int]] = []
    for s in layout.sectors:
        if s.readable and runs and runs[-1][0] + runs[-1][1] == s.address:
            runs[-1] = (runs[-1][0], runs[-1][1] + s.size)
        elif s.readable:
            runs.append((s.address, s.size))
    return runs


def backup_ranges(
    plans: Iterable[TargetPlan], info: DeviceInfo
) -> list[tuple[TargetPlan, list[tuple[int, int]]]]:
    """What each plan will erase, as ``(address, size)`` ranges to read first (a mass
    erase: the alternate setting's whole memory)."""
    jobs: list[tuple[TargetPlan, list[tuple[int, int]]]] = []
    for plan in plans:
        if plan.alt is None:
            raise UsageError(
                "backup needs a DfuSe device: a plain DFU plan has no addresses to read"
            )
        layout = info.alt(plan.alt).layout
        ranges = []
        for erase in plan.plan.erases:
            if isinstance(erase, EraseSector):
                ranges.append((erase.address, erase.size))
            elif layout is None:
                raise ProtocolError(f"alternate setting {plan.alt} has no memory layout to back up")
            else:
                ranges.append((layout.address, layout.size))
        jobs.append((plan, ranges))
    return jobs


def backup_file(
    jobs: list[tuple[TargetPlan, list[tuple[int, int]]]],
    read: list[list[tuple[int, bytes]]],
    info: DeviceInfo,
) -> DfuSeFile:
    """The backup of ``jobs`` (:func:`backup_ranges`) from what was ``read`` for them: one
    target per plan, with the device's IDs."""
    targets = tuple(
        Target.from_segments(segments, alt_setting=plan.alt or 0, name=plan.name)
        for (plan, _ranges), segments in zip(jobs, read, strict=True)
    )
    return DfuSeFile(targets, info.vid, info.pid, info.bcd_device)


def verify_plan(
    jobs: Iterable[tuple[int | None, MemoryLayout | None, Segments]],
    current: int | None,
    transfer_size: int,
    *,
    dfuse: bool = True,
) -> Plan:
    """Read back and compare every segment of ``jobs`` (``(alt, layout, segments)``, as
    :func:`~dfuse.planning.download.image_jobs` makes them), selecting each alternate
    setting that is not ``current`` (``dfuse=False``: a plain DFU device's firmware,
    from block 0). A segment that runs past the end of its memory is
    refused (:func:`check_read`) before anything is read."""
    out: list[Step] = []
    size = count = 0
    for alt, layout, segs in jobs:
        if alt is not None and alt != current:
            out.append(SelectAlt(alt))
            current = alt
        for where, data in segs:
            view = memoryview(data).cast("B")
            check_read(layout, where, len(view))
            out.append(Verify(where, view))
            size, count = size + len(view), count + 1
    return Plan(tuple(out), transfer_size, image_size=size, segments=count, dfuse=dfuse)


def totals(plans: Iterable[Plan]) -> dict[Phase, int]:
    """The progress totals of running ``plans``."""
    plans = list(plans)
    return {
        Phase.ERASE: sum(p.erase_bytes for p in plans),
        Phase.WRITE: sum(p.write_bytes for p in plans),
        Phase.VERIFY: sum(p.verify_bytes for p in plans),
        Phase.LEAVE: 1,
    }


def compare(address: int, expected: memoryview, found: bytes) -> None:
    """VerifyError (first differing address, bytes, how many differ) unless equal."""
    if expected == found:
        return
    n = len(expected)
    first = next(i for i in range(n) if expected[i] != found[i])
    mismatches = sum(1 for i in range(first, n) if expected[i] != found[i])
    raise VerifyError(address + first, expected[first], found[first], mismatches=mismatches)


def confirm_options(step: ConfirmOptions, found: bytes) -> None:
    """:class:`~dfuse.errors.VerifyError` unless the option bytes read back, ``found``,
    hold the value (OPTCR) ``step`` wrote."""
    if OptionBytes.parse(found).optcr != OptionBytes.parse(step.data).optcr:
        compare(step.address, memoryview(step.data), found)
