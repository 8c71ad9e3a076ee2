"""Which DFU interfaces a dfu-util command line matches, and ``-l``'s lines.

dfu-util 0.11 (``src/dfu_util.c``) builds one entry per matching alternate setting of
every DFU interface on the bus, newest first, and refuses to go on with more than one
(unless a DfuSe file is downloaded to several alternate settings of one interface).
:func:`match_entries` does the same over :class:`~dfuse.transport.DeviceInfo` records
from :func:`dfuse.find_devices`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from dfuse.compat.options import ANY, IdMatch, Options
from dfuse.transport import DeviceInfo, DeviceMode

__all__ = ["Entry", "format_entry", "match_entries", "single_interface"]


@dataclass(frozen=True)
class Entry:
    """One alternate setting of a DFU interface, as dfu-util's ``struct dfu_if``.

    Attributes:
        info: the device.
        alt: bAlternateSetting.
        name: the alternate setting's string as dfu-util reads it (``"UNKNOWN"`` if none).
        serial: the serial number as dfu-util reads it (``"UNKNOWN"`` if none).
        dfu_mode: DFU mode (else run-time mode).
    """

    info: DeviceInfo
    alt: int
    name: str
    serial: str
    dfu_mode: bool


def _ascii(text: str | None) -> str:
    """A string descriptor as dfu-util 0.11 prints it: UTF-16 units above 0xFF become '?'."""
    if not text:
        return "UNKNOWN"
    return "".join(c if ord(c) <= 0xFF else "?" for c in text)


def _ids_match(vendor: int, product: int, info: DeviceInfo) -> bool:
    return (vendor < 0 or vendor == info.vid) and (product < 0 or product == info.pid)


def _device_entries(info: DeviceInfo, opts: Options, ids: IdMatch) -> list[Entry]:
    config = opts.config if opts.config != 0 else ANY  # dfu-util: -c 0 is "don't care"
    if config >= 0 and config != info.configuration:
        return []
    if opts.interface >= 0 and opts.interface != info.interface:
        return []
    if opts.devnum >= 0 and opts.devnum != info.address:
        return []
    dfu_mode = info.mode is DeviceMode.DFU
    serial = _ascii(info.serial)
    if dfu_mode:
        if not _ids_match(ids.vendor_dfu, ids.product_dfu, info):
            return []
        if opts.serial_dfu is not None and opts.serial_dfu != serial:
            return []
    else:
        if not _ids_match(ids.vendor, ids.product, info):
            return []
        if opts.serial is not None and opts.serial != serial:
            return []
    entries = []
    for setting in info.alt_settings:
        name = _ascii(setting.name)
        if dfu_mode and opts.alt_index >= 0 and opts.alt_index != setting.number:
            continue
        if dfu_mode and opts.alt_name is not None and opts.alt_name != name:
            continue
        entries.append(Entry(info, setting.number, name, serial, dfu_mode))
    return entries


def match_entries(
    devices: Iterable[DeviceInfo], opts: Options, ids: IdMatch | None = None
) -> list[Entry]:
    """Every alternate setting the options match, in dfu-util's order (its list is built
    by prepending: the last device's last alternate setting comes first).

    ``ids`` overrides ``opts.ids`` (dfu-util matches only DFU-mode IDs after a detach).
    """
    chosen = opts.ids if ids is None else ids
    found: list[Entry] = []
    for info in devices:
        if opts.path is not None and opts.path != info.path:
            continue
        found.extend(_device_entries(info, opts, chosen))
    found.reverse()
    return found


def single_interface(entries: Sequence[Entry]) -> bool:
    """Whether all entries are alternate settings of one interface of one device
    (dfu-util's ``dfuse_multiple_alt``: then a DfuSe file may address several)."""
    first = entries[0].info
    return all(
        e.info.path == first.path
        and e.info.address == first.address
        and e.info.interface == first.interface
        for e in entries
    )


def format_entry(entry: Entry) -> str:
    """One ``dfu-util -l`` line.

    >>> # Found DFU: [0483:df11] ver=2200, devnum=1, cfg=1, intf=0, path="1-1", alt=0, ...
    """
    info = entry.info
    kind = "DFU" if entry.dfu_mode else "Runtime"
    return (
        f"Found {kind}: [{info.vid:04x}:{info.pid:04x}] ver={info.bcd_device:04x}, "
        f"devnum={info.address}, cfg={info.configuration}, intf={info.interface}, "
        f'path="{info.path}", alt={entry.alt}, name="{entry.name}", serial="{entry.serial}"'
    )
