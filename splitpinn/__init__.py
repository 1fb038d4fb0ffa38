"""splitpinn: splitting physics-informed neural networks for neuron models.

Declare a model symbolically (:class:`Model`), solve it with ``solve(model, method=...)``
("reference", "split-pinn" or "vanilla-pinn") and compare methods with ``compare``.

The package is layered by stage of the pipeline, each layer importing only from those below
it (``make lint`` checks): ``declare`` (models, equations from text, units, stimuli) →
``numeric`` (binding to numbers, generated and compiled code) → ``solvers`` (the marching core,
its steppers, the references, results) → ``analysis`` (comparisons, sweeps, F–I curves,
latency, networks, discrete maps, fitting, plots) → ``io`` (model files, NeuroML), with
``api``, ``cli`` and ``errors`` on top.  The public modules keep their short names:
``splitpinn.stimulus``, ``splitpinn.compare``, ``splitpinn.sweep``, ``splitpinn.fi``,
``splitpinn.latency``, ``splitpinn.networks``, ``splitpinn.plotting`` (loaded on first use).
``splitpinn.fit(...)`` fits a model to recorded data (its module, with ``FitResult`` and the
losses, imports as ``splitpinn.fit`` too: ``from splitpinn.fit import FitResult``).
"""

import importlib
import os
import sys

os.environ.setdefault("DDE_BACKEND", "pytorch")

from . import models  # noqa: E402
from .analysis import compare, fi, latency, networks, sweep  # noqa: E402
from .analysis.discretise import discretise  # noqa: E402
from .analysis.fit import fit  # noqa: E402
from .api import METHODS, solve  # noqa: E402
from .declare import stimulus  # noqa: E402
from .declare.model import Event, I_ext, Model, SpikeDetector, State, t  # noqa: E402
from .errors import ModelError, SolverError  # noqa: E402
from .numeric.bound import BoundModel  # noqa: E402
from .solvers import reference, splitting  # noqa: E402
from .solvers.solution import Solution  # noqa: E402

__all__ = ["METHODS", "BoundModel", "Event", "I_ext", "Model", "ModelError", "Solution",
           "SolverError", "SpikeDetector", "State", "compare", "discretise", "fi", "fit",
           "latency", "models", "networks", "reference", "solve", "splitting", "stimulus",
           "sweep", "t"]
__version__ = "0.1.0"

#: Public module names -> their place in the layers (``import splitpinn.compare`` works).
PUBLIC_MODULES = {"stimulus": "declare.stimulus", "compare": "analysis.compare",
                  "sweep": "analysis.sweep", "fi": "analysis.fi", "latency": "analysis.latency",
                  "networks": "analysis.networks", "reference": "solvers.reference",
                  "splitting": "solvers.splitting", "fit": "analysis.fit"}
for _name, _where in PUBLIC_MODULES.items():
    sys.modules[f"{__name__}.{_name}"] = sys.modules[f"{__name__}.{_where}"]


def __getattr__(name: str):
    """``splitpinn.plotting`` without an import of its own (loaded, with matplotlib, on first
    use, so that ``import splitpinn`` stays fast)."""
    if name == "plotting":
        return importlib.import_module(".plotting", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
