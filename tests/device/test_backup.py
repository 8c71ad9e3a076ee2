"""DfuDevice.backup: read what a plan will erase, so a download can be undone."""

from __future__ import annotations

import pytest

from dfuse.device import DfuDevice, Phase, TargetPlan
from dfuse.errors import UsageError
from dfuse.file import DfuSeFile, Element, Target
from dfuse.protocol.plan import Plan
from dfuse.sim import SimBackend, Stm32F411

_FLASH = 0x08000000


def _image(address: int, data: bytes) -> DfuSeFile:
    return DfuSeFile((Target(0, "Internal Flash", [Element(address, data)]),), 0x0483, 0xDF11)


def test_backup_holds_the_erased_sectors_and_restores_them() -> None:
    board = Stm32F411(serial="B1")
    backend = SimBackend([board])
    old = bytes((i * 7) & 0xFF for i in range(40 * 1024))  # sectors 0-2 (16K each)
    new = _image(_FLASH + 0x4000, b"\xa5" * 0x100)  # touches sector 1 only
    with DfuDevice.open(backend=backend, clock=backend.clock) as dev:
        dev.download(_image(_FLASH, old))
        plans = dev.plan(new)
        seen: list[tuple[Phase, int, int]] = []
        backup = dev.backup(plans, progress=lambda *a: seen.append(a))
        assert (backup.vendor_id, backup.product_id) == (0x0483, 0xDF11)
        [target] = backup.targets
        assert (target.alt_setting, target.name) == (0, "Internal Flash")
        # exactly sector 1 (0x08004000, 16 KiB) as it was before the download
        assert target.segments() == [(_FLASH + 0x4000, old[0x4000:0x8000])]
        assert seen[-1] == (Phase.READ, 0x4000, 0x4000)
        assert all(phase is Phase.READ for phase, _d, _t in seen)
        dev.download(new)
        assert board.peek(_FLASH + 0x4000, 4) == b"\xa5" * 4
        dev.download(backup)  # undo
        assert board.peek(_FLASH, len(old)) == old


def test_a_mass_erase_plan_backs_up_the_whole_memory() -> None:
    board = Stm32F411(flash_size=256 * 1024)
    backend = SimBackend([board])
    with DfuDevice.open(backend=backend, clock=backend.clock) as dev:
        dev.download(_image(_FLASH + 0x10000, b"\x11" * 64))
        plans = dev.plan(_image(_FLASH, b"\x22" * 16), erase="mass")
        backup = dev.backup(plans)
        [(address, data)] = backup.targets[0].segments()
        assert (address, len(data)) == (_FLASH, 256 * 1024)
        assert data[0x10000:0x10040] == b"\x11" * 64
        assert data[:0x10000] == b"\xff" * 0x10000


def test_a_plan_with_nothing_to_erase_backs_up_nothing() -> None:
    backend = SimBackend([Stm32F411()])
    with DfuDevice.open(backend=backend, clock=backend.clock) as dev:
        plans = dev.plan(_image(_FLASH, b"\x01" * 16), erase="none")
        backup = dev.backup(plans)
        assert [t.segments() for t in backup.targets] == [[]]


def test_plain_dfu_plans_are_refused() -> None:
    backend = SimBackend([Stm32F411()])
    plain = TargetPlan(None, "firmware", Plan(steps=(), transfer_size=2048, dfuse=False))
    with (
        DfuDevice.open(backend=backend, clock=backend.clock) as dev,
        pytest.raises(UsageError, match="backup needs a DfuSe device"),
    ):
        dev.backup([plain])
