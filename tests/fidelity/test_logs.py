"""Evidence from real devices: partial traces built from public logs, replayed on the simulator.

Each ``*.jsonl`` here is a partial trace (docs/traces.md, "Partial traces"): the request
sequence a public log shows, with the states, statuses and poll timeouts it prints, the
log's own words on every line (``log``) or what was inferred and why (``note``), and the
sources in the header. The simulator must agree with each on the traced part.

Where it does not, the log is not bent: the trace stays as the log says, and the test is an
expected failure (``strict``: it fails as soon as the model is fixed, so the entry must go)
that names the model fix needed. ``MODEL_FIXES`` is that list.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from dfuse.sim import RomBootloader, replay
from dfuse.sim.replayer import known_parts
from dfuse.trace.format import read_trace

from ..trace.conftest import schema_errors

HERE = Path(__file__).resolve().parent
TRACES = sorted(HERE.glob("*.jsonl"))

#: Traces the simulator cannot agree with yet, by file stem: the model fix each needs.
MODEL_FIXES: dict[str, str] = {}

#: Traces of a board the log shows in a particular configuration, by file stem: the part
#: with its board options (:func:`dfuse.sim.replayer.parse_part`) and why.
BOARDS: dict[str, tuple[str, str]] = {
    "stm32f429_octopus-pro_dfu-util-0.11": (
        "stm32f429xg?entry=reset",
        "BIGTREETECH-OCTOPUS-Pro#3: the board was entered with 'Boot0 high and reboot the board"
        " via reset'; from a cold start the same board model answers dfuERROR (the other trace)",
    ),
    "stm32f072_pydfu_openmv-1508": (
        "stm32f072?seed=7",
        "the F072 stalls a GETSTATUS that arrives while it is busy at random (pydfu 'always"
        " dies', dfu-util works: it retries); seed 7 is a draw where the page erase's second"
        " GETSTATUS is held and the first write's is stalled, as in this session",
    ),
    "stm32l412_nucleo_dfu-util-0.8": (
        "stm32l412?spread=1&seed=72",
        "the L4 ROM stalls a GETSTATUS sent after a too short poll timeout 'seemingly randomly'"
        " (dfu-util c15ee60), at 4 % or 'sometime at 30%' (redbear/Duo#50): the real erase"
        " times spread to the datasheet maximum (spread=1), and seed 72 is a draw where the"
        " stall falls on the second page erase, as in this session",
    ),
}


def _expectation(path: Path) -> pytest.MarkDecorator | None:
    part = read_trace(path).header.part
    if part is not None and part not in known_parts():
        return pytest.mark.xfail(
            strict=True,
            reason=f"model fix: the simulator has no {part} board (dfuse.sim.board({part!r}))",
        )
    fix = MODEL_FIXES.get(path.stem)
    return None if fix is None else pytest.mark.xfail(strict=True, reason=f"model fix: {fix}")


def _params() -> list[object]:
    out: list[object] = []
    for path in TRACES:
        mark = _expectation(path)
        out.append(pytest.param(path, id=path.stem, marks=[mark] if mark else []))
    return out


@pytest.mark.parametrize("path", _params())
def test_the_simulator_agrees_with_the_log(path: Path) -> None:
    part = BOARDS[path.stem][0] if path.stem in BOARDS else None
    report = replay(path, part=part)
    assert report.ok, report.summary(limit=40)
    assert report.compared > 0


def test_the_board_options_matter() -> None:
    """Each configured board is needed: on the default board the log disagrees."""
    for stem in BOARDS:
        assert not replay(HERE / f"{stem}.jsonl").ok, stem


def test_the_f072_holds_a_busy_getstatus_it_does_not_stall() -> None:
    """openmv#1508: answered dfuDNBUSY at once (the L4's way), pydfu's second GETSTATUS
    after the page erase would not have been the dfuDNLOAD-IDLE it got."""
    import dataclasses

    from dfuse.sim import replayer

    path = HERE / "stm32f072_pydfu_openmv-1508.jsonl"
    original = replayer.make_board

    def l4_way(*args: Any, **kwargs: Any) -> Any:
        models = original(*args, **kwargs)
        board = models[0]
        assert isinstance(board, RomBootloader)
        board.quirks = dataclasses.replace(board.quirks, busy_status_held=False)
        return models

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(replayer, "make_board", l4_way)
        report = replay(path, part=BOARDS[path.stem][0])
    assert any(d.what == "state" and d.line == 5 for d in report.divergences), report.summary()


def test_there_is_evidence_for_each_family() -> None:
    parts = {read_trace(p).header.part or "" for p in TRACES}
    for family in (
        "stm32f0",
        "stm32f3",
        "stm32f4",
        "stm32f7",
        "stm32g0",
        "stm32h7",
        "stm32l4",
        "gd32",
    ):
        assert any(p.startswith(family) for p in parts), family


@pytest.mark.parametrize("path", TRACES, ids=[p.stem for p in TRACES])
def test_each_trace_cites_its_log(path: Path, validator: jsonschema.Draft202012Validator) -> None:
    assert schema_errors(validator, path) == []
    trace = read_trace(path)
    assert trace.header.partial
    assert trace.header.source
    assert trace.header.part
    for text in path.read_text(encoding="utf-8").splitlines()[1:-1]:
        line = json.loads(text)
        assert line.get("log") or line.get("note"), f"{path.name}: a line without its source"
