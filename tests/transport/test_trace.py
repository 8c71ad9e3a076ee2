"""The request trace: every control transfer on the ``dfuse.transport`` logger at DEBUG,
with the first bytes of each data stage, in both directions (docs/troubleshooting.md,
"Reporting a bug")."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest

import dfuse
from dfuse.transport.base import TRACE_BYTES, _shown

SECTOR7 = 0x0806_0000
TROUBLESHOOTING = Path(__file__).resolve().parents[2] / "docs" / "troubleshooting.md"


def test_the_trace_shows_each_request_and_its_data(caplog: pytest.LogCaptureFixture) -> None:
    image = bytes(range(40))
    with (
        caplog.at_level(logging.DEBUG, logger="dfuse.transport"),
        dfuse.open_device("sim:stm32f411") as dev,
    ):
        dev.download(image, address=SECTOR7, verify=True)
    lines = [r.getMessage() for r in caplog.records if r.name == "dfuse.transport"]
    # the DfuSe commands can be read off the trace: erase (0x41) and set address (0x21)
    assert "OUT DNLOAD block 0 (5 bytes) wValue=0 wLength=5 -> ok [41 00 00 06 08]" in lines
    assert "OUT DNLOAD block 0 (5 bytes) wValue=0 wLength=5 -> ok [21 00 00 06 08]" in lines
    first = image[:TRACE_BYTES].hex(" ")
    assert f"OUT DNLOAD block 2 (40 bytes) wValue=2 wLength=40 -> ok [{first} …]" in lines
    assert f"IN  UPLOAD block 2 (40 bytes) wValue=2 wLength=40 -> 40 bytes [{first} …]" in lines
    assert "OUT ABORT wValue=0 wLength=0 -> ok" in lines  # no data stage: nothing shown
    assert any(line.startswith("IN  GETSTATUS wValue=0 wLength=6 -> 6 bytes [") for line in lines)


def test_failed_requests_are_traced_with_the_error(caplog: pytest.LogCaptureFixture) -> None:
    with (
        caplog.at_level(logging.DEBUG, logger="dfuse.transport"),
        dfuse.open_device("sim:stm32f411") as dev,
        pytest.raises(dfuse.DfuseError),
    ):
        dev.upload(0x2000_0000 - 4096, 16)  # not a readable address on the F411
    lines = [r.getMessage() for r in caplog.records if r.name == "dfuse.transport"]
    stalled = "IN  UPLOAD block 2 (16 bytes) wValue=2 wLength=16 -> UPLOAD block 2 (16 bytes):"
    assert any(line.startswith(stalled) and "stalled" in line for line in lines)
    assert "IN  GETSTATUS wValue=0 wLength=6 -> 6 bytes [01 00 00 00 0a 00]" in lines  # errTARGET
    assert "OUT CLRSTATUS wValue=0 wLength=0 -> ok" in lines


def test_nothing_is_formatted_without_debug(caplog: pytest.LogCaptureFixture) -> None:
    with (
        caplog.at_level(logging.INFO, logger="dfuse.transport"),
        dfuse.open_device("sim:stm32f411") as dev,
    ):
        dev.upload(0x0800_0000, 16)
    assert not [r for r in caplog.records if r.name == "dfuse.transport"]


@pytest.mark.parametrize(
    ("data", "shown"),
    [
        (b"", ""),
        (b"\x21\x00\x00\x00\x08", " [21 00 00 00 08]"),
        (bytes(TRACE_BYTES), " [" + " ".join(["00"] * TRACE_BYTES) + "]"),
        (bytes(TRACE_BYTES + 1), " [" + " ".join(["00"] * TRACE_BYTES) + " …]"),
        (memoryview(b"\xff" * 3000), " [" + " ".join(["ff"] * TRACE_BYTES) + " …]"),
    ],
)
def test_shown(data: bytes, shown: str) -> None:
    assert _shown(data, " ") == shown


def _messages(text: str) -> list[str]:
    """The log lines without their timestamps."""
    return [m.group(1) for m in re.finditer(r"^ *[0-9.]+ ms (.*)$", text, flags=re.M)]


def test_the_reporting_a_bug_recipe_writes_the_trace_it_shows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = TROUBLESHOOTING.read_text(encoding="utf-8")
    section = text[text.index("## Reporting a bug") :]
    (recipe,) = [
        b for b in re.findall(r"```python\n(.*?)```", section, flags=re.S) if "trace.log" in b
    ]
    (shown,) = re.findall(r"```text\n(.*?)```", section, flags=re.S)
    monkeypatch.chdir(tmp_path)
    level = logging.getLogger("dfuse").level
    exec(compile(recipe, str(TROUBLESHOOTING), "exec"), {"__name__": "docs_example"})
    written = _messages((tmp_path / "dfuse-trace.log").read_text(encoding="utf-8"))
    documented = _messages(shown)
    head = documented.index("dfuse.transport: OUT ABORT wValue=0 wLength=0 -> ok")
    assert written[:2] == documented[:1] + written[1:2]  # open, then the device (elided)
    assert documented[1].startswith(written[1].split(" alts ")[0])
    assert written[2:13] == documented[2:13]
    assert written[-3:] == documented[head:]
    # the recipe takes its handler off again and puts the level back
    assert not logging.getLogger("dfuse").handlers
    assert logging.getLogger("dfuse").level == level
