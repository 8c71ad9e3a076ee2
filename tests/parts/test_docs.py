"""docs/parts.md is generated from the part database and must not drift from it."""

from __future__ import annotations

from pathlib import Path

from dfuse.parts import all_parts
from dfuse.parts.docgen import part_record, render, table

PAGE = Path(__file__).parents[2] / "docs" / "parts.md"


def test_the_committed_page_is_the_rendered_data() -> None:
    assert PAGE.read_text(encoding="utf-8") == render(), (
        "docs/parts.md is stale: python -m dfuse.parts.docgen > docs/parts.md"
    )


def test_the_page_lists_every_part_its_strings_and_their_status() -> None:
    text = render()
    for part in all_parts():
        assert f"## {part.name}" in text
        for alt in part.alts:
            assert alt.string.replace(" ", "␣") in text
            assert alt.status in text
        for name in part.quirks.active():
            assert f"`{name}`" in text


def test_records_and_table() -> None:
    for part in all_parts():
        record = part_record(part)
        assert record["name"] == part.name
        alts = record["alts"]
        assert isinstance(alts, list)
        assert [a["string"] for a in alts] == list(part.alt_strings)
    lines = table().splitlines()
    assert lines[0].startswith("NAME")
    assert len(lines) == 1 + len(all_parts())
