"""The entry point: help, version, usage errors, error rendering, logging, exit codes."""

from __future__ import annotations

import errno
import logging

import pytest

import dfuse
from dfuse import __version__
from dfuse.cli import ExitCode
from dfuse.cli.exitcodes import Failure, UsageError, classify
from dfuse.errors import (
    CancelledError,
    CrcMismatchError,
    DeviceBusyError,
    DeviceGoneError,
    DeviceNotFoundError,
    DeviceStatusError,
    DfuseError,
    FileFormatError,
    LayoutError,
    LibusbNotFoundError,
    ProtocolError,
    ReadProtectedError,
    RecordStoreError,
    SafetyError,
    SelectorError,
    SignatureError,
    StallError,
    TransferTimeoutError,
    TransportError,
    VerifyError,
)
from dfuse.protocol.constants import State, Status

from .conftest import Runner


def test_help_lists_every_command_and_the_exit_codes(run: Runner) -> None:
    result = run("--help")
    assert result.code == 0
    for command in (
        "list", "info", "build", "extract", "suffix", "flash", "read", "verify", "erase",
        "unprotect", "leave", "detach", "option-bytes", "demo", "udev-rules", "sim",
    ):  # fmt: skip
        assert f"    {command}" in result.out
    for code in ExitCode:
        assert code.description in result.out


def test_version(run: Runner) -> None:
    result = run("--version")
    assert result.code == 0
    assert result.out.strip() == f"dfuse {__version__}"


def test_no_command_is_a_usage_error(run: Runner) -> None:
    result = run()
    assert result.code == ExitCode.USAGE
    assert "required: COMMAND" in result.err


def test_unknown_option_is_a_usage_error(run: Runner) -> None:
    result = run("info", "--frobnicate", "x")
    assert result.code == ExitCode.USAGE
    assert "unrecognized arguments: --frobnicate" in result.err


def test_common_options_before_and_after_the_command(run: Runner) -> None:
    before = run("--json", "udev-rules")
    after = run("udev-rules", "--json")
    assert before.code == after.code == 0
    assert before.json() == after.json()


def test_errors_are_one_or_two_lines_without_traceback(run: Runner, tmp_path: object) -> None:
    result = run("info", "/nonexistent/firmware.hex")
    assert result.code == ExitCode.FILE_ERROR
    assert result.err.startswith("dfuse: error: /nonexistent/firmware.hex: No such file")
    assert "Traceback" not in result.err
    assert len(result.err.strip().splitlines()) <= 2


def test_debug_shows_the_traceback(run: Runner) -> None:
    result = run("--debug", "info", "/nonexistent/firmware.hex")
    assert result.code == ExitCode.FILE_ERROR
    assert "Traceback (most recent call last)" in result.err
    assert "FileNotFoundError" in result.err


def test_json_errors_are_a_document_on_stdout(run: Runner) -> None:
    result = run("info", "--json", "/nonexistent/firmware.hex")
    assert result.code == ExitCode.FILE_ERROR
    doc = result.json()
    assert doc["ok"] is False
    assert doc["error"]["kind"] == "file-access"
    assert doc["error"]["exit_code"] == ExitCode.FILE_ERROR


def test_verbose_attaches_a_debug_handler_only_for_the_call(run: Runner) -> None:
    logger = logging.getLogger("dfuse")
    handlers = list(logger.handlers)
    level = logger.level
    result = run("-v", "udev-rules")
    assert result.code == 0
    assert logger.handlers == handlers
    assert logger.level == level


def test_verbose_logs_go_to_stderr(monkeypatch: pytest.MonkeyPatch, run: Runner) -> None:
    from dfuse.cli import cmd_misc

    original = cmd_misc.udev_rules

    def chatty(group: str | None = None) -> str:
        logging.getLogger("dfuse.test").debug("a request-level line")
        return original(group)

    monkeypatch.setattr(cmd_misc, "udev_rules", chatty)
    assert "a request-level line" in run("-v", "udev-rules").err
    assert "a request-level line" not in run("udev-rules").err


def test_internal_errors_say_so(monkeypatch: pytest.MonkeyPatch, run: Runner) -> None:
    from dfuse.cli import cmd_misc

    def broken(group: str | None = None) -> str:
        raise ZeroDivisionError("oops")

    monkeypatch.setattr(cmd_misc, "udev_rules", broken)
    result = run("udev-rules")
    assert result.code == ExitCode.ERROR
    assert "internal error: ZeroDivisionError: oops" in result.err
    assert "--debug" in result.err


def test_ctrl_c_exits_130(monkeypatch: pytest.MonkeyPatch, run: Runner) -> None:
    from dfuse.cli import cmd_misc

    def interrupted(group: str | None = None) -> str:
        raise KeyboardInterrupt

    monkeypatch.setattr(cmd_misc, "udev_rules", interrupted)
    assert run("udev-rules").code == ExitCode.INTERRUPTED


def test_missing_command_module_is_reported() -> None:
    from dfuse.cli import _resolve

    with pytest.raises(UsageError, match=r"not available in this build .*no_such_module"):
        _resolve("dfuse.cli.no_such_module:cmd")


@pytest.mark.parametrize(
    ("exc", "code", "kind", "hint"),
    [
        (UsageError("bad"), ExitCode.USAGE, "usage", ""),
        (SelectorError("bad", text="x", expected="y"), ExitCode.USAGE, "usage", ""),
        (KeyboardInterrupt(), ExitCode.INTERRUPTED, "interrupted", ""),
        (DeviceNotFoundError("none"), ExitCode.NOT_FOUND, "device-not-found", "BOOT0"),
        (
            DeviceNotFoundError("two", candidates=("a", "b")),
            ExitCode.NOT_FOUND,
            "device-not-found",
            "-S SERIAL",
        ),
        (VerifyError(0x08000000, 1, 2), ExitCode.VERIFY_FAILED, "verify-failed", "option-bytes"),
        (SafetyError("no"), ExitCode.REFUSED, "refused", ""),
        (
            SignatureError("bad ucDfuSignature", expected=b"UFD", found=b"\0\0\0"),
            ExitCode.FILE_ERROR,
            "file-format",
            "--address",
        ),
        (CrcMismatchError(1, 2), ExitCode.FILE_ERROR, "file-format", "rebuild"),
        (FileFormatError("x"), ExitCode.FILE_ERROR, "file-format", ""),
        (LayoutError("x"), ExitCode.FILE_ERROR, "file-format", ""),
        (DeviceBusyError("held"), ExitCode.DEVICE_ERROR, "device-busy", "another program"),
        (TransferTimeoutError("slow"), ExitCode.DEVICE_ERROR, "timeout", "erase"),
        (DeviceGoneError("gone"), ExitCode.DEVICE_ERROR, "device-gone", "replug"),
        (LibusbNotFoundError("no libusb"), ExitCode.DEVICE_ERROR, "no-libusb", "libusb"),
        (StallError("stall"), ExitCode.DEVICE_ERROR, "stall", "-v"),
        (
            TransportError("Access denied (insufficient permissions)", errno=errno.EACCES),
            ExitCode.DEVICE_ERROR,
            "permission",
            "70-dfuse.rules",
        ),
        (TransportError("denied, but no errno"), ExitCode.DEVICE_ERROR, "transport", ""),
        (
            SafetyError("the image writes the option bytes", override="allow_option_bytes"),
            ExitCode.REFUSED,
            "refused",
            "--allow-option-bytes",
        ),
        (SafetyError("sure?", override="confirm"), ExitCode.REFUSED, "refused", "add --yes"),
        (
            ReadProtectedError(Status.errVENDOR, State.dfuERROR, action="reading"),
            ExitCode.DEVICE_ERROR,
            "read-protected",
            "dfuse unprotect --yes",
        ),
        (dfuse.UsageError("bad", value=-1), ExitCode.USAGE, "usage", ""),
        (dfuse.UsageError("the device is closed"), ExitCode.DEVICE_ERROR, "device-state", ""),
        (TransportError("I/O"), ExitCode.DEVICE_ERROR, "transport", ""),
        (
            DeviceStatusError(Status.errWRITE, State.dfuERROR, action="writing"),
            ExitCode.DEVICE_ERROR,
            "device-status",
            "",
        ),
        (ProtocolError("odd"), ExitCode.DEVICE_ERROR, "protocol", ""),
        (DfuseError("other"), ExitCode.ERROR, "error", ""),
        (
            RecordStoreError("connection refused", url="postgresql://u@h/db"),
            ExitCode.FILE_ERROR,
            "record-store",
            "--log takes",
        ),
        (
            CancelledError(erased=(0x08000000,), written=0, phase="erase"),
            ExitCode.INTERRUPTED,
            "interrupted",
            "run the command again",
        ),
        (
            PermissionError(13, "Permission denied", "f.bin"),
            ExitCode.FILE_ERROR,
            "file-access",
            "permissions",
        ),
        (FileNotFoundError(2, "No such file", "f.bin"), ExitCode.FILE_ERROR, "file-access", ""),
        (RuntimeError("bug"), ExitCode.ERROR, "internal", "--debug"),
    ],
)
def test_classify(exc: BaseException, code: ExitCode, kind: str, hint: str) -> None:
    failure = classify(exc)
    assert isinstance(failure, Failure)
    assert (failure.code, failure.kind) == (code, kind)
    assert hint in failure.hint
    if not hint:
        assert failure.hint == ""


def test_exit_codes_are_distinct_and_described() -> None:
    assert len({int(c) for c in ExitCode}) == len(ExitCode)
    assert all(c.description for c in ExitCode)


def test_the_exit_code_table_never_reads_message_text() -> None:
    """Two errors of one type that differ only in their message are reported alike."""
    import dfuse.cli.exitcodes as exitcodes

    for a, b in [
        (TransportError("Access denied"), TransportError("I/O")),
        (SignatureError("UFD", expected=b"DfuSe"), SignatureError("x", expected=b"DfuSe")),
        (SafetyError("refused", override="force"), SafetyError("other", override="force")),
    ]:
        assert classify(a)[:2] == classify(b)[:2]
        assert classify(a).hint == classify(b).hint
    assert all(isinstance(rule, exitcodes.Rule) for rule in exitcodes.RULES)
