"""The stepper protocol: what a time-stepping method offers the marching core.

The core (:func:`splitpinn.solvers.marching.march`) owns everything around a step — step-size
control, threshold crossings, resets, refractory clamps, stimulus jumps, output sampling and
progress — for a batch of R rows (neurons) at once.  A stepper only knows how to advance:

* ``attempt(rows, t, y, h, frozen)`` tries a step of length ``h`` (R,) from ``(t, y)`` and
  returns a :class:`Trial`.  It has no side effects unless ``has_own_steps`` (see below):
  a rejected or truncated trial leaves no trace.
* ``partial(rows, t, y, s, frozen)`` is the state after a part ``0 < s ≤ h`` of the trial
  step, consistent with ``attempt`` at ``s = h``; the core root-finds crossings on it.
* ``accept(rows, t, y)`` records an accepted step end (fractional memory).
* ``jump(rows, t, y_before, y_after)`` records a reset at ``t`` (the memory keeps the jump).
* ``dense(rows, t0, y0, t1, y1, frozen, which, tq)`` samples the accepted step at times
  ``tq`` inside it, row ``which[q]`` for query ``q``; the default is cubic Hermite
  interpolation on the end values and derivatives (local order 3, error O(h⁴)).
* ``record(recorder, rows, t0, y0, t1, y1, frozen)`` hands accepted steps to the dense output
  (:mod:`splitpinn.solvers.dense`): the step itself (its ``dense`` is called when the output is
  asked for), the integrator's interpolant, or pieces for a fractional memory.

Optional fast paths, which the core uses where a stepper offers them: ``run`` (one row's
stretch of fixed grid steps, each uncoupled row in turn, which stops before a step in which
an event fires by :func:`splitpinn.numeric.kernels.crossed`; it returns the grid stops
reached and the end times and states of every step it took, graded ones included, so that
the dense output follows them, and a reset it root-found in the step it stopped before, or
None) and ``march_compiled`` (rows'
adaptive steps up to their next stop, events, resets and refractory periods included, in
compiled code).

``frozen`` (R, n) marks the states held by a refractory clamp; their right-hand side is zero.
``error_order`` is the order of the stepper's error estimate (None for a fixed-step method,
whose steps land on the output grid).  A stepper with ``has_own_steps`` (the solve_ivp
reference) chooses its own step lengths up to ``h``: its trial may end before ``t + h``,
and it is restarted after a truncated trial by ``jump`` or a changed start.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..numeric.bound import BoundModel
from .dense import hermite


@dataclass
class Trial:
    """A tried step of R rows: end times ``t`` (R,), states ``y`` (R, n), the local error
    estimate ``error`` (R, n) (None for fixed-step methods) and ``ok`` (R,), False where the
    step could not be trusted (a sub-solver's residual, a non-finite value)."""

    t: np.ndarray
    y: np.ndarray
    error: np.ndarray | None
    ok: np.ndarray


class Stepper:
    """Base of every stepper: no memory, Hermite dense output; see the module docstring."""

    error_order: int | None = None
    has_own_steps = False
    #: ``run`` takes the graded steps after an onset (``next_stop``) itself, or declines
    #: the stretch (none taken); otherwise the loop takes them one by one.
    runs_graded = False

    def __init__(self, bound: BoundModel) -> None:
        self.bound = bound

    def attempt(self, rows, t, y, h, frozen) -> Trial:
        raise NotImplementedError

    def partial(self, rows, t, y, s, frozen) -> np.ndarray:
        raise NotImplementedError

    def next_stop(self, rows, t, frozen) -> np.ndarray:
        """Fixed-step steppers may ask for an extra step end before the next grid point
        (e.g. steps graded after an onset); inf where they do not."""
        return np.full(len(rows), np.inf)

    def accept(self, rows, t, y) -> None:
        """Record accepted step ends; nothing to record without memory."""

    def jump(self, rows, t, y_before, y_after) -> None:
        """Record resets; nothing to record without memory."""

    def derivative(self, rows, t, y, frozen) -> np.ndarray:
        """The right-hand side (R, n), zero for clamped states."""
        return np.where(frozen, 0.0, self.bound.rhs_rows(t, y, rows))

    def dense(self, rows, t0, y0, t1, y1, frozen, which, tq) -> np.ndarray:
        """Cubic Hermite interpolation of the step; exact at its ends."""
        at_end = tq >= t1[which]
        out = np.empty((len(tq), y0.shape[1]))
        out[at_end] = y1[which[at_end]]
        inside = ~at_end
        if inside.any():
            f0 = self.derivative(rows, t0, y0, frozen)
            f1 = self.derivative(rows, t1, y1, frozen)
            w = which[inside]
            h = (t1 - t0)[w][:, None]
            s = (tq[inside] - t0[w])[:, None] / h
            out[inside] = hermite(s, h, y0[w], f0[w], y1[w], f1[w])
        return out

    def record(self, recorder, rows, t0, y0, t1, y1, frozen) -> None:
        """Hand the accepted steps of ``rows`` to the dense output's ``recorder``
        (:class:`~splitpinn.solvers.dense.StepRecorder`): each step evaluated by :meth:`dense`
        when asked; with a memory (fractional), which has moved on by then, linear pieces
        for the fractional states and cubic Hermite for the others."""
        if self.bound.fractional:
            if np.any(self.bound.orders >= 1):  # the integer-order states' cubic pieces
                f0, f1 = self.derivative(rows, t0, y0, frozen), self.derivative(rows, t1, y1,
                                                                                frozen)
            else:  # linear pieces only: no slopes
                f0 = f1 = np.zeros(np.shape(y0))
            recorder.add_hermite(rows, t0, y0, t1, y1, f0, f1)
        else:
            recorder.add_steps(rows, t0, y0, t1, y1, frozen)

    def march_compiled(self, rows, t, y, h, retried, t_end, breaks, levels, clamp,
                    refractory_end, before, control, grid, out, next_out, knots, events,
                    network=None):
        """Optional: take the steps of ``rows``, events and refractory periods included (and
        the deliveries of a ``network``), in compiled code
        (see :meth:`splitpinn.solvers.marching._Loop._compiled_steps`), returning counts per row
        (accepted, rejected, composed steps, events, status), or None where the stepper has
        no such path (the default)."""
        return None
