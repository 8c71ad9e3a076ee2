"""The erase choice and the mass-erase guard against the part row's
``mass_erase_command`` (dfuse.planning.rules.choose_erase, dfuse.planning.download):
a part whose ROM has no mass erase (STM32L0) never gets one planned, and one asked for is
refused before anything is read or sent."""

from __future__ import annotations

import dataclasses
from typing import NoReturn

import pytest

from dfuse.errors import SafetyError
from dfuse.layout import MemoryLayout
from dfuse.optionbytes import OptionBytes
from dfuse.parts import MassEraseCommand, get
from dfuse.planning import download as dl
from dfuse.planning.rules import COMMAND_S, choose_erase
from dfuse.protocol.plan import EraseMode, EraseSector, MassErase, Plan

L0 = get("stm32l072")
L0_FLASH = MemoryLayout.parse(L0.alts[0].string)


def _whole() -> list[tuple[int, bytes | memoryview]]:
    return [(L0.flash.address, bytes(L0.flash.size))]


def test_a_whole_flash_l0_image_is_erased_page_by_page() -> None:
    choice = choose_erase(L0, L0_FLASH, _whole(), EraseMode.SECTORS)
    assert choice.mode is EraseMode.SECTORS
    assert choice.mass_s is None
    assert choice.sectors_s == pytest.approx(1536 * (L0.flash.erase_time(128).typ + COMMAND_S))


def test_the_same_row_with_the_command_would_mass_erase() -> None:
    # the datasheet times alone favour the mass erase (4.9 s against 1536 x 5.2 ms): only
    # the row fact keeps the planner from it
    flash = dataclasses.replace(L0.flash, mass_erase_command=MassEraseCommand())
    with_command = dataclasses.replace(L0, flash=flash)
    assert choose_erase(with_command, L0_FLASH, _whole(), EraseMode.SECTORS).mode is EraseMode.MASS


def test_a_mass_erase_on_the_l0_is_refused_with_what_was_expected() -> None:
    with pytest.raises(SafetyError) as info:
        dl.check_mass_erase(L0)
    text = str(info.value)
    assert "stm32l072" in text
    assert "no mass erase" in text
    assert "erase('all')" in text
    assert "expected page/sector erases" in text
    assert "1536 pages" in text
    dl.check_mass_erase(get("stm32l476"))  # has one
    dl.check_mass_erase(None)  # an unknown device is taken at its word


def test_the_guard_refuses_a_mass_erase_plan_before_reading_anything() -> None:
    def read_options() -> OptionBytes:
        raise AssertionError("the option bytes must not be read")

    mass = Plan((MassErase(),), 2048)
    with pytest.raises(SafetyError, match="no mass erase"):
        dl.guard_mass_erase(L0_FLASH, mass, L0, None, read_options)
    pages = Plan((EraseSector(0, 0x08000000, 128),), 2048)
    dl.guard_mass_erase(L0_FLASH, pages, L0, None, read_options)


def test_a_download_asking_for_a_mass_erase_on_the_l0_is_refused_before_any_read() -> None:
    def never(*_args: object) -> NoReturn:
        raise AssertionError("nothing may be read")

    jobs: list[dl.Job] = [(0, L0_FLASH, _whole())]
    with pytest.raises(SafetyError, match="no mass erase"):
        dl.plan_targets(
            jobs, mode=EraseMode.MASS, verify=True, skip_erased=False, leave=False,
            leave_address=None, incremental=False, guards=dl.Guards(), transfer_size=2048,
            max_block=2048, check_otp=never, read_back=never, part=L0,
        )  # fmt: skip
    (target,) = dl.plan_targets(
        jobs, mode=EraseMode.SECTORS, verify=True, skip_erased=False, leave=False,
        leave_address=None, incremental=False, guards=dl.Guards(), transfer_size=2048,
        max_block=2048, check_otp=never, read_back=never, part=L0,
    )  # fmt: skip
    assert len(target.plan.erases) == 1536
    assert not any(isinstance(e, MassErase) for e in target.plan.erases)
