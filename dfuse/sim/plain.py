"""A plain DFU 1.1 device (not DfuSe): for plain ``.dfu`` files (firmware + suffix).

Blocks are written one after another from a base address (wBlockNum counts them;
the device keeps its own offset), the first block erases the whole memory, a
zero-length DNLOAD starts manifestation. UPLOAD reads sequentially from the base;
a short frame ends the upload (→ dfuIDLE). Manifestation-tolerant devices go back
to dfuIDLE afterwards; the others wait for a USB reset in
dfuMANIFEST-WAIT-RESET and then "run the application" (leave the bus).

>>> dev = PlainDfuDevice(size=4096)
>>> dev.functional.dfu_version == 0x0100
True
"""

from __future__ import annotations

from collections.abc import Iterable

from dfuse.clock import Clock
from dfuse.protocol.constants import (
    DFU_INTERFACE_CLASS,
    DFU_INTERFACE_SUBCLASS,
    DFU_PROTOCOL_DFU_MODE,
    State,
    Status,
)
from dfuse.protocol.descriptors import Attributes, FunctionalDescriptor, StatusReply
from dfuse.sim.dfu import DFU_TRANSITIONS, DfuFailure, DfuModel, Operation
from dfuse.sim.faults import Event, Fault
from dfuse.sim.flash import NorFlash
from dfuse.sim.stm32f411 import device_descriptor
from dfuse.sim.timing import STM32F411_TIMING, Timing

__all__ = ["PlainDfuDevice"]


class PlainDfuDevice(DfuModel):
    """A generic DFU 1.1 device in DFU mode (bcdDFU 0x0100).

    Args:
        vid, pid, bcd_device: the device descriptor's identity (pid.codes test IDs by default).
        base: the address the first block lands at.
        size: bytes of memory (one erase sector).
        transfer_size: wTransferSize.
        manifestation_tolerant: bitManifestationTolerant.
    """

    transitions = DFU_TRANSITIONS

    def __init__(
        self,
        serial: str = "PLAIN0001",
        *,
        vid: int = 0x1209,
        pid: int = 0x0001,
        bcd_device: int = 0x0100,
        base: int = 0x0800_0000,
        size: int = 64 * 1024,
        transfer_size: int = 1024,
        manifestation_tolerant: bool = False,
        clock: Clock | None = None,
        timing: Timing = STM32F411_TIMING,
        seed: int = 0,
        faults: Iterable[Fault] = (),
        bus: int = 1,
        address: int = 1,
        port_numbers: tuple[int, ...] = (1,),
    ) -> None:
        self.serial = serial
        self.vid, self.pid, self.bcd_device = vid, pid, bcd_device
        self.memory = NorFlash(base, (size,), name="memory")
        attrs = Attributes.CAN_DNLOAD | Attributes.CAN_UPLOAD
        if manifestation_tolerant:
            attrs |= Attributes.MANIFESTATION_TOLERANT
        self.functional = FunctionalDescriptor(attrs, 255, transfer_size, 0x0100)
        self.offset = 0
        self.upload_offset = 0
        self.manifestations = 0
        self.app_started = False
        self._short_upload = False
        self._manifested = False
        super().__init__(
            clock=clock,
            timing=timing,
            seed=seed,
            faults=faults,
            transfer_size=transfer_size,
            bus=bus,
            address=address,
            port_numbers=port_numbers,
        )

    def device_descriptor(self) -> bytes:
        """The device descriptor."""
        return device_descriptor(self.vid, self.pid, self.bcd_device)

    def configuration_descriptor(self, index: int = 0) -> bytes:
        """One interface, one alternate setting, functional descriptor after it."""
        intf = bytes(
            (
                9,
                0x04,
                0,
                0,
                0,
                DFU_INTERFACE_CLASS,
                DFU_INTERFACE_SUBCLASS,
                DFU_PROTOCOL_DFU_MODE,
                4,
            )
        )
        body = intf + self.functional.to_bytes()
        head = bytes((9, 0x02, (9 + len(body)) & 0xFF, (9 + len(body)) >> 8, 1, 1, 0, 0x80, 50))
        return head + body

    def strings(self) -> dict[int, str]:
        """Manufacturer, product, serial, interface name."""
        return {1: "dfuse", 2: "plain DFU device", 3: self.serial, 4: "Flash"}

    def peek(self, address: int, length: int) -> bytes:
        """Read memory directly (test back door)."""
        return self.memory.read(address, length)

    def poke(self, address: int, data: bytes) -> None:
        """Preset memory directly (test back door)."""
        self.memory.poke(address, bytes(data))

    def on_boot(self) -> None:
        """Offsets back to the start."""
        self.offset = self.upload_offset = 0

    def on_abort(self) -> None:
        """ABORT restarts downloads and uploads from the base."""
        self.offset = self.upload_offset = 0

    def download_operation(self, block: int, data: bytes) -> Operation:
        """Append ``data`` at the running offset (the first block erases everything)."""
        start = self.memory.base + self.offset
        if self.offset + len(data) > self.memory.size:
            raise DfuFailure(Status.errADDRESS, f"block {block} runs past the end of memory")
        first = self.offset == 0
        self.offset += len(data)
        duration = self.timing.program_time(len(data))
        if first:
            duration += self.timing.erase_time(self.memory.size)

        def program(fraction: float) -> Status:
            if first:
                self.memory.erase_sector(0, fraction)
            self.memory.program(start, data, fraction)
            return Status.OK

        return Operation(Event.WRITE, duration, program, f"block {block} at 0x{start:08X}")

    def upload_block(self, block: int, length: int) -> bytes:
        """The next ``length`` bytes; a short frame ends the upload."""
        start = self.memory.base + self.upload_offset
        n = max(0, min(length, self.memory.size - self.upload_offset))
        data = self.memory.read(start, n)
        self.upload_offset += n
        if n < length:
            self.upload_offset = 0
            self._short_upload = True  # _upload ends the upload after the table step
        return data

    def _upload(self, block: int, length: int) -> bytes:
        self._short_upload = False
        reply = super()._upload(block, length)
        if self._short_upload:
            self.state = State.dfuIDLE
        return reply

    def manifest(self) -> None:
        """Tolerant: back to dfuMANIFEST-SYNC (→ dfuIDLE); else wait for a reset."""
        self.manifestations += 1
        self.offset = 0
        if self.functional.attributes & Attributes.MANIFESTATION_TOLERANT:
            self.state = State.dfuMANIFEST_SYNC
            self._manifested = True
        else:
            self.state = State.dfuMANIFEST_WAIT_RESET

    def _getstatus(self) -> StatusReply:
        if self.state is State.dfuMANIFEST_SYNC and getattr(self, "_manifested", False):
            self._manifested = False
            self.state = State.dfuIDLE
        return super()._getstatus()

    def reset(self) -> None:
        """A reset after manifestation runs the new firmware (leaves the bus)."""
        with self.lock:
            if self.state is State.dfuMANIFEST_WAIT_RESET:
                self.app_started = True
                self.unplug()
                return
        super().reset()
