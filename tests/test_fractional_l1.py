"""L1 Caputo derivative: convergence orders against exact derivatives, validation."""

import math

import numpy as np
import pytest
from scipy.linalg import solve_triangular

from splitpinn.fractional import caputo_l1, graded_mesh, l1_weights

NS = np.array([32, 64, 128, 256, 512])


def _order(ns, errors):
    """Least-squares slope of log(error) against log(h), h = 1/N."""
    return np.polyfit(np.log(1.0 / np.asarray(ns)), np.log(errors), 1)[0]


def _exact_power_derivative(p, alpha, t):
    """Caputo derivative of t^p: Gamma(p+1)/Gamma(p+1-alpha) t^(p-alpha)."""
    return math.gamma(p + 1) / math.gamma(p + 1 - alpha) * t ** (p - alpha)


@pytest.mark.parametrize("alpha", [0.3, 0.5, 0.8])
@pytest.mark.parametrize("p", [2, 3])
def test_order_two_minus_alpha_for_smooth_u(alpha, p):
    # Measured slopes (max error over the mesh, N = 32..512): t^2 -> 1.67/1.49/1.20 and
    # t^3 -> 1.65/1.48/1.19 for alpha = 0.3/0.5/0.8.
    errors = []
    for n in NS:
        t = graded_mesh(2.0, n)
        err = caputo_l1(t**p, t, alpha) - _exact_power_derivative(p, alpha, t[1:])
        errors.append(np.max(np.abs(err)))
    assert abs(_order(NS, errors) - (2 - alpha)) <= 0.1


def test_uniform_weights_match_general_formula():
    alpha, h, n = 0.4, 0.1, 12
    t = h * np.arange(n + 1)
    u = np.sin(3 * t)
    b = l1_weights(alpha, n)
    du = np.diff(u)
    by_weights = [
        h**-alpha / math.gamma(2 - alpha) * b[:k] @ du[k - 1 :: -1] for k in range(1, n + 1)
    ]
    assert np.allclose(caputo_l1(u, t, alpha), by_weights, rtol=1e-13, atol=1e-13)
    assert np.array_equal(l1_weights(1.0, 4), [1.0, 0.0, 0.0, 0.0])


@pytest.mark.parametrize("r", [1.0, 2.5])
def test_alpha_one_is_backward_difference(r):
    t = graded_mesh(3.0, 40, r)
    u = np.stack([np.exp(t), np.cos(t)], axis=1)
    expected = np.diff(u, axis=0) / np.diff(t)[:, None]
    assert np.array_equal(caputo_l1(u, t, 1.0), expected)


@pytest.mark.parametrize("alpha", [0.3, 0.5, 0.8])
def test_graded_mesh_recovers_order_for_t_pow_alpha(alpha):
    """u = t^alpha has D^alpha u = Gamma(1+alpha): typical weak singularity at t = 0.

    On the first interval the L1 value is 1/Gamma(2-alpha) on *every* mesh (scale invariance),
    so the max derivative error over the mesh cannot converge; what converges is the solution
    of the L1 scheme for D^alpha u = Gamma(1+alpha), u(0) = 0 (Stynes, O'Riordan & Gracia,
    SINUM 2017): max error over the mesh O(N^-alpha) on a uniform mesh, O(N^-(2-alpha)) on the
    graded mesh r = (2-alpha)/alpha. Measured slopes, N = 32..512: uniform 0.300/0.500/0.800,
    graded 1.65/1.49/1.14 for alpha = 0.3/0.5/0.8 (alpha = 0.8 approaches 1.2 slowly).
    """
    first = [caputo_l1(t**alpha, t, alpha)[0] for t in (graded_mesh(1.0, 8), graded_mesh(5, 99, 3))]
    assert np.allclose(first, 1 / math.gamma(2 - alpha), rtol=1e-13)

    def solution_errors(r):
        errors = []
        for n in NS:
            t = graded_mesh(1.0, n, r)
            m = caputo_l1(np.eye(n + 1), t, alpha)  # column j: derivative of the j-th hat
            rhs = np.full(n, math.gamma(1 + alpha))
            u = solve_triangular(m[:, 1:], rhs, lower=True)  # u_0 = 0
            errors.append(np.max(np.abs(u - t[1:] ** alpha)))
        return errors

    uniform = _order(NS, solution_errors(1.0))
    graded = _order(NS, solution_errors((2 - alpha) / alpha))
    assert abs(uniform - alpha) <= 0.02
    assert abs(graded - (2 - alpha)) <= 0.1


@pytest.mark.parametrize("alpha", [0.0, -0.5, 1.5, float("nan")])
def test_invalid_alpha_rejected(alpha):
    t = graded_mesh(1.0, 4)
    with pytest.raises(ValueError, match="alpha"):
        caputo_l1(t, t, alpha)
    with pytest.raises(ValueError, match="alpha"):
        l1_weights(alpha, 4)


def test_mesh_must_increase():
    with pytest.raises(ValueError, match="increasing"):
        caputo_l1(np.zeros(3), np.array([0.0, 1.0, 1.0]), 0.5)
