"""Compiled (numba) forms of a model and the uniform-step march of the implicit fractional schemes.

Long fixed-step fractional runs spend almost all their time in Python around a few dozen flops
per step (10^6 steps of frac-LIF took minutes).  Two pieces take that overhead out:

* :func:`compiled_model`: the right-hand side, its Jacobian and the event functions of a model,
  printed from sympy as scalar Python (common subexpressions shared) and compiled by numba once
  per model and process;
* :func:`march_uniform`: the implicit L1 / L2-1σ march over a stretch of equal steps with a
  sum-of-exponentials memory (:meth:`~splitpinn.fractional.FastHistory.uniform_recurrence`),
  Newton per step, stopping before the first step that crosses a threshold.

The stepper of :mod:`splitpinn.fractional_reference` uses them for the stretches where they
apply and keeps its pure-numpy steps everywhere else (``compiled=False`` keeps them throughout,
for debugging).  numba is imported on first use: it takes about a second.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import sympy as sp
from sympy.printing.pycode import PythonCodePrinter

from .bound import BoundModel
from .functions import _SMALL


class NotCompilable(Exception):
    """numba cannot compile this model's functions (the caller keeps its numpy path)."""


class Marched(NamedTuple):
    """What :func:`march_uniform` did: the ``states`` (count, n) of the steps it took (all
    recorded), the memory's ``acc`` and ``du_last`` after them, the crossing functions
    ``before`` the next step, the Newton ``iterations`` and whether Newton ``failed``."""

    states: np.ndarray
    acc: np.ndarray
    du_last: np.ndarray
    before: np.ndarray
    iterations: int
    failed: bool


@dataclass(frozen=True)
class CompiledModel:
    """numba functions ``f(t, I_ext, y, p, out)`` of one model: ``rhs`` (out: (n,)),
    ``jacobian`` (out: (n, n)) and ``crossings`` (out: one value per event, then the spike
    detector, as :class:`splitpinn.marching._Crossings`)."""

    rhs: object
    jacobian: object
    crossings: object


def compiled_model(bound: BoundModel) -> CompiledModel:
    """The compiled functions of ``bound``'s model, built on first use and kept on the model."""
    cache = bound.model.__dict__
    if "_compiled" not in cache:
        try:
            cache["_compiled"] = _build(bound)
        except SyntaxError as error:  # a sympy construct without a Python form
            raise NotCompilable(str(error)) from error
    return cache["_compiled"]


def _scalar_special():
    """numba versions of the special functions of :mod:`splitpinn.functions`."""
    import numba

    @numba.njit(cache=True)
    def x_over_one_minus_exp(x):
        return 1 + x / 2 + x * x / 12 if abs(x) < _SMALL else x / -math.expm1(-x)

    @numba.njit(cache=True)
    def x_over_one_minus_exp_prime(x):
        if abs(x) < _SMALL:
            return 0.5 + x / 6 - x**3 / 180
        em = -math.expm1(-x)
        return (em - x * math.exp(-x)) / em**2

    return {"XOverOneMinusExp": x_over_one_minus_exp,
            "XOverOneMinusExpPrime": x_over_one_minus_exp_prime}


def _source(name: str, bound: BoundModel, outputs: list[tuple[str, sp.Expr]]) -> str:
    """Python source of ``def name(t, I_ext, y, p, out)`` assigning each expression to its
    output slot; every symbol is renamed (user names may be keywords or shadow builtins)."""
    n = len(bound.names)
    t, stim, *rest = bound.args
    states, params = rest[:n], rest[n:]
    rename = {t: sp.Symbol("t"), stim: sp.Symbol("I_ext")}
    rename |= {s: sp.Symbol(f"y{k}") for k, s in enumerate(states)}
    rename |= {s: sp.Symbol(f"p{k}") for k, s in enumerate(params)}
    exprs = [sp.sympify(e).xreplace(rename) for _, e in outputs]
    shared, reduced = sp.cse(exprs, symbols=sp.numbered_symbols("c"))
    printer = PythonCodePrinter({"allow_unknown_functions": True})
    lines = [f"def {name}(t, I_ext, y, p, out):"]
    lines += [f"    y{k} = y[{k}]" for k in range(n)]
    lines += [f"    p{k} = p[{k}]" for k in range(len(params))]
    lines += [f"    {s} = {printer.doprint(e)}" for s, e in shared]
    lines += [f"    out[{slot}] = {printer.doprint(e)}"
              for (slot, _), e in zip(outputs, reduced, strict=True)]
    return "\n".join(lines + ["    return 0"]) + "\n"


def _build(bound: BoundModel) -> CompiledModel:
    import numba

    numeric = bound._numeric
    n = len(bound.names)
    jac = numeric.jacobian_exprs
    crossings = [(str(k), ev.expression) for k, ev in enumerate(numeric.events)]
    detector = bound.model.spike_detector
    if detector:
        state = bound.args[2 + bound.index(detector.state)]
        crossings.append((str(len(crossings)), state - detector.threshold))
    namespace = {"math": math, **_scalar_special()}
    compiled = {}
    for name, outputs in (("rhs", [(str(i), e) for i, e in enumerate(numeric.rhs_exprs)]),
                          ("jacobian", [(f"{i}, {j}", jac[i, j]) for i in range(n)
                                        for j in range(n)]),
                          ("crossings", crossings)):
        exec(compile(_source(name, bound, outputs), f"<splitpinn {name}>", "exec"), namespace)
        compiled[name] = numba.njit(namespace[name])
    return CompiledModel(**compiled)


@functools.cache
def _kernel():
    """The compiled march, written with scalar loops: numba compiles array expressions and
    its LAPACK binding (np.linalg.solve) in about ten seconds, more than a long run takes."""
    import numba

    @numba.njit(cache=True)
    def solve_in_place(m, r):
        """r <- m^-1 r for a small system, Gaussian elimination with partial pivoting."""
        n = r.size
        for col in range(n):
            pivot = col
            for i in range(col + 1, n):
                if abs(m[i, col]) > abs(m[pivot, col]):
                    pivot = i
            if pivot != col:
                for j in range(n):
                    m[col, j], m[pivot, j] = m[pivot, j], m[col, j]
                r[col], r[pivot] = r[pivot], r[col]
            for i in range(col + 1, n):
                factor = m[i, col] / m[col, col]
                for j in range(col, n):
                    m[i, j] -= factor * m[col, j]
                r[i] -= factor * r[col]
        for i in range(n - 1, -1, -1):
            for j in range(i + 1, n):
                r[i] -= m[i, j] * r[j]
            r[i] /= m[i, i]

    @numba.njit(cache=True)
    def march(rhs, jacobian, crossings, t0, u0, du_last, acc, E, P, c, D, G1, G2, sigma,
              stops, t_star, stim_star, stim_end, p, active, before, linear, jac,
              newton_tol, max_newton, out):
        n, modes = acc.shape
        u_last, u, u_star, f, r = u0.copy(), u0.copy(), u0.copy(), np.empty(n), np.empty(n)
        H, m, g = np.empty(n), np.empty((n, n)), np.empty(before.size)
        t_last, iterations, count, failed = t0, 0, 0, False
        for k in range(stops.size):
            for i in range(n):
                H[i] = P[i] * du_last[i]
                for j in range(modes):
                    H[i] += E[i, j] * acc[i, j]
                u[i] = u_last[i]
            converged, tries = False, 0
            for _ in range(max_newton):
                tries += 1
                for i in range(n):
                    u_star[i] = sigma * u[i] + (1.0 - sigma) * u_last[i]
                rhs(t_star[k], stim_star[k], u_star, p, f)
                if not linear:
                    jacobian(t_star[k], stim_star[k], u_star, p, jac)
                for i in range(n):
                    r[i] = -(H[i] + c[i] * (u[i] - u_last[i]) - f[i])
                    for j in range(n):
                        m[i, j] = -sigma * jac[i, j]
                    m[i, i] += c[i]
                    if not active[i]:
                        r[i] = 0.0
                        for j in range(n):
                            m[i, j] = 0.0
                        m[i, i] = 1.0
                solve_in_place(m, r)
                converged, finite = True, True
                for i in range(n):
                    u[i] += r[i]
                    finite = finite and math.isfinite(u[i])
                    converged = converged and abs(r[i]) <= newton_tol * max(1.0, abs(u[i]))
                if not finite:
                    converged = False
                    break
                if linear or converged:
                    converged = True
                    break
            if not converged:
                failed = True
                break
            crossings(stops[k], stim_end[k], u, p, g)
            crossed = False
            for j in range(g.size):
                crossed = crossed or (before[j] < 0 and g[j] >= 0)
            if crossed:
                break
            # accepted (only accepted work is counted): record it in the memory
            iterations += tries
            scale = 1.0 / (2.0 * (stops[k] - t_last) ** 2)
            for i in range(n):
                step = u[i] - u_last[i]
                d2 = (step - du_last[i]) * scale  # the curvature L2-1σ keeps
                for j in range(modes):
                    acc[i, j] = D[i, j] * acc[i, j] + G1[i, j] * du_last[i] + G2[i, j] * d2
                du_last[i], u_last[i] = step, u[i]
                out[k, i] = u[i]
            for j in range(g.size):
                before[j] = g[j]
            t_last = stops[k]
            count += 1
        return count, iterations, failed

    return march


def march_uniform(model: CompiledModel, recurrence, t0: float, u0: np.ndarray,
                  stops: np.ndarray, t_star: np.ndarray, stim_star: np.ndarray,
                  stim_end: np.ndarray, params: np.ndarray, active: np.ndarray,
                  before: np.ndarray, jac_const: np.ndarray | None, newton_tol: float,
                  max_newton: int):
    """March from (t0, u0) to ``stops`` (equal steps, the recurrence's dt) until a step would
    cross a threshold (``before`` < 0 <= crossing) or Newton fails; every step taken is
    recorded in the recurrence's state.  ``t_star``, ``stim_star``: the time and stimulus of
    each step's relation; ``stim_end`` the stimulus at each stop (for the crossings);
    ``jac_const``: the Jacobian when it is constant, else None.

    Returns a :class:`Marched`."""
    from numba.core.errors import NumbaError

    n = u0.size
    out = np.empty((stops.size, n))
    linear = jac_const is not None
    acc, du_last = recurrence.acc.copy(), recurrence.du_last.copy()
    after = np.array(before, dtype=float)
    try:
        result = _kernel()(
            model.rhs, model.jacobian, model.crossings, float(t0), np.asarray(u0, dtype=float),
            du_last, acc, recurrence.E, recurrence.P, recurrence.c,
            recurrence.D, recurrence.G1, recurrence.G2, float(recurrence.sigma), stops, t_star,
            stim_star, stim_end, params, active, after, linear,
            np.array(jac_const) if linear else np.zeros((n, n)), float(newton_tol),
            int(max_newton), out)
    except NumbaError as error:  # typing fails on the first call: the model's functions
        raise NotCompilable(str(error)) from error
    count, iterations, failed = result
    return Marched(out[:count], acc, du_last, after, iterations, failed)
