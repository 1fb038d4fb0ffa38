"""The marching core: one loop for every time-stepping method and every batch of neurons.

Modelled on the loop of scipy's ``solve_ivp``: a :class:`~splitpinn.solvers.stepper.Stepper` tries
steps and the loop owns the rest, for R rows (neurons) at once, each with its own time, step
size, events, refractory clamp and memory:

* **steps** — adaptive steppers get their step from the local error estimate (``rtol``,
  ``atol``; RMS norm, as ``solve_ivp``); fixed-step steppers land on the output grid, and a
  failed trial is retried on halved steps.  Steps end at stimulus jumps, refractory ends and
  ``t_end``.
* **events** — a threshold crossing inside an accepted step is root-found on the stepper's
  side-effect-free ``partial`` flow (not on an interpolant); the state there is reset, the
  stepper records the jump, and the row continues from the event time.  A spike detector
  records crossings without a reset.  In a network every row stops at the first spike of
  any row (a detector's included), where its jumps are due.
* **refractoriness** — as Brian2 defines it, written once: during a row's refractory period
  [spike, spike + t_ref) its thresholds are not checked (:func:`splitpinn.numeric.kernels.fires`,
  the guard of every crossing test, Python and compiled), the states an event clamps are
  handed to the stepper as ``frozen`` (their right-hand side is zero) and the others evolve;
  a coupling jump changes the target state but cannot fire the row; when the period ends,
  a row at or past a threshold fires at that instant (``_release``).
* **output** — the stepper's dense output samples the grid inside each accepted step.
* **compiled steps** — where the stepper offers them (split-PINN with compiled composed
  steps), the rows' steps, adaptive or fixed, run in one compiled call
  (``stepper.march_compiled``: :func:`splitpinn.numeric.kernels.march_composed`, each row up to
  its next jump of a held stimulus or t_end; a network's rows in lockstep with their spike
  deliveries, :func:`~splitpinn.numeric.kernels.march_network`) under the same rules
  (:func:`~splitpinn.numeric.kernels.step_control`, the root finder
  :func:`~splitpinn.numeric.kernels.root_trial`, :func:`~splitpinn.numeric.kernels.fires`),
  events, resets and refractory periods included; the loop records the events and takes
  the step that stopped the rows.  Uncoupled fractional rows on fixed steps likewise march
  stretches of grid steps in ``stepper.run``, one row at a time, to their next refractory
  end, stimulus jump or t_end (on the grid or between grid points), up to a step in which
  an event fires; where it is a reset or a spike detector's crossing in the step after a
  grid stop the kernel root-finds it on the step's flow and the loop applies or records it
  (:meth:`_Loop._event_step`), else the loop takes that step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..declare.stimulus import breakpoints
from ..errors import ModelError, SolverError
from ..fractional.history import SAME_STEP
from ..numeric.bound import BoundModel
from ..numeric.kernels import (
    ROOT_ITERATIONS,
    SAME_TIME,
    error_norm,
    fires,
    root_tolerance,
    root_trial,
    root_update,
    step_control,
)
from .coupling import Coupling
from .dense import DenseOutput, StepRecorder
from .onsets import Onsets
from .progress import advance_to, progress_bar
from .solution import EventRecord, Solution, event_record
from .stepper import Stepper

#: A fixed-step trial that fails is retried on steps down to dt / 2**MAX_HALVINGS.
MAX_HALVINGS = 4
#: Tries per row in one call of the stepper's compiled steps.
STEP_CHUNK = 2000
#: Floats that one call of the compiled steps may fill with dense-output knots.
KNOT_BUFFER = 4_000_000
#: Events one call of the compiled steps may record per row.
EVENT_CHUNK = 256


def min_step(t):
    """Ten spacings of doubles at times ``t`` (ms): no step is shorter (``solve_ivp``'s
    limit)."""
    return 10 * np.spacing(np.maximum(np.abs(t), 1.0))


#: Tries in a row with steps shorter than :data:`SAME_TIME` before an adaptive row counts as
#: stuck.  A blow-up that an event cuts off needs a few: AdEx's upswing goes from V = −6 mV to
#: V_peak = 0 mV in 2e-9 ms (the rest of the way to infinity in 1e-10 ms), in 14 such tries.
MAX_SHORT_TRIES = 100


@dataclass
class MarchResult:
    """What the loop produced for B rows: ``y`` (B, n, N) on the grid and its derivatives
    ``dydt`` (None without traces), ``final`` (B, n), per-row ``spikes`` and ``events``,
    accepted and rejected steps."""

    y: np.ndarray | None
    dydt: np.ndarray | None
    final: np.ndarray
    spikes: list[np.ndarray]
    events: list[list[EventRecord]]
    accepted: np.ndarray
    rejected: np.ndarray
    #: Per row: dense output from the accepted steps (None without traces).
    dense: list[DenseOutput | None]


class _Crossings:
    """Event functions of the rows: one column per event, then the spike detector."""

    def __init__(self, bound: BoundModel) -> None:
        self.bound, self.events = bound, bound.events
        detector = bound.model.spike_detector
        self.detector = (bound.index(detector.state), detector.threshold) if detector else None
        self.names = [str(ev.condition) for ev in bound.model.events]
        self.count = bound.crossing_count

    def __call__(self, rows, t, y) -> np.ndarray:
        cols = [ev.values(t, y, rows) for ev in self.events]
        if self.detector:
            cols.append(y[:, self.detector[0]] - self.detector[1])
        return np.array(cols).T.reshape(len(rows), self.count)


def union_breakpoints(bound: BoundModel, t0: float, t_end: float) -> np.ndarray:
    """Stimulus jumps in (t0, t_end) of every row (a union: a step may end at another row's
    jump, which costs a little work and no accuracy)."""
    if bound.constant_stimulus is not None:
        return np.array([])
    found = {float(b) for expr in bound.stimulus_exprs() for b in breakpoints(expr, t_end)}
    return np.array(sorted(b for b in found if t0 < b < t_end))


def _locate(stepper: Stepper, crossings: _Crossings, rows, t, y, h, frozen, g0, g1, column):
    """Crossing times s in (0, h] of event ``column`` per pair, by the kernels' root finder
    (:func:`~splitpinn.numeric.kernels.root_trial`) on the stepper's ``partial`` flow, the
    pairs' trials evaluated together; returns s where g(s) >= 0 (the state just past the
    crossing)."""
    brackets = np.column_stack([np.zeros(len(rows)), h, g0, g1, np.zeros(len(rows))])
    tol = [root_tolerance(float(x)) for x in t]
    for _ in range(ROOT_ITERATIONS):
        s = np.array([root_trial(b, w) for b, w in zip(brackets, tol, strict=True)])
        idx = np.nonzero(s >= 0)[0]
        if idx.size == 0:
            break
        ys = stepper.partial(rows[idx], t[idx], y[idx], s[idx], frozen[idx])
        gs = crossings(rows[idx], t[idx] + s[idx], ys)[np.arange(len(idx)), column[idx]]
        for i, value in zip(idx, gs, strict=True):
            root_update(brackets[i], s[i], value)
    return brackets[:, 1]


def default_max_steps(t0: float, t_end: float, fixed_steps: int = 0) -> int:
    """The work limit per neuron: 10 000 steps plus 1000 per ms (split-PINN on HH at rtol
    1e-10 takes about 90 per ms), so that a stiff or blowing-up solve ends within a minute,
    plus the ``fixed_steps`` that a fixed-step method was asked for (the steps of its grid,
    and those graded after onsets: the default never refuses them)."""
    return int(10_000 + 1000 * (t_end - t0)) + int(fixed_steps)


def march(bound: BoundModel, stepper: Stepper, grid: np.ndarray, *, rtol: float = 1e-6,
          atol: float = 1e-8, h0: float = 0.01, h_max: float = np.inf, fixed_step: bool = False,
          traces: bool = True, quiet: bool = True, label: str = "",
          max_steps: int | None = None, coupling: Coupling | None = None) -> MarchResult:
    """March every row of ``bound`` from ``grid[0]`` to ``grid[-1]`` with ``stepper``,
    sampling the states on ``grid``; see the module docstring.

    ``fixed_step``: steps end at the grid points (the grid spacing is the step); otherwise
    the stepper's error estimate controls the step (first step ``h0``, at most ``h_max``).
    ``max_steps``: the work limit per row (tried steps; default :func:`default_max_steps`,
    which counts the grid's steps for fixed steps); beyond it a :class:`SolverError` names
    the limit and suggests a remedy.  ``coupling`` (a
    :class:`~splitpinn.solvers.coupling.Coupling`) makes the rows one network: they then march in
    lockstep, so that a spike reaches every neuron at its time.  Raises :class:`ModelError`
    when a row starts at or past a threshold.
    """
    loop = _Loop(bound, stepper, grid, rtol, atol, h0, h_max, fixed_step, traces, coupling)
    bar = progress_bar(grid[-1] - grid[0], label, quiet)
    try:
        loop.run(bar, max_steps or default_max_steps(
            float(grid[0]), float(grid[-1]), 0 if loop.free_steps else _planned(bound, grid)))
    finally:
        bar.close()
    return loop.result()


class _Loop:
    """The state of a march (times, states, step sizes, clamps, output) and its steps."""

    def __init__(self, bound, stepper, grid, rtol, atol, h0, h_max, fixed_step, traces,
                 coupling) -> None:
        if coupling is not None and coupling.inert and not stepper.has_own_steps:
            coupling = None  # no jumps: the rows are independent (a stacked system is not)
        self.bound, self.stepper, self.grid, self.coupling = bound, stepper, grid, coupling
        self.rtol, self.atol, self.h_max = rtol, atol, h_max
        n_rows, n = bound.batch or 1, len(bound.names)
        self.all = np.arange(n_rows)
        self.t_end = float(grid[-1])
        self.y = np.array(np.atleast_2d(bound.y0), dtype=float)
        self.t = np.full(n_rows, float(grid[0]))
        self.crossings = _Crossings(bound)
        self.before = self.crossings(self.all, self.t, self.y)
        _check_start(bound, self.crossings, self.before)
        self.out = np.empty((2, n_rows, n, len(grid))) if traces else None  # values, slopes
        self.recorder = StepRecorder(n_rows, bound.orders < 1, stepper) if traces else None
        if traces:
            self.out[0, :, :, 0] = self.y
            self.out[1, :, :, 0] = stepper.derivative(self.all, self.t, self.y,
                                                      np.zeros(self.y.shape, bool))
        self.next_out = np.ones(n_rows, dtype=int)
        self.order = stepper.error_order
        self.adaptive = not fixed_step and self.order is not None
        self.free_steps = self.adaptive or stepper.has_own_steps
        self.h = np.full(n_rows, float(h0) if self.adaptive else np.inf)
        self.refractory_end = np.full(n_rows, -np.inf)
        self.clamp = np.zeros((n_rows, n), dtype=bool)
        self.spikes: list[list[float]] = [[] for _ in self.all]
        self.records: list[list[EventRecord]] = [[] for _ in self.all]
        self.accepted = np.zeros(n_rows, dtype=int)
        self.rejected = np.zeros(n_rows, dtype=int)
        self.retried = np.zeros(n_rows, dtype=bool)  # the last try was rejected
        self.short = np.zeros(n_rows, dtype=int)  # tries in a row shorter than SAME_TIME
        self.short_from = np.zeros(n_rows)  # the time where they began
        self.breaks = union_breakpoints(bound, float(grid[0]), self.t_end)
        #: A stepwise stimulus between the breaks, per row (rows, breaks + 1)
        self.levels = _levels(bound, np.concatenate([[grid[0]], self.breaks, [self.t_end]]))
        #: Uncoupled rows on fixed steps may march stretches of grid steps in the stepper.
        self.stretches = not self.free_steps and coupling is None and hasattr(stepper, "run")
        #: Per row: where its last stretch stopped before a step that the loop takes
        self.stopped = np.full(n_rows, np.nan)
        #: The rows may march in the stepper (``stepper.march_compiled``) until it says it cannot
        self.in_kernel = True
        #: Per row and event, its refractory period (rows, E); per event, the states it clamps
        self.refractory = np.array([ev.refractory_rows for ev in bound.events]).reshape(
            len(bound.events), n_rows).T.copy()
        self.clamps = np.zeros((len(bound.events), n), dtype=bool)
        for c, event in enumerate(bound.events):
            self.clamps[c, event.clamp_index] = True

    def result(self) -> MarchResult:
        out = self.out
        dense = [None] * len(self.all) if self.recorder is None else self.recorder.dense()
        return MarchResult(None if out is None else out[0], None if out is None else out[1],
                           self.y, [np.array(s) for s in self.spikes], self.records,
                           self.accepted, self.rejected, dense)

    # -- one iteration -----------------------------------------------------------------------
    def run(self, bar, max_steps: int) -> None:
        while True:
            rows = np.nonzero(self.t < self.t_end - SAME_TIME)[0]
            if rows.size == 0:
                return
            self._release(rows)
            if self.coupling is not None:
                self._deliver_due(float(self.t[0]))
            if self.in_kernel:
                rows = self._compiled_steps(rows, max_steps)
                advance_to(bar, float(self.t.min() - self.grid[0]))
                rows = rows[self.t[rows] < self.t_end - SAME_TIME]
                if rows.size == 0:
                    continue
                self._release(rows)
            if self.stretches:
                rows = rows[[not self._stretch(r, max_steps) for r in rows]]
                advance_to(bar, float(self.t.min() - self.grid[0]))
                if rows.size == 0:
                    continue
            tr, yr = self.t[rows], self.y[rows]
            stop, frozen = self._stops(rows, tr)
            hr = stop - tr
            limited = hr < self.h[rows] * (1 - SAME_STEP)  # ends early: a jump, a clamp, t_end
            trial = self.stepper.attempt(rows, tr, yr, hr, frozen)
            ok = self._control(rows, yr, hr, limited, trial)
            self.rejected[rows[~ok]] += 1
            if (self.accepted[rows] + self.rejected[rows] > max_steps).any():
                raise SolverError(_too_much_work(self.bound, tr, max_steps, self.free_steps))
            if self.coupling is not None and not ok.all():
                ok[:] = False  # lockstep: every neuron retries
                self.h[rows] = np.min(self.h[rows])
            acc = np.nonzero(ok)[0]
            if acc.size:
                self._finish(rows[acc], tr[acc], yr[acc], trial.t[acc], trial.y[acc],
                             frozen[acc])
                self.accepted[rows[acc]] += 1
            advance_to(bar, float(self.t.min() - self.grid[0]))

    def _stretch(self, r: int, max_steps: int) -> bool:
        """March row ``r`` over the grid steps up to its next stimulus jump, refractory end or
        t_end inside the stepper (``stepper.run``), the step to such an end between grid points
        included, which stops before the first step that crosses a threshold (a reset there
        it may root-find: :meth:`_event_step`), and within the work limit ``max_steps``; False
        when there is no such stretch (the loop then takes the row's next step)."""
        row, t0, grid = self.all[r : r + 1], float(self.t[r]), self.grid
        if t0 == self.stopped[r]:
            return False  # a stretch from here would stop again before its first step
        limit, frozen = self._stretch_ends(row)
        if not self.stepper.runs_graded and \
                self.stepper.next_stop(row, self.t[row], frozen[None])[0] < np.inf:
            return False  # graded steps after an onset: one by one, unless run takes them
        first = int(np.searchsorted(grid, t0 + SAME_TIME, "right"))
        end = int(np.searchsorted(grid, limit + SAME_TIME, "right"))
        last = max(first, min(end, first + max_steps - int(self.accepted[r]
                                                           + self.rejected[r])))
        stops = grid[first:last]
        if last == end and limit > (stops[-1] if stops.size else t0) + SAME_TIME:
            stops = np.append(stops, limit)  # a refractory end or a jump between grid points
        if stops.size < 2 or self.h[r] < np.inf:
            return False
        count, ends, states, event = self.stepper.run(r, t0, self.y[r], stops, frozen,
                                                      self.before[r], self.crossings,
                                                      bool(self._armed(row)[0]))
        if count == 0:
            if event is not None:
                self._event_step(row, event, frozen)
            return event is not None
        on_grid = min(count, last - first)  # the grid stops reached
        if count < stops.size and event is None:
            self.stopped[r] = stops[count - 1]
        if self.out is not None:
            at = np.searchsorted(ends, grid[first : first + on_grid])  # ends hold the stops
            grid_states = states[at]
            where, held = np.full(len(ends), r), np.broadcast_to(frozen, states.shape)
            self.out[0, r, :, first : first + on_grid] = grid_states.T
            self.out[1, r, :, first : first + on_grid] = self.stepper.derivative(
                where[:on_grid], grid[first : first + on_grid], grid_states,
                held[:on_grid]).T
            self.next_out[r] = first + on_grid
            self.stepper.record(self.recorder, where, np.append(t0, ends[:-1]),
                                np.vstack([self.y[row], states[:-1]]), ends, states, held)
        self.t[r], self.y[r] = stops[count - 1], states[-1]
        self.before[r] = self.crossings(row, self.t[row], self.y[row])[0]
        self.accepted[r] += len(ends)  # the graded steps among the grid stops too
        if event is not None:
            self._event_step(row, event, frozen)
        return True

    def _event_step(self, row, event, frozen) -> None:
        """The step of ``row`` (an array of one) that a stretch stopped before, in which the
        kernel root-found an ``event`` = (its index, time, the states there): a reset is
        taken to the event, which fires there (:meth:`_close`); a spike detector's crossing
        is recorded, and its function marked as crossed, so that the next stretch takes the
        step on without stopping (no reset: the state there is recorded unchanged)."""
        c, time, state = event
        if c >= len(self.bound.events):
            self._spike(int(row[0]), time, "spike", state, state)
            self.before[row, c] = 0.0  # at or past zero: it fires no more in this step
            return
        self._close(row, self.t[row], self.y[row], np.array([time]), state[None],
                    frozen[None], np.array([c]))
        self.accepted[row] += 1

    def _compiled_steps(self, rows, max_steps: int) -> np.ndarray:
        """Let the stepper take the steps of ``rows`` in compiled code, their events, resets
        and refractory periods included (a network's deliveries too), up to t_end, at most
        :data:`STEP_CHUNK` tries and :data:`EVENT_CHUNK` events per call (the progress bar
        moves between calls); here the events are recorded.  Returns the rows that it could
        not move on (stuck, or at the work limit), whose step the loop takes (and reports);
        all of them where the stepper has no such path (then switched off)."""
        n, events = self.y.shape[1], self.bound.events
        width = 2 + 3 * n  # a knot: a step's start and end (time, states), its frozen states
        budget = min(STEP_CHUNK, max_steps - int(np.max(self.accepted[rows]
                                                         + self.rejected[rows])))
        if self.recorder is not None:
            budget = min(budget, max(100, KNOT_BUFFER // (width * len(rows))))
        if budget <= 0:
            return rows
        t, y, h, before = self.t[rows], self.y[rows], self.h[rows], self.before[rows]
        retried, clamp, refractory_end = self.retried[rows], self.clamp[rows], \
            self.refractory_end[rows]
        control = (self.rtol, self.atol, float(self.order or 0), float(self.h_max), budget,
                   SAME_STEP, len(events), 0.0 if self.adaptive else self._smallest)
        records = np.empty((len(rows), EVENT_CHUNK, 2 + 2 * n))
        knots = np.empty((len(rows), budget if self.recorder is not None else 0, width))
        network = None
        if self.coupling is not None:  # every row (lockstep), with its deliveries
            coupling = self.coupling
            queue = coupling.pending(EVENT_CHUNK * len(rows))
            ends = np.array([0, len(coupling)])
            last = np.array([s[-1] if s else -np.inf for s in self.spikes])
            network = (coupling.weights, coupling.target, coupling.delay, queue, ends, last)
        counts = self.stepper.march_compiled(rows, t, y, h, retried, self.t_end, self.breaks,
                                          self.levels[rows], clamp, refractory_end, before,
                                          control, self.grid, self.out,
                                          self.next_out, knots,
                                          (records, self.refractory[rows], self.clamps),
                                          network)
        if counts is None:
            self.in_kernel = False
            return rows
        if network is not None:
            self.coupling.replace(queue[ends[0] : ends[1]])
        if self.recorder is not None:
            for j in np.nonzero(counts[:, 0])[0]:
                k = knots[j, : counts[j, 0]]
                self.stepper.record(self.recorder, np.full(len(k), rows[j]), k[:, 0],
                                    k[:, 1 : 1 + n], k[:, 1 + n], k[:, 2 + n : 2 + 2 * n],
                                    k[:, 2 + 2 * n :] > 0)
        self.t[rows], self.y[rows], self.h[rows], self.before[rows] = t, y, h, before
        self.retried[rows], self.clamp[rows], self.refractory_end[rows] = retried, clamp, \
            refractory_end
        self.accepted[rows] += counts[:, 0]
        self.rejected[rows] += counts[:, 1]
        self.short[rows[counts[:, 0] + counts[:, 1] > 0]] = 0  # its tries are never short
        for j in np.nonzero(counts[:, 3])[0]:
            for time, c, *states in records[j, : counts[j, 3]].tolist():
                name = self.crossings.names[int(c)] if c < len(events) else "spike"
                self._spike(rows[j], time, name, np.array(states[:n]), np.array(states[n:]),
                            emit=False)  # a network's: queued by the kernel
            if counts[j, 4]:
                raise ModelError(self._fires_again(int(c), time))
        return rows[(counts[:, 0] + counts[:, 1] + counts[:, 3]) == 0]

    def _armed(self, rows) -> np.ndarray:
        """Per row: whether it is out of its refractory period [spike, spike + t_ref), i.e.
        its thresholds are checked (Brian2's ``not_refractory``).  A step never spans a
        refractory end: stretches and steps stop there."""
        return self.t[rows] >= self.refractory_end[rows] - SAME_TIME

    def _release(self, rows) -> None:
        """Rows that have reached the end of their refractory period: their thresholds are
        checked again from here on, and a row at or past one fires now, at the refractory
        end (as in Brian2: the spike is recorded, the reset applied, a new period starts);
        the lowest event fires where several are past."""
        ending = rows[np.isfinite(self.refractory_end[rows]) & self._armed(rows)]
        if ending.size == 0:
            return
        self.refractory_end[ending] = -np.inf  # released: nothing more to check
        self.before[ending] = g = self.crossings(ending, self.t[ending], self.y[ending])
        past = g[:, : len(self.bound.events)] >= 0
        if not past.any():
            return
        first = np.where(past.any(axis=1), np.argmax(past, axis=1), -1)
        if self.out is not None:  # the grid point at the refractory end shows the reset
            fire = ending[first >= 0]
            back = np.maximum(self.next_out[fire] - 1, 0)
            again = (self.next_out[fire] > 1) & \
                (np.abs(self.grid[back] - self.t[fire]) <= SAME_TIME)
            self.next_out[fire[again]] -= 1
        for c in np.unique(first[first >= 0]):
            self._reset(ending[first == c], int(c))

    def _stretch_ends(self, row):
        """Where a stretch of ``row`` (an array of one) without stops ends — t_end, the end of
        a refractory hold, the next stimulus jump — and its clamped states."""
        clamped = ~self._armed(row)
        limit = np.where(clamped, np.minimum(self.refractory_end[row], self.t_end), self.t_end)
        return np.minimum(limit, self._next_break(self.t[row]))[0], \
            (self.clamp[row] & clamped[:, None])[0]

    def _next_break(self, t) -> np.ndarray:
        """The first stimulus jump after each time t (inf where none is left)."""
        return np.append(self.breaks, np.inf)[np.searchsorted(self.breaks, t + SAME_TIME,
                                                              "right")]

    def _stops(self, rows, tr):
        """Where each row's next step ends, and its clamped states."""
        stop = np.full(rows.size, self.t_end)
        if self.adaptive:
            stop = np.minimum(stop, tr + self.h[rows])
        elif not self.stepper.has_own_steps:
            grid = self.grid
            nxt = grid[np.minimum(np.searchsorted(grid, tr + SAME_TIME, "right"), len(grid) - 1)]
            stop = np.minimum(np.minimum(stop, nxt), tr + self.h[rows])
        stop = np.minimum(stop, self._next_break(tr))
        clamped = ~self._armed(rows)
        frozen = self.clamp[rows] & clamped[:, None]
        if not self.free_steps:
            stop = np.minimum(stop, self.stepper.next_stop(rows, tr, frozen))
        stop = np.where(clamped, np.minimum(stop, self.refractory_end[rows]), stop)
        if self.coupling is not None:
            stop[:] = min(stop.min(), self.coupling.next_delivery(float(tr[0])))
        return stop, frozen

    def _control(self, rows, yr, hr, limited, trial) -> np.ndarray:
        """Which trials are accepted; the next step of each row (a step that ended early at
        a stop keeps the controller's step if that is longer)."""
        ok = trial.ok & np.all(np.isfinite(trial.y), axis=1)
        if self.adaptive:
            err = np.array([error_norm(*row, self.rtol, self.atol)
                            for row in zip(yr, trial.y, trial.error, strict=True)])
            err = np.where(ok & np.isfinite(err), err, np.inf)
            decisions = [step_control(*row, self.order, self.h_max) for row in
                         zip(err.tolist(), hr.tolist(), self.h[rows].tolist(),
                             limited.tolist(), self.retried[rows].tolist(), strict=True)]
            ok &= np.array([accept for accept, _ in decisions], dtype=bool)
            self.retried[rows] = ~ok
            self.h[rows] = [h for _, h in decisions]
            short = (hr < SAME_TIME) | (~ok & (self.h[rows] < SAME_TIME))
            begins = short & (self.short[rows] == 0)
            self.short_from[rows[begins]] = self.t[rows[begins]]
            self.short[rows] = np.where(short, self.short[rows] + 1, 0)
            stuck = (self.short[rows] > MAX_SHORT_TRIES) | \
                (~ok & (self.h[rows] < min_step(self.t[rows])))
            if stuck.any():  # named at the time where the short steps began
                where = np.where(short, self.short_from[rows], self.t[rows])
                raise SolverError(_stage_failure(self.stepper, where[stuck][0],
                                                 hr[stuck][0], adaptive=True))
        elif not ok.all():
            if self.stepper.has_own_steps:
                raise SolverError(f"the step from t = {self.t[rows][~ok][0]:.6g} ms gave a "
                                  "non-finite state")
            self.h[rows[~ok]] = hr[~ok] / 2
            if np.any(hr[~ok] / 2 < self._smallest):
                raise SolverError(_stage_failure(self.stepper, self.t[rows][~ok][0],
                                                 hr[~ok][0]))
        return ok

    @property
    def _smallest(self) -> float:
        """The shortest fixed step tried after failures (:data:`MAX_HALVINGS`)."""
        return (self.grid[1] - self.grid[0]) / 2**MAX_HALVINGS * (1 - SAME_STEP)

    def _first_crossings(self, rows, t0, y0, t1, y1, frozen):
        """Per row: the time s of its first reset event inside the step (inf if none), that
        event's index (−1), and the detector crossings (pair rows, times)."""
        before, after = self.before[rows], self.crossings(rows, t1, y1)
        fired = fires(before, after, np.arange(self.crossings.count), len(self.bound.events),
                      self._armed(rows)[:, None])
        first, which = np.full(len(rows), np.inf), np.full(len(rows), -1)
        if not fired.any():
            return first, which, (np.array([], int), np.array([]))
        pair_row, pair_col = np.nonzero(fired)
        s = _locate(self.stepper, self.crossings, rows[pair_row], t0[pair_row], y0[pair_row],
                    (t1 - t0)[pair_row], frozen[pair_row], before[pair_row, pair_col],
                    after[pair_row, pair_col], pair_col)
        resets = pair_col < len(self.bound.events)
        for p in np.nonzero(resets)[0][np.argsort(s[resets])[::-1]]:  # earliest wins
            first[pair_row[p]], which[pair_row[p]] = s[p], pair_col[p]
        detector = ~resets
        return first, which, (pair_row[detector], s[detector])

    def _finish(self, rows, t0, y0, t1, y1, frozen) -> None:
        """Accepted steps of ``rows``: find crossings, apply resets or record the step ends,
        sample the output grid, and move the rows on."""
        first, which, (det_row, det_s) = self._first_crossings(rows, t0, y0, t1, y1, frozen)
        earliest = first.copy()  # a network's spikes, detector crossings included
        np.minimum.at(earliest, det_row, det_s)
        lockstep = self.coupling is not None and np.isfinite(earliest).any()
        if lockstep:  # every neuron stops at the network's first spike, (t1, y1) there
            s_star = earliest.min()
            firing = first <= s_star + SAME_TIME
            first, which = np.where(firing, s_star, np.inf), np.where(firing, which, -1)
            t1 = t0 + s_star
            y1 = self.stepper.partial(rows, t0, y0, np.full(len(rows), s_star), frozen)
        t_new, y_new = t1.copy(), y1.copy()
        keep = [p for p, (r, s) in enumerate(zip(det_row, det_s, strict=True))
                if s < first[r] and t0[r] + s <= t_new[r] + SAME_TIME]
        if keep:  # detector spikes: no reset; the record holds the state at the crossing
            r, s = det_row[keep], det_s[keep]
            at = self.stepper.partial(rows[r], t0[r], y0[r], s, frozen[r])
            for j in range(len(keep)):
                self._spike(rows[r[j]], t0[r[j]] + s[j], "spike", at[j], at[j])
        resets = which >= 0
        if resets.any() and not lockstep:
            idx = np.nonzero(resets)[0]
            t_new[idx] = t0[idx] + first[idx]
            y_new[idx] = self.stepper.partial(rows[idx], t0[idx], y0[idx], first[idx],
                                              frozen[idx])
        self._close(rows, t0, y0, t_new, y_new, frozen, which)

    def _close(self, rows, t0, y0, t_new, y_new, frozen, which) -> None:
        """Steps of ``rows`` from (t0, y0) taken to (t_new, y_new), where event ``which`` fires
        (−1: none): sample the output grid, hand the steps to the dense output and the
        stepper (a reset records itself: :meth:`_reset`), move the rows on."""
        resets = which >= 0
        _sample(self.stepper, rows, t0, y0, t_new, y_new, frozen, self.out, self.next_out,
                self.grid, resets)
        if self.recorder is not None:
            self.stepper.record(self.recorder, rows, t0, y0, t_new, y_new, frozen)
        plain = ~resets
        if plain.any():
            self.stepper.accept(rows[plain], t_new[plain], y_new[plain])
        self.t[rows], self.y[rows] = t_new, y_new
        self.before[rows] = self.crossings(rows, t_new, y_new)
        for c in np.unique(which[resets]):
            self._reset(rows[resets & (which == c)], c)
        if not self.free_steps:
            self.h[rows] = np.inf  # land on the grid again
        if self.coupling is not None:
            self._deliver_due(float(self.t[0]))

    def _reset(self, rows, c: int) -> None:
        """Apply event ``c`` to ``rows`` at their current time: reset, memory, spike records,
        refractory period and clamp, and the output point at the event time.  A reset at or
        past a threshold is an error only without a refractory period (with one, the row
        fires again when the period ends, see :meth:`_release`)."""
        event, t, y_hit = self.bound.events[c], self.t[rows], self.y[rows]
        y_after = event.apply_rows(t, y_hit, rows)
        self.stepper.jump(rows, t, y_hit, y_after)
        for j, r in enumerate(rows):
            self._spike(r, t[j], self.crossings.names[c], y_hit[j], y_after[j])
        self.refractory_end[rows] = t + event.refractory_rows[rows]
        self.clamp[rows] = False
        self.clamp[np.ix_(rows, event.clamp_index)] = True
        self.y[rows] = y_after
        self.before[rows] = g = self.crossings(rows, t, y_after)
        again = (g >= 0)[:, : len(self.bound.events)].any(axis=1)
        again &= event.refractory_rows[rows] <= 0  # else it fires when the period ends
        if again.any():
            raise ModelError(self._fires_again(c, t[again][0]))
        self._output_at_event(rows, t, y_after)

    def _fires_again(self, c: int, time: float) -> str:
        """The error of a reset of event ``c`` at ``time`` that lands at or past a threshold
        without a refractory period."""
        return (f"{self.bound.model.name}: the reset of event '{self.crossings.names[c]}' at "
                f"t = {time:.6g} ms lands at or past a threshold, so the neuron would fire "
                "again at once")

    def _output_at_event(self, rows, t, y_after) -> None:
        """A grid point at the event time shows the state after it."""
        if self.out is None:
            return
        index = np.minimum(self.next_out[rows], len(self.grid) - 1)
        at = (self.next_out[rows] < len(self.grid)) & (np.abs(self.grid[index] - t) <= SAME_TIME)
        if at.any():
            r = rows[at]
            self.out[0, r, :, index[at]] = y_after[at]
            self.out[1, r, :, index[at]] = self.stepper.derivative(r, t[at], y_after[at],
                                                                   self.clamp[r])
            self.next_out[r] += 1

    def _spike(self, row: int, time: float, name: str, before, after, emit=True) -> None:
        self.spikes[row].append(float(time))
        self.records[row].append(event_record(self.bound.names, time, name, before, after))
        if self.coupling is not None and emit:
            self.coupling.emit(row, float(time))

    # -- coupling ------------------------------------------------------------------------
    def _deliver_due(self, time: float) -> None:
        """Deliver the spikes due at ``time`` (every row is there: lockstep), after the rows
        whose refractory period ends now are released (:meth:`_release`).  A neuron that a
        jump carries past its threshold fires at once unless it is refractory (then the jump
        only moves its state), and its own spike (without delay) is delivered before the
        next one fires: one at a time, lowest index first, each at most once per instant."""
        self._release(self.all)
        if not self.coupling.is_due(time):
            return  # no jump: every row's state is where its crossing test last saw it
        fired_now = np.array([bool(s) and abs(s[-1] - time) <= SAME_TIME for s in self.spikes])
        n_events = len(self.bound.events)
        while True:
            jump = self.coupling.due(time)
            if jump is not None:
                y_before = self.y.copy()
                self.y[:, self.coupling.target] += jump
                self.stepper.jump(self.all, self.t, y_before, self.y)
            g = self.crossings(self.all, self.t, self.y)
            past = fires(self.before, g, np.arange(g.shape[1]), n_events,
                         self._armed(self.all)[:, None])
            self.before = np.where(past, self.before, g)
            ready = np.nonzero(past.any(axis=1) & ~fired_now)[0]
            if ready.size == 0:
                self.before = g
                if jump is None:
                    return
                continue
            r = ready[0]
            fired_now[r] = True
            c = int(np.argmax(past[r]))
            if c < n_events:
                self._reset(np.array([r]), c)
            else:
                self._spike(r, time, "spike", self.y[r], self.y[r])
                self.before[r] = g[r]


def _levels(bound: BoundModel, edges: np.ndarray) -> np.ndarray:
    """A stepwise stimulus per row on each interval between consecutive ``edges`` (rows,
    intervals), taken at its middle (zeros where the stimulus varies smoothly: the kernels
    evaluate it at any time)."""
    middle = (edges[:-1] + edges[1:]) / 2
    rows = bound.param_columns.shape[1]
    if not bound.stepwise_stimulus:
        return np.zeros((rows, middle.size))
    params = [column[:, None] for column in bound.param_columns]
    return np.broadcast_to(bound.stimulus_columns(middle[None, :], params),
                           (rows, middle.size)).astype(float)


def _sample(stepper, rows, t0, y0, t1, y1, frozen, out, next_out, grid, truncated):
    """Fill the grid points inside each step (t0, t1] (before t1 for a step truncated at an
    event: the point at the event time gets the state after the reset)."""
    if out is None:
        return
    first = next_out[rows]
    last = np.searchsorted(grid, t1 + SAME_TIME, "right")
    last = np.where(truncated, np.searchsorted(grid, t1 - SAME_TIME, "right"), last)
    count = np.maximum(last - first, 0)
    if not count.any():
        return
    which = np.repeat(np.arange(len(rows)), count)
    index = np.concatenate([np.arange(a, b) for a, b in zip(first, first + count, strict=True)])
    values = stepper.dense(rows, t0, y0, t1, y1, frozen, which, grid[index])
    out[0, rows[which], :, index] = values
    out[1, rows[which], :, index] = stepper.derivative(rows[which], grid[index], values,
                                                       frozen[which])
    next_out[rows] = first + count


def _check_start(bound: BoundModel, crossings: _Crossings, g: np.ndarray) -> None:
    """A neuron that starts at or past a threshold would fire at t0 unseen (an upward
    crossing is needed): refuse it, naming the event."""
    past = g[:, : len(bound.events)] >= 0
    if past.any():
        row, col = np.argwhere(past)[0]
        who = f"neuron {row} of the batch" if bound.batch else bound.model.name
        raise ModelError(f"{who} starts at or past the threshold of event "
                         f"'{crossings.names[col]}'; change the initial values or the "
                         "threshold")


def _planned(bound: BoundModel, grid: np.ndarray) -> int:
    """The steps a fixed-step march on ``grid`` is asked for: the grid's; for a fractional
    model, the L2-1σ steps graded after each onset (:class:`~splitpinn.solvers.onsets.Onsets`) add
    up to r = 2/min(α) per grid step, and a whole graded stretch for one that t_end cuts."""
    steps = len(grid) - 1
    if not bound.fractional:
        return steps
    r, dt = 2.0 / float(np.min(bound.orders)), float(np.min(np.diff(grid)))
    return math.ceil(r * steps + r * max(Onsets.ONSET_SPAN, dt) / dt) + 1


def _too_much_work(bound: BoundModel, t, max_steps: int, adaptive: bool = True) -> str:
    """The work-limit error: the limit (max_steps=, ``--max-steps`` on the command line) and
    the remedies."""
    remedy = ("an implicit integrator (integrator='Radau' or 'BDF' for the reference), looser "
              "tolerances" if adaptive else "a larger dt")
    return (f"{bound.model.name}: more than {max_steps} steps before t = {float(np.min(t)):.6g}"
            " ms (the work limit max_steps=); the right-hand side may be stiff or blow up. "
            f"Raise the limit, or try {remedy}, other parameters or a shorter t_end")


def _stage_failure(stepper: Stepper, t: float, h: float, adaptive: bool = False) -> str:
    reason = getattr(stepper, "failure", "") or "no trustworthy step"
    remedy = ("the solution may blow up or the model be too stiff there; check the parameters"
              if adaptive else "try a smaller dt or the adaptive steps (fixed_step=False)")
    return f"{reason} at t = {t:.6g} ms, even on steps of {h:.3g} ms; {remedy}"


def solutions(bound, grid, result, settings, wall, stages_per_step=None,
              per_row=None) -> list[Solution]:
    """One Solution per row of a march (``stages``: the stages of the accepted steps;
    ``per_row``: more settings, one value per row, numpy arrays)."""
    out = []
    for r in range(len(result.final)):
        row = {**settings, "steps_accepted": int(result.accepted[r]),
               "steps_rejected": int(result.rejected[r]),
               **{name: values[r].item() for name, values in (per_row or {}).items()}}
        if stages_per_step:
            row["stages"] = int(result.accepted[r]) * stages_per_step
        y = result.y[r] if result.y is not None else \
            np.stack([np.atleast_2d(bound.y0)[r], result.final[r]], axis=1)
        t = grid if result.y is not None else grid[[0, -1]]
        out.append(Solution(t, y, list(bound.names), result.spikes[r],
                            {"solver": row, "wall_time_s": wall}, events=result.events[r],
                            dydt=None if result.dydt is None else result.dydt[r],
                            dense=result.dense[r]))
    return out
