"""Spiking networks: the equilibrium of feedback networks of integrate-and-fire neurons.

Xiao et al. (NeurIPS 2021, "Training feedback spiking neural networks by implicit
differentiation on the equilibrium state"): in a network of IF neurons (dV/dt = I, threshold
V_th, reset by subtraction, no floor) with feedback weights W and constant inputs I, the mean
firing rates over [0, T] converge, as T grows, to the fixed point
a* = max(0, W a* + I) / V_th (spikes per ms), with an error O(1/T).  The reset must subtract
V_th: a reset *to* 0 (``linear-lif``) loses the part of a feedback jump above threshold at
every jump-driven spike, and its rates stay off a* by an amount that does not fall with T.
"""

from __future__ import annotations

import numpy as np
import sympy as sp

from ..declare.model import Event, I_ext, Model, State
from ..errors import ModelError, SolverError


def if_neuron() -> Model:
    """The IF neuron of feedback networks: dV/dt = I (C = 1, no leak, no floor), V ≥ V_th →
    V ← V − V_th (reset by subtraction).  Parameters ``V_th`` (1) and ``I`` (0.1, per ms)."""
    v, v_th, current = sp.symbols("V V_th I", real=True)
    return Model(name="feedback-if", states=[State("V", 0.0)], equations={"V": I_ext},
                 parameters={"V_th": 1.0, "I": 0.1}, stimulus=current,
                 events=[Event(v >= v_th, {"V": v - v_th})],
                 description="integrate-and-fire neuron with reset by subtraction",
                 default_dt=0.05)


def feedback_equilibrium(weights, inputs, v_th: float = 1.0, *, tol: float = 1e-12,
                         max_iter: int = 100_000) -> np.ndarray:
    """The fixed point a* = max(0, W a* + I)/V_th of a feedback IF network, by iteration.

    The map a ↦ max(0, W a + I)/V_th is a contraction with constant q = ‖W‖₂/V_th (max(0, ·)
    is 1-Lipschitz per component), so it has one fixed point and the iteration converges to it
    from a = 0; iteration stops when the a-posteriori bound q/(1 − q)·‖a_k − a_{k−1}‖₂ is
    below ``tol``.  ``weights``: W (N × N); ``inputs``: I (N,); ``v_th`` > 0.
    Raises ModelError for bad shapes, non-finite values or ‖W‖₂ ≥ V_th (not a contraction).
    """
    w = np.asarray(weights, dtype=float)
    i = np.asarray(inputs, dtype=float)
    if w.ndim != 2 or w.shape[0] != w.shape[1] or i.shape != (w.shape[0],):
        raise ModelError(f"weights must be N x N and inputs of length N, got shapes {w.shape} "
                         f"and {i.shape}")
    if not (np.all(np.isfinite(w)) and np.all(np.isfinite(i))):
        raise ModelError("weights and inputs must be finite")
    if not (np.isfinite(v_th) and v_th > 0):
        raise ModelError(f"V_th must be a finite number > 0, got {v_th!r}")
    norm = np.linalg.norm(w, 2)
    if norm >= v_th:
        raise ModelError(f"‖W‖₂ = {norm:.6g} >= V_th = {v_th:g}: the fixed-point map is not a "
                         "contraction (scale W down)")
    q = norm / v_th
    a = np.zeros_like(i)
    for _ in range(max_iter):
        new = np.maximum(0.0, w @ a + i) / v_th
        change = np.linalg.norm(new - a)
        a = new
        if q * change <= tol * (1 - q):
            return a
    raise SolverError(f"fixed-point iteration did not reach tol = {tol:g} in {max_iter} "
                      "iterations")
