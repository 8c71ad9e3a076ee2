"""Run one command line through real dfu-util (over the usbdevfs bridge) and through
dfuse-util (in process, on the pyusb simulator), each on a fresh simulated STM32F411
set up the same way, and hand back what each did to its board."""

from __future__ import annotations

import io
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from dfuse.clock import Clock
from dfuse.compat import main
from dfuse.selector import Bench, DeviceSelector
from dfuse.sim import (
    NO_QUIRKS,
    Duration,
    FlashTiming,
    Quirks,
    SimBackend,
    Stm32F411,
    Timing,
    VirtualClock,
    usbdevfs,
)

FLASH = 0x0800_0000
FLASH_SIZE = 512 * 1024
REASON = usbdevfs.unavailable_reason()
DFU_UTIL = shutil.which("dfu-util")

_QUICK = Duration(0.002, 0.002)
#: dfu-util waits bwPollTimeout in real time: keep the simulated flash quick.
FAST = Timing(
    flash=FlashTiming(
        sector_erase=((16 * 1024, _QUICK), (64 * 1024, _QUICK), (128 * 1024, _QUICK)),
        mass_erase=Duration(0.01, 0.01),
        option_write=_QUICK,
    ),
    reenumerate=0.05,
    spread=0.0,
)

Setup = Callable[[Any], None]


#: Builds the simulated board for one run: (timing, clock or None for the model's own).
Factory = Callable[[Timing, Clock | None], Any]


def stm32f411(quirks: Quirks = NO_QUIRKS) -> Factory:
    def make(timing: Timing, clock: Clock | None) -> Stm32F411:
        return Stm32F411(timing=timing, clock=clock, quirks=quirks)

    return make


@dataclass
class Outcome:
    """What one tool did: its exit status, its output, the board after it, its directory."""

    status: int
    output: str
    board: Any
    cwd: Path

    @property
    def flash(self) -> bytes:
        return bytes(self.board.peek(FLASH, FLASH_SIZE))

    def file(self, name: str) -> bytes | None:
        path = self.cwd / name
        return path.read_bytes() if path.exists() else None


def _fresh_dir(root: Path, name: str, files: dict[str, bytes]) -> Path:
    n = 0
    while (root / f"{name}-{n}").exists():
        n += 1
    where = root / f"{name}-{n}"
    where.mkdir()
    for fname, content in files.items():
        (where / fname).write_bytes(content)
    return where


def run_dfu_util(
    tmp: Path,
    args: list[str],
    files: dict[str, bytes],
    setup: Setup | None = None,
    quirks: Quirks = NO_QUIRKS,
    factory: Factory | None = None,
) -> Outcome:
    """``dfu-util ARGS`` against a simulated board through umockdev."""
    cwd = _fresh_dir(tmp, "dfu-util", files)
    board = (factory or stm32f411(quirks))(FAST, None)
    if setup is not None:
        setup(board)
    script = 'exec dfu-util "$@" > dfu-util.log 2>&1'
    status = usbdevfs.run(["sh", "-c", script, "sh", *args], [board], cwd=cwd, timeout=60)
    return Outcome(status, (cwd / "dfu-util.log").read_text(errors="replace"), board, cwd)


def run_dfuse_util(
    tmp: Path,
    args: list[str],
    files: dict[str, bytes],
    setup: Setup | None = None,
    quirks: Quirks = NO_QUIRKS,
    factory: Factory | None = None,
) -> Outcome:
    """``dfuse-util ARGS`` in this process against a simulated board (pyusb backend)."""
    cwd = _fresh_dir(tmp, "dfuse-util", files)
    clock = VirtualClock()
    board = (factory or stm32f411(quirks))(FAST, clock)
    b = Bench(DeviceSelector.parse("sim:stm32f411"), SimBackend([board], clock), (board,), clock)
    if setup is not None:
        setup(board)
    out, err = io.StringIO(), io.StringIO()
    old = Path.cwd()
    os.chdir(cwd)
    try:
        status = main(args, stdout=out, stderr=err, environ={}, bench=b)
    finally:
        os.chdir(old)
    b.settle()
    return Outcome(status, out.getvalue() + err.getvalue(), board, cwd)


needs_dfu_util_bridge = pytest.mark.skipif(
    REASON is not None or DFU_UTIL is None,
    reason=f"needs dfu-util and the usbdevfs bridge ({REASON or 'dfu-util is not installed'})",
)


@pytest.fixture
def both(tmp_path: Path) -> Callable[..., tuple[Outcome, Outcome]]:
    """``both(args, files=..., setup=...)`` -> (dfu-util outcome, dfuse-util outcome)."""

    def run(
        args: list[str],
        files: dict[str, bytes] | None = None,
        setup: Setup | None = None,
        quirks: Quirks = NO_QUIRKS,
    ) -> tuple[Outcome, Outcome]:
        given = files or {}
        ref = run_dfu_util(tmp_path, args, given, setup, quirks)
        ours = run_dfuse_util(tmp_path, args, given, setup, quirks)
        return ref, ours

    return run
