"""L2-1σ discretisation of the Caputo derivative (Alikhanov, J. Comput. Phys. 280, 2015).

On a mesh t_0 < t_1 < ... with steps tau_n = t_n - t_{n-1}, the derivative of order 0 < a <= 1
is approximated at the off-mesh point t*_n = t_{n-1} + s tau_n, s = sigma:

    D^a u(t*_n) ~ sum_{k<n} int_{t_{k-1}}^{t_k} w(t*_n - r) (Q_k u)'(r) dr
                  + int_{t_{n-1}}^{t*_n} w(t*_n - r) (Q_{n-1} u)'(r) dr,

with w(t) = t^(-a)/Gamma(1-a). Q_k u is the quadratic through t_{k-1}, t_k, t_{k+1} (the
non-uniform L2-1σ of Liao, McLean & Zhang, SIAM J. Numer. Anal. 57, 2019, and Chen & Stynes,
J. Sci. Comput. 79, 2019). At Alikhanov's sigma = 1 - a/2 the curvature of Q_{n-1} integrates
to zero over [t_{n-1}, t*_n], so the last piece is the linear interpolant, as in his scheme; for
another sigma (several orders sharing one sigma) the quadratic keeps O(tau^(3-a)) consistency.
For a = 1 the formula is the derivative of Q_{n-1} at t*_n: the difference quotient at
sigma = 1/2 (the implicit midpoint rule), BDF2 at sigma = 1. The first step, and steps next to
a jump, use the linear interpolant.

An equation D^a u = f(t, u) is marched by
    (L2-1σ derivative at t*_n) = f(t*_n, sigma u_n + (1 - sigma) u_{n-1}).
The error is O(N^-min(r a, 2)) on a mesh t_k = T (k/N)^r when the solution behaves like t^a
near t = 0 (Chen & Stynes), so r >= 2/a gives second order; solutions smooth up to t^(1+a)
(e.g. t^(1+a) + t^2) are second order on a uniform mesh.

`caputo_l21sigma` applies the formula to samples; `FullL21SigmaHistory` /
`FastL21SigmaHistory` (sum-of-exponentials, the fast L2-1σ of Yan, Sun & Zhang, Commun. Comput.
Phys. 22, 2017) are its memory for time marching, with the interface of `History`.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from .history import History, soe_setup
from .l1 import _check_mesh, graded_mesh, l1_kernel_quotient, validate_alpha

_SERIES_Z2 = 1.0 / 16.0  # first moment: series where z^2 = (h / (2 gap + h))^2 is at most this
_SERIES_TERMS = 14  # the first omitted term is below z^28 < 1e-16 of the first
_VERY_FAR_Z2, _VERY_FAR_TERMS = 1e-4, 4  # where z^8 <= 1e-16: four terms


def default_sigma(alpha) -> float:
    """sigma = 1 - min(alpha)/2: Alikhanov's point for the smallest order (1/2 if all are 1)."""
    return 1.0 - float(np.min(validate_alpha(alpha))) / 2.0


def _check_sigma(sigma, alpha) -> float:
    sigma = default_sigma(alpha) if sigma is None else float(sigma)
    if not 0.5 <= sigma <= 1.0:
        raise ValueError(f"sigma must lie in [1/2, 1], got {sigma!r}")
    return sigma


def onset_mesh(span: float, dt: float, alpha, min_step: float = 0.0) -> np.ndarray:
    """Offsets 0 = s_0 < ... < s_M = span of a mesh graded towards 0, every step at most dt.

    s_k = span (k/M)^r with r = 2/min(alpha) (1 if all orders are 1) and the least M for which
    the last step is <= dt. Solutions behave like (t - t_on)^alpha after an onset t_on (the start,
    the end of a hold after a reset); steps t_on + s_k there, then steps dt, keep an L2-1σ march
    second order where uniform steps dt alone give first order. Offsets in (0, min_step) are
    dropped, so steps stay resolvable next to a large t_on (e.g. min_step = 1e-12 |t_on|).
    """
    if not (0 < dt <= span and math.isfinite(span)):
        raise ValueError(f"need 0 < dt <= span < inf, got dt={dt!r}, span={span!r}")
    r = 2.0 / float(np.min(validate_alpha(alpha)))
    r = 1.0 if r == 2.0 else r
    offsets = graded_mesh(span, math.ceil(r * span / dt * (1 - 1e-12)), r)
    return np.concatenate([[0.0], offsets[(offsets > 0) & (offsets >= min_step)]])


def onset_refinement(points, span: float, dt: float, alpha, min_step: float = 0.0) -> np.ndarray:
    """Offsets 0 = s_0 < ... < points[-1] of a mesh graded towards 0 through the offsets
    ``points`` (increasing, > 0: the output grid after an onset, measured from it).

    Each interval between neighbouring points (0 included) is cut into the fewest pieces for
    which no piece is longer than the :func:`onset_mesh` (span, dt, alpha) steps it overlaps,
    on average: where those steps grow by at most 2x across it, into equal pieces (their
    lengths repeat from interval to interval, so a march reuses what depends on them
    alone), else (next to 0) along onset_mesh's grading.  Unlike onset_mesh's offsets merged
    with the grid, no piece is a sliver next to a grid point.  Offsets in (0, min_step) are
    dropped, as in onset_mesh.
    """
    points = np.asarray(points, dtype=float)
    r = 2.0 / float(np.min(validate_alpha(alpha)))
    r = 1.0 if r == 2.0 else r
    n_mesh = math.ceil(r * span / dt * (1 - 1e-12))
    starts = np.concatenate([[0.0], points[:-1]])
    index = n_mesh * (np.concatenate([[0.0], points]) / span) ** (1.0 / r)  # onset_mesh's k
    pieces = np.maximum(1, np.ceil(np.diff(index) * (1 - 1e-12))).astype(np.int64)
    # onset_mesh's steps grow like s^(1 - 1/r): by at most 2x where b <= 2^(r/(r-1)) a
    equal = np.ones(points.shape, dtype=bool) if r == 1.0 else \
        points <= 2.0 ** (r / (r - 1.0)) * starts
    interval = np.repeat(np.arange(points.size), pieces)
    last = np.cumsum(pieces)
    fraction = (np.arange(last[-1]) - np.repeat(last - pieces, pieces) + 1.0) / pieces[interval]
    ends = np.where(equal[interval],
                    starts[interval] + (points - starts)[interval] * fraction,
                    span * ((index[interval] + np.diff(index)[interval] * fraction)
                            / n_mesh) ** r)
    ends[last - 1] = points
    return np.concatenate([[0.0], ends[ends >= min_step]])


def l21sigma_weights(alpha: float, n: int) -> np.ndarray:
    """Alikhanov's uniform-mesh coefficients c_0..c_n for the step [t_n, t_{n+1}], sigma = 1 - a/2.

    On a uniform mesh of step h, D^a u(t_n + sigma h) ~ h^(-a)/Gamma(2-a) *
    sum_{j=0}^{n} c_j (u_{n+1-j} - u_{n-j}) (his a_l, b_l and c_j, J. Comput. Phys. 280, 2015).
    """
    alpha = validate_alpha(alpha)
    if int(n) != n or n < 0:
        raise ValueError(f"n must be a non-negative integer, got {n!r}")
    n = int(n)
    s, p = 1.0 - alpha / 2.0, 1.0 - alpha
    ell = np.arange(1, n + 1)
    a = np.concatenate([[s**p], (ell + s) ** p - (ell - 1 + s) ** p])
    b = ((ell + s) ** (p + 1) - (ell - 1 + s) ** (p + 1)) / (p + 1) - (
        (ell + s) ** p + (ell - 1 + s) ** p
    ) / 2.0
    c = a.copy()
    if n:
        c[0] += b[0]
        c[1:n] += b[1:] - b[:-1]
        c[n] -= b[n - 1]
    return c


@functools.lru_cache(maxsize=64)
def _moment_series(alpha: float) -> tuple[float, ...]:
    """beta_j = binom(-a, 2j+1)/(2j+3): int_{-z}^{z} v (1+v)^(-a) dv = 2 sum_j beta_j z^(2j+3)."""
    out, binom = [], 1.0
    for k in range(1, 2 * _SERIES_TERMS):
        binom *= (-alpha - k + 1.0) / k
        if k % 2:
            out.append(binom / (k + 2.0))
    return tuple(out)


def _first_moment(gap, h, alpha: float):
    """(1/Gamma(1-a)) int w.r.t. r over [b-h, b] of (t - r)^(-a) (2r - 2b + h), gap = t - b.

    The curvature integral of the quadratic piece on an interval of length h > 0 that ends
    gap > 0 before t (0 < alpha < 1; arrays, broadcast). A series in z = h/(2 gap + h) where
    the closed form cancels (h << gap: far intervals of a graded mesh), the closed form
    elsewhere; each is evaluated only where it is used.
    """
    z = h / (2.0 * gap + h)
    gap, h, z = np.broadcast_arrays(gap, h, z)
    z2 = z * z
    out = np.empty(z.shape)
    very_far = z2 <= _VERY_FAR_Z2  # most intervals of a long march: a short series suffices
    far = ~very_far & (z2 <= _SERIES_Z2)
    out[very_far] = _moment_series_sum(gap[very_far], z[very_far], alpha, _VERY_FAR_TERMS)
    out[far] = _moment_series_sum(gap[far], z[far], alpha)
    near = z2 > _SERIES_Z2
    out[near] = _moment_closed(gap[near], h[near], alpha)
    return out


def _moment_series_sum(gap, z, alpha: float, terms: int = _SERIES_TERMS):
    """`_first_moment` by its series: -4 c^(2-a) z^3 sum_j beta_j z^(2j) / Gamma(1-a)."""
    z2 = z * z
    poly = 0.0
    for beta in reversed(_moment_series(alpha)[:terms]):
        poly = poly * z2 + beta
    c = gap / (1.0 - z)  # gap + h/2
    return -4.0 * c ** (2.0 - alpha) * z * z2 * poly / math.gamma(1.0 - alpha)


def _moment_closed(gap, h, alpha: float):
    """`_first_moment` in closed form: 2 [c (B^p - G^p)/p - (B^(p+1) - G^(p+1))/(p+1)]/Gamma(p)."""
    p = 1.0 - alpha
    log_ratio = np.log1p(h / gap)
    return 2.0 * (
        (gap + 0.5 * h) * gap**p * np.expm1(p * log_ratio) / p
        - gap ** (1.0 + p) * np.expm1((1.0 + p) * log_ratio) / (1.0 + p)
    ) / math.gamma(p)


def _partial_terms(tau, alpha, sigma: float, rg2, rg3):
    """J0, J1: integrals of w(t* - r) times 1 and (2r - t_{n-1} - t_n) over [t_{n-1}, t*].

    J0 = (sigma tau)^(1-a)/Gamma(2-a), J1 = (sigma tau)^(1-a) tau (2 sigma - 2 + a)/Gamma(3-a)
    (J1 = 0 at sigma = 1 - a/2); rg2, rg3 = 1/Gamma(2-a), 1/Gamma(3-a).
    """
    head = (sigma * tau) ** (1.0 - alpha)
    return head * rg2, head * tau * (2.0 * sigma - 2.0 + alpha) * rg3


def _l21sigma_matrix(t, alpha: float, sigma: float):
    """(N, N) matrix W with D^a u at t_{n-1} + sigma tau_n, n = 1..N, ~ W @ diff(u)."""
    tau = np.diff(t)
    gap = (t[:-1] + sigma * tau)[:, None] - t[None, 1:]  # t*_n - t_k: > 0 below the diagonal
    j0, j1 = _partial_terms(tau, alpha, sigma, 1.0 / math.gamma(2.0 - alpha),
                            1.0 / math.gamma(3.0 - alpha))
    a0 = np.diag(j0)  # acts on slopes q_k = du_k / tau_k
    a1 = np.diag(j1[1:], -1)  # acts on curvatures (q_{k+1} - q_k) / (tau_k + tau_{k+1})
    if alpha < 1.0:
        g = np.where(gap > 0, gap, np.ones_like(gap))  # no inf/NaN on and above the diagonal
        a0 = a0 + np.tril(tau * l1_kernel_quotient(g, tau, alpha), -1)
        a1 = a1 + np.tril(_first_moment(g, tau, alpha), -1)
    ones = np.ones_like(tau)
    curvature = (np.diag(ones[1:], 1) - np.diag(ones))[:-1] / (tau[:-1] + tau[1:])[:, None]
    return (a0 + a1[:, :-1] @ curvature) / tau


def caputo_l21sigma(u, t, alpha: float, sigma: float | None = None) -> np.ndarray:
    """L2-1σ Caputo derivative of samples u on mesh t, at t_{n-1} + sigma (t_n - t_{n-1}).

    u has shape (N+1,) or (N+1, ...) (leading axis = time), t is strictly increasing with N+1
    points (uniform or not); sigma in [1/2, 1] defaults to 1 - alpha/2. Returns shape (N, ...),
    row n-1 for the point in [t_{n-1}, t_n]. alpha = 1 gives the difference quotient (midpoint).
    """
    alpha = validate_alpha(alpha)
    sigma = _check_sigma(sigma, alpha)
    u = np.asarray(u, dtype=float)
    t = np.asarray(t, dtype=float)
    _check_mesh(t, u.shape[0])
    return np.tensordot(_l21sigma_matrix(t, alpha, sigma), np.diff(u, axis=0), axes=1)


class L21SigmaHistory(History):
    """Memory of the L2-1σ derivative for time marching (the interface of `History`).

    For a step from t_last to t, with t* = t_last + sigma (t - t_last):

        history_term(t) + local_coefficient(t) * (u(t) - u_last) ~ D^a u(t*).

    One sigma serves every component (`sigma`, default `default_sigma(alpha)`), so that a
    solver evaluates its right-hand side at one time t* and one state
    sigma u(t) + (1 - sigma) u_last. The quadratic piece of the last completed interval passes
    through the new point, so its known part is in history_term and the rest in
    local_coefficient. Order-1 components have no memory beyond that previous slope (none at
    sigma = 1/2). A jump (u changes at one instant) stays in the memory as the Caputo derivative
    of a step, du (t* - t_jump)^(-a)/Gamma(1-a), exact at t*; intervals next to it are linear.
    A same-time append with u unchanged marks a kink (u' jumps: the end of a hold, a jump of f),
    so that no quadratic piece straddles it: mark every such point, or the march loses its
    accuracy there (an O(1) error when onset_mesh steps follow, their first slopes are steep).
    ``setup``: see `History` (default: full).
    """

    def __init__(self, alpha, t0: float, u0, sigma: float | None = None, setup=None):
        alpha = validate_alpha(alpha)
        beta = [_moment_series(order) if order < 1 else (0.0,) * _SERIES_TERMS
                for order in np.broadcast_to(alpha, np.shape(np.atleast_1d(u0)))]
        super().__init__(alpha, t0, u0, setup, sigma=_check_sigma(sigma, alpha),
                         quadratic=True, beta=np.array(beta))


class FastL21SigmaHistory(L21SigmaHistory):
    """Fast L2-1σ (Yan, Sun & Zhang, CiCP 2017): O(N_exp) work per step and memory.

    Pieces that ended at least dt_min before t_last are folded into sum-of-exponentials
    accumulators; t_end, dt_min and tol as for `FastHistory`.
    """

    def __init__(self, alpha, t0: float, u0, t_end: float, dt_min: float, tol: float = 1e-8,
                 sigma: float | None = None):
        orders = np.broadcast_to(validate_alpha(alpha),
                                 np.shape(np.atleast_1d(u0))).astype(float)
        super().__init__(alpha, t0, u0, sigma, soe_setup(orders, float(t0), t_end, dt_min, tol))


class FullL21SigmaHistory(L21SigmaHistory):
    """Exact L2-1σ memory: every piece kept, O(N) work per evaluation and O(N) memory — a
    fast memory without exponentials (``n_exp`` 0), whose window never folds."""
