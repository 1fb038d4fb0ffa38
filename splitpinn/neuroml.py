"""NeuroML2 point-neuron cells as models (read with libNeuroML).

Supported cells: ``iafCell``, ``iafRefCell``, ``izhikevichCell``, ``izhikevich2007Cell``,
``adExIaFCell`` and ``fitzHughNagumoCell``, with the dynamics of the NeuroML2 core types
(NeuroML2CoreTypes/Cells.xml).  Each becomes Brian2-style equations for
:func:`splitpinn.equations.from_equations`, which converts the file's units into project units.
A ``pulseGenerator`` (``pulseGeneratorDL`` for the dimensionless ``izhikevichCell``) that a
network's ``explicitInput`` or ``inputList`` attaches to the cell becomes the stimulus, a step
(:func:`splitpinn.stimulus.step`) of amplitude parameter ``I`` (``I_<id>`` when there are
several).  ``fitzHughNagumoCell`` (time in seconds, no spike event) records spikes as upward
crossings of V = 1.  Any other element (another cell type, input, synapse or projection) is a
:class:`~splitpinn.errors.ModelError` naming it.
"""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import sympy as sp

from . import units as U
from .equations import from_equations
from .errors import ModelError
from .model import Model
from .stimulus import step

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
_PARAMETERS = {
    "iafCell": ("leakReversal", "thresh", "reset", "C", "leakConductance"),
    "iafRefCell": ("leakReversal", "thresh", "reset", "C", "leakConductance", "refract"),
    "izhikevichCell": ("v0", "thresh", "a", "b", "c", "d"),
    "izhikevich2007Cell": ("C", "v0", "k", "vr", "vt", "vpeak", "a", "b", "c", "d"),
    "adExIaFCell": ("C", "gL", "EL", "VT", "thresh", "reset", "delT", "tauw", "refract", "a",
                    "b"),
    "fitzHughNagumoCell": ("I",),
}
_INPUTS = {"pulseGenerator": False, "pulseGeneratorDL": True}
_NETWORK_PARTS = ("populations", "explicit_inputs", "input_lists")
_VALUE = re.compile(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*([A-Za-z_0-9]*)\s*$")


def load_cell(path: str | Path) -> Model:
    """The point cell of a NeuroML2 file, driven by the pulse inputs attached to it."""
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
            raise ModelError(f"{path}: unsupported NeuroML element <{kind}> "
                             f"(id {getattr(element, 'id', None)!r}; supported cells: "
                             f"{', '.join(CELLS)}; inputs: {', '.join(_INPUTS)})")
    if len(cells) != 1:
        raise ModelError(f"{path}: expected one cell of a supported type "
                         f"({', '.join(CELLS)}), found {len(cells)}")
    cell = cells[0]
    kind = cell.original_tagname_
    spec = CELLS[kind]
    parameters = {}
    attributes = cell.gds_elementtree_node_.attrib  # the XML names (leakReversal, gL, ...)
    for name in _PARAMETERS[kind]:
        value = attributes.get(name)
        if value is None:
            raise ModelError(f"{path}: <{kind} id={cell.id!r}> has no attribute {name!r}")
        parameters[name] = _quantity(value, f"{path}: <{kind}> {name}")
    attached = [inputs[i] for i in _attached_inputs(doc, cell.id, path, inputs)]
    for element in attached:
        if _INPUTS[element.original_tagname_] != spec.get("dimensionless_input", False):
            raise ModelError(f"{path}: <{element.original_tagname_} id={element.id!r}> "
                             f"cannot drive a <{kind}>")
    if attached and kind == "fitzHughNagumoCell":
        raise ModelError(f"{path}: <fitzHughNagumoCell> takes no inputs (its current is I)")
    stimulus, amplitudes = _stimulus(attached, path)
    try:
        return from_equations(
            spec["equations"], name=cell.id, parameters={**parameters, **amplitudes},
            initial=spec["initial"], threshold=spec["threshold"], reset=spec.get("reset"),
            refractory=spec.get("refractory", 0.0), stimulus=stimulus,
            description=f"NeuroML2 {kind} from {path.name}")
    except ModelError as exc:
        raise ModelError(f"{path}: <{kind} id={cell.id!r}>: {exc}") from None


def _read(path: Path):
    from neuroml.loaders import read_neuroml2_file

    try:
        with contextlib.redirect_stdout(io.StringIO()):  # libNeuroML prints its warnings
            return read_neuroml2_file(str(path))
    except Exception as exc:  # libNeuroML wraps lxml's XMLSyntaxError in a bare Exception
        syntax = next((a for a in exc.args if hasattr(a, "position")), exc)
        where = ""
        if hasattr(syntax, "position"):
            where = f"line {syntax.position[0]}, column {syntax.position[1]}: "
        message = re.sub(r", line \d+, column \d+$", "", getattr(syntax, "msg", None)
                         or str(syntax))
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
            raise ModelError(f"{path}: unsupported NeuroML element "
                             f"<{value[0].original_tagname_}> in network {network.id!r}")


def _attached_inputs(doc, cell_id: str, path: Path, inputs) -> list[str]:
    """Ids of the inputs that the networks attach to populations of ``cell_id``."""
    out = []
    for network in doc.networks:
        populations = {p.id: p.component for p in network.populations}
        targets = [(e.input, e.target) for e in network.explicit_inputs]
        targets += [(lst.component, lst.populations) for lst in network.input_lists]
        for input_id, target in targets:
            population = re.split(r"[\[/]", target, maxsplit=1)[0]
            if populations.get(population) != cell_id:
                continue
            if input_id not in inputs:
                raise ModelError(f"{path}: input {input_id!r} is not a pulseGenerator in "
                                 "this file")
            out.append(input_id)
    return out


def _stimulus(inputs, path: Path):
    """(stimulus text, amplitude parameters) for pulse inputs."""
    if not inputs:
        return None, {}
    terms, amplitudes = [], {}
    for element in inputs:
        name = "I" if len(inputs) == 1 else f"I_{element.id}"
        what = f"{path}: <{element.original_tagname_} id={element.id!r}>"
        amplitudes[name] = _quantity(element.amplitude, f"{what} amplitude")
        on, duration = (_milliseconds(element.gds_elementtree_node_.attrib.get(k), f"{what} {k}")
                        for k in ("delay", "duration"))
        terms.append(step(sp.Symbol(name, real=True), on, on + duration))
    return U.text(U.with_units(sp.Add(*terms), {}, None)), amplitudes


def _quantity(text: str, what: str) -> str:
    """A NeuroML value (``-70mV``, ``0.7nS_per_mV``) as expression text (``-70*mV``)."""
    match = _VALUE.match(str(text))
    if not match:
        raise ModelError(f"{what}: {text!r} is not a NeuroML quantity")
    number, unit = match.groups()
    if not unit:
        return number
    unit = re.sub(r"^per_", "1/", unit).replace("_per_", "/")
    return f"{number}*{unit}"


def _milliseconds(text: str, what: str) -> float:
    value, _, name = _quantity(text, what).partition("*")
    u = U.literal(name) if name else None
    if u is None or u.dimensionality != U.unit("ms").dimensionality:
        raise ModelError(f"{what}: {text!r} is not a time")
    return float(value) * U.factor(u, U.unit("ms"))
