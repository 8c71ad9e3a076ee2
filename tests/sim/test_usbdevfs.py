"""The usbdevfs bridge end to end: unmodified dfu-util and pyusb's libusb1 backend drive
the simulated STM32F411 through umockdev.

The bridge is hosted in the test process; dfu-util runs under ``umockdev-wrapper``.
Tests that need a libusb client inside the hosting process (dfuse's own device
layer over pyusb's libusb1 backend) run a small script under the wrapper.
Skipped, with the reason, only where umockdev or PyGObject is missing.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from dfuse.errors import DfuseError
from dfuse.sim import Duration, FlashTiming, SimBackend, Stm32F411, Stm32F411App, Timing, usbdevfs
from dfuse.sim import board as sim_board
from dfuse.sim.usbdevfs import UsbdevfsBridge, UsbdevfsUnavailableError, run

REASON = usbdevfs.unavailable_reason()
DFU_UTIL = shutil.which("dfu-util")

umockdev = pytest.mark.umockdev
needs_bridge = pytest.mark.skipif(REASON is not None, reason=f"usbdevfs bridge: {REASON}")
needs_dfu_util = pytest.mark.skipif(
    DFU_UTIL is None, reason="dfu-util is not installed (apt-get install dfu-util)"
)

FLASH = 0x0800_0000
_QUICK = Duration(0.005, 0.005)
#: Flash operations in milliseconds: dfu-util waits bwPollTimeout in real time.
FAST = Timing(
    flash=FlashTiming(
        sector_erase=((16 * 1024, _QUICK), (64 * 1024, _QUICK), (128 * 1024, _QUICK)),
        mass_erase=Duration(0.02, 0.02),
        option_write=_QUICK,
    ),
    reenumerate=0.1,
    spread=0.0,
)


@pytest.fixture
def board() -> Stm32F411:
    return Stm32F411(timing=FAST)


@pytest.fixture
def bridge(board: Stm32F411) -> Iterator[UsbdevfsBridge]:
    with UsbdevfsBridge() as br:
        br.add(board)
        yield br


def dfu_util(bridge: UsbdevfsBridge, tmp_path: Path, *args: str) -> tuple[int, str]:
    """Run dfu-util under umockdev-wrapper against the bridge; (exit status, output)."""
    log = tmp_path / "dfu-util.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            ["umockdev-wrapper", "dfu-util", *args],
            env=bridge.child_env(),
            cwd=tmp_path,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while proc.poll() is None:
            assert time.monotonic() < deadline, "dfu-util hangs"
            bridge.iterate(0.005)
    return proc.returncode, log.read_text(errors="replace")


def settle(bridge: UsbdevfsBridge, done: Callable[[], bool], timeout: float = 5.0) -> None:
    """Iterate the bridge until ``done()`` (the simulated board acts in real time)."""
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "the simulated board did not get there"
        bridge.iterate(0.005)


def class_requests(board: Stm32F411) -> int:
    """DFU class requests the board has received (standard requests left out)."""
    standard = {"GET_DESCRIPTOR", "SET_CONFIGURATION", "SET_INTERFACE", "GET_STATUS"}
    return sum(n for name, n in board.requests.items() if name not in standard)


# --------------------------------------------------------------------------- dfu-util


@umockdev
@needs_bridge
@needs_dfu_util
def test_dfu_util_lists_the_board_with_its_four_alt_settings(
    board: Stm32F411, bridge: UsbdevfsBridge, tmp_path: Path
) -> None:
    status, out = dfu_util(bridge, tmp_path, "-l")
    assert status == 0, out
    found = re.findall(r'Found DFU: \[0483:df11\].* path="1-1", alt=(\d), name="([^"]*)"', out)
    assert sorted(found) == [(str(i), name) for i, name in enumerate(board.alt_strings)]
    assert f'serial="{board.serial}"' in out


@umockdev
@needs_bridge
@needs_dfu_util
def test_dfu_util_downloads_and_leaves(
    board: Stm32F411, bridge: UsbdevfsBridge, tmp_path: Path
) -> None:
    app = random.Random(9).randbytes(20_000)
    (tmp_path / "app.bin").write_bytes(app)
    syspath = bridge.devices[0].sysfs_path
    status, out = dfu_util(
        bridge, tmp_path, "-a", "0", "-s", f"0x{FLASH:08x}:leave", "-D", "app.bin"
    )
    assert status == 0, out
    assert "File downloaded successfully" in out
    assert board.peek(FLASH, len(app)) == app
    assert board.peek(FLASH + len(app), 16) == b"\xff" * 16
    settle(bridge, lambda: not board.connected)
    assert [start.address for start in board.app_starts] == [FLASH]
    assert bridge.devices == ()  # gone from the testbed, as from a real bus
    assert not Path(bridge.root_dir, syspath.lstrip("/")).exists()


@umockdev
@needs_bridge
@needs_dfu_util
def test_dfu_util_upload_reads_back_the_simulated_memory(
    board: Stm32F411, bridge: UsbdevfsBridge, tmp_path: Path
) -> None:
    content = random.Random(5).randbytes(65536)
    board.poke(FLASH, content)
    for _ in range(2):  # the first run's claim is released when it closes the device
        (tmp_path / "out.bin").unlink(missing_ok=True)
        status, out = dfu_util(
            bridge, tmp_path, "-a", "0", "-s", f"0x{FLASH:08x}:65536", "-U", "out.bin"
        )
        assert status == 0, out
        assert (tmp_path / "out.bin").read_bytes() == board.peek(FLASH, 65536) == content


@umockdev
@needs_bridge
@needs_dfu_util
def test_dfu_util_mass_erase(board: Stm32F411, bridge: UsbdevfsBridge, tmp_path: Path) -> None:
    board.poke(FLASH, b"\x00" * 4096)
    board.poke(FLASH + 0x60000, b"\x12" * 64)
    status, out = dfu_util(bridge, tmp_path, "-a", "0", "-s", f"0x{FLASH:08x}:mass-erase:force")
    assert status == 0, out
    assert board.peek(FLASH, 4096) == b"\xff" * 4096
    assert board.peek(FLASH + 0x60000, 64) == b"\xff" * 64
    assert board.requests["DNLOAD"] == 1
    assert board.connected  # a mass erase does not reset the chip


@umockdev
@needs_bridge
@needs_dfu_util
def test_dfu_util_unprotect_erases_resets_and_comes_back(
    board: Stm32F411, bridge: UsbdevfsBridge, tmp_path: Path
) -> None:
    board.poke(FLASH, b"\x5a" * 1024)
    board.set_read_protection(1)
    status, out = dfu_util(bridge, tmp_path, "-a", "0", "-s", f"0x{FLASH:08x}:unprotect:force")
    assert status == 0, out
    assert "Device disconnects, erases flash and resets now" in out
    settle(bridge, lambda: board.rdp_level == 0 and board.connected and bool(bridge.devices))
    assert board.peek(FLASH, 1024) == b"\xff" * 1024
    assert board.boots == 2
    assert [d.devnode for d in bridge.devices] == ["/dev/bus/usb/001/002"]  # a new address
    status, out = dfu_util(bridge, tmp_path, "-l")  # re-enumerated: listed again
    assert status == 0, out
    assert out.count("Found DFU: [0483:df11]") == 4


@umockdev
@needs_bridge
@needs_dfu_util
def test_dfu_util_option_byte_write_resets_the_chip(
    board: Stm32F411, bridge: UsbdevfsBridge, tmp_path: Path
) -> None:
    new = bytearray(board.option_bytes)
    new[8] &= 0xFE  # nWRP0 cleared: sector 0 write-protected
    (tmp_path / "ob.bin").write_bytes(bytes(new))
    status, out = dfu_util(bridge, tmp_path, "-a", "1", "-s", "0x1FFFC000:16", "-D", "ob.bin")
    # As with a real F411: the chip resets while dfu-util still asks for the status.
    assert status != 0
    assert "Error during download get_status" in out
    settle(bridge, lambda: board.connected and bool(bridge.devices))
    assert board.option_bytes == bytes(new)
    assert board.is_write_protected(0)
    assert board.boots == 2
    assert [d.devnode for d in bridge.devices] == ["/dev/bus/usb/001/002"]


@umockdev
@needs_bridge
@needs_dfu_util
def test_two_boards_on_one_bus(tmp_path: Path) -> None:
    first = Stm32F411("AAAA00000001", timing=FAST, address=1, port_numbers=(1,))
    second = Stm32F411("BBBB00000002", timing=FAST, address=2, port_numbers=(2, 4))
    with UsbdevfsBridge() as bridge:
        bridge.add(first)
        bridge.add(second)
        status, out = dfu_util(bridge, tmp_path, "-l")
        assert status == 0, out
        assert out.count('serial="AAAA00000001"') == 4
        assert out.count('serial="BBBB00000002"') == 4
        # behind a hub at port 2 (published for it, it took address 2)
        assert 'devnum=3, cfg=1, intf=0, path="1-2.4"' in out
        assert [d.devnode for d in bridge.devices] == [
            "/dev/bus/usb/001/001",
            "/dev/bus/usb/001/003",
        ]
        hub = Path(bridge.root_dir, "sys/bus/usb/devices/1-2")
        assert (hub / "idVendor").read_text() == "1209"
        assert (hub / "descriptors").read_bytes()[4] == 0x09  # bDeviceClass: hub
        app = b"\x11\x22\x33\x44" * 512
        (tmp_path / "a.bin").write_bytes(app)
        status, out = dfu_util(
            bridge, tmp_path, "-S", "BBBB00000002", "-a", "0", "-s", f"0x{FLASH:08x}", "-D", "a.bin"
        )
        assert status == 0, out
        assert second.peek(FLASH, len(app)) == app
        assert first.peek(FLASH, 4) == b"\xff" * 4


# --------------------------------------------------------------------------- the user command


@umockdev
@needs_bridge
@needs_dfu_util
def test_run_hosts_the_boards_for_any_program(board: Stm32F411, tmp_path: Path) -> None:
    app = bytes(range(256)) * 8
    (tmp_path / "app.bin").write_bytes(app)
    argv = ["dfu-util", "-a", "0", "-s", f"0x{FLASH:08x}", "-D", "app.bin"]
    assert run(argv, [board], cwd=tmp_path) == 0
    assert board.peek(FLASH, len(app)) == app
    assert run(["sh", "-c", "exit 3"], [board]) == 3
    assert run(["sh", "-c", "kill -TERM $$"], [board]) == -15
    assert (
        run(["sh", "-c", 'test "$WHO" = me'], [board], env={"WHO": "me", "PATH": "/usr/bin:/bin"})
        == 0
    )


@umockdev
@needs_bridge
def test_run_kills_a_command_past_its_timeout(board: Stm32F411) -> None:
    with pytest.raises(TimeoutError, match=r"sleep did not finish within 0\.2 s"):
        run(["sleep", "30"], [board], timeout=0.2)


def test_run_refuses_an_empty_command() -> None:
    with pytest.raises(ValueError, match="non-empty sequence"):
        run([], [])
    with pytest.raises(ValueError, match="non-empty sequence"):
        run("dfu-util -l", [])


@umockdev
@needs_bridge
@needs_dfu_util
def test_module_command_line_runs_under_the_wrapper(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "UMOCKDEV_DIR")}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "dfuse.sim.usbdevfs",
            "--device",
            "stm32f411",
            "--",
            "dfu-util",
            "-l",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("Found DFU: [0483:df11]") == 4
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "dfuse.sim.usbdevfs",
            "--",
            "sh",
            "-c",
            'echo "$LD_PRELOAD"; exit 4',
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 4
    assert "libumockdev-preload" in proc.stdout


def test_module_command_line_usage_errors() -> None:
    with pytest.raises(SystemExit) as exc:
        usbdevfs.main([])
    assert exc.value.code == 2
    assert usbdevfs.main(["--device", "z80", "--", "true"]) in (3,)


def test_main_reports_a_missing_bridge(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "platform", "win32")
    assert usbdevfs.main(["--", "true"]) == 3
    assert "needs Linux" in capsys.readouterr().err


# --------------------------------------------------------------------------- availability


def test_unavailable_off_linux(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", "darwin")
    reason = usbdevfs.unavailable_reason()
    assert reason is not None
    assert "needs Linux" in reason
    with pytest.raises(UsbdevfsUnavailableError, match="needs Linux"):
        UsbdevfsBridge()
    with pytest.raises(UsbdevfsUnavailableError, match="this is darwin"):
        run(["true"], [])
    assert issubclass(UsbdevfsUnavailableError, DfuseError)


def test_unavailable_without_pygobject(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "gi", None)  # "import gi" raises ImportError
    with pytest.raises(UsbdevfsUnavailableError, match=r"PyGObject is not importable.*umockdev"):
        usbdevfs._gi_modules.__wrapped__()


def test_unavailable_without_the_wrapper(monkeypatch: pytest.MonkeyPatch) -> None:
    if REASON is not None:
        pytest.skip(f"usbdevfs bridge: {REASON}")
    monkeypatch.setattr(shutil, "which", lambda _name: None)
    assert "umockdev-wrapper is not on PATH" in (usbdevfs.unavailable_reason() or "")


def test_under_wrapper_reads_ld_preload() -> None:
    assert usbdevfs.under_wrapper({"LD_PRELOAD": "libumockdev-preload.so.0:libfoo.so"})
    assert usbdevfs.under_wrapper({"LD_PRELOAD": "/usr/lib/libumockdev-preload.so.0"})
    assert not usbdevfs.under_wrapper({"LD_PRELOAD": "libasan.so"})
    assert not usbdevfs.under_wrapper({})


def test_make_device_by_name() -> None:
    board = usbdevfs.make_device("STM32F411", port=3)
    assert isinstance(board, Stm32F411)
    assert (board.bus, board.port_numbers) == (1, (3,))
    other = usbdevfs.make_device("stm32f411", port=2)
    assert isinstance(other, Stm32F411)
    assert other.serial != board.serial
    app = usbdevfs.make_device("stm32f411-app")
    assert isinstance(app, Stm32F411App)
    assert isinstance(app.bootloader, Stm32F411)
    l4 = usbdevfs.make_device("stm32l476", port=4)
    assert l4.part.name == "stm32l476"  # type: ignore[attr-defined]
    assert l4.port_numbers == (4,)
    with pytest.raises(
        DfuseError, match=r"unknown simulated device 'z80': expected one of.*stm32l476"
    ):
        usbdevfs.make_device("z80")


@umockdev
@needs_bridge
def test_bridge_refuses_duplicates(board: Stm32F411, bridge: UsbdevfsBridge) -> None:
    with pytest.raises(ValueError, match="already hosted"):
        bridge.add(board)
    with pytest.raises(ValueError, match="two devices at port 1-1"):
        bridge.add(Stm32F411(timing=FAST, address=9))
    with pytest.raises(ValueError, match="not hosted"):
        bridge.counter(Stm32F411())
    bridge.close()
    with pytest.raises(ValueError, match="closed"):
        bridge.add(Stm32F411(port_numbers=(5,)))


@umockdev
@needs_bridge
def test_a_board_off_the_bus_is_published_when_it_arrives() -> None:
    board = Stm32F411(timing=FAST)
    board.unplug()
    with UsbdevfsBridge() as bridge:
        assert bridge.add(board) is None
        assert not bridge.devices
        board.plug()
        assert [d.devnode for d in bridge.devices] == ["/dev/bus/usb/001/001"]
        assert Path(bridge.root_dir, "dev/bus/usb/001/001").exists()
        sysfs = Path(bridge.root_dir, bridge.devices[0].sysfs_path.lstrip("/"))
        assert (sysfs / "descriptors").read_bytes().startswith(board.device_descriptor())
        assert (sysfs / "bConfigurationValue").read_text() == "1"
        assert (sysfs / "idProduct").read_text() == "df11"


# --------------------------------------------------------------------------- dfuse over libusb

_LIBUSB_CLIENT = textwrap.dedent(
    """
    import hashlib, json, random, sys, time
    import usb.backend.libusb1
    from dfuse.device import DfuDevice
    from dfuse.errors import DeviceBusyError, DeviceNotFoundError, TransportError
    from dfuse.sim import SimBackend, Stm32F411
    from dfuse.sim.usbdevfs import hosted
    sys.path.insert(0, sys.argv[1])
    from test_usbdevfs import FAST, FLASH

    image = random.Random(3).randbytes(40_000)

    def reopen(backend):
        # DeviceGoneError (or, over the bridge under load, another libusb I/O error while
        # umockdev swaps the nodes): a node of the previous enumeration that the bus has not
        # removed yet (the board ignores requests to it, so they are not counted). A second
        # open of a device that is held stays an error at once (DeviceBusyError).
        deadline = time.monotonic() + 30
        while True:
            try:
                return DfuDevice.open(vid=0x0483, pid=0xDF11, backend=backend, alt=0)
            except DeviceBusyError:
                raise
            except (DeviceNotFoundError, TransportError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.01)

    def back_on_bus(board, boots, wait):
        # Wait for the board's own re-enumeration, not for whatever the bus lists first:
        # opening during the reset raced it, and lost under machine load.
        deadline = time.monotonic() + 30
        while (board.boots == boots or not board.connected) and time.monotonic() < deadline:
            wait()
        assert board.boots > boots and board.connected, "the board did not come back"

    def scenario(backend, board, wait):
        out = {}
        with reopen(backend) as dev:
            dev.download(image, address=FLASH, verify=True)
            out["upload"] = hashlib.sha256(dev.upload(FLASH, 65536)).hexdigest()
            try:
                with reopen(backend):
                    out["second_open"] = "opened"
            except DeviceBusyError as exc:
                out["second_open"] = type(exc).__name__
            dev.erase([FLASH + 0x4000])
            out["erased"] = dev.upload(FLASH + 0x4000, 16).hex()
            dev.mass_erase()
            out["mass_erased"] = dev.upload(FLASH + 0x20000, 16).hex()
        board.set_read_protection(1)
        board.poke(FLASH, b"\x42" * 64)
        boots = board.boots
        with reopen(backend) as dev:
            dev.read_unprotect(confirm=True)
        back_on_bus(board, boots, wait)
        with reopen(backend) as dev:  # after the reset: a new device on the bus
            out["after_unprotect"] = dev.upload(FLASH, 16).hex()
            dev.download(image[:4096], address=FLASH, verify=True, leave=True)
        deadline = time.monotonic() + 30  # a real board, too, leaves a moment later
        while board.connected and time.monotonic() < deadline:
            wait()
        out["rdp"] = board.rdp_level
        out["app_starts"] = [start.address for start in board.app_starts]
        out["flash"] = hashlib.sha256(board.peek(FLASH, 512 * 1024)).hexdigest()
        out["requests"] = dict(sorted(board.requests.items()))
        return out

    pure = Stm32F411(timing=FAST)
    backend = SimBackend([pure])
    expected = scenario(backend, pure, lambda: (backend.clock.sleep(0.01), backend.poll()))
    bridged = Stm32F411(timing=FAST)
    with hosted([bridged]) as bridge:
        got = scenario(usb.backend.libusb1.get_backend(), bridged, lambda: time.sleep(0.01))
        ioctls = bridge.counter(bridged).ioctls
    print(json.dumps({"pure": expected, "bridged": got, "ioctls": ioctls}))
    """
)


@umockdev
@needs_bridge
def test_dfuse_device_over_pyusb_libusb1_agrees_with_the_pyusb_simulator(tmp_path: Path) -> None:
    script = tmp_path / "client.py"
    script.write_text(_LIBUSB_CLIENT)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).parents[2]), env.get("PYTHONPATH", "")])
    proc = subprocess.run(
        ["umockdev-wrapper", sys.executable, str(script), str(Path(__file__).parent)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    pure, bridged = result["pure"], result["bridged"]
    assert bridged["second_open"] == pure["second_open"] == "DeviceBusyError"
    assert bridged["erased"] == pure["erased"] == "ff" * 16
    assert bridged["mass_erased"] == pure["mass_erased"] == "ff" * 16
    assert bridged["after_unprotect"] == pure["after_unprotect"] == "ff" * 16
    assert bridged["rdp"] == pure["rdp"] == 0
    assert bridged["app_starts"] == pure["app_starts"] == [FLASH]
    assert bridged["upload"] == pure["upload"]
    assert bridged["flash"] == pure["flash"]
    # The same control transfers reached the board through both front doors; over the
    # bridge the "kernel" configures the board on the wire at each enumeration (the
    # pyusb simulator sets the configuration directly).
    assert bridged["requests"].pop("SET_CONFIGURATION") == 2  # plugged in, after the reset
    assert bridged["requests"] == pure["requests"]
    assert result["ioctls"]["SUBMITURB"] > 100


# --------------------------------------------------------------------------- transfer counts


@umockdev
@needs_bridge
@needs_dfu_util
def test_dfuse_needs_no_more_control_transfers_per_block_than_dfu_util(tmp_path: Path) -> None:
    from dfuse.device import DfuDevice

    blocks = 16
    image = random.Random(4).randbytes(blocks * 2048)
    (tmp_path / "image.bin").write_bytes(image)

    by_dfu_util = Stm32F411(timing=FAST)
    with UsbdevfsBridge() as bridge:
        bridge.add(by_dfu_util)
        before = class_requests(by_dfu_util)
        status, out = dfu_util(
            bridge, tmp_path, "-a", "0", "-s", f"0x{FLASH:08x}", "-D", "image.bin"
        )
        assert status == 0, out
        dfu_util_count = class_requests(by_dfu_util) - before

    by_dfuse = Stm32F411(timing=FAST)
    with DfuDevice.open(vid=0x0483, pid=0xDF11, backend=SimBackend([by_dfuse]), alt=0) as dev:
        before = class_requests(by_dfuse)
        dev.download(image, address=FLASH, verify=False)
        dfuse_count = class_requests(by_dfuse) - before

    assert by_dfu_util.peek(FLASH, len(image)) == by_dfuse.peek(FLASH, len(image)) == image
    print(
        f"\ncontrol transfers for {blocks} blocks of 2048 bytes (erase + write, no verify): "
        f"dfu-util {dfu_util_count} ({dfu_util_count / blocks:.2f}/block), "
        f"dfuse {dfuse_count} ({dfuse_count / blocks:.2f}/block)"
    )
    assert dfuse_count <= dfu_util_count


# --------------------------------------------------------------------------- bus faults over libusb

_FAULT_CLIENT = textwrap.dedent(
    """
    import json, time
    import usb.backend.libusb1, usb.core, usb.util
    from dfuse.sim import Event, Fault, FaultKind, Stm32F411
    from dfuse.sim.usbdevfs import hosted

    board = Stm32F411(faults=[
        Fault(FaultKind.TIMEOUT, Event.GETSTATUS, nth=2),
        Fault(FaultKind.STALL, Event.GETSTATUS, nth=3),
        Fault(FaultKind.DISCONNECT, Event.GETSTATUS, nth=5, reconnect_after=0.2),
    ])
    seen = {}

    def getstatus(dev, name):
        try:
            seen[name] = list(dev.ctrl_transfer(0xA1, 3, 0, 0, 6, 200))
        except usb.core.USBError as exc:
            seen[name] = [type(exc).__name__, exc.errno]

    with hosted([board]) as bridge:
        backend = usb.backend.libusb1.get_backend()
        dev = usb.core.find(idVendor=0x0483, idProduct=0xDF11, backend=backend)
        usb.util.claim_interface(dev, 0)
        for name in ("ok", "timeout", "stall", "again", "disconnect", "after"):
            getstatus(dev, name)
        seen["present_while_away"] = bridge.devices != ()
        deadline = time.monotonic() + 5
        while not bridge.devices and time.monotonic() < deadline:
            time.sleep(0.01)
        fresh = None
        while fresh is None and time.monotonic() < deadline:
            fresh = usb.core.find(idVendor=0x0483, idProduct=0xDF11, backend=backend)
            time.sleep(0.01)
        if fresh is not None:
            getstatus(fresh, "back")
            usb.util.dispose_resources(fresh)
        seen["discards"] = bridge.counter(board).ioctls.get("DISCARDURB", 0)
        usb.util.dispose_resources(dev)  # (before the bridge goes: nobody would answer)
    print(json.dumps(seen))
    """
)


@umockdev
@needs_bridge
def test_bus_faults_reach_libusb_as_on_a_real_bus(tmp_path: Path) -> None:
    script = tmp_path / "faults.py"
    script.write_text(_FAULT_CLIENT)
    proc = subprocess.run(
        ["umockdev-wrapper", sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    seen = json.loads(proc.stdout.strip().splitlines()[-1])
    idle = [0, 0, 0, 0, 2, 0]  # OK, bwPollTimeout 0, dfuIDLE
    assert seen["ok"] == idle
    assert seen["timeout"] == ["USBTimeoutError", 110]  # in flight until libusb discards it
    assert seen["discards"] == 1
    assert seen["stall"] == ["USBError", 32]  # EPIPE
    assert seen["again"] == idle
    assert seen["disconnect"] == ["USBError", 19]  # ENODEV
    assert seen["after"] == ["USBError", 19]  # the old handle stays dead
    assert not seen["present_while_away"]
    assert seen.get("back") == idle  # re-enumerated, found again through hotplug


@umockdev
@needs_bridge
def test_the_dfuse_command_line_flashes_a_bridged_board(board: Stm32F411, tmp_path: Path) -> None:
    firmware = random.Random(8).randbytes(10_000)
    (tmp_path / "fw.bin").write_bytes(firmware)
    dfuse = [sys.executable, "-m", "dfuse"]
    flash = [*dfuse, "flash", "-d", "usb:0483:df11", "--address", f"0x{FLASH:08x}", "fw.bin"]
    assert run(flash, [board], cwd=tmp_path) == 0
    assert board.peek(FLASH, len(firmware)) == firmware
    read = [*dfuse, "read", "-d", "usb:0483:df11", "--address", f"0x{FLASH:08x}"]
    assert run([*read, "--length", "10000", "back.bin"], [board], cwd=tmp_path) == 0
    assert (tmp_path / "back.bin").read_bytes() == firmware


# --------------------------------------------------------------------------- sysfs records


def test_sysfs_record_describes_the_device_as_the_kernel_would() -> None:
    board = Stm32F411("REC0001", address=5, port_numbers=(3,))
    board.set_configuration(1)
    syspath, devnode, record = usbdevfs._sysfs_record(board)
    assert syspath == "/sys/devices/dfuse-sim/usb1/1-3"
    assert devnode == "/dev/bus/usb/001/005"
    lines = record.splitlines()
    assert lines[:2] == ["P: /devices/dfuse-sim/usb1/1-3", "N: bus/usb/001/005"]
    for line in (
        "E: DEVNAME=/dev/bus/usb/001/005",
        "E: DEVTYPE=usb_device",
        "E: SUBSYSTEM=usb",
        "E: BUSNUM=001",
        "E: DEVNUM=005",
        "E: PRODUCT=483/df11/2200",
        "A: busnum=1",
        "A: devnum=5",
        "A: speed=12",
        "A: idVendor=0483",
        "A: idProduct=df11",
        "A: bcdDevice=2200",
        "A: bConfigurationValue=1",
        "A: bNumConfigurations=1",
        "A: serial=REC0001",
        "A: product=STM32  BOOTLOADER",
    ):
        assert line in lines, line
    raw = usbdevfs._descriptors(board)
    assert raw == board.device_descriptor() + board.configuration_descriptor(0)


def test_sysfs_record_of_an_unconfigured_device_and_odd_strings() -> None:
    class Odd(Stm32F411):
        def strings(self) -> dict[int, str]:
            return {**super().strings(), 3: "two\nlines"}

    board = Odd()
    board.set_configuration(0)
    _syspath, _devnode, record = usbdevfs._sysfs_record(board)
    assert "A: bConfigurationValue=\n" in record
    assert "A: serial=" not in record  # cannot be a one-line attribute


def test_sysfs_record_refuses_a_broken_device_descriptor() -> None:
    class Broken(Stm32F411):
        def device_descriptor(self) -> bytes:
            return b"\x12\x02" + bytes(16)

    with pytest.raises(ValueError, match="18 bytes of type 1"):
        usbdevfs._sysfs_record(Broken())


@umockdev
@needs_bridge
@needs_dfu_util
def test_the_documentation_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    doc = Path(__file__).resolve().parents[2] / "docs" / "usbdevfs-bridge.md"
    example = re.findall(r"```python\n(.*?)```", doc.read_text(), flags=re.S)[0]
    (tmp_path / "app.bin").write_bytes(random.Random(6).randbytes(3000))
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {}
    exec(compile(example, str(doc), "exec"), namespace)
    board = namespace["board"]
    assert isinstance(board, Stm32F411)
    assert board.peek(FLASH, 3000) == (tmp_path / "app.bin").read_bytes()


@umockdev
@needs_bridge
@needs_dfu_util
def test_dfu_util_detaches_a_runtime_device_into_the_bootloader(tmp_path: Path) -> None:
    # dfu-util finds the bootloader after the detach through a hotplug event: the host
    # re-executes itself under umockdev-wrapper so that the uevents are sent.
    (tmp_path / "app.bin").write_bytes(bytes(range(256)) * 20)
    env = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "UMOCKDEV_DIR")}
    host = [sys.executable, "-m", "dfuse.sim.usbdevfs", "--device", "stm32f411-app", "--"]
    dfu = ["dfu-util", "-d", "0483:5740,0483:df11", "-E", "1", "-a", "0", "-s", f"0x{FLASH:08x}"]
    proc = subprocess.run(
        [*host, *dfu, "-D", "app.bin"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Device will detach and reattach..." in proc.stdout
    assert "DFU state(2) = dfuIDLE" in proc.stdout
    assert "File downloaded successfully" in proc.stdout


# ------------------------------------------------------------------ failures inside the bridge


class _RefusingTestbed:
    """A testbed that refuses one operation (umockdev reports those with False)."""

    def __init__(self, real: object, refuse: str) -> None:
        self._real = real
        self._refuse = refuse

    def __getattr__(self, name: str) -> object:
        if name == self._refuse:
            return lambda *_args: False
        return getattr(self._real, name)


@umockdev
@needs_bridge
@pytest.mark.parametrize(
    ("refuse", "message"),
    [
        ("add_from_string", "umockdev refused the device record for /sys/devices/dfuse-sim"),
        ("attach_ioctl", "could not attach an ioctl handler to /dev/bus/usb/001/001"),
    ],
)
def test_testbed_refusals_are_reported(refuse: str, message: str) -> None:
    with UsbdevfsBridge() as bridge:
        bridge._testbed = _RefusingTestbed(bridge._testbed, refuse)
        with pytest.raises(DfuseError, match=message):
            bridge.add(Stm32F411(timing=FAST))


@umockdev
@needs_bridge
@needs_dfu_util
def test_an_exception_in_the_bridge_still_completes_the_ioctl(
    bridge: UsbdevfsBridge,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from dfuse.sim import _usbdevfs_abi, _usbdevfs_core

    def broken(*_args: object) -> None:
        raise RuntimeError("bug in the bridge")

    monkeypatch.setitem(_usbdevfs_core._DISPATCH, _usbdevfs_abi.Ioctl.GET_CAPABILITIES, broken)
    with caplog.at_level("ERROR", logger="dfuse.sim.usbdevfs"):
        status, out = dfu_util(bridge, tmp_path, "-l")  # libusb copes with a failing GETCAP
    assert status == 0, out
    assert out.count("Found DFU: [0483:df11]") == 4
    assert "ioctl GET_CAPABILITIES failed in the bridge" in caplog.text


@umockdev
@needs_bridge
@needs_dfu_util
@pytest.mark.parametrize("name", ["stm32f072", "stm32g474", "stm32l476"])
def test_dfu_util_flashes_a_sample_of_parts(name: str, tmp_path: Path) -> None:
    """dfu-util (over the bridge, real time) on other parts' boards: their rows' descriptors,
    8-byte programming units, the L4/F072 GETSTATUS stall, which dfu-util retries."""
    model = sim_board(name, honest=True)
    app = random.Random(3).randbytes(6000)
    (tmp_path / "app.bin").write_bytes(app)
    with UsbdevfsBridge() as br:
        br.add(model)
        status, out = dfu_util(br, tmp_path, "-a", "0", "-s", f"0x{FLASH:08x}", "-D", "app.bin")
    assert status == 0, out
    assert "File downloaded successfully" in out
    assert model.peek(FLASH, len(app)) == app
    assert model.peek(FLASH + len(app), 16) == b"\xff" * 16
