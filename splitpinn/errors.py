"""The project's exception types, in one place.

* :class:`ModelError` — the user's mistake: a bad declaration, parameter, option or input
  (the command line exits with status 2).
* :class:`SolverError` — a numerical failure: a solve that could not produce a trustworthy
  answer (the command line says "solver failed: …" and exits with status 1).
* :class:`StageFailure` — one sub-solver stage missed its residual tolerance; the marching
  core catches it and shrinks the step, so it only escapes as a :class:`SolverError`.
* :class:`CompilationWarning` — a model's compiled (numba) code could not be built or loaded:
  it runs on the numpy path (same results, slower); said once per model, with the reason.
"""

from __future__ import annotations


class ModelError(ValueError):
    """A model declaration, parameter, initial value or option is invalid."""


class SolverError(RuntimeError):
    """A solver could not produce a trustworthy solution."""


class StageFailure(RuntimeError):
    """A sub-solver could not meet its residual tolerance on a stage."""

    def __init__(self, residual: float, tol: float) -> None:
        super().__init__(f"PINN residual {residual:.3g} above tolerance {tol:.3g}")
        self.residual = residual


class CompilationWarning(RuntimeWarning):
    """A model runs uncompiled: its compiled (numba) code could not be written, loaded or
    compiled (the message names the reason); the numpy path gives the same results, slower."""
