"""The CLI on parts other than the F411 (red team): bad input is a one-line error with a
documented exit code before any read, never a device error or an empty file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from dfuse.cli import ExitCode
from dfuse.sim import RomBootloader, board

from .conftest import Runner

Sim = Callable[..., RomBootloader]


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


def test_option_bytes_protect_sector_10_of_an_f407(run: Runner, sim: Sim) -> None:
    b = sim(board("stm32f407"))
    result = run("option-bytes", "-d", "sim:", "--protect", "10", "--yes", "--json")
    assert result.code == ExitCode.OK, result.err
    assert result.json()["option_bytes"]["write_protected"] == [10]
    assert [s for s in range(12) if b.is_write_protected(s)] == [10]
    again = run("option-bytes", "-d", "sim:", "--unprotect", "8-11", "--yes")
    assert again.code == ExitCode.OK, again.err
    assert not any(b.is_write_protected(s) for s in range(12))


@pytest.mark.parametrize(("part", "spec"), [("stm32f411xe", "10"), ("stm32f411xe", "8-9")])
def test_option_bytes_protect_past_an_f411s_sectors_is_a_one_line_usage_error(
    run: Runner, sim: Sim, part: str, spec: str
) -> None:
    b = sim(board(part))
    before = b.option_bytes
    result = run("option-bytes", "-d", "sim:", "--protect", spec, "--yes")
    assert result.code == ExitCode.USAGE, result.err
    assert "sector numbers must be 0..7" in result.err
    assert len(result.err.strip().splitlines()) == 1
    assert b.option_bytes == before


def test_option_bytes_protect_sector_12_is_refused_before_opening(run: Runner) -> None:
    result = run("option-bytes", "-d", "sim:stm32f429", "--protect", "12", "--yes")
    assert result.code == ExitCode.USAGE
    assert "covers sectors 0 to 11" in result.err
