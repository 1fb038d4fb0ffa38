"""Model files (TOML) and printouts of a model: ``splitpinn show MODEL --format ...``.

A model file holds the arguments of :meth:`splitpinn.Model.from_equations`::

    name = "my-lif"
    description = "leaky integrate-and-fire"
    equations = \"\"\"
    dV/dt = (-(V - V_rest) + R*I_ext)/tau : mV (unless refractory)
    tau : ms (constant)
    ...
    \"\"\"
    threshold = "V >= V_th"
    reset = "V = V_reset"
    refractory = "t_ref"          # or a number of ms
    stimulus = "I"                # I_ext as an expression of t and parameters
    default_preset = "fast"       # optional, like default_dt
    [parameters]                  # numbers in project units, or text with units
    tau = "10*ms"
    [initial]                     # numbers or expressions
    V = "V_rest"
    [presets.fast]
    tau = 5.0

:func:`to_toml` writes such a file for any model (library, Python or text), :func:`load` reads
a ``.toml`` or NeuroML2 ``.nml`` file, and :func:`show` formats a model as ``text``, ``toml``,
``latex`` (an ``align`` block, one line per state, Caputo states as D^α) or ``brian2`` (a
script that runs unchanged in Brian2 2.9: ``run_model(t_end_ms, dt_ms)`` returns the spike
times and traces; :func:`to_brian2`).  Written models read back to the same numbers: unit
symbols are attached where sums, comparisons or function arguments need them, always with
conversion factor 1.
"""

from __future__ import annotations

import keyword
import re
import textwrap
import tomllib
from dataclasses import replace
from pathlib import Path

import numpy as np
import sympy as sp
import tomli_w

from ..declare import units as U
from ..declare.model import Event, I_ext, Model, SpikeDetector, State, t
from ..declare.stimulus import Sampled
from ..errors import ModelError
from ..fractional.history import SAME_STEP

FORMATS = ("text", "toml", "latex", "brian2")
_KEYS = ("name", "description", "equations", "threshold", "reset", "refractory", "stimulus",
         "default_dt", "default_preset", "parameters", "initial", "presets")


def load(path: str | Path) -> Model:
    """The model in a ``.toml`` model file or a NeuroML2 ``.nml`` file; ModelError (naming
    the file, and the line where known) when it cannot be read."""
    path = Path(path)
    if path.suffix not in (".toml", ".nml"):
        raise ModelError(f"{path}: expected a .toml model file or a .nml NeuroML2 file")
    if not path.is_file():
        raise ModelError(f"{path}: no such file")
    if path.suffix == ".nml":
        from .neuroml import load_cell

        return load_cell(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ModelError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start}); save "
                         "the file as UTF-8") from None
    return loads(text, path.stem, str(path))


def loads(text: str, name: str = "model", source: str = "<toml>") -> Model:
    """A model from the text of a TOML model file (``source`` names it in errors)."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ModelError(f"{source}: malformed TOML: {exc}") from None
    unknown = sorted(set(doc) - set(_KEYS))
    if unknown:
        raise ModelError(f"{source}: unknown key(s) {', '.join(unknown)} "
                         f"(known: {', '.join(_KEYS)})")
    if not isinstance(doc.get("equations"), str):
        raise ModelError(f"{source}: 'equations' (a string) is required")
    for key in ("parameters", "initial", "presets"):
        if not isinstance(doc.get(key, {}), dict):
            raise ModelError(f"{source}: '{key}' must be a table")
    for key in ("name", "description", "threshold", "reset", "default_preset"):
        if not isinstance(doc.get(key, ""), str):
            raise ModelError(f"{source}: '{key}' must be a string")
    for preset, values in doc.get("presets", {}).items():
        if not isinstance(values, dict):
            raise ModelError(f"{source}: preset {preset!r} must be a table")
    if not isinstance(doc.get("default_dt", 1.0), int | float):
        raise ModelError(f"{source}: 'default_dt' must be a number (ms)")
    options = {k: v for k, v in doc.items() if k not in ("equations", "name")}
    try:
        return Model.from_equations(doc["equations"], name=doc.get("name", name),
                                    first_line=_first_line(text), **options)
    except ModelError as exc:
        raise ModelError(f"{source}: {exc}") from None


def _first_line(text: str) -> int:
    """The file line of the first line of the ``equations`` string."""
    match = re.search(r'^[ \t]*equations[ \t]*=[ \t]*("""|\'\'\')?[ \t]*(\r?\n)?', text, re.M)
    if match is None:
        return 1
    line = text.count("\n", 0, match.start()) + 1
    return line + 1 if match.group(1) and match.group(2) else line


# -- writing ----------------------------------------------------------------------------------

def to_arguments(model: Model) -> dict:
    """The keyword arguments of :meth:`~splitpinn.declare.model.Model.from_equations` that rebuild
    ``model`` (with ``presets``, ``default_preset`` and ``default_dt``).  Raises ModelError for a
    model with more than one event."""
    if len(model.events) > 1:
        raise ModelError(f"{model.name}: the text form holds one event, the model has "
                         f"{len(model.events)}")
    one, ms = U.registry().dimensionless, U.unit("ms")
    units = _units(model)
    event = model.events[0] if model.events else None
    held = _held(model)

    def text(expr, target):
        return U.text(U.with_units(expr, units, target))

    lines = []
    for s in model.states:
        u = units.get(s.name, one)
        lhs = f"d{s.name}/dt" if s.order == 1 else f"D^({text(s.order, one)}) {s.name}"
        flag = " (unless refractory)" if s.name in held else ""
        lines.append(f"{lhs} = {text(model.equations[s.name], u / ms)} : {U.to_text(u)}{flag}")
    for name, expr in model.auxiliaries.items():
        lines.append(f"{name} = {text(expr, units[name])} : {U.to_text(units[name])}")
    uses_stimulus = any(e.has(I_ext) for e in [*model.equations.values(),
                                                 *model.auxiliaries.values()])
    if uses_stimulus:
        lines.append(f"I_ext : {U.to_text(units['I_ext'])}")
    for name in model.parameters:
        lines.append(f"{name} : {U.to_text(units.get(name, one))} (constant)")
    args = {"equations": "\n".join(lines) + "\n", "name": model.name,
            "description": model.description,
            "parameters": dict(model.parameters),
            "initial": {s.name: _number_or_text(s.initial, text, units.get(s.name, one))
                        for s in model.states},
            "stimulus": _number_or_text(model.stimulus, text, units["I_ext"])}
    if event is not None:
        args["threshold"] = text(event.condition, None)
        args["reset"] = _reset_text(event.reset, text, units)
        args["refractory"] = _number_or_text(event.refractory, text, ms)
    elif model.spike_detector is not None:
        det = model.spike_detector
        args["threshold"] = text(sp.Gt(model.symbol(det.state), sp.Float(det.threshold)), None)
    if model.presets:
        args["presets"] = {k: dict(v) for k, v in model.presets.items()}
    if model.default_preset is not None:
        args["default_preset"] = model.default_preset
    if model.default_dt is not None:
        args["default_dt"] = model.default_dt
    return args


def _units(model: Model) -> dict:
    """The project unit (pint) of each state, parameter, auxiliary and of ``I_ext`` that has
    one (the stimulus's unit inferred from the sums it appears in where not declared)."""
    one, ms = U.registry().dimensionless, U.unit("ms")
    units = {k: U.project_unit(_unit(v, f"{model.name}: unit of {k}"))
             for k, v in model.units.items()}
    for name, expr in model.auxiliaries.items():
        units.setdefault(name, U.project_unit(U.unit_of(expr, units) or one))
    stimulus_unit = U.unit_of(model.stimulus, units)
    if stimulus_unit is None or stimulus_unit.dimensionless:  # numbers, or sin(...) + 1
        stimulus_unit = U.infer(
            "I_ext", [(model.equations[s.name], units.get(s.name, one) / ms)
                      for s in model.states]
            + [(e, units[k]) for k, e in model.auxiliaries.items()], units) or stimulus_unit
    units["I_ext"] = U.project_unit(stimulus_unit or one)
    return units


def _held(model: Model) -> set:
    """The states held during the event's refractory period (none without one)."""
    event = model.events[0] if model.events else None
    return set(event.clamped) if event is not None and event.refractory != 0 else set()


def _unit(text: str, what: str):
    try:
        return U.unit(text)
    except Exception as exc:  # pint raises several kinds
        raise ModelError(f"{what}: {text!r} is not a unit ({exc})") from None


def _number_or_text(value, text, target):
    value = sp.sympify(value)
    return float(value) if value.is_number and not value.free_symbols else text(value, target)


def _reset_text(reset, text, units) -> str:
    """Statements that, run in order, give the simultaneous reset of a Model: a statement
    comes before those that read its state's old value; in a cycle, a state whose update can
    be inverted goes first and the others read its old value through the inverse."""
    todo = {sp.Symbol(k, real=True): sp.sympify(v) for k, v in reset.items()}
    statements = []
    while todo:
        ready = [s for s in todo if not any(v.has(s) for o, v in todo.items() if o != s)]
        if not ready:
            ready = [_invert_first(todo)]
        for s in ready:
            value = todo.pop(s)
            u = units.get(s.name, U.registry().dimensionless)
            increment = sp.expand(value - s)
            if value.has(s) and not increment.has(s):
                statements.append(f"{s.name} += {text(increment, u)}")
            else:
                statements.append(f"{s.name} = {text(value, u)}")
    return "; ".join(statements)


def _invert_first(todo: dict) -> sp.Symbol:
    """A state of ``todo`` whose new value determines its old one; the other values are
    rewritten to read the old value through that inverse."""
    for s, value in todo.items():
        old = sp.Dummy(s.name)
        try:
            solutions = sp.solve(sp.Eq(value.xreplace({s: old}), s), old)
        except NotImplementedError:
            continue
        if len(solutions) == 1:
            for o in todo:
                if o != s:
                    todo[o] = todo[o].xreplace({s: solutions[0]})
            return s
    raise ModelError("the reset's statements read each other's old values in a way that "
                     "cannot be written in order")


def to_toml(model: Model) -> str:
    """``model`` as the text of a TOML model file that :func:`loads` reads back."""
    args = to_arguments(model)
    doc = {k: args[k] for k in _KEYS if k in args and args[k] != ""}
    return tomli_w.dumps(doc, multiline_strings=True)


def to_latex(model: Model) -> str:
    """The state equations as a LaTeX ``align`` block (one line per state; a Caputo state as
    D^α), then the auxiliaries and the stimulus in an ``align*`` block."""
    lines = []
    for s in model.states:
        x = sp.latex(model.symbol(s.name))
        lhs = (rf"\frac{{d {x}}}{{d t}}" if s.order == 1
               else rf"D^{{{sp.latex(sp.sympify(s.order))}}}_t {x}")
        lines.append(f"{lhs} &= {sp.latex(model.equations[s.name])}")
    out = ["\\begin{align}", " \\\\\n".join(lines), "\\end{align}"]
    where = [f"{sp.latex(model.symbol(k))} &= {sp.latex(v)}" for k, v in
             model.auxiliaries.items()]
    if not sp.sympify(model.stimulus).is_zero:
        where.append(f"{sp.latex(I_ext)} &= {sp.latex(model.stimulus)}")
    if where:
        out += ["\\begin{align*}", " \\\\\n".join(where), "\\end{align*}"]
    return "\n".join(out)


#: The Brian2 script's default run: t_end and the fixed step dt (ms).
BRIAN2_T_END, BRIAN2_DT = 100.0, 0.005
#: Names Brian2 or Python keep for themselves (and Brian2's unit names, e.g. ``mV``, ``Hz``;
#: single letters such as ``V`` or ``C`` are none): a state or parameter so named gets a
#: trailing underscore in the script (``lambda`` -> ``lambda_``; Morris-Lecar's ``N`` -> ``N_``).
_BRIAN2_RESERVED = frozenset({
    *keyword.kwlist, "t", "dt", "i", "N", "xi", "lastspike", "not_refractory",
    "t_in_timesteps", "inf", "pi", "e", "exp", "log", "log10", "sqrt", "sin", "cos", "tan",
    "sinh", "cosh", "tanh", "arcsin", "arccos", "arctan", "abs", "sign", "ceil", "floor",
    "clip", "int", "exprel", "rand", "randn", "poisson", "timestep"})

_BRIAN2_SCRIPT = '''\
"""{title}

{usage}

{method_text}

Annotations in EQUATIONS are in base units (volt, amp/meter**2, ...), as Brian2 wants them;
values and literals are in splitpinn's units (ms, mV, uA/cm**2, ...).{notes}
"""

from brian2 import *  # noqa: F403

prefs.codegen.target = "numpy"  # no compiler needed ("cython" runs long simulations faster)

EQUATIONS = """
{equations}"""
{options}METHOD = {method!r}
PARAMETERS = {{
{parameters}}}
PRESETS = {{{presets}}}  # name -> the parameters it changes
DEFAULT_PRESET = {default_preset!r}
# set in this order: numbers, or expressions of the parameters and of the states set before
INITIAL = {{
{initial}}}
# splitpinn's unit of each state: the traces come back in them
UNITS = {{{units}}}
NAMESPACE = {{{namespace}}}  # external names in EQUATIONS


def run_model(t_end_ms={t_end}, dt_ms={dt}, preset=DEFAULT_PRESET, parameters=None,
              initial=None, record=True):
    """Spike times (ms), the trace's times (ms) and {{state: trace}} in splitpinn's units for
    one neuron over [0, t_end_ms]; ``parameters``/``initial`` override values (Brian2
    quantities or expressions), ``record=False`` skips the traces (faster)."""
    neuron = NeuronGroup(1, EQUATIONS, {group_options}method=METHOD,
                         dt=dt_ms * ms)
    values = {{**PARAMETERS, **(PRESETS[preset] if preset is not None else {{}}),
              **(parameters or {{}})}}
    for name, value in {{**values, **INITIAL, **(initial or {{}})}}.items():
        setattr(neuron, name, value)
    objects = [neuron]
    if "spike" in neuron.events:  # a threshold
        spikes = SpikeMonitor(neuron)
        objects.append(spikes)
    if record:
        trace = StateMonitor(neuron, list(UNITS), record=0)
        objects.append(trace)
    Network(*objects).run(t_end_ms * ms, namespace=NAMESPACE)
    spike_times = spikes.t / ms if "spike" in neuron.events else np.zeros(0)
    if not record:
        return spike_times, np.zeros(0), {{}}
    return (spike_times, trace.t / ms,
            {{name: getattr(trace, name)[0] / unit for name, unit in UNITS.items()}})


if __name__ == "__main__":
    import sys

    spike_times, _, _ = run_model(*map(float, sys.argv[1:3]), record=False)
    print("\\n".join(f"{{s:.10g}}" for s in spike_times))
'''


def to_brian2(model: Model) -> str:
    """A Brian2 (2.9) script that simulates ``model`` as a NeuronGroup of one neuron:
    ``run_model(t_end_ms, dt_ms)`` returns its spike times and traces, and run as a script it
    prints the spike times.  Equations are annotated in base units (``volt``,
    ``amp/meter**2``), values are in project units; an event's clamped states carry
    ``(unless refractory)``; a threshold without a reset gets Brian2's form
    ``threshold='V > 0*mV', refractory='V > 0*mV'`` (one spike per upward crossing); a
    recorded stimulus becomes a TimedArray.  Raises ModelError for what Brian2 cannot express:
    fractional orders, more than one event, a stimulus sampled unevenly or interpolated."""
    fractional = [s.name for s in model.states if (sp.sympify(s.order) - 1).is_zero is not True]
    if fractional:
        raise ModelError(f"{model.name}: Brian2 has no fractional (Caputo) derivative, so "
                         f"state(s) {', '.join(fractional)} of order other than 1 cannot be "
                         "written as a Brian2 script")
    if len(model.events) > 1:
        raise ModelError(f"{model.name}: a Brian2 NeuronGroup has one threshold and reset, "
                         f"the model has {len(model.events)} events")
    model, renamed = _brian2_names(model)
    model, capped = _capped(model)
    stimulus, arrays = _timed_arrays(model)
    one, ms = U.registry().dimensionless, U.unit("ms")
    units = _units(model)

    def text(expr, target):
        return U.text(U.with_units(expr, units, target, brian2=True), True)

    held, lines = _held(model), []
    for s in model.states:
        u = units.get(s.name, one)
        flag = " (unless refractory)" if s.name in held else ""
        lines.append(f"d{s.name}/dt = {text(model.equations[s.name], u / ms)} : "
                     f"{U.brian2_unit(u)}{flag}")
    for name, expr in model.auxiliaries.items():
        if name == capped:
            state = model.events[0].condition.lhs
            lines += [f"# {name}: {state} capped at its threshold, the same model below it;",
                      "# rk4's trial stages past the threshold would overflow exp()"]
        lines.append(f"{name} = {text(expr, units[name])} : {U.brian2_unit(units[name])}")
    if any(e.has(I_ext) for e in [*model.equations.values(), *model.auxiliaries.values()]):
        lines.append(f"I_ext = {text(stimulus, units['I_ext'])} : "
                     f"{U.brian2_unit(units['I_ext'])}")
    for name in model.parameters:
        lines.append(f"{name} : {U.brian2_unit(units.get(name, one))} (constant)")

    options = {}
    if model.events:
        event = model.events[0]
        options["THRESHOLD"] = repr(text(event.condition, None))
        options["RESET"] = repr(_reset_text(event.reset, text, units))
        refractory = _number_or_text(event.refractory, text, ms)
        if refractory != 0.0:
            options["REFRACTORY"] = repr(refractory) if isinstance(refractory, str) \
                else _quantity(refractory, ms)
    elif model.spike_detector is not None:  # Brian2's form of "count upward crossings"
        det = model.spike_detector
        condition = text(sp.Gt(model.symbol(det.state), sp.Float(det.threshold)), None)
        options["THRESHOLD"] = options["REFRACTORY"] = repr(condition)

    method, why = _brian2_method(model)
    notes = [f"splitpinn's {old!r} is {new!r} here (a name Python or Brian2 keeps)."
             for old, new in renamed.items()]
    if model.default_preset is not None:
        notes.append(f"PARAMETERS are the defaults; run_model applies preset "
                     f"{model.default_preset!r} unless told otherwise (preset=None: none).")

    def quantity(name, value):
        return _quantity(value, units.get(name, one))

    def entries(values):
        return "".join(f"    {k!r}: {quantity(k, v)},\n" for k, v in values.items())

    initial = {}
    for s in _in_dependency_order(model):
        value = _number_or_text(s.initial, text, units.get(s.name, one))
        initial[s.name] = repr(value) if isinstance(value, str) else quantity(s.name, value)
    presets = "".join(
        f"\n    {p!r}: {{" + ", ".join(f"{k!r}: {quantity(k, v)}" for k, v in values.items())
        + "},"  for p, values in model.presets.items())
    return _BRIAN2_SCRIPT.format(
        title=f"{model.name}: {model.description}".rstrip(": "), name=model.name,
        t_end=BRIAN2_T_END, dt=BRIAN2_DT, method=method,
        usage=textwrap.fill(
            f"A Brian2 (2.9) script written by `splitpinn show {model.name} --format brian2`; "
            f"it runs unchanged.  run_model(t_end_ms={BRIAN2_T_END}, dt_ms={BRIAN2_DT}) "
            "simulates one neuron from t = 0 and returns (spike times in ms, the trace's "
            "times in ms, {state: trace}) with the traces in splitpinn's units ("
            + ", ".join(f"{s.name} in {_unit_text(units.get(s.name, one))}"
                        for s in model.states)
            + ").  Run as a script, `python THIS_FILE.py [T_END_MS [DT_MS]]` prints the "
            "spike times, one per line, in ms.", width=92),
        method_text=textwrap.fill(
            f"Method {method!r} with the fixed step dt_ms: {why}  Brian2 checks the threshold "
            "at the end of each step, resets there and records the spike at the step's "
            "start, so spike times lie within about one step of the exact crossings (and a "
            "reset up to one step late can delay later spikes by as much again per spike).",
            width=92),
        notes="".join("\n" + n for n in notes), equations="\n".join(lines) + "\n",
        options="".join(f"{k} = {v}\n" for k, v in options.items()),
        group_options="".join(f"{k.lower()}={k},\n                         "
                              for k in options),
        parameters=entries(model.parameters), presets=presets + ("\n" if presets else ""),
        default_preset=model.default_preset,
        initial="".join(f"    {k!r}: {v},\n" for k, v in initial.items()),
        units=", ".join(f"{s.name!r}: {_unit_text(units.get(s.name, one))}"
                        for s in model.states),
        namespace=", ".join(f"{k!r}: {v}" for k, v in arrays.items()))


def _unit_text(u) -> str:
    return "1" if u.dimensionless else U.to_text(u)


def _quantity(value: float, u) -> str:
    """A number in unit ``u`` as Brian2 code: ``-65.0*mV``, ``0.02/ms``, ``0.7``."""
    if u.dimensionless:
        return repr(float(value))
    unit_text = U.to_text(u)
    return f"{float(value)!r}{unit_text[1:]}" if unit_text.startswith("1/") \
        else f"{float(value)!r}*{unit_text}"


def _brian2_method(model: Model) -> tuple[str, str]:
    """Brian2's 'exact' where every right-hand side is linear in the states with constant
    coefficients (no t), else 'rk4'; with the reason, for the script's docstring."""
    states = set(model.state_symbols)
    for name in model.state_names:
        rhs = model.expand(model.equations[name])
        if rhs.has(t) or not rhs.is_polynomial(*states) or any(
                sp.diff(rhs, x).free_symbols & states for x in states):
            return "rk4", ("classical 4th-order Runge-Kutta (the equations are not linear "
                           "with constant coefficients); at the default step its error "
                           "is far below the step's effect on spike times.")
    return "exact", ("the linear equations are integrated in closed form, exactly; only "
                     "the threshold, reset and refractory period see the step.")


def _in_dependency_order(model: Model) -> list:
    """The states in an order where each initial value reads only states set before it."""
    todo, done, out = list(model.states), set(), []
    while todo:
        for s in todo:
            needs = {x.name for x in model.expand(sp.sympify(s.initial)).free_symbols
                     } & set(model.state_names) - {s.name}
            if needs <= done:
                out.append(s)
                done.add(s.name)
                todo.remove(s)
                break
        else:
            raise ModelError(f"{model.name}: the initial values of "
                             f"{', '.join(s.name for s in todo)} read each other")
    return out


def _brian2_names(model: Model) -> tuple[Model, dict]:
    """``model`` with the names that Brian2 or Python keep (keywords, ``N``, ``e``, unit
    names such as ``mV``) renamed with trailing underscores; {old: new}."""
    names = [*model.state_names, *model.parameters, *model.auxiliaries]
    taken, new = set(names), {}
    for name in names:
        if name in _BRIAN2_RESERVED or name.startswith("_") or (  # unit names: mV, Hz, ohm
                U.literal(name) is not None and not re.fullmatch(r"[A-Za-z][23]?", name)):
            other = name.lstrip("_") or "x"
            while other in taken or other in _BRIAN2_RESERVED:
                other += "_"
            taken.add(other)
            new[name] = other
    if not new:
        return model, new
    subs = {model.symbol(k): model.symbol(v) for k, v in new.items()}

    def r(expr):
        return expr if isinstance(expr, int | float) else sp.sympify(expr).xreplace(subs)

    def n(key):
        return new.get(key, key)

    det = model.spike_detector
    return replace(
        model, states=[State(n(s.name), r(s.initial), r(s.order)) for s in model.states],
        equations={n(k): r(v) for k, v in model.equations.items()},
        parameters={n(k): v for k, v in model.parameters.items()},
        auxiliaries={n(k): r(v) for k, v in model.auxiliaries.items()},
        stimulus=r(model.stimulus),
        events=[Event(r(e.condition), {n(k): r(v) for k, v in e.reset.items()},
                      r(e.refractory), tuple(n(c) for c in e.clamped), e.name)
                for e in model.events],
        spike_detector=None if det is None else SpikeDetector(n(det.state), det.threshold),
        presets={p: {n(k): v for k, v in values.items()} for p, values in model.presets.items()},
        units={n(k): v for k, v in model.units.items()}, unused_ok=True), new


def _capped(model: Model) -> tuple[Model, str | None]:
    """A state whose right-hand sides hold exp of it (AdEx) blows up in finite time just past
    its threshold; a Runge-Kutta step across the threshold evaluates trial stages there and
    overflows (NaN).  The state is read as min(state, threshold) in the right-hand sides —
    the same model below the threshold, where the reset sends it back — through a new
    auxiliary; returns the model and that auxiliary's name (None where nothing changed)."""
    if len(model.events) != 1:
        return model, None
    event = model.events[0]
    x, c = event.condition.lhs, event.condition.rhs
    states = set(model.state_symbols)
    if not (x in states and x.name in event.reset
            and not model.expand(c).free_symbols & (states | {t})):
        return model, None
    if not any(x in f.free_symbols for name in model.state_names
               for f in model.expand(model.equations[name], stimulus=False).atoms(sp.exp)):
        return model, None
    name = f"{x.name}_capped"
    while name in (*model.state_names, *model.parameters, *model.auxiliaries):
        name += "_"
    y = model.symbol(name)
    return replace(
        model, equations={k: v.xreplace({x: y}) for k, v in model.equations.items()},
        auxiliaries={name: sp.Piecewise((x, sp.Le(x, c)), (c, True)),
                     **{k: v.xreplace({x: y}) for k, v in model.auxiliaries.items()}},
        unused_ok=True), name


def _timed_arrays(model: Model) -> tuple[sp.Expr, dict]:
    """A recorded stimulus (:func:`splitpinn.declare.stimulus.sampled`) as a Brian2 TimedArray: the
    stimulus with each recording replaced by a call of its array, and {name: TimedArray
    code}.  Brian2's TimedArray holds each value for one step of a uniform grid, so only
    ``"previous"`` recordings on a uniform grid can be written."""
    calls = sorted(model.stimulus.atoms(Sampled), key=str)
    if not calls:
        return model.stimulus, {}
    subs, arrays = {}, {}
    for k, call in enumerate(calls, start=1):
        f = type(call)
        steps = np.diff(f.times)
        if f.interpolation != "previous" or (
                steps.size and not np.allclose(steps, steps[0], rtol=SAME_STEP, atol=0)):
            raise ModelError(f"{model.name}: Brian2's TimedArray holds values on a uniform "
                             "grid; this recorded stimulus is "
                             + ("interpolated linearly" if f.interpolation != "previous"
                                else "sampled at uneven times"))
        name = "I_recorded" if len(calls) == 1 else f"I_recorded{k}"
        step = float(steps[0]) if steps.size else 1.0
        values = ", ".join(repr(float(v)) for v in f.values)
        arrays[name] = f"TimedArray([{values}], dt={step!r}*ms)"
        call_class = type(name, (_TimedArrayCall,), {})
        subs[call] = call_class(call.args[0] - float(f.times[0]))
    return model.stimulus.xreplace(subs), arrays


class _TimedArrayCall(sp.Function):
    """A TimedArray's value at a time (ms, dimensionless here); Brian2 code calls the array
    with a time in units."""

    nargs = 1

    def _brian2str(self, printer):
        return f"{type(self).__name__}({printer._print(sp.expand(self.args[0] * sp.Symbol('ms')))})"


def show(model: Model, fmt: str = "text") -> str:
    """``model`` as ``text`` (its printout), ``toml``, ``latex`` or ``brian2``."""
    writers = {"text": str, "toml": to_toml, "latex": to_latex, "brian2": to_brian2}
    if fmt not in writers:
        raise ModelError(f"unknown format {fmt!r} (known: {', '.join(FORMATS)})")
    text = writers[fmt](model)
    return text if text.endswith("\n") else text + "\n"
