"""``python -m dfuse.compat``: the ``dfuse-util`` command."""

import sys

from dfuse.compat.cli import main

sys.exit(main())
