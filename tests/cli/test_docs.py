"""The CLI reference page is generated from the parser and must match it."""

from __future__ import annotations

from pathlib import Path

from dfuse.cli.docgen import render, walk
from dfuse.cli.parser import build_parser

ROOT = Path(__file__).resolve().parents[2]


def test_committed_cli_reference_matches_the_parser() -> None:
    committed = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    assert committed == render(), (
        "docs/cli.md is stale: regenerate it with `python3 -m dfuse.cli.docgen > docs/cli.md`"
    )


def test_every_command_has_a_section() -> None:
    page = render()
    for path, _ in walk(build_parser()):
        assert f"## `{' '.join(('dfuse', *path))}`" in page


def test_render_does_not_leak_columns(monkeypatch: object) -> None:
    import os

    before = os.environ.get("COLUMNS")
    render()
    assert os.environ.get("COLUMNS") == before


def test_mkdocs_hook_renders_the_cli_page_from_the_parser() -> None:
    import runpy
    from types import SimpleNamespace

    hook = runpy.run_path(str(ROOT / "docs" / "_hooks" / "cli_reference.py"))["on_page_markdown"]
    cli_page = SimpleNamespace(file=SimpleNamespace(src_uri="cli.md"))
    other_page = SimpleNamespace(file=SimpleNamespace(src_uri="guide.md"))
    assert hook("stale", page=cli_page) == render()
    assert hook("# Guide", page=other_page) == "# Guide"


def test_mkdocs_nav_pages_exist() -> None:
    import re

    config = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    pages = re.findall(r":\s+([\w-]+\.md)\s*$", config, re.MULTILINE)
    assert "cli.md" in pages
    assert "api.md" in pages
    for page in pages:
        assert (ROOT / "docs" / page).is_file(), page


def test_every_docs_page_is_in_the_nav() -> None:
    config = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    missing = [
        page.name
        for page in sorted((ROOT / "docs").glob("*.md"))
        if f" {page.name}\n" not in config
    ]
    assert not missing, f"add these pages to the nav in mkdocs.yml: {missing}"
