"""How far the spikes of a published discrete rule are from its continuous model's solution.

Each model is driven by the same random piecewise-constant input u(t) ∈ [0, 1) (one value per
``segment`` ms), scaled to the model: I(t) = 3 · rheobase · u(t).  The discrete rule
(:func:`splitpinn.analysis.discretise` with the published composition) runs at steps Δt from 1 ms
down to 0.01 ms, each step seeing the input of the segment it lies in; the continuous model is
solved by the reference solver (threshold crossings located by root finding).  A discrete spike
is dated at the end of its step.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ..declare import stimulus
from ..errors import ModelError
from ..fractional.history import SAME_STEP
from ..solvers.driver import resolve_model, solve
from .discretise import discretise
from .metrics import match_spikes

#: Per model: the published composition, parameter overrides (discrete rules have no
#: refractory period) and the rheobase with default parameters (the constant input at which
#: the membrane's steady state reaches the threshold).
RULES = {
    "ilif": dict(order=["I_inh", "U"], rheobase=0.5),  # tau X = V_th
    "da-lif": dict(rheobase=0.5),  # alpha X / (1 - beta) = V_th
    "arslif": dict(order=["V", "V_th"], check_after="V", rheobase=1.0),  # R I = V_th(0)
    "lif": dict(parameters={"t_ref": 0.0}, rheobase=1.5),  # R I = V_th - V_rest
}
DTS = (1.0, 0.5, 0.2, 0.1, 0.05, 0.02, 0.01)


def random_input(t_end: float, segment: float = 1.0, seed: int = 0) -> np.ndarray:
    """Values u ∈ [0, 1), one per ``segment`` ms of [0, t_end)."""
    return np.random.default_rng(seed).uniform(0.0, 1.0, int(np.ceil(t_end / segment - SAME_STEP)))


def discrete_spike_times(name: str, dt: float, values: np.ndarray, segment: float,
                         t_end: float) -> np.ndarray:
    """Spike times (step ends) of one neuron under the published rule of ``name`` at ``dt``,
    driven by ``values`` (one per segment, already scaled)."""
    rule = RULES[name]
    step_map = discretise(name, dt, order=rule.get("order"), parameters=rule.get("parameters"),
                          check_after=rule.get("check_after"))
    n_steps = int(round(t_end / dt))
    if abs(n_steps * dt - t_end) > SAME_STEP * t_end:
        raise ModelError(f"dt = {dt:g} ms does not divide t_end = {t_end:g} ms")
    starts = np.arange(n_steps) * dt
    index = np.minimum(np.floor(starts / segment + SAME_STEP).astype(int), len(values) - 1)
    state, times = step_map.initial(1), []
    for n in range(n_steps):
        state, spiked = step_map.step(state, {"I_ext": values[index[n]:index[n] + 1]})
        if spiked[0]:
            times.append((n + 1) * dt)
    return np.array(times)


def discretisation_error(models: Sequence[str] = tuple(RULES), dts: Sequence[float] = DTS,
                         t_end: float = 100.0, segment: float = 1.0,
                         seed: int = 0) -> pd.DataFrame:
    """The table of spike-count and spike-time errors, one row per model and Δt.

    Columns: ``model``, ``dt``, ``reference_spikes``, ``spikes``, ``count_error`` (discrete
    minus reference), ``max_spike_time_error_ms`` and ``mean_spike_time_error_ms`` (each
    reference spike matched to the nearest discrete one; empty without discrete spikes).
    Every Δt must divide ``segment`` so that the input is constant over each step."""
    unknown = [m for m in models if m not in RULES]
    if unknown:
        raise ModelError(f"no published rule for {', '.join(unknown)} (known: {', '.join(RULES)})")
    for dt in dts:
        if abs(segment / dt - round(segment / dt)) > SAME_STEP:
            raise ModelError(f"dt = {dt:g} ms does not divide the input segment {segment:g} ms")
    u = random_input(t_end, segment, seed)
    rows = []
    for name in models:
        rule = RULES[name]
        values = 3.0 * rule["rheobase"] * u
        driven = resolve_model(name).with_stimulus(
            stimulus.sampled(np.arange(len(u)) * segment, values))
        reference = solve(driven, "reference", t_end, dt=min(0.1, t_end),
                          parameters=rule.get("parameters")).spike_times
        for dt in dts:
            times = discrete_spike_times(name, dt, values, segment, t_end)
            errors = match_spikes(reference, times)
            rows.append({"model": name, "dt": float(dt), "reference_spikes": len(reference),
                         "spikes": len(times), "count_error": len(times) - len(reference),
                         "max_spike_time_error_ms": errors.max() if errors.size else np.nan,
                         "mean_spike_time_error_ms": errors.mean() if errors.size else np.nan})
    return pd.DataFrame(rows)


def plot_discretisation_error(table: pd.DataFrame, axes=None):
    """Spike-count error and mean spike-time error against Δt, one line per model; returns the
    Figure.  ``axes``: two matplotlib axes to draw into (default: a new figure)."""
    if axes is None:
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    else:
        fig = axes[0].figure
    for name, rows in table.groupby("model", sort=False):
        axes[0].plot(rows["dt"], np.abs(rows["count_error"]), "o-", label=name)
        axes[1].loglog(rows["dt"], rows["mean_spike_time_error_ms"], "o-", label=name)
    dts = np.sort(table["dt"].unique())
    axes[1].loglog(dts, dts / 2, "k--", lw=0.8, label="Δt/2")
    axes[0].set_xscale("log")
    axes[0].set_xlabel("Δt (ms)")
    axes[0].set_ylabel("|spike count error|")
    axes[1].set_xlabel("Δt (ms)")
    axes[1].set_ylabel("mean spike-time error (ms)")
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    return fig
