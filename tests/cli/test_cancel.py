"""Ctrl-C during ``dfuse flash`` takes the cancel-token path (issue 14): the download stops at
its next safe point, the device goes back to dfuIDLE, the exit code is 130, the ``--log``
record says what was erased and written, and the next run finishes the job."""

from __future__ import annotations

import io
import json
import os
import random
import signal
import threading
from pathlib import Path

import pytest

from dfuse.cli import main
from dfuse.cli.exitcodes import ExitCode

IMAGE = random.Random(14).randbytes(300_000)  # seven sectors: seconds of real-time erase


def _run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(argv, stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def _ctrl_c_after(seconds: float) -> threading.Timer:
    timer = threading.Timer(seconds, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    return timer


@pytest.mark.skipif(
    threading.current_thread() is not threading.main_thread(), reason="signals need the main thread"
)
def test_ctrl_c_cancels_at_a_safe_point_and_the_next_run_recovers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("app.bin").write_bytes(IMAGE)
    log = str(tmp_path / "r.sqlite")
    # real time (speed=1): the erase of seven sectors takes seconds, Ctrl-C comes during it
    device = "sim:stm32f411?speed=1&state=board.json"
    argv = ["flash", "app.bin", "--address", "0x08000000", "-d", device, "--log", log]
    timer = _ctrl_c_after(0.8)
    try:
        code, _out, err = _run(argv)
    finally:
        timer.cancel()
    assert code == int(ExitCode.INTERRUPTED) == 130, err
    assert "Traceback" not in err
    assert "cancelled during erase" in err
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored
    code, out, _ = _run(["log", "--log", log, "--json", "--failed"])
    [record] = json.loads(out)["records"]
    assert record["error_type"] == "CancelledError"
    assert record["bytes_written"] == 0
    assert 1 <= record["sectors_erased"] < 7  # what was really erased, not 0
    # the board was left in dfuIDLE: the next run flashes it completely
    code, _out, err = _run(["flash", "app.bin", "--address", "0x08000000", "-d",
                            "sim:stm32f411?state=board.json"])  # fmt: skip
    assert code == 0, err
    code, _out, err = _run(["verify", "app.bin", "--address", "0x08000000", "-d",
                            "sim:stm32f411?state=board.json"])  # fmt: skip
    assert code == 0, err
