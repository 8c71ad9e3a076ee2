"""DFU 1.1 and DfuSe constants: requests, states, status codes (USB DFU 1.1 §6, AN3156).

Each enum member carries the specification's name (``member.name`` is the spec's
spelling with ``-`` written as ``_``) and a one-line ``description``.
"""

from __future__ import annotations

from enum import IntEnum

__all__ = [
    "DFU_FUNCTIONAL_DESCRIPTOR_TYPE",
    "DFU_INTERFACE_CLASS",
    "DFU_INTERFACE_SUBCLASS",
    "DFU_PROTOCOL_DFU_MODE",
    "DFU_PROTOCOL_RUNTIME",
    "REQUEST_TYPE_CLASS_INTERFACE_IN",
    "REQUEST_TYPE_CLASS_INTERFACE_OUT",
    "DfuseCommand",
    "Request",
    "State",
    "Status",
]

DFU_INTERFACE_CLASS = 0xFE
DFU_INTERFACE_SUBCLASS = 0x01
DFU_PROTOCOL_RUNTIME = 0x01
DFU_PROTOCOL_DFU_MODE = 0x02
DFU_FUNCTIONAL_DESCRIPTOR_TYPE = 0x21

#: bmRequestType for class requests to the interface, host → device.
REQUEST_TYPE_CLASS_INTERFACE_OUT = 0x21
#: bmRequestType for class requests to the interface, device → host.
REQUEST_TYPE_CLASS_INTERFACE_IN = 0xA1


class _Described(IntEnum):
    """An IntEnum whose members carry a human description."""

    description: str

    def __new__(cls, value: int, description: str = "") -> _Described:
        obj = int.__new__(cls, value)
        obj._value_ = value
        obj.description = description
        return obj


class Request(_Described):
    """DFU class-specific requests (bRequest)."""

    DETACH = 0, "switch from run-time to DFU mode"
    DNLOAD = 1, "download a block (or a DfuSe command with block 0)"
    UPLOAD = 2, "upload a block (block 0: DfuSe command list)"
    GETSTATUS = 3, "read status, poll timeout and state"
    CLRSTATUS = 4, "clear an error status (dfuERROR → dfuIDLE)"
    GETSTATE = 5, "read the current state"
    ABORT = 6, "abort the current transfer (→ dfuIDLE)"


class State(_Described):
    """DFU device states (bState)."""

    appIDLE = 0, "application running, idle"
    appDETACH = 1, "application received DETACH, waiting for reset"
    dfuIDLE = 2, "DFU mode, idle"
    dfuDNLOAD_SYNC = 3, "block received, waiting for GETSTATUS"
    dfuDNBUSY = 4, "programming a block"
    dfuDNLOAD_IDLE = 5, "download in progress, waiting for the next block"
    dfuMANIFEST_SYNC = 6, "download complete, waiting for GETSTATUS to manifest"
    dfuMANIFEST = 7, "manifesting the new firmware"
    dfuMANIFEST_WAIT_RESET = 8, "manifested, waiting for a USB reset"
    dfuUPLOAD_IDLE = 9, "upload in progress, waiting for the next request"
    dfuERROR = 10, "an error occurred; awaiting CLRSTATUS"


class Status(_Described):
    """DFU status codes (bStatus), with the specification's descriptions."""

    OK = 0x00, "no error condition is present"
    errTARGET = 0x01, "file is not targeted for use by this device"
    errFILE = 0x02, "file is for this device but fails some vendor-specific verification test"
    errWRITE = 0x03, "device is unable to write memory"
    errERASE = 0x04, "memory erase function failed"
    errCHECK_ERASED = 0x05, "memory erase check failed"
    errPROG = 0x06, "program memory function failed"
    errVERIFY = 0x07, "programmed memory failed verification"
    errADDRESS = 0x08, "cannot program memory due to received address that is out of range"
    errNOTDONE = 0x09, "received DNLOAD with wLength = 0, but device does not think it has all data"
    errFIRMWARE = 0x0A, "device's firmware is corrupt; it cannot return to run-time operations"
    errVENDOR = 0x0B, "iString indicates a vendor-specific error"
    errUSBR = 0x0C, "device detected unexpected USB reset signaling"
    errPOR = 0x0D, "device detected unexpected power on reset"
    errUNKNOWN = 0x0E, "something went wrong, but the device does not know what it was"
    errSTALLEDPKT = 0x0F, "device stalled an unexpected request"


class DfuseCommand(_Described):
    """DfuSe commands: the first byte of a DNLOAD with wBlockNum 0 (AN3156 §6)."""

    GET = 0x00, "list the supported commands"
    SET_ADDRESS_POINTER = 0x21, "set the address pointer for the next read/write"
    ERASE = 0x41, "erase the page holding an address, or mass erase without one"
    READ_UNPROTECT = 0x92, "remove read protection (mass-erases the flash)"
