"""An external USB hub, so that boards on multi-level ports (``1-2.3``) have parents.

libusb builds a device's port path from its ancestors in sysfs: a board at
``port_numbers=(2, 3)`` shows as ``1-2.3`` only if a hub ``1-2`` exists. The
usbdevfs bridge publishes one of these per intermediate port. It is bus
infrastructure with no behaviour of its own: descriptors, strings, standard
requests (from :class:`~dfuse.sim.usbmodel.UsbDeviceModel`); hub class requests
stall.
"""

from __future__ import annotations

import struct

from dfuse.sim.usbmodel import SetupPacket, Stall, UsbDeviceModel

__all__ = ["HUB_PRODUCT_ID", "HUB_VENDOR_ID", "SimulatedHub"]

HUB_VENDOR_ID = 0x1209  # pid.codes
HUB_PRODUCT_ID = 0x0001  # pid.codes "Test PID"
_HUB_CLASS = 0x09


class SimulatedHub(UsbDeviceModel):
    """A full-speed, self-powered hub with 7 ports at ``port_numbers`` on ``bus``."""

    def device_descriptor(self) -> bytes:
        """Hub class at device level, EP0 64 bytes, one configuration."""
        return struct.pack(
            "<BBHBBBBHHHBBBB",
            18,
            0x01,
            0x0110,
            _HUB_CLASS,
            0,
            0,
            64,
            HUB_VENDOR_ID,
            HUB_PRODUCT_ID,
            0x0100,
            1,
            2,
            0,
            1,
        )

    def configuration_descriptor(self, index: int = 0) -> bytes:
        """One interface (class 9) with its status-change interrupt endpoint."""
        if index != 0:
            raise Stall(f"no configuration descriptor {index}")
        interface = bytes((9, 0x04, 0, 0, 1, _HUB_CLASS, 0, 0, 0))
        endpoint = bytes((7, 0x05, 0x81, 0x03, 1, 0, 255))
        body = interface + endpoint
        return struct.pack("<BBHBBBBB", 9, 0x02, 9 + len(body), 1, 1, 0, 0xE0, 0) + body

    def strings(self) -> dict[int, str]:
        """Manufacturer and product."""
        return {1: "dfuse", 2: "simulated USB hub"}

    def handle_class_request(self, setup: SetupPacket, data: bytes, timeout_ms: int) -> bytes:
        """Hub class requests are not emulated: they stall."""
        raise Stall(f"hub class request 0x{setup.request:02X} is not emulated")
