"""F–I curves: firing rate against constant current, simulated by a sweep, with closed forms.

* LIF with refractoriness: r = 1000 / (t_ref + τ ln((R I + V_rest − V_reset)/(R I + V_rest − V_th)))
  Hz when R I > V_th − V_rest, else 0.
* Linear LIF (constant leak λ): r = 1000 / (t_ref + C θ/(I − λ)) Hz when I > λ, else 0; for
  t_ref = 0 this is the ReLU r = 1000·max(0, I − λ)/(C θ).
* The LIF's large-current asymptote (t_ref = 0, V_reset = V_rest, θ = V_th − V_rest) is the ReLU
  r ≈ 1000·(R I/θ − 1/2)/τ: the LIF ↔ ReLU mapping.  Its error, closed form minus asymptote, is
  −1000/(12 τ x) + O(x⁻²) Hz with x = R I/θ.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .sweep import SweepResult, _as_vary, sweep


def lif_rate(I, tau, R, V_rest, V_reset, V_th, t_ref) -> np.ndarray:
    """Closed-form LIF firing rate (Hz) at constant current ``I`` (nA; ms, mV, MΩ)."""
    drive = R * np.asarray(I, dtype=float) + V_rest
    fires = drive > V_th
    with np.errstate(divide="ignore", invalid="ignore"):
        period = t_ref + tau * np.log((drive - V_reset) / (drive - V_th))
        return np.where(fires, 1000.0 / period, 0.0)


def linear_lif_rate(I, C, lam, theta, t_ref) -> np.ndarray:
    """Closed-form linear-LIF firing rate (Hz) from reset 0 to threshold ``theta``: the ReLU
    ``1000·max(0, I − lam)/(C theta)`` for ``t_ref`` = 0."""
    net = np.asarray(I, dtype=float) - lam
    with np.errstate(divide="ignore"):
        return np.where(net > 0, 1000.0 / (t_ref + C * theta / np.where(net > 0, net, 1.0)), 0.0)


def lif_relu(I, tau, R, V_rest, V_th) -> np.ndarray:
    """The LIF's large-current asymptote, a ReLU: 1000·max(0, R I/θ − 1/2)/τ Hz, θ = V_th − V_rest
    (exact as I → ∞ for t_ref = 0 and V_reset = V_rest)."""
    x = R * np.asarray(I, dtype=float) / (V_th - V_rest)
    return 1000.0 * np.maximum(0.0, x - 0.5) / tau


def closed_form(model_name: str, parameters: Mapping[str, float]) -> Callable | None:
    """The closed-form rate ``r(I)`` (Hz) of a library model with ``parameters``, or None
    where the model has none."""
    p = parameters
    if model_name == "lif":
        return lambda I: lif_rate(I, p["tau"], p["R"], p["V_rest"], p["V_reset"], p["V_th"],
                                  p["t_ref"])
    if model_name == "linear-lif" and p["V_min"] <= 0 < p["theta"]:
        return lambda I: linear_lif_rate(I, p["C"], p["lambda"], p["theta"], p["t_ref"])
    return None


def relu_asymptote(model_name: str, parameters: Mapping[str, float]) -> Callable | None:
    """The LIF's ReLU asymptote ``r(I)`` where it applies (``lif`` with t_ref = 0 and
    V_reset = V_rest), else None."""
    p = parameters
    if model_name == "lif" and p["t_ref"] == 0 and p["V_reset"] == p["V_rest"]:
        return lambda I: lif_relu(I, p["tau"], p["R"], p["V_rest"], p["V_th"])
    return None


def sustained_rate(spike_times, t_end: float) -> float:
    """Repetitive firing rate (Hz): 1000 / mean interspike interval, or 0 with fewer than two
    spikes or when the firing stopped (no spike in the last two interspike intervals before
    ``t_end``, e.g. HH's transient spikes below rheobase)."""
    s = np.asarray(spike_times, dtype=float)
    if s.size < 2 or t_end - s[-1] > 2 * (s[-1] - s[-2]):
        return 0.0
    return float(1000.0 * (s.size - 1) / (s[-1] - s[0]))


@dataclass
class FICurve:
    """``I``, simulated ``rate_hz`` (the sustained rate; NaN where the solve failed), the
    model's ``closed_form`` and the LIF's ReLU ``asymptote`` as functions of I (None where they
    do not apply), and the underlying :class:`SweepResult`."""

    model: str
    method: str
    I: np.ndarray
    rate_hz: np.ndarray
    closed_form: Callable | None
    asymptote: Callable | None
    sweep: SweepResult

    @property
    def closed_form_hz(self) -> np.ndarray:
        """The closed form at ``I`` (NaN where the model has none)."""
        return self.closed_form(self.I) if self.closed_form else np.full(self.I.shape, np.nan)

    def to_csv_rows(self) -> list[tuple]:
        """Rows of ``fi.csv``: ``(I, rate_hz, closed_form_hz)``, None for empty cells."""
        def cell(v):
            return None if np.isnan(v) else float(v)

        return [(float(i), cell(r), cell(c))
                for i, r, c in zip(self.I, self.rate_hz, self.closed_form_hz, strict=True)]


def fi_curve(model, currents, method: str = "reference", t_end: float = 1000.0,
             dt: float | None = None, *, parameters: Mapping[str, float] | None = None,
             preset: str | None = None, out: str | Path | None = None, **sweep_options) -> FICurve:
    """Firing rate against constant current ``I`` (``currents``: a list or ``"START:STOP:N"``),
    simulated over [0, t_end] ms by :func:`splitpinn.analysis.sweep.sweep` (``sweep_options``: jobs,
    scheduler, chunk_size, resume, quiet, initial, method options), with the closed form where
    the model has one.  ``rate_hz`` is :func:`sustained_rate`.  With ``out``, also writes
    ``fi.csv`` and ``fi.png`` there."""
    from ..solvers.driver import resolve_model

    resolved = resolve_model(model)
    result = sweep(model, _as_vary({"I": currents}), method, t_end, dt, parameters=parameters,
                   preset=preset, out=out, **sweep_options)
    table = result.table
    ok = (table["status"] == "ok").to_numpy()
    rates = np.array([sustained_rate(result.spike_times(k), t_end) if good else np.nan
                      for k, good in zip(table["point"], ok, strict=True)])
    values = resolved.resolve_parameters(preset, parameters)
    curve = FICurve(resolved.name, method, table["I"].to_numpy(), rates,
                    closed_form(resolved.name, values), relu_asymptote(resolved.name, values),
                    result)
    if out is not None:
        write_fi(curve, Path(out))
    return curve


def write_fi(curve: FICurve, out: Path) -> None:
    """Write ``fi.csv`` and ``fi.png`` into ``out`` (atomically)."""
    from .plotting import save_figure
    from .sweep import write_table

    write_table(out / "fi.csv", ["I", "rate_hz", "closed_form_hz"], curve.to_csv_rows())
    save_figure(plot_fi(curve), out / "fi.png")


def plot_fi(curve: FICurve, axes=None):
    """Simulated rates with the closed form; for the LIF also its ReLU asymptote and, below,
    the asymptote's error against the closed form.  Returns the Figure."""
    import matplotlib.pyplot as plt

    two = curve.asymptote is not None and curve.closed_form is not None
    if axes is None:
        fig, axes = plt.subplots(2 if two else 1, 1, figsize=(6.5, 6 if two else 4),
                                 sharex=True, squeeze=False, height_ratios=[2, 1][: 1 + two])
        axes = axes[:, 0]
    axes = np.atleast_1d(axes)
    ax, fig = axes[0], axes[0].figure
    fine = np.linspace(curve.I.min(), curve.I.max(), 400)
    ax.plot(curve.I, curve.rate_hz, "o", ms=4, label=f"simulated ({curve.method})")
    if curve.closed_form:
        ax.plot(fine, curve.closed_form(fine), "-", lw=1.2, label="closed form")
    if two:
        ax.plot(fine, curve.asymptote(fine), "--", lw=1.2,
                label="ReLU asymptote 1000(RI/θ − 1/2)/τ")
        axes[1].plot(fine, curve.closed_form(fine) - curve.asymptote(fine), lw=1.2, color="C2")
        axes[1].axhline(0, color="0.6", lw=0.8)
        axes[1].set_ylabel("closed − ReLU (Hz)")
    ax.set_ylabel("rate (Hz)")
    ax.legend(loc="upper left", fontsize="small")
    ax.set_title(f"F–I curve of {curve.model} ({curve.method})")
    axes[-1].set_xlabel("I")
    fig.tight_layout()
    return fig
