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
    assert first.startswith('python3 -m pip install -e ".[dev]" && ')
    assert second == "python3 -m pytest"  # exactly what .ci/run runs


def test_quickstart_main_command_runs() -> None:
    first, _ = _quickstart()
    _install, _, main_command = first.partition(" && ")
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

    real_open = dfuse.DfuDevice.open

    class SimDfuDevice(dfuse.DfuDevice):
        open = classmethod(  # type: ignore[assignment]
            lambda cls, **kw: real_open(backend=backend, **kw)
        )

    monkeypatch.setattr(
        dfuse, "find_devices", functools.partial(dfuse.find_devices, backend=backend)
    )
    monkeypatch.setattr(dfuse, "DfuDevice", SimDfuDevice)
    monkeypatch.setattr("sys.argv", ["flasher", str(example_hex_path())])
    with pytest.raises(SystemExit) as exit_info:
        exec(compile(flasher, "README.md", "exec"), {})
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.splitlines() == ["B1: OK", "B2: OK"]
    for board in boards:
        for address, data in example_segments():
            assert board.peek(address, len(data)) == data
        assert board.app_starts  # leave() started the application
