"""How long simulated operations take: timing parameters as data.

Flash figures are the STM32F411 datasheet values at 2.7–3.6 V with ×32
parallelism (PROTOCOL.md: typ / max); USB costs follow the full-speed frame
arithmetic (one frame of latency per control transfer, 19 packets of 64 bytes per
1 ms frame). Each operation's actual duration is drawn from a seeded triangular
distribution between ``typ`` and ``max`` (mode at ``typ``), scaled by
``Timing.spread`` (0: always typical, 1: up to the maximum; default 0.1, so that
averages stay near the typical figures), so runs are
reproducible and still not constant.

>>> t = TimingModel(STM32F411_TIMING, seed=1)
>>> 1.0 <= t.erase_time(128 * 1024) <= 2.0
True
>>> round(STM32F411_TIMING.usb.transfer_cost(2048) * 1000, 2)
2.68
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field, replace

__all__ = [
    "STM32F411_TIMING",
    "Duration",
    "FlashTiming",
    "Timing",
    "TimingModel",
    "UsbTiming",
]


@dataclass(frozen=True, slots=True)
class Duration:
    """A typical and a maximum duration, in seconds."""

    typ: float
    max: float

    def __post_init__(self) -> None:
        if not 0 <= self.typ <= self.max:
            raise ValueError(f"need 0 <= typ <= max, got typ={self.typ} max={self.max}")


@dataclass(frozen=True, slots=True)
class FlashTiming:
    """Flash operation times (RM0383/DS10314 figures, see PROTOCOL.md).

    Attributes:
        word_program: programming ``program_width`` bytes (one 32-bit word on the F411).
        sector_erase: erase time by sector size in bytes (16, 64, 128 KiB).
        mass_erase: erasing the whole ``mass_erase_size`` array (scaled by size for
            smaller parts).
        option_write: programming the option bytes (estimate: one 16 KiB erase).
        program_width: bytes one ``word_program`` covers (the flash's parallelism).
        bank_erase: erasing one bank of a dual-bank part (``None``: not modelled).
    """

    word_program: Duration = Duration(16e-6, 100e-6)
    sector_erase: tuple[tuple[int, Duration], ...] = (
        (16 * 1024, Duration(0.25, 0.5)),
        (64 * 1024, Duration(0.55, 1.1)),
        (128 * 1024, Duration(1.0, 2.0)),
    )
    mass_erase: Duration = Duration(4.0, 8.0)
    mass_erase_size: int = 512 * 1024
    option_write: Duration = Duration(0.25, 0.5)
    program_width: int = 4
    bank_erase: Duration | None = None

    def __post_init__(self) -> None:
        if self.program_width < 1:
            raise ValueError(f"program_width must be at least 1, got {self.program_width}")

    def erase_duration(self, size: int) -> Duration:
        """The erase time of a sector of ``size`` bytes (the nearest size not smaller)."""
        for sector_size, duration in self.sector_erase:
            if size <= sector_size:
                return duration
        largest, duration = self.sector_erase[-1]
        factor = size / largest
        return Duration(duration.typ * factor, duration.max * factor)


@dataclass(frozen=True, slots=True)
class UsbTiming:
    """USB full-speed control-transfer costs.

    Attributes:
        request_latency: one synchronous control request from user space (≈ one 1 ms frame).
        packet_size: bMaxPacketSize0.
        packets_per_frame: 64-byte data packets that fit one 1 ms frame (19 at 12 Mbit/s).
        frame: the frame period.
    """

    request_latency: float = 1e-3
    packet_size: int = 64
    packets_per_frame: int = 19
    frame: float = 1e-3

    def transfer_cost(self, data_length: int) -> float:
        """Seconds one control transfer with ``data_length`` data bytes takes."""
        packets = math.ceil(data_length / self.packet_size) if data_length > 0 else 0
        return self.request_latency + packets * self.frame / self.packets_per_frame


@dataclass(frozen=True, slots=True)
class Timing:
    """All the timing parameters of a simulated device.

    Attributes:
        flash: flash operation durations.
        usb: control-transfer costs.
        command: executing a DfuSe command that touches no flash (Set Address, Get).
        manifest: from the dfuMANIFEST reply to the device leaving the bus.
        reenumerate: from a reset until the device is back on the bus.
        spread: 0 → every operation takes ``typ``; 1 → anywhere up to ``max``.
    """

    flash: FlashTiming = field(default_factory=FlashTiming)
    usb: UsbTiming = field(default_factory=UsbTiming)
    command: float = 0.0
    manifest: float = 0.005
    reenumerate: float = 0.5
    spread: float = 0.1

    def __post_init__(self) -> None:
        if not 0.0 <= self.spread <= 1.0:
            raise ValueError(f"spread must be within 0..1, got {self.spread}")

    def typical(self) -> Timing:
        """The same parameters with no spread (every operation takes ``typ``)."""
        return replace(self, spread=0.0)


#: The STM32F411 at 2.7–3.6 V.
STM32F411_TIMING = Timing()


class TimingModel:
    """Draws actual operation durations from a :class:`Timing`, reproducibly (``seed``)."""

    def __init__(self, timing: Timing = STM32F411_TIMING, seed: int = 0) -> None:
        self.timing = timing
        self._rng = random.Random(seed)

    def sample(self, duration: Duration) -> float:
        """One draw between ``typ`` and ``max`` (triangular, mode at ``typ``)."""
        high = duration.typ + (duration.max - duration.typ) * self.timing.spread
        if high <= duration.typ:
            return duration.typ
        return self._rng.triangular(duration.typ, high, duration.typ)

    def draw(self, duration: Duration, scale: float = 1.0) -> tuple[float, float]:
        """``(actual, typical)`` seconds of one operation: the actual one drawn as
        :meth:`sample` does, the typical one (what a ROM reports) exact."""
        scaled = Duration(duration.typ * scale, duration.max * scale)
        return self.sample(scaled), scaled.typ

    def erase_time(self, size: int) -> float:
        """Seconds to erase a sector of ``size`` bytes."""
        return self.sample(self.timing.flash.erase_duration(size))

    def mass_erase_time(self, flash_size: int) -> float:
        """Seconds to erase a flash array of ``flash_size`` bytes at once."""
        d = self.timing.flash.mass_erase
        scale = flash_size / self.timing.flash.mass_erase_size
        return self.sample(Duration(d.typ * scale, d.max * scale))

    def program_time(self, length: int) -> float:
        """Seconds to program ``length`` bytes (whole ``program_width`` units)."""
        width = self.timing.flash.program_width
        words = (length + width - 1) // width
        return words * self.sample(self.timing.flash.word_program)

    def option_write_time(self) -> float:
        """Seconds to program the option bytes."""
        return self.sample(self.timing.flash.option_write)

    def transfer_cost(self, data_length: int) -> float:
        """Seconds one control transfer with ``data_length`` data bytes takes."""
        return self.timing.usb.transfer_cost(data_length)
