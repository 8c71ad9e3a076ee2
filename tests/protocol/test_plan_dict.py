"""Plan.to_dict (and its steps' and decisions'): the JSON ``dfuse flash --dry-run`` prints."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from dfuse.device import TargetPlan
from dfuse.layout import MemoryLayout
from dfuse.protocol.plan import (
    EraseMode,
    EraseSector,
    MassErase,
    PlanOptions,
    SectorAction,
    SectorDecision,
    plan_download,
    plan_incremental,
)

F411 = MemoryLayout.parse("@Internal Flash  /0x08000000/04*016Kg,01*064Kg,03*128Kg")
BASE = 0x08000000


def test_step_and_decision_records() -> None:
    assert EraseSector(5, 0x08020000, 0x20000).to_dict() == {
        "sector": 5,
        "address": 0x08020000,
        "size": 0x20000,
    }
    assert MassErase().to_dict() == {"all": True}
    decision = SectorDecision(1, 0x08004000, 0x4000, SectorAction.REWRITE, 16, 3, 0x08004002)
    assert decision.to_dict() == {
        "sector": 1,
        "address": 0x08004000,
        "size": 0x4000,
        "action": "rewrite",
        "reason": "3 of 16 image byte(s) differ from 0x08004002",
    }


def test_plan_record_counts_match_the_plan() -> None:
    plan = plan_download([(BASE + 0x3FF0, b"\x01" * 0x20)], F411, 2048)
    record = plan.to_dict()
    assert record["erase"] == [
        {"sector": 0, "address": BASE, "size": 0x4000},
        {"sector": 1, "address": BASE + 0x4000, "size": 0x4000},
    ]
    assert record["erase_bytes"] == 0x8000
    assert record["image_size"] == 0x20
    assert record["write_blocks"] == len(plan.writes)
    assert record["write_bytes"] == 0x20
    assert record["incremental"] is False
    assert record["sectors"] == []
    assert record["steps"] == [step.describe() for step in plan.steps]
    json.dumps(record)  # JSON-able as it is


def test_a_mass_erase_plan() -> None:
    options = PlanOptions(erase=EraseMode.MASS)
    assert plan_download([(BASE, b"\x01")], F411, 2048, options).to_dict()["erase"] == [
        {"all": True}
    ]


def test_incremental_decisions_are_listed() -> None:
    image = [(BASE, b"\x01" * 16), (BASE + 0x4000, b"\x02" * 16)]
    readback = [(BASE, b"\x01" * 16), (BASE + 0x4000, b"\xff" * 16)]
    record = plan_incremental(image, F411, 2048, readback).to_dict()
    assert record["incremental"] is True
    sectors = record["sectors"]
    assert isinstance(sectors, list)
    assert [(d["sector"], d["action"]) for d in sectors] == [(0, "skip"), (1, "rewrite")]
    assert record["erase"] == [{"sector": 1, "address": BASE + 0x4000, "size": 0x4000}]


def test_target_plan_adds_the_alt_setting() -> None:
    plan = plan_download([(BASE, b"\x01")], F411, 2048)
    record = TargetPlan(0, "Internal Flash", plan).to_dict()
    assert record["alt_setting"] == 0
    assert record["name"] == "Internal Flash"
    assert {k: v for k, v in record.items() if k not in ("alt_setting", "name")} == plan.to_dict()


@settings(max_examples=40, deadline=None)
@given(
    start=st.integers(0, 0x7FFFF),
    length=st.integers(1, 0x3000),
    transfer=st.sampled_from([64, 1024, 2048]),
)
def test_erase_and_byte_totals_agree(start: int, length: int, transfer: int) -> None:
    length = min(length, 0x80000 - start)
    plan = plan_download([(BASE + start, b"\x00" * length)], F411, transfer)
    record = plan.to_dict()
    erase, write_bytes = record["erase"], record["write_bytes"]
    skipped_bytes = record["skipped_bytes"]
    assert isinstance(erase, list)
    assert isinstance(write_bytes, int)
    assert isinstance(skipped_bytes, int)
    assert sum(e["size"] for e in erase) == record["erase_bytes"]
    assert write_bytes + skipped_bytes == length
    assert json.loads(json.dumps(record)) == record
