"""``python -m splitpinn``: the command line (see :mod:`splitpinn.cli`)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
