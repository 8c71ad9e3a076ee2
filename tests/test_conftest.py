"""tests/conftest.py folds every skip caused by the missing usbdevfs bridge into one reason."""

from __future__ import annotations

from typing import Any

import pytest

from tests import conftest


class _Outcome:
    def __init__(self, report: pytest.TestReport) -> None:
        self.report = report

    def get_result(self) -> pytest.TestReport:
        return self.report


def _skip(path: str, line: int, reason: str) -> pytest.TestReport:
    return pytest.TestReport(
        "tests/x.py::t", ("tests/x.py", line, "t"), {}, "skipped", (path, line, reason), "setup"
    )


def _fold(report: pytest.TestReport) -> pytest.TestReport:
    hook: Any = conftest.pytest_runtest_makereport  # a generator: the hook wrapper
    gen = hook(None, None)
    next(gen)
    with pytest.raises(StopIteration):
        gen.send(_Outcome(report))
    return report


def test_bridge_skips_fold_into_one_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    reason = "PyGObject is not importable from /x/python3: install umockdev"
    monkeypatch.setattr(conftest, "_bridge_reason", lambda: reason)
    a = _fold(_skip("tests/sim/a.py", 35, f"Skipped: usbdevfs bridge: {reason}"))
    b = _fold(_skip("tests/compat/b.py", 49, f"Skipped: needs dfu-util and the bridge ({reason})"))
    assert a.longrepr == b.longrepr
    assert isinstance(a.longrepr, tuple)
    assert a.longrepr[0] == conftest._HERE
    assert a.longrepr[1] == conftest.pytest_runtest_makereport.__code__.co_firstlineno
    assert reason in a.longrepr[2]
    # other skips keep their own location and reason
    other = _fold(_skip("tests/device/c.py", 272, "Skipped: option bytes of another layout"))
    assert other.longrepr == ("tests/device/c.py", 272, "Skipped: option bytes of another layout")


def test_nothing_is_folded_where_the_bridge_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(conftest, "_bridge_reason", lambda: None)
    report = _fold(_skip("tests/sim/a.py", 35, "Skipped: usbdevfs bridge: anything"))
    assert report.longrepr == ("tests/sim/a.py", 35, "Skipped: usbdevfs bridge: anything")
