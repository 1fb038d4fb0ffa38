"""Symbolic declaration of neuron models.

A :class:`Model` holds sympy right-hand sides for its states, parameters with defaults,
auxiliary expressions (rate functions), a stimulus ``I_ext(t)`` and threshold events.  It
validates itself on construction, so a typo in an equation fails at declaration rather than
deep inside a solver.  It is immutable and hashed by content (:attr:`Model.key`): what the
numeric layer derives from it is cached under that key, so equal models share it.
:func:`splitpinn.numeric.bound.bind` fixes parameter values and initial conditions and returns
a :class:`~splitpinn.numeric.bound.BoundModel` whose right-hand side, Jacobian and events are
lambdified to numpy.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import sympy as sp
from sympy.core.function import AppliedUndef

from ..errors import ModelError
from .parts import RESERVED, Event, I_ext, SpikeDetector, State, t

__all__ = ["Event", "I_ext", "Model", "ReadOnlyDict", "SpikeDetector", "State", "t"]

#: ``bind(model, parameters, initial, preset)``, set by :mod:`splitpinn.numeric.bound`.
BINDING = None


class ReadOnlyDict(dict):
    """A dict that refuses changes: how a :class:`Model` stores its mappings (a plain dict
    for reading, JSON and pickling; ``dict(...)`` or ``|`` gives a changeable copy)."""

    __slots__ = ()

    def _refuse(self, *args, **kwargs):
        raise TypeError("a Model's mappings are read-only: make a changed copy with "
                        "dataclasses.replace(model, ...) or Model.with_stimulus")

    __setitem__ = __delitem__ = __ior__ = _refuse
    clear = pop = popitem = setdefault = update = _refuse

    def __hash__(self) -> int:
        return hash(tuple(self.items()))

    def __reduce__(self):
        return type(self), (dict(self),)


@dataclass(frozen=True, eq=False)
class Model:
    """A symbolic neuron model.  See the module docstring; all times are in ms.

    Parameters
    ----------
    name: short identifier, e.g. ``"hh"``.
    states: the state variables, in order.
    equations: right-hand side per state name: ``d^alpha X/dt^alpha = equations[X]``.
    parameters: parameter name -> default value.
    auxiliaries: name -> expression (may use states, parameters, ``t``, ``I_ext`` and earlier
        auxiliaries); substituted before analysis.
    stimulus: expression of ``t`` and parameters that ``I_ext`` stands for (default 0).
    events: threshold events with reset.
    spike_detector: for models without events, how to read spikes off a trace.
    presets: preset name -> parameter overrides; ``default_preset`` is applied by default.
    default_dt: the split-PINN step (ms) to use when none is given (accurate and fast for this
        model's time scales); None falls back to the method's generic default.
    units: name of a state, parameter or auxiliary -> unit text (e.g. ``"mV"``), for printouts,
        figure labels and ``meta``; names left out are unitless or unknown.
    unused_ok: allow parameters that nothing uses (otherwise an error naming them).

    A model is immutable: ``states`` and ``events`` are stored as tuples, the mappings as
    :class:`ReadOnlyDict`, and assigning an attribute raises
    :class:`dataclasses.FrozenInstanceError`; ``dataclasses.replace`` and
    :meth:`with_stimulus` make changed copies (validated again).  ``key`` is a digest of
    everything declared (a sha256 of a canonical text, sympy's ``srepr`` of the expressions,
    recorded stimuli by their samples); models compare and hash by it, and the numeric layer
    caches what it derives from a model under it (:mod:`splitpinn.numeric.cache`).

    Symbols are matched by name whatever their sympy assumptions (``sp.Symbol("V")`` and
    ``sp.Symbol("V", real=True)`` are the same state), and every name-keyed mapping takes
    strings or Symbols as keys.  Construction raises ModelError for an unknown symbol, a
    state without equation, an unused parameter, a reset that lands at or past its own
    threshold (checked where the condition after the reset depends on parameters only, for
    the defaults and every preset; :func:`~splitpinn.numeric.bound.bind` checks overrides), and
    similar mistakes.
    """

    name: str
    states: Sequence[State]
    equations: Mapping[str, sp.Expr]
    parameters: Mapping[str, float]
    auxiliaries: Mapping[str, sp.Expr] = field(default_factory=dict)
    stimulus: sp.Expr | float = 0.0
    events: Sequence[Event] = ()
    spike_detector: SpikeDetector | None = None
    presets: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    default_preset: str | None = None
    description: str = ""
    default_dt: float | None = None
    units: Mapping[str, str] = field(default_factory=dict)
    unused_ok: bool = False
    #: Digest of the declaration (hex sha256): equal models have equal keys.
    key: str = field(init=False, repr=False)

    def __post_init__(self) -> None:
        def store(name, value):
            object.__setattr__(self, name, value)  # frozen: only construction sets fields

        store("states", tuple(State(name_of(s.name), _canonical(s.initial), _canonical(s.order))
                              for s in self.states))
        store("equations", ReadOnlyDict({name_of(k): _canonical(sp.sympify(v))
                                         for k, v in self.equations.items()}))
        store("parameters", ReadOnlyDict({name_of(k): _number(v, f"{self.name}: parameter {k}")
                                          for k, v in self.parameters.items()}))
        store("auxiliaries", ReadOnlyDict({name_of(k): _canonical(sp.sympify(v))
                                           for k, v in self.auxiliaries.items()}))
        try:
            store("stimulus", _canonical(sp.sympify(self.stimulus)))
        except (sp.SympifyError, TypeError, ValueError):
            raise ModelError(f"{self.name}: stimulus: {self.stimulus!r} is not an expression "
                             "of t") from None
        store("presets", ReadOnlyDict({p: ReadOnlyDict({name_of(k): v for k, v in values.items()})
                                       for p, values in self.presets.items()}))
        store("units", ReadOnlyDict({name_of(k): str(v) for k, v in self.units.items()}))
        if self.spike_detector is not None:
            store("spike_detector", SpikeDetector(name_of(self.spike_detector.state),
                                                  self.spike_detector.threshold))
        store("events", tuple(self._resolve_event(ev) for ev in self.events))
        self._validate()
        store("key", hashlib.sha256(self._content().encode()).hexdigest())

    def _content(self) -> str:
        """The canonical text of everything declared, in order (the order of the states and
        parameters is that of the numeric callables' arguments)."""
        lines = [f"model {self.name!r} {self.description!r} dt {_text(self.default_dt)} "
                 f"unused_ok {self.unused_ok}"]
        lines += [f"state {s.name!r} {_text(s.initial)} order {_text(s.order)}"
                  for s in self.states]
        lines += [f"equation {k!r} {_text(v)}" for k, v in self.equations.items()]
        lines += [f"parameter {k!r} {v!r}" for k, v in self.parameters.items()]
        lines += [f"auxiliary {k!r} {_text(v)}" for k, v in self.auxiliaries.items()]
        lines.append(f"stimulus {_text(self.stimulus)}")
        for ev in self.events:
            lines.append(f"event {ev.name!r} {_text(ev.condition)} refractory "
                         f"{_text(ev.refractory)} clamp {ev.clamp!r}")
            lines += [f"  reset {k!r} {_text(v)}" for k, v in ev.reset.items()]
        if self.spike_detector is not None:
            lines.append(f"spikes {self.spike_detector.state!r} "
                         f"{_text(self.spike_detector.threshold)}")
        for p, values in self.presets.items():
            lines.append(f"preset {p!r} " + " ".join(f"{k!r} {_text(v)}"
                                                     for k, v in values.items()))
        lines.append(f"default preset {self.default_preset!r}")
        lines += [f"unit {k!r} {v!r}" for k, v in self.units.items()]
        return "\n".join(lines)

    def __eq__(self, other) -> bool:
        if not isinstance(other, Model):
            return NotImplemented
        return self.key == other.key

    def __hash__(self) -> int:
        return hash(self.key)

    def _resolve_event(self, event: Event) -> Event:
        """``event`` with canonical symbols, string keys, its name and its clamp filled in
        (default: the states that the condition reads, auxiliaries expanded)."""
        condition = _canonical(event.condition)
        if event.clamp is None:
            reads = self.expand(condition, stimulus=False).free_symbols
            clamp = tuple(n for n in self.state_names if self.symbol(n) in reads)
        elif isinstance(event.clamp, str | sp.Symbol):
            clamp = (name_of(event.clamp),)
        else:
            clamp = tuple(name_of(k) for k in event.clamp)
        return Event(condition,
                     ReadOnlyDict({name_of(k): _canonical(v) for k, v in event.reset.items()}),
                     _canonical(event.refractory), clamp,
                     str(condition) if event.name is None else event.name)

    @classmethod
    def from_equations(cls, equations: str, **options) -> Model:
        """A model from Brian2-style equation text: ``name=``, ``parameters=``, ``initial=``,
        ``threshold=``, ``reset=``, ``refractory=``, ``stimulus=``, ``description=``; see
        :func:`splitpinn.declare.equations.declaration`."""
        from .equations import declaration

        return cls(**declaration(equations, **options))

    # -- names and symbols ---------------------------------------------------------------
    @property
    def state_names(self) -> list[str]:
        return [s.name for s in self.states]

    def symbol(self, name: str) -> sp.Symbol:
        """The sympy symbol of a state, parameter or auxiliary."""
        return sp.Symbol(name, real=True)

    @property
    def state_symbols(self) -> list[sp.Symbol]:
        return [self.symbol(n) for n in self.state_names]

    def rhs_expressions(self) -> list[sp.Expr]:
        """Right-hand sides with auxiliaries substituted: expressions of the states,
        parameters, ``t`` and ``I_ext`` (the stimulus is kept apart so that solvers can
        evaluate it on its own)."""
        return [self.expand(self.equations[n], stimulus=False) for n in self.state_names]

    def expand(self, expr: sp.Expr, stimulus: bool = True) -> sp.Expr:
        """Substitute auxiliaries (innermost last) and, if ``stimulus``, the stimulus for
        ``I_ext`` into ``expr``."""
        expr = sp.sympify(expr)
        for _ in range(len(self.auxiliaries) + 1):
            subs = {self.symbol(k): v for k, v in self.auxiliaries.items()}
            new = expr.xreplace(subs)
            if new == expr:
                break
            expr = new
        return expr.xreplace({I_ext: self.stimulus}) if stimulus else expr

    # -- validation ------------------------------------------------------------------------
    def _validate(self) -> None:
        names = self.state_names
        kinds = [("state", names), ("parameter", list(self.parameters)),
                 ("auxiliary", list(self.auxiliaries))]
        seen: dict[str, str] = {}
        for kind, group in kinds:
            for n in group:
                if not n.isidentifier():
                    raise ModelError(f"{self.name}: {kind} name {n!r} is not an identifier")
                if n in RESERVED:
                    raise ModelError(f"{self.name}: {kind} name {n!r} is reserved")
                if n in seen:
                    raise ModelError(f"{self.name}: name {n!r} is both a {seen[n]} and a {kind}")
                seen[n] = kind
        for n in names:
            if n not in self.equations:
                raise ModelError(f"{self.name}: state {n!r} has no equation")
        for n in self.equations:
            if n not in names:
                raise ModelError(f"{self.name}: equation for {n!r}, which is not a state")
        for k, v in self.parameters.items():
            if not math.isfinite(v):
                raise ModelError(f"{self.name}: parameter {k} = {v} is not finite")
        self._check_acyclic_auxiliaries()
        allowed = {self.symbol(n) for n in seen} | {t, I_ext}
        params = {self.symbol(n) for n in self.parameters}
        checks = [(f"equation of {n}", e) for n, e in self.equations.items()]
        checks += [(f"auxiliary {n}", e) for n, e in self.auxiliaries.items()]
        checks.append(("stimulus", self.stimulus))
        for ev in self.events:
            checks.append(("event condition", ev.condition))
            checks += [(f"reset of {k}", sp.sympify(v)) for k, v in ev.reset.items()]
            for k in list(ev.reset) + list(ev.clamped):
                if k not in names:
                    raise ModelError(f"{self.name}: event resets or clamps unknown state {k!r}")
            if not isinstance(ev.condition, sp.Rel) or ev.condition.rel_op not in (">=", ">"):
                raise ModelError(f"{self.name}: event condition must read 'lhs >= rhs'")
        for what, expr in checks:
            expr = sp.sympify(expr)
            calls = expr.atoms(AppliedUndef)
            if calls:
                raise ModelError(f"{self.name}: unknown function "
                                 f"{', '.join(sorted({type(c).__name__ for c in calls}))} "
                                 f"in the {what}")
            unknown = expr.free_symbols - allowed
            if unknown:
                raise ModelError(f"{self.name}: unknown symbol(s) "
                                 f"{', '.join(sorted(map(str, unknown)))} in {what}")
        for s in self.states:
            if s.initial is None:
                raise ModelError(f"{self.name}: state {s.name!r} has no initial value")
            self._check_constant(f"initial value of {s.name}", self.expand(s.initial),
                                 params | set(self.state_symbols))
            self._check_constant(f"order of {s.name}", s.order, params)
            for ev in self.events:
                self._check_constant("refractory period", ev.refractory, params)
        if self.stimulus.free_symbols - params - {t}:
            raise ModelError(f"{self.name}: the stimulus may depend only on t and parameters")
        if self.spike_detector and self.spike_detector.state not in names:
            raise ModelError(f"{self.name}: spike detector on unknown state "
                             f"{self.spike_detector.state!r}")
        if self.default_dt is not None and not (math.isfinite(self.default_dt)
                                                and self.default_dt > 0):
            raise ModelError(f"{self.name}: default_dt must be a finite number > 0 ms")
        if self.default_preset is not None and self.default_preset not in self.presets:
            raise ModelError(f"{self.name}: default preset {self.default_preset!r} is not defined")
        for pname, overrides in self.presets.items():
            for k in overrides:
                if k not in self.parameters:
                    raise ModelError(f"{self.name}: preset {pname} sets unknown parameter {k!r}")
        for k in self.units:
            if k not in seen:
                raise ModelError(f"{self.name}: unit given for {k!r}, which is not a state, "
                                 "parameter or auxiliary")
        if not self.unused_ok:
            self._check_parameters_used([e for _, e in checks])
        landings = self.reset_landings()
        for what, preset in {"the default parameters": None,
                             **{f"preset {p}": p for p in self.presets}}.items():
            numbers = self._numbers(self.resolve_parameters(preset))
            for event, after, refractory in landings:
                g = float(after.xreplace(numbers))
                period = float(refractory.xreplace(numbers))
                if fires_again(g, period, event.condition.rel_op):
                    raise ModelError(self.reset_message(event, what))
        self._check_initial_state(self.resolve_parameters())

    def _check_parameters_used(self, exprs: list) -> None:
        exprs = exprs + [sp.sympify(v) for s in self.states for v in (s.initial, s.order)]
        exprs += [sp.sympify(ev.refractory) for ev in self.events]
        used = set().union(*(e.free_symbols for e in exprs))
        unused = [k for k in self.parameters if self.symbol(k) not in used]
        if not unused:
            return
        hint = ""
        if self.stimulus.is_zero and any(e.has(I_ext) for e in self.equations.values()):
            hint = f"; the stimulus is 0: did you mean stimulus={unused[0]}?"
        raise ModelError(f"{self.name}: parameter(s) {', '.join(unused)} used by no equation, "
                         f"auxiliary, stimulus, event, initial value or order{hint} "
                         "(unused_ok=True allows it)")

    def _numbers(self, values: Mapping[str, float]) -> dict:
        return {self.symbol(k): sp.Float(v) for k, v in values.items()}

    def reset_landings(self) -> list[tuple[Event, sp.Expr, sp.Expr]]:
        """(event, g, refractory) per event whose condition, read just after its reset,
        depends on the parameters only: ``g`` is its ``lhs − rhs`` there, an expression of
        the parameters, as is the event's ``refractory`` period (see :func:`fires_again`)."""
        params = {self.symbol(p) for p in self.parameters}
        landings = []
        for ev in self.events:
            cond = ev.condition
            after = self.expand(cond.lhs - cond.rhs).xreplace(
                {self.symbol(k): self.expand(v) for k, v in ev.reset.items()})
            if after.free_symbols <= params:
                landings.append((ev, after, sp.sympify(ev.refractory)))
        return landings

    def reset_message(self, event: Event, what: str) -> str:
        """The error of a reset that :func:`fires_again` with the parameters ``what``."""
        resets = "; ".join(f"{k} = {v}" for k, v in event.reset.items())
        return (f"{self.name}: event {event.name!r}: the reset ({resets}) lands at or past its "
                f"threshold with {what}")

    def _check_initial_state(self, values: Mapping[str, float]) -> None:
        """With the default parameters: every initial value resolves (no cycle) to a finite
        number, every refractory period is finite and >= 0, every order lies in (0, 1], every
        right-hand side is finite at the initial state — in sympy numbers, without binding."""
        numbers = self._numbers(values)
        initial: dict[sp.Symbol, sp.Expr] = {}
        pending = {self.symbol(s.name): self.expand(sp.sympify(s.initial)).xreplace(numbers)
                   for s in self.states}
        while pending:
            ready = {k: v for k, v in pending.items() if not v.free_symbols - set(initial)}
            if not ready:
                raise ModelError(f"{self.name}: initial values of "
                                 f"{', '.join(sorted(map(str, pending)))} depend on each other "
                                 "in a cycle")
            for k, v in ready.items():
                value = complex(v.xreplace(initial).evalf())
                if value.imag or not math.isfinite(value.real):
                    raise ModelError(f"{self.name}: the initial value of {k} is not finite "
                                     "with these parameters")
                initial[k] = sp.Float(value.real)
                del pending[k]
        for ev in self.events:
            period = float(sp.sympify(ev.refractory).xreplace(numbers))
            if not (math.isfinite(period) and period >= 0):
                raise ModelError(f"refractory period must be a finite number >= 0, got "
                                 f"{period:g}")
        for s in self.states:
            order = float(sp.sympify(s.order).xreplace(numbers))
            if not math.isfinite(order):
                raise ModelError(f"order of {s.name} is not a finite number")
            if not 0 < order <= 1:
                raise ModelError(f"order of {s.name} must lie in (0, 1], got {order:g}")
        stimulus = sp.sympify(self.stimulus).xreplace({**numbers, t: sp.Float(0)})
        at = {**numbers, **initial, t: sp.Float(0), I_ext: stimulus}
        for name, rhs in self.equations.items():
            value = complex(self.expand(sp.sympify(rhs), stimulus=False).xreplace(at).evalf())
            if value.imag or not math.isfinite(value.real):
                raise ModelError(f"{self.name}: the equation of {name} "
                                 f"({self.expand(sp.sympify(rhs))}) is not finite at the "
                                 "initial state")

    def _check_constant(self, what: str, value, allowed: set) -> None:
        unknown = sp.sympify(value).free_symbols - allowed
        if unknown:
            raise ModelError(f"{self.name}: {what} uses {', '.join(sorted(map(str, unknown)))}, "
                             "which is not a parameter")

    def _check_acyclic_auxiliaries(self) -> None:
        aux = {self.symbol(k): k for k in self.auxiliaries}
        deps = {k: {aux[s] for s in v.free_symbols if s in aux}
                for k, v in self.auxiliaries.items()}
        done: set[str] = set()
        while deps:
            ready = [k for k, d in deps.items() if d <= done]
            if not ready:
                raise ModelError(f"{self.name}: auxiliaries {sorted(deps)} depend on each other "
                                 "in a cycle")
            for k in ready:
                done.add(k)
                del deps[k]

    # -- parameter values -------------------------------------------------------------------
    def resolve_parameters(self, preset: str | None = None,
                           overrides: Mapping[str, float] | None = None) -> dict[str, float]:
        """Defaults, then the preset (or the default preset), then ``overrides`` (keyed by
        names or Symbols)."""
        values = dict(self.parameters)
        preset = preset if preset is not None else self.default_preset
        if preset is not None:
            if preset not in self.presets:
                known = ", ".join(self.presets) or "none"
                raise ModelError(f"{self.name}: unknown preset {preset!r} (known: {known})")
            values.update(self.presets[preset])
        for k, v in (overrides or {}).items():
            k = name_of(k)
            if k not in values:
                raise ModelError(f"{self.name}: unknown parameter {k!r} "
                                 f"(known: {', '.join(self.parameters)})")
            # arrays (a batch of neurons) are checked by BoundModel
            values[k] = v if isinstance(v, np.ndarray | list | tuple) else \
                _finite(v, f"parameter {k}")
        return values

    def bind(self, parameters: Mapping[str, float] | None = None,
             initial: Mapping[str, float] | None = None, preset: str | None = None):
        """Fix parameter values and initial values: :func:`splitpinn.numeric.bound.bind`
        (the numeric layer registers it as :data:`BINDING`; this layer imports none above
        it)."""
        if BINDING is None:
            raise ModelError("binding needs splitpinn.numeric (import splitpinn)")
        return BINDING(self, parameters, initial, preset)

    def with_stimulus(self, stimulus: sp.Expr | float) -> Model:
        """A copy of this model driven by another stimulus expression of ``t`` (parameters
        that only the old stimulus used may go unused)."""
        return replace(self, stimulus=stimulus, unused_ok=True)

    def _with_unit(self, name: str, value) -> str:
        unit = self.units.get(name)
        return f"{_fmt(value)} {unit}" if unit else _fmt(value)

    def __str__(self) -> str:
        """Everything the model declares: equations with initial values, auxiliaries,
        stimulus, events, spike detector, parameters with defaults and units, presets."""
        lines = [f"model {self.name}: {self.description}".rstrip(": "), "  equations:"]
        for s in self.states:
            lhs = f"d{s.name}/dt" if s.order == 1 else f"D^({_fmt(s.order)}) {s.name}"
            lines.append(f"    {lhs} = {self.equations[s.name]}"
                         f"    [{s.name}(0) = {self._with_unit(s.name, s.initial)}]")
        if self.auxiliaries:
            lines.append("  auxiliaries:")
            lines += [f"    {k} = {v}" for k, v in self.auxiliaries.items()]
        lines.append(f"  stimulus: I_ext = {self.stimulus}")
        for ev in self.events:
            reset = "; ".join(f"{k} = {_fmt(v)}" for k, v in ev.reset.items())
            label = "" if ev.name == str(ev.condition) else f" ({ev.name})"
            lines.append(f"  event{label}: when {ev.condition}: {reset or 'no reset'}; "
                         f"refractory {_fmt(ev.refractory)} ms holding "
                         f"{', '.join(ev.clamped) or 'nothing'}")
        if self.spike_detector is not None:
            det = self.spike_detector
            lines.append(f"  spikes: {det.state} crossing "
                         f"{self._with_unit(det.state, det.threshold)} upward")
        lines.append("  parameters:")
        lines += [f"    {k} = {self._with_unit(k, v)}" for k, v in self.parameters.items()]
        if self.presets:
            lines.append(f"  presets (default {self.default_preset}):")
            lines += [f"    {p}: " + ", ".join(f"{k}={_fmt(v)}" for k, v in values.items())
                      for p, values in self.presets.items()]
        return "\n".join(lines)


def _fmt(value) -> str:
    """A number as ``%g``, an expression as sympy prints it."""
    try:
        return f"{float(value):g}"
    except (TypeError, ValueError):
        return str(value)


def name_of(name) -> str:
    """A name given as a string or a sympy Symbol, as a string."""
    if isinstance(name, sp.Symbol):
        return name.name
    if isinstance(name, str):
        return name
    raise ModelError(f"{name!r} is not a name (a string or a sympy Symbol)")


def _text(value) -> str:
    """A number, expression or None as canonical text: ``repr`` of a float, sympy's ``srepr``
    of an expression whose functions that carry data (a recording: their class has a
    ``fingerprint()``) are named by that data rather than by their class's name."""
    if value is None or isinstance(value, float | int):
        return repr(float(value)) if value is not None else "None"
    expr = sp.sympify(value)
    marked = {f: sp.Function(f"data<{f.func.fingerprint()}>")(*f.args)
              for f in expr.atoms(sp.Function) if hasattr(f.func, "fingerprint")}
    return sp.srepr(expr.xreplace(marked) if marked else expr)


def _canonical(value):
    """``value`` with every symbol replaced by the canonical ``Symbol(name, real=True)``, so
    symbols match by name whatever their assumptions (plain numbers and None pass through)."""
    if value is None or isinstance(value, int | float):
        return value
    value = sp.sympify(value)
    return value.xreplace({s: sp.Symbol(s.name, real=True) for s in value.free_symbols
                           if isinstance(s, sp.Symbol) and not isinstance(s, sp.Dummy)})


def _number(value, what: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ModelError(f"{what}: {value!r} is not a number") from None


def _finite(value, what: str) -> float:
    v = _number(value, what)
    if not math.isfinite(v):
        raise ModelError(f"{what}: {value!r} is not a finite number")
    return v


def fires_again(after, period, rel_op: str):
    """Whether a reset lands at or past its own threshold (``after``: the condition's
    ``lhs − rhs`` just after it; ``rel_op``: ">=" or ">") without a refractory ``period``: it
    would fire again at once.  With a period it is legal: as in Brian2, the neuron fires again
    when the period ends.  Elementwise on arrays (a batch) as on numbers."""
    return ((after > 0) | ((after == 0) & (rel_op == ">="))) & ~(period > 0)
