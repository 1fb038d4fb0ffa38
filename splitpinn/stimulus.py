"""Stimulus shapes I(t) as sympy expressions of the time symbol ``t`` (ms).

Each helper returns an expression to pass as ``Model(stimulus=...)`` or to
:meth:`Model.with_stimulus`.  Amplitudes may be numbers or parameter symbols, so that
``--set I=...`` still scales a shaped stimulus.
"""

from __future__ import annotations

import numpy as np
import sympy as sp

from .model import t


def constant(amplitude) -> sp.Expr:
    """I(t) = amplitude."""
    return sp.sympify(amplitude)


def step(amplitude, on: float, off: float | None = None) -> sp.Expr:
    """amplitude between ``on`` and ``off`` ms (``off=None``: stays on), 0 elsewhere."""
    expr = sp.sympify(amplitude) * sp.Heaviside(t - on, 1)
    if off is not None:
        expr -= sp.sympify(amplitude) * sp.Heaviside(t - off, 1)
    return expr


def pulse_train(amplitude, start: float, width: float, period: float,
                count: int | None = None) -> sp.Expr:
    """Rectangular pulses of ``width`` ms every ``period`` ms from ``start`` (``count`` pulses,
    or unbounded)."""
    if not 0 < width < period:
        raise ValueError(f"pulse width {width} must lie in (0, period={period})")
    phase = sp.Mod(t - start, period)
    expr = sp.sympify(amplitude) * sp.Heaviside(t - start, 1) * sp.Heaviside(width - phase, 0)
    if count is not None:
        expr *= sp.Heaviside(start + count * period - t, 0)
    return expr


def sinusoid(amplitude, frequency_hz: float, offset=0.0, phase: float = 0.0) -> sp.Expr:
    """offset + amplitude·sin(2π f t + phase) with f in Hz and t in ms."""
    return sp.sympify(offset) + sp.sympify(amplitude) * sp.sin(
        2 * sp.pi * frequency_hz * t / 1000 + phase)


def breakpoints(expr, t_end: float) -> np.ndarray:
    """Times in (0, t_end) where a stimulus expression may jump, so that solvers can end their
    steps there: zeros of ``Heaviside`` arguments and wrap-around points of ``Mod`` terms whose
    arguments are linear in ``t`` (the forms the helpers above build).  Other discontinuities
    are not found; the PINN residual check then reports the step that straddles one."""
    expr = sp.sympify(expr)
    times: set[float] = set()
    for mod in expr.atoms(sp.Mod):
        times |= _periodic_solutions(mod, 0, t_end)
    for heaviside in expr.atoms(sp.Heaviside):
        arg = heaviside.args[0]
        mods = list(arg.atoms(sp.Mod))
        if len(mods) == 1:
            m = sp.Dummy("m")
            for root in sp.solve(arg.xreplace({mods[0]: m}), m):
                times |= _periodic_solutions(mods[0], root, t_end)
        elif not mods and _linear_in_t(arg):
            times |= {float(r) for r in sp.solve(arg, t)}
    return np.array(sorted(x for x in times if 0 < x < t_end))


def _linear_in_t(expr) -> bool:
    return expr.is_polynomial(t) and sp.degree(expr, t) == 1 and expr.free_symbols == {t}


def _periodic_solutions(mod: sp.Mod, value, t_end: float) -> set[float]:
    """Times in [0, t_end] where ``Mod(u(t), P)`` equals ``value``: u(t) = value + k·P."""
    u, period = mod.args
    if not (_linear_in_t(u) and period.is_number and sp.sympify(value).is_number):
        return set()
    slope, u0 = float(sp.diff(u, t)), float(u.subs(t, 0))
    period, value = float(period), float(value)
    ends = sorted(((u0 - value) / period, (u0 + slope * t_end - value) / period))
    ks = range(int(np.floor(ends[0])), int(np.ceil(ends[1])) + 1)
    return {(value + k * period - u0) / slope for k in ks}
