"""DfuDevice on a part whose ROM has no mass erase (the STM32L0 row's
``mass_erase_command``): ``erase("all")``, ``mass_erase()`` and ``erase="mass"`` are
refused before any request, and a whole-flash image is erased page by page, judged by
the simulated board's memory (``peek``) and its request counters."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest

from dfuse.device import DfuDevice
from dfuse.errors import SafetyError
from dfuse.protocol.plan import EraseSector, MassErase
from dfuse.sim import RomBootloader, SimBackend, VirtualClock, board


def _open(model: RomBootloader) -> DfuDevice:
    clock = VirtualClock()
    return DfuDevice.open(backend=SimBackend([model], clock=clock), clock=clock)


@pytest.mark.parametrize("how", ["erase_all", "mass_erase", "download"])
def test_a_mass_erase_on_the_l0_is_refused_before_any_request(how: str) -> None:
    model = board("stm32l072")
    flash = model.part.flash
    kept = random.Random(how).randbytes(4096)
    model.poke(flash.address, kept)
    with _open(model) as dev:
        assert dev.part is not None
        assert dev.part.name == "stm32l072"
        before = sum(model.requests.values())
        attempt: Callable[[], object] = {
            "erase_all": lambda: dev.erase("all"),
            "mass_erase": dev.mass_erase,
            "download": lambda: dev.download(b"\x01\x02\x03\x04", address=flash.address,
                                             erase="mass"),
        }[how]  # fmt: skip
        with pytest.raises(SafetyError, match="stm32l072's ROM has no mass erase") as info:
            attempt()
        assert "expected page/sector erases" in str(info.value)
        assert sum(model.requests.values()) == before  # not one request
    assert model.peek(flash.address, len(kept)) == kept


def test_a_whole_flash_l0_image_is_erased_page_by_page_and_lands() -> None:
    model = board("stm32l072")
    flash = model.part.flash
    model.poke(flash.address, b"\x5a" * flash.size)  # not erased: the L0 refuses to program
    image = random.Random(7).randbytes(flash.size)
    with _open(model) as dev:
        (target,) = dev.download(image, address=flash.address)
    erases = target.plan.erases
    assert not any(isinstance(e, MassErase) for e in erases)
    assert len(erases) == 1536
    assert all(isinstance(e, EraseSector) for e in erases)
    assert model.peek(flash.address, flash.size) == image


def test_page_erases_by_address_still_work_on_the_l0() -> None:
    model = board("stm32l072")
    flash = model.part.flash
    model.poke(flash.address, b"\x11" * 512)
    with _open(model) as dev:
        dev.erase([flash.address + 128, flash.address + 256])
    assert model.peek(flash.address, 128) == b"\x11" * 128
    assert model.peek(flash.address + 128, 256) == bytes(256)  # the L0 erases to 0x00
    assert model.peek(flash.address + 384, 128) == b"\x11" * 128


def test_a_mass_erase_on_a_part_with_the_command_still_works() -> None:
    model = board("stm32l476")
    model.poke(model.part.flash.address, b"\x11" * 64)
    with _open(model) as dev:
        dev.mass_erase()
    assert model.peek(model.part.flash.address, 64) == b"\xff" * 64
