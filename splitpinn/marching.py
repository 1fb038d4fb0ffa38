"""The marching core: one loop for every time-stepping method and every batch of neurons.

Modelled on the loop of scipy's ``solve_ivp``: a :class:`~splitpinn.stepper.Stepper` tries
steps and the loop owns the rest, for R rows (neurons) at once, each with its own time, step
size, events, refractory clamp and memory:

* **steps** — adaptive steppers get their step from the local error estimate (``rtol``,
  ``atol``; RMS norm, as ``solve_ivp``); fixed-step steppers land on the output grid, and a
  failed trial is retried on halved steps.  Steps end at stimulus jumps, refractory ends and
  ``t_end``.
* **events** — a threshold crossing inside an accepted step is root-found on the stepper's
  side-effect-free ``partial`` flow (not on an interpolant); the state there is reset, the
  stepper records the jump, and the row continues from the event time.  A spike detector
  records crossings without a reset.
* **refractory clamp** — written once: the states an event clamps are handed to the stepper
  as ``frozen`` (their right-hand side is zero) until the period ends.
* **output** — the stepper's dense output samples the grid inside each accepted step.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .bound import BoundModel
from .errors import ModelError, SolverError
from .progress import advance_to, progress_bar
from .solution import Solution
from .stepper import Stepper
from .stimulus import breakpoints

#: Times closer than this (ms) count as the same instant for stops and breakpoints.
SAME_TIME = 1e-9
#: A fixed-step trial that fails is retried on steps down to dt / 2**MAX_HALVINGS.
MAX_HALVINGS = 4


@dataclass
class EventRecord:
    """One event of one neuron: its time, name (the condition, or "spike" for a detector),
    and the state before and after the reset (equal for a detector)."""

    time: float
    event: str
    before: dict
    after: dict


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
    extra: dict = field(default_factory=dict)


class _Crossings:
    """Event functions of the rows: one column per event, then the spike detector."""

    def __init__(self, bound: BoundModel) -> None:
        self.bound, self.events = bound, bound.events
        detector = bound.model.spike_detector
        self.detector = (bound.index(detector.state), detector.threshold) if detector else None
        self.names = [str(ev.condition) for ev in bound.model.events]
        self.count = len(self.events) + (1 if detector else 0)

    def __call__(self, rows, t, y) -> np.ndarray:
        cols = [ev.values(t, y, rows) for ev in self.events]
        if self.detector:
            cols.append(y[:, self.detector[0]] - self.detector[1])
        return np.array(cols).T.reshape(len(rows), self.count)


def _union_breakpoints(bound: BoundModel, t0: float, t_end: float) -> np.ndarray:
    """Stimulus jumps in (t0, t_end) of every row (a union: a step may end at another row's
    jump, which costs a little work and no accuracy)."""
    if bound.constant_stimulus is not None:
        return np.array([])
    rows = [bound] if not bound.batch else [bound.row(i) for i in range(bound.batch)]
    found = {float(b) for r in rows for b in breakpoints(r.stimulus_expr, t_end)}
    return np.array(sorted(b for b in found if t0 < b < t_end))


def _locate(stepper: Stepper, crossings: _Crossings, rows, t, y, h, frozen, g0, g1, column):
    """Crossing times s in (0, h] of event ``column`` per pair, by the Illinois variant of
    regula falsi on the stepper's ``partial`` flow; returns s where g(s) >= 0 (the state
    just past the crossing), to ~1e-13 ms."""
    a, b = np.zeros(len(rows)), h.copy()
    ga, gb = g0.copy(), g1.copy()
    side = np.zeros(len(rows), dtype=int)
    for _ in range(100):
        open_ = (b - a) > 1e-13 * np.maximum(1.0, np.abs(t)) + 1e-14
        open_ &= gb != 0
        if not open_.any():
            break
        s = np.where(open_, b - gb * (b - a) / (gb - ga), b)
        bisect = ~np.isfinite(s) | (s <= a) | (s >= b)
        s = np.where(bisect, (a + b) / 2, s)
        idx = np.nonzero(open_)[0]
        ys = stepper.partial(rows[idx], t[idx], y[idx], s[idx], frozen[idx])
        gs = crossings(rows[idx], t[idx] + s[idx], ys)[np.arange(len(idx)), column[idx]]
        upper = gs >= 0
        i_up, i_lo = idx[upper], idx[~upper]
        b[i_up], gb[i_up] = s[i_up], gs[upper]
        ga[i_up] = np.where(side[i_up] == 1, ga[i_up] / 2, ga[i_up])  # Illinois
        side[i_up] = 1
        a[i_lo], ga[i_lo] = s[i_lo], gs[~upper]
        gb[i_lo] = np.where(side[i_lo] == -1, gb[i_lo] / 2, gb[i_lo])
        side[i_lo] = -1
    return b


def march(bound: BoundModel, stepper: Stepper, grid: np.ndarray, *, rtol: float = 1e-6,
          atol: float = 1e-8, h0: float = 0.01, h_max: float = np.inf, fixed_step: bool = False,
          traces: bool = True, quiet: bool = True, label: str = "",
          max_steps: int = 1_000_000) -> MarchResult:
    """March every row of ``bound`` from ``grid[0]`` to ``grid[-1]`` with ``stepper``,
    sampling the states on ``grid``; see the module docstring.

    ``fixed_step``: steps end at the grid points (the grid spacing is the step); otherwise
    the stepper's error estimate controls the step (first step ``h0``, at most ``h_max``).
    ``max_steps``: the work limit per row (tried steps); beyond it a :class:`SolverError`
    suggests a remedy.  Raises :class:`ModelError` when a row starts at or past a threshold.
    """
    rows_all = np.arange(bound.batch or 1)
    n_rows, n = len(rows_all), len(bound.names)
    t_start, t_end = float(grid[0]), float(grid[-1])
    y = np.array(np.atleast_2d(bound.y0), dtype=float)
    t = np.full(n_rows, t_start)
    crossings = _Crossings(bound)
    before = crossings(rows_all, t, y)
    _check_start(bound, crossings, before)
    out = np.empty((2, n_rows, n, len(grid))) if traces else None  # values, derivatives
    if traces:
        out[0, :, :, 0] = y
        out[1, :, :, 0] = stepper.derivative(rows_all, t, y, np.zeros(y.shape, bool))
    next_out = np.ones(n_rows, dtype=int)
    order = stepper.error_order
    adaptive = not fixed_step and order is not None
    h = np.full(n_rows, float(h0) if adaptive else np.inf)
    refractory_end = np.full(n_rows, -np.inf)
    clamp = np.zeros((n_rows, n), dtype=bool)
    spikes: list[list[float]] = [[] for _ in rows_all]
    records: list[list[EventRecord]] = [[] for _ in rows_all]
    accepted = np.zeros(n_rows, dtype=int)
    rejected = np.zeros(n_rows, dtype=int)
    breaks = _union_breakpoints(bound, t_start, t_end)
    bar = progress_bar(t_end - t_start, label, quiet)
    try:
        while True:
            rows = np.nonzero(t < t_end - SAME_TIME)[0]
            if rows.size == 0:
                break
            tr, yr = t[rows], y[rows]
            stop = np.full(rows.size, t_end)
            if adaptive or stepper.has_own_steps:
                stop = np.minimum(stop, tr + h[rows]) if adaptive else stop
            else:
                nxt = grid[np.minimum(np.searchsorted(grid, tr + SAME_TIME, "right"),
                                      len(grid) - 1)]
                stop = np.minimum(np.minimum(stop, nxt), tr + h[rows])
            if breaks.size:
                nb = np.searchsorted(breaks, tr + SAME_TIME, "right")
                has = nb < breaks.size
                stop[has] = np.minimum(stop[has], breaks[nb[has]])
            refr = refractory_end[rows]
            clamped = tr < refr - SAME_TIME
            stop = np.where(clamped, np.minimum(stop, refr), stop)
            frozen = clamp[rows] & clamped[:, None]
            hr = stop - tr
            trial = stepper.attempt(rows, tr, yr, hr, frozen)
            ok = trial.ok & np.all(np.isfinite(trial.y), axis=1)
            if adaptive:
                scale = atol + rtol * np.maximum(np.abs(yr), np.abs(trial.y))
                err = np.sqrt(np.mean((trial.error / scale) ** 2, axis=1))
                err = np.where(ok & np.isfinite(err), err, np.inf)
                ok &= err <= 1.0
                with np.errstate(divide="ignore"):
                    factor = np.clip(0.9 * err ** (-1.0 / (order + 1)), 0.2, 5.0)
                factor = np.where(np.isfinite(err), factor, 0.25)
                grown = np.minimum(h_max, hr * factor)
                h[rows] = np.where(ok & (hr < h[rows]), np.maximum(h[rows], grown), grown)
            rejected[rows[~ok]] += 1
            if (accepted[rows] + rejected[rows] > max_steps).any():
                raise SolverError(_too_much_work(bound, tr, max_steps))
            if not ok.all() and not adaptive:
                if stepper.has_own_steps:
                    raise SolverError(f"the step from t = {tr[~ok][0]:.6g} ms gave a "
                                      "non-finite state")
                fail = ~ok
                h[rows[fail]] = hr[fail] / 2
                if np.any(hr[fail] / 2 < (grid[1] - grid[0]) / 2**MAX_HALVINGS * (1 - 1e-9)):
                    raise SolverError(_stage_failure(stepper, tr[fail][0], hr[fail][0]))
            acc = np.nonzero(ok)[0]
            if acc.size:
                _finish_steps(bound, stepper, crossings, rows[acc], tr[acc], yr[acc],
                              trial.t[acc], trial.y[acc], frozen[acc], before, t, y, h,
                              refractory_end, clamp, spikes, records, out, next_out, grid,
                              adaptive or stepper.has_own_steps)
                accepted[rows[acc]] += 1
            advance_to(bar, float(t.min()) - t_start)
    finally:
        bar.close()
    return MarchResult(None if out is None else out[0], None if out is None else out[1], y,
                       [np.array(s) for s in spikes], records, accepted, rejected)


def _finish_steps(bound, stepper, crossings, rows, t0, y0, t1, y1, frozen, before, t, y, h,
                  refractory_end, clamp, spikes, records, out, next_out, grid, free_steps):
    """Accepted steps of ``rows``: find crossings, apply resets or record the step ends,
    sample the output grid, and move the rows on."""
    after = crossings(rows, t1, y1)
    fired = (before[rows] < 0) & (after >= 0)
    hit = fired.any(axis=1)
    t_new, y_new, g_new = t1.copy(), y1.copy(), after.copy()
    reset_rows = np.zeros(len(rows), dtype=bool)
    which = np.full(len(rows), -1)
    if hit.any():
        pair_row, pair_col = np.nonzero(fired)
        s = _locate(stepper, crossings, rows[pair_row], t0[pair_row], y0[pair_row],
                    (t1 - t0)[pair_row], frozen[pair_row], before[rows[pair_row], pair_col],
                    after[pair_row, pair_col], pair_col)
        n_events = len(bound.events)
        first = np.full(len(rows), np.inf)
        for p in np.argsort(s):
            r, c = pair_row[p], pair_col[p]
            if c >= n_events:
                continue
            if s[p] < first[r]:
                first[r], which[r] = s[p], c
        for p in np.nonzero(pair_col >= n_events)[0]:  # detector: spikes, no reset
            r = pair_row[p]
            if s[p] < first[r]:
                spikes[rows[r]].append(float(t0[r] + s[p]))
                records[rows[r]].append(_record(bound, t0[r] + s[p], "spike", y1[r], y1[r]))
        reset_rows = which >= 0
        if reset_rows.any():
            idx = np.nonzero(reset_rows)[0]
            t_hit = t0[idx] + first[idx]
            y_hit = stepper.partial(rows[idx], t0[idx], y0[idx], first[idx], frozen[idx])
            t_new[idx], y_new[idx] = t_hit, y_hit
    # output inside the (possibly truncated) steps, then move on
    _sample(stepper, rows, t0, y0, t_new, y_new, frozen, out, next_out, grid, reset_rows)
    plain = np.nonzero(~reset_rows)[0]
    if plain.size:
        stepper.accept(rows[plain], t_new[plain], y_new[plain])
    for c in np.unique(which[reset_rows]):
        idx = np.nonzero(reset_rows & (which == c))[0]
        event = bound.events[c]
        y_after = event.apply_rows(t_new[idx], y_new[idx], rows[idx])
        stepper.jump(rows[idx], t_new[idx], y_new[idx], y_after)
        for j, r in enumerate(rows[idx]):
            spikes[r].append(float(t_new[idx][j]))
            records[r].append(_record(bound, t_new[idx][j], crossings.names[c], y_new[idx][j],
                                      y_after[j]))
        refractory_end[rows[idx]] = t_new[idx] + event.refractory_rows[rows[idx]]
        clamp[rows[idx]] = False
        clamp[np.ix_(rows[idx], event.clamp_index)] = True
        y_new[idx] = y_after
        g_new[idx] = crossings(rows[idx], t_new[idx], y_after)
        again = (g_new[idx] >= 0)[:, : len(bound.events)].any(axis=1)
        if again.any():
            raise ModelError(f"{bound.model.name}: the reset of event '{crossings.names[c]}' "
                             f"at t = {t_new[idx][again][0]:.6g} ms lands at or past a "
                             "threshold, so the neuron would fire again at once")
        if out is not None:  # a grid point at the event time shows the state after it
            at = next_out[rows[idx]] < len(grid)
            at &= np.abs(grid[np.minimum(next_out[rows[idx]], len(grid) - 1)]
                         - t_new[idx]) <= SAME_TIME
            for j in np.nonzero(at)[0]:
                r = rows[idx][j]
                out[0, r, :, next_out[r]] = y_after[j]
                out[1, r, :, next_out[r]] = stepper.derivative(
                    rows[idx][j : j + 1], t_new[idx][j : j + 1], y_after[j : j + 1],
                    clamp[r : r + 1])[0]
                next_out[r] += 1
        if not free_steps:
            h[rows[idx]] = np.inf  # land on the grid again
    if not free_steps:
        h[rows[plain]] = np.inf
    t[rows], y[rows], before[rows] = t_new, y_new, g_new


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


def _record(bound, time, name, before, after) -> EventRecord:
    return EventRecord(float(time), name, dict(zip(bound.names, map(float, before), strict=True)),
                       dict(zip(bound.names, map(float, after), strict=True)))


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


def _too_much_work(bound: BoundModel, t, max_steps: int) -> str:
    return (f"{bound.model.name}: more than {max_steps} steps before t = {float(np.min(t)):.6g}"
            " ms; the right-hand side may be stiff or blow up. Try an implicit integrator "
            "(integrator='Radau' or 'BDF' for the reference), looser tolerances, other "
            "parameters or a shorter t_end")


def _stage_failure(stepper: Stepper, t: float, h: float) -> str:
    reason = getattr(stepper, "failure", "") or "no trustworthy step"
    return (f"{reason} at t = {t:.6g} ms, even on steps of {h:.3g} ms; try a smaller dt "
            "or the adaptive steps (fixed_step=False)")


def solutions(bound, grid, result, settings, wall, stages_per_step=None) -> list[Solution]:
    """One Solution per row of a march (``stages``: the stages of the accepted steps)."""
    out = []
    for r in range(len(result.final)):
        row = {**settings, "steps_accepted": int(result.accepted[r]),
               "steps_rejected": int(result.rejected[r])}
        if stages_per_step:
            row["stages"] = int(result.accepted[r]) * stages_per_step
        y = result.y[r] if result.y is not None else \
            np.stack([np.atleast_2d(bound.y0)[r], result.final[r]], axis=1)
        t = grid if result.y is not None else grid[[0, -1]]
        out.append(Solution(t, y, list(bound.names), result.spikes[r],
                            {"solver": row, "wall_time_s": wall}, events=result.events[r],
                            dydt=None if result.dydt is None else result.dydt[r]))
    return out
