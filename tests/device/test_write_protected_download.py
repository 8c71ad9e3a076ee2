"""A mass erase over write-protected flash (F4 nWRP) is refused before anything is
erased: the flash refuses it while any sector is protected, the ROM reports it done, and
the writes after it would land on flash never erased (judged by the board's memory)."""

from __future__ import annotations

import random

import pytest

from dfuse.device import DfuDevice
from dfuse.errors import SafetyError, VerifyError
from dfuse.sim import SimBackend, VirtualClock, board
from dfuse.sim.rom import RomBootloader

OLD = 0x5A


def _board(protected: list[int]) -> RomBootloader:
    b = board("stm32f411xe")
    b.poke(b.part.flash.address, bytes([OLD]) * b.part.flash.size)
    b.set_write_protection(protected)
    return b


def _download(b: RomBootloader, image: bytes, address: int, **options: object) -> None:
    clock = VirtualClock()
    with DfuDevice.open(backend=SimBackend([b], clock=clock), clock=clock) as dev:
        dev.download(image, address=address, **options)  # type: ignore[arg-type]


@pytest.mark.parametrize("protected", [[7], [0], [3, 5]])
def test_a_whole_flash_image_is_refused_not_mass_erased_over_protection(
    protected: list[int],
) -> None:
    b = _board(protected)
    flash = b.part.flash
    image = random.Random(1).randbytes(flash.size)
    with pytest.raises(SafetyError, match="write-protected") as caught:
        _download(b, image, flash.address)
    assert all(str(n) in str(caught.value) for n in protected)
    assert b.peek(flash.address, flash.size) == bytes([OLD]) * flash.size


def test_an_asked_mass_erase_is_refused_while_a_sector_is_protected() -> None:
    b = _board([7])
    flash = b.part.flash
    with pytest.raises(SafetyError, match=r"mass erase.*sectors 7"):
        _download(b, bytes(range(256)), flash.address, erase="mass")
    assert b.peek(flash.address, flash.size) == bytes([OLD]) * flash.size


def test_a_sector_download_over_protection_fails_its_verify_protected_sector_kept() -> None:
    b = _board([7])
    flash = b.part.flash
    sector7 = flash.address + 0x60000
    with pytest.raises(VerifyError) as caught:
        _download(b, bytes(range(256)) * 4, sector7 - 512)
    assert caught.value.address == sector7
    assert b.peek(sector7, 0x20000) == bytes([OLD]) * 0x20000


def test_an_image_beside_the_protected_sectors_is_written() -> None:
    b = _board([7])
    flash = b.part.flash
    image = random.Random(2).randbytes(0x10000)
    _download(b, image, flash.address)
    assert b.peek(flash.address, len(image)) == image
    assert b.peek(flash.address + 0x60000, 0x20000) == bytes([OLD]) * 0x20000


def test_mass_erase_is_refused_while_a_sector_is_protected() -> None:
    b = _board([2])
    flash = b.part.flash
    clock = VirtualClock()
    dev = DfuDevice.open(backend=SimBackend([b], clock=clock), clock=clock)
    with dev, pytest.raises(SafetyError, match=r"mass erase.*sectors 2"):
        dev.mass_erase()
    assert b.peek(flash.address, flash.size) == bytes([OLD]) * flash.size


def test_mass_erase_without_protection_erases() -> None:
    b = _board([])
    flash = b.part.flash
    clock = VirtualClock()
    with DfuDevice.open(backend=SimBackend([b], clock=clock), clock=clock) as dev:
        dev.mass_erase()
    assert b.peek(flash.address, flash.size) == b"\xff" * flash.size
