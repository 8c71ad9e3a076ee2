"""Files with several targets: no target's erase may undo what another one wrote.

Targets are planned and verified one after the other, so an erase planned for a later
target that reaches memory an earlier one wrote would leave a success report over wrong
memory. Targets for the same alternate setting are merged (every touched sector erased
once), and a mass erase, which erases the flash whatever alternate setting is selected,
is planned once, before the flash is written.
"""

from __future__ import annotations

import pytest

import dfuse
from dfuse.file import Element, Target
from dfuse.protocol.plan import EraseSector, MassErase
from dfuse.selector import bench

BOOT = Element(0x08000000, b"\x01" * 100)
APP = Element(0x08000100, b"\x02" * 300)  # same 16 KiB sector as BOOT
FAR = Element(0x08020000, b"\x03" * 50)  # sector 5


def _file(*targets: Target) -> dfuse.DfuSeFile:
    return dfuse.DfuSeFile(targets, vendor_id=0x0483, product_id=0xDF11)


def test_targets_sharing_a_sector_both_survive() -> None:
    rig = bench("sim:stm32f411")
    image = _file(Target(0, "boot", (BOOT,)), Target(0, "app", (APP, FAR)))
    with rig.open() as dev:
        plans = dev.plan(image)
        assert len(plans) == 1  # one alternate setting, one plan
        steps = plans[0].plan.steps
        erased = [step.address for step in steps if isinstance(step, EraseSector)]
        assert erased == [0x08000000, 0x08020000]  # each sector once, in address order
        dev.download(image)
    chip = rig.boards[0]
    for element in (BOOT, APP, FAR):
        assert chip.peek(element.address, element.size) == element.data


def test_overlapping_targets_are_refused_before_any_traffic() -> None:
    rig = bench("sim:stm32f411")
    clash = Element(0x08000010, b"\x03" * 100)
    image = _file(Target(0, "boot", (BOOT,)), Target(0, "clash", (clash,)))
    with rig.open() as dev:
        chip = rig.boards[0]
        before = len(chip.request_log)
        with pytest.raises(dfuse.ImageError, match="overlap"):
            dev.download(image)
        assert len(chip.request_log) == before
    assert chip.peek(0x08000000, 16) == b"\xff" * 16


def test_a_mass_erase_is_planned_once_for_a_flash_and_otp_file() -> None:
    rig = bench("sim:stm32f411")
    otp = Element(0x1FFF7800, b"\x00" * 32)
    image = _file(Target(0, "flash", (BOOT,)), Target(2, "otp", (otp,)))
    with rig.open() as dev:
        plans = dev.plan(image, erase="mass", allow_otp=True)
        mass = [[isinstance(step, MassErase) for step in p.plan.steps].count(True) for p in plans]
        assert mass == [1, 0]  # the flash target's plan only
        dev.download(image, erase="mass", allow_otp=True)
    chip = rig.boards[0]
    assert chip.peek(BOOT.address, BOOT.size) == BOOT.data
    assert chip.peek(otp.address, otp.size) == otp.data
