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
from dfuse.file import DfuFile, DfuSeFile, Element, FileKind, Target, detect_kind, load_bytes
from dfuse.file.convert import read_file
from dfuse.segments import first_overlap, overlap_error

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
    """Read a firmware file through :func:`dfuse.file.load_bytes` (bounded, regular files
    only: :func:`dfuse.file.convert.read_file`); also say what kind it was.

    A raw binary without an address is refused naming ``--address`` (the library's own
    message names its ``address=`` keyword).
    """
    data = read_file(path)
    kind = detect_kind(data)
    if kind is FileKind.BINARY and address is None and data:
        load_bytes(data, address=0, name=path)  # a .dfu/.hex/.s19 name refuses raw contents
        raise FileFormatError(
            f"{path} is not a .dfu, Intel HEX or S-record file: to use it as a raw binary,"
            " give --address (e.g. --address 0x08000000)",
            offset=0,
            expected="a DFU suffix, ':' (Intel HEX) or 'S0'-'S9' (S-record)",
            found=data[:8],
        )
    return kind, load_bytes(data, address=address, verify_crc=verify_crc, name=path)


def _address(text: str | None) -> int | None:
    return None if text is None else parse_address(text)


def cmd_info(args: argparse.Namespace, ui: Ui) -> int:
    """``dfuse info FILE``: what a firmware file contains."""
    address = _address(args.address)
    data = read_file(args.file)
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
    """``dfuse build INPUT... -o OUT.dfu``: one target per memory (alternate setting).

    Every input goes to alternate setting 0 unless ``--alt`` gives its own (a DfuSe .dfu
    input keeps its targets' settings); the inputs for one setting become one target,
    and inputs that overlap are refused here, not discovered when flashing.
    """
    default_address = _address(args.address)
    alts: list[str] = args.alt or []
    names: list[str] = args.name or []
    if len(alts) > len(args.inputs) or len(names) > len(args.inputs):
        raise UsageError(
            f"{len(args.inputs)} input(s) but {len(alts)} --alt and {len(names)} --name given:"
            " at most one of each per input"
        )
    # alt -> (name, [(element, label)]), in the order the settings first appear
    groups: dict[int, tuple[str | None, list[tuple[Element, str]]]] = {}
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
            setting = target.alt_setting if alt is None else alt
            given, items = groups.setdefault(setting, (None, []))
            if name is not None and given is not None and name != given:
                raise UsageError(
                    f"alternate setting {setting} is named both {given!r} and {name!r}:"
                    " one target, one name"
                )
            label = path if len(firmware.targets) == 1 else f"{path} (alt {target.alt_setting})"
            items.extend((element, label) for element in target.elements)
            groups[setting] = (
                name if name is not None else given if given is not None else target.name or None,
                items,
            )
    targets = [_build_target(alt, name, items) for alt, (name, items) in groups.items()]
    dfu = DfuSeFile(
        tuple(targets),
        vendor_id=parse_u16(args.vid, what="VID", default=0x0483),
        product_id=parse_u16(args.pid, what="PID", default=0xDF11),
        device_version=parse_u16(args.bcd, what="bcdDevice", default=0xFFFF),
    )
    Path(args.output).write_bytes(dfu.to_bytes())
    ui.emit({"ok": True, "output": args.output, **dfu.to_dict()})
    ui.print(f"wrote [bold]{args.output}[/bold]")
    ui.text(dfu.summary())
    return ExitCode.OK


def _build_target(alt: int, name: str | None, items: list[tuple[Element, str]]) -> Target:
    """One target from the elements of every input for ``alt``, in address order; inputs
    that overlap are refused (:func:`dfuse.segments.overlap_error`, naming both files)."""
    items = sorted(items, key=lambda item: item[0].address)
    pair = first_overlap([(e.address, e.size) for e, _ in items])
    if pair is not None:
        (a, a_label), (b, b_label) = items[pair[0]], items[pair[1]]
        raise overlap_error(
            f"inputs for alternate setting {alt}",
            (a.address, a.size, a_label),
            (b.address, b.size, b_label),
        )
    return Target(alt, name if name is not None else "ST...", tuple(e for e, _ in items))


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


_FORMATS_BY_EXTENSION = {
    ".hex": "hex",
    ".ihex": "hex",
    ".ihx": "hex",
    ".s19": "s19",
    ".srec": "s19",
    ".mot": "s19",
    ".bin": "bin",
}


def _extract_paths(args: argparse.Namespace, count: int) -> tuple[str, Path, str]:
    """The format and where ``extract`` writes: ``(format, prefix, extension)``.

    ``-o out.hex`` (an extension of a format) is the file itself for one target, and the
    pattern ``out-altN.hex`` for several; ``-o out`` (no such extension) is a prefix
    that gets the format's extension. Without ``-f``, the extension chooses the format.
    """
    fmt: str | None = args.format
    if args.output is None:
        prefix = Path(args.file).with_suffix("")
        fmt = fmt or "hex"
        return fmt, prefix, _EXTENSIONS[fmt]
    output = Path(args.output)
    implied = _FORMATS_BY_EXTENSION.get(output.suffix.lower())
    if implied is None:
        fmt = fmt or "hex"
        return fmt, output, _EXTENSIONS[fmt]
    if fmt is not None and fmt != implied:
        raise UsageError(
            f"-o {args.output} names {implied} but --format is {fmt}: give one of them"
        )
    return implied, output.with_suffix(""), output.suffix


def cmd_extract(args: argparse.Namespace, ui: Ui) -> int:
    """``dfuse extract FILE.dfu``: each target to a .hex, .s19 or .bin."""
    data = read_file(args.file)
    firmware = load_bytes(data, name=args.file)
    count = len(firmware.targets) if isinstance(firmware, DfuSeFile) else 1
    fmt, prefix, extension = _extract_paths(args, count)
    written: list[dict[str, Any]] = []
    if isinstance(firmware, DfuFile):
        if fmt != "bin":
            raise UsageError("a plain DFU file has no addresses: extract it with --format bin")
        out = prefix.with_name(prefix.name + extension)
        out.write_bytes(firmware.payload)
        written.append({"path": str(out), "size": len(firmware.payload)})
    else:
        for target, stem in zip(firmware.targets, _target_stems(firmware), strict=True):
            out = prefix.with_name(prefix.name + stem + extension)
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
    data = read_file(args.file)
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
    dfu = DfuFile.parse(read_file(args.file))
    ui.emit({"ok": True, "file": args.file, **dfu.to_dict()})
    ui.text(dfu.summary())
    return ExitCode.OK


def cmd_suffix_strip(args: argparse.Namespace, ui: Ui) -> int:
    """``dfuse suffix strip FILE``: remove the suffix (checking its CRC first)."""
    dfu = DfuFile.parse(read_file(args.file))
    output = args.output or args.file
    Path(output).write_bytes(dfu.payload)
    ui.emit({"ok": True, "output": output, "size": len(dfu.payload)})
    ui.print(f"wrote {output}: {len(dfu.payload)} bytes (suffix removed)")
    return ExitCode.OK
