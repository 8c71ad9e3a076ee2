"""Start-up benchmark: how long the ``dfuse`` command takes before it does any work.

Each command runs as a fresh ``python3`` process, interleaved with the baseline
``python3 -c pass`` so both see the same machine load; the best of N wall-clock times
of each is kept, and the ratio ours / baseline printed:

* ``python3 -m dfuse --version`` and ``--help`` (goal: ratio <= 1.5, under 0.12 s where
  ``python3 -c pass`` takes 0.07 s);
* ``python3 -m dfuse info small.hex`` (same goal);
* ``python3 -c "import dfuse"``, which must load neither construct, bincopy, rich nor
  pyusb (checked in ``modules``: the heavy modules that import loaded).

Run ``python3 benchmarks/bench_startup.py`` (``--json`` prints JSON only; results are also
written to ``benchmarks/results/startup.json``; ``--quick`` for fewer repetitions).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results" / "startup.json"
ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("construct", "bincopy", "rich", "usb", "elftools", "libusb_package")
GOAL = 1.5
_SMALL_HEX = ":020000040800F2\n:10000000000102030405060708090A0B0C0D0E0F78\n:00000001FF\n"


def _env(pycache: str) -> dict[str, str]:
    """The children's environment: this checkout first on the path, and bytecode cached
    (in ``pycache``, outside the tree) as an installed package has it, even where
    ``PYTHONDONTWRITEBYTECODE`` is set."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = pycache
    return env


def _run(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def best_of_pair(ours: list[str], repeat: int, env: dict[str, str]) -> tuple[float, float]:
    """Best wall-clock seconds of ``ours`` and of ``python3 -c pass``, interleaved."""
    base = [sys.executable, "-c", "pass"]
    best = [float("inf"), float("inf")]
    for _ in range(repeat):
        for i, argv in enumerate((ours, base)):
            best[i] = min(best[i], _run(argv, env))
    return best[0], best[1]


def heavy_modules_loaded(code: str, env: dict[str, str]) -> list[str]:
    """Which of :data:`HEAVY` are in ``sys.modules`` after running ``code``."""
    probe = f"{code}\nimport sys\nprint(' '.join(sorted({{m.split('.')[0] for m in sys.modules}})))"
    out = subprocess.run(
        [sys.executable, "-c", probe], env=env, check=True, capture_output=True, text=True
    ).stdout.split()
    return [name for name in HEAVY if name in out]


def main(argv: list[str] | None = None) -> int:
    """Run the start-up measurements, print the ratios and save them as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--json", action="store_true", help="print JSON only")
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    parser.add_argument("--output", type=Path, default=RESULTS, help="where to write the JSON")
    args = parser.parse_args(argv)
    repeat = 3 if args.quick else 15
    results: dict[str, Any] = {"python": sys.version.split()[0], "goal": GOAL}
    with tempfile.TemporaryDirectory() as tmp:
        env = _env(str(Path(tmp) / "pycache"))
        small = Path(tmp) / "small.hex"
        small.write_text(_SMALL_HEX)
        commands = {
            "dfuse --version": ["-m", "dfuse", "--version"],
            "dfuse --help": ["-m", "dfuse", "--help"],
            "dfuse info small.hex": ["-m", "dfuse", "info", str(small)],
            "import dfuse": ["-c", "import dfuse"],
        }
        for tail in commands.values():  # warm the bytecode cache
            _run([sys.executable, *tail], env)
        for name, tail in commands.items():
            ours, base = best_of_pair([sys.executable, *tail], repeat, env)
            results[name] = {"seconds": ours, "python_c_pass_s": base, "ratio": ours / base}
        results["import dfuse loads"] = heavy_modules_loaded("import dfuse", env)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    for name in commands:
        r = results[name]
        print(
            f"{name:<22} {r['seconds'] * 1e3:6.1f} ms vs python3 -c pass "
            f"{r['python_c_pass_s'] * 1e3:5.1f} ms -> ratio {r['ratio']:.2f} (goal <= {GOAL})"
        )
    print(f"import dfuse loads: {', '.join(results['import dfuse loads']) or 'none of'} {HEAVY}")
    print(f"saved to {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
