"""Download preparation, without USB traffic: the options of a download
(:class:`DownloadOptions`), an image turned into per-alternate-setting jobs, the checks
made before anything is sent (VID/PID of the file, the guarded option bytes and OTP),
and the plans built from the jobs.

The functions take what they need (the device record, the selected alternate setting,
the transfer size); the reads a plan may need first (the OTP area, the current contents
for an incremental download) come in as callables, so that the device layer keeps the
I/O.
"""

from __future__ import annotations

import dataclasses
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypedDict

from dfuse.errors import ProtocolError, SafetyError, UsageError
from dfuse.file.model import DfuFile, DfuSeFile, Target
from dfuse.layout import MemoryLayout
from dfuse.optionbytes import (
    OTP_ADDRESS,
    OTP_BLOCK_SIZE,
    OTP_BLOCKS,
    OTP_LOCK_ADDRESS,
    OTP_SIZE,
    OptionBytes,
    OtpArea,
    RdpLevel,
)
from dfuse.parts import Part
from dfuse.planning.protection import (
    DEFAULT_RESET_WAIT_S,
    check_option_format,
    option_block_in,
    plan_option_bytes,
)
from dfuse.planning.rules import choose_erase, is_main_flash, pad_segments
from dfuse.protocol.descriptors import Attributes
from dfuse.protocol.dfuse import MAX_ADDRESS
from dfuse.protocol.plan import (
    EraseMode,
    EraseSector,
    Leave,
    MassErase,
    Plan,
    PlanOptions,
    normalize_segments,
    plan_dfu_download,
    plan_download,
    plan_incremental,
)
from dfuse.transport.base import DeviceInfo

__all__ = [
    "ANY_ID",
    "DownloadOptions",
    "Guards",
    "Image",
    "Job",
    "OptionFields",
    "Segments",
    "TargetPlan",
    "check_file_ids",
    "check_mass_erase",
    "check_otp_contents",
    "check_write_protection",
    "guard_image",
    "guard_mass_erase",
    "image_jobs",
    "is_f4_otp_layout",
    "is_option_layout",
    "models_f4_wrp",
    "plan_image",
    "plan_targets",
    "read_back_spans",
]

#: The wildcard vendor/product ID of a DFU suffix.
ANY_ID = 0xFFFF

Image = DfuSeFile | DfuFile | Target | bytes | bytearray | memoryview

#: ``(address, data)`` pieces of an image for one alternate setting.
Segments = list[tuple[int, bytes | memoryview]]
#: One alternate setting's share of an image: ``(alt, layout, segments)``; ``alt`` is
#: ``None`` for a plain DFU device (the firmware from block 0).
Job = tuple[int | None, MemoryLayout | None, Segments]


@dataclass(frozen=True, slots=True)
class TargetPlan:
    """The plan for one alternate setting of the device.

    Attributes:
        alt: the alternate setting the plan runs on (``None``: plain DFU).
        name: the alternate setting's label (``"Internal Flash"``).
        plan: the steps.
    """

    alt: int | None
    name: str
    plan: Plan

    def to_dict(self) -> dict[str, object]:
        """A JSON-able record: the alternate setting, its name and :meth:`Plan.to_dict`."""
        return {"alt_setting": self.alt, "name": self.name, **self.plan.to_dict()}

    def __str__(self) -> str:
        where = f"alt {self.alt} ({self.name})" if self.alt is not None else "firmware"
        return f"{where}:\n{self.plan.describe()}"


@dataclass(frozen=True, slots=True)
class Guards:
    """The flags that allow a download into guarded memories."""

    allow_option_bytes: bool = False
    allow_permanent_rdp2: bool = False
    allow_otp: bool = False
    allow_otp_lock: bool = False


def _check_address(name: str, value: int | None) -> None:
    if value is None:
        return
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_ADDRESS:
        raise UsageError(
            f"{name}={value!r} is not an address",
            value=value,
            expected=f"an int in 0..0x{MAX_ADDRESS:08X}",
        )


@dataclass(frozen=True, slots=True)
class DownloadOptions:
    """How a download runs: one frozen object for :meth:`DfuDevice.download
    <dfuse.device.DfuDevice.download>`, :meth:`~dfuse.device.DfuDevice.plan` and
    :func:`dfuse.flash_many`. Checked when made (:class:`~dfuse.errors.UsageError`).

    Attributes:
        verify: read every written byte back and compare.
        address: where raw bytes go (DfuSe).
        erase: ``"sectors"`` (those the image touches), ``"mass"`` or ``"none"``.
        skip_erased: do not send blocks of 0xFF into erased memory.
        leave: leave DFU mode (start the application) at the end.
        leave_address: where the device jumps when leaving (default: the flash start).
        force: download a file whose DFU suffix names another device.
        incremental: read back first, rewrite only the sectors that differ.
        allow_option_bytes, allow_permanent_rdp2, allow_otp, allow_otp_lock: allow the
            guarded memories (see :meth:`~dfuse.device.DfuDevice.download`).
        cancel: a :class:`threading.Event`; once set, the download stops at its next
            safe point (:class:`~dfuse.errors.CancelledError`).

    >>> DownloadOptions(leave=True).replace(verify=False).verify
    False
    """

    verify: bool = True
    address: int | None = None
    erase: EraseMode | str = EraseMode.SECTORS
    skip_erased: bool = True
    leave: bool = False
    leave_address: int | None = None
    force: bool = False
    incremental: bool = False
    allow_option_bytes: bool = False
    allow_permanent_rdp2: bool = False
    allow_otp: bool = False
    allow_otp_lock: bool = False
    cancel: threading.Event | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        _check_address("address", self.address)
        _check_address("leave_address", self.leave_address)
        try:
            object.__setattr__(self, "erase", EraseMode(self.erase))
        except ValueError:
            raise UsageError(
                f"erase={self.erase!r} is not an erase mode",
                value=self.erase,
                expected=" or ".join(repr(m.value) for m in EraseMode),
            ) from None

    def replace(self, **changes: object) -> DownloadOptions:
        """A copy with ``changes`` (keywords of the constructor)."""
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise UsageError(
                f"unknown download option(s): {', '.join(sorted(unknown))}",
                value=sorted(unknown),
            )
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    @property
    def guards(self) -> Guards:
        """The guarded-memory flags."""
        return Guards(
            self.allow_option_bytes, self.allow_permanent_rdp2, self.allow_otp, self.allow_otp_lock
        )


class OptionFields(TypedDict, total=False):
    """The keywords :meth:`DfuDevice.download <dfuse.device.DfuDevice.download>` takes
    besides ``options``: the fields of :class:`DownloadOptions`."""

    verify: bool
    address: int | None
    erase: EraseMode | str
    skip_erased: bool
    leave: bool
    leave_address: int | None
    force: bool
    incremental: bool
    allow_option_bytes: bool
    allow_permanent_rdp2: bool
    allow_otp: bool
    allow_otp_lock: bool
    cancel: threading.Event | None


def resolve_options(options: DownloadOptions | None, changes: OptionFields) -> DownloadOptions:
    """``options`` (default: :class:`DownloadOptions`) with the keywords given as well."""
    base = options if options is not None else DownloadOptions()
    return base.replace(**changes) if changes else base


def is_option_layout(layout: MemoryLayout | None) -> bool:
    """Whether ``layout`` is the option bytes (the ``Option Bytes`` alternate setting)."""
    return layout is not None and layout.label.casefold() == "option bytes"


def is_f4_otp_layout(layout: MemoryLayout | None) -> bool:
    """Whether ``layout`` is the STM32F4 OTP area (16 × 32 bytes and 16 lock bytes)."""
    return (
        layout is not None
        and layout.label.casefold() == "otp memory"
        and layout.address == OTP_ADDRESS
        and layout.size == OTP_SIZE
    )


def check_file_ids(
    vendor_id: int, product_id: int, info: DeviceInfo, *, force: bool = False
) -> None:
    """Refuse (:class:`~dfuse.errors.SafetyError`) a file whose DFU suffix names another
    device, unless ``force``. 0xFFFF matches anything; so does a product ID of 0x0000
    (what ST's DFU File Manager writes when none is entered), with a warning."""
    mismatch = vendor_id not in (ANY_ID, info.vid)
    if product_id == 0x0000:
        warnings.warn(
            "the file's DFU suffix has product ID 0x0000 (ST's DFU File Manager writes it "
            "when none is entered): treating it as 'any device'",
            stacklevel=3,
        )
    elif product_id not in (ANY_ID, info.pid):
        mismatch = True
    if not mismatch:
        return
    message = (
        f"the file is for device {vendor_id:04x}:{product_id:04x} (DFU suffix), "
        f"this device is {info.vid:04x}:{info.pid:04x}"
    )
    if not force:
        raise SafetyError(message + "; pass force=True to download it anyway", override="force")
    warnings.warn(message + "; downloading anyway (force=True)", stacklevel=3)


def image_jobs(
    image: Image,
    info: DeviceInfo,
    *,
    is_dfuse: bool,
    alt: int | None,
    layout: MemoryLayout | None,
    address: int | None,
    force: bool = False,
    check_ids: bool = True,
) -> list[Job]:
    """The image as (alt, layout, segments) jobs, after the VID/PID check.

    ``info`` is the device record, ``is_dfuse`` whether it speaks DfuSe, ``alt`` and
    ``layout`` the selected alternate setting (where raw bytes go, at ``address``).
    """
    if isinstance(image, DfuSeFile):
        if check_ids:
            check_file_ids(image.vendor_id, image.product_id, info, force=force)
        return _merge_same_alt([_target_job(t, info, is_dfuse=is_dfuse) for t in image.targets])
    if isinstance(image, Target):
        return [_target_job(image, info, is_dfuse=is_dfuse)]
    if isinstance(image, DfuFile):
        if check_ids:
            check_file_ids(image.vendor_id, image.product_id, info, force=force)
        payload: bytes | memoryview = image.payload
    elif isinstance(image, bytes | bytearray | memoryview):
        payload = memoryview(image).cast("B")
    else:
        raise TypeError(
            f"download() takes a DfuSeFile, DfuFile, Target or bytes, got {type(image).__name__}"
        )
    if not is_dfuse:
        if address is not None:
            raise SafetyError(
                f"address=0x{address:08X}: a plain DFU device has no addresses, its firmware "
                "always starts at block 0 (the device's own start); leave the address out"
            )
        return [(None, None, [(0, payload)])]
    if address is None:
        raise UsageError(
            "raw bytes (or a plain DFU file) for a DfuSe device need address= "
            "(e.g. address=0x08000000)",
            expected="an address",
        )
    return [(alt, layout, [(address, payload)])]


def _merge_same_alt(jobs: list[Job]) -> list[Job]:
    """One job per alternate setting: the segments of targets that share one are merged.

    A file may hold several targets for the same alternate setting. Planned one after
    the other, the second target's sector erases would wipe what the first one wrote in
    a shared sector (and its verify would still pass): merged, every touched sector is
    erased once, before any write. Overlapping segments are refused by the planner.
    """
    merged: dict[int | None, Job] = {}
    for alt, layout, segs in jobs:
        if alt in merged:
            _alt, first_layout, first_segs = merged[alt]
            merged[alt] = (alt, first_layout, sorted([*first_segs, *segs], key=lambda s: s[0]))
        else:
            merged[alt] = (alt, layout, segs)
    return list(merged.values())


def _target_job(target: Target, info: DeviceInfo, *, is_dfuse: bool) -> Job:
    if not is_dfuse:
        raise SafetyError(
            f"a DfuSe target (alt {target.alt_setting}) cannot go to a plain DFU device"
        )
    setting = info.alt(target.alt_setting)
    segs: Segments = [(a, d) for a, d in target.segments()]
    return (setting.number, setting.layout, segs)


def plan_targets(
    jobs: list[Job],
    *,
    mode: EraseMode,
    verify: bool,
    skip_erased: bool,
    leave: bool,
    leave_address: int | None,
    incremental: bool,
    guards: Guards,
    transfer_size: int,
    max_block: int,
    check_otp: Callable[[Segments], None],
    read_back: Callable[[int, list[tuple[int, int]]], list[tuple[int, bytes]]],
    plain_readback: bool = False,
    read_options: Callable[[], OptionBytes] | None = None,
    info: DeviceInfo | None = None,
    part: Part | None = None,
) -> tuple[TargetPlan, ...]:
    """Plan every job (the option bytes last: they reset the device), refusing what
    :func:`guard_image` refuses before anything is read.

    ``check_otp(segments)`` is called for an STM32F4 OTP job once the image is checked
    against the layout (it reads the OTP area and refuses what cannot be written, see
    :func:`check_otp_contents`); ``read_back(alt, ranges)`` returns what the device
    holds over ``(address, length)`` ranges (:func:`read_back_spans` of the image) for
    ``incremental`` planning.
    ``plain_readback`` says that a plain DFU device can be read back after its
    manifestation (it is manifestation tolerant and can upload): only then does a plain
    DFU plan verify. ``read_options()`` returns the device's option bytes: an
    option-byte job becomes the steps of :func:`~dfuse.planning.protection.plan_option_bytes`
    (write the block, wait for the reset, confirm), planned against them.
    ``part``: the part the device is (:mod:`dfuse.planning.rules`): writes to its main
    flash are padded to its programming unit, and erased page by page or at once,
    whichever its datasheet says is quicker, when the image covers the whole flash.
    """
    # The option bytes reset the device: they go last.
    jobs.sort(key=lambda job: is_option_layout(job[1]))
    for _alt, layout, segs in jobs:
        if is_option_layout(layout):
            check_option_format(part)
        guard_image(layout, segs, guards)
    if incremental:
        if mode is EraseMode.MASS:
            raise UsageError(
                "an incremental download cannot mass-erase: use erase='sectors'",
                value="mass",
                expected="erase='sectors'",
            )
        if any(alt is None for alt, _layout, _segs in jobs):
            raise ProtocolError(
                "an incremental download needs a DfuSe device: a plain DFU 1.1 device "
                "has no addresses to read back"
            )
    if mode is EraseMode.MASS:
        check_mass_erase(part)
    # A mass erase erases the whole flash whichever alternate setting is selected: it is
    # planned once, for the first memory that has erasable sectors, so that it cannot
    # wipe what an earlier target wrote.
    mass_job = next(
        (
            i
            for i, (_alt, layout, _segs) in enumerate(jobs)
            if layout is not None and any(s.erasable for s in layout.sectors)
        ),
        None,
    )
    flash_jobs = sum(is_main_flash(part, layout) for _alt, layout, _segs in jobs)
    plans: list[TargetPlan] = []
    for i, (alt, layout, segs) in enumerate(jobs):
        last = i == len(jobs) - 1
        job_mode = EraseMode.NONE if mode is EraseMode.MASS and i != mass_job else mode
        erased = 0xFF
        raw = segs
        if part is not None and layout is not None and is_main_flash(part, layout):
            flash = part.flash
            # the image as given is checked against the layout first: an error names
            # its addresses, not those of the padding
            plan_download(segs, layout, transfer_size, PlanOptions(erase=EraseMode.NONE))
            segs = pad_segments(segs, flash.program_unit, flash.erased,
                                erased=job_mode is not EraseMode.NONE)  # fmt: skip
            if flash_jobs == 1 and not incremental:
                job_mode = choose_erase(part, layout, segs, job_mode).mode
            erased = flash.erased
        if alt is None:
            payload = segs[0][1] if segs else b""
            steps = plan_dfu_download(payload, transfer_size, verify=verify and plain_readback)
            plans.append(TargetPlan(None, "firmware", steps))
            continue
        if layout is None:
            raise SafetyError(
                f"alternate setting {alt} has no memory layout: cannot check where "
                "the image may be written"
            )
        options = PlanOptions(
            erase=job_mode,
            skip_erased=skip_erased,
            verify=verify,
            leave=leave and last,
            leave_address=leave_address,
            max_block=max_block,
            erased=erased,
        )
        if is_option_layout(layout) and read_options is not None and info is not None:
            base = plan_download(segs, layout, transfer_size, options)
            ((_where, data),) = normalize_segments(segs)
            block = plan_option_bytes(
                info,
                read_options(),
                OptionBytes.parse(data),
                wait_s=DEFAULT_RESET_WAIT_S,
                previous=None,
                hint="use change_option_bytes(..., confirm=True) to do it",
            )
            tail = tuple(s for s in base.steps if isinstance(s, Leave))
            steps = dataclasses.replace(base, steps=block.steps + tail)
            plans.append(TargetPlan(alt, layout.label, steps))
            continue
        if is_f4_otp_layout(layout):
            # Check the image against the layout before reading anything.
            plan_download(segs, layout, transfer_size, options)
            check_otp(segs)
        if incremental:
            # Check the image against the layout before reading anything.
            plan_download(segs, layout, transfer_size, options)
            spans = [(lo, hi - lo) for lo, hi in read_back_spans(layout, segs)]
            current = _mask_padding(read_back(alt, spans) if spans else [], raw, segs)
            steps = plan_incremental(segs, layout, transfer_size, current, options)
        else:
            steps = plan_download(segs, layout, transfer_size, options)
        # A mass erase (asked, or chosen for a whole-flash image) is refused by the flash
        # while any sector is write-protected, and the ROM still reports it done: the
        # writes would land on flash that was never erased. (A sector erase of a
        # protected sector leaves it as it was, which the verify reports.)
        if read_options is not None:
            guard_mass_erase(layout, steps, part, info, read_options)
        plans.append(TargetPlan(alt, layout.label, steps))
    return tuple(plans)


def models_f4_wrp(part: Part, info: DeviceInfo | None) -> bool:
    """Whether ``part`` has F4 nWRP write protection that the host can read (an
    ``Option Bytes`` alternate setting)."""
    ob = part.option_bytes
    return (
        ob is not None
        and ob.wrp == "f4"
        and info is not None
        and any(is_option_layout(a.layout) for a in info.alt_settings)
    )


def guard_mass_erase(
    layout: MemoryLayout | None,
    plan: Plan,
    part: Part | None,
    info: DeviceInfo | None,
    read_options: Callable[[], OptionBytes],
) -> None:
    """Refuse a ``plan`` that mass erases on a part whose ROM has no mass erase
    (:func:`check_mass_erase`), or the main flash of an F2/F4 (nWRP) while any sector is
    write-protected (:func:`check_write_protection`); reads the option bytes
    (``read_options``) only for the latter."""
    if any(isinstance(step, MassErase) for step in plan.erases):
        check_mass_erase(part)
    if (
        part is not None
        and layout is not None
        and is_main_flash(part, layout)
        and models_f4_wrp(part, info)
        and any(isinstance(step, MassErase) for step in plan.erases)
    ):
        # read_options decodes the device's nWRP bits (flows.read_options: 12 on an F405/F407)
        check_write_protection(layout, plan, read_options().write_protected)


def check_mass_erase(part: Part | None) -> None:
    """Refuse (:class:`~dfuse.errors.SafetyError`, before any traffic) a mass erase on a
    part whose ROM has none (:attr:`~dfuse.parts.Flash.mass_erase_command`, the STM32L0):
    it would answer the command with an error and erase nothing. An unknown device
    (``None``) is taken at its word."""
    if part is None or part.flash.mass_erase_command.supported:
        return
    flash = part.flash
    raise SafetyError(
        f"the {part.name}'s ROM has no mass erase (DfuSe 0x41 without an address): got a "
        f"mass erase (erase('all'), erase='mass'), expected page/sector erases: erase its "
        f"{len(flash.unit_sizes())} pages at 0x{flash.address:08X}-0x{flash.end - 1:08X} one "
        "by one (erase([addresses]), erase='sectors': a whole-flash image does), or lower "
        "read protection from level 1 to 0, which erases the flash"
    )


def check_write_protection(layout: MemoryLayout, plan: Plan, protected: frozenset[int]) -> None:
    """Refuse (:class:`~dfuse.errors.SafetyError`, before anything is erased) a ``plan``
    that erases or writes write-protected flash sectors (F2/F4 nWRP): the ROM
    acknowledges their erases and writes while the flash interface ignores them
    (WRPERR), and it refuses a mass erase while any sector is protected, so that the
    writes after it would land on flash that was never erased."""
    if not protected:
        return
    listed = ", ".join(str(n) for n in sorted(protected))
    hint = (
        f"remove the protection first (unprotect_sectors([{listed}]); "
        f"dfuse option-bytes --unprotect {listed.replace(' ', '')})"
    )
    if any(isinstance(step, MassErase) for step in plan.erases):
        raise SafetyError(
            f"a mass erase is refused by the flash while sectors are write-protected "
            f"(sectors {listed}); {hint}"
        )
    touched = {s.index for s in plan.erases if isinstance(s, EraseSector)}
    for write in plan.writes:
        if write.address is not None:
            touched.update(s.index for s in layout.sectors_for(write.address, len(write.data)))
    hit = sorted(touched & protected)
    if hit:
        names = ", ".join(str(n) for n in hit)
        raise SafetyError(
            f"the image writes write-protected flash sector(s) {names} (nWRP): the flash "
            f"would ignore the erase and the writes; {hint}"
        )


def _mask_padding(
    current: list[tuple[int, bytes]], raw: Segments, padded: Segments
) -> list[tuple[int, bytes]]:
    """``current`` (what the device holds over the padded image) with the padding's own
    bytes in place of what the device holds there, so that an incremental download
    compares the image's bytes only: a sector whose image bytes are unchanged is kept
    (with whatever the flash holds beside the image), not rewritten because the bytes
    next to the image differ from the padding."""
    if raw is padded:
        return current
    runs = normalize_segments(raw)
    pads: list[tuple[int, bytes]] = []
    for start, data in normalize_segments(padded):
        cursor, end = start, start + len(data)
        for address, piece in runs:
            if address + len(piece) <= cursor or address >= end:
                continue
            if address > cursor:
                pads.append((cursor, bytes(data[cursor - start : address - start])))
            cursor = max(cursor, address + len(piece))
        if cursor < end:
            pads.append((cursor, bytes(data[cursor - start :])))
    out = []
    for where, held in current:
        buf = bytearray(held)
        for address, fill in pads:
            lo, hi = max(where, address), min(where + len(buf), address + len(fill))
            if lo < hi:
                buf[lo - where : hi - where] = fill[lo - address : hi - address]
        out.append((where, bytes(buf)))
    return out


def plan_image(
    image: Image,
    opts: DownloadOptions,
    info: DeviceInfo,
    *,
    alt: int | None,
    layout: MemoryLayout | None,
    transfer_size: int,
    max_block: int,
    part: Part | None,
    read_back: Callable[[int, list[tuple[int, int]]], list[tuple[int, bytes]]],
    read_otp: Callable[[], OtpArea],
    read_options: Callable[[], OptionBytes],
) -> tuple[TargetPlan, ...]:
    """:func:`image_jobs` then :func:`plan_targets`, as ``opts`` says, for the device
    ``info`` with alternate setting ``alt`` (``layout``) selected; the reads a plan may
    need first are callables (the driver keeps the I/O)."""
    fd = info.functional
    is_dfuse = fd is not None and fd.is_dfuse
    wanted = Attributes.MANIFESTATION_TOLERANT | Attributes.CAN_UPLOAD
    jobs = image_jobs(image, info, is_dfuse=is_dfuse, alt=alt, layout=layout,
                      address=opts.address, force=opts.force)  # fmt: skip
    return plan_targets(
        jobs, mode=EraseMode(opts.erase), verify=opts.verify, skip_erased=opts.skip_erased,
        leave=opts.leave, leave_address=opts.leave_address, incremental=opts.incremental,
        guards=opts.guards, transfer_size=transfer_size, max_block=max_block,
        read_back=read_back, info=info, part=part, read_options=read_options,
        check_otp=lambda segs: check_otp_contents(read_otp(), segs),
        plain_readback=fd is not None and not is_dfuse and fd.attributes & wanted == wanted,
    )  # fmt: skip


def read_back_spans(layout: MemoryLayout, segs: Segments) -> list[tuple[int, int]]:
    """The ``(start, end)`` address ranges of the image that an incremental download reads
    back first: the readable parts of the sectors it touches, adjacent ranges merged."""
    spans: list[tuple[int, int]] = []
    for where, data in normalize_segments(segs):
        end = where + len(data)
        for s in layout.sectors_for(where, len(data)):
            if not s.readable:
                continue
            lo, hi = max(where, s.address), min(end, s.end)
            if spans and spans[-1][1] == lo:
                spans[-1] = (spans[-1][0], hi)
            else:
                spans.append((lo, hi))
    return spans


def guard_image(layout: MemoryLayout | None, segs: Segments, guards: Guards) -> None:
    """Refuse, before any USB traffic, an image that writes the option bytes or OTP
    without the flags that allow it."""
    if layout is None:
        return
    label = layout.label
    if is_option_layout(layout):
        runs = normalize_segments(segs)
        if not guards.allow_option_bytes:
            raise SafetyError(
                f"the image writes the option bytes ({label!r} at 0x{layout.address:08X}): "
                "they change the device's protection and reset it; pass "
                "allow_option_bytes=True (or use change_option_bytes())",
                override="allow_option_bytes",
            )
        address, size = option_block_in(layout)
        if len(runs) != 1 or runs[0][0] != address or len(runs[0][1]) != size:
            found = ", ".join(f"{len(d)} bytes at 0x{a:08X}" for a, d in runs) or "nothing"
            raise SafetyError(
                f"option bytes are written as one {size}-byte block at "
                f"0x{address:08X}; the image has {found}"
            )
        options = OptionBytes.parse(runs[0][1])
        if options.rdp_level is RdpLevel.LEVEL_2 and not guards.allow_permanent_rdp2:
            raise SafetyError(
                "the image sets read protection level 2 (RDP byte "
                f"0x{options.rdp:02X} at 0x{layout.address + 1:08X}): it is permanent "
                "(the DFU bootloader is disabled for good); pass allow_permanent_rdp2=True "
                "to do it",
                override="allow_permanent_rdp2",
            )
    elif label.casefold() == "otp memory":
        if not guards.allow_otp:
            raise SafetyError(
                f"the image writes one-time-programmable memory ({label!r} at "
                f"0x{layout.address:08X}), which can never be erased; pass allow_otp=True "
                "(or use write_otp())",
                override="allow_otp",
            )
        if is_f4_otp_layout(layout) and not guards.allow_otp_lock:
            for where, data in normalize_segments(segs):
                lo = max(where, OTP_LOCK_ADDRESS)
                hi = min(where + len(data), OTP_LOCK_ADDRESS + OTP_BLOCKS)
                for a in range(lo, hi):
                    if data[a - where] != 0xFF:
                        raise SafetyError(
                            f"the image writes 0x{data[a - where]:02X} to OTP lock byte "
                            f"0x{a:08X}: it locks block {a - OTP_LOCK_ADDRESS} for good; "
                            "pass allow_otp_lock=True (or use lock_otp(confirm=True))",
                            override="allow_otp_lock",
                        )


def check_otp_contents(current: OtpArea, segs: Segments) -> None:
    """Refuse (before writing anything) data for a locked block of the OTP area
    ``current``, or data that needs a 0 bit back to 1."""
    for where, data in normalize_segments(segs):
        lo, hi = max(where, OTP_ADDRESS), min(where + len(data), OTP_LOCK_ADDRESS)
        for a in range(lo, hi):
            block, offset = divmod(a - OTP_ADDRESS, OTP_BLOCK_SIZE)
            new, old = data[a - where], current.blocks[block][offset]
            if current.is_locked(block) and new != old:
                raise SafetyError(
                    f"refusing to write OTP block {block} at "
                    f"0x{OtpArea.block_address(block):08X}: it is locked"
                )
            if new & ~old:
                raise SafetyError(
                    f"refusing to write OTP at 0x{a:08X}: it holds 0x{old:02X} and cannot "
                    f"become 0x{new:02X} (OTP bits only go from 1 to 0)"
                )
