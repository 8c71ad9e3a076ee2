"""File commands: ``info``, ``build``, ``extract``, ``suffix add|check|strip``.

They only read and write files; no device is involved.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from dfuse.cli.exitcodes import ExitCode, UsageError
from dfuse.cli.output import Ui
from dfuse.cli.selector import parse_address, parse_int
from dfuse.errors import FileFormatError
from dfuse.file import DfuFile, DfuSeFile, FileKind, Target, detect_kind, load_bytes

__all__ = [
    "DEFAULT_BIN_ADDRESS",
    "cmd_build",
    "cmd_extract",
    "cmd_info",
    "cmd_suffix_add",
    "cmd_suffix_check",
    "cmd_suffix_strip",
    "load_firmware",
    "parse_u16",
]

#: Where ``info`` shows a raw binary when no ``--address`` is given (start of STM32 flash).
DEFAULT_BIN_ADDRESS = 0x08000000

_KIND_NAMES = {
    FileKind.DFUSE: "DfuSe .dfu",
    FileKind.DFU: "plain DFU 1.1 .dfu",
    FileKind.IHEX: "Intel HEX",
    FileKind.SREC: "Motorola S-record",
    FileKind.BINARY: "raw binary",
}


def parse_u16(text: str | None, *, what: str, default: int) -> int:
    """A 16-bit ID in hex (``0483``, ``0x0483``); ``default`` when not given."""
    if text is None:
        return default
    try:
        value = int(text, 16)
    except ValueError:
        raise UsageError(f"invalid {what} {text!r}: expected 1-4 hex digits") from None
    if not 0 <= value <= 0xFFFF:
        raise UsageError(f"invalid {what} {text!r}: expected 1-4 hex digits")
    return value


def load_firmware(
    path: str, *, address: int | None, verify_crc: bool = True
) -> tuple[FileKind, DfuSeFile | DfuFile]:
    """Read a firmware file through :func:`dfuse.file.load_bytes`; also say what kind it was."""
    data = Path(path).read_bytes()
    return detect_kind(data), load_bytes(data, address=address, verify_crc=verify_crc, name=path)


def _address(text: str | None) -> int | None:
    return None if text is None else parse_address(text)


def cmd_info(args: argparse.Namespace, ui: Ui) -> int:
    """``dfuse info FILE``: what a firmware file contains."""
    address = _address(args.address)
    data = Path(args.file).read_bytes()
    kind = detect_kind(data)
    assumed = kind is FileKind.BINARY and address is None
    firmware = load_bytes(
        data,
        address=DEFAULT_BIN_ADDRESS if assumed else address,
        verify_crc=not args.no_crc_check,
        name=args.file,
    )
    info: dict[str, Any] = {"ok": True, "file": args.file, "kind": kind.value}
    if kind in (FileKind.DFUSE, FileKind.DFU):
        info.update(firmware.to_dict())
        ui.emit(info)
        ui.print(f"[bold]{args.file}[/bold]: {_KIND_NAMES[kind]}")
        ui.text(firmware.summary())
        if not info.get("crc_ok", True):
            ui.warn("the DFU suffix CRC does not match the contents")
        return ExitCode.OK
    assert isinstance(firmware, DfuSeFile)
    info["file_size"] = len(data)
    info["size"] = firmware.size
    info["targets"] = [t.to_dict() for t in firmware.targets]
    info["address_assumed"] = assumed
    ui.emit(info)
    elements = [e for t in firmware.targets for e in t.elements]
    ui.print(
        f"[bold]{args.file}[/bold]: {_KIND_NAMES[kind]}, {firmware.size} bytes of data"
        f" in {len(elements)} segment(s)"
    )
    for element in elements:
        ui.text(f"  0x{element.address:08X}-0x{element.end - 1:08X}  {element.size:>8} bytes")
    if assumed:
        ui.print(f"(raw binary shown at 0x{DEFAULT_BIN_ADDRESS:08X}; give --address to change)")
    return ExitCode.OK


def _split_input(spec: str, default_address: int | None) -> tuple[str, int | None]:
    """``FILE@ADDRESS`` → (FILE, ADDRESS); a path with '@' but no number stays whole."""
    head, at, tail = spec.rpartition("@")
    if at and head and tail and not Path(spec).exists():
        return head, parse_address(tail, what=f"address in {spec!r}")
    return spec, default_address


def cmd_build(args: argparse.Namespace, ui: Ui) -> int:
    """``dfuse build INPUT... -o OUT.dfu``: one target per input."""
    default_address = _address(args.address)
    alts: list[str] = args.alt or []
    names: list[str] = args.name or []
    if len(alts) > len(args.inputs) or len(names) > len(args.inputs):
        raise UsageError(
            f"{len(args.inputs)} input(s) but {len(alts)} --alt and {len(names)} --name given:"
            " at most one of each per input"
        )
    targets: list[Target] = []
    for index, spec in enumerate(args.inputs):
        path, address = _split_input(spec, default_address)
        kind, firmware = load_firmware(path, address=address)
        if isinstance(firmware, DfuFile):
            raise FileFormatError(
                f"{path}: a plain DFU file has no addresses to build a DfuSe target from",
                expected="a .hex, .s19, .bin or DfuSe .dfu",
                found=_KIND_NAMES[kind],
            )
        alt = (
            parse_int(alts[index], what="alternate setting", maximum=255)
            if index < len(alts)
            else None
        )
        name = names[index] if index < len(names) else None
        for target in firmware.targets:
            targets.append(
                Target(
                    alt_setting=target.alt_setting if alt is None else alt,
                    name=(target.name or "ST...") if name is None else name,
                    elements=target.elements,
                )
            )
    if not args.alt and len(targets) > 1 and all(t.alt_setting == 0 for t in targets):
        targets = [Target(i, t.name, t.elements) for i, t in enumerate(targets)]
    dfu = DfuSeFile(
        tuple(targets),
        vendor_id=parse_u16(args.vid, what="VID", default=0x0483),
        product_id=parse_u16(args.pid, what="PID", default=0xDF11),
        device_version=parse_u16(args.bcd, what="bcdDevice", default=0xFFFF),
    )
    dfu.save(args.output)
    ui.emit({"ok": True, "output": args.output, **dfu.to_dict()})
    ui.print(f"wrote [bold]{args.output}[/bold]")
    ui.text(dfu.summary())
    return ExitCode.OK


_EXTENSIONS = {"hex": ".hex", "s19": ".s19", "bin": ".bin"}


def _target_stems(firmware: DfuSeFile) -> list[str]:
    """What each target's file name gets after the prefix: nothing for a single target,
    ``-altN`` for several, ``-altN-K`` (K counting from 1) for targets that share an
    alternate setting, so that no target's file overwrites another's."""
    targets = firmware.targets
    if len(targets) == 1:
        return [""]
    counts: dict[int, int] = {}
    for target in targets:
        counts[target.alt_setting] = counts.get(target.alt_setting, 0) + 1
    seen: dict[int, int] = {}
    stems = []
    for target in targets:
        alt = target.alt_setting
        seen[alt] = seen.get(alt, 0) + 1
        stems.append(f"-alt{alt}" + (f"-{seen[alt]}" if counts[alt] > 1 else ""))
    return stems


def cmd_extract(args: argparse.Namespace, ui: Ui) -> int:
    """``dfuse extract FILE.dfu``: each target to a .hex, .s19 or .bin."""
    data = Path(args.file).read_bytes()
    firmware = load_bytes(data, name=args.file)
    fmt: str = args.format
    prefix = Path(args.output) if args.output else Path(args.file).with_suffix("")
    written: list[dict[str, Any]] = []
    if isinstance(firmware, DfuFile):
        if fmt != "bin":
            raise UsageError("a plain DFU file has no addresses: extract it with --format bin")
        out = prefix.with_name(prefix.name + ".bin")
        out.write_bytes(firmware.payload)
        written.append({"path": str(out), "size": len(firmware.payload)})
    else:
        for target, stem in zip(firmware.targets, _target_stems(firmware), strict=True):
            out = prefix.with_name(prefix.name + stem + _EXTENSIONS[fmt])
            if fmt == "hex":
                out.write_text(target.to_hex())
            elif fmt == "s19":
                out.write_text(target.to_srec())
            else:
                out.write_bytes(target.to_bin())
            written.append(
                {
                    "path": str(out),
                    "alt_setting": target.alt_setting,
                    "name": target.name,
                    "address": target.start_address,
                    "size": target.size,
                }
            )
    ui.emit({"ok": True, "file": args.file, "written": written})
    for item in written:
        where = f" (alt {item['alt_setting']})" if "alt_setting" in item else ""
        ui.print(f"wrote {item['path']}{where}: {item['size']} bytes")
    return ExitCode.OK


def cmd_suffix(args: argparse.Namespace, ui: Ui) -> int:  # pragma: no cover - ACTION required
    """``dfuse suffix``: a group of actions."""
    raise UsageError("expected an action: add, check or strip")


def cmd_suffix_add(args: argparse.Namespace, ui: Ui) -> int:
    """``dfuse suffix add FILE``: append a DFU 1.1 suffix."""
    data = Path(args.file).read_bytes()
    kind = detect_kind(data)
    if kind in (FileKind.DFU, FileKind.DFUSE):
        raise FileFormatError(
            f"{args.file} already ends with a DFU suffix (strip it first)",
            expected="a file without a DFU suffix",
            found=_KIND_NAMES[kind],
        )
    dfu = DfuFile(
        data,
        vendor_id=parse_u16(args.vid, what="VID", default=0xFFFF),
        product_id=parse_u16(args.pid, what="PID", default=0xFFFF),
        device_version=parse_u16(args.bcd, what="bcdDevice", default=0xFFFF),
    )
    output = args.output or args.file
    dfu.save(output)
    ui.emit({"ok": True, "output": output, **dfu.to_dict()})
    ui.print(f"wrote {output}: {len(data)} bytes + DFU suffix")
    return ExitCode.OK


def cmd_suffix_check(args: argparse.Namespace, ui: Ui) -> int:
    """``dfuse suffix check FILE``: decode the suffix and check its CRC."""
    dfu = DfuFile.parse(Path(args.file).read_bytes())
    ui.emit({"ok": True, "file": args.file, **dfu.to_dict()})
    ui.text(dfu.summary())
    return ExitCode.OK


def cmd_suffix_strip(args: argparse.Namespace, ui: Ui) -> int:
    """``dfuse suffix strip FILE``: remove the suffix (checking its CRC first)."""
    dfu = DfuFile.parse(Path(args.file).read_bytes())
    output = args.output or args.file
    Path(output).write_bytes(dfu.payload)
    ui.emit({"ok": True, "output": output, "size": len(dfu.payload)})
    ui.print(f"wrote {output}: {len(dfu.payload)} bytes (suffix removed)")
    return ExitCode.OK
