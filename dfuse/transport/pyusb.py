"""The pyusb transport and device enumeration: the only dfuse module that imports pyusb
(besides the simulator's backend).

Any pyusb backend works: libusb 1.0 from the system, the one bundled in the
``libusb-package`` wheel (the fallback, so that ``pip install`` alone is
enough), or :class:`dfuse.sim.SimBackend`. A backend passed in is always used as
given; pyusb's implicit global backend lookup is never relied on.
"""

from __future__ import annotations

import errno
import logging
from collections.abc import Iterator
from typing import Any

import usb.core
import usb.util

from dfuse.clock import Clock, RealClock
from dfuse.errors import (
    DeviceBusyError,
    DeviceGoneError,
    LibusbNotFoundError,
    ProtocolError,
    StallError,
    TransferTimeoutError,
    TransportError,
)
from dfuse.protocol.constants import (
    DFU_FUNCTIONAL_DESCRIPTOR_TYPE,
    DFU_INTERFACE_CLASS,
    DFU_INTERFACE_SUBCLASS,
    DFU_PROTOCOL_DFU_MODE,
    REQUEST_TYPE_CLASS_INTERFACE_IN,
    REQUEST_TYPE_CLASS_INTERFACE_OUT,
)
from dfuse.protocol.descriptors import FunctionalDescriptor
from dfuse.transport.base import AltSetting, DeviceInfo, DeviceMode, Transport

__all__ = ["INSTALL_HINT", "PyUsbTransport", "enumerate_devices", "get_backend", "usb_error"]

_log = logging.getLogger(__name__)

#: How to get a libusb when none can be loaded.
INSTALL_HINT = (
    "no libusb 1.0 library found. Install one: `pip install libusb-package` (bundles libusb "
    "for Windows, macOS and Linux), or the system package (Debian/Ubuntu: "
    "`apt install libusb-1.0-0`; Fedora: `dnf install libusb1`; macOS: `brew install libusb`; "
    "Windows: also install the WinUSB driver for the device, e.g. with Zadig)"
)

# libusb error codes (libusb.h), as pyusb's libusb1 backend reports them.
_LIBUSB_ERROR_NO_DEVICE = -4
_LIBUSB_ERROR_BUSY = -6
_LIBUSB_ERROR_TIMEOUT = -7
_LIBUSB_ERROR_PIPE = -9


def get_backend(backend: object = None) -> object:
    """The pyusb backend to use: ``backend`` itself when given; else the system's
    libusb 1.0; else the one bundled in the ``libusb-package`` wheel.

    Raises :class:`~dfuse.errors.LibusbNotFoundError` (saying how to install
    libusb) when none can be loaded.
    """
    if backend is not None:
        return backend
    import usb.backend.libusb1 as libusb1

    found: object = libusb1.get_backend()
    if found is None:
        found = _bundled_backend()
    if found is None:
        raise LibusbNotFoundError(INSTALL_HINT)
    return found


def _bundled_backend() -> object:
    """The backend over the libusb bundled in the ``libusb-package`` wheel, if any."""
    try:
        import libusb_package
    except ImportError:  # pragma: no cover - a declared dependency
        return None
    found: object = libusb_package.get_libusb1_backend()
    if found is not None:
        _log.debug("using the libusb bundled in libusb-package")
    return found


def usb_error(exc: BaseException, what: str) -> TransportError:
    """Translate a pyusb exception into the dfuse error for the request ``what``.

    Timeouts become :class:`~dfuse.errors.TransferTimeoutError`, a vanished
    device :class:`~dfuse.errors.DeviceGoneError`, a claimed interface
    :class:`~dfuse.errors.DeviceBusyError`, a stall :class:`~dfuse.errors.StallError`.
    """
    code = getattr(exc, "backend_error_code", None)
    err = getattr(exc, "errno", None)
    text = getattr(exc, "strerror", None) or str(exc)
    if (
        isinstance(exc, usb.core.USBTimeoutError)
        or code == _LIBUSB_ERROR_TIMEOUT
        or (err == errno.ETIMEDOUT)
    ):
        return TransferTimeoutError(f"timed out ({text})", request=what, cause=exc)
    if code == _LIBUSB_ERROR_NO_DEVICE or err == errno.ENODEV:
        return DeviceGoneError(f"device is gone ({text})", request=what, cause=exc)
    if code == _LIBUSB_ERROR_BUSY or err == errno.EBUSY:
        return DeviceBusyError(
            f"device or interface is busy, held by another program ({text})",
            request=what,
            cause=exc,
        )
    if code == _LIBUSB_ERROR_PIPE or err == errno.EPIPE:
        return StallError(f"stalled by the device ({text})", request=what, cause=exc)
    return TransportError(f"USB error ({text})", request=what, cause=exc)


# --------------------------------------------------------------------------- enumeration


def _string(dev: Any, index: int, strict: bool = False) -> str | None:
    """String descriptor ``index`` (``None``: absent). A failed read (a device too busy to
    answer) is ``None`` too, unless ``strict``: then it raises TransportError."""
    if not index:
        return None
    try:
        text = usb.util.get_string(dev, index)
    except usb.core.USBError as exc:
        if strict:
            raise usb_error(exc, f"GET_DESCRIPTOR string {index}") from exc
        _log.debug("cannot read string %d: %s", index, exc)
        return None
    except (ValueError, NotImplementedError) as exc:
        _log.debug("cannot read string %d: %s", index, exc)
        return None
    return str(text) if text is not None else None


def _functional(extra: Any) -> FunctionalDescriptor | None:
    raw = bytes(extra or b"")
    pos = 0
    while pos + 2 <= len(raw):
        length, dtype = raw[pos], raw[pos + 1]
        if length < 2:
            break
        if dtype == DFU_FUNCTIONAL_DESCRIPTOR_TYPE:
            try:
                return FunctionalDescriptor.parse(raw[pos : pos + length])
            except ProtocolError as exc:
                _log.debug("ignoring malformed functional descriptor: %s", exc)
                return None
        pos += length
    return None


def describe_device(
    dev: Any, *, read_strings: bool = True, strict: bool = False
) -> DeviceInfo | None:
    """The :class:`DeviceInfo` of a pyusb device, or ``None`` if it has no DFU interface.

    A string the device fails to send is left out (``None``), unless ``strict``: then
    the failure raises :class:`~dfuse.errors.TransportError`."""
    for cfg in dev:
        dfu_interface: int | None = None
        alts: list[tuple[int, int]] = []
        functional = _functional(getattr(cfg, "extra_descriptors", None))
        protocol = 0
        for intf in cfg:
            if (
                intf.bInterfaceClass != DFU_INTERFACE_CLASS
                or intf.bInterfaceSubClass != DFU_INTERFACE_SUBCLASS
            ):
                continue
            if dfu_interface is None:
                dfu_interface = intf.bInterfaceNumber
                protocol = intf.bInterfaceProtocol
            if intf.bInterfaceNumber != dfu_interface:
                continue
            alts.append((intf.bAlternateSetting, intf.iInterface))
            functional = _functional(intf.extra_descriptors) or functional
        if dfu_interface is None:
            continue
        mode = DeviceMode.DFU if protocol == DFU_PROTOCOL_DFU_MODE else DeviceMode.RUNTIME
        settings = tuple(
            AltSetting.from_name(n, _string(dev, i, strict) if read_strings else None)
            for n, i in alts
        )
        return DeviceInfo(
            vid=dev.idVendor,
            pid=dev.idProduct,
            bcd_device=dev.bcdDevice,
            serial=_string(dev, dev.iSerialNumber, strict) if read_strings else None,
            manufacturer=_string(dev, dev.iManufacturer, strict) if read_strings else None,
            product=_string(dev, dev.iProduct, strict) if read_strings else None,
            bus=int(dev.bus or 0),
            port_numbers=tuple(dev.port_numbers or ()),
            address=int(dev.address or 0),
            mode=mode,
            interface=dfu_interface,
            alt_settings=settings,
            functional=functional,
            configuration=int(cfg.bConfigurationValue),
            handle=dev,
        )
    return None


def enumerate_devices(
    backend: object = None, *, ids: tuple[tuple[int | None, int | None], ...] = ()
) -> Iterator[DeviceInfo]:
    """Every DFU-capable device (run-time or DFU mode) the backend sees.

    ``ids`` restricts to devices matching one of the ``(vid, pid)`` pairs
    (``None`` matches anything) before any string descriptor is read.
    """
    be = get_backend(backend)
    try:
        devices = list(usb.core.find(find_all=True, backend=be))
    except usb.core.USBError as exc:
        raise usb_error(exc, "enumerating USB devices") from exc
    for dev in devices:
        if ids and not any(
            (v is None or v == dev.idVendor) and (p is None or p == dev.idProduct) for v, p in ids
        ):
            continue
        try:
            info = describe_device(dev)
        except usb.core.USBError as exc:
            _log.debug("skipping %04x:%04x: %s", dev.idVendor, dev.idProduct, exc)
            continue
        if info is not None:
            yield info


# --------------------------------------------------------------------------- transport


class PyUsbTransport(Transport):
    """A DFU interface opened through pyusb (any backend).

    Use :meth:`open` with a record from discovery; the interface is claimed
    until :meth:`close`.
    """

    def __init__(self, info: DeviceInfo, backend: object) -> None:
        super().__init__()
        if info.handle is None:
            raise ValueError("the DeviceInfo has no pyusb device handle")
        self._info = info
        self._backend = backend
        self._dev: Any = info.handle
        self._closed = False

    @classmethod
    def open(cls, info: DeviceInfo, backend: object = None) -> PyUsbTransport:
        """Open the device of ``info`` (from :func:`enumerate_devices`) and claim its DFU
        interface, setting the configuration first if the device is unconfigured."""
        transport = cls(info, get_backend(backend))
        dev = transport._dev
        what = f"opening {info.describe()}"
        try:
            try:
                dev.get_active_configuration()
            except usb.core.USBError as exc:
                if getattr(exc, "errno", None) is not None or getattr(
                    exc, "backend_error_code", None
                ):
                    raise
                dev.set_configuration()
            usb.util.claim_interface(dev, info.interface)
        except usb.core.USBError as exc:
            transport._dispose()
            raise usb_error(exc, what) from exc
        return transport

    @property
    def info(self) -> DeviceInfo:
        return self._info

    @property
    def backend(self) -> object:
        """The pyusb backend in use."""
        return self._backend

    def _control_in(
        self, request: int, value: int, length: int, timeout_ms: int, what: str
    ) -> bytes:
        try:
            data = self._dev.ctrl_transfer(
                REQUEST_TYPE_CLASS_INTERFACE_IN,
                request,
                value,
                self._info.interface,
                length,
                timeout_ms,
            )
        except usb.core.USBError as exc:
            raise usb_error(exc, what) from exc
        return bytes(data)

    def _control_out(
        self,
        request: int,
        value: int,
        data: bytes | bytearray | memoryview,
        timeout_ms: int,
        what: str,
    ) -> None:
        try:
            self._dev.ctrl_transfer(
                REQUEST_TYPE_CLASS_INTERFACE_OUT,
                request,
                value,
                self._info.interface,
                bytes(data),
                timeout_ms,
            )
        except usb.core.USBError as exc:
            raise usb_error(exc, what) from exc

    def set_alt_setting(self, alt: int) -> None:
        what = f"SET_INTERFACE {self._info.interface} alt {alt}"
        try:
            self._dev.set_interface_altsetting(self._info.interface, alt)
        except usb.core.USBError as exc:
            raise usb_error(exc, what) from exc
        except ValueError as exc:
            raise TransportError(f"no such alternate setting ({exc})", request=what) from exc
        _log.debug("SET_INTERFACE interface %d alt %d -> ok", self._info.interface, alt)

    def refresh(self) -> None:
        """Read the descriptors and strings again; a failed string read raises."""
        try:
            langids = usb.util.get_langids(self._dev)
        except usb.core.USBError as exc:
            raise usb_error(exc, "GET_DESCRIPTOR string 0 (languages)") from exc
        # pyusb caches a failed language read as "no strings" for the life of the Device
        # object (a device busy when it was discovered): replace it with the real answer
        self._dev._langids = langids
        info = describe_device(self._dev, strict=True)
        if info is not None:
            self._info = info

    def get_string(self, index: int) -> str | None:
        if not index:
            return None
        try:
            text = usb.util.get_string(self._dev, index)
        except usb.core.USBError as exc:
            raise usb_error(exc, f"GET_DESCRIPTOR string {index}") from exc
        except ValueError:
            return None
        return str(text) if text is not None else None

    def reset(self) -> None:
        try:
            self._dev.reset()
        except usb.core.USBError as exc:
            raise usb_error(exc, "USB reset") from exc

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            usb.util.release_interface(self._dev, self._info.interface)
        except (usb.core.USBError, ValueError) as exc:
            _log.debug("release_interface: %s", exc)
        self._dispose()

    def _dispose(self) -> None:
        try:
            usb.util.dispose_resources(self._dev)
        except (usb.core.USBError, ValueError) as exc:  # pragma: no cover - best effort
            _log.debug("dispose_resources: %s", exc)

    def reopen(self, timeout_s: float, clock: Clock | None = None) -> PyUsbTransport:
        """Find the device at the same bus path (or with the same serial number) again
        and open it; polls every 50 ms through ``clock`` for up to ``timeout_s``."""
        clk = clock if clock is not None else RealClock()
        self.close()
        deadline = clk.now + timeout_s
        old = self._info
        while True:
            for info in enumerate_devices(self._backend):
                same_place = info.path == old.path and info.bus == old.bus
                same_serial = old.serial is not None and info.serial == old.serial
                if same_place or same_serial:
                    return PyUsbTransport.open(info, self._backend)
            if clk.now >= deadline:
                raise DeviceGoneError(
                    f"did not re-appear within {timeout_s:g} s",
                    request=f"waiting for {old.describe()} to re-enumerate",
                )
            clk.sleep(0.05)

    def __repr__(self) -> str:
        return f"PyUsbTransport({self._info.describe()})"
