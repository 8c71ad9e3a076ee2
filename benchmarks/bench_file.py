"""Benchmarks for the .dfu codec, as ratios against baselines measured in the same run.

1. parse + CRC-verify of a 1 MiB, 4-target DfuSe file, against ``zlib.crc32`` over the
   same bytes (goal: ratio <= 1.5).
2. Intel HEX -> .dfu bytes (``DfuSeFile.from_hex(path).to_bytes()``), against bincopy's
   own load of the same file (``bincopy.BinFile(path)``) (goal: ratio <= 1.2).
3. Intel HEX of 4,000 disjoint 2-byte records (each its own segment) -> segments, against
   bincopy's load of the same text, whose segment insert is linear per record, so
   quadratic overall (goal: ratio <= 0.5; ours is linear: see ``scaling`` in the JSON).
4. parse + CRC-verify of 1 MiB in 2,000 elements (one target), against ``zlib.crc32`` of
   the same bytes (goal: ratio <= 10): the per-element cost of the header parsing.
5. ``to_bytes()`` of that file, against ``zlib.crc32`` (goal: ratio <= 10), and against
   dfu-util's ``dfuse-pack`` building the same images (``/usr/bin/dfuse-pack``, Debian's
   dfu-util; skipped when absent) for 1, 2,000 and 20,000 elements (goal: ratio < 1 for
   every count).

Run ``python3 benchmarks/bench_file.py`` (``--json`` prints JSON only; results are also
written to ``benchmarks/results/file.json``; ``--quick`` for fewer repetitions).
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import importlib.machinery
import importlib.util
import io
import json
import sys
import tempfile
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import bincopy

from dfuse.file import DfuSeFile, Element, Target
from dfuse.file.convert import read_hex, write_hex

RESULTS = Path(__file__).resolve().parent / "results" / "file.json"
MIB = 1 << 20


def best_of_pair(
    ours: Callable[[], object], base: Callable[[], object], repeat: int, number: int = 1
) -> tuple[float, float]:
    """Best seconds per call of ``ours`` and of ``base`` over ``repeat`` rounds of
    ``number`` calls each, the two interleaved so both see the same machine load."""
    best = [float("inf"), float("inf")]
    for _ in range(repeat):
        for i, fn in enumerate((ours, base)):
            start = time.perf_counter()
            for _ in range(number):
                fn()
            best[i] = min(best[i], (time.perf_counter() - start) / number)
    return best[0], best[1]


def _noise(label: bytes, size: int) -> bytes:
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(label + counter.to_bytes(4, "little")).digest()
        counter += 1
    return bytes(out[:size])


def one_mib_four_targets() -> bytes:
    """A 1 MiB DfuSe file: 4 targets of 2 elements (128 KiB each) with a gap between."""
    targets = []
    for alt in range(4):
        base = 0x08000000 + alt * 0x00100000
        chunk = MIB // 8
        elements = (
            Element(base, _noise(b"a%d" % alt, chunk)),
            Element(base + 0x40000, _noise(b"b%d" % alt, chunk)),
        )
        targets.append(Target(alt, f"Target {alt}", elements))
    return DfuSeFile(targets, vendor_id=0x0483, product_id=0xDF11).to_bytes()


def bench_parse(repeat: int) -> dict[str, float]:
    data = one_mib_four_targets()
    assert DfuSeFile.parse(data).to_bytes() == data
    ours, base = best_of_pair(
        lambda: DfuSeFile.parse(data, verify_crc=True), lambda: zlib.crc32(data), repeat, 10
    )
    return {
        "file_bytes": len(data),
        "parse_verify_s": ours,
        "zlib_crc32_s": base,
        "ratio": ours / base,
        "goal": 1.5,
    }


def many_elements(count: int, total: int = MIB) -> DfuSeFile:
    """``total`` bytes in ``count`` elements of one target, 16 bytes apart."""
    size = total // count
    noise = _noise(b"many", size * count)
    elements = [
        Element(0x08000000 + i * (size + 16), noise[i * size : (i + 1) * size])
        for i in range(count)
    ]
    return DfuSeFile([Target(0, "Internal Flash", elements)], vendor_id=0x0483, product_id=0xDF11)


def bench_many_elements(repeat: int, count: int = 2000) -> dict[str, Any]:
    model = many_elements(count)
    data = model.to_bytes()
    assert DfuSeFile.parse(data) == model
    parse, crc = best_of_pair(lambda: DfuSeFile.parse(data), lambda: zlib.crc32(data), repeat, 5)
    build, crc2 = best_of_pair(model.to_bytes, lambda: zlib.crc32(data), repeat, 5)
    return {
        "elements": count,
        "file_bytes": len(data),
        "parse_s": parse,
        "to_bytes_s": build,
        "zlib_crc32_s": min(crc, crc2),
        "parse_ratio": parse / min(crc, crc2),
        "to_bytes_ratio": build / min(crc, crc2),
        "goal": 10.0,
    }


DFUSE_PACK = Path("/usr/bin/dfuse-pack")


def _dfuse_pack() -> Any:
    """dfu-util's dfuse-pack.py as a module, its output file replaced by a memory buffer."""
    loader = importlib.machinery.SourceFileLoader("dfuse_pack", str(DFUSE_PACK))
    spec = importlib.util.spec_from_loader("dfuse_pack", loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    # build() writes its result to a file: give the module an open() of its own
    vars(module)["open"] = lambda *_args: io.BytesIO()
    return module


def bench_vs_dfuse_pack(repeat: int, counts: tuple[int, ...] = (1, 2000, 20000)) -> dict[str, Any]:
    """``to_bytes()`` against dfuse-pack's ``build()`` of the same targets."""
    if not DFUSE_PACK.exists():
        return {"skipped": f"{DFUSE_PACK} not installed (Debian: apt-get install dfu-util)"}
    pack = _dfuse_pack()
    out: dict[str, Any] = {"goal": 1.0}
    for count in counts:
        model = many_elements(count)
        [target] = model.targets
        images = [[{"address": e.address, "alt": 0, "data": e.data} for e in target.elements]]

        def theirs_build(images: list[list[dict[str, Any]]] = images) -> object:
            return pack.build("x.dfu", images, b"Internal Flash", "0x0483:0xdf11")

        ours, theirs = best_of_pair(model.to_bytes, theirs_build, repeat)
        out[str(count)] = {"to_bytes_s": ours, "dfuse_pack_s": theirs, "ratio": ours / theirs}
    return out


def bench_hex(repeat: int) -> dict[str, float]:
    segments = [
        (0x08000000, _noise(b"hex-a", 192 * 1024)),
        (0x08040000, _noise(b"hex-b", 64 * 1024)),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fw.hex"
        path.write_text(write_hex(segments))
        assert DfuSeFile.from_hex(path).target(0).segments() == segments
        ours, base = best_of_pair(
            lambda: DfuSeFile.from_hex(path).to_bytes(), lambda: bincopy.BinFile(str(path)), repeat
        )
        hex_bytes = path.stat().st_size
    return {
        "hex_bytes": hex_bytes,
        "hex_to_dfu_s": ours,
        "bincopy_load_s": base,
        "ratio": ours / base,
        "goal": 1.2,
    }


def _scattered_hex(records: int) -> str:
    return write_hex([(0x08000000 + i * 32, b"\x01\x02") for i in range(records)])


def bench_scattered(repeat: int, records: int = 4000) -> dict[str, Any]:
    text = _scattered_hex(records)
    assert len(read_hex(text)) == records

    def theirs() -> object:
        binfile = bincopy.BinFile()
        binfile.add_ihex(text)
        return binfile

    ours, base = best_of_pair(lambda: read_hex(text), theirs, repeat)
    scaling = {}
    for n in (records // 4, records, records * 4):
        scaling[str(n)] = best_of_pair(
            functools.partial(read_hex, _scattered_hex(n)), lambda: None, repeat
        )[0]
    return {
        "records": records,
        "read_hex_s": ours,
        "bincopy_add_ihex_s": base,
        "ratio": ours / base,
        "goal": 0.5,
        "scaling": scaling,
    }


def main(argv: list[str] | None = None) -> int:
    """Run both benchmarks, print the ratios and save them as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--json", action="store_true", help="print JSON only")
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    parser.add_argument(
        "--smoke", action="store_true", help="one repetition of small inputs (a test that it runs)"
    )
    parser.add_argument("--output", type=Path, default=RESULTS, help="where to write the JSON")
    args = parser.parse_args(argv)
    repeat = 1 if args.smoke else 3 if args.quick else 30
    parse = bench_parse(repeat)
    hexed = bench_hex(max(1 if args.smoke else 3, repeat // 3))
    scattered = bench_scattered(1 if args.quick or args.smoke else 3, 400 if args.smoke else 4000)
    many = bench_many_elements(
        max(1 if args.smoke else 3, repeat // 3), 200 if args.smoke else 2000
    )
    pack = bench_vs_dfuse_pack(
        1 if args.quick or args.smoke else 5, (1, 200) if args.smoke else (1, 2000, 20000)
    )
    results = {
        "parse_1mib_4_targets_vs_zlib_crc32": parse,
        "hex_to_dfu_vs_bincopy_load": hexed,
        "scattered_records_vs_bincopy": scattered,
        "1mib_2000_elements_vs_zlib_crc32": many,
        "to_bytes_vs_dfuse_pack": pack,
        "python": sys.version.split()[0],
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    p = parse
    h = hexed
    print(
        f"parse+CRC 1 MiB/4 targets: {p['parse_verify_s'] * 1e3:.3f} ms vs zlib.crc32 "
        f"{p['zlib_crc32_s'] * 1e3:.3f} ms -> ratio {p['ratio']:.2f} (goal <= {p['goal']})"
    )
    print(
        f"hex -> .dfu ({h['hex_bytes']} B of hex): {h['hex_to_dfu_s'] * 1e3:.1f} ms vs bincopy "
        f"load {h['bincopy_load_s'] * 1e3:.1f} ms -> ratio {h['ratio']:.2f} (goal <= {h['goal']})"
    )
    c = scattered
    steps = ", ".join(f"{n}: {t * 1e3:.1f} ms" for n, t in c["scaling"].items())
    print(
        f"{c['records']} scattered hex records: {c['read_hex_s'] * 1e3:.1f} ms vs bincopy "
        f"{c['bincopy_add_ihex_s'] * 1e3:.1f} ms -> ratio {c['ratio']:.2f} "
        f"(goal <= {c['goal']}); ours by record count: {steps}"
    )
    m = many
    print(
        f"1 MiB in {m['elements']} elements: parse {m['parse_s'] * 1e3:.2f} ms, to_bytes "
        f"{m['to_bytes_s'] * 1e3:.2f} ms vs zlib.crc32 {m['zlib_crc32_s'] * 1e3:.3f} ms -> "
        f"ratios {m['parse_ratio']:.1f} and {m['to_bytes_ratio']:.1f} (goal <= {m['goal']:g})"
    )
    if "skipped" in pack:
        print(f"to_bytes vs dfuse-pack: skipped ({pack['skipped']})")
    else:
        steps = ", ".join(
            f"{n} elements: {v['ratio']:.2f}" for n, v in pack.items() if isinstance(v, dict)
        )
        print(f"to_bytes vs dfuse-pack build (1 MiB): ratios {steps} (goal < {pack['goal']:g})")
    print(f"saved to {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
