"""``python -m libcfake``: the command line (see libcfake.cli)."""

import sys

from .cli import main

sys.exit(main())
