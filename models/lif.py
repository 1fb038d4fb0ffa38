"""Leaky integrate-and-fire neuron, integer and fractional order (Teka et al. 2014)."""

import sympy as sp

from splitpinn.declare.model import Event, I_ext, Model, State

V, tau, R, V_rest, V_reset, V_th, t_ref, I, alpha = sp.symbols(
    "V tau R V_rest V_reset V_th t_ref I alpha", real=True)


UNITS = dict(V="mV", tau="ms", R="MΩ", V_rest="mV", V_reset="mV", V_th="mV", t_ref="ms",
             I="nA")


def _lif(name: str, order, parameters: dict, description: str) -> Model:
    return Model(
        name=name,
        states=[State("V", V_rest, order)],
        equations={"V": (-(V - V_rest) + R * I_ext) / tau},
        parameters=parameters,
        stimulus=I,
        events=[Event(V >= V_th, {"V": V_reset}, refractory=t_ref)],
        description=description,
        default_dt=None if order != 1.0 else 0.05,
        units=UNITS,
    )


def lif() -> Model:
    """tau dV/dt = -(V - V_rest) + R I; V >= V_th -> V = V_reset held for t_ref (ms, mV, MΩ, nA)."""
    return _lif("lif", 1.0,
                dict(tau=10.0, R=10.0, V_rest=-65.0, V_reset=-65.0, V_th=-50.0, t_ref=2.0,
                     I=2.0),
                "leaky integrate-and-fire with reset and refractory period")


def frac_lif() -> Model:
    """tau D^alpha V = -(V - V_rest) + R I (Caputo), Teka, Marinov & Santamaria 2014."""
    return _lif("frac-lif", alpha,
                dict(tau=20.0, R=40.0, V_rest=-70.0, V_reset=-70.0, V_th=-50.0, t_ref=8.0,
                     I=3.0, alpha=0.6),
                "fractional-order LIF (Caputo order alpha), memory kept across resets")
