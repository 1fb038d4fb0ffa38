"""Special functions for rate equations, declared symbolically.

Hodgkin–Huxley-type rates contain x / (1 − e^(−x)), whose singularity at x = 0 is removable.
Written as a plain sympy expression it evaluates to 0/0 there; a sympy Piecewise fixes that but
is slow to evaluate.  :class:`XOverOneMinusExp` is a sympy function that differentiates
symbolically; :func:`splitpinn.numeric.lambdify.lambdify` gives it a branch-free safe
numpy or torch implementation.
"""

from __future__ import annotations

import sympy as sp


class _Special(sp.Function):
    """Printed by name in generated code; :func:`splitpinn.numeric.lambdify.lambdify` supplies
    the implementation."""

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
