"""DfuSe (ST's DFU extension, AN3156) commands and block-number arithmetic. Pure, no I/O.

Commands travel as a DNLOAD with ``wBlockNum == 0``; data blocks use
``wBlockNum >= 2`` and land at ``pointer + (wBlockNum - 2) * transfer_size``,
where ``transfer_size`` is the device's wTransferSize from its functional
descriptor (not the request's wLength).
"""

from __future__ import annotations

import struct

from dfuse.protocol.constants import DfuseCommand

__all__ = [
    "COMMAND_BLOCK",
    "FIRST_DATA_BLOCK",
    "MAX_BLOCK",
    "block_address",
    "block_for_address",
    "encode_erase",
    "encode_get",
    "encode_mass_erase",
    "encode_read_unprotect",
    "encode_set_address",
]

#: wBlockNum that carries a DfuSe command.
COMMAND_BLOCK = 0
#: The first wBlockNum that carries data (block 1 is unused by DfuSe).
FIRST_DATA_BLOCK = 2
#: wBlockNum is a 16-bit field.
MAX_BLOCK = 0xFFFF
#: The highest address a DfuSe command carries (a u32).
MAX_ADDRESS = 0xFFFFFFFF


def _u32(address: int) -> bytes:
    if not 0 <= address <= 0xFFFF_FFFF:
        raise ValueError(f"address must fit 32 bits, got 0x{address:X}")
    return struct.pack("<I", address)


def encode_set_address(address: int) -> bytes:
    """Set Address Pointer: ``0x21`` + u32 address (5 bytes)."""
    return bytes((DfuseCommand.SET_ADDRESS_POINTER,)) + _u32(address)


def encode_erase(address: int) -> bytes:
    """Erase the page/sector that holds ``address``: ``0x41`` + u32 address."""
    return bytes((DfuseCommand.ERASE,)) + _u32(address)


def encode_mass_erase() -> bytes:
    """Mass erase: ``0x41`` alone."""
    return bytes((DfuseCommand.ERASE,))


def encode_read_unprotect() -> bytes:
    """Read Unprotect: ``0x92`` (mass-erases the flash and resets the device)."""
    return bytes((DfuseCommand.READ_UNPROTECT,))


def encode_get() -> bytes:
    """Get (list supported commands): ``0x00``."""
    return bytes((DfuseCommand.GET,))


def block_address(pointer: int, block: int, transfer_size: int) -> int:
    """The address a data block lands at: ``pointer + (block - 2) * transfer_size``.

    >>> hex(block_address(0x08000000, 3, 2048))
    '0x8000800'
    """
    if block < FIRST_DATA_BLOCK or block > MAX_BLOCK:
        raise ValueError(f"data blocks are numbered {FIRST_DATA_BLOCK}..{MAX_BLOCK}, got {block}")
    if transfer_size <= 0:
        raise ValueError(f"transfer size must be positive, got {transfer_size}")
    return pointer + (block - FIRST_DATA_BLOCK) * transfer_size


def block_for_address(pointer: int, address: int, transfer_size: int) -> int:
    """The wBlockNum that reaches ``address`` from ``pointer``.

    ``address - pointer`` must be a non-negative multiple of ``transfer_size``
    and the block number must fit 16 bits; otherwise :class:`ValueError`.
    """
    if transfer_size <= 0:
        raise ValueError(f"transfer size must be positive, got {transfer_size}")
    offset = address - pointer
    if offset < 0 or offset % transfer_size:
        raise ValueError(
            f"0x{address:08X} is not pointer 0x{pointer:08X} plus a multiple of {transfer_size}"
        )
    block = FIRST_DATA_BLOCK + offset // transfer_size
    if block > MAX_BLOCK:
        raise ValueError(f"block {block} for 0x{address:08X} does not fit 16 bits")
    return block
