"""The device options and number arguments of the command line.

The selector grammar itself is the library's (``tests/test_selector.py``); here: the
command line reports a bad selector or number as a usage error (exit 2) with the
library's message, and merges ``-a``/``-S``/``-p`` into the selector.
"""

from __future__ import annotations

import argparse

import pytest

from dfuse.cli.exitcodes import ExitCode, UsageError
from dfuse.cli.selector import parse_int
from dfuse.cli.session import open_bench
from dfuse.selector import DeviceSelector
from tests.cli.conftest import Runner


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (("list", "-d", "nonsense"), "invalid device selector 'nonsense': expected usb:VID:PID"),
        (("list", "-d", "tcp:1.2.3.4"), "unknown scheme 'tcp': expected 'usb' or 'sim'"),
        (("list", "-d", "usb:colour=red"), "unknown USB selector key 'colour'"),
        (("list", "-d", "sim:stm32f411?count=0"), "invalid board count '0': expected 1 to 64"),
        (("list", "-d", "sim:", "-a", ""), "empty alternate setting"),
        (
            ("read", "-d", "sim:", "out.bin", "--address", "0x08000000", "--length", "huge"),
            "invalid length 'huge'",
        ),
    ],
)
def test_bad_selectors_and_sizes_exit_with_the_usage_code(
    run: Runner, argv: tuple[str, ...], fragment: str
) -> None:
    result = run(*argv, "--json")
    assert result.code == ExitCode.USAGE
    assert fragment in result.err
    assert result.json()["error"]["kind"] == "usage"


def _args(
    device: str, alt: str | None = None, serial: str | None = None, path: str | None = None
) -> argparse.Namespace:
    return argparse.Namespace(device=device, alt=alt, serial=serial, path=path)


def test_short_options_filter_the_boards_a_sim_selector_makes() -> None:
    bench = open_bench(_args("sim:stm32f411?count=3&serial=S", alt="1", path="1-2"))
    assert [b.serial for b in bench.boards] == ["S01", "S02", "S03"]
    assert bench.selector == DeviceSelector(scheme="sim", count=3, serial=None, path="1-2", alt=1)
    [info] = bench.find()
    assert info.serial == "S02"
    bench = open_bench(_args("sim:?count=2&serial=S", serial="S02"))
    assert [i.serial for i in bench.find()] == ["S02"]


def test_usb_selectors_use_the_system_bus(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DFUSE_DEVICE", "usb:0483:df11")
    bench = open_bench(_args("", serial="X"))
    assert bench.backend is None
    assert bench.boards == ()
    assert bench.selector == DeviceSelector(vid=0x0483, pid=0xDF11, serial="X")


@pytest.mark.parametrize(
    ("text", "value"), [("0x08000000", 0x08000000), ("2048", 2048), ("0x0800_0000", 0x08000000)]
)
def test_parse_int(text: str, value: int) -> None:
    assert parse_int(text) == value


@pytest.mark.parametrize("text", ["", "0xZZ", "-5", "12k"])
def test_parse_int_errors(text: str) -> None:
    with pytest.raises(UsageError, match="invalid"):
        parse_int(text, what="address")
