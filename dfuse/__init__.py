"""dfuse: build, inspect and flash STM32 firmware over USB DFU (DfuSe).

The public API is re-exported here; see the documentation in ``docs/``. The two calls
most programs start with::

    import dfuse

    image = dfuse.load("build/app.hex")            # .dfu, .hex, .s19 (or .bin with address=)
    with dfuse.open("usb:0483:df11") as dev:       # or "sim:stm32f411", a simulated board
        dev.download(image, verify=True)
    dfuse.list("usb:")                             # every DFU device, as DeviceInfo records

Names are imported on first use (PEP 562), so ``import dfuse`` loads neither pyusb,
rich, construct nor bincopy; ``dir(dfuse)``, ``__all__`` and type checkers see them all.
"""

from __future__ import annotations

import builtins
import importlib
from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    from dfuse.clock import Clock, RealClock, ScaledClock, VirtualClock
    from dfuse.device import DfuDevice, DownloadOptions, Phase
    from dfuse.file import DfuFile, DfuSeFile, Element, FileKind, Target
    from dfuse.file.load import load
    from dfuse.file.save import save
    from dfuse.gang import FlashReport, GangPhase, GangReport, flash_many
    from dfuse.layout import Access, MemoryLayout, Region, Sector
    from dfuse.optionbytes import BorLevel, OptionBytes, OtpArea, RdpLevel
    from dfuse.protocol.constants import Request, State, Status
    from dfuse.selector import DeviceSelector, wait_for_device
    from dfuse.selector import list_devices as list
    from dfuse.selector import list_devices as list_devices
    from dfuse.selector import open_device as open
    from dfuse.selector import open_device as open_device
    from dfuse.trace.recorder import tracing
    from dfuse.transport import AltSetting, DeviceInfo, DeviceMode
    from dfuse.transport import find_devices as find_devices

__version__ = "0.1.0"

#: Where each lazily imported name lives: ``name -> (module, attribute)``.
_LAZY: dict[str, tuple[str, str]] = {
    **{n: ("dfuse.clock", n) for n in ("Clock", "RealClock", "ScaledClock", "VirtualClock")},
    **{n: ("dfuse.device", n) for n in ("DfuDevice", "DownloadOptions", "Phase")},
    **{
        n: ("dfuse.file", n)
        for n in ("DfuFile", "DfuSeFile", "Element", "FileKind", "Target", "load", "save")
    },
    **{n: ("dfuse.gang", n) for n in ("FlashReport", "GangPhase", "GangReport", "flash_many")},
    **{n: ("dfuse.layout", n) for n in ("Access", "MemoryLayout", "Region", "Sector")},
    **{n: ("dfuse.optionbytes", n) for n in ("BorLevel", "OptionBytes", "OtpArea", "RdpLevel")},
    **{n: ("dfuse.protocol.constants", n) for n in ("Request", "State", "Status")},
    **{n: ("dfuse.transport", n) for n in ("AltSetting", "DeviceInfo", "DeviceMode")},
    "DeviceSelector": ("dfuse.selector", "DeviceSelector"),
    "wait_for_device": ("dfuse.selector", "wait_for_device"),
    "tracing": ("dfuse.trace.recorder", "tracing"),
    "open": ("dfuse.selector", "open_device"),
    "list": ("dfuse.selector", "list_devices"),
    # the earlier names of open/list, kept working (not in __all__, not documented)
    "open_device": ("dfuse.selector", "open_device"),
    "list_devices": ("dfuse.selector", "list_devices"),
    "find_devices": ("dfuse.transport", "find_devices"),
}

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
    "flash_many",
    "list",
    "load",
    "open",
    "save",
    "tracing",
    "wait_for_device",
]


def __getattr__(name: str) -> Any:
    """Import a public name on first use (PEP 562)."""
    try:
        module, attribute = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'dfuse' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), attribute)
    if name not in ("open", "list"):  # never shadow the builtins inside this module
        globals()[name] = value
    return value


def __dir__() -> builtins.list[str]:
    return sorted(set(globals()) | set(_LAZY))
