"""Traces: every control transfer of a session as a JSON line, to replay on the simulator.

* :mod:`dfuse.trace.format` — the format (reading, checking, writing); the bottom layer,
  shared by the recorder and the replayer (:func:`dfuse.sim.replay`).
* :mod:`dfuse.trace.recorder` — :func:`tracing`, :class:`TraceRecorder` and
  :class:`TracingTransport`, which wraps any transport (imported on first use, so that
  the simulator can read traces without importing the transport layer).

See docs/traces.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dfuse.trace.format import (
    FORMAT,
    VERSION,
    Expectation,
    Trace,
    TraceEnd,
    TraceEvent,
    TraceHeader,
    TraceTransfer,
    TransferError,
    read_trace,
    schema_path,
)

if TYPE_CHECKING:
    from dfuse.trace.recorder import TraceRecorder, TracingTransport, tracing

__all__ = [
    "FORMAT",
    "VERSION",
    "Expectation",
    "Trace",
    "TraceEnd",
    "TraceEvent",
    "TraceHeader",
    "TraceRecorder",
    "TraceTransfer",
    "TracingTransport",
    "TransferError",
    "read_trace",
    "schema_path",
    "tracing",
]

_LAZY = ("TraceRecorder", "TracingTransport", "tracing")


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from dfuse.trace import recorder

        return getattr(recorder, name)
    raise AttributeError(f"module 'dfuse.trace' has no attribute {name!r}")
