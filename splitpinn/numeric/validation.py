"""Checks of a solve's input that fail early with one clear :class:`ModelError`.

* :func:`check_finite_equations`: parameter values that make a right-hand side, the stimulus or
  an event infinite or undefined (``tau = 0`` in ``(...)/tau``), named with the equation.
* :func:`check_output_size`: an output grid too large to hold in memory, refused before any work.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping

import numpy as np
import sympy as sp

from ..declare.model import Model
from ..errors import ModelError

_UNDEFINED = (sp.zoo, sp.nan, sp.oo, -sp.oo)
_SHOWN = 100  # characters of an equation quoted in a message


def _expressions(model: Model):
    """(what, expression as declared) for everything a solve evaluates: the states'
    right-hand sides, the stimulus, event conditions and resets."""
    for name, state in zip(model.state_names, model.states, strict=True):
        lhs = f"d{name}/dt" if state.order == 1 else f"D^{state.order} {name}"
        yield f"the equation of {name}", sp.Eq(sp.Symbol(lhs), model.equations[name],
                                                 evaluate=False)
    yield "the stimulus", sp.Eq(sp.Symbol("I_ext"), model.stimulus, evaluate=False)
    for k, event in enumerate(model.events):
        yield f"the condition of event {k}", event.condition
        for state, value in event.reset.items():
            yield f"the reset of {state} (event {k})", sp.Eq(model.symbol(state),
                                                              sp.sympify(value), evaluate=False)


def _shown(relation) -> str:
    """``lhs = rhs`` (or the condition), cut to a readable length."""
    text = f"{relation.lhs} = {relation.rhs}" if isinstance(relation, sp.Eq) else str(relation)
    return text if len(text) <= _SHOWN else text[:_SHOWN - 3] + "..."


def _through(model: Model, relation, values) -> str:
    """", through auxiliary NAME = ..." for the first auxiliary that ``relation`` uses
    (directly or through others) and ``values`` break; "" if none does."""
    pending, used = [relation], []
    while pending:
        for s in pending.pop().free_symbols:
            name = str(s)
            if name in model.auxiliaries and name not in used:
                used.append(name)
                pending.append(model.auxiliaries[name])
    for name in used:
        if _broken(model.expand(model.auxiliaries[name], stimulus=False), values):
            return f", through auxiliary {name} = {model.auxiliaries[name]}"
    return ""


def _broken(expr: sp.Expr, values: Mapping[sp.Symbol, float]) -> bool:
    """True when ``values`` make ``expr`` infinite, undefined or not real."""
    new = expr.xreplace({s: sp.Float(v) for s, v in values.items()})
    return new.has(*_UNDEFINED) or (new.has(sp.I) and not expr.has(sp.I))


def _culprits(expr: sp.Expr, values: Mapping[sp.Symbol, float]) -> list[sp.Symbol]:
    """The parameters that alone break ``expr``, else all of its parameters."""
    alone = [s for s in values if _broken(expr, {s: values[s]})]
    return alone or sorted(values, key=str)


def _batch_size(values: Mapping[str, object]) -> int:
    sizes = {np.size(v) for v in values.values() if np.ndim(v) == 1}
    return max(sizes, default=0)


def check_finite_equations(model: Model, parameters: Mapping[str, float | np.ndarray]) -> None:
    """Raise :class:`ModelError` when the parameter values make a right-hand side (auxiliaries
    substituted), the stimulus, an event condition or a reset infinite, undefined or complex,
    naming the parameter(s) to blame and the equation.

    ``parameters`` overrides the model's defaults; a value may be a 1-D array (a batch of
    neurons), each of whose distinct combinations is checked.
    """
    given = {**model.parameters, **parameters}
    batch = _batch_size(given)
    for what, relation in _expressions(model):
        value = relation.rhs if isinstance(relation, sp.Eq) else relation.lhs - relation.rhs
        expr = model.expand(value, stimulus=False)
        used = [p for p in given if model.symbol(p) in expr.free_symbols]
        seen = set()
        for i in range(max(batch, 1)):
            values = {model.symbol(p): float(np.ravel(given[p])[i] if np.ndim(given[p])
                                             else given[p]) for p in used}
            key = tuple(values.values())
            if key in seen:
                continue
            seen.add(key)
            if _broken(expr, values):
                blamed = _culprits(expr, values)
                names = ", ".join(f"{s} = {values[s]:g}" for s in blamed)
                where = f" (neuron {i})" if batch else ""
                raise ModelError(
                    f"{model.name}: parameter{'s' if len(blamed) > 1 else ''} {names}{where} "
                    f"make{'' if len(blamed) > 1 else 's'} {what} infinite or undefined"
                    f"{_through(model, relation, values)}: {_shown(relation)}")


def _memory_bytes() -> int | None:
    """Physical memory of this machine in bytes, or None where unknown."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def default_output_limit() -> int:
    """Half of this machine's physical memory (8 GiB where unknown)."""
    memory = _memory_bytes()
    return memory // 2 if memory else 8 * 2**30


def check_output_size(n_points: float, n_states: int, batch: int = 1,
                      limit_bytes: int | None = None, traces: bool = True) -> None:
    """Raise :class:`ModelError` when an output grid of ``n_points`` times, ``n_states`` states
    and ``batch`` neurons (float64, the time axis included) would take more than
    ``limit_bytes`` (default :func:`default_output_limit`), saying its size and the remedies.
    Without ``traces`` (spike times only) only the time axis counts.
    """
    limit = default_output_limit() if limit_bytes is None else limit_bytes
    size = 8.0 * n_points * ((n_states * batch if traces else 0) + 1)
    if not math.isfinite(size) or size > limit:
        who = f" x {batch} neurons" if batch > 1 else ""
        what = f"{n_points:.3g} times x {n_states} states{who}" if traces else \
            f"{n_points:.3g} times"
        remedy = "use a larger dt or a shorter t_end"
        if traces:  # the remedy named where it applies: Python, and solve on the command line
            remedy += (", or keep spike times only (traces=False in Python, --no-traces on "
                       "the command line)")
        raise ModelError(
            f"the output grid of {what} needs {size / 2**30:.3g} GiB, more than the "
            f"{limit / 2**30:.3g} GiB allowed at once; {remedy}")
