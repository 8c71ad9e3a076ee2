"""USB transports: the Transport ABC, the pyusb implementation and device discovery."""

from dfuse.transport.base import (
    DEFAULT_TIMEOUT_MS,
    AltSetting,
    DeviceInfo,
    DeviceMode,
    Transport,
    describe_request,
)
from dfuse.transport.discovery import find_devices, select_device
from dfuse.transport.pyusb import PyUsbTransport, get_backend

__all__ = [
    "DEFAULT_TIMEOUT_MS",
    "AltSetting",
    "DeviceInfo",
    "DeviceMode",
    "PyUsbTransport",
    "Transport",
    "describe_request",
    "find_devices",
    "get_backend",
    "select_device",
]
