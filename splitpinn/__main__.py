"""``python -m splitpinn``: the command line (see :mod:`splitpinn.cli`)."""

import sys

from .cli import main

sys.exit(main())
