"""Benchmarks for the .dfu codec, as ratios against baselines measured in the same run.

1. parse + CRC-verify of a 1 MiB, 4-target DfuSe file, against ``zlib.crc32`` over the
   same bytes (goal: ratio <= 1.5).
2. Intel HEX -> .dfu bytes (``DfuSeFile.from_hex(path).to_bytes()``), against bincopy's
   own load of the same file (``bincopy.BinFile(path)``) (goal: ratio <= 1.2).
3. Intel HEX of 4,000 disjoint 2-byte records (each its own segment) -> segments, against
   bincopy's load of the same text, whose segment insert is linear per record, so
   quadratic overall (goal: ratio <= 0.5; ours is linear: see ``scaling`` in the JSON).

Run ``python3 benchmarks/bench_file.py`` (``--json`` prints JSON only; results are also
written to ``benchmarks/results/file.json``; ``--quick`` for fewer repetitions).
"""

from __future__ import annotations

import argparse
import functools
import hashlib
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


def bench_scattered(repeat: int) -> dict[str, Any]:
    text = _scattered_hex(4000)
    assert len(read_hex(text)) == 4000

    def theirs() -> object:
        binfile = bincopy.BinFile()
        binfile.add_ihex(text)
        return binfile

    ours, base = best_of_pair(lambda: read_hex(text), theirs, repeat)
    scaling = {}
    for n in (1000, 4000, 16000):
        scaling[str(n)] = best_of_pair(
            functools.partial(read_hex, _scattered_hex(n)), lambda: None, repeat
        )[0]
    return {
        "records": 4000,
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
    parser.add_argument("--output", type=Path, default=RESULTS, help="where to write the JSON")
    args = parser.parse_args(argv)
    repeat = 3 if args.quick else 30
    parse = bench_parse(repeat)
    hexed = bench_hex(max(3, repeat // 3))
    scattered = bench_scattered(1 if args.quick else 3)
    results = {
        "parse_1mib_4_targets_vs_zlib_crc32": parse,
        "hex_to_dfu_vs_bincopy_load": hexed,
        "scattered_records_vs_bincopy": scattered,
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
        f"4000 scattered hex records: {c['read_hex_s'] * 1e3:.1f} ms vs bincopy "
        f"{c['bincopy_add_ihex_s'] * 1e3:.1f} ms -> ratio {c['ratio']:.2f} "
        f"(goal <= {c['goal']}); ours by record count: {steps}"
    )
    print(f"saved to {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
