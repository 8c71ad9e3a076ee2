"""Fixtures and raw-request helpers for the simulator tests (pyusb control transfers only)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import usb.core

from dfuse.sim import SimBackend, Stm32F411, VirtualClock


@dataclass
class Rig:
    """A simulated bootloader, its backend and the pyusb device opened through it."""

    model: Stm32F411
    backend: SimBackend
    dev: usb.core.Device

    @property
    def clock(self) -> VirtualClock:
        clock = self.backend.clock
        assert isinstance(clock, VirtualClock)
        return clock

    def getstatus(self, timeout: int = 5000) -> tuple[int, int, int, int]:
        """(bStatus, bwPollTimeout, bState, iString) from a raw GETSTATUS."""
        r = bytes(self.dev.ctrl_transfer(0xA1, 3, 0, 0, 6, timeout))
        assert len(r) == 6
        return r[0], r[1] | r[2] << 8 | r[3] << 16, r[4], r[5]

    def getstate(self) -> int:
        return bytes(self.dev.ctrl_transfer(0xA1, 5, 0, 0, 1))[0]

    def dnload(self, block: int, data: bytes | None) -> None:
        self.dev.ctrl_transfer(0x21, 1, block, 0, data)

    def upload(self, block: int, length: int) -> bytes:
        return bytes(self.dev.ctrl_transfer(0xA1, 2, block, 0, length))

    def clrstatus(self) -> None:
        self.dev.ctrl_transfer(0x21, 4, 0, 0, None)

    def abort(self) -> None:
        self.dev.ctrl_transfer(0x21, 6, 0, 0, None)

    def run(self, block: int, data: bytes | None) -> tuple[int, int, int, int]:
        """DNLOAD, GETSTATUS (busy), wait bwPollTimeout, GETSTATUS: the final status."""
        self.dnload(block, data)
        status, poll, state, _ = self.getstatus()
        assert (status, state) == (0, 4)
        self.clock.sleep(poll / 1000)
        return self.getstatus()

    def set_address(self, address: int) -> tuple[int, int, int, int]:
        return self.run(0, b"\x21" + address.to_bytes(4, "little"))

    def erase(self, address: int) -> tuple[int, int, int, int]:
        return self.run(0, b"\x41" + address.to_bytes(4, "little"))

    def write(self, address: int, data: bytes) -> None:
        """Set Address + blocks of 2048, each must end in dfuDNLOAD-IDLE."""
        assert self.set_address(address)[2] == 5
        for i in range(0, len(data), 2048):
            final = self.run(2 + i // 2048, data[i : i + 2048])
            assert final[0] == 0, final
            assert final[2] == 5, final
        self.abort()

    def read(self, address: int, length: int) -> bytes:
        assert self.set_address(address)[2] == 5
        self.abort()
        out = b"".join(
            self.upload(2 + i // 2048, min(2048, length - i)) for i in range(0, length, 2048)
        )
        self.abort()
        return out


def make_rig(model: Stm32F411 | None = None) -> Rig:
    model = model if model is not None else Stm32F411(serial="TEST0001")
    backend = SimBackend([model])
    dev = usb.core.find(idVendor=0x0483, idProduct=0xDF11, backend=backend)
    assert dev is not None
    dev.set_interface_altsetting(0, 0)
    return Rig(model, backend, dev)


@pytest.fixture
def rig() -> Rig:
    return make_rig()
