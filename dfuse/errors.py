"""The dfuse exception hierarchy.

Every error dfuse raises on purpose derives from :class:`DfuseError`, so one
``except dfuse.DfuseError`` catches them all. Misuse of the API (a negative
length, an argument of the wrong type) raises plain :class:`ValueError` or
:class:`TypeError` instead: those are bugs in the caller, not conditions to
handle.

::

    DfuseError
    ├── FileFormatError            a .dfu/.hex/.s19/.bin file is malformed
    │   ├── SignatureError         a magic string ("DfuSe", "Target", "UFD") is wrong
    │   ├── TruncatedFileError     the data ends before a structure does
    │   ├── SizeMismatchError      a size/count field disagrees with the data
    │   ├── CrcMismatchError       the DFU suffix CRC does not match
    │   └── ImageError             elements overlap, exceed 32 bits, ...
    ├── LayoutError                an alt-setting memory-layout string is malformed
    ├── OptionBytesError           an option-byte or OTP image is malformed
    ├── ProtocolError              the device broke the DFU protocol
    │   └── DeviceStatusError      the device reported a DFU error status
    │       └── ReadProtectedError errVENDOR: the STM32 is read-protected
    ├── TransportError             a USB transfer failed (stall, timeout, I/O)
    │   ├── TransferTimeoutError   the transfer timed out
    │   ├── DeviceGoneError        the device disappeared from the bus
    │   ├── DeviceBusyError        another program holds the device
    │   ├── StallError             the device stalled the request (EP0 STALL)
    │   └── LibusbNotFoundError    no libusb library could be loaded
    ├── DeviceNotFoundError        no device matched (or several did)
    ├── SelectorError              a device selector string is malformed (also a ValueError)
    ├── SafetyError                refused before touching the device
    ├── VerifyError                read-back differs from what was written
    ├── UsageError                 the API was misused locally (also a ValueError)
    ├── CancelledError             a cancel token stopped an operation at a safe point
    ├── TraceError                 a trace file is truncated, corrupt or foreign
    ├── RecordStoreError           the flash record store cannot be opened or written
    └── PartDataError              a row of the part database contradicts itself or the schema

Each exception carries the facts of the failure as attributes (offsets,
expected and found values, DFU state and status), and its message says what was
expected, what was found and where.
"""

from __future__ import annotations

__all__ = [
    "CancelledError",
    "CrcMismatchError",
    "DeviceBusyError",
    "DeviceGoneError",
    "DeviceNotFoundError",
    "DeviceStatusError",
    "DfuseError",
    "FileFormatError",
    "ImageError",
    "LayoutError",
    "LibusbNotFoundError",
    "OptionBytesError",
    "PartDataError",
    "ProtocolError",
    "ReadProtectedError",
    "RecordStoreError",
    "SafetyError",
    "SelectorError",
    "SignatureError",
    "SizeMismatchError",
    "StallError",
    "TraceError",
    "TransferTimeoutError",
    "TransportError",
    "TruncatedFileError",
    "UsageError",
    "VerifyError",
]


class DfuseError(Exception):
    """Root of every error dfuse raises on purpose."""


# --------------------------------------------------------------------------- files


class _LocatedError(DfuseError):
    """An error at a byte offset in some data, with what was expected and what was found."""

    def __init__(
        self,
        message: str,
        *,
        offset: int | None = None,
        expected: object = None,
        found: object = None,
    ) -> None:
        self.offset = offset
        self.expected = expected
        self.found = found
        msg = message
        if offset is not None:
            msg += f" at offset {offset} (0x{offset:X})"
        if expected is not None or found is not None:
            msg += f": expected {_fmt(expected)}, found {_fmt(found)}"
        super().__init__(msg)


class FileFormatError(_LocatedError):
    """A firmware file is malformed.

    Attributes:
        offset: byte offset in the file where the problem is (``None`` if not applicable).
        expected: what the format requires there.
        found: what the file holds there.
    """


class SignatureError(FileFormatError):
    """A signature ("DfuSe", "Target", "UFD") or version byte is wrong."""


class TruncatedFileError(FileFormatError):
    """The data ends before a structure it announces."""


class SizeMismatchError(FileFormatError):
    """A size or count field disagrees with the data that follows it."""


class CrcMismatchError(FileFormatError):
    """The CRC stored in the DFU suffix does not match the file's contents.

    Attributes:
        stored: the CRC in the suffix.
        computed: the CRC of the file's bytes.
    """

    def __init__(self, stored: int, computed: int, *, offset: int | None = None) -> None:
        self.stored = stored
        self.computed = computed
        super().__init__(
            "DFU suffix CRC mismatch (pass verify_crc=False to read a damaged file anyway)",
            offset=offset,
            expected=f"0x{computed:08X} (computed)",
            found=f"0x{stored:08X} (stored)",
        )


class ImageError(FileFormatError):
    """The memory image is inconsistent: overlapping elements, addresses past 2**32, ..."""


# --------------------------------------------------------------------------- layout


class LayoutError(DfuseError):
    """An alternate-setting memory-layout string is malformed.

    Attributes:
        text: the whole string.
        position: index in ``text`` where parsing failed.
        expected: what the grammar allows there.
        found: what the string holds there.
    """

    def __init__(
        self,
        message: str,
        *,
        text: str | None = None,
        position: int | None = None,
        expected: object = None,
        found: object = None,
    ) -> None:
        self.text = text
        self.position = position
        self.expected = expected
        self.found = found
        msg = message
        if position is not None:
            msg += f" at position {position}"
        if expected is not None or found is not None:
            msg += f": expected {_fmt(expected)}, found {_fmt(found)}"
        if text is not None:
            msg += f" in {text!r}"
        super().__init__(msg)


class OptionBytesError(_LocatedError):
    """An option-byte block or OTP area image is malformed (wrong size, complement
    bytes that disagree with their values).

    Attributes:
        offset: byte offset in the image where the problem is (``None`` if not applicable).
        expected: what the image must hold there.
        found: what it holds.
    """


# --------------------------------------------------------------------------- protocol


class ProtocolError(DfuseError):
    """The device answered in a way the DFU protocol does not allow."""


class DeviceStatusError(ProtocolError):
    """The device reported an error status (GETSTATUS bStatus != OK).

    Attributes:
        status: the DFU status code (``dfuse.Status`` when known, else the raw int).
        state: the DFU state the device reported.
        istring: the iString index from the GETSTATUS reply (0: none).
        action: what the host was doing, e.g. ``"erasing sector 5 at 0x08020000"``.
    """

    def __init__(
        self,
        status: int,
        state: int,
        *,
        action: str = "",
        istring: int = 0,
        description: str = "",
    ) -> None:
        self.status = status
        self.state = state
        self.istring = istring
        self.action = action
        status_name = getattr(status, "name", f"status {int(status)}")
        state_name = getattr(state, "name", f"state {int(state)}")
        desc = description or getattr(status, "description", "")
        prefix = f"{action}: " if action else ""
        tail = f" — {desc}" if desc else ""
        super().__init__(f"{prefix}{status_name}{tail} (device state {state_name})")


class ReadProtectedError(DeviceStatusError):
    """The device answered errVENDOR: an STM32 ROM does so for every read, write and
    erase while read protection (RDP level 1) is active (AN3156). ``dfuse unprotect
    --yes`` (:meth:`DfuDevice.read_unprotect`) removes it, which erases the flash.

    Same attributes as :class:`DeviceStatusError`.
    """

    def __init__(
        self,
        status: int,
        state: int,
        *,
        action: str = "",
        istring: int = 0,
        description: str = "",
    ) -> None:
        super().__init__(
            status,
            state,
            action=action,
            istring=istring,
            description=description
            or "the chip is read-protected (RDP level 1): reads, writes and erases are "
            "refused; 'dfuse unprotect --yes' removes the protection and ERASES the flash",
        )


# --------------------------------------------------------------------------- transport


class TransportError(DfuseError):
    """A USB transfer failed.

    Attributes:
        request: a short description of the request that failed (e.g. ``"DNLOAD block 7"``).
        cause: the underlying backend exception, if any.
        errno: the OS error number behind it (``errno.EACCES``, ``errno.ENODEV``, ...;
            taken from ``cause`` when not given; ``None`` when unknown).
    """

    def __init__(
        self,
        message: str,
        *,
        request: str = "",
        cause: BaseException | None = None,
        errno: int | None = None,
    ):
        self.request = request
        self.cause = cause
        if errno is None and cause is not None:
            found = getattr(cause, "errno", None)
            errno = found if isinstance(found, int) and not isinstance(found, bool) else None
        self.errno = errno
        super().__init__(f"{request}: {message}" if request else message)


class TransferTimeoutError(TransportError):
    """A USB transfer did not complete within its timeout."""


class DeviceGoneError(TransportError):
    """The device is no longer on the bus (unplugged, reset, or left DFU mode)."""


class DeviceBusyError(TransportError):
    """The device (or its DFU interface) is held by another program or handle."""


class StallError(TransportError):
    """The device stalled the request (a STALL handshake on EP0, libusb's "pipe error").

    A DFU device stalls requests its current state does not allow; its GETSTATUS
    then usually says why.
    """


class LibusbNotFoundError(TransportError):
    """No libusb 1.0 library could be loaded, neither the system's nor the one bundled in
    the ``libusb-package`` wheel. The message says how to install one."""


class DeviceNotFoundError(DfuseError):
    """No device matched the selection, or several did and none was chosen.

    Attributes:
        candidates: descriptions of the devices that did match (empty if none).
    """

    def __init__(self, message: str, *, candidates: tuple[str, ...] = ()) -> None:
        self.candidates = candidates
        if candidates:
            message += "\n" + "\n".join(f"  {c}" for c in candidates)
        super().__init__(message)


class SelectorError(DfuseError, ValueError):
    """A device selector (``usb:0483:df11``, ``sim:stm32f411?flash=256k``) is malformed.

    Also a :class:`ValueError`, as pyserial's ``serial_for_url`` raises for a bad URL.

    Attributes:
        text: the offending part of the selector.
        expected: what the selector grammar allows there.
    """

    def __init__(self, message: str, *, text: str, expected: str) -> None:
        self.text = text
        self.expected = expected
        super().__init__(f"{message} {text!r}: expected {expected}")


# --------------------------------------------------------------------------- safety


class SafetyError(DfuseError):
    """An operation was refused before any USB traffic, because it is unsafe
    (a write outside writable memory, a VID/PID mismatch, an irreversible
    protection change without explicit confirmation, ...).

    Attributes:
        override: the library keyword that would allow it (``"force"``,
            ``"allow_option_bytes"``, ``"confirm"``, ...); ``""`` when nothing does.
    """

    def __init__(self, message: str, *, override: str = "") -> None:
        self.override = override
        super().__init__(message)


class VerifyError(DfuseError):
    """Memory read back from the device differs from what was written.

    Attributes:
        address: the first differing address.
        expected: the byte that should be there.
        found: the byte that is there.
    """

    def __init__(self, address: int, expected: int, found: int, *, mismatches: int = 1) -> None:
        self.address = address
        self.expected = expected
        self.found = found
        self.mismatches = mismatches
        super().__init__(
            f"verify failed at 0x{address:08X}: expected 0x{expected:02X}, found 0x{found:02X}"
            f" ({mismatches} byte(s) differ)"
        )


class UsageError(DfuseError, ValueError):
    """The caller misused the API locally: the device is closed, an argument is out of
    range, an operation needs a DfuSe device, ... Nothing was sent to the device because of it.

    Kept apart from :class:`ProtocolError`, which means the *device* broke the protocol.
    Also a :class:`ValueError`, so ``except ValueError`` written against earlier versions
    still catches bad arguments.

    Attributes:
        value: the offending value (``None`` when the misuse is not about one value).
        expected: what was expected instead (empty when not applicable).
    """

    def __init__(self, message: str, *, value: object = None, expected: str = "") -> None:
        self.value = value
        self.expected = expected
        super().__init__(message)


class CancelledError(DfuseError):
    """A cancel token stopped an operation at its next safe point (after the current
    block or erase, never in the middle of a request). The device was brought back to
    dfuIDLE with ABORT where it was still reachable.

    Attributes:
        erased: the addresses of the sectors (or ``"mass"``) erased before the stop.
        written: how many bytes were written (or read, for an upload) before the stop.
        phase: what was under way ("erase", "write", "verify", "read", ...).
    """

    def __init__(
        self,
        message: str = "cancelled",
        *,
        erased: tuple[int | str, ...] = (),
        written: int = 0,
        phase: str = "",
    ) -> None:
        self.erased = erased
        self.written = written
        self.phase = phase
        where = f" during {phase}" if phase else ""
        what = (
            f"; {len(erased)} sector(s) erased, {written} byte(s) written"
            if phase != "read"
            else f"; {written} byte(s) read"
        )
        super().__init__(f"{message}{where}{what}")


class TraceError(DfuseError):
    """A trace file is truncated, corrupt, of another format version, or not a trace.

    Attributes:
        path: the trace file (``""`` for in-memory data).
        line: the 1-based line number of the offending line (0: the file as a whole).
    """

    def __init__(self, message: str, *, path: str = "", line: int = 0) -> None:
        self.path = path
        self.line = line
        where = f"{path or 'trace'}:{line}: " if line else (f"{path}: " if path else "")
        super().__init__(f"{where}{message}")


class RecordStoreError(DfuseError):
    """The flash record store (SQLite file or PostgreSQL URL) cannot be opened, migrated or
    written. Raised before any board is flashed when the store is unusable.

    Attributes:
        url: the store's location, with any password removed.
    """

    def __init__(self, message: str, *, url: str = "") -> None:
        self.url = url
        super().__init__(f"{url}: {message}" if url else message)


class PartDataError(DfuseError):
    """A row of the part database (:mod:`dfuse.parts`) breaks the schema or contradicts
    itself (a sector map that differs from its own alt string, an unknown quirk).

    Attributes:
        source: the data file (``""`` when built in code).
        part: the part's name (``""`` when not known yet).
        field: the dotted field path, e.g. ``"alt[0].regions"``.
    """

    def __init__(self, message: str, *, source: str = "", part: str = "", field: str = "") -> None:
        self.source = source
        self.part = part
        self.field = field
        where = ": ".join(x for x in (source, part, field) if x)
        super().__init__(f"{where}: {message}" if where else message)


def _fmt(value: object) -> str:
    if isinstance(value, bytes | bytearray | memoryview):
        return repr(bytes(value))
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value} (0x{value:X})"
    return str(value)
