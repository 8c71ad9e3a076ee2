"""Render the part database: the "Supported parts" page (docs/parts.md), the rows as JSON
records (``dfuse sim parts --json``) and as a short table (``dfuse sim parts``).

docs/parts.md is generated from the rows (``python -m dfuse.parts.docgen > docs/parts.md``);
tests/parts/test_docs.py fails when the committed page drifts from the data, and the docs
site renders it afresh (docs/_hooks/parts_reference.py).
"""

from __future__ import annotations

import sys
from dataclasses import fields

from dfuse.parts import MemoryKind, Part, all_parts
from dfuse.parts.schema import Duration

__all__ = ["part_record", "render", "table"]


def _time(d: Duration) -> str:
    def one(seconds: float) -> str:
        if seconds >= 1:
            return f"{seconds:g} s"
        if seconds >= 1e-3:
            return f"{seconds * 1e3:g} ms"
        return f"{seconds * 1e6:g} µs"

    text = f"{one(d.typ)} / {one(d.max)}"
    return text + " (estimate)" if d.estimate else text


def _size(n: int) -> str:
    if n % (1 << 20) == 0:
        return f"{n >> 20} MiB"
    if n % 1024 == 0:
        return f"{n >> 10} KiB"
    return f"{n} B"


def _units(part: Part) -> str:
    return ", ".join(f"{c} x {_size(s)}" for c, s in part.flash.units)


def part_record(part: Part) -> dict[str, object]:
    """A JSON-able record of one row (the fields ``dfuse sim parts --json`` prints)."""
    usb = part.usb
    flash = part.flash
    return {
        "name": part.name,
        "aliases": list(part.aliases),
        "title": part.title,
        "family": part.family,
        "variant_of": part.variant_of,
        "observed": part.observed,
        "usb": {
            "vid": f"{usb.vid:04x}",
            "pid": f"{usb.pid:04x}",
            "bcd_device": f"{usb.bcd_device:04x}" if usb.bcd_device is not None else None,
            "bcd_usb": f"{usb.bcd_usb:04x}",
            "manufacturer": usb.manufacturer,
            "product": usb.product,
            "transfer_size": usb.transfer_size,
            "estimated": list(usb.estimated),
        },
        "alts": [
            {
                "alt": a.number,
                "string": a.string,
                "memory": a.memory.value,
                "status": a.status,
                "evidence": list(a.evidence),
            }
            for a in part.alts
        ],
        "flash": {
            "address": flash.address,
            "size": flash.size,
            "units": [list(u) for u in flash.units],
            "banks": len(flash.banks),
            "program_unit": flash.program_unit,
            "erased": flash.erased,
            "not_erased": flash.not_erased,
            "verify_after_program": flash.verify_after_program,
            "program_time": [flash.program_time.typ, flash.program_time.max],
            "program_width": flash.program_width,
            "erase_times": {
                str(e.size): [e.duration.typ, e.duration.max] for e in flash.erase_times
            },
            "mass_erase": [flash.mass_erase.typ, flash.mass_erase.max],
            "mass_erase_command": flash.mass_erase_command.supported,
        },
        "option_bytes": (
            {
                "exposure": part.option_bytes.exposure,
                "address": part.option_bytes.address,
                "size": part.option_bytes.size,
            }
            if part.option_bytes is not None
            else None
        ),
        "uid_address": part.uid_address,
        "quirks": {name: value for name, value in part.quirks.active().items()},
    }


def table() -> str:
    """One line per part: name, family, flash, programming unit, transfer size, evidence."""
    rows = [("NAME", "FAMILY", "FLASH", "UNIT", "XFER", "ALT STRINGS", "QUIRKS")]
    for p in all_parts():
        observed = sum(a.observed for a in p.alts)
        status = "observed" if p.observed else f"{observed}/{len(p.alts)} observed, unconfirmed"
        rows.append(
            (
                p.name,
                p.family,
                _size(p.flash.size),
                f"{p.flash.program_unit} B",
                str(p.usb.transfer_size),
                status,
                ", ".join(sorted(p.quirks.active())) or "-",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(r[:-1], widths, strict=True)) + "  " + r[-1]
        for r in rows
    )


def _section(part: Part) -> list[str]:
    usb, flash = part.usb, part.flash
    out = [f"## {part.name}", "", f"**{part.title}** ({part.family})."]
    if part.aliases:
        out[-1] += " Also selected as " + ", ".join(f"`{a}`" for a in part.aliases) + "."
    if part.variant_of is not None:
        out[-1] += f" Another ROM version of [{part.variant_of}](#{part.variant_of})."
    out += [f"References: {', '.join(part.references)}.", ""]
    if part.notes:
        out += [part.notes, ""]
    bcd = f"0x{usb.bcd_device:04X}" if usb.bcd_device is not None else "not known"
    est = f" Estimated: {', '.join(usb.estimated)}." if usb.estimated else ""
    out += [
        "### USB identity",
        "",
        f"`{usb.vid:04x}:{usb.pid:04x}`, bcdDevice {bcd}, bcdUSB 0x{usb.bcd_usb:04X}, "
        f"iManufacturer `{usb.manufacturer}`, iProduct `{usb.product}`, "
        f"wTransferSize {usb.transfer_size}.{est}",
        "",
        *[f"- {e}" for e in usb.evidence],
        "",
        "### Alternate settings",
        "",
        "| alt | string | memory | status |",
        "|---|---|---|---|",
    ]
    for a in part.alts:
        shown = a.string.replace(" ", "␣")
        out.append(f"| {a.number} | `{shown}` | {a.memory.value} | {a.status} |")
    out += ["", "(␣ marks a space: the strings are exact.) Evidence:", ""]
    for a in part.alts:
        out += [f"- alt {a.number}: " + "; ".join(a.evidence)]
    banks = f"{len(flash.banks)} banks" if len(flash.banks) > 1 else "one bank"
    refusal = "refused (errPROG)" if flash.not_erased == "error" else "bits only clear (NOR AND)"
    out += [
        "",
        "### Flash",
        "",
        f"{_size(flash.size)} at 0x{flash.address:08X} in {_units(part)}, {banks}. "
        f"Programming unit {flash.program_unit} B; programming a unit that is not erased: "
        f"{refusal}; erased value 0x{flash.erased:02X}"
        + ("; verifies after programming (errVERIFY)." if flash.verify_after_program else "."),
        "",
        "| operation | typ / max |",
        "|---|---|",
        f"| program {flash.program_width} B | {_time(flash.program_time)} |",
    ]
    for e in sorted(flash.erase_times, key=lambda e: e.size):
        out.append(f"| erase {_size(e.size)} | {_time(e.duration)} |")
    out.append(f"| mass erase | {_time(flash.mass_erase)} |")
    if flash.bank_erase is not None:
        out.append(f"| bank erase | {_time(flash.bank_erase)} |")
    out += ["", *[f"- {e}" for e in flash.evidence]]
    times = [flash.program_time, flash.mass_erase, *(e.duration for e in flash.erase_times)]
    out += sorted({f"- {d.evidence}" for d in times if d.evidence})
    command = flash.mass_erase_command
    if not command.supported:
        status = f"{command.refusal} (estimate)" if command.estimate else f"{command.refusal}"
        out += [
            "",
            "**No DfuSe mass erase**: the ROM refuses `0x41` without an address (dfuERROR/"
            f"{status}, flash unchanged), so dfuse erases page by page and refuses "
            '`erase("all")`. Evidence:',
            "",
            *[f"- {e}" for e in command.evidence],
        ]
    if part.poll_timeouts is not None:
        pt = part.poll_timeouts
        told = ", ".join(
            f"{f.name} {getattr(pt, f.name)} ms"
            for f in fields(pt)
            if f.name != "evidence" and getattr(pt, f.name) is not None
        )
        out += ["", f"Reported bwPollTimeout (fixed): {told}.", *[f"- {e}" for e in pt.evidence]]
    ob = part.option_bytes
    out += ["", "### Option bytes", ""]
    if ob is None:
        out.append("Not exposed by the ROM.")
    else:
        level2 = f"0x{ob.rdp_level2:02X}" if ob.rdp_level2 is not None else "none"
        out += [
            f"{ob.size} bytes at 0x{ob.address:08X}, exposed as {ob.exposure}; RDP byte at "
            f"offset {ob.rdp_offset} (level 0 0x{ob.rdp_level0:02X}, level 2 {level2}, "
            "anything else level 1).",
            "",
            *[f"- {e}" for e in ob.evidence],
        ]
    if part.uid_address is not None:
        out += ["", f"Unique ID (96 bits) at 0x{part.uid_address:08X}."]
    out += ["", "### Quirks", ""]
    active = part.quirks.active()
    if not active:
        out.append("None recorded.")
    for name, value in active.items():
        out.append(f"- `{name}` = `{value}`: {part.quirks.evidence.get(name, '')}")
    out.append("")
    return out


def render() -> str:
    """The whole "Supported parts" page."""
    parts = all_parts()
    observed = sum(p.observed for p in parts)
    lines = [
        "# Supported parts",
        "",
        "<!-- Generated from dfuse/parts/data/*.toml by dfuse/parts/docgen.py: do not edit. -->",
        "",
        f"The part database holds {len(parts)} ROM bootloaders ({observed} with every alt string "
        "seen in a log of a real device). Each row is data (`dfuse/parts/data/*.toml`), read by "
        "the simulator (`sim:NAME`, `dfuse.sim.board(NAME)`) and, for identification, by the "
        "host (`dfuse.parts.identify`). Every fact cites its evidence; an alt string no log "
        "shows is derived from the reference manual and marked *unconfirmed*; a figure that is "
        "not read from a datasheet table is marked *estimate*.",
        "",
        "| part | family | flash | unit | wTransferSize | alt strings | quirks |",
        "|---|---|---|---|---|---|---|",
    ]
    for p in parts:
        status = "observed" if p.observed else "**unconfirmed**"
        quirks = ", ".join(f"`{q}`" for q in sorted(p.quirks.active())) or "-"
        lines.append(
            f"| [{p.name}](#{p.name}) | {p.family} | {_size(p.flash.size)} | "
            f"{p.flash.program_unit} B | {p.usb.transfer_size} | {status} | {quirks} |"
        )
    lines += [
        "",
        "The quirks, as the simulator models them: `first_status_error` (the first GETSTATUS "
        "answers dfuERROR/errFIRMWARE), `mass_erase_poll_timeout_ms` (a reported poll timeout far "
        "shorter than the erase), `wedged_erase_from` (H7 rev V: dfuDNBUSY for good until a "
        "CLRSTATUS pair), `stall_getstatus_while_busy` (L4-class: an early GETSTATUS is answered "
        "or stalled), `stall_clrstatus_outside_error` = false (ST ROMs answer CLRSTATUS in any "
        "state, going to dfuERROR/errUNKNOWN), `leave_without_status`, `leave_needs_set_address`, "
        "`layout_over_reported`, `set_address_skips_busy`. See "
        "[Simulator](simulator.md#parts).",
        "",
    ]
    for p in parts:
        lines += _section(p)
    flash_kinds = {MemoryKind.FLASH}
    assert all(any(a.memory in flash_kinds for a in p.alts) for p in parts)
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":  # pragma: no cover - python -m dfuse.parts.docgen > docs/parts.md
    sys.stdout.write(render())
