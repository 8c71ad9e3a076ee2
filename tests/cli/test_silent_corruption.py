"""Red-team checks of the command line for silent corruption: a command that reports
success while a file or the board holds something other than what was asked.

Judged by file contents and by the simulated board's memory (``board.peek``), never by
what the command prints.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import dfuse
from dfuse.file import Element, Target, load
from dfuse.sim import PlainDfuDevice

from .conftest import Runner

Sim = Callable[..., Any]

BOOT = Element(0x08000000, bytes(range(100)))
APP = Element(0x08000100, bytes(range(200, 255)) * 6)  # same 16 KiB sector as BOOT


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _two_targets_one_alt() -> dfuse.DfuSeFile:
    return dfuse.DfuSeFile(
        (Target(0, "boot", (BOOT,)), Target(0, "app", (APP,))),
        vendor_id=0x0483,
        product_id=0xDF11,
    )


@pytest.mark.parametrize("fmt", ["hex", "s19", "bin"])
def test_extract_keeps_every_target_of_a_shared_alt(run: Runner, workdir: Path, fmt: str) -> None:
    """Two targets for alt 0 were both written to ``two-alt0.hex``: the second overwrote
    the first, and both were reported written."""
    _two_targets_one_alt().save("two.dfu")
    result = run("extract", "two.dfu", "-f", fmt, "--json")
    assert result.code == 0
    paths = [item["path"] for item in result.json()["written"]]
    assert len(set(paths)) == 2
    for path, element in zip(paths, (BOOT, APP), strict=True):
        back = load(path, address=element.address) if fmt == "bin" else load(path)
        assert isinstance(back, dfuse.DfuSeFile)
        assert back.targets[0].segments() == [(element.address, element.data)]


FLASH = 0x08000000
FAR = Element(0x08020000, bytes(range(7, 250)) * 3)  # sector 5


def _old_firmware(board: Any) -> bytes:
    old = bytes((i * 7 + 3) & 0xFF for i in range(0x40000))  # sectors 0-5 hold data
    board.poke(FLASH, old)
    return old


def _image(path: str, *elements: Element) -> None:
    dfuse.DfuSeFile((Target(0, "app", elements),), 0x0483, 0xDF11).save(path)


def test_backup_to_a_raw_binary_with_a_gap_is_refused(run: Runner, sim: Sim, workdir: Path) -> None:
    """An image in sectors 0 and 5: a .bin backup filled sectors 1-4 (never erased) with
    0xFF, so flashing the backup back wiped them."""
    board = sim()
    old = _old_firmware(board)
    _image("fw.dfu", BOOT, FAR)
    result = run("flash", "-d", "sim:", "fw.dfu", "--backup", "old.bin")
    assert result.code != 0
    assert "0xFF" in result.err
    assert not Path("old.bin").exists()
    assert board.peek(FLASH, len(old)) == old  # refused before anything was written


@pytest.mark.parametrize("suffix", ["dfu", "hex", "s19", "bin"])
def test_flash_backup_then_restore_gives_back_the_original(
    run: Runner, sim: Sim, workdir: Path, suffix: str
) -> None:
    board = sim()
    old = _old_firmware(board)
    elements = (BOOT, APP) if suffix == "bin" else (BOOT, APP, FAR)  # .bin: one run
    _image("fw.dfu", *elements)
    assert run("flash", "-d", "sim:", "fw.dfu", "--backup", f"old.{suffix}").code == 0
    for element in elements:
        assert board.peek(element.address, element.size) == element.data
    address = ["--address", "0x08000000"] if suffix == "bin" else []
    assert run("flash", "-d", "sim:", f"old.{suffix}", *address).code == 0
    assert board.peek(FLASH, len(old)) == old


@pytest.mark.parametrize("suffix", ["dfu", "hex", "s19", "bin"])
def test_read_a_whole_alt_then_flash_it_back_is_identical(
    run: Runner, sim: Sim, workdir: Path, suffix: str
) -> None:
    board = sim()
    old = _old_firmware(board)
    size = 0x80000
    whole = board.peek(FLASH, size)
    assert run("read", "-d", "sim:", f"all.{suffix}").code == 0
    assert run("erase", "-d", "sim:", "--all", "--yes").code == 0
    assert board.peek(FLASH, 16) == b"\xff" * 16
    address = ["--address", "0x08000000"] if suffix == "bin" else []
    assert run("flash", "-d", "sim:", f"all.{suffix}", *address).code == 0
    assert board.peek(FLASH, size) == whole
    assert whole[: len(old)] == old


def test_extract_build_flash_equals_flashing_the_original(
    run: Runner, sim: Sim, workdir: Path
) -> None:
    board = sim()
    original = dfuse.DfuSeFile(
        (Target(0, "boot", (BOOT,)), Target(0, "app", (APP, FAR))), 0x0483, 0xDF11
    )
    original.save("two.dfu")
    assert run("extract", "two.dfu", "-o", "part").code == 0
    built = run(
        "build", "part-alt0-1.hex", "part-alt0-2.hex", "--alt", "0", "--alt", "0", "-o", "re.dfu"
    )
    assert built.code == 0
    _old_firmware(board)
    assert run("flash", "-d", "sim:", "two.dfu").code == 0
    reference = board.peek(FLASH, 0x40000)
    _old_firmware(board)
    assert run("flash", "-d", "sim:", "re.dfu").code == 0
    assert board.peek(FLASH, 0x40000) == reference
    for element in (BOOT, APP, FAR):
        assert board.peek(element.address, element.size) == element.data


@pytest.mark.parametrize(
    ("specs", "erased"),
    [(["1"], [1]), (["0,2"], [0, 2]), (["1-3"], [1, 2, 3]), (["0x08010000", "5"], [4, 5])],
)
def test_erase_erases_exactly_the_named_sectors(
    run: Runner, sim: Sim, specs: list[str], erased: list[int]
) -> None:
    board = sim()
    old = _old_firmware(board)
    assert run("erase", "-d", "sim:", *specs).code == 0
    sizes = [0x4000] * 4 + [0x10000, 0x20000]
    at = 0
    for number, size in enumerate(sizes):
        expected = b"\xff" * size if number in erased else old[at : at + size]
        assert board.peek(FLASH + at, size) == expected, f"sector {number}"
        at += size


@pytest.mark.parametrize("extra", [[], ["--incremental"], ["--leave"], ["--backup", "b.dfu"]])
def test_dry_run_sends_nothing_that_changes_the_board(
    run: Runner, sim: Sim, workdir: Path, extra: list[str]
) -> None:
    board = sim()
    old = _old_firmware(board)
    _image("fw.dfu", BOOT, APP, FAR)
    assert run("flash", "-d", "sim:", "fw.dfu", "--dry-run", *extra).code == 0
    assert board.peek(FLASH, len(old)) == old
    assert not board.app_starts
    dnloads = [r for r in board.request_log if r.name == "DNLOAD"]
    assert [r for r in dnloads if r.setup.value != 0] == []  # no data block, no leave
    if "--incremental" not in extra:
        assert dnloads == []  # an incremental plan reads back (Set Address), nothing else


@pytest.mark.parametrize("tolerant", [True, False])
def test_flash_says_verified_only_when_it_read_back(
    run: Runner, sim: Sim, workdir: Path, tolerant: bool
) -> None:
    """A plain DFU device that resets after manifesting cannot be read back: the flash
    was reported 'verified' all the same."""
    payload = bytes(range(256)) * 5
    dfuse.DfuFile(payload, vendor_id=0x1209, product_id=0x0001).save("fw.dfu")
    chip = sim(PlainDfuDevice(manifestation_tolerant=tolerant))
    result = run("flash", "-d", "sim:", "fw.dfu", "--json")
    assert result.code == 0, result.err
    assert result.json()["verified"] is tolerant
    assert chip.peek(chip.memory.base, len(payload)) == payload
    sim(PlainDfuDevice(manifestation_tolerant=tolerant))
    text = run("flash", "-d", "sim:", "fw.dfu").out
    if tolerant:
        assert "done: verified" in text
    else:
        assert "not verified (the device cannot be read back after it manifests" in text
