"""Memory models for simulated devices: NOR flash, one-time-programmable memory, plain RAM.

These are pure data structures (no USB, no time): the device models decide *when*
an erase or a program happens, these classes decide *what* it does to the bytes.

* :class:`NorFlash` — sectors; erase sets every byte of a sector to ``0xFF``;
  programming can only clear bits (``new = old & data``), as on real NOR flash.
  Erases and writes can be cut short (``fraction`` < 1) to model a power loss.
* :class:`OtpMemory` — data blocks plus lock bytes; never erased; a block whose
  lock byte is ``0x00`` ignores programming.
* :class:`RamArea` — plain bytes, written as given (option-byte shadow, device
  feature area, read-only areas preset by tests).

>>> flash = NorFlash(0x08000000, (16384, 16384))
>>> flash.program(0x08000000, b"\\x0f\\xf0")
>>> flash.program(0x08000000, b"\\xf0\\xff")  # can only clear bits
>>> flash.read(0x08000000, 2).hex()
'00f0'
>>> flash.erase_sector(0)
>>> flash.read(0x08000000, 2).hex()
'ffff'
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["MemoryArea", "NorFlash", "OtpMemory", "RamArea", "SectorSpan"]

ERASED = 0xFF


@dataclass(frozen=True, slots=True)
class SectorSpan:
    """One flash sector: its index, first address and size in bytes."""

    index: int
    address: int
    size: int

    @property
    def end(self) -> int:
        """One past the last address of the sector."""
        return self.address + self.size


class MemoryArea:
    """A contiguous block of simulated memory at a fixed address."""

    def __init__(self, name: str, base: int, size: int, fill: int = ERASED) -> None:
        if size <= 0:
            raise ValueError(f"{name}: size must be positive, got {size}")
        if not 0 <= fill <= 0xFF:
            raise ValueError(f"{name}: fill must be a byte, got {fill}")
        self.name = name
        self.base = base
        self.size = size
        self.data = bytearray([fill]) * size

    @property
    def end(self) -> int:
        """One past the last address of the area."""
        return self.base + self.size

    def contains(self, address: int, length: int = 1) -> bool:
        """True when ``[address, address + length)`` lies inside the area."""
        return self.base <= address and address + max(length, 0) <= self.end

    def _offset(self, address: int, length: int) -> int:
        if length < 0:
            raise ValueError(f"length must not be negative, got {length}")
        if not self.contains(address, length):
            raise ValueError(
                f"{self.name}: 0x{address:08X}+{length} is outside "
                f"0x{self.base:08X}..0x{self.end - 1:08X}"
            )
        return address - self.base

    def read(self, address: int, length: int) -> bytes:
        """The ``length`` bytes at ``address``."""
        off = self._offset(address, length)
        return bytes(self.data[off : off + length])

    def poke(self, address: int, data: bytes) -> None:
        """Overwrite bytes directly, bypassing the memory's semantics (test back door)."""
        off = self._offset(address, len(data))
        self.data[off : off + len(data)] = data

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, 0x{self.base:08X}, {self.size})"


class RamArea(MemoryArea):
    """Memory written as given (no NOR semantics)."""

    def write(self, address: int, data: bytes) -> None:
        """Store ``data`` at ``address``."""
        self.poke(address, data)


class NorFlash(MemoryArea):
    """NOR flash made of sectors: erase → ``0xFF``, programming ANDs bits in.

    With ``erased=0x00`` (the STM32L0/L1 NVM) erase clears every bit and programming
    ORs bits in instead.
    """

    def __init__(
        self, base: int, sector_sizes: Sequence[int], name: str = "flash", erased: int = ERASED
    ) -> None:
        if erased not in (0x00, 0xFF):
            raise ValueError(f"erased must be 0x00 or 0xFF, got {erased}")
        self.erased = erased
        spans: list[SectorSpan] = []
        addr = base
        for i, size in enumerate(sector_sizes):
            if size <= 0:
                raise ValueError(f"sector {i}: size must be positive, got {size}")
            spans.append(SectorSpan(i, addr, size))
            addr += size
        super().__init__(name, base, addr - base, erased)
        self.sectors: tuple[SectorSpan, ...] = tuple(spans)
        self._starts = [s.address for s in spans]

    def sector_at(self, address: int) -> SectorSpan | None:
        """The sector holding ``address``, or ``None``."""
        i = bisect.bisect_right(self._starts, address) - 1
        if i >= 0 and address < self.sectors[i].end:
            return self.sectors[i]
        return None

    def erase_sector(self, index: int, fraction: float = 1.0) -> None:
        """Erase sector ``index``; with ``fraction`` < 1 only its first part (power loss)."""
        span = self.sectors[index]
        count = _portion(span.size, fraction)
        off = span.address - self.base
        self.data[off : off + count] = bytes([self.erased]) * count

    def mass_erase(self, fraction: float = 1.0) -> None:
        """Erase every sector (the first ``fraction`` of the array only, on power loss)."""
        count = _portion(self.size, fraction)
        self.data[:count] = bytes([self.erased]) * count

    def program(self, address: int, data: bytes, fraction: float = 1.0) -> None:
        """Program ``data`` at ``address``: each byte becomes ``old & new``.

        With ``fraction`` < 1 only the first part is programmed (power loss),
        rounded down to whole 32-bit words as the ×32 parallelism writes them.
        """
        off = self._offset(address, len(data))
        count = len(data) if fraction >= 1.0 else _portion(len(data), fraction) & ~3
        old = int.from_bytes(self.data[off : off + count], "little")
        new = int.from_bytes(data[:count], "little")
        value = old & new if self.erased == ERASED else old | new
        self.data[off : off + count] = value.to_bytes(count, "little")

    def is_erased(self, address: int, length: int) -> bool:
        """True when every byte of the range reads as erased (``0xFF``, or ``0x00``)."""
        return self.read(address, length) == bytes([self.erased]) * length


class OtpMemory(MemoryArea):
    """One-time-programmable area: ``blocks`` × ``block_size`` data bytes, then one lock byte
    per block. Programming clears bits only; a block whose lock byte is ``0x00`` is frozen;
    nothing ever erases it."""

    def __init__(self, base: int, blocks: int = 16, block_size: int = 32, name: str = "OTP"):
        super().__init__(name, base, blocks * block_size + blocks, ERASED)
        self.blocks = blocks
        self.block_size = block_size
        self.lock_base = base + blocks * block_size

    def is_locked(self, block: int) -> bool:
        """True when the lock byte of ``block`` is ``0x00``."""
        return self.data[self.blocks * self.block_size + block] == 0x00

    def program(self, address: int, data: bytes, fraction: float = 1.0) -> None:
        """Program bytes (AND semantics); bytes of locked blocks are left unchanged."""
        off = self._offset(address, len(data))
        count = len(data) if fraction >= 1.0 else _portion(len(data), fraction) & ~3
        data_end = self.blocks * self.block_size
        # Lock state is taken before the write: locking and writing a block in one
        # transfer still writes the block.
        locked = [self.is_locked(b) for b in range(self.blocks)]
        for i in range(count):
            pos = off + i
            if pos < data_end and locked[pos // self.block_size]:
                continue
            self.data[pos] &= data[i]


def _portion(size: int, fraction: float) -> int:
    if fraction >= 1.0:
        return size
    if fraction <= 0.0:
        return 0
    return int(size * fraction)
