"""One constructor for the memories of both schemes: :func:`make_history`, of a kind in
:data:`HISTORY_KINDS`."""

from __future__ import annotations

from .history import FastHistory, FullHistory
from .l21sigma import FastL21SigmaHistory, FullL21SigmaHistory

#: The kinds of memory: "full" sums over every stored step (exact, O(N) work per step), "fast"
#: approximates the kernel by a sum of exponentials (O(N_exp) work and memory per step).
HISTORY_KINDS = ("full", "fast")


def make_history(
    kind: str, alpha, t0: float, u0, *, t_end: float, dt_min: float, tol: float = 1e-8,
    scheme: str = "l1", sigma: float | None = None,
):
    """Build a "full" or "fast" memory of the "l1" or "l21sigma" scheme.

    t_end, dt_min and tol are used by "fast" only; "l21sigma" takes ``sigma`` (default
    default_sigma(alpha)), "l1" none.
    """
    extra = {}
    if scheme == "l1":
        full, fast = FullHistory, FastHistory
        if sigma is not None:
            raise ValueError("sigma applies to the 'l21sigma' scheme only")
    elif scheme == "l21sigma":
        full, fast = FullL21SigmaHistory, FastL21SigmaHistory
        extra["sigma"] = sigma
    else:
        raise ValueError(f"scheme must be 'l1' or 'l21sigma', got {scheme!r}")
    if kind == "full":
        return full(alpha, t0, u0, **extra)
    if kind == "fast":
        return fast(alpha, t0, u0, t_end, dt_min, tol, **extra)
    raise ValueError(f"history kind must be 'full' or 'fast', got {kind!r}")
