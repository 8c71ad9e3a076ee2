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
    OptionBytesError,
    ProtocolError,
    SafetyError,
    SignatureError,
    SizeMismatchError,
    TransferTimeoutError,
    TransportError,
    TruncatedFileError,
    VerifyError,
)
from dfuse.file import DfuFile, DfuSeFile, Element, FileKind, Target, load
from dfuse.layout import Access, MemoryLayout, Region, Sector
from dfuse.optionbytes import BorLevel, OptionBytes, OtpArea, RdpLevel
from dfuse.protocol.constants import Request, State, Status

__version__ = "0.1.0"

__all__ = [
    "Access",
    "BorLevel",
    "Clock",
    "CrcMismatchError",
    "DeviceBusyError",
    "DeviceGoneError",
    "DeviceNotFoundError",
    "DeviceStatusError",
    "DfuFile",
    "DfuSeFile",
    "DfuseError",
    "Element",
    "FileFormatError",
    "FileKind",
    "ImageError",
    "LayoutError",
    "MemoryLayout",
    "OptionBytes",
    "OptionBytesError",
    "OtpArea",
    "ProtocolError",
    "RdpLevel",
    "RealClock",
    "Region",
    "Request",
    "SafetyError",
    "Sector",
    "SignatureError",
    "SizeMismatchError",
    "State",
    "Status",
    "Target",
    "TransferTimeoutError",
    "TransportError",
    "TruncatedFileError",
    "VerifyError",
    "VirtualClock",
    "__version__",
    "load",
]
