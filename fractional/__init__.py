"""Caputo fractional derivatives of order 0 < alpha <= 1 by the L1 scheme.

`caputo_l1` / `caputo_l1_torch` apply the L1 formula to samples on uniform or graded meshes
(`graded_mesh`, `l1_weights`), the torch one differentiably for PINN residuals. Time-marching
solvers keep the memory of the derivative in a `History`: `FullHistory` sums over all stored
samples (O(N) per step), `FastHistory` approximates the kernel by a sum of exponentials
(`soe_kernel`, Jiang et al., CiCP 2017) for O(N_exp) work and memory per step; jumps such as spike
resets stay in the memory. `make_history` and `default_history_kind` pick one.
"""

from .history import (
    FAST_THRESHOLD_STEPS,
    FastHistory,
    FullHistory,
    History,
    default_history_kind,
    make_history,
)
from .l1 import (
    caputo_l1,
    caputo_l1_torch,
    graded_mesh,
    l1_kernel_quotient,
    l1_weights,
    validate_alpha,
)
from .soe import soe_error, soe_kernel

__all__ = [
    "FAST_THRESHOLD_STEPS",
    "FastHistory",
    "FullHistory",
    "History",
    "caputo_l1",
    "caputo_l1_torch",
    "default_history_kind",
    "graded_mesh",
    "l1_kernel_quotient",
    "l1_weights",
    "make_history",
    "soe_error",
    "soe_kernel",
    "validate_alpha",
]
