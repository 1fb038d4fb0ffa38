"""Discrete update maps of continuous models: one step of a splitting composition.

Deep spiking-network papers define neurons as update rules at Δt = 1 (``V ← βV + αX``, then a
threshold test and a reset).  :func:`discretise` derives such a rule from a continuous
:class:`~splitpinn.declare.model.Model`: the sub-problems of its splitting plan, in a given order,
each advanced by one forward-Euler or exact (closed-form linear) sub-step with the input held over
the step, then the thresholds tested and the resets applied.  Everything is vectorised over a
batch of neurons (arrays of shape (batch,)); a parameter may be one value or one per neuron.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import sympy as sp
from scipy.linalg import expm

from ..declare.model import I_ext, Model, t
from ..errors import ModelError
from ..numeric.lambdify import lambdify
from ..solvers.driver import resolve_model
from ..solvers.splitting import default_partition, plan

SUBSTEPS = ("euler", "exact")


class _Stage:
    """One sub-problem's sub-step over the fraction ``fraction`` of the step."""

    def __init__(self, sub, fraction: float, exprs: list, args: tuple, substep: str) -> None:
        self.name, self.index, self.fraction = sub.name, np.asarray(sub.index), fraction
        own = [sp.Symbol(s, real=True) for s in sub.states]
        self.f = lambdify(args, exprs)
        self.exact = substep == "exact"
        if self.exact:
            if sub.kind == "nonlinear":
                raise ModelError(f"sub-problem {sub.name} is nonlinear ({sub.reason}); "
                                 "no exact sub-step exists, use substep='euler'")
            self.jacobian = lambdify(args, [[sp.diff(e, x) for x in own] for e in exprs])

    def advance(self, y: list[np.ndarray], stim: np.ndarray, params: list, dt: float) -> None:
        """Advance this sub-problem's states in ``y`` (in place) over ``fraction·dt``."""
        h = self.fraction * dt
        batch = len(stim)
        f = np.array(np.broadcast_arrays(*self.f(stim, *y, *params), stim)[:-1], dtype=float)
        if not self.exact:
            increment = h * f
        elif len(self.index) == 1:  # x' = a x + b: x(h) = x + h·φ(ha)·f(x), φ(z) = (e^z − 1)/z
            z = h * np.broadcast_to(
                np.asarray(self.jacobian(stim, *y, *params)[0][0], dtype=float), (batch,))
            safe = np.where(z == 0, 1.0, z)
            increment = h * np.where(z == 0, 1.0, np.expm1(safe) / safe) * f
        else:  # x' = A x + b: x(h) = x + [expm(h [[A, f], [0, 0]])]_{:n, n}
            n = len(self.index)
            jac = self.jacobian(stim, *y, *params)
            a = np.array([[np.broadcast_to(np.asarray(v, dtype=float), (batch,)) for v in row]
                          for row in jac]).transpose(2, 0, 1)
            augmented = np.zeros((batch, n + 1, n + 1))
            augmented[:, :n, :n] = h * a
            augmented[:, :n, n] = h * f.T
            increment = expm(augmented)[:, :n, n].T
        for k, i in enumerate(self.index):
            y[i] = y[i] + increment[k]


class _Event:
    """A threshold event: condition and resets as functions of (I_ext, *states, *params)."""

    def __init__(self, event, model: Model, args: tuple) -> None:
        cond = event.condition
        g = model.expand(cond.lhs - cond.rhs, stimulus=False)
        resets = [model.expand(sp.sympify(v), stimulus=False) for v in event.reset.values()]
        if any(e.has(t) for e in [g, *resets]):
            raise ModelError(f"{model.name}: event {cond} depends on the time t explicitly; "
                             "a discrete map does not track time")
        self.strict = cond.rel_op == ">"
        self.g = lambdify(args, g)
        self.reset = lambdify(args, resets)
        self.reset_index = [model.state_names.index(k) for k in event.reset]

    def fired(self, y: list[np.ndarray], stim: np.ndarray, params: list) -> np.ndarray:
        g = np.broadcast_to(np.asarray(self.g(stim, *y, *params), dtype=float), stim.shape)
        return g > 0 if self.strict else g >= 0


class DiscreteMap:
    """The update map returned by :func:`discretise`; see there.

    Attributes: ``model`` (name), ``dt``, ``names`` (state names), ``stages`` (pairs of
    sub-problem name and fraction of dt, in the order applied), ``check_after``, ``plan``,
    ``batch`` (the number of neurons that per-neuron parameters fix, or None).
    """

    def __init__(self, model: Model, dt: float, scheme: str, order: Sequence[str] | None,
                 substep: str, parameters: Mapping[str, float] | None,
                 partition: Sequence[Sequence[str]] | None, check_after: str | None) -> None:
        if not isinstance(dt, int | float) or not math.isfinite(dt) or dt <= 0:
            raise ModelError(f"dt must be a finite number > 0 ms, got {dt!r}")
        if substep not in SUBSTEPS:
            raise ModelError(f"unknown substep {substep!r} (known: {', '.join(SUBSTEPS)})")
        values = model.resolve_parameters(None, parameters)
        self._params = [_column(values[k], k) for k in values]
        lengths = {len(v) for v in self._params if v.ndim}
        if len(lengths) > 1:
            raise ModelError(f"per-neuron parameters have different lengths {sorted(lengths)}")
        self.batch = lengths.pop() if lengths else None
        first = {k: float(v.flat[0]) for k, v in zip(values, self._params, strict=True)}
        bound = model.bind(first)
        if bound.fractional:
            raise ModelError(f"{model.name}: discrete maps are for integer-order models")
        self.model, self.dt, self.names = model.name, float(dt), list(bound.names)
        self.plan = plan(bound, scheme=scheme,
                         partition=_ordered(default_partition(bound) if partition is None
                                            else partition, order, self.names),
                         solvers="classical")
        if len(self.plan.branches) > 1:
            raise ModelError(f"scheme {scheme!r} averages two stage sequences; a discrete map "
                             "applies one: use lie, strang or yoshida")
        args = (I_ext, *model.state_symbols, *(model.symbol(k) for k in values))
        rhs = model.rhs_expressions()
        subs = self.plan.subproblems
        for sub in subs:
            if any(rhs[i].has(t) for i in sub.index):
                raise ModelError(f"{model.name}: the equations of {sub.name} depend on the time "
                                 "t explicitly; a discrete map does not track time")
        self._stages = [_Stage(subs[k], c, [rhs[i] for i in subs[k].index], args, substep)
                        for k, c in self.plan.stages]
        self.stages = [(s.name, s.fraction) for s in self._stages]
        self.check_after = check_after
        self._check_stage = len(self._stages) - 1
        if check_after is not None:
            names = [s.name for s in subs]
            owner = next((s.name for s in subs if check_after in s.states), check_after)
            if owner not in names:
                raise ModelError(f"check_after names {check_after!r}, which is not a state or "
                                 f"sub-problem (known: {', '.join(names)})")
            self._check_stage = max(k for k, s in enumerate(self._stages) if s.name == owner)
        self._events = [_Event(ev, model, args) for ev in model.events]
        for ev in model.events:
            refractory = lambdify(args[1 + len(self.names):], sp.sympify(ev.refractory))
            if np.any(np.asarray(refractory(*self._params)) != 0):
                raise ModelError(f"{model.name}: a refractory period ({ev.refractory}); discrete "
                                 "maps have none (set it to 0, e.g. t_ref=0)")
        detector = model.spike_detector
        self._detector = None if detector is None else \
            (self.names.index(detector.state), detector.threshold)
        y0 = np.asarray(model.bind(parameters).y0, dtype=float)
        self._y0 = y0.reshape(-1, len(self.names)).T  # (n_states, 1 or batch)
        stimulus = model.stimulus
        self._input_names = {"I_ext"}
        if isinstance(stimulus, sp.Symbol) and stimulus.name in values:
            self._input_names.add(stimulus.name)
        self._default_input = None if stimulus.has(t) else \
            lambdify(args[1 + len(self.names):], stimulus)(*self._params)

    def initial(self, batch: int) -> dict[str, np.ndarray]:
        """The model's initial state for ``batch`` neurons: state name -> array (batch,)."""
        if not isinstance(batch, int | np.integer) or batch < 1:
            raise ModelError(f"batch must be a positive integer, got {batch!r}")
        self._check_batch(int(batch))
        return {n: np.array(np.broadcast_to(v, (int(batch),)))
                for n, v in zip(self.names, self._y0, strict=True)}

    def _check_batch(self, batch: int) -> None:
        if self.batch is not None and batch != self.batch:
            raise ModelError(f"the per-neuron parameters are for {self.batch} neurons, "
                             f"not {batch}")

    def _input(self, inputs: Mapping[str, np.ndarray], batch: int) -> np.ndarray:
        unknown = set(inputs) - self._input_names
        if unknown:
            raise ModelError(f"unknown input(s) {', '.join(sorted(unknown))} "
                             f"(known: {', '.join(sorted(self._input_names))})")
        if len(inputs) > 1:
            raise ModelError(f"give the stimulus once, as one of {sorted(self._input_names)}")
        if inputs:
            (name, given), = inputs.items()
            value = _floats(given, f"input {name}")
        elif self._default_input is not None:
            value = np.asarray(self._default_input, dtype=float)
        else:
            raise ModelError(f"{self.model}: the stimulus depends on time; pass its value for "
                             "this step in inputs, e.g. {'I_ext': array}")
        try:
            return np.array(np.broadcast_to(value, (batch,)), dtype=float)
        except ValueError:
            raise ModelError(f"input of shape {value.shape} does not fit a batch of "
                             f"{batch}") from None

    def step(self, state: Mapping[str, np.ndarray], inputs: Mapping[str, np.ndarray] | None = None
             ) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """One step of length dt: returns the new state (a new dict) and the boolean array of
        the neurons that spiked during it."""
        if sorted(state) != sorted(self.names):
            raise ModelError(f"state must hold exactly {', '.join(self.names)}")
        y = [np.atleast_1d(_floats(state[n], f"state {n}")) for n in self.names]
        batch = len(y[0])
        if any(v.shape != (batch,) for v in y):
            raise ModelError("every state must be a 1-D array of the same length")
        self._check_batch(batch)
        stim, params = self._input(inputs or {}, batch), self._params
        before = y[self._detector[0]].copy() if self._detector else None
        for k, stage in enumerate(self._stages):
            stage.advance(y, stim, params, self.dt)
            if k == self._check_stage:
                fired = [ev.fired(y, stim, params) for ev in self._events]
        spiked = np.zeros(batch, dtype=bool)
        for ev, mask in zip(self._events, fired, strict=True):
            if mask.any():
                after = ev.reset(stim, *y, *params)
                for j, i in enumerate(ev.reset_index):
                    y[i] = np.where(mask, after[j], y[i])
            spiked |= mask
        if self._detector:
            i, threshold = self._detector
            spiked |= (before < threshold) & (y[i] >= threshold)
        return dict(zip(self.names, y, strict=True)), spiked


def _floats(value, what: str) -> np.ndarray:
    """``value`` as a float array; ModelError naming ``what`` when it holds no numbers."""
    try:
        return np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise ModelError(f"{what}: {value!r} is not a number or an array of numbers") from None


def _column(value, name: str) -> np.ndarray:
    """A parameter value as a float array: 0-d, or 1-D with one value per neuron."""
    try:
        array = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise ModelError(f"parameter {name}: {value!r} is not a number") from None
    if array.ndim > 1 or array.size == 0 or not np.all(np.isfinite(array)):
        raise ModelError(f"parameter {name} must be a finite number or a 1-D array of them")
    return array


def _ordered(partition: Sequence[Sequence[str]], order: Sequence[str] | None,
             names: list[str]) -> list[list[str]]:
    """The groups of ``partition`` in ``order`` (each group named by one of its states)."""
    groups = [list(g) for g in partition]
    if order is None:
        return groups
    if isinstance(order, str):
        order = [order]
    for s in order:
        if s not in names:
            raise ModelError(f"order names unknown state {s!r} (known: {', '.join(names)})")
    picked = [next((g for g in groups if s in g), None) for s in order]
    if any(g is None for g in picked):
        return groups  # a state the partition does not hold: plan() reports it
    if len({id(g) for g in picked}) != len(picked) or len(picked) != len(groups):
        raise ModelError(f"order must name each sub-problem exactly once (sub-problems: "
                         f"{'; '.join(','.join(g) for g in groups)})")
    return picked


def discretise(model: Model | str, dt: float, scheme: str = "lie",
               order: Sequence[str] | None = None, substep: str = "euler",
               parameters: Mapping[str, float] | None = None, *,
               partition: Sequence[Sequence[str]] | None = None,
               check_after: str | None = None) -> DiscreteMap:
    """The discrete update map of ``model`` at step ``dt`` (ms).

    One ``step(state, inputs)`` is one step of the splitting composition ``scheme`` ("lie",
    "strang" or "yoshida") of the model's sub-problems (default partition: membrane state |
    the rest; ``partition`` overrides it), taken in ``order`` (a list naming each sub-problem
    by one of its states; default: the partition's order), each advanced by one sub-step:
    ``substep="euler"`` (x ← x + h f(x)) or ``"exact"`` (the closed-form flow of a linear or
    conditionally linear sub-problem, the other states frozen).  ``inputs`` gives the stimulus
    for the step, held constant over it: ``{"I_ext": array}`` or, when the stimulus is a
    parameter (``I``), ``{"I": array}``; without it a constant stimulus is used.  Thresholds are
    tested at the step's end (or, with ``check_after``, right after that state's sub-problem,
    as rules that test the spike before updating other states do) and the resets of the
    neurons that fired are applied at the step's end, all from the state before the reset.

    ``initial(batch)`` gives the model's initial state for ``batch`` neurons (state name ->
    array of shape (batch,)); ``step`` returns ``(state, spiked)``.  A value in ``parameters``
    is a number or a 1-D array with one value per neuron (then every batch has that length).
    Raises ModelError for bad input, a nonlinear sub-problem with ``substep="exact"``,
    explicit time dependence, fractional orders or a refractory period.
    """
    return DiscreteMap(resolve_model(model), dt, scheme, order, substep, parameters, partition,
                       check_after)
