"""A model with numbers: parameter values (one set, or one per neuron of a batch), initial
states, Caputo orders and the numeric callables every solver uses.

The sympy expressions are lambdified once per :class:`~splitpinn.declare.model.Model` content
(:class:`Numeric`, kept in :mod:`splitpinn.numeric.cache` under the model's key), with the
parameters as arguments rather than substituted numbers, so that binding new values is cheap
and one call evaluates a whole batch of neurons: every callable takes columns (one array per
state and per parameter) that broadcast against each other.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from functools import cached_property

import numpy as np
import sympy as sp

from ..declare import model as _declaration
from ..declare.model import I_ext, Model, fires_again, name_of, t
from ..errors import ModelError
from . import cache
from .kernels import strict
from .lambdify import lambdify
from .validation import check_finite_equations


def _finite(value, what: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ModelError(f"{what}: {value!r} is not a number") from None
    if not math.isfinite(v):
        raise ModelError(f"{what}: {value!r} is not a finite number")
    return v


def _column(value, what: str) -> np.ndarray:
    """A scalar or a 1-D array of finite numbers, as a float array (0-d or 1-D)."""
    if isinstance(value, np.ndarray | list | tuple):
        array = np.asarray(value)
        if array.ndim != 1 or array.size == 0:
            raise ModelError(f"{what}: an array of values must be 1-D and non-empty, "
                             f"got shape {array.shape}")
        try:
            array = array.astype(float)
        except (TypeError, ValueError):
            raise ModelError(f"{what}: {value!r} holds a value that is not a number") from None
        if not np.all(np.isfinite(array)):
            raise ModelError(f"{what}: every value must be a finite number")
        return array
    return np.asarray(_finite(value, what))


def batch_size(columns: Mapping[str, np.ndarray]) -> int | None:
    """The common length of the 1-D arrays among ``columns`` (None if all are scalars);
    arrays of different lengths are a :class:`ModelError`."""
    lengths = {k: len(v) for k, v in columns.items() if np.ndim(v) == 1}
    if len(set(lengths.values())) > 1:
        shown = ", ".join(f"{k} ({n})" for k, n in lengths.items())
        raise ModelError(f"batch arrays have different lengths: {shown}")
    return next(iter(lengths.values()), None)


def bind(model: Model, parameters: Mapping[str, float] | None = None,
         initial: Mapping[str, float] | None = None, preset: str | None = None) -> BoundModel:
    """Fix ``model``'s parameter values (defaults, the preset, then ``parameters``; a 1-D
    array of length B makes a batch) and initial values (keyed by names or Symbols)."""
    values = model.resolve_parameters(preset, parameters)
    if parameters:
        _check_resets(model, values)
    return BoundModel(model, values, {name_of(k): v for k, v in (initial or {}).items()},
                      preset if preset is not None else model.default_preset)


def _check_resets(model: Model, values: Mapping) -> None:
    """Refuse a reset that :func:`~splitpinn.declare.model.fires_again` with these parameter
    ``values`` (numbers, or one array per parameter for a batch)."""
    for ev, g, refractory in Numeric.of(model).reset_landings:
        try:
            with np.errstate(all="ignore"):
                args = [np.asarray(values[k], dtype=float) for k in model.parameters]
                bad = fires_again(np.asarray(g(*args), dtype=float),
                                  np.asarray(refractory(*args), dtype=float),
                                  ev.condition.rel_op)
        except ValueError:  # batch arrays of different lengths: BoundModel says so
            return
        if np.any(bad):
            where = f" (neuron {int(np.argmax(bad))})" if bad.ndim else ""
            raise ModelError(model.reset_message(ev, "these parameters") + where)


class Numeric:
    """The symbolic forms and lambdified callables of one model's content (right-hand sides
    and Jacobian, stimulus, events, orders, initial values, reset landings), all taking the
    parameters as arguments; built once per :attr:`~splitpinn.declare.model.Model.key`
    (:meth:`of`)."""

    def __init__(self, model: Model) -> None:
        self.param_symbols = [model.symbol(k) for k in model.parameters]
        self.state_symbols = model.state_symbols
        self.args = (t, I_ext, *self.state_symbols, *self.param_symbols)
        self.rhs_exprs = model.rhs_expressions()
        self.rhs = lambdify(self.args, self.rhs_exprs)
        jac = sp.Matrix(self.rhs_exprs).jacobian(self.state_symbols)
        self.jacobian_exprs = jac
        self.jacobian = lambdify(self.args, jac.tolist())
        self.stimulus = lambdify((t, *self.param_symbols), model.stimulus)
        self.events = [_NumericEvent(ev, model, self.args) for ev in model.events]
        params = self.param_symbols
        self.orders = [lambdify(params, sp.sympify(s.order)) for s in model.states]
        self.initial = [lambdify((*self.state_symbols, *params), model.expand(s.initial))
                        for s in model.states]
        self.initial_dependencies = [
            {model.state_names.index(str(x)) for x in model.expand(s.initial).free_symbols
             if x in set(self.state_symbols)} for s in model.states]
        self.reset_landings = [(ev, lambdify(params, after), lambdify(params, refractory))
                               for ev, after, refractory in model.reset_landings()]

    @staticmethod
    def of(model: Model) -> Numeric:
        """The callables of ``model``, from :mod:`splitpinn.numeric.cache` (equal models
        share them)."""
        return cache.cached(model.key, "numeric", lambda: Numeric(model))


class _NumericEvent:
    def __init__(self, event, model: Model, args) -> None:
        cond = event.condition
        params = args[2 + len(model.states):]
        self.expression = model.expand(cond.lhs - cond.rhs)
        self.g = lambdify(args, self.expression)
        #: ``lhs > rhs``: g = 0 is below the threshold (:func:`splitpinn.numeric.kernels.strict`).
        self.strict = cond.rel_op == ">"
        names = model.state_names
        self.reset_index = np.array([names.index(k) for k in event.reset], dtype=int)
        self.reset_exprs = [model.expand(sp.sympify(v)) for v in event.reset.values()]
        self.reset = lambdify(args, self.reset_exprs)
        self.refractory = lambdify(params, sp.sympify(event.refractory))
        self.clamp_index = np.array([names.index(k) for k in event.clamped], dtype=int)


class BoundModel:
    """A model with numbers; see the module docstring.

    Attributes: ``model``, ``parameters`` (name -> float, or name -> array of length B for a
    batch), ``preset``, ``names`` (state names), ``batch`` (B, or None for a single neuron),
    ``y0`` (initial state: (n,) single, (B, n) batch), ``orders`` (Caputo order per state;
    the same for every neuron), ``events`` (:class:`BoundEvent`), ``numeric`` (the model's
    :class:`Numeric`: symbolic forms and callables with the parameters as arguments).
    """

    def __init__(self, model: Model, parameters: Mapping[str, float],
                 initial: Mapping[str, float], preset: str | None = None) -> None:
        self.model, self.preset = model, preset
        self.names = model.state_names
        for k in initial:
            if k not in self.names:
                raise ModelError(f"{model.name}: unknown state {k!r} "
                                 f"(known: {', '.join(self.names)})")
        given = {k: _column(v, f"parameter {k}") for k, v in parameters.items()}
        given_initial = {k: _column(v, f"initial value of {k}") for k, v in initial.items()}
        self.batch = batch_size({**given, **given_initial})
        rows = self.batch or 1
        self.parameters = {k: (v.tolist() if v.ndim else float(v)) for k, v in given.items()}
        #: Parameter values as columns (P, rows), the order of ``model.parameters``.
        self.param_columns = np.array([np.broadcast_to(given[k], (rows,)) for k in
                                       model.parameters], dtype=float).reshape(-1, rows)
        #: The model's :class:`Numeric` (shared by every binding of equal models).
        self.numeric = Numeric.of(model)
        self.y0 = self._initial_values(given_initial, rows)
        self.orders = self._orders()
        self.events = [BoundEvent(ev, self, k) for k, ev in enumerate(self.numeric.events)]
        self._check_finite()

    # -- construction ------------------------------------------------------------------------
    def _initial_values(self, given: Mapping[str, np.ndarray], rows: int) -> np.ndarray:
        numeric, n = self.numeric, len(self.names)
        values: dict[int, np.ndarray] = {self.index(k): np.broadcast_to(v, (rows,))
                                         for k, v in given.items()}
        for _ in range(n + 1):
            for i in range(n):
                if i in values or not numeric.initial_dependencies[i] <= set(values):
                    continue
                states = [values.get(j, np.zeros(rows)) for j in range(n)]
                with np.errstate(all="ignore"):
                    value = numeric.initial[i](*states, *self.param_columns)
                values[i] = np.broadcast_to(np.asarray(value, dtype=float), (rows,))
        missing = [self.names[i] for i in range(n) if i not in values]
        if missing:
            raise ModelError(f"{self.model.name}: initial values of {', '.join(missing)} "
                             "depend on each other in a cycle")
        y0 = np.array([values[i] for i in range(n)], dtype=float).T  # (rows, n)
        bad = ~np.isfinite(y0)
        if bad.any():
            name = self.names[int(np.nonzero(bad.any(axis=0))[0][0])]
            raise ModelError(f"{self.model.name}: the initial value of {name} is not finite "
                             "with these parameters")
        return y0 if self.batch else y0[0]

    def _orders(self) -> np.ndarray:
        orders = []
        for s, fun in zip(self.model.states, self.numeric.orders, strict=True):
            values = np.broadcast_to(np.asarray(fun(*self.param_columns), dtype=float),
                                     (self.param_columns.shape[1],))
            if not np.all(np.isfinite(values)):
                raise ModelError(f"order of {s.name} is not a finite number")
            if np.ptp(values) > 0:
                raise ModelError(f"order of {s.name} differs between the neurons of a batch; "
                                 "solve each order as its own batch")
            a = float(values[0])
            if not 0 < a <= 1:
                raise ModelError(f"order of {s.name} must lie in (0, 1], got {a:g}")
            orders.append(a)
        return np.array(orders)

    def _check_finite(self) -> None:
        """A parameter that makes a right-hand side infinite or undefined is the user's
        mistake: detected cheaply at the initial state of every row, then explained by
        :func:`~splitpinn.numeric.validation.check_finite_equations` (the parameter, the neuron, the
        equation); what no parameter alone explains is reported as not finite there."""
        bad = ~np.isfinite(self.rhs(0.0, self.y0))
        if not bad.any():
            return
        check_finite_equations(self.model, self.parameters)
        i = int(np.nonzero(bad.reshape(-1, len(self.names)).any(axis=0))[0][0])
        raise ModelError(f"{self.model.name}: the equation of {self.names[i]} "
                         f"({self.numeric.rhs_exprs[i]}) is not finite at the initial state")

    # -- symbols -------------------------------------------------------------------------
    @property
    def symbols(self) -> list[sp.Symbol]:
        return self.numeric.state_symbols

    @property
    def param_symbols(self) -> list[sp.Symbol]:
        return self.numeric.param_symbols

    @property
    def args(self) -> tuple:
        """Arguments of every lambdified callable: t, I_ext, the states, the parameters."""
        return self.numeric.args

    @property
    def rhs_symbolic(self) -> list[sp.Expr]:
        """Right-hand sides (auxiliaries substituted) in states, parameters, t and I_ext."""
        return self.numeric.rhs_exprs

    @property
    def jacobian_symbolic(self) -> list[sp.Expr]:
        """Entries of the Jacobian of :attr:`rhs_symbolic` in the states (row by row)."""
        return list(self.numeric.jacobian_exprs)

    @cached_property
    def rhs_exprs(self) -> list[sp.Expr]:
        """Right-hand sides with this single neuron's parameter values substituted."""
        return [e.xreplace(self._substitution()) for e in self.rhs_symbolic]

    def stimulus_exprs(self) -> list[sp.Expr]:
        """The stimulus of every row with its parameter values substituted, one expression
        per distinct set of the values it uses (a batch that varies other parameters shares
        one)."""
        stimulus = sp.sympify(self.model.stimulus)
        used = [j for j, s in enumerate(self.param_symbols) if stimulus.has(s)]
        values = {tuple(self.param_columns[used, r]) for r in range(self.param_columns.shape[1])}
        return [stimulus.xreplace({self.param_symbols[j]: sp.Float(v)
                                   for j, v in zip(used, row, strict=True)})
                for row in sorted(values)]

    def _substitution(self) -> dict:
        if self.batch:
            raise ModelError("internal: symbolic values of a batch are per neuron; "
                             "use row(i)")
        return {s: sp.Float(v) for s, v in zip(self.param_symbols, self.param_columns[:, 0],
                                               strict=True)}

    def neurons(self) -> list[BoundModel]:
        """The neurons one by one: this model, or each row of a batch."""
        return [self] if not self.batch else [self.row(i) for i in range(self.batch)]

    def row(self, i: int) -> BoundModel:
        """The i-th neuron of a batch as a single bound model."""
        values = {k: self.param_columns[j, i] for j, k in enumerate(self.model.parameters)}
        y0 = np.atleast_2d(self.y0)[i]
        return BoundModel(self.model, values, dict(zip(self.names, y0, strict=True)),
                          self.preset)

    @property
    def fractional(self) -> bool:
        """True when any state has a Caputo order below 1."""
        return bool(np.any(self.orders < 1))

    def index(self, name: str) -> int:
        return self.names.index(name)

    # -- numeric callables -------------------------------------------------------------------
    def params(self, rows=None) -> list[np.ndarray]:
        """Parameter columns of ``rows`` (all rows by default), each shaped (R,)."""
        return list(self.param_columns if rows is None else self.param_columns[:, rows])

    @property
    def crossing_count(self) -> int:
        """The threshold functions that the marching tests: one per event, then the spike
        detector's."""
        return len(self.events) + (self.model.spike_detector is not None)

    @cached_property
    def stepwise_stimulus(self) -> bool:
        """Whether the stimulus is constant between its jumps (a constant, steps, pulse
        trains): its time derivative vanishes but for Dirac terms.  Steps end at the jumps,
        so a step then sees one value, which :meth:`step_stimulus` takes at its middle."""
        stimulus = sp.sympify(self.model.stimulus)
        if not stimulus.has(t):
            return True
        held = {e: sp.Dummy() for e in stimulus.atoms(sp.Function)  # recordings held ...
                if getattr(e, "interpolation", None) == "previous"}  # ... until the next sample
        slope = sp.diff(stimulus.xreplace(held), t).replace(sp.DiracDelta,
                                                            lambda *args: sp.S.Zero)
        return slope == 0 or sp.simplify(slope) == 0

    def step_stimulus(self, time, h, params) -> np.ndarray | None:
        """The stimulus over the steps [time, time + h] (R,) of rows with parameter columns
        ``params`` where it is stepwise but not constant (None otherwise: a constant needs
        no override, and a varying one is evaluated where it is used)."""
        if self.constant_stimulus is not None or not self.stepwise_stimulus:
            return None
        middle = np.asarray(time, dtype=float) + np.asarray(h, dtype=float) / 2
        return np.broadcast_to(self.stimulus_columns(middle, list(params)),
                               middle.shape).astype(float)

    @cached_property
    def constant_stimulus(self) -> np.ndarray | None:
        """The stimulus per row (rows,) when it does not depend on time, else None."""
        if sp.sympify(self.model.stimulus).has(t):
            return None
        rows = self.param_columns.shape[1]
        return np.broadcast_to(np.asarray(self.numeric.stimulus(0.0, *self.param_columns),
                                          dtype=float), (rows,)).copy()

    def stimulus_columns(self, time, params) -> np.ndarray:
        """I_ext at ``time`` (any shape broadcasting with the parameter columns)."""
        return np.asarray(self.numeric.stimulus(time, *params), dtype=float)

    def rhs_columns(self, time, stim, states, params) -> list:
        """Right-hand sides as a list of columns; inputs are broadcasting columns."""
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            return self.numeric.rhs(time, stim, *states, *params)

    def jacobian_columns(self, time, stim, states, params) -> list:
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            return self.numeric.jacobian(time, stim, *states, *params)

    def rhs_rows(self, time, y: np.ndarray, rows=None) -> np.ndarray:
        """Right-hand side (R, n) at times (R,) and states y (R, n) of the given rows."""
        params = self.params(rows)
        stim = self.stimulus_columns(time, params)
        out = self.rhs_columns(time, stim, list(y.T), params)
        return np.array(np.broadcast_arrays(*out, y[:, 0]), dtype=float)[:-1].T

    def jacobian_rows(self, time, y: np.ndarray, rows=None) -> np.ndarray:
        """Jacobian (R, n, n) at times (R,) and states y (R, n) of the given rows."""
        params = self.params(rows)
        stim = self.stimulus_columns(time, params)
        out = self.jacobian_columns(time, stim, list(y.T), params)
        flat = np.broadcast_arrays(*(v for row in out for v in row), y[:, 0])[:-1]
        n = len(self.names)
        return np.array(flat, dtype=float).reshape(n, n, -1).transpose(2, 0, 1)

    def rhs(self, time, y) -> np.ndarray:
        """Right-hand side of a single neuron; ``y`` has shape (n,) or (n, m) for m points
        (a batch: y (B, n), one time or B times)."""
        y = np.asarray(y, dtype=float)
        if self.batch:
            return self.rhs_rows(np.broadcast_to(time, (len(y),)), y)
        params = self.params(0)
        out = self.rhs_columns(time, self.stimulus_columns(time, params), list(y), params)
        return np.array(np.broadcast_arrays(*out, y[0]), dtype=float)[: len(self.names)]

    def stimulus(self, time):
        """I_ext of a single neuron at ``time`` (ms); scalar or array like ``time``."""
        value = self.stimulus_columns(time, self.params(0))
        return np.broadcast_to(value, np.shape(time)).astype(float) if np.ndim(time) else \
            float(value)

    def spike_times_from_trace(self, time: np.ndarray, states: Mapping[str, np.ndarray]):
        """Upward threshold crossings of the spike detector, by linear interpolation."""
        det = self.model.spike_detector
        if det is None:
            return np.array([])
        v = np.asarray(states[det.state]) - det.threshold
        idx = np.nonzero((v[:-1] < 0) & (v[1:] >= 0))[0]
        return time[idx] - v[idx] * (time[idx + 1] - time[idx]) / (v[idx + 1] - v[idx])


class BoundEvent:
    """Numeric form of an :class:`~splitpinn.declare.model.Event` for every row of a bound model:
    ``values`` (the event function g) crosses zero upward at the event; ``apply_rows`` gives
    the states after the reset."""

    def __init__(self, numeric: _NumericEvent, bound: BoundModel, index: int) -> None:
        self.index, self._numeric, self._bound = index, numeric, bound
        self.reset_index = numeric.reset_index
        self.clamp_index = numeric.clamp_index
        refractory = np.broadcast_to(
            np.asarray(numeric.refractory(*bound.param_columns), dtype=float),
            (bound.param_columns.shape[1],)).copy()
        if not np.all(np.isfinite(refractory)) or np.any(refractory < 0):
            raise ModelError(f"refractory period must be a finite number >= 0, got "
                             f"{refractory.min():g}")
        #: Refractory period per row (rows,); ``refractory`` is the single neuron's.
        self.refractory_rows = refractory
        self.refractory = float(refractory[0])

    def values(self, time, y: np.ndarray, rows=None) -> np.ndarray:
        """g at times (R,) and states (R, n) of ``rows``: one value per row."""
        params = self._bound.params(rows)
        stim = self._bound.stimulus_columns(time, params)
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            g = np.asarray(self._numeric.g(time, stim, *y.T, *params), dtype=float)
        if self._numeric.strict:
            g = strict(g)
        return np.broadcast_to(g, (len(y),))

    def apply_rows(self, time, y: np.ndarray, rows=None) -> np.ndarray:
        """States (R, n) just after the reset, from the states ``y`` (R, n) before it."""
        params = self._bound.params(rows)
        stim = self._bound.stimulus_columns(time, params)
        out = np.array(y, dtype=float)
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            values = self._numeric.reset(time, stim, *y.T, *params)
        for k, i in enumerate(self.reset_index):
            out[:, i] = values[k]
        return out


_declaration.BINDING = bind  # Model.bind
