"""The exception hierarchy: one root, messages that say expected/found/where."""

from __future__ import annotations

import pytest

import dfuse
from dfuse import errors


def test_every_error_derives_from_root() -> None:
    for name in errors.__all__:
        cls = getattr(errors, name)
        assert issubclass(cls, dfuse.DfuseError), name


def test_file_format_error_message_names_offset_expected_found() -> None:
    err = dfuse.SignatureError("bad prefix signature", offset=0, expected=b"DfuSe", found=b"DfuXe")
    text = str(err)
    assert "offset 0" in text
    assert "b'DfuSe'" in text
    assert "b'DfuXe'" in text
    assert err.offset == 0


def test_crc_error_carries_both_crcs() -> None:
    err = dfuse.CrcMismatchError(stored=0x1234, computed=0xABCD, offset=12)
    assert err.stored == 0x1234
    assert err.computed == 0xABCD
    assert "0x0000ABCD" in str(err)
    assert "0x00001234" in str(err)
    assert isinstance(err, dfuse.FileFormatError)


def test_device_status_error_describes_status_and_action() -> None:
    err = dfuse.DeviceStatusError(
        dfuse.Status.errERASE, dfuse.State.dfuERROR, action="erasing sector 5 at 0x08020000"
    )
    assert str(err) == (
        "erasing sector 5 at 0x08020000: errERASE — memory erase function failed "
        "(device state dfuERROR)"
    )
    assert err.status is dfuse.Status.errERASE


def test_layout_error_position() -> None:
    err = dfuse.LayoutError(
        "bad multiplier", text="@x/0x0/1*1Qg", position=10, expected="B, K, M or ' '", found="Q"
    )
    assert "position 10" in str(err)
    assert err.position == 10


@pytest.mark.parametrize("value", [dfuse.VirtualClock(), dfuse.RealClock()])
def test_clocks_satisfy_protocol(value: object) -> None:
    assert isinstance(value, dfuse.Clock)


def test_virtual_clock_advances_without_sleeping() -> None:
    clock = dfuse.VirtualClock()
    clock.sleep(1.5)
    clock.sleep(-3)
    assert clock.now == 1.5
    with pytest.raises(ValueError, match="backwards"):
        clock.advance(-1)
