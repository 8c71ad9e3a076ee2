"""``dfuse`` meets dfu-util habits halfway: ``-s ADDR:leave``, ``-D FILE`` and ``-U FILE``
give a one-line hint with the dfuse spelling and the ``dfuse-util`` command line, and
both suggestions work."""

from __future__ import annotations

import io
import re
import shlex
from pathlib import Path

import pytest

from dfuse.cli import main as dfuse_main
from dfuse.cli.parser import dfu_util_hint
from dfuse.compat import main as dfuse_util_main

APP = bytes(range(256)) * 40


def _dfuse(argv: list[str]) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    return dfuse_main(argv, stdout=out, stderr=err), err.getvalue()


def _suggestions(message: str) -> tuple[list[str], list[str]]:
    dfuse_line, util_line = re.findall(r"`([^`]*)`", message)
    return shlex.split(dfuse_line)[1:], shlex.split(util_line)[1:]


@pytest.mark.parametrize(
    "argv",
    [
        ["flash", "app.bin", "-s", "0x08000000:leave"],
        ["-a", "0", "-s", "0x08000000:leave", "-D", "app.bin"],
        ["flash", "-d", "sim:stm32f411", "app.bin", "--dfuse-address=0x08000000"],
        ["flash", "-Dapp.bin", "-s0x08000000"],
    ],
)
def test_flash_habits_get_a_hint_whose_suggestions_work(
    argv: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "app.bin").write_bytes(APP)
    status, err = _dfuse(argv)
    assert status == 2
    assert err.count("\n") == 1
    assert "--address 0x08000000" in err
    assert "dfuse-util" in err
    if ":leave" in " ".join(argv):
        assert "--leave" in err
    dfuse_argv, util_argv = _suggestions(err)
    if "-d" not in dfuse_argv:
        dfuse_argv += ["-d", "sim:stm32f411"]
    assert dfuse_argv[0] == "flash"
    assert _dfuse([*dfuse_argv, "-q"])[0] == 0
    env = {"DFUSE_DEVICE": "sim:stm32f411"}
    out = io.StringIO()
    assert dfuse_util_main(util_argv, stdout=out, stderr=out, environ=env) == 0, out.getvalue()


@pytest.mark.parametrize(
    ("argv", "dfuse_says"),
    [
        (
            ["read", "-s", "0x08000000:1024", "out.bin"],
            "dfuse read --address 0x08000000 --length 1024 out.bin",
        ),
        (["-a", "0", "-s", "0x08000000:mass-erase:force"], "dfuse erase --all"),
        (["-s", ":unprotect:force"], "dfuse unprotect --yes"),
        (["-U", "out.bin", "-s", "0x08000000"], "dfuse read out.bin --address 0x08000000"),
    ],
)
def test_other_habits(argv: list[str], dfuse_says: str) -> None:
    hint = dfu_util_hint(argv)
    assert hint is not None
    assert f"`{dfuse_says}`" in hint


@pytest.mark.parametrize(
    "argv",
    [
        ["flash", "app.bin", "--address", "0x08000000"],
        ["sim", "run", "--", "dfu-util", "-a", "0", "-s", "0x08000000", "-D", "app.bin"],
        ["sim", "run", "dfu-util", "-s", "0x08000000", "-D", "app.bin"],
        ["list", "-S", "ABC"],
    ],
)
def test_no_hint_for_dfuse_command_lines(argv: list[str]) -> None:
    assert dfu_util_hint(argv) is None


def test_other_mistakes_still_get_argparse_errors() -> None:
    status, err = _dfuse(["flash", "--bogus", "app.bin"])
    assert status == 2
    assert "unrecognized arguments: --bogus" in err
