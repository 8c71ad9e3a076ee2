"""Device selectors: name a board with a string, as pyserial's ``serial_for_url`` does.

A selector says which DFU device to talk to, real or simulated::

    usb:                       any DFU device (an error if there are several)
    usb:0483:df11              by VID:PID (hex); "0483:df11" alone works too
    usb:serial=3574364C3034    by serial number
    usb:path=1-2.3             by bus path, as dfu-util's -p and Linux sysfs spell it
    usb:0483:df11,serial=…     items combine with commas (also vid=, pid=, alt=)
    sim:stm32f411              the simulated STM32F411 system bootloader (in this process)
    sim:stm32l476              any part of the part database (``dfuse sim parts``)
    sim:stm32f411?flash=256k&serial=SIM1&count=3&mode=app&speed=10
    sim:stm32f411?state=board.json   flash contents kept in a file between commands
    sim:stm32f411?boards=8&arrive=0.5    8 boards plugged in one by one, every 0.5 s

``sim:`` options: ``flash`` (STM32F411 only: 256k or 512k), ``state`` (a JSON file the
board loads at start and saves whenever the host lets go of it, so ``flash`` then ``verify``
in two commands see the same memory; one board only), ``serial`` (of the board; with ``count`` the
boards are numbered ``SERIAL01``, ``SERIAL02``, ...), ``count`` (1-64 boards on one bus),
``mode`` (``dfu``: in the bootloader; ``app``: running an application with a DFU
run-time interface, which :meth:`~dfuse.device.DfuDevice.detach` switches),
``speed`` (real time sped up by this factor, :class:`~dfuse.clock.ScaledClock`; default:
virtual time, nothing sleeps), ``alt``, and ``arrive`` (the boards are not on the bus
at the start: board *n* is plugged in at *n* x ``arrive`` seconds of the bus's clock,
:meth:`dfuse.sim.SimBackend.schedule`). ``boards`` is another name for ``count``.

>>> with open_device("sim:stm32f411") as dev:
...     dev.info.describe()
"0483:df11 path=1-1 serial='3276347F3034' bcdDevice=2200 dfu mode"
>>> str(DeviceSelector.parse("usb:0483:DF11,serial=ABC"))
'usb:0483:df11,serial=ABC'

:func:`bench` gives the whole picture (the pyusb backend, the simulated boards, the
clock) for code that inspects the boards or lets them run after the host lets go.
"""

from __future__ import annotations

import dataclasses
import math
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from dfuse.clock import Clock, RealClock, ScaledClock, VirtualClock
from dfuse.device import DfuDevice
from dfuse.errors import SelectorError
from dfuse.trace.recorder import TraceRecorder, current_recorder
from dfuse.transport.base import DeviceInfo, DeviceMode
from dfuse.transport.discovery import clock_for, find_devices, select_device, wait_for
from dfuse.transport.pyusb import PyUsbTransport, get_backend

if TYPE_CHECKING:
    from dfuse.sim import RomBootloader

__all__ = [
    "SIM_DEFAULT_MODEL",
    "SIM_FLASH_SIZES",
    "SIM_OPTIONS",
    "Bench",
    "DeviceSelector",
    "bench",
    "list_devices",
    "open_device",
    "parse_alt",
    "parse_size",
    "sim_bench",
    "sim_boards",
    "sim_models",
    "wait_for_device",
]

#: The default simulated board (``sim:`` alone).
SIM_DEFAULT_MODEL = "stm32f411"
#: The names that select the STM32F411 board (:class:`dfuse.sim.Stm32F411`, which keeps its
#: historical default: no first-GETSTATUS errFIRMWARE); every other part name builds
#: :func:`dfuse.sim.board` (the part's row, quirks on).
_F411_NAMES = ("stm32f411", "stm32f411xe", "stm32f411xc")
#: Options a ``sim:`` selector accepts after ``?`` (``key=value`` joined by ``&``).
SIM_OPTIONS: tuple[str, ...] = (
    "alt",
    "count",
    "flash",
    "mode",
    "serial",
    "speed",
    "arrive",
    "boards",
    "state",
)
#: Flash sizes of the simulated STM32F411 (the xC and xE parts).
SIM_FLASH_SIZES: tuple[int, ...] = (256 * 1024, 512 * 1024)
#: Serial number of the first simulated board (the simulator's default).
SIM_SERIAL = "3276347F3034"
_MAX_BOARDS = 64

_VIDPID = re.compile(r"^([0-9a-fA-F]{1,4}):([0-9a-fA-F]{1,4})$")
_HEX16 = re.compile(r"^[0-9a-fA-F]{1,4}$")
_SIZE = re.compile(r"^(0[xX][0-9a-fA-F]{1,16}|[0-9]{1,20})\s*([kKmM]?)(?:[iI]?[bB])?$")
#: A decimal number as a selector writes it: ASCII digits only, few enough for int().
_NUMBER = re.compile(r"^[0-9]{1,6}$")
_MAX_ALT = 255
_EXPECTED_SELECTOR = (
    f"usb:VID:PID, usb:serial=…, usb:path=…, or sim:{SIM_DEFAULT_MODEL} (with ?key=value options)"
)


def sim_models() -> tuple[str, ...]:
    """Every name the ``sim:`` scheme takes: each part of :mod:`dfuse.parts`, by name and
    alias (loaded on first use)."""
    from dfuse.parts import names

    return names()


if TYPE_CHECKING:
    SIM_MODELS: tuple[str, ...]


def __getattr__(name: str) -> object:
    if name == "SIM_MODELS":  # the part table is loaded on first use, not at import
        return sim_models()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def parse_size(text: str, *, what: str = "size") -> int:
    """A byte count with an optional K/M multiplier (``512k``, ``0x4000``, ``16KiB``).

    >>> parse_size("16K"), parse_size("0x4000"), parse_size("1MiB")
    (16384, 16384, 1048576)

    Raises :class:`~dfuse.errors.SelectorError` (a ``ValueError``) naming ``what``.
    """
    match = _SIZE.match(text.strip())
    if not match:
        raise SelectorError(
            f"invalid {what}",
            text=text,
            expected="a number with an optional K or M suffix (e.g. 16K, 0x4000)",
        )
    unit = match.group(2).lower()
    digits = match.group(1)
    number = int(digits[2:], 16) if digits[:2].lower() == "0x" else int(digits, 10)  # "007"
    return number * {"": 1, "k": 1024, "m": 1024 * 1024}[unit]


def parse_alt(value: str) -> int | str:
    """An alternate setting: a number (0-255, ASCII digits), or a name (``"@Option Bytes"``
    or ``"Option Bytes"``).

    >>> parse_alt("1"), parse_alt(" Option Bytes ")
    (1, 'Option Bytes')
    """
    value = value.strip()
    if not value:
        raise SelectorError("empty alternate setting", text=value, expected="a number or a name")
    if not (value.isascii() and value.isdigit()):
        return value
    if not _NUMBER.match(value) or int(value) > _MAX_ALT:
        raise SelectorError(
            "invalid alternate setting number", text=value, expected=f"0 to {_MAX_ALT} or a name"
        )
    return int(value)


def _size_text(size: int) -> str:
    return f"{size // 1024}k" if size % 1024 == 0 else str(size)


def _speed_text(speed: float) -> str:
    short = f"{speed:g}"
    return short if float(short) == speed else repr(speed)


@dataclass(frozen=True)
class DeviceSelector:
    """Which device to open, parsed from a selector string (:meth:`parse`; ``str()`` gives
    the string back).

    Attributes:
        scheme: ``"usb"`` for real devices through libusb, ``"sim"`` for a simulated board.
        vid: USB vendor ID to match, or ``None`` for any.
        pid: USB product ID to match, or ``None`` for any.
        serial: serial-number string to match (``sim:``: the serial the board gets), or ``None``.
        path: bus path (``"1-2.3"``) to match, or ``None``.
        alt: alternate setting, by number or by name, or ``None`` for the default.
        model: the simulated board, a part name (``sim:`` only; :func:`sim_models`).
        flash_size: the simulated STM32F411's flash size in bytes (``sim:`` only; ``None``:
            the part's own).
        state: a JSON file holding the simulated board's memories between commands
            (``sim:`` only, one board).
        count: how many simulated boards to put on the bus (``sim:`` only).
        speed: ``None`` for virtual time; else real time sped up by this factor (``sim:`` only).
        mode: ``"dfu"``: the board is in its bootloader; ``"app"``: it runs an application
            with the DFU run-time interface (``sim:`` only).
        arrive: ``None``: the boards are on the bus from the start; else board *n*
            (1, 2, ...) is plugged in at *n* x ``arrive`` clock seconds (``sim:`` only).
        wait: ``None``: opening fails at once when no device matches; else wait up to this
            many seconds for one to appear (``math.inf``: forever). Not part of the string.

    Raises:
        ValueError: a field out of range when built directly (:meth:`parse` raises
            :class:`~dfuse.errors.SelectorError`, also a ``ValueError``, first).
    """

    scheme: Literal["usb", "sim"] = "usb"
    vid: int | None = None
    pid: int | None = None
    serial: str | None = None
    path: str | None = None
    alt: int | str | None = None
    model: str = SIM_DEFAULT_MODEL
    flash_size: int | None = None
    count: int = 1
    speed: float | None = None
    mode: Literal["dfu", "app"] = "dfu"
    arrive: float | None = None
    state: str | None = None

    def __post_init__(self) -> None:
        if self.scheme not in ("usb", "sim"):
            raise ValueError(f"scheme must be 'usb' or 'sim', got {self.scheme!r}")
        for name in ("vid", "pid"):
            value = getattr(self, name)
            if value is not None and not 0 <= value <= 0xFFFF:
                raise ValueError(f"{name} must be a 16-bit number, got {value}")
        if self.model != SIM_DEFAULT_MODEL and self.model not in sim_models():
            raise ValueError(f"model must be one of {', '.join(sim_models())}, got {self.model!r}")
        if not 1 <= self.count <= _MAX_BOARDS:
            raise ValueError(f"count must be 1 to {_MAX_BOARDS}, got {self.count}")
        if self.speed is not None and not (self.speed > 0 and math.isfinite(self.speed)):
            raise ValueError(f"speed must be a positive finite number, got {self.speed}")
        if self.flash_size is not None and self.flash_size not in SIM_FLASH_SIZES:
            raise ValueError(f"flash_size must be 256 KiB or 512 KiB, got {self.flash_size}")
        if self.flash_size is not None and self.model not in _F411_NAMES:
            raise ValueError(f"flash_size is for the STM32F411 only, not {self.model}")
        if self.state is not None and self.count != 1:
            raise ValueError("a state file holds one board: state needs count=1")
        if self.mode not in ("dfu", "app"):
            raise ValueError(f"mode must be 'dfu' or 'app', got {self.mode!r}")
        if self.arrive is not None and not (self.arrive >= 0 and math.isfinite(self.arrive)):
            raise ValueError(f"arrive must be a non-negative finite number, got {self.arrive}")
        if isinstance(self.alt, int) and not 0 <= self.alt <= _MAX_ALT:
            raise ValueError(f"alt must be 0 to {_MAX_ALT} or a name, got {self.alt}")

    @property
    def is_sim(self) -> bool:
        """Whether the selector names simulated boards."""
        return self.scheme == "sim"

    @classmethod
    def parse(cls, text: str | DeviceSelector) -> DeviceSelector:
        """Parse a selector string (a :class:`DeviceSelector` is returned as it is).

        Raises :class:`~dfuse.errors.SelectorError` naming the offending text and what
        was expected there.
        """
        if isinstance(text, DeviceSelector):
            return text
        text = text.strip()
        if _VIDPID.match(text):  # dfu-util style "0483:df11" without a scheme
            return cls._parse_usb(text)
        scheme, sep, rest = text.partition(":")
        if not sep:
            raise SelectorError("invalid device selector", text=text, expected=_EXPECTED_SELECTOR)
        scheme = scheme.lower()
        if scheme == "usb":
            return cls._parse_usb(rest)
        if scheme == "sim":
            return cls._parse_sim(rest)
        raise SelectorError(
            f"invalid device selector {text!r}: unknown scheme",
            text=scheme,
            expected="'usb' or 'sim'",
        )

    @classmethod
    def _parse_usb(cls, rest: str) -> DeviceSelector:
        selector = cls(scheme="usb")
        for item in filter(None, (part.strip() for part in rest.split(","))):
            key, eq, value = item.partition("=")
            if not eq:
                match = _VIDPID.match(item)
                if not match:
                    raise SelectorError(
                        "invalid USB selector item",
                        text=item,
                        expected="VID:PID in hex (0483:df11) or key=value with key serial,"
                        " path, alt, vid or pid",
                    )
                selector = dataclasses.replace(
                    selector, vid=int(match.group(1), 16), pid=int(match.group(2), 16)
                )
                continue
            key = key.strip().lower()
            value = value.strip()
            if key in ("vid", "pid"):
                if not _HEX16.match(value):
                    raise SelectorError(f"invalid {key}", text=value, expected="1-4 hex digits")
                ids: dict[str, Any] = {key: int(value, 16)}
                selector = dataclasses.replace(selector, **ids)
            elif key in ("serial", "path"):
                if not value:
                    raise SelectorError(
                        f"empty {key} in device selector", text=item, expected=f"{key}=VALUE"
                    )
                where: dict[str, Any] = {key: value}
                selector = dataclasses.replace(selector, **where)
            elif key == "alt":
                selector = dataclasses.replace(selector, alt=parse_alt(value))
            else:
                raise SelectorError(
                    "unknown USB selector key",
                    text=key,
                    expected="serial, path, alt, vid or pid",
                )
        return selector

    @classmethod
    def _parse_sim(cls, rest: str) -> DeviceSelector:
        model, _, query = rest.partition("?")
        model = model.strip().lower() or SIM_DEFAULT_MODEL
        if model not in sim_models():
            raise SelectorError(
                "unknown simulated board",
                text=model,
                expected=f"one of {', '.join(sim_models())} (dfuse sim parts)",
            )
        options: dict[str, Any] = {}
        for item in filter(None, query.split("&")):
            key, eq, value = item.partition("=")
            key = key.strip().lower()
            if not eq:
                raise SelectorError("invalid sim option", text=item, expected="key=value")
            options.update(_sim_option(key, value.strip()))
        if "flash_size" in options and model not in _F411_NAMES:
            raise SelectorError(
                "the flash option is for the STM32F411 only",
                text=model,
                expected="sim:stm32f411?flash=256k (other parts have their own size)",
            )
        if "state" in options and options.get("count", 1) != 1:
            raise SelectorError(
                "a state file holds one board", text=str(options["count"]), expected="count=1"
            )
        return cls(scheme="sim", model=model, **options)

    def with_overrides(
        self,
        *,
        alt: int | str | None = None,
        serial: str | None = None,
        path: str | None = None,
    ) -> DeviceSelector:
        """A copy with dfu-util style short options (``-a``, ``-S``, ``-p``) applied
        (``None`` keeps the selector's own value)."""
        return dataclasses.replace(
            self,
            alt=self.alt if alt is None else alt,
            serial=self.serial if serial is None else serial,
            path=self.path if path is None else path,
        )

    def __str__(self) -> str:
        if self.scheme == "sim":
            opts = []
            if self.flash_size is not None:
                opts.append(f"flash={_size_text(self.flash_size)}")
            if self.serial is not None:
                opts.append(f"serial={self.serial}")
            if self.count != 1:
                opts.append(f"count={self.count}")
            if self.speed is not None:
                opts.append(f"speed={_speed_text(self.speed)}")
            if self.alt is not None:
                opts.append(f"alt={self.alt}")
            if self.mode != "dfu":
                opts.append(f"mode={self.mode}")
            if self.arrive is not None:
                opts.append(f"arrive={_speed_text(self.arrive)}")
            if self.state is not None:
                opts.append(f"state={self.state}")
            return f"sim:{self.model}" + ("?" + "&".join(opts) if opts else "")
        items = []
        if self.vid is not None and self.pid is not None:
            items.append(f"{self.vid:04x}:{self.pid:04x}")
        elif self.vid is not None:
            items.append(f"vid={self.vid:04x}")
        elif self.pid is not None:
            items.append(f"pid={self.pid:04x}")
        for key in ("serial", "path", "alt"):
            value = getattr(self, key)
            if value is not None:
                items.append(f"{key}={value}")
        return "usb:" + ",".join(items)


def _sim_option(key: str, value: str) -> dict[str, Any]:
    """One ``sim:`` option as the :class:`DeviceSelector` field it sets."""
    if key == "flash":
        size = parse_size(value, what="flash size")
        if size not in SIM_FLASH_SIZES:
            raise SelectorError("invalid flash size", text=value, expected="256k or 512k")
        return {"flash_size": size}
    if key == "serial":
        if not value:
            raise SelectorError("empty serial in sim option", text=value, expected="serial=VALUE")
        return {"serial": value}
    if key in ("count", "boards"):
        if not _NUMBER.match(value) or not 1 <= int(value) <= _MAX_BOARDS:
            raise SelectorError("invalid board count", text=value, expected=f"1 to {_MAX_BOARDS}")
        return {"count": int(value)}
    if key == "speed":
        try:
            speed = float(value)
        except ValueError:
            speed = math.nan
        if not (speed > 0 and math.isfinite(speed)):
            raise SelectorError("invalid speed", text=value, expected="a positive number")
        return {"speed": speed}
    if key == "alt":
        return {"alt": parse_alt(value)}
    if key == "arrive":
        try:
            arrive = float(value)
        except ValueError:
            arrive = math.nan
        if not (arrive >= 0 and math.isfinite(arrive)):
            raise SelectorError(
                "invalid arrival interval", text=value, expected="a number of seconds >= 0"
            )
        return {"arrive": arrive}
    if key == "mode":
        if value not in ("dfu", "app"):
            raise SelectorError("invalid sim mode", text=value, expected="dfu or app")
        return {"mode": value}
    if key == "state":
        if not value:
            raise SelectorError("empty state file", text=value, expected="state=PATH.json")
        return {"state": value}
    raise SelectorError("unknown sim option", text=key, expected=f"one of {', '.join(SIM_OPTIONS)}")


@dataclass(frozen=True)
class Bench:
    """What a selector stands for: the pyusb backend to search and the simulated boards on it.

    Attributes:
        selector: which of the devices on the backend to find and open.
        backend: ``None`` for the system's libusb; a :class:`~dfuse.sim.SimBackend` for ``sim:``.
        boards: the simulated bootloaders (empty for ``usb:``), to inspect.
        clock: the clock the devices live on and the host waits on (``None``: the default).
    """

    selector: DeviceSelector
    backend: object | None = None
    boards: tuple[RomBootloader, ...] = ()
    clock: Clock | None = None
    wait: float | None = None

    def find(self, *, mode: DeviceMode | None = None) -> list[DeviceInfo]:
        """Every DFU device (DFU and run-time mode, or only ``mode``) the selector
        matches, by bus path; with :attr:`wait` set, first wait for at least one. (An
        ``enumerate`` event in the trace of an enclosing :func:`dfuse.tracing` block.)"""
        waiting = self.wait is not None
        found = self.wait_for(self.wait, mode=mode) if waiting else self._find(mode)
        recorder = current_recorder()
        if recorder is not None:
            recorder.start(self.clock if self.clock is not None else RealClock())
            if recorder.selector is None:
                recorder.selector = str(self.selector)
            recorder.enumerated(found)
        return found

    def _find(self, mode: DeviceMode | None) -> list[DeviceInfo]:
        sel = self.selector
        return find_devices(
            vid=sel.vid,
            pid=sel.pid,
            serial=sel.serial,
            path=sel.path,
            backend=self.backend,
            mode=mode,
        )

    def wait_for(
        self,
        timeout: float | None = None,
        *,
        cancel: threading.Event | None = None,
        mode: DeviceMode | None = None,
    ) -> list[DeviceInfo]:
        """Wait until at least one device matches (:func:`~dfuse.transport.discovery.wait_for`:
        hotplug events on a simulated bus, polling on libusb) and return them.

        Raises :class:`~dfuse.errors.DeviceNotFoundError` after ``timeout`` clock seconds
        (``None``: never) and :class:`~dfuse.errors.CancelledError` when ``cancel`` is set.
        """
        return wait_for(
            lambda: self._find(mode),
            backend=self.backend,
            clock=self.clock,
            timeout=timeout,
            cancel=cancel,
            what=f"a DFU device matching {self.selector}",
        )

    def open(
        self, *, alt: int | str | None = None, trace: TraceRecorder | None = None
    ) -> DfuDevice:
        """Open the one device the selector matches, on ``alt`` (default: the selector's);
        with :attr:`wait` set, wait for one to appear first.

        ``trace`` records the session (default: the recorder of the enclosing
        :func:`dfuse.tracing` block, if any).

        Raises :class:`~dfuse.errors.DeviceNotFoundError` when none or several match.
        """
        sel = self.selector
        if self.wait is not None:
            self.wait_for(self.wait)
        recorder = trace if trace is not None else current_recorder()
        if recorder is not None:
            return self._open_traced(recorder, sel.alt if alt is None else alt)
        return DfuDevice.open(
            vid=sel.vid,
            pid=sel.pid,
            serial=sel.serial,
            path=sel.path,
            alt=sel.alt if alt is None else alt,
            backend=self.backend,
            clock=self.clock,
        )

    def _open_traced(self, recorder: TraceRecorder, alt: int | str | None) -> DfuDevice:
        """:meth:`DfuDevice.open <dfuse.device.DfuDevice.open>` with the transport wrapped
        in a :class:`~dfuse.trace.recorder.TracingTransport` (the trace hook)."""
        backend = get_backend(self.backend)
        clock = clock_for(backend, self.clock)
        recorder.start(clock)
        sel = self.selector
        if recorder.selector is None:
            recorder.selector = str(sel)
        found = find_devices(
            vid=sel.vid, pid=sel.pid, serial=sel.serial, path=sel.path, backend=backend
        )
        recorder.enumerated(found)
        info = select_device(found, str(sel))
        transport = recorder.wrap(PyUsbTransport.open(info, backend), clock)
        try:
            return DfuDevice(transport, clock, alt=alt)
        except BaseException:
            transport.close()
            raise

    def settle(self, until: Callable[[], bool] | None = None, *, timeout: float = 2.0) -> bool:
        """Let simulated boards run until ``until()`` holds (default: none is busy any
        more, e.g. done manifesting after a leave), at most ``timeout`` seconds of clock
        time (:meth:`dfuse.sim.SimBackend.run_until`). Real boards need no help: this
        returns ``until()`` at once."""
        boards = self.boards

        def idle() -> bool:
            return not any(board.busy for board in boards)

        check = until if until is not None else idle
        from dfuse.sim import SimBackend

        if not isinstance(self.backend, SimBackend):
            return check()
        return self.backend.run_until(check, timeout=timeout)


def sim_boards(
    selector: DeviceSelector, clock: Clock | None = None, *, first_port: int = 1
) -> tuple[RomBootloader, ...]:
    """The simulated bootloaders a ``sim:`` selector describes, on ports ``first_port``,
    ``first_port + 1``, ... (serials ``SERIAL01``, ``SERIAL02``, ... when ``count > 1``).

    The STM32F411 names build :class:`dfuse.sim.Stm32F411` (its historical default: no
    first-GETSTATUS errFIRMWARE); every other part :func:`dfuse.sim.board` (its row, quirks
    on)."""
    from dfuse.sim import Stm32F411, board

    boards: list[RomBootloader] = []
    for i in range(selector.count):
        if selector.serial is not None:
            serial = selector.serial if selector.count == 1 else f"{selector.serial}{i + 1:02d}"
        else:
            serial = SIM_SERIAL if selector.count == 1 else f"{SIM_SERIAL[:-2]}{i + 1:02d}"
        where: dict[str, Any] = {
            "clock": clock,
            "address": first_port + i,
            "port_numbers": (first_port + i,),
            "state_file": selector.state,
        }
        if selector.model in _F411_NAMES:
            default = SIM_FLASH_SIZES[0] if selector.model == "stm32f411xc" else SIM_FLASH_SIZES[-1]
            size = selector.flash_size or default
            boards.append(Stm32F411(serial=serial, flash_size=size, **where))
        else:
            boards.append(board(selector.model, serial=serial, **where))
    return tuple(boards)


def sim_bench(
    base: DeviceSelector, search: DeviceSelector | None = None, *, clock: Clock | None = None
) -> Bench:
    """New simulated boards as ``base`` describes them, on a new bus, searched with
    ``search`` (default: ``base``; its serial then names the boards, so with ``count > 1``
    it does not filter). ``clock`` defaults to a :class:`~dfuse.clock.VirtualClock`, or a
    :class:`~dfuse.clock.ScaledClock` when the selector has a ``speed``."""
    from dfuse.sim import SimBackend, Stm32F411App
    from dfuse.sim.usbmodel import UsbDeviceModel

    if not base.is_sim:
        raise ValueError(f"sim_bench needs a sim: selector, got {base}")
    if clock is None:
        clock = VirtualClock() if base.speed is None else ScaledClock(base.speed)
    boards = sim_boards(base, clock)
    models: list[UsbDeviceModel] = []
    arrivals: list[UsbDeviceModel] = []
    for board in boards:
        if base.mode == "app":
            app = Stm32F411App(board.serial, bootloader=board, clock=clock)
            models.append(app)
            arrivals.append(app)
        else:
            arrivals.append(board)
        models.append(board)
    if base.arrive is None:
        backend = SimBackend(models, clock=clock)
    else:
        backend = SimBackend((), clock=clock)
        for n, model in enumerate(arrivals, start=1):
            backend.schedule(model, clock.now + n * base.arrive)
    found = search if search is not None else base
    if found.serial == base.serial and base.count > 1:
        found = dataclasses.replace(found, serial=None)
    return Bench(found, backend, boards, clock)


def bench(
    selector: str | DeviceSelector, *, clock: Clock | None = None, backend: object = None
) -> Bench:
    """The :class:`Bench` for a selector: for ``usb:`` the system's libusb (or ``backend``,
    any pyusb backend), for ``sim:`` new simulated boards (:func:`sim_bench`).

    >>> b = bench("sim:stm32f411?count=2")
    >>> " ".join(info.serial or "?" for info in b.find())
    '3276347F3001 3276347F3002'
    """
    sel = DeviceSelector.parse(selector)
    if sel.is_sim:
        if backend is not None:
            raise ValueError("a sim: selector builds its own backend; pass backend with usb:")
        return sim_bench(sel, clock=clock)
    return Bench(sel, backend, (), clock)


def open_device(
    selector: str | DeviceSelector = "usb:",
    *,
    alt: int | str | None = None,
    clock: Clock | None = None,
    backend: object = None,
    trace: TraceRecorder | None = None,
) -> DfuDevice:
    """Open the one DFU device a selector names, brought to dfuIDLE: ``dfuse.open``.

    ``open_device("usb:0483:df11")`` opens a real board (as
    :meth:`DfuDevice.open(vid=0x0483, pid=0xDF11) <dfuse.device.DfuDevice.open>` does);
    ``open_device("sim:stm32f411")`` a new simulated one, so code written against a
    selector runs unchanged on the simulator. ``alt`` overrides the selector's ``alt``;
    ``backend`` is a pyusb backend for ``usb:`` selectors. ``trace`` records every
    request of the session (:class:`~dfuse.trace.recorder.TraceRecorder`; default: the
    recorder of the enclosing :func:`dfuse.tracing` block, if any).

    Raises:
        SelectorError: the selector string is malformed.
        DeviceNotFoundError: no device matches, or several do (listing them).
    """
    return bench(selector, clock=clock, backend=backend).open(alt=alt, trace=trace)


def wait_for_device(
    selector: str | DeviceSelector = "usb:",
    timeout: float | None = None,
    *,
    alt: int | str | None = None,
    clock: Clock | None = None,
    backend: object = None,
    cancel: threading.Event | None = None,
) -> DfuDevice:
    """Wait for a DFU device the selector names to appear, then open it (as
    :func:`open_device` does).

    ``timeout`` is in seconds of the bus's clock (``None``: wait forever). Uses hotplug
    events where the backend offers them (the simulator), else polls enumeration
    (pyusb has no hotplug API). ``cancel`` (a :class:`threading.Event`) stops the wait.

    >>> with wait_for_device("sim:stm32f411?arrive=2", timeout=5) as dev:
    ...     dev.info.serial
    '3276347F3034'

    Raises:
        DeviceNotFoundError: none appeared within ``timeout``, or several match.
        CancelledError: ``cancel`` was set while waiting.
    """
    found = bench(selector, clock=clock, backend=backend)
    found.wait_for(timeout, cancel=cancel)
    return found.open(alt=alt)


def list_devices(
    selector: str | DeviceSelector = "usb:", *, backend: object = None
) -> list[DeviceInfo]:
    """Every DFU device a selector matches (``dfuse list``), sorted by bus path: ``dfuse.list``.

    >>> " ".join(d.path for d in list_devices("sim:stm32f411?count=3"))
    '1-1 1-2 1-3'
    """
    return bench(selector, backend=backend).find()
