"""The CLI on parts other than the F411 (red team): bad input is a one-line error with a
documented exit code before any read, never a device error or an empty file."""

from __future__ import annotations

from pathlib import Path

import pytest

from dfuse.cli import ExitCode
from dfuse.sim import board

from .conftest import Runner


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "app.bin").write_bytes(bytes(range(251)) * 4)
    return tmp_path


@pytest.mark.parametrize("part", ["stm32l072", "gd32vf103", "stm32l476"])
def test_verify_past_the_end_of_flash_is_a_usage_error_not_a_device_error(
    run: Runner, workdir: Path, part: str
) -> None:
    end = board(part).part.flash.end
    result = run("verify", "-d", f"sim:{part}", "--address", f"0x{end - 1:08X}", "app.bin")
    assert result.code == ExitCode.USAGE
    assert "goes past the memory" in result.err
    assert len(result.err.strip().splitlines()) == 1
    assert "Traceback" not in result.err


def test_read_of_zero_bytes_is_refused_and_writes_no_file(run: Runner, workdir: Path) -> None:
    result = run("read", "-d", "sim:gd32vf103", "--address", "0x08000000", "--length", "0", "o.bin")
    assert result.code == ExitCode.USAGE
    assert "reads nothing" in result.err
    assert not (workdir / "o.bin").exists()


@pytest.mark.parametrize("part", ["stm32l476", "stm32h743", "stm32l072", "gd32vf103"])
def test_option_bytes_of_other_formats_are_a_one_line_refusal(
    run: Runner, workdir: Path, part: str
) -> None:
    for args in (("option-bytes",), ("option-bytes", "--protect", "1", "--yes")):
        result = run(*args, "-d", f"sim:{part}")
        assert result.code == ExitCode.REFUSED, result.err
        assert "not in the STM32F2/F4 format" in result.err
        assert len(result.err.strip().splitlines()) == 1


def test_a_mass_erase_of_the_l0_is_a_one_line_refusal(run: Runner, workdir: Path) -> None:
    result = run("erase", "--all", "--yes", "-d", "sim:stm32l072")
    assert result.code == ExitCode.REFUSED, result.err
    assert "stm32l072's ROM has no mass erase" in result.err
    assert "expected page/sector erases" in result.err
    assert len(result.err.strip().splitlines()) == 1
    assert "Traceback" not in result.err
