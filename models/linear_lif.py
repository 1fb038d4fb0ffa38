"""Linear integrate-and-fire neuron: constant leak current, floor, reset (Lu & Xu 2022)."""

import sympy as sp

from splitpinn.declare.model import Event, I_ext, Model, State

V, C, lam, theta, V_min, t_ref, I = sp.symbols("V C lambda theta V_min t_ref I", real=True)


def linear_lif() -> Model:
    """C dV/dt = I − λ while V > V_min; at the floor V stays at V_min while I − λ ≤ 0.
    V >= θ -> V = 0, held for t_ref.  F–I for t_ref = 0: r = max(0, I − λ)/(C θ) per ms, a ReLU.
    """
    drive = (I_ext - lam) / C
    return Model(
        name="linear-lif",
        states=[State("V", 0.0)],
        equations={"V": sp.Piecewise((drive, V > V_min), (sp.Max(drive, 0), True))},
        parameters=dict(C=1.0, **{"lambda": 0.0}, theta=1.0, V_min=0.0, t_ref=0.0, I=1.5),
        stimulus=I,
        events=[Event(V >= theta, {"V": 0.0}, refractory=t_ref)],
        description="linear LIF: constant leak lambda, floor V_min, reset to 0 (F-I is a ReLU)",
        default_dt=0.05,
    )
