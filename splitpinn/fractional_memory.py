"""Memory of the fractional sub-problems of a split-PINN solve.

Each sub-problem with a Caputo order below 1 keeps one L1 history (full or fast) of its states
per neuron.  The marching core records the solution at every accepted step end, and at an
event both the state before and after the reset (a jump), so the memory survives resets.
"""

from __future__ import annotations

import numpy as np

from .bound import BoundModel
from .fractional import default_history_kind, make_history
from .splitting import Plan


def choose_history(kind: str | None, n_steps: int) -> str:
    """``kind`` if given (checked), else the default for a run of ``n_steps`` steps."""
    if kind is None:
        return default_history_kind(n_steps)
    from .registry import get

    get("history", kind)  # a ModelError listing the known kinds
    return kind


class SplitMemory:
    """L1 histories of the fractional sub-problems of ``plan``: ``memory[k][row]`` for
    sub-problem index k and neuron ``row``."""

    def __init__(self, bound: BoundModel, plan: Plan, grid: np.ndarray,
                 kind: str | None = None, tol: float = 1e-8) -> None:
        self.kind = choose_history(kind, len(grid) - 1)
        self.plan = plan
        y0 = np.atleast_2d(bound.y0)
        t0, t_end = float(grid[0]), float(grid[-1])
        dt = float(np.min(np.diff(grid)))
        self.histories = {
            k: [make_history(self.kind, sub.orders, t0, row[sub.index],
                             t_end=t_end + abs(t_end - t0) * 1e-9 + 1e-12, dt_min=dt * 1e-3,
                             tol=tol) for row in y0]
            for k, sub in enumerate(plan.subproblems) if sub.fractional}

    def __contains__(self, k: int) -> bool:
        return k in self.histories

    def __getitem__(self, k: int) -> list:
        return self.histories[k]

    @property
    def memory_floats(self) -> int:
        """Floats held by all histories (grows with the steps for "full", not for "fast")."""
        return sum(h.memory_floats for rows in self.histories.values() for h in rows)

    def record(self, rows, times, y) -> None:
        """Append the states ``y`` (R, n) at ``times`` (R,) of ``rows`` (the same time as a
        row's last record: a jump)."""
        for k, histories in self.histories.items():
            index = self.plan.subproblems[k].index
            for r, time, state in zip(rows, times, y, strict=True):
                histories[r].append(float(time), state[index])
