"""``dfuse-util``: dfu-util 0.11's command line over the dfuse library.

Each step follows dfu-util's ``src/main.c`` and ``src/dfuse.c`` in order (parse,
load the file, find the device, open it, detach a run-time device, upload or
download, leave, reset), so the same command line gives the same exit code; the
work itself is done by the public API (:func:`dfuse.find_devices` through a
:class:`dfuse.selector.Bench`, :class:`dfuse.DfuDevice`). The deliberate
differences are listed in ``docs/dfu-util.md``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, TextIO

from dfuse.compat.devices import Entry, format_entry, match_entries, single_interface
from dfuse.compat.options import (
    EX_CANTCREAT,
    EX_DATAERR,
    EX_IOERR,
    EX_NOINPUT,
    EX_OK,
    EX_USAGE,
    IMPOSSIBLE,
    CompatError,
    DfuseOptions,
    Mode,
    Options,
    parse_args,
    parse_dfuse_options,
)

if TYPE_CHECKING:
    from dfuse.device import DfuDevice, DownloadOptions
    from dfuse.layout import MemoryLayout
    from dfuse.selector import Bench

__all__ = ["PROG", "main"]

PROG = "dfuse-util"
DFU_UTIL_VERSION = "0.11"
_DEVICE_ENV = "DFUSE_DEVICE"
_DFUSE_BCD = 0x011A
_SUFFIX_LENGTH = 16
_ANY_ID = 0xFFFF
#: dfu-util's upload length when neither a length nor a memory segment says how much.
_DEFAULT_UPLOAD = 0x4000
_EX_INTERRUPTED = 130

HELP = f"""\
Usage: {PROG} [options] ...
  -h --help\t\t\tPrint this help message
  -V --version\t\t\tPrint the version number
  -v --verbose\t\t\tPrint verbose debug statements
  -l --list\t\t\tList currently attached DFU capable devices
  -e --detach\t\t\tDetach currently attached DFU capable devices
  -E --detach-delay seconds\tTime to wait before reopening a device after detach
  -d --device <vendor>:<product>[,<vendor_dfu>:<product_dfu>]
\t\t\t\tSpecify Vendor/Product ID(s) of DFU device
\t\t\t\t(or a dfuse selector: usb:..., sim:stm32f411)
  -n --devnum <dnum>\t\tMatch given device number (devnum from --list)
  -p --path <bus-port. ... .port>\tSpecify path to DFU device
  -c --cfg <config_nr>\t\tSpecify the Configuration of DFU device
  -i --intf <intf_nr>\t\tSpecify the DFU Interface number
  -S --serial <serial_string>[,<serial_string_dfu>]
\t\t\t\tSpecify Serial String of DFU device
  -a --alt <alt>\t\tSpecify the Altsetting of the DFU Interface
\t\t\t\tby name or by number
  -t --transfer-size <size>\tSpecify the number of bytes per USB Transfer
  -U --upload <file>\t\tRead firmware from device into <file>
  -Z --upload-size <bytes>\tSpecify the expected upload size in bytes
  -D --download <file>\t\tWrite firmware from <file> into device
  -R --reset\t\t\tIssue USB Reset signalling once we're finished
  -w --wait\t\t\tWait for device to appear
     --verify\t\t\tRead the written memory back and compare (dfuse-util only)
  -s --dfuse-address address<:...>\tST DfuSe mode string, specifying target
\t\t\t\taddress for raw file download or upload (not
\t\t\t\tapplicable for DfuSe file (.dfu) downloads).
\t\t\t\tAdd more DfuSe options separated with ':'
\t\tleave\t\tLeave DFU mode (jump to application)
\t\tmass-erase\tErase the whole device (requires "force")
\t\tunprotect\tErase read protected device (requires "force")
\t\twill-reset\tExpect device to reset (e.g. option bytes write)
\t\tforce\t\tYou really know what you are doing!
\t\t<length>\tLength of firmware to upload from device

The device comes from $DFUSE_DEVICE (e.g. sim:stm32f411), else any USB DFU device.
Differences from dfu-util: "Coming from dfu-util" in the dfuse documentation (docs/dfu-util.md).
"""


@dataclass(frozen=True)
class LoadedFile:
    """A ``-D`` file as dfu-util's ``dfu_load_file`` sees it.

    Attributes:
        data: the whole file.
        payload: the data without a valid DFU suffix.
        bcd_dfu: bcdDFU of the suffix (0 without one).
        vendor_id, product_id: the suffix's IDs (0xFFFF: any, or no suffix).
    """

    data: bytes
    payload: bytes
    bcd_dfu: int = 0
    vendor_id: int = _ANY_ID
    product_id: int = _ANY_ID


@dataclass(frozen=True)
class _Guards:
    """What dfu-util writes without asking and dfuse guards: option bytes and OTP data
    are written as dfu-util writes them; an OTP lock byte or read protection level 2
    (both permanent) need the ``force`` modifier."""

    otp_lock: bool
    rdp2: bool


class _Console:
    """dfu-util's two streams: messages on stdout, ``dfuse-util: ...`` warnings on stderr."""

    def __init__(self, stdout: TextIO, stderr: TextIO) -> None:
        self.out = stdout
        self.err = stderr

    def say(self, text: str) -> None:
        self.out.write(text + "\n")
        self.out.flush()

    def warn(self, text: str) -> None:
        self.err.write(f"{PROG}: {text}\n")
        self.err.flush()


def main(
    argv: Sequence[str] | None = None,
    *,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    environ: Mapping[str, str] | None = None,
    bench: Bench | None = None,
) -> int:
    """Run ``dfuse-util`` with ``argv`` (default ``sys.argv[1:]``); return the exit status.

    ``bench`` is a :class:`dfuse.selector.Bench` to use instead of the one
    ``-d SELECTOR`` or ``$DFUSE_DEVICE`` names (tests pass simulated boards they inspect).
    """
    console = _Console(stdout or sys.stdout, stderr or sys.stderr)
    env = os.environ if environ is None else environ
    logger = logging.getLogger("dfuse")
    handler: logging.Handler | None = None
    try:
        opts = parse_args(list(sys.argv[1:] if argv is None else argv))
        if opts.verbose:  # -v: every DFU request dfuse makes, on stderr
            handler = logging.StreamHandler(console.err)
            handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
            logger.addHandler(handler)
            logger.setLevel(logging.DEBUG)
        return _run(opts, console, env, bench)
    except CompatError as exc:
        console.warn(str(exc))
        return exc.code
    except KeyboardInterrupt:
        console.warn("interrupted")
        return _EX_INTERRUPTED
    except BrokenPipeError:  # `dfuse-util -l | head -1`: the reader left, nothing to report
        _silence(console.out)
        return EX_OK
    finally:
        if handler is not None:
            logger.removeHandler(handler)
            logger.setLevel(logging.NOTSET)


def _silence(out: TextIO) -> None:
    """After a broken pipe, point stdout at /dev/null so the interpreter's last flush is quiet."""
    if out is sys.stdout:
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def _run(opts: Options, console: _Console, env: Mapping[str, str], bench: Bench | None) -> int:
    if opts.help:
        console.out.write(HELP)
        return EX_OK
    from dfuse import __version__

    console.say(f"{PROG} {__version__} (pydfuse; dfu-util {DFU_UTIL_VERSION} command line)\n")
    if opts.mode is Mode.VERSION:
        return EX_OK
    if opts.mode is Mode.NONE and opts.dfuse_options is None:
        raise CompatError("You need to specify one of -D or -U")
    loaded: LoadedFile | None = None
    if opts.mode is Mode.DOWNLOAD:
        assert opts.file is not None
        loaded = _load_file(opts.file, console)
        ids = opts.ids
        if ids.vendor < 0 and loaded.vendor_id != _ANY_ID:
            ids = replace(ids, vendor=loaded.vendor_id)
            console.say(f"Match vendor ID from file: {loaded.vendor_id:04x}")
        if ids.product < 0 and loaded.product_id != _ANY_ID:
            ids = replace(ids, product=loaded.product_id)
            console.say(f"Match product ID from file: {loaded.product_id:04x}")
        opts = replace(opts, ids=ids)
    elif opts.mode is Mode.NONE:
        opts = replace(opts, mode=Mode.DOWNLOAD)  # DfuSe command mode (-s alone)
    return _Session(opts, console, _bench(opts, env, bench), loaded).run()


def _bench(opts: Options, env: Mapping[str, str], bench: Bench | None) -> Bench:
    if bench is not None:
        return bench
    from dfuse.errors import SelectorError
    from dfuse.selector import bench as make_bench

    text = opts.device_selector or env.get(_DEVICE_ENV) or "usb:"
    try:
        return make_bench(text)
    except SelectorError as exc:
        raise CompatError(f"invalid device selector {text!r}: {exc}", EX_USAGE) from exc


def _load_file(name: str, console: _Console) -> LoadedFile:
    """Read a ``-D`` file (``-`` is stdin) and recognise a DFU suffix as dfu-util does."""
    from dfuse.errors import CrcMismatchError, SignatureError, TruncatedFileError
    from dfuse.file import DfuFile

    try:
        data = sys.stdin.buffer.read() if name == "-" else _read(name)
    except OSError as exc:
        raise CompatError(
            f"Could not open file {name} for reading: {exc.strerror}", EX_NOINPUT
        ) from exc
    try:
        parsed = DfuFile.parse(data)
    except TruncatedFileError:
        return LoadedFile(data, data)
    except CrcMismatchError:
        console.warn("Warning: DFU suffix CRC does not match: the whole file is the firmware")
        return LoadedFile(data, data)
    except SignatureError as exc:
        if data[-5:-2] != b"UFD":
            return LoadedFile(data, data)
        raise CompatError(f"Unsupported DFU suffix length ({exc})", EX_DATAERR) from exc
    return LoadedFile(data, parsed.payload, parsed.dfu_version, parsed.vendor_id, parsed.product_id)


def _read(name: str) -> bytes:
    with open(name, "rb") as f:
        return f.read()


class _Session:
    """One dfu-util run against one device: find, open, act, close."""

    def __init__(
        self, opts: Options, console: _Console, bench: Bench, loaded: LoadedFile | None
    ) -> None:
        self.opts = opts
        self.console = console
        self.bench = bench
        self.loaded = loaded
        self.dfuse_file = loaded is not None and loaded.bcd_dfu == _DFUSE_BCD

    # -------------------------------------------------------------- finding

    def _find(self) -> list[Entry]:
        from dfuse.errors import TransportError

        try:
            return match_entries(self.bench.find(), self.opts)
        except TransportError as exc:
            raise CompatError(f"unable to initialize libusb: {exc}", EX_IOERR) from exc

    def run(self) -> int:
        opts = self.opts
        if opts.wait:
            self.console.say("Waiting for device, exit with ctrl-C")
        entries = self._find()
        if opts.mode is Mode.LIST:
            for entry in entries:
                self.console.say(format_entry(entry))
            return EX_OK
        while not entries and opts.wait:
            time.sleep(0.02)
            entries = self._find()
        if not entries:
            raise CompatError("No DFU capable USB device available", EX_IOERR)
        multi_alt = self.dfuse_file and single_interface(entries)
        if multi_alt and len(entries) > 1:
            self.console.say("Multiple alternate interfaces for DfuSe file")
        elif len(entries) > 1:
            raise CompatError(
                "More than one DFU capable USB device found! Try `--list' and specify the"
                " serial number or disconnect all but one device",
                EX_IOERR,
            )
        return self._with_device(entries, multi_alt)

    # -------------------------------------------------------------- opening

    def _with_device(self, entries: list[Entry], multi_alt: bool) -> int:
        from dfuse.errors import (
            DeviceNotFoundError,
            DfuseError,
            FileFormatError,
            SafetyError,
            TransportError,
        )

        root = entries[0]
        self.console.say("Opening DFU capable USB device...")
        try:
            return self._open_and_act(root, multi_alt)
        except CompatError:
            raise
        except SafetyError as exc:
            raise CompatError(str(exc), EX_USAGE) from exc
        except FileFormatError as exc:
            raise CompatError(str(exc), EX_DATAERR) from exc
        except (DeviceNotFoundError, TransportError) as exc:
            raise CompatError(str(exc), EX_IOERR) from exc
        except DfuseError as exc:
            raise CompatError(str(exc), EX_IOERR) from exc
        except ValueError as exc:
            raise CompatError(str(exc), EX_USAGE) from exc

    def _open_and_act(self, root: Entry, multi_alt: bool) -> int:
        from dfuse import DfuDevice
        from dfuse.errors import DeviceGoneError

        info = root.info
        dev = DfuDevice.open(
            vid=info.vid,
            pid=info.pid,
            path=info.path,
            serial=info.serial,
            alt=root.alt if root.dfu_mode and not multi_alt else None,
            backend=self.bench.backend,
            clock=self.bench.clock,
        )
        self.console.say(f"Device ID {info.vid:04x}:{info.pid:04x}")
        runtime_ids = (
            info.vid if self.opts.ids.vendor < 0 else self.opts.ids.vendor,
            info.pid if self.opts.ids.product < 0 else self.opts.ids.product,
        )
        try:
            if not root.dfu_mode:
                runtime_ids = (info.vid, info.pid)
                self.console.say("Device really in Run-Time Mode, send DFU detach request...")
                if self.opts.mode is Mode.DETACH:
                    with contextlib.suppress(DeviceGoneError):
                        dev.detach(wait_s=max(float(self.opts.detach_delay), 0.5))
                    return EX_OK
                dev = dev.detach(wait_s=max(float(self.opts.detach_delay), 0.5))
                dev, multi_alt = self._after_detach(dev)
            elif self.opts.mode is Mode.DETACH:
                self.console.warn("can't detach (the device is in DFU mode)")
                return self._final_reset(dev, EX_OK)
            return self._final_reset(dev, self._act(dev, multi_alt, runtime_ids))
        finally:
            dev.close()

    def _after_detach(self, dev: DfuDevice) -> tuple[DfuDevice, bool]:
        """dfu-util probes again for DFU-mode interfaces only (run-time IDs impossible)."""
        ids = replace(self.opts.ids, vendor=IMPOSSIBLE, product=IMPOSSIBLE)
        entries = match_entries([dev.info], self.opts, ids)
        if not entries:
            raise CompatError("Lost device after RESET?", EX_IOERR)
        multi_alt = self.dfuse_file and single_interface(entries)
        if len(entries) > 1 and not multi_alt:
            raise CompatError(
                "More than one DFU capable USB device found! Try `--list' and specify the"
                " serial number or disconnect all but one device",
                EX_IOERR,
            )
        if not multi_alt:
            dev.select_alt(entries[0].alt)
        return dev, multi_alt

    # -------------------------------------------------------------- acting

    def _act(self, dev: DfuDevice, multi_alt: bool, runtime_ids: tuple[int, int]) -> int:
        opts = self.opts
        if dev.is_dfuse:
            if opts.transfer_size and opts.transfer_size != dev.transfer_size:
                self.console.say(
                    "Warning: a DfuSe device places blocks wTransferSize apart: using the"
                    f" device's transfer size {dev.transfer_size}, not {opts.transfer_size}"
                )
        elif opts.dfuse_options is not None:
            # dfu-util warns, then fails to read a DfuSe memory layout from the alt name
            self.console.say("Warning: DfuSe option used on non-DfuSe device")
            if dev.layout is None:
                raise CompatError(
                    f"Failed to parse memory layout for alternate interface {dev.alt}", EX_IOERR
                )
        if not (dev.info.transfer_size or opts.transfer_size):
            raise CompatError("Transfer size must be specified", EX_USAGE)
        if opts.mode is Mode.UPLOAD:
            return self._upload(dev)
        return self._download(dev, multi_alt, runtime_ids)

    def _upload(self, dev: DfuDevice) -> int:
        name = self.opts.file
        assert name is not None
        try:
            fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_TRUNC, 0o666)
        except OSError as exc:
            raise CompatError(
                f"Cannot open file {name} for writing: {exc.strerror}", EX_CANTCREAT
            ) from exc
        try:
            with os.fdopen(fd, "wb") as out:
                if not dev.is_dfuse:
                    out.write(dev.upload_dfu())
                    self.console.say("Upload done.")
                    return EX_OK
                ds = self._dfuse_options()
                address, length = self._upload_range(dev, ds)
                out.write(dev.upload(address, length))
        except BaseException:
            # the file was created here (O_EXCL): an upload that failed leaves no empty
            # or partial file behind (a rerun would stop at "File exists")
            os.unlink(name)
            raise
        self.console.say(f"Upload done ({length} bytes from 0x{address:08x}).")
        if ds.leave:
            self._leave(dev, ds.address)
        return EX_OK

    def _dfuse_options(self) -> DfuseOptions:
        text = self.opts.dfuse_options
        return DfuseOptions() if text is None else parse_dfuse_options(text)

    def _upload_range(self, dev: DfuDevice, ds: DfuseOptions) -> tuple[int, int]:
        layout = dev.layout
        length = ds.length
        if ds.address is None:
            if not length:
                self.console.warn("Unbound upload not supported on DfuSe devices")
                length = _DEFAULT_UPLOAD
            self.console.say(f"Limiting default upload to {length} bytes")
            return (layout.address if layout is not None else 0x0800_0000), length
        address = ds.address
        sector = layout.sector_at(address) if layout is not None else None
        if not ds.force and (sector is None or not sector.readable):
            raise CompatError(f"Page at 0x{address:08x} is not readable", EX_USAGE)
        if not length:
            if sector is not None and layout is not None:
                length = _segment_end(layout, address) - address + 1
                self.console.say(f"Limiting upload to end of memory segment, {length} bytes")
            else:
                length = _DEFAULT_UPLOAD
                self.console.say(f"Limiting upload to {length} bytes")
        return address, length

    def _download(self, dev: DfuDevice, multi_alt: bool, runtime_ids: tuple[int, int]) -> int:
        loaded = self.loaded
        info = dev.info
        if loaded is not None:
            vid, pid = loaded.vendor_id, loaded.product_id
            if (
                (vid != _ANY_ID and vid != runtime_ids[0])
                or (pid != _ANY_ID and pid != runtime_ids[1])
            ) and ((vid != _ANY_ID and vid != info.vid) or (pid != _ANY_ID and pid != info.pid)):
                raise CompatError(
                    f"Error: File ID {vid:04x}:{pid:04x} does not match device"
                    f" ({runtime_ids[0]:04x}:{runtime_ids[1]:04x} or"
                    f" {info.vid:04x}:{info.pid:04x})",
                    EX_USAGE,
                )
        if not (dev.is_dfuse or self.opts.dfuse_options is not None or self.dfuse_file):
            assert loaded is not None
            dev.download(loaded.payload, verify=self.opts.verify, force=True)
            self.console.say("Download done.")
            return EX_OK
        return self._dfuse_download(dev, multi_alt)

    def _dfuse_download(self, dev: DfuDevice, multi_alt: bool) -> int:
        ds = self._dfuse_options()
        loaded = self.loaded
        if ds.unprotect:
            if not ds.force:
                raise CompatError(
                    "The read unprotect command will erase the flash memory and can only be"
                    " used with force",
                    EX_USAGE,
                )
            dev.read_unprotect(confirm=True)
            self.console.say("Device disconnects, erases flash and resets now")
            return EX_OK
        if ds.mass_erase and not ds.force:
            raise CompatError("The mass erase command can only be used with force", EX_USAGE)
        leave_address = ds.address
        guards = _Guards(otp_lock=bool(ds.force), rdp2=bool(ds.force))
        erase = "mass" if ds.mass_erase else "sectors"
        if ds.mass_erase:
            self.console.say("Performing mass erase, this can take a moment")
        if loaded is None:
            if ds.mass_erase:
                dev.mass_erase()
            self.console.say("DfuSe command mode")
        elif ds.address is not None:
            if loaded.bcd_dfu == _DFUSE_BCD:
                raise CompatError("This is a DfuSe file, not meant for raw download", EX_USAGE)
            self.console.say(
                f"Downloading element to address = 0x{ds.address:08x}, size = {len(loaded.payload)}"
            )
            dev.download(loaded.payload, self._options(erase, guards), address=ds.address)
            self.console.say("File downloaded successfully")
        else:
            if loaded.bcd_dfu != _DFUSE_BCD:
                self.console.warn("Only DfuSe file version 1.1a is supported")
                raise CompatError(
                    "(for raw binary download, use the --dfuse-address option)", EX_USAGE
                )
            leave_address = self._download_dfuse_file(dev, multi_alt, erase, guards)
        if ds.leave:
            self._leave(dev, leave_address)
        return EX_OK

    def _options(self, erase: str, guards: _Guards) -> DownloadOptions:
        """What every dfu-util download asks of the library: dfu-util writes any memory
        (option bytes and OTP too, its own guards are the ``-s`` modifiers) and ignores the
        file's IDs here (checked before, with dfu-util's rules)."""
        from dfuse import DownloadOptions

        return DownloadOptions(
            verify=self.opts.verify,
            force=True,
            erase=erase,
            allow_option_bytes=True,
            allow_otp=True,
            allow_otp_lock=guards.otp_lock,
            allow_permanent_rdp2=guards.rdp2,
        )

    def _download_dfuse_file(
        self, dev: DfuDevice, multi_alt: bool, erase: str, guards: _Guards
    ) -> int | None:
        """Each target to its alternate setting; without ``multi_alt`` only the selected
        one's (dfu-util skips the others with a warning). Returns the first element's
        address (dfu-util's leave address)."""
        from dfuse import DfuSeFile

        assert self.loaded is not None
        image = DfuSeFile.parse(self.loaded.data)
        present = {a.number for a in dev.info.alt_settings} if multi_alt else {dev.alt}
        targets = []
        for target in image.targets:
            if target.alt_setting in present:
                targets.append(target)
            else:
                self.console.warn(f"No alternate setting {target.alt_setting} (skipping elements)")
        first = next((t.elements[0].address for t in image.targets if t.elements), None)
        if any(t.elements for t in targets):
            dev.download(replace(image, targets=tuple(targets)), self._options(erase, guards))
        self.console.say("Done parsing DfuSe file")
        return first

    def _leave(self, dev: DfuDevice, address: int | None) -> None:
        self.console.say("Submitting leave request...")
        dev.leave(address)

    def _final_reset(self, dev: DfuDevice, status: int) -> int:
        from dfuse.errors import TransportError

        if status != EX_OK or not self.opts.final_reset:
            return status
        self.console.say("Resetting USB to switch back to Run-Time mode")
        try:
            dev.reset()
        except TransportError as exc:
            # gone already (after :leave, or a device that resets itself): that is the goal
            self.console.say(f"(reset: {exc})")
        return status


def _segment_end(layout: MemoryLayout, address: int) -> int:
    """The last address of dfu-util's memory segment holding ``address``: the run of
    equal, contiguous sectors around it (one ``N*SIZEt`` group of the layout string)."""
    sector = layout.sector_at(address)
    assert sector is not None
    end = sector.end  # one past the sector
    while True:
        nxt = layout.sector_at(end)
        if nxt is None or nxt.size != sector.size or nxt.access != sector.access:
            return end - 1
        end = nxt.end
