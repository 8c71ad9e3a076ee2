"""The driver's housekeeping decisions, without USB traffic: whether a verb may run on
the device as it is (:func:`check_usable`), how to detach a run-time device
(:func:`detach_request`), and how long to keep reopening a device that reset itself
(:func:`reopen_pause`). :class:`dfuse.device.DfuDevice` performs what they decide."""

from __future__ import annotations

from dfuse.errors import DeviceGoneError, UsageError
from dfuse.protocol.descriptors import Attributes, FunctionalDescriptor
from dfuse.protocol.dfuse import FIRST_DATA_BLOCK, MAX_BLOCK
from dfuse.transport.base import DeviceInfo, DeviceMode

__all__ = [
    "DEFAULT_DETACH_MS",
    "REOPEN_RETRY_S",
    "check_max_block",
    "check_usable",
    "detach_request",
    "is_tolerant",
    "reopen_pause",
    "reselect",
]

#: wDetachTimeOut when the device has no functional descriptor to say its own.
DEFAULT_DETACH_MS = 1000

#: The pause between two attempts to reopen a device still settling after its reset.
REOPEN_RETRY_S = 0.05


def check_max_block(max_block: int) -> None:
    """Refuse (:class:`~dfuse.errors.UsageError`) a highest wBlockNum outside
    FIRST_DATA_BLOCK..MAX_BLOCK (2..65535)."""
    if not FIRST_DATA_BLOCK <= max_block <= MAX_BLOCK:
        raise UsageError(
            f"max_block must be in {FIRST_DATA_BLOCK}..{MAX_BLOCK}, got {max_block}",
            value=max_block,
        )


def check_usable(action: str, *, closed: bool, mode: DeviceMode, needs_dfuse: bool) -> None:
    """Refuse (:class:`~dfuse.errors.UsageError`, naming ``action``) a verb on a closed
    device, on one in run-time mode, or one that needs DfuSe (``needs_dfuse``) on a device
    that does not speak it."""
    if closed:
        raise UsageError(f"cannot {action}: the device is closed")
    if mode is not DeviceMode.DFU:
        raise UsageError(f"cannot {action}: the device is in run-time mode; detach() first")
    if needs_dfuse:
        raise UsageError(f"cannot {action}: the device does not speak DfuSe")


def is_tolerant(fd: FunctionalDescriptor | None) -> bool:
    """Whether the device comes back to dfuIDLE after manifesting (bitManifestationTolerant)."""
    return fd is not None and bool(fd.attributes & Attributes.MANIFESTATION_TOLERANT)


def detach_request(info: DeviceInfo, timeout_ms: int | None) -> tuple[int, bool]:
    """``(wValue, reset)`` of a DETACH: the timeout (``timeout_ms``, else the descriptor's
    wDetachTimeOut, else :data:`DEFAULT_DETACH_MS`; at most 0xFFFF) and whether the host
    must USB-reset the device after it (unless it detaches by itself, bitWillDetach).
    :class:`~dfuse.errors.UsageError` for a device already in DFU mode."""
    if info.mode is not DeviceMode.RUNTIME:
        raise UsageError("detach(): the device is already in DFU mode")
    fd = info.functional
    wait_ms = timeout_ms if timeout_ms is not None else (
        fd.detach_timeout_ms if fd else DEFAULT_DETACH_MS)  # fmt: skip
    return min(wait_ms, 0xFFFF), fd is None or not fd.attributes & Attributes.WILL_DETACH


def reopen_pause(exc: Exception, now: float, deadline: float, wait_s: float,
                 device: str) -> float:  # fmt: skip
    """How long to wait before reopening again a device that failed to open with ``exc``
    (a stale enumeration, or a device still settling); past ``deadline``,
    :class:`~dfuse.errors.DeviceGoneError` (it did not come back within ``wait_s``)."""
    if now >= deadline:
        raise DeviceGoneError(
            f"did not come back in a usable state within {wait_s:g} s ({exc})",
            request=f"waiting for {device} to re-enumerate",
        ) from exc
    return REOPEN_RETRY_S


def reselect(previous: int | None, info: DeviceInfo, current: int | None) -> int | None:
    """The alternate setting to select again on the reopened device: ``previous``, if it
    still has it and ``current`` is another; else ``None``."""
    return previous if previous in {a.number for a in info.alt_settings} - {current} else None
