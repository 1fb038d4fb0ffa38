"""FitzHugh–Nagumo relaxation oscillator (dimensionless)."""

import sympy as sp

from splitpinn.declare.model import I_ext, Model, SpikeDetector, State

v, w, a, b, tau, I = sp.symbols("v w a b tau I", real=True)


def fhn() -> Model:
    """v' = v − v³/3 − w + I, w' = (v + a − b w)/tau."""
    return Model(
        name="fhn",
        states=[State("v", -1.2), State("w", -0.625)],
        equations={"v": v - v**3 / 3 - w + I_ext, "w": (v + a - b * w) / tau},
        parameters=dict(a=0.7, b=0.8, tau=12.5, I=0.5),
        stimulus=I,
        spike_detector=SpikeDetector("v", 1.0),
        description="FitzHugh-Nagumo model",
        default_dt=0.05,
    )
