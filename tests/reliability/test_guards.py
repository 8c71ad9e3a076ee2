"""Guards: unsafe operations are refused before any USB traffic.

Each test opens a simulated STM32F411, notes how many control requests reached it,
attempts the unsafe operation and checks that it was refused (SafetyError) and that
not a single request more reached the device, and that its memory is unchanged.

Guards that cannot refuse before any traffic (a locked OTP block must be read first) are
checked to refuse before anything is *written* (no data block sent).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from dfuse.device import DfuDevice
from dfuse.errors import SafetyError
from dfuse.file import DfuFile, DfuSeFile, Element, Target
from dfuse.optionbytes import OptionBytes, RdpLevel
from dfuse.sim import SimBackend, Stm32F411

BASE = 0x0800_0000
OPTION_BYTES = 0x1FFF_C000
OTP = 0x1FFF_7800
OTP_LOCKS = 0x1FFF_7A00


@dataclass
class Board:
    """An opened simulated board and a way to count the requests that reach it."""

    chip: Stm32F411
    backend: SimBackend
    dev: DfuDevice

    def requests(self) -> int:
        """Control requests the device has received so far."""
        return len(self.chip.request_log)

    def snapshot(self) -> tuple[bytes, bytes, bytes]:
        """Flash, option bytes and OTP as they are now."""
        return (
            self.chip.peek(BASE, 512 * 1024),
            self.chip.option_bytes,
            self.chip.peek(OTP, 528),
        )

    def refuses(self, action: Callable[[], object], match: str | None = None) -> SafetyError:
        """Run ``action``; it must raise SafetyError with no request sent, nothing changed."""
        before, memory = self.requests(), self.snapshot()
        with pytest.raises(SafetyError, match=match) as info:
            action()
        assert self.requests() == before, "a refused operation reached the device"
        assert self.snapshot() == memory
        return info.value


@pytest.fixture
def board() -> Iterator[Board]:
    chip = Stm32F411(serial="GUARDS")
    chip.poke(BASE, bytes(range(256)) * 16)
    backend = SimBackend([chip])
    with DfuDevice.open(backend=backend) as dev:
        yield Board(chip, backend, dev)


def _file(
    alt: int, address: int, data: bytes, *, vendor_id: int = 0xFFFF, product_id: int = 0xFFFF
) -> DfuSeFile:
    target = Target(alt, "t", [Element(address, data)])
    return DfuSeFile([target], vendor_id=vendor_id, product_id=product_id)


# --------------------------------------------------------------------------- writes


@pytest.mark.parametrize(
    ("address", "length"),
    [
        (BASE + 512 * 1024, 4),  # just past the flash
        (BASE + 512 * 1024 - 2, 4),  # straddling its end
        (BASE - 4, 8),  # straddling its start
        (0x1FFF_0000, 16),  # system memory (ROM): in no layout
        (0x2000_0000, 16),  # SRAM
        (0x0000_0000, 4),  # the boot alias
    ],
)
def test_writes_outside_writable_sectors_are_refused(
    board: Board, address: int, length: int
) -> None:
    board.refuses(lambda: board.dev.download(b"\x00" * length, address=address))
    board.refuses(lambda: board.dev.download(_file(0, address, b"\x00" * length)))
    board.refuses(lambda: board.dev.plan(b"\x00" * length, address=address))


def test_one_bad_element_refuses_the_whole_file(board: Board) -> None:
    good = Element(BASE, b"\x00" * 64)
    bad = Element(BASE + 512 * 1024, b"\x00" * 4)
    image = DfuSeFile([Target(0, "t", [good, bad])])
    board.refuses(lambda: board.dev.download(image), match="outside")


def test_erasing_a_sector_that_is_not_erasable_is_refused(board: Board) -> None:
    board.dev.select_alt(3)  # the device feature area: read+write, not erasable
    board.refuses(lambda: board.dev.erase([0xFFFF0000]), match="not erasable")
    board.refuses(lambda: board.dev.erase([0x0800_0000]), match="no sector")


# --------------------------------------------------------------------------- device IDs


@pytest.mark.parametrize(("vid", "pid"), [(0x1234, 0xDF11), (0x0483, 0x5740), (0x1209, 0x0001)])
def test_a_file_for_another_device_is_refused(board: Board, vid: int, pid: int) -> None:
    image = _file(0, BASE, b"\x00" * 16, vendor_id=vid, product_id=pid)
    error = board.refuses(lambda: board.dev.download(image), match="force=True")
    assert f"{vid:04x}:{pid:04x}" in str(error)
    plain = DfuFile(b"\x00" * 16, vendor_id=vid, product_id=pid)
    board.refuses(lambda: board.dev.download(plain, address=BASE))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        board.dev.download(image, force=True)
    assert board.chip.peek(BASE, 16) == b"\x00" * 16


# --------------------------------------------------------------------------- read protection


def test_read_unprotect_needs_confirmation(board: Board) -> None:
    board.refuses(lambda: board.dev.read_unprotect(), match="confirm=True")
    board.refuses(lambda: board.dev.read_unprotect(confirm=False))


def test_rdp_level_2_needs_its_own_flag_to_build() -> None:
    current = OptionBytes.parse(Stm32F411().option_bytes)
    with pytest.raises(ValueError, match="allow_level_2"):
        current.with_rdp(2)
    assert current.with_rdp(2, allow_level_2=True).rdp_level is RdpLevel.LEVEL_2


def _rdp2(board: Board) -> bytes:
    raw = bytearray(board.chip.option_bytes)
    raw[1] = 0xCC  # RDP level 2: permanent
    return bytes(raw)


def test_option_bytes_in_a_file_are_refused_unless_asked(board: Board) -> None:
    current = OptionBytes.parse(board.chip.option_bytes)
    image = _file(1, OPTION_BYTES, current.with_write_protection([0]).to_bytes())
    board.refuses(lambda: board.dev.download(image), match="allow_option_bytes=True")
    # the same bytes sent raw to the option-byte alternate setting
    board.dev.select_alt(1)
    raw = current.with_write_protection([0]).to_bytes()
    board.refuses(lambda: board.dev.download(raw, address=OPTION_BYTES))
    board.refuses(
        lambda: board.dev.download(raw[:8], address=OPTION_BYTES, allow_option_bytes=True)
    )


def test_option_bytes_in_a_file_are_written_when_asked(board: Board) -> None:
    current = OptionBytes.parse(board.chip.option_bytes)
    image = _file(1, OPTION_BYTES, current.with_write_protection([7]).to_bytes())
    board.dev.download(image, allow_option_bytes=True)
    assert board.chip.is_write_protected(7)
    assert not board.chip.is_write_protected(0)


def test_rdp_level_2_in_a_file_needs_its_own_flag(board: Board) -> None:
    image = _file(1, OPTION_BYTES, _rdp2(board))
    board.refuses(lambda: board.dev.download(image), match="allow_option_bytes")
    board.refuses(lambda: board.dev.download(image, allow_option_bytes=True), match="level 2")
    board.refuses(
        lambda: board.dev.download(image, allow_option_bytes=True, force=True), match="level 2"
    )
    assert board.chip.rdp_level == 0


def test_rdp_level_2_apis_need_their_own_flag(board: Board) -> None:
    level2 = OptionBytes.parse(_rdp2(board))
    dev = board.dev
    board.refuses(lambda: dev.write_option_bytes(level2), match="level 2")
    board.refuses(lambda: dev.change_option_bytes(level2), match="allow_permanent_rdp2")
    board.refuses(lambda: dev.change_option_bytes(level2, confirm=True), match="level 2")
    board.refuses(lambda: dev.set_read_protection(2), match="allow_permanent_rdp2")
    board.refuses(lambda: dev.set_read_protection(2, confirm=True), match="level 2")
    assert board.chip.rdp_level == 0


def test_write_option_bytes_needs_the_dedicated_level_2_flag(board: Board) -> None:
    """``confirm`` (which allows lowering 1 -> 0) is not enough for level 2."""
    level2 = OptionBytes.parse(_rdp2(board))
    board.refuses(lambda: board.dev.write_option_bytes(level2, confirm=True), match="level 2")
    assert board.chip.rdp_level == 0


def test_otp_in_a_file_is_refused_unless_asked(board: Board) -> None:
    board.refuses(lambda: board.dev.download(_file(2, OTP, b"\x00" * 32)), match="allow_otp")


def _dnloads(board: Board) -> int:
    """Data blocks sent (DNLOAD wBlockNum >= 2): reading needs Set Address commands only."""
    return sum(1 for r in board.chip.request_log if r.name == "DNLOAD" and r.setup.value >= 2)


def test_writing_a_locked_otp_block_is_refused_before_writing(board: Board) -> None:
    board.chip.poke(OTP_LOCKS, b"\x00")  # block 0 locked
    before, memory = _dnloads(board), board.snapshot()
    with pytest.raises(SafetyError, match="locked"):
        board.dev.download(_file(2, OTP, b"\x00" * 32), allow_otp=True)
    with pytest.raises(SafetyError, match="locked"):
        board.dev.write_otp(0, b"\x00" * 32)
    # the lock bytes must be read from the device, but nothing is written
    assert _dnloads(board) == before
    assert board.snapshot() == memory


def test_otp_bits_cannot_go_back_to_one(board: Board) -> None:
    board.chip.poke(OTP + 32, b"\x0f" * 32)  # block 1 partly programmed
    before, memory = _dnloads(board), board.snapshot()
    with pytest.raises(SafetyError, match="from 1 to 0"):
        board.dev.write_otp(1, b"\xff" * 32)
    with pytest.raises(SafetyError):
        board.dev.download(_file(2, OTP + 32, b"\xf0" * 32), allow_otp=True)
    assert _dnloads(board) == before
    assert board.snapshot() == memory


def test_locking_an_otp_block_needs_confirmation(board: Board) -> None:
    dev = board.dev
    board.refuses(lambda: dev.download(_file(2, OTP_LOCKS, b"\x00"), allow_otp=True))
    board.refuses(lambda: dev.lock_otp(3), match="confirm=True")
    board.refuses(lambda: dev.write_otp(3, b"\x00" * 32, lock=True), match="confirm=True")
    dev.lock_otp(3, confirm=True)
    assert board.chip.peek(OTP_LOCKS + 3, 1) == b"\x00"


def test_the_guards_do_not_block_a_normal_download(board: Board) -> None:
    before = board.requests()
    board.dev.download(b"\x42" * 100, address=BASE)
    assert board.requests() > before
    assert board.chip.peek(BASE, 100) == b"\x42" * 100
