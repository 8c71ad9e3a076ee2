"""The :class:`DfuDevice` class: opening, requests, polling, erase, upload and verify,
download execution, leaving DFU mode.

The planning that happens before any USB traffic lives in
:mod:`dfuse.device.planning`; option bytes, read protection and OTP in
:mod:`dfuse.device.protection` (the methods here delegate to it).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from types import TracebackType
from typing import NoReturn, Self

from dfuse.clock import Clock, RealClock
from dfuse.device import protection
from dfuse.device.planning import (
    Guards,
    Image,
    Segments,
    TargetPlan,
    check_otp_contents,
    image_jobs,
    is_option_layout,
    plan_targets,
    read_back_spans,
)
from dfuse.device.progress import Phase, Progress, ProgressCallback, Relay
from dfuse.device.protection import DEFAULT_RESET_WAIT_S
from dfuse.errors import (
    DeviceGoneError,
    DeviceStatusError,
    ProtocolError,
    SafetyError,
    StallError,
    TransferTimeoutError,
    TransportError,
    VerifyError,
)
from dfuse.file.model import DfuSeFile, Target
from dfuse.layout import MemoryLayout, Sector
from dfuse.optionbytes import OptionBytes, OtpArea
from dfuse.protocol.constants import Request, State
from dfuse.protocol.descriptors import Attributes, FunctionalDescriptor, StatusReply
from dfuse.protocol.dfuse import (
    FIRST_DATA_BLOCK,
    MAX_BLOCK,
    encode_erase,
    encode_mass_erase,
    encode_set_address,
)
from dfuse.protocol.plan import (
    EraseMode,
    EraseSector,
    Leave,
    MassErase,
    Plan,
    SetAddress,
    Verify,
    WriteBlock,
)
from dfuse.transport.base import AltSetting, DeviceInfo, DeviceMode, Transport
from dfuse.transport.discovery import find_devices, select_device
from dfuse.transport.pyusb import PyUsbTransport, get_backend

__all__ = ["DEFAULT_BUSY_TIMEOUT_S", "DEFAULT_ENTRY", "DfuDevice"]

_log = logging.getLogger(__name__)

#: Longest a device may stay busy (dfuDNBUSY) on one request before the host gives up.
DEFAULT_BUSY_TIMEOUT_S = 30.0
#: Where the ST bootloader starts an application (used by :meth:`DfuDevice.leave`).
DEFAULT_ENTRY = 0x08000000
#: Shortest wait between two GETSTATUS polls of a busy device reporting bwPollTimeout 0.
_MIN_POLL_S = 0.001


def _name(value: object) -> str:
    """An enum member's name, or the raw value."""
    return str(getattr(value, "name", value))


class DfuDevice:
    """A DFU (DfuSe) device opened for flashing.

    Use :meth:`open` to find and open a USB device, or wrap any
    :class:`~dfuse.transport.base.Transport`. A context manager: leaving the
    ``with`` block releases the interface.

    Attributes:
        transport: the transport requests go through.
        clock: the clock polls wait on.
        busy_timeout: longest total wait (seconds) for one busy operation.
        max_block: the highest wBlockNum used before the address pointer is set again
            (0xFFFF, the field's limit; lower it only for devices with a smaller counter).
        initial_status: the GETSTATUS reply found when the device was opened
            (``None`` for a device in run-time mode).

    ``transfer_size`` overrides the functional descriptor's wTransferSize for a plain DFU
    device (or one without a descriptor); a DfuSe device places data blocks
    wTransferSize bytes apart, so another value is refused with :class:`ValueError`.
    """

    def __init__(
        self,
        transport: Transport,
        clock: Clock | None = None,
        *,
        alt: int | str | None = None,
        busy_timeout: float = DEFAULT_BUSY_TIMEOUT_S,
        transfer_size: int | None = None,
        max_block: int = MAX_BLOCK,
    ) -> None:
        if not FIRST_DATA_BLOCK <= max_block <= MAX_BLOCK:
            raise ValueError(
                f"max_block must be in {FIRST_DATA_BLOCK}..{MAX_BLOCK}, got {max_block}"
            )
        self.transport = transport
        self.max_block = max_block
        self.clock: Clock = clock if clock is not None else RealClock()
        self.busy_timeout = busy_timeout
        info = transport.info
        self._functional = info.functional
        own = info.functional.transfer_size if info.functional else 0
        if transfer_size and own > 0 and self.is_dfuse and transfer_size != own:
            # DfuSe places block n at pointer + (n - 2) x the device's own size: blocks cut
            # to another size would land (and read back) at the wrong addresses.
            raise ValueError(
                f"a DfuSe device places data blocks {own} bytes apart (its wTransferSize "
                f"{own}); transfer_size={transfer_size} would write and read them at the "
                "wrong addresses"
            )
        size = transfer_size or own
        if size <= 0:
            size = 1024
            _log.warning("%s has no wTransferSize: using %d", info.describe(), size)
        self._transfer_size = size
        self._state: State | int = State.dfuIDLE
        self._alt: AltSetting | None = None
        self._pointer: int | None = None
        self._closed = False
        self._suspect = False
        self.initial_status: StatusReply | None = None
        if info.mode is DeviceMode.DFU:
            try:
                self.initial_status = self._to_idle()
            except TransportError as exc:
                exc.args = (
                    f"{exc.args[0] if exc.args else exc} (while opening {info.describe()})",
                )
                raise
            if alt is not None:
                self.select_alt(alt)
            elif info.alt_settings:
                self._alt = info.alt_settings[0]

    # ------------------------------------------------------------------ opening

    @classmethod
    def open(
        cls,
        *,
        vid: int | None = None,
        pid: int | None = None,
        serial: str | None = None,
        path: str | None = None,
        alt: int | str | None = None,
        backend: object = None,
        clock: Clock | None = None,
        ids: Iterable[tuple[int | None, int | None]] = (),
        busy_timeout: float = DEFAULT_BUSY_TIMEOUT_S,
    ) -> DfuDevice:
        """Find exactly one DFU device matching the selectors, open it and bring it to dfuIDLE.

        ``backend`` is any pyusb backend (e.g. :class:`dfuse.sim.SimBackend`);
        ``clock`` defaults to the backend's own ``clock`` when it has one, else
        :class:`~dfuse.clock.RealClock`. Raises
        :class:`~dfuse.errors.DeviceNotFoundError` when no device or several match
        (listing them).
        """
        be = get_backend(backend)
        found = find_devices(vid=vid, pid=pid, serial=serial, path=path, backend=be, ids=ids)
        criteria = ", ".join(
            f"{k}={v}"
            for k, v in (
                ("vid", None if vid is None else f"{vid:04x}"),
                ("pid", None if pid is None else f"{pid:04x}"),
                ("serial", serial),
                ("path", path),
            )
            if v is not None
        )
        info = select_device(found, criteria or "(any)")
        if clock is None:
            own = getattr(be, "clock", None)
            clock = own if isinstance(own, Clock) else RealClock()
        transport = PyUsbTransport.open(info, be)
        try:
            return cls(transport, clock, alt=alt, busy_timeout=busy_timeout)
        except BaseException:
            transport.close()
            raise

    def close(self) -> None:
        """Release the interface (idempotent)."""
        if not self._closed:
            self._closed = True
            self.transport.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"DfuDevice({self.info.describe()}, alt={self.alt})"

    # ------------------------------------------------------------------ facts

    @property
    def info(self) -> DeviceInfo:
        """The device record (VID/PID, serial, path, alternate settings, ...)."""
        return self.transport.info

    @property
    def functional(self) -> FunctionalDescriptor | None:
        """The DFU functional descriptor."""
        return self._functional

    @property
    def transfer_size(self) -> int:
        """wTransferSize: the largest data block per DNLOAD/UPLOAD."""
        return self._transfer_size

    @property
    def is_dfuse(self) -> bool:
        """True for an ST DfuSe device (bcdDFUVersion 0x011A)."""
        return self._functional is not None and self._functional.is_dfuse

    @property
    def alt(self) -> int | None:
        """The selected alternate setting's number."""
        return self._alt.number if self._alt is not None else None

    @property
    def layout(self) -> MemoryLayout | None:
        """The memory layout of the selected alternate setting (``None`` if it has none)."""
        return self._alt.layout if self._alt is not None else None

    @property
    def initial_state(self) -> State | int | None:
        """The DFU state found when the device was opened (``None`` in run-time mode)."""
        return self.initial_status.state if self.initial_status is not None else None

    @property
    def state(self) -> State | int:
        """The DFU state the host last saw (no USB traffic; see :meth:`status`)."""
        return self._state

    # ------------------------------------------------------------------ basic requests

    def status(self) -> StatusReply:
        """GETSTATUS."""
        reply = StatusReply.parse(self.transport.control_in(Request.GETSTATUS, 0, StatusReply.SIZE))
        self._state = reply.state
        return reply

    def get_state(self) -> State | int:
        """GETSTATE."""
        data = self.transport.control_in(Request.GETSTATE, 0, 1)
        if len(data) != 1:
            raise ProtocolError(f"GETSTATE reply must be 1 byte, got {len(data)}")
        code = data[0]
        self._state = State(code) if code in State._value2member_map_ else code
        return self._state

    def clear_status(self) -> None:
        """CLRSTATUS (dfuERROR → dfuIDLE)."""
        self.transport.control_out(Request.CLRSTATUS, 0)
        self._state = State.dfuIDLE

    def abort(self) -> None:
        """ABORT (back to dfuIDLE from the idle states of a transfer)."""
        self.transport.control_out(Request.ABORT, 0)
        self._state = State.dfuIDLE

    def _abort(self, action: str) -> None:
        """ABORT as one step of ``action``: a failure names the operation (see :meth:`_fail`)."""
        try:
            self.abort()
        except TransportError as exc:
            self._fail(exc, action)

    def select_alt(self, alt: int | str) -> AltSetting:
        """Select an alternate setting by number or name (SET_INTERFACE)."""
        setting = self.info.alt(alt)
        action = f"selecting alternate setting {setting.number} ({setting.name or 'no name'})"
        if self._state != State.dfuIDLE:
            self._abort(action)
        try:
            self.transport.set_alt_setting(setting.number)
        except TransportError as exc:
            self._fail(exc, action)
        self._alt = setting
        return setting

    # ------------------------------------------------------------------ state handling

    def _to_idle(self) -> StatusReply:
        """Bring the device to dfuIDLE from whatever state it is in; return what was found.

        CLRSTATUS from dfuERROR (twice if need be: some STM32H7 ROMs), ABORT from the
        states of an interrupted transfer, waiting out dfuDNBUSY (up to
        :attr:`busy_timeout`).
        """
        first = self.status()
        if not first.ok or first.state != State.dfuIDLE:
            _log.info(
                "device found in %s/%s: bringing it to dfuIDLE",
                _name(first.state),
                _name(first.status),
            )
        reply = first
        actions = 0
        deadline = self.clock.now + self.busy_timeout
        while not (reply.state == State.dfuIDLE and reply.ok):
            state = reply.state
            if state == State.dfuDNBUSY and self.clock.now < deadline:
                self.clock.sleep(max(reply.poll_timeout_ms / 1000, _MIN_POLL_S))
            elif actions >= 3:
                break
            elif state == State.dfuERROR or not reply.ok:
                self.clear_status()
                actions += 1
            elif state in (
                State.dfuDNLOAD_SYNC,
                State.dfuDNLOAD_IDLE,
                State.dfuUPLOAD_IDLE,
                State.dfuMANIFEST_SYNC,
            ):
                self.abort()
                actions += 1
            else:
                break
            reply = self.status()
        if reply.state == State.dfuIDLE and reply.ok:
            return first
        raise ProtocolError(
            "could not bring the device to dfuIDLE: it reports "
            f"{_name(reply.state)}/{_name(reply.status)}"
            f" (found {_name(first.state)} when opened)"
        )

    def _recover_if_needed(self) -> None:
        """After an operation failed mid-request (a stall, a timeout, a device still
        busy), bring the device back to dfuIDLE before the next one."""
        if self._suspect and not self._closed and self.info.mode is DeviceMode.DFU:
            self._suspect = False
            _log.info("the last operation failed: bringing the device back to dfuIDLE")
            self._to_idle()
            self._pointer = None

    def _require_dfu_mode(self, action: str) -> None:
        if self.info.mode is not DeviceMode.DFU:
            raise ProtocolError(f"cannot {action}: the device is in run-time mode; detach() first")
        if self._closed:
            raise ProtocolError(f"cannot {action}: the device is closed")

    def _recover(self) -> None:
        """Best effort after an error status: CLRSTATUS so that the device is usable again."""
        try:
            self.clear_status()
        except TransportError as exc:
            _log.debug("CLRSTATUS after an error failed: %s", exc)

    def _status_error(self, reply: StatusReply, action: str) -> DeviceStatusError:
        self._recover()
        return DeviceStatusError(reply.status, reply.state, action=action, istring=reply.istring)

    def _explain(self, exc: TransportError, action: str) -> BaseException:
        """After a stall, ask the device why: a DeviceStatusError if it says, else ``exc``
        with the action appended."""
        if isinstance(exc, StallError):
            try:
                reply = self.status()
            except TransportError:
                reply = None
            if reply is not None and not reply.ok:
                return self._status_error(reply, action)
        exc.args = (f"{exc.args[0] if exc.args else exc} (while {action})",)
        return exc

    def _fail(self, exc: TransportError, action: str) -> NoReturn:
        """Raise the error for a failed request: what the device says after a stall, or
        ``exc`` itself with the action appended. The device may be left mid-request:
        the next operation first brings it back to dfuIDLE."""
        self._suspect = True
        err = self._explain(exc, action)
        if err is exc:
            raise exc
        raise err from exc

    def _poll(self, action: str, done: tuple[State, ...]) -> StatusReply:
        """GETSTATUS until the device is no longer busy, honouring bwPollTimeout.

        The next GETSTATUS goes out bwPollTimeout after the previous one was sent
        (a device still busy then says so again, or holds the request), and the
        total wait is bounded by :attr:`busy_timeout`.
        """
        deadline: float | None = None
        while True:
            sent = self.clock.now
            try:
                reply = self.status()
            except TransportError as exc:
                self._fail(exc, action)
            if not reply.ok or reply.state == State.dfuERROR:
                raise self._status_error(reply, action)
            if reply.state in done:
                return reply
            if reply.state not in (State.dfuDNBUSY, State.dfuDNLOAD_SYNC, State.dfuMANIFEST_SYNC):
                self._suspect = True
                raise ProtocolError(
                    f"{action}: expected "
                    + " or ".join(s.name for s in done)
                    + f", the device reports {_name(reply.state)}"
                )
            now = self.clock.now
            if deadline is None:
                deadline = now + self.busy_timeout
            elif now >= deadline:
                self._suspect = True  # still busy: the next operation waits it out first
                raise TransferTimeoutError(
                    f"the device stayed {_name(reply.state)} for more than {self.busy_timeout:g} s",
                    request=action,
                )
            wait = min(sent + reply.poll_timeout_ms / 1000, deadline) - now
            self.clock.sleep(max(wait, _MIN_POLL_S))

    def _dnload(self, block: int, data: bytes | memoryview, action: str) -> StatusReply:
        """DNLOAD one block, then poll until dfuDNLOAD-IDLE."""
        if self._state == State.dfuUPLOAD_IDLE:
            self.abort()
        try:
            self.transport.control_out(Request.DNLOAD, block, data)
        except TransportError as exc:
            self._fail(exc, action)
        return self._poll(action, (State.dfuDNLOAD_IDLE,))

    def _command(self, payload: bytes, action: str) -> None:
        self._require_dfu_mode(action)
        if not self.is_dfuse:
            raise ProtocolError(f"cannot {action}: the device does not speak DfuSe")
        self._recover_if_needed()
        self._dnload(0, payload, action)

    def set_address(self, address: int) -> None:
        """DfuSe Set Address Pointer."""
        self._set_address(address)

    def _set_address(self, address: int, purpose: str = "") -> None:
        action = f"setting the address pointer to 0x{address:08X}"
        self._command(encode_set_address(address), action + (f" for {purpose}" if purpose else ""))
        self._pointer = address

    # ------------------------------------------------------------------ erase

    def _sector(self, which: Sector | int) -> Sector:
        """The layout's sector for ``which`` (a Sector or an address in one), checked erasable."""
        layout = self.layout
        label = layout.label if layout is not None else "the selected alternate setting"
        address = which.address if isinstance(which, Sector) else which
        sector = layout.sector_at(address) if layout is not None else None
        if sector is None or (isinstance(which, Sector) and sector != which):
            raise SafetyError(f"refusing to erase 0x{address:08X}: it is in no sector of {label}")
        if not sector.erasable:
            raise SafetyError(
                f"refusing to erase sector {sector.index} at 0x{sector.address:08X}: "
                "the layout marks it not erasable"
            )
        return sector

    def erase(
        self, sectors: Iterable[Sector | int] | str, *, progress: ProgressCallback | None = None
    ) -> None:
        """Erase sectors (``Sector`` objects, or addresses inside them) of the selected
        alternate setting, each once in address order; ``"all"`` mass-erases.

        Sectors the layout does not mark erasable are refused with SafetyError
        before any USB traffic.
        """
        if isinstance(sectors, str):
            if sectors != "all":
                raise ValueError(f"erase() takes sectors or 'all', got {sectors!r}")
            self.mass_erase()
            return
        chosen = {s.address: s for s in (self._sector(w) for w in sectors)}
        ordered = [chosen[a] for a in sorted(chosen)]
        report = Progress(progress, {Phase.ERASE: sum(s.size for s in ordered)})
        for s in ordered:
            self._erase_sector(s.index, s.address)
            report.add(Phase.ERASE, s.size)

    def _erase_sector(self, index: int, address: int) -> None:
        self._command(encode_erase(address), f"erasing sector {index} at 0x{address:08X}")

    def mass_erase(self) -> None:
        """Erase the whole flash (DfuSe ``0x41`` without an address)."""
        self._command(encode_mass_erase(), "mass erasing the flash")

    # ------------------------------------------------------------------ read unprotect / reconnect

    def read_unprotect(
        self,
        *,
        confirm: bool = False,
        reconnect: bool = False,
        wait_s: float = DEFAULT_RESET_WAIT_S,
    ) -> OptionBytes | None:
        """Remove read protection (DfuSe ``0x92``). The device mass-erases its flash and
        resets: this object is closed afterwards (open the device again), unless
        ``reconnect=True``: then it waits (up to ``wait_s``) for the device to come
        back, reopens it in place and returns the option bytes read back (RDP level 0).

        Irreversible for the flash contents: refused with
        :class:`~dfuse.errors.SafetyError` unless ``confirm=True``.
        """
        return protection.read_unprotect(self, confirm=confirm, reconnect=reconnect, wait_s=wait_s)

    def reconnect(self, wait_s: float = DEFAULT_RESET_WAIT_S) -> None:
        """After the device reset itself (option bytes, Read Unprotect): wait up to
        ``wait_s`` for it to re-enumerate (same bus path or serial number), reopen it in
        place and bring it to dfuIDLE. The alternate setting selected before is
        selected again when the device still has it.

        Raises :class:`~dfuse.errors.DeviceGoneError` when it does not come back in time.
        """
        previous = self.alt
        deadline = self.clock.now + wait_s
        if not self._closed:
            self.close()
        while True:
            remaining = max(deadline - self.clock.now, 0.0)
            transport = self.transport.reopen(remaining, self.clock)
            try:
                self._adopt(transport)
            except (DeviceGoneError, StallError, TransferTimeoutError) as exc:
                # a stale enumeration, or a device still settling: try again
                transport.close()
                if self.clock.now >= deadline:
                    raise DeviceGoneError(
                        f"did not come back in a usable state within {wait_s:g} s ({exc})",
                        request=f"waiting for {self.info.describe()} to re-enumerate",
                    ) from exc
                self.clock.sleep(0.05)
                continue
            break
        known = {a.number for a in self.info.alt_settings}
        if previous is not None and previous in known and previous != self.alt:
            self.select_alt(previous)

    def _adopt(self, transport: Transport) -> None:
        """Take over ``transport`` (the same device, re-enumerated) and reach dfuIDLE."""
        self.transport = transport
        info = transport.info
        self._functional = info.functional
        self._closed = False
        self._suspect = False
        self._pointer = None
        self._state = State.dfuIDLE
        self._alt = info.alt_settings[0] if info.alt_settings else None
        if info.mode is DeviceMode.DFU:
            self.initial_status = self._to_idle()
        else:
            self.initial_status = None

    # ------------------------------------------------------------------ option bytes (protection)

    def read_option_bytes(self) -> OptionBytes:
        """Read the option-byte block (the ``Option Bytes`` alternate setting); the
        previously selected alternate setting is selected again afterwards."""
        return protection.read_option_bytes(self)

    def write_option_bytes(
        self, options: OptionBytes, *, confirm: bool = False, allow_permanent_rdp2: bool = False
    ) -> None:
        """Write the option-byte block. The device applies it and resets: this object is
        closed afterwards; open the device again (or use :meth:`change_option_bytes`,
        which waits for the device, reopens it and confirms the new values).

        Refused with :class:`~dfuse.errors.SafetyError`: read protection level 2
        (permanent: the bootloader is disabled for good) unless
        ``allow_permanent_rdp2=True`` (before any USB traffic), and lowering read
        protection to level 0 (the device mass-erases its flash) unless ``confirm=True``.
        """
        protection.write_option_bytes(
            self, options, confirm=confirm, allow_permanent_rdp2=allow_permanent_rdp2
        )

    def change_option_bytes(
        self,
        options: OptionBytes,
        *,
        confirm: bool = False,
        allow_permanent_rdp2: bool = False,
        wait_s: float = DEFAULT_RESET_WAIT_S,
    ) -> OptionBytes:
        """Write the option bytes, wait for the device to reset and come back (up to
        ``wait_s``), reopen it in place and read the option bytes again to confirm.
        Returns what the device reports afterwards (nothing is written, and the device
        is not reset, when it already holds ``options``).

        Safety, checked before any USB traffic where possible:

        * read protection level 2 (permanent: the bootloader never comes back) is
          refused with :class:`~dfuse.errors.SafetyError` unless
          ``allow_permanent_rdp2=True`` (``confirm`` is not enough). After a level 2
          write the device cannot be reopened: this object is closed and ``options``
          is returned unconfirmed;
        * lowering read protection 1 → 0 (the device mass-erases its flash) needs
          ``confirm=True``.

        Raises :class:`~dfuse.errors.VerifyError` when the device comes back with other
        option bytes (first differing byte of the block), and
        :class:`~dfuse.errors.DeviceGoneError` when it does not come back in time.
        """
        return protection.change_option_bytes(
            self, options, confirm=confirm, allow_permanent_rdp2=allow_permanent_rdp2, wait_s=wait_s
        )

    def protect_sectors(
        self, sectors: Iterable[int], *, wait_s: float = DEFAULT_RESET_WAIT_S
    ) -> OptionBytes:
        """Write-protect flash ``sectors`` (numbers, e.g. ``[0, 1]``) in addition to those
        already protected: an option-byte change (the device resets; see
        :meth:`change_option_bytes`). Returns the confirmed option bytes."""
        return protection.protect_sectors(self, sectors, wait_s=wait_s)

    def unprotect_sectors(
        self, sectors: Iterable[int], *, wait_s: float = DEFAULT_RESET_WAIT_S
    ) -> OptionBytes:
        """Remove write protection from flash ``sectors``: an option-byte change (the
        device resets; see :meth:`change_option_bytes`). Returns the confirmed option
        bytes."""
        return protection.unprotect_sectors(self, sectors, wait_s=wait_s)

    def set_read_protection(
        self,
        level: int,
        *,
        confirm: bool = False,
        allow_permanent_rdp2: bool = False,
        wait_s: float = DEFAULT_RESET_WAIT_S,
    ) -> OptionBytes:
        """Set the read-protection level (0, 1 or 2) through the option bytes; see
        :meth:`change_option_bytes` for the safety rules (level 2 needs
        ``allow_permanent_rdp2=True``, refused before any USB traffic; 1 → 0 needs
        ``confirm=True``)."""
        return protection.set_read_protection(
            self, level, confirm=confirm, allow_permanent_rdp2=allow_permanent_rdp2, wait_s=wait_s
        )

    # ------------------------------------------------------------------ OTP (protection)

    def read_otp(self) -> OtpArea:
        """Read the one-time-programmable area (16 blocks of 32 bytes and their 16 lock
        bytes, the ``OTP Memory`` alternate setting); the previously selected alternate
        setting is selected again afterwards."""
        return protection.read_otp(self)

    def write_otp(
        self, block: int, data: bytes, *, lock: bool = False, confirm: bool = False
    ) -> OtpArea:
        """Program OTP ``block`` (0-15) with ``data`` (32 bytes), optionally lock it, read
        the area back to confirm and return it.

        OTP cannot be erased: bits only go from 1 to 0, and a locked block never
        changes. Refused with :class:`~dfuse.errors.SafetyError`, before anything is
        written: a locked block, data that needs a 0 bit back to 1, and ``lock=True``
        without ``confirm=True`` (that one before any USB traffic).
        """
        return protection.write_otp(self, block, data, lock=lock, confirm=confirm)

    def lock_otp(self, block: int, *, confirm: bool = False) -> OtpArea:
        """Lock OTP ``block`` (0-15) for good (its lock byte to 0x00); needs
        ``confirm=True`` (:class:`~dfuse.errors.SafetyError` before any USB traffic).
        Returns the area read back."""
        return protection.lock_otp(self, block, confirm=confirm)

    # ------------------------------------------------------------------ upload / verify

    def upload(
        self, address: int, length: int, *, progress: ProgressCallback | None = None
    ) -> bytes:
        """Read ``length`` bytes at ``address`` (DfuSe: Set Address, ABORT, UPLOAD blocks)."""
        if length < 0:
            raise ValueError(f"length must not be negative, got {length}")
        self._require_dfu_mode("upload")
        if not self.is_dfuse:
            raise ProtocolError("upload(address, length) needs a DfuSe device; use upload_dfu()")
        self._recover_if_needed()
        out = bytearray(length)
        size = self._transfer_size
        report = Progress(progress, {Phase.READ: length})
        block = self.max_block + 1
        offset = 0
        while offset < length:
            where = address + offset
            if block > self.max_block:
                self._set_address(where, f"reading 0x{where:08X} ({length - offset} bytes)")
                block = FIRST_DATA_BLOCK
            n = min(size, length - offset)
            if self._state != State.dfuIDLE and self._state != State.dfuUPLOAD_IDLE:
                self._abort(f"reading 0x{where:08X} ({n} bytes)")
            data = self._upload_block(block, n, f"reading 0x{where:08X} ({n} bytes)")
            if len(data) != n:
                raise ProtocolError(
                    f"reading 0x{where:08X}: asked for {n} bytes (UPLOAD block {block}), "
                    f"the device sent {len(data)}"
                )
            out[offset : offset + n] = data
            offset += n
            block += 1
            report.add(Phase.READ, n)
        if self._state == State.dfuUPLOAD_IDLE:
            self._abort(f"reading 0x{address:08X} ({length} bytes)")
        self._pointer = None
        return bytes(out)

    def _upload_block(self, block: int, length: int, action: str) -> bytes:
        try:
            data = self.transport.control_in(Request.UPLOAD, block, length)
        except TransportError as exc:
            self._fail(exc, action)
        self._state = State.dfuUPLOAD_IDLE
        return data

    def upload_dfu(self, max_length: int = 1 << 24) -> bytes:
        """Plain DFU 1.1 upload: blocks from 0 until a short one (or ``max_length`` bytes)."""
        self._require_dfu_mode("upload")
        size = self._transfer_size
        out = bytearray()
        block = 0
        while len(out) < max_length:
            n = min(size, max_length - len(out))
            data = self._upload_block(block & MAX_BLOCK, n, f"reading block {block}")
            out += data
            block += 1
            if len(data) < n:
                break
        if self._state == State.dfuUPLOAD_IDLE:
            self._abort(f"reading the firmware ({len(out)} bytes)")
        return bytes(out)

    def upload_alt(
        self, alt: int | str | None = None, *, progress: ProgressCallback | None = None
    ) -> Target:
        """Read every readable sector of an alternate setting (default: the selected one)
        into a :class:`~dfuse.file.Target` (one element per contiguous readable run)."""
        if alt is not None:
            self.select_alt(alt)
        layout = self.layout
        if layout is None or self._alt is None:
            raise ProtocolError(
                f"alternate setting {self.alt} has no memory layout to read "
                f"(its name is {self._alt.name if self._alt else None!r})"
            )
        runs: list[tuple[int, int]] = []
        for s in layout.sectors:
            if not s.readable:
                continue
            if runs and runs[-1][0] + runs[-1][1] == s.address:
                runs[-1] = (runs[-1][0], runs[-1][1] + s.size)
            else:
                runs.append((s.address, s.size))
        total = sum(n for _, n in runs)
        segments = []
        base = 0
        for address, n in runs:

            def relay(phase: Phase, done: int, _total: int, offset: int = base) -> None:
                if progress is not None:
                    progress(phase, offset + done, total)

            segments.append((address, self.upload(address, n, progress=relay)))
            base += n
        return Target.from_segments(segments, alt_setting=self._alt.number, name=layout.label)

    def backup(
        self, plans: Iterable[TargetPlan], *, progress: ProgressCallback | None = None
    ) -> DfuSeFile:
        """Read what ``plans`` will erase, before running them (``dfuse flash --backup``).

        Every sector a plan erases is uploaded from its alternate setting (a mass erase:
        the alternate setting's whole memory); the result has one target per plan, with
        the device's IDs, ready for :func:`dfuse.file.save` or to be flashed back to undo
        the download. ``progress`` sees :attr:`Phase.READ` over the total erase bytes.

        Raises:
            ProtocolError: a plan for a plain DFU device (it has no addresses to read).

        >>> # plans = dev.plan(image); dev.backup(plans).save("before.dfu"); dev.download(image)
        """
        plans = tuple(plans)
        for plan in plans:
            if plan.alt is None:
                raise ProtocolError(
                    "backup needs a DfuSe device: a plain DFU plan has no addresses to read"
                )
        jobs: list[tuple[TargetPlan, list[tuple[int, int]]]] = []
        for plan in plans:
            assert plan.alt is not None
            ranges = []
            for erase in plan.plan.erases:
                if isinstance(erase, EraseSector):
                    ranges.append((erase.address, erase.size))
                else:  # a mass erase: the alternate setting's whole memory
                    layout = self.info.alt(plan.alt).layout
                    if layout is None:
                        raise ProtocolError(
                            f"alternate setting {plan.alt} has no memory layout to back up"
                        )
                    ranges.append((layout.address, layout.size))
            jobs.append((plan, ranges))
        total = sum(size for _plan, ranges in jobs for _a, size in ranges)
        report = Progress(progress, {Phase.READ: total})
        targets = []
        for plan, ranges in jobs:
            assert plan.alt is not None
            if plan.alt != self.alt:
                self.select_alt(plan.alt)
            segments = [
                (address, self.upload(address, size, progress=Relay(report, Phase.READ)))
                for address, size in ranges
            ]
            targets.append(Target.from_segments(segments, alt_setting=plan.alt, name=plan.name))
        info = self.info
        return DfuSeFile(tuple(targets), info.vid, info.pid, info.bcd_device)

    def _compare(self, address: int, expected: memoryview, found: bytes) -> None:
        if expected == found:
            return
        n = len(expected)
        first = next(i for i in range(n) if expected[i] != found[i])
        mismatches = sum(1 for i in range(first, n) if expected[i] != found[i])
        raise VerifyError(address + first, expected[first], found[first], mismatches=mismatches)

    def _upload_firmware(self, length: int) -> bytes:
        """Plain DFU: ``length`` bytes of firmware from block 0, to verify."""
        if self._closed:
            raise ProtocolError(
                "verifying: the device left after manifesting the firmware (it is closed): "
                "nothing could be read back"
            )
        back = self.upload_dfu(length)
        if len(back) < length:
            raise ProtocolError(
                f"verifying: the device uploaded {len(back)} bytes of firmware, "
                f"the image has {length}"
            )
        return back

    def verify(
        self,
        image: Image,
        *,
        address: int | None = None,
        progress: ProgressCallback | None = None,
    ) -> None:
        """Read back every byte of ``image`` and compare; :class:`~dfuse.errors.VerifyError`
        (first differing address, bytes expected and found) on a mismatch."""
        jobs = image_jobs(
            image,
            self.info,
            is_dfuse=self.is_dfuse,
            alt=self.alt,
            layout=self.layout,
            address=address,
            check_ids=False,
        )
        total = sum(len(d) for _, _, segs in jobs for _, d in segs)
        report = Progress(progress, {Phase.VERIFY: total})
        for alt, _layout, segs in jobs:
            if alt is not None and alt != self.alt:
                self.select_alt(alt)
            for where, data in segs:
                view = memoryview(data)
                if alt is None:  # plain DFU: the firmware from block 0
                    back = self._upload_firmware(len(view))
                else:
                    back = self.upload(where, len(view))
                self._compare(where, view, back)
                report.add(Phase.VERIFY, len(view))

    # ------------------------------------------------------------------ download

    def plan(
        self,
        image: Image,
        *,
        address: int | None = None,
        verify: bool = True,
        erase: EraseMode | str = EraseMode.SECTORS,
        skip_erased: bool = True,
        leave: bool = False,
        leave_address: int | None = None,
        force: bool = False,
        incremental: bool = False,
        progress: ProgressCallback | None = None,
        allow_option_bytes: bool = False,
        allow_permanent_rdp2: bool = False,
        allow_otp: bool = False,
        allow_otp_lock: bool = False,
    ) -> tuple[TargetPlan, ...]:
        """Plan a download without any USB traffic (a dry run: ``print(*dev.plan(img))``).

        Raises :class:`~dfuse.errors.SafetyError` for a write outside writable
        memory or a file for another device (unless ``force``), and for the
        guarded memories (see :meth:`download`: option bytes, OTP).

        With ``incremental=True`` the plan skips the sectors that already hold the
        image (:func:`~dfuse.protocol.plan.plan_incremental`): the image's ranges are
        read back first (UPLOAD only, reported to ``progress`` as :attr:`Phase.READ`;
        nothing is erased or written), and each plan's
        :attr:`~dfuse.protocol.plan.Plan.sectors` says which sectors are skipped and why.
        """
        return self._plan(
            image,
            address=address,
            verify=verify,
            erase=erase,
            skip_erased=skip_erased,
            leave=leave,
            leave_address=leave_address,
            force=force,
            incremental=incremental,
            report=Progress(progress),
            guards=Guards(allow_option_bytes, allow_permanent_rdp2, allow_otp, allow_otp_lock),
        )

    def _plan(
        self,
        image: Image,
        *,
        address: int | None,
        verify: bool,
        erase: EraseMode | str,
        skip_erased: bool,
        leave: bool,
        leave_address: int | None,
        force: bool,
        incremental: bool,
        report: Progress,
        guards: Guards,
    ) -> tuple[TargetPlan, ...]:
        mode = EraseMode(erase)
        jobs = image_jobs(
            image,
            self.info,
            is_dfuse=self.is_dfuse,
            alt=self.alt,
            layout=self.layout,
            address=address,
            force=force,
        )
        return plan_targets(
            jobs,
            mode=mode,
            verify=verify,
            skip_erased=skip_erased,
            leave=leave,
            leave_address=leave_address,
            incremental=incremental,
            guards=guards,
            transfer_size=self._transfer_size,
            max_block=self.max_block,
            check_otp=self._guard_otp_contents,
            read_back=lambda alt, layout, segs: self._read_back(alt, layout, segs, report),
            plain_readback=self._readable_after_manifest,
        )

    @property
    def _readable_after_manifest(self) -> bool:
        """Whether a plain DFU device is back in dfuIDLE after manifesting and can upload
        (so that a download can be read back)."""
        fd = self._functional
        wanted = Attributes.MANIFESTATION_TOLERANT | Attributes.CAN_UPLOAD
        return fd is not None and not fd.is_dfuse and fd.attributes & wanted == wanted

    def _guard_otp_contents(self, segs: Segments) -> None:
        """Read the OTP area and refuse (before writing anything) data for a locked block
        or data that needs a 0 bit back to 1."""
        check_otp_contents(self.read_otp(), segs)

    def _read_back(
        self,
        alt: int,
        layout: MemoryLayout,
        segs: Segments,
        report: Progress,
    ) -> list[tuple[int, bytes]]:
        """Read what the device holds now over the image's ranges (the readable parts)."""
        spans = read_back_spans(layout, segs)
        if report.callback is not None:
            report.totals[Phase.READ] = report.totals.get(Phase.READ, 0) + sum(
                hi - lo for lo, hi in spans
            )
        if spans and alt != self.alt:
            self.select_alt(alt)
        out: list[tuple[int, bytes]] = []
        for lo, hi in spans:
            relay = Relay(report, Phase.READ) if report.callback is not None else None
            out.append((lo, self.upload(lo, hi - lo, progress=relay)))
        return out

    def download(
        self,
        image: Image,
        *,
        verify: bool = True,
        progress: ProgressCallback | None = None,
        force: bool = False,
        address: int | None = None,
        erase: EraseMode | str = EraseMode.SECTORS,
        skip_erased: bool = True,
        leave: bool = False,
        leave_address: int | None = None,
        incremental: bool = False,
        allow_option_bytes: bool = False,
        allow_permanent_rdp2: bool = False,
        allow_otp: bool = False,
        allow_otp_lock: bool = False,
    ) -> tuple[TargetPlan, ...]:
        """Write ``image`` to the device: plan (all safety checks first), erase, write,
        verify by read-back, and optionally leave DFU mode.

        ``image`` is a :class:`~dfuse.file.DfuSeFile` (each target to its
        alternate setting), a :class:`~dfuse.file.Target`, a plain
        :class:`~dfuse.file.DfuFile`, or raw bytes (with ``address`` on a DfuSe
        device). ``progress(phase, done, total)`` is called as bytes are
        read back (incremental), erased, written and verified. Returns the
        executed plans.

        ``incremental=True`` (DfuSe only) first reads back the image's ranges and
        then erases and writes only the sectors whose content differs from the
        image; the sectors that already match are skipped (the read-back was their
        verification), the others are erased, written and verified as in a full
        download. Bytes of a skipped sector outside the image keep their content.
        The returned plans' :attr:`~dfuse.protocol.plan.Plan.sectors` list every
        decision.

        Guarded memories (:class:`~dfuse.errors.SafetyError` before any USB traffic):

        * a target writing the option bytes needs ``allow_option_bytes=True``; the block
          must be the whole 16 bytes, read protection level 2 also needs
          ``allow_permanent_rdp2=True``, and lowering it 1 → 0 is refused here (use
          :meth:`change_option_bytes` with ``confirm=True``). It is written last, as
          :meth:`change_option_bytes` does: the device resets, is reopened in place
          and the block is read back to confirm;
        * a target writing OTP needs ``allow_otp=True``, and writing a lock byte
          ``allow_otp_lock=True``; the OTP area is then read first and data for a
          locked block, or needing a 0 bit back to 1, is refused before anything is
          written.
        """
        self._require_dfu_mode("download")
        self._recover_if_needed()
        plans = self._plan(
            image,
            address=address,
            verify=verify,
            erase=erase,
            skip_erased=skip_erased,
            leave=leave,
            leave_address=leave_address,
            force=force,
            incremental=incremental,
            report=Progress(progress),
            guards=Guards(allow_option_bytes, allow_permanent_rdp2, allow_otp, allow_otp_lock),
        )
        totals = {
            Phase.ERASE: sum(p.plan.erase_bytes for p in plans),
            Phase.WRITE: sum(p.plan.write_bytes for p in plans),
            Phase.VERIFY: sum(p.plan.verify_bytes for p in plans),
            Phase.LEAVE: 1,
        }
        report = Progress(progress, totals)
        for target in plans:
            if target.alt is not None and target.alt != self.alt:
                self.select_alt(target.alt)
            if target.plan.writes and is_option_layout(self.layout):
                protection.execute_option_plan(self, target.plan, report)
            else:
                self._execute(target.plan, report)
        return plans

    def execute(self, plan: Plan, *, progress: ProgressCallback | None = None) -> None:
        """Run a plan's steps on the selected alternate setting.

        A DfuSe plan must be cut to the device's transfer size (a data block lands at
        pointer + (n - 2) x wTransferSize), and a plain DFU plan needs a plain DFU device:
        anything else is refused with :class:`ValueError` before any USB traffic.
        """
        if plan.dfuse != self.is_dfuse:
            kind, other = ("DfuSe", "plain DFU") if plan.dfuse else ("plain DFU", "DfuSe")
            raise ValueError(f"a {kind} plan cannot run on a {other} device")
        if plan.dfuse and plan.transfer_size != self._transfer_size:
            raise ValueError(
                f"the plan's blocks are cut to {plan.transfer_size} bytes; this device places "
                f"them {self._transfer_size} bytes apart (its wTransferSize): they would land "
                "at the wrong addresses"
            )
        self._require_dfu_mode("download")
        self._recover_if_needed()
        totals = {
            Phase.ERASE: plan.erase_bytes,
            Phase.WRITE: plan.write_bytes,
            Phase.VERIFY: plan.verify_bytes,
            Phase.LEAVE: 1,
        }
        self._execute(plan, Progress(progress, totals))

    def _execute(self, plan: Plan, report: Progress) -> None:
        for step in plan.steps:
            if isinstance(step, WriteBlock):
                if step.address is None:
                    action = f"writing block {step.block} ({len(step.data)} bytes)"
                else:
                    action = (
                        f"writing block {step.block} at 0x{step.address:08X} "
                        f"({len(step.data)} bytes)"
                    )
                self._require_dfu_mode(action)
                self._dnload(step.block, step.data, action)
                report.add(Phase.WRITE, len(step.data))
            elif isinstance(step, SetAddress):
                self.set_address(step.address)
            elif isinstance(step, EraseSector):
                self._erase_sector(step.index, step.address)
                report.add(Phase.ERASE, step.size)
            elif isinstance(step, MassErase):
                self.mass_erase()
            elif isinstance(step, Verify):
                if plan.dfuse:
                    back = self.upload(step.address, step.length)
                else:  # plain DFU, after the manifestation: the firmware from block 0
                    try:
                        back = self._upload_firmware(step.length)
                    finally:
                        self.close()  # it has left DFU mode as far as the host is concerned
                self._compare(step.address, step.data, back)
                report.add(Phase.VERIFY, step.length)
            elif isinstance(step, Leave):
                report.add(Phase.LEAVE, 0)
                if plan.dfuse:
                    self.leave(step.address)
                else:
                    next_block = (len(plan.writes)) & MAX_BLOCK
                    self._leave(None, block=next_block, stay=bool(plan.verifies))
                report.add(Phase.LEAVE, 1)

    # ------------------------------------------------------------------ leave / detach

    def _entry_point(self) -> int:
        for setting in self.info.alt_settings:
            if setting.layout is not None:
                return setting.layout.address
        return DEFAULT_ENTRY

    def leave(self, address: int | None = None) -> None:
        """Leave DFU mode and start the application.

        DfuSe: set the address pointer to ``address`` (default: the start of
        the first memory, 0x08000000 on an STM32, which some bootloaders require
        right before leaving), then a zero-length DNLOAD and GETSTATUS
        (dfuMANIFEST). A device that drops off the bus or stalls after that has
        left: that counts as success. The device is closed afterwards.
        """
        self._require_dfu_mode("leave DFU mode")
        if self.is_dfuse:
            self._leave(address if address is not None else self._entry_point(), block=2)
        else:
            self._leave(None, block=0)

    def _leave(self, address: int | None, *, block: int, stay: bool = False) -> None:
        """The zero-length DNLOAD and the manifestation; the device is closed afterwards,
        unless ``stay`` and it came back to dfuIDLE (a manifestation-tolerant plain DFU
        device, to be read back)."""
        action = "leaving DFU mode"
        if address is not None:
            self.set_address(address)
        if self._state == State.dfuUPLOAD_IDLE:
            self.abort()
        try:
            what = f"DNLOAD block {block} (0 bytes, leave)"
            self.transport.control_out(Request.DNLOAD, block, b"", what=what)
        except DeviceGoneError:
            self.close()
            return
        except TransportError as exc:
            self._fail(exc, action)
        # A plain DFU device is polled through dfuMANIFEST too: a reset before it reaches
        # dfuMANIFEST-WAIT-RESET (or dfuIDLE) would cut its manifestation short.
        waiting: tuple[State, ...] = (State.dfuMANIFEST_SYNC, State.dfuDNBUSY)
        if not self.is_dfuse:
            waiting += (State.dfuMANIFEST,)
        try:
            reply = self.status()
            deadline = self.clock.now + self.busy_timeout
            while reply.ok and reply.state in waiting:
                if self.clock.now >= deadline:
                    break
                self.clock.sleep(max(reply.poll_timeout_ms / 1000, _MIN_POLL_S))
                reply = self.status()
        except (StallError, DeviceGoneError, TransferTimeoutError) as exc:
            _log.debug("device left DFU mode (%s)", exc)
            self.close()
            return
        if not reply.ok or reply.state == State.dfuERROR:
            raise self._status_error(reply, action)
        if reply.state == State.dfuMANIFEST_WAIT_RESET or (
            not self.is_dfuse
            and self._functional is not None
            and not self._functional.attributes & Attributes.MANIFESTATION_TOLERANT
        ):
            try:
                self.transport.reset()
            except TransportError as exc:
                _log.debug("reset after manifestation: %s", exc)
        elif reply.state == State.dfuMANIFEST:
            # Give the device the time it asked for to manifest before we let go.
            self.clock.sleep(reply.poll_timeout_ms / 1000)
        elif reply.state != State.dfuIDLE:
            raise ProtocolError(
                f"{action}: expected dfuMANIFEST after the zero-length DNLOAD, the device "
                f"reports {_name(reply.state)}"
            )
        elif stay:
            return
        self.close()

    def detach(self, *, timeout_ms: int | None = None, wait_s: float = 5.0) -> DfuDevice:
        """Switch a run-time device to DFU mode: DETACH, a USB reset unless the device
        detaches by itself, then wait (up to ``wait_s``) for it to re-enumerate.

        Returns a new :class:`DfuDevice` for the device in DFU mode; this one is closed.
        """
        if self.info.mode is not DeviceMode.RUNTIME:
            raise ProtocolError("detach(): the device is already in DFU mode")
        fd = self._functional
        wait_ms = timeout_ms if timeout_ms is not None else (fd.detach_timeout_ms if fd else 1000)
        try:
            self.transport.control_out(Request.DETACH, min(wait_ms, 0xFFFF))
        except (StallError, DeviceGoneError) as exc:
            _log.debug("DETACH: %s (the device may already be detaching)", exc)
        if fd is None or not fd.attributes & Attributes.WILL_DETACH:
            try:
                self.transport.reset()
            except TransportError as exc:
                _log.debug("reset after DETACH: %s", exc)
        new = self.transport.reopen(wait_s, self.clock)
        self._closed = True
        return DfuDevice(new, self.clock, busy_timeout=self.busy_timeout)
