"""dfu-util 0.11's command line as dfuse-util parses it: every option, its long forms,
getopt's spellings, the -s modifiers, -d matching, and bad input (exit 64, one line)."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dfuse.compat.options import (
    ANY,
    EX_USAGE,
    IMPOSSIBLE,
    CompatError,
    DfuseOptions,
    IdMatch,
    Mode,
    c_strtoul,
    parse_args,
    parse_dfuse_options,
    parse_vendprod,
)

DFU_UTIL = shutil.which("dfu-util")


@pytest.mark.parametrize(
    ("argv", "field", "value"),
    [
        (["-h"], "help", True),
        (["--help"], "help", True),
        (["-V"], "mode", Mode.VERSION),
        (["--version"], "mode", Mode.VERSION),
        (["-v", "-v", "--verbose"], "verbose", 3),
        (["-vv"], "verbose", 2),
        (["-l"], "mode", Mode.LIST),
        (["--list"], "mode", Mode.LIST),
        (["-e"], "mode", Mode.DETACH),
        (["--detach"], "mode", Mode.DETACH),
        (["-E", "3"], "detach_delay", 3),
        (["--detach-delay=0x10"], "detach_delay", 16),
        (["-p", "1-2.3"], "path", "1-2.3"),
        (["--path", "2-1"], "path", "2-1"),
        (["-c", "1"], "config", 1),
        (["--cfg", "2"], "config", 2),
        (["--configuration", "3"], "config", 3),
        (["-i", "0"], "interface", 0),
        (["--intf", "1"], "interface", 1),
        (["--interface=2"], "interface", 2),
        (["-a", "1"], "alt_index", 1),
        (["-a1"], "alt_index", 1),
        (["--alt", "0x2"], "alt_index", 2),
        (["--altsetting=3"], "alt_index", 3),
        (
            ["-a", "@Option Bytes  /0x1FFFC000/01*016 e"],
            "alt_name",
            "@Option Bytes  /0x1FFFC000/01*016 e",
        ),
        (["-a", "1x"], "alt_name", "1x"),
        (["-n", "5"], "devnum", 5),
        (["--devnum", "7"], "devnum", 7),
        (["-S", "ABC"], "serial_dfu", "ABC"),
        (["--serial", "RT,DFU"], "serial", "RT"),
        (["--serial", "RT,DFU"], "serial_dfu", "DFU"),
        (["-t", "1024"], "transfer_size", 1024),
        (["--transfer-size", "2048"], "transfer_size", 2048),
        (["-U", "out.bin"], "mode", Mode.UPLOAD),
        (["--upload", "out.bin"], "file", "out.bin"),
        (["-Z", "100"], "upload_size", 100),
        (["--upload-size", "0x100"], "upload_size", 256),
        (["-D", "app.bin"], "mode", Mode.DOWNLOAD),
        (["--download", "-"], "file", "-"),
        (["-R"], "final_reset", True),
        (["--reset"], "final_reset", True),
        (["-w"], "wait", True),
        (["--wait"], "wait", True),
        (["-s", "0x08000000:leave"], "dfuse_options", "0x08000000:leave"),
        (["--dfuse-address", ":leave"], "dfuse_options", ":leave"),
        (["--dfuse=0x0"], "dfuse_options", "0x0"),  # an unambiguous prefix
        (["--verify"], "verify", True),
        (["-d", "0483:df11"], "ids", IdMatch(0x0483, 0xDF11, ANY, ANY)),
        (["--device", "sim:stm32f411"], "device_selector", "sim:stm32f411"),
    ],
)
def test_every_option_and_its_long_forms(argv: list[str], field: str, value: object) -> None:
    assert getattr(parse_args(argv), field) == value


def test_options_bundle_and_operands_may_come_last_or_after_double_dash() -> None:
    opts = parse_args(["-Rwa0", "-s0x08000000:leave", "-Dapp.bin"])
    assert (opts.final_reset, opts.wait, opts.alt_index) == (True, True, 0)
    assert (opts.dfuse_options, opts.file) == ("0x08000000:leave", "app.bin")
    assert opts.mode is Mode.DOWNLOAD
    assert parse_args(["-D", "a.bin", "-U", "b.bin"]).mode is Mode.UPLOAD  # the last one wins
    assert parse_args(["-D", "-", "-l"]).mode is Mode.LIST


def test_help_stops_parsing_as_dfu_util_does() -> None:
    assert parse_args(["-h", "--bogus"]).help
    assert parse_args(["-lh"]).help


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["-x"], "invalid option -- 'x'"),
        (["-a"], "option requires an argument -- 'a'"),
        (["--alt"], "option '--alt' requires an argument"),
        (["--list=1"], "option '--list' doesn't allow an argument"),
        (["--bogus"], "unrecognized option '--bogus'"),
        (["--de", "x"], "option '--de' is ambiguous"),
        (["-l", "stray"], "Error: Unexpected argument: stray"),
        (["-l", "--", "-a"], "Error: Unexpected argument: -a"),
        (["-c", "1x"], "Something went wrong with the argument of --cfg"),
        (["-i", ""], "No digits were found from the argument of --intf"),
        (["-t", "big"], "Something went wrong with the argument of --transfer-size"),
        (["-E", "9" * 20], "Something went wrong with the argument of --detach-delay"),
        (["-Z", "-"], "Something went wrong with the argument of --upload-size"),
    ],
)
def test_bad_input_is_one_line_and_exit_64(argv: list[str], message: str) -> None:
    with pytest.raises(CompatError) as info:
        parse_args(argv)
    assert info.value.code == EX_USAGE
    text = str(info.value)
    assert message in text
    assert "\n" not in text


@pytest.mark.skipif(DFU_UTIL is None, reason="dfu-util is not installed")
@pytest.mark.parametrize(
    "argv",
    [
        ["-x"],
        ["-a"],
        ["--list=1"],
        ["-l", "stray"],
        ["-c", "1x"],
        ["-i", ""],
        ["-V"],
        ["-h"],
        ["-v"],
        ["--bogus"],
        ["-E", "1y", "-l"],
    ],
)
def test_exit_codes_before_any_usb_match_dfu_utils(argv: list[str]) -> None:
    """These end before dfu-util touches USB: its exit code is the reference."""
    from dfuse.compat import main

    ref = subprocess.run([DFU_UTIL or "dfu-util", *argv], capture_output=True, check=False)
    import io

    assert main(argv, stdout=io.StringIO(), stderr=io.StringIO(), environ={}) == ref.returncode


# --------------------------------------------------------------------------- -s


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0x08000000", DfuseOptions(address=0x0800_0000)),
        ("0x08000000:leave", DfuseOptions(address=0x0800_0000, leave=True)),
        (":leave", DfuseOptions(leave=True)),
        ("0x08000000:mass-erase:force", DfuseOptions(0x0800_0000, mass_erase=True, force=1)),
        (":unprotect:force:force", DfuseOptions(unprotect=True, force=2)),
        ("0x1FFFC000:16:will-reset", DfuseOptions(0x1FFF_C000, 16, will_reset=True)),
        ("0x08000000:0x100", DfuseOptions(0x0800_0000, 256)),
        ("0x08000000:010", DfuseOptions(0x0800_0000, 8)),  # C: a leading 0 is octal
        ("134217728", DfuseOptions(address=0x0800_0000)),
        ("", DfuseOptions(address=0)),  # as dfu-util: an empty address is 0
        ("0x08000000::leave:", DfuseOptions(address=0x0800_0000, leave=True)),
        ("0x08000000:lea", DfuseOptions(address=0x0800_0000, leave=True)),  # strncmp prefix
    ],
)
def test_dfuse_address_and_modifiers(text: str, expected: DfuseOptions) -> None:
    assert parse_dfuse_options(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0x0800000z", "Invalid dfuse address: 0x0800000z"),
        ("08000000", "Invalid dfuse address: 08000000"),  # octal: 8 is no digit
        ("0x08000000:bogus", "Invalid dfuse modifier: bogus"),
        ("0x08000000:leave:12k", "Invalid dfuse modifier: 12k"),
        ("0x08000000:forced", "Invalid dfuse modifier: forced"),
    ],
)
def test_bad_dfuse_options(text: str, message: str) -> None:
    with pytest.raises(CompatError, match=message) as info:
        parse_dfuse_options(text)
    assert info.value.code == EX_USAGE


@given(st.integers(0, 0xFFFF_FFFF), st.integers(0, 0xFFFF_FFFF), st.booleans())
def test_dfuse_options_round_trip(address: int, length: int, leave: bool) -> None:
    text = f"0x{address:08x}:{length}" + (":leave" if leave else "")
    assert parse_dfuse_options(text) == DfuseOptions(address, length, leave=leave)


# --------------------------------------------------------------------------- numbers


@given(st.integers(0, 2**64 - 1), st.sampled_from(["", ":x", "z", " "]))
def test_strtoul_reads_decimal_and_hex_like_c(value: int, tail: str) -> None:
    dec = str(value)
    assert c_strtoul(dec + tail) == ((value, len(dec)) if value == 0 or dec[0] != "0" else None)
    hexa = f"0x{value:x}"
    assert c_strtoul(hexa + tail) == (value, len(hexa))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", (0, 0)),
        ("0x", (0, 1)),  # "0", then "x" is not a hex digit after it
        ("  12", (12, 4)),
        ("-1", (2**64 - 1, 2)),
        ("99999999999999999999999", (2**64 - 1, 23)),  # ERANGE: ULONG_MAX
        ("0777", (0o777, 4)),
        ("١٢", (0, 0)),  # only ASCII digits
    ],
)
def test_strtoul_edges(text: str, expected: tuple[int, int]) -> None:
    assert c_strtoul(text) == expected


# --------------------------------------------------------------------------- -d


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0483:df11", IdMatch(0x0483, 0xDF11, ANY, ANY)),
        ("0483:5740,0483:df11", IdMatch(0x0483, 0x5740, 0x0483, 0xDF11)),
        ("0483:5740,:df11", IdMatch(0x0483, 0x5740, 0x0483, 0xDF11)),
        (",0483:df11", IdMatch(IMPOSSIBLE, IMPOSSIBLE, 0x0483, 0xDF11)),
        ("*:*", IdMatch(ANY, ANY, ANY, ANY)),
        ("0483:*", IdMatch(0x0483, ANY, ANY, ANY)),
        ("-", IdMatch(IMPOSSIBLE, ANY, ANY, ANY)),
        ("0483", IdMatch(0x0483, ANY, ANY, ANY)),
        ("0483,", IdMatch(0x0483, ANY, 0x0483, ANY)),
        ("xyz:df11", IdMatch(ANY, 0xDF11, ANY, ANY)),  # no hex digits: the default (any)
    ],
)
def test_device_ids_with_wildcards(text: str, expected: IdMatch) -> None:
    assert parse_vendprod(text) == expected


@settings(max_examples=150, deadline=None)
@given(st.lists(st.text(max_size=12), max_size=6))
def test_any_command_line_parses_or_fails_with_exit_64(argv: list[str]) -> None:
    failure: CompatError | None = None
    try:
        parse_args(argv)
    except CompatError as exc:
        failure = exc
    if failure is not None:
        assert failure.code == EX_USAGE
        assert "\n" not in str(failure)
