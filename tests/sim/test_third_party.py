"""A third-party host flow against the simulator: the exact control-transfer sequence of
MicroPython's ``tools/pydfu.py`` (which needs nothing but pyusb), replayed here with our own
code. pydfu never waits bwPollTimeout: it asks GETSTATUS again at once with a 20 s timeout,
so the device must hold that request until the operation ends."""

from __future__ import annotations

import dataclasses
import errno
import struct

import pytest
import usb.core
import usb.util

from dfuse.protocol.constants import State
from dfuse.sim import AppStart, SimBackend, Stm32F411, board

INTF = 0
TIMEOUT = 4000


class PydfuReplay:
    """pydfu's requests, in pydfu's order, with pydfu's timeouts."""

    def __init__(self, backend: SimBackend) -> None:
        def is_dfu(dev: usb.core.Device) -> bool:
            for cfg in dev:
                for intf in cfg:
                    return bool(intf.bInterfaceClass == 0xFE and intf.bInterfaceSubClass == 1)
            return False

        devices = list(usb.core.find(find_all=True, custom_match=is_dfu, backend=backend))
        assert len(devices) == 1
        self.dev = devices[0]
        self.dev.set_configuration()
        usb.util.claim_interface(self.dev, INTF)
        self.transfer_size = 0
        for cfg in self.dev.configurations():
            for extra in [cfg.extra_descriptors] + [i.extra_descriptors for i in cfg.interfaces()]:
                if len(extra) == 9 and extra[0] == 9 and extra[1] == 0x21:
                    self.transfer_size = struct.unpack("<BBBHHH", bytes(extra))[4]
        for _ in range(4):
            state = self.get_status()
            if state == State.dfuIDLE:
                break
            if state in (State.dfuDNLOAD_IDLE, State.dfuUPLOAD_IDLE):
                self.dev.ctrl_transfer(0x21, 6, 0, INTF, None, TIMEOUT)
            else:
                self.dev.ctrl_transfer(0x21, 4, 0, INTF, None, TIMEOUT)

    def get_status(self) -> int:
        stat = self.dev.ctrl_transfer(0xA1, 3, 0, INTF, 6, 20000)
        return int(stat[4])

    def command(self, block: int, data: bytes | None) -> None:
        self.dev.ctrl_transfer(0x21, 1, block, INTF, data, TIMEOUT)
        assert self.get_status() == State.dfuDNBUSY
        assert self.get_status() == State.dfuDNLOAD_IDLE

    def layout(self) -> list[tuple[int, int, int]]:
        """(address, pages, page size) per segment, parsed the way pydfu does."""
        text = usb.util.get_string(self.dev, self.dev[0][(0, 0)].iInterface)
        parts = text.split("/")
        out = []
        for i in range(1, len(parts), 2):
            addr = int(parts[i], 0)
            for seg in parts[i + 1].split(","):
                count, rest = seg.split("*")
                size = int(rest[:-2]) * {"K": 1024, "M": 1 << 20}.get(rest[-2], 1)
                out.append((addr, int(count), size))
                addr += int(count) * size
        return out

    def write_elements(self, elements: list[tuple[int, bytes]]) -> None:
        segments = self.layout()
        for addr, data in elements:
            while data:
                write_size = len(data)
                for seg_addr, pages, page_size in segments:
                    if seg_addr <= addr < seg_addr + pages * page_size:
                        page_addr = addr & ~(page_size - 1)
                        write_size = min(write_size, page_addr + page_size - addr)
                        self.command(0, struct.pack("<BI", 0x41, page_addr))
                        break
                self.write_memory(addr, data[:write_size])
                data, addr = data[write_size:], addr + write_size

    def write_memory(self, addr: int, buf: bytes) -> None:
        done = 0
        while done < len(buf):
            self.command(0, struct.pack("<BI", 0x21, addr + done))
            chunk = min(self.transfer_size, len(buf) - done)
            self.command(2, buf[done : done + chunk])
            done += chunk

    def exit_dfu(self) -> int:
        self.command(0, struct.pack("<BI", 0x21, 0x08000000))
        self.dev.ctrl_transfer(0x21, 1, 0, INTF, None, TIMEOUT)
        state = self.get_status()
        usb.util.dispose_resources(self.dev)
        return state


def running(board: Stm32F411) -> AppStart | None:
    """``board.running_app`` (a call, so that type checkers do not narrow it)."""
    return board.running_app


def test_pydfu_flow_writes_and_leaves() -> None:
    board = Stm32F411(serial="PYDFU")
    backend = SimBackend([board])
    host = PydfuReplay(backend)
    assert host.transfer_size == 2048
    first = bytes(range(256)) * 20  # 5120 bytes at the start of flash
    second = b"\xc3" * 3000  # from the end of sector 1 into sector 2
    host.write_elements([(0x08000000, first), (0x08007E00, second)])
    assert board.peek(0x08000000, len(first)) == first
    assert board.peek(0x08007E00, len(second)) == second
    assert host.exit_dfu() == State.dfuMANIFEST
    assert running(board) is None  # still manifesting for a few ms
    backend.clock.sleep(0.01)
    start = running(board)
    assert start is not None
    assert start.address == 0x08000000
    # pydfu never slept, yet the device-bound time includes the erases
    assert backend.clock.now > 0.5


def test_pydfu_init_clears_an_error_state() -> None:
    board = Stm32F411(firmware_check=True)
    host = PydfuReplay(SimBackend([board]))
    assert board.state is State.dfuIDLE
    assert board.requests["CLRSTATUS"] == 1
    assert host.get_status() == State.dfuIDLE


def test_pydfu_mass_erase_fits_its_20_s_status_timeout() -> None:
    board = Stm32F411()
    board.poke(0x08060000, b"\x00")
    host = PydfuReplay(SimBackend([board]))
    host.command(0, b"\x41")
    assert board.peek(0x08060000, 1) == b"\xff"


@pytest.mark.parametrize("name", ["stm32f303", "stm32f407", "stm32g474", "stm32h743"])
def test_pydfu_flashes_a_sample_of_parts(name: str) -> None:
    """pydfu's flow on other parts' boards (their rows' rules and quirks): the image lands."""
    model = board(name)
    backend = SimBackend([model])
    host = PydfuReplay(backend)
    assert host.transfer_size == model.part.usb.transfer_size
    base = model.part.flash.address
    image = bytes(range(256)) * 20
    host.write_elements([(base, image)])
    assert model.peek(base, len(image)) == image
    assert model.peek(base + len(image), 32) == b"\xff" * 32


def test_pydfu_dies_on_a_rom_that_stalls_getstatus_while_busy() -> None:
    """openmv/openmv#1508: 'pydfu.py always dies with "Pipe error" when trying to program
    STM32F072' (dfu-util, which retries a stalled GETSTATUS, works)."""
    model = board("stm32f072")
    model.quirks = dataclasses.replace(model.quirks, busy_stall_probability=1.0)
    host = PydfuReplay(SimBackend([model]))
    with pytest.raises(usb.core.USBError) as info:
        host.write_elements([(0x08000000, b"\x00" * 2048)])
    assert info.value.errno == errno.EPIPE
