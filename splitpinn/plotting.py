"""Figures: a solution's traces with spike markers, and method comparisons."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from .solution import Solution, write_atomically


def save_figure(fig, path: str | Path) -> None:
    """Save ``fig`` atomically (format from the suffix) and close it."""
    path = Path(path)
    fmt = path.suffix.lstrip(".") or "png"
    try:
        write_atomically(path, lambda f: fig.savefig(f, format=fmt, dpi=120))
    finally:
        plt.close(fig)


def plot_solution(solution: Solution, title: str = ""):
    """First state (the voltage) with spike markers on top, the other states below."""
    n = len(solution.names)
    fig, axes = plt.subplots(min(n, 2), 1, figsize=(9, 5 if n > 1 else 3.2), sharex=True,
                             squeeze=False, height_ratios=[2, 1][: min(n, 2)])
    v = solution.names[0]
    ax = axes[0, 0]
    ax.plot(solution.t, solution[v], lw=1.0)
    spikes = np.asarray(solution.spike_times)
    if spikes.size:
        ax.plot(spikes, np.full(spikes.shape, np.nanmax(solution[v])), "v", color="C3", ms=5,
                label=f"{spikes.size} spikes")
        ax.legend(loc="upper right")
    ax.set_ylabel(v)
    ax.set_title(title or f"{solution.meta.get('model', '')} ({solution.meta.get('method', '')})")
    if n > 1:
        for name in solution.names[1:]:
            axes[1, 0].plot(solution.t, solution[name], lw=1.0, label=name)
        axes[1, 0].legend(loc="upper right", ncol=n - 1)
    axes[-1, 0].set_xlabel("t (ms)")
    fig.tight_layout()
    return fig


def plot_comparison(comparison) -> dict:
    """Figures of a :class:`splitpinn.compare.Comparison`: ``traces`` (states overlaid),
    ``error`` (|method − reference| of each state over time, log scale) and ``raster``
    (spike times per method)."""
    sols = comparison.solutions
    ref = sols[comparison.reference]
    names = ref.names
    figs = {}
    fig, axes = plt.subplots(len(names), 1, figsize=(9, 2.2 + 1.6 * len(names)), sharex=True,
                             squeeze=False)
    for k, name in enumerate(names):
        for j, (method, sol) in enumerate(sols.items()):
            axes[k, 0].plot(sol.t, sol[name], lw=1.6 if j == 0 else 1.0,
                            ls="-" if j == 0 else "--", label=method)
        axes[k, 0].set_ylabel(name)
    axes[0, 0].legend(loc="upper right")
    axes[0, 0].set_title(f"{comparison.model}: traces")
    axes[-1, 0].set_xlabel("t (ms)")
    fig.tight_layout()
    figs["traces"] = fig

    fig, axes = plt.subplots(len(names), 1, figsize=(9, 2.2 + 1.6 * len(names)), sharex=True,
                             squeeze=False)
    for k, name in enumerate(names):
        for method, sol in sols.items():
            if method == comparison.reference:
                continue
            err = np.abs(np.interp(ref.t, sol.t, sol[name]) - ref[name])
            axes[k, 0].semilogy(ref.t, np.maximum(err, 1e-16), lw=1.0, label=method)
        axes[k, 0].set_ylabel(f"|error| {name}")
    axes[0, 0].legend(loc="upper right")
    axes[0, 0].set_title(f"{comparison.model}: error against {comparison.reference}")
    axes[-1, 0].set_xlabel("t (ms)")
    fig.tight_layout()
    figs["error"] = fig

    fig, ax = plt.subplots(figsize=(9, 0.8 + 0.5 * len(sols)))
    for j, sol in enumerate(sols.values()):
        ax.vlines(sol.spike_times, j + 0.6, j + 1.4, color=f"C{j}")
    ax.set_yticks(range(1, len(sols) + 1), list(sols))
    ax.set_ylim(0.4, len(sols) + 0.6)
    ax.set_xlim(ref.t[0], ref.t[-1])
    ax.set_xlabel("t (ms)")
    ax.set_title(f"{comparison.model}: spike raster")
    fig.tight_layout()
    figs["raster"] = fig
    return figs
