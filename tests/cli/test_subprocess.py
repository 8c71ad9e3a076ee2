"""Real processes: ``python3 -m dfuse`` and the ``dfuse`` console script."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from dfuse import __version__

ENV = {k: v for k, v in os.environ.items() if k not in ("DFUSE_DEVICE", "COLUMNS")}


def _run(*argv: str, timeout: float = 60) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(argv, capture_output=True, timeout=timeout, env=ENV, check=False)


def test_python_m_dfuse_version() -> None:
    proc = _run(sys.executable, "-m", "dfuse", "--version")
    assert proc.returncode == 0
    assert proc.stdout.decode().strip() == f"dfuse {__version__}"


def test_python_m_dfuse_usage_error() -> None:
    proc = _run(sys.executable, "-m", "dfuse", "flash")
    assert proc.returncode == 2
    assert b"required: FILE" in proc.stderr


def test_piped_demo_prints_plain_lines() -> None:
    proc = _run(sys.executable, "-m", "dfuse", "demo", "--speed", "20")
    assert proc.returncode == 0, proc.stderr.decode()
    assert b"\x1b[" not in proc.stdout  # no colours or cursor movement when piped
    assert b"\x1b[" not in proc.stderr
    assert b"[6/6] leave DFU mode" in proc.stdout
    assert b"write    100%" in proc.stderr


def test_read_to_stdout() -> None:
    proc = _run(
        sys.executable, "-m", "dfuse", "read", "-", "-d", "sim:",
        "--address", "0x08000000", "--length", "64", "-q",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stdout == b"\xff" * 64


def test_console_script_not_found_exit_code() -> None:
    script = shutil.which("dfuse")
    if script is None:
        pytest.skip("the dfuse console script is not installed (pip install -e .)")
    proc = _run(script, "leave", "-d", "sim:", "-S", "NOPE")
    assert proc.returncode == 3
    lines = proc.stderr.decode().strip().splitlines()
    assert lines[0].startswith("dfuse: error: no DFU device found")
    assert lines[1].startswith("hint:")


def test_broken_pipe_is_quiet() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "dfuse", "list", "-d", "sim:?count=40"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=ENV,
    )
    assert proc.stdout is not None
    assert proc.stderr is not None
    proc.stdout.read(10)  # like `| head -c 10`
    proc.stdout.close()
    err = proc.stderr.read()
    proc.stderr.close()
    assert proc.wait(timeout=60) == 0
    assert err == b""
