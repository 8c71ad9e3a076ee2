"""dfuse.file.load: recognising firmware files by content."""

from __future__ import annotations

from pathlib import Path

import pytest

from dfuse.errors import FileFormatError, SignatureError
from dfuse.file import DfuFile, DfuSeFile, Element, FileKind, detect_kind, load, load_bytes
from dfuse.file.convert import write_hex, write_srec
from tests.file.helpers import dfu_suffix, simple_file

SEGMENTS = [(0x08000000, b"\x00\x00\x02\x20\x99\x01\x00\x08"), (0x08010000, b"cfg")]


@pytest.mark.parametrize("name", ["fw.dfu", "fw.bin", "fw"])
def test_dfuse_by_content(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(simple_file())
    f = load(path)
    assert isinstance(f, DfuSeFile)
    assert f == DfuSeFile.parse(simple_file())


def test_plain_dfu(tmp_path: Path) -> None:
    path = tmp_path / "fw.dfu"
    path.write_bytes(dfu_suffix(b"\x01\x02\x03", bcd_dfu=0x0100))
    f = load(path)
    assert isinstance(f, DfuFile)
    assert f.payload == b"\x01\x02\x03"


@pytest.mark.parametrize("name", ["fw.hex", "fw.ihx", "fw.bin"])
def test_hex_by_content(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_text(write_hex(SEGMENTS))
    f = load(path, address=0x1234)  # address only matters for raw binaries
    assert isinstance(f, DfuSeFile)
    assert f.target(0).segments() == SEGMENTS


@pytest.mark.parametrize("name", ["fw.s19", "fw.srec", "fw.mot"])
def test_srec_by_content(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_text(write_srec(SEGMENTS))
    f = load(path)
    assert isinstance(f, DfuSeFile)
    assert [(e.address, e.data) for e in f.target(0).elements] == SEGMENTS


def test_raw_binary_needs_an_address(tmp_path: Path) -> None:
    path = tmp_path / "fw.bin"
    path.write_bytes(b"\x00\x00\x02\x20rest")
    with pytest.raises(FileFormatError, match="address=") as info:
        load(path)
    assert info.value.offset == 0
    f = load(path, address=0x08000000)
    assert isinstance(f, DfuSeFile)
    assert f.target(0).elements == (Element(0x08000000, b"\x00\x00\x02\x20rest"),)


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.bin"
    path.write_bytes(b"")
    with pytest.raises(FileFormatError, match="empty"):
        load(path, address=0)


def test_broken_dfuse_file_gets_the_precise_error() -> None:
    raw = simple_file(version=3)
    with pytest.raises(SignatureError, match="bVersion"):
        load_bytes(raw)
    assert load_bytes(simple_file(crc=1), verify_crc=False) == DfuSeFile.parse(simple_file())


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (b"DfuSe\x01", FileKind.DFUSE),
        (dfu_suffix(b"abc", bcd_dfu=0x0100), FileKind.DFU),
        (b"\r\n  :00000001FF\r\n", FileKind.IHEX),
        (b"S00600004844521B\n", FileKind.SREC),
        (b"\x00\x01", FileKind.BINARY),
        (b"Sx", FileKind.BINARY),
        (b"", FileKind.BINARY),
    ],
)
def test_detect_kind(data: bytes, kind: FileKind) -> None:
    assert detect_kind(data) is kind
    assert detect_kind(bytearray(data)) is kind


@pytest.mark.parametrize("path", ["/dev/zero", "/dev/null"])
def test_load_refuses_devices_before_reading(path: str) -> None:
    """C1: `dfuse.load("/dev/zero")` read until the kernel killed the process."""
    with pytest.raises(FileFormatError, match="not a regular file") as info:
        load(path)
    assert info.value.found == "a character device"
    with pytest.raises(FileFormatError, match="not a regular file"):
        DfuSeFile.from_path(path)
