"""Number arguments of the command line (``--address``, sector numbers, OTP blocks).

Device selectors themselves (``-d usb:0483:df11``, ``-d sim:stm32f411``) are a library
feature: :mod:`dfuse.selector` (its :class:`~dfuse.errors.SelectorError` exits with the
usage code like :class:`UsageError`).
"""

from __future__ import annotations

from dfuse.cli.exitcodes import UsageError
from dfuse.selector import parse_alt, parse_size

__all__ = ["parse_alt", "parse_int", "parse_size"]


def parse_int(text: str, *, what: str = "number") -> int:
    """Parse a decimal or ``0x``-prefixed hexadecimal integer (``0x08000000``, ``2048``)."""
    try:
        value = int(text.replace("_", ""), 0)
    except ValueError:
        raise UsageError(
            f"invalid {what} {text!r}: expected a decimal or 0x-prefixed hex number"
        ) from None
    if value < 0:
        raise UsageError(f"invalid {what} {text!r}: must not be negative")
    return value
