"""``flash --backup``: the command's refusals and the .dfu form of the backup."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from dfuse.cli.cmd_device import _backup
from dfuse.cli.exitcodes import UsageError
from dfuse.cli.output import Ui
from dfuse.device import TargetPlan
from dfuse.file import DfuSeFile
from dfuse.protocol.plan import Plan
from dfuse.selector import open_device
from tests.cli.conftest import Runner

FLASH = 0x08000000


def _ui() -> Ui:
    return Ui(stdout=io.StringIO(), stderr=io.StringIO(), quiet=True)


def _plan(alt: int | None) -> TargetPlan:
    return TargetPlan(alt, "x", Plan(steps=(), transfer_size=2048, dfuse=alt is not None))


def test_refuses_plain_dfu_and_several_alts_outside_a_dfu_file(tmp_path: Path) -> None:
    with open_device("sim:") as dev:
        with pytest.raises(UsageError, match="needs a DfuSe device"):
            _backup(dev, (_plan(None),), str(tmp_path / "b.dfu"), _ui())
        with pytest.raises(UsageError, match=r"several alternate settings fit only in a \.dfu"):
            _backup(dev, (_plan(0), _plan(1)), str(tmp_path / "b.hex"), _ui())
        assert not (tmp_path / "b.hex").exists()
        # the same plans into a .dfu file: one (empty) target per alternate setting
        result = _backup(dev, (_plan(0), _plan(1)), str(tmp_path / "b.dfu"), _ui())
    assert result == {"path": str(tmp_path / "b.dfu"), "bytes": 0}
    saved = DfuSeFile.from_path(tmp_path / "b.dfu")
    assert [t.alt_setting for t in saved.targets] == [0, 1]


def test_flash_backup_to_a_dfu_file_keeps_the_device_ids(
    run: Runner, sim: Callable[..., Any], example_hex: Path, tmp_path: Path
) -> None:
    board = sim()
    board.poke(FLASH, b"\x42" * 32)
    out = tmp_path / "old.dfu"
    result = run("flash", "-d", "sim:", str(example_hex), "--backup", str(out), "--json")
    assert result.code == 0, result.err
    backup = DfuSeFile.from_path(out)
    assert (backup.vendor_id, backup.product_id) == (0x0483, 0xDF11)
    assert backup.targets[0].segments()[0][1][:32] == b"\x42" * 32
    assert result.json()["backup"]["bytes"] == backup.size
