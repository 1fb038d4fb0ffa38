"""NeuroML2 point-neuron cells as models (read with libNeuroML).

Supported cells: ``iafCell``, ``iafRefCell``, ``izhikevichCell``, ``izhikevich2007Cell``,
``adExIaFCell`` and ``fitzHughNagumoCell``, with the dynamics of the NeuroML2 core types
(NeuroML2CoreTypes/Cells.xml).  Each becomes Brian2-style equations for
:meth:`splitpinn.Model.from_equations`, which converts the file's units into project units.
A ``pulseGenerator`` (``pulseGeneratorDL`` for the dimensionless ``izhikevichCell``) that a
network's ``explicitInput`` or ``inputList`` attaches to the cell becomes the stimulus, a step
(:func:`splitpinn.declare.stimulus.step`) of amplitude parameter ``I`` (``I_<id>`` when there are
several).  A cell with no input attached is driven by a constant current parameter ``I``, 0 by
default (nA for the IaF cells, pA for AdEx and izhikevich2007Cell, dimensionless for
izhikevichCell; ``--set I=...``).  Each attribute must have the dimension NeuroML2 gives it;
errors name the line and column of the element or attribute in the file.
``fitzHughNagumoCell`` (time in seconds, no spike event) records spikes as upward crossings of
V = 1.  Any other element (another cell type, input, synapse or projection) is a
:class:`~splitpinn.errors.ModelError` naming it.
"""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import sympy as sp

from ..declare import units as U
from ..declare.model import Model
from ..declare.stimulus import step
from ..errors import ModelError

#: Per cell type: equations, threshold, reset, refractory, initial values, input kind.
CELLS = {
    "iafCell": dict(
        equations="dv/dt = (leakConductance*(leakReversal - v) + I_ext)/C : mV",
        threshold="v > thresh", reset="v = reset", initial={"v": "reset"}),
    "iafRefCell": dict(
        equations="dv/dt = (leakConductance*(leakReversal - v) + I_ext)/C : mV "
                  "(unless refractory)",
        threshold="v > thresh", reset="v = reset", refractory="refract",
        initial={"v": "reset"}),
    "izhikevichCell": dict(
        equations="dv/dt = (0.04*v**2/mV + 5*v + (140 - U + I_ext)*mV)/ms : mV\n"
                  "dU/dt = a*(b*v/mV - U)/ms : 1",
        threshold="v > thresh", reset="v = c*mV; U += d", initial={"v": "v0", "U": "v0*b/mV"},
        dimensionless_input=True),
    "izhikevich2007Cell": dict(
        equations="dv/dt = (k*(v - vr)*(v - vt) - u + I_ext)/C : mV\n"
                  "du/dt = a*(b*(v - vr) - u) : pA",
        threshold="v > vpeak", reset="v = c; u += d", initial={"v": "v0"}),
    "adExIaFCell": dict(
        equations="dv/dt = (-gL*(v - EL) + gL*delT*exp((v - VT)/delT) - w + I_ext)/C : mV "
                  "(unless refractory)\n"
                  "dw/dt = (a*(v - EL) - w)/tauw : pA",
        threshold="v > thresh", reset="v = reset; w += b", refractory="refract",
        initial={"v": "EL"}),
    "fitzHughNagumoCell": dict(
        equations="dV/dt = (V - V**3/3 - W + I)/second : 1\n"
                  "dW/dt = 0.08*(V + 0.7 - 0.8*W)/second : 1",
        threshold="V > 1", initial={}),
}
#: Per cell type: its attributes and, for each, a unit of the dimension NeuroML2 gives it.
_PARAMETERS = {
    "iafCell": dict(leakReversal="mV", thresh="mV", reset="mV", C="pF", leakConductance="nS"),
    "iafRefCell": dict(leakReversal="mV", thresh="mV", reset="mV", C="pF", leakConductance="nS",
                       refract="ms"),
    "izhikevichCell": dict(v0="mV", thresh="mV", a="1", b="1", c="1", d="1"),
    "izhikevich2007Cell": dict(C="pF", v0="mV", k="nS/mV", vr="mV", vt="mV", vpeak="mV",
                               a="1/ms", b="nS", c="mV", d="pA"),
    "adExIaFCell": dict(C="pF", gL="nS", EL="mV", VT="mV", thresh="mV", reset="mV", delT="mV",
                        tauw="ms", refract="ms", a="nS", b="pA"),
    "fitzHughNagumoCell": dict(I="1"),
}
#: The unit of the constant current ``I`` that drives a cell no input is attached to (0 unless
#: set: ``--set I=...``), as the library models' ``I``.
_LONE_CURRENT = {"iafCell": "nA", "iafRefCell": "nA", "izhikevichCell": "1",
                 "izhikevich2007Cell": "pA", "adExIaFCell": "pA"}
_DIMENSIONS = {"mV": "a voltage", "pF": "a capacitance", "nS": "a conductance", "ms": "a time",
               "pA": "a current", "nA": "a current", "1/ms": "a rate (per time)",
               "nS/mV": "a conductance per voltage", "1": "dimensionless"}
_INPUTS = {"pulseGenerator": False, "pulseGeneratorDL": True}
_NETWORK_PARTS = ("populations", "explicit_inputs", "input_lists")
_VALUE = re.compile(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*([A-Za-z_0-9]*)\s*$")


def load_cell(path: str | Path) -> Model:
    """The point cell of a NeuroML2 file, driven by the pulse inputs attached to it, or by a
    constant current parameter ``I`` (0 unless set) when none is attached."""
    path = Path(path)
    doc = _read(path)
    cells, inputs = [], {}
    for element in _elements(doc):
        kind = element.original_tagname_
        if kind in CELLS:
            cells.append(element)
        elif kind in _INPUTS:
            inputs[element.id] = element
        elif kind == "network":
            _check_network(element, path)
        else:
            raise ModelError(f"{_at(path, element)}unsupported NeuroML element <{kind}> "
                             f"(id {getattr(element, 'id', None)!r}; supported cells: "
                             f"{', '.join(CELLS)}; inputs: {', '.join(_INPUTS)})")
    if len(cells) != 1:
        raise ModelError(f"{path}: expected one cell of a supported type "
                         f"({', '.join(CELLS)}), found {len(cells)}")
    cell = cells[0]
    kind = cell.original_tagname_
    spec = CELLS[kind]
    where = f"{_at(path, cell)}<{kind} id={cell.id!r}>"
    parameters = {}
    attributes = cell.gds_elementtree_node_.attrib  # the XML names (leakReversal, gL, ...)
    for name, expected in _PARAMETERS[kind].items():
        value = attributes.get(name)
        if value is None:
            raise ModelError(f"{where} has no attribute {name!r}")
        parameters[name] = _quantity(value, f"{_at(path, cell, name)}<{kind} id={cell.id!r}> "
                                            f"{name}", expected)
    attached = [inputs[i] for i in _attached_inputs(doc, cell.id, path, inputs)]
    for element in attached:
        if _INPUTS[element.original_tagname_] != spec.get("dimensionless_input", False):
            raise ModelError(f"{_at(path, element)}<{element.original_tagname_} "
                             f"id={element.id!r}> cannot drive a <{kind}>")
    if attached and kind == "fitzHughNagumoCell":
        raise ModelError(f"{where} takes no inputs (its current is I)")
    stimulus, amplitudes = _stimulus(attached, path)
    description = f"NeuroML2 {kind} from {path.name}"
    if not attached and kind in _LONE_CURRENT:  # no input: a constant current I, 0 by default
        current = _LONE_CURRENT[kind]
        stimulus, amplitudes = "I", {"I": "0" if current == "1" else f"0*{current}"}
        description += " (no input attached: driven by the constant current I, default 0)"
    try:
        return Model.from_equations(
            spec["equations"], name=cell.id, parameters={**parameters, **amplitudes},
            initial=spec["initial"], threshold=spec["threshold"], reset=spec.get("reset"),
            refractory=spec.get("refractory", 0.0), stimulus=stimulus, description=description)
    except ModelError as exc:  # a position in the generated equations means nothing to the user
        message = re.sub(r"^(line \d+(, column \d+)?|threshold|reset|stimulus)"
                         r"(, (line|column) \d+)*: ", "", str(exc))
        raise ModelError(f"{where}: {message}") from None


def _at(path: Path, element, attribute: str | None = None) -> str:
    """``path: line N, column M: `` where ``element`` (its ``attribute``) starts in the file
    (``path: `` when that is unknown)."""
    line = getattr(getattr(element, "gds_elementtree_node_", None), "sourceline", None)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        text = None
    if not line or text is None:
        return f"{path}: line {line}: " if line else f"{path}: "
    # lxml gives the line where the start tag ends; find where it begins, then the attribute
    end = len(text) if line > text.count("\n") else _nth(text, "\n", line)
    start = text.rfind(f"<{element.original_tagname_}", 0, end)
    if start < 0:
        return f"{path}: line {line}: "
    if attribute is not None:
        match = re.compile(rf"\s({re.escape(attribute)})\s*=").search(
            text, start, text.find(">", start) + 1 or len(text))
        start = match.start(1) if match else start
    row = text.count("\n", 0, start) + 1
    return f"{path}: line {row}, column {start - text.rfind(chr(10), 0, start)}: "


def _nth(text: str, char: str, n: int) -> int:
    """The offset of the ``n``-th ``char`` in ``text`` (1-based)."""
    offset = -1
    for _ in range(n):
        offset = text.find(char, offset + 1)
    return offset


def _read(path: Path):
    from neuroml.loaders import read_neuroml2_file

    try:
        # libNeuroML prints its warnings (a value against the schema's units: ours say why)
        with contextlib.redirect_stdout(io.StringIO()), \
                contextlib.redirect_stderr(io.StringIO()):
            return read_neuroml2_file(str(path))
    except Exception as exc:  # libNeuroML wraps lxml's XMLSyntaxError in a bare Exception
        syntax = next((a for a in exc.args if hasattr(a, "position")), exc)
        where = ""
        if hasattr(syntax, "position"):
            where = f"line {syntax.position[0]}, column {syntax.position[1]}: "
        text = getattr(syntax, "msg", None) or \
            (syntax.args[0] if syntax.args and isinstance(syntax.args[0], str) else str(syntax))
        message = re.sub(r", line \d+, column \d+$", "", text)
        raise ModelError(f"{path}: malformed XML: {where}{message}") from None


def _elements(doc):
    """The NeuroML elements in the document (cells, inputs, networks, ...)."""
    for key, value in vars(doc).items():
        if key.endswith("_") or key in ("id", "notes", "annotation", "properties"):
            continue
        yield from value if isinstance(value, list) else []


def _check_network(network, path: Path) -> None:
    for key, value in vars(network).items():
        if isinstance(value, list) and value and key not in _NETWORK_PARTS + ("properties",):
            raise ModelError(f"{_at(path, value[0])}unsupported NeuroML element "
                             f"<{value[0].original_tagname_}> in network {network.id!r}")


def _attached_inputs(doc, cell_id: str, path: Path, inputs) -> list[str]:
    """Ids of the inputs that the networks attach to populations of ``cell_id``.  Explicit
    inputs to different cells of one population are refused: the file is loaded as one point
    cell, which would get the sum of every cell's inputs."""
    out = []
    for network in doc.networks:
        populations = {p.id: p.component for p in network.populations}
        targets = [(e.input, e.target) for e in network.explicit_inputs]
        targets += [(lst.component, lst.populations) for lst in network.input_lists]
        instances: dict[str, set[int]] = {}
        for input_id, target in targets:
            population, instance = _instance(target)
            if populations.get(population) != cell_id:
                continue
            if instance is not None:
                instances.setdefault(population, set()).add(instance)
                if len(instances[population]) > 1:
                    element = next(e for e in network.explicit_inputs if e.target == target)
                    raise ModelError(
                        f"{_at(path, element)}inputs go to cells "
                        f"{', '.join(map(str, sorted(instances[population])))} of population "
                        f"{population!r}, but the file is loaded as one point cell: attach "
                        "its inputs to one cell")
            if input_id not in inputs:
                element = next((e for e in network.explicit_inputs + network.input_lists
                                if input_id in (getattr(e, "input", None),
                                                getattr(e, "component", None))), network)
                raise ModelError(f"{_at(path, element)}input {input_id!r} is not a "
                                 "pulseGenerator in this file")
            out.append(input_id)
    return out


def _instance(target: str) -> tuple[str, int | None]:
    """The population and cell index of an explicit input's target ("pop[3]" or
    "pop/3/cell"); no index for a whole population."""
    match = re.match(r"([^\[/]*)(?:\[(\d+)\]|/(\d+))?", target)
    index = match.group(2) or match.group(3)
    return match.group(1), None if index is None else int(index)


def _stimulus(inputs, path: Path):
    """(stimulus text, amplitude parameters) for pulse inputs."""
    if not inputs:
        return None, {}
    terms, amplitudes = [], {}
    for element in inputs:
        name = "I" if len(inputs) == 1 else f"I_{element.id}"
        tag = f"<{element.original_tagname_} id={element.id!r}>"
        attributes = element.gds_elementtree_node_.attrib
        for key in ("amplitude", "delay", "duration"):
            if key not in attributes:
                raise ModelError(f"{_at(path, element)}{tag} has no attribute {key!r}")
        amplitudes[name] = _quantity(attributes["amplitude"],
                                     f"{_at(path, element, 'amplitude')}{tag} amplitude",
                                     "1" if _INPUTS[element.original_tagname_] else "nA")
        on, duration = (_milliseconds(attributes[k], f"{_at(path, element, k)}{tag} {k}")
                        for k in ("delay", "duration"))
        terms.append(step(sp.Symbol(name, real=True), on, on + duration))
    return U.text(U.with_units(sp.Add(*terms), {}, None)), amplitudes


def _quantity(text: str, what: str, expected: str | None = None) -> str:
    """A NeuroML value (``-70mV``, ``0.7nS_per_mV``) as expression text (``-70*mV``), checked
    to have the dimension of the unit ``expected`` when given."""
    match = _VALUE.match(str(text))
    if not match:
        raise ModelError(f"{what}: {text!r} is not a NeuroML quantity")
    number, unit = match.groups()
    unit = re.sub(r"^per_", "1/", unit).replace("_per_", "/")
    if expected is not None:
        try:
            dims = U.unit(unit or "1").dimensionality
        except Exception:  # pint's UndefinedUnitError, or a syntax error in the unit
            raise ModelError(f"{what}: {text!r} has an unknown unit {unit!r}") from None
        if dims != U.unit(expected).dimensionality:
            example = re.sub(r"^1/", "per_", expected).replace("/", "_per_")
            example = "" if expected == "1" else f" (e.g. {number}{example})"
            raise ModelError(f"{what}: {text!r} should be {_DIMENSIONS[expected]}{example}")
    return f"{number}*{unit}" if unit else number


def _milliseconds(text: str, what: str) -> float:
    value, _, name = _quantity(text, what).partition("*")
    u = U.literal(name) if name else None
    if u is None or u.dimensionality != U.unit("ms").dimensionality:
        raise ModelError(f"{what}: {text!r} is not a time")
    return float(value) * U.factor(u, U.unit("ms"))
