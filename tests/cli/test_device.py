"""Device commands end to end against the simulated STM32F411 (in-process ``main(argv)``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from dfuse.cli import ExitCode
from dfuse.data import example_segments
from dfuse.file import DfuFile, DfuSeFile, load
from dfuse.sim import Event, Fault, FaultKind, Stm32F411

from .conftest import Runner

Sim = Callable[..., Stm32F411]
FLASH = 0x08000000


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _preset(board: Stm32F411) -> None:
    for address, data in example_segments():
        board.poke(address, data)


def _erased(board: Stm32F411, address: int, length: int) -> bool:
    return board.peek(address, length) == b"\xff" * length


# --------------------------------------------------------------------------- list


def test_list_sim(run: Runner) -> None:
    result = run("list", "-d", "sim:stm32f411")
    assert result.code == 0
    assert "0483:df11" in result.out
    assert "STM32  BOOTLOADER" in result.out
    assert "path=1-1" in result.out
    assert "dfu mode" in result.out
    assert "alt 0  Internal Flash" in result.out
    assert "4×16 KiB rew, 1×64 KiB rew, 3×128 KiB rew" in result.out
    assert "alt 1  Option Bytes" in result.out


def test_list_json(run: Runner) -> None:
    doc = run("list", "-d", "sim:stm32f411?flash=256k&serial=ABC", "--json").json()
    [dev] = doc["devices"]
    assert (dev["id"], dev["serial"], dev["mode"], dev["transfer_size"]) == (
        "0483:df11", "ABC", "dfu", 2048,
    )  # fmt: skip
    flash = dev["alt_settings"][0]["layout"]
    assert flash["name"] == "Internal Flash"
    assert flash["size"] == 256 * 1024
    assert [s["size"] for s in flash["sectors"]] == [16384] * 4 + [65536] + [131072]


def test_list_several_and_filters(run: Runner) -> None:
    doc = run("list", "-d", "sim:?count=3", "--json").json()
    assert [d["path"] for d in doc["devices"]] == ["1-1", "1-2", "1-3"]
    serial = doc["devices"][1]["serial"]
    one = run("list", "-d", "sim:?count=3", "-S", serial, "--json").json()
    assert [d["serial"] for d in one["devices"]] == [serial]
    by_path = run("list", "-d", "sim:?count=3", "-p", "1-3", "--json").json()
    assert [d["path"] for d in by_path["devices"]] == ["1-3"]


def test_list_nothing_found_is_not_an_error(run: Runner) -> None:
    result = run("list", "-d", "sim:", "-S", "NO-SUCH-SERIAL")
    assert result.code == 0
    assert "no DFU devices found" in result.out
    assert "BOOT0" in result.err
    assert run("list", "-d", "sim:", "-S", "NO-SUCH", "--json").json() == {
        "ok": True,
        "devices": [],
    }


def test_list_runtime_device(run: Runner) -> None:
    result = run("list", "-d", "sim:?mode=app")
    assert result.code == 0
    assert "runtime mode" in result.out
    assert "DFU run-time" in result.out


def test_default_device_from_environment(run: Runner, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DFUSE_DEVICE", "sim:?serial=FROMENV")
    assert "FROMENV" in run("list").out


def test_bad_selector_is_a_usage_error(run: Runner) -> None:
    result = run("list", "-d", "bogus")
    assert result.code == ExitCode.USAGE
    assert "invalid device selector 'bogus'" in result.err


# --------------------------------------------------------------------------- not found


def test_device_not_found(run: Runner) -> None:
    result = run("leave", "-d", "sim:", "-S", "NOPE")
    assert result.code == ExitCode.NOT_FOUND
    assert "no DFU device found" in result.err
    assert "hint:" in result.err
    assert "BOOT0" in result.err


def test_several_devices_are_listed(run: Runner) -> None:
    result = run("leave", "-d", "sim:?count=2", "--json")
    assert result.code == ExitCode.NOT_FOUND
    assert "2 DFU devices match" in result.err
    assert "path=1-1" in result.err
    assert "path=1-2" in result.err
    doc = result.json()
    assert doc["error"]["kind"] == "device-not-found"
    assert "-S SERIAL" in doc["error"]["hint"]


def test_unknown_alt_setting(run: Runner) -> None:
    result = run("read", "x.bin", "-d", "sim:", "-a", "Nonexistent Memory")
    assert result.code == ExitCode.NOT_FOUND
    assert "no alternate setting 'Nonexistent Memory'" in result.err


# --------------------------------------------------------------------------- flash


def test_flash_hex(run: Runner, sim: Sim, example_hex: Path) -> None:
    board = sim()
    result = run("flash", "-d", "sim:", str(example_hex))
    assert result.code == 0, result.err
    for address, data in example_segments():
        assert board.peek(address, len(data)) == data
    assert "erased 4 sector(s) (112 KiB)" in result.out
    assert "done: verified" in result.out
    # piped: plain progress lines on stderr
    assert "erase    100%" in result.err
    assert "write    100%" in result.err
    assert "verify   100%" in result.err
    assert not board.app_starts


def test_flash_json(run: Runner, sim: Sim, example_hex: Path) -> None:
    sim()
    result = run("flash", "-d", "sim:", str(example_hex), "--json")
    assert result.code == 0
    assert result.err == ""  # no progress lines in --json mode
    doc = result.json()
    assert doc["ok"] is True
    assert doc["verified"] is True
    [target] = doc["targets"]
    assert [e["sector"] for e in target["erase"]] == [0, 1, 2, 4]
    assert target["write_bytes"] == sum(len(d) for _, d in example_segments())
    assert doc["device_seconds"] > 1.0  # datasheet erase times on the virtual clock


def test_flash_dry_run_touches_nothing(run: Runner, sim: Sim, example_hex: Path) -> None:
    board = sim()
    result = run("flash", "-d", "sim:", str(example_hex), "--dry-run")
    assert result.code == 0
    assert "erase sector 4 at 0x08010000 (64 KiB)" in result.out
    assert "write blocks 2..19" in result.out
    assert _erased(board, FLASH, 0x20000)
    doc = run("flash", "-d", "sim:", str(example_hex), "--dry-run", "--json").json()
    assert doc["dry_run"] is True
    assert "set address pointer to 0x08000000" in doc["targets"][0]["steps"]


def test_flash_leave_and_no_verify(run: Runner, sim: Sim, example_hex: Path) -> None:
    board = sim()
    result = run("flash", "-d", "sim:", str(example_hex), "--leave", "--no-verify")
    assert result.code == 0
    assert "not verified" in result.out
    assert "application started" in result.out
    assert board.app_starts
    assert board.app_starts[-1].address == FLASH


def test_flash_backup(run: Runner, sim: Sim, example_hex: Path, workdir: Path) -> None:
    board = sim()
    old = bytes(range(256)) * 64  # 16 KiB of "old firmware" in sector 0
    board.poke(FLASH, old)
    result = run("flash", "-d", "sim:", str(example_hex), "--backup", "old.hex", "--json")
    assert result.code == 0, result.err
    assert result.json()["backup"] == {"path": "old.hex", "bytes": 112 * 1024}
    backup = load("old.hex")
    assert isinstance(backup, DfuSeFile)
    segments = dict(backup.targets[0].segments())
    assert segments[FLASH][: len(old)] == old
    assert segments[0x08010000] == b"\xff" * 0x10000


def test_flash_bin_needs_address(run: Runner, sim: Sim, workdir: Path) -> None:
    board = sim()
    Path("app.bin").write_bytes(b"\x00\x01\x02\x03" * 1000)
    missing = run("flash", "-d", "sim:", "app.bin")
    assert missing.code == ExitCode.FILE_ERROR
    assert "address" in missing.err
    ok = run("flash", "-d", "sim:", "app.bin", "--address", "0x08004000")
    assert ok.code == 0
    assert board.peek(0x08004000, 4000) == b"\x00\x01\x02\x03" * 1000


def test_flash_plain_dfu_needs_address(run: Runner, sim: Sim, workdir: Path) -> None:
    board = sim()
    Path("plain.dfu").write_bytes(DfuFile(b"\x5a" * 100).to_bytes())
    for command in ("flash", "verify"):
        result = run(command, "-d", "sim:", "plain.dfu")
        assert result.code == ExitCode.USAGE
        assert "give --address" in result.err
    assert run("flash", "-d", "sim:", "plain.dfu", "--address", "0x08000000").code == 0
    assert board.peek(FLASH, 100) == b"\x5a" * 100
    assert run("verify", "-d", "sim:", "plain.dfu", "--address", "0x08000000").code == 0


def test_flash_outside_flash_is_refused(run: Runner, sim: Sim, workdir: Path) -> None:
    sim()
    Path("ram.bin").write_bytes(b"x" * 64)
    result = run("flash", "-d", "sim:", "ram.bin", "--address", "0x20000000", "--json")
    assert result.code == ExitCode.REFUSED
    assert result.json()["error"]["kind"] == "refused"


def test_flash_wrong_device_needs_force(
    run: Runner, sim: Sim, example_hex: Path, workdir: Path
) -> None:
    board = sim()
    assert run("build", str(example_hex), "-o", "other.dfu", "--vid", "1234").code == 0
    refused = run("flash", "-d", "sim:", "other.dfu")
    assert refused.code == ExitCode.REFUSED
    assert "hint: add --force" in refused.err
    assert _erased(board, FLASH, 16)
    forced = run("flash", "-d", "sim:", "other.dfu", "--force")
    assert forced.code == 0
    assert "dfuse: warning:" in forced.err


def test_flash_incremental(run: Runner, sim: Sim, example_hex: Path) -> None:
    board = sim()
    _preset(board)
    board.poke(0x08010000, b"\x00")  # one byte differs, in sector 4
    dry = run("flash", "-d", "sim:", str(example_hex), "--incremental", "--dry-run", "--json")
    assert dry.code == 0, dry.err
    [target] = dry.json()["targets"]
    assert target["incremental"] is True
    actions = {d["sector"]: d["action"] for d in target["sectors"]}
    assert actions == {0: "skip", 1: "skip", 2: "skip", 4: "rewrite"}
    result = run("flash", "-d", "sim:", str(example_hex), "--incremental")
    assert result.code == 0, result.err
    assert "erased 1 sector(s) (64 KiB)" in result.out
    assert "3 of 4 sector(s) unchanged" in result.out
    for address, data in example_segments():
        assert board.peek(address, len(data)) == data


def test_flash_all(run: Runner, example_hex: Path) -> None:
    result = run("flash", "--all", "-d", "sim:?count=3", str(example_hex), "--leave")
    assert result.code == 0, result.err
    assert "3 of 3 board(s) flashed, 0 failed" in result.out
    for serial in ("3276347F3001", "3276347F3002", "3276347F3003"):
        assert f"{serial}     done" in result.err  # one progress line per board and phase


def test_flash_all_one_board_fails(run: Runner, sim: Sim, example_hex: Path) -> None:
    good = Stm32F411(serial="GOOD", address=1, port_numbers=(1,))
    bad = Stm32F411(
        serial="BAD",
        address=2,
        port_numbers=(2,),
        faults=[Fault(FaultKind.ERR_ERASE, Event.ERASE, nth=2)],
    )
    sim(good, bad)
    result = run("flash", "--all", "-d", "sim:", str(example_hex), "--json")
    assert result.code == ExitCode.BOARDS_FAILED + 1
    doc = result.json()
    assert (doc["ok"], doc["succeeded"], doc["failed"]) == (False, 1, 1)
    failed = [d for d in doc["devices"] if not d["ok"]]
    assert [d["serial"] for d in failed] == ["BAD"]
    assert "errERASE" in failed[0]["error"]
    assert good.peek(0x08000000, 16) == example_segments()[0][1][:16]


def test_flash_all_usage(run: Runner, example_hex: Path) -> None:
    dry = run("flash", "--all", "--dry-run", "-d", "sim:", str(example_hex))
    assert dry.code == ExitCode.USAGE
    none = run("flash", "--all", "-d", "sim:", "-S", "NOPE", str(example_hex))
    assert none.code == ExitCode.NOT_FOUND


def test_gang_exit_codes() -> None:
    assert ExitCode.gang(0) == 0
    assert ExitCode.gang(1) == 101
    assert ExitCode.gang(7) == 107
    assert ExitCode.gang(500) == 125


def test_flash_device_error(run: Runner, sim: Sim, example_hex: Path) -> None:
    sim(Stm32F411(faults=[Fault(FaultKind.ERR_WRITE, Event.WRITE, nth=3)]))
    result = run("flash", "-d", "sim:", str(example_hex), "--json")
    assert result.code == ExitCode.DEVICE_ERROR
    doc = result.json()
    assert doc["error"]["kind"] == "device-status"
    assert "errWRITE" in doc["error"]["message"]


def test_flash_device_gone(run: Runner, sim: Sim, example_hex: Path) -> None:
    sim(Stm32F411(faults=[Fault(FaultKind.DISCONNECT, Event.DNLOAD, nth=5)]))
    result = run("flash", "-d", "sim:", str(example_hex))
    assert result.code == ExitCode.DEVICE_ERROR
    assert "hint:" in result.err
    assert "Traceback" not in result.err


def test_flash_verify_mismatch(run: Runner, sim: Sim, example_hex: Path) -> None:
    sim(Stm32F411(faults=[Fault(FaultKind.ERR_VERIFY, Event.WRITE, nth=2)]))
    result = run("flash", "-d", "sim:", str(example_hex))
    # errVERIFY is reported by the device itself, or found by the read-back
    assert result.code in (ExitCode.DEVICE_ERROR, ExitCode.VERIFY_FAILED)


def test_flash_missing_file(run: Runner) -> None:
    assert run("flash", "-d", "sim:", "missing.hex").code == ExitCode.FILE_ERROR


# --------------------------------------------------------------------------- read / verify


def test_read_range_to_bin(run: Runner, sim: Sim, workdir: Path) -> None:
    board = sim()
    board.poke(0x08004000, bytes(range(256)) * 16)
    result = run("read", "-d", "sim:", "out.bin", "--address", "0x08004000", "--length", "4K")
    assert result.code == 0
    assert Path("out.bin").read_bytes() == bytes(range(256)) * 16
    assert "read 4096 bytes from 0x08004000" in result.out


def test_read_whole_alt_to_hex_and_dfu(run: Runner, sim: Sim, workdir: Path) -> None:
    board = sim()
    _preset(board)
    doc = run("read", "-d", "sim:", "all.hex", "--json").json()
    assert (doc["format"], doc["size"], doc["address"]) == ("hex", 512 * 1024, FLASH)
    back = load("all.hex")
    assert isinstance(back, DfuSeFile)
    assert back.targets[0].to_bin() == board.peek(FLASH, 512 * 1024)
    assert run("read", "-d", "sim:", "all.dfu").code == 0
    dfu = DfuSeFile.from_path("all.dfu")
    assert (dfu.vendor_id, dfu.product_id) == (0x0483, 0xDF11)
    assert dfu.targets[0].to_bin() == board.peek(FLASH, 512 * 1024)


def test_read_other_alt_setting(run: Runner, sim: Sim, workdir: Path) -> None:
    sim()
    result = run("read", "-d", "sim:", "-a", "1", "ob.bin")
    assert result.code == 0
    assert len(Path("ob.bin").read_bytes()) == 16
    assert run("read", "-d", "sim:", "-a", "Option Bytes", "ob.s19").code == 0


def test_read_needs_address_and_length_together(run: Runner) -> None:
    result = run("read", "-d", "sim:", "x.bin", "--address", "0x08000000")
    assert result.code == ExitCode.USAGE
    assert run("read", "-d", "sim:", "x.bin", "--address", "0x0800", "--length", "lots").code == 2


def test_verify(run: Runner, sim: Sim, example_hex: Path) -> None:
    board = sim()
    mismatch = run("verify", "-d", "sim:", str(example_hex), "--json")
    assert mismatch.code == ExitCode.VERIFY_FAILED
    assert mismatch.json()["error"]["kind"] == "verify-failed"
    assert "verify failed at 0x08000000" in mismatch.err
    _preset(board)
    ok = run("verify", "-d", "sim:", str(example_hex))
    assert ok.code == 0
    assert "match" in ok.out
    assert run("verify", "-d", "sim:", str(example_hex), "--json").json()["match"] is True


# --------------------------------------------------------------------------- erase & co


def test_erase_sectors(run: Runner, sim: Sim) -> None:
    board = sim()
    board.poke(FLASH, bytes(0x20000))
    result = run("erase", "-d", "sim:", "1", "2-3", "--json")
    assert result.code == 0
    assert [e["sector"] for e in result.json()["erased"]] == [1, 2, 3]
    assert board.peek(FLASH, 0x4000) == bytes(0x4000)
    assert _erased(board, 0x08004000, 0xC000)
    assert run("erase", "-d", "sim:", "0x08000000").code == 0
    assert _erased(board, FLASH, 0x4000)


def test_erase_all(run: Runner, sim: Sim) -> None:
    board = sim()
    board.poke(0x08060000, b"\x00" * 16)
    refused = run("erase", "-d", "sim:", "--all")  # like unprotect: it wipes everything
    assert refused.code == ExitCode.REFUSED
    assert "hint: add --yes" in refused.err
    assert not _erased(board, 0x08060000, 16)
    result = run("erase", "-d", "sim:", "--all", "--yes")
    assert result.code == 0
    assert "mass erase done" in result.out
    assert _erased(board, 0x08060000, 16)


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        ((), "give the sectors to erase, or --all"),
        (("1", "--all"), "give the sectors to erase, or --all"),
        (("8",), "has sectors 0 to 7"),
        (("3-1",), "has sectors 0 to 7"),
        (("x",), "invalid sector number"),
    ],
)
def test_erase_usage_errors(run: Runner, argv: tuple[str, ...], fragment: str) -> None:
    result = run("erase", "-d", "sim:", *argv)
    assert result.code == ExitCode.USAGE
    assert fragment in result.err


def test_erase_non_erasable_is_refused(run: Runner) -> None:
    result = run("erase", "-d", "sim:", "-a", "2", "0")
    assert result.code == ExitCode.REFUSED
    assert "not erasable" in result.err


def test_unprotect(run: Runner, sim: Sim) -> None:
    board = sim()
    board.poke(FLASH, b"\x00" * 16)
    board.set_read_protection(1)
    refused = run("unprotect", "-d", "sim:")
    assert refused.code == ExitCode.REFUSED
    assert "hint: add --yes" in refused.err
    assert board.rdp_level == 1
    done = run("unprotect", "-d", "sim:", "--yes", "--json")
    assert done.code == 0, done.err
    assert done.json() == {"ok": True, "unprotected": True, "rdp_level": 0}
    assert board.rdp_level == 0
    assert _erased(board, FLASH, 16)


def test_leave(run: Runner, sim: Sim) -> None:
    board = sim()
    result = run("leave", "-d", "sim:", "--address", "0x08004000", "--json")
    assert result.code == 0
    assert result.json()["address"] == 0x08004000
    assert board.app_starts[-1].address == 0x08004000


def test_detach(run: Runner) -> None:
    result = run("detach", "-d", "sim:?mode=app", "--json")
    assert result.code == 0, result.err
    assert result.json()["device"]["mode"] == "dfu"
    assert "now in DFU mode" in run("detach", "-d", "sim:?mode=app").out
    already = run("detach", "-d", "sim:")
    assert already.code == ExitCode.DEVICE_ERROR
    assert "already in DFU mode" in already.err


# --------------------------------------------------------------------------- option bytes


def test_option_bytes_show(run: Runner, sim: Sim) -> None:
    board = sim()
    board.set_write_protection([0, 5])
    result = run("option-bytes", "-d", "sim:")
    assert result.code == 0
    assert "RDP       level 0" in result.out
    assert "write-protected: 0, 5" in result.out
    doc = run("option-bytes", "-d", "sim:", "--json").json()
    assert doc["option_bytes"]["write_protected"] == [0, 5]
    assert doc["option_bytes"]["rdp_level"] == 0


def test_option_bytes_change_needs_yes(run: Runner, sim: Sim) -> None:
    board = sim()
    before = board.option_bytes
    result = run("option-bytes", "-d", "sim:", "--protect", "0-1")
    assert result.code == ExitCode.REFUSED
    assert "write-protected: 0, 1" in result.out  # what it would become
    assert "add --yes" in result.err
    assert board.option_bytes == before


def test_option_bytes_rdp2_needs_dedicated_flag(run: Runner, sim: Sim) -> None:
    board = sim()
    result = run("option-bytes", "-d", "sim:", "--rdp", "2", "--yes")
    assert result.code == ExitCode.REFUSED
    assert "--permanently-lock" in result.err
    assert board.rdp_level == 0


def test_option_bytes_rdp2_with_the_flag(run: Runner, sim: Sim) -> None:
    board = sim()
    result = run("option-bytes", "-d", "sim:", "--rdp", "2", "--permanently-lock", "--yes")
    assert result.code == 0, result.err
    assert "locked for good" in result.out
    assert board.rdp_level == 2
    assert run("list", "-d", "sim:", "--json").json()["devices"] == []


def test_option_bytes_nothing_to_change(run: Runner, sim: Sim) -> None:
    sim()
    result = run("option-bytes", "-d", "sim:", "--rdp", "0", "--yes", "--json")
    assert result.code == 0
    assert result.json()["changed"] is False


def test_option_bytes_write(run: Runner, sim: Sim) -> None:
    board = sim()
    result = run("option-bytes", "-d", "sim:", "--protect", "2", "--bor", "1", "--yes", "--json")
    assert result.code == 0, result.err
    assert board.is_write_protected(2)
    doc = result.json()
    assert doc["changed"] is True
    assert doc["option_bytes"]["write_protected"] == [2]
    assert doc["option_bytes"]["bor_level"] == "LEVEL_1"
    again = run("option-bytes", "-d", "sim:", "--unprotect", "2", "--bor", "off", "--yes")
    assert again.code == 0, again.err
    assert "write-protected: none" in again.out
    assert not board.is_write_protected(2)


def test_option_bytes_lowering_rdp_erases_flash(run: Runner, sim: Sim) -> None:
    board = sim()
    board.poke(FLASH, b"\x00" * 16)
    board.set_read_protection(1)
    refused = run("option-bytes", "-d", "sim:", "--rdp", "0")
    assert refused.code == ExitCode.REFUSED
    assert "erases the whole flash" in refused.err
    done = run("option-bytes", "-d", "sim:", "--rdp", "0", "--yes")
    assert done.code == 0, done.err
    assert board.rdp_level == 0
    assert _erased(board, FLASH, 16)


@pytest.mark.parametrize("spec", ["8", "x", ",", "3-1"])
def test_option_bytes_bad_sectors(run: Runner, spec: str) -> None:
    assert run("option-bytes", "-d", "sim:", "--protect", spec).code == ExitCode.USAGE


# --------------------------------------------------------------------------- demo


def test_demo(run: Runner) -> None:
    result = run("demo", "--speed", "20")
    assert result.code == 0, result.err
    for n in range(1, 7):
        assert f"[{n}/6]" in result.out
    assert "jumped to 0x08000000" in result.out
    assert "write    100%" in result.err


def test_demo_json_and_keep(run: Runner, tmp_path: Path) -> None:
    result = run("demo", "--speed", "50", "--json", "--keep", str(tmp_path / "k"))
    assert result.code == 0
    doc: dict[str, Any] = result.json()
    assert doc["application_start"] == FLASH
    dfu = DfuSeFile.from_path(tmp_path / "k" / "app.dfu")
    assert dfu.targets[0].segments() == example_segments()
    readback = load(tmp_path / "k" / "readback.hex")
    assert isinstance(readback, DfuSeFile)
    assert readback.targets[0].segments() == example_segments()


def test_demo_bad_speed(run: Runner) -> None:
    assert run("demo", "--speed", "0").code == ExitCode.USAGE


# --------------------------------------------------------------------------- OTP


def test_otp_show(run: Runner, sim: Sim) -> None:
    board = sim()
    board.poke(0x1FFF7820, b"\x12\x34")
    result = run("otp", "-d", "sim:")
    assert result.code == 0
    assert "block  0 0x1FFF7800 open   blank" in result.out
    assert "block  1 0x1FFF7820 open   1234ff" in result.out
    doc = run("otp", "-d", "sim:", "--json").json()
    assert doc["otp"]["locked"] == []


def test_otp_write_and_lock(run: Runner, sim: Sim, workdir: Path) -> None:
    board = sim()
    refused = run("otp", "-d", "sim:", "--write", "2", "--data", "cafe", "--lock", "2")
    assert refused.code == ExitCode.REFUSED
    assert board.peek(0x1FFF7840, 2) == b"\xff\xff"  # nothing written
    result = run("otp", "-d", "sim:", "--write", "2", "--data", "ca:fe", "--json")
    assert result.code == 0, result.err
    assert board.peek(0x1FFF7840, 3) == b"\xca\xfe\xff"
    locked = run("otp", "-d", "sim:", "--lock", "2", "--yes", "--json")
    assert locked.code == 0, locked.err
    assert locked.json()["otp"]["locked"] == [2]
    again = run("otp", "-d", "sim:", "--write", "2", "--data", "00")
    assert again.code == ExitCode.REFUSED
    assert "locked" in again.err
    Path("blk.bin").write_bytes(b"\x00" * 32)
    assert run("otp", "-d", "sim:", "--write", "3", "--data-file", "blk.bin").code == 0
    assert board.peek(0x1FFF7860, 32) == b"\x00" * 32


@pytest.mark.parametrize(
    "argv",
    [
        ("--write", "16", "--data", "00"),
        ("--write", "1"),
        ("--write", "1", "--data", "zz"),
        ("--write", "1", "--data", "00" * 33),
        ("--data", "00"),
    ],
)
def test_otp_usage_errors(run: Runner, argv: tuple[str, ...]) -> None:
    assert run("otp", "-d", "sim:", *argv).code == ExitCode.USAGE


# --------------------------------------------------------------------------- issue 16: memories


def _protect_sector_0(board: Stm32F411) -> bytes:
    from dfuse.optionbytes import OptionBytes

    return OptionBytes.parse(board.option_bytes).with_sectors_protected([0]).to_bytes()


@pytest.mark.parametrize("alt", ["1", "@Option Bytes", "Option Bytes"])
def test_flash_a_raw_file_into_the_memory_alt_selects(
    run: Runner, sim: Sim, workdir: Path, alt: str
) -> None:
    """`flash -a 1 --address 0x1FFFC000 ob.bin` was checked against alt 0 and refused."""
    from dfuse.optionbytes import OptionBytes

    board = sim()
    Path("ob.bin").write_bytes(_protect_sector_0(board))
    argv = ("flash", "-d", "sim:", "-a", alt, "--address", "0x1FFFC000", "ob.bin")
    refused = run(*argv)
    assert refused.code == ExitCode.REFUSED, refused.err
    assert "add --allow-option-bytes" in refused.err
    assert "allow_option_bytes=True" not in refused.err
    assert "change_option_bytes()" not in refused.err  # the CLI names its command instead
    assert "`dfuse option-bytes`" in refused.err
    assert OptionBytes.parse(board.option_bytes).write_protected == frozenset()
    done = run(*argv, "--allow-option-bytes")
    assert done.code == 0, done.err
    assert OptionBytes.parse(board.option_bytes).write_protected == frozenset({0})


def test_option_byte_target_of_a_dfu_needs_the_cli_flag(
    run: Runner, sim: Sim, example_hex: Path, workdir: Path
) -> None:
    from dfuse.optionbytes import OptionBytes

    board = sim()
    Path("ob.bin").write_bytes(_protect_sector_0(board))
    built = run("build", str(example_hex), "ob.bin@0x1FFFC000", "--alt", "0", "--alt", "1",
                "-o", "fw.dfu")  # fmt: skip
    assert built.code == 0, built.err
    refused = run("flash", "-d", "sim:", "fw.dfu")
    assert refused.code == ExitCode.REFUSED
    assert "--allow-option-bytes" in refused.err
    assert _erased(board, FLASH, 16)
    done = run("flash", "-d", "sim:", "fw.dfu", "--allow-option-bytes")
    assert done.code == 0, done.err
    assert OptionBytes.parse(board.option_bytes).write_protected == frozenset({0})
    for address, data in example_segments():
        assert board.peek(address, len(data)) == data


def test_otp_target_needs_allow_otp(run: Runner, sim: Sim, workdir: Path) -> None:
    board = sim()
    Path("otp.bin").write_bytes(b"\x12\x34")
    argv = ("flash", "-d", "sim:", "-a", "2", "--address", "0x1FFF7800", "otp.bin")
    refused = run(*argv)
    assert refused.code == ExitCode.REFUSED
    assert "add --allow-otp" in refused.err
    assert "write_otp()" not in refused.err
    assert "`dfuse otp`" in refused.err
    assert board.peek(0x1FFF7800, 2) == b"\xff\xff"
    assert run(*argv, "--allow-otp").code == 0
    assert board.peek(0x1FFF7800, 2) == b"\x12\x34"


@pytest.mark.parametrize(
    "argv",
    [
        ("read", "-d", "sim:", "x.bin"),
        ("flash", "-d", "sim:", "app.hex"),
        ("erase", "-d", "sim:", "0"),
    ],
)
def test_a_read_protected_chip_is_named_with_the_way_out(
    run: Runner, sim: Sim, example_hex: Path, workdir: Path, argv: tuple[str, ...]
) -> None:
    """These ended with "errVENDOR — vendor-specific error" and no hint."""
    Path("app.hex").write_bytes(example_hex.read_bytes())
    board = sim()
    board.set_read_protection(1)
    result = run(*argv, "--json")
    assert result.code == ExitCode.DEVICE_ERROR, result.err
    error = result.json()["error"]
    assert error["kind"] == "read-protected"
    assert "read-protected" in error["message"]
    assert "dfuse unprotect --yes" in error["hint"]


def test_list_shows_the_read_protection_level(run: Runner, sim: Sim) -> None:
    board = sim()
    assert "read protection: RDP level 0" in run("list", "-d", "sim:").out
    board.set_read_protection(1)
    assert "read protection: RDP level 1" in run("list", "-d", "sim:").out
    [dev] = run("list", "-d", "sim:", "--json").json()["devices"]
    assert dev["rdp_level"] == 1


def test_list_shows_no_level_in_run_time_mode(run: Runner) -> None:
    [dev] = run("list", "-d", "sim:?mode=app", "--json").json()["devices"]
    assert (dev["mode"], dev["rdp_level"]) == ("runtime", None)


def test_read_to_stdout_with_json_is_refused(run: Runner, sim: Sim) -> None:
    sim()
    result = run("read", "-d", "sim:", "-", "--json")
    assert result.code == ExitCode.USAGE
    assert result.json()["error"]["kind"] == "usage"  # stdout holds JSON only
