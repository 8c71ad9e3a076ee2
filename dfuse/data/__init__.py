"""Example firmware shipped with dfuse, for demos, docs and tests.

``blinky_f411.hex`` is a small, deterministic STM32F411 "blinky"-like image (it is
not a working program): a vector table at 0x08000000 (initial SP 0x20020000, Thumb
reset vector), about 35 KiB of code-looking bytes spanning flash sectors 0-2, and a
1 KiB configuration block at 0x08010000 (sector 4), so the image has a gap.

>>> from dfuse.data import example_hex_path, example_segments
>>> example_hex_path().read_text() == example_hex_text()
True
>>> [(hex(a), len(d)) for a, d in example_segments()]
[('0x8000000', 35840), ('0x8010000', 1024)]

``python -m dfuse.data [PATH]`` rewrites the file from :func:`example_segments`.
"""

from __future__ import annotations

import hashlib
import os
import struct
from importlib import resources
from pathlib import Path

from dfuse.file.convert import write_hex

__all__ = [
    "EXAMPLE_HEX_NAME",
    "example_hex_path",
    "example_hex_text",
    "example_segments",
    "regenerate",
]

EXAMPLE_HEX_NAME = "blinky_f411.hex"
"""File name of the bundled example inside this package."""

_FLASH = 0x08000000
_CONFIG = 0x08010000
_INITIAL_SP = 0x20020000  # top of the F411's 128 KiB SRAM
_VECTORS = 16 + 86  # Cortex-M4 core vectors + STM32F411 interrupts
_CODE_SIZE = 35 * 1024
_CONFIG_SIZE = 1024

# A reset handler that enables GPIOA and toggles PA5 (the Nucleo LED) forever
# (no delay loop: the bytes matter here, not the blinking).
_RESET_HANDLER = bytes.fromhex(
    "0648"  # ldr  r0, [pc, #24]   ; RCC_AHB1ENR
    "0121"  # movs r1, #1
    "0160"  # str  r1, [r0]
    "0648"  # ldr  r0, [pc, #24]   ; GPIOA_MODER
    "4FF48061"  # mov.w r1, #0x400   ; PA5 output
    "0160"  # str  r1, [r0]
    "0548"  # ldr  r0, [pc, #20]   ; GPIOA_ODR
    "0168"  # ldr  r1, [r0]        ; loop:
    "81F02001"  # eor.w r1, r1, #0x20
    "0160"  # str  r1, [r0]
    "FAE7"  # b    loop
    "00BF"  # nop (align)
    "30380240"  # .word 0x40023830
    "00000240"  # .word 0x40020000
    "14000240"  # .word 0x40020014
)


def _stream(label: bytes, size: int) -> bytes:
    """``size`` deterministic pseudo-random bytes (SHA-256 in counter mode)."""
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(label + counter.to_bytes(4, "little")).digest()
        counter += 1
    return bytes(out[:size])


def example_segments() -> list[tuple[int, bytes]]:
    """The example image as ``(address, data)`` segments, computed (not read from disk)."""
    code_start = _FLASH + _VECTORS * 4
    reset = code_start | 1
    default_handler = (code_start + len(_RESET_HANDLER)) | 1
    vectors = [_INITIAL_SP, reset] + [default_handler] * (_VECTORS - 2)
    image = bytearray(struct.pack(f"<{_VECTORS}I", *vectors))
    image += _RESET_HANDLER
    image += bytes.fromhex("FEE7")  # default handler: b .
    filler = _stream(b"dfuse example code", _CODE_SIZE - len(image))
    image += filler
    config = bytearray(b"DFUSE-EXAMPLE\0\0\0")
    config += struct.pack("<IIII", 1, 0x08000000, _CODE_SIZE, 0xA5A5A5A5)
    config += _stream(b"dfuse example config", _CONFIG_SIZE - len(config))
    return [(_FLASH, bytes(image)), (_CONFIG, bytes(config))]


def example_hex_text() -> str:
    """The Intel HEX text of :func:`example_segments` (what the bundled file holds)."""
    return write_hex(example_segments())


def example_hex_path() -> Path:
    """Path of the bundled ``blinky_f411.hex``."""
    return Path(str(resources.files(__name__).joinpath(EXAMPLE_HEX_NAME)))


def regenerate(path: str | os.PathLike[str] | None = None) -> Path:
    """Write :func:`example_hex_text` to ``path`` (default: the bundled file); return it."""
    target = Path(path) if path is not None else example_hex_path()
    target.write_text(example_hex_text(), encoding="ascii", newline="\n")
    return target
