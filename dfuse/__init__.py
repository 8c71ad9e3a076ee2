"""dfuse: build, inspect and flash STM32 firmware over USB DFU (DfuSe).

The public API is re-exported here; see the documentation in ``docs/``.
"""

from __future__ import annotations

from dfuse.clock import Clock, RealClock, ScaledClock, VirtualClock
from dfuse.device import DfuDevice, DownloadOptions, Phase
from dfuse.errors import (
    CancelledError,
    CrcMismatchError,
    DeviceBusyError,
    DeviceGoneError,
    DeviceNotFoundError,
    DeviceStatusError,
    DfuseError,
    FileFormatError,
    ImageError,
    LayoutError,
    LibusbNotFoundError,
    OptionBytesError,
    ProtocolError,
    ReadProtectedError,
    RecordStoreError,
    SafetyError,
    SelectorError,
    SignatureError,
    SizeMismatchError,
    StallError,
    TraceError,
    TransferTimeoutError,
    TransportError,
    TruncatedFileError,
    UsageError,
    VerifyError,
)
from dfuse.file import DfuFile, DfuSeFile, Element, FileKind, Target, load, save
from dfuse.gang import FlashReport, GangPhase, GangReport, flash_many
from dfuse.layout import Access, MemoryLayout, Region, Sector
from dfuse.optionbytes import BorLevel, OptionBytes, OtpArea, RdpLevel
from dfuse.protocol.constants import Request, State, Status
from dfuse.selector import DeviceSelector, list_devices, open_device, wait_for_device
from dfuse.transport import AltSetting, DeviceInfo, DeviceMode, find_devices

__version__ = "0.1.0"

__all__ = [
    "Access",
    "AltSetting",
    "BorLevel",
    "CancelledError",
    "Clock",
    "CrcMismatchError",
    "DeviceBusyError",
    "DeviceGoneError",
    "DeviceInfo",
    "DeviceMode",
    "DeviceNotFoundError",
    "DeviceSelector",
    "DeviceStatusError",
    "DfuDevice",
    "DfuFile",
    "DfuSeFile",
    "DfuseError",
    "DownloadOptions",
    "Element",
    "FileFormatError",
    "FileKind",
    "FlashReport",
    "GangPhase",
    "GangReport",
    "ImageError",
    "LayoutError",
    "LibusbNotFoundError",
    "MemoryLayout",
    "OptionBytes",
    "OptionBytesError",
    "OtpArea",
    "Phase",
    "ProtocolError",
    "RdpLevel",
    "ReadProtectedError",
    "RealClock",
    "RecordStoreError",
    "Region",
    "Request",
    "SafetyError",
    "ScaledClock",
    "Sector",
    "SelectorError",
    "SignatureError",
    "SizeMismatchError",
    "StallError",
    "State",
    "Status",
    "Target",
    "TraceError",
    "TransferTimeoutError",
    "TransportError",
    "TruncatedFileError",
    "UsageError",
    "VerifyError",
    "VirtualClock",
    "__version__",
    "find_devices",
    "flash_many",
    "list_devices",
    "load",
    "open_device",
    "save",
    "wait_for_device",
]
