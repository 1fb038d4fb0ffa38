"""Refractoriness as Brian2 defines it, against closed forms and Brian2 itself."""

import numpy as np
import pytest
from exact import mittag_leffler
from scipy.optimize import brentq

import splitpinn

FRAC_LIF = splitpinn.models.get("frac-lif").parameters  # tau 20, R 40, V_rest = V_reset -70


# -- a solve that ends just after a refractory end --------------------------------------------
@pytest.mark.parametrize("method", ["reference", "split-pinn"])
@pytest.mark.parametrize("t_end, dt", [(39.97, None), (40.0, 0.04)])
def test_t_end_just_after_a_refractory_end(method, t_end, dt):
    """frac-LIF (α = 0.6, R·I = 60 mV) fires once, at the Mittag-Leffler time T (V − V_rest
    = R·I (1 − E_α(−t^α/τ)) from rest), and is held at V_reset until T + t_ref = 39.967 ms;
    a t_end 3 µs (or 33 µs) later left less than one step for the steps graded after that
    onset ("need 0 < dt <= span", both methods).  The solve on [0, t_end] is the start of
    a longer one."""
    alpha, drive = 0.6, 1.5 * FRAC_LIF["R"]
    target = 1 - (FRAC_LIF["V_th"] - FRAC_LIF["V_rest"]) / drive
    first = brentq(lambda t: mittag_leffler(alpha, -t**alpha / FRAC_LIF["tau"]) - target,
                   1.0, 60.0, xtol=1e-13)
    params = {"alpha": alpha, "I": 1.5}
    short = splitpinn.solve("frac-lif", method, t_end, dt, parameters=params)
    longer = splitpinn.solve("frac-lif", method, t_end + 1.0, dt, parameters=params)
    step = dt or 0.01
    np.testing.assert_allclose(short.spike_times, [first], rtol=0, atol=0.02 * step**2)
    assert first + FRAC_LIF["t_ref"] < t_end
    np.testing.assert_allclose(short.spike_times, longer.spike_times, rtol=0, atol=1e-8)
    at = int(np.searchsorted(longer.t, t_end - 1e-9))
    assert longer.t[at] == pytest.approx(t_end, abs=1e-12)
    assert FRAC_LIF["V_reset"] < short["V"][-1] < FRAC_LIF["V_th"]  # released, rising
    assert short["V"][-1] == pytest.approx(longer["V"][at], abs=1e-5)


# -- Brian2's rule against closed forms -------------------------------------------------------
#: A text LIF as the issue gave it: v is *not* held, so it evolves during the period.
TEXT_LIF = "dv/dt = (v_rest - v + R*I)/tau : volt"
TEXT_PARAMETERS = {"v_rest": "-70*mV", "R": "10*Mohm", "I": "30*nA", "tau": "10*ms",
                   "v_th": "-50*mV", "v_reset": "-70*mV"}
TAU, V_REST, V_TH, V_RESET = 10.0, -70.0, -50.0, -70.0


def text_lif(held: bool = False, refractory: str = "5*ms", **parameters) -> splitpinn.Model:
    return splitpinn.Model.from_equations(
        TEXT_LIF + (" (unless refractory)" if held else ""), name="text-lif",
        threshold="v > v_th", reset="v = v_reset", refractory=refractory,
        parameters={**TEXT_PARAMETERS, **parameters}, initial={"v": "-70*mV"})


def lif_rise(v_from: float, v_to: float, drive: float, tau: float = TAU,
             v_rest: float = V_REST) -> float:
    """The time an LIF (tau v' = v_rest − v + drive) takes from v_from to v_to."""
    v_inf = v_rest + drive
    return tau * np.log((v_inf - v_from) / (v_inf - v_to))


def lif_value(v_from: float, elapsed: float, drive: float, tau: float = TAU,
              v_rest: float = V_REST) -> float:
    v_inf = v_rest + drive
    return v_inf - (v_inf - v_from) * np.exp(-elapsed / tau)


SOLVERS = [("reference", {}), ("split-pinn", {}), ("split-pinn", {"fixed_step": True}),
           ("split-pinn", {"compiled": False})]


@pytest.mark.parametrize("method, options", SOLVERS)
def test_text_lif_above_threshold_at_every_refractory_end_fires_every_t_ref(method, options):
    """R·I = 300 mV: v crosses −50 mV after T1 = τ ln(300/280) = 0.69 ms from −70 mV, is
    reset and, not held, is back above threshold 0.69 ms later — inside the 5 ms period, so
    no spike then (72 spikes in 50 ms before: every T1); at the period's end v = v∞ − 300
    e^(−1/2) mV = 48 mV, past the threshold, so it fires there: T1 + 5k, 10 spikes."""
    dt = 0.005 if options.get("fixed_step") else None
    sol = splitpinn.solve(text_lif(), method, 50.0, dt, **options)
    first = lif_rise(V_RESET, V_TH, 300.0)
    np.testing.assert_allclose(sol.spike_times, first + 5.0 * np.arange(10), rtol=0,
                               atol=1e-7 if dt is None else 1e-6)
    at_end = lif_value(V_RESET, 5.0, 300.0)
    for record in sol.events[1:]:  # v evolved freely through the period
        assert record.before["v"] == pytest.approx(at_end, abs=1e-5)
        assert record.after["v"] == V_RESET


def test_the_kernel_fires_at_the_refractory_end_without_the_loop(monkeypatch):
    """The adaptive split-PINN's kernel (kernels.march_composed) takes the whole march of
    the text LIF that fires at every refractory end: with the marching loop's reset and root
    finding refused, the spikes are T1 + 5k, as the closed form says."""
    import splitpinn.solvers.marching as marching

    def refused(*args):
        raise AssertionError("the marching loop took an event")

    monkeypatch.setattr(marching, "_locate", refused)
    monkeypatch.setattr(marching._Loop, "_reset", refused)
    sol = splitpinn.solve(text_lif(), "split-pinn", 50.0)
    first = lif_rise(V_RESET, V_TH, 300.0)
    np.testing.assert_allclose(sol.spike_times, first + 5.0 * np.arange(10), rtol=0, atol=1e-7)


@pytest.mark.parametrize("method", ["reference", "split-pinn"])
def test_a_held_state_waits_out_the_period(method):
    """The same text LIF with v (unless refractory): held at −70 mV for 5 ms, then T1
    again: spikes every T1 + 5 ms."""
    sol = splitpinn.solve(text_lif(held=True), method, 50.0)
    first = lif_rise(V_RESET, V_TH, 300.0)
    np.testing.assert_allclose(sol.spike_times, first + (first + 5.0) * np.arange(9),
                               rtol=0, atol=1e-7)


@pytest.mark.parametrize("method", ["reference", "split-pinn"])
def test_a_period_shorter_than_the_interval_changes_nothing(method):
    """R·I = 30 mV: v (not held) is at −58 mV when the 5 ms period ends and crosses at
    τ ln 3 = 10.99 ms after each reset, as without refractoriness."""
    sol = splitpinn.solve(text_lif(I="3*nA"), method, 50.0)
    period = lif_rise(V_RESET, V_TH, 30.0)
    np.testing.assert_allclose(sol.spike_times, period * np.arange(1, 5), rtol=0, atol=1e-7)


@pytest.mark.parametrize("held", [False, True])
@pytest.mark.parametrize("method", ["reference", "split-pinn"])
def test_a_reset_above_threshold_fires_again_when_the_period_ends(method, held):
    """v_reset = −45 mV > v_th: legal with a refractory period (before: a ModelError); as
    in Brian2 the neuron fires at T1 = τ ln 3 and then at every period's end."""
    sol = splitpinn.solve(text_lif(held=held, I="3*nA", v_reset="-45*mV"), method, 40.0)
    first = lif_rise(V_RESET, V_TH, 30.0)
    np.testing.assert_allclose(sol.spike_times, first + 5.0 * np.arange(6), rtol=0, atol=1e-7)
    with pytest.raises(splitpinn.ModelError, match="lands at or past its threshold"):
        splitpinn.solve(text_lif(held=held, refractory="0*ms", I="3*nA", v_reset="-45*mV"),
                        method, 40.0)


@pytest.mark.parametrize("method", ["reference", "split-pinn"])
def test_library_lif_batch(method):
    """lif (V held for t_ref): neuron 0 fires every T + t_ref (T = τ ln 2 from V_rest at
    R·I = 30 mV); neuron 1, reset to −45 mV > V_th, first at T and then every t_ref = 3 ms;
    neuron 2, t_ref 0.5 ms, every T + 0.5 ms."""
    lif = splitpinn.models.get("lif").parameters
    batch = splitpinn.solve("lif", method, 40.0, parameters={
        "I": 3.0, "V_reset": np.array([-65.0, -45.0, -65.0]), "t_ref": np.array([2.0, 3.0, 0.5])})
    first = lif_rise(lif["V_rest"], lif["V_th"], 30.0, lif["tau"], lif["V_rest"])
    expected = [first + (first + 2.0) * np.arange(5), first + 3.0 * np.arange(12),
                first + (first + 0.5) * np.arange(6)]
    for got, want in zip(batch.spike_times, expected, strict=True):
        np.testing.assert_allclose(got, want[want < 40.0], rtol=0, atol=1e-7)


@pytest.mark.parametrize("method", ["reference", "split-pinn"])
def test_fractional_reset_above_threshold_fires_every_t_ref(method):
    """frac-LIF (V held for t_ref = 8 ms) reset to −45 mV > V_th: the first spike at the
    Mittag-Leffler time, then one at every period's end (the fixed-step fractional march and
    its compiled kernel)."""
    alpha, drive = 0.6, 1.5 * FRAC_LIF["R"]
    target = 1 - (FRAC_LIF["V_th"] - FRAC_LIF["V_rest"]) / drive
    first = brentq(lambda t: mittag_leffler(alpha, -t**alpha / FRAC_LIF["tau"]) - target,
                   1.0, 60.0, xtol=1e-13)
    sol = splitpinn.solve("frac-lif", method, 75.0,
                          parameters={"alpha": alpha, "I": 1.5, "V_reset": -45.0})
    np.testing.assert_allclose(sol.spike_times, first + 8.0 * np.arange(6), rtol=0,
                               atol=2e-6)


# -- coupling -----------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["reference", "split-pinn"])
def test_a_jump_in_the_period_moves_the_state_but_fires_at_its_end(method):
    """Text LIF, v not held.  Neuron 1 (R·I = 30 mV) fires at T1 = τ ln 3; neuron 0 (R·I =
    35 mV) at T0 = τ ln(35/15), whose spike reaches neuron 1 3.5 ms later, inside its 5 ms
    period, and lifts v by 25 mV above the threshold: no spike then (before: one at the
    jump); v relaxes, still above, and neuron 1 fires when the period ends."""
    weights = np.array([[0.0, 0.0], [25.0, 0.0]])
    batch = splitpinn.solve(text_lif(), method, 20.0, parameters={"I": np.array([3.5, 3.0])},
                            coupling={"weights": weights, "target": "v", "delay": 3.5})
    t0, t1 = lif_rise(V_RESET, V_TH, 35.0), lif_rise(V_RESET, V_TH, 30.0)
    arrival = t0 + 3.5
    assert t1 < arrival < t1 + 5.0
    lifted = lif_value(V_RESET, arrival - t1, 30.0) + 25.0
    assert lif_value(lifted, t1 + 5.0 - arrival, 30.0) > V_TH
    np.testing.assert_allclose(batch.spike_times[1], [t1, t1 + 5.0], rtol=0, atol=1e-7)
    np.testing.assert_allclose(batch.spike_times[0], [t0, 2 * t0], rtol=0, atol=1e-7)
    jumped = [r for r in batch[1].events if r.time > t1 + 1.0][0]
    assert jumped.before["v"] == pytest.approx(lif_value(lifted, t1 + 5.0 - arrival, 30.0),
                                               abs=1e-6)


@pytest.mark.parametrize("method", ["reference", "split-pinn"])
def test_a_jump_into_a_held_state_is_kept_until_the_period_ends(method):
    """Library LIF (V held): neuron 1 (R·I = 35 mV) fires at T1; neuron 0 (30 mV) at T0 <
    T1 + t_ref, and its 20 mV jump (delay 0.37 ms) lifts the held V of neuron 1 to −45 mV:
    no spike then; at T1 + t_ref V is still −45 mV, so it fires there.  A 10 mV jump leaves
    V at −55 mV: no spike at the period's end, a crossing τ ln(25/20) later.  (Brian2 2.9
    drops such a write: its `(unless refractory)` variables are written only when not
    refractory.)"""
    lif = splitpinn.models.get("lif").parameters
    rest, tau = lif["V_rest"], lif["tau"]
    t0 = lif_rise(rest, lif["V_th"], 30.0, tau, rest)
    t1 = lif_rise(rest, lif["V_th"], 35.0, tau, rest)
    assert t1 < t0 + 0.37 < t1 + 2.0
    for weight, second in [(20.0, t1 + 2.0),
                           (10.0, t1 + 2.0 + lif_rise(rest + 10.0, lif["V_th"], 35.0, tau,
                                                      rest))]:
        batch = splitpinn.solve("lif", method, 11.0, parameters={"I": np.array([3.0, 3.5])},
                                coupling={"weights": np.array([[0.0, 0.0], [weight, 0.0]]),
                                          "target": "V", "delay": 0.37})
        np.testing.assert_allclose(batch.spike_times[1], [t1, second], rtol=0, atol=1e-7)


def test_the_reported_chain_fires_once_per_period():
    """Three library LIFs, each lifting its neighbours by 25 mV after 0.5 ms; only neuron 2
    is driven (R·I = 20 mV: T = τ ln 4).  A jump fires a neuron that is out of its period;
    one that arrives in the period (V held at −65 + 25 mV) fires it at the period's end:
    neuron 1 fired at T + 0.5 and T + 1.5 ms before (t_ref is 2 ms), now at T + 0.5 + 2k.
    At T + 2.5 neuron 1's period ends as neuron 2's spike arrives: the release comes first,
    then the jump, into the new period."""
    weights = (np.eye(3, k=1) + np.eye(3, k=-1)) * 25.0
    batch = splitpinn.solve("lif", "reference", 20.0, parameters={"I": np.array([0, 0, 2.0])},
                            coupling={"weights": weights, "target": "V", "delay": 0.5})
    t = 10.0 * np.log(4.0)
    for got, offset in zip(batch.spike_times, [1.0, 0.5, 0.0], strict=True):
        want = t + offset + 2.0 * np.arange(4)
        np.testing.assert_allclose(got, want[want < 20.0], rtol=0, atol=1e-7)


# -- against Brian2 ---------------------------------------------------------------------------
BRIAN2_RUNNER = '''
import json, sys
import numpy as np
import brian2
from brian2 import NeuronGroup, SpikeMonitor, Synapses, defaultclock, ms, mV, prefs, run
brian2.prefs.codegen.target = "numpy"
out = []
for case in json.loads(sys.stdin.read()):
    brian2.start_scope()
    defaultclock.dt = case["dt"] * ms
    group = NeuronGroup(case["n"], case["equations"], threshold="v > v_th", reset="v = v_reset",
                        refractory=case["refractory"], method="exact")
    for name, value in case["values"].items():
        setattr(group, name, eval(value, vars(brian2)))
    monitor = SpikeMonitor(group)
    if case["weights"] is not None:
        weights = np.array(case["weights"])
        target, source = np.nonzero(weights)
        synapses = Synapses(group, group, "w : volt", on_pre="v_post += w",
                            delay=case["delay"] * ms)
        synapses.connect(i=source, j=target)
        synapses.w = weights[target, source] * mV
    run(case["t_end"] * ms)
    trains = monitor.spike_trains()
    out.append([np.asarray(trains[i] / ms, dtype=float).tolist() for i in range(case["n"])])
print(json.dumps(out))
'''
BRIAN2_DT = 0.002  # ms
_W5 = np.array([[0.0, 11.5, 0.0, 0.0, 19.74], [8.1, 0.0, 18.12, 0.0, 2.25],
                [17.05, 0.0, 0.0, 0.0, 0.0], [0.0, 18.02, 0.0, 0.0, 10.0],
                [21.55, 0.0, -1.42, 24.74, 0.0]])
#: (held, I in nA per neuron, v_reset, weights, delay, t_end): the cases above, and a network
#: of five whose jumps land in refractory periods and fire neurons at their ends.
BRIAN2_CASES = [
    (False, [30.0], "-70*mV", None, 0.0, 50.0),
    (True, [30.0], "-70*mV", None, 0.0, 50.0),
    (False, [3.0], "-45*mV", None, 0.0, 40.0),
    (True, [3.0], "-45*mV", None, 0.0, 40.0),
    (False, [3.5, 3.0], "-70*mV", [[0.0, 0.0], [25.0, 0.0]], 3.5, 30.0),
    (False, [3.78, 2.62, 3.36, 4.41, 3.93], "-70*mV", _W5.tolist(), 0.37, 60.0),
]


@pytest.fixture(scope="module")
def brian2_trains():
    """Spike trains (ms) of BRIAN2_CASES by Brian2 (numpy target, exact integration, dt 2 µs),
    in one subprocess (importing Brian2 takes seconds and sets global preferences)."""
    pytest.importorskip("brian2")
    import json
    import subprocess
    import sys

    cases = [{"n": len(current), "equations": TEXT_LIF + (" (unless refractory)" if held else "")
              + "".join(f"\n{k} : {u}" for k, u in [("v_rest", "volt"), ("R", "ohm"),
                                                    ("I", "amp"), ("tau", "second"),
                                                    ("v_th", "volt"), ("v_reset", "volt")]),
              "refractory": "5*ms", "dt": BRIAN2_DT, "weights": weights, "delay": delay,
              "t_end": t_end,
              "values": {**TEXT_PARAMETERS, "I": f"{current}*nA", "v_reset": v_reset,
                         "v": "-70*mV"}}
             for held, current, v_reset, weights, delay, t_end in BRIAN2_CASES]
    done = subprocess.run([sys.executable, "-c", BRIAN2_RUNNER], input=json.dumps(cases),
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.splitlines()[-1])


@pytest.mark.parametrize("method", ["reference", "split-pinn"])
@pytest.mark.parametrize("case", range(len(BRIAN2_CASES)))
def test_spike_trains_match_brian2(brian2_trains, case, method):
    """The same spikes as Brian2, each within (3 + k)·dt of Brian2's (k: its index in the
    train).  Brian2 quantises to its steps: it records a spike at the start of the step in
    which v passes the threshold and resets v at the step's end (up to one dt early, and one
    late), and a delivered jump is first checked against the threshold a step later; a spike
    inherits the lags of the spikes that led to it (here at most 2.8 dt, and 0.96 dt per
    natural crossing along the held train)."""
    held, current, v_reset, weights, delay, t_end = BRIAN2_CASES[case]
    model = text_lif(held=held, v_reset=v_reset)
    options = {} if weights is None else {
        "coupling": {"weights": np.array(weights), "target": "v", "delay": delay}}
    solved = splitpinn.solve(model, method, t_end, parameters={"I": np.array(current)},
                             **options)
    ours = solved.spike_times
    for got, theirs in zip(ours, brian2_trains[case], strict=True):
        assert len(got) == len(theirs), (got, theirs)
        tolerance = (3 + np.arange(len(got))) * BRIAN2_DT
        assert np.all(np.abs(got - np.array(theirs)) <= tolerance), (got, theirs)
