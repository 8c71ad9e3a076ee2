"""The bundled example firmware (dfuse/data)."""

from __future__ import annotations

import struct
from pathlib import Path

from dfuse.data import example_hex_path, example_hex_text, example_segments, regenerate
from dfuse.data.__main__ import main
from dfuse.file import DfuSeFile, load


def test_bundled_file_is_the_generated_one() -> None:
    path = example_hex_path()
    assert path.is_file()
    assert path.read_text(encoding="ascii") == example_hex_text()


def test_looks_like_stm32f411_firmware() -> None:
    f = load(example_hex_path())
    assert isinstance(f, DfuSeFile)
    flash, config = f.target(0).elements
    sp, reset = struct.unpack_from("<II", flash.data)
    assert sp == 0x20020000
    assert reset & 1 == 1  # Thumb
    assert flash.address < reset < flash.end
    assert flash.address == 0x08000000
    assert flash.end > 0x08008000  # spans sectors 0, 1 and 2 (16 KiB each)
    assert config.address == 0x08010000  # sector 4, after a gap
    assert 20 * 1024 <= f.size <= 40 * 1024
    assert f.target(0).segments() == example_segments()


def test_regenerate_is_reproducible(tmp_path: Path) -> None:
    out = regenerate(tmp_path / "x.hex")
    assert out.read_bytes() == example_hex_path().read_bytes()
    assert main([str(tmp_path / "y.hex")]) == 0
    assert (tmp_path / "y.hex").read_bytes() == out.read_bytes()
