#!/usr/bin/env python3
"""Fuzz MemoryLayout.parse (DfuSe alternate-setting strings).

    python3 scripts/fuzz_layout.py                 # 10**5 inputs (about 5 minutes)
    python3 scripts/fuzz_layout.py --count 5000 --seed 3 --out /tmp/failures
    python3 scripts/fuzz_layout.py --atheris --count 100000

Prints how many inputs ran and failed, inputs/second, the largest memory peak and the
slowest input; saves failing inputs to --out. Exit status 1 if any input failed.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.reliability.fuzzing import FuzzTarget, main

if __name__ == "__main__":
    shares = ((FuzzTarget.LAYOUT, 1.0),)
    sys.exit(main(None, shares=shares, default_count=10**5, prog="fuzz_layout.py"))
