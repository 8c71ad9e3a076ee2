"""The Transport ABC: what the device layer needs from USB, and the device records.

A :class:`Transport` is one opened DFU interface. It performs class requests
to that interface on endpoint 0 (:meth:`Transport.control_in`,
:meth:`Transport.control_out`), selects alternate settings, reads string
descriptors, resets and closes. The public methods are implemented once here:
they count and log every request (``logging.getLogger("dfuse.transport")`` at
DEBUG, which the CLI's ``-v`` turns on) and name the request in any error; a
concrete transport implements the small ``_control_in``/``_control_out`` hooks
(as python-can's ``BusABC`` does with ``_recv_internal``).

:class:`DeviceInfo` and :class:`AltSetting` are the typed records discovery
returns; a transport also exposes the record of the device it opened.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum
from types import TracebackType
from typing import Self

from dfuse.clock import Clock
from dfuse.errors import DeviceNotFoundError, LayoutError
from dfuse.layout import MemoryLayout
from dfuse.protocol.constants import Request
from dfuse.protocol.descriptors import FunctionalDescriptor

__all__ = [
    "DEFAULT_TIMEOUT_MS",
    "TRACE_BYTES",
    "AltSetting",
    "DeviceInfo",
    "DeviceMode",
    "Transport",
    "describe_request",
]

#: Default timeout of one control transfer, in milliseconds.
DEFAULT_TIMEOUT_MS = 5000

_log = logging.getLogger("dfuse.transport")
#: Bytes of a data stage the DEBUG log shows (the rest is elided with "…").
TRACE_BYTES = 16


def _shown(data: bytes | bytearray | memoryview, prefix: str = "") -> str:
    """The first :data:`TRACE_BYTES` of a data stage in hex, for the request log
    (``" [21 00 00 06 08]"``; empty for no data)."""
    raw = bytes(data[: TRACE_BYTES + 1])
    if not raw:
        return ""
    more = " …" if len(raw) > TRACE_BYTES else ""
    return f"{prefix}[{raw[:TRACE_BYTES].hex(' ')}{more}]"


class DeviceMode(StrEnum):
    """Which DFU interface a device exposes."""

    #: An application with a DFU run-time interface (protocol 1): needs DETACH first.
    RUNTIME = "runtime"
    #: A device in DFU mode (protocol 2), e.g. the STM32 system bootloader.
    DFU = "dfu"


@dataclass(frozen=True, slots=True)
class AltSetting:
    """One alternate setting of a DFU interface.

    Attributes:
        number: bAlternateSetting.
        name: the iInterface string (for DfuSe, the memory layout), ``None`` if absent.
        layout: the parsed memory layout when ``name`` is a DfuSe layout string, else ``None``.
    """

    number: int
    name: str | None
    layout: MemoryLayout | None = field(default=None, compare=False)

    @classmethod
    def from_name(cls, number: int, name: str | None) -> AltSetting:
        """Build the record, parsing ``name`` as a memory layout when it is one."""
        layout = None
        if name is not None and name.startswith("@"):
            try:
                layout = MemoryLayout.parse(name)
            except LayoutError:
                _log.debug("alt setting %d: name %r is not a memory layout", number, name)
        return cls(number, name, layout)

    @property
    def label(self) -> str:
        """A short name: the layout's label, else the name, else ``"alt N"``."""
        if self.layout is not None:
            return self.layout.label
        return self.name.strip() if self.name else f"alt {self.number}"

    def to_dict(self) -> dict[str, object]:
        """A JSON-able record: number, name and the decoded layout (``None`` if none)."""
        return {
            "number": self.number,
            "name": self.name,
            "layout": None if self.layout is None else self.layout.to_dict(),
        }

    def matches(self, selector: int | str) -> bool:
        """Whether ``selector`` (a number, or a name compared case-insensitively with the
        whole string or its layout label, with or without the leading ``@``: ``"@Option
        Bytes"`` as docs/cli.md writes it, ``"Option Bytes"``) designates this alternate
        setting."""
        if isinstance(selector, int):
            return selector == self.number

        def bare(text: str) -> str:
            return text.strip().casefold().removeprefix("@").strip()

        wanted = bare(selector)
        if not wanted:
            return False
        if self.name is not None and bare(self.name) == wanted:
            return True
        return bare(self.label) == wanted


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    """A DFU-capable USB device as discovery sees it.

    Attributes:
        vid, pid: idVendor, idProduct.
        bcd_device: bcdDevice (the ST bootloader's version in the high byte).
        serial: the serial-number string (``None`` if the device has none).
        manufacturer, product: the device's strings (``None`` if absent).
        bus: the bus number.
        port_numbers: the port chain from the root hub.
        address: the device address on its bus.
        mode: :class:`DeviceMode`.
        interface: bInterfaceNumber of the DFU interface.
        alt_settings: every alternate setting of that interface.
        functional: the DFU functional descriptor (``None`` if the device has none).
        configuration: bConfigurationValue of the configuration holding the DFU interface
            (dfu-util's ``cfg=``).
        handle: the backend's device object (opaque; not compared).
    """

    vid: int
    pid: int
    bcd_device: int
    serial: str | None
    manufacturer: str | None
    product: str | None
    bus: int
    port_numbers: tuple[int, ...]
    address: int
    mode: DeviceMode
    interface: int
    alt_settings: tuple[AltSetting, ...]
    functional: FunctionalDescriptor | None
    configuration: int = 1
    handle: object = field(default=None, compare=False, repr=False)

    @property
    def path(self) -> str:
        """Bus path as dfu-util's ``-p`` takes it: ``"1-2.3"`` (``"1"`` for a root device)."""
        if not self.port_numbers:
            return str(self.bus)
        return f"{self.bus}-" + ".".join(str(p) for p in self.port_numbers)

    @property
    def transfer_size(self) -> int | None:
        """wTransferSize from the functional descriptor, if there is one."""
        return self.functional.transfer_size if self.functional is not None else None

    def alt(self, selector: int | str) -> AltSetting:
        """The alternate setting with this number or name.

        Raises :class:`~dfuse.errors.DeviceNotFoundError` listing the alternate
        settings when none matches.
        """
        for setting in self.alt_settings:
            if setting.matches(selector):
                return setting
        raise DeviceNotFoundError(
            f"{self.describe()} has no alternate setting {selector!r}; it has",
            candidates=tuple(f"{a.number}: {a.name!r}" for a in self.alt_settings),
        )

    def to_dict(self) -> dict[str, object]:
        """A JSON-able record of everything discovery knows (``dfuse list --json``)."""
        return {
            "vid": self.vid,
            "pid": self.pid,
            "id": f"{self.vid:04x}:{self.pid:04x}",
            "serial": self.serial,
            "path": self.path,
            "bus": self.bus,
            "address": self.address,
            "manufacturer": self.manufacturer,
            "product": self.product,
            "bcd_device": self.bcd_device,
            "configuration": self.configuration,
            "mode": self.mode.value,
            "transfer_size": self.transfer_size,
            "alt_settings": [a.to_dict() for a in self.alt_settings],
        }

    def describe(self) -> str:
        """One line, dfu-util style: ``0483:df11 path=1-1 serial='…' dfu mode``."""
        serial = f" serial={self.serial!r}" if self.serial is not None else ""
        return (
            f"{self.vid:04x}:{self.pid:04x} path={self.path}{serial} "
            f"bcdDevice={self.bcd_device:04x} {self.mode.value} mode"
        )

    def __str__(self) -> str:
        lines = [self.describe()]
        for a in self.alt_settings:
            lines.append(f"  alt {a.number}: {a.name!r}")
        return "\n".join(lines)


def describe_request(request: int, value: int, length: int) -> str:
    """A short description of a DFU class request: ``"DNLOAD block 7 (2048 bytes)"``."""
    try:
        name = Request(request).name
    except ValueError:
        name = f"request 0x{request:02X}"
    if request in (Request.DNLOAD, Request.UPLOAD):
        return f"{name} block {value} ({length} bytes)"
    if request == Request.DETACH:
        return f"{name} (timeout {value} ms)"
    return name


class Transport(ABC):
    """An opened DFU interface: class requests on endpoint 0 and a little more.

    Subclasses implement the underscore hooks; the public methods add
    request counting (:attr:`counts`), DEBUG logging and error naming.
    Transports are context managers (``close`` on exit).
    """

    def __init__(self) -> None:
        #: How many requests of each bRequest this transport has sent.
        self.counts: Counter[int] = Counter()

    # ------------------------------------------------------------------ device facts

    @property
    @abstractmethod
    def info(self) -> DeviceInfo:
        """The record of the opened device."""

    @property
    def interface(self) -> int:
        """bInterfaceNumber of the DFU interface (wIndex of every request)."""
        return self.info.interface

    @property
    def transfers(self) -> int:
        """Total class requests sent so far."""
        return sum(self.counts.values())

    # ------------------------------------------------------------------ requests

    def control_in(
        self,
        request: int,
        value: int,
        length: int,
        *,
        timeout_ms: int = DEFAULT_TIMEOUT_MS,
        what: str = "",
    ) -> bytes:
        """A class request to the interface, device → host; returns at most ``length`` bytes.

        ``what`` names the request in errors and logs (default: e.g. ``"UPLOAD block 3
        (2048 bytes)"``). Failures raise :class:`~dfuse.errors.TransportError` subclasses.
        """
        if length < 0:
            raise ValueError(f"length must not be negative, got {length}")
        what = what or describe_request(request, value, length)
        self.counts[request] += 1
        try:
            data = self._control_in(request, value, length, timeout_ms, what)
        except Exception as exc:
            _log.debug("IN  %s wValue=%d wLength=%d -> %s", what, value, length, exc)
            raise
        if _log.isEnabledFor(logging.DEBUG):
            _log.debug(
                "IN  %s wValue=%d wLength=%d -> %d bytes%s",
                what,
                value,
                length,
                len(data),
                _shown(data, " "),
            )
        return data

    def control_out(
        self,
        request: int,
        value: int,
        data: bytes | bytearray | memoryview = b"",
        *,
        timeout_ms: int = DEFAULT_TIMEOUT_MS,
        what: str = "",
    ) -> None:
        """A class request to the interface, host → device, with ``data`` as its data stage."""
        what = what or describe_request(request, value, len(data))
        self.counts[request] += 1
        try:
            self._control_out(request, value, data, timeout_ms, what)
        except Exception as exc:
            _log.debug("OUT %s wValue=%d wLength=%d -> %s", what, value, len(data), exc)
            raise
        if _log.isEnabledFor(logging.DEBUG):
            _log.debug(
                "OUT %s wValue=%d wLength=%d -> ok%s", what, value, len(data), _shown(data, " ")
            )

    @abstractmethod
    def _control_in(
        self, request: int, value: int, length: int, timeout_ms: int, what: str
    ) -> bytes:
        """Perform the IN transfer; raise TransportError subclasses naming ``what``."""

    @abstractmethod
    def _control_out(
        self,
        request: int,
        value: int,
        data: bytes | bytearray | memoryview,
        timeout_ms: int,
        what: str,
    ) -> None:
        """Perform the OUT transfer; raise TransportError subclasses naming ``what``."""

    # ------------------------------------------------------------------ the rest

    @abstractmethod
    def set_alt_setting(self, alt: int) -> None:
        """Select alternate setting ``alt`` of the DFU interface (SET_INTERFACE)."""

    @abstractmethod
    def get_string(self, index: int) -> str | None:
        """String descriptor ``index`` (``None`` for index 0 or a missing string)."""

    def refresh(self) -> None:  # noqa: B027 (optional hook, a no-op by default)
        """Read the device's descriptors and strings again (after a device was too busy
        to send them when it was discovered). Transports that cannot: nothing."""

    @abstractmethod
    def reset(self) -> None:
        """USB port reset of the device."""

    @abstractmethod
    def close(self) -> None:
        """Release the interface and the device handle (idempotent)."""

    def reopen(self, timeout_s: float, clock: Clock | None = None) -> Transport:
        """Find the same device again after it re-enumerated (by bus path, else serial),
        waiting up to ``timeout_s`` on ``clock``, and return a new transport to it.
        Transports that cannot re-discover raise :class:`NotImplementedError`."""
        raise NotImplementedError(f"{type(self).__name__} cannot re-discover a device")

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
