"""Izhikevich (2003) simple model with its named firing presets, and a fractional variant."""

import sympy as sp

from splitpinn.declare.model import Event, I_ext, Model, State

v, u, a, b, c, d, I, alpha, t_ref = sp.symbols("v u a b c d I alpha t_ref", real=True)

#: (a, b, c, d) of Izhikevich (2003), Fig. 2.
PRESETS = {
    "RS": dict(a=0.02, b=0.2, c=-65.0, d=8.0),
    "IB": dict(a=0.02, b=0.2, c=-55.0, d=4.0),
    "CH": dict(a=0.02, b=0.2, c=-50.0, d=2.0),
    "FS": dict(a=0.1, b=0.2, c=-65.0, d=2.0),
    "LTS": dict(a=0.02, b=0.25, c=-65.0, d=2.0),
    "TC": dict(a=0.02, b=0.25, c=-65.0, d=0.05),
    "RZ": dict(a=0.1, b=0.26, c=-65.0, d=2.0),
}

#: Izhikevich's units: v in mV, t in ms; u and I enter v' directly, so they are in mV/ms.
UNITS = dict(v="mV", u="mV/ms", a="1/ms", b="1/ms", c="mV", d="mV/ms", I="mV/ms", t_ref="ms")


def _izhikevich(name: str, order, extra: dict, description: str, refractory=0.0) -> Model:
    return Model(
        name=name,
        states=[State("v", -65.0, order), State("u", b * v, order)],
        equations={"v": 0.04 * v**2 + 5 * v + 140 - u + I_ext, "u": a * (b * v - u)},
        parameters={**PRESETS["RS"], "I": 10.0, **extra},
        stimulus=I,
        events=[Event(v >= 30, {"v": c, "u": u + d}, refractory=refractory, clamp=("v", "u"))],
        presets=PRESETS,
        default_preset="RS",
        description=description,
        default_dt=None if order != 1.0 else 0.05,
        units={k: unit for k, unit in UNITS.items() if k != "t_ref" or k in extra},
    )


def izhikevich() -> Model:
    """v' = 0.04v² + 5v + 140 − u + I, u' = a(bv − u); v ≥ 30 → v = c, u = u + d."""
    return _izhikevich("izhikevich", 1.0, {}, "Izhikevich (2003) simple spiking model")


def frac_izhikevich() -> Model:
    """Izhikevich model with Caputo order alpha on v and u, same reset, then v and u held for
    ``t_ref`` ms (default 0.5).

    With the memory kept across resets, a reset that nothing holds is ill posed: the jump's
    kernel (t − t_s)^(−alpha) is singular right after it and undoes part of the reset at every
    step, so spike times depend on dt (measured first ISI 1.04/0.67/0.44/0.35 ms at dt
    0.04/0.01/0.0025/0.000625, alpha 0.9).  A short clamp makes the answer converge (second
    spike 13.829/13.788/13.769 ms at dt 0.02/0.01/0.005).  ``--set t_ref=0`` gives the bare
    reset (the L1 reference then answers for its dt; split-PINN refuses)."""
    return _izhikevich("frac-izhikevich", alpha, {"alpha": 0.9, "t_ref": 0.5},
                       "fractional-order Izhikevich model (Caputo order alpha on v and u; "
                       "v, u held t_ref after a reset)", refractory=t_ref)
