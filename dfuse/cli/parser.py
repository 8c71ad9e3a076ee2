"""The argparse structure of the ``dfuse`` command.

Each subcommand records its handler as a ``"module:function"`` string
(``args.handler``), imported only when that command runs: ``dfuse --help`` stays
fast, and the parser (from which ``docs/cli.md`` is generated) needs none of
the library's layers.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from typing import Any, NoReturn

from dfuse.cli.exitcodes import ExitCode

__all__ = ["DEFAULT_DEVICE_ENV", "build_parser", "dfu_util_hint", "exit_code_epilog"]

#: Environment variable giving the default ``--device`` selector.
DEFAULT_DEVICE_ENV = "DFUSE_DEVICE"

_PROG = "dfuse"
_DESCRIPTION = (
    "Build, inspect and flash STM32 firmware over USB DFU (DfuSe). "
    "Try it without a board: `dfuse demo`, or add `-d sim:stm32f411` to any device command."
)


def exit_code_epilog() -> str:
    """The exit-code table, as the help's epilog shows it."""
    rows = [f"  {int(code):>3}  {code.description}" for code in ExitCode]
    return "exit codes:\n" + "\n".join(rows)


class _Formatter(argparse.HelpFormatter):
    """Wraps prose, keeps multi-line text (the exit-code table) as written."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=30, width=_help_width())

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if "\n" in text:
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)


def _help_width() -> int:
    try:
        return max(80, min(int(os.environ.get("COLUMNS", "100")), 120))
    except ValueError:
        return 100


def _common(parser: argparse.ArgumentParser, *, top: bool) -> None:
    """Options every command takes (on the main parser and again on each subcommand)."""
    group = parser.add_argument_group("output")
    group.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=argparse.SUPPRESS if not top else 0,
        help="log every DFU request to stderr (the 'dfuse' logger at DEBUG)",
    )
    group.add_argument(
        "--json",
        action="store_true",
        default=argparse.SUPPRESS if not top else False,
        help="print one JSON document on stdout instead of text (no progress bars)",
    )
    group.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        default=argparse.SUPPRESS if not top else False,
        help="no progress output",
    )
    group.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS if not top else False,
        help="show the Python traceback when a command fails",
    )


def _device_options(parser: argparse.ArgumentParser, *, wait: bool = True) -> None:
    group = parser.add_argument_group("device selection")
    group.add_argument(
        "-d",
        "--device",
        metavar="SELECTOR",
        help=(
            "which device: usb:VID:PID, usb:serial=S, usb:path=1-2.3, or sim:stm32f411"
            " (the simulated board, e.g. sim:stm32f411?flash=256k); default: $"
            + DEFAULT_DEVICE_ENV
            + " or any USB DFU device"
        ),
    )
    group.add_argument(
        "-a", "--alt", metavar="ALT", help="alternate setting, by number or name (default 0)"
    )
    group.add_argument("-S", "--serial", metavar="SERIAL", help="match this serial number")
    group.add_argument("-p", "--path", metavar="PATH", help="match this bus path (e.g. 1-2.3)")
    group.add_argument(
        "--trace",
        metavar="FILE",
        help="record every USB request of the session to FILE (JSON lines, docs/traces.md):"
        " attach it to a bug report; replay it with `dfuse sim replay FILE`",
    )
    group.add_argument(
        "--trace-redact", action="store_true", help="leave serial numbers out of the trace"
    )
    if wait:
        group.add_argument(
            "--wait",
            metavar="SECONDS",
            nargs="?",
            const="inf",
            help="wait for a matching device to appear (at most SECONDS; alone: forever)",
        )


def _guard_options(parser: argparse.ArgumentParser) -> None:
    """The flags that let a .dfu write guarded memories (the library's ``allow_*``)."""
    group = parser.add_argument_group("guarded memories")
    group.add_argument(
        "--allow-option-bytes",
        action="store_true",
        help="let the file write the option bytes (protection; the device resets)",
    )
    group.add_argument(
        "--allow-otp",
        action="store_true",
        help="let the file write one-time-programmable memory (it can never be erased)",
    )
    group.add_argument(
        "--allow-otp-lock", action="store_true", help="let the file lock OTP blocks for good"
    )
    group.add_argument(
        "--permanently-lock",
        action="store_true",
        help="let the option bytes set RDP level 2 (the chip can never be reflashed again)",
    )


def _sub(
    subparsers: Any,
    name: str,
    handler: str,
    help_text: str,
    *,
    description: str | None = None,
    device: bool = False,
) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        name,
        help=help_text,
        description=description or help_text[0].upper() + help_text[1:] + ".",
        formatter_class=_Formatter,
    )
    parser.set_defaults(handler=handler)
    if device:
        _device_options(parser)
    _common(parser, top=False)
    return parser


_DFU_UTIL_FILES = {"-D": "flash", "--download": "flash", "-U": "read", "--upload": "read"}
_DFU_UTIL_ADDRESS = ("-s", "--dfuse-address")


def _dfu_util_option(token: str) -> tuple[str, str | None] | None:
    """(option, attached value) when ``token`` is one of dfu-util's -s/-D/-U options."""
    for name in (*_DFU_UTIL_FILES, *_DFU_UTIL_ADDRESS):
        if token == name:
            return name, None
        if name.startswith("--") and token.startswith(name + "="):
            return name, token[len(name) + 1 :]
        if not name.startswith("--") and token.startswith(name) and len(token) > 2:
            return name, token[2:]
    return None


def dfu_util_hint(argv: Sequence[str]) -> str | None:
    """A one-line hint when a ``dfuse`` command line uses dfu-util's ``-s ADDR[:MODS]``,
    ``-D FILE`` or ``-U FILE`` (options dfuse does not have), else ``None``: the dfuse
    spelling, and ``dfuse-util`` for the dfu-util command line.

    >>> print(dfu_util_hint(["flash", "app.bin", "-s", "0x08000000:leave"]))
    -s is dfu-util's option: dfuse says `dfuse flash app.bin --address 0x08000000 --leave`; \
for the dfu-util command line unchanged: `dfuse-util -s 0x08000000:leave -D app.bin -a 0`
    """
    tokens = list(argv[: argv.index("--")] if "--" in argv else argv)
    words = [t for t in tokens if not t.startswith("-")]
    if words[:1] == ["sim"]:
        return None  # `dfuse sim run ... dfu-util -s ...`
    verb = words[0] if words[:1] in (["flash"], ["read"]) else None
    target: list[str] = []
    rest: list[str] = []  # dfuse's spelling, without the verb and the file
    dfu: list[str] = []  # dfu-util's spelling, without the verb
    used: list[str] = []
    positional: list[str] = []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        i += 1
        found = _dfu_util_option(token)
        if found is None:
            if verb is not None and token == verb and not (rest or dfu or target):
                continue
            if token in _VALUE_OPTIONS and i < len(tokens):
                rest += [token, tokens[i]]
                dfu += [token, tokens[i]]
                i += 1
                continue
            if not token.startswith("-"):
                positional.append(token)
            rest.append(token)
            dfu.append(token)
            continue
        name, value = found
        if value is None and i < len(tokens):
            value = tokens[i]
            i += 1
        used.append(name)
        dfu += [name, value or ""]
        if name in _DFU_UTIL_FILES:
            verb = verb or _DFU_UTIL_FILES[name]
            target = [value or "FILE"]
        else:
            rest.extend(_dfuse_address_words(value or ""))
    if not used:
        return None
    verb = verb or "flash"
    if positional and target:  # the file twice (`flash app.bin -D app.bin`): once is enough
        rest.remove(positional[0])
        dfu.remove(positional[0])
    elif positional:  # `dfuse flash app.bin -s ...`: dfuse's positional FILE
        dfu.remove(positional[0])
        dfu += ["-D" if verb == "flash" else "-U", positional[0]]
    if not any(t in ("-a", "--alt") or t.startswith(("-a", "--alt=")) for t in dfu):
        dfu += ["-a", "0"]  # dfu-util needs the alternate setting on an STM32
    if "unprotect" in rest:
        suggestion = "dfuse unprotect --yes"
    elif "mass-erase" in rest:
        suggestion = "dfuse erase --all"
    else:
        suggestion = " ".join(["dfuse", verb, *target, *rest])
    names = "/".join(dict.fromkeys(used))
    which = f"{names} are dfu-util's options" if "/" in names else f"{names} is dfu-util's option"
    return (
        f"{which}: dfuse says `{suggestion}`; for the dfu-util command line unchanged:"
        f" `dfuse-util {' '.join(dfu)}`"
    )


#: dfuse options that take a value (their value is not the positional FILE).
_VALUE_OPTIONS = frozenset(
    (
        "-d",
        "--device",
        "-a",
        "--alt",
        "-S",
        "--serial",
        "-p",
        "--path",
        "--address",
        "--length",
        "--backup",
        "-o",
        "--output",
    )
)


def _dfuse_address_words(text: str) -> list[str]:
    """``0x08000000:leave:1024`` as dfuse options (``--address``, ``--leave``, ``--length``)."""
    address, *modifiers = text.split(":")
    words = ["--address", address] if address else []
    for word in modifiers:
        if word == "leave":
            words.append("--leave")
        elif word in ("mass-erase", "unprotect"):
            words.append(word)
        elif word and word[0].isdigit():
            words += ["--length", word]
    return words


class _Parser(argparse.ArgumentParser):
    """Answers dfu-util habits (:func:`dfu_util_hint`) with a hint, not a usage error."""

    def parse_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> argparse.Namespace:
        import sys

        hint = dfu_util_hint(list(sys.argv[1:] if args is None else args))
        if hint is not None:
            self._hint_exit(hint)
        return super().parse_args(args, namespace)

    def _hint_exit(self, hint: str) -> NoReturn:
        self.exit(int(ExitCode.USAGE), f"{self.prog}: {hint}\n")


def build_parser() -> argparse.ArgumentParser:
    """The whole ``dfuse`` command line."""
    from dfuse import __version__

    parser = _Parser(
        prog=_PROG,
        description=_DESCRIPTION,
        epilog=exit_code_epilog(),
        formatter_class=_Formatter,
    )
    parser.add_argument("--version", action="version", version=f"dfuse {__version__}")
    _common(parser, top=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    files = "dfuse.cli.cmd_files"
    dev = "dfuse.cli.cmd_device"
    from dfuse.cli.cmd_station import add_log_option as add_station_log_option

    # ------------------------------------------------------------------ devices
    _sub(
        sub,
        "list",
        f"{dev}:cmd_list",
        "list DFU devices with their alternate settings and memory layouts",
        device=True,
    )

    # ------------------------------------------------------------------ files
    p = _sub(sub, "info", f"{files}:cmd_info", "show what a .dfu/.hex/.s19/.bin file contains")
    p.add_argument("file", metavar="FILE", help="the firmware file")
    p.add_argument(
        "--address", metavar="ADDR", help="load address of a raw .bin (default 0x08000000)"
    )
    p.add_argument(
        "--no-crc-check", action="store_true", help="read a .dfu whose suffix CRC is wrong"
    )

    p = _sub(
        sub,
        "build",
        f"{files}:cmd_build",
        "build a .dfu from .hex/.s19/.bin files",
        description=(
            "Build a DfuSe .dfu file. Every INPUT goes to alternate setting 0 (the internal"
            " flash) unless --alt gives its own (a .dfu input keeps its targets' settings);"
            " the inputs for one setting become one target, and overlapping inputs are"
            " refused. A raw .bin needs a load address: write it as FILE@ADDRESS or give"
            " --address."
        ),
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="a .hex, .s19 or .bin[@ADDRESS]")
    p.add_argument("-o", "--output", required=True, metavar="OUT.dfu", help="the .dfu to write")
    p.add_argument(
        "--address", metavar="ADDR", help="load address for .bin inputs without @ADDRESS"
    )
    p.add_argument("--vid", metavar="HEX", help="idVendor in the suffix (default 0483)")
    p.add_argument("--pid", metavar="HEX", help="idProduct in the suffix (default df11)")
    p.add_argument("--bcd", metavar="HEX", help="bcdDevice in the suffix (default ffff: any)")
    p.add_argument(
        "--alt",
        metavar="N",
        action="append",
        help="alternate setting of each input, in order (repeat; default 0)",
    )
    p.add_argument(
        "--name",
        metavar="NAME",
        action="append",
        help="name of each input's target, in order (repeat)",
    )

    p = _sub(
        sub,
        "extract",
        f"{files}:cmd_extract",
        "write each target of a .dfu as a .hex, .s19 or .bin",
    )
    p.add_argument("file", metavar="FILE.dfu", help="the .dfu to read")
    p.add_argument(
        "-o",
        "--output",
        metavar="OUT",
        help="the file to write (out.hex), or a prefix without extension (default: the"
        " input's name); with several targets '-altN' goes before the extension",
    )
    p.add_argument(
        "-f",
        "--format",
        choices=("hex", "s19", "bin"),
        help="output format (default: by the extension of -o, else hex; bin fills gaps with 0xFF)",
    )

    p = _sub(sub, "suffix", f"{files}:cmd_suffix", "add, check or strip a plain DFU suffix")
    suffix = p.add_subparsers(dest="suffix_command", metavar="ACTION", required=True)
    q = _sub(suffix, "add", f"{files}:cmd_suffix_add", "append a DFU 1.1 suffix to a raw file")
    q.add_argument("file", metavar="FILE")
    q.add_argument("-o", "--output", metavar="OUT", help="write here (default: FILE in place)")
    q.add_argument("--vid", metavar="HEX", help="idVendor (default ffff: any)")
    q.add_argument("--pid", metavar="HEX", help="idProduct (default ffff: any)")
    q.add_argument("--bcd", metavar="HEX", help="bcdDevice (default ffff: any)")
    q = _sub(suffix, "check", f"{files}:cmd_suffix_check", "check a file's DFU suffix and CRC")
    q.add_argument("file", metavar="FILE")
    q = _sub(suffix, "strip", f"{files}:cmd_suffix_strip", "remove the DFU suffix from a file")
    q.add_argument("file", metavar="FILE")
    q.add_argument("-o", "--output", metavar="OUT", help="write here (default: FILE in place)")

    # ------------------------------------------------------------------ device operations
    p = _sub(
        sub,
        "flash",
        f"{dev}:cmd_flash",
        "download firmware to the device: erase, write, verify",
        description=(
            "Download a .dfu, .hex, .s19 or .bin (with --address) to the device. Only the"
            " sectors the image touches are erased; the result is read back and compared"
            " unless --no-verify."
        ),
        device=True,
    )
    p.add_argument("file", metavar="FILE", help="the firmware file")
    p.add_argument("--address", metavar="ADDR", help="load address of a raw .bin")
    p.add_argument("--no-verify", action="store_true", help="do not read back and compare")
    p.add_argument(
        "--dry-run", action="store_true", help="print the plan (erases, writes) and stop"
    )
    p.add_argument("--leave", action="store_true", help="start the application afterwards")
    p.add_argument("--backup", metavar="PATH", help="first read what will be overwritten into PATH")
    p.add_argument(
        "--incremental",
        action="store_true",
        help="erase and write only the sectors whose content differs",
    )
    p.add_argument(
        "--force", action="store_true", help="flash even if the file's VID/PID do not match"
    )
    _guard_options(p)
    p.add_argument(
        "--all",
        action="store_true",
        help="flash every matching DFU-mode board at once, one line each; exit code 100 + the"
        " number of boards that failed",
    )
    add_station_log_option(p)

    p = _sub(
        sub,
        "read",
        f"{dev}:cmd_read",
        "upload device memory to a file (.bin, .hex, .s19 or .dfu by extension)",
        description=(
            "Upload memory to OUTPUT. Without --address, the whole memory of the alternate"
            " setting (-a) is read."
        ),
        device=True,
    )
    p.add_argument("output", metavar="OUTPUT", help="file to write; '-' writes raw bytes to stdout")
    p.add_argument("--address", metavar="ADDR", help="start address")
    p.add_argument("--length", metavar="SIZE", help="number of bytes (e.g. 16K, 0x4000)")

    p = _sub(
        sub,
        "verify",
        f"{dev}:cmd_verify",
        "compare device memory with a firmware file",
        device=True,
    )
    p.add_argument("file", metavar="FILE", help="the firmware file")
    p.add_argument("--address", metavar="ADDR", help="load address of a raw .bin")

    p = _sub(sub, "erase", f"{dev}:cmd_erase", "erase sectors, or the whole flash", device=True)
    p.add_argument(
        "sectors",
        nargs="*",
        metavar="SECTOR",
        help="sector number, range (0-3) or address (0x08004000)",
    )
    p.add_argument("--all", action="store_true", help="mass erase (needs --yes)")
    p.add_argument("--yes", action="store_true", help="confirm a mass erase")

    p = _sub(
        sub,
        "unprotect",
        f"{dev}:cmd_unprotect",
        "remove read protection (erases the whole flash)",
        device=True,
    )
    p.add_argument("--yes", action="store_true", help="confirm: the flash will be erased")

    p = _sub(
        sub, "leave", f"{dev}:cmd_leave", "leave DFU mode and start the application", device=True
    )
    p.add_argument("--address", metavar="ADDR", help="jump here (default: the application's)")

    _sub(sub, "detach", f"{dev}:cmd_detach", "switch a run-time device into DFU mode", device=True)

    p = _sub(
        sub,
        "option-bytes",
        f"{dev}:cmd_option_bytes",
        "show or change the option bytes (read protection, write protection, BOR)",
        description=(
            "Show the decoded option bytes. Changing them needs --yes; the device resets"
            " afterwards and they are read again to confirm. RDP level 2 is permanent and needs"
            " --permanently-lock too."
        ),
        device=True,
    )
    p.add_argument("--rdp", type=int, choices=(0, 1, 2), help="set the read protection level")
    p.add_argument("--protect", metavar="SECTORS", help="write-protect these sectors (0,1,4-7)")
    p.add_argument("--unprotect", metavar="SECTORS", help="remove write protection from these")
    p.add_argument(
        "--bor",
        choices=("off", "1", "2", "3"),
        help="brown-out reset level: off, or VBOR1..VBOR3 (RM0383)",
    )
    p.add_argument("--yes", action="store_true", help="confirm the change")
    p.add_argument(
        "--permanently-lock",
        action="store_true",
        help="confirm RDP level 2: the chip can never be read or reflashed over DFU again",
    )

    p = _sub(
        sub,
        "otp",
        f"{dev}:cmd_otp",
        "show the one-time-programmable area; program or lock a block",
        description=(
            "Show the 16 OTP blocks of 32 bytes and their locks. --write programs a block"
            " (bits only go from 1 to 0; data shorter than 32 bytes is padded with 0xFF);"
            " --lock locks a block for good and needs --yes."
        ),
        device=True,
    )
    p.add_argument("--write", metavar="BLOCK", help="program this block (0-15)")
    data = p.add_mutually_exclusive_group()
    data.add_argument("--data", metavar="HEX", help="the bytes to program, in hex")
    data.add_argument("--data-file", metavar="PATH", help="the bytes to program, from a file")
    p.add_argument("--lock", metavar="BLOCK", help="lock this block (0-15): permanent")
    p.add_argument("--yes", action="store_true", help="confirm locking")

    # ------------------------------------------------------------------ the rest
    p = _sub(
        sub,
        "demo",
        "dfuse.cli.cmd_demo:cmd_demo",
        "the whole flow on a simulated STM32F411, in a few seconds",
        description=(
            "Run the seed's flow on a simulated STM32F411 system bootloader: find it, build a"
            " .dfu from the bundled example firmware, download (erase + write), verify, read"
            " back, and start the application. Real-time progress; nothing to plug in."
        ),
    )
    p.add_argument(
        "--speed",
        type=float,
        default=1.0,
        metavar="X",
        help="run the simulated board X times faster than real time (default 1)",
    )
    p.add_argument("--keep", metavar="DIR", help="keep the built .dfu and read-back files in DIR")

    p = _sub(
        sub,
        "udev-rules",
        "dfuse.cli.cmd_misc:cmd_udev_rules",
        "print udev rules giving users access to DFU devices (Linux)",
        description=(
            "Print a udev rules file for the STM32 bootloader and any DFU device. Install:"
            " dfuse udev-rules | sudo tee /etc/udev/rules.d/70-dfuse.rules && sudo udevadm"
            " control --reload-rules && sudo udevadm trigger"
        ),
    )
    p.add_argument(
        "--group",
        metavar="GROUP",
        help="also give this group rw access (for systems without logind's uaccess)",
    )

    from dfuse.cli.cmd_station import add_commands as add_station_commands

    add_station_commands(sub, _sub, _device_options)

    p = _sub(sub, "sim", "dfuse.cli.cmd_misc:cmd_sim", "simulated boards for other programs")
    simsub = p.add_subparsers(dest="sim_command", metavar="ACTION", required=True)
    q = _sub(
        simsub,
        "run",
        "dfuse.cli.cmd_misc:cmd_sim_run",
        "run a program (dfu-util, your flasher) against simulated boards (Linux)",
        description=(
            "Run COMMAND with simulated boards on its (emulated) USB bus, through umockdev:"
            " any libusb program sees them as real devices. Linux only."
        ),
    )
    q.add_argument(
        "--device",
        dest="sim_devices",
        action="append",
        metavar="SELECTOR",
        help="a sim: selector per board (repeat; default sim:stm32f411)",
    )
    q.add_argument("argv", nargs=argparse.REMAINDER, metavar="-- COMMAND ...")
    q = _sub(
        simsub,
        "replay",
        "dfuse.cli.cmd_trace:cmd_sim_replay",
        "replay a trace (--trace) on a simulated board and report where it disagrees",
        description=(
            "Send the requests of a trace recorded with --trace, in order, to a fresh"
            " simulated board of the part it was recorded on, and compare every reply (state,"
            " status and data exactly, bwPollTimeout within a tolerance, stalls, timeouts and"
            " disconnects by kind). Exit 0 only when the simulator agrees everywhere."
        ),
    )
    q.add_argument("file", metavar="FILE", help="the trace (JSON lines)")
    q.add_argument(
        "--part", metavar="NAME", help="replay on this simulated part (default: the traced one)"
    )
    q.add_argument(
        "--poll-tolerance",
        metavar="MS",
        type=int,
        help="bwPollTimeout tolerance in ms (default: 10 ms or 50 %%, whichever is larger)",
    )
    q.add_argument(
        "--no-memory",
        action="store_true",
        help="do not compare memory read back (a real board's memory did not start erased)",
    )
    q.add_argument(
        "--limit", metavar="N", type=int, default=20, help="stop after N divergences (default 20)"
    )
    _sub(
        simsub,
        "parts",
        "dfuse.cli.cmd_misc:cmd_sim_parts",
        "list the parts a sim: selector can name (the part database)",
        description=(
            "List every part of the part database: sim:NAME builds its ROM bootloader. The"
            " alt-string column says whether every string was seen on a real device; --json"
            " prints each row with its evidence (docs: Supported parts)."
        ),
    )
    return parser
