"""Known quirks of real STM32/GD32 DFU bootloaders, as simulator switches.

Hosts must cope with these (PROTOCOL.md, "Quirks of real bootloaders"). Each is a
field of :class:`Quirks`; presets name the parts they come from.

>>> STM32F405_QUIRKS.mass_erase_poll_timeout_ms
100
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "GD32_QUIRKS",
    "NO_QUIRKS",
    "STM32C0_QUIRKS",
    "STM32F405_QUIRKS",
    "STM32H7_QUIRKS",
    "Quirks",
]


@dataclass(frozen=True, slots=True)
class Quirks:
    """Deviations from the documented bootloader behaviour.

    Attributes:
        mass_erase_poll_timeout_ms: report this bwPollTimeout for a mass erase instead of
            its real duration (some STM32F405 ROMs: far too short). ``None``: honest.
        busy_past_poll_timeout: the device answers GETSTATUS while still busy with
            dfuDNBUSY and a fresh poll timeout (STM32H7 rev V) instead of holding the
            request until the operation ends; the first poll timeout it reports is
            ``busy_report_fraction`` of the real duration.
        busy_report_fraction: see ``busy_past_poll_timeout``.
        leave_needs_set_address: a zero-length DNLOAD only manifests when the request
            right before it was a Set Address (STM32C0); otherwise its GETSTATUS answers
            dfuERROR (errUNKNOWN: estimate) and the device does not leave.
        leave_without_status: the device leaves right after the zero-length DNLOAD and
            never answers the GETSTATUS (GD32).
        first_status_error: when the device boots into dfuERROR/errFIRMWARE: ``"never"``,
            ``"no_application"`` (no valid application in flash) or ``"always"``, entered
            from power-on.
        first_status_error_on_reset: the same rule when the ROM is entered by a reset with
            the boot pins set (the board's ``entry="reset"``); ``None``: as
            ``first_status_error``.
        stall_getstatus_while_busy: a GETSTATUS that arrives while an operation still runs
            is answered at once (dfuDNBUSY, the time left) instead of held, and with
            probability ``busy_stall_probability`` stalled instead (the state stays
            dfuDNBUSY): L4-class ROMs ("most of the time it will report dfuDNBUSY ... but
            sometimes, seemingly randomly, it will stall the USB pipe", dfu-util c15ee60).
        busy_status_held: with ``stall_getstatus_while_busy``, a GETSTATUS that is not
            stalled is held until the operation ends, as other ROMs hold it, instead of
            answered at once (STM32F072, openmv/openmv#1508: pydfu's immediate second
            GETSTATUS after a page erase answered dfuDNLOAD-IDLE, after a write it
            stalled).
        busy_stall_probability: see ``stall_getstatus_while_busy`` (estimate; the draws
            come from the board's seeded generator).
        stall_dnload_while_busy: a DNLOAD that arrives while an operation still runs is
            stalled (the operation goes on) instead of held.
        stall_clrstatus_outside_error: CLRSTATUS outside dfuERROR stalls (DFU 1.1); when
            False it is answered and moves the device to dfuERROR/errUNKNOWN, as ST's ROMs
            built on ST's DFU library do.
        wedged_erase_from: a sector erase at or above this address leaves the device in
            dfuDNBUSY for good (GETSTATUS keeps answering busy); the erase itself is done.
            CLRSTATUS then answers dfuERROR/errUNKNOWN and a second one dfuIDLE
            (STM32H743 rev V, bank 2).
        set_address_skips_busy: Set Address answers its first GETSTATUS with dfuDNLOAD-IDLE
            at once, without dfuDNBUSY (STM32U5).
        string_length_claimed: ``(index, bLength)``: that string descriptor's first byte
            claims ``bLength`` while only the string is sent (STM32F429xG: 166 for 112).
        over_reported_layout: erases and writes that the alt string allows but that lie
            beyond the physical flash fail with errTARGET (GD32VF103: estimate).
    """

    mass_erase_poll_timeout_ms: int | None = None
    busy_past_poll_timeout: bool = False
    busy_report_fraction: float = 0.5
    leave_needs_set_address: bool = False
    leave_without_status: bool = False
    first_status_error: str = "never"
    first_status_error_on_reset: str | None = None
    stall_getstatus_while_busy: bool = False
    busy_status_held: bool = False
    busy_stall_probability: float = 0.25
    stall_dnload_while_busy: bool = False
    stall_clrstatus_outside_error: bool = True
    wedged_erase_from: int | None = None
    set_address_skips_busy: bool = False
    over_reported_layout: bool = False
    string_length_claimed: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        if self.mass_erase_poll_timeout_ms is not None and self.mass_erase_poll_timeout_ms < 0:
            raise ValueError("mass_erase_poll_timeout_ms must not be negative")
        if self.first_status_error not in ("never", "no_application", "always"):
            raise ValueError(
                "first_status_error must be never, no_application or always, "
                f"got {self.first_status_error!r}"
            )
        if self.first_status_error_on_reset not in (None, "never", "no_application", "always"):
            raise ValueError(
                "first_status_error_on_reset must be None, never, no_application or always, "
                f"got {self.first_status_error_on_reset!r}"
            )
        if not 0.0 <= self.busy_stall_probability <= 1.0:
            raise ValueError(
                f"busy_stall_probability must be within 0..1, got {self.busy_stall_probability}"
            )
        if not 0.0 < self.busy_report_fraction <= 1.0:
            raise ValueError(
                f"busy_report_fraction must be within (0, 1], got {self.busy_report_fraction}"
            )


#: The documented behaviour (STM32F411).
NO_QUIRKS = Quirks()
#: Some STM32F405 ROMs: mass-erase poll timeout far shorter than the erase.
STM32F405_QUIRKS = Quirks(mass_erase_poll_timeout_ms=100)
#: STM32H7 rev V: stays dfuDNBUSY past the reported poll timeout.
STM32H7_QUIRKS = Quirks(busy_past_poll_timeout=True)
#: STM32C0: manifests only after a Set Address right before the zero-length DNLOAD.
STM32C0_QUIRKS = Quirks(leave_needs_set_address=True)
#: GD32: leaves without answering the GETSTATUS after the zero-length DNLOAD.
GD32_QUIRKS = Quirks(leave_without_status=True)
