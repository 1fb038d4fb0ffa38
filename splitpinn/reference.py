"""Classical reference solver for integer-order models: ``scipy.integrate.solve_ivp`` with
tight tolerances, threshold events located by its root finder, reset and refractory clamp.

Fractional-order models are delegated to :mod:`splitpinn.fractional_reference`.
"""

from __future__ import annotations

import time as _time

import numpy as np
from scipy.integrate import solve_ivp

from .errors import ModelError, SolverError
from .model import BoundModel
from .progress import advance_to, progress_bar
from .solution import Solution, output_grid
from .stimulus import breakpoints

#: Integration methods of ``solve_ivp`` that the reference accepts.
INTEGRATORS = ("DOP853", "RK45", "Radau", "BDF", "LSODA")


def _terminal(event):
    def g(time, y):
        return event.value(time, y)

    g.terminal, g.direction = True, 1.0
    return g


def _detector(bound: BoundModel):
    det = bound.model.spike_detector
    i = bound.index(det.state)

    def g(time, y):
        return y[i] - det.threshold

    g.terminal, g.direction = False, 1.0
    return g


def solve_reference(bound: BoundModel, t_end: float, dt: float = 0.01, *,
                    integrator: str | None = None, rtol: float | None = None,
                    atol: float | None = None, quiet: bool = True,
                    history: str | None = None) -> Solution:
    """Solve ``bound`` on [0, t_end] ms and sample on the grid of spacing ``dt``.

    Integer order: ``solve_ivp`` with ``integrator`` (default DOP853) at ``rtol``/``atol``
    (default 1e-10).  Events stop the integrator at the crossing (located to solver
    precision), the reset is applied, the clamped states are held for the refractory period,
    and integration restarts from the event time.  Fractional order: ``integrator`` "l1"
    (default) or "adams" with ``history`` "full" or "fast" (see
    :func:`splitpinn.fractional_reference.solve_fractional_reference`).
    """
    if bound.fractional:
        from .fractional_reference import solve_fractional_reference

        if rtol is not None or atol is not None:
            raise ModelError("rtol/atol apply to integer-order models; fractional references "
                             "are fixed-step (choose dt)")
        return solve_fractional_reference(bound, t_end, dt, history=history, quiet=quiet,
                                          integrator=integrator or "l1")
    if history is not None:
        raise ModelError("--history applies to fractional-order models only")
    integrator = integrator or "DOP853"
    if integrator not in INTEGRATORS:
        raise ModelError(f"unknown reference integrator {integrator!r} "
                         f"(known: {', '.join(INTEGRATORS)})")
    rtol = 1e-10 if rtol is None else rtol
    atol = 1e-10 if atol is None else atol
    start = _time.perf_counter()
    grid = output_grid(t_end, dt)
    out = np.empty((len(bound.names), len(grid)))
    terminal = [_terminal(ev) for ev in bound.events]
    detector = [_detector(bound)] if bound.model.spike_detector else []
    spikes: list[float] = []
    y, t0 = bound.y0.copy(), 0.0
    refractory_end, clamp = 0.0, []
    chunk = t_end / 100  # restart points only for the progress bar; tolerances stay tight
    bar = progress_bar(t_end, f"reference {bound.model.name}", quiet)
    n_rhs = 0
    breaks = breakpoints(bound.stimulus_expr, t_end)  # restart where the stimulus jumps
    while t0 < t_end:
        t_stop = min(t_end, t0 + chunk, *breaks[breaks > t0 + 1e-12][:1])
        if t0 < refractory_end:
            t_stop = min(t_stop, refractory_end)
        frozen = list(clamp) if t0 < refractory_end else []

        def fun(time, state, frozen=frozen):
            dy = bound.rhs(time, state)
            dy[frozen] = 0.0
            return dy

        sol = solve_ivp(fun, (t0, t_stop), y, method=integrator, dense_output=True,
                        events=terminal + detector, rtol=rtol, atol=atol)
        if sol.status == -1:
            raise SolverError(f"reference solver failed at t = {sol.t[-1]:.6g} ms: {sol.message}")
        n_rhs += sol.nfev
        hits = [(te[0], k) for k, te in enumerate(sol.t_events[: len(terminal)]) if te.size]
        seg_end = min(hits)[0] if hits else sol.t[-1]
        if detector:
            spikes += [s for s in sol.t_events[-1] if s < seg_end]
        mask = (grid >= t0) & (grid < seg_end)
        if mask.any():  # a segment shorter than dt may hold no grid point
            out[:, mask] = sol.sol(grid[mask])
        y = sol.y[:, -1].copy()
        if hits:
            t_hit, k = min(hits)
            if t_hit - t0 < 1e-12 and spikes and spikes[-1] >= t0:
                raise SolverError(f"event at t = {t_hit:.6g} ms fires again right after its reset")
            event = bound.events[k]
            spikes.append(t_hit)
            y = event.apply(t_hit, sol.sol(t_hit))
            refractory_end, clamp = t_hit + event.refractory, event.clamp_index
        t0 = seg_end
        advance_to(bar, t0)
    bar.close()
    out[:, -1] = y
    meta = {"solver": {"name": "solve_ivp", "integrator": integrator, "rtol": rtol, "atol": atol,
                       "rhs_evaluations": int(n_rhs)},
            "wall_time_s": _time.perf_counter() - start}
    return Solution(grid, out, list(bound.names), np.array(spikes), meta)
