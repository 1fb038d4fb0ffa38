"""Temporal inhibitory LIF (ILIF) of Sun et al. (IJCAI 2025), as a continuous-time model."""

import sympy as sp

from splitpinn.declare.model import Event, I_ext, Model, State

U, I_inh, M, tau, kappa, V_th, I = sp.symbols("U I_inh M tau kappa V_th I", real=True)


def _relu(x):
    """max(x, 0) written as (x + |x|)/2: exact in floating point, and it lambdifies to numpy
    and torch alike (sympy's Max does not lambdify to torch)."""
    return (x + sp.Abs(x)) / 2


def _sigmoid(x):
    return 1 / (1 + sp.exp(-x))


def ilif() -> Model:
    """ILIF: a LIF whose input is reduced by an inhibitory current fed by its own spikes.

    dU/dt = −U/τ + X − max(I_inh, 0),  dI_inh/dt = −(1 − κ) I_inh,  dM/dt = 0,
    with the input X = I_ext (stimulus: parameter ``I``).  At U ≥ V_th, in sequence:
    U ← U − V_th;  M ← M + U;  U ← U − sigmoid(M);  I_inh ← I_inh + X.
    (The Event's resets are simultaneous, from the state before the reset, so they are written
    with the sequence substituted: U ← U − V_th − sigmoid(M + U − V_th), M ← M + U − V_th.)

    Published rule: ``InhibitoryLIFNeuron`` in modules/neuron.py of the authors' repository
    (KaiSUN1/ILIF), the single-step spikingjelly version (followed here; the file's
    ``ILIFSpike`` is a second, multi-step variant with a decaying memory and no inhibitory
    current).  At Δt = 1 (one time step = 1 ms):
    ``inhibition ← κ (inhibition + X_prev·S_prev)``; ``v ← (1 − 1/τ) v + X − max(inhibition, 0)``;
    ``S = [v ≥ V_th]``; soft reset ``v ← v − S V_th``; ``M ← M + S v``; ``v ← v − S sigmoid(M)``.
    Mapping: τ = ``tau`` (2), κ = 0.03 (fixed in the code), V_th = ``v_threshold`` (1),
    ``decay_input=False``, ``v_reset=None`` (soft reset).  Forward Euler of U at Δt gives
    U ← (1 − Δt/τ)U + Δt(X − max(I_inh, 0)); Euler of I_inh at Δt = 1 gives I_inh ← κ I_inh,
    so the rule is Lie(I_inh, then U) with Euler sub-steps at Δt = 1, where our I_inh after a
    step is the code's ``inhibition + prev_input·prev_spike`` (the spike's contribution is
    added at the reset instead of at the next step).  The decay rate (1 − κ)/Δt is taken
    with the published Δt = 1 ms.  All states start at 0, as in the code.
    """
    X = I_ext
    return Model(
        name="ilif",
        states=[State("U", 0.0), State("I_inh", 0.0), State("M", 0.0)],
        equations={"U": -U / tau + X - _relu(I_inh), "I_inh": -(1 - kappa) * I_inh, "M": 0},
        parameters=dict(tau=2.0, kappa=0.03, V_th=1.0, I=1.0),
        stimulus=I,
        events=[Event(U >= V_th, {"U": U - V_th - _sigmoid(M + U - V_th),
                                  "M": M + U - V_th,
                                  "I_inh": I_inh + X})],
        description="temporal inhibitory LIF (Sun et al. 2025): soft reset, self-inhibition "
                    "by the input at each spike, spike memory M",
        default_dt=0.05,
    )
