"""``python -m dfuse.data [PATH]``: regenerate the bundled example firmware."""

from __future__ import annotations

import sys

from dfuse.data import regenerate


def main(argv: list[str] | None = None) -> int:
    """Regenerate the example hex (at ``argv[0]`` if given); return the exit code."""
    args = sys.argv[1:] if argv is None else argv
    written = regenerate(args[0] if args else None)
    sys.stdout.write(f"wrote {written}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
