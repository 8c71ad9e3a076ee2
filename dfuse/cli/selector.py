"""Device selectors: the ``-d/--device`` strings of the command line.

A selector names which board a command talks to, in the spirit of pyserial's
``serial_for_url``::

    usb:                       any DFU device (an error if there are several)
    usb:0483:df11              by VID:PID (hex)
    usb:serial=3574364C3034    by serial number
    usb:path=1-2.3             by bus path, as dfu-util's -p and Linux sysfs spell it
    usb:0483:df11,serial=…     items combine with commas
    sim:stm32f411              the simulated STM32F411 system bootloader (in this process)
    sim:stm32f411?flash=256k&serial=SIM1&count=3

Short forms in the dfu-util style (``-a ALT``, ``-S SERIAL``, ``-p PATH``) are
merged into the selector with :meth:`DeviceSelector.with_overrides`.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Literal

from dfuse.cli.exitcodes import UsageError

__all__ = ["SIM_MODELS", "SIM_OPTIONS", "DeviceSelector", "parse_int", "parse_size"]

#: Simulated boards the ``sim:`` scheme knows.
SIM_MODELS: tuple[str, ...] = ("stm32f411",)
#: Options a ``sim:`` selector accepts after ``?`` (``key=value`` joined by ``&``).
SIM_OPTIONS: tuple[str, ...] = ("count", "flash", "mode", "serial", "speed")

_VIDPID = re.compile(r"^([0-9a-fA-F]{1,4}):([0-9a-fA-F]{1,4})$")
_SIZE = re.compile(r"^(0[xX][0-9a-fA-F]+|\d+)\s*([kKmM]?)(?:[iI]?[bB])?$")


def parse_int(text: str, *, what: str = "number") -> int:
    """Parse a decimal or ``0x``-prefixed hexadecimal integer (``0x08000000``, ``2048``)."""
    try:
        value = int(text.replace("_", ""), 0)
    except ValueError:
        raise UsageError(
            f"invalid {what} {text!r}: expected a decimal or 0x-prefixed hex number"
        ) from None
    if value < 0:
        raise UsageError(f"invalid {what} {text!r}: must not be negative")
    return value


def parse_size(text: str, *, what: str = "size") -> int:
    """Parse a byte count with an optional K/M multiplier (``512k``, ``0x4000``, ``16KiB``)."""
    match = _SIZE.match(text.strip())
    if not match:
        raise UsageError(
            f"invalid {what} {text!r}: expected a number with an optional K or M suffix"
            " (e.g. 16K, 0x4000)"
        )
    value = int(match.group(1), 0)
    unit = match.group(2).lower()
    return value * {"": 1, "k": 1024, "m": 1024 * 1024}[unit]


@dataclass(frozen=True)
class DeviceSelector:
    """Which device a command should open.

    Attributes:
        scheme: ``"usb"`` for real devices through libusb, ``"sim"`` for a simulated board.
        vid: USB vendor ID to match, or ``None`` for any.
        pid: USB product ID to match, or ``None`` for any.
        serial: serial-number string to match, or ``None``.
        path: bus path (``"1-2.3"``) to match, or ``None``.
        alt: alternate setting, by number or by name, or ``None`` for the default.
        model: the simulated board (``sim:`` only).
        flash_size: the simulated board's flash size in bytes (``sim:`` only; ``None``: default).
        count: how many simulated boards to put on the bus (``sim:`` only).
        speed: ``None`` for virtual time; else real time divided by this factor (``sim:`` only).
        mode: ``"dfu"``: the board is in its bootloader; ``"app"``: it runs an application
            with the DFU run-time interface (``dfuse detach`` switches it) (``sim:`` only).
    """

    scheme: Literal["usb", "sim"] = "usb"
    vid: int | None = None
    pid: int | None = None
    serial: str | None = None
    path: str | None = None
    alt: int | str | None = None
    model: str = "stm32f411"
    flash_size: int | None = None
    count: int = 1
    speed: float | None = None
    mode: Literal["dfu", "app"] = "dfu"

    @classmethod
    def parse(cls, text: str) -> DeviceSelector:
        """Parse a selector string; raise :class:`UsageError` saying what was expected."""
        text = text.strip()
        if _VIDPID.match(text):  # dfu-util style "0483:df11" without a scheme
            return cls._parse_usb(text)
        scheme, sep, rest = text.partition(":")
        if not sep:
            raise UsageError(
                f"invalid device selector {text!r}: expected usb:VID:PID, usb:serial=…,"
                f" usb:path=…, or sim:{SIM_MODELS[0]}"
            )
        scheme = scheme.lower()
        if scheme == "usb":
            return cls._parse_usb(rest)
        if scheme == "sim":
            return cls._parse_sim(rest)
        raise UsageError(
            f"invalid device selector {text!r}: unknown scheme {scheme!r}, expected 'usb' or 'sim'"
        )

    @classmethod
    def _parse_usb(cls, rest: str) -> DeviceSelector:
        selector = cls(scheme="usb")
        for item in filter(None, (part.strip() for part in rest.split(","))):
            key, eq, value = item.partition("=")
            if not eq:
                match = _VIDPID.match(item)
                if not match:
                    raise UsageError(
                        f"invalid USB selector item {item!r}: expected VID:PID in hex"
                        " (0483:df11) or key=value with key serial, path, alt, vid or pid"
                    )
                selector = dataclasses.replace(
                    selector, vid=int(match.group(1), 16), pid=int(match.group(2), 16)
                )
                continue
            key = key.strip().lower()
            value = value.strip()
            if key in ("vid", "pid"):
                if not re.fullmatch(r"[0-9a-fA-F]{1,4}", value):
                    raise UsageError(f"invalid {key} {value!r}: expected 1-4 hex digits")
                if key == "vid":
                    selector = dataclasses.replace(selector, vid=int(value, 16))
                else:
                    selector = dataclasses.replace(selector, pid=int(value, 16))
            elif key in ("serial", "path"):
                if not value:
                    raise UsageError(f"empty {key} in device selector")
                if key == "serial":
                    selector = dataclasses.replace(selector, serial=value)
                else:
                    selector = dataclasses.replace(selector, path=value)
            elif key == "alt":
                selector = dataclasses.replace(selector, alt=_parse_alt(value))
            else:
                raise UsageError(
                    f"unknown USB selector key {key!r}: expected serial, path, alt, vid or pid"
                )
        return selector

    @classmethod
    def _parse_sim(cls, rest: str) -> DeviceSelector:
        model, _, query = rest.partition("?")
        model = model.strip().lower() or SIM_MODELS[0]
        if model not in SIM_MODELS:
            raise UsageError(
                f"unknown simulated board {model!r}: expected one of {', '.join(SIM_MODELS)}"
            )
        selector = cls(scheme="sim", model=model)
        for item in filter(None, query.split("&")):
            key, eq, value = item.partition("=")
            key = key.strip().lower()
            if not eq:
                raise UsageError(f"invalid sim option {item!r}: expected key=value")
            if key == "flash":
                selector = dataclasses.replace(
                    selector, flash_size=parse_size(value, what="flash size")
                )
            elif key == "serial":
                selector = dataclasses.replace(selector, serial=value)
            elif key == "count":
                count = parse_int(value, what="board count")
                if not 1 <= count <= 64:
                    raise UsageError(f"invalid board count {value!r}: expected 1 to 64")
                selector = dataclasses.replace(selector, count=count)
            elif key == "speed":
                try:
                    speed = float(value)
                except ValueError:
                    speed = 0.0
                if not speed > 0:
                    raise UsageError(f"invalid speed {value!r}: expected a positive number")
                selector = dataclasses.replace(selector, speed=speed)
            elif key == "alt":
                selector = dataclasses.replace(selector, alt=_parse_alt(value))
            elif key == "mode":
                if value == "dfu":
                    selector = dataclasses.replace(selector, mode="dfu")
                elif value == "app":
                    selector = dataclasses.replace(selector, mode="app")
                else:
                    raise UsageError(f"invalid sim mode {value!r}: expected dfu or app")
            else:
                raise UsageError(
                    f"unknown sim option {key!r}: expected one of {', '.join(SIM_OPTIONS)}, alt"
                )
        return selector

    def with_overrides(
        self,
        *,
        alt: int | str | None = None,
        serial: str | None = None,
        path: str | None = None,
    ) -> DeviceSelector:
        """Return a copy with the dfu-util style short options (``-a``, ``-S``, ``-p``) applied."""
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
                opts.append(f"flash={self.flash_size // 1024}k")
            if self.serial is not None:
                opts.append(f"serial={self.serial}")
            if self.count != 1:
                opts.append(f"count={self.count}")
            if self.speed is not None:
                opts.append(f"speed={self.speed:g}")
            if self.alt is not None:
                opts.append(f"alt={self.alt}")
            if self.mode != "dfu":
                opts.append(f"mode={self.mode}")
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


def _parse_alt(value: str) -> int | str:
    """An alternate setting: a number, or a name (``"@Option Bytes"`` or ``"Option Bytes"``)."""
    value = value.strip()
    if not value:
        raise UsageError("empty alternate setting: expected a number or a name")
    if value.isdigit():
        return int(value)
    return value


def parse_alt(value: str) -> int | str:
    """Parse the ``-a/--alt`` option: a number, or an alternate-setting name."""
    return _parse_alt(value)
