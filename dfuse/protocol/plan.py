"""Download planning: pure functions from an image to an explicit list of steps.

A plan says, before any USB traffic, exactly what a download will do: which
sectors it erases (only those the image touches, each once, in address order),
where it sets the DfuSe address pointer, which blocks it writes with which
``wBlockNum``, what it reads back to verify, and whether it leaves DFU mode.
The device layer executes a plan step by step; a plan also prints as a dry run::

    >>> from dfuse.protocol.plan import plan_download
    >>> # plan = plan_download([(0x08000000, firmware)], layout, 2048)
    >>> # print(plan)

Rules the planner applies (DfuSe):

* every byte of the image must lie in a writable sector of the layout, or the
  plan is refused with :class:`~dfuse.errors.SafetyError`;
* the address pointer is set once and data blocks then count up from
  ``wBlockNum`` 2, landing at ``pointer + (n - 2) * transfer_size``; the pointer
  is set again only when the next block cannot be reached from it (a gap that
  is not a multiple of the transfer size, or a block number past 0xFFFF);
* a block that is all 0xFF and lies entirely in erased memory is not sent
  (DfuSe Demo's "optimize"): erased flash already reads 0xFF.

Plain DFU 1.1 (:func:`plan_dfu_download`) has no addresses: blocks are numbered
from 0 and the download ends with a zero-length DNLOAD.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from dfuse.errors import SafetyError
from dfuse.protocol.dfuse import FIRST_DATA_BLOCK, MAX_BLOCK
from dfuse.segments import merge_views

__all__ = [
    "AwaitReset",
    "ConfirmOptions",
    "EraseMode",
    "EraseSector",
    "LayoutLike",
    "Leave",
    "MassErase",
    "Plan",
    "PlanOptions",
    "ReadBlock",
    "ReadUnprotect",
    "SectorAction",
    "SectorDecision",
    "SectorLike",
    "SelectAlt",
    "SetAddress",
    "Step",
    "Verify",
    "WriteBlock",
    "WriteOptions",
    "plan_dfu_download",
    "plan_download",
    "plan_incremental",
]

Buffer = bytes | bytearray | memoryview


class SectorLike(Protocol):
    """What the planner needs from a sector (``dfuse.layout.Sector`` fits)."""

    @property
    def address(self) -> int:
        """First address of the sector."""
        ...

    @property
    def size(self) -> int:
        """Size in bytes."""
        ...

    @property
    def erasable(self) -> bool:
        """Whether the sector can be erased."""
        ...

    @property
    def writable(self) -> bool:
        """Whether the sector can be written."""
        ...


class LayoutLike(Protocol):
    """What the planner needs from a memory layout (``dfuse.layout.MemoryLayout`` fits)."""

    @property
    def sectors(self) -> Sequence[SectorLike]:
        """Every sector of every region."""
        ...


class EraseMode(StrEnum):
    """How a download erases before writing."""

    #: Erase exactly the sectors the image touches (the default).
    SECTORS = "sectors"
    #: One mass erase of the whole flash.
    MASS = "mass"
    #: Do not erase (the memory must already be erased, or be one-time programmable).
    NONE = "none"


# --------------------------------------------------------------------------- steps


@dataclass(frozen=True, slots=True)
class EraseSector:
    """Erase one sector (DfuSe ``0x41`` + address).

    Attributes:
        index: the sector's position in the layout (sector 5 of the F411 is 0x08020000).
        address: the sector's first address (sent as the erase address).
        size: the sector's size in bytes.
    """

    index: int
    address: int
    size: int

    def describe(self) -> str:
        """One line for a dry run."""
        return f"erase sector {self.index} at 0x{self.address:08X} ({_size(self.size)})"

    def to_dict(self) -> dict[str, object]:
        """A JSON-able record: ``{"sector", "address", "size"}``."""
        return {"sector": self.index, "address": self.address, "size": self.size}


@dataclass(frozen=True, slots=True)
class MassErase:
    """Erase the whole flash (DfuSe ``0x41`` alone)."""

    def describe(self) -> str:
        """One line for a dry run."""
        return "mass erase"

    def to_dict(self) -> dict[str, object]:
        """A JSON-able record: ``{"all": True}``."""
        return {"all": True}


@dataclass(frozen=True, slots=True)
class SetAddress:
    """Set the DfuSe address pointer (``0x21`` + address); data blocks count from it.
    ``purpose`` says what for, in error messages (``"reading 0x08000000 (16 bytes)"``)."""

    address: int
    purpose: str = field(default="", compare=False)

    def describe(self) -> str:
        """One line for a dry run."""
        return f"set address pointer to 0x{self.address:08X}"


@dataclass(frozen=True, slots=True)
class ReadBlock:
    """Read one block (UPLOAD with ``wBlockNum = block``, ``length`` bytes at ``address``)."""

    block: int
    address: int
    length: int

    def describe(self) -> str:
        """One line for a dry run."""
        return f"read block {self.block} at 0x{self.address:08X} ({self.length} bytes)"


@dataclass(frozen=True, slots=True)
class WriteBlock:
    """Send one data block (DNLOAD with ``wBlockNum = block``).

    Attributes:
        block: the wBlockNum (DfuSe: >= 2; plain DFU: counts from 0).
        address: where the block lands (DfuSe), ``None`` for plain DFU.
        data: the block's bytes (a view into the image, not a copy).
    """

    block: int
    address: int | None
    data: memoryview = field(repr=False)

    @property
    def length(self) -> int:
        """Number of bytes in the block."""
        return len(self.data)

    def describe(self) -> str:
        """One line for a dry run."""
        where = f" at 0x{self.address:08X}" if self.address is not None else ""
        return f"write block {self.block}{where} ({self.length} bytes)"


@dataclass(frozen=True, slots=True)
class Verify:
    """Read back ``len(data)`` bytes at ``address`` and compare them with ``data``."""

    address: int
    data: memoryview = field(repr=False)

    @property
    def length(self) -> int:
        """Number of bytes to read back."""
        return len(self.data)

    def describe(self) -> str:
        """One line for a dry run."""
        return f"verify 0x{self.address:08X}..0x{self.address + self.length - 1:08X}" + (
            f" ({self.length} bytes)"
        )


@dataclass(frozen=True, slots=True)
class Leave:
    """Leave DFU mode: a zero-length DNLOAD, then GETSTATUS (dfuMANIFEST).

    Attributes:
        address: DfuSe only: set the address pointer here first (the device jumps
            to it); ``None`` keeps the pointer (the ST bootloader then starts the
            application at 0x08000000).
    """

    address: int | None = None

    def describe(self) -> str:
        """One line for a dry run."""
        if self.address is None:
            return "leave DFU mode (zero-length DNLOAD)"
        return f"leave DFU mode, jumping to 0x{self.address:08X}"


@dataclass(frozen=True, slots=True)
class SelectAlt:
    """Select alternate setting ``alt`` (SET_INTERFACE): the memory the next steps use."""

    alt: int

    def describe(self) -> str:
        """One line for a dry run."""
        return f"select alternate setting {self.alt}"


@dataclass(frozen=True, slots=True)
class ReadUnprotect:
    """DfuSe Read Unprotect (``0x92``): the device mass-erases its flash, clears read
    protection and resets (AN3156)."""

    def describe(self) -> str:
        """One line for a dry run."""
        return "read unprotect (the device erases its flash and resets)"


@dataclass(frozen=True, slots=True)
class WriteOptions:
    """Write the option-byte block at ``address`` (DNLOAD block 2 after Set Address):
    the device applies it and resets, with no second GETSTATUS answered (AN3156)."""

    address: int
    data: bytes = field(repr=False)

    def describe(self) -> str:
        """One line for a dry run."""
        return f"write option bytes {self.data.hex()} at 0x{self.address:08X} (the device resets)"


@dataclass(frozen=True, slots=True)
class AwaitReset:
    """Wait up to ``wait_s`` for the device to re-enumerate after it reset itself,
    reopen it in place and bring it to dfuIDLE."""

    wait_s: float

    def describe(self) -> str:
        """One line for a dry run."""
        return f"wait up to {self.wait_s:g} s for the device to come back"


@dataclass(frozen=True, slots=True)
class ConfirmOptions:
    """Read the option bytes back and compare their value (OPTCR) with ``data``."""

    address: int
    data: bytes = field(repr=False)

    def describe(self) -> str:
        """One line for a dry run."""
        return f"confirm the option bytes at 0x{self.address:08X}"


Step = (
    EraseSector
    | MassErase
    | SetAddress
    | WriteBlock
    | Verify
    | Leave
    | SelectAlt
    | ReadBlock
    | ReadUnprotect
    | WriteOptions
    | AwaitReset
    | ConfirmOptions
)


class SectorAction(StrEnum):
    """What an incremental download does with one sector the image touches."""

    #: The sector already holds the image's bytes: no erase, no write, no read-back after.
    SKIP = "skip"
    #: The sector differs: erase it, then write the image's bytes into it.
    REWRITE = "rewrite"
    #: The sector differs but is not erased (erase mode ``none`` or a sector the layout
    #: marks not erasable): the image's bytes are written over the current content.
    WRITE = "write"


@dataclass(frozen=True, slots=True)
class SectorDecision:
    """Why an incremental download skips or rewrites one sector.

    Attributes:
        index: the sector's position in the layout.
        address: the sector's first address.
        size: the sector's size in bytes.
        action: what the download does with it (:class:`SectorAction`).
        image_bytes: how many bytes of the image lie in the sector.
        differing: how many of those differ from the read-back (the bytes not read
            back count as differing).
        first_difference: the address of the first differing byte (``None`` when the
            sector is skipped).
    """

    index: int
    address: int
    size: int
    action: SectorAction
    image_bytes: int
    differing: int = 0
    first_difference: int | None = None

    @property
    def reason(self) -> str:
        """Why, in words."""
        if self.action is SectorAction.SKIP:
            return f"unchanged: its {self.image_bytes} image byte(s) already match"
        where = f" from 0x{self.first_difference:08X}" if self.first_difference is not None else ""
        why = f"{self.differing} of {self.image_bytes} image byte(s) differ{where}"
        if self.action is SectorAction.WRITE:
            why += "; written without an erase"
        return why

    def to_dict(self) -> dict[str, object]:
        """A JSON-able record: sector, address, size, action and the reason in words."""
        return {
            "sector": self.index,
            "address": self.address,
            "size": self.size,
            "action": self.action.value,
            "reason": self.reason,
        }

    def describe(self) -> str:
        """One line for a dry run."""
        return (
            f"{self.action.value:7s} sector {self.index} at 0x{self.address:08X} "
            f"({_size(self.size)}): {self.reason}"
        )


# --------------------------------------------------------------------------- plan


@dataclass(frozen=True, slots=True)
class PlanOptions:
    """Knobs of :func:`plan_download`.

    Attributes:
        erase: how to erase (:class:`EraseMode`).
        skip_erased: skip blocks that are all 0xFF inside erased memory.
        verify: add :class:`Verify` steps (read-back of every written range).
        leave: end with a :class:`Leave` step.
        leave_address: where the device should jump when leaving (``None``: default).
        max_block: the highest wBlockNum to use before re-setting the pointer
            (0xFFFF, the 16-bit field's limit; lower only for tests or quirky devices).
        erased: the value an erased byte reads as (0xFF; 0x00 on the STM32L0/L1): the
            blocks ``skip_erased`` leaves out are all this value.
    """

    erase: EraseMode = EraseMode.SECTORS
    skip_erased: bool = True
    verify: bool = True
    leave: bool = False
    leave_address: int | None = None
    max_block: int = MAX_BLOCK
    erased: int = 0xFF

    def __post_init__(self) -> None:
        if not FIRST_DATA_BLOCK <= self.max_block <= MAX_BLOCK:
            raise ValueError(
                f"max_block must be in {FIRST_DATA_BLOCK}..{MAX_BLOCK}, got {self.max_block}"
            )


@dataclass(frozen=True, slots=True)
class Plan:
    """An explicit, ordered list of steps; ``str(plan)`` is a readable dry run.

    Attributes:
        steps: the steps, in execution order.
        transfer_size: the wTransferSize the blocks were cut to.
        dfuse: True for a DfuSe plan (addresses), False for plain DFU 1.1.
        image_size: number of bytes in the image.
        segments: number of contiguous runs in the image.
        sectors: for an incremental plan (:func:`plan_incremental`), the decision for
            every sector the image touches, in address order; empty otherwise.
    """

    steps: tuple[Step, ...]
    transfer_size: int
    dfuse: bool = True
    image_size: int = 0
    segments: int = 0
    sectors: tuple[SectorDecision, ...] = ()

    @property
    def incremental(self) -> bool:
        """True for a plan made by :func:`plan_incremental`."""
        return bool(self.sectors)

    @property
    def skipped_sectors(self) -> tuple[SectorDecision, ...]:
        """The sectors an incremental plan leaves alone (already up to date)."""
        return tuple(d for d in self.sectors if d.action is SectorAction.SKIP)

    @property
    def changed_sectors(self) -> tuple[SectorDecision, ...]:
        """The sectors an incremental plan erases and/or writes."""
        return tuple(d for d in self.sectors if d.action is not SectorAction.SKIP)

    def __iter__(self) -> Iterator[Step]:
        return iter(self.steps)

    def __len__(self) -> int:
        return len(self.steps)

    @property
    def erases(self) -> tuple[EraseSector | MassErase, ...]:
        """The erase steps."""
        return tuple(s for s in self.steps if isinstance(s, EraseSector | MassErase))

    @property
    def writes(self) -> tuple[WriteBlock, ...]:
        """The write steps."""
        return tuple(s for s in self.steps if isinstance(s, WriteBlock))

    @property
    def verifies(self) -> tuple[Verify, ...]:
        """The verify steps."""
        return tuple(s for s in self.steps if isinstance(s, Verify))

    @property
    def erase_bytes(self) -> int:
        """Bytes of memory the sector erases cover (0 for a mass erase)."""
        return sum(s.size for s in self.steps if isinstance(s, EraseSector))

    @property
    def write_bytes(self) -> int:
        """Bytes actually sent in data blocks (skipped blocks excluded)."""
        return sum(len(s.data) for s in self.steps if isinstance(s, WriteBlock | WriteOptions))

    @property
    def verify_bytes(self) -> int:
        """Bytes read back to verify."""
        return sum(len(s.data) for s in self.steps if isinstance(s, Verify | ConfirmOptions))

    @property
    def skipped_bytes(self) -> int:
        """Image bytes not sent: 0xFF in erased memory, or (incremental) in sectors that
        are already up to date."""
        return self.image_size - self.write_bytes if self.dfuse else 0

    @property
    def unchanged_bytes(self) -> int:
        """Image bytes in the sectors an incremental plan skips as already up to date."""
        return sum(d.image_bytes for d in self.skipped_sectors)

    def to_dict(self) -> dict[str, object]:
        """A JSON-able summary (``dfuse flash --dry-run --json``): the erases, the byte
        counts, the per-sector decisions of an incremental plan and one line per step."""
        return {
            "image_size": self.image_size,
            "erase": [e.to_dict() for e in self.erases],
            "erase_bytes": self.erase_bytes,
            "write_blocks": len(self.writes),
            "write_bytes": self.write_bytes,
            "skipped_bytes": self.skipped_bytes,
            "verify_bytes": self.verify_bytes,
            "incremental": self.incremental,
            "sectors": [d.to_dict() for d in self.sectors],
            "steps": [step.describe() for step in self.steps],
        }

    def describe(self, *, verbose: bool = False) -> str:
        """The dry run: a header line, then one line per step.

        Runs of consecutive blocks are folded into one line unless ``verbose``.
        """
        kind = "DfuSe" if self.dfuse else "DFU 1.1"
        lines = [
            f"{kind} download plan: {self.image_size} bytes in {self.segments} segment(s), "
            f"transfer size {self.transfer_size}; {len(self.writes)} block(s) "
            f"({self.write_bytes} bytes) to write, {self.skipped_bytes} bytes skipped as erased"
            + (" or unchanged" if self.sectors else "")
        ]
        if self.sectors:
            lines.append(
                f"incremental: {len(self.skipped_sectors)} of {len(self.sectors)} sector(s) "
                f"unchanged ({self.unchanged_bytes} bytes), {len(self.changed_sectors)} to "
                "update"
            )
            lines.extend("  " + d.describe() for d in self.sectors)
        i = 0
        steps = self.steps
        while i < len(steps):
            step = steps[i]
            if isinstance(step, WriteBlock) and not verbose:
                j = i
                while (
                    j + 1 < len(steps)
                    and isinstance(nxt := steps[j + 1], WriteBlock)
                    and nxt.block == _block_of(steps[j]) + 1
                ):
                    j += 1
                if j > i:
                    last = steps[j]
                    assert isinstance(last, WriteBlock)
                    nbytes = sum(len(b.data) for b in steps[i : j + 1] if isinstance(b, WriteBlock))
                    where = ""
                    if step.address is not None and last.address is not None:
                        end = last.address + last.length - 1
                        where = f" at 0x{step.address:08X}..0x{end:08X}"
                    lines.append(
                        f"  write blocks {step.block}..{last.block}{where} ({nbytes} bytes)"
                    )
                    i = j + 1
                    continue
            lines.append("  " + step.describe())
            i += 1
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.describe()


def _block_of(step: Step) -> int:
    """The block number of a :class:`WriteBlock` (-2 for any other step: never consecutive)."""
    return step.block if isinstance(step, WriteBlock) else -2


# --------------------------------------------------------------------------- planning


def _size(n: int) -> str:
    if n >= 1024 and n % 1024 == 0:
        return f"{n // 1024} KiB"
    return f"{n} bytes"


def normalize_segments(segments: Iterable[tuple[int, Buffer]]) -> list[tuple[int, memoryview]]:
    """Sort ``(address, data)`` pairs, drop empty ones, join adjacent ones into runs
    (:func:`dfuse.segments.merge_views`, the one place segments are merged).

    Raises :class:`~dfuse.errors.ImageError` if two segments overlap or one
    goes past the 32-bit address space (or starts below 0).
    """
    return merge_views(segments)


class _SectorIndex:
    """Sorted sectors with lookups by address."""

    def __init__(self, layout: LayoutLike) -> None:
        order = sorted(range(len(layout.sectors)), key=lambda i: layout.sectors[i].address)
        self.sectors = [layout.sectors[i] for i in order]
        self.indexes = order
        self.starts = [s.address for s in self.sectors]

    def covering(self, address: int, length: int) -> list[int]:
        """Positions (in sorted order) of the sectors that overlap [address, address+length)."""
        out: list[int] = []
        pos = bisect.bisect_right(self.starts, address) - 1
        pos = max(pos, 0)
        end = address + length
        while pos < len(self.sectors) and self.sectors[pos].address < end:
            s = self.sectors[pos]
            if s.address + s.size > address:
                out.append(pos)
            pos += 1
        return out

    def check_writable(self, address: int, length: int) -> None:
        """Raise SafetyError unless every byte of the range is in a writable sector."""
        cursor = address
        end = address + length
        for pos in self.covering(address, length):
            s = self.sectors[pos]
            if s.address > cursor:
                break
            if not s.writable:
                raise SafetyError(
                    f"refusing to write 0x{address:08X}..0x{end - 1:08X}: sector "
                    f"{self.indexes[pos]} at 0x{s.address:08X} ({_size(s.size)}) is not writable"
                )
            cursor = s.address + s.size
            if cursor >= end:
                return
        lo = self.starts[0] if self.sectors else 0
        hi = self.sectors[-1].address + self.sectors[-1].size if self.sectors else 0
        raise SafetyError(
            f"refusing to write 0x{address:08X}..0x{end - 1:08X}: 0x{cursor:08X} is outside "
            f"the device's memory layout (0x{lo:08X}..0x{max(hi - 1, 0):08X})"
        )


def plan_download(
    segments: Iterable[tuple[int, Buffer]],
    layout: LayoutLike,
    transfer_size: int,
    options: PlanOptions | None = None,
) -> Plan:
    """Plan a DfuSe download of ``segments`` (``(address, data)`` pairs) into ``layout``.

    Raises :class:`~dfuse.errors.SafetyError` when a byte lies outside the
    layout's writable sectors, :class:`~dfuse.errors.ImageError` when segments
    overlap, :class:`ValueError` for a non-positive transfer size.
    """
    if transfer_size <= 0:
        raise ValueError(f"transfer size must be positive, got {transfer_size}")
    opts = options if options is not None else PlanOptions()
    runs = normalize_segments(segments)
    index = _SectorIndex(layout)
    for address, data in runs:
        index.check_writable(address, len(data))

    # Sectors touched, each once, in address order.
    touched: list[int] = sorted({p for a, d in runs for p in index.covering(a, len(d))})
    return _build(runs, runs, touched, index, transfer_size, opts)


def _build(
    runs: list[tuple[int, memoryview]],
    write_runs: list[tuple[int, memoryview]],
    erase_candidates: list[int],
    index: _SectorIndex,
    transfer_size: int,
    opts: PlanOptions,
    sectors: tuple[SectorDecision, ...] = (),
) -> Plan:
    """The steps: erase ``erase_candidates`` (erasable ones, per the erase mode), write
    ``write_runs`` block by block, verify ``write_runs``, leave."""
    steps: list[Step] = []
    erased: set[int] = set()
    if opts.erase is EraseMode.MASS:
        steps.append(MassErase())
        erased = set(range(len(index.sectors)))
    elif opts.erase is EraseMode.SECTORS:
        for pos in erase_candidates:
            s = index.sectors[pos]
            if s.erasable:
                steps.append(EraseSector(index.indexes[pos], s.address, s.size))
                erased.add(pos)

    blank = memoryview(bytes([opts.erased]) * transfer_size)
    pointer: int | None = None
    for address, data in write_runs:
        for offset in range(0, len(data), transfer_size):
            chunk = data[offset : offset + transfer_size]
            where = address + offset
            if (
                opts.skip_erased
                and erased
                and chunk == blank[: len(chunk)]
                and all(p in erased for p in index.covering(where, len(chunk)))
            ):
                continue
            block = -1
            if pointer is not None and where >= pointer and (where - pointer) % transfer_size == 0:
                block = FIRST_DATA_BLOCK + (where - pointer) // transfer_size
            if block < 0 or block > opts.max_block:
                steps.append(SetAddress(where))
                pointer = where
                block = FIRST_DATA_BLOCK
            steps.append(WriteBlock(block, where, chunk))

    if opts.verify:
        steps.extend(Verify(address, data) for address, data in write_runs)
    if opts.leave:
        steps.append(Leave(opts.leave_address))
    return Plan(
        tuple(steps),
        transfer_size,
        dfuse=True,
        image_size=sum(len(d) for _, d in runs),
        segments=len(runs),
        sectors=sectors,
    )


def _first_difference(a: memoryview, b: memoryview) -> tuple[int, int]:
    """(offset of the first differing byte, number of differing bytes) of two equal-length
    views that differ."""
    step = 256
    first = -1
    count = 0
    for lo in range(0, len(a), step):
        x, y = a[lo : lo + step], b[lo : lo + step]
        if x == y:
            continue
        diffs = [i for i in range(len(x)) if x[i] != y[i]]
        if first < 0:
            first = lo + diffs[0]
        count += len(diffs)
    return first, count


def plan_incremental(
    segments: Iterable[tuple[int, Buffer]],
    layout: LayoutLike,
    transfer_size: int,
    readback: Iterable[tuple[int, Buffer]],
    options: PlanOptions | None = None,
) -> Plan:
    """Plan an incremental DfuSe download: only the sectors whose content differs.

    ``readback`` is what the device holds now, as ``(address, data)`` pairs (typically
    the image's own ranges read back with UPLOAD). For every sector the image touches,
    the image's bytes in it are compared with the read-back:

    * equal: the sector is **skipped** (no erase, no write, no verify: the read-back
      was its verification). A full download would leave exactly the image's bytes
      there too. Bytes of the sector outside the image are left as they are (a full
      download erases them to 0xFF);
    * different (or not read back): the sector is **rewritten** as a full download
      would: erased (erase mode ``sectors`` and an erasable sector), then written with
      the image's bytes in it, then verified. Without an erase (erase mode ``none``,
      or a sector the layout marks not erasable) the bytes are written as they are.

    :attr:`Plan.sectors` records each decision and why. Raises like
    :func:`plan_download`; :class:`ValueError` for ``erase=mass`` (a mass erase
    leaves nothing to skip).
    """
    if transfer_size <= 0:
        raise ValueError(f"transfer size must be positive, got {transfer_size}")
    opts = options if options is not None else PlanOptions()
    if opts.erase is EraseMode.MASS:
        raise ValueError("an incremental download cannot mass-erase: use erase='sectors'")
    runs = normalize_segments(segments)
    index = _SectorIndex(layout)
    for address, data in runs:
        index.check_writable(address, len(data))
    current = normalize_segments(readback)
    starts = [a for a, _ in current]

    def known(address: int, length: int) -> memoryview | None:
        """The read-back of [address, address+length) if it was read in one piece."""
        pos = bisect.bisect_right(starts, address) - 1
        if pos < 0:
            return None
        base, data = current[pos]
        if address + length > base + len(data):
            return None
        return data[address - base : address - base + length]

    touched: list[int] = sorted({p for a, d in runs for p in index.covering(a, len(d))})
    decisions: list[SectorDecision] = []
    changed: set[int] = set()
    for pos in touched:
        s = index.sectors[pos]
        total = 0
        differing = 0
        first: int | None = None
        for address, data in runs:
            lo, hi = max(address, s.address), min(address + len(data), s.address + s.size)
            if lo >= hi:
                continue
            total += hi - lo
            wanted = data[lo - address : hi - address]
            have = known(lo, hi - lo)
            if have is None:
                differing += hi - lo
                first = lo if first is None else first
            elif have != wanted:
                off, n = _first_difference(wanted, have)
                differing += n
                first = lo + off if first is None else first
        if differing == 0:
            action = SectorAction.SKIP
        elif opts.erase is EraseMode.SECTORS and s.erasable:
            action = SectorAction.REWRITE
            changed.add(pos)
        else:
            action = SectorAction.WRITE
            changed.add(pos)
        decisions.append(
            SectorDecision(index.indexes[pos], s.address, s.size, action, total, differing, first)
        )

    # The image's bytes in the changed sectors, as contiguous runs (adjacent changed
    # sectors of one image run are joined: the runs themselves are never adjacent).
    write_runs: list[tuple[int, memoryview]] = []
    for address, data in runs:
        start: int | None = None
        end = address
        for pos in index.covering(address, len(data)):
            s = index.sectors[pos]
            lo, hi = max(address, s.address), min(address + len(data), s.address + s.size)
            if pos in changed:
                start = lo if start is None else start
                end = hi
            elif start is not None:
                write_runs.append((start, data[start - address : end - address]))
                start = None
        if start is not None:
            write_runs.append((start, data[start - address : end - address]))
    return _build(runs, write_runs, sorted(changed), index, transfer_size, opts, tuple(decisions))


def plan_dfu_download(
    payload: Buffer, transfer_size: int, *, leave: bool = True, verify: bool = False
) -> Plan:
    """Plan a plain DFU 1.1 download: blocks numbered from 0 (wrapping at 16 bits),
    then (with ``leave``) the zero-length DNLOAD that ends the download.

    With ``verify`` the firmware is read back (UPLOAD from block 0) after the
    manifestation: a :class:`Verify` step at address 0 follows the :class:`Leave` one.
    Only a manifestation-tolerant device (back in dfuIDLE after manifesting) can be read
    back; before the zero-length DNLOAD nothing can be (an UPLOAD needs dfuIDLE, and the
    ABORT that reaches it abandons the download).
    """
    if transfer_size <= 0:
        raise ValueError(f"transfer size must be positive, got {transfer_size}")
    view = memoryview(payload).cast("B") if not isinstance(payload, bytes) else memoryview(payload)
    steps: list[Step] = [
        WriteBlock(n & MAX_BLOCK, None, view[offset : offset + transfer_size])
        for n, offset in enumerate(range(0, len(view), transfer_size))
    ]
    if leave:
        steps.append(Leave())
        if verify:
            steps.append(Verify(0, view))
    return Plan(tuple(steps), transfer_size, dfuse=False, image_size=len(view), segments=1)
