"""mkdocs hook: render docs/cli.md from the argparse parser at build time.

The committed docs/cli.md is the same text (tests/cli/test_docs.py checks it), so the
page reads the same on GitHub; the site is always built from the parser itself.
"""

from __future__ import annotations

from typing import Any


def on_page_markdown(markdown: str, page: Any, **kwargs: Any) -> str:
    """Replace the CLI reference page's Markdown with a fresh rendering."""
    if page.file.src_uri == "cli.md":
        from dfuse.cli.docgen import render

        return render()
    return markdown
