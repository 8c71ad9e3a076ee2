"""Third-party hosts flash a sample of parts (issue 13 item 5): MicroPython's pydfu request
sequence (replayed with our own code, :class:`tests.sim.test_third_party.PydfuReplay`) and
unmodified dfu-util through the usbdevfs bridge. The board's memory (``peek``) must hold
the image: the part boards behave for other hosts as for ours."""

from __future__ import annotations

import dataclasses
import random
import shutil
from pathlib import Path

import pytest

from dfuse.parts import get
from dfuse.sim import Duration, FlashTiming, SimBackend, Timing, board, usbdevfs
from dfuse.sim.rom import RomBootloader
from tests.sim.test_third_party import PydfuReplay

SAMPLE = ["stm32f072", "stm32f411", "stm32h743", "stm32l476", "gd32vf103"]
_QUICK = Duration(0.002, 0.002)


def _image(name: str, size: int = 5000) -> bytes:
    unit = get(name).flash.program_unit  # third-party hosts do not pad
    return random.Random(name).randbytes(size // unit * unit)


@pytest.mark.parametrize("name", SAMPLE)
def test_pydfu_flashes_a_part(name: str) -> None:
    model = board(name, firmware_check=False)
    # pydfu asks GETSTATUS again at once and wants dfuDNLOAD-IDLE: an L4-class ROM that
    # answers (or stalls) it while busy breaks pydfu (dfu-util c15ee60); this board holds it
    model.quirks = dataclasses.replace(model.quirks, stall_getstatus_while_busy=False)
    host = PydfuReplay(SimBackend([model]))
    address = model.part.flash.address + 0x800
    image = _image(name)
    host.write_elements([(address, image)])
    assert model.peek(address, len(image)) == image


def _fast(model: RomBootloader) -> RomBootloader:
    """The board with millisecond flash operations: dfu-util waits in real time."""
    flash = model.part.flash
    model.timing.timing = Timing(
        flash=FlashTiming(
            word_program=Duration(1e-6, 1e-6),
            sector_erase=tuple((e.size, _QUICK) for e in flash.erase_times),
            mass_erase=_QUICK,
            option_write=_QUICK,
            program_width=flash.program_width,
        ),
        reenumerate=0.1,
        spread=0.0,
    )
    return model


@pytest.mark.umockdev
@pytest.mark.skipif(shutil.which("dfu-util") is None, reason="dfu-util is not installed")
@pytest.mark.skipif(
    usbdevfs.unavailable_reason() is not None,
    reason=f"usbdevfs bridge: {usbdevfs.unavailable_reason()}",
)
@pytest.mark.parametrize("name", ["stm32f072", "stm32h743", "stm32l476", "gd32vf103"])
def test_dfu_util_flashes_a_part(name: str, tmp_path: Path) -> None:
    model = _fast(board(name, firmware_check=False))
    address = model.part.flash.address + 0x800
    image = _image(name)
    (tmp_path / "app.bin").write_bytes(image)
    argv = ["dfu-util", "-a", "0", "-s", f"0x{address:08x}", "-D", "app.bin"]
    assert usbdevfs.run(argv, [model], cwd=tmp_path, timeout=60) == 0
    assert model.peek(address, len(image)) == image
