"""Coupled populations (delta synapses) against hand-computed spike times."""

import math

import numpy as np
import pytest
import sympy as sp
from scipy.integrate import solve_ivp

import splitpinn
from splitpinn.declare.model import Model, SpikeDetector, State
from splitpinn.errors import ModelError

LIF = splitpinn.models.get("lif").parameters  # tau 10, R 10, V_rest = V_reset -65, V_th -50


def _lif_first_spike(drive_mv: float) -> float:
    """First spike of the LIF from V_rest under R·I = drive (mV)."""
    return LIF["tau"] * math.log(drive_mv / (drive_mv - (LIF["V_th"] - LIF["V_rest"])))


@pytest.mark.parametrize("method", ["reference", "split-pinn"])
def test_two_neurons_excitatory_jump_gives_the_hand_computed_spike(method):
    """Neuron 0 (R·I = 30 mV) fires at T0 = 6.93 ms and lifts neuron 1 (R·I = 16 mV, at
    -57 mV then) by w = 6 mV; from -51 mV it relaxes towards -49 mV and crosses -50 mV at
    T0 + τ ln 2, before neuron 0 fires again (T0 + t_ref + T0)."""
    w, drive0, drive1 = 6.0, 30.0, 16.0
    t0 = _lif_first_spike(drive0)
    v_inf = LIF["V_rest"] + drive1
    v1 = v_inf - drive1 * math.exp(-t0 / LIF["tau"]) + w  # just after the jump
    t1 = t0 + LIF["tau"] * math.log((v1 - v_inf) / (LIF["V_th"] - v_inf))
    weights = np.array([[0.0, 0.0], [w, 0.0]])
    batch = splitpinn.solve("lif", method, t1 + 1.0, parameters={"I": np.array([3.0, 1.6])},
                            coupling={"weights": weights, "target": "V"})
    assert batch[0].spike_times[0] == pytest.approx(t0, abs=1e-8)
    assert batch[1].spike_times[0] == pytest.approx(t1, abs=1e-8)
    assert batch[1].spike_times.size == 1


@pytest.mark.parametrize("method", ["reference", "split-pinn"])
def test_ring_of_three_cascades_once_per_instant_in_index_order(method, monkeypatch):
    """0 -> 1 -> 2 -> 0 with jumps of 20 mV (from rest, past the 15 mV to threshold): the
    spike of neuron 0 fires 1, then 2, at the same instant; 2's jump reaches 0, which has
    fired in this instant already and does not fire again.  Split-PINN takes it in its
    compiled network march (kernels.march_network): the marching loop's root finding and
    resets are refused."""
    if method == "split-pinn":
        import splitpinn.solvers.marching as marching

        def refused(*args):
            raise AssertionError("the marching loop took an event")

        monkeypatch.setattr(marching, "_locate", refused)
        monkeypatch.setattr(marching._Loop, "_reset", refused)
    weights = np.roll(np.eye(3), 1, axis=0) * 20.0  # W[i+1, i] = 20
    t0 = _lif_first_spike(30.0)
    batch = splitpinn.solve("lif", method, t0 + 1.0,
                            parameters={"I": np.array([3.0, 0.0, 0.0])},
                            coupling={"weights": weights, "target": "V"})
    for sol in batch:
        np.testing.assert_allclose(sol.spike_times, [t0], atol=1e-8)
    order = [ev.event for ev in batch[1].events] + [ev.event for ev in batch[2].events]
    assert len(order) == 2
    # neuron 0 was reset, then lifted by neuron 2's spike and held there by its clamp
    assert batch[0]["V"][-1] == pytest.approx(LIF["V_reset"] + 20.0)


@pytest.mark.parametrize("method", ["reference", "split-pinn"])
def test_zero_weights_equal_the_uncoupled_batch(method):
    currents = np.array([1.0, 2.0, 3.5])
    free = splitpinn.solve("lif", method, 40.0, parameters={"I": currents})
    coupled = splitpinn.solve("lif", method, 40.0, parameters={"I": currents},
                              coupling={"weights": np.zeros((3, 3)), "target": "V"})
    for a, b in zip(free, coupled, strict=True):
        assert a.spike_times.size == b.spike_times.size
        np.testing.assert_allclose(a.spike_times, b.spike_times, atol=1e-8)


def test_delay_shifts_the_jump():
    """With a delay d the jump arrives d ms after the spike: neuron 1 (driven hard enough
    by the jump alone) fires at T0 + d."""
    t0 = _lif_first_spike(30.0)
    weights = np.array([[0.0, 0.0], [20.0, 0.0]])
    batch = splitpinn.solve("lif", "reference", t0 + 3.0, parameters={"I": np.array([3.0, 0.0])},
                            coupling={"weights": weights, "target": "V", "delay": 1.5})
    np.testing.assert_allclose(batch[1].spike_times, [t0 + 1.5], atol=1e-8)


@pytest.mark.parametrize("spec, message", [
    ({"weights": np.zeros((2, 2)), "target": "V"}, "3 x 3"),
    ({"weights": np.zeros((3, 3)), "target": "w"}, "not a state"),
    ({"weights": np.zeros((3, 3)), "target": "V", "delay": -1.0}, "delay"),
    ({"weights": np.zeros((3, 3)), "target": "V", "gain": 1.0}, "unknown coupling key"),
])
def test_bad_coupling_is_a_model_error(spec, message):
    with pytest.raises(ModelError, match=message):
        splitpinn.solve("lif", "reference", 5.0, parameters={"I": np.array([1.0, 2.0, 3.0])},
                        coupling=spec)


@pytest.mark.parametrize("method", ["reference", "split-pinn"])
def test_a_jump_into_a_fractional_state_is_refused(method):
    """A delivery into a Caputo state stays in its memory, which undoes part of it at every
    step after it (the ill-posed case of a reset without a refractory clamp): refused before
    the march, with the reason.  Split-PINN used to march a frac-LIF network until the first
    delivery and then fail with "no stage met its tolerance"."""
    with pytest.raises(ModelError, match="fractional state .*order 0.6.*order 1"):
        splitpinn.solve("frac-lif", method, 50.0, 0.01,
                        parameters={"alpha": 0.6, "I": np.array([1.6, 2.4])},
                        coupling={"weights": [[0.0, 0.5], [0.5, 0.0]], "target": "V"})


def test_a_fractional_network_couples_through_an_integer_order_state():
    """FO-HH (gate n of order 0.8, V of order 1): neuron 0 spikes at 1.92 ms and its spike
    reaches neuron 1 0.5 ms later as a 5 mV jump of V, which then fires earlier than
    uncoupled (2.632 against 2.662 ms); with zero weights the network is the uncoupled
    batch, spike for spike."""
    options = {"parameters": {"eta": 0.8, "t_on": 0.0, "I": np.array([10.0, 6.0])},
               "preset": "n", "traces": False}
    alone = splitpinn.solve("fo-hh", "split-pinn", 3.0, 0.01, **options)
    zero = splitpinn.solve("fo-hh", "split-pinn", 3.0, 0.01, **options,
                           coupling={"weights": np.zeros((2, 2)), "target": "V"})
    driven = splitpinn.solve("fo-hh", "split-pinn", 3.0, 0.01, **options,
                             coupling={"weights": [[0.0, 0.0], [5.0, 0.0]], "target": "V",
                                       "delay": 0.5})
    for a, b in zip(alone, zero, strict=True):
        np.testing.assert_array_equal(a.spike_times, b.spike_times)
    # the network marches in lockstep (the step to the crossing root-found by the loop):
    # the undriven neuron's spike agrees to rounding
    np.testing.assert_allclose(driven[0].spike_times, alone[0].spike_times, rtol=0, atol=1e-9)
    assert len(alone[1].spike_times) == len(driven[1].spike_times) == 1
    assert driven[1].spike_times[0] < alone[1].spike_times[0] - 0.01


def test_vanilla_pinn_refuses_coupling():
    with pytest.raises(ModelError, match="coupling"):
        splitpinn.solve("fhn", "vanilla-pinn", 5.0, parameters={"I": np.array([0.5, 0.6])},
                        coupling={"weights": np.zeros((2, 2)), "target": "v"})



def _relaxing_detector():
    """dv/dt = (E − v)/τ with a spike detector at v = 1 (no reset, no refractory period)."""
    v, e, tau = sp.symbols("v E tau", real=True)
    return Model(name="relax", states=[State("v", 0.0)], equations={"v": (e - v) / tau},
                 parameters={"E": 2.0, "tau": 5.0}, spike_detector=SpikeDetector("v", 1.0))


def _event_driven(e, tau, weights, delay, t_end):
    """Spike times of the relaxing detector network, exactly and event by event: between
    events v_i(t) = E_i + (v_i − E_i) e^{−(t − s)/τ} (closed form), with upward crossings of 1
    at s + τ ln((v_i − E_i)/(1 − E_i)); the deliveries due at an instant add W[:, j] at once
    and fire the neurons that they lift from below 1 to 1 or above (once per instant, lowest
    index first, its own jumps delivered before the next one fires)."""
    t, v, spikes, pending = 0.0, np.zeros(len(e)), [[] for _ in e], []

    def fire(i):
        spikes[i].append(t)
        pending.append((t + delay, i))

    while True:
        with np.errstate(divide="ignore", invalid="ignore"):
            cross = np.where((v < 1) & (e > 1), t + tau * np.log((v - e) / (1 - e)), np.inf)
        t_next = min(cross.min(), min(pending, default=(np.inf,))[0])
        if t_next > t_end:
            return [np.array(s) for s in spikes]
        v, t = e + (v - e) * np.exp(-(t_next - t) / tau), t_next
        if cross.min() == t_next:  # a crossing between deliveries
            v[np.argmin(cross)] = 1.0
            fire(int(np.argmin(cross)))
            continue
        fired = {i for i, s in enumerate(spikes) if s and s[-1] == t}
        below = v < 1
        while True:  # all deliveries due now at once, then the lowest ready neuron fires
            due = [p for p in pending if p[0] == t]
            for p in due:
                pending.remove(p)
                v = v + weights[:, p[1]]
            past = below & (v >= 1)
            below = np.where(past, below, v < 1)
            ready = [i for i in np.nonzero(past)[0] if i not in fired]
            if not ready:
                if not due:
                    break
                continue
            fired.add(ready[0])
            below[ready[0]] = False
            fire(ready[0])


@pytest.mark.parametrize("method", ["reference", "split-pinn"])
@pytest.mark.parametrize("delay", [0.0, 0.7])
def test_jumps_carry_spike_detectors_past_threshold(method, delay):
    """Neurons with a spike detector and no reset (dv/dt = (E − v)/τ, detector at v = 1):
    neuron 0 (E 2) crosses at τ ln 2 and lifts neuron 1 (E 0.5, below 1 for ever on its
    own) past 1: its spike comes from the jump, at the delivery time; that spike lifts neuron
    2 (E 1.2) part of the way, and neuron 2's natural crossing pulls neuron 0 back below 1
    (W = −1.5), from where it crosses again, and so on.  The spike times equal an exact
    event-driven computation with the closed-form flows (measured: 1.6e-9 ms at most)."""
    e, tau = np.array([2.0, 0.5, 1.2]), 5.0
    weights = np.array([[0.0, 0.0, -1.5], [0.8, 0.0, 0.0], [0.0, 0.3, 0.0]])
    exact = _event_driven(e, tau, weights, delay, 30.0)
    assert len(exact[1]) >= 2 and len(exact[0]) >= 2  # the jumps fire neuron 1, repeatedly
    batch = splitpinn.solve(_relaxing_detector(), method, 30.0, parameters={"E": e},
                            coupling={"weights": weights, "target": "v", "delay": delay})
    for sol, times in zip(batch, exact, strict=True):
        np.testing.assert_allclose(sol.spike_times, times, rtol=0, atol=1e-7)
    # neuron 1's records hold the state just after the jump that fired it
    record = batch[1].events[0]
    assert record.event == "spike" and record.before == record.after
    assert record.before["v"] == pytest.approx(
        0.5 * (1 - math.exp(-exact[1][0] / tau)) + 0.8, abs=1e-8)


def _fhn_network(currents, weights, t_end, a=0.7, b=0.8, tau=12.5):
    """Spike times of FitzHugh-Nagumo neurons coupled by jumps of v, by scipy's DOP853 at
    rtol = atol = 1e-12 on the stacked system (v_1..v_n, w_1..w_n): a terminal event per
    neuron at v = 1 (upwards while armed, downwards to re-arm), the jumps W[:, i] applied
    at neuron i's spike and the integration restarted there."""
    n = len(currents)

    def rhs(t, y):
        v, w = y[:n], y[n:]
        return np.r_[v - v**3 / 3 - w + currents, (v + a - b * w) / tau]

    def crossing(i, armed):
        event = lambda t, y: y[i] - 1.0  # noqa: E731
        event.terminal, event.direction = True, 1 if armed else -1
        return event

    y, t = np.r_[np.full(n, -1.2), np.full(n, -0.625)], 0.0
    armed, spikes = np.ones(n, dtype=bool), [[] for _ in range(n)]
    while True:
        sol = solve_ivp(rhs, (t, t_end), y, "DOP853", rtol=1e-12, atol=1e-12,
                        events=[crossing(i, armed[i]) for i in range(n)])
        hits = [(times[0], i) for i, times in enumerate(sol.t_events) if times.size]
        if not hits:
            return [np.array(s) for s in spikes]
        t, i = min(hits)
        y = sol.y_events[i][0].copy()
        if armed[i]:
            spikes[i].append(t)
            y[:n] += weights[:, i]
            assert np.all(y[:n][armed & (np.arange(n) != i)] < 1)  # no jump fires here
        armed[i] = not armed[i]


def test_adaptive_network_retries_every_neuron_after_a_rejected_step():
    """Two FitzHugh-Nagumo neurons coupled both ways, adaptive split-PINN (rtol 1e-7): the
    neurons march in lockstep, so a step rejected for one is retried by both (the rejection
    counts differ, the accepted steps are the same); the spike times equal DOP853 on the
    stacked system with events (measured 2.1e-7 ms: the error of a solve at rtol 1e-7)."""
    currents, weights = np.array([0.5, 0.35]), np.array([[0.0, 0.25], [0.4, 0.0]])
    exact = _fhn_network(currents, weights, 60.0)
    assert [len(s) for s in exact] == [2, 2]
    batch = splitpinn.solve("fhn", "split-pinn", 60.0, parameters={"I": currents},
                            coupling={"weights": weights, "target": "v"})
    counts = [(s.meta["solver"]["steps_accepted"], s.meta["solver"]["steps_rejected"])
              for s in batch]
    assert counts[0][0] == counts[1][0] and counts[0][1] != counts[1][1] > 0
    for sol, times in zip(batch, exact, strict=True):
        np.testing.assert_allclose(sol.spike_times, times, rtol=0, atol=2e-6)


def test_the_network_kernel_as_plain_python_gives_the_compiled_run():
    """compiled=False runs the same network kernel (kernels.march_network) as plain Python:
    four IF neurons with delayed jumps, the same spikes and traces to the last bit."""
    from splitpinn.analysis.networks import if_neuron

    weights = np.full((4, 4), 0.05)
    np.fill_diagonal(weights, 0.0)
    options = {"parameters": {"I": np.linspace(0.05, 0.2, 4)},
               "coupling": {"weights": weights, "target": "V", "delay": 0.3}}
    fast = splitpinn.solve(if_neuron(), "split-pinn", 100.0, **options)
    slow = splitpinn.solve(if_neuron(), "split-pinn", 100.0, compiled=False, **options)
    for a, b in zip(fast, slow, strict=True):
        assert a.meta["solver"]["compiled"] and not b.meta["solver"]["compiled"]
        assert a.spike_times.size >= 5
        np.testing.assert_array_equal(a.spike_times, b.spike_times)
        np.testing.assert_array_equal(a.y, b.y)
