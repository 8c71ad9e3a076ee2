"""docs/dfu-util.md stays true: every command line in its side-by-side table parses (the
dfu-util column with dfuse-util's parser, the dfuse column with dfuse's), the hint it
quotes is the one dfuse prints, and every dfuse-util option is in its reference."""

from __future__ import annotations

import io
import re
import shlex
from pathlib import Path

import pytest

from dfuse.cli import main as dfuse_main
from dfuse.cli.parser import build_parser
from dfuse.compat.options import LONG_OPTIONS, parse_args

DOC = Path(__file__).resolve().parents[2] / "docs" / "dfu-util.md"
TEXT = DOC.read_text()
ROWS = re.findall(r"^\| `(dfu-util [^`]*)` \| (.*?) \| .* \|$", TEXT, flags=re.MULTILINE)


def test_the_table_has_the_common_command_lines() -> None:
    assert len(ROWS) >= 12
    assert any(":leave -D app.bin" in row[0] for row in ROWS)


@pytest.mark.parametrize(("dfu_util", "dfuse"), ROWS, ids=[r[0] for r in ROWS])
def test_each_row_parses_on_both_sides(dfu_util: str, dfuse: str) -> None:
    parse_args(shlex.split(dfu_util)[1:])
    for command in re.findall(r"`(dfuse [^`]*)`", dfuse):
        build_parser().parse_args(shlex.split(command)[1:])


def test_the_quoted_hint_is_what_dfuse_prints() -> None:
    block = re.search(r"\$ (dfuse flash [^\n]*)\n(dfuse: [^\n]*)\n", TEXT)
    assert block is not None
    err = io.StringIO()
    assert dfuse_main(shlex.split(block.group(1))[1:], stdout=io.StringIO(), stderr=err) == 2
    assert err.getvalue() == block.group(2) + "\n"


def test_every_long_option_is_in_the_reference() -> None:
    reference = TEXT.split("## `dfuse-util` reference")[1]
    for name in LONG_OPTIONS:
        assert f"`--{name}`" in reference, name
