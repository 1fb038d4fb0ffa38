"""First-spike latency against the amplitude of a step current, and three predictors fitted to
it (Johnson et al.'s comparison of a classical, a stimulus-accelerated and a quantum-inspired LIF).

The step switches the model's stimulus on at ``t_on``; the latency is the first spike after
``t_on``, minus ``t_on``.  With θ the threshold distance (fixed; only R/θ can be identified):

* ``lif``: t(I) = τ ln(R I/(R I − θ)), with τ and R fitted;
* ``sa_lif``: the same with τ_eff = τ/(1 + k I), with τ, R and k fitted;
* ``qi_lif``: the onset is a Gaussian wave packet in time, |ψ(t)|² ∝ exp(−(t − μ)²/(2σ²)) on
  t ≥ 0, with mean μ(I) the ``lif`` latency and width σ(I) = a·I^(−b) fitted (a, b); its
  prediction is the expected latency μ + σ φ(μ/σ)/Φ(μ/σ).

Fits minimise the relative errors |predicted − observed|/observed with
:func:`scipy.optimize.least_squares`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.optimize import least_squares
from scipy.special import expit, log_ndtr

from ..errors import ModelError
from .sweep import SweepResult, _as_vary, sweep

PREDICTORS = ("lif", "sa_lif", "qi_lif")


def first_spike_after(spike_times, t_on: float) -> float:
    """Latency (ms) of the first spike at or after ``t_on``; NaN if there is none."""
    s = np.asarray(spike_times, dtype=float)
    s = s[s >= t_on]
    return float(s[0] - t_on) if s.size else float("nan")


def lif_latency(I, tau: float, R: float, theta: float = 1.0) -> np.ndarray:
    """τ ln(R I/(R I − θ)); infinite where R I ≤ θ (no spike)."""
    drive = R * np.asarray(I, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(drive > theta, tau * np.log(drive / (drive - theta)), np.inf)


def sa_lif_latency(I, tau: float, R: float, k: float, theta: float = 1.0) -> np.ndarray:
    """The LIF latency with the stimulus-accelerated time constant τ/(1 + k I)."""
    I = np.asarray(I, dtype=float)
    return lif_latency(I, tau, R, theta) / (1.0 + k * I)


@dataclass
class WavePacket:
    """The quantum-inspired onset: a Gaussian packet in time with mean ``mean(I)`` (ms) and
    width σ(I) = a·I^(−b), restricted to t ≥ 0."""

    mean: Callable
    a: float
    b: float

    def sigma(self, I) -> np.ndarray:
        return self.a * np.asarray(I, dtype=float) ** (-self.b)

    def density(self, t, I: float) -> np.ndarray:
        """Onset probability density (1/ms) at times ``t`` for the amplitude ``I``."""
        mu, s = float(self.mean(I)), float(self.sigma(I))
        t = np.asarray(t, dtype=float)
        z = (t - mu) / s
        peak = np.exp(-0.5 * z * z - log_ndtr(mu / s)) / (s * np.sqrt(2 * np.pi))
        return np.where(t >= 0, peak, 0.0)

    def expected(self, I) -> np.ndarray:
        """Expected onset latency (ms): μ + σ φ(μ/σ)/Φ(μ/σ)."""
        mu, s = np.asarray(self.mean(I), dtype=float), self.sigma(I)
        z = mu / s
        return mu + s * np.exp(-0.5 * z * z - log_ndtr(z)) / np.sqrt(2 * np.pi)


@dataclass
class Predictor:
    """A fitted predictor: its ``name``, fitted ``parameters``, ``predict(I)`` (ms) and, for
    ``qi_lif``, the onset ``packet``."""

    name: str
    parameters: dict[str, float]
    predict: Callable = field(repr=False)
    packet: WavePacket | None = None


def _fit(residuals, x0, bounds=(-np.inf, np.inf)) -> np.ndarray:
    fit = least_squares(residuals, x0, bounds=bounds, x_scale="jac", max_nfev=2000)
    if not np.all(np.isfinite(fit.x)):
        raise ModelError("latency: a predictor fit did not converge")
    return fit.x


def fit_predictors(I, latency, theta: float = 1.0) -> dict[str, Predictor]:
    """Fit the three predictors to the observed ``latency`` (ms) at the amplitudes ``I``;
    amplitudes without a spike (NaN) take no part, except that the LIF's rheobase θ/R is kept
    between the strongest silent amplitude below the weakest firing one (or 0) and that weakest
    firing amplitude, so that the predictors fire where the neuron does.  At least three
    amplitudes must fire."""
    I, latency = np.asarray(I, dtype=float), np.asarray(latency, dtype=float)
    firing = np.isfinite(latency) & (I > 0)
    if firing.sum() < 3:
        raise ModelError(f"latency: {firing.sum()} amplitude(s) with a spike; the predictors "
                         "need at least 3")
    high = I[firing].min()
    silent = I[~np.isfinite(latency) & (I < high)]
    low = max(0.0, silent.max()) if silent.size else 0.0
    I, latency = I[firing], latency[firing]

    def lif_params(x):  # τ = e^x0; rheobase θ/R = low + (high − low)·sigmoid(x1)
        return float(np.exp(x[0])), float(theta / (low + (high - low) * expit(x[1])))

    def lif_residuals(x):
        return lif_latency(I, *lif_params(x), theta) / latency - 1.0

    x_lif = _fit(lif_residuals, [np.log(latency[np.argmin(I)] / np.log(2.0)), 0.0])
    tau, R = lif_params(x_lif)

    def sa_residuals(x):
        return sa_lif_latency(I, *lif_params(x[:2]), x[2], theta) / latency - 1.0

    k_low = -1.0 / I.max() + 1e-9
    x_sa = _fit(sa_residuals, [*x_lif, 0.0],
                ([-np.inf, -np.inf, k_low], [np.inf, np.inf, np.inf]))
    sa_tau, sa_R = lif_params(x_sa[:2])

    def mean(J, tau=tau, R=R):
        return lif_latency(J, tau, R, theta)

    def qi_residuals(x):
        return WavePacket(mean, np.exp(x[0]), x[1]).expected(I) / latency - 1.0

    x_qi = _fit(qi_residuals, [np.log(0.1 * np.median(latency)), 0.0])
    packet = WavePacket(mean, float(np.exp(x_qi[0])), float(x_qi[1]))
    k = float(x_sa[2])
    return {
        "lif": Predictor("lif", {"tau": tau, "R": R, "theta": theta},
                         lambda J: lif_latency(J, tau, R, theta)),
        "sa_lif": Predictor("sa_lif", {"tau": sa_tau, "R": sa_R, "k": k, "theta": theta},
                            lambda J: sa_lif_latency(J, sa_tau, sa_R, k, theta)),
        "qi_lif": Predictor("qi_lif", {"tau": tau, "R": R, "theta": theta, "sigma_a": packet.a,
                                       "sigma_b": packet.b}, packet.expected, packet),
    }


@dataclass
class LatencyResult:
    """Amplitudes ``I``, simulated ``latency_ms`` (NaN without a spike after ``t_on``), the fitted
    ``predictors`` (empty when fewer than three amplitudes fire) and the underlying
    :class:`SweepResult`."""

    model: str
    method: str
    t_on: float
    I: np.ndarray
    latency_ms: np.ndarray
    predictors: dict[str, Predictor]
    sweep: SweepResult

    def predicted(self, name: str) -> np.ndarray:
        """Predictor ``name``'s latency at ``I`` (NaN where it predicts no spike)."""
        with np.errstate(invalid="ignore"):
            p = np.asarray(self.predictors[name].predict(self.I), dtype=float)
        return np.where(np.isfinite(p), p, np.nan)

    def relative_error(self, name: str) -> np.ndarray:
        """|predicted − simulated| / simulated per amplitude."""
        return np.abs(self.predicted(name) - self.latency_ms) / self.latency_ms

    def columns(self) -> dict[str, np.ndarray]:
        """The columns of ``latency.csv``."""
        columns = {"I": self.I, "latency_ms": self.latency_ms}
        for name in PREDICTORS:
            empty = np.full(self.I.shape, np.nan)
            fitted = name in self.predictors
            columns[f"{name}_ms"] = self.predicted(name) if fitted else empty
            columns[f"{name}_rel_err"] = self.relative_error(name) if fitted else empty
        return columns


def step_model(model, t_on: float):
    """``model`` with its stimulus switched on at ``t_on`` ms (unchanged for ``t_on`` = 0)."""
    from ..declare.stimulus import step
    from ..solvers.driver import resolve_model

    model = resolve_model(model)
    return model if t_on == 0 else model.with_stimulus(step(model.stimulus, on=t_on))


def latency(model, currents, method: str = "reference", t_end: float = 50.0,
            dt: float | None = None, *, t_on: float = 0.0, theta: float = 1.0,
            parameters: Mapping[str, float] | None = None, preset: str | None = None,
            out: str | Path | None = None, **sweep_options) -> LatencyResult:
    """First-spike latency after a step of amplitude ``I`` (``currents``: a list or
    ``"START:STOP:N"``) switched on at ``t_on`` ms, simulated by
    :func:`splitpinn.analysis.sweep.sweep` over [0, t_end], and the three predictors fitted to it
    (``theta``: the LIF threshold distance the predictors assume).  With ``out``, also writes
    ``latency.csv``, ``latency.json`` (the fitted parameters) and ``latency.png`` there."""
    if not (np.isfinite(t_on) and 0 <= t_on < t_end):
        raise ModelError(f"t_on must lie in [0, t_end), got {t_on!r}")
    if not (np.isfinite(theta) and theta > 0):
        raise ModelError(f"theta must be a finite number > 0, got {theta!r}")
    stepped = step_model(model, t_on)
    result = sweep(stepped, _as_vary({"I": currents}), method, t_end, dt, parameters=parameters,
                   preset=preset, out=out, **sweep_options)
    table = result.table
    lat = np.array([first_spike_after(result.spike_times(k), t_on) if status == "ok" else np.nan
                    for k, status in zip(table["point"], table["status"], strict=True)])
    currents = table["I"].to_numpy()
    firing = np.isfinite(lat) & (currents > 0)
    predictors = fit_predictors(currents, lat, theta) if firing.sum() >= 3 else {}
    outcome = LatencyResult(stepped.name, method, t_on, currents, lat, predictors, result)
    if out is not None:
        write_latency(outcome, Path(out))
    return outcome


def write_latency(result: LatencyResult, out: Path) -> None:
    """Write ``latency.csv``, ``latency.json`` and ``latency.png`` into ``out`` (atomically)."""
    from .plotting import save_figure
    from .sweep import write_json, write_table

    columns = result.columns()
    rows = [tuple(None if np.isnan(v) else float(v) for v in row)
            for row in zip(*columns.values(), strict=True)]
    write_table(out / "latency.csv", list(columns), rows)
    fitted = {"t_on": result.t_on,
              "predictors": {n: p.parameters for n, p in result.predictors.items()}}
    write_json(out / "latency.json", fitted)
    save_figure(plot_latency(result), out / "latency.png")


def plot_latency(result: LatencyResult, axes=None):
    """Latency against amplitude with the three predictors (the wave packet's ±σ band shaded),
    and each predictor's relative error below.  Returns the Figure."""
    import matplotlib.pyplot as plt

    if axes is None:
        fig, axes = plt.subplots(2, 1, figsize=(6.5, 6.5), sharex=True, height_ratios=[2, 1])
    top, bottom = axes
    fig = top.figure
    top.plot(result.I, result.latency_ms, "ko", ms=4, label=f"simulated ({result.method})")
    firing = np.isfinite(result.latency_ms)
    if result.predictors and firing.any():
        fine = np.linspace(result.I[firing].min(), result.I[firing].max(), 300)
        labels = {"lif": "LIF", "sa_lif": "stimulus-accelerated LIF",
                  "qi_lif": "quantum-inspired LIF (expected)"}
        for j, name in enumerate(PREDICTORS):
            top.plot(fine, result.predictors[name].predict(fine), lw=1.2, color=f"C{j}",
                     label=labels[name])
            bottom.semilogy(result.I, result.relative_error(name), "o-", ms=3, lw=1,
                            color=f"C{j}", label=labels[name])
        packet = result.predictors["qi_lif"].packet
        mu, s = packet.mean(fine), packet.sigma(fine)
        top.fill_between(fine, np.maximum(mu - s, 0), mu + s, color="C2", alpha=0.15,
                         label="wave packet μ ± σ")
        bottom.legend(fontsize="small")
    top.set_ylabel("first-spike latency (ms)")
    top.legend(fontsize="small")
    top.set_title(f"{result.model}: latency after a step at {result.t_on:g} ms")
    bottom.set_ylabel("relative error")
    bottom.set_xlabel("I")
    fig.tight_layout()
    return fig
