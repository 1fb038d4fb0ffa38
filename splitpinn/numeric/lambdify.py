"""``sympy.lambdify`` with safe numpy and torch implementations of the special functions of
:mod:`splitpinn.declare.functions` (scalars through the compiled rules of ``kernels``)."""

from __future__ import annotations

import numpy as np
import sympy as sp

from . import kernels
from .kernels import _SMALL


def _parts(xp, x):
    """|x| < _SMALL, x with 1 there, and −expm1(−x) there: in numpy or torch (``xp``)."""
    small = xp.abs(x) < _SMALL
    safe = xp.where(small, xp.ones_like(x), x)
    return small, safe, -xp.expm1(-safe)


def _g(xp, x):
    small, safe, em = _parts(xp, x)
    return xp.where(small, 1 + x / 2 + x * x / 12, safe / em)


def _dg(xp, x):
    small, safe, em = _parts(xp, x)
    return xp.where(small, 0.5 + x / 6 - x**3 / 180, (em - safe * xp.exp(-safe)) / em**2)


def _numpy(rule, scalar):
    """``rule`` on arrays; a float (one point: a single neuron's frozen stage) by ``scalar``,
    the compiled rule of ``kernels``."""
    return lambda x: scalar(x) if isinstance(x, float) else rule(np, np.asarray(x, dtype=float))


def _torch(rule):
    def apply(x):
        import torch

        return rule(torch, x)

    return apply


_NUMPY = {"XOverOneMinusExp": _numpy(_g, kernels.XOverOneMinusExp),
          "XOverOneMinusExpPrime": _numpy(_dg, kernels.XOverOneMinusExpPrime)}
_TORCH = {"XOverOneMinusExp": _torch(_g), "XOverOneMinusExpPrime": _torch(_dg)}


def lambdify(args, expr, backend: str = "numpy"):
    """sympy.lambdify with the special functions' implementations, for "numpy" or "torch"."""
    special = {"numpy": _NUMPY, "torch": _TORCH}[backend]
    return sp.lambdify(args, expr, modules=[special, backend], cse=True)
