"""Fuzzing the fixed-size DFU codecs: GETSTATUS replies and functional descriptors.

Any bytes of any length either decode or raise :class:`~dfuse.errors.ProtocolError`
(a :class:`~dfuse.errors.DfuseError`), and what decodes encodes back to the same bytes.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dfuse.errors import DfuseError, ProtocolError
from dfuse.protocol.constants import DFU_FUNCTIONAL_DESCRIPTOR_TYPE, State, Status
from dfuse.protocol.descriptors import Attributes, FunctionalDescriptor, StatusReply


def _status_or_error(data: bytes) -> StatusReply | ProtocolError:
    try:
        return StatusReply.parse(data)
    except ProtocolError as exc:
        return exc


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=16))
def test_status_reply_random_bytes(data: bytes) -> None:
    result = _status_or_error(data)
    if len(data) != StatusReply.SIZE:
        assert isinstance(result, ProtocolError)
        assert f"got {len(data)}" in str(result)
        return
    assert isinstance(result, StatusReply)
    assert result.to_bytes() == data
    assert int(result.status) == data[0]
    assert int(result.state) == data[4]
    assert isinstance(result.status, Status) == (data[0] in set(Status))
    assert isinstance(result.state, State) == (data[4] in set(State))
    assert result.poll_timeout_ms == int.from_bytes(data[1:4], "little")


def _descriptor_or_error(data: bytes) -> FunctionalDescriptor | ProtocolError:
    try:
        return FunctionalDescriptor.parse(data)
    except ProtocolError as exc:
        return exc


#: Bytes that get past the type check: a random bLength, type 0x21, random rest.
descriptor_like = st.builds(
    lambda length, rest: bytes([length, DFU_FUNCTIONAL_DESCRIPTOR_TYPE]) + rest,
    st.integers(0, 255),
    st.binary(max_size=14),
)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=16) | descriptor_like)
def test_functional_descriptor_random_bytes(data: bytes) -> None:
    result = _descriptor_or_error(data)
    ok_length = len(data) >= 7 and data[0] in range(7, len(data) + 1) and data[0] != 8
    if len(data) < 2 or data[1] != DFU_FUNCTIONAL_DESCRIPTOR_TYPE or not ok_length:
        assert isinstance(result, ProtocolError)
        return
    assert isinstance(result, FunctionalDescriptor)
    encoded = result.to_bytes()
    assert encoded[1:7] == data[1:7]  # type, bmAttributes, wDetachTimeOut, wTransferSize
    if data[0] >= FunctionalDescriptor.SIZE:
        assert encoded[7:9] == data[7:9]
        if data[0] == FunctionalDescriptor.SIZE:
            assert encoded == data[: FunctionalDescriptor.SIZE]
    else:
        assert result.dfu_version == 0x0100
    assert FunctionalDescriptor.parse(encoded) == result


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 255), st.integers(0, 0xFFFF), st.integers(0, 0xFFFF), st.integers(0, 0xFFFF))
def test_functional_descriptor_round_trips_every_field(
    attrs: int, detach: int, size: int, version: int
) -> None:
    fd = FunctionalDescriptor(Attributes(attrs), detach, size, version)
    assert FunctionalDescriptor.parse(fd.to_bytes()) == fd


def test_an_eight_byte_descriptor_is_refused_not_half_read() -> None:
    # bcdDFUVersion would be cut in half: refused, not silently read as DFU 1.0.
    with pytest.raises(ProtocolError, match=r"bLength \(offset 0\) must be 7 \(DFU 1.0\) or 9"):
        FunctionalDescriptor.parse(bytes([8, 0x21, 0x0B, 0xFF, 0, 0, 8, 0x1A]))


def test_a_truncated_descriptor_is_refused() -> None:
    with pytest.raises(ProtocolError, match=r"truncated: bLength .* says 9 bytes, found 8"):
        FunctionalDescriptor.parse(bytes([9, 0x21, 0x0B, 0xFF, 0, 0, 8, 0x1A]))
    with pytest.raises(ProtocolError, match="must be 7"):
        FunctionalDescriptor.parse(bytes([2, 0x21, 0x0B, 0xFF, 0, 0, 8]))


def test_longer_descriptors_keep_their_first_nine_bytes() -> None:
    raw = bytes([12, 0x21, 0x0B, 0xFF, 0, 0, 8, 0x1A, 1, 0xAA, 0xBB, 0xCC])
    fd = FunctionalDescriptor.parse(raw)
    assert (fd.transfer_size, fd.dfu_version) == (2048, 0x011A)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ((Attributes(0x1FF), 0, 0, 0), "bmAttributes must fit 8 bits"),
        ((Attributes(0), 0x10000, 0, 0), "detach_timeout_ms must fit 16 bits"),
        ((Attributes(0), 0, -1, 0), "transfer_size must fit 16 bits"),
        ((Attributes(0), 0, 0, 0x10000), "dfu_version must fit 16 bits"),
    ],
)
def test_functional_descriptor_out_of_range_fields_are_value_errors(
    fields: tuple[Attributes, int, int, int], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        FunctionalDescriptor(*fields).to_bytes()


def test_parse_errors_are_dfuse_errors() -> None:
    assert issubclass(ProtocolError, DfuseError)
