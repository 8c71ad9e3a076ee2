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

import jsonschema
import pytest

from dfuse.sim import replay
from dfuse.sim.replayer import known_parts
from dfuse.trace.format import read_trace

from ..trace.conftest import schema_errors

HERE = Path(__file__).resolve().parent
TRACES = sorted(HERE.glob("*.jsonl"))

#: Traces the simulator cannot agree with yet, by file stem: the model fix each needs.
MODEL_FIXES: dict[str, str] = {
    "stm32f407_discovery_dfu-util-0.5": (
        "bcdDevice: the STM32F4DISCOVERY's F407 ROM reports 0x2100 (bootloader V2.1: dfu-util"
        " device-logs/stm32f4discovery.lsusb and this download log's device); the stm32f407 row"
        " has only 0x2200, so the board needs the ROM version as a row variant or board option"
    ),
    "stm32f429_octopus-pro_dfu-util-0.11": (
        "first GETSTATUS: this session of an Octopus Pro (an application in flash) answers"
        " dfuIDLE, while a cold start of the same board model answered dfuERROR/errFIRMWARE"
        " with its application present (stm32f429_octopus-pro_cold-start_dfu-util-0.9, which"
        " agrees only because the replayed board starts erased); the row's rule"
        " ('no_application') cannot give both: the first status depends on how the ROM was"
        " entered (cold start or reset), which the model does not have"
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
    out = []
    for path in TRACES:
        mark = _expectation(path)
        out.append(pytest.param(path, id=path.stem, marks=[mark] if mark else []))
    return out


@pytest.mark.parametrize("path", _params())
def test_the_simulator_agrees_with_the_log(path: Path) -> None:
    report = replay(path)
    assert report.ok, report.summary(limit=40)
    assert report.compared > 0


def test_there_is_evidence_for_each_family() -> None:
    parts = {read_trace(p).header.part or "" for p in TRACES}
    for family in ("stm32f4", "stm32f7", "stm32h7", "stm32l4", "gd32"):
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
