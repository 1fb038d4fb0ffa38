"""Reassembly: march the splitting composition step by step, with events and memory.

Each step of length h runs the plan's stages (each sub-problem advanced by its sub-solver
with the other states frozen).  Threshold crossings are located inside a step by root
finding on the composed flow as a smooth function of the step length (not by step
detection); the reset is applied and marching continues from the event time.  States
clamped by a refractory period are frozen until it ends.  A stage whose PINN misses its
residual tolerance is retried on halved steps; if that fails the solve stops with a
:class:`SolverError` naming the time and the sub-problem.
"""

from __future__ import annotations

import time as _time

import numpy as np
from threadpoolctl import threadpool_limits

from .errors import ModelError, SolverError, StageFailure
from .events import crossing_function, locate_crossing
from .model import BoundModel
from .progress import advance_to, progress_bar
from .solution import Solution, output_grid
from .splitting import Plan, plan
from .stimulus import breakpoints
from .subsolvers import (
    AdamLBFGSPINN,
    ClassicalRK4,
    ExactFlow,
    LeastSquaresPINN,
    Stage,
)

TRAINERS = {"least-squares": LeastSquaresPINN, "adam-lbfgs": AdamLBFGSPINN}
#: Split-PINN step (ms) for models that declare no ``default_dt``: integer order, fractional.
DEFAULT_DT = {False: 0.02, True: 0.01}
MAX_HALVINGS = 4


class Marcher:
    """Advances the full state by composed sub-flows; see the module docstring."""

    def __init__(self, bound: BoundModel, the_plan: Plan, trainer, memory=None) -> None:
        self.bound, self.plan, self.memory = bound, the_plan, memory or {}
        self.solvers = {"pinn": trainer, "exact": ExactFlow(bound),
                        "classical": ClassicalRK4(bound)}
        self.frozen = np.zeros(len(bound.names), dtype=bool)
        self.stages_run = 0

    def step(self, time: float, y: np.ndarray, h: float) -> np.ndarray:
        """The state after one composed step of length ``h`` from ``(time, y)``."""
        y = y.copy()
        if h == 0.0:
            return y
        clock = np.zeros(len(self.plan.subproblems))
        for k, c in self.plan.stages:
            sub = self.plan.subproblems[k]
            solver = self.solvers[sub.solver]
            stage = Stage(time + clock[k] * h, c * h, y, self.frozen, self.memory.get(k))
            try:
                y[sub.index] = solver.advance(sub, stage)
            except StageFailure as exc:
                y[sub.index] = self._retry(solver, sub, stage, exc)
            clock[k] += c
            self.stages_run += 1
        return y

    def _retry(self, solver, sub, stage: Stage, failure: StageFailure) -> np.ndarray:
        """Advance ``stage`` in 2, 4, ... equal parts; fractional stages cannot be split
        (their memory is recorded per full step), so they fail at once."""
        if stage.memory is None:
            for level in range(1, MAX_HALVINGS + 1):
                parts = 2**level
                y = stage.y.copy()
                try:
                    for j in range(parts):
                        part = Stage(stage.t0 + j * stage.h / parts, stage.h / parts, y,
                                     stage.frozen)
                        y[sub.index] = solver.advance(sub, part)
                    return y[sub.index]
                except StageFailure as exc:
                    failure = exc
        raise SolverError(f"sub-problem {sub.name} failed at t = {stage.t0:.6g} ms "
                          f"(stage of {stage.h:.3g} ms): {failure}")


def _next_stop(time: float, target: float, refractory_end: float, breaks: np.ndarray) -> float:
    """End of the next step from ``time``: the grid point ``target``, or earlier the end of a
    refractory period or a stimulus discontinuity (not closer than 1e-9 ms to either end)."""
    stop = target
    if time < refractory_end < stop:
        stop = refractory_end
    inside = breaks[(breaks > time + 1e-9) & (breaks < stop - 1e-9)]
    return float(inside[0]) if inside.size else stop


def _check_fractional_resets(bound: BoundModel) -> None:
    """Refuse a reset of a Caputo state that no refractory clamp holds: with the jump kept
    in the memory, the L1 relation right after it is singular and undoes part of the reset
    at every step, so the answer depends on dt (see README, "Known limits")."""
    for event in bound.events:
        clamped = set(event.clamp_index) if event.refractory > 0 else set()
        loose = [bound.names[i] for i in event.reset_index
                 if bound.orders[i] < 1 and i not in clamped]
        if loose:
            raise ModelError(
                f"{bound.model.name}: the reset of fractional state(s) {', '.join(loose)} has no "
                "refractory clamp; with the memory kept it is ill posed (dt-dependent), so "
                "split-PINN refuses it. Use order 1 for them, a refractory clamp, or "
                "--method reference to see the dt-dependent L1 answer.")


def default_step(bound: BoundModel) -> float:
    """The split-PINN step (ms) used when none is given: the model's ``default_dt`` if it
    declares one, else :data:`DEFAULT_DT`."""
    return bound.model.default_dt or DEFAULT_DT[bound.fractional]


def _event_function(marcher: Marcher, values, time: float, y: np.ndarray, k: int):
    """s -> k-th crossing value after a composed step of length s from (time, y)."""
    return lambda s: values(time + s, marcher.step(time, y, s))[k]


def _make_trainer(bound: BoundModel, trainer: str, seed: int, options: dict):
    if trainer not in TRAINERS:
        raise ModelError(f"unknown trainer {trainer!r} (known: {', '.join(TRAINERS)})")
    try:
        return TRAINERS[trainer](bound, seed=seed, **options)
    except TypeError as exc:
        raise ModelError(f"trainer {trainer}: {exc}") from None


def solve_split(bound: BoundModel, t_end: float, dt: float | None = None, *,
                scheme: str | None = None, trainer: str = "least-squares",
                solvers="pinn", partition=None, history: str | None = None, seed: int = 0,
                quiet: bool = True, trainer_options: dict | None = None) -> Solution:
    """Split-PINN solve of ``bound`` on [0, t_end] ms with step ``dt`` ms (also the output
    grid; default :func:`default_step`).

    ``scheme``, ``partition`` and ``solvers`` go to :func:`splitpinn.splitting.plan`;
    ``trainer`` picks the PINN trainer ("least-squares" or "adam-lbfgs") and
    ``trainer_options`` its keyword settings (e.g. ``{"features": 16, "tol": 1e-9}``);
    ``history`` ("full"/"fast") the fractional memory; ``seed`` the PINN initialisation.

    Returns a :class:`Solution` whose ``meta["solver"]`` holds the plan, the trainer
    settings, the number of stages and the largest accepted residual.  Raises ModelError for
    bad options or an unclamped fractional reset, SolverError when a stage misses its
    residual tolerance even on halved steps (naming the time and the sub-problem).
    """
    with threadpool_limits(limits=1, user_api="blas"):
        return _solve_split(bound, t_end, dt, scheme, trainer, solvers, partition, history,
                            seed, quiet, trainer_options)


def _solve_split(bound, t_end, dt, scheme, trainer, solvers, partition, history, seed, quiet,
                 trainer_options) -> Solution:
    # BLAS is limited to one thread: the sub-problems are tiny, and a thread pool only adds
    # synchronisation overhead (20x slower expm under load was measured).
    start = _time.perf_counter()
    _check_fractional_resets(bound)
    dt = dt or default_step(bound)
    the_plan = plan(bound, scheme, partition, solvers)
    pinn = _make_trainer(bound, trainer, seed, trainer_options or {})
    grid = output_grid(t_end, dt)
    memory = None
    if bound.fractional:
        from .fractional_memory import SplitMemory

        memory = SplitMemory(bound, the_plan, t_end, grid[1] - grid[0], history)
    marcher = Marcher(bound, the_plan, pinn, memory.stage_memories if memory else None)
    crossing_values = crossing_function(bound)
    out = np.empty((len(bound.names), len(grid)))
    out[:, 0] = y = bound.y0.copy()
    before = crossing_values(0.0, y)
    spikes: list[float] = []
    refractory_end, clamp = -np.inf, []
    breaks = breakpoints(bound.stimulus_expr, t_end)  # steps end where the stimulus jumps
    bar = progress_bar(t_end, f"split-PINN {bound.model.name}", quiet)
    for n in range(1, len(grid)):
        time, target = grid[n - 1], grid[n]
        while time < target:
            stop = _next_stop(time, target, refractory_end, breaks)
            marcher.frozen[:] = False
            if time < refractory_end:
                marcher.frozen[clamp] = True
            h = stop - time
            y_new = marcher.step(time, y, h)
            after = crossing_values(stop, y_new)
            fired = np.nonzero((before < 0) & (after >= 0))[0]
            where = {k: locate_crossing(_event_function(marcher, crossing_values, time, y, k), h)
                     for k in fired}
            k = min(where, key=where.get) if where else None
            if k is None or k >= len(bound.events):  # no event (a detector spike: no reset)
                if k is not None:
                    spikes.append(time + where[k])
                if memory:
                    memory.record(stop, y_new)
                time, y, before = stop, y_new, after
                continue
            s, event = where[k], bound.events[k]
            y_hit = marcher.step(time, y, s)
            time = time + s
            spikes.append(time)
            y = event.apply(time, y_hit)
            if memory:
                memory.record(time, y_hit)
                memory.record(time, y)  # the jump: the reset stays in the memory
            refractory_end, clamp = time + event.refractory, event.clamp_index
            before = crossing_values(time, y)
        out[:, n] = y
        advance_to(bar, target)
    bar.close()
    settings = {"name": "split-pinn", "scheme": the_plan.scheme, "plan": the_plan.describe(),
                "dt": float(grid[1] - grid[0]), "seed": seed, **pinn.settings(),
                "stages": marcher.stages_run, "max_residual": pinn.max_residual}
    if memory:
        settings["history"] = memory.kind
        settings["memory_floats"] = memory.memory_floats
    return Solution(grid, out, list(bound.names), np.array(spikes),
                    {"solver": settings, "wall_time_s": _time.perf_counter() - start})
