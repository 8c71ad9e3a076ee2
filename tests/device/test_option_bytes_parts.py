"""Option bytes on parts other than the F411: the STM32F2/F4 block is found on a layout
that lists two (F429), and a part whose block has another format is refused before
anything is read as, or written in, the F4 format (judged by the board's memory)."""

from __future__ import annotations

import pytest

from dfuse.device import DfuDevice
from dfuse.errors import SafetyError
from dfuse.file.model import DfuSeFile, Target
from dfuse.optionbytes import OPTION_BYTES_ADDRESS, OPTION_BYTES_SIZE
from dfuse.sim import SimBackend, VirtualClock, board
from dfuse.sim.rom import RomBootloader


def _open(b: RomBootloader) -> DfuDevice:
    clock = VirtualClock()
    return DfuDevice.open(backend=SimBackend([b], clock=clock), clock=clock)


def test_the_f429_reads_and_changes_its_bank_1_block_not_bank_2() -> None:
    b = board("stm32f429")
    bank2 = b.peek(0x1FFEC000, 16)
    with _open(b) as dev:
        assert dev.read_option_bytes().write_protected == frozenset()
        dev.protect_sectors([1], wait_s=1.0)
    block = b.peek(OPTION_BYTES_ADDRESS, OPTION_BYTES_SIZE)
    assert block[8] & 0b10 == 0  # nWRP bit 1 cleared: sector 1 protected
    assert b.is_write_protected(1)
    assert not b.is_write_protected(0)
    assert b.peek(0x1FFEC000, 16) == bank2


@pytest.mark.parametrize("name", ["stm32l476", "stm32h743", "stm32l072", "gd32vf103", "stm32f072"])
def test_option_bytes_in_another_format_are_refused(name: str) -> None:
    b = board(name)
    ob = b.part.option_bytes
    assert ob is not None
    before = b.peek(ob.address, ob.size)
    with _open(b) as dev:
        with pytest.raises(SafetyError, match=f"{name}.*not in the STM32F2/F4 format"):
            dev.read_option_bytes()
        with pytest.raises(SafetyError, match="not in the STM32F2/F4 format"):
            dev.protect_sectors([1], wait_s=1.0)
        alt = next(a.number for a in dev.info.alt_settings if a.label == "Option Bytes")
        image = DfuSeFile(targets=(Target.from_segments([(ob.address, bytes(before))],
                                                        alt_setting=alt),))  # fmt: skip
        with pytest.raises(SafetyError, match="not in the STM32F2/F4 format"):
            dev.download(image, allow_option_bytes=True)
    assert b.peek(ob.address, ob.size) == before


@pytest.mark.parametrize("op", ["erase", "mass_erase", "read_option_bytes"])
def test_a_run_time_device_is_refused_with_the_operation_named(op: str) -> None:
    from dfuse.errors import UsageError
    from dfuse.sim import Stm32F411App

    app = Stm32F411App()
    clock = VirtualClock()
    dev = DfuDevice.open(backend=SimBackend([app], clock=clock), clock=clock)
    calls = {
        "erase": lambda: dev.erase([0x08000000]),
        "mass_erase": dev.mass_erase,
        "read_option_bytes": dev.read_option_bytes,
    }
    with pytest.raises(UsageError, match=r"cannot (erase|read the option bytes): .*run-time"):
        calls[op]()


def test_the_f429_option_bytes_download_as_the_16_byte_bank_1_block() -> None:
    b = board("stm32f429")
    bank2 = b.peek(0x1FFEC000, 16)
    with _open(b) as dev:
        new = dev.read_option_bytes().with_sectors_protected([3])
        alt = next(a.number for a in dev.info.alt_settings if a.label == "Option Bytes")
        block = Target.from_segments([(OPTION_BYTES_ADDRESS, new.to_bytes())], alt_setting=alt)
        dev.download(DfuSeFile(targets=(block,)), allow_option_bytes=True)
    assert b.is_write_protected(3)
    assert b.peek(OPTION_BYTES_ADDRESS, OPTION_BYTES_SIZE)[8] == new.to_bytes()[8]
    assert b.peek(0x1FFEC000, 16) == bank2
