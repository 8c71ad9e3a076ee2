#!/usr/bin/env python3
"""Fuzz the firmware-file parsers: DfuSeFile.parse, DfuFile.parse and dfuse.file.load_bytes.

    python3 scripts/fuzz_files.py                  # 10**6 inputs (about 20 minutes)
    python3 scripts/fuzz_files.py --count 20000 --seed 7 --out /tmp/failures
    python3 scripts/fuzz_files.py --atheris --count 100000   # coverage-guided (atheris)

Prints, per target, how many inputs ran and failed, inputs/second, the largest memory
peak and the slowest input; saves every failing input (and a .txt saying why) to --out.
Exit status 1 if any input failed. See docs/reliability.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.reliability.fuzzing import FILE_SHARES, main

if __name__ == "__main__":
    sys.exit(main(None, shares=FILE_SHARES, default_count=10**6, prog="fuzz_files.py"))
