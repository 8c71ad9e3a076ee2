"""dfuse: build, inspect and flash STM32 firmware over USB DFU (DfuSe).

The public API is re-exported here; see the documentation in ``docs/``.
"""

from __future__ import annotations

from dfuse.clock import Clock, RealClock, VirtualClock
from dfuse.errors import (
    CrcMismatchError,
    DeviceBusyError,
    DeviceGoneError,
    DeviceNotFoundError,
    DeviceStatusError,
    DfuseError,
    FileFormatError,
    ImageError,
    LayoutError,
    ProtocolError,
    SafetyError,
    SignatureError,
    SizeMismatchError,
    TransferTimeoutError,
    TransportError,
    TruncatedFileError,
    VerifyError,
)
from dfuse.protocol.constants import Request, State, Status

__version__ = "0.1.0"

__all__ = [
    "Clock",
    "CrcMismatchError",
    "DeviceBusyError",
    "DeviceGoneError",
    "DeviceNotFoundError",
    "DeviceStatusError",
    "DfuseError",
    "FileFormatError",
    "ImageError",
    "LayoutError",
    "ProtocolError",
    "RealClock",
    "Request",
    "SafetyError",
    "SignatureError",
    "SizeMismatchError",
    "State",
    "Status",
    "TransferTimeoutError",
    "TransportError",
    "TruncatedFileError",
    "VerifyError",
    "VirtualClock",
    "__version__",
]
