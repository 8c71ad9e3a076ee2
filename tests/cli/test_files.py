"""File commands end to end: info, build, extract, suffix add/check/strip."""

from __future__ import annotations

from pathlib import Path

import pytest

from dfuse.cli import ExitCode
from dfuse.data import example_segments
from dfuse.errors import FileFormatError
from dfuse.file import DfuFile, DfuSeFile, Element, Target, load

from .conftest import Runner


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_info_hex(run: Runner, example_hex: Path) -> None:
    result = run("info", str(example_hex))
    assert result.code == 0
    assert "Intel HEX" in result.out
    for address, data in example_segments():
        assert f"0x{address:08X}-0x{address + len(data) - 1:08X}" in result.out


def test_info_hex_json(run: Runner, example_hex: Path) -> None:
    doc = run("info", "--json", str(example_hex)).json()
    assert doc["ok"] is True
    assert doc["kind"] == "ihex"
    elements = doc["targets"][0]["elements"]
    assert [(e["address"], e["size"]) for e in elements] == [
        (a, len(d)) for a, d in example_segments()
    ]


def test_info_dfu_json_and_text(run: Runner, example_hex: Path, workdir: Path) -> None:
    assert run("build", str(example_hex), "-o", "app.dfu").code == 0
    doc = run("info", "app.dfu", "--json").json()
    assert doc["kind"] == "dfuse"
    assert doc["crc_ok"] is True
    assert (doc["vendor_id"], doc["product_id"]) == (0x0483, 0xDF11)
    text = run("info", "app.dfu").out
    assert "DfuSe .dfu" in text
    assert "0x0483" in text


def test_info_raw_binary_assumes_flash_start(run: Runner, workdir: Path) -> None:
    (workdir / "raw.bin").write_bytes(bytes(100))
    result = run("info", "raw.bin")
    assert result.code == 0
    assert "0x08000000-0x08000063" in result.out
    assert "give --address" in result.out
    doc = run("info", "raw.bin", "--address", "0x08004000", "--json").json()
    assert doc["address_assumed"] is False
    assert doc["targets"][0]["elements"][0]["address"] == 0x08004000


def test_info_bad_crc(run: Runner, example_hex: Path, workdir: Path) -> None:
    run("build", str(example_hex), "-o", "app.dfu")
    data = bytearray(Path("app.dfu").read_bytes())
    data[300] ^= 0xFF
    Path("bad.dfu").write_bytes(data)
    result = run("info", "bad.dfu")
    assert result.code == ExitCode.FILE_ERROR
    assert "CRC mismatch" in result.err
    assert "hint: the file is damaged" in result.err
    forced = run("info", "bad.dfu", "--no-crc-check", "--json")
    assert forced.code == 0
    assert forced.json()["crc_ok"] is False
    assert "does not match" in run("info", "bad.dfu", "--no-crc-check").err


def test_info_bad_address_is_a_usage_error(run: Runner, example_hex: Path) -> None:
    result = run("info", str(example_hex), "--address", "0xZZ")
    assert result.code == ExitCode.USAGE
    assert "invalid address '0xZZ'" in result.err


def test_build_several_targets(run: Runner, example_hex: Path, workdir: Path) -> None:
    Path("blob.bin").write_bytes(b"\x01\x02" * 500)
    result = run(
        "build", str(example_hex), "blob.bin@0x1FFF7800", "-o", "two.dfu",
        "--name", "Internal Flash", "--name", "OTP", "--vid", "0483", "--pid", "df11",
        "--bcd", "2200", "--alt", "0", "--alt", "2", "--json",
    )  # fmt: skip
    assert result.code == 0, result.err
    dfu = DfuSeFile.from_path("two.dfu")
    assert [t.alt_setting for t in dfu.targets] == [0, 2]
    assert [t.name for t in dfu.targets] == ["Internal Flash", "OTP"]
    assert dfu.device_version == 0x2200
    assert dfu.targets[0].segments() == example_segments()
    assert dfu.targets[1].segments() == [(0x1FFF7800, b"\x01\x02" * 500)]
    assert result.json()["output"] == "two.dfu"


def test_build_alt_and_default_address(run: Runner, workdir: Path) -> None:
    Path("a.bin").write_bytes(b"A" * 10)
    result = run("build", "a.bin", "--address", "0x08004000", "--alt", "2", "-o", "a.dfu")
    assert result.code == 0
    target = DfuSeFile.from_path("a.dfu").targets[0]
    assert (target.alt_setting, target.name) == (2, "ST...")
    assert target.segments() == [(0x08004000, b"A" * 10)]


def test_build_bin_without_address_is_a_file_error(run: Runner, workdir: Path) -> None:
    Path("a.bin").write_bytes(b"A" * 10)
    result = run("build", "a.bin", "-o", "a.dfu")
    assert result.code == ExitCode.FILE_ERROR
    assert "address" in result.err
    assert not Path("a.dfu").exists()


def test_build_too_many_names(run: Runner, example_hex: Path, workdir: Path) -> None:
    result = run("build", str(example_hex), "--name", "a", "--name", "b", "-o", "x.dfu")
    assert result.code == ExitCode.USAGE
    assert "at most one of each per input" in result.err


def test_build_bad_vid(run: Runner, example_hex: Path, workdir: Path) -> None:
    result = run("build", str(example_hex), "--vid", "12345", "-o", "x.dfu")
    assert result.code == ExitCode.USAGE
    assert "invalid VID '12345'" in result.err


def test_build_from_plain_dfu_is_refused(run: Runner, workdir: Path) -> None:
    Path("p.dfu").write_bytes(DfuFile(b"payload").to_bytes())
    result = run("build", "p.dfu", "-o", "x.dfu")
    assert result.code == ExitCode.FILE_ERROR
    assert "plain DFU file has no addresses" in result.err


@pytest.mark.parametrize("fmt", ["hex", "s19", "bin"])
def test_extract_round_trips(run: Runner, example_hex: Path, workdir: Path, fmt: str) -> None:
    run("build", str(example_hex), "-o", "app.dfu")
    result = run("extract", "app.dfu", "-f", fmt, "--json")
    assert result.code == 0
    [item] = result.json()["written"]
    assert item["path"] == f"app.{fmt}"
    original = DfuSeFile.from_path("app.dfu").targets[0]
    if fmt == "bin":
        assert Path("app.bin").read_bytes() == original.to_bin()
    else:
        back = load(f"app.{fmt}")
        assert isinstance(back, DfuSeFile)
        assert back.targets[0].segments() == original.segments()


def test_extract_several_targets(run: Runner, example_hex: Path, workdir: Path) -> None:
    Path("b.bin").write_bytes(b"B" * 32)
    run("build", str(example_hex), "b.bin@0x1FFFC000", "--alt", "0", "--alt", "1", "-o", "two.dfu")
    result = run("extract", "two.dfu", "-o", "out/fw")
    assert result.code == ExitCode.FILE_ERROR  # out/ does not exist
    Path("out").mkdir()
    result = run("extract", "two.dfu", "-o", "out/fw")
    assert result.code == 0
    assert "wrote out/fw-alt0.hex (alt 0)" in result.out
    assert Path("out/fw-alt1.hex").exists()


def test_extract_plain_dfu(run: Runner, workdir: Path) -> None:
    Path("p.dfu").write_bytes(DfuFile(b"payload").to_bytes())
    assert run("extract", "p.dfu").code == ExitCode.USAGE
    assert run("extract", "p.dfu", "-f", "bin").code == 0
    assert Path("p.bin").read_bytes() == b"payload"


def test_suffix_add_check_strip(run: Runner, workdir: Path) -> None:
    Path("fw.bin").write_bytes(b"\x00\x01" * 100)
    assert (
        run("suffix", "add", "fw.bin", "-o", "fw.dfu", "--vid", "0483", "--pid", "df11").code == 0
    )
    dfu = DfuFile.from_path("fw.dfu")
    assert (dfu.payload, dfu.vendor_id, dfu.product_id) == (b"\x00\x01" * 100, 0x0483, 0xDF11)
    check = run("suffix", "check", "fw.dfu", "--json")
    assert check.code == 0
    assert check.json()["crc_ok"] is True
    assert "(valid)" in run("suffix", "check", "fw.dfu").out
    assert run("suffix", "strip", "fw.dfu", "-o", "back.bin").code == 0
    assert Path("back.bin").read_bytes() == b"\x00\x01" * 100
    # in place
    assert run("suffix", "add", "back.bin").code == 0
    assert DfuFile.from_path("back.bin").payload == b"\x00\x01" * 100


def test_suffix_add_twice_is_refused(run: Runner, workdir: Path) -> None:
    Path("fw.dfu").write_bytes(DfuFile(b"x" * 20).to_bytes())
    result = run("suffix", "add", "fw.dfu")
    assert result.code == ExitCode.FILE_ERROR
    assert "already ends with a DFU suffix" in result.err


def test_suffix_check_raw_file(run: Runner, workdir: Path) -> None:
    Path("raw.bin").write_bytes(bytes(64))
    result = run("suffix", "check", "raw.bin", "--json")
    assert result.code == ExitCode.FILE_ERROR
    assert "UFD" in result.err
    assert "dfuse suffix add" in result.json()["error"]["hint"]


def test_suffix_needs_an_action(run: Runner) -> None:
    assert run("suffix").code == ExitCode.USAGE


def test_suffix_json(run: Runner, workdir: Path) -> None:
    Path("fw.bin").write_bytes(b"\x01" * 32)
    added = run("suffix", "add", "fw.bin", "-o", "fw.dfu", "--json")
    assert added.code == 0
    doc = added.json()
    assert (doc["output"], doc["payload_size"], doc["vendor_id"]) == ("fw.dfu", 32, 0xFFFF)
    stripped = run("suffix", "strip", "fw.dfu", "-o", "back.bin", "--json")
    assert stripped.json() == {"ok": True, "output": "back.bin", "size": 32}


@pytest.mark.parametrize("command", [["info"], ["extract"], ["flash", "-d", "sim:stm32f411"]])
def test_damaged_dfu_is_a_file_error_not_a_raw_binary(
    run: Runner, workdir: Path, command: list[str]
) -> None:
    (workdir / "app.dfu").write_bytes(bytes(range(100)))
    result = run(*command, "app.dfu", *(["--address", "0x08000000"] if "flash" in command else []))
    assert result.code == ExitCode.FILE_ERROR
    assert "app.dfu: the extension says a .dfu file" in result.err


def test_flash_refuses_address_for_files_that_carry_addresses(
    run: Runner, example_hex: Path
) -> None:
    result = run("flash", "-d", "sim:stm32f411", str(example_hex), "--address", "0x20000000")
    assert result.code == ExitCode.USAGE
    assert "--address applies to raw .bin" in result.err


# --------------------------------------------------------------------------- issue 16: build


def test_build_puts_several_inputs_for_one_memory_into_one_target(
    run: Runner, example_hex: Path, workdir: Path
) -> None:
    """`dfuse build boot.bin@0x08000000 app.hex` used to put app.hex in alt 1 (Option Bytes)."""
    app = load(example_hex)  # starts at 0x08000000: move it up to make room for a boot loader
    assert isinstance(app, DfuSeFile)
    moved = [Element(e.address + 0x4000, e.data) for e in app.targets[0].elements]
    Path("app.hex").write_text(Target(0, "", moved).to_hex())
    Path("boot.bin").write_bytes(b"B" * 0x100)
    result = run("build", "boot.bin@0x08000000", "app.hex", "-o", "fw.dfu")
    assert result.code == 0, result.err
    dfu = DfuSeFile.from_path("fw.dfu")
    assert [t.alt_setting for t in dfu.targets] == [0]
    segments = dfu.targets[0].segments()
    assert segments[0] == (0x08000000, b"B" * 0x100)
    assert len(segments) == 1 + len(app.targets[0].elements)


def test_build_refuses_overlapping_inputs(run: Runner, workdir: Path) -> None:
    Path("a.bin").write_bytes(b"A" * 0x20)
    Path("b.bin").write_bytes(b"B" * 0x20)
    result = run("build", "a.bin@0x08000000", "b.bin@0x08000010", "-o", "x.dfu")
    assert result.code == ExitCode.FILE_ERROR
    assert "inputs for alternate setting 0 overlap" in result.err
    assert "a.bin at 0x08000000-0x0800001F and b.bin at 0x08000010-0x0800002F" in result.err
    assert not Path("x.dfu").exists()
    apart = run("build", "a.bin@0x08000000", "b.bin@0x08000010", "--alt", "0", "--alt", "1",
                "-o", "x.dfu")  # fmt: skip
    assert apart.code == 0


def test_build_refuses_two_names_for_one_target(run: Runner, workdir: Path) -> None:
    Path("a.bin").write_bytes(b"A")
    result = run("build", "a.bin@0", "a.bin@8", "--name", "x", "--name", "y", "-o", "x.dfu")
    assert result.code == ExitCode.USAGE
    assert "named both 'x' and 'y'" in result.err


# --------------------------------------------------------------------------- issue 16: extract


@pytest.mark.parametrize(
    ("name", "fmt"), [("out.hex", "hex"), ("out.s19", "s19"), ("o.bin", "bin")]
)
def test_extract_output_with_an_extension_is_the_file(
    run: Runner, example_hex: Path, workdir: Path, name: str, fmt: str
) -> None:
    """`extract app.dfu -o out.hex` wrote out.hex.hex; the extension also picks the format."""
    run("build", str(example_hex), "-o", "app.dfu")
    result = run("extract", "app.dfu", "-o", name, "--json")
    assert result.code == 0, result.err
    assert [w["path"] for w in result.json()["written"]] == [name]
    assert sorted(p.name for p in workdir.iterdir()) == sorted(["app.dfu", name])
    if fmt != "bin":
        back = load(name)
        assert isinstance(back, DfuSeFile)
        assert back.targets[0].segments() == example_segments()


def test_extract_numbers_files_only_for_several_targets(
    run: Runner, example_hex: Path, workdir: Path
) -> None:
    Path("b.bin").write_bytes(b"B" * 16)
    run("build", str(example_hex), "b.bin@0x1FFFC000", "--alt", "0", "--alt", "1", "-o", "t.dfu")
    result = run("extract", "t.dfu", "-o", "out.hex")
    assert result.code == 0
    assert Path("out-alt0.hex").exists()
    assert Path("out-alt1.hex").exists()
    assert not Path("out.hex").exists()


def test_extract_refuses_an_extension_that_contradicts_format(
    run: Runner, example_hex: Path, workdir: Path
) -> None:
    run("build", str(example_hex), "-o", "app.dfu")
    result = run("extract", "app.dfu", "-o", "out.hex", "-f", "bin")
    assert result.code == ExitCode.USAGE
    assert "names hex but --format is bin" in result.err


# --------------------------------------------------------------------------- issue 16/17: input


def test_raw_file_without_address_names_the_cli_option(run: Runner, workdir: Path) -> None:
    Path("a.bin").write_bytes(b"\x00\x01\x02")
    for argv in (["build", "a.bin", "-o", "x.dfu"], ["flash", "-d", "sim:", "a.bin"]):
        result = run(*argv)
        assert result.code == ExitCode.FILE_ERROR
        assert "give --address (e.g. --address 0x08000000)" in result.err
        assert "address=" not in result.err


@pytest.mark.parametrize(
    "argv",
    [
        ["info", "/dev/zero"],
        ["flash", "-d", "sim:", "/dev/zero"],
        ["verify", "-d", "sim:", "/dev/zero"],
        ["extract", "/dev/zero"],
        ["suffix", "check", "/dev/zero"],
        ["suffix", "add", "/dev/zero", "-o", "x"],
        ["build", "/dev/zero", "-o", "x.dfu"],
        ["otp", "-d", "sim:", "--write", "0", "--data-file", "/dev/zero"],
    ],
)
def test_device_files_are_refused_before_reading(
    run: Runner, workdir: Path, argv: list[str]
) -> None:
    """C1: `dfuse info /dev/zero` read until the kernel killed it."""
    result = run(*argv)
    assert result.code == ExitCode.FILE_ERROR, result.err
    assert "/dev/zero: not a regular file" in result.err
    assert "a character device" in result.err


def test_oversized_files_are_refused_with_a_cap(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dfuse.file import convert

    Path("big.bin").write_bytes(b"\xff" * 100)
    with pytest.raises(FileFormatError, match=r"too large .* at most 64 bytes"):
        convert.read_file("big.bin", limit=64)
    monkeypatch.setattr(convert, "MAX_FILE_SIZE", 64)
    assert convert.read_file("big.bin", limit=100) == b"\xff" * 100


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["read", "-d", "sim:", "x.bin", "--address", "0x100000000", "--length", "4"],
         "0xFFFFFFFF"),
        (["read", "-d", "sim:", "x.bin", "--address", "0", "--length", "99999999999999999999"],
         "at most 4294967296 bytes"),
        (["leave", "-d", "sim:", "--address", "0x100000000"], "at most 0xFFFFFFFF"),
        (["build", "a.bin@0", "--alt", "256", "-o", "x.dfu"], "at most 0xFF (255)"),
        (["read", "-d", "sim:", "x.bin", "--address", "\u0660x08000000", "--length", "4"],
         "ASCII digits"),
        (["info", "a.bin", "--address", "\u0668"], "ASCII digits"),
        (["build", "a.bin@0x\u0660", "-o", "x.dfu"], "ASCII digits"),
    ],
)  # fmt: skip
def test_out_of_range_numbers_are_usage_errors(
    run: Runner, workdir: Path, argv: list[str], fragment: str
) -> None:
    """C2: these exited 1 as internal errors (or were accepted: Arabic-Indic digits)."""
    Path("a.bin").write_bytes(b"A")
    result = run(*argv)
    assert result.code == ExitCode.USAGE, result.err
    assert fragment in result.err
    assert "internal error" not in result.err
