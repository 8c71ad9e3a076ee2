"""``dfuse-util``: a drop-in for dfu-util 0.11's command line, over the dfuse library.

``dfuse-util -a 0 -s 0x08000000:leave -D app.bin`` does what the same dfu-util
command line does (same memory contents, same files from ``-U``, same exit codes,
the same ``-l`` lines), with dfuse underneath. See ``docs/dfu-util.md`` for the
deliberate differences. Console script ``dfuse-util``, also ``python -m dfuse.compat``.
"""

from __future__ import annotations

from dfuse.compat.cli import main

__all__ = ["main"]
