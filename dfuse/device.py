"""DfuDevice: the DFU 1.1 + DfuSe host, over a :class:`~dfuse.transport.base.Transport`.

>>> import dfuse
>>> # with DfuDevice.open(vid=0x0483, pid=0xDF11) as dev:
>>> #     dev.download(dfuse.file.load("firmware.hex"))      # erase, write, verify
>>> #     dev.leave()

The device layer is the only place that performs I/O. It turns an image into a
:class:`~dfuse.protocol.plan.Plan` (pure, checked before any USB traffic) and
executes it step by step: DfuSe commands and data blocks go out as DNLOAD, each
followed by GETSTATUS polls that honour the device's bwPollTimeout through an
injected :class:`~dfuse.clock.Clock` and keep polling while the device reports
itself busy, up to a bounded total wait.

Opening brings the device to dfuIDLE from whatever state it is in (CLRSTATUS
from dfuERROR, ABORT from an interrupted transfer) and records what it found in
:attr:`DfuDevice.initial_status`.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from types import TracebackType
from typing import NoReturn, Self

from dfuse.clock import Clock, RealClock
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
from dfuse.file.model import DfuFile, DfuSeFile, Target
from dfuse.layout import MemoryLayout, Sector
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
from dfuse.protocol.constants import Request, State
from dfuse.protocol.descriptors import Attributes, FunctionalDescriptor, StatusReply
from dfuse.protocol.dfuse import (
    FIRST_DATA_BLOCK,
    MAX_BLOCK,
    encode_erase,
    encode_mass_erase,
    encode_read_unprotect,
    encode_set_address,
)
from dfuse.protocol.plan import (
    EraseMode,
    EraseSector,
    Leave,
    MassErase,
    Plan,
    PlanOptions,
    SetAddress,
    Verify,
    WriteBlock,
    normalize_segments,
    plan_dfu_download,
    plan_download,
    plan_incremental,
)
from dfuse.transport.base import AltSetting, DeviceInfo, DeviceMode, Transport
from dfuse.transport.discovery import find_devices, select_device
from dfuse.transport.pyusb import PyUsbTransport, get_backend

__all__ = [
    "ANY_ID",
    "DEFAULT_BUSY_TIMEOUT_S",
    "DEFAULT_RESET_WAIT_S",
    "DfuDevice",
    "Image",
    "Phase",
    "ProgressCallback",
    "TargetPlan",
    "check_file_ids",
]

_log = logging.getLogger(__name__)

#: The wildcard vendor/product ID of a DFU suffix.
ANY_ID = 0xFFFF
#: Longest a device may stay busy (dfuDNBUSY) on one request before the host gives up.
DEFAULT_BUSY_TIMEOUT_S = 30.0
#: Where the ST bootloader starts an application (used by :meth:`DfuDevice.leave`).
DEFAULT_ENTRY = 0x08000000
#: Shortest wait between two GETSTATUS polls of a busy device reporting bwPollTimeout 0.
_MIN_POLL_S = 0.001
#: Longest wait for a device to come back after it reset itself (option bytes: an RDP
#: 1 → 0 regression mass-erases first, several seconds on a 512 KiB part).
DEFAULT_RESET_WAIT_S = 15.0

Image = DfuSeFile | DfuFile | Target | bytes | bytearray | memoryview


class Phase(StrEnum):
    """What a download is doing, as the progress callback reports it."""

    ERASE = "erase"
    WRITE = "write"
    VERIFY = "verify"
    LEAVE = "leave"
    READ = "read"


#: ``progress(phase, done, total)``: bytes done out of total in the phase (leave: 0/1, 1/1).
ProgressCallback = Callable[[Phase, int, int], None]


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


@dataclass(slots=True)
class _Progress:
    callback: ProgressCallback | None
    totals: dict[Phase, int] = field(default_factory=dict)
    done: dict[Phase, int] = field(default_factory=dict)

    def add(self, phase: Phase, n: int) -> None:
        if self.callback is None:
            return
        value = self.done.get(phase, 0) + n
        self.done[phase] = value
        self.callback(phase, value, self.totals.get(phase, value))


@dataclass(slots=True)
class _Relay:
    """A progress callback for a sub-operation that adds its increments to ``report``."""

    report: _Progress
    phase: Phase
    seen: int = 0

    def __call__(self, _phase: Phase, done: int, _total: int) -> None:
        self.report.add(self.phase, done - self.seen)
        self.seen = done


@dataclass(frozen=True, slots=True)
class _Guards:
    """The flags that allow a download into guarded memories."""

    allow_option_bytes: bool = False
    allow_permanent_rdp2: bool = False
    allow_otp: bool = False
    allow_otp_lock: bool = False


def _is_option_layout(layout: MemoryLayout | None) -> bool:
    """Whether ``layout`` is the option bytes (the ``Option Bytes`` alternate setting)."""
    return layout is not None and layout.label.casefold() == "option bytes"


def _is_f4_otp_layout(layout: MemoryLayout | None) -> bool:
    """Whether ``layout`` is the STM32F4 OTP area (16 × 32 bytes and 16 lock bytes)."""
    return (
        layout is not None
        and layout.label.casefold() == "otp memory"
        and layout.address == OTP_ADDRESS
        and layout.size == OTP_SIZE
    )


def _name(value: object) -> str:
    """An enum member's name, or the raw value."""
    return str(getattr(value, "name", value))


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
        raise SafetyError(message + "; pass force=True to download it anyway")
    warnings.warn(message + "; downloading anyway (force=True)", stacklevel=3)


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
        size = transfer_size or (info.functional.transfer_size if info.functional else 0)
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
        if self._state != State.dfuIDLE:
            self.abort()
        self.transport.set_alt_setting(setting.number)
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
        report = _Progress(progress, {Phase.ERASE: sum(s.size for s in ordered)})
        for s in ordered:
            self._erase_sector(s.index, s.address)
            report.add(Phase.ERASE, s.size)

    def _erase_sector(self, index: int, address: int) -> None:
        self._command(encode_erase(address), f"erasing sector {index} at 0x{address:08X}")

    def mass_erase(self) -> None:
        """Erase the whole flash (DfuSe ``0x41`` without an address)."""
        self._command(encode_mass_erase(), "mass erasing the flash")

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
        if not confirm:
            raise SafetyError(
                "Read Unprotect mass-erases the whole flash and resets the device; "
                "pass confirm=True to do it"
            )
        action = "removing read protection (Read Unprotect)"
        self._require_dfu_mode(action)
        self._recover_if_needed()
        try:
            self.transport.control_out(Request.DNLOAD, 0, encode_read_unprotect())
        except TransportError as exc:
            self._fail(exc, action)
        try:
            self._poll(action, (State.dfuDNLOAD_IDLE, State.dfuMANIFEST, State.dfuIDLE))
        except (StallError, DeviceGoneError, TransferTimeoutError) as exc:
            _log.debug("device reset after Read Unprotect, as expected: %s", exc)
        self.close()
        if not reconnect:
            return None
        self.reconnect(wait_s)
        options = self.read_option_bytes()
        if options.rdp_level is not RdpLevel.LEVEL_0:
            raise ProtocolError(
                f"after Read Unprotect the device reports read protection level "
                f"{int(options.rdp_level)}, expected 0"
            )
        return options

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

    # ------------------------------------------------------------------ option bytes

    def _option_alt(self) -> AltSetting:
        for setting in self.info.alt_settings:
            if setting.layout is not None and setting.label.casefold() == "option bytes":
                return setting
        raise ProtocolError(f"{self.info.describe()} has no 'Option Bytes' alternate setting")

    def read_option_bytes(self) -> OptionBytes:
        """Read the option-byte block (the ``Option Bytes`` alternate setting); the
        previously selected alternate setting is selected again afterwards."""
        setting = self._option_alt()
        assert setting.layout is not None
        previous = self.alt
        self.select_alt(setting.number)
        try:
            data = self.upload(setting.layout.address, setting.layout.size)
        finally:
            if previous is not None and previous != setting.number:
                self.select_alt(previous)
        return OptionBytes.parse(data)

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
        if options.rdp_level == 2 and not allow_permanent_rdp2:
            raise SafetyError(
                "refusing to set read protection level 2: it is permanent and disables the "
                "DFU bootloader for good; pass allow_permanent_rdp2=True to do it"
            )
        current = self.read_option_bytes()
        if current.rdp_level != 0 and options.rdp_level == 0 and not confirm:
            raise SafetyError(
                f"lowering read protection from level {int(current.rdp_level)} to 0 mass-erases "
                "the flash; pass confirm=True to do it"
            )
        self._write_option_block(options)

    def _write_option_block(self, options: OptionBytes) -> None:
        """Send the 16-byte block; the device resets (this object is closed afterwards)."""
        setting = self._option_alt()
        assert setting.layout is not None
        self.select_alt(setting.number)
        address = setting.layout.address
        data = options.to_bytes()
        self.set_address(address)
        action = f"writing the option bytes at 0x{address:08X}"
        try:
            self.transport.control_out(Request.DNLOAD, FIRST_DATA_BLOCK, data)
        except TransportError as exc:
            self._fail(exc, action)
        try:
            self._poll(action, (State.dfuDNLOAD_IDLE,))
        except (StallError, DeviceGoneError, TransferTimeoutError) as exc:
            _log.debug("device reset after the option-byte write, as expected: %s", exc)
        self.close()

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
        if options.rdp_level is RdpLevel.LEVEL_2 and not allow_permanent_rdp2:
            raise SafetyError(
                "refusing to set read protection level 2: it is permanent (the DFU "
                "bootloader and debug access are disabled for good); pass "
                "allow_permanent_rdp2=True to do it"
            )
        self._require_dfu_mode("change the option bytes")
        return self._apply_option_bytes(
            self.read_option_bytes(), options, confirm=confirm, wait_s=wait_s
        )

    def _apply_option_bytes(
        self,
        current: OptionBytes,
        options: OptionBytes,
        *,
        confirm: bool,
        wait_s: float,
        hint: str = "pass confirm=True to do it",
    ) -> OptionBytes:
        """:meth:`change_option_bytes` once the current block is known (RDP 2 checked)."""
        setting = self._option_alt()
        lowering = current.rdp_level is not RdpLevel.LEVEL_0
        if lowering and options.rdp_level is RdpLevel.LEVEL_0 and not confirm:
            raise SafetyError(
                f"lowering read protection from level {int(current.rdp_level)} to 0 "
                f"mass-erases the flash; {hint}"
            )
        if current.optcr == options.optcr:
            _log.info("the option bytes already hold %08X: nothing to write", options.optcr)
            return current
        previous = self.alt
        _log.info("option bytes %08X → %08X", current.optcr, options.optcr)
        self._write_option_block(options)
        if options.rdp_level is RdpLevel.LEVEL_2:
            _log.warning("read protection level 2 set: the device will not come back")
            return options
        self.reconnect(wait_s)
        again = self.read_option_bytes()
        if previous is not None and previous != self.alt:
            self.select_alt(previous)
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

    def _flash_sector_numbers(self, sectors: Iterable[int]) -> frozenset[int]:
        """Check write-protection sector numbers against the flash layout (no traffic)."""
        chosen = frozenset(sectors)
        flash = next((a.layout for a in self.info.alt_settings if a.layout is not None), None)
        count = len(flash.sectors) if flash is not None else 8
        for n in chosen:
            if not isinstance(n, int) or isinstance(n, bool) or not 0 <= n < count:
                raise ValueError(
                    f"flash sector numbers of this device are 0..{count - 1}, got {n!r}"
                )
        return chosen

    def protect_sectors(
        self, sectors: Iterable[int], *, wait_s: float = DEFAULT_RESET_WAIT_S
    ) -> OptionBytes:
        """Write-protect flash ``sectors`` (numbers, e.g. ``[0, 1]``) in addition to those
        already protected: an option-byte change (the device resets; see
        :meth:`change_option_bytes`). Returns the confirmed option bytes."""
        chosen = self._flash_sector_numbers(sectors)
        current = self.read_option_bytes()
        new = current.with_sectors_protected(chosen)
        return self._apply_option_bytes(current, new, confirm=False, wait_s=wait_s)

    def unprotect_sectors(
        self, sectors: Iterable[int], *, wait_s: float = DEFAULT_RESET_WAIT_S
    ) -> OptionBytes:
        """Remove write protection from flash ``sectors``: an option-byte change (the
        device resets; see :meth:`change_option_bytes`). Returns the confirmed option
        bytes."""
        chosen = self._flash_sector_numbers(sectors)
        current = self.read_option_bytes()
        new = current.with_sectors_unprotected(chosen)
        return self._apply_option_bytes(current, new, confirm=False, wait_s=wait_s)

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
        wanted = RdpLevel(level)
        if wanted is RdpLevel.LEVEL_2 and not allow_permanent_rdp2:
            raise SafetyError(
                "refusing to set read protection level 2: it is permanent (the DFU "
                "bootloader and debug access are disabled for good); pass "
                "allow_permanent_rdp2=True to do it"
            )
        self._require_dfu_mode("set read protection")
        current = self.read_option_bytes()
        new = current.with_rdp(wanted, allow_level_2=allow_permanent_rdp2)
        return self._apply_option_bytes(current, new, confirm=confirm, wait_s=wait_s)

    # ------------------------------------------------------------------ OTP

    def _otp_alt(self) -> AltSetting:
        for setting in self.info.alt_settings:
            if setting.layout is not None and setting.label.casefold() == "otp memory":
                return setting
        raise ProtocolError(f"{self.info.describe()} has no 'OTP Memory' alternate setting")

    def read_otp(self) -> OtpArea:
        """Read the one-time-programmable area (16 blocks of 32 bytes and their 16 lock
        bytes, the ``OTP Memory`` alternate setting); the previously selected alternate
        setting is selected again afterwards."""
        setting = self._otp_alt()
        assert setting.layout is not None
        previous = self.alt
        self.select_alt(setting.number)
        try:
            data = self.upload(setting.layout.address, OTP_SIZE)
        finally:
            if previous is not None and previous != setting.number:
                self.select_alt(previous)
        return OtpArea.parse(data)

    def _otp_program(self, address: int, data: bytes, action: str) -> None:
        setting = self._otp_alt()
        previous = self.alt
        self.select_alt(setting.number)
        try:
            self.set_address(address)
            self._dnload(FIRST_DATA_BLOCK, data, action)
        finally:
            if previous is not None and previous != setting.number:
                self.select_alt(previous)

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
        self._require_dfu_mode("write OTP")
        current = self.read_otp()
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
            self._otp_program(address, payload, f"writing OTP block {block} at 0x{address:08X}")
        if lock:
            expected = expected.with_lock(block)
            self._lock_otp(block)
        return self._confirm_otp(expected)

    def lock_otp(self, block: int, *, confirm: bool = False) -> OtpArea:
        """Lock OTP ``block`` (0-15) for good (its lock byte to 0x00); needs
        ``confirm=True`` (:class:`~dfuse.errors.SafetyError` before any USB traffic).
        Returns the area read back."""
        if not isinstance(block, int) or not 0 <= block < OTP_BLOCKS:
            raise ValueError(f"OTP block numbers are 0..{OTP_BLOCKS - 1}, got {block!r}")
        if not confirm:
            raise SafetyError(
                f"locking OTP block {block} is permanent (it can never be written again); "
                "pass confirm=True to do it"
            )
        self._require_dfu_mode("lock OTP")
        current = self.read_otp()
        if current.is_locked(block):
            return current
        self._lock_otp(block)
        return self._confirm_otp(current.with_lock(block))

    def _lock_otp(self, block: int) -> None:
        address = OtpArea.lock_address(block)
        self._otp_program(address, b"\x00", f"locking OTP block {block} (0x{address:08X})")

    def _confirm_otp(self, expected: OtpArea) -> OtpArea:
        got = self.read_otp()
        want, have = expected.to_bytes(), got.to_bytes()
        if want != have:
            setting = self._otp_alt()
            assert setting.layout is not None
            self._compare(setting.layout.address, memoryview(want), have)
        return got

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
        report = _Progress(progress, {Phase.READ: length})
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
        report = _Progress(progress, {Phase.READ: total})
        targets = []
        for plan, ranges in jobs:
            assert plan.alt is not None
            if plan.alt != self.alt:
                self.select_alt(plan.alt)
            segments = [
                (address, self.upload(address, size, progress=_Relay(report, Phase.READ)))
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

    def verify(
        self,
        image: Image,
        *,
        address: int | None = None,
        progress: ProgressCallback | None = None,
    ) -> None:
        """Read back every byte of ``image`` and compare; :class:`~dfuse.errors.VerifyError`
        (first differing address, bytes expected and found) on a mismatch."""
        jobs = self._segments(image, address=address, check_ids=False)
        total = sum(len(d) for _, _, segs in jobs for _, d in segs)
        report = _Progress(progress, {Phase.VERIFY: total})
        for alt, _layout, segs in jobs:
            if alt is not None and alt != self.alt:
                self.select_alt(alt)
            for where, data in segs:
                view = memoryview(data)
                if alt is None:  # plain DFU: the firmware from block 0
                    back = self.upload_dfu(len(view))
                    if len(back) < len(view):
                        raise ProtocolError(
                            f"verifying: the device uploaded {len(back)} bytes of firmware, "
                            f"the image has {len(view)}"
                        )
                else:
                    back = self.upload(where, len(view))
                self._compare(where, view, back)
                report.add(Phase.VERIFY, len(view))

    # ------------------------------------------------------------------ download

    def _segments(
        self, image: Image, *, address: int | None, force: bool = False, check_ids: bool = True
    ) -> list[tuple[int | None, MemoryLayout | None, list[tuple[int, bytes | memoryview]]]]:
        """The image as (alt, layout, segments) jobs, after the VID/PID check."""
        if isinstance(image, DfuSeFile):
            if check_ids:
                check_file_ids(image.vendor_id, image.product_id, self.info, force=force)
            return [self._target_job(t) for t in image.targets]
        if isinstance(image, Target):
            return [self._target_job(image)]
        if isinstance(image, DfuFile):
            if check_ids:
                check_file_ids(image.vendor_id, image.product_id, self.info, force=force)
            payload: bytes | memoryview = image.payload
        elif isinstance(image, bytes | bytearray | memoryview):
            payload = memoryview(image).cast("B")
        else:
            raise TypeError(
                "download() takes a DfuSeFile, DfuFile, Target or bytes, "
                f"got {type(image).__name__}"
            )
        if not self.is_dfuse:
            return [(None, None, [(0, payload)])]
        if address is None:
            raise ValueError("raw bytes (or a plain DFU file) for a DfuSe device need address=")
        return [(self.alt, self.layout, [(address, payload)])]

    def _target_job(
        self, target: Target
    ) -> tuple[int | None, MemoryLayout | None, list[tuple[int, bytes | memoryview]]]:
        if not self.is_dfuse:
            raise SafetyError(
                f"a DfuSe target (alt {target.alt_setting}) cannot go to a plain DFU device"
            )
        setting = self.info.alt(target.alt_setting)
        segs: list[tuple[int, bytes | memoryview]] = [(a, d) for a, d in target.segments()]
        return (setting.number, setting.layout, segs)

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
            report=_Progress(progress),
            guards=_Guards(allow_option_bytes, allow_permanent_rdp2, allow_otp, allow_otp_lock),
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
        report: _Progress,
        guards: _Guards,
    ) -> tuple[TargetPlan, ...]:
        mode = EraseMode(erase)
        jobs = self._segments(image, address=address, force=force)
        # The option bytes reset the device: they go last.
        jobs.sort(key=lambda job: _is_option_layout(job[1]))
        for _alt, layout, segs in jobs:
            self._guard_static(layout, segs, guards)
        if incremental:
            if mode is EraseMode.MASS:
                raise ValueError("an incremental download cannot mass-erase: use erase='sectors'")
            if any(alt is None for alt, _layout, _segs in jobs):
                raise ProtocolError(
                    "an incremental download needs a DfuSe device: a plain DFU 1.1 device "
                    "has no addresses to read back"
                )
        plans: list[TargetPlan] = []
        for i, (alt, layout, segs) in enumerate(jobs):
            last = i == len(jobs) - 1
            if alt is None:
                payload = segs[0][1] if segs else b""
                plans.append(
                    TargetPlan(None, "firmware", plan_dfu_download(payload, self._transfer_size))
                )
                continue
            if layout is None:
                raise SafetyError(
                    f"alternate setting {alt} has no memory layout: cannot check where "
                    "the image may be written"
                )
            options = PlanOptions(
                erase=mode,
                skip_erased=skip_erased,
                verify=verify,
                leave=leave and last,
                leave_address=leave_address,
                max_block=self.max_block,
            )
            if _is_f4_otp_layout(layout):
                # Check the image against the layout before reading anything.
                plan_download(segs, layout, self._transfer_size, options)
                self._guard_otp_contents(segs)
            if incremental:
                # Check the image against the layout before reading anything.
                plan_download(segs, layout, self._transfer_size, options)
                current = self._read_back(alt, layout, segs, report)
                steps = plan_incremental(segs, layout, self._transfer_size, current, options)
            else:
                steps = plan_download(segs, layout, self._transfer_size, options)
            plans.append(TargetPlan(alt, layout.label, steps))
        return tuple(plans)

    def _read_back(
        self,
        alt: int,
        layout: MemoryLayout,
        segs: list[tuple[int, bytes | memoryview]],
        report: _Progress,
    ) -> list[tuple[int, bytes]]:
        """Read what the device holds now over the image's ranges (the readable parts)."""
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
        if report.callback is not None:
            report.totals[Phase.READ] = report.totals.get(Phase.READ, 0) + sum(
                hi - lo for lo, hi in spans
            )
        if spans and alt != self.alt:
            self.select_alt(alt)
        out: list[tuple[int, bytes]] = []
        for lo, hi in spans:
            relay = _Relay(report, Phase.READ) if report.callback is not None else None
            out.append((lo, self.upload(lo, hi - lo, progress=relay)))
        return out

    def _guard_static(
        self,
        layout: MemoryLayout | None,
        segs: list[tuple[int, bytes | memoryview]],
        guards: _Guards,
    ) -> None:
        """Refuse, before any USB traffic, an image that writes the option bytes or OTP
        without the flags that allow it."""
        if layout is None:
            return
        label = layout.label
        if _is_option_layout(layout):
            runs = normalize_segments(segs)
            if not guards.allow_option_bytes:
                raise SafetyError(
                    f"the image writes the option bytes ({label!r} at 0x{layout.address:08X}): "
                    "they change the device's protection and reset it; pass "
                    "allow_option_bytes=True (or use change_option_bytes())"
                )
            if len(runs) != 1 or runs[0][0] != layout.address or len(runs[0][1]) != layout.size:
                found = ", ".join(f"{len(d)} bytes at 0x{a:08X}" for a, d in runs) or "nothing"
                raise SafetyError(
                    f"option bytes are written as one {layout.size}-byte block at "
                    f"0x{layout.address:08X}; the image has {found}"
                )
            options = OptionBytes.parse(runs[0][1])
            if options.rdp_level is RdpLevel.LEVEL_2 and not guards.allow_permanent_rdp2:
                raise SafetyError(
                    "the image sets read protection level 2 (RDP byte "
                    f"0x{options.rdp:02X} at 0x{layout.address + 1:08X}): it is permanent "
                    "(the DFU bootloader is disabled for good); pass allow_permanent_rdp2=True "
                    "to do it"
                )
        elif label.casefold() == "otp memory":
            if not guards.allow_otp:
                raise SafetyError(
                    f"the image writes one-time-programmable memory ({label!r} at "
                    f"0x{layout.address:08X}), which can never be erased; pass allow_otp=True "
                    "(or use write_otp())"
                )
            if _is_f4_otp_layout(layout) and not guards.allow_otp_lock:
                for where, data in normalize_segments(segs):
                    lo = max(where, OTP_LOCK_ADDRESS)
                    hi = min(where + len(data), OTP_LOCK_ADDRESS + OTP_BLOCKS)
                    for a in range(lo, hi):
                        if data[a - where] != 0xFF:
                            raise SafetyError(
                                f"the image writes 0x{data[a - where]:02X} to OTP lock byte "
                                f"0x{a:08X}: it locks block {a - OTP_LOCK_ADDRESS} for good; "
                                "pass allow_otp_lock=True (or use lock_otp(confirm=True))"
                            )

    def _guard_otp_contents(self, segs: list[tuple[int, bytes | memoryview]]) -> None:
        """Read the OTP area and refuse (before writing anything) data for a locked block
        or data that needs a 0 bit back to 1."""
        current = self.read_otp()
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
            report=_Progress(progress),
            guards=_Guards(allow_option_bytes, allow_permanent_rdp2, allow_otp, allow_otp_lock),
        )
        totals = {
            Phase.ERASE: sum(p.plan.erase_bytes for p in plans),
            Phase.WRITE: sum(p.plan.write_bytes for p in plans),
            Phase.VERIFY: sum(p.plan.verify_bytes for p in plans),
            Phase.LEAVE: 1,
        }
        report = _Progress(progress, totals)
        for target in plans:
            if target.alt is not None and target.alt != self.alt:
                self.select_alt(target.alt)
            if target.plan.writes and _is_option_layout(self.layout):
                self._execute_option_plan(target.plan, report)
            else:
                self._execute(target.plan, report)
        return plans

    def _execute_option_plan(self, plan: Plan, report: _Progress) -> None:
        """Write an option-byte plan's block the way :meth:`change_option_bytes` does."""
        data = b"".join(bytes(w.data) for w in plan.writes)
        new = OptionBytes.parse(data)
        self._apply_option_bytes(
            self.read_option_bytes(),
            new,
            confirm=False,
            wait_s=DEFAULT_RESET_WAIT_S,
            hint="use change_option_bytes(..., confirm=True) to do it",
        )
        report.add(Phase.WRITE, len(data))
        report.add(Phase.VERIFY, plan.verify_bytes)
        leave = next((s for s in plan.steps if isinstance(s, Leave)), None)
        if leave is not None and not self._closed:
            report.add(Phase.LEAVE, 0)
            self.leave(leave.address)
            report.add(Phase.LEAVE, 1)

    def execute(self, plan: Plan, *, progress: ProgressCallback | None = None) -> None:
        """Run a plan's steps on the selected alternate setting."""
        self._require_dfu_mode("download")
        self._recover_if_needed()
        totals = {
            Phase.ERASE: plan.erase_bytes,
            Phase.WRITE: plan.write_bytes,
            Phase.VERIFY: plan.verify_bytes,
            Phase.LEAVE: 1,
        }
        self._execute(plan, _Progress(progress, totals))

    def _execute(self, plan: Plan, report: _Progress) -> None:
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
                self._compare(step.address, step.data, self.upload(step.address, step.length))
                report.add(Phase.VERIFY, step.length)
            elif isinstance(step, Leave):
                report.add(Phase.LEAVE, 0)
                if plan.dfuse:
                    self.leave(step.address)
                else:
                    next_block = (len(plan.writes)) & MAX_BLOCK
                    self._leave(None, block=next_block)
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

    def _leave(self, address: int | None, *, block: int) -> None:
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
        try:
            reply = self.status()
            deadline = self.clock.now + self.busy_timeout
            while reply.ok and reply.state in (State.dfuMANIFEST_SYNC, State.dfuDNBUSY):
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
