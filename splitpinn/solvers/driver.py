"""``solve()``: one entry point for every method, returning a :class:`Solution` with metadata
(``splitpinn.solve``; the analysis layer calls it from here)."""

from __future__ import annotations

import math
import time as _time
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path

import numpy as np
import sympy as sp

from .. import models
from ..declare.model import Model
from ..errors import ModelError
from ..numeric.bound import bind
from ..numeric.validation import check_output_size
from .registry import names
from .solution import Batch, Solution, output_grid

#: The solve methods (see :mod:`splitpinn.solvers.registry`).
METHODS = names("method")

#: Loaders of model files by suffix (``.toml``, ``.nml``), registered by the io layer
#: (:mod:`splitpinn.io.modelfile`), which sits above this one.
MODEL_FILES: dict = {}


def resolve_model(model: Model | str) -> Model:
    """A library model by name, a model file (``.toml``, or ``.nml`` for NeuroML2), or the
    given :class:`Model`."""
    if isinstance(model, Model):
        return model
    loader = MODEL_FILES.get(Path(str(model)).suffix)
    return models.get(model) if loader is None else loader(model)


#: Output spacing (ms) for models without ``default_dt``: integer order, fractional order.
DEFAULT_OUTPUT_DT = {False: 0.02, True: 0.01}


def default_output_dt(bound) -> float:
    """The output grid spacing (ms) that every method uses when no ``dt`` is given, so that
    solutions of one model by different methods share one grid: the model's ``default_dt``,
    else :data:`DEFAULT_OUTPUT_DT` by order."""
    return bound.model.default_dt or DEFAULT_OUTPUT_DT[bool(bound.fractional)]


def check_times(t_end: float, dt: float | None, t0: float = 0.0) -> None:
    """Reject a non-finite start, a non-positive or non-finite end time or step, with a
    :class:`ModelError`."""
    for name, value in (("t_end", t_end), ("dt", dt), ("t0", t0)):
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or \
                not math.isfinite(value):
            raise ModelError(f"{name} must be a finite number (ms), got {value!r}")
    if dt is not None and dt <= 0:
        raise ModelError(f"dt must be a finite number > 0 ms, got {dt!r}")
    if t_end <= t0:
        what = "t_end must be a finite number > 0 ms" if t0 == 0 else \
            f"t_end must be later than t0 = {t0:g} ms"
        raise ModelError(f"{what}, got {t_end!r}")
    if dt is not None and dt > t_end - t0:
        raise ModelError(f"dt = {dt:g} ms is longer than the interval ({t_end - t0:g} ms)")


def check_shared_options(options: Mapping) -> None:
    """Reject, with a :class:`ModelError`, a bad value of an option that several methods share:
    ``rtol``/``atol`` (finite numbers > 0), ``max_steps`` (an integer >= 1) and ``seed`` (an
    integer >= 0); None means the method's default."""
    for name in ("rtol", "atol"):
        value = options.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)
                                  or not (math.isfinite(value) and value > 0)):
            raise ModelError(f"{name} must be a finite number > 0, got {value!r}")
    check_integer("max_steps", options.get("max_steps"), 1)
    check_integer("seed", options.get("seed"), 0)


def check_integer(what: str, value, low: int) -> None:
    """ModelError unless ``value`` is None or an integer (numpy's too, not a bool) >= ``low``."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, int | np.integer)
                              or value < low):
        raise ModelError(f"{what} must be an integer >= {low}, got {value!r}")


def _grid(bound, t_end: float, dt: float | None, t0: float, t_eval,
          traces: bool = True) -> np.ndarray:
    """The output grid: ``t_eval`` (checked), else spacing ``dt`` (or the model default)."""
    if t_eval is None:
        step = dt or default_output_dt(bound)
        check_output_size(math.ceil((t_end - t0) / step) + 1, len(bound.names),
                          bound.batch or 1, traces=traces)  # before building it
        return output_grid(t_end, step, t0)
    try:
        grid = np.asarray(t_eval, dtype=float)
    except (TypeError, ValueError):
        raise ModelError("t_eval must be a 1-D array of times (ms)") from None
    if grid.ndim != 1 or grid.size < 2 or not np.all(np.isfinite(grid)) \
            or np.any(np.diff(grid) <= 0):
        raise ModelError("t_eval must be a 1-D, strictly increasing array of at least two "
                         "finite times (ms)")
    if grid[0] < t0 - 1e-12 or grid[-1] > t_end + 1e-12:
        raise ModelError(f"t_eval must lie inside [t0, t_end] = [{t0:g}, {t_end:g}] ms")
    return grid


def _march_grid(grid: np.ndarray, t0: float, t_end: float) -> tuple[np.ndarray, slice]:
    """The grid a solve marches on — ``grid`` with t0 and t_end added where it lacks them —
    and the slice of it that was asked for."""
    head, tail = int(grid[0] > t0 + 1e-12), int(grid[-1] < t_end - 1e-12)
    full = np.concatenate([[t0] * head, grid, [t_end] * tail])
    return full, slice(head, len(full) - tail)


def solve(model: Model | str, method: str = "split-pinn", t_end: float = 100.0,
          dt: float | None = None, *, parameters: Mapping | None = None,
          initial: Mapping | None = None, preset: str | None = None, stimulus=None,
          t_eval=None, t0: float = 0.0, traces: bool = True, coupling: Mapping | None = None,
          quiet: bool = True, **options) -> Solution | Batch:
    """Solve ``model`` on [t0, t_end] ms with ``method`` ("reference", "split-pinn" or
    "vanilla-pinn").

    ``dt`` is the spacing of the output grid (each model has a default); adaptive methods
    choose their own steps and sample it by dense output, fixed-step methods step on it.
    ``t_eval`` (1-D, increasing, inside [t0, t_end]) replaces that grid.
    ``parameters``/``initial`` override defaults; ``preset`` picks a named parameter set;
    ``stimulus`` (an expression of ``t``, e.g. :func:`splitpinn.declare.stimulus.sampled`) replaces
    the model's I_ext for this solve.  A value in ``parameters`` or ``initial`` that is a
    1-D array of length B makes a batch of B neurons: the result is then a :class:`Batch`
    (``traces=False`` keeps spike times only).  ``coupling={"weights": W, "target": STATE,
    "delay": ms}`` makes the batch a network of delta synapses: a spike of neuron j adds
    ``W[i, j]`` to STATE of every neuron i (methods "reference" and "split-pinn").
    Further keyword ``options`` go to the method (e.g. ``scheme``, ``trainer``, ``rtol``,
    ``fixed_step`` and ``history`` for split-PINN, ``integrator`` and ``rtol`` for the
    reference, ``iterations`` for the vanilla PINN); an unknown option is a ModelError
    listing the known ones.
    Raises ModelError for bad input, SolverError when a solve cannot be trusted.
    """
    version = metadata.version("splitpinn")

    from . import registry

    model = resolve_model(model)
    stimulus_meta = None
    if stimulus is not None:
        original = model
        model = model.with_stimulus(stimulus)
        stimulus_meta = _stimulus_meta(original, model)
    entry = registry.get("method", method)
    entry.check_options(options)
    check_shared_options(options)
    check_times(t_end, dt, t0)
    bound = bind(model, parameters, initial, preset)
    grid = _grid(bound, t_end, dt, t0, t_eval, traces)
    if coupling is not None:
        from .coupling import Coupling

        options["coupling"] = Coupling.from_spec(bound, coupling)
        entry.check_options(options)
    start = _time.perf_counter()
    marched, asked = _march_grid(grid, t0, t_end)
    solutions = entry.implementation(bound, marched, quiet=quiet, traces=traces, **options)
    wall = _time.perf_counter() - start
    if traces and (asked.start or asked.stop < len(marched)):
        for solution in solutions:
            solution.t, solution.y = solution.t[asked], solution.y[:, asked]
            if solution.dydt is not None:
                solution.dydt = solution.dydt[:, asked]
    rows = np.atleast_2d(bound.y0)
    for r, solution in enumerate(solutions):
        values = bound.parameters if not bound.batch else \
            {k: float(bound.param_columns[j, r]) for j, k in enumerate(model.parameters)}
        solution.meta = {
            "model": model.name, "method": method, "preset": bound.preset,
            "parameters": values, "initial": dict(zip(bound.names, rows[r].tolist(), strict=True)),
            "orders": dict(zip(bound.names, bound.orders.tolist(), strict=True)),
            "states": list(bound.names), "t0": float(t0), "t_end": float(t_end),
            "version": version,
            "units": {k: model.units.get(k, "") for k in [*bound.names, *model.parameters]},
            "dt": float(grid[1] - grid[0]) if t_eval is None else None,
            **({"stimulus": stimulus_meta} if stimulus_meta else {}),
            **solution.meta,
            "wall_time_s": solution.meta.get("wall_time_s", wall),
        }
    if not bound.batch:
        return solutions[0]
    return Batch(solutions, {k: bound.param_columns[j].copy()
                             for j, k in enumerate(model.parameters)},
                 {"model": model.name, "method": method, "wall_time_s": wall,
                  **({"stimulus": stimulus_meta} if stimulus_meta else {})})


def _stimulus_meta(original: Model, model: Model) -> dict:
    """What ``solve(stimulus=...)`` put in the meta: the stimulus (for a recording its source,
    sample count, interpolation and time range), the I_ext it overrides, and the parameters
    that only the overridden stimulus used (their values in ``parameters`` do not apply)."""
    from ..declare.stimulus import describe

    exprs = [*model.equations.values(), *model.auxiliaries.values(), model.stimulus]
    for event in model.events:
        exprs += [event.condition, *event.reset.values(), sp.sympify(event.refractory)]
    exprs += [sp.sympify(v) for s in model.states for v in (s.initial, s.order)]
    used = set().union(*(sp.sympify(e).free_symbols for e in exprs))
    unused = [k for k in model.parameters
              if original.symbol(k) in original.stimulus.free_symbols
              and model.symbol(k) not in used]
    return {**describe(model.stimulus), "overrides": "I_ext",
            "overridden": str(original.stimulus), "unused_parameters": unused}
