"""Fault injection for simulated devices, by schedule.

A :class:`Fault` says *what* goes wrong (:class:`FaultKind`) and *when*: the
``nth`` occurrence of an :class:`Event` (a request such as the 17th DNLOAD, or a
device operation such as the 3rd sector erase). Faults fire once. Every fault that
fires is appended to the device's ``fault_log`` as a :class:`FaultRecord`, so a test
can assert exactly what happened.

>>> plan = FaultPlan([Fault(FaultKind.STALL, Event.DNLOAD, nth=17)])
>>> [plan.fire(Event.DNLOAD) for _ in range(17)][-1].kind.name
'STALL'

Request-level kinds (``STALL``, ``TIMEOUT``, ``DISCONNECT``) fire on request
events; operation-level kinds (``ERR_WRITE``, ``ERR_ERASE``, ``ERR_VERIFY``,
``BUSY_LONGER``, ``POWER_LOSS``, and ``DISCONNECT``) on operation events;
``BOOT_ERROR`` on :attr:`Event.BOOT` (a device that starts in dfuERROR with
errFIRMWARE).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum

__all__ = ["Event", "Fault", "FaultKind", "FaultPlan", "FaultRecord"]


class Event(Enum):
    """Countable things that happen to a device: requests and operations."""

    # requests (counted when they reach the device)
    DETACH = "DETACH request"
    DNLOAD = "DNLOAD request"
    UPLOAD = "UPLOAD request"
    GETSTATUS = "GETSTATUS request"
    CLRSTATUS = "CLRSTATUS request"
    GETSTATE = "GETSTATE request"
    ABORT = "ABORT request"
    ANY_REQUEST = "any control request"
    # operations (counted when the device starts them)
    COMMAND = "DfuSe command (Set Address, Get)"
    ERASE = "sector erase"
    MASS_ERASE = "mass erase"
    WRITE = "data block write"
    READ = "data block read"
    OPTION_WRITE = "option-byte write"
    READ_UNPROTECT = "read unprotect"
    LEAVE = "leave (manifestation)"
    BOOT = "device start (power-up or reset)"

    @property
    def is_request(self) -> bool:
        """True for request events."""
        return self in _REQUEST_EVENTS

    @property
    def is_operation(self) -> bool:
        """True for device-operation events."""
        return not self.is_request and self is not Event.BOOT


_REQUEST_EVENTS = frozenset(
    {
        Event.DETACH,
        Event.DNLOAD,
        Event.UPLOAD,
        Event.GETSTATUS,
        Event.CLRSTATUS,
        Event.GETSTATE,
        Event.ABORT,
        Event.ANY_REQUEST,
    }
)


class FaultKind(Enum):
    """What goes wrong."""

    STALL = "the request is stalled (EPIPE)"
    TIMEOUT = "the request is not answered (ETIMEDOUT)"
    DISCONNECT = "the device drops off the bus (ENODEV)"
    ERR_WRITE = "the operation fails with errWRITE"
    ERR_ERASE = "the operation fails with errERASE"
    ERR_VERIFY = "the operation fails with errVERIFY (data written, read-back differs)"
    BUSY_LONGER = "the operation takes longer than the bwPollTimeout reported"
    POWER_LOSS = "power fails part-way through the operation"
    BOOT_ERROR = "the device starts in dfuERROR with errFIRMWARE"


_REQUEST_KINDS = frozenset({FaultKind.STALL, FaultKind.TIMEOUT, FaultKind.DISCONNECT})
_OPERATION_KINDS = frozenset(
    {
        FaultKind.ERR_WRITE,
        FaultKind.ERR_ERASE,
        FaultKind.ERR_VERIFY,
        FaultKind.BUSY_LONGER,
        FaultKind.POWER_LOSS,
        FaultKind.DISCONNECT,
    }
)


@dataclass(frozen=True, slots=True)
class Fault:
    """One scheduled fault.

    Attributes:
        kind: what goes wrong.
        on: which event triggers it.
        nth: on the ``nth`` occurrence of ``on`` (1-based), counted from device creation.
        progress: for ``POWER_LOSS``, how far the operation got (0..1).
        extra: for ``BUSY_LONGER``, seconds beyond the reported poll timeout.
        reconnect_after: for ``DISCONNECT`` and ``POWER_LOSS``, seconds until the
            device is back on the bus (``None``: it stays away until told otherwise).
    """

    kind: FaultKind
    on: Event
    nth: int = 1
    progress: float = 0.5
    extra: float = 1.0
    reconnect_after: float | None = 0.5

    def __post_init__(self) -> None:
        if self.nth < 1:
            raise ValueError(f"nth counts from 1, got {self.nth}")
        if not 0.0 <= self.progress <= 1.0:
            raise ValueError(f"progress must be within 0..1, got {self.progress}")
        if self.extra < 0:
            raise ValueError(f"extra must not be negative, got {self.extra}")
        if self.kind is FaultKind.BOOT_ERROR:
            if self.on is not Event.BOOT:
                raise ValueError(f"BOOT_ERROR fires on Event.BOOT, not {self.on.name}")
        elif self.on.is_request and self.kind not in _REQUEST_KINDS:
            raise ValueError(f"{self.kind.name} fires on an operation event, not {self.on.name}")
        elif self.on.is_operation and self.kind not in _OPERATION_KINDS:
            raise ValueError(f"{self.kind.name} fires on a request event, not {self.on.name}")
        elif self.on is Event.BOOT:
            raise ValueError(f"only BOOT_ERROR fires on Event.BOOT, not {self.kind.name}")

    @classmethod
    def after_fraction(
        cls, kind: FaultKind, on: Event, fraction: float, total: int, **kwargs: float | None
    ) -> Fault:
        """A fault on the first ``on`` event after ``fraction`` of ``total`` events.

        >>> Fault.after_fraction(FaultKind.POWER_LOSS, Event.WRITE, 0.4, total=100).nth
        41
        """
        if not 0.0 <= fraction < 1.0:
            raise ValueError(f"fraction must be within 0..1 (exclusive), got {fraction}")
        if total < 1:
            raise ValueError(f"total must be positive, got {total}")
        return cls(kind, on, nth=math.floor(fraction * total) + 1, **kwargs)  # type: ignore[arg-type]

    def describe(self) -> str:
        """``"POWER_LOSS on the 3rd sector erase"``."""
        return f"{self.kind.name} on the {_ordinal(self.nth)} {self.on.value}"


@dataclass(frozen=True, slots=True)
class FaultRecord:
    """A fault that fired.

    Attributes:
        fault: the scheduled fault.
        time: clock time (seconds) when it fired.
        detail: what it did, e.g. ``"sector 5 at 0x08020000 erased to 40%"``.
    """

    fault: Fault
    time: float
    detail: str = ""

    @property
    def kind(self) -> FaultKind:
        """The fault's kind."""
        return self.fault.kind


class FaultPlan:
    """The schedule of faults of one device, and the event counters that drive it."""

    def __init__(self, faults: Iterable[Fault] = ()) -> None:
        self._pending: list[Fault] = list(faults)
        self.counts: Counter[Event] = Counter()

    def add(self, fault: Fault) -> None:
        """Schedule one more fault."""
        self._pending.append(fault)

    @property
    def pending(self) -> tuple[Fault, ...]:
        """Faults that have not fired yet."""
        return tuple(self._pending)

    def fire(self, event: Event) -> Fault | None:
        """Count one ``event``; return the fault scheduled for this occurrence, if any."""
        self.counts[event] += 1
        n = self.counts[event]
        for fault in self._pending:
            if fault.on is event and fault.nth == n:
                self._pending.remove(fault)
                return fault
        return None


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"
