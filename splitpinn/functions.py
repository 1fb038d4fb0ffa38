"""Special functions for rate equations, with numerically safe numpy and torch versions.

Hodgkin–Huxley-type rates contain x / (1 − e^(−x)), whose singularity at x = 0 is removable.
Written as a plain sympy expression it evaluates to 0/0 there; a sympy Piecewise fixes that but
is slow to evaluate.  :class:`XOverOneMinusExp` is a sympy function that differentiates
symbolically and lambdifies (through :func:`lambdify`) to a branch-free safe implementation.
"""

from __future__ import annotations

import numpy as np
import sympy as sp

from . import kernels
from .kernels import _SMALL


class _Special(sp.Function):
    """Printed by name in generated torch code; :func:`lambdify` supplies the implementation."""

    def _torchcode(self, printer):
        return f"{type(self).__name__}({printer._print(self.args[0])})"


class XOverOneMinusExp(_Special):
    """g(x) = x / (1 − e^(−x)), with g(0) = 1."""

    @classmethod
    def eval(cls, x):
        if x.is_zero:
            return sp.Integer(1)
        if x.is_Number:
            return x / (1 - sp.exp(-x))
        return None

    def fdiff(self, argindex=1):
        return XOverOneMinusExpPrime(self.args[0])


class XOverOneMinusExpPrime(_Special):
    """g'(x) = (1 − e^(−x) − x e^(−x)) / (1 − e^(−x))², with g'(0) = 1/2."""

    @classmethod
    def eval(cls, x):
        if x.is_zero:
            return sp.Rational(1, 2)
        if x.is_Number:
            return (1 - sp.exp(-x) - x * sp.exp(-x)) / (1 - sp.exp(-x)) ** 2
        return None

    def fdiff(self, argindex=1):
        x = sp.Dummy("x")
        closed = (1 - sp.exp(-x) - x * sp.exp(-x)) / (1 - sp.exp(-x)) ** 2
        return sp.diff(closed, x).subs(x, self.args[0])


def _g_numpy(x):
    if isinstance(x, float):  # one point (a single neuron's frozen stage): plain floats
        return kernels.XOverOneMinusExp(x)
    x = np.asarray(x, dtype=float)
    small = np.abs(x) < _SMALL
    safe = np.where(small, 1.0, x)
    return np.where(small, 1 + x / 2 + x * x / 12, safe / -np.expm1(-safe))


def _dg_numpy(x):
    if isinstance(x, float):
        return kernels.XOverOneMinusExpPrime(x)
    x = np.asarray(x, dtype=float)
    small = np.abs(x) < _SMALL
    safe = np.where(small, 1.0, x)
    em = -np.expm1(-safe)
    return np.where(small, 0.5 + x / 6 - x**3 / 180, (em - safe * np.exp(-safe)) / em**2)


def _g_torch(x):
    import torch

    small = torch.abs(x) < _SMALL
    safe = torch.where(small, torch.ones_like(x), x)
    return torch.where(small, 1 + x / 2 + x * x / 12, safe / -torch.expm1(-safe))


def _dg_torch(x):
    import torch

    small = torch.abs(x) < _SMALL
    safe = torch.where(small, torch.ones_like(x), x)
    em = -torch.expm1(-safe)
    return torch.where(small, 0.5 + x / 6 - x**3 / 180, (em - safe * torch.exp(-safe)) / em**2)


_NUMPY = {"XOverOneMinusExp": _g_numpy, "XOverOneMinusExpPrime": _dg_numpy}
_TORCH = {"XOverOneMinusExp": _g_torch, "XOverOneMinusExpPrime": _dg_torch}


def lambdify(args, expr, backend: str = "numpy"):
    """sympy.lambdify with the special functions of this module, for "numpy" or "torch"."""
    special = {"numpy": _NUMPY, "torch": _TORCH}[backend]
    return sp.lambdify(args, expr, modules=[special, backend], cse=True)
