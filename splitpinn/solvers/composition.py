"""Split-PINN: the splitting plan's stages composed into one step, as a stepper of the
marching core, and :func:`solve_split`.

One composed step of length h runs the plan's stages (each sub-problem advanced by its
sub-solver with the other states frozen) for all rows at once.  Error control (adaptive
steps, the default) is by step doubling on the composed step: the step is taken once with h
and twice with h/2, and (y_{h/2,h/2} − y_h)/(2^p − 1) estimates the local error of the two
half steps — splitting and sub-solver error together (p: the scheme's order, 4 for an unsplit
plan, whose PINN error is spectral).  The estimate controls the step.  Where the plan splits,
the half steps extrapolated by it, y_{h/2,h/2} + estimate, are kept (local extrapolation, as
embedded Runge–Kutta pairs keep their higher-order solution): the splitting error is a
series in powers of h, and its leading term cancels, so the kept step is one order more
accurate, two for the symmetric schemes (strang, yoshida: their local error holds odd powers
of h only), and the tolerance bounds the estimate of a less accurate step than the one kept.
An unsplit plan keeps its half steps: its error is the PINN's own, with no such series.

Fractional models march with a fixed step: their memory ties every step to the whole mesh,
so a trial half step would need a tentative memory.  A fractional sub-problem's PINN meets
the L2-1σ relation of its memory at every collocation time (second order for every α, see
:class:`~splitpinn.solvers.subsolvers.LeastSquaresPINN`); its steps are graded after every onset and
every kink is marked in the memory (:class:`~splitpinn.solvers.onsets.Onsets`, as in the L2-1σ
reference), which keeps the march second order where the solution behaves like
(t − t_on)^α.  Each neuron of an uncoupled run marches its grid and graded
steps in the kernel of the reference's march, the plan's composed step per step
(:func:`~splitpinn.numeric.kernels.memory_compose`: the fractional sub-problems' fits against
the memory, :func:`~splitpinn.numeric.kernels.memory_stage`, the integer-order ones' stages
as in the compiled composed step), up to the step before a threshold fires.  The rows of an
integer-order plan march in :func:`~splitpinn.numeric.kernels.march_composed`, adaptive or
on fixed steps, their events and refractory periods included.
"""

from __future__ import annotations

import time as _time

import numpy as np
from threadpoolctl import threadpool_limits

from ..errors import ModelError
from ..numeric.bound import BoundModel
from ..numeric.compiled import Composition, ModelKernels, plan_fit
from .marching import march, solutions, union_breakpoints
from .onsets import Onsets, march_stretch
from .solution import Solution
from .splitting import Plan, plan
from .stepper import Stepper, Trial
from .subsolvers import ClassicalRK4, ExactFlow, Stage

#: The kernels' stage kind of each sub-solver without a trial space (in a plan's iterations)
FLOWS = {flow.name: flow.kind for flow in (ExactFlow, ClassicalRK4)}

#: Default tolerances of the adaptive split-PINN (chosen so that the benchmark targets hold).
DEFAULT_RTOL, DEFAULT_ATOL = 1e-7, 1e-9


class CompositionStepper(Stepper):
    """The plan's composition as a stepper; see the module docstring."""

    def __init__(self, bound: BoundModel, the_plan: Plan, trainer, fixed: bool,
                 memory=None, grid: np.ndarray | None = None, compiled: bool = True) -> None:
        super().__init__(bound)
        self.plan, self.trainer, self.memory = the_plan, trainer, memory
        trainer.jit = compiled  # its stages run compiled, or as the same plain Python
        self.compiled = _compiled_composition(bound, the_plan, trainer, compiled) \
            if memory is None else None
        self.onsets = None if memory is None else Onsets(
            bound.orders, grid, union_breakpoints(bound, float(grid[0]), float(grid[-1])),
            bound.batch or 1)
        self.solvers = {"pinn": trainer, "exact": ExactFlow(bound, compiled),
                        "classical": ClassicalRK4(bound, compiled)}
        #: Each neuron's steps marched in the kernel (see :meth:`run`)
        self.fit = _memory_fit(bound, the_plan, trainer, memory)
        self.kernels = ModelKernels(bound, compiled)
        self.error_order = None if fixed else (the_plan.order or 4)
        self.stages_per_step = sum(map(len, the_plan.branches)) * (1 if fixed else 2)
        #: Per neuron: the stages evaluated, trials, root finding and output included
        self.stage_evaluations = np.zeros(bound.batch or 1, dtype=np.int64)
        #: Per neuron: the largest residual of a stage that met its tolerance
        self.max_residual = np.zeros(bound.batch or 1)
        self.failure = ""

    def compose(self, rows, t, y, h, frozen):
        """The states (R, n) after one composed step of length ``h`` (R,), and a mask of the
        rows whose stages all succeeded.  With a memory (:attr:`runs_graded`), each row's
        step from the memory's last record (t) by the kernel march, which leaves the memory
        as it was."""
        done = self._compiled("__call__", rows, t, y, h, frozen)
        if done is not None:
            return self._account(rows, *done)
        if self.runs_graded:
            return self._memory_steps(rows, t, y, h, frozen)
        ok = np.ones(len(rows), dtype=bool)
        params = self.bound.param_columns[:, rows]
        stimulus = self.bound.step_stimulus(t, h, params)
        ends = []
        for stages in self.plan.branches:  # one, or two averaged (scheme "symmetric")
            x = y.copy()
            clock = np.zeros(len(self.plan.subproblems))
            for k, c in stages:
                sub = self.plan.subproblems[k]
                memory = None if self.memory is None or k not in self.memory else \
                    [self.memory[k][r] for r in rows]
                stage = Stage(t + clock[k] * h, c * h, x, frozen, params, memory, stimulus)
                values, good = self.solvers[sub.solver].advance(sub, stage)
                if sub.solver == "pinn":
                    self._worst(rows[good], self.trainer.last_residual[good])
                if not good.all() and not self.failure:
                    self.failure = f"sub-problem {sub.name}: no stage met its tolerance"
                x[:, sub.index] = values
                ok &= good
                clock[k] += c
                self.stage_evaluations[rows] += 1
            ends.append(x)
        return sum(ends) / len(ends) if len(ends) > 1 else ends[0], ok

    def next_stop(self, rows, t, frozen) -> np.ndarray:
        if self.onsets is None:
            return super().next_stop(rows, t, frozen)
        return self.onsets.next_stop(rows, t, frozen)

    def _clamp(self, rows, t, y, frozen) -> None:
        """Where a row's clamp changes at t (a hold begins or ends): a kink, marked in the
        memory; the end of a hold is an onset."""
        if self.onsets is None:
            return
        changed = self.onsets.clamp_changes(rows, frozen)
        if changed.any():
            self.memory.record(rows[changed], t[changed], y[changed])
            self.onsets.set_clamp(rows[changed], t[changed], frozen[changed])

    def _compiled(self, method: str, *args):
        """``method`` of the composed step in one kernel (:class:`~splitpinn.numeric.compiled.
        Composition`) on ``args``, or None where there is none."""
        return None if self.compiled is None else getattr(self.compiled, method)(*args)

    def _account(self, rows, y1, ok, residual, failed_at):
        """The compiled composed step's states and mask, with :meth:`compose`'s accounting
        (stage count, largest accepted residual, the first failure)."""
        self.stage_evaluations[rows] += len(self.plan.stages)
        self._worst(rows[ok], residual[ok])
        if not ok.all() and not self.failure:
            k = failed_at[~ok].max()
            name = self.plan.subproblems[k].name if k >= 0 else "the composed step"
            self.failure = f"sub-problem {name}: no stage met its tolerance"
        return y1, ok

    def attempt(self, rows, t, y, h, frozen) -> Trial:
        self._clamp(rows, t, y, frozen)
        if self.error_order is None:
            y1, ok = self.compose(rows, t, y, h, frozen)
            return Trial(t + h, y1, None, ok)
        return Trial(t + h, *self._doubled(rows, t, y, h, frozen))

    def _doubled(self, rows, t, y, h, frozen):
        """Step doubling (see the module docstring): (the two half steps, extrapolated where
        the plan splits, the estimate of their local error, whether every stage met its
        tolerance)."""
        both, ok = self.compose(np.concatenate([rows, rows]), np.concatenate([t, t]),
                                np.concatenate([y, y]), np.concatenate([h, h / 2]),
                                np.concatenate([frozen, frozen]))
        big, half = both[: len(rows)], both[len(rows):]
        small, ok2 = self.compose(rows, t + h / 2, half, h / 2, frozen)
        error = (small - big) / (2**self.error_order - 1)
        kept = small + error if len(self.plan.subproblems) > 1 else small
        return kept, error, ok[: len(rows)] & ok[len(rows):] & ok2

    def march_compiled(self, rows, t, y, h, retried, t_end, breaks, levels, clamp,
                    refractory_end, before, control, grid, out, next_out, knots, events,
                    network=None):
        """The composed steps, adaptive or fixed, events included, in one compiled call
        (:meth:`Composition.march <splitpinn.numeric.compiled.Composition.march>`): those of
        :meth:`attempt`, the dense output of :meth:`dense`, the root finding on
        :meth:`partial`, the refractory periods; None without that path, else counts (R, 5)
        of accepted and rejected steps, composed steps, events recorded and the status."""
        done = self._compiled(
            "march", rows, t, y, h, retried, t_end, breaks, levels, clamp, refractory_end,
            before, control, grid, out, next_out, knots, events, network)
        if done is None:
            return None
        counts, worst = done
        self.stage_evaluations[rows] += counts[:, 2] * len(self.plan.stages)
        self._worst(rows, worst)
        return counts

    def partial(self, rows, t, y, s, frozen):
        if self.error_order is None:
            return self.compose(rows, t, y, s, frozen)[0]
        return self._doubled(rows, t, y, s, frozen)[0]

    def derivative(self, rows, t, y, frozen) -> np.ndarray:
        done = self._compiled("derivative", rows, t, y, frozen)
        return super().derivative(rows, t, y, frozen) if done is None else done

    def dense(self, rows, t0, y0, t1, y1, frozen, which, tq) -> np.ndarray:
        """One composed step from the step start to each query time: dense output of the
        scheme's order (not an interpolant), at half the cost of :meth:`partial`."""
        out = y1[which].copy()
        inside = tq < t1[which]
        if inside.any():
            w = which[inside]
            out[inside] = self.compose(rows[w], t0[w], y0[w], tq[inside] - t0[w], frozen[w])[0]
        return out

    @property
    def runs_graded(self) -> bool:
        """Whether :meth:`run` takes the graded steps after an onset (in the kernel)."""
        return self.fit is not None

    def run(self, row, t, y, stops, frozen, before, crossings, armed):
        """Fixed steps of neuron ``row`` from (t, y) with its memory, in the kernels: accept
        composed steps to ``stops`` until an event would fire in a step
        (:func:`splitpinn.numeric.kernels.crossed`; ``armed``: the neuron is out of its
        refractory period) or a step fails; returns (how many stops were reached, the end
        times and states of every step taken: the graded ones among them included, and a
        reset the kernel root-found in the next step or None).  Where
        a plan's every stage the kernels take (:func:`_memory_fit`), by the kernel of
        :func:`~splitpinn.numeric.compiled.march_uniform`, the graded steps after an onset
        included; otherwise none are taken (the marching loop takes the steps one by one, or
        :meth:`march_compiled` the integer-order ones)."""
        if not self.runs_graded:
            return 0, None, None, None
        rows, time, frozen = np.array([row]), np.array([t]), frozen[None]
        self._clamp(rows, time, y[None], frozen)
        graded = self.onsets.remaining(rows, time, frozen)[0]
        return self._marched(row, y, stops, graded, frozen[0], before, armed)

    def _march_row(self, row, y, chunk, keep, state, before, frozen, armed, locate=False):
        """The kernel march (:func:`~splitpinn.numeric.compiled.march_uniform`, split-PINN's
        composed step per step: :func:`~splitpinn.numeric.kernels.memory_compose`) of neuron
        ``row`` from the states ``y`` at its memory's last record (``state``: that memory's
        arrays) to the stops ``chunk``; ``locate``: a reset in the step after the last one
        is root-found in the kernel (:class:`~splitpinn.numeric.compiled.Marched`)."""
        from ..numeric.compiled import march_uniform

        bound, history = self.bound, self.memory.histories[row]
        params = bound.param_columns[:, row : row + 1]
        starts = np.append(history.t_last, chunk[:-1])
        held = bound.step_stimulus(starts, chunk - starts, params)
        if held is None:
            constant = bound.constant_stimulus
            held = np.full(chunk.shape, 0.0 if constant is None else float(constant[row]))
        marched = march_uniform(
            self.kernels, history.tables, state, chunk, keep, chunk,
            np.ascontiguousarray(held),
            np.broadcast_to(bound.stimulus_columns(chunk, list(params)), chunk.shape)
            .astype(float), np.ascontiguousarray(params[:, 0], dtype=float), ~frozen, before,
            None, 0.0, 0, n_events=len(bound.events), armed=armed, fit=self.fit, y=y,
            index=self.memory.index, locate=locate)
        self.stage_evaluations[row] += len(marched.states) * sum(map(len, self.plan.branches))
        self._worst(np.array([row]), np.array([marched.residual]))
        return marched

    def _worst(self, rows, residuals) -> None:
        """Keep each neuron's largest accepted stage residual (``max_residual``)."""
        np.maximum.at(self.max_residual, rows, residuals)

    def _memory_steps(self, rows, t, y, h, frozen):
        """:meth:`compose` by the kernel march: each row one step from its memory's last
        record (t) to t + h, on a copy of the memory's arrays, no event checked."""
        out, ok = y.copy(), np.zeros(len(rows), dtype=bool)
        for i, row in enumerate(rows):
            state = self.memory.histories[row].march_state(1)
            marched = self._march_row(row, y[i], np.array([t[i] + h[i]]), np.ones(1, bool),
                                      state, np.ones(self.bound.crossing_count), frozen[i],
                                      False)
            ok[i] = len(marched.states) == 1
            out[i] = marched.states[0] if ok[i] else np.nan
        if not ok.all() and not self.failure:  # the march does not say which stage missed
            names = ", ".join(sub.name for sub in self.plan.subproblems)
            self.failure = f"sub-problem {names}: no stage met its tolerance"
        return out, ok

    def _marched(self, row, y, stops, graded, frozen, before, armed):
        """(count, states, steps) of the kernel march of :meth:`run` of neuron ``row`` from
        the states ``y`` (:func:`~splitpinn.solvers.onsets.march_stretch`)."""
        start = [y]  # the states at the memory's last record

        def call(chunk, keep, state, before):
            marched = self._march_row(row, start[0], chunk, keep, state, before, frozen, armed,
                                      locate=True)
            if len(marched.states):
                start[0] = marched.states[-1]
            return marched

        def after_record(time, y):
            self._kink_at_jump(np.array([row]), np.array([time]), y[None])

        return march_stretch(self.memory.histories[row], stops, graded, before, call,
                             after_record)

    def accept(self, rows, t, y) -> None:
        """Record the step ends; where the stimulus jumps, also a kink, and an onset."""
        if self.memory is not None:
            self.memory.record(rows, t, y)
            self._kink_at_jump(rows, t, y)

    def _kink_at_jump(self, rows, t, y) -> None:
        """Where the stimulus jumps at a recorded step end: mark the kink, an onset."""
        jump = self.onsets.at_jump(t)
        if jump.any():
            self.memory.record(rows[jump], t[jump], y[jump])
            self.onsets.start(rows[jump], t[jump])

    def jump(self, rows, t, y_before, y_after) -> None:
        if self.memory is not None:
            self.memory.record(rows, t, y_before)
            self.memory.record(rows, t, y_after)  # the jump: the reset stays in the memory

    @property
    def _kernel_stages(self) -> bool:
        """Whether every stage runs in the kernels: the least-squares trainer's, with the
        exact and classical sub-flows (not the paper trainer's)."""
        return hasattr(self.trainer, "compiled_stage")

    @property
    def _ran(self):
        """The kernels that took the stages (compiled, or fallen back to plain Python): the
        composed step's, the fractional march's, or else the trainer's stage by stage."""
        if self.compiled is not None:
            return self.compiled
        return self.kernels if self.runs_graded else self.trainer.kernels

    def settings(self) -> dict:
        out = {"name": "split-pinn", "scheme": self.plan.scheme, "plan": self.plan.describe(),
               **self.trainer.settings(),
               "compiled": self._kernel_stages and self._ran.jit}
        if self.memory is not None:
            out["history"] = self.memory.kind
            out["memory_floats"] = self.memory.memory_floats
        return out


def _compiled_composition(bound: BoundModel, the_plan: Plan, trainer, jit: bool):
    """The composed step in one kernel (:class:`~splitpinn.numeric.compiled.Composition`)
    where the trainer's kernels take every sub-problem's stage (else None)."""
    compiled_stage = getattr(trainer, "compiled_stage", None)
    if compiled_stage is None:
        return None
    iterations = [compiled_stage(sub) if sub.solver == "pinn" else FLOWS[sub.solver]
                  for sub in the_plan.subproblems]
    if any(k is None for k in iterations):
        return None
    return Composition(bound, the_plan, trainer, iterations, jit)


def _memory_fit(bound: BoundModel, the_plan: Plan, trainer, memory):
    """The ``fit`` of :meth:`CompositionStepper.run`'s kernel march (:func:`~splitpinn.numeric.
    compiled.plan_fit`) where it applies — every sub-problem's stage taken by the kernels (a
    full memory or a fast one): a fractional one's against the memory
    (``trainer.memory_fit``), an integer-order one's as in the compiled composed step
    (``trainer.compiled_stage``) — else None.  (Each fractional sub-problem is advanced once
    per branch over the whole step, :func:`~splitpinn.solvers.splitting.plan` sees to
    that.)"""
    if memory is None or not hasattr(trainer, "memory_fit"):
        return None
    fits, iterations = [], []
    for sub in the_plan.subproblems:
        fits.append(trainer.memory_fit(sub) if sub.fractional else None)
        iterations.append(None if sub.fractional else trainer.compiled_stage(sub)
                          if sub.solver == "pinn" else FLOWS[sub.solver])
    stage = None if all(sub.fractional for sub in the_plan.subproblems) else \
        trainer.kernels.stage
    return plan_fit(the_plan, fits, iterations, stage)


def _check_fractional_resets(bound: BoundModel) -> None:
    """Refuse a reset of a Caputo state that no refractory clamp holds: with the jump kept
    in the memory, the L1 relation right after it is singular and undoes part of the reset
    at every step, so the answer depends on dt (see README, "Known limits")."""
    for event in bound.events:
        clamped = set(event.clamp_index) if event.refractory_rows.min() > 0 else set()
        loose = [bound.names[i] for i in event.reset_index
                 if bound.orders[i] < 1 and i not in clamped]
        if loose:
            raise ModelError(
                f"{bound.model.name}: the reset of fractional state(s) {', '.join(loose)} has no "
                "refractory clamp; with the memory kept it is ill posed (dt-dependent), so "
                "split-PINN refuses it. Use order 1 for them, a refractory clamp, or "
                "method 'reference' to see the dt-dependent L1 answer.")


def default_step(bound: BoundModel) -> float:
    """The first step (ms) of an adaptive split-PINN solve: the model's default output
    spacing (:func:`splitpinn.solvers.driver.default_output_dt`)."""
    from .driver import default_output_dt

    return default_output_dt(bound)


def _make_trainer(bound: BoundModel, trainer: str, seed: int, options: dict):
    """The trainer registered as ``trainer`` (see :mod:`splitpinn.solvers.registry`); unknown names
    and options are ModelErrors that list the known ones."""
    from .registry import get

    entry = get("trainer", trainer)
    entry.check_options(options)
    return entry.implementation(bound, seed=seed, **options)


def solve_split(bound: BoundModel, grid: np.ndarray, *, scheme: str | None = None,
                trainer: str = "least-squares", solvers="pinn", partition=None,
                history: str | None = None, seed: int = 0, rtol: float | None = None,
                atol: float | None = None, fixed_step: bool = False, coupling=None,
                traces: bool = True, quiet: bool = True,
                trainer_options: dict | None = None, max_steps: int | None = None,
                compiled: bool = True) -> list[Solution]:
    """Split-PINN solve of every neuron of ``bound``, sampled on ``grid`` (ms).

    Adaptive steps by default (``rtol``/``atol``, defaults :data:`DEFAULT_RTOL`,
    :data:`DEFAULT_ATOL`); ``fixed_step`` uses the grid spacing as the step (fractional
    models always do).  ``scheme``, ``partition`` and ``solvers`` go to
    :func:`splitpinn.solvers.splitting.plan`; ``trainer`` picks the PINN trainer ("least-squares" or
    "adam-lbfgs") and ``trainer_options`` its keyword settings (e.g. ``{"features": 16}``);
    ``history`` ("full"/"fast") the fractional memory; ``seed`` the PINN initialisation;
    ``coupling`` (a :class:`~splitpinn.solvers.coupling.Coupling`) makes the batch a network;
    ``max_steps`` limits the steps per neuron (default
    :func:`splitpinn.solvers.marching.default_max_steps`).
    ``compiled``: where every stage is a least-squares stage of an integer-order
    sub-problem, run the composed step compiled (:class:`splitpinn.numeric.compiled.Composition`;
    False: the same kernels as plain Python, for debugging).

    Returns one :class:`Solution` per neuron; ``meta["solver"]`` holds the plan, the trainer
    settings, accepted and rejected steps, and the stages of the accepted steps.  Raises
    ModelError for bad options or an unclamped fractional reset, SolverError when no step
    can be trusted (naming the time and the sub-problem).
    """
    # BLAS is limited to one thread: the systems are small, and a thread pool only adds
    # synchronisation overhead (20x slower expm under load was measured).
    with threadpool_limits(limits=1, user_api="blas"):
        start = _time.perf_counter()
        _check_fractional_resets(bound)
        if bound.fractional:
            if rtol is not None or atol is not None:
                raise ModelError("rtol/atol do not apply to fractional models: they march "
                                 "with a fixed step (choose dt)")
            fixed_step = True
        the_plan = plan(bound, scheme, partition, solvers)
        pinn = _make_trainer(bound, trainer, seed, trainer_options or {})
        memory = None
        if bound.fractional:
            from .fractional_memory import SplitMemory

            memory = SplitMemory(bound, the_plan, grid, history, compiled=compiled)
        stepper = CompositionStepper(bound, the_plan, pinn, fixed_step, memory, grid, compiled)
        rtol = DEFAULT_RTOL if rtol is None else rtol
        atol = DEFAULT_ATOL if atol is None else atol
        result = march(bound, stepper, grid, rtol=rtol, atol=atol, h0=default_step(bound),
                       fixed_step=fixed_step, traces=traces, quiet=quiet, coupling=coupling,
                       max_steps=max_steps, label=f"split-PINN {bound.model.name}")
        settings = {**stepper.settings(), "fixed_step": fixed_step, "seed": seed}
        if not fixed_step:
            settings.update(rtol=rtol, atol=atol,
                            error_estimate="step doubling, extrapolated")
        return solutions(bound, grid, result, settings, _time.perf_counter() - start,
                         stepper.stages_per_step,
                         per_row={"stage_evaluations": stepper.stage_evaluations,
                                  "max_residual": stepper.max_residual})
