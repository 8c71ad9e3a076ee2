"""Output helpers: plain progress lines, rich bars, JSON errors."""

from __future__ import annotations

import io
import json

from dfuse.cli.exitcodes import ExitCode, Failure
from dfuse.cli.output import NullProgress, PlainProgress, Ui


def test_plain_progress_prints_quarters_and_phase_ends() -> None:
    buf = io.StringIO()
    sink = PlainProgress(buf)
    for done in range(0, 8193, 512):
        sink.update("write", done, 8192)
    sink.update("leave", 0, 1)
    sink.update("leave", 1, 1)
    sink.update("leave", 1, 1)
    lines = buf.getvalue().splitlines()
    assert lines == [
        "write      0%  0/8192 bytes",
        "write     25%  2048/8192 bytes",
        "write     50%  4096/8192 bytes",
        "write     75%  6144/8192 bytes",
        "write    100%  8192/8192 bytes",
        "leave    done",
    ]


def test_plain_progress_first_report_of_a_phase_always_prints() -> None:
    buf = io.StringIO()
    sink = PlainProgress(buf)
    sink.update("erase", 16384, 114688)
    sink.update("erase", 114688, 114688)
    sink.update("verify", 36864, 36864)
    assert buf.getvalue().splitlines() == [
        "erase     14%  16384/114688 bytes",
        "erase    100%  114688/114688 bytes",
        "verify   100%  36864/36864 bytes",
    ]


def test_rich_bars_when_asked() -> None:
    out, err = io.StringIO(), io.StringIO()
    ui = Ui(stdout=out, stderr=err, progress=True)
    with ui.progress() as sink:
        sink.update("erase", 0, 4096)
        sink.update("erase", 4096, 4096)
        sink.update("write", 2048, 2048)
    text = err.getvalue()
    assert "erase" in text
    assert "write" in text
    assert "4.0/4.0 KiB" in text
    assert out.getvalue() == ""


def test_json_and_quiet_modes_show_no_progress() -> None:
    for ui in (
        Ui(stdout=io.StringIO(), stderr=io.StringIO(), json_mode=True),
        Ui(stdout=io.StringIO(), stderr=io.StringIO(), quiet=True),
    ):
        with ui.progress() as sink:
            assert isinstance(sink, NullProgress)
            sink.update("write", 1, 2)


def test_error_rendering() -> None:
    out, err = io.StringIO(), io.StringIO()
    ui = Ui(stdout=out, stderr=err, json_mode=True)
    ui.error(Failure(ExitCode.NOT_FOUND, "device-not-found", "no [bold]device", "try X"))
    assert err.getvalue() == "dfuse: error: no [bold]device\nhint: try X\n"  # no markup
    assert json.loads(out.getvalue()) == {
        "ok": False,
        "error": {
            "kind": "device-not-found",
            "message": "no [bold]device",
            "hint": "try X",
            "exit_code": 3,
        },
    }


def test_text_mode_prints_no_json() -> None:
    out = io.StringIO()
    ui = Ui(stdout=out, stderr=io.StringIO())
    ui.emit({"ok": True})
    ui.text("[not markup]")
    assert out.getvalue() == "[not markup]\n"
