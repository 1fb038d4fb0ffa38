"""The parts of a model declaration: the time and stimulus symbols, states, threshold events
and spike detectors (assembled into a :class:`~splitpinn.declare.model.Model`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import sympy as sp

#: Time symbol (ms).  Stimuli and auxiliaries may depend on it.
t = sp.Symbol("t", real=True)
#: The stimulus symbol.  Equations refer to it; the model's ``stimulus`` expression defines it.
I_ext = sp.Symbol("I_ext", real=True)

#: Names a model cannot give its states, parameters or auxiliaries.
RESERVED = {"t", "I_ext"}


@dataclass(frozen=True)
class State:
    """A state variable: name, initial value and Caputo order (1 = ordinary derivative).

    ``initial`` and ``order`` may be numbers or sympy expressions of the parameters; ``initial``
    may also use other states' symbols (meaning their initial values) and auxiliaries, e.g.
    ``u0 = b*v`` or a gate at its steady state.  ``name`` may be a string or a sympy Symbol.
    """

    name: str
    initial: float | sp.Expr
    order: float | sp.Expr = 1.0


@dataclass(frozen=True)
class Event:
    """A threshold event: when ``condition`` (``lhs >= rhs``) becomes true, apply ``reset``.

    ``reset`` maps states (names or Symbols) to new values (expressions of states and
    parameters, evaluated before the reset).  During ``refractory`` ms after the event the
    states in ``clamp`` are held at their values after the reset.  As in Brian2, ``clamp=None``
    holds only the state(s) that the condition reads (the ``V`` of ``V >= V_th``), so an
    adaptation variable reset by ``w + b`` keeps evolving; pass ``clamp`` to hold more or
    fewer states (``clamp=()`` holds none).  ``name`` (default: the condition as text) names
    the event in errors and records.  A :class:`Model` stores its events with ``clamp`` and
    ``name`` filled in.
    """

    condition: sp.Rel
    reset: Mapping[str, float | sp.Expr]
    refractory: float | sp.Expr = 0.0
    clamp: tuple[str, ...] | None = None
    name: str | None = None

    @property
    def clamped(self) -> tuple[str, ...]:
        """The states held during the refractory period (an event not yet in a
        :class:`Model`, with ``clamp=None``: the names of every symbol its condition reads)."""
        if self.clamp is not None:
            return tuple(self.clamp)
        return tuple(sorted(s.name for s in sp.sympify(self.condition).free_symbols))


@dataclass(frozen=True)
class SpikeDetector:
    """Spikes of a model without reset events: upward crossings of ``threshold`` by ``state``."""

    state: str
    threshold: float
