"""Fuzzing :meth:`DeviceSelector.parse` beyond ``tests/test_selector.py``: text built from
the selector grammar's own pieces (schemes, keys, separators, Unicode and very long
digit strings), so the random strings reach every option's value parser.

Every string parses or raises :class:`~dfuse.errors.SelectorError` (a DfuseError and a
ValueError); every selector that parses prints as a string that parses back to it.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dfuse.errors import DfuseError, SelectorError
from dfuse.selector import DeviceSelector, parse_alt, parse_size

KEYS = ["vid", "pid", "serial", "path", "alt", "flash", "count", "speed", "mode", "VID", "x", ""]
#: Values that reach int()/float(): Unicode digits, superscripts, huge and odd numbers.
VALUES = st.one_of(
    st.sampled_from(
        ["²", "١", "٣٢", "007", "255", "256", "-1", "1e400", "nan", "inf", "0x10", "512k", "256K"]
    ),
    st.integers(0, 10**30).map(str),
    st.integers(4000, 5000).map(lambda n: "1" * n),
    st.text(max_size=8),
    st.text(alphabet="0123456789abcdefABCDEFxkKmMiIbB ", max_size=12),
)
item = st.builds(
    lambda key, eq, value: f"{key}{eq}{value}",
    st.sampled_from(KEYS),
    st.sampled_from(["=", ""]),
    VALUES,
)
usb_text = st.builds(
    lambda scheme, items: scheme + ",".join(items),
    st.sampled_from(["usb:", "USB:", "", "usb: "]),
    st.lists(item, max_size=4),
)
sim_text = st.builds(
    lambda model, items: f"sim:{model}?" + "&".join(items),
    st.sampled_from(["stm32f411", "STM32F411", "", "z80"]),
    st.lists(item, max_size=4),
)


def _parse(text: str) -> DeviceSelector | None:
    try:
        return DeviceSelector.parse(text)
    except SelectorError as exc:
        error = exc
    assert isinstance(error, DfuseError)
    assert isinstance(error, ValueError)
    assert "expected" in str(error)
    return None


@settings(max_examples=400, deadline=None)
@given(usb_text | sim_text | st.text(max_size=30))
def test_grammar_shaped_text_raises_only_selector_error_and_round_trips(text: str) -> None:
    selector = _parse(text)
    if selector is not None:
        assert DeviceSelector.parse(str(selector)) == selector


@pytest.mark.parametrize(
    ("text", "message"),
    [
        # int() of these raised a bare ValueError (or took the 4300-digit limit's)
        ("usb:alt=" + "1" * 5000, "invalid alternate setting number"),
        ("sim:stm32f411?count=²", "invalid board count"),
        ("sim:stm32f411?count=" + "1" * 5000, "invalid board count"),
        ("sim:stm32f411?flash=" + "1" * 5000, "invalid flash size"),
        ("sim:stm32f411?flash=٥١٢k", "invalid flash size"),
        ("usb:0483:df11,alt=256", "expected 0 to 255 or a name"),
    ],
)
def test_numbers_that_crashed_are_selector_errors(text: str, message: str) -> None:
    with pytest.raises(SelectorError, match=message):
        DeviceSelector.parse(text)


def test_non_ascii_digits_are_alt_names_not_numbers() -> None:
    assert parse_alt("²") == "²"
    assert parse_alt("١") == "١"
    assert parse_alt("007") == 7
    assert str(DeviceSelector.parse("usb:alt=²")) == "usb:alt=²"


def test_alt_range_when_built_directly() -> None:
    with pytest.raises(ValueError, match="alt must be 0 to 255 or a name, got 256"):
        DeviceSelector(alt=256)
    with pytest.raises(ValueError, match="got -1"):
        DeviceSelector(alt=-1)


@settings(max_examples=200, deadline=None)
@given(VALUES)
def test_parse_size_raises_only_selector_error(text: str) -> None:
    try:
        size = parse_size(text)
    except SelectorError:
        return
    assert size >= 0


def test_parse_size_reads_leading_zeros_as_decimal() -> None:
    # int("007", 0) raised a bare ValueError
    assert parse_size("007") == 7
    assert parse_size("0016K") == 16384
    assert parse_size("0X10") == 16
    assert str(DeviceSelector.parse("sim:stm32f411?flash=0512k")) == "sim:stm32f411?flash=512k"
