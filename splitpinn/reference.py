"""Classical reference solver for integer-order models: scipy's ``solve_ivp`` integrators
(DOP853 by default) with tight tolerances, driven step by step by the marching core, which
locates threshold crossings on the integrator's dense output, applies resets and refractory
clamps, and restarts the integrator there and at stimulus jumps.  A batch is solved neuron by
neuron (each has its own event times, so the integrator cannot be shared).

Fractional-order models are delegated to :mod:`splitpinn.fractional_reference`.
"""

from __future__ import annotations

import time as _time

import numpy as np
from scipy.integrate import BDF, DOP853, LSODA, RK45, Radau

from .bound import BoundModel
from .errors import ModelError, SolverError
from .marching import march, solutions
from .solution import Solution
from .stepper import Stepper, Trial

#: ``solve_ivp`` integrators that the reference accepts.
INTEGRATORS = {"DOP853": DOP853, "RK45": RK45, "Radau": Radau, "BDF": BDF, "LSODA": LSODA}
#: Integrators that use the Jacobian (given analytically).
_IMPLICIT = {"Radau", "BDF", "LSODA"}


class IVPStepper(Stepper):
    """One internal step of a ``solve_ivp`` integrator per attempt, for a single neuron.

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
        self.frozen = None
        self.evaluations = 0
        self._dense = None

    def _restart(self, t: float, y: np.ndarray, t_bound: float, frozen: np.ndarray) -> None:
        self._count()
        held = np.nonzero(frozen)[0]
        rows = np.array([0])
        bound = self.bound

        def fun(time, state):
            dy = bound.rhs_rows(np.array([time]), state[None], rows)[0]
            dy[held] = 0.0
            return dy

        def jac(time, state):
            j = bound.jacobian_rows(np.array([time]), state[None], rows)[0]
            j[held] = 0.0
            return j

        options = {"jac": jac} if self.implicit else {}
        self.solver = self.method(fun, t, y.copy(), t_bound, rtol=self.rtol, atol=self.atol,
                                  **options)
        self.frozen = frozen.copy()

    def _count(self) -> None:
        if self.solver is not None:
            self.evaluations += self.solver.nfev
            self.solver = None

    def attempt(self, rows, t, y, h, frozen) -> Trial:
        s, t0, t_bound = self.solver, float(t[0]), float(t[0] + h[0])
        if (s is None or s.t != t0 or s.t_bound != t_bound or not np.array_equal(s.y, y[0])
                or not np.array_equal(frozen[0], self.frozen)):
            self._restart(t0, y[0], t_bound, frozen[0])
            s = self.solver
        message = s.step()
        if s.status == "failed":
            raise SolverError(f"reference solver failed at t = {s.t:.6g} ms: {message}")
        self._dense = s.dense_output()
        return Trial(np.array([s.t]), s.y[None].copy(), None, np.array([True]))

    def partial(self, rows, t, y, s, frozen) -> np.ndarray:
        return np.atleast_2d(self._dense(t + s).T)

    def dense(self, rows, t0, y0, t1, y1, frozen, which, tq) -> np.ndarray:
        out = np.atleast_2d(self._dense(tq).T)
        at_end = tq >= t1[which]
        out[at_end] = y1[which[at_end]]
        return out

    def jump(self, rows, t, y_before, y_after) -> None:
        self._count()

    def settings(self) -> dict:
        self._count()
        return {"rhs_evaluations": int(self.evaluations)}


def solve_reference(bound: BoundModel, grid: np.ndarray, *, integrator: str | None = None,
                    rtol: float | None = None, atol: float | None = None,
                    history: str | None = None, max_steps: int = 1_000_000,
                    quiet: bool = True, traces: bool = True) -> list[Solution]:
    """Solve every neuron of ``bound``, sampled on ``grid`` (ms); one Solution each.

    Integer order: ``integrator`` (default DOP853) at ``rtol``/``atol`` (default 1e-10); the
    implicit ones (Radau, BDF, LSODA) get the analytic Jacobian.  Events stop the step at the
    crossing (root-found on the dense output), the reset is applied, the clamped states are
    held for the refractory period, and integration restarts from the event time.
    ``max_steps`` limits the work per neuron.  Fractional order: ``integrator`` "l1"
    (default) or "adams" with ``history`` "full" or "fast" (see
    :func:`splitpinn.fractional_reference.solve_fractional_reference`).
    """
    if bound.fractional:
        from .fractional_reference import solve_fractional_reference

        if rtol is not None or atol is not None:
            raise ModelError("rtol/atol apply to integer-order models; fractional references "
                             "are fixed-step (choose dt)")
        return solve_fractional_reference(bound, grid, history=history, quiet=quiet,
                                          integrator=integrator or "l1", traces=traces)
    if history is not None:
        raise ModelError("history applies to fractional-order models only")
    integrator = integrator or "DOP853"
    if integrator not in INTEGRATORS:
        raise ModelError(f"unknown reference integrator {integrator!r} "
                         f"(known: {', '.join(INTEGRATORS)})")
    rtol = 1e-10 if rtol is None else rtol
    atol = 1e-10 if atol is None else atol
    out = []
    for row in ([bound] if not bound.batch else [bound.row(i) for i in range(bound.batch)]):
        start = _time.perf_counter()
        stepper = IVPStepper(row, integrator, rtol, atol)
        result = march(row, stepper, grid, traces=traces, quiet=quiet, max_steps=max_steps,
                       label=f"reference {bound.model.name}")
        settings = {"name": "solve_ivp", "integrator": integrator, "rtol": rtol, "atol": atol,
                    **stepper.settings()}
        out += solutions(row, grid, result, settings, _time.perf_counter() - start)
    return out
