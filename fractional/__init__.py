"""Caputo fractional derivatives of order 0 < alpha <= 1: the L1 and L2-1σ schemes.

`caputo_l1` applies the L1 formula to samples on uniform or graded meshes (`graded_mesh`,
`l1_weights`; `l1_kernel_quotient`: the coefficient of one interval). Time-marching
solvers keep the memory of the derivative in a `History`: `FullHistory` sums over all stored
samples (O(N) per step), `FastHistory` approximates the kernel by a sum of exponentials
(`soe_kernel`, Jiang et al., CiCP 2017) for O(N_exp) work and memory per step; jumps such as spike
resets stay in the memory. `make_history` builds one of the `HISTORY_KINDS`;
`default_history_kind` picks one by the length of a run. A memory's arithmetic is written once,
in `splitpinn.fractional.rules`: plain Python that a `History` runs as it is, and that
splitpinn's solvers run compiled (their histories' ``rules``).

The L2-1σ scheme (Alikhanov 2015; `caputo_l21sigma`, `l21sigma_weights`)
is second order for every alpha: it approximates the derivative at t_{n-1} + sigma tau_n
(`default_sigma`: 1 - alpha/2) from quadratic interpolants of the past; `onset_mesh` grades the
steps after an onset, where solutions behave like t^alpha (`onset_refinement`: through a
grid). `FullL21SigmaHistory` and `FastL21SigmaHistory` are its memory for time marching
(`make_history(..., scheme="l21sigma")`).
"""

from .history import (
    FAST_THRESHOLD_STEPS,
    FastHistory,
    FullHistory,
    History,
    default_history_kind,
)
from .l1 import (
    caputo_l1,
    graded_mesh,
    l1_kernel_quotient,
    l1_weights,
    validate_alpha,
)
from .l21sigma import (
    FastL21SigmaHistory,
    FullL21SigmaHistory,
    L21SigmaHistory,
    caputo_l21sigma,
    default_sigma,
    l21sigma_weights,
    onset_mesh,
    onset_refinement,
)
from .memories import HISTORY_KINDS, make_history
from .soe import soe_error, soe_kernel

__all__ = [
    "FAST_THRESHOLD_STEPS",
    "FastHistory",
    "FastL21SigmaHistory",
    "FullHistory",
    "FullL21SigmaHistory",
    "HISTORY_KINDS",
    "History",
    "L21SigmaHistory",
    "caputo_l1",
    "caputo_l21sigma",
    "default_history_kind",
    "default_sigma",
    "graded_mesh",
    "l1_kernel_quotient",
    "l1_weights",
    "l21sigma_weights",
    "make_history",
    "onset_mesh",
    "onset_refinement",
    "soe_error",
    "soe_kernel",
    "validate_alpha",
]
