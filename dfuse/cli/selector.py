"""Number arguments of the command line (``--address``, sector numbers, OTP blocks).

Device selectors themselves (``-d usb:0483:df11``, ``-d sim:stm32f411``) are a library
feature: :mod:`dfuse.selector` (its :class:`~dfuse.errors.SelectorError` exits with the
usage code like :class:`UsageError`). This module imports it only when a selector
number is parsed, so file commands start without the device layers.

Every number is checked here, before any work: ASCII digits only (``int()`` would take
Arabic-Indic or full-width digits), and within the range of what it names, so an
out-of-range value is a usage error (exit 2), never an internal error.
"""

from __future__ import annotations

import re

from dfuse.cli.exitcodes import UsageError

__all__ = ["ADDRESS_MAX", "LENGTH_MAX", "parse_address", "parse_alt", "parse_int", "parse_size"]

ADDRESS_MAX = 0xFFFF_FFFF
"""The highest address a DfuSe device has (32 bits)."""
LENGTH_MAX = 1 << 32
"""The most bytes one command can read: the whole 32-bit address space."""

_NUMBER = re.compile(r"^(?:0[xX][0-9a-fA-F]+(?:_[0-9a-fA-F]+)*|[0-9]+(?:_[0-9]+)*)$", re.ASCII)
#: Enough digits for any value below 2**64: longer text is refused before int() runs.
_MAX_DIGITS = 24


def parse_int(text: str, *, what: str = "number", maximum: int | None = None) -> int:
    """Parse a decimal or ``0x``-prefixed hexadecimal integer (``0x08000000``, ``2048``).

    >>> parse_int("0x0800_0000", what="address")
    134217728

    Raises:
        UsageError: not ASCII digits in that form, or above ``maximum``.
    """
    stripped = text.strip()
    if len(stripped) > _MAX_DIGITS or not _NUMBER.match(stripped):
        raise UsageError(
            f"invalid {what} {text!r}: expected a decimal or 0x-prefixed hex number (ASCII digits)"
        )
    value = (
        int(stripped.replace("_", ""), 0)
        if stripped[:2].lower() == "0x"
        else int(stripped.replace("_", ""), 10)
    )
    if maximum is not None and value > maximum:
        raise UsageError(f"invalid {what} {text!r}: expected at most 0x{maximum:X} ({maximum})")
    return value


def parse_address(text: str, *, what: str = "address") -> int:
    """A 32-bit address (``0x08000000``)."""
    return parse_int(text, what=what, maximum=ADDRESS_MAX)


def parse_size(text: str, *, what: str = "size", maximum: int = LENGTH_MAX) -> int:
    """A byte count with an optional K/M multiplier (``16K``, ``0x4000``), at most ``maximum``
    (:func:`dfuse.selector.parse_size`)."""
    from dfuse.selector import parse_size as library_parse_size

    if len(text.strip()) > _MAX_DIGITS + 4:
        raise UsageError(f"invalid {what} {text!r}: expected at most {maximum} bytes")
    value = library_parse_size(text, what=what)
    if value > maximum:
        raise UsageError(f"invalid {what} {text!r}: expected at most {maximum} bytes")
    return value


def parse_alt(value: str) -> int | str:
    """An alternate setting: a number (0-255) or a name (:func:`dfuse.selector.parse_alt`),
    also as the alt string spells it: ``-a "@Option Bytes"`` is ``-a "Option Bytes"``."""
    from dfuse.selector import parse_alt as library_parse_alt

    alt = library_parse_alt(value)
    if isinstance(alt, str) and alt.startswith("@"):
        alt = library_parse_alt(alt[1:])
    return alt
