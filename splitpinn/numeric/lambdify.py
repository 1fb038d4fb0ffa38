"""``sympy.lambdify`` with safe numpy and torch implementations of the special functions of
:mod:`splitpinn.declare.functions` (scalars through the compiled rules of ``kernels``)."""

from __future__ import annotations

import numpy as np
import sympy as sp

from . import kernels
from .kernels import _SMALL


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
    """sympy.lambdify with the special functions' implementations, for "numpy" or "torch"."""
    special = {"numpy": _NUMPY, "torch": _TORCH}[backend]
    return sp.lambdify(args, expr, modules=[special, backend], cse=True)
