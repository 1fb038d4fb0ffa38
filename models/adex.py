"""Adaptive exponential integrate-and-fire neuron (Brette & Gerstner 2005)."""

import sympy as sp

from splitpinn.declare.model import Event, I_ext, Model, State

V, w = sp.symbols("V w", real=True)
C, g_L, E_L, V_T, Delta_T, a, tau_w, b, V_reset, V_peak, t_ref, I = sp.symbols(
    "C g_L E_L V_T Delta_T a tau_w b V_reset V_peak t_ref I", real=True)


def adex() -> Model:
    """C V' = −g_L(V − E_L) + g_L Δ_T e^((V − V_T)/Δ_T) − w + I, τ_w w' = a(V − E_L) − w;
    V ≥ V_peak → V = V_reset, w += b, V held for t_ref (pF, nS, mV, ms, pA).

    Defaults: the tonic-spiking parameters of Brette & Gerstner (2005), Fig. 2, except
    V_peak = 0 mV instead of their 20 mV.  Above V_T the solution blows up in finite time: from
    0 mV the rest of the upswing takes Δ_T C/(g_L Δ_T) e^(−(0 − V_T)/Δ_T) ≈ 1.1e-10 ms (split-PINN
    gets there on steps down to ~1e-11 ms), and from 20 mV ≈ 5e-15 ms, less than the spacing
    of doubles near the first spike (3.6e-15 ms at 17.7 ms), so neither DOP853 nor split-PINN
    reaches 20 mV (measured: both stop at 17.7195 ms); cut at 0 or 10 mV, the spike times differ
    by 1e-10 ms (the time from 0 to 10 mV)."""
    return Model(
        name="adex",
        states=[State("V", E_L), State("w", 0.0)],
        equations={
            "V": (-g_L * (V - E_L) + g_L * Delta_T * sp.exp((V - V_T) / Delta_T) - w + I_ext)
            / C,
            "w": (a * (V - E_L) - w) / tau_w,
        },
        parameters=dict(C=281.0, g_L=30.0, E_L=-70.6, V_T=-50.4, Delta_T=2.0, a=4.0,
                        tau_w=144.0, b=80.5, V_reset=-70.6, V_peak=0.0, t_ref=0.0, I=800.0),
        stimulus=I,
        events=[Event(V >= V_peak, {"V": V_reset, "w": w + b}, refractory=t_ref, clamp=("V",))],
        description="adaptive exponential integrate-and-fire (Brette & Gerstner 2005)",
        default_dt=0.05,
        units=dict(V="mV", w="pA", C="pF", g_L="nS", E_L="mV", V_T="mV", Delta_T="mV", a="nS",
                   tau_w="ms", b="pA", V_reset="mV", V_peak="mV", t_ref="ms", I="pA"),
    )
