"""Option bytes, read protection and OTP: the operations behind
:meth:`DfuDevice.read_option_bytes <dfuse.device.DfuDevice.read_option_bytes>`,
``change_option_bytes``, ``protect_sectors``, ``set_read_protection``,
``read_unprotect``, ``read_otp``, ``write_otp`` and ``lock_otp``.

Each function takes the open :class:`~dfuse.device.DfuDevice` it works on and goes
through its requests, polling and reconnection; :class:`~dfuse.device.DfuDevice`
keeps the public methods, which delegate here. The device resets after an
option-byte write or a Read Unprotect: these functions wait for it and reopen it in
place where asked to.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from typing import TYPE_CHECKING

from dfuse.device.progress import Phase, Progress
from dfuse.errors import (
    DeviceGoneError,
    DfuseError,
    ProtocolError,
    SafetyError,
    StallError,
    TransferTimeoutError,
    TransportError,
    VerifyError,
)
from dfuse.optionbytes import (
    OTP_BLOCK_SIZE,
    OTP_BLOCKS,
    OTP_SIZE,
    OptionBytes,
    OtpArea,
    RdpLevel,
)
from dfuse.protocol.constants import Request, State
from dfuse.protocol.dfuse import FIRST_DATA_BLOCK, encode_read_unprotect
from dfuse.protocol.plan import Leave, Plan
from dfuse.transport.base import AltSetting

if TYPE_CHECKING:
    from dfuse.device.core import DfuDevice

__all__ = [
    "DEFAULT_RESET_WAIT_S",
    "apply_option_bytes",
    "change_option_bytes",
    "execute_option_plan",
    "lock_otp",
    "option_alt",
    "otp_alt",
    "protect_sectors",
    "read_option_bytes",
    "read_otp",
    "read_unprotect",
    "set_read_protection",
    "unprotect_sectors",
    "write_option_bytes",
    "write_otp",
]

_log = logging.getLogger(__name__)

#: Longest wait for a device to come back after it reset itself (option bytes: an RDP
#: 1 → 0 regression mass-erases first, several seconds on a 512 KiB part).
DEFAULT_RESET_WAIT_S = 15.0


def read_unprotect(
    dev: DfuDevice,
    *,
    confirm: bool = False,
    reconnect: bool = False,
    wait_s: float = DEFAULT_RESET_WAIT_S,
) -> OptionBytes | None:
    """Remove read protection (DfuSe ``0x92``): :meth:`DfuDevice.read_unprotect`."""
    if not confirm:
        raise SafetyError(
            "Read Unprotect mass-erases the whole flash and resets the device; "
            "pass confirm=True to do it"
        )
    action = "removing read protection (Read Unprotect)"
    dev._require_dfu_mode(action)
    dev._recover_if_needed()
    try:
        dev.transport.control_out(Request.DNLOAD, 0, encode_read_unprotect())
    except TransportError as exc:
        dev._fail(exc, action)
    try:
        dev._poll(action, (State.dfuDNLOAD_IDLE, State.dfuMANIFEST, State.dfuIDLE))
    except (StallError, DeviceGoneError, TransferTimeoutError) as exc:
        _log.debug("device reset after Read Unprotect, as expected: %s", exc)
    dev.close()
    if not reconnect:
        return None
    dev.reconnect(wait_s)
    options = dev.read_option_bytes()
    if options.rdp_level is not RdpLevel.LEVEL_0:
        raise ProtocolError(
            f"after Read Unprotect the device reports read protection level "
            f"{int(options.rdp_level)}, expected 0"
        )
    return options


def option_alt(dev: DfuDevice) -> AltSetting:
    """The ``Option Bytes`` alternate setting of ``dev`` (ProtocolError if it has none)."""
    for setting in dev.info.alt_settings:
        if setting.layout is not None and setting.label.casefold() == "option bytes":
            return setting
    raise ProtocolError(f"{dev.info.describe()} has no 'Option Bytes' alternate setting")


def read_option_bytes(dev: DfuDevice) -> OptionBytes:
    """Read the option-byte block: :meth:`DfuDevice.read_option_bytes`."""
    setting = option_alt(dev)
    assert setting.layout is not None
    return OptionBytes.parse(_read_setting(dev, setting, setting.layout.size))


@contextmanager
def _on_setting(dev: DfuDevice, setting: AltSetting) -> Iterator[None]:
    """Select ``setting`` for the body, then the previously selected setting again.

    When the body fails, switching back is attempted but may fail too (the device
    may be gone): that second failure is suppressed so the body's own error, which
    names the operation, is the one raised.
    """
    previous = dev.alt
    dev.select_alt(setting.number)
    back = previous if previous is not None and previous != setting.number else None
    try:
        yield
    except BaseException:
        if back is not None:
            with suppress(DfuseError):
                dev.select_alt(back)
        raise
    if back is not None:
        dev.select_alt(back)


def _read_setting(dev: DfuDevice, setting: AltSetting, length: int) -> bytes:
    """Upload ``length`` bytes from the start of ``setting``'s memory; the previously
    selected alternate setting is selected again afterwards."""
    assert setting.layout is not None
    with _on_setting(dev, setting):
        return dev.upload(setting.layout.address, length)


def write_option_bytes(
    dev: DfuDevice,
    options: OptionBytes,
    *,
    confirm: bool = False,
    allow_permanent_rdp2: bool = False,
) -> None:
    """Write the option-byte block: :meth:`DfuDevice.write_option_bytes`."""
    if options.rdp_level == 2 and not allow_permanent_rdp2:
        raise SafetyError(
            "refusing to set read protection level 2: it is permanent and disables the "
            "DFU bootloader for good; pass allow_permanent_rdp2=True to do it"
        )
    current = dev.read_option_bytes()
    if current.rdp_level != 0 and options.rdp_level == 0 and not confirm:
        raise SafetyError(
            f"lowering read protection from level {int(current.rdp_level)} to 0 mass-erases "
            "the flash; pass confirm=True to do it"
        )
    _write_option_block(dev, options)


def _write_option_block(dev: DfuDevice, options: OptionBytes) -> None:
    """Send the 16-byte block; the device resets (this object is closed afterwards)."""
    setting = option_alt(dev)
    assert setting.layout is not None
    dev.select_alt(setting.number)
    address = setting.layout.address
    data = options.to_bytes()
    dev.set_address(address)
    action = f"writing the option bytes at 0x{address:08X}"
    try:
        dev.transport.control_out(Request.DNLOAD, FIRST_DATA_BLOCK, data)
    except TransportError as exc:
        dev._fail(exc, action)
    try:
        dev._poll(action, (State.dfuDNLOAD_IDLE,))
    except (StallError, DeviceGoneError, TransferTimeoutError) as exc:
        _log.debug("device reset after the option-byte write, as expected: %s", exc)
    dev.close()


def change_option_bytes(
    dev: DfuDevice,
    options: OptionBytes,
    *,
    confirm: bool = False,
    allow_permanent_rdp2: bool = False,
    wait_s: float = DEFAULT_RESET_WAIT_S,
) -> OptionBytes:
    """Write the option bytes and confirm them: :meth:`DfuDevice.change_option_bytes`."""
    if options.rdp_level is RdpLevel.LEVEL_2 and not allow_permanent_rdp2:
        raise SafetyError(
            "refusing to set read protection level 2: it is permanent (the DFU "
            "bootloader and debug access are disabled for good); pass "
            "allow_permanent_rdp2=True to do it"
        )
    dev._require_dfu_mode("change the option bytes")
    return apply_option_bytes(dev, dev.read_option_bytes(), options, confirm=confirm, wait_s=wait_s)


def apply_option_bytes(
    dev: DfuDevice,
    current: OptionBytes,
    options: OptionBytes,
    *,
    confirm: bool,
    wait_s: float,
    hint: str = "pass confirm=True to do it",
) -> OptionBytes:
    """:meth:`change_option_bytes` once the current block is known (RDP 2 checked)."""
    setting = option_alt(dev)
    lowering = current.rdp_level is not RdpLevel.LEVEL_0
    if lowering and options.rdp_level is RdpLevel.LEVEL_0 and not confirm:
        raise SafetyError(
            f"lowering read protection from level {int(current.rdp_level)} to 0 "
            f"mass-erases the flash; {hint}"
        )
    if current.optcr == options.optcr:
        _log.info("the option bytes already hold %08X: nothing to write", options.optcr)
        return current
    previous = dev.alt
    _log.info("option bytes %08X → %08X", current.optcr, options.optcr)
    _write_option_block(dev, options)
    if options.rdp_level is RdpLevel.LEVEL_2:
        _log.warning("read protection level 2 set: the device will not come back")
        return options
    dev.reconnect(wait_s)
    again = dev.read_option_bytes()
    if previous is not None and previous != dev.alt:
        dev.select_alt(previous)
    if again.optcr != options.optcr:
        want, got = options.to_bytes(), again.to_bytes()
        diffs = [i for i in range(len(want)) if want[i] != got[i]] or [0]
        assert setting.layout is not None
        raise VerifyError(
            setting.layout.address + diffs[0],
            want[diffs[0]],
            got[diffs[0]],
            mismatches=len(diffs),
        )
    return again


def _flash_sector_numbers(dev: DfuDevice, sectors: Iterable[int]) -> frozenset[int]:
    """Check write-protection sector numbers against the flash layout (no traffic)."""
    chosen = frozenset(sectors)
    flash = next((a.layout for a in dev.info.alt_settings if a.layout is not None), None)
    count = len(flash.sectors) if flash is not None else 8
    for n in chosen:
        if not isinstance(n, int) or isinstance(n, bool) or not 0 <= n < count:
            raise ValueError(f"flash sector numbers of this device are 0..{count - 1}, got {n!r}")
    return chosen


def protect_sectors(
    dev: DfuDevice, sectors: Iterable[int], *, wait_s: float = DEFAULT_RESET_WAIT_S
) -> OptionBytes:
    """Write-protect flash sectors: :meth:`DfuDevice.protect_sectors`."""
    chosen = _flash_sector_numbers(dev, sectors)
    current = dev.read_option_bytes()
    new = current.with_sectors_protected(chosen)
    return apply_option_bytes(dev, current, new, confirm=False, wait_s=wait_s)


def unprotect_sectors(
    dev: DfuDevice, sectors: Iterable[int], *, wait_s: float = DEFAULT_RESET_WAIT_S
) -> OptionBytes:
    """Remove write protection from flash sectors: :meth:`DfuDevice.unprotect_sectors`."""
    chosen = _flash_sector_numbers(dev, sectors)
    current = dev.read_option_bytes()
    new = current.with_sectors_unprotected(chosen)
    return apply_option_bytes(dev, current, new, confirm=False, wait_s=wait_s)


def set_read_protection(
    dev: DfuDevice,
    level: int,
    *,
    confirm: bool = False,
    allow_permanent_rdp2: bool = False,
    wait_s: float = DEFAULT_RESET_WAIT_S,
) -> OptionBytes:
    """Set the read-protection level: :meth:`DfuDevice.set_read_protection`."""
    wanted = RdpLevel(level)
    if wanted is RdpLevel.LEVEL_2 and not allow_permanent_rdp2:
        raise SafetyError(
            "refusing to set read protection level 2: it is permanent (the DFU "
            "bootloader and debug access are disabled for good); pass "
            "allow_permanent_rdp2=True to do it"
        )
    dev._require_dfu_mode("set read protection")
    current = dev.read_option_bytes()
    new = current.with_rdp(wanted, allow_level_2=allow_permanent_rdp2)
    return apply_option_bytes(dev, current, new, confirm=confirm, wait_s=wait_s)


def otp_alt(dev: DfuDevice) -> AltSetting:
    """The ``OTP Memory`` alternate setting of ``dev`` (ProtocolError if it has none)."""
    for setting in dev.info.alt_settings:
        if setting.layout is not None and setting.label.casefold() == "otp memory":
            return setting
    raise ProtocolError(f"{dev.info.describe()} has no 'OTP Memory' alternate setting")


def read_otp(dev: DfuDevice) -> OtpArea:
    """Read the OTP area: :meth:`DfuDevice.read_otp`."""
    return OtpArea.parse(_read_setting(dev, otp_alt(dev), OTP_SIZE))


def _otp_program(dev: DfuDevice, address: int, data: bytes, action: str) -> None:
    with _on_setting(dev, otp_alt(dev)):
        dev.set_address(address)
        dev._dnload(FIRST_DATA_BLOCK, data, action)


def write_otp(
    dev: DfuDevice, block: int, data: bytes, *, lock: bool = False, confirm: bool = False
) -> OtpArea:
    """Program (and optionally lock) an OTP block: :meth:`DfuDevice.write_otp`."""
    if not isinstance(block, int) or not 0 <= block < OTP_BLOCKS:
        raise ValueError(f"OTP block numbers are 0..{OTP_BLOCKS - 1}, got {block!r}")
    payload = bytes(data)
    if len(payload) != OTP_BLOCK_SIZE:
        raise ValueError(f"an OTP block is {OTP_BLOCK_SIZE} bytes, got {len(payload)}")
    if lock and not confirm:
        raise SafetyError(
            f"locking OTP block {block} is permanent (it can never be written again); "
            "pass confirm=True to do it"
        )
    dev._require_dfu_mode("write OTP")
    current = dev.read_otp()
    if current.is_locked(block):
        raise SafetyError(
            f"refusing to write OTP block {block} at "
            f"0x{OtpArea.block_address(block):08X}: it is locked"
        )
    if not current.can_write(block, payload):
        old = current.blocks[block]
        at = next(i for i in range(OTP_BLOCK_SIZE) if payload[i] & ~old[i])
        raise SafetyError(
            f"refusing to write OTP block {block}: byte {at} at "
            f"0x{OtpArea.block_address(block) + at:08X} is 0x{old[at]:02X} and cannot "
            f"become 0x{payload[at]:02X} (OTP bits only go from 1 to 0)"
        )
    expected = current.with_block(block, payload)
    address = OtpArea.block_address(block)
    if payload != current.blocks[block]:
        _otp_program(dev, address, payload, f"writing OTP block {block} at 0x{address:08X}")
    if lock:
        expected = expected.with_lock(block)
        _lock_otp(dev, block)
    return _confirm_otp(dev, expected)


def lock_otp(dev: DfuDevice, block: int, *, confirm: bool = False) -> OtpArea:
    """Lock an OTP block for good: :meth:`DfuDevice.lock_otp`."""
    if not isinstance(block, int) or not 0 <= block < OTP_BLOCKS:
        raise ValueError(f"OTP block numbers are 0..{OTP_BLOCKS - 1}, got {block!r}")
    if not confirm:
        raise SafetyError(
            f"locking OTP block {block} is permanent (it can never be written again); "
            "pass confirm=True to do it"
        )
    dev._require_dfu_mode("lock OTP")
    current = dev.read_otp()
    if current.is_locked(block):
        return current
    _lock_otp(dev, block)
    return _confirm_otp(dev, current.with_lock(block))


def _lock_otp(dev: DfuDevice, block: int) -> None:
    address = OtpArea.lock_address(block)
    _otp_program(dev, address, b"\x00", f"locking OTP block {block} (0x{address:08X})")


def _confirm_otp(dev: DfuDevice, expected: OtpArea) -> OtpArea:
    got = dev.read_otp()
    want, have = expected.to_bytes(), got.to_bytes()
    if want != have:
        setting = otp_alt(dev)
        assert setting.layout is not None
        dev._compare(setting.layout.address, memoryview(want), have)
    return got


def execute_option_plan(dev: DfuDevice, plan: Plan, report: Progress) -> None:
    """Write an option-byte plan's block the way :meth:`change_option_bytes` does."""
    data = b"".join(bytes(w.data) for w in plan.writes)
    new = OptionBytes.parse(data)
    apply_option_bytes(
        dev,
        dev.read_option_bytes(),
        new,
        confirm=False,
        wait_s=DEFAULT_RESET_WAIT_S,
        hint="use change_option_bytes(..., confirm=True) to do it",
    )
    report.add(Phase.WRITE, len(data))
    report.add(Phase.VERIFY, plan.verify_bytes)
    leave = next((s for s in plan.steps if isinstance(s, Leave)), None)
    if leave is not None and not dev._closed:
        report.add(Phase.LEAVE, 0)
        dev.leave(leave.address)
        report.add(Phase.LEAVE, 1)
