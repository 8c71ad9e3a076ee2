"""Codecs for the fixed-size DFU structures: the GETSTATUS reply and the DFU
functional descriptor (USB DFU 1.1 §6.1.2 and §4.1.3). Pure data, no I/O."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntFlag

from dfuse.errors import ProtocolError
from dfuse.protocol.constants import DFU_FUNCTIONAL_DESCRIPTOR_TYPE, State, Status

__all__ = ["Attributes", "FunctionalDescriptor", "StatusReply"]


@dataclass(frozen=True, slots=True)
class StatusReply:
    """The 6-byte answer to GETSTATUS.

    Attributes:
        status: bStatus (a :class:`Status` when the code is known).
        poll_timeout_ms: bwPollTimeout, how long the host should wait before the next GETSTATUS.
        state: bState (a :class:`State` when the code is known).
        istring: iString, index of a string describing the status (0: none).
    """

    status: Status | int
    poll_timeout_ms: int
    state: State | int
    istring: int = 0

    SIZE = 6

    @classmethod
    def parse(cls, data: bytes | bytearray | memoryview) -> StatusReply:
        """Decode a GETSTATUS reply; raises :class:`ProtocolError` if it is not 6 bytes."""
        raw = bytes(data)
        if len(raw) != cls.SIZE:
            raise ProtocolError(
                f"GETSTATUS reply must be {cls.SIZE} bytes, got {len(raw)}: {raw.hex(' ')}"
            )
        status_code = raw[0]
        timeout = raw[1] | (raw[2] << 8) | (raw[3] << 16)
        state_code = raw[4]
        status: Status | int = (
            Status(status_code) if status_code in Status._value2member_map_ else status_code
        )
        state: State | int = (
            State(state_code) if state_code in State._value2member_map_ else state_code
        )
        return cls(status, timeout, state, raw[5])

    def to_bytes(self) -> bytes:
        """Encode as the 6 bytes a device sends."""
        if not 0 <= self.poll_timeout_ms < 1 << 24:
            raise ValueError(f"bwPollTimeout must fit 24 bits, got {self.poll_timeout_ms}")
        t = self.poll_timeout_ms
        return bytes(
            (int(self.status), t & 0xFF, (t >> 8) & 0xFF, t >> 16, int(self.state), self.istring)
        )

    @property
    def ok(self) -> bool:
        """True when bStatus is OK."""
        return int(self.status) == Status.OK


class Attributes(IntFlag):
    """bmAttributes of the DFU functional descriptor."""

    CAN_DNLOAD = 0x01
    CAN_UPLOAD = 0x02
    MANIFESTATION_TOLERANT = 0x04
    WILL_DETACH = 0x08


@dataclass(frozen=True, slots=True)
class FunctionalDescriptor:
    """The DFU functional descriptor (type 0x21, 9 bytes).

    >>> fd = FunctionalDescriptor(Attributes(0x0B), 255, 2048, 0x011A)
    >>> FunctionalDescriptor.parse(fd.to_bytes()) == fd
    True
    """

    attributes: Attributes
    detach_timeout_ms: int
    transfer_size: int
    dfu_version: int

    SIZE = 9
    SIZE_1_0 = 7
    _FMT = "<BBBHHH"

    @classmethod
    def parse(cls, data: bytes | bytearray | memoryview) -> FunctionalDescriptor:
        """Decode the descriptor; raises :class:`ProtocolError` if malformed.

        Some devices send a 7-byte DFU 1.0 descriptor without bcdDFUVersion; it
        is read as version 0x0100. bLength must be 7 or at least 9 and ``data``
        must hold that many bytes (bytes past bLength are ignored).
        """
        raw = bytes(data)
        if len(raw) < cls.SIZE_1_0 or raw[1] != DFU_FUNCTIONAL_DESCRIPTOR_TYPE:
            raise ProtocolError(
                "not a DFU functional descriptor: expected type 0x21 and at least 7 bytes, "
                f"found {raw.hex(' ') or 'nothing'}"
            )
        length = raw[0]
        if length not in (cls.SIZE_1_0, cls.SIZE) and length < cls.SIZE:
            raise ProtocolError(
                f"DFU functional descriptor: bLength (offset 0) must be {cls.SIZE_1_0} "
                f"(DFU 1.0) or {cls.SIZE}, found {length}: {raw.hex(' ')}"
            )
        if len(raw) < length:
            raise ProtocolError(
                f"DFU functional descriptor truncated: bLength (offset 0) says {length} bytes, "
                f"found {len(raw)}: {raw.hex(' ')}"
            )
        attrs, detach, size = raw[2], raw[3] | raw[4] << 8, raw[5] | raw[6] << 8
        version = raw[7] | raw[8] << 8 if length >= cls.SIZE else 0x0100
        return cls(Attributes(attrs), detach, size, version)

    def to_bytes(self) -> bytes:
        """Encode as the 9 bytes of the descriptor (ValueError for a field out of range)."""
        if not 0 <= int(self.attributes) <= 0xFF:
            raise ValueError(f"bmAttributes must fit 8 bits, got {int(self.attributes)}")
        for name in ("detach_timeout_ms", "transfer_size", "dfu_version"):
            value = getattr(self, name)
            if not 0 <= value <= 0xFFFF:
                raise ValueError(f"{name} must fit 16 bits, got {value}")
        return struct.pack(
            self._FMT,
            self.SIZE,
            DFU_FUNCTIONAL_DESCRIPTOR_TYPE,
            int(self.attributes),
            self.detach_timeout_ms,
            self.transfer_size,
            self.dfu_version,
        )

    @property
    def is_dfuse(self) -> bool:
        """True for ST's DfuSe extension (bcdDFUVersion 0x011A)."""
        return self.dfu_version == 0x011A
