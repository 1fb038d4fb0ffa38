"""Dense output from the solver's own steps (``Solution.sol``), judged against an independent
fine solve (scipy's DOP853 at rtol 1e-12) between the output points."""

import dataclasses

import numpy as np
import pytest

import splitpinn
from splitpinn.numeric.bound import bind
from splitpinn.solvers.fractional_reference import solve_fractional_reference
from splitpinn.solvers.solution import output_grid


def _fine(model, t_end, times, **options):
    """DOP853 at rtol 1e-12 sampled at ``times`` (its own dense output there)."""
    fine = splitpinn.solve(model, "reference", t_end, t_eval=np.r_[0.0, times], rtol=1e-12,
                           atol=1e-12, **options)
    return fine.y[:, 1:]


@pytest.mark.parametrize("method", ["reference", "split-pinn"])
def test_dense_output_between_grid_points_holds_the_solve_accuracy(method):
    """HH 0-30 ms (three spikes) on a coarse 0.5 ms grid: sol(t) at the grid midpoints is as
    accurate as the grid values themselves (each against DOP853 at rtol 1e-12).  Measured:
    split-PINN 9.4e-6 (relative to each state's range) at the midpoints, 9.0e-6 on the grid;
    the reference 1.6e-9.  Interpolating the 0.5 ms grid instead is off by ~1e-1."""
    sol = splitpinn.solve("hh", method, 30.0, 0.5)
    mid = (sol.t[:-1] + sol.t[1:]) / 2
    scale = np.ptp(sol.y, axis=1)[:, None]
    between = np.max(np.abs(sol.sol(mid) - _fine("hh", 30.0, mid)) / scale)
    on_grid = np.max(np.abs(sol.y[:, 1:] - _fine("hh", 30.0, sol.t[1:])) / scale)
    assert between < 5e-5 if method == "split-pinn" else between < 1e-8
    assert between < 3 * on_grid + 1e-9
    grid_only = np.max(np.abs(type(sol)(sol.t, sol.y, sol.names, sol.spike_times,
                                        dydt=sol.dydt).sol(mid) - _fine("hh", 30.0, mid))
                       / scale)
    assert grid_only > 100 * between  # the test can tell the two apart


@pytest.mark.parametrize("method", ["reference", "split-pinn"])
def test_dense_output_independent_of_the_output_grid(method):
    """The same time queried on grids of 1, 0.1 and 0.01 ms gives the same value to the
    solve's tolerance: sol(t) comes from the steps, not from the grid."""
    times = np.linspace(0.37, 29.91, 53)
    values = [splitpinn.solve("hh", method, 30.0, dt).sol(times) for dt in (1.0, 0.1, 0.01)]
    scale = np.ptp(values[-1], axis=1)[:, None]
    spread = max(np.max(np.abs(v - values[-1]) / scale) for v in values[:-1])
    assert spread < (1e-5 if method == "split-pinn" else 1e-8)


@pytest.mark.parametrize("method", ["reference", "split-pinn"])
def test_dense_output_across_resets_and_refractory_holds(method):
    """LIF with t_ref 2 ms, I = 3 nA: just before each spike sol(t) is below threshold and
    rising, just after it V_reset, held (exactly) through the refractory period, then the
    closed-form rise V(t) = V_inf + (V_reset − V_inf) e^{−(t − t_end_ref)/τ}."""
    p = {"I": 3.0, "t_ref": 2.0}
    sol = splitpinn.solve("lif", method, 60.0, 0.5, parameters=p)
    spike = sol.spike_times[0]
    before, after = sol.sol([spike - 1e-4, spike + 1e-4])[0]
    assert -50.0 - 1e-2 < before < -50.0
    assert after == pytest.approx(-65.0, abs=1e-12)
    held = sol.sol(np.linspace(spike, spike + 2.0, 7))[0]
    np.testing.assert_allclose(held, -65.0, rtol=0, atol=1e-12)
    pars = sol.meta["parameters"]
    v_inf = pars["V_rest"] + pars["R"] * pars["I"]
    t = spike + 2.0 + np.linspace(0.05, 1.5, 11)
    closed = v_inf + (pars["V_reset"] - v_inf) * np.exp(-(t - spike - 2.0) / pars["tau"])
    np.testing.assert_allclose(sol.sol(t)[0], closed, rtol=0, atol=1e-6)


@pytest.mark.parametrize("method", ["reference", "split-pinn"])
@pytest.mark.parametrize("history", ["full", "fast"])
def test_fractional_dense_output_is_the_l1_interpolant(method, history):
    """A fractional solve's pieces are linear between its steps (the L1 relation's own
    interpolant; its slope is not the right-hand side): frac-LIF below threshold (no
    reset), α 0.6, on steps of 0.1 ms: exact at the grid points; after the first ms each
    midpoint is the mean of its neighbours; in the first ms the steps are graded (finer than
    the grid, for the t^α onset) and the dense output follows them, not the grid's chords —
    marched in the kernel too (it handed back only the grid stops until the full memory
    went there and showed it)."""
    sol = splitpinn.solve("frac-lif", method, 20.0, 0.1, history=history,
                          parameters={"alpha": 0.6, "I": 0.3})
    assert len(sol.spike_times) == 0
    np.testing.assert_allclose(sol.sol(sol.t), sol.y, rtol=0, atol=1e-12)
    mid = (sol.t[:-1] + sol.t[1:]) / 2
    chords = (sol.y[0, :-1] + sol.y[0, 1:]) / 2
    late = mid > 1.0
    np.testing.assert_allclose(sol.sol(mid[late])[0], chords[late], rtol=0, atol=1e-12)
    assert np.abs(sol.sol(mid[0])[0, 0] - chords[0]) > 1e-3


def test_batch_rows_have_their_own_dense_output():
    """A batch of HH neurons (I 0, 10): each row's sol(t) against its own fine solve."""
    batch = splitpinn.solve("hh", "split-pinn", 20.0, 0.5,
                            parameters={"I": np.array([0.0, 10.0])})
    mid = np.linspace(0.25, 19.75, 40)
    for i, current in enumerate((0.0, 10.0)):
        exact = _fine("hh", 20.0, mid, parameters={"I": current})
        scale = np.max(np.abs(exact), axis=1)[:, None]  # a resting neuron barely moves
        assert np.max(np.abs(batch[i].sol(mid) - exact) / scale) < 5e-5


def _lif_trace(t, p):
    """LIF V(t) from V_rest with resets to V_reset and no refractory period (closed form)."""
    v_inf = p["V_rest"] + p["R"] * p["I"]
    first = p["tau"] * np.log((v_inf - p["V_rest"]) / (v_inf - p["V_th"]))
    period = p["tau"] * np.log((v_inf - p["V_reset"]) / (v_inf - p["V_th"]))
    k = np.floor(np.maximum(t - first, 0.0) / period)
    since = np.where(t < first, t, t - first - k * period)
    start = np.where(t < first, p["V_rest"], p["V_reset"])
    return v_inf + (start - v_inf) * np.exp(-since / p["tau"]), first + period * np.arange(
        int((t[-1] - first) // period) + 1)


def test_grid_only_dense_output_is_split_at_the_events():
    """A split-PINN solution without the solver's dense output (``dense=None``: only the
    grid, its derivatives and the event records) is cubic Hermite on the grid, with two
    knots at each reset (before and after), against the closed-form LIF (I 3 nA, no
    refractory period, spikes every τ ln 2 off the 0.25 ms grid): on the pieces away from
    the resets it is fourth order (measured 3.0e-8 mV), on the two pieces beside a reset the
    slope at the reset is the nearest grid derivative (error <= h²·max|V''|·4/27 = 2.8e-3
    mV; measured 1.9e-3), and the jump itself is exact.  Without the event records the
    interpolant runs across the resets (off by 14 mV)."""
    sol = splitpinn.solve("lif", "split-pinn", 40.0, 0.25, parameters={"I": 3.0, "t_ref": 0.0})
    grid_only = dataclasses.replace(sol, dense=None)
    t = np.linspace(0.0, 40.0, 4001)
    exact, spikes = _lif_trace(t, sol.meta["parameters"])
    np.testing.assert_allclose(sol.spike_times, spikes, rtol=0, atol=1e-9)
    err = np.abs(grid_only.sol(t)[0] - exact)
    beside = np.min(np.abs(t[:, None] - spikes[None]), axis=1) < 0.25
    assert err[~beside].max() < 1e-6
    assert err[beside].max() < 5e-3
    v_th, v_reset = sol.meta["parameters"]["V_th"], sol.meta["parameters"]["V_reset"]
    at = sol.spike_times  # the state after the reset there, as on the output grid
    np.testing.assert_allclose(grid_only.sol(at - 1e-9)[0], v_th, rtol=0, atol=1e-6)
    np.testing.assert_allclose(grid_only.sol(at)[0], v_reset, rtol=0, atol=1e-9)
    no_events = dataclasses.replace(grid_only, events=[])
    assert np.abs(no_events.sol(t)[0] - exact).max() > 1.0  # the test can tell


@pytest.mark.parametrize("suffix", [".npz", ".csv"])
def test_a_loaded_file_keeps_its_events_and_splits_sol_at_the_resets(tmp_path, suffix):
    """A saved solution loads with its event records (time, name, states before and after),
    so sol(t) of the file is split at the resets, with secant slopes taken within each
    stretch between resets.  Against the closed-form LIF of the test above (0.25 ms grid):
    away from the resets the secants' error h²/3·max|V‴| (9e-4 mV/ms) gives at most 3.5e-5
    mV (measured 2.9e-5), beside one the grid-only bound 2.8e-3 mV (measured 1.9e-3).  The
    files did not keep the events before: sol(t) ran across every reset, 14 mV off."""
    sol = splitpinn.solve("lif", "split-pinn", 40.0, 0.25, parameters={"I": 3.0, "t_ref": 0.0})
    path = tmp_path / f"lif{suffix}"
    sol.save(path)
    back = splitpinn.Solution.load(path)
    assert back.events == sol.events and len(back.events) == 5
    t = np.linspace(0.0, 40.0, 4001)
    exact, spikes = _lif_trace(t, sol.meta["parameters"])
    err = np.abs(back.sol(t)[0] - exact)
    beside = np.min(np.abs(t[:, None] - spikes[None]), axis=1) < 0.25
    assert err[~beside].max() < 5e-5
    assert err[beside].max() < 5e-3


@pytest.mark.parametrize("integrator", ["l1", "l2-1sigma"])
def test_fractional_reference_of_integer_order_is_cubic_hermite_between_its_steps(integrator):
    """The fractional reference on a model whose states are all of order 1 (frac-LIF at
    α = 1, below threshold: τ V' = V_rest − V + R I, solved by
    ``solve_fractional_reference`` directly; ``solve`` hands such a model to DOP853) keeps each
    step, and sol(t) is the step's cubic Hermite on the values and right-hand sides at its
    ends.  Against the closed form: exact on the grid, and at each midpoint the error is the
    mean of the neighbouring grid errors (the scheme's smooth global error, 1.1e-2 mV for L1,
    9.2e-6 for L2-1σ) to 1e-6 (measured 9.3e-8 and 9.7e-11), where the chord's is off by
    3.7e-5 (h²/8·|V''|)."""
    bound = bind(splitpinn.models.get("frac-lif"), {"alpha": 1.0, "I": 0.3})
    assert not bound.fractional
    sol = solve_fractional_reference(bound, output_grid(20.0, 0.1), integrator=integrator)[0]
    p = bound.parameters
    v_inf = p["V_rest"] + p["R"] * p["I"]

    def error(t, v):
        return v - (v_inf + (p["V_rest"] - v_inf) * np.exp(-t / p["tau"]))

    np.testing.assert_allclose(sol.sol(sol.t), sol.y, rtol=0, atol=1e-12)
    mid = (sol.t[:-1] + sol.t[1:]) / 2
    on_grid = error(sol.t, sol.y[0])
    expected = (on_grid[:-1] + on_grid[1:]) / 2
    assert np.abs(error(mid, sol.sol(mid)[0]) - expected).max() < 1e-6
    chords = (sol.y[0, :-1] + sol.y[0, 1:]) / 2
    assert np.abs(error(mid, chords) - expected).max() > 1e-5  # the test can tell
