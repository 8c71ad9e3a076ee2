"""Planning, without USB traffic: downloads (:mod:`dfuse.planning.download`) and the
protected memories, option bytes, read protection and OTP
(:mod:`dfuse.planning.protection`). The driver, :class:`dfuse.device.DfuDevice`, reads
what a plan needs first, runs the plans, and does nothing else."""

from dfuse.planning.download import (
    ANY_ID,
    DownloadOptions,
    Image,
    TargetPlan,
    check_file_ids,
)
from dfuse.planning.protection import DEFAULT_RESET_WAIT_S

__all__ = [
    "ANY_ID",
    "DEFAULT_RESET_WAIT_S",
    "DownloadOptions",
    "Image",
    "TargetPlan",
    "check_file_ids",
]
