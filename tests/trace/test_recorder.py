"""Recording: what a traced session writes, through the library and the CLI."""

from __future__ import annotations

import io
import json
import warnings
from pathlib import Path

import jsonschema
import pytest

import dfuse
from dfuse.clock import VirtualClock
from dfuse.data import example_hex_path as blinky_path
from dfuse.selector import Bench, DeviceSelector
from dfuse.sim import Fault, FaultKind, SimBackend, Stm32F411
from dfuse.sim.faults import Event
from dfuse.trace.format import TraceEvent, read_trace
from dfuse.trace.recorder import TraceRecorder, TracingTransport, current_recorder

from .conftest import run_cli, schema_errors

SECTOR7 = 0x0806_0000


def _records(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_traced_session_records_every_request(
    tmp_path: Path, validator: jsonschema.Draft202012Validator
) -> None:
    path = tmp_path / "t.jsonl"
    with dfuse.tracing(path) as recorder:
        assert current_recorder() is recorder
        with dfuse.open_device("sim:stm32f411") as dev:
            dev.download(bytes(range(64)), address=SECTOR7, verify=True)
            sent = dev.transport.transfers
            assert isinstance(dev.transport, TracingTransport)
    assert current_recorder() is None
    assert schema_errors(validator, path) == []
    trace = read_trace(path)
    assert len(trace.transfers) == sent  # every class request, nothing else
    header = trace.header
    assert header.clock == "virtual"
    assert header.libusb is None
    assert header.device is not None
    assert header.device["serial"] == "3276347F3034"
    assert header.device["alt_settings"][0]["name"].startswith("@Internal Flash")
    assert header.device["descriptors"]["device"].startswith("1201")  # 18-byte device desc.
    assert header.dfuse == dfuse.__version__
    # the erase command and the data block are there, byte for byte
    outs = [t.data for t in trace.transfers if not t.is_in]
    assert bytes.fromhex("4100000608") in outs
    assert bytes(range(64)) in outs
    ins = [t.reply for t in trace.transfers if t.is_in and t.request == dfuse.Request.UPLOAD]
    assert bytes(range(64)) in ins
    times = [t.t for t in trace.transfers]
    assert times == sorted(times)
    assert times[-1] > 0.2
    assert [r.event for r in trace.records if not hasattr(r, "request")] == ["enumerate", "close"]


def test_tracing_changes_no_reply(tmp_path: Path) -> None:
    """The same session with and without tracing: same memory, same device time."""
    image = bytes(range(256)) * 40

    def session(trace: bool) -> tuple[bytes, float]:
        bench = dfuse.selector.bench("sim:stm32f411")
        recorder = TraceRecorder(tmp_path / "x.jsonl") if trace else None
        with bench.open(trace=recorder) as dev:
            dev.download(image, address=SECTOR7)
        if recorder is not None:
            recorder.close()
        assert bench.clock is not None
        return bench.boards[0].peek(SECTOR7, len(image)), bench.clock.now

    assert session(True) == session(False)
    assert session(True)[0] == image


def test_failures_are_recorded_with_their_libusb_error(tmp_path: Path) -> None:
    clock = VirtualClock()
    board = Stm32F411(clock=clock, faults=[Fault(FaultKind.STALL, Event.UPLOAD)])
    bench = Bench(DeviceSelector.parse("usb:0483:df11"), SimBackend([board], clock=clock),
                  (board,), clock)  # fmt: skip
    path = tmp_path / "t.jsonl"
    with pytest.raises(dfuse.DfuseError), dfuse.tracing(path), bench.open() as dev:
        dev.upload(0x0800_0000, 16)
    trace = read_trace(path)
    failed = [t for t in trace.transfers if t.error is not None]
    assert failed[0].error is not None
    assert (failed[0].error.kind, failed[0].error.libusb, failed[0].error.errno) == (
        "stall",
        "LIBUSB_ERROR_PIPE",
        "EPIPE",
    )
    last = trace.records[-1]
    assert getattr(last, "event", None) == "exception"


def test_redaction_leaves_no_serial_number(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    with dfuse.tracing(path, redact=True), dfuse.open_device("sim:stm32f411?serial=SECRET42") as d:
        assert d.transport.get_string(3) == "SECRET42"  # the serial string, read on purpose
    text = path.read_text()
    assert "SECRET42" not in text
    assert "SECRET42".encode("utf-16-le").hex() not in text
    trace = read_trace(path)
    assert trace.header.redacted
    assert trace.header.device is not None
    assert trace.header.device["serial"] is None
    assert trace.transfers[-1].redacted


@pytest.mark.parametrize(
    "selector",
    [
        "usb:serial=SECRET42",  # no such device: the error names the selector
        "serial=SECRET42",  # not a selector: the error quotes it
    ],
)
def test_redaction_reaches_the_exception_message(tmp_path: Path, selector: str) -> None:
    # review2: the exception event of a redacted trace carried the selector's serial
    path = tmp_path / "t.jsonl"
    firmware = tmp_path / "fw.bin"
    firmware.write_bytes(bytes(range(256)))
    result = run_cli(
        "flash", "-d", selector, str(firmware), "--address", "0x08000000",
        "--trace", str(path), "--trace-redact",
    )  # fmt: skip
    assert result.code != 0
    text = path.read_text()
    assert "SECRET42" not in text
    events = [
        r for r in read_trace(path).records if isinstance(r, TraceEvent) and r.event == "exception"
    ]
    assert events
    assert "serial=*" in events[0].fields["message"]


def test_redaction_scrubs_the_serial_of_a_device_met_from_messages() -> None:
    rec = TraceRecorder(io.StringIO(), redact=True)
    with dfuse.open_device("sim:stm32f411?serial=SECRET42") as dev:
        rec.note_serial(dev.info)
    rec.record_exception(RuntimeError("board SECRET42 went away"))
    assert rec._pending[-1]["message"] == "board * went away"  # before the header: pending
    assert TraceRecorder(io.StringIO()).scrub("x") == "x"


def test_a_thread_started_in_the_block_records_into_it(tmp_path: Path) -> None:
    # review2: threads do not inherit the block's context variable (dfuse station's
    # workers): their devices went untraced
    import threading

    path = tmp_path / "t.jsonl"
    seen: list[object] = []

    def work() -> None:
        seen.append(current_recorder())
        with dfuse.open_device("sim:stm32f411") as dev:
            dev.read_option_bytes()

    with dfuse.tracing(path) as recorder:
        worker = threading.Thread(target=work)
        worker.start()
        worker.join()
    assert seen == [recorder]
    assert current_recorder() is None
    trace = read_trace(path)
    assert trace.header.device is not None
    assert len(trace.transfers) > 3


def test_reenumeration_and_reset_are_events(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    with dfuse.tracing(path), dfuse.open_device("sim:stm32f411") as dev:
        options = dev.read_option_bytes()
        dev.change_option_bytes(options.with_write_protection({7}))
    events = [r for r in read_trace(path).records if not hasattr(r, "request")]
    names = [e.event for e in events]
    assert "reenumerate" in names
    again = events[names.index("reenumerate")]
    assert again.fields["device"]["pid"] == 0xDF11


def test_detach_is_an_event_and_the_bootloader_joins_the_trace(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    result = run_cli("detach", "-d", "sim:stm32f411?mode=app", "--trace", str(path))
    assert result.code == 0, result.err
    trace = read_trace(path)
    assert trace.header.device is not None
    assert trace.header.device["mode"] == "runtime"
    names = [getattr(r, "event", None) for r in trace.records]
    assert "detach" in names
    assert "reenumerate" in names
    back = trace.records[names.index("reenumerate")]
    assert isinstance(back, TraceEvent)
    assert isinstance(back.fields, dict)
    assert back.fields["device"]["mode"] == "dfu"


def test_a_write_failure_warns_and_the_session_goes_on() -> None:
    class Full(io.StringIO):
        def write(self, s: str) -> int:
            raise OSError(28, "No space left on device")

    recorder = TraceRecorder(Full())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with dfuse.open_device("sim:stm32f411", trace=recorder) as dev:
            dev.status()
        recorder.close()
    assert any("No space left" in str(w.message) for w in caught)


def test_a_session_without_a_device_still_makes_a_trace(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    bench = dfuse.selector.sim_bench(
        DeviceSelector.parse("sim:stm32f411"), DeviceSelector.parse("sim:?serial=nope")
    )
    with pytest.raises(dfuse.DeviceNotFoundError), dfuse.tracing(path):
        bench.open()
    trace = read_trace(path)
    assert trace.header.device is None  # no device was opened
    assert [getattr(r, "event", None) for r in trace.records] == ["enumerate", "exception"]


# --------------------------------------------------------------------------- the CLI


@pytest.mark.parametrize(
    "argv",
    [
        ("flash", str(blinky_path()), "--leave"),
        ("read", "{tmp}/out.bin", "--address", "0x08000000", "--length", "4K"),
        ("erase", "--all", "--yes"),
        ("verify", str(blinky_path())),
        ("option-bytes",),
        ("otp",),
        ("unprotect", "--yes"),
        ("leave",),
        ("list",),
    ],
)
def test_every_device_command_takes_trace(
    tmp_path: Path, argv: tuple[str, ...], validator: jsonschema.Draft202012Validator
) -> None:
    path = tmp_path / "t.jsonl"
    args = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    result = run_cli(*args, "-d", "sim:stm32f411", "--trace", str(path), "-q")
    assert result.code in (0, 5), result.err  # verify of a blank board: 5
    assert schema_errors(validator, path) == []
    trace = read_trace(path)
    assert trace.end.transfers == len(trace.transfers)
    if argv[0] != "list":
        assert trace.transfers
    else:  # the devices listed, with their descriptors and alt strings (and the requests
        # `list` sends to read each DFU-mode board's read protection level)
        events = [r for r in trace.records if getattr(r, "event", None) == "enumerate"]
        [event] = events
        assert isinstance(event, TraceEvent)
        assert event.fields["devices"][0]["alt_settings"][0]["name"].startswith("@Internal")


def test_trace_options_are_checked(tmp_path: Path) -> None:
    assert run_cli("list", "-d", "sim:", "--trace-redact").code == 2
    result = run_cli("flash", "--all", "-d", "sim:", str(blinky_path()), "--trace", "x")
    assert result.code == 2
    assert "--all" in result.err


def test_an_internal_error_asks_for_a_trace() -> None:
    from dfuse.cli.exitcodes import classify

    failure = classify(RuntimeError("boom"))
    assert failure.code == 1
    assert "--trace" in failure.hint


def test_the_libusb_version_is_read_from_a_libusb_backend() -> None:
    from dfuse.trace.recorder import libusb_version
    from dfuse.transport.pyusb import get_backend

    try:
        backend = get_backend()
    except dfuse.LibusbNotFoundError:
        pytest.skip("no libusb on this machine")
    version = libusb_version(backend)
    assert version is not None
    major, minor, *_ = version.split(".")
    assert (int(major), int(minor)) >= (1, 0)
    assert libusb_version(SimBackend([])) is None  # the simulator's bus has no libusb
