"""The project's exception types, in one place.

* :class:`ModelError` — the user's mistake: a bad declaration, parameter, option or input
  (the command line exits with status 2).
* :class:`SolverError` — a numerical failure: a solve that could not produce a trustworthy
  answer (the command line says "solver failed: …" and exits with status 1).
* :class:`CompilationWarning` — a model's compiled (numba) code could not be built or loaded:
  it runs on the numpy path (same results, slower); said once per model, with the reason.

Any other exception that escapes is a bug: the command line calls it an internal error and
exits with status 3.  A sub-solver stage that misses its tolerance raises nothing: it marks
its row as failed, and the marching core shrinks that row's step.
"""

from __future__ import annotations


class ModelError(ValueError):
    """A model declaration, parameter, initial value or option is invalid."""


class SolverError(RuntimeError):
    """A solver could not produce a trustworthy solution."""


class CompilationWarning(RuntimeWarning):
    """A model runs uncompiled: its compiled (numba) code could not be written, loaded or
    compiled (the message names the reason); the numpy path gives the same results, slower."""
