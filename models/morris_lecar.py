"""Morris–Lecar model (barnacle muscle fibre), the parameters of the design card."""

import sympy as sp

from splitpinn.declare.model import I_ext, Model, SpikeDetector, State

V, N = sp.symbols("V N", real=True)
C, g_L, g_Ca, g_K, V_L, V_Ca, V_K, V1, V2, V3, V4, phi, I = sp.symbols(
    "C g_L g_Ca g_K V_L V_Ca V_K V1 V2 V3 V4 phi I", real=True)


def morris_lecar() -> Model:
    """C V' = I − g_L(V−V_L) − g_Ca m∞(V)(V−V_Ca) − g_K N (V−V_K),
    N' = phi cosh((V−V3)/(2V4)) (N∞(V) − N)."""
    return Model(
        name="morris-lecar",
        states=[State("V", -60.0), State("N", sp.Symbol("N_inf", real=True))],
        equations={
            "V": (I_ext - g_L * (V - V_L) - g_Ca * sp.Symbol("m_inf", real=True) * (V - V_Ca)
                  - g_K * N * (V - V_K)) / C,
            "N": phi * sp.cosh((V - V3) / (2 * V4)) * (sp.Symbol("N_inf", real=True) - N),
        },
        auxiliaries={
            "m_inf": (1 + sp.tanh((V - V1) / V2)) / 2,
            "N_inf": (1 + sp.tanh((V - V3) / V4)) / 2,
        },
        parameters=dict(C=20.0, g_L=2.0, g_Ca=4.4, g_K=8.0, V_L=-60.0, V_Ca=120.0, V_K=-84.0,
                        V1=-1.2, V2=18.0, V3=2.0, V4=30.0, phi=0.04, I=90.0),
        stimulus=I,
        spike_detector=SpikeDetector("V", 0.0),
        description="Morris-Lecar model",
        default_dt=0.05,
        units=dict(V="mV", C="µF/cm²", g_L="mS/cm²", g_Ca="mS/cm²", g_K="mS/cm²", V_L="mV",
                   V_Ca="mV", V_K="mV", V1="mV", V2="mV", V3="mV", V4="mV", phi="1/ms",
                   I="µA/cm²"),
    )
