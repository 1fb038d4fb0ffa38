"""``splitpinn.plotting``, the public name of :mod:`splitpinn.analysis.plotting`: importing
it loads matplotlib, so ``import splitpinn`` does not; this module then stands aside for that
one (both names are the same module)."""

import sys

from .analysis import plotting

sys.modules[__name__] = plotting
