"""The same command lines through dfu-util 0.11 and dfuse-util: same exit status, same
memory (the whole simulated flash and the option bytes, by ``peek``), same ``-U`` files.

dfu-util drives a simulated STM32F411 through the usbdevfs bridge (umockdev); dfuse-util
drives another one, set up the same way, through the pyusb simulator backend.
"""

from __future__ import annotations

import io
import random
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from dfuse.clock import Clock
from dfuse.compat import main
from dfuse.file import DfuFile, DfuSeFile, Element, Target
from dfuse.sim import PlainDfuDevice, Quirks, Stm32F411, Timing
from tests.compat.conftest import (
    FLASH,
    Outcome,
    needs_dfu_util_bridge,
    run_dfu_util,
    run_dfuse_util,
)

pytestmark = [pytest.mark.umockdev, needs_dfu_util_bridge]

Both = Callable[..., tuple[Outcome, Outcome]]

APP = random.Random(16).randbytes(20_000)
OLD = random.Random(61).randbytes(0x30000)
INTERNAL_FLASH = "@Internal Flash  /0x08000000/04*016Kg,01*064Kg,03*128Kg"


def _old_firmware(board: Stm32F411) -> None:
    board.poke(FLASH, OLD)


def _same(ref: Outcome, ours: Outcome) -> None:
    assert ours.status == ref.status, f"dfu-util:\n{ref.output}\ndfuse-util:\n{ours.output}"
    assert ours.flash == ref.flash
    assert ours.board.option_bytes == ref.board.option_bytes


@pytest.mark.parametrize(
    "args",
    [
        ["-a", "0", "-s", "0x08000000:leave", "-D", "app.bin"],
        ["-a", "0", "-s", "0x08004000", "-D", "app.bin"],  # inside old firmware: sector erases
        ["--alt", INTERNAL_FLASH, "--dfuse-address", "0x0801fff0", "--download", "app.bin"],
        ["-d", "0483:df11", "-a0", "-s", "0x08000000", "-D", "app.bin"],
        [
            "-d",
            ",0483:df11",
            "-S",
            "3276347F3034",
            "-p",
            "1-1",
            "-a",
            "0",
            "-s",
            "134250496",
            "-D",
            "app.bin",
        ],
    ],
)
def test_raw_download_writes_the_same_memory(both: Both, args: list[str]) -> None:
    ref, ours = both(args, {"app.bin": APP}, _old_firmware)
    assert ref.status == 0, ref.output
    _same(ref, ours)


@pytest.mark.parametrize(
    ("args", "name"),
    [
        (["-a", "0", "-s", "0x08000000:65536", "-U", "out.bin"], "out.bin"),
        (["-a", "0", "-s", "0x08010000", "-U", "seg.bin"], "seg.bin"),  # to the segment's end
        (["-a", "0", "-U", "default.bin"], "default.bin"),  # no address: 16 KiB
        (["-a", "0", "-s", "0x08001000:0x100:leave", "-U", "leave.bin"], "leave.bin"),
    ],
)
def test_upload_writes_the_same_file(both: Both, args: list[str], name: str) -> None:
    ref, ours = both(args, {}, _old_firmware)
    assert ref.status == 0, ref.output
    _same(ref, ours)
    assert ours.file(name) == ref.file(name)
    assert ref.file(name)


def test_a_dfu_suffix_is_stripped_and_its_ids_checked(both: Both) -> None:
    args = ["-a", "0", "-s", "0x08000000", "-D", "app.bin"]
    ours_suffix = DfuFile(APP, vendor_id=0x0483, product_id=0xDF11).to_bytes()
    ref, ours = both(args, {"app.bin": ours_suffix}, _old_firmware)
    assert ref.status == 0, ref.output
    _same(ref, ours)
    assert ours.flash[: len(APP) + 16] == APP + b"\xff" * 16  # the suffix is not written
    foreign = DfuFile(APP, vendor_id=0x1234, product_id=0x5678).to_bytes()
    # dfu-util takes the file's IDs as the run-time IDs to match: no conflict, written
    ref, ours = both(args, {"app.bin": foreign}, _old_firmware)
    assert ref.status == 0, ref.output
    _same(ref, ours)
    # ... unless -d names other IDs: refused before anything is written
    ref, ours = both(["-d", "0483:df11", *args], {"app.bin": foreign}, _old_firmware)
    assert ref.status == 64, ref.output
    _same(ref, ours)
    assert ours.flash[: len(OLD)] == OLD


def test_no_error_after_leave_when_the_device_is_gone(both: Both) -> None:
    """A deliberate difference: a board that resets on the leave request without
    answering GETSTATUS has left DFU mode as asked; dfu-util reports an I/O error."""
    args = ["-a", "0", "-s", "0x08000000:leave", "-D", "app.bin"]
    gone = Quirks(leave_without_status=True)
    ref, ours = both(args, {"app.bin": APP}, _old_firmware, quirks=gone)
    assert ref.flash == ours.flash
    assert ours.flash[: len(APP)] == APP
    assert (ref.status, ours.status) == (74, 0), ref.output
    assert "Error during download get_status" in ref.output
    assert [s.address for s in ours.board.app_starts] == [FLASH]


def test_option_bytes_with_will_reset(both: Both) -> None:
    """dfu-util writes the 16 bytes and expects the reset (:will-reset); dfuse-util writes
    them through dfuse's option-byte path (waits for the reset, reads them back)."""
    new = bytearray(Stm32F411().option_bytes)
    new[8] &= 0xFE  # nWRP0 cleared: sector 0 write-protected
    new[10] = new[8] ^ 0xFF
    args = ["-a", "1", "-s", "0x1FFFC000:will-reset", "-D", "ob.bin"]
    ref, ours = both(args, {"ob.bin": bytes(new)})
    assert ours.status == 0, ours.output
    assert ours.board.option_bytes == bytes(new)
    assert ref.board.option_bytes == bytes(new), ref.output
    assert ref.status == 0, ref.output


def test_dfuse_file_download_to_the_selected_alt_and_to_all(both: Both) -> None:
    image = DfuSeFile(
        [
            Target(0, "Internal Flash", [Element(FLASH, APP[:5000]), Element(0x0802_0000, APP)]),
        ]
    ).to_bytes()
    for args in (["-a", "0", "-D", "app.dfu"], ["-D", "app.dfu", "-s", ":leave"]):
        ref, ours = both(args, {"app.dfu": image}, _old_firmware)
        assert ref.status == 0, ref.output
        _same(ref, ours)


def test_mass_erase_then_download(both: Both) -> None:
    args = ["-a", "0", "-s", "0x08000000:force:mass-erase", "-D", "app.bin"]
    ref, ours = both(args, {"app.bin": APP}, _old_firmware)
    assert ref.status == 0, ref.output
    _same(ref, ours)
    assert ours.flash == APP + b"\xff" * (len(ours.flash) - len(APP))


@pytest.mark.parametrize(
    "args",
    [["-a", "0", "-s", "0x08000000:leave"], ["-a", "0", "-s", "0x08000000:leave", "-D", "app.bin"]],
)
def test_leave_starts_the_application_at_the_same_address(both: Both, args: list[str]) -> None:
    ref, ours = both(args, {"app.bin": APP}, _old_firmware)
    assert ref.status == 0, ref.output
    _same(ref, ours)
    starts = [s.address for s in ours.board.app_starts]
    assert starts == [s.address for s in ref.board.app_starts] == [FLASH]


def test_mass_erase(both: Both) -> None:
    ref, ours = both(["-a", "0", "-s", "0x08000000:mass-erase:force"], {}, _old_firmware)
    assert ref.status == 0, ref.output
    _same(ref, ours)
    assert ours.flash == b"\xff" * len(ours.flash)


@pytest.mark.parametrize(
    ("args", "files", "code"),
    [
        (["-s", "0x08000000", "-D", "app.bin"], {"app.bin": APP}, 74),  # four alts match
        (["-a", "0", "-s", "0x08000000:bogus", "-D", "app.bin"], {"app.bin": APP}, 64),
        (["-a", "0", "-s", "0x0800000z", "-D", "app.bin"], {"app.bin": APP}, 64),
        (["-a", "0", "-D", "app.bin"], {"app.bin": APP}, 64),  # raw file, no address
        (["-a", "0", "-s", "0x08000000:mass-erase"], {}, 64),  # no force
        (["-a", "0", "-s", "0x08000000", "-D", "missing.bin"], {}, 66),
        (["-a", "0", "-s", "0x08000000:16", "-U", "taken.bin"], {"taken.bin": b"keep"}, 73),
        (["-a", "0", "-s", "0x20000000:16", "-U", "ram.bin"], {}, 64),  # not readable
        (["-a", "0", "-s", "0x08080000", "-D", "app.bin"], {"app.bin": APP}, 64),  # past flash
        (["-a", "7", "-s", "0x08000000", "-D", "app.bin"], {"app.bin": APP}, 74),  # no alt 7
        (
            ["-d", "1234:5678,1234:5678", "-a", "0", "-s", "0x08000000", "-D", "app.bin"],
            {"app.bin": APP},
            74,
        ),
    ],
)
def test_failures_exit_with_dfu_utils_code_and_leave_memory_alone(
    both: Both, args: list[str], files: dict[str, bytes], code: int
) -> None:
    ref, ours = both(args, files, _old_firmware)
    assert ref.status == code, ref.output
    _same(ref, ours)
    assert ours.flash[: len(OLD)] == OLD
    for name, content in files.items():
        assert ours.file(name) == ref.file(name) == content


def _found_lines(output: str) -> list[str]:
    return re.findall(r"^Found .*$", output, flags=re.MULTILINE)


@pytest.mark.parametrize(
    "args",
    [["-l"], ["--list", "-a", "1"], ["-l", "-d", "1234:5678,1234:5678"], ["-l", "-S", "nope"]],
)
def test_list_prints_the_same_lines(both: Both, args: list[str]) -> None:
    ref, ours = both(args)
    assert ref.status == ours.status == 0
    assert _found_lines(ours.output) == _found_lines(ref.output)
    if args == ["-l"]:
        assert len(_found_lines(ours.output)) == 4


def _plain(tolerant: bool) -> Callable[[Timing, Clock | None], PlainDfuDevice]:
    def make(timing: Timing, clock: Clock | None) -> PlainDfuDevice:
        return PlainDfuDevice(
            size=16 * 1024, timing=timing, clock=clock, manifestation_tolerant=tolerant
        )

    return make


@pytest.mark.parametrize(
    ("args", "tolerant", "upload"),
    [
        (["-U", "back.bin"], False, "back.bin"),
        (["-s", "0x0", "-D", "fw.bin"], False, None),  # DfuSe option: exit 74, nothing written
    ],
)
def test_plain_dfu_device(
    tmp_path: Path, args: list[str], tolerant: bool, upload: str | None
) -> None:
    """A plain DFU 1.1 device (not DfuSe): a short upload, a DfuSe option refused. (The
    download is compared below: dfu-util waits 1 s in dfuMANIFEST, so only once.)"""
    ref, ours = _plain_runs(tmp_path, args, tolerant)
    assert ours.status == ref.status, f"{ref.output}\n{ours.output}"
    assert ours.board.peek(FLASH, 16 * 1024) == ref.board.peek(FLASH, 16 * 1024)
    if upload is not None:
        assert ref.status == 0, ref.output
        assert ours.file(upload) == ref.file(upload)


def test_plain_dfu_device_gone_after_manifestation_is_success(tmp_path: Path) -> None:
    """A deliberate difference: a device that is not manifestation tolerant resets and
    starts its firmware after the download; dfu-util 0.11 prints "Done!" and exits 74
    (the reset's LIBUSB_ERROR_NOT_FOUND becomes its exit status), dfuse-util exits 0."""
    ref, ours = _plain_runs(tmp_path, ["-D", "fw.bin"], tolerant=False)
    assert (ref.status, ours.status) == (74, 0), ref.output
    assert "Done!" in ref.output
    assert ours.board.peek(FLASH, 16 * 1024) == ref.board.peek(FLASH, 16 * 1024)
    assert ours.board.peek(FLASH, len(FW)) == FW


FW = random.Random(11).randbytes(5000)


def _plain_runs(tmp_path: Path, args: list[str], tolerant: bool) -> tuple[Outcome, Outcome]:
    def old(board: PlainDfuDevice) -> None:
        board.poke(FLASH, OLD[:9000])

    files = {"fw.bin": FW}
    make = _plain(tolerant)
    ref = run_dfu_util(tmp_path, args, files, old, factory=make)
    ours = run_dfuse_util(tmp_path, args, files, old, factory=make)
    return ref, ours


def test_list_a_run_time_device(tmp_path: Path) -> None:
    """``Found Runtime: ...`` for an application with the DFU run-time interface."""
    from dfuse.sim import usbdevfs

    log = tmp_path / "list.log"
    script = f'exec dfu-util -l > "{log}" 2>&1'
    assert usbdevfs.run(["sh", "-c", script], ["stm32f411-app"], timeout=60) == 0
    ref = _found_lines(log.read_text())
    out = io.StringIO()
    assert (
        main(["-l"], stdout=out, stderr=out, environ={"DFUSE_DEVICE": "sim:stm32f411?mode=app"})
        == 0
    )
    assert _found_lines(out.getvalue()) == ref
    assert ref[0].startswith("Found Runtime: [0483:5740]")
