"""Interoperability with dfu-util's tools (Debian package dfu-util): dfu-suffix and dfuse-pack."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dfuse.data import example_hex_path
from dfuse.file import DfuFile, DfuSeFile, Element, Target, load
from tests.file.helpers import assert_bytes_round_trip

DFU_SUFFIX = shutil.which("dfu-suffix")
DFUSE_PACK = shutil.which("dfuse-pack")

needs_dfu_suffix = pytest.mark.skipif(
    DFU_SUFFIX is None, reason="dfu-suffix not on PATH (apt-get install dfu-util)"
)
needs_dfuse_pack = pytest.mark.skipif(
    DFUSE_PACK is None, reason="dfuse-pack not on PATH (apt-get install dfu-util)"
)


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=30, check=False)


def _suffix_report(path: Path) -> dict[str, str]:
    assert DFU_SUFFIX is not None
    result = _run(DFU_SUFFIX, "-c", str(path))
    assert result.returncode == 0, result.stderr
    report = {}
    for line in result.stdout.splitlines():
        key, sep, value = line.partition(":")
        if sep and value.strip():
            report[key.strip()] = value.strip()
    return report


def _files() -> list[DfuSeFile | DfuFile]:
    example = load(example_hex_path())
    assert isinstance(example, DfuSeFile)
    return [
        DfuSeFile(example.targets, vendor_id=0x0483, product_id=0xDF11, device_version=0x2200),
        DfuSeFile(
            [
                Target(0, "Internal Flash", [Element(0x08000000, bytes(range(256)) * 3)]),
                Target(1, "Option Bytes", [Element(0x1FFFC000, b"\xaa\xed" * 8)]),
            ],
            size_includes_suffix=True,
        ),
        DfuSeFile([]),
        DfuFile(b"\x00\x00\x02\x20" * 100, vendor_id=0x1209, product_id=0x70B1),
    ]


@needs_dfu_suffix
@pytest.mark.parametrize("index", range(4))
def test_our_files_pass_dfu_suffix_check(tmp_path: Path, index: int) -> None:
    model = _files()[index]
    path = tmp_path / "out.dfu"
    model.save(path)
    report = _suffix_report(path)
    raw = path.read_bytes()
    assert report["Vendor ID"] == f"0x{model.vendor_id:04X}"
    assert report["Product ID"] == f"0x{model.product_id:04X}"
    assert report["BCD device"] == f"0x{model.device_version:04X}"
    expected_bcd = 0x011A if isinstance(model, DfuSeFile) else 0x0100
    assert report["BCD DFU"] == f"0x{expected_bcd:04X}"
    assert report["Length"] == "16"
    assert report["CRC"] == f"0x{int.from_bytes(raw[-4:], 'little'):08X}"


@needs_dfu_suffix
def test_dfu_suffix_add_gives_a_plain_dfu_file(tmp_path: Path) -> None:
    assert DFU_SUFFIX is not None
    payload = bytes(range(256)) * 5 + b"tail"
    path = tmp_path / "fw.bin"
    path.write_bytes(payload)
    result = _run(DFU_SUFFIX, "-a", str(path), "-v", "0483", "-p", "df11", "-d", "0x2200")
    assert result.returncode == 0, result.stderr
    raw = path.read_bytes()
    f = assert_bytes_round_trip(DfuFile, raw)
    assert f.payload == payload
    assert (f.vendor_id, f.product_id, f.device_version) == (0x0483, 0xDF11, 0x2200)
    assert f.dfu_version == 0x0100
    loaded = load(path)
    assert loaded == f


@needs_dfuse_pack
def test_dfuse_pack_output_round_trips(tmp_path: Path) -> None:
    assert DFUSE_PACK is not None
    (tmp_path / "a.bin").write_bytes(bytes(range(200)))
    (tmp_path / "b.bin").write_bytes(b"\x55" * 33)
    out = tmp_path / "packed.dfu"
    result = _run(
        sys.executable,
        DFUSE_PACK,
        "-b",
        f"0x08000000:{tmp_path / 'a.bin'}",
        "-b",
        f"0x08010000:{tmp_path / 'b.bin'}",
        "-D",
        "0x0483:0xdf11",
        str(out),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    f = assert_bytes_round_trip(DfuSeFile, out.read_bytes())
    assert f.size_includes_suffix  # dfuse-pack counts the suffix in DFUImageSize
    assert (f.vendor_id, f.product_id) == (0x0483, 0xDF11)
    target = f.target(0)
    assert target.name == "ST..."
    assert target.elements == (
        Element(0x08000000, bytes(range(200))),
        Element(0x08010000, b"\x55" * 33),
    )


@needs_dfuse_pack
def test_dfuse_pack_reads_our_files(tmp_path: Path) -> None:
    assert DFUSE_PACK is not None
    model = _files()[1]
    path = tmp_path / "ours.dfu"
    model.save(path)
    result = _run(sys.executable, DFUSE_PACK, "-d", str(path))
    assert result.returncode == 0, result.stderr
    assert "ERROR" not in result.stdout
    assert "alt setting: 1" in result.stdout
    assert "Option Bytes" in result.stdout
    assert "address: 0x1fffc000, size: 16" in result.stdout
