"""dfuse-util on the simulator alone: device selection like dfuse's ($DFUSE_DEVICE,
``-d sim:...``), run-time devices, several boards, the new ``--verify``, read
unprotect, and the console script."""

from __future__ import annotations

import io
import os
import random
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from dfuse.compat import main
from dfuse.file import DfuSeFile, Element, Target
from dfuse.selector import Bench, bench

FLASH = 0x0800_0000
APP = random.Random(3).randbytes(12_345)
ROOT = Path(__file__).resolve().parents[2]


def run(
    args: list[str], b: Bench | None = None, env: dict[str, str] | None = None
) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = main(args, stdout=out, stderr=err, environ=env or {}, bench=b)
    return status, out.getvalue(), err.getvalue()


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "app.bin").write_bytes(APP)
    return tmp_path


def test_python_m_lists_the_board_dfuse_device_names() -> None:
    env = {**os.environ, "DFUSE_DEVICE": "sim:stm32f411"}
    proc = subprocess.run(
        [sys.executable, "-m", "dfuse.compat", "-l"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stdout.splitlines() if line.startswith("Found DFU: ")]
    assert lines[-1] == (
        'Found DFU: [0483:df11] ver=2200, devnum=1, cfg=1, intf=0, path="1-1", alt=0,'
        ' name="@Internal Flash  /0x08000000/04*016Kg,01*064Kg,03*128Kg",'
        ' serial="3276347F3034"'
    )
    assert len(lines) == 4


def test_console_script_is_declared() -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    module, _, func = scripts["dfuse-util"].partition(":")
    assert getattr(__import__(module, fromlist=[func]), func) is main


def test_device_option_takes_a_dfuse_selector(in_tmp: Path) -> None:
    status, out, _ = run(["-d", "sim:stm32f411?count=2&serial=B", "-l"])
    assert status == 0
    assert out.count("Found DFU") == 8
    assert 'path="1-2", alt=0' in out
    assert 'serial="B02"' in out


def test_several_boards_need_a_path_or_serial(in_tmp: Path) -> None:
    args = ["-a", "0", "-s", "0x08000000", "-D", "app.bin"]
    b = bench("sim:stm32f411?count=2")
    status, _, err = run(args, b)
    assert status == 74
    assert "More than one DFU capable USB device found!" in err
    for extra in (["-p", "1-2"], ["-S", b.boards[1].serial]):
        b = bench("sim:stm32f411?count=2")
        status, _, err = run([*extra, *args], b)
        assert status == 0, err
        assert b.boards[1].peek(FLASH, len(APP)) == APP
        assert b.boards[0].peek(FLASH, 16) == b"\xff" * 16


def test_no_device_is_exit_74(in_tmp: Path) -> None:
    status, _, err = run(
        ["-S", "nobody", "-a", "0", "-s", "0x08000000", "-D", "app.bin"], bench("sim:stm32f411")
    )
    assert (status, err) == (74, "dfuse-util: No DFU capable USB device available\n")


def test_bad_dfuse_device_is_exit_64(in_tmp: Path) -> None:
    status, _, err = run(["-l"], env={"DFUSE_DEVICE": "sim:nope"})
    assert status == 64
    assert err.count("\n") == 1
    assert "sim:nope" in err


def test_runtime_device_is_detached_then_flashed(in_tmp: Path) -> None:
    b = bench("sim:stm32f411?mode=app")
    status, out, _ = run(["-l"], b)
    assert status == 0
    assert "Found Runtime: [0483:5740]" in out
    args = ["-d", "0483:5740,0483:df11", "-a", "0", "-s", "0x08000000:leave", "-D", "app.bin"]
    status, out, err = run(args, b)
    assert status == 0, err
    assert "Device really in Run-Time Mode" in out
    b.settle()
    assert b.boards[0].peek(FLASH, len(APP)) == APP


def test_detach_only(in_tmp: Path) -> None:
    b = bench("sim:stm32f411?mode=app")
    assert run(["-e"], b)[0] == 0
    b.settle()
    assert "Found DFU: [0483:df11]" in run(["-l"], b)[1]
    status, _, err = run(["-e", "-a", "0"], bench("sim:stm32f411"))  # already in DFU mode
    assert status == 0
    assert "can't detach" in err


def test_verify_reads_back_and_a_plain_bin_is_no_warning(in_tmp: Path) -> None:
    args = ["-a", "0", "-s", "0x08000000", "-D", "app.bin"]
    plain = bench("sim:stm32f411")
    status, _, err = run(args, plain)
    assert (status, err) == (0, "")
    assert plain.boards[0].requests.get("UPLOAD", 0) == 0  # dfu-util reads nothing back
    checked = bench("sim:stm32f411")
    status, _, err = run(["--verify", *args], checked)
    assert (status, err) == (0, "")
    assert checked.boards[0].requests["UPLOAD"] >= len(APP) // 2048
    assert checked.boards[0].peek(FLASH, len(APP)) == APP


def test_download_from_stdin(in_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    b = bench("sim:stm32f411")
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(APP)))
    assert run(["-a", "0", "-s", "0x08010000", "-D", "-"], b)[0] == 0
    assert b.boards[0].peek(0x0801_0000, len(APP)) == APP


def test_unprotect_with_force_erases_a_protected_board(in_tmp: Path) -> None:
    b = bench("sim:stm32f411")
    board = b.boards[0]
    board.poke(FLASH, APP)
    board.set_read_protection(1)
    status, _, _ = run(["-a", "0", "-s", ":unprotect"], b)
    assert status == 64  # needs force, as in dfu-util
    assert board.rdp_level == 1
    status, out, err = run(["-a", "0", "-s", ":unprotect:force"], b)
    assert status == 0, err
    assert "Device disconnects, erases flash and resets now" in out
    b.settle(lambda: board.rdp_level == 0 and board.connected)
    assert board.peek(FLASH, len(APP)) == b"\xff" * len(APP)


def test_dfuse_file_targets_for_absent_alts_are_skipped_with_a_warning(in_tmp: Path) -> None:
    image = DfuSeFile(
        [Target(0, "Flash", [Element(FLASH, APP)]), Target(9, "nowhere", [Element(0, b"x")])]
    )
    (in_tmp / "app.dfu").write_bytes(image.to_bytes())
    b = bench("sim:stm32f411")
    status, _, err = run(["-a", "0", "-D", "app.dfu"], b)
    assert status == 0, err
    assert "No alternate setting 9 (skipping elements)" in err
    assert b.boards[0].peek(FLASH, len(APP)) == APP


def test_transfer_size_and_reset(in_tmp: Path) -> None:
    b = bench("sim:stm32f411")
    status, out, err = run(["-t", "1024", "-R", "-a", "0", "-s", "0x08000000", "-D", "app.bin"], b)
    assert status == 0, err
    assert "using the device's transfer size 2048, not 1024" in out
    assert "Resetting USB" in out
    assert b.boards[0].peek(FLASH, len(APP)) == APP


def test_option_bytes_write_as_dfu_util_would_but_rdp2_needs_force(in_tmp: Path) -> None:
    b = bench("sim:stm32f411")
    board = b.boards[0]
    new = bytearray(board.option_bytes)
    new[8] &= 0xFE  # nWRP0 cleared: sector 0 write-protected
    new[10] = new[8] ^ 0xFF  # and its complement
    (in_tmp / "ob.bin").write_bytes(bytes(new))
    status, _, err = run(["-a", "1", "-s", "0x1FFFC000:will-reset", "-D", "ob.bin"], b)
    assert status == 0, err
    b.settle(lambda: board.connected)
    assert board.option_bytes == bytes(new)
    rdp2 = bytearray(board.option_bytes)
    rdp2[1] = 0xCC
    (in_tmp / "rdp2.bin").write_bytes(bytes(rdp2))
    status, _, err = run(["-a", "1", "-s", "0x1FFFC000", "-D", "rdp2.bin"], b)
    assert status == 64, err
    assert board.rdp_level == 0


def test_verbose_logs_every_request_and_stops_afterwards(in_tmp: Path) -> None:
    args = ["-v", "-a", "0", "-s", "0x08000000:32", "-U", "v.bin"]
    status, _, err = run(args, bench("sim:stm32f411"))
    assert status == 0
    assert "UPLOAD block 2 (32 bytes)" in err
    status, _, err = run(
        ["-a", "0", "-s", "0x08000000:32", "-U", "quiet.bin"], bench("sim:stm32f411")
    )
    assert status == 0
    assert "UPLOAD" not in err


@pytest.mark.parametrize("part", ["stm32l476", "gd32vf103"])
def test_an_upload_past_the_memory_fails_and_leaves_no_file_behind(in_tmp: Path, part: str) -> None:
    b = bench(f"sim:{part}")
    end = b.boards[0].part.flash.end
    args = ["-a", "0", "-s", f"0x{end - 16:08X}:32", "-U", "up.bin"]
    status, _, err = run(args, b)
    assert status == 74
    assert "goes past the memory" in err
    assert not (in_tmp / "up.bin").exists()  # a rerun does not stop at "File exists"
    status, _, _ = run(["-a", "0", "-s", f"0x{end - 16:08X}:16", "-U", "up.bin"], b)
    assert status == 0
    assert (in_tmp / "up.bin").read_bytes() == b.boards[0].peek(end - 16, 16)


def test_list_prints_the_device_configuration_value(in_tmp: Path) -> None:
    from dfuse.selector import DeviceSelector
    from dfuse.sim import SimBackend, Stm32F411

    class SecondConfiguration(Stm32F411):
        def configuration_descriptor(self, index: int = 0) -> bytes:
            raw = bytearray(super().configuration_descriptor(index))
            raw[5] = 2  # bConfigurationValue
            return bytes(raw)

    board = SecondConfiguration(serial="C2")
    b = Bench(DeviceSelector.parse("usb:"), SimBackend([board]), (board,))
    status, out, _ = run(["-l"], b)
    assert status == 0
    assert out.count("cfg=2, intf=0") == 4
    assert "cfg=1" not in out
    status, out, _ = run(["-l", "-c", "1"], b)  # -c picks the configuration
    assert status == 0
    assert "Found DFU" not in out
    status, out, _ = run(["-l", "-c", "2"], b)
    assert status == 0
    assert out.count("Found DFU") == 4
