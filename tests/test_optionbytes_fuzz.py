"""Fuzzing the option-byte and OTP parsers: bytes of any length decode or raise
:class:`~dfuse.errors.OptionBytesError` (with the offset), never anything else, and
every decoded value's derived views (levels, protected sectors, text, dict) work."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TypeVar

from hypothesis import given, settings
from hypothesis import strategies as st

from dfuse.errors import DfuseError, OptionBytesError
from dfuse.optionbytes import (
    OPTION_BYTES_SIZE,
    OTP_BLOCK_SIZE,
    OTP_BLOCKS,
    OTP_SIZE,
    BorLevel,
    OptionBytes,
    OtpArea,
    RdpLevel,
)

T = TypeVar("T")

#: Lengths around the real sizes, and the real sizes often.
around_16 = st.one_of(st.binary(max_size=40), st.binary(min_size=16, max_size=16))
around_528 = st.one_of(
    st.binary(max_size=40),
    st.integers(500, 560).flatmap(lambda n: st.binary(min_size=n, max_size=n)),
    st.binary(min_size=OTP_SIZE, max_size=OTP_SIZE),
)


def _catch(parse: Callable[[], T]) -> T | OptionBytesError:
    """What ``parse()`` returns, or the OptionBytesError it raises (nothing else is caught)."""
    try:
        return parse()
    except OptionBytesError as exc:
        return exc


@settings(max_examples=300, deadline=None)
@given(around_16, st.booleans())
def test_option_bytes_any_bytes(data: bytes, strict: bool) -> None:
    ob = _catch(lambda: OptionBytes.parse(data, strict=strict))
    if isinstance(ob, OptionBytesError):
        assert isinstance(ob, DfuseError)
        assert ob.offset is not None
        assert 0 <= ob.offset <= OPTION_BYTES_SIZE
        assert len(data) != OPTION_BYTES_SIZE or strict
        return
    assert len(data) == OPTION_BYTES_SIZE
    encoded = ob.to_bytes()
    if strict:
        assert encoded == data
    else:  # lenient: the complement half-words are recomputed, the rest kept
        for at in (*range(0, 2), *range(4, 10), *range(12, 16)):
            assert encoded[at] == data[at]
    # every view of any block works
    assert isinstance(ob.rdp_level, RdpLevel)
    assert isinstance(ob.bor_level, BorLevel)
    assert ob.write_protected <= frozenset(range(8))
    assert OptionBytes.from_optcr(ob.optcr).optcr == ob.optcr
    json.dumps(ob.to_dict())
    assert ob.describe()
    assert OptionBytes.parse(encoded, strict=True) == ob


@settings(max_examples=150, deadline=None)
@given(around_528)
def test_otp_area_any_bytes(data: bytes) -> None:
    otp = _catch(lambda: OtpArea.parse(data))
    if isinstance(otp, OptionBytesError):
        assert len(data) != OTP_SIZE
        assert otp.offset == min(len(data), OTP_SIZE)
        assert f"{len(data)} bytes" in str(otp)
        return
    assert otp.to_bytes() == data
    assert OtpArea.parse(otp.to_bytes()) == otp
    assert otp.locked == frozenset(i for i in range(OTP_BLOCKS) if data[512 + i] == 0)
    for block in range(OTP_BLOCKS):
        assert otp.blocks[block] == data[block * OTP_BLOCK_SIZE : (block + 1) * OTP_BLOCK_SIZE]
        assert otp.is_locked(block) == (block in otp.locked)
