"""Memory of the fractional sub-problems of a split-PINN solve.

Each sub-problem with a Caputo order below 1 keeps one L1 history (full or fast) of its states.
The marcher records the solution at every accepted step end, and at an event both the state
before and after the reset (a jump), so the memory survives resets.
"""

from __future__ import annotations

import numpy as np

from .errors import ModelError
from .fractional import default_history_kind, make_history
from .model import BoundModel
from .splitting import Plan

HISTORY_KINDS = ("full", "fast")


def choose_history(kind: str | None, n_steps: int) -> str:
    """``kind`` if given (checked), else the default for a run of ``n_steps`` steps."""
    if kind is None:
        return default_history_kind(n_steps)
    if kind not in HISTORY_KINDS:
        raise ModelError(f"unknown history {kind!r} (known: full, fast)")
    return kind


class SplitMemory:
    """L1 histories of the fractional sub-problems of ``plan``, keyed by sub-problem index."""

    def __init__(self, bound: BoundModel, plan: Plan, t_end: float, dt: float,
                 kind: str | None = None, tol: float = 1e-8) -> None:
        self.kind = choose_history(kind, int(np.ceil(t_end / dt)))
        self.plan = plan
        self.stage_memories = {
            k: make_history(self.kind, sub.orders, 0.0, bound.y0[sub.index],
                            t_end=t_end * (1 + 1e-9), dt_min=dt * 1e-3, tol=tol)
            for k, sub in enumerate(plan.subproblems) if sub.fractional}

    @property
    def memory_floats(self) -> int:
        """Floats held by all histories (grows with the steps for "full", not for "fast")."""
        return sum(h.memory_floats for h in self.stage_memories.values())

    def record(self, time: float, y: np.ndarray) -> None:
        """Append the state ``y`` at ``time`` (same time as the last record: a jump)."""
        for k, history in self.stage_memories.items():
            history.append(time, y[self.plan.subproblems[k].index])
