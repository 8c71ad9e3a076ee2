"""dfu-util 0.11's command line, parsed as dfu-util parses it (no I/O here).

The option table, GNU ``getopt_long``'s rules (bundled short options, ``-a0``,
``--alt=0``, unambiguous long-option prefixes, operands anywhere, ``--``) and the
number parsers (C ``strtoul``/``strtol`` with base 0: ``0x`` hex, a leading ``0``
octal) follow dfu-util 0.11's ``src/main.c`` and ``src/dfuse.c``. Bad input raises
:class:`CompatError` with dfu-util's exit code (64, ``EX_USAGE``) and a one-line message.

>>> opts = parse_args(["-a", "0", "-s", "0x08000000:leave", "-D", "app.bin"])
>>> opts.mode.value, opts.alt_index, opts.file
('download', 0, 'app.bin')
>>> parse_dfuse_options("0x08000000:leave").leave
True
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from dfuse.errors import DfuseError

__all__ = [
    "ANY",
    "EX_CANTCREAT",
    "EX_DATAERR",
    "EX_IOERR",
    "EX_NOINPUT",
    "EX_OK",
    "EX_PROTOCOL",
    "EX_SOFTWARE",
    "EX_USAGE",
    "IMPOSSIBLE",
    "LONG_OPTIONS",
    "CompatError",
    "DfuseOptions",
    "IdMatch",
    "Mode",
    "Options",
    "c_strtol",
    "c_strtoul",
    "parse_args",
    "parse_dfuse_options",
    "parse_serial",
    "parse_vendprod",
]

# sysexits.h, as dfu-util uses them
EX_OK = 0
EX_USAGE = 64
EX_DATAERR = 65
EX_NOINPUT = 66
EX_SOFTWARE = 70
EX_CANTCREAT = 73
EX_IOERR = 74
EX_PROTOCOL = 76

#: A match value meaning "any" (dfu-util's -1).
ANY = -1
#: A vendor/product ID no device has (dfu-util's 0x10000, from ``-d -`` or ``-d ,VID:PID``).
IMPOSSIBLE = 0x10000

_ULONG_MAX = (1 << 64) - 1
_LONG_MAX = (1 << 63) - 1
_LONG_MIN = -(1 << 63)
_UINT_MASK = 0xFFFF_FFFF


class CompatError(DfuseError):
    """A dfu-util error: ``message`` for stderr and ``code``, the process exit status.

    Attributes:
        code: the sysexits code dfu-util 0.11 exits with in the same situation.
    """

    def __init__(self, message: str, code: int = EX_USAGE) -> None:
        # one line: a library message's lines are joined, control characters (in what the
        # user typed) are shown escaped
        joined = "; ".join(line.strip() for line in message.strip().splitlines() if line.strip())
        shown = "".join(c if c.isprintable() else repr(c)[1:-1] for c in joined)
        super().__init__(shown)
        self.code = code


class Mode(enum.Enum):
    """What the command does (the last of ``-l -e -V -U -D`` wins, as in dfu-util)."""

    NONE = "none"
    VERSION = "version"
    LIST = "list"
    DETACH = "detach"
    UPLOAD = "upload"
    DOWNLOAD = "download"


@dataclass(frozen=True)
class IdMatch:
    """``-d``: the IDs to match in run-time mode and in DFU mode.

    Each is a 16-bit ID, :data:`ANY` (-1) or :data:`IMPOSSIBLE` (0x10000).
    """

    vendor: int = ANY
    product: int = ANY
    vendor_dfu: int = ANY
    product_dfu: int = ANY


@dataclass(frozen=True)
class Options:
    """The parsed command line; fields default to dfu-util's defaults."""

    mode: Mode = Mode.NONE
    help: bool = False
    file: str | None = None
    verbose: int = 0
    detach_delay: int = 5
    ids: IdMatch = field(default_factory=IdMatch)
    device_selector: str | None = None
    path: str | None = None
    config: int = ANY
    interface: int = ANY
    alt_index: int = ANY
    alt_name: str | None = None
    devnum: int = ANY
    serial: str | None = None
    serial_dfu: str | None = None
    transfer_size: int = 0
    upload_size: int = 0
    final_reset: bool = False
    wait: bool = False
    dfuse_options: str | None = None
    verify: bool = False


@dataclass(frozen=True)
class DfuseOptions:
    """``-s ADDRESS[:MODIFIERS]`` decoded."""

    address: int | None = None
    length: int = 0
    force: int = 0
    leave: bool = False
    unprotect: bool = False
    mass_erase: bool = False
    will_reset: bool = False


# --------------------------------------------------------------------------- C numbers


def c_strtoul(text: str, base: int = 0) -> tuple[int, int]:
    """C ``strtoul``: ``(value, characters consumed)``; 0 consumed when there are no digits.

    Leading white space and a sign are accepted (a minus negates modulo 2**64); an
    overflow gives ULONG_MAX, as glibc does.

    >>> c_strtoul("0x08000000:leave"), c_strtoul("010"), c_strtoul("12ab", 16), c_strtoul("x")
    ((134217728, 10), (8, 3), (4779, 4), (0, 0))
    """
    value, used, negative, overflow = _scan(text, base)
    if used == 0:
        return 0, 0
    if overflow or value > _ULONG_MAX:
        return _ULONG_MAX, used
    return ((-value) & _ULONG_MAX if negative else value), used


def c_strtol(text: str, base: int = 0) -> tuple[int, int, bool]:
    """C ``strtol``: ``(value, characters consumed, out of range)``."""
    value, used, negative, _ = _scan(text, base)
    if used == 0:
        return 0, 0, False
    signed = -value if negative else value
    if signed > _LONG_MAX:
        return _LONG_MAX, used, True
    if signed < _LONG_MIN:
        return _LONG_MIN, used, True
    return signed, used, False


def _scan(text: str, base: int) -> tuple[int, int, bool, bool]:
    i = 0
    n = len(text)
    while i < n and text[i] in " \t\n\v\f\r":
        i += 1
    negative = False
    if i < n and text[i] in "+-":
        negative = text[i] == "-"
        i += 1
    if base in (0, 16) and text[i : i + 2].lower() == "0x" and _digit(text, i + 2, 16):
        i += 2
        base = 16
    elif base == 0:
        base = 8 if text[i : i + 1] == "0" else 10
    start = i
    value = 0
    while _digit(text, i, base):
        value = value * base + int(text[i], base)
        i += 1
    if i == start:
        return 0, 0, False, False
    return value, i, negative, value > _ULONG_MAX


def _digit(text: str, i: int, base: int) -> bool:
    if i >= len(text) or not text[i].isascii() or not text[i].isalnum():
        return False
    try:
        return int(text[i], 36) < base
    except ValueError:
        return False


def _to_int(value: int) -> int:
    """An unsigned long stored into a C ``int`` (truncated to 32 bits, two's complement)."""
    value &= _UINT_MASK
    return value - (1 << 32) if value >= 1 << 31 else value


def _parse_number(option: str, text: str) -> int:
    """dfu-util's ``parse_number``: the whole argument must be a number (strtol, base 0)."""
    value, used, out_of_range = c_strtol(text)
    if out_of_range or used != len(text):
        raise CompatError(f"Something went wrong with the argument of --{option}")
    if used == 0:
        raise CompatError(f"No digits were found from the argument of --{option}")
    return _to_int(value)


def _atoi(text: str) -> int:
    value, _, _ = c_strtol(text, 10)
    return _to_int(value)


# --------------------------------------------------------------------------- -d and -S


def _match_value(text: str | None, default: int) -> int:
    if text is None:
        return default
    if text.startswith("*"):
        return ANY
    if text.startswith("-"):
        return IMPOSSIBLE
    value, used = c_strtoul(text, 16)
    return default if used == 0 else _to_int(value)


def parse_vendprod(text: str) -> IdMatch:
    """``-d VID:PID[,VID_DFU:PID_DFU]`` as dfu-util reads it (``*`` any, ``-`` none).

    Without a comma only run-time devices are filtered: dfu-util 0.11 matches any
    device in DFU mode then (its ``parse_vendprod``).

    >>> parse_vendprod("0483:5740,0483:df11")
    IdMatch(vendor=1155, product=22336, vendor_dfu=1155, product_dfu=57105)
    >>> parse_vendprod("0483:*")
    IdMatch(vendor=1155, product=-1, vendor_dfu=-1, product_dfu=-1)
    """
    vendor = product = vendor_dfu = product_dfu = ANY
    comma = text.find(",")
    if comma == 0:
        vendor = product = IMPOSSIBLE
    else:
        colon = text.find(":")
        colon_text = None
        if colon >= 0 and not (comma >= 0 and colon + 1 > comma):
            colon_text = text[colon + 1 :]
        vendor = _match_value(text, vendor)
        product = _match_value(colon_text, product)
        if comma >= 0:
            vendor_dfu, product_dfu = vendor, product
    if comma >= 0:
        rest = text[comma + 1 :]
        colon = rest.find(":")
        vendor_dfu = _match_value(rest, vendor_dfu)
        product_dfu = _match_value(rest[colon + 1 :] if colon >= 0 else None, product_dfu)
    return IdMatch(vendor, product, vendor_dfu, product_dfu)


def parse_serial(text: str) -> tuple[str | None, str | None]:
    """``-S SERIAL[,SERIAL_DFU]``: (run-time serial, DFU-mode serial); empty means any."""
    runtime, comma, dfu = text.partition(",")
    if not comma:
        dfu = runtime
    return runtime or None, dfu or None


# --------------------------------------------------------------------------- -s


def parse_dfuse_options(text: str) -> DfuseOptions:
    """``-s ADDRESS[:MODIFIERS]``, word by word as dfu-util's ``dfuse_parse_options``.

    The address (possibly empty) comes first; then ``force``, ``leave``,
    ``unprotect``, ``mass-erase``, ``will-reset`` (a prefix of a name counts, as in
    dfu-util) or a number, the upload length.

    Raises :class:`CompatError` (64): "Invalid dfuse address" / "Invalid dfuse modifier".
    """
    opts = DfuseOptions()
    i = 0
    n = len(text)
    if not text.startswith(":"):
        end = text.find(":")
        end = n if end < 0 else end
        number, used = c_strtoul(text[:end])
        if used != end:
            raise CompatError(f"Invalid dfuse address: {text}")
        opts = replace(opts, address=number & _UINT_MASK)
        i = end
    words = (
        ("force", 5),
        ("leave", 5),
        ("unprotect", 9),
        ("mass-erase", 10),
        ("will-reset", 10),
    )
    while i < n:
        if text[i] == ":":
            i += 1
            continue
        end = text.find(":", i)
        end = n if end < 0 else end
        word = text[i:end]
        for name, skip in words:
            if name.startswith(word):
                opts = _with_modifier(opts, name)
                i += skip  # dfu-util skips the full name's length, even after a prefix
                break
        else:
            number, used = c_strtoul(word)
            if used != len(word):
                raise CompatError(f"Invalid dfuse modifier: {text[i:]}")
            opts = replace(opts, length=number & _UINT_MASK)
            i = end
    return opts


def _with_modifier(opts: DfuseOptions, name: str) -> DfuseOptions:
    if name == "force":
        return replace(opts, force=opts.force + 1)
    if name == "leave":
        return replace(opts, leave=True)
    if name == "unprotect":
        return replace(opts, unprotect=True)
    if name == "mass-erase":
        return replace(opts, mass_erase=True)
    return replace(opts, will_reset=True)


# --------------------------------------------------------------------------- getopt_long

_SHORT = "hVvleE:d:p:c:i:a:S:t:U:D:Rs:Z:wn:"
_VERIFY = "verify"
#: Long options: name -> (takes an argument, the short option it stands for).
LONG_OPTIONS: dict[str, tuple[bool, str]] = {
    "help": (False, "h"),
    "version": (False, "V"),
    "verbose": (False, "v"),
    "list": (False, "l"),
    "detach": (False, "e"),
    "detach-delay": (True, "E"),
    "device": (True, "d"),
    "path": (True, "p"),
    "configuration": (True, "c"),
    "cfg": (True, "c"),
    "interface": (True, "i"),
    "intf": (True, "i"),
    "altsetting": (True, "a"),
    "alt": (True, "a"),
    "serial": (True, "S"),
    "transfer-size": (True, "t"),
    "upload": (True, "U"),
    "upload-size": (True, "Z"),
    "download": (True, "D"),
    "reset": (False, "R"),
    "dfuse-address": (True, "s"),
    "devnum": (True, "n"),
    "wait": (False, "w"),
    "verify": (False, _VERIFY),
}
_NEEDS_ARG = {c for i, c in enumerate(_SHORT) if c != ":" and _SHORT[i + 1 : i + 2] == ":"}


def _long_option(word: str) -> tuple[str, str, str | None]:
    """``--name[=value]`` -> (full name, short letter, inline value); prefixes allowed."""
    name, eq, value = word[2:].partition("=")
    if name in LONG_OPTIONS:
        full = name
    else:
        candidates = [n for n in LONG_OPTIONS if n.startswith(name)]
        letters = {LONG_OPTIONS[n] for n in candidates}
        if not candidates:
            raise CompatError(f"unrecognized option '--{name}'")
        if len(letters) > 1:
            shown = " ".join(f"'--{n}'" for n in candidates)
            raise CompatError(f"option '--{name}' is ambiguous; possibilities: {shown}")
        full = candidates[0]
    return full, LONG_OPTIONS[full][1], value if eq else None


def _events(argv: Sequence[str]) -> tuple[list[tuple[str, str | None, str]], list[str]]:
    """(option letter, argument, as written) in order, and the operands (GNU permutes)."""
    events: list[tuple[str, str | None, str]] = []
    operands: list[str] = []
    i = 0
    while i < len(argv):
        word = argv[i]
        i += 1
        if word == "--":
            operands.extend(argv[i:])
            break
        if word.startswith("--"):
            full, letter, value = _long_option(word)
            takes = LONG_OPTIONS[full][0]
            if not takes and value is not None:
                raise CompatError(f"option '--{full}' doesn't allow an argument")
            if takes and value is None:
                if i >= len(argv):
                    raise CompatError(f"option '--{full}' requires an argument")
                value = argv[i]
                i += 1
            events.append((letter, value, f"--{full}"))
            if letter == "h":
                return events, operands
            continue
        if not word.startswith("-") or word == "-":
            operands.append(word)
            continue
        j = 1
        while j < len(word):
            letter = word[j]
            j += 1
            if letter == ":" or letter not in _SHORT:
                raise CompatError(f"invalid option -- '{letter}'")
            if letter in _NEEDS_ARG:
                if j < len(word):
                    attached = word[j:]
                elif i < len(argv):
                    attached = argv[i]
                    i += 1
                else:
                    raise CompatError(f"option requires an argument -- '{letter}'")
                events.append((letter, attached, f"-{letter}"))
                break
            events.append((letter, None, f"-{letter}"))
            if letter == "h":
                return events, operands
    return events, operands


def parse_args(argv: Sequence[str]) -> Options:
    """Parse dfu-util's command line (without the program name).

    ``-h`` stops parsing at once (as dfu-util prints its help and exits there).
    ``-d`` also takes a dfuse device selector (``-d sim:stm32f411``, ``-d usb:...``).

    Raises :class:`CompatError` (exit code 64) with dfu-util's message for an
    unknown option, a missing argument, a bad number or a stray operand.
    """
    opts = Options()
    events, operands = _events(argv)
    for letter, value, _written in events:
        opts = _apply(opts, letter, value)
        if opts.help:
            return opts
    if operands:
        raise CompatError(f"Error: Unexpected argument: {operands[0]}")
    return opts


def _apply(opts: Options, letter: str, value: str | None) -> Options:
    arg = value or ""
    simple = {
        "h": {"help": True},
        "V": {"mode": Mode.VERSION},
        "v": {"verbose": opts.verbose + 1},
        "l": {"mode": Mode.LIST},
        "e": {"mode": Mode.DETACH},
        "R": {"final_reset": True},
        "w": {"wait": True},
        _VERIFY: {"verify": True},
    }
    if letter in simple:
        return replace(opts, **simple[letter])  # type: ignore[arg-type]
    if letter == "E":
        return replace(opts, detach_delay=_parse_number("detach-delay", arg))
    if letter == "d":
        if arg.lower().startswith(("usb:", "sim:")):
            return replace(opts, device_selector=arg, ids=IdMatch())
        return replace(opts, ids=parse_vendprod(arg), device_selector=None)
    if letter == "p":
        return replace(opts, path=arg)
    if letter == "c":
        return replace(opts, config=_parse_number("cfg", arg))
    if letter == "i":
        return replace(opts, interface=_parse_number("intf", arg))
    if letter == "a":
        number, used = c_strtoul(arg)
        if used != len(arg):
            return replace(opts, alt_name=arg, alt_index=ANY)
        return replace(opts, alt_index=_to_int(number), alt_name=None)
    if letter == "n":
        return replace(opts, devnum=_atoi(arg))
    if letter == "S":
        serial, serial_dfu = parse_serial(arg)
        return replace(opts, serial=serial, serial_dfu=serial_dfu)
    if letter == "t":
        return replace(opts, transfer_size=_parse_number("transfer-size", arg))
    if letter == "U":
        return replace(opts, mode=Mode.UPLOAD, file=arg)
    if letter == "Z":
        return replace(opts, upload_size=_parse_number("upload-size", arg))
    if letter == "D":
        return replace(opts, mode=Mode.DOWNLOAD, file=arg)
    if letter == "s":
        return replace(opts, dfuse_options=arg)
    raise AssertionError(f"option table and handler disagree on {letter!r}")
