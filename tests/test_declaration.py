"""A declaration that forgives what does not matter and refuses silent mistakes: symbols match
by name, keys may be Symbols, unused parameters and resets past the threshold are errors, the
printout shows everything, and refractoriness holds only what the condition reads (Brian2)."""

import math
import pickle

import numpy as np
import pytest
import sympy as sp

import splitpinn
import splitpinn.cli
from splitpinn import Event, I_ext, Model, ModelError, State, models


def adaptive_lif(plain: bool = False, **changes) -> Model:
    """tau V' = -(V - E) - w + I_ext, tau_w w' = a (V - E) - w; V >= V_th -> V = V_r,
    w += b, refractory 2 ms.  ``plain``: symbols without assumptions and Symbol keys."""
    kw = {} if plain else {"real": True}
    V, w, tau, tau_w, a, b, E, V_th, V_r, I = sp.symbols(
        "V w tau tau_w a b E V_th V_r I", **kw)
    key = (lambda s: s) if plain else str
    spec = dict(
        name="adlif", states=[State(key(V), E), State("w", 0.0)],
        equations={key(V): (-(V - E) - w + I_ext) / tau, key(w): (a * (V - E) - w) / tau_w},
        parameters={key(tau): 10.0, "tau_w": 50.0, "a": 0.5, key(b): 2.0, "E": -65.0,
                    "V_th": -50.0, "V_r": -65.0, "I": 30.0},
        stimulus=I, events=[Event(V >= V_th, {key(V): V_r, key(w): w + b}, refractory=2.0)],
        units={key(V): "mV", "w": "mV", "tau": "ms"})
    spec.update(changes)
    return Model(**spec)


def test_plain_symbols_and_symbol_keys_equal_the_real_twin():
    plain, real = adaptive_lif(plain=True), adaptive_lif()
    assert plain.state_names == ["V", "w"] and list(plain.parameters) == list(real.parameters)
    a = splitpinn.solve(plain, "reference", t_end=60.0, dt=0.05)
    b = splitpinn.solve(real, "reference", t_end=60.0, dt=0.05)
    assert len(b.spike_times) >= 3
    np.testing.assert_allclose(a.y, b.y, rtol=0, atol=1e-12)
    np.testing.assert_allclose(a.spike_times, b.spike_times, rtol=0, atol=1e-12)


def test_overrides_keyed_by_symbols():
    V, I = sp.symbols("V I")
    model = adaptive_lif()
    by_symbol = model.bind({I: 40.0}, {V: -60.0})
    by_name = model.bind({"I": 40.0}, {"V": -60.0})
    assert by_symbol.parameters == by_name.parameters and by_symbol.parameters["I"] == 40.0
    np.testing.assert_array_equal(by_symbol.y0, by_name.y0)
    assert by_symbol.y0.tolist() == [-60.0, 0.0]


def test_symbol_with_other_assumptions_is_the_same_state():
    x_pos = sp.Symbol("x", positive=True)
    model = Model("decay", [State("x", 1.0)], {"x": -sp.Symbol("k") * x_pos}, {"k": 2.0})
    assert model.bind().rhs(0.0, [3.0])[0] == -6.0


# -- silent mistakes become errors ---------------------------------------------------------

def test_forgotten_stimulus_names_the_unused_parameter():
    with pytest.raises(ModelError, match=r"adlif: parameter\(s\) I used by no equation.*"
                                         r"did you mean stimulus=I\?"):
        adaptive_lif(stimulus=0.0)


def test_unused_parameter_is_named_unless_allowed():
    params = {"tau": 10.0, "tau_w": 50.0, "a": 0.5, "b": 2.0, "E": -65.0, "V_th": -50.0,
              "V_r": -65.0, "I": 30.0, "spare": 1.0}
    with pytest.raises(ModelError, match=r"parameter\(s\) spare used by no"):
        adaptive_lif(parameters=params)
    assert "spare" in adaptive_lif(parameters=params, unused_ok=True).parameters


def test_parameters_used_only_by_stimulus_refractory_or_order_count_as_used():
    x, k, amp, t_ref, alpha = sp.symbols("x k amp t_ref alpha", real=True)
    model = Model("m", [State("x", 0.0, alpha)], {"x": -k * x + I_ext},
                  {"k": 1.0, "amp": 2.0, "t_ref": 1.0, "alpha": 0.5},
                  stimulus=splitpinn.declare.stimulus.step(amp, on=1.0),
                  events=[Event(x >= 1, {"x": 0.0}, refractory=t_ref)])
    assert set(model.parameters) == {"k", "amp", "t_ref", "alpha"}


def test_with_stimulus_may_leave_the_old_stimulus_parameter_unused():
    model = models.get("hh").with_stimulus(splitpinn.declare.stimulus.step(5.0, on=1.0))
    assert model.unused_ok and "I" in model.parameters


@pytest.mark.parametrize("v_r, rel", [(-40.0, ">="), (-50.0, ">=")])
def test_reset_at_or_past_threshold_names_the_event(v_r, rel):
    """Without a refractory period (with one such a reset is legal: as in Brian2, the neuron
    fires again when the period ends)."""
    V, w, b, V_th, V_r = sp.symbols("V w b V_th V_r", real=True)
    params = {"tau": 10.0, "tau_w": 50.0, "a": 0.5, "b": 2.0, "E": -65.0, "V_th": -50.0,
              "V_r": v_r, "I": 30.0}
    with pytest.raises(ModelError, match=r"event 'V >= V_th': the reset \(V = V_r; w = b \+ w\) "
                                         r"lands at or past its threshold with the default"):
        adaptive_lif(parameters=params, events=[Event(V >= V_th, {"V": V_r, "w": w + b})])
    assert adaptive_lif(parameters=params).events[0].refractory == 2.0  # legal with 2 ms


def test_reset_past_threshold_by_override_names_the_event(capsys):
    model = models.get("lif")  # V_th = -50; without a refractory period (t_ref 0)
    with pytest.raises(ModelError, match=r"lif: event 'V >= V_th': the reset \(V = V_reset\) "
                                         r"lands at or past its threshold with these parameters$"):
        model.bind({"V_reset": -40.0, "t_ref": 0.0})
    with pytest.raises(ModelError, match=r"with these parameters \(neuron 2\)"):
        model.bind({"V_reset": np.array([-70.0, -60.0, -50.0]), "t_ref": 0.0})
    with pytest.raises(ModelError, match=r"with these parameters \(neuron 1\)"):
        model.bind({"V_reset": -40.0, "t_ref": np.array([2.0, 0.0])})
    assert model.bind({"V_reset": np.array([-70.0, -60.0])}).batch == 2
    assert model.bind({"V_reset": -40.0}).events[0].refractory == 2.0  # legal with t_ref 2 ms
    status = splitpinn.cli.main(["solve", "lif", "--method", "reference", "--t-end", "10",
                                 "--set", "V_reset=-45", "--set", "t_ref=0", "--quiet"])
    err = capsys.readouterr().err
    assert status == 2 and "lands at or past its threshold" in err and len(err.splitlines()) == 1


def test_models_pickle_for_worker_processes():
    for name in models.names():
        model = models.get(name)
        back = pickle.loads(pickle.dumps(model))
        assert back == model, name
        a, b = model.bind(), back.bind()
        np.testing.assert_array_equal(a.rhs(0.5, a.y0), b.rhs(0.5, b.y0))
    with pytest.raises(ModelError, match="lands at or past"):  # the checks survive the trip
        pickle.loads(pickle.dumps(models.get("lif"))).bind({"V_reset": -40.0, "t_ref": 0.0})


def test_reset_exactly_at_a_strict_threshold_is_allowed():
    V, w, b, V_th = sp.symbols("V w b V_th", real=True)
    model = adaptive_lif(events=[Event(V > V_th, {"V": V_th, "w": w + b}, refractory=2.0)],
                         unused_ok=True)  # V_r
    assert model.events[0].name == "V > V_th"


def test_reset_past_threshold_in_a_preset_names_the_preset():
    v, u, a, b, c, d = sp.symbols("v u a b c d", real=True)
    with pytest.raises(ModelError, match=r"event 'spike'.*lands at or past its threshold with "
                                         r"preset hot"):
        Model("izh", [State("v", -65.0), State("u", b * v)],
              {"v": 0.04 * v**2 + 5 * v + 140 - u + I_ext, "u": a * (b * v - u)},
              {"a": 0.02, "b": 0.2, "c": -65.0, "d": 8.0}, stimulus=10.0,
              events=[Event(v >= 30, {"v": c, "u": u + d}, name="spike")],
              presets={"RS": {"c": -65.0}, "hot": {"c": 35.0}})


def test_unit_of_an_unknown_name_is_refused():
    with pytest.raises(ModelError, match=r"unit given for 'Q'"):
        adaptive_lif(units={"Q": "mV"})


def test_every_library_model_builds():
    for name in models.names():
        assert models.get(name).name == name


@pytest.mark.parametrize("name", ["lif", "izhikevich", "hh", "morris-lecar", "frac-lif", "adex",
                                  "fo-hh", "frac-izhikevich"])
def test_library_models_state_their_units(name):
    model = models.get(name)
    assert model.units[model.state_names[0]] == "mV"
    assert model.units.get("I") in ("nA", "pA", "µA/cm²", "mV/ms")


# -- the printout -----------------------------------------------------------------------------

def test_print_shows_everything():
    text = str(adaptive_lif(presets={"slow": {"tau": 20.0}}))
    for part in ["model adlif", "dV/dt = (E + I_ext - V - w)/tau", "[V(0) = E mV]",
                 "dw/dt = (a*(-E + V) - w)/tau_w", "stimulus: I_ext = I",
                 "event: when V >= V_th: V = V_r; w = b + w; refractory 2 ms holding V",
                 "tau = 10 ms", "V_th = -50", "presets (default None):", "slow: tau=20"]:
        assert part in text, part
    hh = str(models.get("hh"))
    assert "alpha_m = XOverOneMinusExp(V/10 + 4)" in hh and "g_Na = 120 mS/cm²" in hh
    assert "spikes: V crossing 0 mV upward" in hh
    assert "D^(alpha) V" in str(models.get("frac-lif"))


# -- refractoriness as Brian2 does it ----------------------------------------------------------

def test_default_clamp_holds_the_states_of_the_condition():
    assert adaptive_lif().events[0].clamped == ("V",)
    assert models.get("lif").events[0].clamped == ("V",)
    # documented behaviour kept explicitly: frac-Izhikevich holds v and u
    assert models.get("frac-izhikevich").events[0].clamped == ("v", "u")
    V, w, b, V_th, V_r = sp.symbols("V w b V_th V_r", real=True)
    assert adaptive_lif(events=[Event(V >= V_th, {"V": V_r, "w": w + b}, 2.0, clamp=())]) \
        .events[0].clamped == ()


def test_adaptation_keeps_evolving_during_the_refractory_period():
    """Adaptive LIF, reference solver: during the 2 ms after a spike V stays at V_r = E, so
    w' = (a (V - E) - w) / tau_w = -w / tau_w: w decays as w+ exp(-(t - t_s) / tau_w)."""
    sol = splitpinn.solve(adaptive_lif(), "reference", t_end=60.0, dt=0.01)
    assert len(sol.spike_times) >= 3
    for ts in sol.spike_times[:3]:
        inside = (sol.t > ts + 1e-6) & (sol.t < ts + 2.0 - 1e-6)
        np.testing.assert_array_equal(sol["V"][inside], -65.0)
        w = sol["w"][inside]
        w_after = w[0] * math.exp((sol.t[inside][0] - ts) / 50.0)
        w_before = sol["w"][sol.t < ts][-1]  # one grid step (0.01 ms, |w'| < 0.5) before
        assert abs(w_after - (w_before + 2.0)) < 0.005  # the reset w += b
        np.testing.assert_allclose(w, w_after * np.exp(-(sol.t[inside] - ts) / 50.0),
                                   rtol=1e-8)
        assert w[0] - w[-1] > 0.01  # it moves: a visible decay, not a plateau
    # clamp=("V", "w") widens the hold: w is then constant during the refractory period
    V, w, b, V_th, V_r = sp.symbols("V w b V_th V_r", real=True)
    held = adaptive_lif(events=[Event(V >= V_th, {"V": V_r, "w": w + b}, 2.0,
                                      clamp=("V", "w"))])
    sol = splitpinn.solve(held, "reference", t_end=30.0, dt=0.01)
    ts = sol.spike_times[0]
    inside = (sol.t > ts + 1e-6) & (sol.t < ts + 2.0 - 1e-6)
    assert np.ptp(sol["w"][inside]) == 0.0 and np.ptp(sol["V"][inside]) == 0.0
