"""The README's quickstart, run as written."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _quickstart() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Quickstart", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.DOTALL)
    assert block is not None, "the Quickstart section has no ```sh block"
    return [line for line in block.group(1).splitlines() if line.strip()]


def test_quickstart_is_two_commands() -> None:
    first, second = _quickstart()
    # a venv first: a Debian/Ubuntu system python3 refuses `pip install` (PEP 668)
    steps = first.split(" && ")
    assert steps[:3] == ["python3 -m venv .venv", ". .venv/bin/activate", 'pip install -e ".[dev]"']
    assert second == "python3 -m pytest"


def test_ci_runs_the_quickstart_as_written_on_the_system_python() -> None:
    """.ci/run takes the two lines from this README (not a copy) and runs them with
    Debian's /usr/bin/python3, so a quickstart that breaks there breaks CI."""
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "/usr/bin/python3" in ci
    assert "quickstart_line 1" in ci
    assert "quickstart_line 2" in ci
    assert "python3 -m pip install" not in ci  # everything goes into the README's venv


def test_quickstart_main_command_runs() -> None:
    first, _ = _quickstart()
    _install, _, main_command = first.rpartition(" && ")
    argv = shlex.split(main_command)
    assert argv[0] == "dfuse"
    script = shutil.which("dfuse")
    if script is None:
        pytest.skip("the dfuse console script is not installed (the README's install step)")
    env = {k: v for k, v in os.environ.items() if k != "DFUSE_DEVICE"}
    proc = subprocess.run(
        [script, *argv[1:]], capture_output=True, timeout=120, env=env, check=False
    )
    assert proc.returncode == 0, proc.stderr.decode()
    assert b"[6/6] leave DFU mode" in proc.stdout


def _python_blocks() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return re.findall(r"```python\n(.*?)```", text, re.DOTALL)


def test_readme_build_script_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dfuse.data import example_hex_path, example_segments
    from dfuse.file import DfuSeFile

    build_script = _python_blocks()[0]
    (tmp_path / "build").mkdir()
    (tmp_path / "build" / "app.hex").write_text(example_hex_path().read_text())
    monkeypatch.chdir(tmp_path)
    exec(compile(build_script, "README.md", "exec"), {})
    dfu = DfuSeFile.from_path(tmp_path / "build" / "app.dfu")
    assert dfu.targets[0].segments() == example_segments()


def test_readme_flasher_runs_against_simulated_boards(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import functools

    import dfuse
    from dfuse.data import example_hex_path, example_segments
    from dfuse.sim import SimBackend, Stm32F411

    flasher = _python_blocks()[1]
    assert len(flasher.strip().splitlines()) <= 22  # "a custom flasher in ~20 lines"
    boards = [Stm32F411(serial=f"B{i}", address=i, port_numbers=(i,)) for i in (1, 2)]
    backend = SimBackend(boards)
    # what the README says: give both calls backend=...
    monkeypatch.setattr(dfuse, "list", functools.partial(dfuse.list, backend=backend))
    monkeypatch.setattr(dfuse, "open", functools.partial(dfuse.open, backend=backend))
    monkeypatch.setattr("sys.argv", ["flasher", str(example_hex_path())])
    with pytest.raises(SystemExit) as exit_info:
        exec(compile(flasher, "README.md", "exec"), {})
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.splitlines() == ["B1: OK", "B2: OK"]
    for board in boards:
        for address, data in example_segments():
            assert board.peek(address, len(data)) == data
        assert board.app_starts  # leave() started the application


def test_readme_flasher_fails_without_a_board(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A production script must not report success when no board is plugged in."""
    import functools

    import dfuse
    from dfuse.data import example_hex_path
    from dfuse.sim import SimBackend

    backend = SimBackend([])
    monkeypatch.setattr(dfuse, "list", functools.partial(dfuse.list, backend=backend))
    monkeypatch.setattr("sys.argv", ["flasher", str(example_hex_path())])
    with pytest.raises(SystemExit) as exit_info:
        exec(compile(_python_blocks()[1], "README.md", "exec"), {})
    assert exit_info.value.code == "no board in DFU mode found"  # printed, exit status 1
    assert capsys.readouterr().out == ""
