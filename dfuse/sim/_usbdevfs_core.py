"""The usbdevfs "kernel" of the bridge: per-device and per-open-file ioctl semantics.

This module knows the usbdevfs ABI and the :class:`~dfuse.sim.usbmodel.UsbDeviceModel`
contract, and nothing of umockdev or GLib: client memory is reached through the
small :class:`ClientMemory` protocol, and every ioctl is finished through a
:class:`Completion` that can be called exactly once, now or later. The umockdev
adapter in :mod:`dfuse.sim.usbdevfs` plugs real client memory into it; the tests
plug in a fake address space.

Semantics follow ``drivers/usb/core/devio.c`` where libusb can observe them:

* a stall completes the URB (or fails USBDEVFS_CONTROL) with ``EPIPE``;
* a device that left the bus fails every ioctl with ``ENODEV``, except that URBs
  already completed can still be reaped (``USBDEVFS_CAP_REAP_AFTER_DISCONNECT``);
  URBs still in flight at disconnect complete with ``-ESHUTDOWN``;
* a URB the device does not answer (:class:`~dfuse.sim.usbmodel.Timeout`) stays in
  flight until the client discards it (then ``-ENOENT``), as on a real bus where
  the timeout belongs to the host;
* REAPURB with nothing to reap parks the caller until a URB completes or the device
  leaves — the handler itself never blocks.
"""

from __future__ import annotations

import errno
import logging
import struct
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from dfuse.sim import _usbdevfs_abi as abi
from dfuse.sim.usbmodel import (
    SET_CONFIGURATION,
    SET_INTERFACE,
    BusyError,
    Gone,
    SetupPacket,
    Stall,
    Timeout,
    UsbDeviceModel,
)

__all__ = ["ClientMemory", "Completion", "DeviceNode", "Handle", "TransferCounter"]

_log = logging.getLogger(__name__)

_SETUP_SIZE = 8
_ACTIVE_SPEED = abi.Speed.FULL  # the STM32F4 OTG_FS bootloader is a full-speed device
_CAPABILITIES = (
    abi.Capability.ZERO_PACKET
    | abi.Capability.BULK_CONTINUATION
    | abi.Capability.NO_PACKET_SIZE_LIM
    | abi.Capability.REAP_AFTER_DISCONNECT
    | abi.Capability.CONNINFO_EX
)


class ClientMemory(Protocol):
    """A block of the client process's memory, fetched into the handler.

    The ioctl argument itself is an 8-byte block holding the raw argument value
    (for most requests a pointer, followed with :meth:`follow`).
    """

    @property
    def address(self) -> int:
        """The block's address in the client process (0 for the ioctl argument itself)."""
        ...

    def read(self) -> bytes:
        """The block's current (local) contents."""
        ...

    def write(self, offset: int, data: bytes) -> None:
        """Change the block at ``offset``; synced back to the client at completion."""
        ...

    def follow(self, offset: int, length: int) -> ClientMemory | None:
        """Load ``length`` bytes at the pointer stored at ``offset`` (``None`` for NULL)."""
        ...


class Completion:
    """Finishes one ioctl exactly once: ``complete(result, errno)``; later calls are ignored."""

    __slots__ = ("_done", "_lock", "_sink")

    def __init__(self, sink: Callable[[int, int], None]) -> None:
        self._sink = sink
        self._done = False
        self._lock = threading.Lock()

    @property
    def done(self) -> bool:
        """True once the ioctl has been completed."""
        return self._done

    def complete(self, result: int, err: int = 0) -> bool:
        """Complete with ``result`` (``-1`` and ``err`` for a failure); False if already done."""
        with self._lock:
            if self._done:
                return False
            self._done = True
        self._sink(result, err)
        return True

    def fail(self, err: int) -> bool:
        """Complete as a failed ioctl (``-1``, ``errno = err``)."""
        return self.complete(-1, err)


@dataclass
class TransferCounter:
    """Counts what the clients asked of a device (for reports and tests)."""

    control_transfers: int = 0
    """Control transfers that reached the device (SUBMITURB on EP0 and USBDEVFS_CONTROL)."""
    by_request: dict[tuple[int, int], int] = field(default_factory=dict)
    """Control transfers per (bmRequestType, bRequest)."""
    ioctls: dict[str, int] = field(default_factory=dict)
    """Ioctls by name."""

    def count_ioctl(self, request: int) -> None:
        """Record one ioctl."""
        name = abi.name_of(request)
        self.ioctls[name] = self.ioctls.get(name, 0) + 1

    def count_control(self, setup: SetupPacket) -> None:
        """Record one control transfer."""
        self.control_transfers += 1
        key = (setup.request_type, setup.request)
        self.by_request[key] = self.by_request.get(key, 0) + 1


@dataclass
class _UrbRecord:
    address: int
    status: int = 0
    actual_length: int = 0
    in_data: bytes = b""
    written: bool = False


class DeviceNode:
    """One published device: the model, its bus address, and the open files on it.

    ``on_configuration`` is told the new bConfigurationValue after a successful
    SETCONFIGURATION (the bridge mirrors it into sysfs).
    """

    def __init__(
        self,
        model: UsbDeviceModel,
        *,
        on_configuration: Callable[[int], None] | None = None,
        counter: TransferCounter | None = None,
    ) -> None:
        self.model = model
        self.counter = counter if counter is not None else TransferCounter()
        self._on_configuration = on_configuration
        self._handles: list[Handle] = []
        self._lock = threading.Lock()

    def open(self) -> Handle:
        """A new open file on the device (one per ``open()`` of the device node)."""
        handle = Handle(self)
        with self._lock:
            self._handles.append(handle)
        return handle

    def forget(self, handle: Handle) -> None:
        """The client closed ``handle``: release what it held."""
        with self._lock:
            if handle in self._handles:
                self._handles.remove(handle)
        handle.close()

    def device_left(self) -> None:
        """The model left the bus: finish in-flight URBs and parked reapers with ENODEV."""
        with self._lock:
            handles = list(self._handles)
        for handle in handles:
            handle.device_left()

    def configuration_changed(self, value: int) -> None:
        """Mirror a new active configuration (called after SET_CONFIGURATION succeeded)."""
        if self._on_configuration is not None:
            self._on_configuration(value)

    @property
    def open_handles(self) -> int:
        """How many files are open on the device."""
        with self._lock:
            return len(self._handles)


class Handle:
    """An open file on a device node: claimed interfaces, URBs in flight, URBs to reap."""

    def __init__(self, node: DeviceNode) -> None:
        self.node = node
        self.model = node.model
        self.generation = node.model.generation
        self._lock = threading.Lock()
        self._in_flight: dict[int, _UrbRecord] = {}
        self._reapable: deque[_UrbRecord] = deque()
        self._parked: list[tuple[ClientMemory, Completion]] = []
        self._parked_controls: list[Completion] = []
        self._closed = False

    # ------------------------------------------------------------------ state

    @property
    def gone(self) -> bool:
        """True when the device this file was opened on is no longer on the bus."""
        return not self.model.connected or self.model.generation != self.generation

    def close(self) -> None:
        """Release claimed interfaces; park nothing more."""
        with self._lock:
            self._closed = True
            parked, self._parked = self._parked, []
            controls, self._parked_controls = self._parked_controls, []
            self._in_flight.clear()
            self._reapable.clear()
        for _arg, done in parked:
            done.fail(errno.ENODEV)
        for done in controls:
            done.fail(errno.ENODEV)
        self.model.release_all(self)

    def device_left(self) -> None:
        """Finish in-flight URBs with -ESHUTDOWN and wake parked reapers."""
        with self._lock:
            for record in self._in_flight.values():
                record.status = -errno.ESHUTDOWN
                self._reapable.append(record)
            self._in_flight.clear()
            controls, self._parked_controls = self._parked_controls, []
        for done in controls:
            done.fail(errno.ENODEV)
        self._wake_reapers()

    # ------------------------------------------------------------------ dispatch

    def handle(self, request: int, arg: ClientMemory, done: Completion) -> None:
        """Answer one ioctl; ``done`` is completed now, or later for parked requests."""
        self.node.counter.count_ioctl(request)
        if request in (abi.Ioctl.REAPURB, abi.Ioctl.REAPURBNDELAY):
            # completed URBs can be reaped after a disconnect (REAP_AFTER_DISCONNECT)
            self._reap(arg, done, block=request == abi.Ioctl.REAPURB)
            return
        if self.gone:
            done.fail(errno.ENODEV)
            return
        handler = _DISPATCH.get(request)
        if handler is not None:
            handler(self, arg, done)
        elif abi.is_conninfo_ex(request):
            self._conninfo_ex(arg, done, abi.ioctl_size(request))
        else:
            _log.debug("usbdevfs: unsupported ioctl %s", abi.name_of(request))
            done.fail(errno.ENOTTY)

    # ------------------------------------------------------------------ helpers

    @staticmethod
    def _read_u32(arg: ClientMemory) -> int | None:
        mem = arg.follow(0, 4)
        if mem is None:
            return None
        value: int = struct.unpack_from("<I", mem.read())[0]
        return value

    @staticmethod
    def _write_u32(arg: ClientMemory, value: int) -> bool:
        mem = arg.follow(0, 4)
        if mem is None:
            return False
        mem.write(0, struct.pack("<I", value))
        return True

    def _transfer(self, setup: SetupPacket, data: bytes, timeout_ms: int) -> bytes:
        """One control transfer on the wire (counted), model signals propagate."""
        self.node.counter.count_control(setup)
        if self.gone:
            raise Gone("device left the bus")
        return self.model.control_transfer(setup, data, timeout_ms, generation=self.generation)

    # ------------------------------------------------------------------ simple ioctls

    def _get_capabilities(self, arg: ClientMemory, done: Completion) -> None:
        if self._write_u32(arg, int(_CAPABILITIES)):
            done.complete(0)
        else:
            done.fail(errno.EFAULT)

    def _release(self, arg: ClientMemory, done: Completion) -> None:
        intf = self._read_u32(arg)
        if intf is None:
            done.fail(errno.EFAULT)
            return
        self.model.release_interface(intf, self)
        done.complete(0)

    def _claim(self, arg: ClientMemory, done: Completion) -> None:
        intf = self._read_u32(arg)
        if intf is None:
            done.fail(errno.EFAULT)
            return
        self._claim_number(intf, done)

    def _claim_number(self, intf: int, done: Completion) -> None:
        if intf not in {i for i, _alt in self.model.interfaces()}:
            done.fail(errno.ENOENT)
            return
        try:
            self.model.claim_interface(intf, self)
        except BusyError:
            done.fail(errno.EBUSY)
            return
        done.complete(0)

    def _disconnect_claim(self, arg: ClientMemory, done: Completion) -> None:
        mem = arg.follow(0, 8)
        if mem is None:
            done.fail(errno.EFAULT)
            return
        intf = struct.unpack_from("<I", mem.read())[0]
        self._claim_number(intf, done)

    def _set_interface(self, arg: ClientMemory, done: Completion) -> None:
        mem = arg.follow(0, 8)
        if mem is None:
            done.fail(errno.EFAULT)
            return
        intf, alt = struct.unpack_from("<II", mem.read())
        if (intf, alt) not in set(self.model.interfaces()):
            done.fail(errno.EINVAL)
            return
        setup = SetupPacket(0x01, SET_INTERFACE, alt, intf, 0)
        self._finish_sync(setup, b"", 0, done)

    def _set_configuration(self, arg: ClientMemory, done: Completion) -> None:
        raw = self._read_u32(arg)
        if raw is None:
            done.fail(errno.EFAULT)
            return
        value = struct.unpack("<i", struct.pack("<I", raw))[0]
        value = 0 if value == -1 else value  # -1 means "unconfigured" to usbfs
        setup = SetupPacket(0x00, SET_CONFIGURATION, value, 0, 0)
        if self._finish_sync(setup, b"", 0, done):
            self.node.configuration_changed(value)

    def _finish_sync(
        self, setup: SetupPacket, data: bytes, timeout_ms: int, done: Completion
    ) -> bool:
        try:
            self._transfer(setup, data, timeout_ms)
        except Stall:
            done.fail(errno.EPIPE)
            return False
        except Timeout:
            done.fail(errno.ETIMEDOUT)
            return False
        except Gone:
            done.fail(errno.ENODEV)
            return False
        done.complete(0)
        return True

    def _no_driver(self, arg: ClientMemory, done: Completion) -> None:
        done.fail(errno.ENODATA)

    def _ok(self, arg: ClientMemory, done: Completion) -> None:
        done.complete(0)

    def _get_speed(self, arg: ClientMemory, done: Completion) -> None:
        done.complete(int(_ACTIVE_SPEED))

    def _connectinfo(self, arg: ClientMemory, done: Completion) -> None:
        mem = arg.follow(0, 8)
        if mem is None:
            done.fail(errno.EFAULT)
            return
        mem.write(0, struct.pack("<IB3x", self.model.address, 0))
        done.complete(0)

    def _conninfo_ex(self, arg: ClientMemory, done: Completion, size: int) -> None:
        payload = abi.conninfo_ex(
            size, self.model.bus, self.model.address, _ACTIVE_SPEED, self.model.port_numbers
        )
        mem = arg.follow(0, len(payload))
        if mem is None:
            done.fail(errno.EFAULT)
            return
        mem.write(0, payload)
        done.complete(0)

    def _clear_halt(self, arg: ClientMemory, done: Completion) -> None:
        endpoint = self._read_u32(arg)
        if endpoint is None:
            done.fail(errno.EFAULT)
        elif endpoint & 0x7F == 0:
            done.complete(0)
        else:
            done.fail(errno.ENOENT)

    def _reset(self, arg: ClientMemory, done: Completion) -> None:
        # A port reset re-enumerates; the kernel then restores the configuration
        # and alternate settings the handles had chosen (usb_reset_device()).
        config = self.model.configuration
        alts = dict(self.model.alt_settings)
        try:
            self.model.reset()
            if self.gone:
                done.fail(errno.ENODEV)
                return
            if config:
                self._transfer(SetupPacket(0x00, SET_CONFIGURATION, config, 0, 0), b"", 0)
                for intf, alt in sorted(alts.items()):
                    if alt:
                        self._transfer(SetupPacket(0x01, SET_INTERFACE, alt, intf, 0), b"", 0)
        except Gone:
            done.fail(errno.ENODEV)
            return
        except (Stall, Timeout):
            done.fail(errno.EIO)
            return
        done.complete(0)

    # ------------------------------------------------------------------ control

    def _control(self, arg: ClientMemory, done: Completion) -> None:
        mem = arg.follow(0, abi.CTRLTRANSFER_SIZE)
        if mem is None:
            done.fail(errno.EFAULT)
            return
        ctrl = abi.CtrlTransfer.parse(mem.read())
        setup = SetupPacket(ctrl.request_type, ctrl.request, ctrl.value, ctrl.index, ctrl.length)
        data_mem: ClientMemory | None = None
        if ctrl.length:
            data_mem = mem.follow(abi.CtrlTransfer.DATA_OFFSET, ctrl.length)
            if data_mem is None:
                done.fail(errno.EFAULT)
                return
        out = b"" if setup.is_in or data_mem is None else data_mem.read()[: ctrl.length]
        try:
            reply = self._transfer(setup, out, ctrl.timeout_ms)
        except Stall:
            done.fail(errno.EPIPE)
            return
        except Gone:
            done.fail(errno.ENODEV)
            return
        except Timeout:
            self._fail_after(ctrl.timeout_ms, done)
            return
        if setup.is_in:
            if reply and data_mem is not None:
                data_mem.write(0, reply)
            done.complete(len(reply))
        else:
            done.complete(len(out))

    def _fail_after(self, timeout_ms: int, done: Completion) -> None:
        """Fail with ETIMEDOUT once the client's own timeout has passed (0: wait forever)."""
        if timeout_ms <= 0:
            with self._lock:  # usbfs waits forever: only device_left()/close() end it
                self._parked_controls.append(done)
            return
        timer = threading.Timer(timeout_ms / 1000.0, done.fail, args=(errno.ETIMEDOUT,))
        timer.daemon = True
        timer.start()

    # ------------------------------------------------------------------ URBs

    def _submit(self, arg: ClientMemory, done: Completion) -> None:
        urb_mem = arg.follow(0, abi.URB_SIZE)
        if urb_mem is None:
            done.fail(errno.EFAULT)
            return
        urb = abi.Urb.parse(urb_mem.read())
        if urb.endpoint & 0x7F != 0:
            done.fail(errno.ENOENT)  # the simulated devices have endpoint 0 only
            return
        if urb.type != abi.UrbType.CONTROL or urb.buffer_length < _SETUP_SIZE:
            done.fail(errno.EINVAL)
            return
        buf = urb_mem.follow(abi.URB_BUFFER_OFFSET, urb.buffer_length)
        if buf is None:
            done.fail(errno.EFAULT)
            return
        raw = buf.read()
        setup = SetupPacket.from_bytes(raw[:_SETUP_SIZE])
        if setup.length > urb.buffer_length - _SETUP_SIZE:
            done.fail(errno.EINVAL)
            return
        record = _UrbRecord(address=urb_mem.address)
        try:
            reply = self._transfer(setup, b"" if setup.is_in else raw[8 : 8 + setup.length], 0)
        except Timeout:
            with self._lock:
                self._in_flight[record.address] = record
            done.complete(0)
            return
        except Stall:
            record.status = -errno.EPIPE
        except Gone:
            record.status = -errno.ENODEV
        else:
            record.actual_length = len(reply) if setup.is_in else setup.length
            record.in_data = reply if setup.is_in else b""
        # The result is visible to the client only once reaped; writing it now saves
        # a round trip through umockdev at reap time.
        _write_result(urb_mem, buf, record)
        with self._lock:
            self._reapable.append(record)
        done.complete(0)
        self._wake_reapers()

    def _reap(self, arg: ClientMemory, done: Completion, *, block: bool) -> None:
        with self._lock:
            record = self._reapable.popleft() if self._reapable else None
            if record is None:
                if self.gone or self._closed:
                    pass
                elif block:
                    self._parked.append((arg, done))
                    return
        if record is None:
            done.fail(errno.ENODEV if self.gone else errno.EAGAIN)
            return
        _deliver(arg, record)
        done.complete(0)

    def _wake_reapers(self) -> None:
        while True:
            with self._lock:
                if not self._parked:
                    return
                if self._reapable:
                    arg, done = self._parked.pop(0)
                    record = self._reapable.popleft()
                elif self.gone:
                    parked, self._parked = self._parked, []
                    for _arg, waiting in parked:
                        waiting.fail(errno.ENODEV)
                    return
                else:
                    return
            _deliver(arg, record)
            done.complete(0)

    def _discard(self, arg: ClientMemory, done: Completion) -> None:
        address = _pointer(arg)
        with self._lock:
            record = self._in_flight.pop(address, None)
            if record is not None:
                record.status = -errno.ENOENT
                self._reapable.append(record)
        if record is None:
            done.fail(errno.EINVAL)
            return
        done.complete(0)
        self._wake_reapers()


def _pointer(arg: ClientMemory) -> int:
    value: int = struct.unpack_from("<Q", arg.read())[0]
    return value


def _write_result(urb_mem: ClientMemory, buf: ClientMemory | None, record: _UrbRecord) -> None:
    urb_mem.write(abi.URB_STATUS_OFFSET, struct.pack("<i", record.status))
    urb_mem.write(abi.URB_ACTUAL_LENGTH_OFFSET, struct.pack("<i", record.actual_length))
    if record.in_data and buf is not None:
        buf.write(_SETUP_SIZE, record.in_data)
    record.written = True


def _deliver(arg: ClientMemory, record: _UrbRecord) -> None:
    """Store the URB's address through the REAPURB argument; write late results through it."""
    slot = arg.follow(0, 8)
    if slot is None:
        return
    slot.write(0, struct.pack("<Q", record.address))
    if record.written:
        return
    urb_mem = slot.follow(0, abi.URB_SIZE)
    if urb_mem is None:
        return
    urb = abi.Urb.parse(urb_mem.read())
    buf = urb_mem.follow(abi.URB_BUFFER_OFFSET, urb.buffer_length) if record.in_data else None
    _write_result(urb_mem, buf, record)


_DISPATCH: dict[int, Callable[[Handle, ClientMemory, Completion], None]] = {
    abi.Ioctl.GET_CAPABILITIES: Handle._get_capabilities,
    abi.Ioctl.CLAIMINTERFACE: Handle._claim,
    abi.Ioctl.RELEASEINTERFACE: Handle._release,
    abi.Ioctl.DISCARDURB: Handle._discard,
    abi.Ioctl.DISCONNECT_CLAIM: Handle._disconnect_claim,
    abi.Ioctl.SETINTERFACE: Handle._set_interface,
    abi.Ioctl.SETCONFIGURATION: Handle._set_configuration,
    abi.Ioctl.GETDRIVER: Handle._no_driver,
    abi.Ioctl.IOCTL: Handle._no_driver,
    abi.Ioctl.CONTROL: Handle._control,
    abi.Ioctl.SUBMITURB: Handle._submit,
    abi.Ioctl.RESET: Handle._reset,
    abi.Ioctl.GET_SPEED: Handle._get_speed,
    abi.Ioctl.CONNECTINFO: Handle._connectinfo,
    abi.Ioctl.CLEAR_HALT: Handle._clear_halt,
    abi.Ioctl.RESETEP: Handle._ok,
    abi.Ioctl.DROP_PRIVILEGES: Handle._ok,
    abi.Ioctl.FORBID_SUSPEND: Handle._ok,
    abi.Ioctl.ALLOW_SUSPEND: Handle._ok,
    abi.Ioctl.WAIT_FOR_RESUME: Handle._ok,
}
