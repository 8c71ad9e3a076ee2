"""``udev-rules`` and ``sim run`` argument handling."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dfuse.cli import ExitCode

from .conftest import Runner


def test_udev_rules(run: Runner) -> None:
    result = run("udev-rules")
    assert result.code == 0
    rules = [line for line in result.out.splitlines() if line and not line.startswith("#")]
    assert any('ATTRS{idVendor}=="0483", ATTRS{idProduct}=="df11"' in r for r in rules)
    assert any('ENV{ID_USB_INTERFACES}=="*:fe01??:*"' in r for r in rules)
    for rule in rules:
        assert rule.startswith('SUBSYSTEM=="usb"')
        assert rule.endswith('TAG+="uaccess"')
        # every key is KEY=="value", KEY{attr}=="value" or KEY+="value"
        for part in rule.split(", "):
            assert re.fullmatch(r'[A-Z_]+(\{[A-Za-z_]+\})?(==|\+=|=)"[^"]*"', part), part
    assert "/etc/udev/rules.d/70-dfuse.rules" in result.out


def test_udev_rules_group(run: Runner) -> None:
    result = run("udev-rules", "--group", "plugdev")
    assert result.code == 0
    assert 'MODE="0660", GROUP="plugdev"' in result.out
    bad = run("udev-rules", "--group", 'evil" RUN+="x')
    assert bad.code == ExitCode.USAGE


def test_udev_rules_json(run: Runner) -> None:
    doc = run("udev-rules", "--json").json()
    assert doc["ok"] is True
    assert doc["path"] == "/etc/udev/rules.d/70-dfuse.rules"
    assert "df11" in doc["rules"]


def test_sim_run_needs_a_command(run: Runner) -> None:
    result = run("sim", "run")
    assert result.code == ExitCode.USAGE
    assert "expected a command to run" in result.err
    assert run("sim", "run", "--").code == ExitCode.USAGE


def _bridge_missing() -> str | None:
    from dfuse.sim.usbdevfs import unavailable_reason

    reason = unavailable_reason()
    if reason is None and shutil.which("dfu-util") is None:
        return "dfu-util is not installed"
    return reason


def test_sim_run_unavailable(run: Runner, monkeypatch: pytest.MonkeyPatch) -> None:
    import dfuse.sim.usbdevfs as usbdevfs

    monkeypatch.setattr(usbdevfs, "unavailable_reason", lambda: "umockdev is not installed")
    result = run("sim", "run", "--", "true")
    assert result.code == ExitCode.USAGE
    assert "cannot run here: umockdev is not installed" in result.err


def test_sim_run_rejects_usb_selectors(run: Runner) -> None:
    if _bridge_missing():
        pytest.skip(str(_bridge_missing()))
    result = run("sim", "run", "--device", "usb:0483:df11", "--", "true")
    assert result.code == ExitCode.USAGE
    assert "expected sim:" in result.err


@pytest.mark.umockdev
def test_sim_run_dfu_util(tmp_path: Path) -> None:
    reason = _bridge_missing()
    if reason:
        pytest.skip(reason)
    proc = subprocess.run(
        [sys.executable, "-m", "dfuse", "sim", "run", "--device", "sim:?count=2", "--",
         "dfu-util", "-l"],
        capture_output=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr.decode()
    found = [line for line in proc.stdout.decode().splitlines() if line.startswith("Found DFU")]
    assert len(found) == 8  # two boards × four alternate settings
    assert any('serial="3276347F3002"' in line for line in found)


@pytest.mark.umockdev
def test_sim_run_passes_the_exit_status_through() -> None:
    reason = _bridge_missing()
    if reason:
        pytest.skip(reason)
    proc = subprocess.run(
        [sys.executable, "-m", "dfuse", "sim", "run", "--", "sh", "-c", "exit 3"],
        capture_output=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 3


def test_sim_parts_lists_every_part_with_its_evidence_status(run: Runner) -> None:
    from dfuse.parts import all_parts

    result = run("sim", "parts")
    assert result.code == 0
    lines = result.out.splitlines()
    names = [line.split()[0] for line in lines[1:]]
    assert names == [p.name for p in all_parts()]
    l476 = next(line for line in lines if line.startswith("stm32l476 "))
    assert "unconfirmed" in l476
    assert "stall_getstatus_while_busy" in l476
    doc = run("sim", "parts", "--json").json()
    assert doc["ok"] is True
    rows = {row["name"]: row for row in doc["parts"]}
    assert rows["stm32f411xe"]["alts"][0]["string"] == (
        "@Internal Flash  /0x08000000/04*016Kg,01*064Kg,03*128Kg"
    )
    assert rows["stm32f411xe"]["alts"][0]["status"] == "observed"
    assert rows["stm32f411xc"]["observed"] is False


def test_sim_state_file_keeps_the_flash_between_commands(run: Runner, tmp_path: Path) -> None:
    """Issue 16: `flash` then `verify` on a sim: board, in two commands."""
    image = tmp_path / "app.bin"
    image.write_bytes(bytes(range(256)) * 16)
    state = tmp_path / "board.json"
    selector = f"sim:stm32l476?state={state}"
    assert run("flash", "-d", selector, "--address", "0x08000000", str(image)).code == 0
    assert state.exists()
    assert run("verify", "-d", selector, "--address", "0x08000000", str(image)).code == 0
    fresh = run("verify", "-d", "sim:stm32l476", "--address", "0x08000000", str(image))
    assert fresh.code != 0  # without the state file a new board is blank
