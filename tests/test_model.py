"""Model declaration: validation errors, stimulus helpers, binding, initial values.

Every expected number here is computed by hand from the published model equations and presets
(or plain arithmetic), not read back from the package.
"""

import math

import numpy as np
import pytest
import sympy as sp

from splitpinn import models, stimulus
from splitpinn.declare.model import Event, I_ext, Model, ModelError, State, t

x, y, k, tau = sp.symbols("x y k tau", real=True)


def linear(**changes) -> Model:
    """x' = -k x + y + I_ext, y' = -y / tau, with I_ext = 0.5 (a 2-state linear system)."""
    spec = dict(name="lin", states=[State("x", 1.0), State("y", 2.0)],
                equations={"x": -k * x + y + I_ext, "y": -y / tau},
                parameters={"k": 2.0, "tau": 4.0}, stimulus=0.5)
    spec.update(changes)
    return Model(**spec)


# -- declaration validation ------------------------------------------------------------------

@pytest.mark.parametrize("changes, message", [
    (dict(equations={"x": -k * x + sp.Symbol("z", real=True), "y": -y / tau}),
     r"unknown symbol\(s\) z in equation of x"),
    (dict(equations={"x": -k * x}), r"state 'y' has no equation"),
    (dict(equations={"x": -x, "y": -y, "k": x}), r"equation for 'k', which is not a state"),
    (dict(states=[State("x", None), State("y", 0.0)]), r"state 'x' has no initial value"),
    (dict(states=[State("x", sp.Symbol("q")), State("y", 0.0)]),
     r"initial value of x uses q"),
    (dict(states=[State("x", 1.0, 0.0), State("y", 0.0)]), r"order of x must lie in \(0, 1\]"),
    (dict(states=[State("x", 1.0, 1.5), State("y", 0.0)]), r"order of x .*got 1\.5"),
    (dict(states=[State("x", 1.0, -0.2), State("y", 0.0)]), r"order of x .*got -0\.2"),
    (dict(states=[State("x", 1.0, sp.Symbol("beta")), State("y", 0.0)]),
     r"order of x uses beta"),
    (dict(parameters={"k": math.nan, "tau": 4.0}), r"parameter k = nan is not finite"),
    (dict(parameters={"k": 2.0, "tau": math.inf}), r"parameter tau = inf is not finite"),
    (dict(parameters={"k": "fast", "tau": 4.0}), r"parameter k: 'fast' is not a number"),
    (dict(states=[State("x", math.nan), State("y", 0.0)]),
     r"initial value of x.* not (a )?finite"),
    (dict(equations={"x": sp.Symbol("A", real=True), "y": -y},
          auxiliaries={"A": sp.Symbol("B", real=True), "B": sp.Symbol("A", real=True) + 1}),
     r"auxiliaries \['A', 'B'\] depend on each other in a cycle"),
    (dict(equations={"x": sp.Symbol("A", real=True), "y": -y},
          auxiliaries={"A": 2 * sp.Symbol("A", real=True)}),
     r"auxiliaries \['A'\] depend on each other in a cycle"),
    (dict(parameters={"k": 2.0, "tau": 4.0, "x": 1.0}),
     r"name 'x' is both a state and a parameter"),
    (dict(states=[State("x", 1.0), State("x", 2.0)], equations={"x": -x}),
     r"name 'x' is both a state and a state"),
    (dict(auxiliaries={"k": 2 * x}), r"name 'k' is both a parameter and a"),
    (dict(parameters={"k": 2.0, "tau": 4.0, "t": 1.0}), r"parameter name 't' is reserved"),
    (dict(stimulus=x), r"stimulus may depend only on t and parameters"),
    (dict(events=[Event(x >= 1, {"w": 0})]), r"unknown state 'w'"),
    (dict(events=[Event(x <= 1, {"x": 0})]), r"lhs >= rhs"),
    (dict(events=[Event(x >= 1, {"x": 0}, refractory=-1.0)]), r"refractory period must be .*>= 0"),
    (dict(presets={"A": {"k": 1.0}}, default_preset="B"), r"default preset 'B' is not defined"),
    (dict(presets={"A": {"zz": 1.0}}), r"preset A sets unknown parameter 'zz'"),
])
def test_bad_declaration_names_the_problem(changes, message):
    with pytest.raises(ModelError, match=message):
        linear(**changes)


@pytest.mark.parametrize("kwargs, message", [
    (dict(preset="ZZ"), r"unknown preset 'ZZ'"),
    (dict(parameters={"Q": 1.0}), r"unknown parameter 'Q'"),
    (dict(initial={"W": 1.0}), r"unknown state 'W'"),
    (dict(parameters={"k": math.nan}), r"parameter k: nan is not a finite number"),
    (dict(parameters={"k": "abc"}), r"parameter k: 'abc' is not a number"),
    (dict(initial={"x": -math.inf}), r"initial value of x: -inf is not a finite number"),
])
def test_bad_binding_names_the_problem(kwargs, message):
    with pytest.raises(ModelError, match=message):
        linear().bind(**kwargs)


@pytest.mark.parametrize("name, parameter, state", [
    ("frac-lif", "alpha", "V"), ("frac-izhikevich", "alpha", "v"), ("fo-hh", "eta", "n"),
])
@pytest.mark.parametrize("value", [0.0, 1.5, -0.2])
def test_order_outside_unit_interval_via_parameter(name, parameter, state, value):
    with pytest.raises(ModelError, match=rf"order of {state} must lie in \(0, 1\], got {value:g}"):
        models.get(name).bind({parameter: value})


def test_order_parameter_inside_unit_interval_is_accepted():
    assert models.get("frac-lif").bind({"alpha": 1.0}).orders.tolist() == [1.0]
    bound = models.get("frac-lif").bind({"alpha": 0.3})
    assert bound.orders.tolist() == [0.3] and bound.fractional
    # fo-hh: the preset picks which gate is fractional (states V m h n)
    assert models.get("fo-hh").bind({"eta": 0.7}, preset="m").orders.tolist() == [1, 0.7, 1, 1]


def test_unknown_library_model():
    with pytest.raises(ModelError, match=r"unknown model 'nosuch'"):
        models.get("nosuch")


# -- stimulus helpers ---------------------------------------------------------------------

def _numeric(expr):
    return sp.lambdify(t, expr, modules="numpy")


def test_constant_stimulus():
    f = _numeric(stimulus.constant(2.5))
    assert float(np.broadcast_to(f(np.array([0.0, 7.0])), 2)[1]) == 2.5


def test_step_stimulus():
    f = _numeric(stimulus.step(2.0, on=5.0, off=10.0))
    times = np.array([0.0, 4.99, 5.0, 7.0, 9.99, 10.0, 12.0])
    np.testing.assert_array_equal(f(times), [0, 0, 2, 2, 2, 0, 0])
    g = _numeric(stimulus.step(-1.5, on=3.0))  # stays on
    np.testing.assert_array_equal(g(np.array([2.9, 3.0, 1000.0])), [0, -1.5, -1.5])


def test_pulse_train_stimulus():
    # pulses [10, 12), [15, 17), [20, 22) and nothing after the third
    f = _numeric(stimulus.pulse_train(3.0, start=10.0, width=2.0, period=5.0, count=3))
    times = np.array([0.0, 9.9, 10.0, 11.9, 12.0, 14.0, 15.5, 17.5, 20.0, 21.9, 22.0, 25.0,
                      25.5, 31.0])
    expected = [0, 0, 3, 3, 0, 0, 3, 0, 3, 3, 0, 0, 0, 0]
    np.testing.assert_array_equal(f(times), expected)
    unbounded = _numeric(stimulus.pulse_train(1.0, start=0.0, width=1.0, period=4.0))
    np.testing.assert_array_equal(unbounded(np.array([400.5, 401.5, 402.0])), [1, 0, 0])
    with pytest.raises(ValueError, match="pulse width"):
        stimulus.pulse_train(1.0, start=0.0, width=5.0, period=4.0)


def test_sinusoid_stimulus():
    # f = 50 Hz with t in ms: 2π·50·t/1000; at t = 5 ms the argument is π/2 (+ phase)
    f = _numeric(stimulus.sinusoid(2.0, 50.0, offset=1.0, phase=0.3))
    times = np.array([0.0, 5.0, 10.0, 13.7])
    expected = [1 + 2 * math.sin(0.3), 1 + 2 * math.cos(0.3), 1 - 2 * math.sin(0.3),
                1 + 2 * math.sin(2 * math.pi * 50 * 13.7e-3 + 0.3)]
    np.testing.assert_allclose(f(times), expected, rtol=0, atol=1e-12)


def test_shaped_stimulus_scaled_by_parameter_reaches_rhs():
    """dx/dt = I_ext with a step of amplitude A (a parameter): rhs(t) is the stimulus."""
    amp = sp.Symbol("A", real=True)
    model = Model("drive", [State("x", 0.0)], {"x": I_ext}, {"A": 1.0},
                  stimulus=stimulus.step(amp, on=1.0, off=2.0))
    bound = model.bind({"A": 4.0})
    got = [bound.rhs(time, [0.0])[0] for time in (0.5, 1.0, 1.5, 2.0, 2.5)]
    assert got == [0.0, 4.0, 4.0, 0.0, 0.0]
    swapped = model.with_stimulus(stimulus.sinusoid(amp, 250.0)).bind({"A": 3.0})
    assert swapped.rhs(1.0, [0.0])[0] == pytest.approx(3.0, abs=1e-12)  # 250 Hz: π/2 at 1 ms


# -- binding a model declared from scratch --------------------------------------------------

def test_linear_model_rhs_equals_hand_values():
    bound = linear().bind({"k": 3.0})
    assert bound.names == ["x", "y"]
    np.testing.assert_array_equal(bound.y0, [1.0, 2.0])
    # x' = -3·1 + 2 + 0.5 = -0.5, y' = -2/4 = -0.5
    np.testing.assert_allclose(bound.rhs(0.0, bound.y0), [-0.5, -0.5], atol=1e-15)
    # x' = -3·(-2) + 8 + 0.5 = 14.5, y' = -8/4 = -2
    np.testing.assert_allclose(bound.rhs(3.0, [-2.0, 8.0]), [14.5, -2.0], atol=1e-15)
    # several points at once: shape (n_states, m)
    pts = np.array([[1.0, -2.0, 0.0], [2.0, 8.0, 0.0]])
    np.testing.assert_allclose(bound.rhs(0.0, pts), [[-0.5, 14.5, 0.5], [-0.5, -2.0, 0.0]],
                               atol=1e-15)
    assert np.all(bound.orders == 1.0) and not bound.fractional


def test_parameter_resolution_order():
    model = linear(presets={"slow": {"k": 0.5}, "fast": {"k": 9.0}}, default_preset="slow")
    assert model.bind().parameters == {"k": 0.5, "tau": 4.0}
    assert model.bind(preset="fast").parameters["k"] == 9.0
    assert model.bind({"k": 1.25}, preset="fast").parameters["k"] == 1.25  # override wins
    assert model.parameters["k"] == 2.0  # the declaration's default is untouched


def test_initial_value_override():
    bound = linear().bind(initial={"y": -3.0})
    np.testing.assert_array_equal(bound.y0, [1.0, -3.0])


# -- library models: parameters and initial values from the literature ----------------------

IZHIKEVICH_2003 = {  # (a, b, c, d), Izhikevich (2003) Fig. 2
    "RS": (0.02, 0.2, -65, 8), "IB": (0.02, 0.2, -55, 4), "CH": (0.02, 0.2, -50, 2),
    "FS": (0.1, 0.2, -65, 2), "LTS": (0.02, 0.25, -65, 2), "TC": (0.02, 0.25, -65, 0.05),
    "RZ": (0.1, 0.26, -65, 2),
}


@pytest.mark.parametrize("preset", list(IZHIKEVICH_2003))
def test_izhikevich_preset_and_initial_u_equals_b_v(preset):
    a, b, c, d = IZHIKEVICH_2003[preset]
    bound = models.get("izhikevich").bind(preset=preset)
    assert [bound.parameters[p] for p in "abcd"] == [a, b, c, d]
    np.testing.assert_allclose(bound.y0, [-65.0, b * -65.0], rtol=1e-14)
    moved = models.get("izhikevich").bind(preset=preset, initial={"v": -70.0})
    np.testing.assert_allclose(moved.y0, [-70.0, b * -70.0], rtol=1e-14)


def test_izhikevich_default_preset_is_rs():
    assert models.get("izhikevich").bind().preset == "RS"


def _hh_rates(v):
    """The design's HH rate functions, written out by hand."""
    return {
        "m": (0.1 * (v + 40) / (1 - math.exp(-(v + 40) / 10)), 4 * math.exp(-(v + 65) / 18)),
        "h": (0.07 * math.exp(-(v + 65) / 20), 1 / (1 + math.exp(-(v + 35) / 10))),
        "n": (0.01 * (v + 55) / (1 - math.exp(-(v + 55) / 10)),
              0.125 * math.exp(-(v + 65) / 80)),
    }


def _hh_steady(v):
    return [a / (a + b) for a, b in _hh_rates(v).values()]


def test_hh_parameters_and_gates_at_steady_state():
    bound = models.get("hh").bind()
    assert bound.names == ["V", "m", "h", "n"]
    assert bound.parameters == {"C": 1.0, "g_Na": 120.0, "g_K": 36.0, "g_L": 0.3, "E_Na": 50.0,
                                "E_K": -77.0, "E_L": -54.387, "I": 10.0}
    np.testing.assert_allclose(bound.y0, [-65.0, *_hh_steady(-65.0)], rtol=1e-12)
    # the textbook resting values m ≈ 0.0529, h ≈ 0.5961, n ≈ 0.3177
    np.testing.assert_allclose(bound.y0[1:], [0.0529, 0.5961, 0.3177], atol=1e-4)
    # the gates follow an overridden initial voltage
    moved = models.get("hh").bind(initial={"V": -60.0})
    np.testing.assert_allclose(moved.y0, [-60.0, *_hh_steady(-60.0)], rtol=1e-12)


def test_hh_rhs_equals_hand_formula():
    bound = models.get("hh").bind({"I": 7.5})
    v, m, h, n = -52.3, 0.2, 0.45, 0.5
    rates = _hh_rates(v)
    dv = (7.5 - 120 * m**3 * h * (v - 50) - 36 * n**4 * (v + 77) - 0.3 * (v + 54.387)) / 1.0
    dgates = [a * (1 - g) - b * g for (a, b), g in zip(rates.values(), (m, h, n), strict=True)]
    np.testing.assert_allclose(bound.rhs(0.0, [v, m, h, n]), [dv, *dgates], rtol=1e-12)


def test_morris_lecar_initial_n_at_steady_state():
    bound = models.get("morris-lecar").bind()
    n_inf = 0.5 * (1 + math.tanh((-60.0 - 2.0) / 30.0))
    np.testing.assert_allclose(bound.y0, [-60.0, n_inf], rtol=1e-14)


def test_fhn_rhs_equals_hand_formula():
    bound = models.get("fhn").bind({"I": 0.3})
    v, w = 0.8, -0.2
    expected = [v - v**3 / 3 - w + 0.3, (v + 0.7 - 0.8 * w) / 12.5]
    np.testing.assert_allclose(bound.rhs(0.0, [v, w]), expected, rtol=1e-14)


def test_lif_event_reset_and_refractory():
    bound = models.get("lif").bind({"V_reset": -70.0, "t_ref": 3.0})
    (event,) = bound.events
    g = event.values(np.zeros(3), np.array([[-51.0], [-50.0], [-49.0]]))
    assert g[1] == 0.0  # g = V - V_th crosses zero at threshold
    assert g[0] < 0 < g[2]
    assert event.apply_rows(np.zeros(1), np.array([[-50.0]])).tolist() == [[-70.0]]
    assert event.refractory == 3.0
    # tau V' = -(V - V_rest) + R I = -(-60 + 65) + 20 = 15 with tau = 10
    assert bound.rhs(0.0, [-60.0])[0] == pytest.approx(1.5, abs=1e-14)
