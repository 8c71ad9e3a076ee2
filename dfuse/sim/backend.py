"""A pyusb backend (``usb.backend.IBackend``) that hosts simulated USB devices.

>>> import usb.core
>>> from dfuse.sim import SimBackend, Stm32F411
>>> backend = SimBackend([Stm32F411(serial="A1")])
>>> dev = usb.core.find(idVendor=0x0483, idProduct=0xDF11, backend=backend)
>>> hex(dev.bcdDevice), usb.util.get_string(dev, dev.iProduct)
('0x2200', 'STM32  BOOTLOADER')

Errors look exactly like those of pyusb's libusb1 backend: a stall is
``USBError("Pipe error")`` with ``errno`` EPIPE and ``backend_error_code`` -9, a
timeout ``USBTimeoutError`` (ETIMEDOUT, -7), a device gone ENODEV (-4), an
interface held by another handle EBUSY (-6).

Like the host controller, the backend assigns bus addresses: each device gets a
fresh address when it is added and each time it comes back on the bus, and the
kernel's part of enumeration (SET_CONFIGURATION 1) is done for it then.

Boards come and go at any time, from any thread: :meth:`SimBackend.plug`,
:meth:`SimBackend.unplug` (a yanked cable: ENODEV), :meth:`SimBackend.schedule` (an
arrival at a clock time), and :meth:`SimBackend.add_hotplug_callback` to hear of it.
"""

from __future__ import annotations

import array
import errno
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import usb.backend
from usb.core import USBError, USBTimeoutError

from dfuse.clock import Clock, VirtualClock
from dfuse.sim.usbmodel import BusyError, Gone, SetupPacket, Stall, Timeout, UsbDeviceModel

__all__ = ["SimBackend"]

# libusb error codes and messages, as pyusb's libusb1 backend reports them
LIBUSB_ERROR_IO = -1
LIBUSB_ERROR_NO_DEVICE = -4
LIBUSB_ERROR_NOT_FOUND = -5
LIBUSB_ERROR_BUSY = -6
LIBUSB_ERROR_TIMEOUT = -7
LIBUSB_ERROR_PIPE = -9

_MESSAGES = {
    LIBUSB_ERROR_IO: ("Input/output error", errno.EIO),
    LIBUSB_ERROR_NO_DEVICE: ("No such device (it may have been disconnected)", errno.ENODEV),
    LIBUSB_ERROR_NOT_FOUND: ("Entity not found", errno.ENOENT),
    LIBUSB_ERROR_BUSY: ("Resource busy", errno.EBUSY),
    LIBUSB_ERROR_TIMEOUT: ("Operation timed out", errno.ETIMEDOUT),
    LIBUSB_ERROR_PIPE: ("Pipe error", errno.EPIPE),
}

LIBUSB_SPEED_FULL = 2


def usb_error(code: int) -> USBError:
    """The exception pyusb's libusb1 backend raises for libusb error ``code``."""
    message, err = _MESSAGES[code]
    if code == LIBUSB_ERROR_TIMEOUT:
        return USBTimeoutError(message, code, err)
    return USBError(message, code, err)


# ---------------------------------------------------------------------- descriptors


@dataclass(slots=True)
class _DeviceDescriptor:
    bLength: int
    bDescriptorType: int
    bcdUSB: int
    bDeviceClass: int
    bDeviceSubClass: int
    bDeviceProtocol: int
    bMaxPacketSize0: int
    idVendor: int
    idProduct: int
    bcdDevice: int
    iManufacturer: int
    iProduct: int
    iSerialNumber: int
    bNumConfigurations: int
    bus: int = 0
    address: int = 0
    port_number: int | None = None
    port_numbers: tuple[int, ...] | None = None
    speed: int = LIBUSB_SPEED_FULL


@dataclass(slots=True)
class _EndpointDescriptor:
    bLength: int
    bDescriptorType: int
    bEndpointAddress: int
    bmAttributes: int
    wMaxPacketSize: int
    bInterval: int
    bRefresh: int = 0
    bSynchAddress: int = 0
    extra_descriptors: list[int] = field(default_factory=list)


@dataclass(slots=True)
class _InterfaceDescriptor:
    bLength: int
    bDescriptorType: int
    bInterfaceNumber: int
    bAlternateSetting: int
    bNumEndpoints: int
    bInterfaceClass: int
    bInterfaceSubClass: int
    bInterfaceProtocol: int
    iInterface: int
    extra_descriptors: list[int] = field(default_factory=list)
    endpoints: list[_EndpointDescriptor] = field(default_factory=list)


@dataclass(slots=True)
class _ConfigDescriptor:
    bLength: int
    bDescriptorType: int
    wTotalLength: int
    bNumInterfaces: int
    bConfigurationValue: int
    iConfiguration: int
    bmAttributes: int
    bMaxPower: int
    extra_descriptors: list[int] = field(default_factory=list)
    # interface number order → alternate settings in descriptor order
    interfaces: list[list[_InterfaceDescriptor]] = field(default_factory=list)


def parse_configuration(raw: bytes) -> _ConfigDescriptor:
    """Split a configuration descriptor as libusb does: class-specific descriptors go to
    the ``extra`` of the interface (or endpoint, or configuration) they follow."""
    cfg = _ConfigDescriptor(raw[0], raw[1], raw[2] | raw[3] << 8, *raw[4:9])
    by_number: dict[int, list[_InterfaceDescriptor]] = {}
    extra: list[int] = cfg.extra_descriptors
    current_intf: _InterfaceDescriptor | None = None
    pos = raw[0]
    while pos + 2 <= len(raw):
        length, dtype = raw[pos], raw[pos + 1]
        if length < 2:
            break
        chunk = raw[pos : pos + length]
        if dtype == 0x04:
            current_intf = _InterfaceDescriptor(*chunk[:9])
            by_number.setdefault(current_intf.bInterfaceNumber, []).append(current_intf)
            extra = current_intf.extra_descriptors
        elif dtype == 0x05 and current_intf is not None:
            ep = _EndpointDescriptor(
                chunk[0], chunk[1], chunk[2], chunk[3], chunk[4] | chunk[5] << 8, chunk[6]
            )
            current_intf.endpoints.append(ep)
            extra = ep.extra_descriptors
        else:
            extra.extend(chunk)
        pos += length
    cfg.interfaces = [by_number[n] for n in sorted(by_number)]
    return cfg


def parse_device(raw: bytes) -> _DeviceDescriptor:
    """Decode an 18-byte device descriptor."""
    b = raw
    return _DeviceDescriptor(
        b[0],
        b[1],
        b[2] | b[3] << 8,
        b[4],
        b[5],
        b[6],
        b[7],
        b[8] | b[9] << 8,
        b[10] | b[11] << 8,
        b[12] | b[13] << 8,
        b[14],
        b[15],
        b[16],
        b[17],
    )


def _companions(device: UsbDeviceModel) -> list[UsbDeviceModel]:
    """The other personalities of the same chip (an application's bootloader and back)."""
    out = []
    for name in ("bootloader", "app"):
        other = getattr(device, name, None)
        if isinstance(other, UsbDeviceModel):
            out.append(other)
    return out


# ---------------------------------------------------------------------- handles


@dataclass(eq=False, slots=True)
class _DeviceRef:
    """A device as enumerated (libusb_device): a snapshot of one bus appearance."""

    model: UsbDeviceModel
    generation: int
    descriptor: _DeviceDescriptor
    configurations: list[_ConfigDescriptor]


@dataclass(eq=False, slots=True)
class _Handle:
    """An open device (libusb_device_handle)."""

    ref: _DeviceRef
    closed: bool = False


class SimBackend(usb.backend.IBackend):  # type: ignore[misc]
    """A pyusb backend whose bus holds simulated devices.

    Args:
        devices: the devices on the bus (more with :meth:`add`).
        clock: the clock every device lives on; a new :class:`VirtualClock` by default.
            A :class:`~dfuse.clock.RealClock` works too (operations then take real time).
        enumerate_cost: seconds one enumeration (``usb.core.find``) takes on the clock.

    Attributes:
        clock: the shared clock (``backend.clock.now`` is the device-bound time so far).
    """

    def __init__(
        self,
        devices: Iterable[UsbDeviceModel] = (),
        clock: Clock | None = None,
        *,
        enumerate_cost: float = 0.001,
    ) -> None:
        super().__init__()
        self.clock: Clock = clock if clock is not None else VirtualClock()
        self.enumerate_cost = enumerate_cost
        self._devices: list[UsbDeviceModel] = []
        self._lock = threading.RLock()
        self._next_address: dict[int, int] = {}
        self._ports: dict[int, tuple[int, ...]] = {}
        self._arrivals: list[tuple[float, int, UsbDeviceModel]] = []
        self._hotplug: list[Callable[[UsbDeviceModel, str], None]] = []
        for dev in devices:
            self.add(dev)

    # ------------------------------------------------------------------ bus management

    @property
    def devices(self) -> tuple[UsbDeviceModel, ...]:
        """Every device plugged into this bus (on the bus right now or not)."""
        return tuple(self._devices)

    def add(self, device: UsbDeviceModel) -> None:
        """Plug ``device`` in (with its companions: an application's bootloader, ...)."""
        with self._lock:
            if device in self._devices:
                return
            self._devices.append(device)
            bind = getattr(device, "bind_clock", None)
            if bind is not None:
                bind(self.clock)
            partners = _companions(device)
            taken = {
                d.port_numbers
                for d in self._devices
                if d is not device and d not in partners and d.bus == device.bus
            }
            if device.port_numbers in taken:
                port = 1
                while (port,) in taken:
                    port += 1
                device.port_numbers = (port,)
            device.add_listener(self._on_bus_event)
            if device.connected:
                self._enumerated(device)
        for companion in _companions(device):
            # the same chip in another mode: it shares the physical port
            if companion not in self._devices:
                companion.bus, companion.port_numbers = device.bus, device.port_numbers
            self.add(companion)

    def remove(self, device: UsbDeviceModel) -> None:
        """Unplug ``device`` from this bus for good; open handles see it gone."""
        with self._lock:
            if device not in self._devices:
                raise ValueError(f"{device!r} is not on this bus")
            self._devices.remove(device)
        unplug = getattr(device, "unplug", None)
        if unplug is not None:
            unplug()
        else:
            device.disconnect()

    # ------------------------------------------------------------------ hot-plug

    def plug(self, device: UsbDeviceModel) -> None:
        """Plug ``device`` into the bus now (thread-safe): a new board is added, one
        unplugged before comes back freshly booted (a new bus address; handles opened
        before it left stay dead)."""
        if device not in self._devices:
            self.add(device)
            if device.connected:
                self._notify(device, "arrived")
            else:
                self._power_on(device)
            return
        self._power_on(device)

    def _notify(self, device: UsbDeviceModel, event: str) -> None:
        with self._lock:
            callbacks = list(self._hotplug)
        for callback in callbacks:
            callback(device, event)

    @staticmethod
    def _power_on(device: UsbDeviceModel) -> None:
        power_on = getattr(device, "plug", None)
        if power_on is not None:
            power_on()
        else:
            device.reconnect()

    def unplug(self, device: UsbDeviceModel) -> None:
        """Pull ``device`` off the bus now (thread-safe), as a yanked cable: a transfer
        in progress and every later one on a handle opened before fail with ENODEV. It
        stays known to the bus (:attr:`devices`) so :meth:`plug` can bring it back."""
        if device not in self._devices:
            raise ValueError(f"{device!r} is not on this bus")
        unplug = getattr(device, "unplug", None)
        if unplug is not None:
            unplug()
        else:
            device.disconnect()

    def schedule(self, device: UsbDeviceModel, at: float) -> None:
        """Plug ``device`` in when the bus's clock reaches ``at`` (seconds): arrivals are
        made when the bus is next enumerated or polled at or after that time."""
        with self._lock:
            self._arrivals.append((at, len(self._arrivals), device))
            self._arrivals.sort(key=lambda item: (item[0], item[1]))

    @property
    def next_arrival(self) -> float | None:
        """The clock time of the next scheduled arrival (``None``: none is pending)."""
        with self._lock:
            return self._arrivals[0][0] if self._arrivals else None

    def add_hotplug_callback(self, callback: Callable[[UsbDeviceModel, str], None]) -> None:
        """Call ``callback(device, "arrived" | "left")`` whenever a device joins or leaves
        the bus (a plug, an unplug, a reset or re-enumeration), as libusb's hotplug
        callbacks do. Called from the thread that caused the change."""
        with self._lock:
            self._hotplug.append(callback)

    def remove_hotplug_callback(self, callback: Callable[[UsbDeviceModel, str], None]) -> None:
        """Stop calling ``callback`` (a callback not registered is ignored)."""
        with self._lock:
            if callback in self._hotplug:
                self._hotplug.remove(callback)

    def _arrive(self) -> None:
        """Plug in the scheduled devices whose time has come."""
        if not self._arrivals:
            return
        now = self.clock.now
        with self._lock:
            due = [item[2] for item in self._arrivals if item[0] <= now]
            self._arrivals = [item for item in self._arrivals if item[0] > now]
        for device in due:
            self.plug(device)

    def poll(self) -> None:
        """Let every device catch up with the clock (finish operations, re-enumerate)
        and plug in the scheduled arrivals that are due."""
        self._arrive()
        for dev in list(self._devices):
            poll = getattr(dev, "poll", None)
            if poll is not None:
                poll()

    def run_until(
        self, until: Callable[[], bool], *, timeout: float = 2.0, step: float = 0.01
    ) -> bool:
        """Let the devices run on their own until ``until()`` is true.

        A simulated board keeps working after the host lets go of it (it finishes
        manifesting after a leave, resets, re-enumerates) but only moves when someone
        polls it. This polls every device, waits ``step`` seconds on the bus's clock
        (a virtual clock just advances), and repeats until ``until()`` holds or
        ``timeout`` seconds of clock time have passed.

        Returns ``until()``'s last answer: ``False`` means the timeout passed first.

        >>> from dfuse.sim import SimBackend, Stm32F411
        >>> board = Stm32F411()
        >>> bus = SimBackend([board])
        >>> bus.run_until(lambda: not board.busy)
        True
        """
        if step <= 0:
            raise ValueError(f"step must be positive, got {step}")
        deadline = self.clock.now + timeout
        while True:
            self.poll()
            if until():
                return True
            if self.clock.now >= deadline:
                return False
            self.clock.sleep(step)

    def _on_bus_event(self, device: UsbDeviceModel, event: str) -> None:
        if event == "attach":
            self._enumerated(device)
        self._notify(device, "arrived" if event == "attach" else "left")

    def _enumerated(self, device: UsbDeviceModel) -> None:
        with self._lock:
            address = self._next_address.get(device.bus, 1)
            self._next_address[device.bus] = address % 127 + 1
            device.address = address
            # the kernel configures a new device with its first configuration
            try:
                cfg = device.configuration_descriptor(0)
                device.set_configuration(cfg[5])
            except Stall:
                pass

    # ------------------------------------------------------------------ IBackend

    def enumerate_devices(self) -> Iterator[_DeviceRef]:
        """The devices on the bus now (each call costs ``enumerate_cost`` on the clock)."""
        self.clock.sleep(self.enumerate_cost)
        self.poll()
        refs = []
        # Lock order: a device's lock is taken before the bus lock (a device that
        # re-enumerates holds its own lock and then assigns its address under the bus
        # lock), never the other way round: snapshot the bus, then visit each device.
        with self._lock:
            devices = list(self._devices)
        for dev in devices:
            with dev.lock:
                if not dev.connected:
                    continue
                desc = parse_device(dev.device_descriptor())
                desc.bus, desc.address = dev.bus, dev.address
                desc.port_numbers = tuple(dev.port_numbers)
                desc.port_number = dev.port_numbers[-1] if dev.port_numbers else None
                configs = [
                    parse_configuration(dev.configuration_descriptor(i))
                    for i in range(desc.bNumConfigurations)
                ]
                refs.append(_DeviceRef(dev, dev.generation, desc, configs))
        return iter(refs)

    def get_parent(self, dev: _DeviceRef) -> None:
        """Simulated devices hang off a root hub that is not modelled."""
        return None

    def get_device_descriptor(self, dev: _DeviceRef) -> _DeviceDescriptor:
        """The cached device descriptor (libusb caches it too: no USB traffic)."""
        return dev.descriptor

    def get_configuration_descriptor(self, dev: _DeviceRef, config: int) -> _ConfigDescriptor:
        """The cached configuration descriptor at index ``config``."""
        if not 0 <= config < len(dev.configurations):
            raise usb_error(LIBUSB_ERROR_NOT_FOUND)
        return dev.configurations[config]

    def get_interface_descriptor(
        self, dev: _DeviceRef, intf: int, alt: int, config: int
    ) -> _InterfaceDescriptor:
        """Interface ``intf`` (index), alternate setting ``alt`` (index)."""
        cfg = self.get_configuration_descriptor(dev, config)
        if not 0 <= intf < len(cfg.interfaces):
            raise IndexError("Invalid interface index " + str(intf))
        alts = cfg.interfaces[intf]
        if not 0 <= alt < len(alts):
            raise IndexError("Invalid alternate setting index " + str(alt))
        return alts[alt]

    def get_endpoint_descriptor(
        self, dev: _DeviceRef, ep: int, intf: int, alt: int, config: int
    ) -> _EndpointDescriptor:
        """Endpoint ``ep`` (index) of an interface."""
        i = self.get_interface_descriptor(dev, intf, alt, config)
        if not 0 <= ep < len(i.endpoints):
            raise IndexError("Invalid endpoint index " + str(ep))
        return i.endpoints[ep]

    def open_device(self, dev: _DeviceRef) -> _Handle:
        """Open the device as it was enumerated (ENODEV if it has left since)."""
        # Only this device catches up with the clock: opening one board must not wait
        # for another board's transfer in progress (its lock is held while it waits).
        poll = getattr(dev.model, "poll", None)
        if poll is not None:
            poll()
        if not dev.model.connected or dev.model.generation != dev.generation:
            raise usb_error(LIBUSB_ERROR_NO_DEVICE)
        return _Handle(dev)

    def close_device(self, dev_handle: _Handle) -> None:
        """Close: release the interfaces the handle claimed."""
        dev_handle.closed = True
        dev_handle.ref.model.release_all(dev_handle)

    def _model(self, handle: _Handle) -> UsbDeviceModel:
        """The device behind ``handle``, brought up to the clock first: a device that
        lost power or reset since the handle was opened is another device now (libusb:
        the handle's file descriptor is dead), even if it is back on the bus already."""
        model = handle.ref.model
        if handle.closed:
            raise usb_error(LIBUSB_ERROR_IO)
        with model.lock:
            poll = getattr(model, "poll", None)
            if poll is not None:
                poll()
            try:
                model.check_generation(handle.ref.generation)
            except Gone:
                raise usb_error(LIBUSB_ERROR_NO_DEVICE) from None
        return model

    def _transfer(
        self, handle: _Handle, setup: SetupPacket, data: bytes = b"", timeout: int = 0
    ) -> bytes:
        model = self._model(handle)
        try:
            # the device checks the generation again after catching up with the clock,
            # which another thread may have moved since _model() looked
            return model.control_transfer(setup, data, timeout, generation=handle.ref.generation)
        except Stall:
            raise usb_error(LIBUSB_ERROR_PIPE) from None
        except Timeout:
            raise usb_error(LIBUSB_ERROR_TIMEOUT) from None
        except Gone:
            raise usb_error(LIBUSB_ERROR_NO_DEVICE) from None
        except BusyError:
            raise usb_error(LIBUSB_ERROR_BUSY) from None

    def set_configuration(self, dev_handle: _Handle, config_value: int) -> None:
        """SET_CONFIGURATION (a control transfer to the device)."""
        self._transfer(dev_handle, SetupPacket(0x00, 0x09, config_value, 0, 0))

    def get_configuration(self, dev_handle: _Handle) -> int:
        """The active configuration (libusb answers from the kernel's cache: no transfer)."""
        return self._model(dev_handle).configuration

    def set_interface_altsetting(self, dev_handle: _Handle, intf: int, altsetting: int) -> None:
        """SET_INTERFACE; the interface must be claimed by this handle (else NOT_FOUND)."""
        model = self._model(dev_handle)
        if model._claimed.get(intf) is not dev_handle:
            raise usb_error(LIBUSB_ERROR_NOT_FOUND)
        self._transfer(dev_handle, SetupPacket(0x01, 0x0B, altsetting, intf, 0))

    def claim_interface(self, dev_handle: _Handle, intf: int) -> None:
        """Claim ``intf`` for this handle (EBUSY if another handle holds it)."""
        model = self._model(dev_handle)
        if intf not in {n for n, _alt in model.interfaces()}:
            raise usb_error(LIBUSB_ERROR_NOT_FOUND)
        try:
            model.claim_interface(intf, dev_handle)
        except BusyError:
            raise usb_error(LIBUSB_ERROR_BUSY) from None

    def release_interface(self, dev_handle: _Handle, intf: int) -> None:
        """Release ``intf`` (a device that has gone counts as released, as in libusb)."""
        dev_handle.ref.model.release_interface(intf, dev_handle)

    def ctrl_transfer(
        self,
        dev_handle: _Handle,
        bmRequestType: int,  # noqa: N803 (pyusb's parameter names)
        bRequest: int,  # noqa: N803
        wValue: int,  # noqa: N803
        wIndex: int,  # noqa: N803
        data: array.array[Any],
        timeout: int,
    ) -> int:
        """One control transfer; returns the bytes transferred (read into ``data`` if IN)."""
        length = len(data) * data.itemsize
        setup = SetupPacket(bmRequestType, bRequest, wValue, wIndex, length)
        if setup.is_in:
            reply = self._transfer(dev_handle, setup, b"", timeout)
            n = min(len(reply), length)
            raw = memoryview(data).cast("B")
            raw[:n] = reply[:n]
            return n
        payload = data.tobytes()
        self._transfer(dev_handle, setup, payload, timeout)
        return len(payload)

    def clear_halt(self, dev_handle: _Handle, ep: int) -> None:
        """CLEAR_FEATURE(ENDPOINT_HALT)."""
        self._transfer(dev_handle, SetupPacket(0x02, 0x01, 0, ep, 0))

    def reset_device(self, dev_handle: _Handle) -> None:
        """Port reset. A device that re-enumerates as another one makes libusb report
        NOT_FOUND; otherwise the handle stays valid and the configuration is restored."""
        model = self._model(dev_handle)
        config = model.configuration
        model.reset()
        if not model.connected or model.generation != dev_handle.ref.generation:
            raise usb_error(LIBUSB_ERROR_NOT_FOUND)
        if config:
            model.set_configuration(config)

    def is_kernel_driver_active(self, dev_handle: _Handle, intf: int) -> bool:
        """No kernel driver binds simulated devices."""
        self._model(dev_handle)
        return False

    def detach_kernel_driver(self, dev_handle: _Handle, intf: int) -> None:
        """libusb: NOT_FOUND when no kernel driver is attached."""
        self._model(dev_handle)
        raise usb_error(LIBUSB_ERROR_NOT_FOUND)

    def attach_kernel_driver(self, dev_handle: _Handle, intf: int) -> None:
        """libusb: NOT_FOUND when there is no driver to attach."""
        self._model(dev_handle)
        raise usb_error(LIBUSB_ERROR_NOT_FOUND)
