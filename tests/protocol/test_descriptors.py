"""GETSTATUS reply and functional descriptor codecs."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dfuse.errors import ProtocolError
from dfuse.protocol.constants import State, Status
from dfuse.protocol.descriptors import Attributes, FunctionalDescriptor, StatusReply


def test_status_reply_decodes_fields() -> None:
    reply = StatusReply.parse(bytes([0, 0x20, 0x03, 0x00, 4, 0]))
    assert reply == StatusReply(Status.OK, 800, State.dfuDNBUSY, 0)
    assert reply.ok


def test_status_reply_unknown_codes_stay_ints() -> None:
    reply = StatusReply.parse(bytes([0x42, 0, 0, 0, 0x33, 1]))
    assert reply.status == 0x42
    assert not isinstance(reply.status, Status)
    assert reply.state == 0x33


@pytest.mark.parametrize("length", [0, 5, 7])
def test_status_reply_wrong_length(length: int) -> None:
    with pytest.raises(ProtocolError, match="6 bytes"):
        StatusReply.parse(bytes(length))


@given(
    st.sampled_from(list(Status)),
    st.integers(0, (1 << 24) - 1),
    st.sampled_from(list(State)),
    st.integers(0, 255),
)
def test_status_reply_round_trip(status: Status, timeout: int, state: State, istring: int) -> None:
    reply = StatusReply(status, timeout, state, istring)
    assert StatusReply.parse(reply.to_bytes()) == reply


def test_status_reply_timeout_must_fit() -> None:
    with pytest.raises(ValueError, match="24 bits"):
        StatusReply(Status.OK, 1 << 24, State.dfuIDLE).to_bytes()


def test_functional_descriptor_st_bootloader() -> None:
    raw = bytes([9, 0x21, 0x0B, 0xFF, 0x00, 0x00, 0x08, 0x1A, 0x01])
    fd = FunctionalDescriptor.parse(raw)
    assert fd.attributes == Attributes.CAN_DNLOAD | Attributes.CAN_UPLOAD | Attributes.WILL_DETACH
    assert fd.detach_timeout_ms == 255
    assert fd.transfer_size == 2048
    assert fd.is_dfuse
    assert fd.to_bytes() == raw


def test_functional_descriptor_dfu10_short_form() -> None:
    fd = FunctionalDescriptor.parse(bytes([7, 0x21, 0x03, 0x10, 0x00, 0x00, 0x04]))
    assert fd.dfu_version == 0x0100
    assert fd.transfer_size == 1024


def test_functional_descriptor_rejects_other_types() -> None:
    with pytest.raises(ProtocolError, match="type 0x21"):
        FunctionalDescriptor.parse(bytes([9, 0x04, 0, 0, 0, 0, 0, 0, 0]))


@given(st.integers(0, 15), st.integers(0, 0xFFFF), st.integers(0, 0xFFFF), st.integers(0, 0xFFFF))
def test_functional_descriptor_round_trip(attrs: int, detach: int, size: int, ver: int) -> None:
    fd = FunctionalDescriptor(Attributes(attrs), detach, size, ver)
    assert FunctionalDescriptor.parse(fd.to_bytes()) == fd
