"""DfuDevice: the DFU 1.1 + DfuSe host, over a :class:`~dfuse.transport.base.Transport`.

>>> import dfuse
>>> # with DfuDevice.open(vid=0x0483, pid=0xDF11) as dev:
>>> #     dev.download(dfuse.file.load("firmware.hex"))      # erase, write, verify
>>> #     dev.leave()

The device layer is the only place that performs I/O. It turns an image into a
:class:`~dfuse.protocol.plan.Plan` (pure, checked before any USB traffic) and
executes it step by step: DfuSe commands and data blocks go out as DNLOAD, each
followed by GETSTATUS polls that honour the device's bwPollTimeout through an
injected :class:`~dfuse.clock.Clock` and keep polling while the device reports
itself busy, up to a bounded total wait.

Opening brings the device to dfuIDLE from whatever state it is in (CLRSTATUS
from dfuERROR, ABORT from an interrupted transfer) and records what it found in
:attr:`DfuDevice.initial_status`.

The package, one concern per module:

* :mod:`dfuse.device.core`: :class:`DfuDevice` (opening, requests, polling, erase,
  upload and verify, download execution, leave and detach);
* :mod:`dfuse.device.planning`: the download preparation with no USB traffic (image to
  per-target jobs, :func:`check_file_ids`, the option-byte/OTP/RDP 2 guards,
  :class:`TargetPlan`);
* :mod:`dfuse.device.protection`: option bytes, read protection and OTP;
* :mod:`dfuse.device.progress`: :class:`Phase` and the progress callback.
"""

from dfuse.device.core import DEFAULT_BUSY_TIMEOUT_S, DfuDevice
from dfuse.device.core import DEFAULT_ENTRY as DEFAULT_ENTRY
from dfuse.device.planning import ANY_ID, Image, TargetPlan, check_file_ids
from dfuse.device.progress import Phase, ProgressCallback
from dfuse.device.protection import DEFAULT_RESET_WAIT_S

__all__ = [
    "ANY_ID",
    "DEFAULT_BUSY_TIMEOUT_S",
    "DEFAULT_RESET_WAIT_S",
    "DfuDevice",
    "Image",
    "Phase",
    "ProgressCallback",
    "TargetPlan",
    "check_file_ids",
]
