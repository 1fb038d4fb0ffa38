"""Onsets of a fractional march: where the solution starts to behave like (t − t_on)^α.

After an onset — the start, the end of a refractory clamp, a stimulus jump — the solution of a
Caputo equation behaves like (t − t_on)^α, and its derivative jumps there (a kink).  An L2-1σ
march keeps second order only if its steps are graded towards t_on
(:func:`splitpinn.fractional.onset_refinement`) and every kink is marked in the memory (a same-time
record with the state unchanged, so that no quadratic piece of the memory straddles it).
:class:`Onsets` is that bookkeeping, per row of a batch, for every fixed-step fractional
stepper of the marching core (the L2-1σ reference and fractional split-PINN): it proposes the
graded step ends (``next_stop``) and says where the stepper must mark a kink; the stepper
owns the memory and records the marks.
"""

from __future__ import annotations

import numpy as np

from ..fractional import onset_refinement
from ..numeric.kernels import SAME_TIME


class Onsets:
    """Graded stretches after onsets and the clamp seen so far, for ``n_rows`` rows.

    ``orders``: the Caputo orders of the states (the grading follows the smallest);
    ``grid``: the output grid, whose smallest spacing is the step; ``jumps``: the stimulus
    jump times (each an onset and a kink); ``graded``: False for a scheme that does not grade
    (L1, Adams), whose ``next_stop`` is then inf everywhere.
    """

    #: Length (ms) of the graded stretch after an onset (or one step, if that is longer).
    ONSET_SPAN = 1.0

    def __init__(self, orders, grid: np.ndarray, jumps: np.ndarray, n_rows: int = 1,
                 graded: bool = True) -> None:
        self.orders, self.grid, self.jumps, self.graded = orders, grid, jumps, graded
        self.step = float(np.min(np.diff(grid)))
        t0 = float(grid[0])
        self.onset = np.full(n_rows, t0)
        self.stretch_onset = np.full(n_rows, np.nan)  # the onset of each row's ``stretch``
        self.stretch: list[np.ndarray] = [np.zeros(0)] * n_rows
        self.active = np.ones((n_rows, len(orders)), dtype=bool)

    def graded_stretch(self, onset: float) -> np.ndarray:
        """Step ends graded towards ``onset`` over at least ONSET_SPAN through the grid points
        there, ending on one (:func:`~splitpinn.fractional.onset_refinement`): the quadratic
        pieces of L2-1σ need neighbouring steps of comparable length, so no step may be a
        sliver next to a grid point.  Where the grid ends sooner (t_end just after a
        refractory end or a jump), the stretch is the start of the one a longer grid would
        have, cut at its last point."""
        grid, length = self.grid, max(self.ONSET_SPAN, self.step)
        last = min(np.searchsorted(grid, onset + length - SAME_TIME), len(grid) - 1)
        points = grid[np.searchsorted(grid, onset + SAME_TIME, "right") : last + 1]
        if not points.size:
            return np.zeros(0)
        offsets = onset_refinement(points - onset, max(points[-1] - onset, length), self.step,
                                   self.orders, min_step=1e-12 * abs(onset))
        ends = onset + offsets[1:]
        near = np.minimum(np.searchsorted(points, ends - SAME_TIME), points.size - 1)
        at_point = np.abs(points[near] - ends) <= SAME_TIME  # onset + (t - onset) may miss t
        ends[at_point] = points[near[at_point]]
        return ends

    def at_jump(self, t) -> np.ndarray:
        """Per time in ``t``: whether the stimulus jumps there."""
        t = np.atleast_1d(np.asarray(t, dtype=float))
        if not self.jumps.size:
            return np.zeros(t.shape, dtype=bool)
        return np.min(np.abs(self.jumps[None, :] - t[:, None]), axis=1) <= SAME_TIME

    def next_stop(self, rows, t, frozen) -> np.ndarray:
        """Per row, the next graded step end after its onset (inf outside the graded
        stretch); a stimulus jump at t, or a hold that ends at t (fewer states frozen than so
        far), is an onset."""
        out = np.full(len(rows), np.inf)
        for i, later in enumerate(self.remaining(rows, t, frozen)):
            out[i] = later[0] if later.size else np.inf
        return out

    def remaining(self, rows, t, frozen) -> list[np.ndarray]:
        """Per row, the graded step ends after t (more than SAME_TIME on; none outside the
        graded stretch, or for a scheme that does not grade), as :meth:`next_stop` finds
        them one by one."""
        if not self.graded:
            return [np.zeros(0)] * len(rows)
        jump, out = self.at_jump(t), []
        for i, r in enumerate(rows):
            time = float(t[i])
            released = (~frozen[i]).sum() > self.active[r].sum()
            onset = time if jump[i] or released else self.onset[r]
            if self.stretch_onset[r] != onset:
                self.stretch[r], self.stretch_onset[r] = self.graded_stretch(onset), onset
            out.append(self.stretch[r][self.stretch[r] > time + SAME_TIME])
        return out

    @staticmethod
    def merge(stops: np.ndarray, graded: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The step ends a march takes through the grid ``stops`` (increasing) when the graded
        ends ``graded`` are inserted: from each end, the nearer of the next grid stop and
        the next graded end more than SAME_TIME on (as the marching loop takes them, but a
        graded end within SAME_TIME of a grid stop is that grid stop); graded ends past the
        last grid stop are left for later.  Returns (ends, whether each is a grid stop)."""
        graded = graded[graded < stops[-1] - SAME_TIME]
        if graded.size:
            near = np.searchsorted(stops, graded)
            gap = np.minimum(np.abs(stops[np.minimum(near, stops.size - 1)] - graded),
                             np.abs(stops[np.maximum(near - 1, 0)] - graded))
            graded = graded[gap > SAME_TIME]
        if graded.size > 1 and np.min(np.diff(graded)) <= SAME_TIME:
            kept = [graded[0]]
            for end in graded[1:]:
                if end > kept[-1] + SAME_TIME:
                    kept.append(end)
            graded = np.array(kept)
        ends = np.concatenate([stops, graded])
        order = np.argsort(ends, kind="stable")
        return ends[order], (order < stops.size)

    def clamp_changes(self, rows, frozen) -> np.ndarray:
        """Per row: whether its clamp differs from the one seen last (a kink to mark)."""
        return np.any(self.active[rows] == frozen, axis=1)

    def set_clamp(self, rows, t, frozen) -> None:
        """Take the clamp of ``rows`` at times ``t``; a hold that ends there is an onset."""
        active = ~np.asarray(frozen, dtype=bool)
        released = active.sum(axis=1) > self.active[rows].sum(axis=1)
        self.onset[np.asarray(rows)[released]] = np.asarray(t, dtype=float)[released]
        self.active[rows] = active

    def start(self, rows, t) -> None:
        """An onset of ``rows`` at times ``t`` (a stimulus jump)."""
        self.onset[rows] = t


#: Grid stops per call of :func:`march_stretch`'s kernel: the arrays it is given cost
#: O(chunk), and the next threshold crossing usually comes long before the stretch ends.
COMPILED_CHUNK = 4096


def march_stretch(history, stops: np.ndarray, graded: np.ndarray, before: np.ndarray, call,
                  after_record):
    """March a single neuron's memory ``history`` over the grid ``stops`` with the
    ``graded`` step ends inserted (:meth:`Onsets.merge`) in the kernel of
    :func:`~splitpinn.numeric.compiled.march_uniform`, chunk by chunk (COMPILED_CHUNK grid
    stops and the graded ends among them), until it stops before a step (a crossing, a
    failed step).  ``call(chunk, keep, state, before)`` runs the kernel and returns
    its :class:`~splitpinn.numeric.compiled.Marched`.  Each chunk's steps are recorded in
    the memory at once, and ``after_record(t, y)`` is told the last.  Returns (grid stops
    reached, the end times and states of every step taken: the graded ones included, the
    kernel's ``event`` where it stopped before one: see
    :class:`~splitpinn.numeric.compiled.Marched`)."""
    done, times, states, event = 0, [], [], None
    while done < len(stops):
        grid = stops[done : done + COMPILED_CHUNK]
        chunk, keep = Onsets.merge(grid, graded[graded > history.t_last + SAME_TIME])
        state = history.march_state(len(chunk))
        marched = call(chunk, keep, state, before)
        count = len(marched.states)
        reached = int(np.sum(keep[:count]))
        if count:
            history.take(state)
            after_record(float(chunk[count - 1]), marched.states[-1])
            times.append(chunk[:count])
            states.append(marched.states)
        done, before, event = done + reached, marched.before, marched.event
        if reached < len(grid):
            break
    if not times:
        return 0, np.empty(0), np.empty((0, len(history.u_last))), event
    return done, np.concatenate(times), np.concatenate(states), event
