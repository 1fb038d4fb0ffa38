"""Figures: a solution's traces with spike markers, and method comparisons."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .solution import Solution, write_atomically  # noqa: E402


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
