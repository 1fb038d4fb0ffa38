"""discretise(): published spiking-neuron update rules are splitting maps of continuous models.

Each port below is written independently of splitpinn as a plain numpy loop over time steps,
following the authors' code (named in its docstring); ``discretise`` of the library model must
reproduce it step for step on random inputs: 64 neurons x 100 steps, identical spikes, states
to 1e-12.
"""

import numpy as np
import pytest

import splitpinn
from splitpinn import ModelError, discretise
from splitpinn.analysis.discretisation_error import (
    discrete_spike_times,
    discretisation_error,
    plot_discretisation_error,
)

BATCH, STEPS = 64, 100


def run_map(step_map, inputs, state=None, key="I"):
    """Run a DiscreteMap over inputs (steps, batch); states (steps, batch) and spikes."""
    state = step_map.initial(inputs.shape[1]) if state is None else state
    states, spikes = [], []
    for x in inputs:
        state, spiked = step_map.step(state, {key: x})
        states.append(state)
        spikes.append(spiked)
    return {n: np.array([s[n] for s in states]) for n in step_map.names}, np.array(spikes)


def ilif_port(x_seq, tau=2.0, v_th=1.0):
    """InhibitoryLIFNeuron.forward, modules/neuron.py of the ILIF repository (KaiSUN1/ILIF;
    Sun et al., IJCAI 2025), single-step version with its defaults: decay_input=False,
    v_reset=None (soft reset), heaviside spike (v - v_th >= 0), kappa = 0.03."""
    n = x_seq.shape[1]
    v = np.zeros(n)
    inhibition, prev_input, prev_spike, memory = np.zeros(n), np.zeros(n), np.zeros(n), 0.0
    out = {"U": [], "I_inh": [], "M": []}
    spikes = []
    for x in x_seq:
        inhibition = 0.03 * (inhibition + prev_input * prev_spike)
        v = v * (1 - 1.0 / tau) + (x - np.clip(inhibition, 0, None))
        prev_input = x
        spike = (v - v_th >= 0).astype(float)
        prev_spike = spike
        v = v - spike * v_th
        memory = memory + spike * v
        v = v - spike * (1 / (1 + np.exp(-memory)))
        out["U"].append(v)
        out["M"].append(memory * np.ones(n))
        # the continuous model adds the spike's input to I_inh at the reset, the code at the
        # next step: our I_inh is the code's pending inhibition
        out["I_inh"].append(inhibition + prev_input * prev_spike)
        spikes.append(spike > 0)
    return {k: np.array(v) for k, v in out.items()}, np.array(spikes)


def da_lif_port(x_seq, alpha, beta, v_th):
    """DA-LIF (Zhang et al. 2025): V[t] = beta V[t-1] + alpha X[t]; spike at V >= V_th; the
    reset (not recoverable from the paper) is the hard reset to 0 of the library model."""
    v = np.zeros(x_seq.shape[1])
    out, spikes = [], []
    for x in x_seq:
        v = beta * v + alpha * x
        spike = v >= v_th
        v = np.where(spike, 0.0, v)
        out.append(v)
        spikes.append(spike)
    return {"V": np.array(out)}, np.array(spikes)


def arslif_port(z_seq, v_th0=1.0, tau_mem=10.0, r_weight=1.0, tau_adapt=1000.0, f=0.65,
                f_active=0.99, f_rest=0.01, alpha=0.6, beta=0.4, dt=1.0):
    """The neuron update of ARSLIFLSTMCell.call in the authors' code (Wu et al., RBA-FE), for
    single neurons: the population rate r is the neuron's own spike and the population mean of
    f_adapt its own value.  The spike test V/(V_th + 1e-7) >= 1 is taken as V >= V_th (the
    1e-7 only guards a division by zero)."""
    v = np.zeros(z_seq.shape[1])
    v_th = np.full(z_seq.shape[1], v_th0)
    out = {"V": [], "V_th": []}
    spikes = []
    for z in z_seq:
        v = v + (dt / tau_mem) * (-v + r_weight * z)
        spike = (v >= v_th).astype(float)
        v = np.where(spike > 0, 0.0, v)
        r = spike
        f_adapt = np.where(np.abs(r_weight * z) >= v_th, f_active, f_rest)
        v_th = v_th + (dt / tau_adapt) * (alpha * (r - f) + beta * (r - f_adapt))
        out["V"].append(v)
        out["V_th"].append(v_th)
        spikes.append(spike > 0)
    return {k: np.array(v) for k, v in out.items()}, np.array(spikes)


def assert_same(ours, theirs):
    states, spikes = ours
    port_states, port_spikes = theirs
    assert spikes.any() and not spikes.all(), "the inputs must make some, not all, spikes"
    np.testing.assert_array_equal(spikes, port_spikes)
    for name, values in port_states.items():
        np.testing.assert_allclose(states[name], values, rtol=0, atol=1e-12, err_msg=name)


def test_ilif_is_lie_inhibition_then_membrane_euler():
    x = np.random.default_rng(1).uniform(-0.5, 2.0, (STEPS, BATCH))
    step_map = discretise("ilif", 1.0, order=["I_inh", "U"])
    assert step_map.stages == [("I_inh,M", 1.0), ("U", 1.0)]
    assert_same(run_map(step_map, x), ilif_port(x))


def test_da_lif_is_euler():
    rng = np.random.default_rng(2)
    x = rng.uniform(-0.5, 1.5, (STEPS, BATCH))
    step_map = discretise("da-lif", 1.0, parameters={"alpha": 0.8, "beta": 0.7, "V_th": 1.0})
    assert_same(run_map(step_map, x), da_lif_port(x, 0.8, 0.7, 1.0))
    # the learnable decay and gain, one per neuron
    alpha, beta = rng.uniform(0.5, 1.0, BATCH), rng.uniform(0.2, 0.9, BATCH)
    step_map = discretise("da-lif", 1.0, parameters={"alpha": alpha, "beta": beta})
    assert step_map.batch == BATCH
    assert_same(run_map(step_map, x), da_lif_port(x, alpha, beta, 1.0))


def test_arslif_is_lie_membrane_then_threshold():
    z = np.random.default_rng(3).uniform(0.0, 3.0, (STEPS, BATCH))
    step_map = discretise("arslif", 1.0, order=["V", "V_th"], check_after="V")
    assert step_map.stages == [("V", 1.0), ("V_th", 1.0)]
    ours, theirs = run_map(step_map, z), arslif_port(z)
    assert_same(ours, theirs)
    # both branches of f_adapt are exercised
    v_th_before = np.vstack([np.ones(BATCH), theirs[0]["V_th"][:-1]])
    assert (z >= v_th_before).any() and (z < v_th_before).any()


def test_arslif_threshold_tested_at_step_end_differs_only_near_threshold():
    """With the contract's default (test at the step's end, after the threshold's own
    sub-step), one step from the published rule's state differs from the rule exactly where
    the membrane lands between the updated and the previous threshold."""
    z = np.random.default_rng(4).uniform(0.0, 3.0, (STEPS, BATCH))
    states, _ = arslif_port(z)
    before = {"V": np.vstack([np.zeros(BATCH), states["V"][:-1]]),
              "V_th": np.vstack([np.ones(BATCH), states["V_th"][:-1]])}
    at_end = discretise("arslif", 1.0)
    published = discretise("arslif", 1.0, check_after="V")
    band_hits = 0
    for n in range(STEPS):
        state = {k: v[n] for k, v in before.items()}
        ours, spiked = at_end.step(state, {"I": z[n]})
        ref, ref_spiked = published.step(state, {"I": z[n]})
        v_new = state["V"] + (z[n] - state["V"]) / 10.0
        drift = (0.6 * 0.65 + 0.4 * np.where(z[n] >= state["V_th"], 0.99, 0.01)) / 1000.0
        band = (v_new >= state["V_th"] - drift) & (v_new < state["V_th"])
        np.testing.assert_array_equal(spiked != ref_spiked, band)
        band_hits += band.sum()
        for k in ours:
            np.testing.assert_allclose(ours[k][~band], ref[k][~band], rtol=0, atol=1e-12)
    assert band_hits < 0.01 * BATCH * STEPS


def test_exact_substep_is_the_closed_form_flow():
    # LIF between spikes: V(h) = V_inf + (V0 - V_inf) e^(-h/tau), V_inf = V_rest + R I
    step_map = discretise("lif", 0.7, substep="exact", parameters={"t_ref": 0.0})
    v0, current = np.array([-65.0, -60.0, -55.0]), np.array([0.5, 1.0, 1.4])
    state, spiked = step_map.step({"V": v0}, {"I": current})
    v_inf = -65.0 + 10.0 * current
    np.testing.assert_allclose(state["V"], v_inf + (v0 - v_inf) * np.exp(-0.7 / 10.0),
                               rtol=0, atol=1e-12)
    assert not spiked.any()
    # a two-state linear sub-problem (ILIF's I_inh, M) through the matrix exponential
    ilif = discretise("ilif", 0.3, order=["I_inh", "U"], substep="exact")
    start = {"U": np.zeros(2), "I_inh": np.array([0.4, -0.2]), "M": np.array([0.1, 0.0])}
    state, _ = ilif.step(start, {"I": np.zeros(2)})
    inh = start["I_inh"] * np.exp(-0.97 * 0.3)
    np.testing.assert_allclose(state["I_inh"], inh, rtol=0, atol=1e-14)
    np.testing.assert_allclose(state["M"], start["M"], rtol=0, atol=0)
    # U then sees the decayed inhibition, frozen: U(h) = tau (X - max(I_inh, 0)) (1 - e^(-h/tau))
    np.testing.assert_allclose(state["U"], -2.0 * np.maximum(inh, 0) * -np.expm1(-0.3 / 2.0),
                               rtol=0, atol=1e-14)


def test_strang_stages_and_convergence_to_the_flow():
    strang = discretise("arslif", 0.5, scheme="strang", order=["V_th", "V"])
    assert strang.stages == [("V_th", 0.5), ("V", 1.0), ("V_th", 0.5)]
    with pytest.raises(ModelError, match="averages two stage sequences"):
        discretise("arslif", 0.5, scheme="symmetric")  # a map applies one sequence
    # Euler maps of DA-LIF converge to the exact flow at first order between spikes
    errors = []
    for dt in (0.1, 0.05, 0.025):
        euler = discretise("da-lif", dt, parameters={"V_th": 100.0})
        state = {"V": np.array([0.0])}
        for _ in range(int(round(1.0 / dt))):
            state, _ = euler.step(state, {"I": np.array([1.0])})
        errors.append(abs(state["V"][0] - 2.0 * (1 - np.exp(-0.5))))
    assert 1.8 < errors[0] / errors[1] < 2.2 and 1.8 < errors[1] / errors[2] < 2.2


def test_constant_stimulus_and_spike_detector():
    lif = discretise("lif", 0.1, parameters={"t_ref": 0.0, "I": 2.0})
    state = lif.initial(3)
    assert set(state) == {"V"} and state["V"].shape == (3,)
    count = 0
    for _ in range(200):  # 20 ms at the default constant I: the closed-form period
        state, spiked = lif.step(state)
        count += spiked
    period = 10.0 * np.log(20.0 / 5.0)  # tau ln((RI + V_rest - V_reset)/(RI + V_rest - V_th))
    assert np.all(count == int(20.0 // period))
    fhn = discretise("fhn", 0.05)  # no reset: spikes are upward detector crossings
    assert fhn.model == "fhn" and fhn.names == ["v", "w"]


@pytest.mark.parametrize("kwargs, message", [
    (dict(model="lif", dt=0.1), "refractory"),
    (dict(model="lif", dt=-1.0), "dt must be"),
    (dict(model="ilif", dt=1.0, substep="rk4"), "unknown substep"),
    (dict(model="izhikevich", dt=0.1, substep="exact"), "nonlinear"),
    (dict(model="ilif", dt=1.0, order=["X"]), "unknown state"),
    (dict(model="ilif", dt=1.0, order=["I_inh", "M"]), "exactly once"),
    (dict(model="ilif", dt=1.0, check_after="Q"), "check_after"),
    (dict(model="ilif", dt=1.0, parameters={"tau": [1.0, 2.0], "V_th": [1.0, 2.0, 3.0]}),
     "different lengths"),
    (dict(model="ilif", dt=1.0, parameters={"tau": [[1.0]]}), "1-D array"),
    (dict(model="lif", dt=1.0, parameters={"t_ref": [0.0, 1.0]}), "refractory"),
    (dict(model="frac-lif", dt=1.0), "integer-order"),
    (dict(model="ilif", dt="x"), "dt must be"),
    (dict(model="ilif", dt=1.0, scheme="zzz"), "unknown scheme"),
    (dict(model="ilif", dt=1.0, parameters={"tau": "x"}), "parameter tau: 'x' is not a number"),
    (dict(model="ilif", dt=1.0, parameters={"Q": 1.0}), "unknown parameter 'Q'"),
    (dict(model=splitpinn.Model.from_equations("dV/dt = (sin(t/ms) - V)/ms : 1", name="m",
                                               threshold="V > 1", reset="V = 0"), dt=0.1),
     "depend on the time t explicitly"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ModelError, match=message):
        discretise(**kwargs)


def test_bad_steps():
    step_map = discretise("ilif", 1.0)
    state = step_map.initial(4)
    with pytest.raises(ModelError, match="unknown input"):
        step_map.step(state, {"X": np.ones(4)})
    with pytest.raises(ModelError, match="does not fit"):
        step_map.step(state, {"I": np.ones(3)})
    with pytest.raises(ModelError, match="must hold exactly"):
        step_map.step({"U": np.zeros(4)}, {"I": np.ones(4)})
    with pytest.raises(ModelError, match="positive integer"):
        step_map.initial(0)
    with pytest.raises(ModelError, match="give the stimulus once"):
        step_map.step(state, {"I": np.ones(4), "I_ext": np.ones(4)})
    with pytest.raises(ModelError, match="every state must be a 1-D array of the same length"):
        step_map.step({**state, "U": np.zeros((4, 2))}, {"I": np.ones(4)})
    # before: numpy's ValueError (could not convert string to float)
    with pytest.raises(ModelError, match="state U: 'a' is not a number"):
        step_map.step({**state, "U": "a"}, {"I": np.ones(4)})
    with pytest.raises(ModelError, match="input I: 'a' is not a number"):
        step_map.step(state, {"I": "a"})
    per_neuron = discretise("ilif", 1.0, parameters={"tau": [2.0, 3.0]})
    with pytest.raises(ModelError, match="for 2 neurons"):
        per_neuron.initial(4)
    with pytest.raises(ModelError, match="for 2 neurons"):
        per_neuron.step(state, {"I": np.ones(4)})
    pulsed = splitpinn.models.get("da-lif").with_stimulus(splitpinn.declare.stimulus.step(1.0, 5.0))
    with pytest.raises(ModelError, match="depends on time"):
        discretise(pulsed, 1.0).step({"V": np.zeros(2)})


def test_discrete_lif_spikes_approach_the_closed_form():
    """The study's discrete spike times against the LIF closed form (constant input)."""
    period = 10.0 * np.log(20.0 / 5.0)  # R I = 20 mV from V_reset = V_rest, threshold 15 mV
    closed = period * np.arange(1, int(40.0 // period) + 1)
    for dt, tol in ((0.1, 0.2), (0.01, 0.02)):
        times = discrete_spike_times("lif", dt, np.array([2.0]), 40.0, 40.0)
        assert len(times) == len(closed)
        assert np.max(np.abs(times - closed)) < tol


def test_discretisation_error_table():
    table = discretisation_error(models=("da-lif", "lif"), dts=(1.0, 0.1, 0.01), t_end=40.0)
    assert list(table["model"]) == ["da-lif"] * 3 + ["lif"] * 3
    assert set(table.columns) >= {"dt", "reference_spikes", "spikes", "count_error",
                                  "max_spike_time_error_ms", "mean_spike_time_error_ms"}
    for _, rows in table.groupby("model"):
        assert rows["reference_spikes"].iloc[0] >= 2
        fine = rows[rows["dt"] == 0.01].iloc[0]
        assert fine["count_error"] == 0 and fine["max_spike_time_error_ms"] < 0.1
        assert fine["mean_spike_time_error_ms"] < rows[rows["dt"] == 1.0].iloc[0][
            "mean_spike_time_error_ms"]
    fig = plot_discretisation_error(table)
    assert fig.axes[0].get_xlabel() == "Δt (ms)" and len(fig.axes[1].lines) == 3
    with pytest.raises(ModelError, match="no published rule"):
        discretisation_error(models=("hh",))
    with pytest.raises(ModelError, match="does not divide"):
        discretisation_error(models=("lif",), dts=(0.3,))


def test_per_neuron_parameters_set_per_neuron_initial_states():
    step_map = discretise("izhikevich", 0.1, parameters={"b": [0.2, 0.25]})
    state = step_map.initial(2)
    np.testing.assert_allclose(state["u"], [-13.0, -16.25])  # u(0) = b v(0), v(0) = -65
    state, _ = step_map.step(state, {"I": 10.0})
    # Lie (v, then u), Euler: u sees the updated v
    v = -65.0 + 0.1 * (0.04 * 65.0**2 - 5 * 65.0 + 140 - np.array([-13.0, -16.25]) + 10.0)
    u = np.array([-13.0, -16.25]) + 0.1 * 0.02 * (np.array([0.2, 0.25]) * v
                                                  - np.array([-13.0, -16.25]))
    np.testing.assert_allclose(state["v"], v, rtol=0, atol=1e-12)
    np.testing.assert_allclose(state["u"], u, rtol=0, atol=1e-12)


def test_arslif_population_form_leaves_the_threshold_to_coupling():
    """arslif(own_rate=False): a spike resets V only; V_th drifts by -(a f + b f_adapt)/tau."""
    from splitpinn.models.arslif import arslif

    step_map = discretise(arslif(own_rate=False), 1.0, check_after="V")
    state, count = step_map.initial(1), 0
    for _ in range(50):
        state, spiked = step_map.step(state, {"I": 3.0})  # |R I| >= V_th: f_adapt = f_active
        count += int(spiked[0])
    assert count >= 2
    np.testing.assert_allclose(state["V_th"], 1.0 - 50 * (0.6 * 0.65 + 0.4 * 0.99) / 1000.0,
                               rtol=0, atol=1e-12)


def test_a_discrete_map_without_reset_flags_its_detector_crossings():
    """FitzHugh-Nagumo has no reset, only a spike detector (v = 1, upwards): the discrete map
    (Strang, dt 0.01 ms) flags a neuron in the step in which v crosses 1, without changing
    its state.  Against scipy's DOP853 at rtol 1e-12 with a non-terminal event v = 1 (upwards),
    I 0 / 0.5 / 0.8 over 100 ms: no spike at rest, three each otherwise, each in the step that
    holds the crossing once the map's own lag is allowed for (its Euler sub-steps make it
    first order: the map's v crosses 1 later by 3.6e-3, 7.3e-3, 1.1e-2 ms at I 0.5, and half
    that at dt 0.005; allowed 1.5e-2)."""
    from scipy.integrate import solve_ivp

    dt, t_end, currents = 0.01, 100.0, np.array([0.0, 0.5, 0.8])
    fhn = discretise("fhn", dt, scheme="strang", parameters={"I": currents})
    state, flags = fhn.initial(3), []
    for _ in range(int(round(t_end / dt))):
        state, spiked = fhn.step(state)
        flags.append(spiked)
    ends = (np.arange(len(flags)) + 1) * dt
    p = splitpinn.models.get("fhn").parameters

    def rhs(t, y, current):
        v, w = y
        return [v - v**3 / 3 - w + current, (v + p["a"] - p["b"] * w) / p["tau"]]

    def crossing(t, y, current):
        return y[0] - 1.0
    crossing.direction = 1

    for j, current in enumerate(currents):
        exact = solve_ivp(rhs, (0.0, t_end), [-1.2, -0.625], "DOP853", rtol=1e-12, atol=1e-12,
                          events=crossing, args=(current,)).t_events[0]
        flagged = ends[np.array(flags)[:, j]]
        assert flagged.size == exact.size == (0 if current == 0 else 3)
        assert np.all((flagged - dt - 1.5e-2 < exact) & (exact <= flagged))
