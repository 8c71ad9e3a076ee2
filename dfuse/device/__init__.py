"""DfuDevice: the DFU 1.1 + DfuSe driver, over a :class:`~dfuse.transport.base.Transport`.

>>> import dfuse
>>> # with DfuDevice.open(vid=0x0483, pid=0xDF11) as dev:
>>> #     dev.download(dfuse.file.load("firmware.hex"))      # erase, write, verify
>>> #     dev.leave()

The device layer is the only place that performs I/O, and it decides nothing itself:
plans come from :mod:`dfuse.planning` (checked before any USB traffic), the
conversation's rules (polling, recovery, manifestation, error classification) from
:class:`dfuse.protocol.session.Session`; :class:`DfuDevice` performs the requests
and the waits they ask for, on an injected :class:`~dfuse.clock.Clock`.
"""

from dfuse.device.core import DEFAULT_BUSY_TIMEOUT_S, DfuDevice
from dfuse.device.core import DEFAULT_ENTRY as DEFAULT_ENTRY
from dfuse.planning import (
    ANY_ID,
    DEFAULT_RESET_WAIT_S,
    DownloadOptions,
    Image,
    TargetPlan,
    check_file_ids,
)
from dfuse.progress import Phase, ProgressCallback

__all__ = [
    "ANY_ID",
    "DEFAULT_BUSY_TIMEOUT_S",
    "DEFAULT_RESET_WAIT_S",
    "DfuDevice",
    "DownloadOptions",
    "Image",
    "Phase",
    "ProgressCallback",
    "TargetPlan",
    "check_file_ids",
]
