"""mkdocs hook: render docs/parts.md from the part database at build time.

The committed docs/parts.md is the same text (tests/parts/test_docs.py checks it), so the
page reads the same on GitHub; the site is always built from the data itself.
"""

from __future__ import annotations

from typing import Any


def on_page_markdown(markdown: str, page: Any, **kwargs: Any) -> str:
    """Replace the Supported parts page's Markdown with a fresh rendering."""
    if page.file.src_uri == "parts.md":
        from dfuse.parts.docgen import render

        return render()
    return markdown
