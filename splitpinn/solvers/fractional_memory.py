"""Memory of the fractional sub-problems of a split-PINN solve.

The sub-problems with a Caputo order below 1 keep one L2-1σ history (full or fast) of their
states per neuron, the memory of the L2-1σ reference.  The marching core records the solution
at every accepted step end, and at an event both the state before and after the reset (a
jump), so the memory survives resets; the stepper adds a same-time record with the state
unchanged at every kink (see :mod:`splitpinn.solvers.onsets`).
"""

from __future__ import annotations

import numpy as np

from ..errors import ModelError
from ..fractional import HISTORY_KINDS, default_history_kind, make_history
from ..fractional.history import SAME_STEP
from ..numeric.bound import BoundModel
from ..numeric.compiled import memory_rules
from .splitting import Plan

#: A fast memory's sum of exponentials holds the kernel from the grid step over this on;
#: younger pieces stay exact (see :class:`SplitMemory`).
RESOLVED_STEPS = 1000


def choose_history(kind: str | None, n_steps: int) -> str:
    """``kind`` if given (checked), else the default for a run of ``n_steps`` steps."""
    if kind is None:
        return default_history_kind(n_steps)
    if kind not in HISTORY_KINDS:
        raise ModelError(f"unknown history {kind!r} (known: {', '.join(HISTORY_KINDS)})")
    return kind


class SplitMemory:
    """One L2-1σ history (full or fast) per neuron of the states of ``plan``'s fractional
    sub-problems, in their order (``index``: those states among the model's):
    ``histories[row]``; ``memory[k][row]`` is what sub-problem k's stage reads of it, its
    states' part.  One history for all of them: they record the same states at the same
    times with one σ, each state's memory is its own (the same as one history per
    sub-problem), and the kernel march of a neuron (:meth:`~splitpinn.solvers.composition.
    CompositionStepper.run`) takes one memory.  The histories run the march's compiled rules
    (``compiled``; False: the same as plain Python).

    Bookkeeping: the histories record the composed state at step ends only, so a fractional
    sub-problem must be advanced once per step, over the whole step, from the step's start —
    the last record.  Lie plans do that; a Strang plan does it for its middle sub-problem,
    advanced once between the half steps of the others (which leave its states alone, so
    its stage starts from the recorded state).  :func:`splitpinn.solvers.splitting.plan` refuses a
    plan that advances a fractional sub-problem in parts of a step.

    σ: an unsplit plan takes Alikhanov's σ = 1 − min(α)/2, as the L2-1σ reference does.  A
    split plan takes σ = 1/2: its relation holds at t + σh with the other states frozen, and
    Strang freezes them at the middle of the step (with σ = 1 − α/2 the mismatch costs an
    order; L2-1σ stays second order for σ in [1/2, 1]).  Fast histories by default (each
    step evaluates the memory at every collocation point, where a full one costs O(N):
    slower than the fast one from ~100 steps on); they resolve the kernel down to a
    thousandth of the grid step (:data:`RESOLVED_STEPS`; the reference's: a tenth).  Pieces
    younger than that stay exact in the window, where a stage integrates each at every
    collocation point, and the steps graded after an onset are far shorter than the grid
    step: frac-LIF's kernel needs 88 exponentials instead of 72, and its graded steps cost
    about a third.
    """

    def __init__(self, bound: BoundModel, plan: Plan, grid: np.ndarray,
                 kind: str | None = None, tol: float = 1e-8, compiled: bool = True) -> None:
        self.kind = "fast" if kind is None else choose_history(kind, len(grid) - 1)
        sigma = 0.5 if len(plan.subproblems) > 1 else None
        y0 = np.atleast_2d(bound.y0)
        t0, t_end = float(grid[0]), float(grid[-1])
        t_end += abs(t_end - t0) * SAME_STEP + 1e-12
        dt_min = float(np.min(np.diff(grid))) / RESOLVED_STEPS
        fractional = [k for k, sub in enumerate(plan.subproblems) if sub.fractional]
        #: The model's states the histories hold
        self.index = np.concatenate([plan.subproblems[k].index for k in fractional])
        self.histories = [make_history(self.kind, bound.orders[self.index], t0, row[self.index],
                                       t_end=t_end, dt_min=dt_min, tol=tol, scheme="l21sigma",
                                       sigma=sigma) for row in y0]
        rules = memory_rules(compiled)
        for history in self.histories:
            history.rules = rules
        #: Sub-problem k's states among the histories' (None: all of them)
        self.columns, start = {}, 0
        for k in fractional:
            size = len(plan.subproblems[k].index)
            whole = size == len(self.index)
            self.columns[k] = None if whole else np.arange(start, start + size)
            start += size

    def __contains__(self, k: int) -> bool:
        return k in self.columns

    def __getitem__(self, k: int) -> list:
        """Per neuron, sub-problem k's part of its history, as its stage reads it."""
        return [_StageMemory(history, self.columns[k]) for history in self.histories]

    @property
    def memory_floats(self) -> int:
        """Floats held by all histories (grows with the steps for "full", not for "fast")."""
        return sum(h.memory_floats for h in self.histories)

    def record(self, rows, times, y) -> None:
        """Append the states ``y`` (R, n) at ``times`` (R,) of ``rows`` (the same time as a
        row's last record: a jump)."""
        for r, time, state in zip(rows, times, y, strict=True):
            self.histories[r].append(float(time), state[self.index])


class _StageMemory:
    """Some states of a history (``columns``; None: all), as a sub-problem's stage reads them:
    its ``sigma`` and its memory terms at the stage's points (:meth:`terms`)."""

    def __init__(self, history, columns: np.ndarray | None) -> None:
        self.history, self.columns = history, columns

    @property
    def sigma(self) -> float:
        return self.history.sigma

    def terms(self, times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """H, c (P, states) for steps from the last record to ``times`` (P,)."""
        H, c = self.history.terms(times)
        if self.columns is None:
            return H, c
        return H[:, self.columns], c[:, self.columns]
