"""Option bytes, read protection and OTP as plans, with their guards (no USB traffic).

Each planner takes what the device holds now (read by the driver first) and what is
wanted, refuses what is unsafe with :class:`~dfuse.errors.SafetyError` (``override``
names the keyword that allows it), and returns a :class:`~dfuse.protocol.plan.Plan`
of steps the driver runs: select the memory, write, the Read Unprotect command, wait
for the device to reset and come back, confirm.
"""

from __future__ import annotations

from collections.abc import Iterable

from dfuse.errors import ProtocolError, SafetyError, UsageError
from dfuse.layout import MemoryLayout
from dfuse.optionbytes import (
    OPTION_BYTES_ADDRESS,
    OPTION_BYTES_SIZE,
    OTP_BLOCK_SIZE,
    OTP_BLOCKS,
    OTP_SIZE,
    OptionBytes,
    OtpArea,
    RdpLevel,
    nwrp_sectors,
)
from dfuse.parts import Part
from dfuse.protocol.dfuse import FIRST_DATA_BLOCK
from dfuse.protocol.plan import (
    AwaitReset,
    ConfirmOptions,
    Plan,
    ReadUnprotect,
    SelectAlt,
    SetAddress,
    Step,
    Verify,
    WriteBlock,
    WriteOptions,
)
from dfuse.transport.base import AltSetting, DeviceInfo

__all__ = [
    "DEFAULT_RESET_WAIT_S",
    "check_option_format",
    "check_otp_block",
    "flash_sector_numbers",
    "guard_rdp2",
    "option_alt",
    "option_block",
    "option_block_in",
    "option_job",
    "otp_alt",
    "otp_job",
    "plan_option_bytes",
    "plan_otp",
    "plan_read_unprotect",
    "unprotected",
]

#: Longest wait for a device to come back after it reset itself (option bytes: an RDP
#: 1 → 0 regression mass-erases first, several seconds on a 512 KiB part).
DEFAULT_RESET_WAIT_S = 15.0


def _setting(info: DeviceInfo, label: str) -> AltSetting:
    for setting in info.alt_settings:
        if setting.layout is not None and setting.label.casefold() == label.casefold():
            return setting
    raise ProtocolError(f"{info.describe()} has no {label!r} alternate setting")


def check_option_format(part: Part | None) -> None:
    """Refuse (:class:`~dfuse.errors.SafetyError`) the option bytes of a part whose block
    is not the STM32F2/F4 one that :class:`~dfuse.optionbytes.OptionBytes` decodes (16
    bytes at 0x1FFFC000): decoded as F4 they would mean something else (an F1/GD32 RDP
    byte read as USER), and a block encoded as F4 written there could set read
    protection. An unknown device (``None``) is taken at its word."""
    if part is None:
        return
    ob = part.option_bytes
    if (
        ob is not None
        and ob.exposure == "raw"
        and (ob.address, ob.size) == (OPTION_BYTES_ADDRESS, OPTION_BYTES_SIZE)
    ):
        return
    where = "" if ob is None else f" ({ob.size} bytes at 0x{ob.address:08X})"
    raise SafetyError(
        f"the option bytes of the {part.name}{where} are not in the STM32F2/F4 format "
        f"dfuse decodes ({OPTION_BYTES_SIZE} bytes at 0x{OPTION_BYTES_ADDRESS:08X}): "
        "dfuse does not read, change or download them on this part"
    )


def option_block(setting: AltSetting) -> tuple[int, int]:
    """``(address, size)`` of the option-byte block :class:`OptionBytes` encodes on the
    ``Option Bytes`` alternate setting: the 16 bytes at 0x1FFFC000 where the layout has
    them (the STM32F42x/F43x also lists bank 2's block at 0x1FFEC000, its first
    region by address: that one holds the nWRP bits of sectors 12-23, not the RDP
    byte), else the whole layout from its start (an unknown device)."""
    layout = setting.layout
    assert layout is not None
    return option_block_in(layout)


def option_block_in(layout: MemoryLayout) -> tuple[int, int]:
    """:func:`option_block` of the ``Option Bytes`` memory ``layout``."""
    if any(
        s.address == OPTION_BYTES_ADDRESS and s.size == OPTION_BYTES_SIZE for s in layout.sectors
    ):
        return OPTION_BYTES_ADDRESS, OPTION_BYTES_SIZE
    return layout.address, layout.size


def option_alt(info: DeviceInfo) -> AltSetting:
    """The ``Option Bytes`` alternate setting (ProtocolError if the device has none)."""
    return _setting(info, "Option Bytes")


def otp_alt(info: DeviceInfo) -> AltSetting:
    """The ``OTP Memory`` alternate setting (ProtocolError if the device has none)."""
    return _setting(info, "OTP Memory")


def option_job(info: DeviceInfo, part: Part | None) -> tuple[int, list[tuple[int, int]]]:
    """What reading the option bytes reads, ``(alt, [(address, size)])``: the block
    :func:`option_block` names on the ``Option Bytes`` alternate setting, once the part's
    format is checked (:func:`check_option_format`)."""
    check_option_format(part)
    setting = option_alt(info)
    return setting.number, [option_block(setting)]


def otp_job(info: DeviceInfo) -> tuple[int, list[tuple[int, int]]]:
    """What reading the OTP area reads, ``(alt, [(address, size)])``: its
    :data:`~dfuse.optionbytes.OTP_SIZE` bytes from the start of the ``OTP Memory``
    alternate setting."""
    setting = otp_alt(info)
    assert setting.layout is not None  # _setting finds only settings with a layout
    return setting.number, [(setting.layout.address, OTP_SIZE)]


def guard_rdp2(level: RdpLevel, allow_permanent_rdp2: bool) -> None:
    """Refuse read protection level 2 (permanent) unless ``allow_permanent_rdp2``."""
    if level is RdpLevel.LEVEL_2 and not allow_permanent_rdp2:
        raise SafetyError(
            "refusing to set read protection level 2: it is permanent (the DFU "
            "bootloader and debug access are disabled for good); pass "
            "allow_permanent_rdp2=True to do it",
            override="allow_permanent_rdp2",
        )


def _restore(steps: list[Step], previous: int | None, used: int) -> None:
    if previous is not None and previous != used:
        steps.append(SelectAlt(previous))


def plan_option_bytes(
    info: DeviceInfo,
    current: OptionBytes,
    new: OptionBytes,
    *,
    confirm: bool = False,
    allow_permanent_rdp2: bool = False,
    reconnect: bool = True,
    wait_s: float = DEFAULT_RESET_WAIT_S,
    previous: int | None = None,
    hint: str = "pass confirm=True to do it",
    always: bool = False,
) -> Plan:
    """Write ``new`` over ``current``: select the option bytes, write the block (the
    device resets), and with ``reconnect`` wait for it, confirm and select
    ``previous`` again. Empty when the device already holds ``new`` (unless ``always``).

    Refused: level 2 without ``allow_permanent_rdp2``; lowering 1 → 0 (a mass erase)
    without ``confirm``. After a level 2 write the device never comes back: no wait."""
    guard_rdp2(new.rdp_level, allow_permanent_rdp2)
    lowering = current.rdp_level is not RdpLevel.LEVEL_0
    if lowering and new.rdp_level is RdpLevel.LEVEL_0 and not confirm:
        raise SafetyError(
            f"lowering read protection from level {int(current.rdp_level)} to 0 "
            f"mass-erases the flash; {hint}",
            override="confirm",
        )
    setting = option_alt(info)
    address, _size = option_block(setting)
    data = new.to_bytes()
    steps: list[Step] = []
    # the nWRP half-word too: a block decoded with 8 nWRP bits has an OPTCR without the
    # F405/F407's bits 8-11 (OptionBytes.sectors)
    if always or current.optcr != new.optcr or current.nwrp != new.nwrp:
        steps += [SelectAlt(setting.number), SetAddress(address), WriteOptions(address, data)]
        if reconnect and new.rdp_level is not RdpLevel.LEVEL_2:
            steps += [AwaitReset(wait_s), SelectAlt(setting.number), ConfirmOptions(address, data)]
            _restore(steps, previous, setting.number)
    return Plan(tuple(steps), len(data), image_size=len(data), segments=1)


def plan_read_unprotect(
    *, confirm: bool = False, reconnect: bool = False, wait_s: float = DEFAULT_RESET_WAIT_S
) -> Plan:
    """Read Unprotect (the device erases its flash and resets); with ``reconnect``, wait
    for it to come back. Refused without ``confirm``."""
    if not confirm:
        raise SafetyError(
            "Read Unprotect mass-erases the whole flash and resets the device; "
            "pass confirm=True to do it",
            override="confirm",
        )
    steps: tuple[Step, ...] = (ReadUnprotect(),)
    if reconnect:
        steps += (AwaitReset(wait_s),)
    return Plan(steps, 0)


def unprotected(options: OptionBytes) -> OptionBytes:
    """``options``, read after Read Unprotect, unless they still say the flash is read
    protected (:class:`~dfuse.errors.ProtocolError`)."""
    if options.rdp_level is not RdpLevel.LEVEL_0:
        raise ProtocolError(
            "after Read Unprotect the device reports read protection "
            f"level {int(options.rdp_level)}, expected 0"
        )
    return options


def _flash_sectors(info: DeviceInfo) -> int:
    flash = next((a.layout for a in info.alt_settings if a.layout is not None), None)
    return len(flash.sectors) if flash is not None else 8


def nwrp_bits(info: DeviceInfo) -> int:
    """The nWRP bits of the device's block at 0x1FFFC000 (what :class:`OptionBytes` decodes
    it with): 8, or 12 where the flash has more than 8 sectors (F2, F405/F407, F42x bank 1:
    :func:`~dfuse.optionbytes.nwrp_sectors`)."""
    return nwrp_sectors(_flash_sectors(info))


def flash_sector_numbers(info: DeviceInfo, sectors: Iterable[int]) -> frozenset[int]:
    """Check write-protection sector numbers against the flash layout, and against the
    nWRP bits of the block at 0x1FFFC000 (:func:`nwrp_bits`: an F42x's sectors 12-23 have
    theirs in a second block that dfuse does not model), before any traffic."""
    chosen = frozenset(sectors)
    count = _flash_sectors(info)
    modelled = min(count, nwrp_sectors(count))
    for n in sorted(chosen, key=repr):
        if not isinstance(n, int) or isinstance(n, bool) or not 0 <= n < count:
            raise UsageError(
                f"flash sector numbers of this device are 0..{count - 1}, got {n!r}",
                value=n,
                expected=f"0..{count - 1}",
            )
        if n >= modelled:
            raise UsageError(
                f"flash sector {n}: dfuse models the write protection (nWRP) of sectors "
                f"0..{modelled - 1} of this device only (the option block at 0x1FFEC000 "
                "that holds sectors 12-23 is not modelled)",
                value=n,
                expected=f"0..{modelled - 1}",
            )
    return chosen


def check_otp_block(block: int, *, lock: bool, confirm: bool, data: bytes | None = None) -> None:
    """Check an OTP block number, the data's size, and that locking is confirmed
    (before any traffic)."""
    if not isinstance(block, int) or isinstance(block, bool) or not 0 <= block < OTP_BLOCKS:
        raise UsageError(
            f"OTP block numbers are 0..{OTP_BLOCKS - 1}, got {block!r}",
            value=block,
            expected=f"0..{OTP_BLOCKS - 1}",
        )
    if data is not None and len(data) != OTP_BLOCK_SIZE:
        raise UsageError(
            f"an OTP block is {OTP_BLOCK_SIZE} bytes, got {len(data)}",
            value=len(data),
            expected=str(OTP_BLOCK_SIZE),
        )
    if lock and not confirm:
        raise SafetyError(
            f"locking OTP block {block} is permanent (it can never be written again); "
            "pass confirm=True to do it",
            override="confirm",
        )


def plan_otp(
    info: DeviceInfo,
    current: OtpArea,
    block: int,
    data: bytes | None,
    *,
    lock: bool,
    previous: int | None = None,
) -> tuple[Plan, OtpArea]:
    """Program OTP ``block`` with ``data`` (``None``: only lock it) and/or lock it, then
    read the area back: the plan and the area expected afterwards.

    Refused: a locked block, data that needs a 0 bit back to 1."""
    expected = current
    if data is not None:
        check_otp_block(block, lock=False, confirm=True, data=data)
        if current.is_locked(block):
            raise SafetyError(
                f"refusing to write OTP block {block} at "
                f"0x{OtpArea.block_address(block):08X}: it is locked"
            )
        if not current.can_write(block, data):
            old = current.blocks[block]
            at = next(i for i in range(OTP_BLOCK_SIZE) if data[i] & ~old[i])
            raise SafetyError(
                f"refusing to write OTP block {block}: byte {at} at "
                f"0x{OtpArea.block_address(block) + at:08X} is 0x{old[at]:02X} and cannot "
                f"become 0x{data[at]:02X} (OTP bits only go from 1 to 0)"
            )
        expected = current.with_block(block, data)
    setting = otp_alt(info)
    assert setting.layout is not None
    steps: list[Step] = [SelectAlt(setting.number)]
    writes: list[tuple[int, bytes]] = []
    if data is not None and data != current.blocks[block]:
        writes.append((OtpArea.block_address(block), data))
    if lock and not current.is_locked(block):
        expected = expected.with_lock(block)
        writes.append((OtpArea.lock_address(block), b"\x00"))
    for address, payload in writes:
        view = memoryview(payload)
        steps += [SetAddress(address), WriteBlock(FIRST_DATA_BLOCK, address, view)]
    if not writes:
        return Plan((), OTP_BLOCK_SIZE), expected
    steps.append(Verify(setting.layout.address, memoryview(expected.to_bytes())))
    _restore(steps, previous, setting.number)
    size = sum(len(p) for _a, p in writes)
    return Plan(tuple(steps), OTP_BLOCK_SIZE, image_size=size, segments=len(writes)), expected
