"""DfuSe command encoders and block arithmetic."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dfuse.protocol import dfuse as ds


def test_command_encodings_match_an3156() -> None:
    assert ds.encode_set_address(0x08000000) == bytes([0x21, 0x00, 0x00, 0x00, 0x08])
    assert ds.encode_erase(0x08020000) == bytes([0x41, 0x00, 0x00, 0x02, 0x08])
    assert ds.encode_mass_erase() == b"\x41"
    assert ds.encode_read_unprotect() == b"\x92"
    assert ds.encode_get() == b"\x00"


def test_address_must_fit_32_bits() -> None:
    with pytest.raises(ValueError, match="32 bits"):
        ds.encode_set_address(1 << 32)
    with pytest.raises(ValueError, match="32 bits"):
        ds.encode_erase(-1)


def test_block_address() -> None:
    assert ds.block_address(0x08000000, 2, 2048) == 0x08000000
    assert ds.block_address(0x08000000, 10, 2048) == 0x08000000 + 8 * 2048
    with pytest.raises(ValueError, match="numbered"):
        ds.block_address(0x08000000, 1, 2048)
    with pytest.raises(ValueError, match="numbered"):
        ds.block_address(0x08000000, 0x10000, 2048)
    with pytest.raises(ValueError, match="positive"):
        ds.block_address(0, 2, 0)


def test_block_for_address_errors() -> None:
    with pytest.raises(ValueError, match="multiple"):
        ds.block_for_address(0x08000000, 0x08000001, 2048)
    with pytest.raises(ValueError, match="multiple"):
        ds.block_for_address(0x08000800, 0x08000000, 2048)
    with pytest.raises(ValueError, match="16 bits"):
        ds.block_for_address(0, 0xFFFF * 2048, 2048)
    with pytest.raises(ValueError, match="positive"):
        ds.block_for_address(0, 0, -1)


@given(
    st.integers(0, 0xFFFF_0000),
    st.integers(2, 0xFFFF),
    st.sampled_from([64, 1024, 2048, 4096]),
)
def test_block_arithmetic_inverts(pointer: int, block: int, size: int) -> None:
    address = ds.block_address(pointer, block, size)
    assert ds.block_for_address(pointer, address, size) == block
