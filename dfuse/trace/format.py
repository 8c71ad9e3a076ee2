"""The dfuse trace format: one JSON object per line (JSON Lines), versioned.

This module is the bottom of the trace layer: it imports only :mod:`dfuse.errors`, so
both the recorder (:mod:`dfuse.trace.recorder`, above the transport) and the replayer
(:mod:`dfuse.sim.replayer`, in the simulator) read and write traces through it.

A trace is::

    {"type": "header", "format": "dfuse-trace", "version": 1, "device": {...}, ...}
    {"type": "transfer", "t": 0.0012, "bmRequestType": 161, "bRequest": 3, ...}
    {"type": "event", "t": 1.52, "event": "reenumerate", "device": {...}}
    ...
    {"type": "end", "t": 2.31, "transfers": 812}

Every line is checked as it is read; a line that is not JSON, not an object, of an
unknown type or with a field of the wrong type raises :class:`~dfuse.errors.TraceError`
with its 1-based line number. docs/traces.md describes every field; the JSON Schema
shipped next to this module (``trace.schema.json``, :func:`schema_path`) says the same
for other tools.
"""

from __future__ import annotations

import errno as _errno
import json
import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal, TextIO

from dfuse.errors import TraceError

__all__ = [
    "ERROR_KINDS",
    "EVENTS",
    "FORMAT",
    "LIBUSB_ERRORS",
    "VERSION",
    "Expectation",
    "Trace",
    "TraceEnd",
    "TraceEvent",
    "TraceHeader",
    "TraceTransfer",
    "TransferError",
    "dump_line",
    "read_trace",
    "schema_path",
]

#: The ``format`` field of every header.
FORMAT = "dfuse-trace"
#: The format version this module reads and writes.
VERSION = 1

ErrorKind = Literal["stall", "timeout", "gone", "busy", "io", "any"]
#: How a failed transfer failed, as the trace names it (``"any"``: partial traces only,
#: the log shows that it failed but not how).
ERROR_KINDS: tuple[ErrorKind, ...] = ("stall", "timeout", "gone", "busy", "io", "any")

#: libusb error codes (libusb.h) → (name, the trace's error kind).
LIBUSB_ERRORS: Mapping[int, tuple[str, ErrorKind]] = {
    -1: ("LIBUSB_ERROR_IO", "io"),
    -2: ("LIBUSB_ERROR_INVALID_PARAM", "io"),
    -3: ("LIBUSB_ERROR_ACCESS", "io"),
    -4: ("LIBUSB_ERROR_NO_DEVICE", "gone"),
    -5: ("LIBUSB_ERROR_NOT_FOUND", "io"),
    -6: ("LIBUSB_ERROR_BUSY", "busy"),
    -7: ("LIBUSB_ERROR_TIMEOUT", "timeout"),
    -8: ("LIBUSB_ERROR_OVERFLOW", "io"),
    -9: ("LIBUSB_ERROR_PIPE", "stall"),
    -10: ("LIBUSB_ERROR_INTERRUPTED", "io"),
    -11: ("LIBUSB_ERROR_NO_MEM", "io"),
    -12: ("LIBUSB_ERROR_NOT_SUPPORTED", "io"),
    -99: ("LIBUSB_ERROR_OTHER", "io"),
}

#: Events a trace records (besides transfers).
EVENTS: tuple[str, ...] = (
    "enumerate",  # the devices a selector matched (``devices``)
    "open",  # another device was opened in the same session (``device``)
    "reset",  # the host reset the device's port (``error`` if that failed)
    "detach",  # a DETACH was sent: the device is expected to leave the bus
    "reenumerate",  # the device came back (``device``: how it looks now)
    "close",  # the host released the device
    "exception",  # the session ended with an exception (``error_type``, ``message``)
)

_RECORD_TYPES = ("header", "transfer", "event", "end")
_MAX_U8 = 0xFF
_MAX_U16 = 0xFFFF


def schema_path() -> Path:
    """The JSON Schema of one trace line (``trace.schema.json``, shipped in the package)."""
    return Path(str(resources.files("dfuse.trace").joinpath("trace.schema.json")))


# --------------------------------------------------------------------------- records


@dataclass(frozen=True, slots=True)
class TransferError:
    """How a transfer failed.

    Attributes:
        kind: ``"stall"``, ``"timeout"``, ``"gone"``, ``"busy"`` or ``"io"``.
        libusb: the libusb error name (``"LIBUSB_ERROR_PIPE"``), ``None`` if unknown.
        errno: the OS error name (``"EPIPE"``), ``None`` if unknown.
        message: the error message as the host saw it.
    """

    kind: ErrorKind
    libusb: str | None = None
    errno: str | None = None
    message: str = ""

    @classmethod
    def from_codes(
        cls, kind: ErrorKind, backend_code: int | None, os_errno: int | None, message: str = ""
    ) -> TransferError:
        """The record for a libusb code and an errno (either may be ``None``)."""
        name = LIBUSB_ERRORS.get(backend_code, (None, kind))[0] if backend_code else None
        err = _errno.errorcode.get(os_errno) if os_errno else None
        return cls(kind, name, err, message)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind}
        if self.libusb is not None:
            out["libusb"] = self.libusb
        if self.errno is not None:
            out["errno"] = self.errno
        if self.message:
            out["message"] = self.message
        return out


@dataclass(frozen=True, slots=True)
class Expectation:
    """What a partial trace knows of a GETSTATUS reply (from a log): any field may be missing.

    Attributes:
        state, status: bState and bStatus.
        poll_timeout_ms: bwPollTimeout.
    """

    state: int | None = None
    status: int | None = None
    poll_timeout_ms: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            k: v
            for k, v in (
                ("state", self.state),
                ("status", self.status),
                ("poll_timeout_ms", self.poll_timeout_ms),
            )
            if v is not None
        }


@dataclass(frozen=True, slots=True)
class TraceHeader:
    """The first line: what was recorded, on what, by what.

    Attributes:
        version: the format version.
        created: when the recording started (ISO 8601, UTC).
        dfuse: the dfuse version that recorded it.
        python, os: the host's Python and operating system.
        libusb: the libusb version (``None`` if unknown, e.g. the simulator).
        clock: ``"real"`` (wall time) or ``"virtual"`` (a simulated board's clock).
        redacted: serial numbers were replaced by ``null``.
        part: the part the device was identified as (``None``: not identified).
        selector: the device selector the session opened it with (``"usb:0483:df11"``,
            ``"sim:stm32f411"``), ``None`` if unknown.
        device: the device record (``None`` when no device was opened).
        partial: a partial trace built from a log: replies may be :class:`Expectation`\\ s.
        source: for traces built from public logs, the citations.
        note: free text.
    """

    version: int = VERSION
    created: str = ""
    dfuse: str = ""
    python: str = ""
    os: str = ""
    libusb: str | None = None
    clock: str = "real"
    redacted: bool = False
    part: str | None = None
    selector: str | None = None
    device: Mapping[str, Any] | None = None
    partial: bool = False
    source: tuple[str, ...] = ()
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "type": "header",
            "format": FORMAT,
            "version": self.version,
            "created": self.created,
            "dfuse": self.dfuse,
            "python": self.python,
            "os": self.os,
            "libusb": self.libusb,
            "clock": self.clock,
            "redacted": self.redacted,
            "part": self.part,
            "selector": self.selector,
            "device": None if self.device is None else dict(self.device),
        }
        if self.partial:
            out["partial"] = True
        if self.source:
            out["source"] = list(self.source)
        if self.note:
            out["note"] = self.note
        return out


@dataclass(frozen=True, slots=True)
class TraceTransfer:
    """One control transfer.

    Attributes:
        line: the 1-based line number in the trace (0 when built in memory).
        t: seconds since the recording started, when the request was sent.
        request_type, request, value, index, length: the SETUP packet (bmRequestType,
            bRequest, wValue, wIndex, wLength).
        data: the OUT data stage (``b""`` for IN requests).
        reply: the IN data received; ``None`` for OUT requests, failed ones, or unknown
            (partial traces, redacted serial numbers).
        error: how the transfer failed; ``None`` if it succeeded.
        timeout_ms: the host's timeout for it.
        expect: partial traces: what the log says of a GETSTATUS reply.
        redacted: the reply held a serial number and was left out.
        unchecked: partial traces: the log does not show the outcome; it is not compared.
    """

    t: float
    request_type: int
    request: int
    value: int
    index: int
    length: int
    data: bytes = b""
    reply: bytes | None = None
    error: TransferError | None = None
    timeout_ms: int | None = None
    expect: Expectation | None = None
    redacted: bool = False
    unchecked: bool = False
    line: int = field(default=0, compare=False)

    @property
    def is_in(self) -> bool:
        """Device-to-host (bit 7 of bmRequestType)."""
        return bool(self.request_type & 0x80)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "type": "transfer",
            "t": self.t,
            "bmRequestType": self.request_type,
            "bRequest": self.request,
            "wValue": self.value,
            "wIndex": self.index,
            "wLength": self.length,
        }
        if not self.is_in:
            out["data"] = self.data.hex()
        if self.timeout_ms is not None:
            out["timeout_ms"] = self.timeout_ms
        if self.error is not None:
            out["error"] = self.error.to_json()
        elif self.is_in and self.reply is not None:
            out["reply"] = self.reply.hex()
        if self.expect is not None:
            out["expect"] = self.expect.to_json()
        if self.redacted:
            out["redacted"] = True
        if self.unchecked:
            out["unchecked"] = True
        return out


@dataclass(frozen=True, slots=True)
class TraceEvent:
    """Something that is not a control transfer: a reset, a re-enumeration, ...

    Attributes:
        t: seconds since the recording started.
        event: one of :data:`EVENTS`.
        fields: the event's other fields (``device``, ``devices``, ``error``, ...).
        line: the 1-based line number (0 when built in memory).
    """

    t: float
    event: str
    fields: Mapping[str, Any] = field(default_factory=dict)
    line: int = field(default=0, compare=False)

    def to_json(self) -> dict[str, Any]:
        return {"type": "event", "t": self.t, "event": self.event, **self.fields}


@dataclass(frozen=True, slots=True)
class TraceEnd:
    """The last line: the recording was closed properly.

    Attributes:
        t: seconds since the recording started.
        transfers: how many transfer lines the trace has.
    """

    t: float
    transfers: int
    line: int = field(default=0, compare=False)

    def to_json(self) -> dict[str, Any]:
        return {"type": "end", "t": self.t, "transfers": self.transfers}


Record = TraceTransfer | TraceEvent


@dataclass(frozen=True, slots=True)
class Trace:
    """A whole trace: header, the transfers and events in order, and the end record.

    Attributes:
        header: the first line.
        records: transfers and events, in order.
        end: the last line.
        path: where it was read from (``""``: memory).
    """

    header: TraceHeader
    records: tuple[Record, ...]
    end: TraceEnd
    path: str = ""

    @property
    def transfers(self) -> tuple[TraceTransfer, ...]:
        """Only the transfers."""
        return tuple(r for r in self.records if isinstance(r, TraceTransfer))

    def lines(self) -> Iterator[str]:
        """The trace as JSON lines (without newlines)."""
        yield dump_line(self.header.to_json())
        for record in self.records:
            yield dump_line(record.to_json())
        yield dump_line(self.end.to_json())

    def write(self, path: str | Path) -> None:
        """Write the trace to ``path``."""
        Path(path).write_text("".join(line + "\n" for line in self.lines()), encoding="utf-8")


def dump_line(obj: Mapping[str, Any]) -> str:
    """One record as a compact JSON line."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


# --------------------------------------------------------------------------- reading


class _Line:
    """Field access on one parsed line that raises TraceError naming the line."""

    def __init__(self, obj: Mapping[str, Any], number: int, path: str) -> None:
        self.obj = obj
        self.number = number
        self.path = path

    def fail(self, message: str) -> TraceError:
        return TraceError(message, path=self.path, line=self.number)

    def _get(self, key: str, required: bool) -> Any:
        if key not in self.obj:
            if required:
                raise self.fail(f"missing field {key!r} in a {self.obj.get('type')} record")
            return None
        return self.obj[key]

    def int_(self, key: str, low: int, high: int, *, required: bool = True) -> int | None:
        value = self._get(key, required)
        if value is None and not required:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise self.fail(f"field {key!r} is {value!r}; expected an integer {low}..{high}")
        return value

    def number_(self, key: str) -> float:
        value = self._get(key, True)
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
            or value < 0
        ):
            raise self.fail(f"field {key!r} is {value!r}; expected a non-negative number")
        return float(value)

    def str_(self, key: str, *, required: bool = True, nullable: bool = False) -> str | None:
        value = self._get(key, required)
        if value is None and (nullable or not required):
            return None
        if not isinstance(value, str):
            raise self.fail(f"field {key!r} is {value!r}; expected a string")
        return value

    def hex_(self, key: str, *, required: bool = True) -> bytes | None:
        value = self.str_(key, required=required)
        if value is None:
            return None
        try:
            return bytes.fromhex(value)
        except ValueError:
            raise self.fail(f"field {key!r} is not hex bytes: {value[:40]!r}") from None

    def bool_(self, key: str) -> bool:
        value = self._get(key, False)
        if value is None:
            return False
        if not isinstance(value, bool):
            raise self.fail(f"field {key!r} is {value!r}; expected true or false")
        return value


def _parse_header(line: _Line) -> TraceHeader:
    obj = line.obj
    if obj.get("type") != "header" or obj.get("format") != FORMAT:
        raise line.fail(
            f'not a dfuse trace: the first line must be a header with "format": "{FORMAT}"'
        )
    version = obj.get("version")
    if version != VERSION:
        raise line.fail(
            f"trace format version {version!r}; this dfuse reads version {VERSION}"
            " (a newer dfuse may read it)"
        )
    device = obj.get("device")
    if device is not None and not isinstance(device, dict):
        raise line.fail(f"field 'device' is {device!r}; expected an object or null")
    if isinstance(device, dict):
        _check_device(line, device, "device")
    source = obj.get("source", [])
    if not isinstance(source, list) or not all(isinstance(s, str) for s in source):
        raise line.fail("field 'source' must be a list of strings")
    clock = line.str_("clock", required=False) or "real"
    if clock not in ("real", "virtual"):
        raise line.fail(f"field 'clock' is {clock!r}; expected 'real' or 'virtual'")
    return TraceHeader(
        version=VERSION,
        created=line.str_("created", required=False) or "",
        dfuse=line.str_("dfuse", required=False) or "",
        python=line.str_("python", required=False) or "",
        os=line.str_("os", required=False) or "",
        libusb=line.str_("libusb", required=False, nullable=True),
        clock=clock,
        redacted=line.bool_("redacted"),
        part=line.str_("part", required=False, nullable=True),
        selector=line.str_("selector", required=False, nullable=True),
        device=device,
        partial=line.bool_("partial"),
        source=tuple(source),
        note=line.str_("note", required=False) or "",
    )


def _check_device(line: _Line, device: Mapping[str, Any], where: str) -> None:
    for key in ("vid", "pid"):
        value = device.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _MAX_U16:
            raise line.fail(f"{where}.{key} is {value!r}; expected an integer 0..65535")
    for key, high in (
        ("bcd_device", _MAX_U16),
        ("interface", _MAX_U8),
        ("transfer_size", _MAX_U16),
        ("bus", _MAX_U8),
        ("address", _MAX_U8),
    ):
        value = device.get(key)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= high
        ):
            raise line.fail(f"{where}.{key} is {value!r}; expected an integer 0..{high} or null")
    for key in ("serial", "manufacturer", "product", "path", "mode", "functional"):
        value = device.get(key)
        if value is not None and not isinstance(value, str):
            raise line.fail(f"{where}.{key} is {value!r}; expected a string or null")
    descriptors = device.get("descriptors")
    if descriptors is not None:
        raw = descriptors.get("device") if isinstance(descriptors, dict) else None
        configs = descriptors.get("configurations", []) if isinstance(descriptors, dict) else None
        if not isinstance(configs, list) or not all(_is_hex(x) for x in [raw, *configs]):
            raise line.fail(f"{where}.descriptors must be {{device, configurations}} in hex")
    if not _is_hex(device.get("functional") or ""):
        raise line.fail(f"{where}.functional is not hex bytes")
    alts = device.get("alt_settings", [])
    if not isinstance(alts, list):
        raise line.fail(f"{where}.alt_settings must be a list")
    for alt in alts:
        number = alt.get("number") if isinstance(alt, dict) else None
        if isinstance(number, bool) or not isinstance(number, int) or not 0 <= number <= _MAX_U8:
            raise line.fail(f"{where}.alt_settings: {alt!r} is not {{number, name}}")
        if alt.get("name") is not None and not isinstance(alt.get("name"), str):
            raise line.fail(f"{where}.alt_settings: name {alt.get('name')!r} is not a string")


def _is_hex(value: object) -> bool:
    if not isinstance(value, str):
        return False
    try:
        bytes.fromhex(value)
    except ValueError:
        return False
    return True


def _parse_error(line: _Line, value: Any) -> TransferError:
    if not isinstance(value, dict) or value.get("kind") not in ERROR_KINDS:
        raise line.fail(
            f"field 'error' is {value!r}; expected an object with kind one of "
            + ", ".join(ERROR_KINDS)
        )
    for key in ("libusb", "errno", "message"):
        if key in value and not isinstance(value[key], str):
            raise line.fail(f"field 'error.{key}' is {value[key]!r}; expected a string")
    return TransferError(
        value["kind"], value.get("libusb"), value.get("errno"), value.get("message", "")
    )


def _parse_expect(line: _Line, value: Any) -> Expectation:
    if not isinstance(value, dict):
        raise line.fail(f"field 'expect' is {value!r}; expected an object")
    sub = _Line(value, line.number, line.path)
    unknown = set(value) - {"state", "status", "poll_timeout_ms"}
    if unknown:
        raise line.fail(f"field 'expect' has unknown keys {sorted(unknown)}")
    return Expectation(
        state=sub.int_("state", 0, _MAX_U8, required=False),
        status=sub.int_("status", 0, _MAX_U8, required=False),
        poll_timeout_ms=sub.int_("poll_timeout_ms", 0, 0xFFFFFF, required=False),
    )


def _parse_transfer(line: _Line, partial: bool) -> TraceTransfer:
    request_type = line.int_("bmRequestType", 0, _MAX_U8)
    assert request_type is not None
    length = line.int_("wLength", 0, _MAX_U16)
    assert length is not None
    is_in = bool(request_type & 0x80)
    data = b""
    if not is_in:
        if "data" in line.obj:
            data = line.hex_("data") or b""
            if len(data) != length:
                raise line.fail(f"data has {len(data)} bytes; wLength says {length}")
        elif not partial:
            raise line.fail("missing field 'data' in an OUT transfer")
    error = _parse_error(line, line.obj["error"]) if "error" in line.obj else None
    if error is not None and error.kind == "any" and not partial:
        raise line.fail('error kind "any" is for partial traces (built from logs) only')
    unchecked = line.bool_("unchecked")
    if unchecked and not partial:
        raise line.fail('"unchecked" is for partial traces (built from logs) only')
    reply = line.hex_("reply", required=False) if is_in else None
    if reply is not None and len(reply) > length:
        raise line.fail(f"reply has {len(reply)} bytes; more than wLength {length}")
    if reply is not None and error is not None:
        raise line.fail("a transfer has either a reply or an error, not both")
    expect = _parse_expect(line, line.obj["expect"]) if "expect" in line.obj else None
    redacted = line.bool_("redacted")
    if is_in and reply is None and error is None and not partial and not redacted:
        raise line.fail("missing field 'reply' (or 'error') in an IN transfer")
    value = line.int_("wValue", 0, _MAX_U16)
    index = line.int_("wIndex", 0, _MAX_U16)
    request = line.int_("bRequest", 0, _MAX_U8)
    assert value is not None
    assert index is not None
    assert request is not None
    return TraceTransfer(
        t=line.number_("t"),
        request_type=request_type,
        request=request,
        value=value,
        index=index,
        length=length,
        data=data,
        reply=reply,
        error=error,
        timeout_ms=line.int_("timeout_ms", 0, 0xFFFFFFFF, required=False),
        expect=expect,
        redacted=redacted,
        unchecked=unchecked,
        line=line.number,
    )


def _parse_event(line: _Line) -> TraceEvent:
    name = line.str_("event")
    if name not in EVENTS:
        raise line.fail(f"unknown event {name!r}; expected one of {', '.join(EVENTS)}")
    device = line.obj.get("device")
    if device is not None:
        if not isinstance(device, dict):
            raise line.fail(f"field 'device' is {device!r}; expected an object")
        _check_device(line, device, "device")
    fields = {k: v for k, v in line.obj.items() if k not in ("type", "t", "event")}
    return TraceEvent(t=line.number_("t"), event=name, fields=fields, line=line.number)


def read_trace(source: str | Path | TextIO | Iterable[str], *, name: str = "") -> Trace:
    """Read and check a trace from a path, an open text file or an iterable of lines.

    Raises :class:`~dfuse.errors.TraceError` with the line number for a line that is not
    JSON (a file cut off mid-line), a record of the wrong shape, a first line that is not
    a dfuse header (a foreign file), a format version this dfuse does not read, or a
    trace that stops without its end record (a recording cut off).
    """
    if isinstance(source, str | Path):
        path = str(source)
        try:
            with open(source, encoding="utf-8") as handle:
                return _read(handle, path)
        except UnicodeDecodeError as exc:
            raise TraceError(f"not a text file ({exc.reason})", path=path) from None
        except OSError as exc:
            raise TraceError(f"cannot read the trace: {exc.strerror or exc}", path=path) from exc
    return _read(source, name or str(getattr(source, "name", "")))


def _read(lines: Iterable[str], path: str) -> Trace:
    header: TraceHeader | None = None
    records: list[Record] = []
    end: TraceEnd | None = None
    last = 0
    for number, text in enumerate(lines, start=1):
        last = number
        if not text.strip():
            raise TraceError("empty line", path=path, line=number)
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            cut = "" if text.endswith("\n") else " (the file ends in the middle of this line)"
            raise TraceError(
                f"not JSON: {exc.msg} at column {exc.colno}{cut}", path=path, line=number
            ) from None
        if not isinstance(obj, dict):
            raise TraceError(
                f"a line must be a JSON object, got {type(obj).__name__}", path=path, line=number
            )
        line = _Line(obj, number, path)
        kind = obj.get("type")
        if header is None:
            header = _parse_header(line)
            continue
        if end is not None:
            raise line.fail("a record after the end record")
        if kind == "transfer":
            records.append(_parse_transfer(line, header.partial))
        elif kind == "event":
            records.append(_parse_event(line))
        elif kind == "end":
            count = line.int_("transfers", 0, 2**63)
            end = TraceEnd(line.number_("t"), count or 0, line=number)
            found = sum(isinstance(r, TraceTransfer) for r in records)
            if count != found:
                raise line.fail(
                    f"the end record counts {count} transfers; the trace has {found}"
                    " (lines are missing)"
                )
        else:
            allowed = ", ".join(repr(t) for t in _RECORD_TYPES[1:])
            raise line.fail(f"unknown record type {kind!r}; expected {allowed}")
    if header is None:
        raise TraceError("empty file: not a dfuse trace", path=path)
    if end is None:
        raise TraceError(
            "truncated: the trace stops without its end record (the recording was cut off)",
            path=path,
            line=last + 1,
        )
    return Trace(header, tuple(records), end, path)
