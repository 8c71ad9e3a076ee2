"""load(): a file's extension is a promise its contents must keep."""

from __future__ import annotations

from pathlib import Path

import pytest

import dfuse
from dfuse.data import example_hex_path


def test_damaged_dfu_is_not_taken_for_a_raw_binary(tmp_path: Path) -> None:
    path = tmp_path / "app.dfu"
    path.write_bytes(bytes(range(100)))
    with pytest.raises(dfuse.FileFormatError, match=r"app\.dfu: the extension says a \.dfu file"):
        dfuse.load(path, address=0x08000000)


@pytest.mark.parametrize("suffix", [".hex", ".HEX", ".ihex", ".s19", ".srec", ".mot"])
def test_binary_named_as_text_format_is_refused(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"fw{suffix}"
    path.write_bytes(b"\x00\x01\x02\x03")
    with pytest.raises(dfuse.FileFormatError, match="the extension says") as info:
        dfuse.load(path, address=0x08000000)
    assert info.value.offset == 0
    assert info.value.found == b"\x00\x01\x02\x03"


def test_hex_named_dfu_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "fw.dfu"
    path.write_bytes(Path(example_hex_path()).read_bytes())
    with pytest.raises(dfuse.FileFormatError, match=r"not \(Intel HEX\)"):
        dfuse.load(path)


def test_matching_and_neutral_extensions_load(tmp_path: Path) -> None:
    image = dfuse.load(example_hex_path())
    assert isinstance(image, dfuse.DfuSeFile)
    dfu = tmp_path / "fw.dfu"
    image.save(dfu)
    assert dfuse.load(dfu) == image
    neutral = tmp_path / "fw.img"  # unknown extensions: contents decide
    neutral.write_bytes(dfu.read_bytes())
    assert dfuse.load(neutral) == image
    raw = tmp_path / "fw.bin"
    raw.write_bytes(b"\x01\x02")
    loaded = dfuse.load(raw, address=0x08000000)
    assert isinstance(loaded, dfuse.DfuSeFile)
    assert loaded.targets[0].elements[0].data == b"\x01\x02"


def test_load_bytes_checks_a_given_name() -> None:
    with pytest.raises(dfuse.FileFormatError, match=r"x\.dfu: the extension says"):
        dfuse.file.load_bytes(b"\x00" * 40, address=0, name="dir/x.dfu")
    loaded = dfuse.file.load_bytes(b"\x00" * 40, address=0, name="x.bin")
    assert isinstance(loaded, dfuse.DfuSeFile)
