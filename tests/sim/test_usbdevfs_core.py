"""The usbdevfs bridge's ioctl semantics and ABI, against a fake client address space.

No umockdev needed: :class:`FakeMemory` plays the client process's memory the way
umockdev's ``IoctlData`` does (the ioctl argument is an 8-byte block holding the
raw value, pointers are followed into freshly loaded blocks, writes land in the
client's memory).
"""

from __future__ import annotations

import errno
import struct
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dfuse.sim import _usbdevfs_abi as abi
from dfuse.sim._usbdevfs_core import Completion, DeviceNode, Handle
from dfuse.sim.usbmodel import Gone, SetupPacket, Stall, Timeout, UsbDeviceModel

# --------------------------------------------------------------------------- fakes


class AddressSpace:
    """The client process: blocks of bytes at addresses."""

    def __init__(self) -> None:
        self.blocks: dict[int, bytearray] = {}
        self._next = 0x1000

    def alloc(self, data: bytes | int) -> int:
        block = bytearray(data)
        address = self._next
        self._next += max(len(block), 1) + 0x100
        self.blocks[address] = block
        return address

    def load(self, address: int, length: int) -> bytearray:
        for base, block in self.blocks.items():
            if base <= address and address + length <= base + len(block):
                return block[address - base : address - base + length]
        raise AssertionError(f"client memory 0x{address:X}+{length} is not mapped")

    def store(self, address: int, data: bytes) -> None:
        for base, block in self.blocks.items():
            if base <= address and address + len(data) <= base + len(block):
                block[address - base : address - base + len(data)] = data
                return
        raise AssertionError(f"client memory 0x{address:X}+{len(data)} is not mapped")


class FakeMemory:
    """A ClientMemory over :class:`AddressSpace` (writes go straight through)."""

    def __init__(self, space: AddressSpace, address: int, data: bytearray) -> None:
        self.space = space
        self._address = address
        self.data = data

    @classmethod
    def argument(cls, space: AddressSpace, value: int) -> FakeMemory:
        return cls(space, 0, bytearray(struct.pack("<Q", value)))

    @property
    def address(self) -> int:
        return self._address

    def read(self) -> bytes:
        return bytes(self.data)

    def write(self, offset: int, data: bytes) -> None:
        assert offset + len(data) <= len(self.data), "write past the resolved block"
        self.data[offset : offset + len(data)] = data
        if self._address:
            self.space.store(self._address + offset, data)

    def follow(self, offset: int, length: int) -> FakeMemory | None:
        (pointer,) = struct.unpack_from("<Q", self.data, offset)
        if pointer == 0 or length == 0:
            return None
        return FakeMemory(self.space, pointer, self.space.load(pointer, length))


class ToyModel(UsbDeviceModel):
    """A device with one interface (2 alt settings) and a few vendor requests.

    bRequest 1 (IN): returns ``payload``; 2 (OUT): stores the data; 3: stalls;
    4: times out; 5: the device leaves the bus while answering.
    """

    def __init__(self) -> None:
        super().__init__(bus=2, address=7, port_numbers=(3, 1))
        self.payload = bytes(range(64))
        self.received: list[bytes] = []
        self.resets = 0

    def device_descriptor(self) -> bytes:
        return struct.pack(
            "<BBHBBBBHHHBBBB", 18, 1, 0x0200, 0, 0, 0, 64, 0x1209, 0x0001, 0x0100, 1, 2, 0, 1
        )

    def configuration_descriptor(self, index: int = 0) -> bytes:
        body = bytes([9, 4, 0, 0, 0, 0xFF, 0, 0, 0]) + bytes([9, 4, 0, 1, 0, 0xFF, 0, 0, 0])
        return struct.pack("<BBHBBBBB", 9, 2, 9 + len(body), 1, 1, 0, 0x80, 50) + body

    def strings(self) -> dict[int, str]:
        return {1: "dfuse", 2: "toy"}

    def handle_class_request(self, setup: SetupPacket, data: bytes, timeout_ms: int) -> bytes:
        if setup.request == 1:
            return self.payload
        if setup.request == 2:
            self.received.append(data)
            return b""
        if setup.request == 3:
            raise Stall("told to")
        if setup.request == 4:
            raise Timeout("told to")
        if setup.request == 5:
            self.disconnect()
            raise Gone("left")
        raise Stall(f"request {setup.request}")

    def reset(self) -> None:
        self.resets += 1
        super().reset()


class Rig:
    """A model, its node, one open handle and the client's memory."""

    def __init__(self) -> None:
        self.model = ToyModel()
        self.configs: list[int] = []
        self.node = DeviceNode(self.model, on_configuration=self.configs.append)
        self.handle = self.node.open()
        self.space = AddressSpace()
        self.results: list[tuple[int, int]] = []

    def ioctl(self, request: int, value: int, handle: Handle | None = None) -> Completion:
        done = Completion(lambda r, e: self.results.append((r, e)))
        (handle or self.handle).handle(request, FakeMemory.argument(self.space, value), done)
        return done

    def call(self, request: int, value: int = 0, handle: Handle | None = None) -> tuple[int, int]:
        before = len(self.results)
        done = self.ioctl(request, value, handle)
        assert done.done, f"{abi.name_of(request)} did not complete"
        assert len(self.results) == before + 1
        return self.results[-1]

    def u32(self, value: int) -> int:
        return self.space.alloc(struct.pack("<I", value))

    def submit(self, setup: SetupPacket, data: bytes = b"", *, endpoint: int = 0) -> int:
        buffer = self.space.alloc(setup.to_bytes() + (data or bytes(setup.length)))
        urb = abi.Urb(
            type=abi.UrbType.CONTROL,
            endpoint=endpoint,
            status=12345,
            flags=0,
            buffer_pointer=buffer,
            buffer_length=8 + max(setup.length, len(data)),
            actual_length=-1,
            start_frame=0,
            number_of_packets=0,
            error_count=0,
            signr=0,
            usercontext=0xC0FFEE,
        )
        return self.space.alloc(urb.build())

    def urb(self, address: int) -> abi.Urb:
        return abi.Urb.parse(bytes(self.space.load(address, abi.URB_SIZE)))

    def reap(self, request: int = abi.Ioctl.REAPURBNDELAY) -> tuple[tuple[int, int], int]:
        slot = self.space.alloc(bytes(8))
        result = self.call(request, slot)
        return result, struct.unpack("<Q", self.space.load(slot, 8))[0]


IN = SetupPacket(0xC1, 1, 0, 0, 64)


def finished(done: Completion) -> bool:
    """Whether ``done`` has completed (a call, so that type checkers do not narrow it)."""
    return done.done


# --------------------------------------------------------------------------- ABI


def test_ioctl_numbers_match_the_linux_headers() -> None:
    # Values as the kernel headers expand them on x86-64 (strace prints these).
    assert int(abi.Ioctl.CONTROL) == 0xC0185500
    assert int(abi.Ioctl.SETINTERFACE) == 0x80085504
    assert int(abi.Ioctl.SETCONFIGURATION) == 0x80045505
    assert int(abi.Ioctl.GETDRIVER) == 0x41045508
    assert int(abi.Ioctl.SUBMITURB) == 0x8038550A
    assert int(abi.Ioctl.DISCARDURB) == 0x550B
    assert int(abi.Ioctl.REAPURB) == 0x4008550C
    assert int(abi.Ioctl.REAPURBNDELAY) == 0x4008550D
    assert int(abi.Ioctl.CLAIMINTERFACE) == 0x8004550F
    assert int(abi.Ioctl.RELEASEINTERFACE) == 0x80045510
    assert int(abi.Ioctl.IOCTL) == 0xC0105512
    assert int(abi.Ioctl.RESET) == 0x5514
    assert int(abi.Ioctl.GET_CAPABILITIES) == 0x8004551A
    assert int(abi.Ioctl.GET_SPEED) == 0x551F
    assert int(abi.Ioctl.CONNINFO_EX) == 0x80185520


def test_ioctl_number_rejects_fields_out_of_range() -> None:
    with pytest.raises(ValueError, match="nr=256"):
        abi.ioctl_number(0, 256, 0)
    with pytest.raises(ValueError, match="size=16384"):
        abi.ioctl_number(0, 1, 1 << 14)


def test_names_of_requests() -> None:
    assert abi.name_of(abi.Ioctl.SUBMITURB) == "SUBMITURB"
    assert abi.name_of(abi.ioctl_number(2, 32, 16)) == "CONNINFO_EX(16)"
    assert abi.name_of(0x1234) == "0x00001234"
    assert abi.is_conninfo_ex(abi.ioctl_number(2, 32, 40))
    assert not abi.is_conninfo_ex(abi.Ioctl.GET_SPEED)


def test_speed_sysfs_text() -> None:
    assert abi.Speed.FULL.sysfs == "12"
    assert abi.Speed.HIGH.sysfs == "480"
    assert abi.Speed.UNKNOWN.sysfs == "unknown"


u8 = st.integers(0, 0xFF)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)
i32 = st.integers(-(2**31), 2**31 - 1)
u64 = st.integers(0, 2**64 - 1)


@settings(max_examples=60)
@given(st.builds(abi.Urb, u8, u8, i32, u32, u64, i32, i32, i32, i32, i32, u32, u64))
def test_urb_round_trips(urb: abi.Urb) -> None:
    raw = urb.build()
    assert len(raw) == abi.URB_SIZE
    assert abi.Urb.parse(raw) == urb
    assert struct.unpack_from("<i", raw, abi.URB_STATUS_OFFSET)[0] == urb.status
    assert struct.unpack_from("<i", raw, abi.URB_ACTUAL_LENGTH_OFFSET)[0] == urb.actual_length
    assert struct.unpack_from("<Q", raw, abi.URB_BUFFER_OFFSET)[0] == urb.buffer_pointer


@settings(max_examples=60)
@given(st.builds(abi.CtrlTransfer, u8, u8, u16, u16, u16, u32, u64))
def test_ctrltransfer_round_trips(ctrl: abi.CtrlTransfer) -> None:
    raw = ctrl.build()
    assert len(raw) == abi.CTRLTRANSFER_SIZE
    assert abi.CtrlTransfer.parse(raw) == ctrl
    assert struct.unpack_from("<Q", raw, abi.CtrlTransfer.DATA_OFFSET)[0] == ctrl.data_pointer


def test_short_structs_are_refused() -> None:
    with pytest.raises(ValueError, match="56 bytes, got 55"):
        abi.Urb.parse(bytes(55))
    with pytest.raises(ValueError, match="24 bytes, got 8"):
        abi.CtrlTransfer.parse(bytes(8))


@settings(max_examples=40)
@given(st.integers(0, 64), st.lists(st.integers(1, 255), max_size=7))
def test_conninfo_ex_is_cut_to_the_callers_size(size: int, ports: list[int]) -> None:
    raw = abi.conninfo_ex(size, 3, 9, abi.Speed.FULL, tuple(ports))
    assert len(raw) == min(size, abi.CONNINFO_EX_SIZE)
    full = abi.conninfo_ex(64, 3, 9, abi.Speed.FULL, tuple(ports))
    assert full.startswith(raw)
    assert struct.unpack_from("<IIIIB", full) == (24, 3, 9, 2, len(ports))
    assert full[17 : 17 + len(ports)] == bytes(ports)


def test_conninfo_ex_refuses_deep_hubs() -> None:
    with pytest.raises(ValueError, match="at most 7 port numbers"):
        abi.conninfo_ex(24, 1, 1, abi.Speed.FULL, tuple(range(1, 9)))


# --------------------------------------------------------------------------- completion


def test_completion_happens_exactly_once() -> None:
    seen: list[tuple[int, int]] = []
    done = Completion(lambda r, e: seen.append((r, e)))
    assert not finished(done)
    assert done.complete(5)
    assert not done.fail(errno.EIO)
    assert finished(done)
    assert seen == [(5, 0)]


# --------------------------------------------------------------------------- control URBs


def test_control_in_urb_is_completed_and_reaped() -> None:
    rig = Rig()
    urb = rig.submit(IN)
    assert rig.call(abi.Ioctl.SUBMITURB, urb) == (0, 0)
    result, reaped = rig.reap()
    assert result == (0, 0)
    assert reaped == urb
    done = rig.urb(urb)
    assert (done.status, done.actual_length, done.usercontext) == (0, 64, 0xC0FFEE)
    assert bytes(rig.space.load(done.buffer_pointer + 8, 64)) == rig.model.payload
    assert rig.node.counter.control_transfers == 1
    assert rig.node.counter.by_request == {(0xC1, 1): 1}
    assert rig.node.counter.ioctls == {"SUBMITURB": 1, "REAPURBNDELAY": 1}


def test_control_out_urb_delivers_its_data_stage() -> None:
    rig = Rig()
    urb = rig.submit(SetupPacket(0x41, 2, 0, 0, 5), b"hello")
    rig.call(abi.Ioctl.SUBMITURB, urb)
    rig.reap()
    assert rig.model.received == [b"hello"]
    assert rig.urb(urb).actual_length == 5


def test_short_in_reply_reports_its_length() -> None:
    rig = Rig()
    rig.model.payload = b"abc"
    urb = rig.submit(SetupPacket(0xC1, 1, 0, 0, 64))
    rig.call(abi.Ioctl.SUBMITURB, urb)
    rig.reap()
    assert rig.urb(urb).actual_length == 3


def test_standard_requests_reach_the_models_descriptors() -> None:
    rig = Rig()
    urb = rig.submit(SetupPacket(0x80, 6, 0x0100, 0, 18))
    rig.call(abi.Ioctl.SUBMITURB, urb)
    rig.reap()
    done = rig.urb(urb)
    assert bytes(rig.space.load(done.buffer_pointer + 8, 18)) == rig.model.device_descriptor()


def test_a_stall_completes_the_urb_with_epipe() -> None:
    rig = Rig()
    urb = rig.submit(SetupPacket(0xC1, 3, 0, 0, 4))
    assert rig.call(abi.Ioctl.SUBMITURB, urb) == (0, 0)
    rig.reap()
    assert rig.urb(urb).status == -errno.EPIPE


def test_nothing_to_reap_is_eagain() -> None:
    rig = Rig()
    assert rig.reap()[0] == (-1, errno.EAGAIN)


def test_urbs_are_reaped_in_completion_order() -> None:
    rig = Rig()
    first, second = rig.submit(IN), rig.submit(IN)
    rig.call(abi.Ioctl.SUBMITURB, first)
    rig.call(abi.Ioctl.SUBMITURB, second)
    assert rig.reap()[1] == first
    assert rig.reap()[1] == second


def test_a_timed_out_urb_stays_in_flight_until_discarded() -> None:
    rig = Rig()
    urb = rig.submit(SetupPacket(0xC1, 4, 0, 0, 8))
    assert rig.call(abi.Ioctl.SUBMITURB, urb) == (0, 0)
    assert rig.reap()[0] == (-1, errno.EAGAIN)
    assert rig.call(abi.Ioctl.DISCARDURB, urb) == (0, 0)
    result, reaped = rig.reap()
    assert (result, reaped) == ((0, 0), urb)
    assert rig.urb(urb).status == -errno.ENOENT  # written late, through the reap argument
    assert rig.call(abi.Ioctl.DISCARDURB, urb) == (-1, errno.EINVAL)


def test_discarding_an_unknown_urb_is_einval() -> None:
    rig = Rig()
    assert rig.call(abi.Ioctl.DISCARDURB, 0xDEAD0) == (-1, errno.EINVAL)


def test_blocking_reap_parks_until_a_urb_completes() -> None:
    rig = Rig()
    urb = rig.submit(SetupPacket(0xC1, 4, 0, 0, 8))
    rig.call(abi.Ioctl.SUBMITURB, urb)
    slot = rig.space.alloc(bytes(8))
    parked = rig.ioctl(abi.Ioctl.REAPURB, slot)
    assert not finished(parked)
    discard = rig.ioctl(abi.Ioctl.DISCARDURB, urb)  # (another thread of the client)
    assert finished(discard)
    assert finished(parked)
    assert rig.results[-2:] == [(0, 0), (0, 0)]
    assert struct.unpack("<Q", rig.space.load(slot, 8))[0] == urb


def test_blocking_reap_with_a_urb_ready_returns_at_once() -> None:
    rig = Rig()
    urb = rig.submit(IN)
    rig.call(abi.Ioctl.SUBMITURB, urb)
    assert rig.reap(abi.Ioctl.REAPURB) == ((0, 0), urb)


def test_urbs_for_other_endpoints_or_types_are_refused() -> None:
    rig = Rig()
    assert rig.call(abi.Ioctl.SUBMITURB, rig.submit(IN, endpoint=0x81)) == (-1, errno.ENOENT)
    bulk = abi.Urb.parse(bytes(rig.space.load(rig.submit(IN), abi.URB_SIZE)))
    bulk_urb = rig.space.alloc(
        abi.Urb(abi.UrbType.BULK, 0, 0, 0, bulk.buffer_pointer, 72, 0, 0, 0, 0, 0, 0).build()
    )
    assert rig.call(abi.Ioctl.SUBMITURB, bulk_urb) == (-1, errno.EINVAL)
    short = rig.space.alloc(abi.Urb(2, 0, 0, 0, bulk.buffer_pointer, 4, 0, 0, 0, 0, 0, 0).build())
    assert rig.call(abi.Ioctl.SUBMITURB, short) == (-1, errno.EINVAL)
    # wLength says 64 but the buffer only has room for 16 data bytes
    small = rig.space.alloc(abi.Urb(2, 0, 0, 0, bulk.buffer_pointer, 24, 0, 0, 0, 0, 0, 0).build())
    assert rig.call(abi.Ioctl.SUBMITURB, small) == (-1, errno.EINVAL)
    assert rig.node.counter.control_transfers == 0


def test_null_pointers_are_efault() -> None:
    rig = Rig()
    for request in (
        abi.Ioctl.SUBMITURB,
        abi.Ioctl.CONTROL,
        abi.Ioctl.CLAIMINTERFACE,
        abi.Ioctl.RELEASEINTERFACE,
        abi.Ioctl.SETINTERFACE,
        abi.Ioctl.SETCONFIGURATION,
        abi.Ioctl.GET_CAPABILITIES,
        abi.Ioctl.CONNECTINFO,
        abi.Ioctl.CLEAR_HALT,
        abi.Ioctl.DISCONNECT_CLAIM,
        abi.Ioctl.CONNINFO_EX,
    ):
        assert rig.call(request, 0) == (-1, errno.EFAULT), abi.name_of(request)
    null_buffer = rig.space.alloc(abi.Urb(2, 0, 0, 0, 0, 16, 0, 0, 0, 0, 0, 0).build())
    assert rig.call(abi.Ioctl.SUBMITURB, null_buffer) == (-1, errno.EFAULT)
    ctrl = abi.CtrlTransfer(0xC1, 1, 0, 0, 8, 100, 0)
    assert rig.call(abi.Ioctl.CONTROL, rig.space.alloc(ctrl.build())) == (-1, errno.EFAULT)


# --------------------------------------------------------------------------- USBDEVFS_CONTROL


def control(
    rig: Rig, setup: SetupPacket, data: bytes = b"", timeout_ms: int = 100
) -> tuple[int, int]:
    buffer = rig.space.alloc(data or bytes(setup.length)) if setup.length else 0
    ctrl = abi.CtrlTransfer(
        setup.request_type, setup.request, setup.value, setup.index, setup.length, timeout_ms,
        buffer,
    )  # fmt: skip
    return rig.space.alloc(ctrl.build()), buffer


def test_synchronous_control_in_and_out() -> None:
    rig = Rig()
    arg, buffer = control(rig, IN)
    assert rig.call(abi.Ioctl.CONTROL, arg) == (64, 0)
    assert bytes(rig.space.load(buffer, 64)) == rig.model.payload
    arg, _ = control(rig, SetupPacket(0x41, 2, 0, 0, 3), b"xyz")
    assert rig.call(abi.Ioctl.CONTROL, arg) == (3, 0)
    assert rig.model.received == [b"xyz"]
    arg, _ = control(rig, SetupPacket(0x41, 2, 0, 0, 0))
    assert rig.call(abi.Ioctl.CONTROL, arg) == (0, 0)


def test_synchronous_control_stall_and_gone() -> None:
    rig = Rig()
    arg, _ = control(rig, SetupPacket(0xC1, 3, 0, 0, 4))
    assert rig.call(abi.Ioctl.CONTROL, arg) == (-1, errno.EPIPE)
    arg, _ = control(rig, SetupPacket(0x41, 5, 0, 0, 0))
    assert rig.call(abi.Ioctl.CONTROL, arg) == (-1, errno.ENODEV)


def test_synchronous_control_times_out_after_the_clients_timeout() -> None:
    rig = Rig()
    arg, _ = control(rig, SetupPacket(0xC1, 4, 0, 0, 4), timeout_ms=20)
    done = rig.ioctl(abi.Ioctl.CONTROL, arg)
    assert not done.done  # the handler returned without waiting
    deadline = time.monotonic() + 5
    while not done.done and time.monotonic() < deadline:
        time.sleep(0.005)
    assert rig.results[-1] == (-1, errno.ETIMEDOUT)


def test_control_without_timeout_waits_until_the_device_leaves() -> None:
    rig = Rig()
    arg, _ = control(rig, SetupPacket(0xC1, 4, 0, 0, 4), timeout_ms=0)
    done = rig.ioctl(abi.Ioctl.CONTROL, arg)
    assert not done.done
    rig.model.disconnect()
    rig.node.device_left()
    assert rig.results[-1] == (-1, errno.ENODEV)


# --------------------------------------------------------------------------- disconnect


def test_a_device_that_left_answers_enodev() -> None:
    rig = Rig()
    ready = rig.submit(IN)
    rig.call(abi.Ioctl.SUBMITURB, ready)
    in_flight = rig.submit(SetupPacket(0xC1, 4, 0, 0, 8))
    rig.call(abi.Ioctl.SUBMITURB, in_flight)
    leaving = rig.submit(SetupPacket(0x41, 5, 0, 0, 0))
    assert rig.call(abi.Ioctl.SUBMITURB, leaving) == (0, 0)
    rig.node.device_left()
    assert rig.call(abi.Ioctl.SUBMITURB, rig.submit(IN)) == (-1, errno.ENODEV)
    assert rig.call(abi.Ioctl.CLAIMINTERFACE, rig.u32(0)) == (-1, errno.ENODEV)
    assert rig.call(abi.Ioctl.RELEASEINTERFACE, rig.u32(0)) == (-1, errno.ENODEV)
    assert rig.call(abi.Ioctl.DISCARDURB, in_flight) == (-1, errno.ENODEV)
    # completed URBs can still be reaped (USBDEVFS_CAP_REAP_AFTER_DISCONNECT)
    reaped = [rig.reap()[1] for _ in range(3)]
    assert reaped == [ready, leaving, in_flight]
    assert rig.urb(ready).status == 0
    assert rig.urb(leaving).status == -errno.ENODEV
    assert rig.urb(in_flight).status == -errno.ESHUTDOWN
    assert rig.reap()[0] == (-1, errno.ENODEV)


def test_parked_reaper_wakes_with_enodev_when_the_device_leaves() -> None:
    rig = Rig()
    parked = rig.ioctl(abi.Ioctl.REAPURB, rig.space.alloc(bytes(8)))
    assert not parked.done
    rig.model.disconnect()
    rig.node.device_left()
    assert rig.results[-1] == (-1, errno.ENODEV)


def test_handles_opened_before_a_reconnect_stay_gone() -> None:
    rig = Rig()
    rig.model.disconnect()
    rig.model.reconnect()
    assert rig.handle.gone
    fresh = rig.node.open()
    assert not fresh.gone
    assert rig.call(abi.Ioctl.SUBMITURB, rig.submit(IN), fresh) == (0, 0)
    assert rig.call(abi.Ioctl.SUBMITURB, rig.submit(IN)) == (-1, errno.ENODEV)


def test_closing_releases_claims_and_parked_requests() -> None:
    rig = Rig()
    other = rig.node.open()
    assert rig.call(abi.Ioctl.CLAIMINTERFACE, rig.u32(0)) == (0, 0)
    assert rig.call(abi.Ioctl.CLAIMINTERFACE, rig.u32(0), other) == (-1, errno.EBUSY)
    parked = rig.ioctl(abi.Ioctl.REAPURB, rig.space.alloc(bytes(8)))
    assert rig.node.open_handles == 2
    rig.node.forget(rig.handle)
    assert parked.done
    assert rig.results[-1] == (-1, errno.ENODEV)
    assert rig.node.open_handles == 1
    assert rig.call(abi.Ioctl.CLAIMINTERFACE, rig.u32(0), other) == (0, 0)


# --------------------------------------------------------------------------- other ioctls


def test_claim_release_and_busy() -> None:
    rig = Rig()
    other = rig.node.open()
    assert rig.call(abi.Ioctl.CLAIMINTERFACE, rig.u32(0)) == (0, 0)
    assert rig.call(abi.Ioctl.CLAIMINTERFACE, rig.u32(0)) == (0, 0)  # again: fine
    assert rig.call(abi.Ioctl.CLAIMINTERFACE, rig.u32(0), other) == (-1, errno.EBUSY)
    assert rig.call(abi.Ioctl.CLAIMINTERFACE, rig.u32(4)) == (-1, errno.ENOENT)
    assert rig.call(abi.Ioctl.RELEASEINTERFACE, rig.u32(0)) == (0, 0)
    claim = rig.space.alloc(struct.pack("<II", 0, 0) + bytes(256))
    assert rig.call(abi.Ioctl.DISCONNECT_CLAIM, claim, other) == (0, 0)
    assert rig.call(abi.Ioctl.CLAIMINTERFACE, rig.u32(0)) == (-1, errno.EBUSY)


def test_set_interface_sends_the_standard_request() -> None:
    rig = Rig()
    assert rig.call(abi.Ioctl.SETINTERFACE, rig.space.alloc(struct.pack("<II", 0, 1))) == (0, 0)
    assert rig.model.alt_settings == {0: 1}
    assert rig.node.counter.by_request == {(0x01, 11): 1}
    bad = rig.space.alloc(struct.pack("<II", 0, 2))
    assert rig.call(abi.Ioctl.SETINTERFACE, bad) == (-1, errno.EINVAL)


def test_set_configuration_is_mirrored() -> None:
    rig = Rig()
    assert rig.call(abi.Ioctl.SETCONFIGURATION, rig.u32(1)) == (0, 0)
    assert rig.model.configuration == 1
    assert rig.call(abi.Ioctl.SETCONFIGURATION, rig.u32(0xFFFFFFFF)) == (0, 0)  # -1: unconfigure
    assert rig.model.configuration == 0
    assert rig.call(abi.Ioctl.SETCONFIGURATION, rig.u32(7)) == (-1, errno.EPIPE)
    assert rig.configs == [1, 0]


def test_capabilities_speed_and_connection_info() -> None:
    rig = Rig()
    caps = rig.u32(0)
    assert rig.call(abi.Ioctl.GET_CAPABILITIES, caps) == (0, 0)
    value = abi.Capability(struct.unpack("<I", rig.space.load(caps, 4))[0])
    assert abi.Capability.REAP_AFTER_DISCONNECT in value
    assert abi.Capability.CONNINFO_EX in value
    assert abi.Capability.MMAP not in value
    assert rig.call(abi.Ioctl.GET_SPEED) == (abi.Speed.FULL, 0)
    info = rig.space.alloc(bytes(24))
    assert rig.call(abi.Ioctl.CONNINFO_EX, info) == (0, 0)
    assert bytes(rig.space.load(info, 24)) == abi.conninfo_ex(24, 2, 7, abi.Speed.FULL, (3, 1))
    small = rig.space.alloc(bytes(8))
    assert rig.call(abi.ioctl_number(2, 32, 8), small) == (0, 0)
    assert struct.unpack("<II", rig.space.load(small, 8)) == (24, 2)
    old = rig.space.alloc(bytes(8))
    assert rig.call(abi.Ioctl.CONNECTINFO, old) == (0, 0)
    assert struct.unpack("<IB", rig.space.load(old, 5)) == (7, 0)


def test_no_kernel_driver_and_unknown_ioctls() -> None:
    rig = Rig()
    assert rig.call(abi.Ioctl.GETDRIVER, rig.space.alloc(bytes(260))) == (-1, errno.ENODATA)
    assert rig.call(abi.Ioctl.IOCTL, rig.space.alloc(bytes(16))) == (-1, errno.ENODATA)
    assert rig.call(abi.Ioctl.BULK, rig.space.alloc(bytes(24))) == (-1, errno.ENOTTY)
    assert rig.call(0x12345678) == (-1, errno.ENOTTY)
    assert rig.call(abi.Ioctl.DROP_PRIVILEGES, rig.u32(0)) == (0, 0)
    assert rig.call(abi.Ioctl.CLEAR_HALT, rig.u32(0x80)) == (0, 0)
    assert rig.call(abi.Ioctl.CLEAR_HALT, rig.u32(0x81)) == (-1, errno.ENOENT)


def test_reset_restores_configuration_and_alt_settings() -> None:
    rig = Rig()
    rig.call(abi.Ioctl.SETCONFIGURATION, rig.u32(1))
    rig.call(abi.Ioctl.SETINTERFACE, rig.space.alloc(struct.pack("<II", 0, 1)))
    assert rig.call(abi.Ioctl.RESET) == (0, 0)
    assert rig.model.resets == 1
    assert (rig.model.configuration, rig.model.alt_settings) == (1, {0: 1})


def test_reset_of_a_device_that_leaves_is_enodev() -> None:
    rig = Rig()
    rig.model.reset = rig.model.disconnect  # type: ignore[method-assign]
    assert rig.call(abi.Ioctl.RESET) == (-1, errno.ENODEV)


# --------------------------------------------------------------------------- the hub


def test_simulated_hub_is_a_plain_hub() -> None:
    from dfuse.sim._usbdevfs_hub import HUB_PRODUCT_ID, HUB_VENDOR_ID, SimulatedHub

    hub = SimulatedHub(bus=1, address=4, port_numbers=(2,))
    device = hub.device_descriptor()
    assert len(device) == 18
    assert device[4] == 0x09  # bDeviceClass: hub
    assert struct.unpack_from("<HH", device, 8) == (HUB_VENDOR_ID, HUB_PRODUCT_ID)
    config = hub.configuration_descriptor(0)
    assert struct.unpack_from("<H", config, 2)[0] == len(config)
    assert hub.interfaces() == [(0, 0)]
    node = DeviceNode(hub)
    handle = node.open()
    space = AddressSpace()
    results: list[tuple[int, int]] = []

    def transfer(setup: SetupPacket) -> tuple[int, bytes]:
        buffer = space.alloc(bytes(max(setup.length, 1)))
        ctrl = abi.CtrlTransfer(
            setup.request_type, setup.request, setup.value, setup.index, setup.length, 100, buffer
        )
        arg = FakeMemory.argument(space, space.alloc(ctrl.build()))
        handle.handle(abi.Ioctl.CONTROL, arg, Completion(lambda r, e: results.append((r, e))))
        return results[-1][0], bytes(space.load(buffer, setup.length))

    n, raw = transfer(SetupPacket(0x80, 6, 0x0302, 0x0409, 255))
    assert raw[2:n].decode("utf-16-le") == "simulated USB hub"
    assert transfer(SetupPacket(0xA0, 6, 0x2900, 0, 9))[0] == -1  # GET_HUB_DESCRIPTOR stalls
    assert results[-1] == (-1, errno.EPIPE)
    with pytest.raises(Stall):
        hub.configuration_descriptor(1)


def test_a_handle_from_before_a_power_loss_gets_enodev_from_the_rebooted_board() -> None:
    """The bridge passes its handle's enumeration to the model, which checks it after
    catching up with the clock: the board rebooting during that catch-up is not missed."""
    from dfuse.sim import Event, Fault, FaultKind, Stm32F411

    fault = Fault(FaultKind.POWER_LOSS, Event.ERASE, nth=1, progress=0.3, reconnect_after=0.05)
    model = Stm32F411(faults=[fault])
    node = DeviceNode(model, on_configuration=lambda _value: None)
    handle = node.open()
    space = AddressSpace()
    results: list[tuple[int, int]] = []

    def call(setup: SetupPacket, data: bytes = b"") -> tuple[int, int]:
        buffer = space.alloc(data or bytes(setup.length)) if setup.length else 0
        ctrl = abi.CtrlTransfer(
            setup.request_type, setup.request, setup.value, setup.index, setup.length, 5000,
            buffer,
        )  # fmt: skip
        done = Completion(lambda r, e: results.append((r, e)))
        handle.handle(
            abi.Ioctl.CONTROL, FakeMemory.argument(space, space.alloc(ctrl.build())), done
        )
        assert done.done
        return results[-1]

    assert call(SetupPacket(0x01, 11, 0, 0, 0)) == (0, 0)  # SET_INTERFACE alt 0
    erase = bytes([0x41, 0x00, 0x00, 0x00, 0x08])
    assert call(SetupPacket(0x21, 1, 0, 0, 5), erase) == (5, 0)  # DNLOAD: erase sector 0
    assert call(SetupPacket(0xA1, 3, 0, 0, 6))[0] == 6  # GETSTATUS: dfuDNBUSY, erase starts
    assert not handle.gone  # nothing has happened yet on the board's clock
    model.clock.sleep(2.0)  # power lost ~30% into the erase, the board is back 50 ms later
    assert call(SetupPacket(0xA1, 3, 0, 0, 6)) == (-1, errno.ENODEV)
    assert model.connected
    assert model.boots == 2
