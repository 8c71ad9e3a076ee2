"""pyusb error translation and backend resolution (no device needed)."""

from __future__ import annotations

import errno

import pytest
import usb.backend.libusb1
import usb.core

from dfuse.errors import (
    DeviceBusyError,
    DeviceGoneError,
    LibusbNotFoundError,
    StallError,
    TransferTimeoutError,
    TransportError,
)
from dfuse.transport import pyusb as tp
from dfuse.transport.discovery import find_devices


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (
            usb.core.USBTimeoutError("Operation timed out", -7, errno.ETIMEDOUT),
            TransferTimeoutError,
        ),
        (usb.core.USBError("x", None, errno.ETIMEDOUT), TransferTimeoutError),
        (usb.core.USBError("No such device", -4, errno.ENODEV), DeviceGoneError),
        (usb.core.USBError("gone", -4, None), DeviceGoneError),
        (usb.core.USBError("Resource busy", -6, errno.EBUSY), DeviceBusyError),
        (usb.core.USBError("Pipe error", -9, errno.EPIPE), StallError),
        (usb.core.USBError("Pipe error", None, errno.EPIPE), StallError),
        (usb.core.USBError("Input/output error", -1, errno.EIO), TransportError),
    ],
)
def test_usb_errors_are_translated_and_name_the_request(
    exc: usb.core.USBError, kind: type[TransportError]
) -> None:
    err = tp.usb_error(exc, "DNLOAD block 7 (2048 bytes)")
    assert type(err) is kind
    assert err.request == "DNLOAD block 7 (2048 bytes)"
    assert str(err).startswith("DNLOAD block 7 (2048 bytes): ")
    assert err.cause is exc


def test_given_backend_is_used_as_is() -> None:
    marker = object()
    assert tp.get_backend(marker) is marker


def test_falls_back_to_the_bundled_libusb(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(usb.backend.libusb1, "get_backend", lambda *a, **k: None)
    sentinel = object()
    import libusb_package

    monkeypatch.setattr(libusb_package, "get_libusb1_backend", lambda *a, **k: sentinel)
    assert tp.get_backend() is sentinel


def test_no_libusb_at_all_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(usb.backend.libusb1, "get_backend", lambda *a, **k: None)
    import libusb_package

    monkeypatch.setattr(libusb_package, "get_libusb1_backend", lambda *a, **k: None)
    with pytest.raises(LibusbNotFoundError, match="pip install libusb-package"):
        tp.get_backend()
    with pytest.raises(LibusbNotFoundError, match=r"apt install libusb-1\.0-0"):
        find_devices()


def test_functional_descriptor_scan() -> None:
    fd = bytes([9, 0x21, 0x0B, 0xFF, 0x00, 0x00, 0x08, 0x1A, 0x01])
    other = bytes([5, 0x24, 0, 0, 0])
    found = tp._functional(other + fd)
    assert found is not None
    assert found.transfer_size == 2048
    assert tp._functional(b"") is None
    assert tp._functional(bytes([0, 0x21])) is None  # zero length: stop
    assert tp._functional(bytes([3, 0x21, 0])) is None  # malformed: ignored
