"""Split-PINN marching: composition orders (fixed steps), spikes against closed forms and the
reference (adaptive steps, the default, and fixed steps), metadata, determinism and failures."""

import contextlib
import functools
import math

import numpy as np
import pytest
import sympy as sp
from scipy.linalg import expm

import splitpinn
from splitpinn import Model, ModelError, SolverError, State

try:  # tiny expm calls are slowed down by OpenBLAS threads on a loaded machine
    from threadpoolctl import threadpool_limits
except ImportError:  # pragma: no cover
    threadpool_limits = None


@pytest.fixture(autouse=True)
def _single_blas_thread():
    with threadpool_limits(1) if threadpool_limits else contextlib.nullcontext():
        yield


# -- composition orders on an artificially split linear system ---------------------------------

x, y = sp.symbols("x y", real=True)
T_LINEAR = 1.0
X0 = np.array([1.0, -0.5])


@functools.cache
def _linear():
    """x' = -x + 2y, y' = -3x - y + 1, split into [x] | [y]; exact by the matrix exponential."""
    model = Model("linear2", [State("x", X0[0]), State("y", X0[1])],
                  {"x": -x + 2 * y, "y": -3 * x - y + 1}, {})
    aug = np.array([[-1.0, 2.0, 0.0], [-3.0, -1.0, 1.0], [0.0, 0.0, 0.0]])
    exact = (expm(T_LINEAR * aug) @ np.append(X0, 1.0))[:2]
    return model, exact


# step sizes where the splitting error dominates round-off (measured: Yoshida at dt = 0.0125
# still has error 6e-8, PINN and exact sub-flows agree to ~1e-15)
STEPS = {"lie": [0.1, 0.05, 0.025, 0.0125], "strang": [0.2, 0.1, 0.05, 0.025],
         "yoshida": [0.2, 0.1, 0.05, 0.025], "symmetric": [0.2, 0.1, 0.05, 0.025]}
ORDERS = {"lie": 1, "strang": 2, "yoshida": 4, "symmetric": 2}


def _end_errors(scheme, solvers):
    model, exact = _linear()
    finals, errors = [], []
    for dt in STEPS[scheme]:
        sol = splitpinn.solve(model, "split-pinn", T_LINEAR, dt, scheme=scheme, solvers=solvers,
                              partition=[["x"], ["y"]], fixed_step=True)
        assert sol.t[-1] == pytest.approx(T_LINEAR) and sol.t[1] == pytest.approx(dt)
        assert [s["solver"] for s in sol.meta["solver"]["plan"]["subproblems"]] == [solvers] * 2
        finals.append(sol.y[:, -1])
        errors.append(np.max(np.abs(sol.y[:, -1] - exact)))
    return np.array(finals), np.array(errors)


def _slope(errors, steps):
    return np.polyfit(np.log(steps), np.log(errors), 1)[0]


@pytest.mark.parametrize("scheme", ["lie", "strang", "yoshida", "symmetric"])
def test_composition_order_with_exact_and_pinn_subflows(scheme):
    exact_finals, exact_errors = _end_errors(scheme, "exact")
    pinn_finals, pinn_errors = _end_errors(scheme, "pinn")
    order = ORDERS[scheme]
    assert _slope(exact_errors, STEPS[scheme]) == pytest.approx(order, abs=0.2)
    assert _slope(pinn_errors, STEPS[scheme]) == pytest.approx(order, abs=0.2)
    # the splitting error is real (x and y couple) and the PINN's own error is far below it
    assert exact_errors.min() > 1e-8
    assert np.max(np.abs(pinn_finals - exact_finals)) < 1e-3 * exact_errors.min()


def test_unsplit_linear_system_is_exact():
    """One sub-problem holding both states: no splitting error, only the PINN's."""
    model, exact = _linear()
    sol = splitpinn.solve(model, "split-pinn", T_LINEAR, 0.1, partition=[["x", "y"]],
                          fixed_step=True)
    assert sol.meta["solver"]["plan"]["subproblems"][0]["kind"] == "linear"
    assert np.max(np.abs(sol.y[:, -1] - exact)) < 1e-10


# -- LIF: spike times and trace against the closed form ----------------------------------------

LIF_CASES = {
    "defaults": ({}, {}),
    "reset-below-rest": ({"V_reset": -70.0, "t_ref": 3.0, "tau": 8.0, "I": 2.5},
                         {"V": -70.0}),
    "no-refractory": ({"t_ref": 0.0, "I": 3.0}, {}),
}


def _lif_closed_form(p, t_end):
    drive = p["R"] * p["I"] + p["V_rest"]
    period = p["tau"] * math.log((drive - p["V_reset"]) / (drive - p["V_th"]))
    count = math.floor((t_end - period) / (period + p["t_ref"])) + 1
    spikes = period + np.arange(count) * (period + p["t_ref"])

    def voltage(time):
        """V on a grid: relaxation from V_reset after each refractory end, V_reset inside."""
        starts = np.concatenate([[0.0], spikes + p["t_ref"]])
        last = np.searchsorted(starts, time, side="right") - 1
        v = drive + (p["V_reset"] - drive) * np.exp(-(time - starts[last]) / p["tau"])
        in_refractory = np.zeros(time.shape, bool)
        for s in spikes:
            in_refractory |= (time >= s) & (time < s + p["t_ref"])
        return np.where(in_refractory, p["V_reset"], v)

    return spikes, voltage


@pytest.mark.parametrize("fixed_step", [False, True])
@pytest.mark.parametrize("case", list(LIF_CASES))
def test_lif_spike_times_match_closed_form(case, fixed_step):
    parameters, initial = LIF_CASES[case]
    sol = splitpinn.solve("lif", "split-pinn", t_end=60.0, dt=0.1, parameters=parameters,
                          initial=initial, fixed_step=fixed_step)
    p = sol.meta["parameters"]
    spikes, voltage = _lif_closed_form(p, 60.0)
    assert len(spikes) >= 3
    assert len(sol.spike_times) == len(spikes)
    assert np.max(np.abs(sol.spike_times - spikes)) < 1e-5
    assert np.max(np.abs(sol["V"] - voltage(sol.t))) < 1e-8
    assert sol.meta["method"] == "split-pinn"
    assert sol.meta["solver"]["plan"]["subproblems"] == [
        {"states": ["V"], "kind": "linear", "solver": "pinn"}]


def test_lif_spike_times_with_default_step():
    sol = splitpinn.solve("lif", "split-pinn", 60.0, parameters={"I": 3.0})
    spikes, _ = _lif_closed_form(sol.meta["parameters"], 60.0)
    assert sol.t[1] == pytest.approx(splitpinn.models.get("lif").default_dt)
    assert len(sol.spike_times) == len(spikes) == 6
    assert np.max(np.abs(sol.spike_times - spikes)) < 1e-5


# -- HH and Izhikevich against the tight reference ---------------------------------------------


def _rel_l2(a, b):
    return np.linalg.norm(a - b) / np.linalg.norm(b)


def test_hh_defaults_match_tight_reference():
    # defaults: adaptive steps, least-squares PINN, Yoshida, HH's output grid 0.0125
    sol = splitpinn.solve("hh", "split-pinn", 20.0)
    ref = splitpinn.solve("hh", "reference", 20.0, sol.t[1] - sol.t[0], rtol=1e-12, atol=1e-12)
    assert np.allclose(sol.t, ref.t)
    assert _rel_l2(sol["V"], ref["V"]) <= 1e-4
    assert len(ref.spike_times) == 2
    assert len(sol.spike_times) == 2
    assert np.max(np.abs(sol.spike_times - ref.spike_times)) < 0.01
    meta = sol.meta["solver"]
    assert meta["scheme"] == "yoshida" and meta["trainer"] == "least-squares"
    assert [s["solver"] for s in meta["plan"]["subproblems"]] == ["pinn", "pinn"]
    assert 0 < meta["max_residual"] <= meta["tol"]


@pytest.mark.parametrize("fixed_step", [False, True])
def test_izhikevich_rs_spikes_match_reference(fixed_step):
    # dt = 0.1 rather than the default 0.05 keeps this test short (the output grid; with
    # fixed_step also the step: the measured spike errors are ~3e-5 ms there, ~2e-6 at 0.05)
    sol = splitpinn.solve("izhikevich", "split-pinn", 100.0, 0.1, preset="RS",
                          fixed_step=fixed_step)
    ref = splitpinn.solve("izhikevich", "reference", 100.0, 0.1, preset="RS", rtol=1e-12,
                          atol=1e-12)
    assert len(ref.spike_times) == 3
    assert len(sol.spike_times) == 3
    assert np.max(np.abs(sol.spike_times - ref.spike_times)) < 0.05
    assert _rel_l2(sol["v"], ref["v"]) < 1e-4
    kinds = [s["kind"] for s in sol.meta["solver"]["plan"]["subproblems"]]
    assert kinds == ["nonlinear", "linear"]


# -- metadata and determinism ------------------------------------------------------------------


def test_meta_records_solver_per_subproblem():
    sol = splitpinn.solve("hh", "split-pinn", t_end=1.0, dt=0.05, solvers={"V": "exact"},
                          scheme="strang")
    meta = sol.meta["solver"]
    assert meta["name"] == "split-pinn" and meta["scheme"] == "strang"
    assert [(s["states"], s["solver"]) for s in meta["plan"]["subproblems"]] == [
        (["V"], "exact"), (["m", "h", "n"], "pinn")]
    assert [name for name, _ in meta["plan"]["stages"]] == ["V", "m,h,n", "V"]
    assert sol.meta["model"] == "hh" and sol.meta["parameters"]["I"] == 10.0


def test_same_seed_same_arrays_other_seed_same_answer():
    """Fixed steps: another seed changes the PINN's answer only at its own accuracy.  Adaptive
    steps: another seed changes the error estimates a little, and so the step sequence, so the
    answers differ at the level of the step control (rtol 1e-7; measured 3.8e-6 mV in V)."""
    for fixed_step, tol in ((True, 1e-9), (False, 1e-5)):
        a, b, c = (splitpinn.solve("hh", "split-pinn", 2.0, 0.05, seed=seed,
                                   fixed_step=fixed_step) for seed in (0, 0, 7))
        assert np.array_equal(a.y, b.y) and np.array_equal(a.t, b.t)
        assert np.array_equal(a.spike_times, b.spike_times)
        assert a.meta["solver"]["steps_accepted"] == b.meta["solver"]["steps_accepted"]
        assert not np.array_equal(a.y, c.y)  # the seed reaches the network
        scale = np.maximum(1.0, np.abs(a.y))
        assert np.max(np.abs(a.y - c.y) / scale) < tol


# -- failures -------------------------------------------------------------------------------------


def test_stage_failure_names_time_and_subproblem():
    with pytest.raises(SolverError, match=r"sub-problem V.* at t = 0 ms"):
        splitpinn.solve("hh", "split-pinn", 1.0, 0.05, trainer_options={"tol": 1e-30},
                        fixed_step=True)


def test_blow_up_inside_a_step_is_an_error_not_an_answer():
    """x' = 1 + x^2 from 0 is tan t, which blows up at pi/2: the step from 1.5 ms fails."""
    model = Model("riccati", [State("x", 0.0)], {"x": 1 + x**2}, {})
    with pytest.raises(SolverError, match=r"sub-problem x.* at t = 1\.5"):
        splitpinn.solve(model, "split-pinn", 2.0, 0.1, fixed_step=True)
    sol = splitpinn.solve(model, "split-pinn", 1.5, 0.1)  # up to there the answer is right
    assert np.max(np.abs(sol["x"][1:] / np.tan(sol.t[1:]) - 1)) < 1e-7


@pytest.mark.parametrize("case", ["blow-up", "impossible-tolerance"])
def test_adaptive_steps_stop_where_no_step_can_be_trusted(case):
    """The adaptive loop must stop with a SolverError naming the time, on its own, not by
    running into the work limit (1e6 steps by default: hours).  x' = 1 + x² blows up at
    π/2; an HH stage tolerance of 1e-30 is never met."""
    from splitpinn.solvers.composition import CompositionStepper
    from splitpinn.solvers.marching import march
    from splitpinn.solvers.solution import output_grid
    from splitpinn.solvers.splitting import plan
    from splitpinn.solvers.subsolvers import LeastSquaresPINN

    if case == "blow-up":
        bound = Model("riccati", [State("x", 0.0)], {"x": 1 + x**2}, {}).bind()
        pinn, where = LeastSquaresPINN(bound), r"t = 1\.57"
    else:
        bound = splitpinn.models.get("hh").bind()
        pinn, where = LeastSquaresPINN(bound, tol=1e-30), r"t = 0 ms"
    stepper = CompositionStepper(bound, plan(bound), pinn, fixed=False)
    with pytest.raises(SolverError, match=where) as info:
        march(bound, stepper, output_grid(2.0, 0.1), rtol=1e-7, atol=1e-9, h0=0.02,
              max_steps=300)
    assert "more than 300 steps" not in str(info.value)


def test_bad_trainer_and_options_raise_model_error():
    with pytest.raises(ModelError, match="unknown trainer"):
        splitpinn.solve("lif", "split-pinn", 1.0, 0.1, trainer="sgd")
    with pytest.raises(ModelError, match="bogus"):
        splitpinn.solve("lif", "split-pinn", 1.0, 0.1, trainer_options={"bogus": 1})
