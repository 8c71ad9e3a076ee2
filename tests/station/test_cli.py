"""``dfuse station``, ``dfuse log`` and ``--wait`` from the command line."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dfuse.cli import main
from tests.station.conftest import STAMP_BASE, PgCluster


def _run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(argv, stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def test_station_then_log(image_file: Path, tmp_path: Path) -> None:
    log = str(tmp_path / "records.sqlite")
    code, out, err = _run(
        ["station", str(image_file), "-d", "sim:stm32f411?boards=3&arrive=0.2", "--count", "3",
         "--stamp", f"0x{STAMP_BASE:08X}:counter:10", "--log", log, "--station-id", "st-1"]
    )  # fmt: skip
    assert code == 0, err
    assert "3 passed, 0 failed" in out
    code, out, err = _run(["log", "--log", log, "--json"])
    assert code == 0, err
    records = json.loads(out)["records"]
    assert len(records) == 3
    assert sorted(r["stamps"][0]["value"] for r in records) == [10, 11, 12]
    for r in records:
        assert r["result"] == "ok"
        assert r["error"] is None
        assert r["station"] == "st-1"
        assert r["part"] == "stm32f411xe"
        assert len(r["image_sha256"]) == 64
        assert r["stamps"][0] == {"address": STAMP_BASE, "spec": "counter:10:4", "value": r[
            "stamps"][0]["value"]}  # fmt: skip
    code, out, _ = _run(["log", "--log", log, "--csv", "--serial", records[1]["serial"]])
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [row["serial"] for row in rows] == [records[1]["serial"]]
    code, out, _ = _run(["log", "--log", log, "--json", "--failed"])
    assert json.loads(out) == {"records": []}
    code, out, _ = _run(["log", "--log", log])
    assert code == 0
    assert records[0]["serial"] in out


def test_station_json_prints_one_line_per_board_event(image_file: Path, tmp_path: Path) -> None:
    code, out, err = _run(
        ["station", str(image_file), "-d", "sim:stm32f411?count=2", "--count", "2",
         "--log", str(tmp_path / "r.sqlite"), "--json"]
    )  # fmt: skip
    assert code == 0, err
    events = [json.loads(line) for line in out.splitlines()]
    assert events[-1]["event"] == "summary"
    assert events[-1]["passed"] == 2
    done = [e for e in events if e["event"] == "done"]
    assert len(done) == 2
    assert all(e["record"]["result"] == "ok" for e in done)
    assert {e["event"] for e in events} <= {"arrived", "phase", "done", "summary"}


def test_read_only_store_fails_before_any_board(image_file: Path, tmp_path: Path) -> None:
    path = tmp_path / "ro.sqlite"
    from dfuse.station import RecordStore

    RecordStore.open(path).close()  # creates it
    code, out, err = _run(
        ["station", str(image_file), "-d", "sim:stm32f411", "--count", "1",
         "--log", f"sqlite:///file:{path}?mode=ro&uri=true"]
    )  # fmt: skip
    assert code != 0
    assert "readonly" in err or "read-only" in err
    assert "passed" not in out


def test_bad_stamp_is_a_usage_error(image_file: Path, tmp_path: Path) -> None:
    code, _, err = _run(
        ["station", str(image_file), "-d", "sim:stm32f411", "--stamp", "0x08004000:colour",
         "--log", str(tmp_path / "r.sqlite")]
    )  # fmt: skip
    assert code == 2
    assert "colour" in err


def test_wait_on_a_device_command(image_file: Path) -> None:
    # the board arrives 3 s (of simulated time) after the command starts
    code, _out, err = _run(["flash", str(image_file), "-d", "sim:stm32f411?arrive=3", "--wait"])
    assert code == 0, err
    code, _, err = _run(["flash", str(image_file), "-d", "sim:stm32f411?arrive=3", "--wait=1"])
    assert code == 3, err
    assert "within 1 s" in err
    code, _, err = _run(["flash", str(image_file), "-d", "sim:stm32f411?arrive=3"])
    assert code == 3


def test_four_stations_share_one_postgres_database(
    image_file: Path, pg_cluster: PgCluster, pg_url: str
) -> None:
    """A line of 4 stations (4 processes), 8 boards each, one counter: no duplicate or
    missing number, 32 records."""
    env = dict(os.environ)
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "dfuse", "station", str(image_file),
             "-d", f"sim:stm32f411?boards=8&serial=LINE{n}B&arrive=0.05", "--count", "8",
             "--stamp", f"0x{STAMP_BASE:08X}:counter:1:4", "--log", pg_url,
             "--station-id", f"station-{n}", "--json"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        )
        for n in range(4)
    ]
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        assert json.loads(out.splitlines()[-1])["passed"] == 8
    code, out, err = _run(["log", "--log", pg_url, "--json"])
    assert code == 0, err
    records = json.loads(out)["records"]
    assert len(records) == 32
    assert all(r["result"] == "ok" for r in records)
    numbers = sorted(r["stamps"][0]["value"] for r in records)
    assert numbers == list(range(1, 33))
    assert len({r["serial"] for r in records}) == 32
    assert {r["station"] for r in records} == {f"station-{n}" for n in range(4)}


@pytest.mark.parametrize("argv", [["station", "--help"], ["log", "--help"]])
def test_help(argv: list[str]) -> None:
    code, out, _ = _run(argv)
    assert code == 0
    assert "--log" in out


def test_wait_on_list() -> None:
    code, out, err = _run(["list", "-d", "sim:stm32f411?boards=2&arrive=2", "--wait=5"])
    assert code == 0, err
    assert "3276347F3001" in out


def test_flash_records_only_with_log(image_file: Path, tmp_path: Path) -> None:
    log = tmp_path / "flash.sqlite"
    code, _, err = _run(["flash", str(image_file), "-d", "sim:stm32f411", "--log", str(log)])
    assert code == 0, err
    code, out, _ = _run(["log", "--log", str(log), "--json"])
    [record] = json.loads(out)["records"]
    assert record["result"] == "ok"
    assert record["serial"] == "3276347F3034"
    assert record["image_name"] == str(image_file)
    assert record["sectors_erased"] == 1
    assert record["bytes_written"] == 16 * 1024
    # a failed flash is recorded too (a file for another device, refused by the planner)
    other = tmp_path / "other.dfu"
    from dfuse.file import DfuSeFile

    DfuSeFile.from_bin(b"x" * 16, address=0x08000000, vendor_id=0x1234).save(other)
    code, _, _ = _run(["flash", str(other), "-d", "sim:stm32f411", "--log", str(log)])
    assert code != 0
    code, out, _ = _run(["log", "--log", str(log), "--json", "--failed"])
    [failed] = json.loads(out)["records"]
    assert failed["error_type"] == "SafetyError"
    # without --log nothing is recorded
    assert _run(["flash", str(image_file), "-d", "sim:stm32f411"])[0] == 0
    assert len(json.loads(_run(["log", "--log", str(log), "--json"])[1])["records"]) == 2


def test_flash_all_records_every_board_with_log(image_file: Path, tmp_path: Path) -> None:
    log = tmp_path / "gang.sqlite"
    code, _, err = _run(
        ["flash", str(image_file), "-d", "sim:stm32f411?count=3", "--all", "--log", str(log)]
    )
    assert code == 0, err
    code, out, _ = _run(["log", "--log", str(log), "--json"])
    records = json.loads(out)["records"]
    assert sorted(r["serial"] for r in records) == ["3276347F3001", "3276347F3002", "3276347F3003"]
    for record in records:
        assert record["result"] == "ok"
        assert record["image_name"] == str(image_file)
        assert record["sectors_erased"] == 1
        assert record["bytes_written"] == 16 * 1024
    # without --log, --all records nothing
    assert _run(["flash", str(image_file), "-d", "sim:stm32f411?count=2", "--all"])[0] == 0
    assert len(json.loads(_run(["log", "--log", str(log), "--json"])[1])["records"]) == 3


def test_flash_all_with_an_unusable_log_is_a_clear_error(image_file: Path, tmp_path: Path) -> None:
    log = tmp_path / "missing-dir" / "sub" / "x.sqlite"
    (tmp_path / "missing-dir").write_text("a file where a directory should be")
    code, _, err = _run(
        ["flash", str(image_file), "-d", "sim:stm32f411?count=2", "--all", "--log", str(log)]
    )
    assert code != 0
    assert "Traceback" not in err
    assert str(log) in err or "missing-dir" in err


def test_log_refuses_bad_input_with_the_value_and_what_was_expected(tmp_path: Path) -> None:
    log = tmp_path / "r.sqlite"
    from dfuse.station import RecordStore

    RecordStore.open(log).close()
    code, out, err = _run(["log", "--log", str(log), "--since", "yesterday"])
    assert code == 2
    assert "'yesterday'" in err
    assert "2026-12-04" in err
    assert "Traceback" not in err
    code, out, err = _run(["log", "--log", str(log), "--json", "--csv"])
    assert code == 2
    assert json.loads(out)["error"]["kind"] == "usage"  # --json: the error as JSON
    assert "--csv" in out
    # a path that holds no store (a typo) is refused, not created and shown as empty
    missing = tmp_path / "typo.sqlite"
    code, out, err = _run(["log", "--log", str(missing)])
    assert code == 2
    assert str(missing) in err
    assert not missing.exists()
