"""Splitting planner: partition a model's states into sub-problems, classify each, and compose
their flows with a splitting scheme.

Classification (stricter than brian2's): a sub-problem is *linear* when its right-hand sides
are affine in its own states with coefficients that depend on nothing but parameters (and
``I_ext``/``t`` in the inhomogeneous part); *conditionally linear* when they are affine in its
own states with coefficients that depend on other (frozen) states; otherwise *nonlinear*.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import sympy as sp

from ..declare.model import I_ext, t
from ..errors import ModelError
from ..numeric import cache
from ..numeric.bound import BoundModel
from ..numeric.lambdify import lambdify

SOLVERS = ("pinn", "exact", "classical")

# Yoshida (1990) triple-jump weights: three Strang steps of w1, w0, w1 give order 4.
_W1 = 1.0 / (2.0 - 2.0 ** (1.0 / 3.0))
_W0 = 1.0 - 2.0 * _W1
#: Schemes and their orders.  "symmetric": the mean of Lie and Lie in the reverse order
#: (Strang's symmetrically weighted sequential splitting, 1963), second order with every
#: sub-problem advanced once over the whole step in each of its two branches.
SCHEMES = {"lie": 1, "strang": 2, "yoshida": 4, "symmetric": 2}


@dataclass
class SubProblem:
    """States advanced together with all other states frozen.

    ``f(t, I, *y)`` returns the right-hand sides of ``states`` for the full state ``y``;
    ``jacobian(t, I, *y)`` their derivatives with respect to ``states`` (diagonal where the
    components are ``decoupled``).
    """

    name: str
    states: list[str]
    index: np.ndarray
    orders: np.ndarray
    kind: str
    reason: str
    solver: str
    uses_time: bool
    decoupled: bool
    exprs: list[sp.Expr] = field(repr=False)
    f: object = field(repr=False)
    jacobian: object = field(repr=False)

    @cached_property
    def fractional(self) -> bool:
        return bool(np.any(self.orders < 1))


@dataclass
class Plan:
    """Sub-problems, the scheme and its stages ``(sub-problem index, step fraction)``.

    ``branches``: the stage sequences whose results a composed step averages, each run from
    the step's start — one (``stages``) for every scheme but "symmetric", which averages
    ``stages`` (Lie) and the same stages in reverse."""

    model: str
    subproblems: list[SubProblem]
    scheme: str
    stages: list[tuple[int, float]]

    @property
    def order(self) -> int:
        return SCHEMES[self.scheme] if len(self.subproblems) > 1 else 0

    @property
    def branches(self) -> list[list[tuple[int, float]]]:
        """The stage sequences a composed step runs from its start and averages."""
        if self.scheme == "symmetric" and len(self.subproblems) > 1:
            return [self.stages, self.stages[::-1]]
        return [self.stages]

    def describe(self) -> dict:
        """A JSON-friendly summary for metadata."""
        out = {"scheme": self.scheme,
               "subproblems": [{"states": s.states, "kind": s.kind, "solver": s.solver}
                               for s in self.subproblems],
               "stages": [[self.subproblems[i].name, c] for i, c in self.stages]}
        if len(self.branches) > 1:
            out["branches"] = [[[self.subproblems[i].name, c] for i, c in branch]
                               for branch in self.branches]
        return out

    def __str__(self) -> str:
        order = f"order {self.order}" if self.order else "no splitting error"
        lines = [f"splitting plan for {self.model}: {self.scheme} ({order}), "
                 f"{sum(map(len, self.branches))} stage(s) per step"]
        for k, s in enumerate(self.subproblems):
            frac = "" if not s.fractional else \
                f", Caputo orders {', '.join(f'{a:g}' for a in s.orders)}"
            lines.append(f"  [{k}] {s.name}: {s.kind}, solver {s.solver}{frac}")
            lines.append(f"      {s.reason}")
            for name, order, e in zip(s.states, s.orders, s.exprs, strict=True):
                text = str(e)
                lhs = f"d{name}/dt" if order == 1 else f"D^{order:g} {name}"
                lines.append(f"      {lhs} = {text if len(text) < 90 else text[:87] + '...'}")
        texts = [" -> ".join(f"{self.subproblems[i].name}({c:.6g}h)" for i, c in branch)
                 for branch in self.branches]
        lines.append(f"  stages: {texts[0]}" if len(texts) == 1 else
                     f"  stages: the mean of {' and '.join(f'[{x}]' for x in texts)}, "
                     "each from the step's start")
        return "\n".join(lines)


def default_partition(bound: BoundModel) -> list[list[str]]:
    """The membrane state (first state) alone, the recovery/gating states together."""
    names = bound.names
    return [names[:1], names[1:]] if len(names) > 1 else [names]


def classify(exprs: Sequence[sp.Expr], own: Sequence[sp.Symbol],
             others: Sequence[sp.Symbol]) -> tuple[str, str]:
    """Return ``(kind, reason)`` of the right-hand sides ``exprs`` in the states ``own``.

    A right-hand side that switches on its own states (Piecewise, Heaviside, Max, Min, Abs
    of them) is nonlinear: its derivative vanishes almost everywhere, but its coefficients
    are not constant over a step that crosses the switch."""
    switches = (sp.Piecewise, sp.Heaviside, sp.Max, sp.Min, sp.Abs)
    for e in exprs:
        for node in e.atoms(*switches):
            if node.has(*own):
                return "nonlinear", f"{e} switches on {', '.join(map(str, own))} ({node.func})"
    for e in exprs:
        for x in own:
            coeff = sp.diff(e, x)
            if coeff.has(*own):
                bad = [str(y) for y in own if coeff.has(y)]
                return "nonlinear", f"d({e})/d{x} depends on {', '.join(bad)}"
    depends = sorted({str(y) for e in exprs for x in own
                      for y in sp.diff(e, x).free_symbols if y in set(others)})
    if depends:
        return ("conditionally linear",
                f"affine in {', '.join(map(str, own))}; coefficients depend on "
                f"{', '.join(depends)} (frozen during the sub-step)")
    return "linear", f"affine in {', '.join(map(str, own))} with constant coefficients"


def scheme_stages(n: int, scheme: str) -> list[tuple[int, float]]:
    """Stages ``(sub-problem, fraction of h)`` of a scheme over ``n`` sub-problems, with
    neighbouring stages of the same sub-problem merged ("symmetric": those of its first
    branch, Lie; see :attr:`Plan.branches`)."""
    if scheme not in SCHEMES:
        raise ModelError(f"unknown scheme {scheme!r} (known: {', '.join(SCHEMES)})")
    if n == 1:
        return [(0, 1.0)]
    lie = [(k, 1.0) for k in range(n)]

    def strang(c):
        half = [(k, c / 2) for k in range(n - 1)]
        return half + [(n - 1, c)] + half[::-1]

    stages = {"lie": lie, "symmetric": lie, "strang": strang(1.0),
              "yoshida": strang(_W1) + strang(_W0) + strang(_W1)}[scheme]
    merged: list[tuple[int, float]] = []
    for k, c in stages:
        if merged and merged[-1][0] == k:
            merged[-1] = (k, merged[-1][1] + c)
        else:
            merged.append((k, c))
    return merged


def _subproblem(bound: BoundModel, states: list[str], solver: str) -> SubProblem:
    index = np.array([bound.index(s) for s in states])
    analysis = cache.cached(bound.model.key, ("sub-problem", tuple(states)),
                            lambda: _analysis(bound, index))
    kind, reason, exprs = analysis["kind"], analysis["reason"], analysis["exprs"]
    if solver != "pinn" and np.any(bound.orders[index] < 1):
        raise ModelError(f"sub-problem {', '.join(states)} has Caputo states: only pinn solves "
                         f"it against its memory, not {solver}")
    if solver == "exact" and kind == "nonlinear":
        raise ModelError(f"sub-problem {', '.join(states)} is nonlinear ({reason}); "
                         "no exact flow exists, use pinn or classical")
    if solver == "exact" and any(e.has(t) or (e.has(I_ext) and bound.model.stimulus.has(t))
                                 for e in exprs):
        raise ModelError(f"sub-problem {', '.join(states)}: time-dependent right-hand side "
                         "(stimulus), no exact flow")
    return SubProblem(
        name=",".join(states), states=list(states), index=index,
        orders=bound.orders[index], kind=kind, reason=reason, solver=solver,
        uses_time=analysis["uses_time"], decoupled=analysis["decoupled"], exprs=list(exprs),
        f=analysis["f"], jacobian=analysis["jacobian"])


def _analysis(bound: BoundModel, index: np.ndarray) -> dict:
    """What a sub-problem of the states ``index`` is, whatever the parameter values: its
    right-hand sides, their classification, whether they use time and whether its states are
    decoupled, and f and its Jacobian lambdified (with the parameters as arguments, so that
    every binding shares them); kept in :mod:`splitpinn.numeric.cache` under the model's
    key."""
    own = [bound.symbols[i] for i in index]
    others = [s for s in bound.symbols if s not in own]
    exprs = tuple(bound.rhs_symbolic[i] for i in index)
    kind, reason = classify(exprs, own, others)
    jac = [[sp.diff(e, x) for x in own] for e in exprs]
    args = bound.args
    return {"kind": kind, "reason": reason, "exprs": exprs,
            "uses_time": any(e.has(t) or e.has(I_ext) for e in exprs),
            "decoupled": all(jac[i][j] == 0 for i in range(len(own)) for j in range(len(own))
                             if i != j),
            "f": lambdify(args, list(exprs)), "jacobian": lambdify(args, jac)}


def plan(bound: BoundModel, scheme: str | None = None,
         partition: Sequence[Sequence[str]] | None = None,
         solvers: Mapping[str, str] | str = "pinn") -> Plan:
    """Build the splitting plan of ``bound``.

    ``scheme``: "lie", "strang", "yoshida" or "symmetric" (default: yoshida; for a fractional
    model, whose memory is recorded once per step, strang when only the last sub-problem is
    fractional — strang advances it once, between the half steps of the others — else
    symmetric, the mean of Lie and reversed Lie, which advances every sub-problem once per
    branch and keeps order 2 (frac-izhikevich, whose v and u are both fractional); a scheme
    that advances a fractional sub-problem in parts of a step is refused).  ``partition``: lists
    of state names that override the default (membrane state | the rest).  ``solvers``: one
    solver for all sub-problems, or a mapping from a sub-problem's first state (or its
    comma-joined name) to "pinn", "exact" or "classical"; unmentioned sub-problems use "pinn".
    """
    partition = [list(p) for p in (partition or default_partition(bound))]
    flat = [s for p in partition for s in p]
    for s in flat:
        if s not in bound.names:
            raise ModelError(f"partition names unknown state {s!r} "
                             f"(known: {', '.join(bound.names)})")
    if sorted(flat) != sorted(bound.names) or any(not p for p in partition):
        raise ModelError("partition must list every state exactly once in non-empty groups")
    if not isinstance(solvers, str | Mapping):
        raise ModelError(f"solvers must be one sub-solver's name or a mapping from sub-problems "
                         f"to names, not {type(solvers).__name__} (known: {', '.join(SOLVERS)})")
    chosen = {}
    for p in partition:
        name = ",".join(p)
        solver = solvers if isinstance(solvers, str) else \
            solvers.get(name, solvers.get(p[0], "pinn"))
        if solver not in SOLVERS:
            raise ModelError(f"unknown sub-solver {solver!r} (known: {', '.join(SOLVERS)})")
        chosen[name] = solver
    if not isinstance(solvers, str):
        for key in solvers:
            if key not in chosen and not any(key == p[0] for p in partition):
                raise ModelError(f"solver given for {key!r}, which is not a sub-problem")
    subs = [_subproblem(bound, p, chosen[",".join(p)]) for p in partition]
    if scheme is None:  # fractional: strang when its middle sub-problem holds the memory,
        # else the mean of two Lie orders (both second order, each memory advanced once)
        middle = len(subs) > 1 and [k for k, s in enumerate(subs)
                                    if s.fractional] == [len(subs) - 1]
        split = "strang" if middle else "symmetric" if len(subs) > 1 else "lie"
        scheme = split if bound.fractional else "yoshida"
    stages = scheme_stages(len(subs), scheme)
    for k, s in enumerate(subs):
        if s.fractional and [st for st in stages if st[0] == k] != [(k, 1.0)]:
            raise ModelError(f"the {scheme} scheme advances the fractional sub-problem "
                             f"{s.name} in parts of a step, but its memory is recorded once "
                             "per step: use symmetric or lie, or strang with the fractional "
                             "states last")
    return Plan(bound.model.name, subs, scheme, stages)
