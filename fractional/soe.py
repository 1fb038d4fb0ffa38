"""Sum-of-exponentials (SOE) approximation of the power kernel t^(-beta).

Following Jiang, Zhang, Zhang & Zhang (Commun. Comput. Phys. 21, 2017), start from

    t^(-beta) = 1/Gamma(beta) * integral_0^inf exp(-t s) s^(beta-1) ds

and discretise the integral: Gauss-Jacobi (weight s^(beta-1)) on [0, s_lo] with s_lo = 2/t_end,
where exp(-t s) is a low-degree polynomial for every t <= t_end, then Gauss-Legendre panels of
width 2 in x = ln s (each panel spans a factor e^2 in s, the analogue of the paper's dyadic
intervals) up to where the tail is below tol for t >= delta. Every weight is positive, so the sum
is evaluated without cancellation. The node count per panel is the smallest that meets the
tolerance, verified on a dense logarithmic grid of [delta, t_end].
"""

from __future__ import annotations

import functools
import math

import numpy as np
from scipy.special import gammainccinv, rgamma, roots_jacobi

_PANEL = 2.0  # panel width in ln s
_LOW = 2.0  # s_lo * t_end
_MAX_NODES = 40  # per panel; tol down to about 1e-14 needs far fewer


def soe_error(beta: float, s: np.ndarray, w: np.ndarray, t: np.ndarray) -> float:
    """Max relative error of sum_i w_i exp(-s_i t) against t^(-beta) over the times t."""
    t = np.asarray(t, dtype=float)
    approx = np.exp(-np.outer(t, s)) @ w
    return float(np.max(np.abs(approx * t**beta - 1.0)))


def _nodes(beta: float, delta: float, t_end: float, tol: float, n: int):
    s_lo = _LOW / t_end
    xj, wj = roots_jacobi(n, 0.0, beta - 1.0)  # weight (1 + x)^(beta-1) on [-1, 1]
    s_jac = s_lo * (1.0 + xj) / 2.0
    w_jac = (s_lo / 2.0) ** beta * wj
    # Past x_hi the neglected tail is Gamma(beta, delta e^x_hi)/Gamma(beta) = tol/4 at t = delta.
    x_lo, x_hi = math.log(s_lo), math.log(gammainccinv(beta, tol / 4.0) / delta)
    n_panels = max(1, math.ceil((x_hi - x_lo) / _PANEL))
    xl, wl = np.polynomial.legendre.leggauss(n)
    x = (x_lo + _PANEL * (np.arange(n_panels)[:, None] + (xl + 1.0) / 2.0)).ravel()
    w_leg = np.tile(_PANEL / 2.0 * wl, n_panels) * np.exp(beta * x)
    s = np.concatenate([s_jac, np.exp(x)])
    w = np.concatenate([w_jac, w_leg]) / math.gamma(beta)
    return s, w


def soe_kernel(beta: float, delta: float, t_end: float, tol: float):
    """Nodes s and weights w with |sum_i w_i exp(-s_i t) - t^(-beta)| <= tol t^(-beta).

    Valid for t in [delta, t_end] (same time unit as delta and t_end); beta > 0, 0 < tol < 1.
    Returns (s, w), both 1-D float arrays of length N_exp, all entries positive. Raises
    ValueError if the tolerance cannot be met (tol much below 1e-14).
    """
    if not beta > 0:
        raise ValueError(f"beta must be positive, got {beta!r}")
    if not (0 < delta < t_end and math.isfinite(t_end)):
        raise ValueError(f"need 0 < delta < t_end < inf, got delta={delta!r}, t_end={t_end!r}")
    if not 0 < tol < 1:
        raise ValueError(f"tol must lie in (0, 1), got {tol!r}")
    s, w = _fitted(float(beta), float(delta), float(t_end), float(tol))
    return s.copy(), w.copy()


@functools.lru_cache(maxsize=64)
def _fitted(beta: float, delta: float, t_end: float, tol: float):
    """:func:`soe_kernel`'s nodes and weights, kept for the process: each solve of a fractional
    model asks for the same few, and finding them takes milliseconds."""
    n_check = max(2000, math.ceil(64 * math.log(t_end / delta)))
    t_check = np.geomspace(delta, t_end, n_check)
    for n in range(2, _MAX_NODES + 1):
        s, w = _nodes(beta, delta, t_end, tol, n)
        if soe_error(beta, s, w, t_check) <= tol / 2.0:  # margin for times between grid points
            return s, w
    raise ValueError(f"cannot reach relative tolerance {tol!r} in double precision")


def soe_tables(alpha: np.ndarray, delta: float, span: float, tol: float):
    """Per-component nodes s and weights w, shape (m, N_exp), for the Caputo kernel.

    sum_i w[c, i] exp(-s[c, i] t) approximates t^(-a_c) / Gamma(1 - a_c) to relative error tol
    for t in [delta, span]; alpha (1-D) holds the order of each component. Components of order 1
    (no memory) and the padding of shorter expansions have weight 0 (and node 1).
    """
    nodes = {order: soe_kernel(order, delta, span, tol) for order in np.unique(alpha) if order < 1}
    n_exp = max((len(s) for s, _ in nodes.values()), default=1)
    s_all = np.ones((alpha.shape[0], n_exp))
    w_all = np.zeros((alpha.shape[0], n_exp))
    for c, order in enumerate(alpha):
        if order < 1:
            s, w = nodes[order]
            s_all[c, : len(s)] = s
            w_all[c, : len(s)] = w * rgamma(1.0 - order)
    return s_all, w_all
