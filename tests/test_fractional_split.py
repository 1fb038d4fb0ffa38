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


def test_frac_lif_split_pinn_matches_the_l2_1sigma_reference(monkeypatch):
    """Issue 5's target: alpha 0.6, I 1.5 nA, 0-200 ms, dt 0.01: six spikes.  For one linear
    state the PINN's end value solves the reference's L2-1σ step (tau = 1 is a collocation
    point), on the same graded steps, so both give the same solution up to the fit's
    rounding and the fast memory's kernel tolerance (measured: rel. L2 ~1e-13, spikes within
    2e-11 ms).  Every step, those that cross the threshold and root finding's partial steps
    included, is taken by the kernel march against the fast memory, never stage by stage.
    Was: the L1 reference, which split-PINN matched while it used the L1 relation
    (order 2 − alpha, 4e-2 ms from the converged spike times)."""
    from splitpinn.solvers.subsolvers import LeastSquaresPINN

    def refuse(*args):
        raise AssertionError("a stage of a fractional step was taken stage by stage")

    monkeypatch.setattr(LeastSquaresPINN, "advance", refuse)
    parameters = {"alpha": 0.6, "I": 1.5}
    split = _solve("frac-lif", "split-pinn", 200.0, 0.01, parameters)
    ref = _solve("frac-lif", "reference", 200.0, 0.01, parameters)
    assert split.meta["solver"]["fixed_step"]  # fractional models march with a fixed step
    assert ref.meta["solver"]["integrator"] == "l2-1sigma"
    np.testing.assert_array_equal(split.t, ref.t)
    assert len(split.spike_times) == len(ref.spike_times) == 6
    assert np.max(np.abs(split.spike_times - ref.spike_times)) < 1e-8
    assert _rel_l2(split["V"], ref["V"]) < 1e-9


@pytest.mark.parametrize("t_on", [0.0, 10.0])  # 10: steps end at the stimulus switch-on
def test_fo_hh_split_pinn_against_references(t_on):
    """FO-HH (gate n of order 0.8, I 10), 0-30 ms, dt 0.01, against two second-order
    references: L2-1σ (the trapezoid at its σ-point for V, m, h) and Adams (trapezoid).
    Measured when split plans were composed by Lie (t_on 10): spikes 11.92378 (split-PINN),
    11.92262 (L2-1σ), 11.92299 (Adams), 11.92279 (L2-1σ at dt 0.0025); rel. L2(V) vs L2-1σ
    5.7e-4, vs Adams 4.1e-4; m 3.0e-3.  With Strang (now) split-PINN's spike is 2.5e-4 ms from
    the L2-1σ reference.  Was: L1 (first order for V, m, h) and split-PINN with the L1
    relation."""
    parameters = {"eta": 0.8, "t_on": t_on, "I": 10.0}
    split = _solve("fo-hh", "split-pinn", 30.0, 0.01, parameters, "n")
    assert list(split.meta["orders"].values()) == [1.0, 1.0, 1.0, 0.8]
    l21 = _solve("fo-hh", "reference", 30.0, 0.01, parameters, "n")
    adams = _solve("fo-hh", "reference", 30.0, 0.01, parameters, "n", integrator="adams")
    assert len(split.spike_times) == len(l21.spike_times) == len(adams.spike_times) >= 1
    for ref in (l21, adams):
        assert np.max(np.abs(split.spike_times - ref.spike_times)) < 2e-3
        assert _rel_l2(split["V"], ref["V"]) < 1e-3
        for name in ("m", "h", "n"):
            assert _rel_l2(split[name], ref[name]) < 5e-3


def test_split_pinn_fast_and_full_history_give_the_same_spikes():
    """frac-LIF alpha 0.8, I 3 nA, 0-18 ms, dt 0.02 (two spikes, one reset in the memory): fast
    (SOE, tol 1e-8) and full L2-1σ memory in the split-PINN agree on spike times to 1e-8 ms
    (measured ~3e-12 ms), and both agree with the L2-1σ reference (measured 3e-13 ms)."""
    parameters = {"alpha": 0.8, "I": 3.0}
    full = _solve("frac-lif", "split-pinn", 18.0, 0.02, parameters, history="full")
    fast = _solve("frac-lif", "split-pinn", 18.0, 0.02, parameters, history="fast")
    assert full.meta["solver"]["history"] == "full" and fast.meta["solver"]["history"] == "fast"
    assert full.meta["solver"]["compiled"] and fast.meta["solver"]["compiled"]  # both: kernels
    assert len(full.spike_times) == len(fast.spike_times) == 2
    assert np.max(np.abs(full.spike_times - fast.spike_times)) < 1e-8
    ref = _solve("frac-lif", "reference", 18.0, 0.02, parameters, history="full")
    assert np.max(np.abs(full.spike_times - ref.spike_times)) < 1e-8


def test_split_pinn_step_after_a_very_short_step():
    """alpha 0.6, I 3 nA, dt 0.01: the refractory period ends at 15.68459 ms, between grid
    points; the steps graded after it start far below 1e-6 ms.  Split-PINN agrees with the
    L2-1σ reference through them (measured 3e-14 ms; its largest residual 1e-12)."""
    parameters = {"alpha": 0.6, "I": 3.0}
    ref = _solve("frac-lif", "reference", 16.0, 0.01, parameters, history="fast")
    assert ref.spike_times[0] + 8.0 == pytest.approx(15.68459, abs=1e-5)
    split = _solve("frac-lif", "split-pinn", 16.0, 0.01, parameters, history="fast")
    np.testing.assert_allclose(split.spike_times, ref.spike_times, atol=1e-8)


def test_split_pinn_refuses_unclamped_fractional_reset():
    """frac-izhikevich with t_ref = 0 resets v and u with no clamp: ill posed with memory kept
    (the L1 reference's first ISI does not converge in dt), so split-PINN refuses up front."""
    with pytest.raises(ModelError, match="no refractory clamp"):
        _solve("frac-izhikevich", "split-pinn", 10.0, 0.01, {"t_ref": 0.0})


@pytest.mark.parametrize("solvers", [{"n": "exact"}, "classical", {"n": "classical"}])
def test_a_sub_flow_without_memory_is_refused_for_caputo_states(solvers):
    """The exact flow and classical RK4 know no memory: a sub-problem with Caputo states is
    refused when the plan is made, with its name (fo-HH's gate n of order 0.8)."""
    partition = [["V"], ["m", "h"], ["n"]]
    with pytest.raises(ModelError, match="sub-problem n has Caputo states"):
        _solve("fo-hh", "split-pinn", 1.0, 0.01, {"eta": 0.8}, "n", partition=partition,
               solvers=solvers)


def test_frac_izhikevich_with_its_clamp_agrees_with_the_reference():
    """Default t_ref = 0.5 ms: 0-30 ms, dt 0.01, two spikes; measured 3.04947 and 13.74711 ms
    by split-PINN (symmetric: the mean of Lie and reversed Lie, second order with v and u
    both fractional; Lie gave 13.7636, first order), 3.04943 and 13.74713 by the L2-1σ
    reference, 3.04954 and 13.74698 by it at dt 0.0025."""
    split = _solve("frac-izhikevich", "split-pinn", 30.0, 0.01)
    ref = _solve("frac-izhikevich", "reference", 30.0, 0.01)
    assert len(split.spike_times) == len(ref.spike_times) == 2
    assert np.max(np.abs(split.spike_times - ref.spike_times)) < 5e-4


def test_fractional_stages_of_a_split_plan_run_in_the_kernels():
    """A batch of frac-Izhikevich neurons (symmetric scheme, v and u both Caputo): every
    fractional stage is fitted by the kernel of the fractional march, which compiled gives
    the plain-Python result (the same rule: spikes within 1e-9 ms)."""
    parameters = {"I": np.array([10.0, 14.0])}
    fast = _solve("frac-izhikevich", "split-pinn", 4.0, 0.05, parameters)
    slow = _solve("frac-izhikevich", "split-pinn", 4.0, 0.05, parameters, compiled=False)
    for a, b in zip(fast, slow, strict=True):
        assert a.spike_times.size == b.spike_times.size >= 1
        np.testing.assert_allclose(a.spike_times, b.spike_times, rtol=0, atol=1e-9)
        np.testing.assert_allclose(a.y, b.y, rtol=0, atol=1e-7)


@pytest.mark.parametrize("history, dt", [("fast", 0.01), ("full", 0.05)])
def test_unsplit_fractional_plan_whose_states_couple_solves_the_reference_relation(
        monkeypatch, history, dt):
    """frac-Izhikevich as one sub-problem [["v", "u"]] (v and u couple, both Caputo): its
    stages are fitted by Gauss–Newton on both states together against the memory, in the
    kernels (kernels.coupled_memory_stage, in the kernel march with a full or a fast memory,
    never a stage from Python).  Unsplit, the PINN solves the
    L2-1σ relation of the reference's Newton steps on the same grid, so the two agree to the
    fit's tolerance: states within 1e-6 (measured at dt 0.01: 3.9e-9 mV, fast memory), the
    spike within 1e-6 ms."""
    from splitpinn.solvers import subsolvers

    def refuse(*args):
        raise AssertionError("a stage left the kernels")

    monkeypatch.setattr(subsolvers.LeastSquaresPINN, "advance", refuse)
    split = _solve("frac-izhikevich", "split-pinn", 5.0, dt, partition=[["v", "u"]],
                   history=history)
    ref = _solve("frac-izhikevich", "reference", 5.0, dt, history=history)
    assert split.meta["solver"]["plan"]["subproblems"][0]["kind"] == "nonlinear"
    assert split.spike_times.size == ref.spike_times.size == 1
    np.testing.assert_allclose(split.spike_times, ref.spike_times, rtol=0, atol=1e-6)
    np.testing.assert_allclose(split.y, ref.y, rtol=0, atol=1e-6)

def test_paper_trainer_on_frac_lif_matches_the_fine_reference():
    """The paper's trainer (``trainer="adam-lbfgs"``, a small tanh network: width 8, 20 Adam
    and 30 L-BFGS iterations) on frac-LIF (α 0.8, I 1 nA, 0-0.4 ms, dt 0.1 on graded steps)
    fits the memory's L2-1σ relation: against the L2-1σ reference at dt/64 its error is the
    L2-1σ error at dt (the reference at dt is off by 4.7e-4 mV) plus the trainer's share,
    allowed 1e-3 mV: a relative residual of at most 1e-5 (measured 4.0e-6) is ~7e-4 mV of
    |V| ≈ 70 mV per step (measured: 4.7e-4 mV in all, 1.6e-4 from the reference at dt).
    An integer-order answer (α = 1) is 0.22 mV off."""
    p, t_end, dt = {"alpha": 0.8, "I": 1.0}, 0.4, 0.1
    fine = _solve("frac-lif", "reference", t_end, dt / 64, p).y[0, ::64]
    same_dt = _solve("frac-lif", "reference", t_end, dt, p).y[0]
    sol = _solve("frac-lif", "split-pinn", t_end, dt, p, trainer="adam-lbfgs", fixed_step=True,
                 trainer_options={"width": 8, "depth": 1, "adam_iterations": 20,
                                  "lbfgs_iterations": 30})
    solver = sol.meta["solver"]
    assert solver["trainer"] == "adam-lbfgs" and solver["history"] in ("fast", "full")
    assert solver["max_residual"] <= 1e-5
    discretisation = np.abs(same_dt - fine).max()
    assert np.abs(sol.y[0] - fine).max() <= discretisation + 1e-3
    integer = _solve("frac-lif", "reference", t_end, dt / 64, {**p, "alpha": 1.0}).y[0, ::64]
    assert np.abs(integer - fine).max() > 0.1  # the test can tell
