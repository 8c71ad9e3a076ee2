"""The plain DFU 1.1 device: sequential blocks, manifestation, short-frame uploads."""

from __future__ import annotations

import pytest
import usb.core

from dfuse.protocol.constants import State, Status
from dfuse.protocol.descriptors import FunctionalDescriptor
from dfuse.sim import PlainDfuDevice, SimBackend


def open_plain(model: PlainDfuDevice) -> tuple[usb.core.Device, SimBackend]:
    backend = SimBackend([model])
    dev = usb.core.find(idVendor=0x1209, idProduct=0x0001, backend=backend)
    assert dev is not None
    return dev, backend


def status(dev: usb.core.Device) -> tuple[int, int, int]:
    r = bytes(dev.ctrl_transfer(0xA1, 3, 0, 0, 6, 5000))
    return r[0], r[1] | r[2] << 8 | r[3] << 16, r[4]


def download(dev: usb.core.Device, backend: SimBackend, image: bytes, size: int) -> None:
    for n, i in enumerate(range(0, len(image), size)):
        dev.ctrl_transfer(0x21, 1, n, 0, image[i : i + size])
        s, poll, state = status(dev)
        assert (s, state) == (0, State.dfuDNBUSY)
        backend.clock.sleep(poll / 1000)
        assert status(dev)[2] == State.dfuDNLOAD_IDLE
    dev.ctrl_transfer(0x21, 1, len(image) // size + 1, 0, None)


def test_descriptor_is_plain_dfu() -> None:
    dev, _ = open_plain(PlainDfuDevice())
    fd = FunctionalDescriptor.parse(bytes(dev[0][(0, 0)].extra_descriptors))
    assert fd.dfu_version == 0x0100
    assert not fd.is_dfuse
    assert fd.transfer_size == 1024


def test_download_manifest_reset_runs_app() -> None:
    model = PlainDfuDevice(size=8192)
    dev, backend = open_plain(model)
    image = bytes(range(256)) * 10  # 2560 bytes: blocks 0, 1 and a short 2
    download(dev, backend, image, 1024)
    assert status(dev)[2] == State.dfuMANIFEST
    assert status(dev)[2] == State.dfuMANIFEST_WAIT_RESET
    assert model.peek(0x08000000, len(image)) == image
    assert model.peek(0x08000000 + len(image), 4) == b"\xff" * 4
    with pytest.raises(usb.core.USBError):
        dev.reset()
    assert model.app_started
    assert model.manifestations == 1


def test_manifestation_tolerant_returns_to_idle() -> None:
    model = PlainDfuDevice(manifestation_tolerant=True)
    dev, backend = open_plain(model)
    download(dev, backend, b"\x01" * 100, 1024)
    assert status(dev)[2] == State.dfuMANIFEST
    assert status(dev)[2] == State.dfuIDLE


def test_upload_ends_with_a_short_frame() -> None:
    model = PlainDfuDevice(size=4096)
    model.poke(0x08000000, b"\xab" * 4096)
    dev, _ = open_plain(model)
    got = b""
    for block in range(10):
        chunk = bytes(dev.ctrl_transfer(0xA1, 2, block, 0, 1000))
        got += chunk
        if len(chunk) < 1000:
            break
    assert got == b"\xab" * 4096
    assert model.state is State.dfuIDLE


def test_leave_in_idle_stalls_and_overflow_is_erraddress() -> None:
    model = PlainDfuDevice(size=1024)
    dev, backend = open_plain(model)
    with pytest.raises(usb.core.USBError):
        dev.ctrl_transfer(0x21, 1, 0, 0, None)  # zero-length DNLOAD in dfuIDLE
    dev.ctrl_transfer(0x21, 4, 0, 0, None)
    dev.ctrl_transfer(0x21, 1, 0, 0, b"\x00" * 1024)
    status(dev)
    backend.clock.sleep(1.0)
    status(dev)
    dev.ctrl_transfer(0x21, 1, 1, 0, b"\x00")
    status(dev)
    assert status(dev)[:3:2] == (Status.errADDRESS, State.dfuERROR)
