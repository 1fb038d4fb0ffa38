"""The fractional reference at second order (L2-1σ, graded onsets, marked kinks), judged against
closed forms and converged solutions — never against the same scheme at the same step."""

import numpy as np
import pytest
import sympy as sp
from exact import mittag_leffler

import splitpinn
from splitpinn.declare.model import Model, State

FRAC_LIF = {"alpha": 0.6, "I": 1.5}


def _slope(dts, errors) -> float:
    return float(np.polyfit(np.log(dts), np.log(errors), 1)[0])


def _relaxation():
    x, a, la = sp.symbols("x alpha lam", real=True)
    return Model("relaxation", [State("x", 1.0, a)], {"x": -la * x}, {"alpha": 0.5, "lam": 1.0})


@pytest.mark.parametrize("alpha", [0.3, 0.6, 0.9])
def test_mittag_leffler_relaxation_is_second_order(alpha):
    """D^a x = -x from 1 is E_a(-t^a), which behaves like t^a at 0: the reference grades its
    first steps, so the max error over [0, 2] falls like dt² (slope >= 1.8)."""
    dts, errors = [0.04, 0.02, 0.01], []
    for dt in dts:
        sol = splitpinn.solve(_relaxation(), "reference", 2.0, dt, parameters={"alpha": alpha})
        exact = mittag_leffler(alpha, -(sol.t**alpha))
        errors.append(np.max(np.abs(sol["x"] - exact)))
    assert _slope(dts, errors) >= 1.8
    assert errors[-1] < 1e-4


@pytest.fixture(scope="module")
def frac_lif_first_spike():
    """First spike of frac-LIF (alpha 0.6, I 1.5) by L2-1σ at dt = 0.04, 0.02, 0.01, and the
    converged time: Richardson extrapolation (order 2) of dt = 0.005 and 0.0025."""
    times = {dt: splitpinn.solve("frac-lif", "reference", 33.0, dt, parameters=FRAC_LIF,
                                 traces=False, estimate_error=(dt == 0.01))
             for dt in (0.04, 0.02, 0.01, 0.005, 0.0025)}
    fine, finer = times[0.005].spike_times[0], times[0.0025].spike_times[0]
    return times, finer + (finer - fine) / 3


@pytest.mark.slow
def test_frac_lif_spike_times_second_order_and_within_target(frac_lif_first_spike):
    """Spike-time error against the converged time: order 2 (measured 2.6-2.8 over this
    range) and within 1e-3 ms at the default dt 0.01 (the L1 reference is 3.9e-2 ms off)."""
    times, converged = frac_lif_first_spike
    dts = [0.04, 0.02, 0.01]
    errors = [abs(times[dt].spike_times[0] - converged) for dt in dts]
    assert _slope(dts, errors) >= 1.8
    assert errors[2] < 1e-3


@pytest.mark.slow
def test_error_estimate_in_meta_is_within_factor_10_of_the_true_error(frac_lif_first_spike):
    times, converged = frac_lif_first_spike
    sol = times[0.01]
    estimate = sol.meta["solver"]["error_estimate"]
    true = abs(sol.spike_times[0] - converged)
    assert estimate["order"] == 2.0 and not estimate["spike_count_changes"]
    assert true / 10 <= estimate["max_spike_time_ms"] <= 10 * true


@pytest.mark.slow
def test_fo_hh_error_estimate_within_factor_10():
    """FO-HH (gate n of order 0.8, step current at 10 ms) over 0-12 ms: the estimated max
    error of V at dt 0.02 against the difference to a solve at dt 0.005 (1/16 of it left)."""
    common = dict(parameters={"eta": 0.8}, preset="n")
    coarse = splitpinn.solve("fo-hh", "reference", 12.0, 0.02, estimate_error=True, **common)
    fine = splitpinn.solve("fo-hh", "reference", 12.0, 0.005, **common)
    true = np.max(np.abs(coarse["V"] - fine["V"][::4]))
    estimate = coarse.meta["solver"]["error_estimate"]["max_abs"]["V"]
    assert true / 10 <= estimate <= 10 * true


def test_l1_estimate_reports_its_lower_order():
    sol = splitpinn.solve("frac-lif", "reference", 5.0, 0.05, parameters=FRAC_LIF,
                          integrator="l1", estimate_error=True)
    assert sol.meta["solver"]["error_estimate"]["order"] == pytest.approx(1.4)
