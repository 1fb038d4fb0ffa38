"""The frozen-coefficient least-squares stage as a function of one number, tabulated once.

With its coefficients frozen and a right-hand side constant over the stage, the least-squares
PINN of one state solves u' = f₀ + a·(u − u₀) on a stage of length h: its output weights are
b·M(z)⁻¹(Σo − z·Σv) with z = h·a and b = h·f₀ (see
:meth:`~splitpinn.solvers.subsolvers.LeastSquaresPINN.frozen_system`).  So the trained network's
value at the stage end is u₀ + b·E(z), its residual at the check points b·ρ(z) and its values there
u₀ + b·ν(z): fixed functions of z that do not change from step to step.  A batch of HH
neurons spent most of its time solving that K×K system again for every state and stage.

:class:`StageTable` holds E on pieces in z, each the polynomial through its Chebyshev points
(it agrees with the direct solve to that solve's own rounding) and, per piece, upper bounds of
max|ρ| and max|ν| (the sums of the absolute Chebyshev coefficients, doubled).  The compiled
composed step takes a stage from the table where the bounded residual,
|b|·max|ρ| / max(1, |u₀| − |b|·max|ν|), meets the tolerance — the direct residual then meets
it too — and solves directly everywhere else (large |z|, where the fit fails, and residuals
near the tolerance), so it accepts and rejects exactly what the direct solve does.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
from numpy.polynomial import chebyshev

from . import cache

#: The tabulated range of z = h·∂f/∂x.  Beyond z ≈ 5 the fit's residual exceeds 1e-5 (the
#: network cannot follow e^z) and the direct solve itself is noisy; below −64 it is 1e-2.
Z_LOW, Z_HIGH = -64.0, 5.0
#: Piece width and polynomial degree: E is resolved to the direct solve's rounding (its last
#: Chebyshev coefficient is ~1e-15 of it where steps live, z in [−20, 0]).  Narrow pieces of
#: low degree: a composed HH step spent 40% of its time evaluating E (8 coefficients instead of
#: 17 at width 0.5).  DEGREE is odd: :func:`~splitpinn.numeric.kernels.tabulated_stage` takes
#: the coefficients in pairs.  WIDTH is a power of two: the kernel multiplies by its reciprocal,
#: exactly as dividing by it.
WIDTH, DEGREE = 0.125, 7
assert np.frexp(WIDTH)[0] == 0.5, "WIDTH must be a power of two"
#: Safety factor of the residual and value bounds over the sums of coefficients.
MARGIN = 2.0
#: T_k(s) in powers of s: row k holds its coefficients of s⁰, ..., s^DEGREE.
_POWERS = np.array([np.pad(chebyshev.cheb2poly(row), (0, DEGREE - k))
                    for k, row in enumerate(np.eye(DEGREE + 1))])


@dataclass(frozen=True)
class StageTable:
    """E(z) on pieces of :data:`WIDTH` from :data:`Z_LOW`, with per-piece bounds of
    max_q|ρ_q(z)| (``residual``) and max_q|ν_q(z)| (``reach``).  A piece's E is its Chebyshev
    interpolant in powers of s = 2(z − start)/WIDTH − 1 (``coefficients``: those of s⁰, s¹,
    ...), which the kernel evaluates with short chains of operations; on [−1, 1] that form is
    well conditioned for E (the default basis's: the sum of the absolute coefficients is at
    most 1.11·|E|)."""

    coefficients: np.ndarray  # (pieces, DEGREE + 1)
    residual: np.ndarray  # (pieces,)
    reach: np.ndarray  # (pieces,)

    @classmethod
    def from_system(cls, system: tuple) -> StageTable:
        """Tabulate the stage of ``system`` (G0, G1, G2, Σo, Σv, check rows o and v, end
        row), solving it directly at the Chebyshev points of every piece."""
        pieces = int(round((Z_HIGH - Z_LOW) / WIDTH))
        nodes = chebyshev.chebpts1(DEGREE + 1)
        middles = Z_LOW + WIDTH * (np.arange(pieces) + 0.5)
        z = middles[:, None] + nodes[None, :] * WIDTH / 2  # (pieces, nodes)
        end_value, residuals, values = direct_stage(system, z.ravel())

        def coefficients_of(samples):  # (pieces * nodes, m) -> (pieces, m, DEGREE + 1)
            samples = samples.reshape(pieces, DEGREE + 1, -1).transpose(1, 0, 2)
            fitted = chebyshev.chebfit(nodes, samples.reshape(DEGREE + 1, -1), DEGREE)
            return fitted.reshape(DEGREE + 1, pieces, -1).transpose(1, 2, 0)

        def bound(samples):
            return MARGIN * np.abs(coefficients_of(samples)).sum(axis=2).max(axis=1)

        return cls(coefficients_of(end_value[:, None])[:, 0] @ _POWERS, bound(residuals),
                   bound(values))

    @classmethod
    def of(cls, system: tuple) -> StageTable:
        """:meth:`from_system`, once per process for each system (kept in
        :mod:`splitpinn.numeric.cache` under a digest of it): it depends only on the trainer's
        basis (features, points, seed), which every solve of a sweep shares, and tabulating
        takes ~20 ms."""
        digest = hashlib.sha256()
        for a in system:
            a = np.ascontiguousarray(a, dtype=float)
            digest.update(repr(a.shape).encode() + a.tobytes())
        return cache.cached(f"stage system {digest.hexdigest()}", "stage table",
                            lambda: cls.from_system(system))


def direct_stage(system: tuple, z: np.ndarray):
    """E(z) (m,), ρ(z) and ν(z) (m, checks) by solving the normal equations at each z."""
    g0, g1, g2, o_sum, v_sum, o_check, v_check, end = system
    zz = z[:, None, None]
    weights = np.linalg.solve(g0 - zz * g1 + zz * zz * g2,
                              (o_sum - z[:, None] * v_sum)[..., None])[..., 0]
    residuals = weights @ o_check.T - z[:, None] * (weights @ v_check.T) - 1.0
    return weights @ end, residuals, weights @ v_check.T
