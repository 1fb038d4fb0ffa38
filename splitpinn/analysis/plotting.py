"""Figures for papers: a solution's traces with spike markers, and a comparison's traces, errors
and spike raster.

Every plot function draws into ``ax=`` (one Axes) or ``axes=`` (one per panel) when given, else
into a new figure of ``dpi`` dots per inch, and returns the Figure.  Axis labels carry the
model's units (``V (mV)``, ``t (ms)``); a method keeps one colour in every figure of a
comparison (:func:`method_colours`); titles name the model, its preset, the Caputo order and
the parameters that differ from the defaults; legends sit beside the axes, off the data; error
plots are log-scale with exact zeros left out rather than drawn as a floor; spike markers sit
at the located spike times.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.transforms import blended_transform_factory

from ..solvers.solution import Solution, write_atomically
from .metrics import common_grid

#: Resolution (dots per inch) of new figures when no ``dpi`` is given.
DPI = 150
#: Parameter names printed as Greek letters in titles.
GREEK = {"alpha": "α", "beta": "β", "gamma": "γ", "delta": "δ", "eta": "η", "kappa": "κ",
         "lambda": "λ", "mu": "μ", "phi": "φ", "sigma": "σ", "tau": "τ", "theta": "θ"}


def save_figure(fig, path: str | Path, dpi: float | None = None) -> None:
    """Save ``fig`` atomically (format from the suffix; ``dpi`` default: the figure's own)
    and close it."""
    path = Path(path)
    fmt = path.suffix.lstrip(".") or "png"
    try:
        write_atomically(path, lambda f: fig.savefig(f, format=fmt, dpi=dpi or "figure"))
    finally:
        plt.close(fig)


def label(names: str | Sequence[str], units: Mapping[str, str]) -> str:
    """An axis label: ``"V (mV)"``, ``"m, h, n"`` (names sharing a unit), or the bare name
    where no unit is known."""
    names = [names] if isinstance(names, str) else list(names)
    unit = units.get(names[0])
    return ", ".join(names) + (f" ({unit})" if unit else "")


def method_colours(methods: Sequence[str]) -> dict[str, str]:
    """One colour per method (in order), the same in every figure of a comparison."""
    return {m: f"C{i % 10}" for i, m in enumerate(methods)}


def _library_defaults(meta: Mapping) -> dict:
    from .. import models
    from ..errors import ModelError

    try:
        return models.get(meta["model"]).resolve_parameters(meta.get("preset"))
    except (ModelError, KeyError):
        return {}


def run_title(meta: Mapping, defaults: Mapping[str, float] | None = None) -> str:
    """``model (preset P): α = 0.6, I = 1.5 nA``: the model, its preset, the Caputo order of
    a fractional run, and the parameters whose values differ from ``defaults`` (default: the
    library model's values with the same preset; unknown for other models)."""
    defaults = _library_defaults(meta) if defaults is None else defaults
    units = meta.get("units", {})
    head = str(meta.get("model", ""))
    if meta.get("preset"):
        head += f" (preset {meta['preset']})"
    parts = []
    orders = {k: a for k, a in meta.get("orders", {}).items() if a < 1}
    if len(set(orders.values())) == 1:
        parts.append(f"α = {next(iter(orders.values())):g}")
    elif orders:
        parts.append("α = " + ", ".join(f"{a:g} ({k})" for k, a in orders.items()))
    for k, v in meta.get("parameters", {}).items():
        if k in defaults and defaults[k] != v and not (k in GREEK and v in orders.values()):
            unit = units.get(k)
            parts.append(f"{GREEK.get(k, k)} = {v:g}" + (f" {unit}" if unit else ""))
    return head + (": " + ", ".join(parts) if parts else "")


def _panels(n: int, axes, dpi: float | None, height: float) -> tuple:
    """(figure, list of n axes): the given ``axes`` or a new figure with n stacked panels."""
    if axes is None:
        fig, grid = plt.subplots(n, 1, figsize=(8, height), sharex=True, squeeze=False,
                                 layout="constrained", dpi=dpi or DPI)
        return fig, list(grid[:, 0])
    axes = [axes] if isinstance(axes, Axes) else list(np.ravel(axes))
    if len(axes) != n:
        raise ValueError(f"this figure has {n} panel(s); got {len(axes)} axes")
    if dpi is not None:
        axes[0].figure.set_dpi(dpi)
    return axes[0].figure, axes


def _finish(fig, axes: list, title: str, own: bool, legend: tuple = ((), ())) -> None:
    """Title (the figure's when it is ours, else the first panel's), time label, and the
    ``legend`` (handles, labels) off the data: below the panels of our own figure, beside
    the first panel in axes given by the caller."""
    (fig.suptitle if own else axes[0].set_title)(title)
    axes[-1].set_xlabel("t (ms)")
    handles, labels = legend
    if not labels:
        return
    if own:
        fig.legend(handles, labels, loc="outside lower center", ncols=min(len(labels), 4),
                   frameon=False)
    else:
        _side_legend(axes[0], handles, labels)


def _side_legend(ax, handles=None, labels=None) -> None:
    """A legend to the right of ``ax``, outside the data."""
    args = () if handles is None else (handles, labels)
    ax.legend(*args, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0,
              frameon=False)


def _spike_marks(ax, times, colour: str, row: int = 0) -> None:
    """Triangles at the located spike times along the top of ``ax`` (one row per method),
    above the data (the y range gets room for them)."""
    times = np.asarray(times, dtype=float)
    if times.size:
        ax.margins(y=0.12 + 0.05 * row)
        where = blended_transform_factory(ax.transData, ax.transAxes)
        ax.plot(times, np.full(times.shape, 0.97 - 0.04 * row), "v", color=colour, ms=4,
                transform=where, clip_on=False)


def _groups(solution: Solution, states: Sequence[str]) -> list[list[str]]:
    """Panels: the first state alone, then the others grouped by unit."""
    units = solution.meta.get("units", {})
    groups: dict[str, list[str]] = {}
    for name in states[1:]:
        groups.setdefault(units.get(name, ""), []).append(name)
    return [[states[0]], *groups.values()]


def plot_solution(solution: Solution, title: str | None = None, *,
                  states: Sequence[str] | None = None, axes=None,
                  defaults: Mapping[str, float] | None = None, dpi: float | None = None):
    """The first of ``states`` (default: all; the first is the voltage) with markers at the
    spike times, the others below grouped by unit (one panel per unit).  ``axes``: one Axes
    per panel; ``title`` default: :func:`run_title` (``defaults`` as there).  Returns the
    Figure."""
    states = list(states or solution.names)
    groups = _groups(solution, states)
    fig, axes_list = _panels(len(groups), axes, dpi, 2.6 + 1.6 * (len(groups) - 1))
    units = solution.meta.get("units", {})
    for ax, group in zip(axes_list, groups, strict=True):
        for j, name in enumerate(group):
            ax.plot(solution.t, solution[name], lw=1.0, color=f"C{j}", label=name)
        ax.set_ylabel(label(group, units))
        if len(group) > 1:
            _side_legend(ax)
    _spike_marks(axes_list[0], solution.spike_times, "C3")
    if title is None:
        method, count = solution.meta.get("method"), len(solution.spike_times)
        title = run_title(solution.meta, defaults) + (f" [{method}]" if method else "") \
            + f" — {count} spike{'s' * (count != 1)}"
    _finish(fig, axes_list, title, axes is None)
    return fig


def _comparison_title(comparison, what: str) -> str:
    ref = comparison.solutions[comparison.reference]
    return f"{run_title(ref.meta, comparison.defaults or None)} — {what}"


def plot_traces(comparison, *, axes=None, dpi: float | None = None):
    """Every state of every method overlaid, one panel per state (the reference solid, the
    others dashed), spike markers of each method along the top of the first panel.  ``axes``:
    one Axes per state.  Returns the Figure."""
    sols = comparison.solutions
    names = sols[comparison.reference].names
    colours = method_colours(list(sols))
    fig, axes_list = _panels(len(names), axes, dpi, 1.8 + 1.5 * len(names))
    units = sols[comparison.reference].meta.get("units", {})
    for ax, name in zip(axes_list, names, strict=True):
        for method, sol in sols.items():
            main = method == comparison.reference
            ax.plot(sol.t, sol[name], color=colours[method], lw=1.6 if main else 1.0,
                    ls="-" if main else "--", label=method)
        ax.set_ylabel(label(name, units))
    for row, (method, sol) in enumerate(sols.items()):
        _spike_marks(axes_list[0], sol.spike_times, colours[method], row)
    _finish(fig, axes_list, _comparison_title(comparison, "traces"), axes is None,
            axes_list[0].get_legend_handles_labels())
    return fig


def plot_errors(comparison, *, axes=None, dpi: float | None = None):
    """|method − reference| of each state over time, log scale, one panel per state; exact
    zeros are left out (no fake floor), and a method equal to the reference everywhere is
    said so in its panel.  ``axes``: one Axes per state.  Returns the Figure."""

    sols = comparison.solutions
    ref = sols[comparison.reference]
    colours = method_colours(list(sols))
    fig, axes_list = _panels(len(ref.names), axes, dpi, 1.8 + 1.5 * len(ref.names))
    units = ref.meta.get("units", {})
    for ax, name in zip(axes_list, ref.names, strict=True):
        exact = []
        for method, sol in sols.items():
            if method == comparison.reference:
                continue
            grid, ref_states, states = common_grid(ref, sol)
            err = np.abs(states[name] - ref_states[name])
            if not np.any(err > 0):
                exact.append(method)
            ax.plot(grid, np.where(err > 0, err, np.nan), color=colours[method], lw=1.0,
                    label=method)
        if len(exact) < len(sols) - 1:  # something to draw on a log scale
            ax.set_yscale("log")
        if exact:
            ax.text(0.01, 0.05, f"equal to the reference: {', '.join(exact)}",
                    transform=ax.transAxes, fontsize="small")
        unit = units.get(name)
        ax.set_ylabel(f"|Δ{name}|" + (f" ({unit})" if unit else ""))
    _finish(fig, axes_list,
            _comparison_title(comparison, f"error against {comparison.reference}"),
            axes is None, axes_list[0].get_legend_handles_labels())
    return fig


def plot_raster(comparison, *, ax=None, dpi: float | None = None):
    """Spike times of each method, one row per method in its colour.  Returns the Figure."""
    sols = comparison.solutions
    colours = method_colours(list(sols))
    own = ax is None
    fig, (ax,) = _panels(1, ax, dpi, 1.0 + 0.45 * len(sols))
    for j, (method, sol) in enumerate(sols.items()):
        ax.vlines(sol.spike_times, j + 0.6, j + 1.4, color=colours[method])
    ax.set_yticks(range(1, len(sols) + 1), list(sols))
    ax.set_ylim(len(sols) + 0.6, 0.4)  # the reference on top
    ref = sols[comparison.reference]
    ax.set_xlim(ref.t[0], ref.t[-1])
    _finish(fig, [ax], _comparison_title(comparison, "spike raster"), own)
    return fig


def plot_comparison(comparison, dpi: float | None = None) -> dict:
    """The three figures of a comparison, as new figures: ``{"traces": plot_traces(...),
    "error": plot_errors(...), "raster": plot_raster(...)}``."""
    return {"traces": plot_traces(comparison, dpi=dpi),
            "error": plot_errors(comparison, dpi=dpi),
            "raster": plot_raster(comparison, dpi=dpi)}
