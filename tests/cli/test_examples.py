"""The scripts in examples/ run and do what they say (against the simulator)."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path
from typing import Any

import pytest

from dfuse.data import example_hex_path, example_segments
from dfuse.file import DfuSeFile

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _example(name: str) -> dict[str, Any]:
    return runpy.run_path(str(EXAMPLES / name), run_name="example")


def test_build_dfu(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main = _example("build_dfu.py")["main"]
    out = tmp_path / "app.dfu"
    assert main([str(example_hex_path()), str(out), "--pid", "df11"]) == 0
    dfu = DfuSeFile.from_path(out)
    assert (dfu.vendor_id, dfu.product_id) == (0x0483, 0xDF11)
    assert dfu.targets[0].name == "Internal Flash"
    assert dfu.targets[0].segments() == example_segments()
    assert "DfuSe file v1" in capsys.readouterr().out
    assert main([str(tmp_path / "missing.hex"), str(out)]) == 1


def test_production_flasher(capsys: pytest.CaptureFixture[str]) -> None:
    main = _example("production_flasher.py")["main"]
    assert main([str(example_hex_path()), "--sim", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[:2] for line in lines] == [
        ["SIM0001", "OK"], ["SIM0002", "OK"], ["SIM0003", "OK"],
    ]  # fmt: skip


def test_production_flasher_counts_failures(capsys: pytest.CaptureFixture[str]) -> None:
    namespace = _example("production_flasher.py")
    from dfuse.file import load
    from dfuse.sim import Event, Fault, FaultKind, SimBackend, Stm32F411

    boards = [
        Stm32F411(serial="GOOD", address=1, port_numbers=(1,)),
        Stm32F411(
            serial="BAD",
            address=2,
            port_numbers=(2,),
            faults=[Fault(FaultKind.ERR_ERASE, Event.ERASE, nth=1)],
        ),
    ]
    failed = namespace["flash_all"](load(example_hex_path()), SimBackend(boards))
    assert failed == 1
    out = capsys.readouterr().out
    assert "GOOD  OK" in out
    assert "BAD  FAILED" in out
    assert boards[0].peek(0x08000000, 16) == example_segments()[0][1][:16]


def test_option_bytes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main = _example("option_bytes.py")["main"]
    assert main(["--sim"]) == 0
    assert "write-protected: 0, 1" in capsys.readouterr().out
    ob = tmp_path / "ob.bin"
    ob.write_bytes(bytes.fromhex("ec55 13aa ffff ffff ff0f 00f0 ffff ffff".replace(" ", "")))
    assert main(["--file", str(ob), "--json"]) == 0
    out = capsys.readouterr().out
    assert '"rdp_level": 1' in out
    assert "read protection is active" in out


def test_examples_run_as_scripts(tmp_path: Path) -> None:
    import subprocess

    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / "option_bytes.py"), "--sim", "--json"],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr.decode()
    assert b'"write_protected": [\n    0,\n    1\n  ]' in proc.stdout


def test_option_bytes_without_a_board_prints_one_line(tmp_path: Path) -> None:
    """No board (or no libusb): an error line and exit status 1, not a traceback."""
    import os
    import subprocess

    env = {**os.environ, "PYTHONPATH": str(EXAMPLES.parent)}
    env.pop("DFUSE_DEVICE", None)
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / "option_bytes.py")],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith("error: ")
    bad = tmp_path / "ob.bin"
    bad.write_bytes(b"\x00")
    main = _example("option_bytes.py")["main"]
    assert main(["--file", str(bad)]) == 1
