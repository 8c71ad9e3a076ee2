"""dfuse.selector: selector strings, and opening/listing the devices they name."""

from __future__ import annotations

import contextlib
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dfuse.clock import ScaledClock, VirtualClock
from dfuse.device import DfuDevice
from dfuse.errors import DeviceNotFoundError, DfuseError, SelectorError
from dfuse.selector import (
    SIM_SERIAL,
    Bench,
    DeviceSelector,
    bench,
    list_devices,
    open_device,
    parse_size,
    sim_bench,
    sim_boards,
)
from dfuse.sim import SimBackend, Stm32F411
from dfuse.transport.base import DeviceMode

# --------------------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("usb:", DeviceSelector()),
        ("usb:0483:df11", DeviceSelector(vid=0x0483, pid=0xDF11)),
        ("0483:DF11", DeviceSelector(vid=0x0483, pid=0xDF11)),
        ("USB:serial=3574364C3034", DeviceSelector(serial="3574364C3034")),
        ("usb:path=1-2.3", DeviceSelector(path="1-2.3")),
        (
            "usb:0483:df11, serial=ABC ,path=3-1,alt=1",
            DeviceSelector(vid=0x0483, pid=0xDF11, serial="ABC", path="3-1", alt=1),
        ),
        ("usb:vid=483", DeviceSelector(vid=0x0483)),
        ("usb:pid=df11,alt=Option Bytes", DeviceSelector(pid=0xDF11, alt="Option Bytes")),
        ("sim:stm32f411", DeviceSelector(scheme="sim")),
        ("sim:", DeviceSelector(scheme="sim")),
        ("sim:?mode=app", DeviceSelector(scheme="sim", mode="app")),
        (
            "sim:stm32f411?flash=256k&serial=SIM1&count=3&speed=4&alt=1&mode=dfu",
            DeviceSelector(
                scheme="sim", flash_size=256 * 1024, serial="SIM1", count=3, speed=4.0, alt=1
            ),
        ),
    ],
)
def test_parse(text: str, expected: DeviceSelector) -> None:
    assert DeviceSelector.parse(text) == expected


def test_parse_passes_a_selector_through() -> None:
    sel = DeviceSelector(vid=1)
    assert DeviceSelector.parse(sel) is sel


@pytest.mark.parametrize(
    ("text", "offending", "expected"),
    [
        ("nonsense", "nonsense", "usb:VID:PID"),
        ("tcp:1.2.3.4", "tcp", "'usb' or 'sim'"),
        ("usb:0483", "0483", "VID:PID in hex"),
        ("usb:12345:1", "12345:1", "VID:PID in hex"),
        ("usb:vid=xyz", "xyz", "1-4 hex digits"),
        ("usb:serial=", "serial=", "serial=VALUE"),
        ("usb:colour=red", "colour", "serial, path, alt, vid or pid"),
        ("usb:alt=", "", "a number or a name"),
        ("sim:stm32h7", "stm32h7", "one of gd32vf103"),
        ("sim:stm32l476?flash=256k", "stm32l476", "other parts have their own size"),
        ("sim:stm32f411?state=b.json&count=2", "2", "count=1"),
        ("sim:stm32f411?flash", "flash", "key=value"),
        ("sim:stm32f411?flash=huge", "huge", "K or M suffix"),
        ("sim:stm32f411?flash=128k", "128k", "256k or 512k"),
        ("sim:stm32f411?serial=", "", "serial=VALUE"),
        ("sim:stm32f411?count=0", "0", "1 to 64"),
        ("sim:stm32f411?count=x", "x", "1 to 64"),
        ("sim:stm32f411?speed=-1", "-1", "a positive number"),
        ("sim:stm32f411?speed=inf", "inf", "a positive number"),
        ("sim:stm32f411?speed=fast", "fast", "a positive number"),
        ("sim:stm32f411?mode=run", "run", "dfu or app"),
        ("sim:stm32f411?colour=red", "colour", "one of alt, count, flash"),
    ],
)
def test_errors_name_the_offending_text_and_what_was_expected(
    text: str, offending: str, expected: str
) -> None:
    with pytest.raises(SelectorError) as info:
        DeviceSelector.parse(text)
    assert info.value.text == offending
    assert expected in info.value.expected
    assert re.search(re.escape(f"{offending!r}: expected"), str(info.value))
    # one except clause catches it as a dfuse error or as a bad value
    assert isinstance(info.value, DfuseError)
    assert isinstance(info.value, ValueError)


def test_short_options_override() -> None:
    base = DeviceSelector.parse("usb:0483:df11,serial=A")
    assert base.with_overrides(alt="1", serial="B", path="1-1") == DeviceSelector(
        vid=0x0483, pid=0xDF11, serial="B", path="1-1", alt="1"
    )
    assert base.with_overrides() == base


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"scheme": "tcp"}, "scheme"),
        ({"vid": 0x10000}, "vid must be a 16-bit number"),
        ({"pid": -1}, "pid must be a 16-bit number"),
        ({"model": "stm32h7"}, "model must be one of"),
        ({"count": 0}, "count must be 1 to 64"),
        ({"speed": 0.0}, "speed must be a positive finite number"),
        ({"flash_size": 1000}, "flash_size must be 256 KiB or 512 KiB"),
        ({"mode": "boot"}, "mode must be"),
    ],
)
def test_direct_construction_checks_ranges(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        DeviceSelector(**fields)  # type: ignore[arg-type]


_TOKEN = st.text("ABCDEFabcdef0123456789_-", min_size=1, max_size=12)

selectors = st.builds(
    DeviceSelector,
    scheme=st.just("usb"),
    vid=st.none() | st.integers(0, 0xFFFF),
    pid=st.none() | st.integers(0, 0xFFFF),
    serial=st.none() | _TOKEN,
    path=st.none() | st.from_regex(r"\A[1-9]-[1-9](\.[1-9]){0,3}\Z"),
    alt=st.none() | st.integers(0, 255) | st.sampled_from(["Option Bytes", "@Internal Flash"]),
) | st.builds(
    DeviceSelector,
    scheme=st.just("sim"),
    flash_size=st.none() | st.sampled_from([256 * 1024, 512 * 1024]),
    serial=st.none() | _TOKEN,
    count=st.integers(1, 64),
    speed=st.none() | st.floats(min_value=1e-3, max_value=1e6),
    alt=st.none() | st.integers(0, 3),
    mode=st.sampled_from(["dfu", "app"]),
    arrive=st.none() | st.floats(min_value=0, max_value=1e6),
)


@settings(max_examples=150, deadline=None)
@given(selectors)
def test_str_round_trips(selector: DeviceSelector) -> None:
    assert DeviceSelector.parse(str(selector)) == selector


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40) | st.builds(lambda s: "sim:stm32f411?" + s, st.text(max_size=30)))
def test_random_text_raises_only_selector_error(text: str) -> None:
    with contextlib.suppress(SelectorError):
        DeviceSelector.parse(text)


@pytest.mark.parametrize(
    ("text", "value"),
    [("16K", 16384), ("512k", 524288), ("1M", 1 << 20), ("0x4000", 0x4000), ("16KiB", 16384)],
)
def test_parse_size(text: str, value: int) -> None:
    assert parse_size(text) == value


@pytest.mark.parametrize("text", ["", "K", "12q", "-1"])
def test_parse_size_errors(text: str) -> None:
    with pytest.raises(SelectorError, match="invalid length"):
        parse_size(text, what="length")


# --------------------------------------------------------------------------- opening


def test_open_device_on_a_simulated_board() -> None:
    with open_device("sim:stm32f411?flash=256k&serial=ABC") as dev:
        assert isinstance(dev, DfuDevice)
        assert dev.info.serial == "ABC"
        assert dev.layout is not None
        assert dev.layout.size == 256 * 1024
        assert isinstance(dev.clock, VirtualClock)


def test_open_device_selects_the_alt_setting() -> None:
    with open_device("sim:?alt=Option Bytes") as dev:
        assert dev.alt == 1
    with open_device(DeviceSelector(scheme="sim", alt=1), alt=0) as dev:
        assert dev.alt == 0


def test_a_speed_runs_on_a_scaled_clock() -> None:
    b = bench("sim:?speed=1000")
    assert isinstance(b.clock, ScaledClock)
    assert b.clock.speed == 1000
    assert b.boards[0].clock is b.clock


def test_open_device_usb_with_a_backend_and_the_not_found_errors() -> None:
    boards = [Stm32F411(serial="A"), Stm32F411(serial="B", port_numbers=(2,))]
    backend = SimBackend(boards)
    with open_device("usb:0483:df11,serial=B", backend=backend) as dev:
        assert dev.info.serial == "B"
    with pytest.raises(DeviceNotFoundError, match="2 DFU devices match") as info:
        open_device("usb:0483:df11", backend=backend)
    assert len(info.value.candidates) == 2
    with pytest.raises(DeviceNotFoundError, match="no DFU device found"):
        open_device("usb:serial=C", backend=backend)
    with pytest.raises(SelectorError):
        open_device("usb:serial", backend=backend)


def test_a_sim_selector_refuses_a_backend() -> None:
    with pytest.raises(ValueError, match="builds its own backend"):
        bench("sim:", backend=SimBackend([]))
    with pytest.raises(ValueError, match="needs a sim: selector"):
        sim_bench(DeviceSelector())


def test_list_devices_numbers_several_boards_and_filters() -> None:
    infos = list_devices("sim:stm32f411?count=3&serial=LINE")
    assert [(i.serial, i.path) for i in infos] == [
        ("LINE01", "1-1"),
        ("LINE02", "1-2"),
        ("LINE03", "1-3"),
    ]
    default = [i.serial for i in list_devices("sim:?count=2")]
    assert default == [f"{SIM_SERIAL[:-2]}01", f"{SIM_SERIAL[:-2]}02"]
    assert [i.serial for i in list_devices("sim:")] == [SIM_SERIAL]


def test_search_selector_filters_the_boards_the_base_makes() -> None:
    base = DeviceSelector.parse("sim:?count=3")
    b = sim_bench(base, base.with_overrides(path="1-2"))
    [info] = b.find()
    assert info.serial == b.boards[1].serial


def test_app_mode_boards_show_their_runtime_interface_and_detach() -> None:
    b = bench("sim:?mode=app")
    [runtime, *rest] = b.find()
    assert runtime.mode is DeviceMode.RUNTIME
    assert not rest
    with b.open() as dev, dev.detach() as dfu:
        assert dfu.info.mode is DeviceMode.DFU
        assert dfu.info.serial == b.boards[0].serial


def test_sim_boards_on_later_ports() -> None:
    boards = sim_boards(DeviceSelector(scheme="sim", count=2), first_port=5)
    assert [b.port_numbers for b in boards] == [(5,), (6,)]


def test_settle_lets_a_board_finish_after_the_host_closes() -> None:
    b = bench("sim:")
    board = b.boards[0]
    with b.open() as dev:
        dev.download(b"\x5a" * 64, address=0x08000000)
        dev.leave()
    assert b.settle(lambda: bool(board.app_starts))
    assert board.app_starts[-1].address == 0x08000000
    assert b.settle()  # default: no board is busy


def test_settle_on_real_usb_answers_at_once() -> None:
    real = Bench(DeviceSelector())
    assert real.settle(lambda: True) is True
    assert real.settle(lambda: False, timeout=100.0) is False


def test_the_device_page_example_runs(capsys: pytest.CaptureFixture[str]) -> None:
    from pathlib import Path

    page = Path(__file__).resolve().parents[1] / "docs" / "device.md"
    blocks = re.findall(r"```python\n(.*?)```", page.read_text(encoding="utf-8"), flags=re.S)
    (block,) = [b for b in blocks if 'dfuse.open("sim:' in b]
    exec(compile(block, str(page), "exec"), {"__name__": "docs_example"})
    assert capsys.readouterr().out.strip() == "['LINE01', 'LINE02']"


def test_the_docstring_examples_run() -> None:
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module("dfuse.selector"))
    assert result.attempted > 0
    assert result.failed == 0


def test_boards_arrive_on_a_schedule() -> None:
    sel = DeviceSelector.parse("sim:stm32f411?boards=3&arrive=0.5")
    assert (sel.count, sel.arrive) == (3, 0.5)
    assert str(sel) == "sim:stm32f411?count=3&arrive=0.5"
    b = bench(sel)
    assert b.find() == []
    b.backend.clock.advance_to(1.0)  # type: ignore[attr-defined]
    assert [d.serial for d in b.find()] == ["3276347F3001", "3276347F3002"]
    for text in ("sim:stm32f411?arrive=-1", "sim:stm32f411?arrive=inf", "sim:stm32f411?arrive=x"):
        with pytest.raises(SelectorError, match="arrival interval"):
            DeviceSelector.parse(text)
    with pytest.raises(ValueError, match="arrive"):
        DeviceSelector(scheme="sim", arrive=-1.0)
