"""Hodgkin–Huxley squid axon (−65 mV rest convention) and the fractional-gate FO-HH model."""

import sympy as sp

from splitpinn.declare.functions import XOverOneMinusExp
from splitpinn.declare.model import I_ext, Model, SpikeDetector, State
from splitpinn.declare.stimulus import step

V, m, h, n = sp.symbols("V m h n", real=True)
C, g_Na, g_K, g_L, E_Na, E_K, E_L, I = sp.symbols("C g_Na g_K g_L E_Na E_K E_L I", real=True)
eta, gate, t_on = sp.symbols("eta gate t_on", real=True)

GATES = ("n", "m", "h")


RATES = {
    "alpha_m": XOverOneMinusExp((V + 40) / 10),
    "beta_m": 4 * sp.exp(-(V + 65) / 18),
    "alpha_h": 0.07 * sp.exp(-(V + 65) / 20),
    "beta_h": 1 / (1 + sp.exp(-(V + 35) / 10)),
    "alpha_n": 0.1 * XOverOneMinusExp((V + 55) / 10),
    "beta_n": 0.125 * sp.exp(-(V + 65) / 80),
}
UNITS = dict(V="mV", C="µF/cm²", g_Na="mS/cm²", g_K="mS/cm²", g_L="mS/cm²", E_Na="mV",
             E_K="mV", E_L="mV", I="µA/cm²", t_on="ms")
PARAMETERS = dict(C=1.0, g_Na=120.0, g_K=36.0, g_L=0.3, E_Na=50.0, E_K=-77.0, E_L=-54.387,
                  I=10.0)


def _gate_equation(x: str) -> sp.Expr:
    a, b = sp.Symbol(f"alpha_{x}", real=True), sp.Symbol(f"beta_{x}", real=True)
    return a * (1 - sp.Symbol(x, real=True)) - b * sp.Symbol(x, real=True)


def _steady_state(x: str) -> sp.Expr:
    a, b = sp.Symbol(f"alpha_{x}", real=True), sp.Symbol(f"beta_{x}", real=True)
    return a / (a + b)


def _hh(name, orders, parameters, stimulus, presets=None, default_preset=None, description="",
        default_dt=None):
    return Model(
        name=name,
        states=[State("V", -65.0)] + [State(x, _steady_state(x), orders[x]) for x in "mhn"],
        equations={
            "V": (I_ext - g_Na * m**3 * h * (V - E_Na) - g_K * n**4 * (V - E_K)
                  - g_L * (V - E_L)) / C,
            **{x: _gate_equation(x) for x in "mhn"},
        },
        auxiliaries=RATES,
        parameters=parameters,
        stimulus=stimulus,
        spike_detector=SpikeDetector("V", 0.0),
        presets=presets or {},
        default_preset=default_preset,
        description=description,
        default_dt=default_dt,
        units={k: v for k, v in UNITS.items() if k in parameters or k == "V"},
    )


def hh() -> Model:
    """Hodgkin–Huxley: C V' = I − g_Na m³h(V−E_Na) − g_K n⁴(V−E_K) − g_L(V−E_L), gates
    x' = α_x(V)(1−x) − β_x(V)x; starts at rest with the gates at steady state."""
    return _hh("hh", {x: 1.0 for x in "mhn"}, PARAMETERS, I, description="Hodgkin-Huxley model",
               default_dt=0.0125)


def fo_hh() -> Model:
    """FO-HH (Teka, Stockton & Santamaria 2016): one gate of Caputo order ``eta``.

    The preset (``n``, ``m`` or ``h``; default ``n``) picks the fractional gate; the step
    current ``I`` switches on at ``t_on`` ms.
    """
    orders = {x: sp.Piecewise((eta, sp.Eq(gate, i)), (1, True)) for i, x in enumerate(GATES)}
    return _hh("fo-hh", orders,
               {**PARAMETERS, "E_L": -54.4, "eta": 0.8, "gate": 0.0, "t_on": 10.0},
               step(I, on=t_on),
               presets={x: {"gate": float(i)} for i, x in enumerate(GATES)},
               default_preset="n",
               description="fractional-order HH: one gate (preset n, m or h) of order eta")
