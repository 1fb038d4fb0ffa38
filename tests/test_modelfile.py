"""Model files and printouts: every library model and preset survives show --format toml ->
file -> solve, and the Brian2 form -> from_equations, with the same reference solution;
malformed files are errors with their position; LaTeX has every state's derivative."""

import ast

import numpy as np
import pytest
import sympy as sp

import splitpinn
from splitpinn import Model, models
from splitpinn.cli import main
from splitpinn.declare import units as U
from splitpinn.errors import ModelError
from splitpinn.io.modelfile import load, loads, show

CASES = [(name, preset) for name in models.names()
         for preset in [None, *[p for p in models.get(name).presets
                                if p != models.get(name).default_preset]]]


def _same_solution(a: Model, b: Model, preset=None):
    fractional = any(sp.sympify(s.order) != 1 for s in a.states)
    # the fractional (L1) reference costs O(N^2): a short run
    t_end, dt = (2.0, 0.01) if fractional else (10.0, 0.05)
    ref = splitpinn.solve(a, "reference", t_end=t_end, dt=dt, preset=preset)
    new = splitpinn.solve(b, "reference", t_end=t_end, dt=dt, preset=preset)
    assert ref.t.shape == new.t.shape
    for name in ref.states:
        np.testing.assert_allclose(new[name], ref[name], rtol=0,
                                   atol=1e-12 * (1 + np.max(np.abs(ref[name]))), err_msg=name)
    np.testing.assert_allclose(new.spike_times, ref.spike_times, rtol=0, atol=1e-12)


@pytest.mark.parametrize("name, preset", CASES)
def test_toml_round_trip_gives_the_same_solution(name, preset, tmp_path, capsys):
    assert main(["show", name, "--format", "toml"]) == 0
    path = tmp_path / f"{name}.toml"
    path.write_text(capsys.readouterr().out)
    model = splitpinn.api.resolve_model(str(path))
    library = models.get(name)
    assert model.state_names == library.state_names
    assert model.parameters == library.parameters and model.presets == library.presets
    _same_solution(library, model, preset)


@pytest.mark.parametrize("name", models.names())
def test_brian2_form_gives_the_same_solution(name):
    """The Brian2 script's equations, threshold, reset and values read back (in base-unit
    annotations, so perhaps in other project units: AdEx's w in nA, not pA) to the same
    model; names Brian2 keeps (lambda, N) come back renamed; fractional models are refused.
    The expressions differ (AdEx reads a capped V, its currents come back in nA), so the
    adaptive reference takes other steps: agreement to its tolerance, not to rounding."""
    library = models.get(name)
    if any((sp.sympify(s.order) - 1).is_zero is not True for s in library.states):
        with pytest.raises(ModelError, match="no fractional"):
            show(library, "brian2")
        return
    model = Model.from_equations(**_from_brian2_code(show(library, "brian2"), name))
    assert len(model.state_names) == len(library.state_names)
    t_end, dt = 10.0, 0.05
    ref = splitpinn.solve(library, "reference", t_end=t_end, dt=dt)
    new = splitpinn.solve(model, "reference", t_end=t_end, dt=dt)
    for old_name, new_name in zip(library.state_names, model.state_names, strict=True):
        scale = 1.0
        if old_name in library.units:
            scale = U.factor(U.unit(model.units[new_name]), U.unit(library.units[old_name]))
        np.testing.assert_allclose(new[new_name] * scale, ref[old_name], rtol=0,
                                   atol=1e-7 * (1 + np.max(np.abs(ref[old_name]))),
                                   err_msg=old_name)
    np.testing.assert_allclose(new.spike_times, ref.spike_times, rtol=0, atol=1e-7)


def _from_brian2_code(code: str, name: str) -> dict:
    """The from_equations arguments in the Brian2 script from show(..., "brian2"), read with
    ast: EQUATIONS (its I_ext line is the stimulus), THRESHOLD, RESET and REFRACTORY (a
    threshold without a reset has REFRACTORY = THRESHOLD, Brian2's form of a spike
    detector), PARAMETERS and INITIAL."""
    values = {}
    for stmt in ast.parse(code).body:
        if isinstance(stmt, ast.Assign) and isinstance(stmt.targets[0], ast.Name):
            values[stmt.targets[0].id] = stmt.value

    def text(node):
        return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) \
            else ast.unparse(node)

    lines = values["EQUATIONS"].value.strip().splitlines()
    args = {"name": name, "equations": "\n".join(x for x in lines if not x.startswith("I_ext ="))}
    stimulus = [x for x in lines if x.startswith("I_ext =")]
    if stimulus:
        args["stimulus"] = stimulus[0].split("=", 1)[1].rsplit(":", 1)[0].strip()
    for key in ("THRESHOLD", "RESET", "REFRACTORY"):
        if key in values:
            args[key.lower()] = text(values[key])
    if "reset" not in args:
        args.pop("refractory", None)
    for key in ("PARAMETERS", "INITIAL"):
        args[key.lower()] = {k.value: text(v) for k, v in zip(values[key].keys,
                                                               values[key].values, strict=True)}
    return args


def test_file_keeps_units_of_a_text_model(tmp_path):
    model = Model.from_equations(
        "dV/dt = (-(V - E_L) + R*I_ext)/tau : volt (unless refractory)\nR : Mohm",
        name="units", parameters={"E_L": "-0.065*volt", "tau": "10*ms", "R": 10, "I": "2*nA"},
        initial={"V": "E_L"}, threshold="V > -50*mV", reset="V = -65*mV", refractory=2.0,
        stimulus="I")
    text = show(model, "toml")
    assert "dV/dt = (E_L + I_ext*R - V)/tau : mV (unless refractory)" in text
    assert "E_L : mV (constant)" in text and 'reset = "V = -65*mV"' in text
    path = tmp_path / "units.toml"
    path.write_text(text)
    again = load(path)
    assert again.units == model.units
    _same_solution(model, again)


def test_latex_has_every_state_derivative():
    for name in ("hh", "frac-izhikevich"):
        model = models.get(name)
        latex = show(model, "latex")
        body = latex.split("\\begin{align}")[1].split("\\end{align}")[0]
        assert latex.count("\\begin{align}") == latex.count("\\end{align}") == 1
        assert body.count("&=") == len(model.states)
        for s in model.states:
            x = sp.latex(model.symbol(s.name))
            lhs = rf"\frac{{d {x}}}{{d t}}" if s.order == 1 else rf"D^{{\alpha}}_t {x}"
            assert f"{lhs} &= {sp.latex(model.equations[s.name])}" in body
        assert latex.count("{") == latex.count("}")


@pytest.mark.parametrize("name", models.names())
def test_latex_lines_typeset(name):
    """Each line typesets with matplotlib's mathtext (which lacks cases: Piecewise lines are
    left to LaTeX)."""
    from matplotlib.mathtext import MathTextParser

    parser = MathTextParser("path")
    for line in show(models.get(name), "latex").splitlines():
        if not line.startswith("\\begin") and not line.startswith("\\end") \
                and "cases" not in line:
            parser.parse("$" + line.rstrip("\\ ").replace("&=", "=") + "$")


def test_latex_parses_back():
    pytest.importorskip("antlr4", reason="sympy's parse_latex needs antlr4-python3-runtime")
    from sympy.parsing.latex import parse_latex

    model = models.get("fhn")
    for s in model.states:
        line = next(x for x in show(model, "latex").splitlines() if x.startswith(r"\frac{d "
                                                                            + s.name))
        rhs = line.split("&=")[1].rstrip("\\ ")
        parsed = parse_latex(rhs).subs({sp.Symbol(n): model.symbol(n) for n in
                                        ["v", "w", "a", "b", "tau", "I_{ext}"]})
        assert sp.simplify(parsed - model.equations[s.name]) == 0


@pytest.mark.parametrize("text, expected", [
    ('name = "x"\nequations = """\ndV/dt = 1/ms : 1\n"""\nparameters = { a = }\nreset = ""',
     "f.toml: malformed TOML: Invalid value (at line 5, column 20)"),
    ('equations = """\ndV/dt = 1/ms : 1\ndW/dt = foo(W) : 1\n"""',
     "f.toml: line 3, column 9: unknown function 'foo'"),
    ('equations = "dV/dt = 1/ms : 1"\nthreshold = "V > 1"\nreset = "W = 0"',
     "f.toml: reset, column 1: reset of unknown variable 'W'"),
    ('equations = "dV/dt = 1/ms : 1"\ncolour = "red"', "unknown key(s) colour"),
    ('name = "x"', "f.toml: 'equations' (a string) is required"),
    ("equations = 5", "f.toml: 'equations' (a string) is required"),
    ('equations = "dV/dt = 1/ms : 1"\nparameters = 3', "f.toml: 'parameters' must be a table"),
    ('equations = "dV/dt = 1/ms : 1"\nthreshold = 5', "f.toml: 'threshold' must be a string"),
    ('equations = "dV/dt = 1/ms : 1"\npresets = {a = 3}', "f.toml: preset 'a' must be a table"),
    ('equations = "dV/dt = 1/ms : 1"\ndefault_dt = "x"',
     "f.toml: 'default_dt' must be a number (ms)"),
    ('equations = "dV/dt = -V/tau : 1\\ntau : ms"\nparameters = {tau = "10*mV"}',
     "f.toml: parameter tau, column 1: inconsistent units: the expression is in mV, expected ms"),
])
def test_malformed_files_name_the_place(text, expected, tmp_path, capsys):
    with pytest.raises(ModelError, match=None) as info:
        loads(text, source="f.toml")
    assert expected in str(info.value)
    path = tmp_path / "f.toml"
    path.write_text(text)
    assert main(["show", str(path)]) == 2
    err = capsys.readouterr().err
    assert expected.replace("f.toml", str(path)) in err and err.count("\n") == 1


def test_a_model_file_that_is_not_utf8_is_bad_input(tmp_path, capsys):
    """Before: exit 3, 'internal error: UnicodeDecodeError'."""
    path = tmp_path / "latin.toml"
    path.write_bytes('equations = "dV/dt = 1/ms : 1"  # Répertoire\n'.encode("latin-1"))
    with pytest.raises(ModelError, match="not UTF-8 text"):
        load(path)
    out = tmp_path / "x.npz"
    assert main(["solve", str(path), "--method", "reference", "--t-end", "1",
                 "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{path}: not UTF-8 text" in err and "save the file as" in err
    assert not out.exists()


def test_show_text_and_unknown_format(capsys):
    assert main(["show", "lif"]) == 0
    assert capsys.readouterr().out == show(models.get("lif"), "text")
    with pytest.raises(ModelError, match="unknown format"):
        show(models.get("lif"), "pdf")


def test_unit_of_a_constant_stimulus_is_inferred_from_the_equations():
    model = Model.from_equations("dV/dt = I_ext/C : mV\nC : pF\nI_ext : pA", name="ramp",
                                 parameters={"C": "0.1*nF"}, stimulus="0.3*nA")
    assert model.parameters == {"C": 100.0} and float(model.stimulus) == pytest.approx(300)
    text = show(model, "toml")
    assert "I_ext : pA" in text and "stimulus = 300.0" in text
    _same_solution(model, loads(text))


def test_forms_that_hold_one_event_refuse_a_model_with_two():
    V, W = sp.symbols("V W", real=True)
    two = Model(name="two", states=[splitpinn.State("V", 0.0), splitpinn.State("W", 0.0)],
                equations={"V": sp.Integer(1), "W": sp.Integer(2)}, parameters={},
                events=[splitpinn.Event(V - 1 >= 0, {"V": 0.0}),
                        splitpinn.Event(W - 1 >= 0, {"W": 0.0})])
    assert "W" in show(two, "text") and show(two, "latex")
    with pytest.raises(ModelError, match="two: the text form holds one event, the model has 2"):
        show(two, "toml")
    with pytest.raises(ModelError, match="Brian2 NeuronGroup has one threshold and reset, the "
                                         "model has 2 events"):
        show(two, "brian2")
