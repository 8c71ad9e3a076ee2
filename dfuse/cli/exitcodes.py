"""Exit codes of the ``dfuse`` command and the mapping from errors to them.

Every failure the command line reports ends in one of these codes, so scripts
can tell a missing board from a bad file from a failed verify without parsing
text. The table is part of the documented interface (``docs/cli.md``).
"""

from __future__ import annotations

import errno
from dataclasses import dataclass
from enum import IntEnum

from dfuse.errors import (
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
    SafetyError,
    SelectorError,
    SignatureError,
    StallError,
    TransferTimeoutError,
    TransportError,
    VerifyError,
)
from dfuse.errors import (
    UsageError as LibraryUsageError,
)

__all__ = ["ExitCode", "Failure", "UsageError", "classify"]


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
    FILE_ERROR = 6, "a firmware file could not be read, parsed or written"
    REFUSED = 7, "refused before touching the device (unsafe, unconfirmed or mismatched)"
    BOARDS_FAILED = 100, "flash --all: 100 + the number of boards that failed (at most 125)"
    INTERRUPTED = 130, "interrupted (Ctrl-C)"

    @staticmethod
    def gang(failed: int) -> int:
        """The exit code of ``flash --all`` when ``failed`` boards failed (0 when none)."""
        return 0 if failed <= 0 else min(int(ExitCode.BOARDS_FAILED) + failed, 125)


class UsageError(Exception):
    """A command-line argument is malformed (exit code :attr:`ExitCode.USAGE`)."""


@dataclass(frozen=True)
class Failure:
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
    " /etc/udev/rules.d/50-dfuse.rules` then replug; on Windows bind WinUSB with Zadig"
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


def classify(exc: BaseException) -> Failure:
    """Map an exception to its exit code, a stable kind name, a message and a hint.

    Order matters: the most specific classes are checked first.
    """
    message = str(exc) or type(exc).__name__
    if isinstance(exc, UsageError | SelectorError):
        return Failure(ExitCode.USAGE, "usage", message)
    if isinstance(exc, KeyboardInterrupt):
        return Failure(ExitCode.INTERRUPTED, "interrupted", "interrupted")
    if isinstance(exc, DeviceNotFoundError):
        hint = _SEVERAL_HINT if exc.candidates else _NO_DEVICE_HINT
        return Failure(ExitCode.NOT_FOUND, "device-not-found", message, hint)
    if isinstance(exc, VerifyError):
        return Failure(
            ExitCode.VERIFY_FAILED,
            "verify-failed",
            message,
            "the device does not hold this image; if it was just flashed, the sector may be"
            " write-protected (see `dfuse option-bytes`). A sim: board starts blank in every"
            " command unless its selector keeps a state file (sim:NAME?state=board.json)",
        )
    if isinstance(exc, SafetyError):
        hint = ""
        if "force=True" in message:
            hint = "add --force if you are sure the file is for this device"
        elif "confirm=True" in message:
            hint = "add --yes to confirm"
        return Failure(ExitCode.REFUSED, "refused", message, hint)
    if isinstance(exc, SignatureError) and "UFD" in message:
        return Failure(ExitCode.FILE_ERROR, "file-format", message, _SUFFIX_HINT)
    if isinstance(exc, CrcMismatchError):
        return Failure(
            ExitCode.FILE_ERROR,
            "file-format",
            message,
            "the file is damaged or was edited after its suffix was written; rebuild it",
        )
    if isinstance(exc, FileFormatError | LayoutError):
        return Failure(ExitCode.FILE_ERROR, "file-format", message)
    if isinstance(exc, DeviceBusyError):
        return Failure(ExitCode.DEVICE_ERROR, "device-busy", message, _BUSY_HINT)
    if isinstance(exc, TransferTimeoutError):
        return Failure(ExitCode.DEVICE_ERROR, "timeout", message, _TIMEOUT_HINT)
    if isinstance(exc, DeviceGoneError):
        return Failure(ExitCode.DEVICE_ERROR, "device-gone", message, _GONE_HINT)
    if isinstance(exc, LibusbNotFoundError):
        return Failure(
            ExitCode.DEVICE_ERROR,
            "no-libusb",
            message,
            "reinstall with `python3 -m pip install pydfuse` (the libusb-package wheel"
            " ships libusb), or install libusb-1.0 from your OS",
        )
    if isinstance(exc, StallError):
        return Failure(
            ExitCode.DEVICE_ERROR,
            "stall",
            message,
            "the device refused the request in its current state; run `dfuse -v …` to see"
            " the requests, and replug the board if it stays stuck",
        )
    if isinstance(exc, TransportError):
        low = message.lower()
        if "access" in low or "permission" in low:
            return Failure(ExitCode.DEVICE_ERROR, "permission", message, _PERMISSION_HINT)
        return Failure(ExitCode.DEVICE_ERROR, "transport", message)
    if isinstance(exc, DeviceStatusError):
        return Failure(ExitCode.DEVICE_ERROR, "device-status", message)
    if isinstance(exc, ProtocolError):
        return Failure(ExitCode.DEVICE_ERROR, "protocol", message)
    if isinstance(exc, LibraryUsageError):
        # the library refused locally: a bad value (exit 2), or an operation the device
        # cannot do in its mode (closed, run-time mode, not DfuSe: a device error)
        if exc.value is not None:
            return Failure(ExitCode.USAGE, "usage", message)
        return Failure(ExitCode.DEVICE_ERROR, "device-state", message)
    if isinstance(exc, DfuseError):
        return Failure(ExitCode.ERROR, "error", message)
    if isinstance(exc, OSError):
        where = f"{exc.filename}: " if exc.filename else ""
        text = f"{where}{exc.strerror or message}"
        if exc.errno in (errno.EACCES, errno.EPERM):
            return Failure(ExitCode.FILE_ERROR, "file-access", text, "check the file permissions")
        return Failure(ExitCode.FILE_ERROR, "file-access", text)
    return Failure(
        ExitCode.ERROR,
        "internal",
        f"internal error: {type(exc).__name__}: {message}",
        "rerun with --debug for the traceback and report it",
    )
