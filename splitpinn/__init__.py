"""splitpinn: splitting physics-informed neural networks for neuron models.

Declare a model symbolically (:class:`Model`), solve it with ``solve(model, method=...)``
("reference", "split-pinn" or "vanilla-pinn") and compare methods with ``compare``.
"""

import os

os.environ.setdefault("DDE_BACKEND", "pytorch")

from . import compare, models, reference, splitting, stimulus  # noqa: E402
from .api import METHODS, solve  # noqa: E402
from .bound import BoundModel  # noqa: E402
from .discretise import discretise  # noqa: E402
from .errors import ModelError, SolverError  # noqa: E402
from .model import Event, I_ext, Model, SpikeDetector, State, t  # noqa: E402
from .solution import Solution  # noqa: E402

__all__ = ["METHODS", "BoundModel", "Event", "I_ext", "Model", "ModelError", "Solution",
           "SolverError", "SpikeDetector", "State", "compare", "discretise", "models", "reference",
           "solve", "splitting", "stimulus", "t"]
__version__ = "0.1.0"


def __getattr__(name: str):
    """``splitpinn.plotting`` without an import of its own (loaded, with matplotlib, on first
    use, so that ``import splitpinn`` stays fast)."""
    if name == "plotting":
        import importlib

        return importlib.import_module(".plotting", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
