"""Recording traces: a :class:`TracingTransport` wraps any transport, as pyserial's
``spy://`` handler wraps a port, and writes every control transfer to a
:class:`TraceRecorder`.

>>> import dfuse
>>> with dfuse.tracing("session.jsonl"):           # doctest: +SKIP
...     with dfuse.open_device("sim:stm32f411") as dev:
...         dev.status()

Devices opened through :func:`dfuse.open_device` (and the CLI's ``--trace``) inside a
:func:`tracing` block are recorded. A transport you open yourself is recorded by
wrapping it: ``DfuDevice(recorder.wrap(transport, clock), clock)``.
"""

from __future__ import annotations

import contextlib
import contextvars
import ctypes
import datetime
import json
import logging
import platform
import re
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

from dfuse.clock import Clock, RealClock
from dfuse.errors import (
    DeviceBusyError,
    DeviceGoneError,
    StallError,
    TransferTimeoutError,
    TransportError,
)
from dfuse.parts import identify_info
from dfuse.protocol.constants import Request
from dfuse.trace.format import (
    FORMAT,
    VERSION,
    ErrorKind,
    TraceHeader,
    TransferError,
    dump_line,
)
from dfuse.transport.base import DeviceInfo, Transport

__all__ = ["TraceRecorder", "TracingTransport", "current_recorder", "traced", "tracing"]

_log = logging.getLogger(__name__)

#: The recorder of the innermost :func:`tracing` block of this thread / task.
_CURRENT: contextvars.ContextVar[TraceRecorder | None] = contextvars.ContextVar(
    "dfuse_trace_recorder", default=None
)

# Standard requests recorded for the transport's non-class operations (USB 2.0 §9.4).
_SET_INTERFACE = (0x01, 0x0B)
_GET_DESCRIPTOR = (0x80, 0x06)
_DT_STRING = 0x03
_LANGID_EN_US = 0x0409
_STRING_LENGTH = 255
_REQUEST_TYPE_IN = 0xA1
_REQUEST_TYPE_OUT = 0x21


def identify_part(info: DeviceInfo) -> str | None:
    """The part a device was identified as (:func:`dfuse.parts.identify_info`), for the
    header (``None``: not identified)."""
    part = identify_info(info)
    return None if part is None else part.name


def _redact_selector(selector: str | None) -> str | None:
    """The selector with its serial number left out (``usb:serial=…`` → ``serial=*``)."""
    if selector is None:
        return None
    return re.sub(r"(serial=)[^,&]*", r"\1*", selector)


#: The open :func:`tracing` blocks, innermost last, each with the thread that opened it:
#: a thread started inside a block (``dfuse station``'s workers) does not inherit the
#: block's context variable, yet its devices belong to the block's trace.
_OPEN: list[tuple[TraceRecorder, int]] = []
_OPEN_LOCK = threading.Lock()


def current_recorder() -> TraceRecorder | None:
    """The recorder of the innermost :func:`tracing` block, if any: the block of this
    context, or else, in a thread other than the block's, the innermost block open (its
    worker threads record into it)."""
    recorder = _CURRENT.get()
    if recorder is not None:
        return recorder
    me = threading.get_ident()
    with _OPEN_LOCK:
        for candidate, opener in reversed(_OPEN):
            if opener != me:
                return candidate
    return None


@contextmanager
def tracing(sink: str | Path | TextIO, *, redact: bool = False) -> Iterator[TraceRecorder]:
    """Record every device opened with :func:`dfuse.open_device` in this block to ``sink``
    (a path, or a text file left open).

    An exception leaving the block is recorded as an ``exception`` event before the end
    record. ``redact=True`` leaves serial numbers out.
    """
    recorder = TraceRecorder(sink, redact=redact)
    token = _CURRENT.set(recorder)
    entry = (recorder, threading.get_ident())
    with _OPEN_LOCK:
        _OPEN.append(entry)
    try:
        yield recorder
    except BaseException as exc:
        recorder.record_exception(exc)
        raise
    finally:
        with _OPEN_LOCK:
            _OPEN.remove(entry)
        _CURRENT.reset(token)
        recorder.close()


def traced(
    transport: Transport, clock: Clock, trace: TraceRecorder | None = None
) -> Transport:
    """``transport`` recorded by ``trace`` (default: the recorder of the enclosing
    :func:`tracing` block); ``transport`` itself when there is none. The one place a
    device's transport is put under a recorder."""
    recorder = trace if trace is not None else current_recorder()
    return transport if recorder is None else recorder.wrap(transport, clock)


def _error_kind(exc: TransportError) -> ErrorKind:
    if isinstance(exc, StallError):
        return "stall"
    if isinstance(exc, TransferTimeoutError):
        return "timeout"
    if isinstance(exc, DeviceGoneError):
        return "gone"
    if isinstance(exc, DeviceBusyError):
        return "busy"
    return "io"


def transfer_error(exc: TransportError) -> TransferError:
    """The trace's record of a failed transfer (libusb code and errno from the cause)."""
    cause = exc.cause
    code = getattr(cause, "backend_error_code", None)
    err = getattr(cause, "errno", None)
    return TransferError.from_codes(
        _error_kind(exc),
        code if isinstance(code, int) else None,
        err if isinstance(err, int) else None,
        str(exc),
    )


def libusb_version(backend: object) -> str | None:
    """``"1.0.26.11724"`` for a pyusb libusb1 backend; ``None`` for others (the simulator)."""
    lib = getattr(backend, "lib", None)
    get = getattr(lib, "libusb_get_version", None)
    if get is None:
        return None

    class _Version(ctypes.Structure):
        _fields_ = [
            ("major", ctypes.c_uint16),
            ("minor", ctypes.c_uint16),
            ("micro", ctypes.c_uint16),
            ("nano", ctypes.c_uint16),
            ("rc", ctypes.c_char_p),
            ("describe", ctypes.c_char_p),
        ]

    try:
        get.restype = ctypes.POINTER(_Version)
        v = get().contents
        rc = (v.rc or b"").decode("ascii", "replace")
    except (OSError, ValueError, AttributeError) as exc:  # pragma: no cover - exotic libusb
        _log.debug("libusb_get_version: %s", exc)
        return None
    return f"{v.major}.{v.minor}.{v.micro}.{v.nano}{rc}"


def _raw_descriptors(handle: object) -> dict[str, str] | None:
    """The device and configuration descriptors of a pyusb device, re-serialised from
    its parsed fields (libusb hands pyusb parsed descriptors, not the raw bytes)."""
    try:
        dev: Any = handle
        device = bytes(
            (18, 0x01, dev.bcdUSB & 0xFF, dev.bcdUSB >> 8, dev.bDeviceClass,
             dev.bDeviceSubClass, dev.bDeviceProtocol, dev.bMaxPacketSize0,
             dev.idVendor & 0xFF, dev.idVendor >> 8, dev.idProduct & 0xFF, dev.idProduct >> 8,
             dev.bcdDevice & 0xFF, dev.bcdDevice >> 8, dev.iManufacturer, dev.iProduct,
             dev.iSerialNumber, dev.bNumConfigurations)
        )  # fmt: skip
        configs = []
        for cfg in dev:
            body = bytearray(bytes(cfg.extra_descriptors or b""))
            for intf in cfg:
                body += bytes(
                    (9, 0x04, intf.bInterfaceNumber, intf.bAlternateSetting,
                     intf.bNumEndpoints, intf.bInterfaceClass, intf.bInterfaceSubClass,
                     intf.bInterfaceProtocol, intf.iInterface)
                )  # fmt: skip
                body += bytes(intf.extra_descriptors or b"")
                for ep in intf:
                    size = ep.wMaxPacketSize
                    body += bytes(
                        (7, 0x05, ep.bEndpointAddress, ep.bmAttributes, size & 0xFF, size >> 8,
                         ep.bInterval)
                    )  # fmt: skip
                    body += bytes(ep.extra_descriptors or b"")
            total = 9 + len(body)
            head = bytes(
                (9, 0x02, total & 0xFF, total >> 8, cfg.bNumInterfaces, cfg.bConfigurationValue,
                 cfg.iConfiguration, cfg.bmAttributes, cfg.bMaxPower)
            )  # fmt: skip
            configs.append((head + body).hex())
    except (AttributeError, TypeError, ValueError) as exc:
        _log.debug("descriptors not recorded: %s", exc)
        return None
    except Exception as exc:  # a USB error while pyusb fetches a descriptor
        _log.debug("descriptors not recorded: %s", exc)
        return None
    return {"device": device.hex(), "configurations": configs}  # type: ignore[dict-item]


def device_record(info: DeviceInfo, *, redact: bool = False) -> dict[str, Any]:
    """The JSON record of a device (``device`` in the header and in events)."""
    functional = info.functional.to_bytes().hex() if info.functional is not None else None
    return {
        "vid": info.vid,
        "pid": info.pid,
        "bcd_device": info.bcd_device,
        "serial": None if redact else info.serial,
        "manufacturer": info.manufacturer,
        "product": info.product,
        "bus": info.bus,
        "path": info.path,
        "address": info.address,
        "mode": info.mode.value,
        "interface": info.interface,
        "alt_settings": [{"number": a.number, "name": a.name} for a in info.alt_settings],
        "functional": functional,
        "transfer_size": info.transfer_size,
        "descriptors": _raw_descriptors(info.handle) if info.handle is not None else None,
    }


def _serial_index(info: DeviceInfo) -> int | None:
    index = getattr(info.handle, "iSerialNumber", None)
    return index if isinstance(index, int) and index else None


class TraceRecorder:
    """Writes a trace, one JSON line per transfer or event, flushed as it goes.

    Args:
        sink: a path (the file is created, or replaced) or an open text file (left open).
        redact: leave serial numbers out (header, events and string descriptor replies).

    The header is written when the first device is opened (:meth:`wrap`); events before
    that (the devices a selector matched) follow it. :meth:`close` writes the end record.
    Writing errors (a full disk) do not stop the session: they are warned about once and
    the rest is not recorded.
    """

    def __init__(self, sink: str | Path | TextIO, *, redact: bool = False) -> None:
        self.redact = redact
        if isinstance(sink, str | Path):
            self.path = str(sink)
            self._file: TextIO = open(sink, "w", encoding="utf-8")  # noqa: SIM115
            self._owned = True
        else:
            self.path = str(getattr(sink, "name", ""))
            self._file = sink
            self._owned = False
        self._lock = threading.Lock()
        self._clock: Clock | None = None
        self._t0 = 0.0
        self._pending: list[dict[str, Any]] = []
        self._header_written = False
        self._closed = False
        self._broken = False
        self._devices = 0
        #: The device selector of the session, for the header (set by whoever opens it).
        self.selector: str | None = None
        #: The serial numbers met so far (opened, enumerated, re-enumerated devices): a
        #: redacted trace leaves them out of exception messages too.
        self._serials: set[str] = set()
        #: Transfers recorded so far.
        self.transfers = 0

    # ------------------------------------------------------------------ time

    def start(self, clock: Clock) -> None:
        """Use ``clock`` for the times of every record (the first call wins: time 0)."""
        with self._lock:
            if self._clock is None:
                self._clock = clock
                self._t0 = clock.now

    def now(self) -> float:
        """Seconds since :meth:`start` (0 before)."""
        clock = self._clock
        return 0.0 if clock is None else clock.now - self._t0

    # ------------------------------------------------------------------ records

    def wrap(self, transport: Transport, clock: Clock | None = None) -> TracingTransport:
        """Record everything ``transport`` does from now on (``clock``: the time base,
        default wall time). The first device wrapped is the header's device."""
        self.start(clock if clock is not None else RealClock())
        self.note_serial(transport.info)
        record = device_record(transport.info, redact=self.redact)
        with self._lock:
            first = self._devices == 0
            self._devices += 1
        if first:
            self._write_header(record, transport)
        else:
            self.event("open", device=record)
        return TracingTransport(transport, self)

    def _write_header(self, device: dict[str, Any] | None, transport: Transport | None) -> None:
        from dfuse import __version__

        backend = getattr(transport, "backend", None)
        clock = self._clock
        header = TraceHeader(
            created=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            dfuse=__version__,
            python=platform.python_version(),
            os=platform.platform(),
            libusb=libusb_version(backend) if backend is not None else None,
            clock="real" if clock is None or isinstance(clock, RealClock) else "virtual",
            redacted=self.redact,
            part=identify_part(transport.info) if transport is not None else None,
            selector=_redact_selector(self.selector) if self.redact else self.selector,
            device=device,
        )
        with self._lock:
            pending, self._pending = self._pending, []
            self._header_written = True
        self._write(header.to_json())
        for obj in pending:
            self._write(obj)

    def event(self, name: str, **fields: Any) -> None:
        """Record an event (one of :data:`dfuse.trace.format.EVENTS`)."""
        obj = {"type": "event", "t": self.now(), "event": name, **fields}
        with self._lock:
            if not self._header_written:
                self._pending.append(obj)
                return
        self._write(obj)

    def enumerated(self, devices: list[DeviceInfo]) -> None:
        """Record the devices a selector matched."""
        for info in devices:
            self.note_serial(info)
        self.event("enumerate", devices=[device_record(d, redact=self.redact) for d in devices])

    def transfer(
        self,
        t: float,
        request_type: int,
        request: int,
        value: int,
        index: int,
        length: int,
        *,
        data: bytes | bytearray | memoryview = b"",
        reply: bytes | None = None,
        error: TransportError | None = None,
        timeout_ms: int | None = None,
        redacted: bool = False,
    ) -> None:
        """Record one control transfer sent at time ``t``."""
        obj: dict[str, Any] = {
            "type": "transfer",
            "t": t,
            "bmRequestType": request_type,
            "bRequest": request,
            "wValue": value,
            "wIndex": index,
            "wLength": length,
        }
        if not request_type & 0x80:
            obj["data"] = bytes(data).hex()
        if timeout_ms is not None:
            obj["timeout_ms"] = timeout_ms
        if error is not None:
            obj["error"] = transfer_error(error).to_json()
        elif reply is not None and not redacted:
            obj["reply"] = reply.hex()
        if redacted:
            obj["redacted"] = True
        with self._lock:
            self.transfers += 1
        self._write(obj)

    def record_exception(self, exc: BaseException) -> None:
        """Record the exception that ended the session (redacted: without the serial
        numbers of the devices met and of the selector)."""
        message = str(exc)
        if self.redact:
            message = self.scrub(message)
        self.event("exception", error_type=type(exc).__name__, message=message)

    def note_serial(self, info: DeviceInfo) -> None:
        """Remember ``info``'s serial number, for :meth:`scrub`."""
        if info.serial:
            with self._lock:
                self._serials.add(info.serial)

    def scrub(self, text: str) -> str:
        """``text`` without any serial number this session met: ``serial=…`` values and
        every device serial seen are replaced by ``*``."""
        with self._lock:
            serials = sorted(self._serials, key=len, reverse=True)
        if self.selector:
            found = re.search(r"serial=([^,&\s'\"]+)", self.selector)
            if found:
                serials.insert(0, found.group(1))
        for serial in serials:
            text = text.replace(serial, "*")
        return re.sub(r"(serial=)[^,&\s'\"]+", r"\1*", text)

    def _write(self, obj: dict[str, Any]) -> None:
        if self._broken or self._closed:
            return
        try:
            line = dump_line(obj)
        except (TypeError, ValueError):
            line = json.dumps(obj, default=str, separators=(",", ":"))
        with self._lock:
            try:
                self._file.write(line + "\n")
                self._file.flush()
            except OSError as exc:
                self._broken = True
                warnings.warn(
                    f"trace {self.path or '(stream)'}: writing failed ({exc}); the rest of"
                    " the session is not recorded",
                    stacklevel=3,
                )

    def close(self) -> None:
        """Write the end record (and the header if no device was opened); idempotent."""
        if self._closed:
            return
        with self._lock:
            header_missing = not self._header_written
        if header_missing:
            self._write_header(None, None)
        self._write({"type": "end", "t": self.now(), "transfers": self.transfers})
        self._closed = True
        if self._owned:
            with contextlib.suppress(OSError):  # reported by _write already
                self._file.close()

    def __enter__(self) -> TraceRecorder:
        return self

    def __exit__(self, *exc_info: object) -> None:
        exc = exc_info[1]
        if isinstance(exc, BaseException):
            self.record_exception(exc)
        self.close()

    def __repr__(self) -> str:
        return f"TraceRecorder({self.path or '(stream)'}, {FORMAT} v{VERSION})"


class TracingTransport(Transport):
    """A transport that records every request of the one it wraps (``inner``) and otherwise
    behaves exactly like it: same replies, same exceptions.

    Class requests, SET_INTERFACE and string reads become ``transfer`` lines; resets,
    DETACH, re-enumerations (:meth:`reopen`, whose new transport is wrapped too) and
    closing become events.
    """

    def __init__(self, inner: Transport, recorder: TraceRecorder) -> None:
        super().__init__()
        self.inner = inner
        self.recorder = recorder
        self._closed = False

    @property
    def info(self) -> DeviceInfo:
        return self.inner.info

    @property
    def backend(self) -> object:
        """The wrapped transport's pyusb backend (``None`` if it has none)."""
        return getattr(self.inner, "backend", None)

    def _control_in(
        self, request: int, value: int, length: int, timeout_ms: int, what: str
    ) -> bytes:
        rec = self.recorder
        t = rec.now()
        index = self.inner.interface
        try:
            data = self.inner._control_in(request, value, length, timeout_ms, what)
        except TransportError as exc:
            rec.transfer(t, _REQUEST_TYPE_IN, request, value, index, length,
                         error=exc, timeout_ms=timeout_ms)  # fmt: skip
            raise
        rec.transfer(t, _REQUEST_TYPE_IN, request, value, index, length,
                     reply=data, timeout_ms=timeout_ms)  # fmt: skip
        return data

    def _control_out(
        self,
        request: int,
        value: int,
        data: bytes | bytearray | memoryview,
        timeout_ms: int,
        what: str,
    ) -> None:
        rec = self.recorder
        t = rec.now()
        index = self.inner.interface
        try:
            self.inner._control_out(request, value, data, timeout_ms, what)
        except TransportError as exc:
            rec.transfer(t, _REQUEST_TYPE_OUT, request, value, index, len(data),
                         data=data, error=exc, timeout_ms=timeout_ms)  # fmt: skip
            if request == Request.DETACH:
                rec.event("detach", timeout_ms=value)
            raise
        rec.transfer(t, _REQUEST_TYPE_OUT, request, value, index, len(data),
                     data=data, timeout_ms=timeout_ms)  # fmt: skip
        if request == Request.DETACH:
            rec.event("detach", timeout_ms=value)

    def set_alt_setting(self, alt: int) -> None:
        rec = self.recorder
        t = rec.now()
        request_type, request = _SET_INTERFACE
        try:
            self.inner.set_alt_setting(alt)
        except TransportError as exc:
            rec.transfer(t, request_type, request, alt, self.inner.interface, 0, error=exc)
            raise
        rec.transfer(t, request_type, request, alt, self.inner.interface, 0)

    def get_string(self, index: int) -> str | None:
        rec = self.recorder
        t = rec.now()
        request_type, request = _GET_DESCRIPTOR
        value = (_DT_STRING << 8) | (index & 0xFF)
        redacted = rec.redact and index == _serial_index(self.inner.info)
        try:
            text = self.inner.get_string(index)
        except TransportError as exc:
            rec.transfer(t, request_type, request, value, _LANGID_EN_US, _STRING_LENGTH,
                         error=exc)  # fmt: skip
            raise
        reply = b""
        if text is not None:
            body = text.encode("utf-16-le")
            reply = bytes((2 + len(body), _DT_STRING)) + body
        rec.transfer(t, request_type, request, value, _LANGID_EN_US, _STRING_LENGTH,
                     reply=reply[:_STRING_LENGTH], redacted=redacted)  # fmt: skip
        return text

    def refresh(self) -> None:
        """Have the wrapped transport read the device's descriptors again (when it can)."""
        refresh = getattr(self.inner, "refresh", None)
        if callable(refresh):
            refresh()

    def reset(self) -> None:
        rec = self.recorder
        try:
            self.inner.reset()
        except TransportError as exc:
            rec.event("reset", error=transfer_error(exc).to_json())
            raise
        rec.event("reset")

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self.inner.close()
        finally:
            self.recorder.event("close")

    def reopen(self, timeout_s: float, clock: Clock | None = None) -> TracingTransport:
        """Re-discover the device through the wrapped transport; record how it came back."""
        rec = self.recorder
        if not self._closed:
            self._closed = True
            rec.event("close")
        try:
            new = self.inner.reopen(timeout_s, clock)
        except TransportError as exc:
            rec.event("reenumerate", error=transfer_error(exc).to_json())
            raise
        rec.note_serial(new.info)
        rec.event("reenumerate", device=device_record(new.info, redact=rec.redact))
        return TracingTransport(new, rec)

    def __repr__(self) -> str:
        return f"TracingTransport({self.inner!r})"
