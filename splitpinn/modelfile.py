"""Model files (TOML) and printouts of a model: ``splitpinn show MODEL --format ...``.

A model file holds the arguments of :func:`splitpinn.equations.from_equations`::

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
``latex`` (an ``align`` block, one line per state, Caputo states as D^α) or ``brian2`` (Brian2
code).  Written models read back to the same numbers: unit symbols are attached where sums,
comparisons or function arguments need them, always with conversion factor 1.
"""

from __future__ import annotations

import keyword
import re
import tomllib
from pathlib import Path

import sympy as sp
import tomli_w

from . import units as U
from .errors import ModelError
from .model import I_ext, Model

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
    return loads(path.read_text(), path.stem, str(path))


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

def to_arguments(model: Model, brian2: bool = False) -> dict:
    """The keyword arguments of :func:`~splitpinn.equations.from_equations` that rebuild
    ``model`` (with ``presets``, ``default_preset`` and ``default_dt``); ``brian2`` writes
    functions as Brian2 has them (:func:`splitpinn.units.text`).  Raises ModelError for a
    model with more than one event."""
    if len(model.events) > 1:
        raise ModelError(f"{model.name}: the text form holds one event, the model has "
                         f"{len(model.events)}")
    one, ms = U.registry().dimensionless, U.unit("ms")
    units = {k: U.project_unit(_unit(v, f"{model.name}: unit of {k}"))
             for k, v in model.units.items()}
    for name, expr in model.auxiliaries.items():
        units.setdefault(name, U.project_unit(U.unit_of(expr, units) or one))
    stimulus_unit = U.unit_of(model.stimulus, units) or U.infer(
        "I_ext", [(model.equations[s.name], units.get(s.name, one) / ms) for s in model.states]
        + [(e, units[k]) for k, e in model.auxiliaries.items()], units)
    units["I_ext"] = U.project_unit(stimulus_unit or one)
    event = model.events[0] if model.events else None
    held = set(event.clamped) if event is not None and event.refractory != 0 else set()

    def text(expr, target):
        return U.text(U.with_units(expr, units, target), brian2)

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


def to_brian2(model: Model) -> str:
    """Brian2 code declaring ``model`` as a NeuronGroup of one neuron."""
    args = to_arguments(model, brian2=True)
    eqs = args["equations"]
    if not sp.sympify(model.stimulus).is_zero and "I_ext :" in eqs:
        unit = eqs.split("I_ext :", 1)[1].split("\n", 1)[0].strip()
        eqs = eqs.replace(f"I_ext : {unit}\n", f"I_ext = {args['stimulus']} : {unit}\n")
    options = [f"threshold={args['threshold']!r}"] if "threshold" in args else []
    if "reset" in args:
        options.append(f"reset={args['reset']!r}")
    refractory = args.get("refractory", 0.0)
    if refractory != 0.0:
        options.append(f"refractory={refractory!r}" if isinstance(refractory, str)
                       else f"refractory={refractory!r}*ms")
    caputo = ["# D^order X = ... is a Caputo derivative (splitpinn); Brian2 has none"] \
        if any(s.order != 1 for s in model.states) else []
    out = ["from brian2 import *", "",
           f"# {model.name}: {model.description}".rstrip(": "), *caputo,
           f"eqs = '''\n{eqs}'''",
           f"neuron = NeuronGroup(1, eqs, {', '.join([*options, 'method=' + repr('rk4')])})"]
    for name, value in [*args["parameters"].items(), *args["initial"].items()]:
        unit = U.to_text(U.project_unit(U.unit(model.units[name]))) \
            if name in model.units else "1"
        text = repr(value) if isinstance(value, str) or unit == "1" else f"{value!r}*{unit}"
        out.append(f"setattr(neuron, {name!r}, {text})" if keyword.iskeyword(name)
                   else f"neuron.{name} = {text}")
    return "\n".join(out) + "\n"


def show(model: Model, fmt: str = "text") -> str:
    """``model`` as ``text`` (its printout), ``toml``, ``latex`` or ``brian2``."""
    writers = {"text": str, "toml": to_toml, "latex": to_latex, "brian2": to_brian2}
    if fmt not in writers:
        raise ModelError(f"unknown format {fmt!r} (known: {', '.join(FORMATS)})")
    text = writers[fmt](model)
    return text if text.endswith("\n") else text + "\n"
