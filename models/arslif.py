"""ARSLIF (Wu et al., RBA-FE): a LIF whose threshold adapts to a target firing rate."""

from collections.abc import Mapping

import numpy as np
import sympy as sp

from splitpinn.declare.model import Event, I_ext, Model, State

V, V_th, tau_mem, R, tau_adapt, f, f_active, f_rest, a_err, b_err, I = sp.symbols(
    "V V_th tau_mem R tau_adapt f f_active f_rest a_err b_err I", real=True)


def arslif(own_rate: bool = True) -> Model:
    """τ_mem dV/dt = −V + R I;  τ_adapt dV_th/dt = α(r − f) + β(r − f_adapt);
    V ≥ V_th → V = 0.  f_adapt = f_active where |R I| ≥ V_th, else f_rest.

    r is the firing rate in spikes per ms.  For a single neuron it is its own spike train
    Σ δ(t − t_k): between spikes r = 0, so τ_adapt dV_th/dt = −(α f + β f_adapt), and each
    spike raises V_th by (α + β)/τ_adapt (the reset ``V_th ← V_th + (a_err + b_err)/tau_adapt``,
    times 1 ms).  In a population r is the population rate, shared through coupling on V_th
    with weights (α + β)Δt/(τ_adapt N), Δt = 1 ms (the neuron itself included), instead of
    this self-jump: ``arslif(own_rate=False)`` (a Model named ``arslif-population``) resets V
    only, and :func:`population_coupling` gives the coupling.  The authors' f_adapt is a
    population mean, so all thresholds move together and r settles at
    (α f + β ⟨f_adapt⟩)/(α + β).  Here f_adapt is each neuron's own: the active neurons'
    thresholds stop where r = (α f + β f_active)/(α + β), and the silent neurons' keep rising
    at β(f_active − f_rest)/τ_adapt (tests/test_arslif_population.py).

    Published rule: ``ARSLIFLSTMCell`` of the authors' code (TensorFlow), at dt = 1:
    V ← V + (dt/τ_mem)(−V + R z); S = [V/(V_th + 1e−7) ≥ 1]; V ← 0 where S; r = mean of S;
    f_adapt = f_active where |R z| ≥ V_th (the threshold before its update), else f_rest;
    V_th ← V_th + (dt/τ_adapt)(α(r − f) + β(r − mean f_adapt)).  Parameter mapping:
    ``tau_mem`` = tau_mem (10), ``R`` = R (per-unit weight, initialised in [0.1, 1]; 1 here),
    ``tau_adapt`` = tau_adapt (1000), ``f`` (0.65), ``f_active`` (0.99), ``f_rest`` (0.01),
    ``a_err`` = alpha (0.6), ``b_err`` = beta (0.4); the input z is I_ext (stimulus:
    parameter ``I``).  Its spike test uses the threshold before the step's update, so the
    rule is Lie(V, then V_th) with Euler sub-steps at Δt = 1 and the threshold tested after
    the V sub-step (``discretise(..., check_after="V")``).  The code's initial V_th is its
    RNN's zero state (every positive V spikes); we start at V_th = 1, the threshold of its
    scaled spike function.
    """
    f_adapt = sp.Piecewise((f_active, sp.Abs(R * I_ext) >= V_th), (f_rest, True))
    reset = {"V": 0.0}
    description = ("adaptive-threshold LIF (Wu et al., RBA-FE): the threshold tracks a target "
                   "rate f")
    if own_rate:
        reset["V_th"] = V_th + (a_err + b_err) / tau_adapt
        description += "; each spike raises it by (a_err + b_err)/tau_adapt"
    else:
        description += "; population form: V_th driven by coupling"
    return Model(
        name="arslif" if own_rate else "arslif-population",
        states=[State("V", 0.0), State("V_th", 1.0)],
        equations={"V": (-V + R * I_ext) / tau_mem,
                   "V_th": -(a_err * f + b_err * sp.Symbol("f_adapt", real=True)) / tau_adapt},
        auxiliaries={"f_adapt": f_adapt},
        parameters=dict(tau_mem=10.0, R=1.0, tau_adapt=1000.0, f=0.65, f_active=0.99,
                        f_rest=0.01, a_err=0.6, b_err=0.4, I=1.5),
        stimulus=I,
        events=[Event(V >= V_th, reset)],
        description=description,
        default_dt=0.05,
    )


def population_coupling(n: int, parameters: Mapping | None = None) -> dict:
    """The ``coupling=`` of ``solve`` that makes n ``arslif(own_rate=False)`` neurons share
    their rate: every spike adds (a_err + b_err)·1 ms/(tau_adapt·n) to V_th of all n neurons
    (itself included), the r term of τ_adapt dV_th/dt = α(r − f) + β(r − f_adapt) with r the
    population rate in spikes per ms.  ``parameters``: the a_err, b_err and tau_adapt given to
    ``solve`` (scalars or length-n arrays; the model's defaults otherwise); row i uses neuron
    i's values."""
    p = {**arslif(own_rate=False).parameters, **(parameters or {})}
    per_spike = (np.asarray(p["a_err"], float) + np.asarray(p["b_err"], float)) / (
        np.asarray(p["tau_adapt"], float) * n)
    weights = np.broadcast_to(np.reshape(per_spike, (-1, 1)), (n, n)).copy()
    return {"weights": weights, "target": "V_th", "delay": 0.0}
