"""The Linux usbdevfs ABI the bridge answers: ioctl numbers and 64-bit struct layouts.

Pure data and codecs, no I/O: values from ``linux/usbdevice_fs.h`` for LP64
(x86-64, arm64), the only layout the bridge supports. Everything here is
private to :mod:`dfuse.sim.usbdevfs`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum, IntFlag

__all__ = [
    "CONNINFO_EX_SIZE",
    "CTRLTRANSFER_SIZE",
    "URB_SIZE",
    "Capability",
    "CtrlTransfer",
    "Ioctl",
    "Speed",
    "Urb",
    "UrbType",
    "conninfo_ex",
    "ioctl_number",
    "name_of",
]

_IOC_NONE = 0
_IOC_WRITE = 1
_IOC_READ = 2


def ioctl_number(direction: int, nr: int, size: int) -> int:
    """The ioctl request number ``_IOC(direction, 'U', nr, size)`` (asm-generic layout)."""
    if not 0 <= direction <= 3 or not 0 <= nr <= 0xFF or not 0 <= size <= 0x3FFF:
        raise ValueError(f"bad _IOC fields: direction={direction} nr={nr} size={size}")
    return (direction << 30) | (size << 16) | (ord("U") << 8) | nr


CTRLTRANSFER_SIZE = 24  # u8 u8 u16 u16 u16 u32 (pad 4) void*
URB_SIZE = 56  # without iso frame descriptors
CONNINFO_EX_SIZE = 24  # u32 size, busnum, devnum, speed; u8 num_ports; u8 ports[7]


class Ioctl(IntEnum):
    """usbdevfs ioctl request numbers on LP64 Linux."""

    CONTROL = ioctl_number(_IOC_READ | _IOC_WRITE, 0, CTRLTRANSFER_SIZE)
    BULK = ioctl_number(_IOC_READ | _IOC_WRITE, 2, 24)
    RESETEP = ioctl_number(_IOC_READ, 3, 4)
    SETINTERFACE = ioctl_number(_IOC_READ, 4, 8)
    SETCONFIGURATION = ioctl_number(_IOC_READ, 5, 4)
    GETDRIVER = ioctl_number(_IOC_WRITE, 8, 260)
    SUBMITURB = ioctl_number(_IOC_READ, 10, URB_SIZE)
    DISCARDURB = ioctl_number(_IOC_NONE, 11, 0)
    REAPURB = ioctl_number(_IOC_WRITE, 12, 8)
    REAPURBNDELAY = ioctl_number(_IOC_WRITE, 13, 8)
    CLAIMINTERFACE = ioctl_number(_IOC_READ, 15, 4)
    RELEASEINTERFACE = ioctl_number(_IOC_READ, 16, 4)
    CONNECTINFO = ioctl_number(_IOC_WRITE, 17, 8)
    IOCTL = ioctl_number(_IOC_READ | _IOC_WRITE, 18, 16)
    RESET = ioctl_number(_IOC_NONE, 20, 0)
    CLEAR_HALT = ioctl_number(_IOC_READ, 21, 4)
    DISCONNECT = ioctl_number(_IOC_NONE, 22, 0)
    CONNECT = ioctl_number(_IOC_NONE, 23, 0)
    CLAIM_PORT = ioctl_number(_IOC_READ, 24, 4)
    RELEASE_PORT = ioctl_number(_IOC_READ, 25, 4)
    GET_CAPABILITIES = ioctl_number(_IOC_READ, 26, 4)
    DISCONNECT_CLAIM = ioctl_number(_IOC_READ, 27, 264)
    DROP_PRIVILEGES = ioctl_number(_IOC_WRITE, 30, 4)
    GET_SPEED = ioctl_number(_IOC_NONE, 31, 0)
    CONNINFO_EX = ioctl_number(_IOC_READ, 32, CONNINFO_EX_SIZE)
    FORBID_SUSPEND = ioctl_number(_IOC_NONE, 33, 0)
    ALLOW_SUSPEND = ioctl_number(_IOC_NONE, 34, 0)
    WAIT_FOR_RESUME = ioctl_number(_IOC_NONE, 35, 0)


CONNINFO_EX_NR = 32


def name_of(request: int) -> str:
    """A readable name for an ioctl request number (for logs and errors)."""
    try:
        return Ioctl(request).name
    except ValueError:
        if (request >> 8) & 0xFF == ord("U") and request & 0xFF == CONNINFO_EX_NR:
            return f"CONNINFO_EX({(request >> 16) & 0x3FFF})"
        return f"0x{request:08X}"


def is_conninfo_ex(request: int) -> bool:
    """True for ``USBDEVFS_CONNINFO_EX(len)`` with any ``len`` (the caller's struct size)."""
    return (request & 0xC000FFFF) == ((_IOC_READ << 30) | (ord("U") << 8) | CONNINFO_EX_NR)


def ioctl_size(request: int) -> int:
    """The argument size encoded in an ioctl request number."""
    return (request >> 16) & 0x3FFF


class Capability(IntFlag):
    """``USBDEVFS_CAP_*`` bits answered to GET_CAPABILITIES."""

    ZERO_PACKET = 0x01
    BULK_CONTINUATION = 0x02
    NO_PACKET_SIZE_LIM = 0x04
    BULK_SCATTER_GATHER = 0x08
    REAP_AFTER_DISCONNECT = 0x10
    MMAP = 0x20
    DROP_PRIVILEGES = 0x40
    CONNINFO_EX = 0x80
    SUSPEND = 0x100


class UrbType(IntEnum):
    """``USBDEVFS_URB_TYPE_*``."""

    ISO = 0
    INTERRUPT = 1
    CONTROL = 2
    BULK = 3


class Speed(IntEnum):
    """``enum usb_device_speed`` (what GET_SPEED returns) with the sysfs ``speed`` text."""

    UNKNOWN = 0
    LOW = 1
    FULL = 2
    HIGH = 3
    WIRELESS = 4
    SUPER = 5
    SUPER_PLUS = 6

    @property
    def sysfs(self) -> str:
        """The text of the sysfs ``speed`` attribute (Mbit/s) for this speed."""
        return {
            Speed.LOW: "1.5",
            Speed.FULL: "12",
            Speed.HIGH: "480",
            Speed.WIRELESS: "480",
            Speed.SUPER: "5000",
            Speed.SUPER_PLUS: "10000",
        }.get(self, "unknown")


_CTRL = struct.Struct("<BBHHHI4xQ")
_URB_HEAD = struct.Struct("<BBxxiIxxxxQiiiiiIQ")
URB_STATUS_OFFSET = 4
URB_BUFFER_OFFSET = 16
URB_ACTUAL_LENGTH_OFFSET = 28


@dataclass(frozen=True, slots=True)
class CtrlTransfer:
    """``struct usbdevfs_ctrltransfer``: the USBDEVFS_CONTROL argument."""

    request_type: int
    request: int
    value: int
    index: int
    length: int
    timeout_ms: int
    data_pointer: int

    DATA_OFFSET = 16

    @classmethod
    def parse(cls, raw: bytes) -> CtrlTransfer:
        """Decode the 24-byte struct; raises ValueError if ``raw`` is short."""
        if len(raw) < CTRLTRANSFER_SIZE:
            raise ValueError(f"usbdevfs_ctrltransfer is {CTRLTRANSFER_SIZE} bytes, got {len(raw)}")
        return cls(*_CTRL.unpack_from(raw))

    def build(self) -> bytes:
        """Encode the struct (the inverse of :meth:`parse`)."""
        return _CTRL.pack(
            self.request_type,
            self.request,
            self.value,
            self.index,
            self.length,
            self.timeout_ms,
            self.data_pointer,
        )


@dataclass(frozen=True, slots=True)
class Urb:
    """The fixed part of ``struct usbdevfs_urb`` (64-bit layout, 56 bytes)."""

    type: int
    endpoint: int
    status: int
    flags: int
    buffer_pointer: int
    buffer_length: int
    actual_length: int
    start_frame: int
    number_of_packets: int
    error_count: int
    signr: int
    usercontext: int

    @classmethod
    def parse(cls, raw: bytes) -> Urb:
        """Decode the 56-byte struct; raises ValueError if ``raw`` is short."""
        if len(raw) < URB_SIZE:
            raise ValueError(f"usbdevfs_urb is {URB_SIZE} bytes, got {len(raw)}")
        return cls(*_URB_HEAD.unpack_from(raw))

    def build(self) -> bytes:
        """Encode the struct (the inverse of :meth:`parse`)."""
        return _URB_HEAD.pack(
            self.type,
            self.endpoint,
            self.status,
            self.flags,
            self.buffer_pointer,
            self.buffer_length,
            self.actual_length,
            self.start_frame,
            self.number_of_packets,
            self.error_count,
            self.signr,
            self.usercontext,
        )


def conninfo_ex(size: int, busnum: int, devnum: int, speed: Speed, ports: tuple[int, ...]) -> bytes:
    """``struct usbdevfs_conninfo_ex`` truncated to the caller's ``size`` (as the kernel does)."""
    if len(ports) > 7:
        raise ValueError(f"at most 7 port numbers fit in conninfo_ex, got {len(ports)}")
    full = struct.pack(
        "<IIIIB7s", CONNINFO_EX_SIZE, busnum, devnum, int(speed), len(ports), bytes(ports)
    )
    return full[: min(size, CONNINFO_EX_SIZE)]
