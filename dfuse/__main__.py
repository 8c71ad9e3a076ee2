"""``python -m dfuse``: the same command line as the ``dfuse`` console script."""

from __future__ import annotations

from dfuse.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
