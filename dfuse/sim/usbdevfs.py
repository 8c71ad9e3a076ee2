"""The usbdevfs bridge: unmodified libusb programs drive simulated devices (Linux, umockdev).

A :class:`UsbdevfsBridge` publishes :class:`~dfuse.sim.usbmodel.UsbDeviceModel`
devices in a umockdev testbed — sysfs attributes, the binary ``descriptors``
attribute, udev properties and a ``/dev/bus/usb/BBB/DDD`` node — and answers the
usbdevfs ioctls libusb makes on that node from the same models the pyusb
backend (:class:`dfuse.sim.SimBackend`) serves: one model, two front doors.
Programs see the devices when they run under ``umockdev-wrapper`` with
``UMOCKDEV_DIR`` pointing at the testbed (:meth:`UsbdevfsBridge.child_env`).

The user command (``dfuse sim run [--device stm32f411 ...] -- COMMAND...``)::

    run(
        command: Sequence[str],
        devices: Sequence[UsbDeviceModel | str] = ("stm32f411",),
        *,
        env: Mapping[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
        timeout: float | None = None,
    ) -> int

hosts the devices, runs ``command`` under ``umockdev-wrapper`` against them and
returns its exit status (``-N`` when killed by signal N). Device names are
looked up with :func:`make_device`; pass models to inspect them afterwards::

    from dfuse.sim import Stm32F411
    from dfuse.sim.usbdevfs import run

    board = Stm32F411()
    status = run(["dfu-util", "-a", "0", "-s", "0x08000000:leave", "-D", "app.bin"], [board])
    assert status == 0 and board.peek(0x08000000, 4) == open("app.bin", "rb").read(4)

Requirements: Linux, the Debian packages ``umockdev gir1.2-umockdev-1.0
libumockdev0`` and PyGObject (``pip install "pydfuse[usbdevfs]"``, which needs
``libgirepository1.0-dev libcairo2-dev`` to build). :func:`unavailable_reason`
says what is missing; everything here raises :class:`UsbdevfsUnavailableError`
(a :class:`~dfuse.DfuseError`) in that case.

Devices that re-enumerate (DfuSe *leave*, option-byte writes, Read Unprotect)
leave the testbed (a ``remove`` uevent, then the sysfs entry and node go) and come
back when the model reconnects. :func:`run` always hosts in the calling process;
the uevents, and libusb clients inside the hosting process (pyusb's libusb1
backend, see :func:`hosted`), need that process to run under
``umockdev-wrapper`` — command-line entry points call :func:`ensure_wrapper`
first, which re-executes them under it. Models on a
:class:`~dfuse.clock.VirtualClock` follow real time while hosted (clients wait in
real time for bwPollTimeout and re-enumeration), and never sleep in the handler.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import logging
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from dfuse.clock import VirtualClock
from dfuse.errors import DfuseError
from dfuse.sim import _usbdevfs_abi as abi
from dfuse.sim._usbdevfs_core import Completion, DeviceNode, Handle, TransferCounter
from dfuse.sim._usbdevfs_hub import SimulatedHub
from dfuse.sim.usbmodel import SET_CONFIGURATION, SetupPacket, SimSignal, UsbDeviceModel

__all__ = [
    "PRELOAD_LIBRARY",
    "PublishedDevice",
    "TransferCounter",
    "UsbdevfsBridge",
    "UsbdevfsUnavailableError",
    "ensure_wrapper",
    "hosted",
    "make_device",
    "run",
    "unavailable_reason",
    "under_wrapper",
]

_log = logging.getLogger(__name__)

PRELOAD_LIBRARY = "libumockdev-preload.so.0"
"""The LD_PRELOAD library ``umockdev-wrapper`` injects."""

INSTALL_HINT = (
    "install the Debian/Ubuntu packages 'umockdev gir1.2-umockdev-1.0 libumockdev0' "
    "and PyGObject ('pip install \"pydfuse[usbdevfs]\"' after "
    "'apt-get install libgirepository1.0-dev libcairo2-dev', or use an interpreter with "
    "python3-gi)"
)

_USB_MAJOR = 189


class UsbdevfsUnavailableError(DfuseError):
    """The usbdevfs bridge cannot run here (not Linux, umockdev or PyGObject missing)."""


# --------------------------------------------------------------------------- availability


def unavailable_reason() -> str | None:
    """Why the bridge cannot run on this machine, or ``None`` when it can."""
    if not sys.platform.startswith("linux"):
        return f"the usbdevfs bridge needs Linux (usbdevfs and umockdev); this is {sys.platform}"
    try:
        _gi_modules()
    except UsbdevfsUnavailableError as exc:
        return str(exc)
    if shutil.which("umockdev-wrapper") is None:
        return f"umockdev-wrapper is not on PATH: {INSTALL_HINT}"
    return None


def _require() -> None:
    reason = unavailable_reason()
    if reason is not None:
        raise UsbdevfsUnavailableError(reason)


@functools.cache
def _gi_modules() -> tuple[Any, Any]:
    """(GLib, UMockdev) from PyGObject, imported once."""
    try:
        import gi
    except ImportError as exc:
        raise UsbdevfsUnavailableError(
            f"PyGObject is not importable from {sys.executable}: {INSTALL_HINT}"
        ) from exc
    try:
        gi.require_version("UMockdev", "1.0")
        from gi.repository import GLib, UMockdev
    except (ValueError, ImportError) as exc:
        raise UsbdevfsUnavailableError(
            f"the UMockdev 1.0 typelib is missing ({exc}): {INSTALL_HINT}"
        ) from exc
    return GLib, UMockdev


def under_wrapper(environ: Mapping[str, str] | None = None) -> bool:
    """True when this process runs with umockdev's preload library (``umockdev-wrapper``)."""
    preload = (os.environ if environ is None else environ).get("LD_PRELOAD", "")
    return any("libumockdev-preload" in part for part in preload.replace(":", " ").split())


# --------------------------------------------------------------------------- client memory


class _GiMemory:
    """:class:`~dfuse.sim._usbdevfs_core.ClientMemory` over a ``UMockdev.IoctlData``."""

    __slots__ = ("_data",)

    def __init__(self, data: Any) -> None:
        self._data = data

    @property
    def address(self) -> int:
        return int(self._data.client_addr)

    def read(self) -> bytes:
        return bytes(self._data.retrieve())

    def write(self, offset: int, data: bytes) -> None:
        self._data.update(offset, data)

    def follow(self, offset: int, length: int) -> _GiMemory | None:
        child = self._data.resolve(offset, length)
        return None if child is None else _GiMemory(child)


@functools.cache
def _handler_type() -> type:
    """The ``UMockdev.IoctlBase`` subclass serving one published device (defined once)."""
    _glib, umockdev = _gi_modules()

    base: type = umockdev.IoctlBase

    class _IoctlHandler(base):  # type: ignore[misc]
        """Routes the ioctls of every file open on one device node to its :class:`Handle`."""

        def __init__(self, node: DeviceNode, pace: Callable[[], None]) -> None:
            super().__init__()
            self.node = node
            self.pace = pace
            self.handles: dict[Any, Handle] = {}
            self.lock = threading.Lock()

        def _handle_for(self, client: Any) -> Handle:
            with self.lock:
                handle = self.handles.get(client)
            if handle is not None:
                return handle
            self.sweep()  # a new file: let closed ones go first (and their claims)
            with self.lock:
                handle = self.handles.get(client)
                if handle is None:
                    handle = self.node.open()
                    self.handles[client] = handle
            return handle

        def sweep(self) -> None:
            """Forget the files clients have closed (umockdev 0.17 does not say when)."""
            with self.lock:
                closed = [c for c in self.handles if not c.get_connected()]
                handles = [self.handles.pop(c) for c in closed]
            for handle in handles:
                self.node.forget(handle)

        def do_client_connected(self, client: Any) -> None:
            self._handle_for(client)

        def do_handle_ioctl(self, client: Any) -> bool:
            done = Completion(client.complete)
            request = int(client.get_request())
            try:
                self.pace()
                handle = self._handle_for(client)
                handle.handle(request, _GiMemory(client.get_arg()), done)
            except Exception:
                _log.exception("usbdevfs: ioctl %s failed in the bridge", abi.name_of(request))
                done.fail(errno.EIO)
            return True

    return _IoctlHandler


# --------------------------------------------------------------------------- the bridge


@dataclass(frozen=True, slots=True)
class PublishedDevice:
    """Where a model appears in the testbed."""

    model: UsbDeviceModel
    sysfs_path: str
    """``/sys/devices/…`` path of the device (inside the testbed)."""
    devnode: str
    """``/dev/bus/usb/BBB/DDD``."""


class _Slot:
    """A model hosted by the bridge and its current appearance in the testbed."""

    def __init__(self, model: UsbDeviceModel, counter: TransferCounter) -> None:
        self.model = model
        self.counter = counter
        self.node: DeviceNode | None = None
        self.published: PublishedDevice | None = None
        self.handler: Any = None
        self.lock = threading.Lock()
        clock = getattr(model, "clock", None)
        self._clock = clock if isinstance(clock, VirtualClock) else None
        self._last = time.monotonic()
        self._pace_lock = threading.Lock()

    def pace(self) -> None:
        """Advance the model's virtual time by the real time elapsed since the last call.

        Clients of the bridge wait in real time (bwPollTimeout, re-enumeration
        delays), so the model's clock must move at least as fast as theirs; the
        model's own waits (a busy device asked early, an unanswered request) still
        move its clock ahead at once, so nothing ever sleeps in the handler, and
        being ahead never delays what comes later.
        """
        if self._clock is None:
            return
        with self._pace_lock:
            now = time.monotonic()
            elapsed, self._last = now - self._last, now
        if elapsed > 0:
            self._clock.advance(elapsed)

    def tick(self) -> None:
        """Advance the model's time and let it act on it (finish work, come back on the bus)."""
        handler = self.handler
        if handler is not None:
            handler.sweep()
        self.pace()
        poll = getattr(self.model, "poll", None)
        if callable(poll):
            poll()


class UsbdevfsBridge:
    """Publishes simulated USB devices in a umockdev testbed and serves their usbdevfs ioctls.

    Use as a context manager; :meth:`add` publishes a model, :meth:`child_env`
    gives the environment a program needs (run it under ``umockdev-wrapper``),
    :meth:`iterate` runs pending GLib work (call it while waiting for clients).
    """

    def __init__(self) -> None:
        _require()
        glib, umockdev = _gi_modules()
        self._glib = glib
        self._testbed = umockdev.Testbed.new()
        self._root = str(self._testbed.get_root_dir())
        self._slots: list[_Slot] = []
        self._hubs: dict[tuple[int, tuple[int, ...]], _Slot] = {}
        self._next_address: dict[int, int] = {}
        self._lock = threading.RLock()
        self._closed = False
        self._uevents = under_wrapper()

    # ------------------------------------------------------------------ context

    def __enter__(self) -> UsbdevfsBridge:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Take every device off the testbed and delete the testbed."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            slots = list(self._slots) + list(self._hubs.values())
        for slot in slots:
            self._unpublish(slot)
        self._testbed = None

    # ------------------------------------------------------------------ properties

    @property
    def root_dir(self) -> str:
        """The testbed directory (what ``UMOCKDEV_DIR`` must name for clients)."""
        return self._root

    @property
    def devices(self) -> tuple[PublishedDevice, ...]:
        """The devices currently on the (simulated) bus."""
        with self._lock:
            return tuple(s.published for s in self._slots if s.published is not None)

    def counter(self, model: UsbDeviceModel) -> TransferCounter:
        """The control-transfer and ioctl counts clients made on ``model``."""
        for slot in self._slots:
            if slot.model is model:
                return slot.counter
        raise ValueError("that model is not hosted by this bridge")

    def child_env(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """``base`` (default: ``os.environ``) plus ``UMOCKDEV_DIR`` naming this testbed."""
        env = dict(os.environ if base is None else base)
        env["UMOCKDEV_DIR"] = self._root
        return env

    # ------------------------------------------------------------------ devices

    def add(self, model: UsbDeviceModel) -> PublishedDevice | None:
        """Host ``model``; it appears in the testbed now if it is on the bus, else when it is.

        The bridge assigns ``model.address`` each time the model (re-)enumerates;
        ``model.bus`` and ``model.port_numbers`` place it. The chip's other
        personalities (an application's ``bootloader``, a bootloader's ``app``)
        are hosted with it, on the same port, as the pyusb simulator backend does.
        """
        if self._closed:
            raise ValueError("the bridge is closed")
        slot = _Slot(model, TransferCounter())
        with self._lock:
            for other in self._slots:
                if other.model is model:
                    raise ValueError("this model is already hosted by the bridge")
                if other.model.connected and model.connected and other.model.path == model.path:
                    raise ValueError(
                        f"two devices at port {model.path}: give each model its own port_numbers"
                    )
            self._slots.append(slot)
        model.add_listener(functools.partial(self._on_bus_event, slot))
        if model.connected:
            self._publish(slot)
        for companion in _companions(model):
            if all(s.model is not companion for s in self._slots):
                companion.bus, companion.port_numbers = model.bus, model.port_numbers
                self.add(companion)
        return slot.published

    def _on_bus_event(self, slot: _Slot, _model: UsbDeviceModel, event: str) -> None:
        if self._closed:
            return
        if event == "detach":
            self._unpublish(slot)
        elif event == "attach":
            self._publish(slot)

    def _publish(self, slot: _Slot) -> None:
        model = slot.model
        for depth in range(1, len(model.port_numbers)):
            self._hub_at(model.bus, tuple(model.port_numbers[:depth]))
        _enumerate(model)
        with slot.lock:
            if slot.published is not None or not model.connected:
                return
            self._assign_address(model)
            syspath, devnode, record = _sysfs_record(model)
            node = DeviceNode(
                model,
                counter=slot.counter,
                on_configuration=functools.partial(self._set_configuration_attr, syspath),
            )
            handler = _handler_type()(node, slot.pace)
            with self._lock:
                if self._testbed is None:
                    return
                if not self._testbed.add_from_string(record):
                    raise DfuseError(f"umockdev refused the device record for {syspath}")
                self._testbed.set_attribute_binary(syspath, "descriptors", _descriptors(model))
                if not self._testbed.attach_ioctl(devnode, handler):
                    raise DfuseError(f"umockdev could not attach an ioctl handler to {devnode}")
                self._uevent(syspath, "add")
            slot.node, slot.handler = node, handler
            slot.published = PublishedDevice(model, syspath, devnode)
            _log.debug("usbdevfs: published %s at %s", syspath, devnode)

    def _hub_at(self, bus: int, ports: tuple[int, ...]) -> None:
        """Publish the hub at ``ports`` (once): the parent libusb looks for in sysfs."""
        with self._lock:
            if (bus, ports) in self._hubs:
                return
            slot = _Slot(SimulatedHub(bus=bus, port_numbers=ports), TransferCounter())
            self._hubs[(bus, ports)] = slot
        self._publish(slot)

    def _assign_address(self, model: UsbDeviceModel) -> None:
        """Give ``model`` a fresh bus address, as the host controller does on every enumeration."""
        with self._lock:
            taken = {
                s.published.model.address
                for s in [*self._slots, *self._hubs.values()]
                if s.published is not None and s.model.bus == model.bus
            }
            address = self._next_address.get(model.bus, 1)
            while address in taken:
                address = address % 127 + 1
            self._next_address[model.bus] = address % 127 + 1
            model.address = address

    def _unpublish(self, slot: _Slot) -> None:
        with slot.lock:
            published, node = slot.published, slot.node
            if published is None:
                return
            slot.published = None
            if node is not None:
                node.device_left()
            with self._lock:
                if self._testbed is None:
                    return
                self._uevent(published.sysfs_path, "remove")
                self._testbed.detach_ioctl(published.devnode)
                self._testbed.remove_device(published.sysfs_path)
            _log.debug("usbdevfs: removed %s", published.sysfs_path)

    def _uevent(self, syspath: str, action: str) -> None:
        # umockdev builds the uevent from the testbed's sysfs as seen through its
        # preload library: without it the event cannot be sent (and clients started
        # afterwards enumerate from sysfs anyway).
        if self._uevents:
            self._testbed.uevent(syspath, action)

    def _set_configuration_attr(self, syspath: str, value: int) -> None:
        with self._lock:
            if self._testbed is not None:
                text = str(value) if value else ""
                self._testbed.set_attribute(syspath, "bConfigurationValue", text)

    # ------------------------------------------------------------------ main loop

    def iterate(self, timeout: float = 0.0) -> None:
        """Dispatch pending GLib events and tick the models; wait up to ``timeout`` seconds."""
        context = self._glib.MainContext.default()
        deadline = time.monotonic() + timeout
        while True:
            while context.pending():
                context.iteration(False)
            with self._lock:
                slots = [*self._slots, *self._hubs.values()]
            for slot in slots:
                slot.tick()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            time.sleep(min(remaining, 0.005))

    def serve(self, stop: threading.Event) -> None:
        """Iterate the GLib main context until ``stop`` is set (run it in a thread if needed)."""
        while not stop.is_set():
            self.iterate(0.01)


def _companions(model: UsbDeviceModel) -> list[UsbDeviceModel]:
    """The chip's other personalities on the same port (an application's bootloader, ...)."""
    found = (getattr(model, name, None) for name in ("bootloader", "app"))
    return [m for m in found if isinstance(m, UsbDeviceModel)]


# --------------------------------------------------------------------------- sysfs


def _enumerate(model: UsbDeviceModel) -> None:
    """What the kernel does on plug-in that the device sees: SET_CONFIGURATION to config 1."""
    config = model.configuration_descriptor(0)
    try:
        model.control_transfer(SetupPacket(0x00, SET_CONFIGURATION, config[5], 0, 0))
    except SimSignal as exc:  # a device that refuses stays unconfigured, as on Linux
        _log.debug("usbdevfs: SET_CONFIGURATION at enumeration failed: %s", exc)


def _descriptors(model: UsbDeviceModel) -> bytes:
    """The sysfs ``descriptors`` attribute: device descriptor, then every configuration."""
    device = model.device_descriptor()
    return device + b"".join(model.configuration_descriptor(i) for i in range(device[17]))


def _sysfs_record(model: UsbDeviceModel) -> tuple[str, str, str]:
    """(sysfs path, device node, umockdev record text) for ``model`` at its bus position."""
    device = model.device_descriptor()
    if len(device) != 18 or device[1] != 0x01:
        raise ValueError(f"a device descriptor is 18 bytes of type 1, got {device.hex()}")
    vid = device[8] | device[9] << 8
    pid = device[10] | device[11] << 8
    bcd = device[12] | device[13] << 8
    name = f"{model.bus}-" + ".".join(str(p) for p in model.port_numbers)
    syspath = f"/sys/devices/dfuse-sim/usb{model.bus}/{name}"
    devname = f"bus/usb/{model.bus:03d}/{model.address:03d}"
    minor = (model.bus - 1) * 128 + (model.address - 1)
    config = model.configuration
    lines = [
        f"P: {syspath.removeprefix('/sys')}",
        f"N: {devname}",
        f"E: DEVNAME=/dev/{devname}",
        "E: DEVTYPE=usb_device",
        "E: DRIVER=usb",
        f"E: PRODUCT={vid:x}/{pid:x}/{bcd:x}",
        f"E: TYPE={device[4]}/{device[5]}/{device[6]}",
        f"E: BUSNUM={model.bus:03d}",
        f"E: DEVNUM={model.address:03d}",
        f"E: MAJOR={_USB_MAJOR}",
        f"E: MINOR={minor}",
        "E: SUBSYSTEM=usb",
        f"A: busnum={model.bus}",
        f"A: devnum={model.address}",
        f"A: devpath={'.'.join(str(p) for p in model.port_numbers)}",
        f"A: dev={_USB_MAJOR}:{minor}",
        f"A: speed={abi.Speed.FULL.sysfs}",
        f"A: idVendor={vid:04x}",
        f"A: idProduct={pid:04x}",
        f"A: bcdDevice={bcd:04x}",
        f"A: bDeviceClass={device[4]:02x}",
        f"A: bMaxPacketSize0={device[7]}",
        f"A: bNumConfigurations={device[17]}",
        f"A: bConfigurationValue={config if config else ''}",
        "A: maxchild=0",
    ]
    strings = model.strings()
    for attr, index in (
        ("manufacturer", device[14]),
        ("product", device[15]),
        ("serial", device[16]),
    ):
        text = strings.get(index) if index else None
        if text is not None and "\n" not in text:
            lines.append(f"A: {attr}={text}")
    return syspath, f"/dev/{devname}", "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- user command


_DEVICE_NAMES = ("stm32f411", "stm32f411-app")


def make_device(name: str, *, bus: int = 1, port: int = 1) -> UsbDeviceModel:
    """A simulated board by name, on root port ``port`` of ``bus``.

    ``"stm32f411"``: the ROM bootloader in DFU mode (0483:df11).
    ``"stm32f411-app"``: an application with the DFU run-time interface
    (0483:5740) that detaches into that bootloader (hosted with it).
    Any other part name of :mod:`dfuse.parts` (``"stm32l476"``): that part's board.
    Boards on other ports get their own serial number, so tools can tell them
    apart (``dfu-util -S``). The bus address is assigned when the board is
    published (as a host controller does, afresh on every re-enumeration).
    """
    key = name.strip().lower()
    from dfuse.parts import parts_by_name

    parts = parts_by_name()
    if key not in _DEVICE_NAMES and key not in parts:
        raise DfuseError(
            f"unknown simulated device {name!r}: expected one of "
            + ", ".join(repr(n) for n in (*_DEVICE_NAMES, *sorted(parts)))
        )
    from dfuse.sim.rom import RomBootloader
    from dfuse.sim.stm32f411 import Stm32F411, Stm32F411App

    serial = "3276347F3034" if (bus, port) == (1, 1) else f"3276347F{bus:02X}{port:02X}"
    if key not in _DEVICE_NAMES:  # any other part of the part database: its row's board
        return RomBootloader(parts[key], bus=bus, address=port, port_numbers=(port,))
    if key == "stm32f411-app":
        return Stm32F411App(serial, bus=bus, address=port, port_numbers=(port,))
    return Stm32F411(serial, bus=bus, address=port, port_numbers=(port,))


def _models(devices: Sequence[UsbDeviceModel | str]) -> list[UsbDeviceModel]:
    models: list[UsbDeviceModel] = []
    for i, dev in enumerate(devices):
        models.append(make_device(dev, port=i + 1) if isinstance(dev, str) else dev)
    return models


def run(
    command: Sequence[str],
    devices: Sequence[UsbDeviceModel | str] = ("stm32f411",),
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    timeout: float | None = None,
) -> int:
    """Run ``command`` under ``umockdev-wrapper`` against simulated ``devices``; its exit status.

    The devices live in this process (so models passed in can be inspected
    afterwards); the GLib main context is iterated while the command runs.
    ``timeout`` (seconds) kills the command and raises :class:`TimeoutError`.
    Raises :class:`UsbdevfsUnavailableError` when umockdev or PyGObject is
    missing; a ``command[0]`` that cannot be found exits with status 127 (as in
    a shell). Without ``umockdev-wrapper`` around the calling process, devices
    that re-enumerate still leave and rejoin the testbed, but no uevents announce
    it (programs that wait for hotplug events need :func:`ensure_wrapper`).
    """
    if isinstance(command, str | bytes) or not command:
        raise ValueError("command must be a non-empty sequence of arguments")
    _require()
    models = _models(devices)
    if not under_wrapper():
        _log.info(
            "usbdevfs: hosting without umockdev-wrapper: no uevents, so programs that wait "
            "for a device to re-enumerate will not see it (call ensure_wrapper() first)"
        )
    with UsbdevfsBridge() as bridge:
        for model in models:
            bridge.add(model)
        child_env = bridge.child_env(env)
        argv = ["umockdev-wrapper", *command]
        _log.debug("usbdevfs: running %s with UMOCKDEV_DIR=%s", argv, bridge.root_dir)
        with subprocess.Popen(argv, env=child_env, cwd=cwd) as proc:
            deadline = None if timeout is None else time.monotonic() + timeout
            while proc.poll() is None:
                if deadline is not None and time.monotonic() > deadline:
                    proc.kill()
                    proc.wait()
                    raise TimeoutError(f"{command[0]} did not finish within {timeout} s")
                bridge.iterate(0.01)
            return proc.returncode


@contextlib.contextmanager
def hosted(
    devices: Sequence[UsbDeviceModel | str] = ("stm32f411",),
) -> Iterator[UsbdevfsBridge]:
    """A bridge hosting ``devices`` with a thread iterating GLib, for in-process clients.

    The process must run under ``umockdev-wrapper`` for its own libusb to see
    the testbed; ``UMOCKDEV_DIR`` is set in ``os.environ`` for the duration.
    """
    with UsbdevfsBridge() as bridge:
        for model in _models(devices):
            bridge.add(model)
        stop = threading.Event()
        thread = threading.Thread(target=bridge.serve, args=(stop,), daemon=True)
        thread.start()
        try:
            yield bridge
        finally:
            stop.set()
            thread.join()


# --------------------------------------------------------------------------- entry point


def ensure_wrapper() -> None:
    """Re-execute this process under ``umockdev-wrapper`` unless it already runs under it.

    Call it first thing in a command-line entry point that hosts a bridge (the
    re-enumeration uevents and in-process libusb clients need the preload
    library). Does not return when it re-executes; raises
    :class:`UsbdevfsUnavailableError` when umockdev is missing.
    """
    if under_wrapper():
        return
    _require()
    wrapper = shutil.which("umockdev-wrapper")
    assert wrapper is not None  # checked by _require()
    argv = [wrapper, sys.executable, *sys.orig_argv[1:]]
    _log.debug("usbdevfs: re-executing under umockdev-wrapper: %s", argv)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(wrapper, argv)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m dfuse.sim.usbdevfs [--device NAME]... -- COMMAND...``: :func:`run` for a shell.

    Re-executes itself under ``umockdev-wrapper`` first (:func:`ensure_wrapper`).
    Exit status: the command's (128+N when killed by signal N), 2 for bad usage,
    3 when the bridge cannot run here.
    """
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m dfuse.sim.usbdevfs",
        description="Run a program against simulated USB DFU devices (Linux, umockdev).",
    )
    parser.add_argument(
        "--device",
        action="append",
        default=[],
        metavar="NAME",
        help=f"simulated board to plug in: {', '.join(_DEVICE_NAMES)} or a part name (repeatable; "
        "default: one stm32f411)",
    )
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND [ARGS...]")
    args = parser.parse_args(argv)
    command = list(args.command)
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        parser.error("give the command to run after --")
    try:
        for name in args.device:
            make_device(name)  # unknown names fail before re-executing
        ensure_wrapper()
        status = run(command, args.device or ["stm32f411"])
    except DfuseError as exc:
        sys.stderr.write(f"dfuse sim run: {exc}\n")
        return 3
    return 128 - status if status < 0 else status


if __name__ == "__main__":
    sys.exit(main())
