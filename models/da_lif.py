"""DA-LIF (Zhang et al. 2025) as a continuous-time leaky integrator."""

import sympy as sp

from splitpinn.declare.model import Event, I_ext, Model, State

V, alpha, beta, V_th, V_reset, I = sp.symbols("V alpha beta V_th V_reset I", real=True)


def da_lif() -> Model:
    """dV/dt = −(1 − β) V + α X (per ms); V ≥ V_th → V = V_reset.

    Published rule (dual-adaptive LIF, Zhang et al. 2025): V[t] = β V[t−1] + α X[t] at
    Δt = 1, with learnable temporal decay β and spatial gain α.  It is the forward Euler step
    of this model at Δt = 1 ms: leak (1 − β)/Δt and input gain α/Δt (the published Δt = 1 ms
    is built into the rates).  The paper's reset could not be recovered from the paper;
    the hard reset to V_reset = 0 used here is our choice.  The input X is I_ext (stimulus:
    parameter ``I``).
    """
    return Model(
        name="da-lif",
        states=[State("V", 0.0)],
        equations={"V": -(1 - beta) * V + alpha * I_ext},
        parameters=dict(alpha=1.0, beta=0.5, V_th=1.0, V_reset=0.0, I=1.0),
        stimulus=I,
        events=[Event(V >= V_th, {"V": V_reset})],
        description="dual-adaptive LIF (Zhang et al. 2025): leak 1 - beta, gain alpha, "
                    "hard reset (our choice)",
        default_dt=0.05,
    )
