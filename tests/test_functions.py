"""The safe rate function x/(1 − e^(−x)): values, derivatives and backends agree with sympy."""

import numpy as np
import pytest
import sympy as sp
import torch

from splitpinn.declare.functions import XOverOneMinusExp
from splitpinn.numeric.lambdify import lambdify

x = sp.Symbol("x", real=True)
CLOSED = x / (1 - sp.exp(-x))
POINTS = [-30.0, -2.0, -1e-2, -2e-3, -1e-3, -1e-4, -1e-9, 1e-9, 1e-4, 1e-3, 2e-3, 0.5, 20.0]


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_value_and_derivative_match_high_precision_closed_form(backend):
    f = lambdify([x], [XOverOneMinusExp(x), sp.diff(XOverOneMinusExp(x), x)], backend)
    args = np.array(POINTS) if backend == "numpy" else torch.tensor(POINTS, dtype=torch.float64)
    value, slope = (np.asarray(v, dtype=float) for v in f(args))
    for k, p in enumerate(POINTS):
        exact = sp.N(CLOSED.subs(x, sp.Rational(p)), 30)
        exact_slope = sp.N(sp.diff(CLOSED, x).subs(x, sp.Rational(p)), 30)
        assert value[k] == pytest.approx(float(exact), rel=1e-13)
        assert slope[k] == pytest.approx(float(exact_slope), rel=1e-9)


def test_removable_singularity_is_filled_exactly():
    f = lambdify([x], [XOverOneMinusExp(x), sp.diff(XOverOneMinusExp(x), x)])
    value, slope = f(np.array([0.0]))
    assert value[0] == 1.0 and slope[0] == 0.5
    assert XOverOneMinusExp(sp.Integer(0)) == 1
    assert sp.limit(sp.diff(CLOSED, x), x, 0) == sp.Rational(1, 2)


def test_torch_gradient_is_finite_at_zero_and_matches_derivative():
    v = torch.tensor([0.0, 1e-5, 0.3], dtype=torch.float64, requires_grad=True)
    f = lambdify([x], XOverOneMinusExp(x), "torch")
    f(v).sum().backward()
    assert torch.isfinite(v.grad).all()
    expected = [0.5, 0.5 + 1e-5 / 6, float(sp.diff(CLOSED, x).subs(x, 0.3))]
    np.testing.assert_allclose(v.grad.numpy(), expected, rtol=1e-10)


@pytest.mark.parametrize("point", [-800.0, -710.0, -300.0, -30.0, -1e-2, 1e-2, 30.0, 800.0])
def test_the_float_kernels_match_the_closed_form_without_overflow(point):
    """The scalar rules (Python floats: a single neuron's path, and what numba compiles) give
    the closed form on both sides of 0; below x ≈ −709 e^(−x) overflows, so they must not
    form it (it raised OverflowError in the reference solver: HH from V = −260 mV)."""
    from splitpinn.numeric import kernels

    exact = sp.N(CLOSED.subs(x, sp.Rational(point)), 30)
    exact_slope = sp.N(sp.diff(CLOSED, x).subs(x, sp.Rational(point)), 30)
    assert kernels.XOverOneMinusExp(point) == pytest.approx(float(exact), rel=1e-13, abs=0)
    assert kernels.XOverOneMinusExpPrime(point) == pytest.approx(float(exact_slope), rel=1e-9,
                                                                 abs=0)
