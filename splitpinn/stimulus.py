"""Stimulus shapes I(t) as sympy expressions of the time symbol ``t`` (ms).

Each helper returns an expression to pass as ``Model(stimulus=...)`` or to
:meth:`Model.with_stimulus`.  Amplitudes may be numbers or parameter symbols, so that
``--set I=...`` still scales a shaped stimulus.
"""

from __future__ import annotations

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
