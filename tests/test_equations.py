"""Models from Brian2-style equation strings: the library's LIF, HH and fractional LIF written
with unit literals give the library's reference solutions; malformed text gives errors with
their position."""

import re

import numpy as np
import pytest
import sympy as sp
import tomli_w

import splitpinn
from splitpinn import Model, models
from splitpinn.cli import main
from splitpinn.errors import ModelError

LIF = """
# tau dV/dt = -(V - V_rest) + R I
dV/dt = (-(V - V_rest) + R*I_ext)/tau : volt (unless refractory)
tau : second (constant)
R : ohm (constant)
V_rest : volt (constant)
"""

HH = """
dV/dt = (I_ext - I_Na - I_K - g_L*(V - E_L))/C : mV
dm/dt = alpha_m*(1 - m) - beta_m*m : 1
dh/dt = alpha_h*(1 - h) - beta_h*h : 1
dn/dt = alpha_n*(1 - n) - beta_n*n : 1
I_Na = g_Na*m**3*h*(V - E_Na) : uA/cm**2
I_K = g_K*n**4*(V - E_K) : uA/cm**2
alpha_m = 1/exprel(-(V + 40*mV)/(10*mV))/ms : 1/ms
beta_m = 4*exp(-(V + 65*mV)/(18*mV))/ms : 1/ms
alpha_h = 0.07*exp(-(V + 65*mV)/(20*mV))/ms : 1/ms
beta_h = 1/(1 + exp(-(V + 35*mV)/(10*mV)))/ms : 1/ms
alpha_n = 0.01/mV*(V + 55*mV)/(1 - exp(-(V + 55*mV)/(10*mV)))/ms : 1/ms
beta_n = 0.125*exp(-(V + 65*mV)/(80*mV))/ms : 1/ms
C : uF/cm**2 (constant)
g_Na : msiemens/cm**2 (constant)
g_K : msiemens/cm**2 (constant)
g_L : msiemens/cm**2 (constant)
E_Na : mV (constant)
E_K : mV (constant)
E_L : mV (constant)
I : uA/cm**2 (constant)
"""


def _lif_from_text(**overrides):
    options = dict(name="lif-text",
                   parameters={"tau": "10*ms", "R": "10*Mohm", "V_rest": "-65*mV",
                               "I": "2*nA"},
                   initial={"V": "V_rest"}, threshold="V >= -50*mV", reset="V = -65*mV",
                   refractory="2*ms", stimulus="I")
    return Model.from_equations(LIF, **{**options, **overrides})


def _close(a, b, tol):
    assert a.t.shape == b.t.shape and np.allclose(a.t, b.t, rtol=0, atol=1e-12)
    for name in b.states:
        assert np.max(np.abs(a[name] - b[name])) <= tol * (1 + np.max(np.abs(b[name]))), name
    np.testing.assert_allclose(a.spike_times, b.spike_times, rtol=0, atol=tol)


def test_lif_with_refractoriness_equals_library_lif():
    model = _lif_from_text()
    assert model.parameters == {"tau": 10.0, "R": 10.0, "V_rest": -65.0, "I": 2.0}
    assert model.units == {"V": "mV", "tau": "ms", "R": "MΩ", "V_rest": "mV", "I": "nA"}
    assert model.events[0].clamp == ("V",)
    ours = splitpinn.solve(model, "reference", t_end=60.0, dt=0.05)
    library = splitpinn.solve("lif", "reference", t_end=60.0, dt=0.05)
    # ISI = tau ln(20/5) + t_ref: the refractory period is part of the comparison
    np.testing.assert_allclose(np.diff(library.spike_times), 10 * np.log(4) + 2, atol=1e-8)
    _close(ours, library, 1e-9)


def test_hh_with_unit_literals_equals_library_hh():
    model = Model.from_equations(
        HH, name="hh-text",
        parameters=dict(C="1*uF/cm**2", g_Na="120*msiemens/cm**2", g_K="36*msiemens/cm**2",
                        g_L="0.3*msiemens/cm**2", E_Na="50*mV", E_K="-77*mV",
                        E_L="-54.387*mV", I="10*uA/cm**2"),
        initial={"V": "-65*mV", "m": "alpha_m/(alpha_m + beta_m)",
                 "h": "alpha_h/(alpha_h + beta_h)", "n": "alpha_n/(alpha_n + beta_n)"},
        threshold="V > 0*mV", stimulus="I")
    ours = splitpinn.solve(model, "reference", t_end=20.0, dt=0.0125)
    library = splitpinn.solve("hh", "reference", t_end=20.0, dt=0.0125)
    assert len(library.spike_times) == 2
    _close(ours, library, 1e-9)


def test_caputo_state_equals_library_frac_lif():
    text = ("D^alpha V = (-(V - V_rest) + R*I_ext)/tau : mV (unless refractory)\n"
            + "\n".join(f"{p} : {u}" for p, u in [("tau", "ms"), ("R", "Mohm"), ("V_rest", "mV"),
                                                   ("V_reset", "mV"), ("V_th", "mV"),
                                                   ("t_ref", "ms"), ("I", "nA"), ("alpha", "1")]))
    lib = models.get("frac-lif")
    model = Model.from_equations(
        text, name="frac-lif-text", parameters={**lib.parameters, "tau": "20*ms"},
        initial={"V": "V_rest"}, threshold="V >= V_th", reset="V = V_reset",
        refractory="t_ref", stimulus="I")
    assert model.states[0].order == model.symbol("alpha")
    ours = splitpinn.solve(model, "reference", t_end=2.0, dt=0.01)
    library = splitpinn.solve("frac-lif", "reference", t_end=2.0, dt=0.01)
    _close(ours, library, 1e-12)


def test_units_are_converted_to_project_units():
    model = Model.from_equations(
        "dV/dt = -(V - E)/tau : volt\nI_leak = k*(V - E) : amp/metre**2\n"
        "E : volt\ntau : second\nk : siemens/metre**2",
        name="units", parameters={"E": "-0.07*volt", "tau": "0.5*second",
                                  "k": "10*siemens/metre**2"})
    assert model.parameters == {"E": -70.0, "tau": 500.0, "k": 1.0}  # mS/cm² = 10 S/m²
    assert model.units == {"V": "mV", "I_leak": "µA/cm²", "E": "mV", "tau": "ms", "k": "mS/cm²"}
    k, V, E = (model.symbol(n) for n in "kVE")
    assert model.auxiliaries["I_leak"] == k * (V - E)
    assert model.equations["V"] == -(model.symbol("V") - model.symbol("E")) / model.symbol("tau")


def test_reset_statements_run_in_order():
    text = "dv/dt = 0 : 1\ndw/dt = 0 : 1"
    model = Model.from_equations(text, name="seq", threshold="v > 1", reset="v = 0; w += v + 2",
                                 initial={"v": 0.5})
    reset = model.events[0].reset
    assert reset["v"] == 0 and reset["w"] == model.symbol("w") + 2  # w reads the new v


def test_threshold_without_reset_records_spikes():
    model = Model.from_equations("dV/dt = 1*mV/ms : mV", name="ramp", threshold="V > 3*mV")
    assert not model.events and model.spike_detector.threshold == 3.0
    solution = splitpinn.solve(model, "reference", t_end=5.0, dt=0.01)
    np.testing.assert_allclose(solution.spike_times, [3.0], atol=1e-9)


@pytest.mark.parametrize("text, options, expected", [
    ("dV/dt = -V/tau + foo(V) : 1\ntau : ms", {"parameters": {"tau": 1}},
     "line 1, column 18: unknown function 'foo'"),
    ("dV/dt = 1/ms : 1\n\ndW/dt = -(W + 1)/ms : 1\ndX/dt = -(X + 1/ms : 1", {},
     "line 4, column 10: '(' was never closed"),
    ("dV/dt = -V/taw : 1", {}, "line 1, column 12: undefined symbol 'taw'"),
    ("dV/dt = 1*mV/ms : mV\n# comment\ndV/dt = 2*mV/ms : mV", {},
     "line 3, column 1: 'V' is already declared on line 1"),
    ("dV/dt = 1*mV/ms : mV\ndW/dt =   : mV", {}, "line 2, column 8: state 'W' has no equation"),
    ("dV/dt = 1*mV/ms : mV\ndW/dt = (V + 5*ms)/ms : mV", {},
     "line 2, column 14: inconsistent units in '+': mV and ms"),
    ("dV/dt = 1*mV/ms : mV", {"threshold": "V > 1*mV", "reset": "V = 0*mV; X = 1"},
     "reset, column 11: reset of unknown variable 'X'"),
    ("dV/dt = V : mV", {}, "line 1, column 9: inconsistent units: the expression is in mV, "
                           "expected mV/ms"),
    # issue 18: noise named as such; an annotation that contradicts its equation is blamed
    ("dV/dt = (-V + xi*mV*sqrt(ms))/ms : mV", {},
     "line 1, column 15: stochastic terms (xi) are not supported"),
    ("dV/dt = -V/ms : mV\ndw/dt = V/ms : amp", {},
     "line 2, column 16: the unit annotation 'amp' contradicts the equation of w: the "
     "right-hand side has units of mV/ms, so the annotation should be mV"),
    ("dV/dt = (E_L - V)/ms : amp\nE_L : volt", {"parameters": {"E_L": "-65*mV"}},
     "line 1, column 24: the unit annotation 'amp' contradicts the equation of V: with V in mV "
     "the equation is consistent, so the annotation should be mV"),
    ("x = 2*mV : amp\ndV/dt = -V/ms : mV", {},
     "line 1, column 12: the unit annotation 'amp' contradicts the equation of x: the "
     "right-hand side has units of mV, so the annotation should be mV"),
    ("dV/dt = -V/ms : 2*mV", {}, "line 1, column 17: the unit '2*mV' has a number in it"),
    ("dV/dt = 1*mV/ms : mV (unless refractori)", {}, "line 1, column 22: unknown flag"),
    ("dV/dt = __import__('os').getcwd() : 1", {}, "line 1, column 9: only named functions"),
    ("dV/dt = V.real : 1", {}, "line 1, column 9: unsupported syntax (Attribute)"),
    # before: TypeError (sympy cannot do arithmetic with True or a comparison)
    ("dV/dt = True/ms : 1", {}, "line 1, column 9: a truth value (a comparison, True or False) "
                                "is not a number here: write int(...)"),
    ("dV/dt = (V > 1)*2/ms : 1", {}, "line 1, column 10: a truth value"),
    ("dV/dt = -(V > 1)/ms : 1", {}, "line 1, column 11: a truth value"),
    # before: a line break inside the message
    ("dV/dt = Piecewise((V, 3))/ms : 1", {},
     "line 1, column 9: Piecewise: Second argument must be a Boolean, not `Integer`"),
    ("dV/dt = 'a'/ms : 1", {}, "line 1, column 9: unexpected constant 'a'"),
    ("dV/dt = exp/ms : 1", {}, "line 1, column 9: function 'exp' used without arguments"),
    ("dV/dt = ~V/ms : 1", {}, "line 1, column 9: unsupported operator"),
    ("dV/dt = 2**(1*ms)/ms : 1", {}, "line 1, column 13: the exponent has units (ms)"),
    ("dV/dt = (1*mV)**V/ms : 1", {}, "column 17: a quantity with units needs a number as exp"),
    ("dV/dt = 2^V/ms : 1", {}, "line 1, column 9: '^' is not a power: write '**'"),
    ("dV/dt = (V << 2)/ms : 1", {}, "line 1, column 10: unsupported operator (LShift)"),
    ("dV/dt = (0 < V < 1)/ms : 1", {}, "column 10: chained comparisons are not supported"),
    ("dV/dt = exp(V, base=2)/ms : 1", {}, "column 9: exp() takes no keyword arguments"),
    ("dV/dt = exp(V, V)/ms : 1", {}, "column 9: exp(): exp takes exactly 1 argument (2 given)"),
    # before: the message named the package's helper (_clip(), <lambda>())
    ("dV/dt = clip(V, 0)/ms : 1", {},
     "column 9: clip(): clip() missing 1 required positional argument: 'hi'"),
    ("dV/dt = log10(V, 2)/ms : 1", {},
     "column 9: log10(): log10() takes 1 positional argument but 2 were given"),
    ("dV/dt = int(V)/ms : 1", {}, "column 9: int() takes one comparison with >, >=, < or <="),
    ("dV/dt = Piecewise(V)/ms : 1", {}, "column 19: Piecewise expects (value, condition) pairs"),
    ("dV/dt = 1/ms", {}, "line 1, column 13: expected ': unit' at the end of the line"),
    ("dV/dt = 1/ms : ", {}, "column 15: expected a unit after ':' (1 for dimensionless)"),
    ("D^ V = 1/ms : 1", {}, "line 1, column 5: expected a state name after the order"),
    ("t : ms\ndV/dt = 1/ms : 1", {}, "line 1, column 1: 't' is reserved"),
    ("I_ext = 1*nA : nA\ndV/dt = 1/ms : 1", {}, "line 1, column 1: I_ext is the stimulus"),
    ("dV/dt = 1/ms : 1\nx = 2 : 1 (unless refractory)", {},
     "line 2, column 1: only states can be '(unless refractory)'"),
    ("dV/dt = 1/ms : 1\nx = 2 : furlong", {},
     "line 2, column 9: undefined symbol 'furlong' (in the unit)"),
    ("dV/dt = -V/tau : 1\ntau : ms", {}, "parameter 'tau' has no value (give it in parameters=)"),
    ("x = 1 : 1", {}, "the equations declare no state (expected 'dX/dt = ... : unit')"),
    ("dV/dt = 1/ms : 1", {"parameters": {"V": 1}}, "parameter V: 'V' is a state, not a param"),
    ("dV/dt = 1/ms : 1", {"parameters": {"1x": 1}}, "'1x' cannot be a parameter name"),
    ("dV/dt = 1/ms : 1", {"parameters": {"p": "1*"}}, "parameter p, column 1: invalid syntax"),
    ("dV/dt = 1/ms : 1", {"initial": {"Q": 1}}, "initial value for 'Q', which is not a state"),
    ("dV/dt = 1/ms : 1", {"threshold": "V"}, "threshold, column 1: expected a comparison"),
    ("dV/dt = 1/ms : 1", {"threshold": "t > 1*ms"},
     "threshold: without a reset, the threshold must compare a state with a constant"),
    ("dV/dt = 1/ms : 1", {"reset": "V = 0"}, "reset: a reset needs a threshold"),
    # before: the refractory period was silently dropped
    ("dV/dt = 1/ms : 1", {"refractory": "2*ms"}, "refractory: a refractory period needs a thr"),
    ("dV/dt = 1/ms : 1", {"threshold": "V > 1", "refractory": "2*ms"},
     "refractory: a refractory period needs a reset"),
    ("dV/dt = 1/ms : 1", {"threshold": "V > 1", "reset": "V = (V > 1)"},
     "reset, column 6: expected a value, not a comparison"),
    ("dV/dt = 1/ms : 1", {"threshold": "V > 1", "reset": "  ;  "}, "reset: no statement"),
    ("dV/dt = 1/ms : 1", {"threshold": "V > 1", "reset": "V = = 0"},
     "reset, column 5: invalid syntax"),
    ("dV/dt = 1/ms : 1", {"threshold": "V > 1", "reset": "V + 1"},
     "reset, column 1: expected 'state = value' or 'state += value'"),
    ("dV/dt = 1/ms : 1", {"threshold": "V > 1", "reset": "V = 0", "refractory": "2*mV"},
     "refractory, column 1: inconsistent units: the expression is in mV, expected ms"),
    ("dV/dt = 1/ms : 1", {"stimulus": "foo(t)"}, "stimulus, column 1: unknown function 'foo'"),
])
def test_malformed_equations_name_the_place(text, options, expected, tmp_path, capsys):
    with pytest.raises(ModelError) as info:
        Model.from_equations(text, name="bad", **options)
    assert expected in str(info.value)
    assert "\n" not in str(info.value)
    # the same text in a model file: one line on stderr, exit status 2, lines of the file
    path = tmp_path / "bad.toml"
    path.write_text(tomli_w.dumps({"equations": text, **options}, multiline_strings=True))
    assert main(["show", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(path) in err
    place = re.search(r"line (\d+)", expected)
    # equations = """ (then the text from line 2) or a one-line string on line 1
    file_line = int(place.group(1)) + ("\n" in text) if place else None
    assert (f"line {file_line}," if place else expected) in err


def test_python_keywords_can_be_names():
    model = Model.from_equations("dV/dt = (I_ext - lambda)/ms : 1\nlambda : 1",
                                 name="kw", parameters={"lambda": 0.5}, stimulus="1")
    assert model.equations["V"] == model.symbol("I_ext") - model.symbol("lambda")
    with pytest.raises(ModelError, match="line 1, column 26: undefined symbol 'foo'"):
        Model.from_equations("dV/dt = (lambda - lambda*foo)/ms : 1\nlambda : 1", name="kw",
                             parameters={"lambda": 0.5})
    with pytest.raises(ModelError, match="reset, column 18: undefined symbol 'bar'"):
        Model.from_equations("dV/dt = -V/ms : 1\nlambda : 1", name="kw", threshold="V > 1",
                             reset="V = lambda; V += bar", parameters={"lambda": 0.5})


def test_brian2_functions_map_to_the_safe_ones():
    model = Model.from_equations(
        "dV/dt = (1/exprel(-V/10 - 4) - V)/ms : 1\nI_ext : 1", name="fns",
        stimulus="int(t >= 5*ms) + int(2*ms > t) + (t/ms) % 3", initial={"V": 1.0})
    V, t = model.symbol("V"), splitpinn.t
    assert model.equations["V"] == splitpinn.declare.functions.XOverOneMinusExp(V / 10 + 4) - V
    assert model.stimulus == (sp.Heaviside(t - 5, 1) + sp.Heaviside(2 - t, 0)
                              + sp.Mod(t, 3))
    np.testing.assert_allclose(splitpinn.declare.stimulus.breakpoints(model.stimulus, 7.0),
                               [2.0, 3.0, 5.0, 6.0])
