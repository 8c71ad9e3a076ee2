"""The guides present ``dfuse.open(selector)`` / ``dfuse.list(selector)`` as *the* way to open
and list devices (issue 17.5); tests/test_selector.py runs the selector example."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"
OLD_NAMES = re.compile(r"\b(open_device|list_devices|find_devices)\b")


def _python_blocks(page: str) -> list[str]:
    text = (DOCS / page).read_text(encoding="utf-8")
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


@pytest.mark.parametrize("page", sorted(p.name for p in DOCS.glob("*.md") if p.name != "api.md"))
def test_guides_use_the_documented_pair(page: str) -> None:
    """Old names appear only in the one bullet of docs/device.md that lists the aliases."""
    text = (DOCS / page).read_text(encoding="utf-8")
    if page == "device.md":
        bullet = re.search(r"\n\* The older names still work.*?(?=\n\*|\n\n)", text, flags=re.S)
        assert bullet is not None
        assert "alias" in bullet.group()
        text = text.replace(bullet.group(), "")
    for number, line in enumerate(text.splitlines(), 1):
        assert not OLD_NAMES.search(line), f"{page}:{number}: {line.strip()}"


def test_the_discovery_example_of_the_device_guide_parses() -> None:
    """Each selector the Discovery block passes to dfuse.list is valid (no USB needed)."""
    from dfuse.selector import DeviceSelector

    (block,) = [b for b in _python_blocks("device.md") if "dfuse.list()" in b]
    selectors = re.findall(r'dfuse\.list\("([^"]+)"\)', block)
    assert len(selectors) == 3
    for text in selectors:
        assert str(DeviceSelector.parse(text)) == text
