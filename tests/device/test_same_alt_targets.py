"""Several targets of one file for the same alternate setting are flashed as one image.

Planned one after the other, the second target's sector erase would wipe what the first
target wrote in a shared sector, and each target's own verify would still pass: a success
report over wrong memory. They are merged, so every touched sector is erased once.
"""

from __future__ import annotations

import pytest

import dfuse
from dfuse.file import Element, Target
from dfuse.protocol.plan import EraseSector
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
