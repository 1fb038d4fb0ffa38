"""L1 discretisation of the Caputo derivative of order 0 < alpha <= 1.

The L1 scheme replaces u by its piecewise-linear interpolant on the mesh and differentiates that
exactly:

    D^a u(t_n) ~ sum_{k<n} [(t_n - t_k)^(1-a) - (t_n - t_{k+1})^(1-a)]
                            / (Gamma(2-a) (t_{k+1} - t_k)) * (u_{k+1} - u_k).

Its error is O(h^(2-a)) for smooth u on a uniform mesh; solutions of fractional equations behave
like t^a near t = 0, and a graded mesh t_k = T (k/N)^r with r = (2-a)/a restores that order.
"""

from __future__ import annotations

import math

import numpy as np


def validate_alpha(alpha):
    """Return alpha as a float (or float array) after checking every order lies in (0, 1].

    Raises ValueError naming the offending value; NaN is rejected too.
    """
    arr = np.asarray(alpha, dtype=float)
    bad = arr[~((arr > 0.0) & (arr <= 1.0))]
    if bad.size:
        raise ValueError(f"Caputo order alpha must lie in (0, 1], got {bad.flat[0]!r}")
    return float(arr) if arr.ndim == 0 else arr


def graded_mesh(t_end: float, n: int, r: float = 1.0) -> np.ndarray:
    """Mesh t_k = t_end (k/n)^r, k = 0..n (r = 1: uniform; r > 1: clustered at t = 0).

    t_end is the final time (any time unit), n the number of intervals, r >= 1 the grading.
    """
    if not (t_end > 0 and math.isfinite(t_end)):
        raise ValueError(f"t_end must be positive and finite, got {t_end!r}")
    if int(n) != n or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    if not r >= 1.0:
        raise ValueError(f"grading exponent r must be >= 1, got {r!r}")
    return t_end * (np.arange(int(n) + 1) / int(n)) ** r


def l1_weights(alpha: float, n: int) -> np.ndarray:
    """Uniform-mesh L1 weights b_j = (j+1)^(1-alpha) - j^(1-alpha), j = 0..n-1.

    On a uniform mesh of step h, D^a u(t_n) ~ h^(-a)/Gamma(2-a) * sum_j b_j (u_{n-j} - u_{n-j-1}).
    """
    alpha = validate_alpha(alpha)
    j = np.arange(int(n) + 1, dtype=float)
    p = j ** (1.0 - alpha) if alpha < 1.0 else np.minimum(j, 1.0)  # 0^0 := 0, the limit a -> 1
    return np.diff(p)


def _check_mesh(t: np.ndarray, n_samples: int) -> None:
    if t.ndim != 1 or t.shape[0] != n_samples:
        raise ValueError(f"mesh must be 1-D with {n_samples} points (one per sample): {t.shape}")
    if t.shape[0] < 2:
        raise ValueError("need at least two mesh points")
    if not np.all(np.diff(t) > 0):
        raise ValueError("mesh must be strictly increasing")


def l1_kernel_quotient(gap, h, alpha: float):
    """[(gap + h)^(1-alpha) - gap^(1-alpha)] / (Gamma(2-alpha) h), free of cancellation.

    The L1 coefficient of an interval of length h > 0 that ends gap > 0 before the evaluation
    time (arrays, broadcast). Computed as
    gap^p expm1(p log1p(h/gap)) / h, p = 1 - alpha, which stays accurate when h << gap (early
    intervals of a graded mesh).
    """
    p = 1.0 - alpha
    return gap**p * np.expm1(p * np.log1p(h / gap)) / (h * math.gamma(2.0 - alpha))


def _l1_matrix(t: np.ndarray, alpha: float) -> np.ndarray:
    """(N, N) matrix A with D^a u(t_1..t_N) ~ A @ diff(u), for mesh t of N+1 points."""
    gap = t[1:, None] - t[None, 1:]  # t_n - t_{k+1}: > 0 below the diagonal, 0 on it
    h = np.diff(t)
    older = l1_kernel_quotient(np.where(gap > 0, gap, 1.0), h, alpha)
    return np.tril(older, -1) + np.diag(h ** (-alpha) / math.gamma(2.0 - alpha))


def caputo_l1(u, t, alpha: float) -> np.ndarray:
    """L1 Caputo derivative of order alpha of samples u on mesh t, at t_1..t_N.

    u has shape (N+1,) or (N+1, ...) (leading axis = time), t is strictly increasing with N+1
    points (uniform or not). Returns shape (N, ...). alpha = 1 gives the backward difference.
    """
    alpha = validate_alpha(alpha)
    u = np.asarray(u, dtype=float)
    t = np.asarray(t, dtype=float)
    _check_mesh(t, u.shape[0])
    du = np.diff(u, axis=0)
    if alpha == 1.0:  # the L1 sum collapses to its last term: the backward difference
        return du / np.diff(t).reshape((-1,) + (1,) * (u.ndim - 1))
    return np.tensordot(_l1_matrix(t, alpha), du, axes=1)
