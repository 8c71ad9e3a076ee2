"""`DfuDevice.open` (the keyword form, not a selector) is traced too: inside
`dfuse.tracing()` or with `trace=`, and the trace replays on the same part."""

from __future__ import annotations

from pathlib import Path

import dfuse
from dfuse.sim import SimBackend, board, replay
from dfuse.trace.format import read_trace
from dfuse.trace.recorder import TraceRecorder

FLASH = 0x08000000


def _flash_and_read(backend: SimBackend, trace: TraceRecorder | None = None) -> bytes:
    with dfuse.DfuDevice.open(vid=0x0483, pid=0xDF11, backend=backend, trace=trace) as dev:
        dev.download(bytes(range(256)) * 8, address=FLASH, verify=True)
        return dev.upload(FLASH, 2048)


def test_dfu_device_open_inside_tracing_is_recorded_and_replays(tmp_path: Path) -> None:
    path = tmp_path / "direct.jsonl"
    f411 = board("stm32f411")
    with dfuse.tracing(path):
        data = _flash_and_read(SimBackend([f411]))
    assert data == f411.peek(FLASH, 2048) == bytes(range(256)) * 8
    trace = read_trace(path)
    assert trace.header.device is not None
    assert len(trace.transfers) > 10
    report = replay(path)
    assert report.ok, report.summary()


def test_trace_keyword_records_without_a_block(tmp_path: Path) -> None:
    path = tmp_path / "kw.jsonl"
    recorder = TraceRecorder(path)
    try:
        _flash_and_read(SimBackend([board("stm32f411")]), trace=recorder)
    finally:
        recorder.close()
    assert len(read_trace(path).transfers) > 10


def test_no_recorder_no_trace(tmp_path: Path) -> None:
    _flash_and_read(SimBackend([board("stm32f411")]))
    assert list(tmp_path.iterdir()) == []
