"""``solve()``: one entry point for every method, returning a :class:`Solution` with metadata."""

from __future__ import annotations

import math
import time as _time
from collections.abc import Mapping

from .errors import ModelError
from .model import Model
from .solution import Solution

METHODS = ("reference", "split-pinn", "vanilla-pinn")


def resolve_model(model: Model | str) -> Model:
    """A library model by name, or the given :class:`Model`."""
    if isinstance(model, Model):
        return model
    from . import models

    return models.get(model)


def check_times(t_end: float, dt: float | None) -> None:
    """Reject a non-positive or non-finite end time or step with a :class:`ModelError`."""
    for name, value in (("t_end", t_end), ("dt", dt)):
        if value is None:
            continue
        if not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
            raise ModelError(f"{name} must be a finite number > 0 ms, got {value!r}")
    if dt is not None and dt > t_end:
        raise ModelError(f"dt = {dt:g} ms is longer than t_end = {t_end:g} ms")


def solve(model: Model | str, method: str = "split-pinn", t_end: float = 100.0,
          dt: float | None = None, *, parameters: Mapping[str, float] | None = None,
          initial: Mapping[str, float] | None = None, preset: str | None = None,
          quiet: bool = True, **options) -> Solution:
    """Solve ``model`` on [0, t_end] ms with ``method`` ("reference", "split-pinn" or
    "vanilla-pinn").

    ``dt`` is the method's step and the output grid spacing (each method has a default).
    ``parameters``/``initial`` override defaults; ``preset`` picks a named parameter set.
    Further keyword ``options`` go to the method (e.g. ``scheme``, ``trainer`` and
    ``history`` for split-PINN, ``rtol`` for the reference, ``iterations`` for the vanilla
    PINN); an option the method does not know raises TypeError.
    Raises ModelError for bad input, SolverError when a solve cannot be trusted.
    """
    model = resolve_model(model)
    if method not in METHODS:
        raise ModelError(f"unknown method {method!r} (known: {', '.join(METHODS)})")
    check_times(t_end, dt)
    bound = model.bind(parameters, initial, preset)
    start = _time.perf_counter()
    if method == "reference":
        from .reference import solve_reference

        solution = solve_reference(bound, t_end, dt or 0.01, quiet=quiet, **options)
    elif method == "split-pinn":
        from .marching import solve_split

        solution = solve_split(bound, t_end, dt, quiet=quiet, **options)
    else:
        from .baselines import solve_vanilla_pinn

        solution = solve_vanilla_pinn(bound, t_end, dt or 0.01, quiet=quiet, **options)
    solution.meta = {
        "model": model.name, "method": method, "preset": bound.preset,
        "parameters": bound.parameters,
        "initial": dict(zip(bound.names, bound.y0.tolist(), strict=True)),
        "orders": dict(zip(bound.names, bound.orders.tolist(), strict=True)),
        "states": list(bound.names), "t_end": t_end,
        "dt": float(solution.t[1] - solution.t[0]),
        **solution.meta,
        "wall_time_s": solution.meta.get("wall_time_s", _time.perf_counter() - start),
    }
    return solution
