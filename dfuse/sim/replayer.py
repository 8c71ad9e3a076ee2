"""Replay a trace against a simulated board and report where the simulator disagrees.

>>> from dfuse.sim import replay                           # doctest: +SKIP
>>> report = replay("session.jsonl")                       # doctest: +SKIP
>>> report.ok, report.divergences[:3]                      # doctest: +SKIP

The trace's host requests are sent, in order and at the trace's times (on a virtual
clock), to a fresh simulated board of the part the trace was recorded on (or the one
named with ``part=``), through :class:`~dfuse.sim.SimBackend`'s pyusb backend interface,
exactly as the host reached the simulated board when it recorded a trace of one. Every
reply is compared with the recorded one:

* GETSTATUS: bStatus, bState and iString exactly; bwPollTimeout within a tolerance;
* other IN requests: the data exactly (UPLOAD of memory can be left out: the simulated
  board's memory starts erased, the real one's did not);
* failures: a stall, a timeout, a vanished device, ... as an error of the same kind.

Re-enumerations are waited for (on the board's own timing) and resets are performed.
A partial trace (built from a log) compares only what the log shows.

This module reads traces with :mod:`dfuse.trace.format` and knows nothing of the host's
transport or device layers.
"""

from __future__ import annotations

import array
import contextlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from usb.core import USBError

from dfuse.clock import VirtualClock
from dfuse.errors import UsageError
from dfuse.parts import identify as identify_part
from dfuse.parts import parts_by_name, rom_version
from dfuse.protocol.constants import Request, State, Status
from dfuse.sim.backend import SimBackend
from dfuse.sim.rom import ENTRIES, RomBootloader, timing_of
from dfuse.sim.stm32f411 import Stm32F411, Stm32F411App
from dfuse.sim.usbmodel import UsbDeviceModel
from dfuse.trace.format import (
    LIBUSB_ERRORS,
    Trace,
    TraceEvent,
    TraceTransfer,
    read_trace,
)

__all__ = [
    "BOARD_OPTIONS",
    "Divergence",
    "ReplayReport",
    "known_parts",
    "make_board",
    "parse_part",
    "replay",
]

#: Default bwPollTimeout tolerance: this many milliseconds ...
POLL_TOLERANCE_MS = 10
#: ... or this fraction of the recorded value, whichever is larger.
POLL_TOLERANCE = 0.5
#: How long (clock time) a re-enumeration is waited for.
REENUMERATE_WAIT_S = 10.0

_GETSTATUS_SIZE = 6
_STANDARD_IN = 0x80
_SET_INTERFACE = 0x0B
_GET_DESCRIPTOR = 0x06


# --------------------------------------------------------------------------- parts


def known_parts() -> tuple[str, ...]:
    """The parts the simulator can build a board of, for :func:`replay`'s ``part``
    (the names and aliases of :data:`dfuse.parts`)."""
    return tuple(sorted(parts_by_name()))


def _sim_model(selector: str | None) -> str | None:
    """The part a ``sim:PART?…`` selector names (``None`` for other selectors)."""
    if selector is None or not selector.startswith("sim:"):
        return None
    model = selector[4:].partition("?")[0].strip().lower()
    return model or None


#: The board options a part given to :func:`replay` may carry (``"stm32f429?entry=reset"``):
#: ``rom`` (the ROM version's bcdDevice, hex), ``entry`` (power_on or reset: how the ROM
#: was entered) and ``seed`` (the board's random draws, e.g. which busy GETSTATUS an
#: L4-class ROM stalls) and ``spread`` (0..1: how far operation times spread from the
#: datasheet's typical towards its maximum; the board's default is 0.1).
BOARD_OPTIONS: tuple[str, ...] = ("rom", "entry", "seed", "spread")


def parse_part(spec: str) -> tuple[str, dict[str, Any]]:
    """A part for :func:`replay` as its name and board options: ``"stm32f429?entry=reset"``
    is ``("stm32f429", {"entry": "reset"})`` (options joined by ``&``, see
    :data:`BOARD_OPTIONS`).

    Raises:
        UsageError: an unknown option or a bad value (the message says what is expected).
    """
    name, _, query = spec.partition("?")
    options: dict[str, Any] = {}
    for item in filter(None, query.split("&")):
        key, eq, value = item.partition("=")
        key, value = key.strip().lower(), value.strip()
        if not eq or key not in BOARD_OPTIONS:
            raise UsageError(
                f"board option {item!r} of part {spec!r}: expected key=value with key one of"
                f" {', '.join(BOARD_OPTIONS)}"
            )
        if key == "entry":
            if value not in ENTRIES:
                raise UsageError(f"entry={value!r}: expected one of {', '.join(ENTRIES)}")
            options["entry"] = value
            continue
        if key == "spread":
            try:
                spread = float(value)
            except ValueError:
                spread = -1.0
            if not 0.0 <= spread <= 1.0:
                raise UsageError(f"spread={value!r}: expected a number from 0 to 1")
            options["spread"] = spread
            continue
        try:
            options[key] = int(value, 16) if key == "rom" else int(value, 10)
        except ValueError:
            what = "a bcdDevice in hex (2100)" if key == "rom" else "a decimal integer"
            raise UsageError(f"{key}={value!r}: expected {what}") from None
    return name.strip(), options


def _same_row(name: str, *others: str) -> bool:
    rows = parts_by_name()
    row = rows.get(name.lower())
    return row is not None and any(rows.get(o) is row for o in others)


def make_board(
    part: str,
    device: Mapping[str, Any] | None,
    clock: VirtualClock,
    *,
    selector: str | None = None,
    options: Mapping[str, Any] | None = None,
) -> list[UsbDeviceModel]:
    """The simulated board of ``part`` configured like the trace's ``device`` record
    (serial number, flash size, run-time mode): the models to put on the bus, the one
    the trace starts with first. The one place that maps part names to boards.

    A trace recorded on ``sim:stm32f411`` (``selector``) gets the board that selector
    builds (:class:`~dfuse.sim.Stm32F411`, as it always was); every other trace gets the
    part row's ROM (:func:`dfuse.sim.board`, its quirks on): the ROM version whose
    bcdDevice the trace's device reports (:func:`dfuse.parts.rom_version`) where the part
    has several, or the one ``options["rom"]`` names; ``options`` (:data:`BOARD_OPTIONS`)
    also set how the ROM was entered and the board's seed.
    """
    options = dict(options or {})
    rows = parts_by_name()
    if part.lower() not in rows:
        raise UsageError(
            f"the simulator has no board for part {part!r}; it has: {', '.join(known_parts())}"
        )
    serial = (device or {}).get("serial") or None
    runtime = device is not None and device.get("mode") == "runtime"
    f411 = _same_row(part, "stm32f411xe", "stm32f411xc")
    if f411 and (runtime or _sim_model(selector) is not None):
        return _sim_stm32f411(device, clock, runtime)
    if runtime:
        raise UsageError(
            f"the trace starts in run-time mode; the simulator has a run-time model only for"
            f" the STM32F411 demo application, not for {part}"
        )
    row = rows[part.lower()]
    bcd = options.pop("rom", None)
    if bcd is None and device is not None and isinstance(device.get("bcd_device"), int):
        bcd = device["bcd_device"] if device["bcd_device"] != row.usb.bcd_device else None
        row = (rom_version(row.name, bcd) if bcd is not None else None) or row
    elif bcd is not None:
        found = rom_version(row.name, bcd)
        if found is None:
            raise UsageError(f"{row.name} has no ROM version with bcdDevice 0x{bcd:04X}")
        row = found
    spread = options.pop("spread", None)
    if spread is not None:
        options["timing"] = timing_of(row, spread=spread)
    return [RomBootloader(row, serial, clock=clock, **options)]


def _sim_stm32f411(
    device: Mapping[str, Any] | None, clock: VirtualClock, runtime: bool
) -> list[UsbDeviceModel]:
    serial = (device or {}).get("serial") or "3276347F3034"
    names = [a.get("name") for a in (device or {}).get("alt_settings", [])]
    flash = 512 * 1024
    for size in (512 * 1024, 256 * 1024):
        if names and list(Stm32F411(serial, size).alt_strings) == names:
            flash = size
    board = Stm32F411(serial, flash, clock=clock)
    if runtime:
        assert device is not None
        app = Stm32F411App(
            serial,
            bootloader=board,
            vid=int(device.get("vid", 0x0483)),
            pid=int(device.get("pid", 0x5740)),
            product=str(device.get("product") or "dfuse demo application"),
            clock=clock,
        )
        return [app, board]
    return [board]


def _descriptor_facts(model: UsbDeviceModel) -> dict[str, Any]:
    raw = model.device_descriptor()
    strings = model.strings()
    alts = []
    cfg = model.configuration_descriptor(0)
    pos = 0
    while pos + 2 <= len(cfg) and cfg[pos] >= 2:
        if cfg[pos + 1] == 0x04:
            alts.append(strings.get(cfg[pos + 8]))
        pos += cfg[pos]
    transfer_size = None
    pos = 0
    while pos + 2 <= len(cfg) and cfg[pos] >= 2:
        if cfg[pos + 1] == 0x21 and cfg[pos] >= 7:  # the DFU functional descriptor
            transfer_size = cfg[pos + 5] | cfg[pos + 6] << 8
        pos += cfg[pos]
    return {
        "vid": raw[8] | raw[9] << 8,
        "pid": raw[10] | raw[11] << 8,
        "bcd_device": raw[12] | raw[13] << 8,
        "manufacturer": strings.get(raw[14]),
        "product": strings.get(raw[15]),
        "alt_names": alts,
        "transfer_size": transfer_size,
    }


def identify(device: Mapping[str, Any] | None) -> str | None:
    """The part whose ROM has the descriptors of the trace's ``device`` (USB IDs and
    alternate-setting names, :func:`dfuse.parts.identify`), or ``None``."""
    if device is None or device.get("mode") == "runtime":
        return None
    found = identify_part(
        int(device.get("vid", -1)),
        int(device.get("pid", -1)),
        [a.get("name") for a in device.get("alt_settings", [])],
        bcd_device=device.get("bcd_device"),
    )
    return None if found is None else found.name


def _describe_device(device: Mapping[str, Any] | None) -> str:
    if device is None:
        return "no device"
    alts = device.get("alt_settings") or []
    first = f", alt 0 {alts[0].get('name')!r}" if alts else ""
    product = f" {device.get('product')!r}" if device.get("product") else ""
    return f"{device.get('vid', 0):04x}:{device.get('pid', 0):04x}{product}{first}"


# --------------------------------------------------------------------------- report


@dataclass(frozen=True, slots=True)
class Divergence:
    """One place where the simulator did not do what the traced device did.

    Attributes:
        line: the trace line (1-based; 1 is the header).
        request: what was sent (``"GETSTATUS"``, ``"DNLOAD block 2 (2048 bytes)"``, an event).
        what: which aspect differs (``"state"``, ``"status"``, ``"poll timeout"``,
            ``"data"``, ``"error"``, ``"descriptor"``, ``"re-enumeration"``).
        recorded: what the trace says the device did.
        simulated: what the simulator did.
    """

    line: int
    request: str
    what: str
    recorded: str
    simulated: str

    def __str__(self) -> str:
        return (
            f"line {self.line}: {self.request}: {self.what}: device {self.recorded},"
            f" simulator {self.simulated}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "line": self.line,
            "request": self.request,
            "what": self.what,
            "recorded": self.recorded,
            "simulated": self.simulated,
        }


@dataclass(frozen=True, slots=True)
class ReplayReport:
    """The outcome of :func:`replay`.

    Attributes:
        path: the trace file (``""``: in memory).
        part: the simulated part it was replayed on.
        recorded_part: the part the trace says it was recorded on (``None``: not said).
        transfers: transfers sent to the simulator.
        compared: replies (or errors) compared.
        divergences: the first divergences, in trace order (at most ``limit``).
        stopped_at: the line where replay stopped early (the divergence limit, or the
            simulated device gone for good), ``None`` if every line was replayed.
        sim_time: clock time the simulated session took, in seconds.
    """

    path: str
    part: str
    recorded_part: str | None
    transfers: int
    compared: int
    divergences: tuple[Divergence, ...] = ()
    stopped_at: int | None = None
    sim_time: float = 0.0

    @property
    def ok(self) -> bool:
        """The simulator agreed with the trace everywhere."""
        return not self.divergences and self.stopped_at is None

    def summary(self, limit: int = 10) -> str:
        """A few lines for people: the verdict and the first divergences."""
        where = self.path or "trace"
        head = (
            f"{where}: replayed {self.transfers} transfers on the simulated {self.part};"
            f" {self.compared} replies compared"
        )
        if self.ok:
            return head + ": the simulator agrees everywhere"
        lines = [head + f": {len(self.divergences)} divergence(s)"]
        lines += [f"  {d}" for d in self.divergences[:limit]]
        if self.stopped_at is not None:
            lines.append(f"  replay stopped at line {self.stopped_at}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able record (``dfuse sim replay --json``)."""
        return {
            "path": self.path,
            "part": self.part,
            "recorded_part": self.recorded_part,
            "ok": self.ok,
            "transfers": self.transfers,
            "compared": self.compared,
            "divergences": [d.to_dict() for d in self.divergences],
            "stopped_at": self.stopped_at,
            "sim_time_s": self.sim_time,
        }


# --------------------------------------------------------------------------- replay


def _request_name(tr: TraceTransfer) -> str:
    kind = (tr.request_type >> 5) & 0x03
    if kind == 1 and tr.request in Request._value2member_map_:
        name = Request(tr.request).name
        if tr.request in (Request.DNLOAD, Request.UPLOAD):
            return f"{name} block {tr.value} ({tr.length} bytes)"
        return name
    if kind == 0 and tr.request == _SET_INTERFACE:
        return f"SET_INTERFACE alt {tr.value}"
    if kind == 0 and tr.request == _GET_DESCRIPTOR:
        return f"GET_DESCRIPTOR string {tr.value & 0xFF}"
    return f"request 0x{tr.request_type:02X}/0x{tr.request:02X}"


def _state_name(code: int) -> str:
    return f"{State(code).name} ({code})" if code in State._value2member_map_ else str(code)


def _status_name(code: int) -> str:
    return f"{Status(code).name} ({code})" if code in Status._value2member_map_ else str(code)


def _error_kind(exc: USBError) -> str:
    code = getattr(exc, "backend_error_code", None)
    if isinstance(code, int) and code in LIBUSB_ERRORS:
        return LIBUSB_ERRORS[code][1]
    return "io"


@dataclass
class _Session:
    trace: Trace
    part: str
    clock: VirtualClock
    backend: SimBackend
    poll_tolerance_ms: int
    poll_tolerance: float
    compare_memory: bool
    limit: int
    serial_index: int | None
    handle: Any = None
    interface: int = 0
    base: float = 0.0
    transfers: int = 0
    compared: int = 0
    divergences: list[Divergence] = field(default_factory=list)

    # ------------------------------------------------------------------ bookkeeping

    def diverge(self, line: int, request: str, what: str, recorded: str, simulated: str) -> None:
        self.divergences.append(Divergence(line, request, what, recorded, simulated))

    @property
    def full(self) -> bool:
        return len(self.divergences) >= self.limit

    def at(self, t: float) -> None:
        self.clock.advance_to(self.base + t)

    # ------------------------------------------------------------------ devices

    def _find(self, device: Mapping[str, Any] | None) -> Any:
        self.backend.poll()
        for ref in self.backend.enumerate_devices():
            d = ref.descriptor
            if device is None:
                return ref
            if (d.idVendor, d.idProduct) != (device.get("vid"), device.get("pid")):
                continue
            return ref
        return None

    def open(self, device: Mapping[str, Any] | None, line: int, what: str) -> bool:
        ref = self._find(device)
        if ref is None:
            return False
        self.handle = self.backend.open_device(ref)
        self.interface = int((device or {}).get("interface", 0))
        try:
            self.backend.claim_interface(self.handle, self.interface)
        except USBError as exc:
            self.diverge(line, what, "error", "claimed", f"{_error_kind(exc)} ({exc})")
        return True

    def close(self) -> None:
        if self.handle is not None:
            with contextlib.suppress(USBError):
                self.backend.release_interface(self.handle, self.interface)
            self.backend.close_device(self.handle)
            self.handle = None

    def check_descriptors(self, device: Mapping[str, Any] | None) -> None:
        if device is None:
            return
        model = self.backend.devices[0]
        facts = _descriptor_facts(model)
        names = [a.get("name") for a in device.get("alt_settings", [])]
        pairs: list[tuple[str, Any, Any]] = [
            ("idVendor", device.get("vid"), facts["vid"]),
            ("idProduct", device.get("pid"), facts["pid"]),
            ("bcdDevice", device.get("bcd_device"), facts["bcd_device"]),
            ("manufacturer", device.get("manufacturer"), facts["manufacturer"]),
            ("product", device.get("product"), facts["product"]),
        ]
        for what, recorded, simulated in pairs:
            if recorded is not None and recorded != simulated:
                fmt = (lambda v: f"0x{v:04x}") if isinstance(recorded, int) else repr
                self.diverge(1, "device descriptor", what, fmt(recorded), fmt(simulated))
        raw = device.get("descriptors")
        if isinstance(raw, dict):
            self._compare_bytes("device descriptor", raw.get("device"), model.device_descriptor())
            configs = raw.get("configurations") or []
            if configs:
                self._compare_bytes(
                    "configuration descriptor", configs[0], model.configuration_descriptor(0)
                )
        size = device.get("transfer_size")
        if size is not None and size != facts["transfer_size"]:
            self.diverge(1, "functional descriptor", "wTransferSize", str(size),
                         str(facts["transfer_size"]))  # fmt: skip
        simulated_names: list[str | None] = facts["alt_names"]
        for alt in device.get("alt_settings", []):
            number = alt.get("number")
            have = simulated_names[number] if 0 <= number < len(simulated_names) else None
            if alt.get("name") != have:
                self.diverge(1, f"alternate setting {number}", "name", repr(alt.get("name")),
                             repr(have) if have is not None else "none")  # fmt: skip
        if not self.trace.header.partial and len(names) != len(simulated_names):
            self.diverge(1, "interface", "alternate settings", str(len(names)),
                         str(len(simulated_names)))  # fmt: skip

    def _compare_bytes(self, what: str, recorded: object, simulated: bytes) -> None:
        if not isinstance(recorded, str):
            return
        want = bytes.fromhex(recorded)
        if want == simulated:
            return
        at = next(
            (i for i, (a, b) in enumerate(zip(want, simulated, strict=False)) if a != b),
            min(len(want), len(simulated)),
        )
        self.diverge(1, what, f"bytes from offset {at}", _bytes(want[at:], 12),
                     _bytes(simulated[at:], 12))  # fmt: skip

    # ------------------------------------------------------------------ records

    def event(self, ev: TraceEvent) -> bool:
        """Replay one event; False when replay cannot go on."""
        self.at(ev.t)
        if ev.event == "reset":
            if self.handle is None:
                return True
            try:
                self.backend.reset_device(self.handle)
            except USBError as exc:
                kind = _error_kind(exc)
                recorded = ev.fields.get("error")
                if not isinstance(recorded, dict) or recorded.get("kind") != kind:
                    self.diverge(ev.line, "USB reset", "error", "ok", kind)
        elif ev.event == "close":
            self.close()
        elif ev.event in ("reenumerate", "open"):
            self.close()
            device = ev.fields.get("device")
            failed = "error" in ev.fields
            back = self.backend.run_until(
                lambda: self._find(device) is not None, timeout=REENUMERATE_WAIT_S
            )
            if failed:
                if back:
                    self.diverge(ev.line, "re-enumeration", "re-enumeration",
                                 "did not come back", "came back")  # fmt: skip
                return True
            if not back or not self.open(device, ev.line, ev.event):
                self.diverge(ev.line, "re-enumeration", "re-enumeration",
                             f"came back as {_describe_device(device)}",
                             f"not back after {REENUMERATE_WAIT_S:g} s")  # fmt: skip
                return False
        return True

    def transfer(self, tr: TraceTransfer) -> None:
        self.at(tr.t)
        self.transfers += 1
        name = _request_name(tr)
        reply: bytes | None = None
        error: USBError | None = None
        if self.handle is None:
            if tr.error is None or tr.error.kind != "gone":
                self.diverge(tr.line, name, "error", "sent", "no device open")
            else:
                self.compared += 1
            return
        kind = (tr.request_type >> 5) & 0x03
        try:
            if kind == 0 and tr.request == _SET_INTERFACE and not tr.is_in:
                self.backend.set_interface_altsetting(self.handle, tr.index, tr.value)
            elif tr.is_in:
                buf = array.array("B", bytes(tr.length))
                n = self.backend.ctrl_transfer(
                    self.handle, tr.request_type, tr.request, tr.value, tr.index, buf,
                    tr.timeout_ms or 5000,
                )  # fmt: skip
                reply = buf[:n].tobytes()
            else:
                data = tr.data if len(tr.data) == tr.length else b"\xff" * tr.length
                self.backend.ctrl_transfer(
                    self.handle, tr.request_type, tr.request, tr.value, tr.index,
                    array.array("B", data), tr.timeout_ms or 5000,
                )  # fmt: skip
        except USBError as exc:
            error = exc
        self.compare(tr, name, reply, error)

    def compare(
        self, tr: TraceTransfer, name: str, reply: bytes | None, error: USBError | None
    ) -> None:
        line = tr.line
        if tr.unchecked:
            return
        if tr.error is not None or error is not None:
            self.compared += 1
            recorded: str = tr.error.kind if tr.error is not None else "ok"
            simulated = _error_kind(error) if error is not None else "ok"
            if recorded == "any":
                if simulated != "ok":
                    return
                recorded = "an error (its kind is not in the log)"
            if recorded != simulated:
                self.diverge(line, name, "error", recorded, simulated)
            return
        if not tr.is_in or reply is None:
            if tr.expect is not None or tr.reply is not None:
                self.compared += 1
            elif not tr.is_in:
                self.compared += 1  # the OUT request was accepted, as it was by the device
            return
        is_status = (tr.request_type >> 5) & 0x03 == 1 and tr.request == Request.GETSTATUS
        if is_status and (tr.reply is not None or tr.expect is not None):
            self.compared += 1
            self.compare_status(tr, name, reply)
            return
        if tr.reply is None or tr.redacted:
            return
        if self.is_serial(tr) or (not self.compare_memory and self.is_memory(tr)):
            return
        self.compared += 1
        if reply != tr.reply:
            self.diverge(line, name, "data", _bytes(tr.reply), _bytes(reply))

    def is_serial(self, tr: TraceTransfer) -> bool:
        return (
            tr.request == _GET_DESCRIPTOR
            and tr.request_type == _STANDARD_IN
            and self.serial_index is not None
            and tr.value == (0x0300 | self.serial_index)
            and self.trace.header.device is not None
            and self.trace.header.device.get("serial") is None
        )

    @staticmethod
    def is_memory(tr: TraceTransfer) -> bool:
        return (tr.request_type >> 5) & 0x03 == 1 and tr.request == Request.UPLOAD and tr.value >= 2

    def compare_status(self, tr: TraceTransfer, name: str, reply: bytes) -> None:
        line = tr.line
        if len(reply) != _GETSTATUS_SIZE:
            self.diverge(line, name, "length", "6 bytes", f"{len(reply)} bytes: {_bytes(reply)}")
            return
        got_status, got_poll, got_state, got_istring = (
            reply[0], reply[1] | reply[2] << 8 | reply[3] << 16, reply[4], reply[5]
        )  # fmt: skip
        want_status: int | None = None
        want_poll: int | None = None
        want_state: int | None = None
        want_istring: int | None = None
        if tr.reply is not None:
            r = tr.reply
            if len(r) != _GETSTATUS_SIZE:
                self.diverge(line, name, "length", f"{len(r)} bytes", "6 bytes")
                return
            want_status, want_poll, want_state, want_istring = (
                r[0], r[1] | r[2] << 8 | r[3] << 16, r[4], r[5]
            )  # fmt: skip
        elif tr.expect is not None:
            want_status = tr.expect.status
            want_poll = tr.expect.poll_timeout_ms
            want_state = tr.expect.state
        if want_state is not None and want_state != got_state:
            self.diverge(line, name, "state", _state_name(want_state), _state_name(got_state))
        if want_status is not None and want_status != got_status:
            self.diverge(line, name, "status", _status_name(want_status), _status_name(got_status))
        if want_istring is not None and want_istring != got_istring:
            self.diverge(line, name, "iString", str(want_istring), str(got_istring))
        if want_poll is not None:
            allowed = max(self.poll_tolerance_ms, self.poll_tolerance * want_poll)
            if abs(got_poll - want_poll) > allowed:
                self.diverge(
                    line, name, "poll timeout", f"{want_poll} ms",
                    f"{got_poll} ms (tolerance ±{allowed:g} ms)",
                )  # fmt: skip


def _bytes(data: bytes, limit: int = 24) -> str:
    shown = data[:limit].hex(" ")
    more = f" … ({len(data)} bytes)" if len(data) > limit else ""
    return f"[{shown}{more}]" if data else "[] (no data)"


def replay(
    trace: Trace | str | Path,
    *,
    part: str | None = None,
    poll_tolerance_ms: int = POLL_TOLERANCE_MS,
    poll_tolerance: float = POLL_TOLERANCE,
    compare_memory: bool = True,
    limit: int = 20,
) -> ReplayReport:
    """Replay ``trace`` (a :class:`~dfuse.trace.format.Trace` or a path) on a fresh
    simulated board and compare every reply.

    Args:
        part: the simulated part to replay on (default: the part the trace was recorded
            on, or the simulated part whose descriptors match the trace's device), with
            board options after ``?`` (:func:`parse_part`: ``"stm32f429?entry=reset"``,
            ``"stm32f407?rom=2100"``).
        poll_tolerance_ms, poll_tolerance: a bwPollTimeout agrees when it is within
            ``max(poll_tolerance_ms, poll_tolerance × recorded)`` of the recorded one.
        compare_memory: compare the data of UPLOADs of memory (blocks ≥ 2); the
            simulated board starts erased, so a trace of a real board that read memory
            it did not write in the session differs there.
        limit: stop after this many divergences.

    Raises:
        TraceError: the trace file is truncated, corrupt or not a trace (with the line).
        UsageError: the simulator cannot tell, or has no board of, the part the trace
            was recorded on (the message names it): pass ``part``.
    """
    if not isinstance(trace, Trace):
        trace = read_trace(trace)
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    header = trace.header
    device = header.device
    options: dict[str, Any] = {}
    if part is not None:
        part, options = parse_part(part)
        part = part or None
    # a trace of `sim:PART` was recorded on that simulated part, whatever parts share its
    # descriptors (the identified part is only the first of them)
    chosen = part or _sim_model(header.selector) or header.part or identify(device)
    if chosen is None:
        raise UsageError(
            f"the trace does not say which part it was recorded on ({_describe_device(device)})"
            f" and no simulated part has these descriptors; name one with part= (--part):"
            f" {', '.join(known_parts())}"
        )
    if part is None and chosen.lower() not in parts_by_name():
        raise UsageError(
            f"the trace was recorded on {chosen} ({_describe_device(device)}); the simulator"
            f" has no board for it: replay it on another part with part= (--part), one of"
            f" {', '.join(known_parts())}"
        )
    row = parts_by_name().get(chosen.lower())
    chosen = row.name if row is not None else chosen  # the row's name, not an alias
    clock = VirtualClock()
    models = make_board(chosen, device, clock, selector=header.selector, options=options)
    if isinstance(models[0], RomBootloader):
        chosen = models[0].part.name  # the ROM version the board was built as
    backend = SimBackend(models, clock=clock)
    serial_index = None
    if device is not None and isinstance(device.get("descriptors"), dict):
        raw = bytes.fromhex(str(device["descriptors"].get("device", "")))
        serial_index = raw[16] if len(raw) >= 18 and raw[16] else None
    elif device is not None:
        serial_index = models[0].device_descriptor()[16] or None
    session = _Session(
        trace, chosen, clock, backend, poll_tolerance_ms, poll_tolerance, compare_memory,
        limit, serial_index,
    )  # fmt: skip
    session.check_descriptors(device)
    session.base = clock.now
    stopped: int | None = None
    if not session.open(device, 1, "open"):
        stopped = 1
        session.diverge(1, "open", "device", _describe_device(device), "not on the bus")
    else:
        for record in trace.records:
            if session.full:
                stopped = record.line
                break
            if isinstance(record, TraceTransfer):
                session.transfer(record)
            elif not session.event(record):
                stopped = record.line
                break
    session.close()
    return ReplayReport(
        path=trace.path,
        part=chosen,
        recorded_part=header.part,
        transfers=session.transfers,
        compared=session.compared,
        divergences=tuple(session.divergences[:limit]),
        stopped_at=stopped,
        sim_time=clock.now - session.base,
    )
