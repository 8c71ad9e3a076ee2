"""Command-line options for the behaviour suite (``tests/device/test_behaviour.py``).

``--board SELECTOR`` (repeatable) also runs the suite on a real board, named as
:func:`dfuse.open_device` takes it (``usb:0483:df11``); the suite writes the board's last
flash sector only with ``--board-allow-write``, and makes it leave DFU mode only with
``--board-allow-leave``. See docs/device.md, "Testing against a real board".

Also: every test skipped because the usbdevfs bridge cannot run here (no PyGObject or
umockdev) is reported under one reason, in one line of the ``-ra`` summary, instead of one
long line per test file and skip marker.
"""

from __future__ import annotations

from collections.abc import Generator
from functools import cache
from pathlib import Path

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    """Register ``--board``, ``--board-allow-write`` and ``--board-allow-leave``."""
    group = parser.getgroup("dfuse", "dfuse behaviour suite")
    group.addoption(
        "--board",
        action="append",
        default=[],
        metavar="SELECTOR",
        help="also run tests/device/test_behaviour.py on this real board (a dfuse selector, "
        "e.g. usb:0483:df11 or usb:serial=3574364C3034); repeatable",
    )
    group.addoption(
        "--board-allow-write",
        action="store_true",
        default=False,
        help="let the behaviour suite erase and write the LAST flash sector of the --board "
        "(sector 7 at 0x08060000 on an STM32F411xE); read-only behaviours run without it",
    )
    group.addoption(
        "--board-allow-leave",
        action="store_true",
        default=False,
        help="let the behaviour suite make the --board leave DFU mode (it resets into its "
        "application, which must bring it back to the bootloader for later runs)",
    )


def pytest_report_header(config: pytest.Config) -> str:
    """Say once whether the behaviour suite also runs on a real board."""
    boards = config.getoption("board")
    if boards:
        return f"dfuse behaviour suite: the simulator and {', '.join(boards)}"
    return (
        "dfuse behaviour suite: the simulator only (no real board named: pass --board "
        "SELECTOR, e.g. --board usb:0483:df11, to also run it on one)"
    )


@cache
def _bridge_reason() -> str | None:
    """Why the usbdevfs bridge cannot run on this machine (``None``: it can)."""
    from dfuse.sim import usbdevfs

    return usbdevfs.unavailable_reason()


#: Where the folded skips are reported (this file), so that pytest folds them into one line.
_HERE = str(Path(__file__).resolve())


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, None]:
    """Report a skip caused by the missing usbdevfs bridge under one reason and location."""
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    if not report.skipped or not isinstance(report.longrepr, tuple):
        return
    reason = _bridge_reason()
    if reason is None or reason not in report.longrepr[2]:
        return
    line = pytest_runtest_makereport.__code__.co_firstlineno  # one place: one summary line
    report.longrepr = (_HERE, line, f"Skipped: the usbdevfs bridge cannot run here: {reason}")
