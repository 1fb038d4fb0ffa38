"""Compare methods against a reference: errors per state, spike timing, wall time, figures."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .api import resolve_model, solve
from .solution import Solution, write_atomically


def match_spikes(reference: np.ndarray, other: np.ndarray) -> np.ndarray:
    """|t_other − t_ref| for each reference spike matched to its nearest spike in ``other``
    (empty when ``other`` has none)."""
    reference, other = np.asarray(reference), np.asarray(other)
    if other.size == 0 or reference.size == 0:
        return np.array([])
    nearest = np.abs(other[None, :] - reference[:, None]).min(axis=1)
    return nearest


def solution_metrics(reference: Solution, other: Solution) -> dict:
    """Metrics of ``other`` against ``reference`` on the reference grid (the contract of
    ``metrics.json``, plus reference spike count and mean interspike interval)."""
    rel_l2, max_abs = {}, {}
    for name in reference.names:
        ref = reference[name]
        values = other[name] if np.array_equal(other.t, reference.t) else \
            np.interp(reference.t, other.t, other[name])
        diff = values - ref
        rel_l2[name] = float(np.linalg.norm(diff) / max(np.linalg.norm(ref), 1e-300))
        max_abs[name] = float(np.max(np.abs(diff)))
    errors = match_spikes(reference.spike_times, other.spike_times)
    same_count = len(other.spike_times) == len(reference.spike_times)
    isi = np.diff(other.spike_times)
    return {
        "wall_time_s": float(other.meta.get("wall_time_s", float("nan"))),
        "rel_l2": rel_l2,
        "max_abs": max_abs,
        "spike_count": int(len(other.spike_times)),
        "reference_spike_count": int(len(reference.spike_times)),
        "max_spike_time_error_ms": float(errors.max()) if errors.size and same_count else None,
        "mean_isi_ms": float(isi.mean()) if isi.size else None,
    }


@dataclass
class Comparison:
    """Solutions of several methods on one problem and their metrics against the first."""

    model: str
    reference: str
    solutions: dict[str, Solution]
    metrics: dict[str, dict]

    def to_json(self) -> dict:
        """The ``metrics.json`` document of the command-line contract."""
        return {"model": self.model, "reference": self.reference, "methods": self.metrics}

    def summary(self) -> str:
        """A plain-text table: method, rel. L2 of the first state, spikes, time."""
        first = self.solutions[self.reference].names[0]
        lines = [f"{'method':14s} {'rel L2(' + first + ')':>14s} {'spikes':>7s} "
                 f"{'max spike err (ms)':>19s} {'wall (s)':>9s}"]
        for method, m in self.metrics.items():
            err = m["max_spike_time_error_ms"]
            lines.append(f"{method:14s} {m['rel_l2'][first]:14.3e} {m['spike_count']:7d} "
                         f"{'-' if err is None else f'{err:.3e}':>19s} {m['wall_time_s']:9.2f}")
        return "\n".join(lines)


def compare(model, methods: Sequence[str], t_end: float, dt: float | None = None, *,
            parameters: Mapping[str, float] | None = None,
            initial: Mapping[str, float] | None = None, preset: str | None = None,
            quiet: bool = True, options: Mapping[str, dict] | None = None) -> Comparison:
    """Solve with every method in ``methods`` (the first is the reference) on one grid of
    step ``dt`` ms and compute :func:`solution_metrics`.  ``options`` maps a method to its
    keyword options (see :func:`splitpinn.solve`).  Without ``dt`` every method uses
    split-PINN's default step, so all share one grid.

    Returns a :class:`Comparison`; raises what :func:`splitpinn.solve` raises."""
    model = resolve_model(model)
    if dt is None:
        from .marching import default_step

        dt = default_step(model.bind(parameters, initial, preset))
    solutions = {m: solve(model, m, t_end, dt, parameters=parameters, initial=initial,
                          preset=preset, quiet=quiet, **(options or {}).get(m, {}))
                 for m in methods}
    reference = methods[0]
    metrics = {m: solution_metrics(solutions[reference], s) for m, s in solutions.items()}
    return Comparison(model.name, reference, solutions, metrics)


def write_comparison(comparison: Comparison, out: str | Path) -> None:
    """Write ``metrics.json``, ``traces.png``, ``error.png`` and ``raster.png`` into ``out``."""
    from .plotting import plot_comparison, save_figure

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    figures = plot_comparison(comparison)
    text = json.dumps(comparison.to_json(), indent=2)
    write_atomically(out / "metrics.json", lambda f: f.write(text.encode()))
    for name, fig in figures.items():
        save_figure(fig, out / f"{name}.png")
