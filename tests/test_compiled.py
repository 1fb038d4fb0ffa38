"""The compiled model functions and the compiled uniform-step fractional march, each checked
against the numpy path they replace (lambdified sympy; the fractional reference with
``compiled=False``), which the rest of the suite checks against closed forms and converged
solutions."""

import numpy as np
import pytest

import splitpinn.compiled as compiled
from splitpinn.api import resolve_model
from splitpinn.fractional_reference import solve_fractional_reference
from splitpinn.solution import output_grid


@pytest.mark.parametrize("name, preset", [("frac-lif", None), ("fo-hh", "n"), ("hh", None),
                                          ("frac-izhikevich", None), ("morris-lecar", None),
                                          ("linear-lif", None)])
def test_compiled_functions_equal_the_lambdified_ones(name, preset):
    bound = resolve_model(name).bind(preset=preset)
    functions = compiled.compiled_model(bound)
    n, params = len(bound.names), np.array(bound.params(0), dtype=float)
    rng = np.random.default_rng(1)
    count = len(bound.events) + (1 if bound.model.spike_detector else 0)
    for _ in range(5):
        y = np.asarray(bound.y0, dtype=float) * (1 + 0.2 * rng.standard_normal(n))
        t, stim = rng.uniform(0, 50), rng.uniform(-2, 12)
        f, jac, g = np.empty(n), np.empty((n, n)), np.empty(count)
        functions.rhs(t, stim, y, params, f)
        functions.jacobian(t, stim, y, params, jac)
        functions.crossings(t, stim, y, params, g)
        f_ref = np.array(bound.rhs_columns(t, stim, list(y), bound.params(0)), dtype=float)
        jac_ref = np.array(bound.jacobian_columns(t, stim, list(y), bound.params(0)),
                           dtype=float)
        g_ref = [ev.value(t, y) for ev in bound.events]
        if bound.model.spike_detector:
            detector = bound.model.spike_detector
            g_ref.append(y[bound.index(detector.state)] - detector.threshold)
        np.testing.assert_allclose(f, f_ref, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(jac, jac_ref, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(g, g_ref, rtol=1e-12, atol=1e-12)


def _both(monkeypatch, bound, grid, integrator):
    """The fast-history reference compiled and not, and the share of steps compiled."""
    taken = []

    def counted(*args, **kwargs):
        marched = march(*args, **kwargs)
        taken.append(len(marched.states))
        return marched

    march = compiled.march_uniform
    monkeypatch.setattr(compiled, "march_uniform", counted)
    fast = solve_fractional_reference(bound, grid, history="fast", integrator=integrator)[0]
    slow = solve_fractional_reference(bound, grid, history="fast", integrator=integrator,
                                      compiled=False)[0]
    return fast, slow, sum(taken) / fast.meta["solver"]["steps_accepted"]


@pytest.mark.parametrize("integrator", ["l1", "l2-1sigma"])
def test_compiled_march_equals_the_numpy_march(monkeypatch, integrator):
    """frac-LIF with resets and refractory holds: the same spikes and trace, most of the
    steps compiled."""
    bound = resolve_model("frac-lif").bind({"alpha": 0.6, "I": 3.0})
    fast, slow, share = _both(monkeypatch, bound, output_grid(60.0, 0.01), integrator)
    assert share > {"l1": 0.95, "l2-1sigma": 0.5}[integrator]  # L2-1σ grades after onsets
    assert fast.spike_times.size == slow.spike_times.size >= 3
    np.testing.assert_allclose(fast.spike_times, slow.spike_times, rtol=0, atol=1e-9)
    np.testing.assert_allclose(fast.y, slow.y, rtol=0, atol=1e-8)
    assert fast.meta["solver"]["memory_floats"] == slow.meta["solver"]["memory_floats"]


def test_compiled_march_of_a_system_with_a_stimulus_jump(monkeypatch):
    """FO-HH (four states, one fractional gate) with a current step between grid points:
    the compiled stretches end at the jump and agree with numpy steps."""
    bound = resolve_model("fo-hh").bind({"eta": 0.8, "t_on": 2.003}, preset="n")
    fast, slow, share = _both(monkeypatch, bound, output_grid(25.0, 0.01), "l1")
    assert share > 0.9
    assert fast.spike_times.size == slow.spike_times.size >= 1
    np.testing.assert_allclose(fast.spike_times, slow.spike_times, rtol=0, atol=1e-9)
    np.testing.assert_allclose(fast.y, slow.y, rtol=0, atol=1e-7)


def test_a_model_numba_cannot_compile_keeps_the_numpy_path(monkeypatch):
    def refuse(bound):
        raise compiled.NotCompilable("no numba form")

    monkeypatch.setattr(compiled, "compiled_model", refuse)
    bound = resolve_model("frac-lif").bind({"alpha": 0.6, "I": 3.0})
    grid = output_grid(20.0, 0.01)
    kept = solve_fractional_reference(bound, grid, history="fast", integrator="l1")[0]
    slow = solve_fractional_reference(bound, grid, history="fast", integrator="l1",
                                      compiled=False)[0]
    np.testing.assert_array_equal(kept.y, slow.y)
