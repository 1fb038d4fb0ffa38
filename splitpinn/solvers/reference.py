"""Classical reference solver for integer-order models: scipy's ``solve_ivp`` integrators
(DOP853 by default) with tight tolerances, driven step by step by the marching core, which
locates threshold crossings on the integrator's dense output, applies resets and refractory
clamps, and restarts the integrator there and at stimulus jumps.  A batch is solved neuron by
neuron (each has its own event times, so the integrator cannot be shared).

Fractional-order models are delegated to :mod:`splitpinn.solvers.fractional_reference`.
"""

from __future__ import annotations

import time as _time

import numpy as np
import scipy.linalg
from scipy.integrate import BDF, DOP853, LSODA, RK45, Radau

from ..errors import ModelError, SolverError
from ..numeric.bound import BoundModel
from ..numeric.kernels import SAME_TIME
from .marching import march, solutions
from .solution import Solution
from .stepper import Stepper, Trial

#: ``solve_ivp`` integrators that the reference accepts.
INTEGRATORS = {"DOP853": DOP853, "RK45": RK45, "Radau": Radau, "BDF": BDF, "LSODA": LSODA}
#: Integrators that use the Jacobian (given analytically).
_IMPLICIT = {"Radau", "BDF", "LSODA"}
#: The integer-order reference's default tolerances.
DEFAULT_RTOL, DEFAULT_ATOL = 1e-10, 1e-10


class IVPStepper(Stepper):
    """One internal step of a ``solve_ivp`` integrator per attempt, for one neuron or for
    the rows of a coupled network stacked into one system (they share the time).

    The integrator picks its own step (``has_own_steps``) up to the core's stop and is
    restarted whenever a step does not continue from where it ended (after a reset, at a
    stop, when the clamp changes).  Crossings and output use its dense output.
    """

    has_own_steps = True

    def __init__(self, bound: BoundModel, integrator: str, rtol: float, atol: float) -> None:
        super().__init__(bound)
        self.method, self.rtol, self.atol = INTEGRATORS[integrator], rtol, atol
        self.implicit = integrator in _IMPLICIT
        self.solver = None
        self.rows = self.frozen = None
        self.evaluations = 0
        self._dense = None

    def _restart(self, rows, t: float, y: np.ndarray, t_bound: float, frozen) -> None:
        self._count()
        bound, shape, held = self.bound, y.shape, frozen.ravel()
        times = np.full(len(rows), t)

        if len(rows) == 1:  # one neuron: Python floats are several times faster than arrays
            params = [float(p) for p in bound.params(int(rows[0]))]

            def fun(time, state):
                stim = float(bound.stimulus_columns(time, params))
                try:
                    dy = np.array(bound.rhs_columns(time, stim, [float(x) for x in state],
                                                    params))
                except OverflowError:  # Python floats raise where numpy's give inf
                    dy = np.array(bound.rhs_columns(time, stim, list(state), params),
                                  dtype=float)
                dy[held] = 0.0
                return dy
        else:
            def fun(time, state):
                times[:] = time
                dy = bound.rhs_rows(times, state.reshape(shape), rows).ravel()
                dy[held] = 0.0
                return dy

        def jac(time, state):
            times[:] = time
            blocks = bound.jacobian_rows(times, state.reshape(shape), rows)
            j = scipy.linalg.block_diag(*blocks)
            j[held] = 0.0
            return j

        options = {"jac": jac} if self.implicit else {}
        self.solver = self.method(fun, t, y.ravel(), t_bound, rtol=self.rtol, atol=self.atol,
                                  **options)
        self.rows, self.frozen = rows.copy(), frozen.copy()

    def _count(self) -> None:
        if self.solver is not None:
            self.evaluations += self.solver.nfev
            self.solver = None

    def attempt(self, rows, t, y, h, frozen) -> Trial:
        s, t0, t_bound = self.solver, float(t[0]), float(t[0] + h[0])
        # t + (stop - t) may miss the loop's stop by an ulp: the same bound, no restart
        if (s is None or s.t != t0 or abs(s.t_bound - t_bound) > SAME_TIME
                or not np.array_equal(rows, self.rows)
                or not np.array_equal(s.y, y.ravel())
                or not np.array_equal(frozen, self.frozen)):
            self._restart(rows, t0, y, t_bound, frozen)
            s = self.solver
        message = s.step()
        if s.status == "failed":
            raise SolverError(f"reference solver failed at t = {s.t:.6g} ms: {message}")
        self._dense = s.dense_output()
        return Trial(np.full(len(rows), s.t), s.y.reshape(y.shape).copy(), None,
                     np.ones(len(rows), dtype=bool))

    def _at(self, rows, times) -> np.ndarray:
        """Dense output (Q, n) of the given rows at the given times."""
        n = len(self.bound.names)
        where = np.searchsorted(self.rows, rows)
        values = np.atleast_2d(self._dense(times).T).reshape(len(times), -1, n)
        return values[np.arange(len(times)), where]

    def partial(self, rows, t, y, s, frozen) -> np.ndarray:
        return self._at(rows, t + s)

    def dense(self, rows, t0, y0, t1, y1, frozen, which, tq) -> np.ndarray:
        out = self._at(rows[which], tq)
        at_end = tq >= t1[which]
        out[at_end] = y1[which[at_end]]
        return out

    def record(self, recorder, rows, t0, y0, t1, y1, frozen) -> None:
        """The integrator's own interpolant of the step (DOP853: 7th order) is the piece."""
        n = len(self.bound.names)
        for j, row in enumerate(rows):
            k = int(np.searchsorted(self.rows, row))
            recorder.add_interpolant(int(row), t0[j], t1[j], self._dense, slice(k * n, k * n + n))

    def jump(self, rows, t, y_before, y_after) -> None:
        self._count()

    def settings(self) -> dict:
        self._count()
        return {"rhs_evaluations": int(self.evaluations)}


def solve_reference(bound: BoundModel, grid: np.ndarray, *, integrator: str | None = None,
                    rtol: float | None = None, atol: float | None = None,
                    history: str | None = None, max_steps: int | None = None,
                    estimate_error: bool | None = None, coupling=None, quiet: bool = True,
                    traces: bool = True, compiled: bool | None = None) -> list[Solution]:
    """Solve every neuron of ``bound``, sampled on ``grid`` (ms); one Solution each.

    Integer order: ``integrator`` (default DOP853) at ``rtol``/``atol`` (defaults
    :data:`DEFAULT_RTOL`, :data:`DEFAULT_ATOL`: the ground truth is solved tightly); the
    implicit ones (Radau, BDF, LSODA) get the analytic Jacobian.  Events stop the step at the
    crossing (root-found on the dense output), the reset is applied, the clamped states are
    held for the refractory period, and integration restarts from the event time.
    ``max_steps`` limits the work per neuron, for every order (default
    :func:`splitpinn.solvers.marching.default_max_steps`).  A batch is solved neuron by neuron, or
    as one stacked system when ``coupling`` (a :class:`~splitpinn.solvers.coupling.Coupling`) makes
    it a network.  Fractional order: ``integrator`` "l2-1sigma" (default), "l1" or "adams" with
    ``history`` "full" or "fast", ``estimate_error`` and ``compiled`` (see
    :func:`splitpinn.solvers.fractional_reference.solve_fractional_reference`).
    """
    if bound.fractional:
        from .fractional_reference import solve_fractional_reference

        if rtol is not None or atol is not None:
            raise ModelError("rtol/atol apply to integer-order models; fractional references "
                             "are fixed-step (choose dt)")
        if coupling is not None:
            raise ModelError("coupling is not supported by the fractional reference; use "
                             "method 'split-pinn'")
        return solve_fractional_reference(bound, grid, history=history, quiet=quiet,
                                          integrator=integrator or "l2-1sigma", traces=traces,
                                          estimate_error=bool(estimate_error),
                                          compiled=compiled is None or compiled,
                                          max_steps=max_steps)
    given = [name for name, value in (("history", history), ("estimate_error", estimate_error),
                                      ("compiled", compiled)) if value is not None]
    if given:
        raise ModelError(f"{given[0]} applies to fractional-order models only")
    integrator = integrator or "DOP853"
    if integrator not in INTEGRATORS:
        raise ModelError(f"unknown reference integrator {integrator!r} "
                         f"(known: {', '.join(INTEGRATORS)})")
    rtol = DEFAULT_RTOL if rtol is None else rtol
    atol = DEFAULT_ATOL if atol is None else atol
    out = []
    networks = [bound] if coupling is not None else bound.neurons()
    for row in networks:
        start = _time.perf_counter()
        stepper = IVPStepper(row, integrator, rtol, atol)
        result = march(row, stepper, grid, traces=traces, quiet=quiet, max_steps=max_steps,
                       coupling=coupling, label=f"reference {bound.model.name}")
        settings = {"name": "solve_ivp", "integrator": integrator, "rtol": rtol, "atol": atol,
                    **stepper.settings()}
        out += solutions(row, grid, result, settings, _time.perf_counter() - start)
    return out
