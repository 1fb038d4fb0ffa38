"""The top of the layers: :func:`solve` for a model given as a :class:`Model`, a library name
or a model file (``.toml``, NeuroML2 ``.nml``: the io layer's loaders, registered here)."""

from .io import modelfile
from .solvers.driver import (
    METHODS,
    MODEL_FILES,
    check_times,
    default_output_dt,
    resolve_model,
    solve,
)

MODEL_FILES.update({".toml": modelfile.load, ".nml": modelfile.load})

__all__ = ["METHODS", "check_times", "default_output_dt", "resolve_model", "solve"]
