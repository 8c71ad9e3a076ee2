"""MemoryLayout.to_dict / Sector.to_dict: the layout records of ``dfuse list --json``."""

from __future__ import annotations

import json

from hypothesis import given, settings

from dfuse.layout import MemoryLayout, Sector
from tests.test_layout import layouts

F411 = "@Internal Flash  /0x08000000/04*016Kg,01*064Kg,03*128Kg"


def test_f411_record() -> None:
    layout = MemoryLayout.parse(F411)
    record = layout.to_dict()
    assert record["name"] == "Internal Flash"
    assert record["address"] == 0x08000000
    assert record["size"] == 512 * 1024
    assert record["layout"] == F411
    sectors = record["sectors"]
    assert isinstance(sectors, list)
    assert sectors[4] == {
        "index": 4,
        "address": 0x08010000,
        "size": 0x10000,
        "access": "g",
    }
    assert len(sectors) == 8


def test_sector_access_letters() -> None:
    assert Sector(0, 16, True, False, False).to_dict()["access"] == "a"
    assert Sector(0, 16, False, True, True).to_dict()["access"] == "f"


@settings(max_examples=50, deadline=None)
@given(layouts())
def test_records_rebuild_the_layout(layout: MemoryLayout) -> None:
    record = json.loads(json.dumps(layout.to_dict()))
    assert MemoryLayout.parse(record["layout"]) == layout
    rebuilt = tuple(
        Sector.with_access(s["address"], s["size"], s["access"]) for s in record["sectors"]
    )
    assert rebuilt == layout.sectors
    assert [s["index"] for s in record["sectors"]] == list(range(len(layout.sectors)))
    assert record["size"] == sum(s["size"] for s in record["sectors"])
