"""Exact solutions that the tests check against (problems that carry their own solution)."""

import functools

import mpmath
import numpy as np

mpmath.mp.dps = 50


@functools.cache
def _ml_coefficients(alpha: float, count: int = 400):
    return [1 / mpmath.gamma(alpha * k + 1) for k in range(count)]


def _mittag_leffler(alpha: float, z: float) -> float:
    z = mpmath.mpf(z)
    total, power = mpmath.mpf(0), mpmath.mpf(1)
    for k, coef in enumerate(_ml_coefficients(alpha)):
        term = coef * power
        total += term
        power *= z
        if k > 5 and abs(term) < mpmath.mpf(10) ** -40:
            return float(total)
    raise ValueError(f"series for E_{alpha}({z}) did not converge")


def mittag_leffler(alpha: float, z):
    """E_alpha(z) = sum_k z^k / Gamma(alpha k + 1), summed at 50 digits (|z| up to a few);
    D^alpha x = -lam x, x(0) = x0 has x(t) = x0 E_alpha(-lam t^alpha).  Scalars or arrays."""
    out = np.vectorize(lambda x: _mittag_leffler(float(alpha), float(x)), otypes=[float])(z)
    return float(out) if np.ndim(out) == 0 else out


def march_relation(history, t, u):
    """What a marching memory assembles along the samples u (N, m) at times t: the relation
    history_term(t_k) + local_coefficient(t_k)·(u_k − u_last), k = 1..N−1 — the discrete
    Caputo derivative, to check against closed forms."""
    out = []
    for k in range(1, len(t)):
        local = history.local_coefficient(t[k]) * (u[k] - history.u_last)
        out.append(history.history_term(t[k]) + local)
        history.append(t[k], u[k])
    return np.array(out)
