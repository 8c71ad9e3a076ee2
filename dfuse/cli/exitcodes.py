"""Exit codes of the ``dfuse`` command and the mapping from errors to them.

Every failure the command line reports ends in one of these codes, so scripts
can tell a missing board from a bad file from a failed verify without parsing
text. The table is part of the documented interface (``docs/cli.md``).
"""

from __future__ import annotations

import errno
from collections.abc import Callable
from enum import IntEnum
from typing import NamedTuple

from dfuse import errors
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
    TraceError,
    TransferTimeoutError,
    TransportError,
    VerifyError,
)

__all__ = ["OVERRIDE_FLAGS", "RULES", "ExitCode", "Failure", "Rule", "UsageError", "classify"]


class ExitCode(IntEnum):
    """What ``dfuse`` returns to the shell; each member has a one-line ``description``."""

    description: str

    def __new__(cls, value: int, description: str = "") -> ExitCode:
        obj = int.__new__(cls, value)
        obj._value_ = value
        obj.description = description
        return obj

    OK = 0, "success"
    ERROR = 1, "any other error (an internal error: rerun with --debug and report it)"
    USAGE = 2, "bad command line: unknown option, malformed selector, address or size"
    NOT_FOUND = 3, "no device matched the selection, or several did and none was chosen"
    DEVICE_ERROR = 4, "the device or the USB transfer failed (stall, timeout, DFU error status)"
    VERIFY_FAILED = 5, "memory read back from the device differs from what was written"
    FILE_ERROR = 6, "a firmware file, or the --log record store, could not be read or written"
    REFUSED = 7, "refused before touching the device (unsafe, unconfirmed or mismatched)"
    BOARDS_FAILED = 100, "flash --all: 100 + the number of boards that failed (at most 125)"
    INTERRUPTED = 130, "interrupted (Ctrl-C)"

    @staticmethod
    def gang(failed: int) -> int:
        """The exit code of ``flash --all`` when ``failed`` boards failed (0 when none)."""
        return 0 if failed <= 0 else min(int(ExitCode.BOARDS_FAILED) + failed, 125)


class UsageError(errors.UsageError):
    """A command-line argument is malformed (exit code :attr:`ExitCode.USAGE`).

    A :class:`dfuse.UsageError` (and so a ``ValueError``), like the library's own misuse
    errors, which exit with the same code.
    """


class Failure(NamedTuple):
    """How the command line reports one exception.

    Attributes:
        code: the exit code.
        kind: a short, stable name for ``--json`` output (``"device-not-found"``, ...).
        message: what failed and why (the exception's own message).
        hint: what to try next, or ``""``.
    """

    code: ExitCode
    kind: str
    message: str
    hint: str = ""


_NO_DEVICE_HINT = (
    "check the board is in DFU mode (BOOT0 high, then reset or replug) and the cable carries data;"
    " on Linux install the udev rule (`dfuse udev-rules --help`); on Windows bind WinUSB with"
    " Zadig; or try the simulated board with `-d sim:stm32f411`"
)
_SEVERAL_HINT = "choose one with -S SERIAL, -p PATH or -d usb:serial=…"
_PERMISSION_HINT = (
    "on Linux install the udev rule: `dfuse udev-rules | sudo tee"
    " /etc/udev/rules.d/70-dfuse.rules` then replug; on Windows bind WinUSB with Zadig"
)
_BUSY_HINT = "another program (dfu-util, STM32CubeProgrammer, a second dfuse) holds the device"
_TIMEOUT_HINT = (
    "the device stopped answering; big erases can take seconds (mass erase up to 16 s):"
    " replug the board and retry; if it persists, report it with -v output"
)
_GONE_HINT = "the device left the bus (unplugged or reset): replug it, or re-enter DFU mode"
_SUFFIX_HINT = (
    "a raw binary has no DFU suffix: flash it with --address 0x08000000, or add one with"
    " `dfuse suffix add`"
)


_VERIFY_HINT = (
    "the device does not hold this image; if it was just flashed, the sector may be"
    " write-protected (see `dfuse option-bytes`). A sim: board starts blank in every"
    " command unless its selector keeps a state file (sim:NAME?state=board.json)"
)
_RECORD_STORE_HINT = (
    "--log takes a writable SQLite file path or a reachable postgresql://USER@HOST/DB URL"
    " (see docs/production.md)"
)
_CRC_HINT = "the file is damaged or was edited after its suffix was written; rebuild it"
_LIBUSB_HINT = (
    "reinstall with `python3 -m pip install pydfuse` (the libusb-package wheel ships libusb),"
    " or install libusb-1.0 from your OS"
)
_STALL_HINT = (
    "the device refused the request in its current state; run `dfuse -v …` to see the"
    " requests, and replug the board if it stays stuck"
)
_READ_PROTECTED_HINT = (
    "the chip is read-protected (RDP level 1): `dfuse unprotect --yes` removes the protection"
    " and ERASES the whole flash; then flash again"
)

#: The command-line flag for each library keyword that overrides a :class:`SafetyError`.
OVERRIDE_FLAGS: dict[str, str] = {
    "force": "--force",
    "confirm": "--yes",
    "allow_option_bytes": "--allow-option-bytes",
    "allow_otp": "--allow-otp",
    "allow_otp_lock": "--allow-otp-lock",
    "allow_permanent_rdp2": "--permanently-lock",
}


#: The command for each library method a :class:`SafetyError` suggests instead.
ALTERNATIVE_COMMANDS: dict[str, str] = {
    "change_option_bytes()": "`dfuse option-bytes`",
    "write_otp()": "`dfuse otp`",
}


def _safety_message(exc: BaseException) -> str:
    """The refusal in command-line terms: "add --allow-option-bytes" and "`dfuse
    option-bytes`", not the keyword and the method."""
    assert isinstance(exc, SafetyError)
    key = exc.override
    text = str(exc)
    if key in OVERRIDE_FLAGS:
        text = text.replace(f"pass {key}=True", f"add {OVERRIDE_FLAGS[key]}")
    for method, command in ALTERNATIVE_COMMANDS.items():
        text = text.replace(f"use {method}", f"use {command}")
    return text


def _safety_hint(exc: BaseException) -> str:
    assert isinstance(exc, SafetyError)
    key = exc.override
    if key == "force":
        return "add --force if you are sure the file is for this device"
    flag = OVERRIDE_FLAGS.get(key)
    return f"add {flag} to confirm" if flag else ""


def _errno_in(*numbers: int) -> Callable[[BaseException], bool]:
    def test(exc: BaseException) -> bool:
        return getattr(exc, "errno", None) in numbers

    return test


def _os_message(exc: BaseException) -> str:
    assert isinstance(exc, OSError)
    where = f"{exc.filename}: " if exc.filename else ""
    return f"{where}{exc.strerror or exc}"


def _value(exc: BaseException) -> object:
    return getattr(exc, "value", None)


class Rule(NamedTuple):
    """One row of :data:`RULES`: exceptions of ``type`` (for which ``when`` holds) exit
    with ``code``, are reported as ``kind``, with ``hint`` (text, or made from the
    exception's fields) and ``message`` (default: ``str(exc)``)."""

    type: type[BaseException]
    code: ExitCode
    kind: str
    hint: str | Callable[[BaseException], str] = ""
    when: Callable[[BaseException], bool] | None = None
    message: Callable[[BaseException], str] | None = None


_PERMISSION = _errno_in(errno.EACCES, errno.EPERM)

#: The exit-code table, most specific rows first: the first row whose type and fields
#: match an exception decides how it is reported. No row looks at message text.
RULES: tuple[Rule, ...] = (
    Rule(UsageError, ExitCode.USAGE, "usage"),
    # the library refused locally: a bad value (exit 2), or an operation the device cannot
    # do in its mode (closed, run-time mode, not DfuSe: a device error)
    Rule(errors.UsageError, ExitCode.USAGE, "usage", when=lambda exc: _value(exc) is not None),
    Rule(errors.UsageError, ExitCode.DEVICE_ERROR, "device-state"),
    Rule(SelectorError, ExitCode.USAGE, "usage"),
    Rule(KeyboardInterrupt, ExitCode.INTERRUPTED, "interrupted", message=lambda _: "interrupted"),
    # Ctrl-C during a flash: stopped at a safe point; the message says what was erased/written
    Rule(
        CancelledError,
        ExitCode.INTERRUPTED,
        "interrupted",
        "the device is back in dfuIDLE: run the command again to finish",
    ),
    Rule(
        DeviceNotFoundError,
        ExitCode.NOT_FOUND,
        "device-not-found",
        lambda exc: _SEVERAL_HINT if getattr(exc, "candidates", ()) else _NO_DEVICE_HINT,
    ),
    Rule(VerifyError, ExitCode.VERIFY_FAILED, "verify-failed", _VERIFY_HINT),
    Rule(SafetyError, ExitCode.REFUSED, "refused", _safety_hint, message=_safety_message),
    Rule(
        SignatureError,
        ExitCode.FILE_ERROR,
        "file-format",
        _SUFFIX_HINT,
        when=lambda exc: getattr(exc, "expected", None) == b"UFD",
    ),
    Rule(CrcMismatchError, ExitCode.FILE_ERROR, "file-format", _CRC_HINT),
    Rule(FileFormatError, ExitCode.FILE_ERROR, "file-format"),
    Rule(LayoutError, ExitCode.FILE_ERROR, "file-format"),
    Rule(TraceError, ExitCode.FILE_ERROR, "file-format"),
    Rule(RecordStoreError, ExitCode.FILE_ERROR, "record-store", _RECORD_STORE_HINT),
    Rule(DeviceBusyError, ExitCode.DEVICE_ERROR, "device-busy", _BUSY_HINT),
    Rule(TransferTimeoutError, ExitCode.DEVICE_ERROR, "timeout", _TIMEOUT_HINT),
    Rule(DeviceGoneError, ExitCode.DEVICE_ERROR, "device-gone", _GONE_HINT),
    Rule(LibusbNotFoundError, ExitCode.DEVICE_ERROR, "no-libusb", _LIBUSB_HINT),
    Rule(StallError, ExitCode.DEVICE_ERROR, "stall", _STALL_HINT),
    Rule(TransportError, ExitCode.DEVICE_ERROR, "permission", _PERMISSION_HINT, when=_PERMISSION),
    Rule(TransportError, ExitCode.DEVICE_ERROR, "transport"),
    Rule(ReadProtectedError, ExitCode.DEVICE_ERROR, "read-protected", _READ_PROTECTED_HINT),
    Rule(DeviceStatusError, ExitCode.DEVICE_ERROR, "device-status"),
    Rule(ProtocolError, ExitCode.DEVICE_ERROR, "protocol"),
    Rule(DfuseError, ExitCode.ERROR, "error"),
    Rule(
        OSError,
        ExitCode.FILE_ERROR,
        "file-access",
        "check the file permissions",
        when=_PERMISSION,
        message=_os_message,
    ),
    Rule(OSError, ExitCode.FILE_ERROR, "file-access", message=_os_message),
)


def classify(exc: BaseException) -> Failure:
    """Map an exception to its exit code, a stable kind name, a message and a hint,
    by the first row of :data:`RULES` that matches its type and fields."""
    for rule in RULES:
        if isinstance(exc, rule.type) and (rule.when is None or rule.when(exc)):
            message = rule.message(exc) if rule.message else (str(exc) or type(exc).__name__)
            hint = rule.hint(exc) if callable(rule.hint) else rule.hint
            return Failure(rule.code, rule.kind, message, hint)
    message = str(exc) or type(exc).__name__
    return Failure(
        ExitCode.ERROR,
        "internal",
        f"internal error: {type(exc).__name__}: {message}",
        "rerun with --debug for the traceback (and a device command with --trace FILE)"
        " and report it with both attached (docs/troubleshooting.md)",
    )
