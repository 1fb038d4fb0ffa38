"""Figures, tested through the returned Figure's axes: units on every axis, ax=/axes= honoured,
one colour per method across figures, titles with the non-default parameters, exact zeros left
out of log-scale errors, spike markers at the located spike times, dpi."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import splitpinn  # noqa: E402
from splitpinn import Solution  # noqa: E402
from splitpinn.analysis.compare import Comparison  # noqa: E402
from splitpinn.analysis.metrics import solution_metrics  # noqa: E402
from splitpinn.analysis.plotting import (  # noqa: E402
    method_colours,
    plot_comparison,
    plot_errors,
    plot_raster,
    plot_solution,
    plot_traces,
    run_title,
)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _solution(v, w, spikes, method="reference"):
    t = np.linspace(0.0, 4.0, 5)
    meta = {"model": "izhikevich", "method": method, "preset": "CH",
            "parameters": {"a": 0.02, "b": 0.2, "c": -50.0, "d": 2.0, "I": 15.0},
            "orders": {"v": 1.0, "u": 1.0}, "units": {"v": "mV", "u": "mV/ms", "I": "mV/ms"}}
    return Solution(t, np.array([v, w], float), ["v", "u"], np.array(spikes, float), meta)


@pytest.fixture
def comparison():
    ref = _solution([0, 1, 2, 3, 4], [0, 0, 0, 0, 0], [1.5, 3.25])
    sols = {"reference": ref,
            "split-pinn": _solution([0, 1, 2, 3, 4.5], [0, 0, 0, 0, 0], [1.5, 3.3], "split-pinn"),
            "reference[integrator=RK45]": _solution([0, 1, 2.1, 3, 4], [0, 0, 0, 0, 1e-3],
                                                   [1.5, 3.25])}
    metrics = {k: solution_metrics(ref, s) for k, s in sols.items()}
    return Comparison("izhikevich", "reference", sols, metrics,
                      {"a": 0.02, "b": 0.2, "c": -50.0, "d": 2.0, "I": 10.0})


def _line_colours(ax):
    return {line.get_label(): matplotlib.colors.to_hex(line.get_color())
            for line in ax.get_lines() if not line.get_label().startswith("_")}


def test_plot_solution_labels_carry_units_and_markers_sit_at_spike_times():
    sol = _solution([0, 1, 2, 3, 4], [0, 1, 0, 1, 0], [1.5, 3.25])
    fig = plot_solution(sol, dpi=90)
    top, bottom = fig.axes[:2]
    assert top.get_ylabel() == "v (mV)" and bottom.get_ylabel() == "u (mV/ms)"
    assert bottom.get_xlabel() == "t (ms)" and fig.dpi == 90
    marks = [line for line in top.get_lines() if line.get_marker() == "v"]
    assert len(marks) == 1
    np.testing.assert_array_equal(marks[0].get_xdata(), [1.5, 3.25])
    assert fig._suptitle.get_text() == \
        "izhikevich (preset CH): I = 15 mV/ms [reference] — 2 spikes"


def test_plot_solution_draws_into_given_axes():
    fig, axes = plt.subplots(2, 1)
    sol = _solution([0, 1, 2, 3, 4], [0, 1, 0, 1, 0], [])
    assert plot_solution(sol, axes=axes) is fig
    assert axes[0].get_ylabel() == "v (mV)" and len(axes[0].get_lines()) == 1
    fig, ax = plt.subplots()
    assert plot_solution(sol, states=["v"], axes=ax) is fig and ax.get_ylabel() == "v (mV)"
    with pytest.raises(ValueError, match="2 panel"):
        plot_solution(sol, axes=ax)


def test_hh_solution_groups_the_gates_in_one_panel():
    sol = splitpinn.solve("hh", "reference", 5.0, 0.05)
    fig = plot_solution(sol)
    assert [ax.get_ylabel() for ax in fig.axes] == ["V (mV)", "m, h, n"]


def test_one_colour_per_method_in_every_figure(comparison):
    colours = {k: matplotlib.colors.to_hex(c)
               for k, c in method_colours(list(comparison.solutions)).items()}
    traces = plot_traces(comparison)
    errors = plot_errors(comparison)
    raster = plot_raster(comparison)
    for ax in traces.axes:
        assert _line_colours(ax) == colours
    for ax in errors.axes:
        expected = {k: c for k, c in colours.items() if k != "reference"}
        assert _line_colours(ax) == expected
    rows = raster.axes[0].collections
    assert [matplotlib.colors.to_hex(c.get_color()[0]) for c in rows] == list(colours.values())
    assert len(set(colours.values())) == 3


def test_comparison_axes_labels_titles_and_legend_off_the_data(comparison):
    fig = plot_traces(comparison)
    assert [ax.get_ylabel() for ax in fig.axes] == ["v (mV)", "u (mV/ms)"]
    assert fig.axes[-1].get_xlabel() == "t (ms)"
    # non-default parameters (I = 15 against the default 10 of preset CH) in the title
    assert fig._suptitle.get_text() == "izhikevich (preset CH): I = 15 mV/ms — traces"
    assert fig.legends and not any(ax.get_legend() for ax in fig.axes)  # beside, not over
    fig = plot_errors(comparison)
    assert [ax.get_ylabel() for ax in fig.axes] == ["|Δv| (mV)", "|Δu| (mV/ms)"]


def test_errors_leave_exact_zeros_out(comparison):
    fig = plot_errors(comparison)
    v_panel, u_panel = fig.axes
    assert v_panel.get_yscale() == "log"
    lines = {line.get_label(): line for line in v_panel.get_lines()}
    split = lines["split-pinn"].get_ydata()
    assert np.isnan(split[:4]).all() and split[4] == 0.5  # no floor drawn at the zeros
    # u: split-PINN equals the reference everywhere, the RK45 variant differs at the end
    assert "equal to the reference: split-pinn" in [text.get_text() for text in u_panel.texts]


def test_every_comparison_figure_takes_ax_and_dpi(comparison):
    fig, axes = plt.subplots(2, 1)
    assert plot_traces(comparison, axes=axes) is fig and axes[0].get_ylabel() == "v (mV)"
    assert axes[0].get_legend() is not None  # beside the first panel
    fig, axes = plt.subplots(2, 1)
    assert plot_errors(comparison, axes=axes) is fig and axes[1].get_ylabel() == "|Δu| (mV/ms)"
    fig, ax = plt.subplots()
    assert plot_raster(comparison, ax=ax) is fig and ax.get_xlabel() == "t (ms)"
    figs = plot_comparison(comparison, dpi=72)
    assert set(figs) == {"traces", "error", "raster"}
    assert all(f.dpi == 72 for f in figs.values())


def test_run_title_shows_the_caputo_order_and_changed_parameters():
    meta = {"model": "frac-lif", "preset": None, "orders": {"V": 0.6},
            "parameters": {"tau": 20.0, "alpha": 0.6, "I": 1.5}, "units": {"I": "nA"}}
    assert run_title(meta) == "frac-lif: α = 0.6, I = 1.5 nA"
    meta["orders"] = {"V": 1.0}
    assert run_title(meta, defaults={"tau": 10.0, "alpha": 0.6, "I": 1.5}) == "frac-lif: τ = 20"
