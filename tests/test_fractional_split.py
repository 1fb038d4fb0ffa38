"""Fractional split-PINN against the fractional reference solvers on the same grid."""

import numpy as np
import pytest

import splitpinn
from splitpinn import ModelError


def _solve(model, method, t_end, dt, parameters=None, preset=None, **options):
    return splitpinn.solve(model, method, t_end, dt, parameters=parameters, preset=preset,
                           **options)


def _rel_l2(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def test_frac_lif_split_pinn_matches_the_l1_reference():
    """Issue 5's target: alpha 0.6, I 1.5 nA, 0-200 ms, dt 0.01: six spikes, rel. L2 <= 1e-3,
    spikes within 0.1 ms. Measured: rel. L2 7e-15, spikes within 6e-13 ms: for one linear
    state the PINN meets the L1 relation at tau = 1 (a collocation point) to its residual
    tolerance, so both produce the same L1 solution; the tighter bound below allows for that
    tolerance (1e-8)."""
    parameters = {"alpha": 0.6, "I": 1.5}
    split = _solve("frac-lif", "split-pinn", 200.0, 0.01, parameters)
    ref = _solve("frac-lif", "reference", 200.0, 0.01, parameters, integrator="l1")
    assert split.meta["solver"]["fixed_step"]  # fractional models march with a fixed step
    assert ref.meta["solver"]["integrator"] == "l1"
    np.testing.assert_array_equal(split.t, ref.t)
    assert len(split.spike_times) == len(ref.spike_times) == 6
    assert np.max(np.abs(split.spike_times - ref.spike_times)) < 0.1
    assert _rel_l2(split["V"], ref["V"]) < 1e-3
    assert np.max(np.abs(split.spike_times - ref.spike_times)) < 1e-5
    assert _rel_l2(split["V"], ref["V"]) < 1e-7


@pytest.mark.parametrize("t_on", [0.0, 10.0])  # 10: steps end at the stimulus switch-on
def test_fo_hh_split_pinn_against_references(t_on):
    """FO-HH (gate n of order 0.8, I 10), 0-30 ms, dt 0.01. Both references check the split
    solution: L1 (backward Euler for the order-1 states V, m, h: first order, the larger
    error) and Adams (trapezoid for them). Measured (t_on 0): one spike in each, times 1.905
    (L1), 1.923 (Adams), 1.922 (split-PINN); rel. L2(V) split vs L1 6.5e-3, vs Adams 6.8e-4."""
    parameters = {"eta": 0.8, "t_on": t_on, "I": 10.0}
    split = _solve("fo-hh", "split-pinn", 30.0, 0.01, parameters, "n")
    assert list(split.meta["orders"].values()) == [1.0, 1.0, 1.0, 0.8]
    l1 = _solve("fo-hh", "reference", 30.0, 0.01, parameters, "n", integrator="l1")
    adams = _solve("fo-hh", "reference", 30.0, 0.01, parameters, "n", integrator="adams")
    assert len(split.spike_times) == len(l1.spike_times) == len(adams.spike_times) >= 1
    assert _rel_l2(split["V"], l1["V"]) < 0.02
    assert _rel_l2(split["V"], adams["V"]) < 3e-3
    assert np.max(np.abs(split.spike_times - adams.spike_times)) < 0.01
    assert np.max(np.abs(split.spike_times - l1.spike_times)) < 0.05
    for name in ("m", "h", "n"):
        assert _rel_l2(split[name], adams[name]) < 0.02


def test_split_pinn_fast_and_full_history_give_the_same_spikes():
    """frac-LIF alpha 0.8, I 3 nA, 0-18 ms, dt 0.02 (two spikes, one reset in the memory): fast
    (SOE, tol 1e-8) and full L1 memory in the split-PINN agree on spike times to 1e-3 ms
    (measured ~1e-11 ms), and both agree with the reference."""
    parameters = {"alpha": 0.8, "I": 3.0}
    full = _solve("frac-lif", "split-pinn", 18.0, 0.02, parameters, history="full")
    fast = _solve("frac-lif", "split-pinn", 18.0, 0.02, parameters, history="fast")
    assert full.meta["solver"]["history"] == "full" and fast.meta["solver"]["history"] == "fast"
    assert len(full.spike_times) == len(fast.spike_times) == 2
    assert np.max(np.abs(full.spike_times - fast.spike_times)) < 1e-3
    ref = _solve("frac-lif", "reference", 18.0, 0.02, parameters, history="full",
                 integrator="l1")
    assert np.max(np.abs(full.spike_times - ref.spike_times)) < 1e-3


def test_split_pinn_step_after_a_very_short_step():
    """alpha 0.6, I 3 nA, dt 0.01: the refractory period ends at 15.68958 ms, 4.1e-4 ms
    before the grid point 15.69; the reference passes through it.  The fractional PINN's
    residual on the following full step is 2.2e-8, within its fractional_tol (1e-6)."""
    parameters = {"alpha": 0.6, "I": 3.0}
    ref = _solve("frac-lif", "reference", 16.0, 0.01, parameters, history="fast",
                 integrator="l1")
    assert ref.spike_times[0] + 8.0 == pytest.approx(15.68958, abs=1e-5)
    split = _solve("frac-lif", "split-pinn", 16.0, 0.01, parameters, history="fast")
    np.testing.assert_allclose(split.spike_times, ref.spike_times, atol=1e-3)


def test_split_pinn_refuses_unclamped_fractional_reset():
    """frac-izhikevich with t_ref = 0 resets v and u with no clamp: ill posed with memory kept
    (the L1 reference's first ISI does not converge in dt), so split-PINN refuses up front."""
    with pytest.raises(ModelError, match="no refractory clamp"):
        _solve("frac-izhikevich", "split-pinn", 10.0, 0.01, {"t_ref": 0.0})


def test_frac_izhikevich_with_its_clamp_agrees_with_the_l1_reference():
    """Default t_ref = 0.5 ms: 0-30 ms, dt 0.01, two spikes (measured 3.0376 and 13.807 ms
    by split-PINN, 3.0377 and 13.788 by L1: the L1 reference treats the nonlinear v with
    the L1 value at the step end, the PINN with the L1 relation inside the step)."""
    split = _solve("frac-izhikevich", "split-pinn", 30.0, 0.01)
    ref = _solve("frac-izhikevich", "reference", 30.0, 0.01, integrator="l1")
    assert len(split.spike_times) == len(ref.spike_times) == 2
    assert np.max(np.abs(split.spike_times - ref.spike_times)) < 0.05
