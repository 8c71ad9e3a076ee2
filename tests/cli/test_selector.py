"""Device selector strings and the number/size parsers of the command line."""

from __future__ import annotations

import contextlib
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dfuse.cli.exitcodes import UsageError
from dfuse.cli.selector import DeviceSelector, parse_int, parse_size


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("usb:", DeviceSelector()),
        ("usb:0483:df11", DeviceSelector(vid=0x0483, pid=0xDF11)),
        ("0483:DF11", DeviceSelector(vid=0x0483, pid=0xDF11)),
        ("usb:serial=3574364C3034", DeviceSelector(serial="3574364C3034")),
        ("usb:path=1-2.3", DeviceSelector(path="1-2.3")),
        (
            "usb:0483:df11,serial=ABC,path=3-1,alt=1",
            DeviceSelector(vid=0x0483, pid=0xDF11, serial="ABC", path="3-1", alt=1),
        ),
        ("usb:vid=483", DeviceSelector(vid=0x0483)),
        ("usb:pid=df11,alt=Option Bytes", DeviceSelector(pid=0xDF11, alt="Option Bytes")),
        ("sim:stm32f411", DeviceSelector(scheme="sim")),
        ("sim:", DeviceSelector(scheme="sim")),
        (
            "sim:stm32f411?flash=256k&serial=SIM1&count=3&speed=4&alt=1",
            DeviceSelector(
                scheme="sim", flash_size=256 * 1024, serial="SIM1", count=3, speed=4.0, alt=1
            ),
        ),
    ],
)
def test_parse(text: str, expected: DeviceSelector) -> None:
    assert DeviceSelector.parse(text) == expected


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("nonsense", "expected usb:VID:PID"),
        ("tcp:1.2.3.4", "unknown scheme 'tcp'"),
        ("usb:0483", "expected VID:PID in hex"),
        ("usb:12345:1", "expected VID:PID in hex"),
        ("usb:vid=xyz", "expected 1-4 hex digits"),
        ("usb:serial=", "empty serial"),
        ("usb:colour=red", "unknown USB selector key 'colour'"),
        ("usb:alt=", "empty alternate setting"),
        ("sim:stm32h7", "unknown simulated board 'stm32h7'"),
        ("sim:stm32f411?flash", "expected key=value"),
        ("sim:stm32f411?flash=huge", "invalid flash size"),
        ("sim:stm32f411?count=0", "expected 1 to 64"),
        ("sim:stm32f411?speed=-1", "expected a positive number"),
        ("sim:stm32f411?speed=fast", "expected a positive number"),
        ("sim:stm32f411?colour=red", "unknown sim option 'colour'"),
    ],
)
def test_parse_errors_say_what_was_expected(text: str, fragment: str) -> None:
    with pytest.raises(UsageError, match=re.escape(fragment)):
        DeviceSelector.parse(text)


def test_short_options_override() -> None:
    base = DeviceSelector.parse("usb:0483:df11,serial=A")
    assert base.with_overrides(alt="1", serial="B", path="1-1") == DeviceSelector(
        vid=0x0483, pid=0xDF11, serial="B", path="1-1", alt="1"
    )
    assert base.with_overrides() == base


selectors = st.builds(
    DeviceSelector,
    scheme=st.just("usb"),
    vid=st.none() | st.integers(0, 0xFFFF),
    pid=st.none() | st.integers(0, 0xFFFF),
    serial=st.none() | st.text("ABCDEF0123456789", min_size=1, max_size=12),
    path=st.none() | st.from_regex(r"\A[1-9]-[1-9](\.[1-9]){0,3}\Z"),
    alt=st.none() | st.integers(0, 255),
) | st.builds(
    DeviceSelector,
    scheme=st.just("sim"),
    flash_size=st.none() | st.sampled_from([256 * 1024, 512 * 1024]),
    serial=st.none() | st.text("ABCDEF0123456789", min_size=1, max_size=12),
    count=st.integers(1, 64),
    speed=st.none() | st.sampled_from([0.5, 1.0, 2.0, 10.0]),
    alt=st.none() | st.integers(0, 3),
)


@settings(max_examples=200, deadline=None)
@given(selectors)
def test_str_round_trips(selector: DeviceSelector) -> None:
    assert DeviceSelector.parse(str(selector)) == selector


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40))
def test_random_text_raises_only_usage_error(text: str) -> None:
    with contextlib.suppress(UsageError):
        DeviceSelector.parse(text)


@pytest.mark.parametrize(
    ("text", "value"), [("0x08000000", 0x08000000), ("2048", 2048), ("0x0800_0000", 0x08000000)]
)
def test_parse_int(text: str, value: int) -> None:
    assert parse_int(text) == value


@pytest.mark.parametrize("text", ["", "0xZZ", "-5", "12k"])
def test_parse_int_errors(text: str) -> None:
    with pytest.raises(UsageError, match="invalid"):
        parse_int(text, what="address")


@pytest.mark.parametrize(
    ("text", "value"),
    [("16K", 16384), ("512k", 524288), ("1M", 1 << 20), ("0x4000", 0x4000), ("16KiB", 16384)],
)
def test_parse_size(text: str, value: int) -> None:
    assert parse_size(text) == value


@pytest.mark.parametrize("text", ["", "K", "12q", "-1"])
def test_parse_size_errors(text: str) -> None:
    with pytest.raises(UsageError, match="invalid size"):
        parse_size(text)
