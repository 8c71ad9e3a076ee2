"""The trace format: round trips, and precise errors (with line numbers) for bad files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dfuse.errors import TraceError
from dfuse.trace.format import (
    FORMAT,
    VERSION,
    Expectation,
    Trace,
    TraceEnd,
    TraceEvent,
    TraceHeader,
    TraceTransfer,
    TransferError,
    read_trace,
    schema_path,
)

HEADER = {"type": "header", "format": FORMAT, "version": VERSION, "device": None}
GETSTATUS = {
    "type": "transfer",
    "t": 0.5,
    "bmRequestType": 0xA1,
    "bRequest": 3,
    "wValue": 0,
    "wIndex": 0,
    "wLength": 6,
    "reply": "000000000200",
}


def _lines(*records: dict[str, object]) -> list[str]:
    return [json.dumps(r) + "\n" for r in records]


def _end(n: int) -> dict[str, object]:
    return {"type": "end", "t": 1.0, "transfers": n}


def test_a_minimal_trace_reads() -> None:
    trace = read_trace(_lines(HEADER, GETSTATUS, _end(1)))
    [tr] = trace.transfers
    assert (tr.request_type, tr.request, tr.length) == (0xA1, 3, 6)
    assert tr.reply == bytes.fromhex("000000000200")
    assert tr.line == 2
    assert trace.end.transfers == 1


def test_the_schema_is_shipped_in_the_package() -> None:
    schema = json.loads(schema_path().read_text(encoding="utf-8"))
    assert schema["$defs"]["header"]["properties"]["version"]["const"] == VERSION


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("lines", "line", "words"),
    [
        (["not json at all\n"], 1, "not JSON"),
        (_lines({"type": "transfer"}), 1, "not a dfuse trace"),
        (_lines({**HEADER, "format": "pcap"}), 1, "not a dfuse trace"),
        (_lines({**HEADER, "version": 99}), 1, "version 99"),
        (_lines(HEADER, {**GETSTATUS, "wLength": 70000}), 2, "wLength"),
        (_lines(HEADER, {**GETSTATUS, "bmRequestType": "a1"}), 2, "bmRequestType"),
        (_lines(HEADER, {**GETSTATUS, "reply": "zz"}), 2, "not hex"),
        (_lines(HEADER, {**GETSTATUS, "reply": "00" * 7}), 2, "more than wLength"),
        (_lines(HEADER, {**GETSTATUS, "t": -1}), 2, "non-negative"),
        (_lines(HEADER, {k: v for k, v in GETSTATUS.items() if k != "reply"}), 2, "reply"),
        (_lines(HEADER, {**GETSTATUS, "error": {"kind": "melted"}}), 2, "kind"),
        (_lines(HEADER, {"type": "event", "t": 0, "event": "explode"}), 2, "unknown event"),
        (_lines(HEADER, {"type": "blob"}), 2, "unknown record type"),
        (_lines(HEADER, GETSTATUS, GETSTATUS, _end(1)), 4, "lines are missing"),
        (_lines(HEADER, _end(0), GETSTATUS), 3, "after the end"),
        (_lines(HEADER, GETSTATUS), 3, "truncated"),
        (
            _lines(HEADER, {**GETSTATUS, "bmRequestType": 0x21, "wLength": 2, "data": "00"}),
            2,
            "wLength says 2",
        ),
        ([json.dumps(HEADER) + "\n", json.dumps(GETSTATUS)[:40]], 2, "ends in the middle"),
        ([json.dumps(HEADER) + "\n", "\n"], 2, "empty line"),
        (["[1, 2]\n"], 1, "JSON object"),
    ],
)
def test_bad_traces_name_the_line(lines: list[str], line: int, words: str) -> None:
    with pytest.raises(TraceError) as info:
        read_trace(lines, name="x.jsonl")
    assert info.value.line == line
    assert words in str(info.value)
    assert str(info.value).startswith(f"x.jsonl:{line}: ")


def test_a_foreign_file_is_refused(tmp_path: Path) -> None:
    hex_file = tmp_path / "firmware.hex"
    hex_file.write_text(":020000040800F2\n:00000001FF\n")
    with pytest.raises(TraceError, match=r"firmware\.hex:1: not JSON"):
        read_trace(hex_file)
    binary = tmp_path / "firmware.bin"
    binary.write_bytes(bytes(range(256)))
    with pytest.raises(TraceError, match="not a text file"):
        read_trace(binary)
    with pytest.raises(TraceError, match="cannot read"):
        read_trace(tmp_path / "missing.jsonl")
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(TraceError, match="empty file"):
        read_trace(empty)


def test_a_trace_cut_at_any_byte_is_refused(tmp_path: Path) -> None:
    text = "".join(_lines(HEADER, GETSTATUS, GETSTATUS, _end(2)))
    for cut in range(len(text) - 1):  # only the final newline may go
        with pytest.raises(TraceError) as info:
            read_trace(text[:cut].splitlines(keepends=True))
        complete = text[:cut].count("\n")
        # the line cut in the middle, or the missing end record after the last whole line
        assert info.value.line in (complete + 1, complete + 2) or cut == 0
    assert read_trace(text[:-1].splitlines(keepends=True)).end.transfers == 2


# --------------------------------------------------------------------------- round trips

_u8 = st.integers(0, 0xFF)
_u16 = st.integers(0, 0xFFFF)
_time = st.floats(0, 1e6, allow_nan=False, allow_infinity=False)


@st.composite
def transfers(draw: st.DrawFn) -> TraceTransfer:
    is_in = draw(st.booleans())
    length = draw(st.integers(0, 64))
    error = draw(
        st.none()
        | st.builds(
            TransferError,
            st.sampled_from(["stall", "timeout", "gone", "busy", "io"]),
            st.none() | st.just("LIBUSB_ERROR_PIPE"),
            st.none() | st.just("EPIPE"),
            st.text(max_size=10),
        )
    )
    reply = None
    data = b""
    if is_in and error is None:
        reply = draw(st.binary(max_size=length))
    if not is_in:
        data = draw(st.binary(min_size=length, max_size=length))
    return TraceTransfer(
        t=draw(_time),
        request_type=(0x80 if is_in else 0) | draw(st.integers(0, 0x7F)),
        request=draw(_u8),
        value=draw(_u16),
        index=draw(_u16),
        length=length,
        data=data,
        reply=reply,
        error=error,
        timeout_ms=draw(st.none() | st.integers(0, 60000)),
    )


events = st.builds(
    TraceEvent,
    _time,
    st.sampled_from(["reset", "close", "detach"]),
    st.dictionaries(st.sampled_from(["message", "note"]), st.text(max_size=8), max_size=2),
)


@given(st.lists(transfers() | events, max_size=12), st.booleans())
def test_traces_round_trip(records: list[TraceTransfer | TraceEvent], redacted: bool) -> None:
    header = TraceHeader(created="2026-01-01T00:00:00+00:00", dfuse="0.1.0", redacted=redacted)
    count = sum(isinstance(r, TraceTransfer) for r in records)
    trace = Trace(header, tuple(records), TraceEnd(2e6, count))
    again = read_trace(line + "\n" for line in trace.lines())
    assert again.header == header
    assert again.records == trace.records
    assert again.end == trace.end


def test_partial_traces_may_leave_data_and_replies_out() -> None:
    header = {**HEADER, "partial": True, "source": ["a log"]}
    dnload = {
        "type": "transfer",
        "t": 0,
        "bmRequestType": 0x21,
        "bRequest": 1,
        "wValue": 2,
        "wIndex": 0,
        "wLength": 2048,
    }
    status = {k: v for k, v in GETSTATUS.items() if k != "reply"}
    status["expect"] = {"state": 4, "poll_timeout_ms": 104}
    trace = read_trace(_lines(header, dnload, status, _end(2)))
    assert trace.header.source == ("a log",)
    assert trace.transfers[0].data == b""
    assert trace.transfers[1].expect == Expectation(state=4, poll_timeout_ms=104)
    with pytest.raises(TraceError, match="unknown keys"):
        read_trace(_lines(header, {**status, "expect": {"colour": 1}}, _end(1)))


_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)
_keys = st.sampled_from(
    ["type", "t", "bmRequestType", "bRequest", "wValue", "wIndex", "wLength", "data", "reply",
     "error", "expect", "event", "device", "transfers", "unchecked", "redacted", "timeout_ms"]
)  # fmt: skip
_records = st.dictionaries(_keys, _json, max_size=8) | _json


@given(st.lists(_records, max_size=4), st.booleans())
def test_any_json_after_a_header_reads_or_raises_trace_error(
    records: list[object], partial: bool
) -> None:
    lines = [json.dumps({**HEADER, "partial": partial}) + "\n"]
    lines += [json.dumps(r, allow_nan=True) + "\n" for r in records]
    try:
        read_trace(lines)
    except TraceError as exc:
        line = exc.line
    else:
        return
    assert 1 <= line <= len(lines) + 1


@given(st.dictionaries(st.sampled_from(["vid", "pid", "alt_settings", "serial"]), _json))
def test_any_device_record_reads_or_raises_trace_error(device: dict[str, object]) -> None:
    try:
        read_trace(_lines({**HEADER, "device": device}, _end(0)))
    except TraceError as exc:
        line = exc.line
    else:
        return
    assert line == 1
