"""Board options of a replayed part (``"stm32f429xg?entry=reset"``): the configuration a
log shows a board in."""

from __future__ import annotations

from pathlib import Path

import pytest

from dfuse.errors import UsageError
from dfuse.sim import replay
from dfuse.sim.replayer import parse_part
from tests.trace.conftest import run_cli

FIDELITY = Path(__file__).resolve().parents[1] / "fidelity"


def test_parse_part_reads_every_option() -> None:
    assert parse_part("stm32f407") == ("stm32f407", {})
    assert parse_part("stm32f407?rom=2100") == ("stm32f407", {"rom": 0x2100})
    assert parse_part("stm32l412?spread=1&seed=72&entry=reset") == (
        "stm32l412",
        {"spread": 1.0, "seed": 72, "entry": "reset"},
    )


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("stm32f429xg?entry=warm", "expected one of power_on, reset"),
        ("stm32f429xg?speed=2", "key one of rom, entry, seed, spread"),
        ("stm32f429xg?entry", "expected key=value"),
        ("stm32f407?rom=21x0", "a bcdDevice in hex"),
        ("stm32l412?seed=-", "a decimal integer"),
        ("stm32l412?spread=2", "a number from 0 to 1"),
    ],
)
def test_bad_options_are_refused_with_what_is_expected(spec: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_part(spec)


def test_a_trace_of_another_rom_version_replays_on_it() -> None:
    path = FIDELITY / "stm32f407_discovery_dfu-util-0.5.jsonl"
    report = replay(path)
    assert report.ok, report.summary()
    assert (report.part, report.recorded_part) == ("stm32f407_v21", "stm32f407")
    with pytest.raises(UsageError, match="no ROM version with bcdDevice 0x1234"):
        replay(path, part="stm32f407?rom=1234")


def test_the_cli_takes_board_options_in_part() -> None:
    path = str(FIDELITY / "stm32f429_octopus-pro_dfu-util-0.11.jsonl")
    assert run_cli("sim", "replay", path).code == 5
    assert run_cli("sim", "replay", path, "--part", "stm32f429xg?entry=reset").code == 0
