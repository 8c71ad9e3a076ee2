"""The ``[part.flash.mass_erase_command]`` row fact: its schema (a refusal status and a
citation where the ROM has no mass erase), and which rows use it."""

from __future__ import annotations

import pytest

from dfuse import parts
from dfuse.errors import PartDataError
from dfuse.parts import MassEraseCommand
from dfuse.parts.schema import REFUSAL_STATUSES
from dfuse.protocol.constants import Status
from tests.parts.test_parts import GOOD

NONE = """[part.flash.mass_erase_command]
supported = false
refusal = "errTARGET"
estimate = true
evidence = ["a log"]
"""


def test_a_row_without_the_table_has_the_command() -> None:
    (part,) = parts.schema.load_text(GOOD, "good.toml")
    assert part.flash.mass_erase_command == MassEraseCommand()
    assert part.flash.mass_erase_command.supported


def test_a_row_can_say_its_rom_has_no_mass_erase() -> None:
    (part,) = parts.schema.load_text(GOOD + NONE, "good.toml")
    command = part.flash.mass_erase_command
    assert (command.supported, command.refusal, command.estimate) == (False, "errTARGET", True)
    assert command.evidence == ("a log",)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (('refusal = "errTARGET"\n', ""), "expected the DFU status"),
        (('refusal = "errTARGET"', 'refusal = "errNOPE"'), "'errNOPE'"),
        (("supported = false", "supported = true"), "no refusal status"),
        (('evidence = ["a log"]', "evidence = []"), "citation"),
        (('evidence = ["a log"]\n', ""), "missing"),
        (("estimate = true", "estimate = true\nwhy = 1"), "unknown field"),
        (("supported = false", 'supported = "no"'), "true or false"),
    ],
)
def test_a_broken_table_is_refused_with_its_place(change: tuple[str, str], match: str) -> None:
    old, new = change
    with pytest.raises(PartDataError, match=match) as info:
        parts.schema.load_text(GOOD + NONE.replace(old, new, 1), "bad.toml")
    assert "mass_erase_command" in str(info.value)


def test_the_refusal_statuses_are_dfu_status_names() -> None:
    assert set(REFUSAL_STATUSES) == {s.name for s in Status if s is not Status.OK}


def test_only_the_l0_row_lacks_the_command() -> None:
    lacking = {p.name for p in parts.all_parts() if not p.flash.mass_erase_command.supported}
    assert lacking == {"stm32l072"}
    for p in parts.all_parts():
        command = p.flash.mass_erase_command
        if not command.supported:
            assert command.refusal in REFUSAL_STATUSES
            assert len(command.evidence) >= 2
