"""The contract between simulated USB devices and the "front doors" that host them.

A simulated device (:class:`UsbDeviceModel`) is a USB device as the bus sees it:
descriptors and control transfers on endpoint 0, nothing else. Two front doors
put such a model in front of host software:

* :class:`dfuse.sim.SimBackend`, a pyusb ``IBackend`` (in-process, any OS);
* the usbdevfs bridge (Linux, umockdev), for unmodified libusb programs.

Both speak to the model only through this interface, so one model serves both.

Signals raised by :meth:`UsbDeviceModel.control_transfer`:

* :class:`Stall` — the device stalls EP0 (libusb: ``LIBUSB_ERROR_PIPE``, errno EPIPE);
* :class:`Timeout` — the device does not answer within the host's timeout (ETIMEDOUT);
* :class:`Gone` — the device is not on the bus any more (ENODEV).

Re-enumeration: a device that resets (leave, option-byte write, Read Unprotect)
calls :meth:`UsbDeviceModel.disconnect` and later :meth:`UsbDeviceModel.reconnect`;
every reconnect bumps :attr:`UsbDeviceModel.generation`, so handles opened before
it see :class:`Gone` (front doors pass their handle's generation to
:meth:`UsbDeviceModel.control_transfer`, which checks it after catching up with the
clock). Listeners registered with
:meth:`add_listener` are told ``"detach"`` / ``"attach"``.
"""

from __future__ import annotations

import struct
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass

__all__ = [
    "BusyError",
    "Gone",
    "SetupPacket",
    "SimSignal",
    "Stall",
    "Timeout",
    "UsbDeviceModel",
]

# Standard request codes (USB 2.0 §9.4).
GET_STATUS = 0x00
CLEAR_FEATURE = 0x01
SET_FEATURE = 0x03
SET_ADDRESS = 0x05
GET_DESCRIPTOR = 0x06
GET_CONFIGURATION = 0x08
SET_CONFIGURATION = 0x09
GET_INTERFACE = 0x0A
SET_INTERFACE = 0x0B

DT_DEVICE = 0x01
DT_CONFIG = 0x02
DT_STRING = 0x03

LANGID_EN_US = 0x0409


class SimSignal(Exception):
    """Base of the bus-level outcomes a simulated device can produce."""


class Stall(SimSignal):
    """EP0 stalled the request (a STALL handshake)."""


class Timeout(SimSignal):
    """The device did not complete the transfer before the host's timeout."""


class Gone(SimSignal):
    """The device is not on the bus."""


class BusyError(SimSignal):
    """The interface is claimed by another handle (libusb: LIBUSB_ERROR_BUSY)."""


@dataclass(frozen=True, slots=True)
class SetupPacket:
    """The 8-byte SETUP packet of a control transfer."""

    request_type: int
    request: int
    value: int
    index: int
    length: int

    @property
    def is_in(self) -> bool:
        """True for device-to-host transfers (bit 7 of bmRequestType)."""
        return bool(self.request_type & 0x80)

    @property
    def kind(self) -> int:
        """0 standard, 1 class, 2 vendor (bits 6..5 of bmRequestType)."""
        return (self.request_type >> 5) & 0x03

    @property
    def recipient(self) -> int:
        """0 device, 1 interface, 2 endpoint, 3 other."""
        return self.request_type & 0x1F

    def to_bytes(self) -> bytes:
        return struct.pack(
            "<BBHHH", self.request_type, self.request, self.value, self.index, self.length
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> SetupPacket:
        if len(data) < 8:
            raise ValueError(f"a SETUP packet is 8 bytes, got {len(data)}")
        return cls(*struct.unpack_from("<BBHHH", data))


class UsbDeviceModel(ABC):
    """A simulated USB device: descriptors plus endpoint-0 control transfers.

    Subclasses provide the descriptors and :meth:`handle_class_request` (class and
    vendor requests); this base class answers the standard requests
    (GET_DESCRIPTOR, SET_CONFIGURATION, SET_INTERFACE, ...) from the descriptors,
    tracks the bus position and the connection state.
    """

    def __init__(self, *, bus: int = 1, address: int = 1, port_numbers: tuple[int, ...] = (1,)):
        self.bus = bus
        self.address = address
        self.port_numbers = port_numbers
        self.connected = True
        self.generation = 0
        self.configuration = 0
        self.alt_settings: dict[int, int] = {}
        self._claimed: dict[int, object] = {}
        self._listeners: list[Callable[[UsbDeviceModel, str], None]] = []
        self.lock = threading.RLock()

    # ------------------------------------------------------------------ descriptors

    @abstractmethod
    def device_descriptor(self) -> bytes:
        """The 18-byte device descriptor."""

    @abstractmethod
    def configuration_descriptor(self, index: int = 0) -> bytes:
        """The full configuration descriptor (wTotalLength bytes) at ``index``."""

    @abstractmethod
    def strings(self) -> dict[int, str]:
        """String descriptors by index (index 0, the language list, is implicit)."""

    def string_descriptor(self, index: int, langid: int = LANGID_EN_US) -> bytes:
        """The raw string descriptor; index 0 is the LANGID list. Stalls if absent."""
        if index == 0:
            return bytes((4, DT_STRING)) + struct.pack("<H", LANGID_EN_US)
        text = self.strings().get(index)
        if text is None:
            raise Stall(f"no string descriptor {index}")
        body = text.encode("utf-16-le")
        return bytes((2 + len(body), DT_STRING)) + body

    # ------------------------------------------------------------------ bus

    @property
    def path(self) -> str:
        """Bus path as dfu-util prints it: ``"1-2.3"``."""
        return f"{self.bus}-" + ".".join(str(p) for p in self.port_numbers)

    def add_listener(self, callback: Callable[[UsbDeviceModel, str], None]) -> None:
        """Call ``callback(device, "detach"|"attach")`` when the device leaves or joins the bus."""
        self._listeners.append(callback)

    def disconnect(self) -> None:
        """Drop off the bus (handles opened before now will see :class:`Gone`)."""
        with self.lock:
            if not self.connected:
                return
            self.connected = False
            self.generation += 1
            self._claimed.clear()
            self.configuration = 0
            self.alt_settings.clear()
        for cb in list(self._listeners):
            cb(self, "detach")

    def reconnect(self) -> None:
        """Come back on the bus, freshly enumerated."""
        with self.lock:
            if self.connected:
                return
            self.connected = True
            self.generation += 1
        for cb in list(self._listeners):
            cb(self, "attach")

    def _check_alive(self, generation: int | None) -> None:
        """Raise :class:`Gone` if the device is off the bus, or (``generation`` given)
        has been re-enumerated since that generation."""
        if not self.connected:
            raise Gone("device is not on the bus")
        if generation is not None and generation != self.generation:
            raise Gone("device was re-enumerated (reset or power loss) since it was opened")

    def check_generation(self, generation: int) -> None:
        """Raise :class:`Gone` unless the device is connected and still ``generation``."""
        if not self.connected or generation != self.generation:
            raise Gone("device is not on the bus")

    # ------------------------------------------------------------------ interfaces

    def claim_interface(self, interface: int, owner: object) -> None:
        """Claim ``interface`` for ``owner``; raises :class:`BusyError` if someone else holds it."""
        with self.lock:
            holder = self._claimed.get(interface)
            if holder is not None and holder is not owner:
                raise BusyError(f"interface {interface} is claimed by another handle")
            self._claimed[interface] = owner

    def release_interface(self, interface: int, owner: object) -> None:
        with self.lock:
            if self._claimed.get(interface) is owner:
                del self._claimed[interface]

    def release_all(self, owner: object) -> None:
        with self.lock:
            for intf in [i for i, o in self._claimed.items() if o is owner]:
                del self._claimed[intf]

    def set_configuration(self, value: int) -> None:
        cfg = self.configuration_descriptor(0)
        if value not in (0, cfg[5]):
            raise Stall(f"no configuration {value}")
        self.configuration = value
        self.alt_settings.clear()

    def set_interface(self, interface: int, alt: int) -> None:
        if (interface, alt) not in set(self.interfaces()):
            raise Stall(f"no interface {interface} alternate setting {alt}")
        self.alt_settings[interface] = alt
        self.on_set_interface(interface, alt)

    def on_set_interface(self, interface: int, alt: int) -> None:  # noqa: B027
        """Hook: called after SET_INTERFACE selected ``alt`` (default: nothing)."""

    def interfaces(self) -> list[tuple[int, int]]:
        """(bInterfaceNumber, bAlternateSetting) pairs of configuration 0."""
        cfg = self.configuration_descriptor(0)
        out: list[tuple[int, int]] = []
        pos = 0
        while pos + 2 <= len(cfg):
            length, dtype = cfg[pos], cfg[pos + 1]
            if length == 0:
                break
            if dtype == 0x04:
                out.append((cfg[pos + 2], cfg[pos + 3]))
            pos += length
        return out

    def reset(self) -> None:
        """USB bus reset (a port reset from the host). Default: back to unconfigured."""
        self.configuration = 0
        self.alt_settings.clear()

    # ------------------------------------------------------------------ transfers

    def control_transfer(
        self,
        setup: SetupPacket,
        data: bytes = b"",
        timeout_ms: int = 0,
        *,
        generation: int | None = None,
    ) -> bytes:
        """Perform one control transfer.

        For IN transfers return at most ``setup.length`` bytes; for OUT transfers
        ``data`` is the data stage and the return value is empty. Raises
        :class:`Stall`, :class:`Timeout` or :class:`Gone`.

        ``generation``, when given, is the enumeration the host's handle belongs to:
        if the device has left the bus since (even if it is back already), the
        transfer raises :class:`Gone`, as libusb reports ENODEV on a stale handle. The
        check is made after the device has caught up with the clock, under its lock.
        """
        with self.lock:
            self._check_alive(generation)
            if setup.kind == 0:
                reply = self._standard_request(setup, data)
            else:
                reply = self.handle_class_request(setup, data, timeout_ms)
            return reply[: setup.length] if setup.is_in else b""

    @abstractmethod
    def handle_class_request(self, setup: SetupPacket, data: bytes, timeout_ms: int) -> bytes:
        """Answer a class or vendor request (e.g. the DFU requests)."""

    def _standard_request(self, setup: SetupPacket, data: bytes) -> bytes:
        req = setup.request
        if setup.is_in:
            if req == GET_DESCRIPTOR:
                dtype, dindex = setup.value >> 8, setup.value & 0xFF
                if dtype == DT_DEVICE:
                    return self.device_descriptor()
                if dtype == DT_CONFIG:
                    if dindex != 0:
                        raise Stall(f"no configuration descriptor {dindex}")
                    return self.configuration_descriptor(0)
                if dtype == DT_STRING:
                    return self.string_descriptor(dindex, setup.index)
                raise Stall(f"descriptor type 0x{dtype:02X} not supported")
            if req == GET_STATUS:
                return b"\x01\x00" if setup.recipient == 0 else b"\x00\x00"
            if req == GET_CONFIGURATION:
                return bytes((self.configuration,))
            if req == GET_INTERFACE:
                return bytes((self.alt_settings.get(setup.index, 0),))
            raise Stall(f"standard IN request 0x{req:02X} not supported")
        if req == SET_CONFIGURATION:
            self.set_configuration(setup.value)
            return b""
        if req == SET_INTERFACE:
            self.set_interface(setup.index, setup.value)
            return b""
        if req in (CLEAR_FEATURE, SET_FEATURE):
            return b""
        raise Stall(f"standard OUT request 0x{req:02X} not supported")
