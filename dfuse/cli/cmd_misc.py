"""Commands that touch neither files nor devices: ``udev-rules``, ``sim run`` and ``sim parts``."""

from __future__ import annotations

import argparse

from dfuse.cli.exitcodes import ExitCode, UsageError
from dfuse.cli.output import Ui

__all__ = [
    "UDEV_RULES_PATH",
    "cmd_sim",
    "cmd_sim_parts",
    "cmd_sim_run",
    "cmd_udev_rules",
    "udev_rules",
]

#: Where the docs tell users to install the rules.
UDEV_RULES_PATH = "/etc/udev/rules.d/70-dfuse.rules"

#: USB IDs of well-known DFU-mode bootloaders: (vid, pid, what).
KNOWN_DFU_IDS: tuple[tuple[int, int, str], ...] = (
    (0x0483, 0xDF11, "STMicroelectronics STM32 system bootloader (DfuSe)"),
    (0x28E9, 0x0189, "GigaDevice GD32 bootloader"),
    (0x1D50, 0x6017, "Black Magic Probe DFU"),
)


def udev_rules(group: str | None = None) -> str:
    """The rules file: the known bootloaders by VID:PID, and any device with a DFU interface.

    ``TAG+="uaccess"`` gives the logged-in user access (systemd-logind); ``group``
    adds ``MODE="0660", GROUP=…`` for systems without it. The file must sort
    before ``73-seat-late.rules`` (uaccess) and after ``50-udev-default.rules``
    (which sets ``ID_USB_INTERFACES``), hence the name ``70-dfuse.rules``.
    """
    extra = f', MODE="0660", GROUP="{group}"' if group else ""
    lines = [
        "# dfuse: access to USB DFU devices for non-root users.",
        f"# Install:  dfuse udev-rules | sudo tee {UDEV_RULES_PATH}",
        "#           sudo udevadm control --reload-rules && sudo udevadm trigger",
        "# then unplug and replug the board (or reset it with BOOT0 high).",
        "",
    ]
    for vid, pid, what in KNOWN_DFU_IDS:
        lines.append(f"# {what}")
        lines.append(
            f'SUBSYSTEM=="usb", ATTRS{{idVendor}}=="{vid:04x}", ATTRS{{idProduct}}=="{pid:04x}",'
            f' TAG+="uaccess"{extra}'
        )
    lines += [
        "# Any device with a DFU interface (class fe, subclass 01), in run-time or DFU mode",
        'SUBSYSTEM=="usb", ENV{DEVTYPE}=="usb_device", ENV{ID_USB_INTERFACES}=="*:fe01??:*",'
        f' TAG+="uaccess"{extra}',
        "",
    ]
    return "\n".join(lines)


def cmd_udev_rules(args: argparse.Namespace, ui: Ui) -> int:
    """``dfuse udev-rules``: print the rules file."""
    group: str | None = args.group
    if group is not None and (not group or any(c in group for c in '"\n ,')):
        raise UsageError(f"invalid group name {group!r}")
    text = udev_rules(group)
    if ui.json_mode:
        ui.emit({"ok": True, "path": UDEV_RULES_PATH, "rules": text})
    else:
        ui.out.file.write(text)
    return ExitCode.OK


def cmd_sim(args: argparse.Namespace, ui: Ui) -> int:  # pragma: no cover - argparse requires ACTION
    """``dfuse sim``: a group of subcommands."""
    raise UsageError("expected an action: dfuse sim run -- COMMAND, or dfuse sim parts")


def cmd_sim_parts(args: argparse.Namespace, ui: Ui) -> int:
    """``dfuse sim parts [--json]``: the part database, one line per part."""
    from dfuse.parts import all_parts
    from dfuse.parts.docgen import part_record, table

    if ui.json_mode:
        ui.emit({"ok": True, "parts": [part_record(p) for p in all_parts()]})
    else:
        ui.text(table())
    return ExitCode.OK


def cmd_sim_run(args: argparse.Namespace, ui: Ui) -> int:
    """``dfuse sim run [--device SEL] -- COMMAND...``: run a program against simulated boards."""
    argv: list[str] = list(args.argv)
    if argv and argv[0] == "--":
        argv = argv[1:]
    if not argv:
        raise UsageError("expected a command to run: dfuse sim run -- dfu-util -l")
    from dfuse.selector import DeviceSelector, sim_boards
    from dfuse.sim.usbdevfs import run, unavailable_reason
    from dfuse.sim.usbmodel import UsbDeviceModel

    reason = unavailable_reason()
    if reason is not None:
        raise UsageError(f"dfuse sim run cannot run here: {reason}")
    boards: list[UsbDeviceModel] = []
    for text in args.sim_devices or ["sim:stm32f411"]:
        selector = DeviceSelector.parse(text if ":" in text else f"sim:{text}")
        if selector.scheme != "sim":
            raise UsageError(f"dfuse sim run hosts simulated boards: expected sim:…, got {text!r}")
        boards.extend(sim_boards(selector, first_port=len(boards) + 1))
    ui.note(f"dfuse: running {' '.join(argv)} with {len(boards)} simulated board(s)")
    status = run(argv, boards)
    return status if status >= 0 else 128 - status
