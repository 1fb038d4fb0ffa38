"""The integer-order reference solver against closed forms and literature facts."""

import math

import numpy as np
import pytest
import sympy as sp

import splitpinn
from splitpinn import models
from splitpinn.declare.model import Model, State

# -- LIF: closed form with reset and refractory period ---------------------------------------

LIF_CASES = {
    # the library defaults (V_reset = V_rest, t_ref = 2) and a reset below rest
    "defaults": {},
    "reset-below-rest": {"V_reset": -70.0, "t_ref": 3.0, "I": 2.0, "tau": 8.0},
    "no-refractory": {"t_ref": 0.0, "I": 3.0},
}


def _lif_closed_form(p):
    """First spike time from V_reset, and V(s) for s ms after the end of the refractory."""
    drive = p["R"] * p["I"] + p["V_rest"]
    period = p["tau"] * math.log((drive - p["V_reset"]) / (drive - p["V_th"]))
    return period, lambda s: drive + (p["V_reset"] - drive) * np.exp(-s / p["tau"])


@pytest.mark.parametrize("case", list(LIF_CASES))
def test_lif_spike_times_equal_closed_form(case):
    start = {"V": LIF_CASES[case].get("V_reset", -65.0)}  # the closed form starts at V_reset
    sol = splitpinn.solve("lif", "reference", 100.0, 0.01, parameters=LIF_CASES[case],
                          initial=start)
    p = sol.meta["parameters"]
    period, _ = _lif_closed_form(p)
    n = len(sol.spike_times)
    expected = period + np.arange(n) * (period + p["t_ref"])
    assert n == math.floor((100.0 - period) / (period + p["t_ref"])) + 1
    np.testing.assert_allclose(sol.spike_times, expected, rtol=0, atol=1e-6)


def test_lif_trace_held_at_reset_then_relaxes_as_closed_form():
    sol = splitpinn.solve("lif", "reference", 60.0, 0.01,
                          parameters=LIF_CASES["reset-below-rest"], initial={"V": -70.0})
    p = sol.meta["parameters"]
    period, relax = _lif_closed_form(p)
    tt, v = sol.t, sol["V"]
    spikes = sol.spike_times
    assert len(spikes) >= 3
    held = np.zeros_like(tt, dtype=bool)
    for ts in spikes:
        held |= (tt > ts) & (tt < ts + p["t_ref"])
    assert held.sum() >= 3 * (int(p["t_ref"] / 0.01) - 1)
    np.testing.assert_array_equal(v[held], p["V_reset"])  # clamped exactly, not approximately
    # elsewhere V follows the exponential relaxation from V_reset restarted after each
    # refractory period (from t = 0 before the first spike)
    restart = np.concatenate([[0.0], spikes + p["t_ref"]])
    last = restart[np.searchsorted(restart, tt, side="right") - 1]
    free = ~held & ~np.isin(tt, spikes)
    np.testing.assert_allclose(v[free], relax(tt[free] - last[free]), rtol=0, atol=1e-7)
    assert v.max() < p["V_th"] + 1e-9  # never above threshold on the grid


def test_refractory_period_shorter_than_output_step():
    """A refractory segment with no grid point inside it (t_ref = 0.01 ms < dt = 0.1 ms)."""
    sol = splitpinn.solve("lif", "reference", 50.0, 0.1, parameters={"t_ref": 0.01})
    period, _ = _lif_closed_form(sol.meta["parameters"])
    np.testing.assert_allclose(sol.spike_times, period + np.arange(3) * (period + 0.01),
                               rtol=0, atol=1e-6)


# -- a linear system with a closed-form solution ------------------------------------------------

def test_linear_system_matches_exact_solution():
    """x' = -a x + y, y' = -b y: y = y0 e^(-bt), x = x0 e^(-at) + y0 (e^(-bt) - e^(-at))/(a - b)."""
    x, y, a, b = sp.symbols("x y a b", real=True)
    model = Model("lin", [State("x", 1.0), State("y", 2.0)], {"x": -a * x + y, "y": -b * y},
                  {"a": 0.7, "b": 0.2})
    sol = splitpinn.solve(model, "reference", 10.0, 0.05)
    tt = sol.t
    ey, ex = np.exp(-0.2 * tt), np.exp(-0.7 * tt)
    np.testing.assert_allclose(sol["y"], 2.0 * ey, rtol=1e-8)
    np.testing.assert_allclose(sol["x"], ex + 2.0 * (ey - ex) / 0.5, rtol=1e-8)
    assert sol.spike_times.size == 0


# -- dense output grid ------------------------------------------------------------------------

def test_output_grid_has_requested_spacing():
    sol = splitpinn.solve("lif", "reference", 30.0, 0.25)
    assert len(sol.t) == 121 and sol.t[0] == 0.0 and sol.t[-1] == 30.0
    np.testing.assert_allclose(np.diff(sol.t), 0.25, rtol=0, atol=1e-12)


def test_output_grid_when_dt_does_not_divide_t_end():
    sol = splitpinn.solve("lif", "reference", 10.0, 0.7)
    steps = np.diff(sol.t)
    assert sol.t[0] == 0.0 and sol.t[-1] == 10.0
    assert np.all(steps <= 0.7) and steps.min() > 0.6  # 15 steps of 2/3 ms
    np.testing.assert_allclose(steps, steps[0], rtol=0, atol=1e-12)
    # the sampled values are the solution at those times (no spike before 10 ms here)
    _, relax = _lif_closed_form(models.get("lif").bind().parameters)
    np.testing.assert_allclose(sol["V"], relax(sol.t), rtol=0, atol=1e-7)


# -- Hodgkin–Huxley ------------------------------------------------------------------------------

# The firing-pattern checks below count spikes and measure ISIs to ~1e-3 ms; at rtol = atol =
# 1e-8 the spike times agree with the default 1e-10 to ~1e-8 ms (measured) at half the cost.
HH_TOL = dict(rtol=1e-8, atol=1e-8)

def test_hh_rest_is_nearly_a_fixed_point():
    bound = models.get("hh").bind({"I": 0.0})
    dy = bound.rhs(0.0, bound.y0)
    # gates start at their steady state, so their rhs vanishes; V = -65 is the rest only
    # approximately: with E_L = -54.387 the leak leaves dV/dt ≈ 4.2e-3 mV/ms at t = 0
    np.testing.assert_allclose(dy[1:], 0.0, atol=1e-14)
    assert abs(dy[0]) < 5e-3
    sol = splitpinn.solve("hh", "reference", 50.0, 0.1, parameters={"I": 0.0})
    # measured: max |V + 65| ≈ 7.2e-3 mV over 50 ms
    assert np.abs(sol["V"] + 65.0).max() < 0.01
    assert sol.spike_times.size == 0


def test_hh_tonic_firing_at_10():
    sol = splitpinn.solve("hh", "reference", 100.0, 0.1, parameters={"I": 10.0}, **HH_TOL)
    spikes = sol.spike_times
    assert len(spikes) == 7
    isi = np.diff(spikes)
    # the train settles: the last intervals agree to 1e-3 ms (measured 14.636 ms)
    assert np.ptp(isi[-3:]) < 1e-3
    assert 1000.0 / isi[-1] == pytest.approx(68.0, abs=1.0)  # measured 68.32 Hz


def test_hh_no_repetitive_firing_below_rheobase():
    # I = 6.0 < 6.26: two transient spikes (measured at 2.6 and 23.0 ms), then damped
    # oscillations back to rest; none in the last 150 ms of 300 ms
    sol = splitpinn.solve("hh", "reference", 300.0, 0.5, parameters={"I": 6.0}, **HH_TOL)
    assert 1 <= len(sol.spike_times) <= 2
    assert np.sum(sol.spike_times > 150.0) == 0
    assert sol["V"][sol.t > 150.0].max() < -50.0


def test_hh_repetitive_firing_above_rheobase():
    # I = 6.5 > 6.26: a periodic train (measured ISI 18.16 ms, ~55 Hz)
    sol = splitpinn.solve("hh", "reference", 200.0, 0.5, parameters={"I": 6.5}, **HH_TOL)
    late = sol.spike_times[sol.spike_times > 100.0]
    assert len(late) >= 5
    np.testing.assert_allclose(np.diff(late), np.diff(late).mean(), rtol=1e-3)


@pytest.mark.parametrize("v0, gate, limit", [(-40.0, 1, 1.0), (-55.0, 3, 0.1)])
def test_hh_rates_finite_and_continuous_at_removable_singularities(v0, gate, limit):
    """α_m(-40) = 1 and α_n(-55) = 0.1 by l'Hôpital.  With m = n = 0 the gate equations
    reduce to dm/dt = α_m(V) and dn/dt = α_n(V)."""
    bound = models.get("hh").bind()

    def alpha(v):
        return bound.rhs(0.0, [v, 0.0, 0.5, 0.0])[gate]

    def by_hand(v):  # 0.1 x/(1 - e^-x) (α_m) or 0.01·10 x/(1 - e^-x) (α_n), x = (V - v0)/10
        xx = (v - v0) / 10
        return limit * -xx / math.expm1(-xx)

    assert np.all(np.isfinite(bound.rhs(0.0, [v0, 0.05, 0.6, 0.3])))
    assert alpha(v0) == pytest.approx(limit, rel=1e-14)
    for dv in (1e-7, -1e-7):
        assert abs(alpha(v0 + dv) - alpha(v0)) < 1e-8 * limit  # slope limit/20 per mV
    for dv in (1e-3, -1e-3, 1e-4, 2e-3):
        assert alpha(v0 + dv) == pytest.approx(by_hand(v0 + dv), rel=1e-12)
        assert alpha(v0 + dv) == pytest.approx(limit * (1 + dv / 20), rel=1e-8)


# -- Izhikevich presets ----------------------------------------------------------------------

IZ_T_END, IZ_DT = 200.0, 0.01
_IZ_CACHE = {}


def izhikevich_run(preset):
    """Izhikevich (2003) with I = 10 for 200 ms, on a 0.01 ms grid (solved once per preset)."""
    if preset not in _IZ_CACHE:
        _IZ_CACHE[preset] = splitpinn.solve("izhikevich", "reference", IZ_T_END, IZ_DT,
                                            parameters={"I": 10.0}, preset=preset)
    return _IZ_CACHE[preset]


def test_izhikevich_rs_adapts():
    sol = izhikevich_run("RS")
    isi = np.diff(sol.spike_times)
    assert len(isi) >= 3
    assert np.all(isi[1:] > 1.5 * isi[0])  # measured 23.1 ms, then 44.8 ms


def test_izhikevich_fs_fast_and_regular():
    fs = izhikevich_run("FS")
    rs = izhikevich_run("RS")
    isi = np.diff(fs.spike_times)
    assert len(fs.spike_times) > 3 * len(rs.spike_times)  # measured 28 vs 5
    steady = isi[len(isi) // 2:]
    assert 1000.0 / steady.mean() > 100.0  # measured 7.34 ms, ~136 Hz
    np.testing.assert_allclose(steady, steady.mean(), rtol=1e-3)


def test_izhikevich_ch_fires_repeated_bursts():
    sol = izhikevich_run("CH")
    isi = np.diff(sol.spike_times)
    short, long_ = isi[isi < 10.0], isi[isi >= 10.0]
    # bimodal: intra-burst ≤ 4.8 ms, inter-burst ≥ 46.6 ms (measured), nothing in between
    assert short.max() < 6.0 and long_.min() > 40.0
    assert long_.min() > 5 * short.max()
    assert len(long_) >= 2  # at least three bursts in 200 ms
    bursts = np.split(sol.spike_times, np.nonzero(isi >= 10.0)[0] + 1)
    assert all(len(b) >= 4 for b in bursts[:-1])  # every complete burst: 4-7 spikes


def test_izhikevich_ib_initial_burst_then_single_spikes():
    sol = izhikevich_run("IB")
    isi = np.diff(sol.spike_times)
    # measured ISIs: 2.29, 4.23 | 39.98, 31.21, 31.22, ... (burst of 3, then tonic)
    assert np.all(isi[:2] < 5.0)
    assert np.all(isi[2:] > 25.0) and len(isi) >= 5
    assert isi[2:].min() > 5 * isi[:2].max()


@pytest.mark.parametrize("preset", ["RS", "IB", "CH", "FS", "LTS", "TC", "RZ"])
def test_izhikevich_reset_after_every_spike(preset):
    sol = izhikevich_run(preset)
    p = sol.meta["parameters"]
    a, b, c, d = p["a"], p["b"], p["c"], p["d"]
    v, u, tt = sol["v"], sol["u"], sol.t
    spikes = sol.spike_times
    assert len(spikes) >= 5
    assert v.max() <= 30.0 + 1e-9  # the threshold is never passed on the grid
    after = np.searchsorted(tt, spikes, side="right")
    keep = after < len(tt)
    after, ts = after[keep], spikes[keep]
    before = after - 1
    gap = tt[after] - ts  # in (0, 0.01] ms
    # v on the grid right after a spike is c, moved on by v' = 0.04c² + 5c + 140 - u + I for
    # the remaining gap (first-order Taylor; measured residual ≤ 2e-4 mV, without the Taylor
    # term v would be up to 0.08 mV from c)
    dv = 0.04 * c**2 + 5 * c + 140 - u[after] + 10.0
    np.testing.assert_allclose(v[after], c + dv * gap, rtol=0, atol=1e-3)
    # u jumps by d (TC: d = 0.05), corrected for u' = a(bv - u) on either side of the spike
    # (measured residual ≤ 4e-4)
    drift = a * (b * v[before] - u[before]) * (ts - tt[before]) + a * (b * c - u[after]) * gap
    np.testing.assert_allclose(u[after] - u[before] - drift, d, rtol=0, atol=2e-3)
