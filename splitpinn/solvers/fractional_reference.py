"""Reference solvers for fractional-order models (Caputo order 0 < alpha <= 1 per state).

Three methods, each a fixed-step stepper of the marching core (:mod:`splitpinn.solvers.marching`),
on the output grid with the same event semantics as split-PINN, so that they can be compared point
by point:

* ``integrator="l2-1sigma"`` (default): the implicit L2-1σ scheme (Alikhanov 2015), second order
  for every alpha.  At a step from t_last to t the relation
  ``history_term(t) + local_coefficient(t)·(u − u_last) = f(t*, σu + (1 − σ)u_last)`` holds at
  t* = t_last + σ(t − t_last) (one σ = 1 − min(alpha)/2 for all states; order-1 states get the
  midpoint rule at σ = 1/2), solved by Newton's method for the whole system.  After an onset
  (the start, the end of a clamp, a stimulus jump) the solution behaves like (t − t_on)^alpha,
  so the steps there are graded towards t_on (:func:`splitpinn.fractional.onset_mesh`), and
  every kink is marked in the memory; together they keep second order.
* ``integrator="l1"``: the implicit L1 scheme (order 2 − alpha), the same relation with σ = 1
  (backward Euler for order-1 states).
* ``integrator="adams"``: the fractional Adams–Bashforth–Moulton predictor–corrector (PECE) of
  Diethelm, Ford & Freed (Nonlinear Dyn. 29, 2002) on the Volterra form
  ``u(t) = u(t_s) + I^alpha[f − h](t)`` of each segment [t_s, …]; product-rectangle predictor,
  product-trapezoid corrector (for alpha = 1: Euler predictor, trapezoidal corrector).  The
  weights of the uniform part are precomputed (a convolution); the first interval of a segment
  may be shorter (segments start at events and refractory ends, which lie between grid points).
  ``h`` is the memory of the earlier segments, jumps included, taken from an L1 history of the
  recorded trajectory; without events there is a single segment and ``h = 0``.

The memories (full or fast) are those of :mod:`splitpinn.fractional`.

Events: when a threshold is crossed inside a step, the crossing time is found by root finding
on the step map as a function of the step length; the history records the state before and
after the reset at the event time (a jump: the memory is kept across resets); the clamped
states are held until the refractory period ends (their equation switched off, the history
keeps recording them); event times and refractory ends split a step.  Spike-detector crossings
are located the same way, without reset.

A reset whose states are not clamped by a refractory period cannot be represented by the Adams
method: with the jump in the memory, the Volterra equation ``u = u(t_s) + I^alpha[f − h]`` gives
``u(t_s+) = u(t_s−)`` (the Riemann–Liouville integral of the jump's Caputo derivative
``du (t − t_s)^(−alpha)/Gamma(1 − alpha)`` is ``du``), i.e. the reset is undone at once.  The
L1 scheme undoes a fraction 1 − alpha of it in the first step after the reset instead (and
the rest over the following steps).  ``integrator="adams"`` therefore stops with a
:class:`ModelError` when such an event fires (e.g. a spike of frac-izhikevich); frac-LIF (V
clamped for t_ref) works.
"""

from __future__ import annotations

import time as _time

import numpy as np
from scipy.special import gamma as _gamma
from threadpoolctl import threadpool_limits

from ..errors import ModelError, SolverError
from ..fractional import make_history
from ..fractional.history import SAME_STEP
from ..numeric.bound import BoundModel
from ..numeric.compiled import ModelKernels, memory_rules
from ..numeric.kernels import SAME_TIME, crossed
from .fractional_memory import choose_history
from .marching import march, solutions, union_breakpoints
from .onsets import Onsets, march_stretch
from .solution import Solution
from .stepper import Stepper, Trial

#: The schemes of :func:`solve_fractional_reference` (registered in
#: :mod:`splitpinn.solvers.registry`).
INTEGRATORS = ("l2-1sigma", "l1", "adams")

_GL_X, _GL_W = np.polynomial.legendre.leggauss(16)


# -- right-hand side --------------------------------------------------------------------------
class _RightHandSide:
    """f(t, y) at single points of a single neuron, with a count of the evaluations, and
    its Jacobian ``jac_const`` where that is constant (``linear``: f affine in the states
    with coefficients free of t and I_ext; one Newton step is then exact, else None)."""

    def __init__(self, bound: BoundModel) -> None:
        self.bound = bound
        dependent = set(bound.args[: 2 + len(bound.names)])
        self.linear = not any(e.free_symbols & dependent for e in bound.jacobian_symbolic)
        self.params = bound.params(0)
        self.param_array = np.array(self.params, dtype=float)
        self.jac_const = None
        if self.linear:
            rows = bound.jacobian_columns(0.0, bound.stimulus(0.0), list(bound.y0), self.params)
            self.jac_const = np.array([[float(v) for v in row] for row in rows])
        self.evaluations = 0

    def stimulus(self, t, side: int = 0):
        """I_ext at t (a float or an array); ``side`` -1 / +1: its limit from the left / right
        (at a jump, the step that ends there sees the value before it, the one that starts
        there after)."""
        return self.bound.stimulus(t + side * SAME_TIME * np.maximum(1.0, np.abs(t)))

    def f(self, t: float, stim: float, y: np.ndarray) -> np.ndarray:
        """The right-hand side with the given stimulus value (a limit at a jump)."""
        self.evaluations += 1
        out = self.bound.rhs_columns(t, stim, list(y), self.params)
        return np.array([float(v) for v in out])


# -- implicit L1 ------------------------------------------------------------------------------
class _ImplicitStepper:
    """Implicit L1 or L2-1σ steps from the memory's last point; Newton per step for the
    whole system.  Every step is one of the compiled march
    (:func:`~splitpinn.numeric.compiled.march_uniform`: the memory terms of
    :func:`~splitpinn.numeric.kernels.memory_terms`, Newton by
    :func:`~splitpinn.numeric.kernels.newton_step`), a trial on a copy of the memory.  The
    relation history_term(t) + c(t)·(u − u_last) = f(t*, u*) holds at
    t* = t_last + σ(t − t_last), u* = σu + (1 − σ)u_last: σ = 1 for L1 (backward Euler for
    order-1 states), the memory's σ for L2-1σ (the midpoint rule for order-1 states)."""

    def __init__(self, rhs: _RightHandSide, history, newton_tol: float, max_newton: int,
                 kernels: ModelKernels):
        self.rhs, self.history, self.kernels = rhs, history, kernels
        self.sigma = history.sigma
        self.newton_tol, self.max_newton = newton_tol, max_newton
        self.n_events = len(rhs.bound.events)
        #: Events root-found in the kernel where the stimulus inside a step is one value
        #: (its value at the relation point: constant or stepwise)
        self.locate = rhs.bound.constant_stimulus is not None or rhs.bound.stepwise_stimulus
        self.newton_iterations = 0

    def trial(self, t: float, active: np.ndarray) -> np.ndarray:
        """The state at time t >= t_last (not recorded); clamped states (~active) held."""
        hist = self.history
        if t <= hist.t_last:
            return hist.u_last
        untouched = np.ones(self.rhs.bound.crossing_count)  # no crossing starts above zero
        marched = self.march(hist.march_state(1), np.array([t]), np.ones(1, bool), active,
                             untouched, False)
        if not len(marched.states):
            raise SolverError(f"Newton iteration did not converge to a finite state at "
                              f"t = {t:.10g} ms in {self.max_newton} iterations; try a "
                              "smaller dt")
        return marched.states[0]

    def march(self, state, stops, keep, active, before, armed, locate=False):
        """The compiled march (:func:`~splitpinn.numeric.compiled.march_uniform`) of the memory's
        arrays ``state`` to ``stops``, up to a step in which an event fires (``before``: the
        crossing functions at the start; ``armed``: the neuron is out of its refractory
        period; ``locate``: root-find a reset there, where :attr:`locate` allows); counts
        its Newton iterations."""
        from ..numeric.compiled import march_uniform

        rhs = self.rhs
        t_star, stim_star = self.relation_point(np.append(state.clock[0], stops[:-1]), stops)
        marched = march_uniform(
            self.kernels, self.history.tables, state, stops, keep, t_star, stim_star,
            rhs.stimulus(stops), rhs.param_array, active, before, rhs.jac_const,
            self.newton_tol, self.max_newton, n_events=self.n_events, armed=armed,
            locate=locate and self.locate)
        self.newton_iterations += marched.iterations
        rhs.evaluations += marched.iterations
        return marched

    def relation_point(self, t_last, t):
        """The time t* = t_last + σ(t − t_last) where the relation of a step from t_last to
        t holds (t itself for σ = 1), and the stimulus there: at σ = 1 its left limit, since
        the step ends before a jump at t (floats or arrays)."""
        if self.sigma == 1:
            return t, self.rhs.stimulus(t, -1)
        t_star = t_last + self.sigma * (t - t_last)
        return t_star, self.rhs.stimulus(t_star)

    def mark_kink(self, t: float, y: np.ndarray) -> None:
        """u' jumps at t (a clamp begins or ends, the stimulus jumps): a same-time record with
        u unchanged, so that no quadratic L2-1σ piece straddles it (a no-op for L1)."""
        self.history.append(t, y)

    def accept(self, t: float, y: np.ndarray) -> None:
        self.history.append(t, y)

    def jump(self, t: float, y_before: np.ndarray, y_after: np.ndarray, active) -> None:
        self.history.append(t, y_before)
        self.history.append(t, y_after)  # same time: a jump, kept in the memory

    @property
    def memory_floats(self) -> int:
        return self.history.memory_floats


# -- Adams–Bashforth–Moulton ------------------------------------------------------------------
def interval_weights(g, h, alpha):
    """Product-integration weights of one interval of length h ending g >= 0 before T.

    With x = (end of interval) − tau and kernel (T − tau)^(alpha−1)/Gamma(alpha) = (g + x)^(alpha−1)
    /Gamma(alpha), returns (P, L, R): P = ∫_0^h kernel dx (rectangle rule, left value),
    L = ∫ kernel·x/h dx and R = ∫ kernel·(h − x)/h dx (trapezoid: weights of the left and the
    right node).  Arrays broadcast; closed forms at g = 0 and for g < h, 16-point
    Gauss–Legendre for g >= h (the integrand is analytic there, error ~ 5.8^-32).
    """
    g, h, a = np.broadcast_arrays(*(np.asarray(x, dtype=float) for x in (g, h, alpha)))
    p_out, l_out, r_out = (np.empty(g.shape) for _ in range(3))
    zero, far = g == 0, g >= h
    near = ~zero & ~far
    if zero.any():
        hz, az = h[zero], a[zero]
        p_out[zero] = hz**az / az
        l_out[zero] = hz**az / (az + 1)
        r_out[zero] = hz**az / (az * (az + 1))
    if near.any():
        gn, hn, an = g[near], h[near], a[near]
        j0 = ((gn + hn) ** an - gn**an) / an
        j1 = ((gn + hn) ** (an + 1) - gn ** (an + 1)) / (an + 1) - gn * j0
        p_out[near], l_out[near], r_out[near] = j0, j1 / hn, j0 - j1 / hn
    far &= ~zero
    if far.any():
        gf, hf, af = g[far][:, None], h[far][:, None], a[far][:, None]
        x = hf * (_GL_X + 1) / 2
        kern = (gf + x) ** (af - 1) * (hf / 2 * _GL_W)
        p_out[far] = kern.sum(1)
        l_out[far] = (kern * x).sum(1) / hf[:, 0]
        r_out[far] = (kern * (hf - x)).sum(1) / hf[:, 0]
    scale = 1.0 / _gamma(a)
    return p_out * scale, l_out * scale, r_out * scale


def _far_weights(g: float, h: float, alpha: np.ndarray, rgamma: np.ndarray):
    """``interval_weights`` for scalars g >= h > 0 and a vector of orders (the hot path)."""
    x = h * (_GL_X + 1) / 2
    kern = (g + x)[None, :] ** (alpha[:, None] - 1) * ((h / 2) * _GL_W)
    p = kern.sum(1)
    left = kern @ x / h
    return p * rgamma, left * rgamma, (p - left) * rgamma


class _AdamsStepper:
    """Fractional ABM (PECE) per segment; see the module docstring.

    A segment starts at tau_0 (t = 0, an event, or a refractory end) with state u_s; its nodes
    are tau_0, tau_1 = tau_0 + h0 (h0 <= dt) and then steps of the grid spacing dt.  F_k =
    (f(tau_k, u_k) − h(tau_k))·active is stored per node.
    """

    def __init__(self, rhs: _RightHandSide, orders: np.ndarray, y0: np.ndarray, dt: float,
                 n_steps: int, memory, t0: float):
        self.rhs, self.orders, self.dt = rhs, orders.astype(float), float(dt)
        self.fractional = self.orders < 1
        self.m = len(orders)
        self._rgamma = 1.0 / _gamma(self.orders)
        size = n_steps + 2
        j = np.arange(size, dtype=float)
        p, l_w, r_w = interval_weights(j[None, :], 1.0, self.orders[:, None])  # (m, size)
        self._dta = dt**self.orders
        # Reversed tables so that sum_k W[n-k] F_k is a dot product with a tail slice.
        self._p_rev = np.ascontiguousarray(p[:, ::-1])
        c = l_w[:, :-1] + r_w[:, 1:]  # node weight from the interval on each side
        self._c_rev = np.ascontiguousarray(c[:, ::-1])
        self._l, self._r0 = l_w, r_w[:, 0]
        self._size = size - 1  # length of _c_rev
        self._psize = size
        self.memory = memory  # the L1 memory of the recorded trajectory (for restarts)
        self.restarts = 0
        self._start(t0, np.asarray(y0, float), np.ones(self.m, bool), np.zeros(self.m), None)

    # segment bookkeeping ----------------------------------------------------------------
    def _start(self, t0, u0, active, h0, forcing):
        self.u_s, self.active, self.forcing, self.h0 = u0.copy(), active.copy(), forcing, h0
        self.times = [float(t0)]
        self.u_last = u0.copy()
        self.F = np.empty((self.m, 64))
        stim = self.rhs.stimulus(t0, +1)  # the segment starts after any jump at t0
        self.F[:, 0] = (self.rhs.f(t0, stim, u0) - h0) * active
        self.n = 0

    def reactivate(self, t: float, y: np.ndarray, active: np.ndarray) -> None:
        """The clamp changes where the segment has just started: the same segment (its
        memory forcing kept) with the new set of active states."""
        self._start(t, y, active, self.h0, self.forcing)

    def _forcing(self, t):
        if self.forcing is None:
            return 0.0
        return self.forcing.history_term(t)

    def _F(self, t, u):
        """F at a node that ends a step: the stimulus before any jump at t."""
        return (self.rhs.f(t, self.rhs.stimulus(t, -1), u) - self._forcing(t)) * self.active

    def _push(self, t, f_new):
        if self.n + 1 == self.F.shape[1]:
            self.F = np.concatenate([self.F, np.empty_like(self.F)], axis=1)
        self.n += 1
        self.F[:, self.n] = f_new
        self.times.append(float(t))

    # steps ----------------------------------------------------------------------------
    def trial(self, t: float, active: np.ndarray) -> np.ndarray:
        if not np.array_equal(active, self.active):
            raise RuntimeError("internal: the clamp changed inside an Adams segment")
        s = t - self.times[-1]
        if s <= 0:
            return self.u_last.copy()
        if self.n >= 1 and abs(s - self.dt) <= SAME_STEP * self.dt:
            return self._uniform_step(t)
        return self._general_step(t)

    def _uniform_step(self, t):
        """PECE to t = tau_n + dt with the precomputed convolution weights."""
        n, f = self.n, self.F
        g, h0 = t - self.times[1], self.times[1] - self.times[0]
        p1, l1, r1 = _far_weights(g, h0, self.orders, self._rgamma)  # g = n dt >= h0
        pred = self.u_s + p1 * f[:, 0]
        corr = self.u_s + l1 * f[:, 0] + r1 * f[:, 1]
        conv_p, conv_c = np.empty(self.m), np.empty(self.m)
        for c in range(self.m):
            conv_p[c] = self._p_rev[c, self._psize - n:] @ f[c, 1:n + 1]
            conv_c[c] = (self._c_rev[c, self._size - n + 1:] @ f[c, 2:n + 1]
                         + self._l[c, n - 1] * f[c, 1])
        pred += self._dta * conv_p
        f_new = self._F(t, pred)
        return corr + self._dta * (conv_c + self._r0 * f_new)

    def _general_step(self, t):
        """PECE to any t > tau_n with weights computed for this mesh (O(n) powers)."""
        n, f = self.n, self.F[:, : self.n + 1]
        tau = np.append(self.times, t)
        p, l_w, r_w = interval_weights((t - tau[1:])[None, :], np.diff(tau)[None, :],
                                       self.orders[:, None])
        pred = self.u_s + (p * f).sum(1)
        f_new = self._F(t, pred)
        corr = self.u_s + (l_w * f).sum(1) + (r_w[:, :n] * f[:, 1:]).sum(1)
        return corr + r_w[:, n] * f_new

    def accept(self, t: float, y: np.ndarray, restart_active=None) -> None:
        """Record the node (t, y); restart the segment there when the clamp ends (or when the
        step is not a grid step, which keeps every segment's mesh of the form above)."""
        s = t - self.times[-1]
        if restart_active is not None or (self.n >= 1 and
                                          abs(s - self.dt) > SAME_STEP * self.dt):
            active = self.active if restart_active is None else restart_active
            self._restart(t, y, y, active)
            return
        self.memory.append(t, y)
        self._push(t, self._F(t, y))
        self.u_last = y.copy()

    def jump(self, t: float, y_before: np.ndarray, y_after: np.ndarray, active) -> None:
        self._restart(t, y_before, y_after, active)

    def _restart(self, t, y_before, y_after, active):
        """New segment at t from y_after; h(t) is the L1 memory of everything before t
        (its right limit at t: the last interval counts with gap 0; none for order 1)."""
        memory = self.memory
        h0 = np.zeros(self.m)
        if t > memory.t_last:
            H, c = memory.terms(t)
            h0 = H[0] + c[0] * (y_before - memory.u_last)
            h0 = np.where(self.fractional, h0, 0.0)
            memory.append(t, y_before)
        if not np.array_equal(y_after, y_before):
            memory.append(t, y_after)
        self.restarts += 1
        self._start(t, y_after, active, h0, memory.copy())

    @property
    def memory_floats(self) -> int:
        tables = self._p_rev.size + self._c_rev.size + self._l.size
        stored = self.F.size + len(self.times)
        return tables + stored + 2 * self.memory.memory_floats


# -- marching ---------------------------------------------------------------------------------
class _CoreStepper(Stepper):
    """A single-neuron fractional scheme (L1, L2-1σ or Adams) as a fixed-step stepper of the
    marching core, which lands its steps on the grid and splits them at events.

    For L2-1σ it also keeps second order where the solution behaves like (t − t_on)^α: after
    an onset (the start, the end of a clamp, a stimulus jump) it asks for steps graded
    towards t_on (``next_stop``), and it marks every kink (a same-time record), so that no
    quadratic piece of the memory straddles one."""

    #: ``run`` takes the graded steps after an onset itself (or declines the stretch).
    runs_graded = True

    def __init__(self, bound: BoundModel, scheme, grid: np.ndarray, kinks: np.ndarray,
                 kernels: ModelKernels) -> None:
        super().__init__(bound)
        self.scheme, self.kernels = scheme, kernels
        self.onsets = Onsets(bound.orders, grid, kinks,
                             graded=getattr(scheme, "sigma", 1.0) < 1.0)
        self.adams = isinstance(scheme, _AdamsStepper)
        self.pending = None

    @property
    def active(self) -> np.ndarray:
        """The states not clamped (as of the last step)."""
        return self.onsets.active[0]

    def next_stop(self, rows, t, frozen) -> np.ndarray:
        return self.onsets.next_stop(rows, t, frozen)

    def _active(self, t: float, y: np.ndarray, frozen: np.ndarray) -> np.ndarray:
        """Record the pending step end, then apply a change of the clamp at t: Adams starts a
        new segment (restarting at the pending node, or re-activating one that has just
        started), L1 and L2-1σ mark a kink; a hold's end is an onset."""
        active = ~frozen
        changed = bool(self.onsets.clamp_changes([0], frozen[None])[0])
        self._flush(active if changed else None)
        if changed:
            if self.adams:
                if not np.array_equal(self.scheme.active, active):
                    self.scheme.reactivate(t, y, active)
            else:
                self.scheme.mark_kink(t, y)
            self.onsets.set_clamp([0], [t], frozen[None])  # a hold that ends: an onset
        return active

    def _flush(self, restart_active=None) -> None:
        """Record the last accepted step end (kept back until the next step shows whether
        the clamp changes there: Adams then restarts its segment at that node)."""
        if self.pending is None:
            return
        time, y = self.pending
        self.pending = None
        if self.adams:
            if self.onsets.at_jump(time)[0] and restart_active is None:
                restart_active = self.active  # the stimulus jumps: a new segment
            self.scheme.accept(time, y, restart_active)
            return
        self.scheme.accept(time, y)
        self._after_record(time, y)

    def _after_record(self, time: float, y: np.ndarray) -> None:
        """Where the stimulus jumps at a recorded step end: mark the kink, an onset."""
        if self.onsets.at_jump(time)[0]:
            self.scheme.mark_kink(time, y)
            self.onsets.start([0], time)

    def attempt(self, rows, t, y, h, frozen) -> Trial:
        active = self._active(float(t[0]), y[0], frozen[0])
        y1 = self.scheme.trial(float(t[0] + h[0]), active)
        return Trial(t + h, y1[None], None, np.array([np.all(np.isfinite(y1))]))

    def partial(self, rows, t, y, s, frozen) -> np.ndarray:
        return np.array([self.scheme.trial(float(t[i] + s[i]), ~frozen[i])
                         for i in range(len(s))])

    def run(self, row, t, y, stops, frozen, before, crossings, armed):
        """Accept steps of the neuron (``row`` 0) to the grid ``stops`` until an event would
        fire in a step (:func:`splitpinn.numeric.kernels.crossed`; ``armed``: the neuron is out
        of its refractory period) or a step is not finite; returns (how many stops were
        reached, the end times and states of every step taken: the graded ones among them
        included, and a reset the kernel root-found in the next step or None).  An L1 / L2-1σ
        memory (full or fast) marches by the kernel of
        :func:`~splitpinn.numeric.compiled.march_uniform`, the graded steps after an onset
        (:meth:`~splitpinn.solvers.onsets.Onsets.remaining`) included; otherwise (Adams)
        the steps are taken one by one, and a stretch with graded steps is left
        to the marching loop (none taken)."""
        graded = self.onsets.remaining([0], np.array([t]), frozen[None])[0]
        active = self._active(t, y, frozen)
        self._flush()
        marched = self._compiled(stops, graded, active, before, armed)
        if marched is not None:
            return marched
        out = np.empty((len(stops), len(y)))
        if graded.size:
            return 0, stops[:0], out[:0], None
        row, when = np.array([0]), np.empty(1)
        for k, stop in enumerate(stops):
            self._flush()
            y1 = self.scheme.trial(float(stop), active)
            when[0] = stop
            g = crossings(row, when, y1[None])[0]
            if not np.all(np.isfinite(y1)) or crossed(before, g, len(self.bound.events), armed):
                return k, stops[:k], out[:k], None
            self.accept(row, when, y1[None])
            out[k], before = y1, g
        return len(stops), stops, out, None

    def _compiled(self, stops, graded, active, before, armed):
        """(count, times, states) of the kernel march over the grid ``stops`` with the ``graded``
        step ends inserted (:func:`~splitpinn.solvers.onsets.march_stretch`), or None where
        it does not apply (Adams); every step it takes is recorded at once."""
        if self.adams:
            return None

        def call(chunk, keep, state, before):
            return self.scheme.march(state, chunk, keep, active, before, armed, locate=True)

        return march_stretch(self.scheme.history, stops, graded, before, call,
                             self._after_record)

    def accept(self, rows, t, y) -> None:
        self._flush()
        self.pending = (float(t[0]), y[0].copy())

    def jump(self, rows, t, y_before, y_after) -> None:
        self._flush()
        self.scheme.jump(float(t[0]), y_before[0], y_after[0], self.active)


def _check_adams_events(bound: BoundModel) -> None:
    """Raise ModelError for a reset that the Adams method cannot represent (see the module
    docstring): a reset state not clamped for a refractory period > 0."""
    for event in bound.events:
        unclamped = set(event.reset_index) - set(event.clamp_index)
        if len(event.reset_index) and (event.refractory_rows.min() <= 0 or unclamped):
            raise ModelError(
                f"{bound.model.name}: integrator 'adams' supports resets only when every reset "
                "state is clamped for a refractory period > 0; with the memory kept across the "
                "reset, the Volterra form undoes an unclamped reset at once. Use integrator "
                "'l1'.")


def solve_fractional_reference(bound: BoundModel, grid: np.ndarray, *,
                               history: str | None = None, quiet: bool = True,
                               integrator: str = "l2-1sigma", newton_tol: float = 1e-12,
                               max_newton: int = 30, history_tol: float = 1e-8,
                               estimate_error: bool = False, traces: bool = True,
                               compiled: bool = True,
                               max_steps: int | None = None) -> list[Solution]:
    """Solve a (fractional-order) model with the grid spacing of ``grid`` as its step; one
    Solution per neuron (a batch is solved neuron by neuron).

    ``integrator``: "l2-1sigma" (implicit L2-1σ, Newton per step), "l1" or "adams" (fractional
    Adams–Bashforth–Moulton predictor–corrector); ``history``: "full" or "fast" memory
    (default: :func:`splitpinn.fractional.default_history_kind` of the number of steps),
    ``history_tol`` the relative kernel accuracy of the fast one; ``newton_tol`` and
    ``max_newton``: Newton's stopping rule (|du| <= tol·max(1, |u|)) and iteration cap.
    Works for integer-order models too (all orders 1: backward Euler / trapezoid).
    ``estimate_error``: solve again with twice the step and put the Richardson estimate of
    this solve's error (states and spike times) in ``meta["solver"]["error_estimate"]``, so
    that a user can see how converged the reference is (half the work again, so opt-in).
    ``compiled``: run the L1 / L2-1σ steps (Newton) compiled, and march the stretches of grid
    steps (the graded steps after an onset included) in the compiled kernel
    of :mod:`splitpinn.numeric.compiled` (False: the same kernels as plain Python, for
    debugging).
    ``max_steps``: the work limit per neuron (default
    :func:`splitpinn.solvers.marching.default_max_steps`, which counts the grid's steps).
    Raises ModelError for bad options, SolverError when Newton fails or the limit is hit.
    """
    if integrator not in INTEGRATORS:
        raise ModelError(f"unknown fractional reference integrator {integrator!r} "
                         f"(known: {', '.join(INTEGRATORS)})")
    n_steps = len(grid) - 1
    kind = choose_history(history, n_steps)
    if integrator == "adams":
        _check_adams_events(bound)
    steps = np.diff(grid)
    if integrator == "adams" and np.ptp(steps) > SAME_STEP * steps[0]:
        raise ModelError("integrator 'adams' needs a uniform output grid (no t_eval)")
    out = []
    for row in bound.neurons():
        start = _time.perf_counter()
        kernels = ModelKernels(row, compiled)
        scheme = _make_scheme(row, grid, integrator, kind, newton_tol, max_newton,
                              history_tol, kernels)
        # One BLAS thread: the systems and dot products are small; a thread pool only adds
        # synchronisation (a 10^4-long dot product took ms on a loaded machine).
        with threadpool_limits(limits=1, user_api="blas"):
            stepper = _CoreStepper(row, scheme, grid, union_breakpoints(row, grid[0], grid[-1]),
                                   kernels)
            result = march(row, stepper, grid, fixed_step=True, max_steps=max_steps,
                           traces=traces, quiet=quiet,
                           label=f"reference ({integrator}) {bound.model.name}")
        settings = {"name": "fractional-reference", "integrator": integrator, "history": kind,
                    "dt": float(steps[0]), "rhs_evaluations": scheme.rhs.evaluations,
                    "memory_floats": int(scheme.memory_floats)}
        if integrator != "adams":
            settings.update(newton_tol=newton_tol, newton_iterations=scheme.newton_iterations)
        else:
            settings["segments"] = scheme.restarts + 1
        if kind == "fast":
            settings["history_tol"] = history_tol
        out += solutions(row, grid, result, settings, _time.perf_counter() - start)
    if estimate_error and len(grid) >= 5 and np.ptp(steps) <= SAME_STEP * steps[0]:
        coarse = solve_fractional_reference(
            bound, grid[::2] if len(grid) % 2 else np.append(grid[:-1:2], grid[-1]),
            history=kind, integrator=integrator, newton_tol=newton_tol, max_newton=max_newton,
            history_tol=history_tol, estimate_error=False, traces=traces, compiled=compiled,
            max_steps=max_steps)
        order = {"l2-1sigma": 2.0, "l1": 2.0 - float(np.min(bound.orders)),
                 "adams": min(2.0, 1.0 + float(np.min(bound.orders)))}[integrator]
        for fine, rough in zip(out, coarse, strict=True):
            fine.meta["solver"]["error_estimate"] = _richardson(fine, rough, order)
    return out


def _richardson(fine: Solution, coarse: Solution, order: float) -> dict:
    """Estimated error of ``fine`` from the same solve at twice the step: the difference
    divided by 2^order − 1, for the states on the coarse grid and the matched spike times."""
    factor = 2.0**order - 1.0
    estimate = {"from": "a solve at twice the step (Richardson)", "order": order}
    if fine.t.size > 2:
        common = np.isin(fine.t, coarse.t)
        diff = np.abs(fine.y[:, common] - coarse.y[:, np.isin(coarse.t, fine.t)]) / factor
        estimate["max_abs"] = dict(zip(fine.names, diff.max(axis=1).tolist(), strict=True))
    n = min(fine.spike_times.size, coarse.spike_times.size)
    estimate["spike_count_changes"] = fine.spike_times.size != coarse.spike_times.size
    estimate["max_spike_time_ms"] = (float(np.max(np.abs(fine.spike_times[:n]
                                                         - coarse.spike_times[:n]))) / factor
                                     if n else None)
    return estimate


def _make_scheme(bound, grid, integrator, kind, newton_tol, max_newton, history_tol, kernels):
    """The L2-1σ, L1 or Adams scheme of one neuron, with its memory starting at grid[0]
    (``kernels``: the model's, for the implicit schemes' Newton steps)."""
    rhs = _RightHandSide(bound)
    y0 = np.asarray(bound.y0, dtype=float)
    t0, t_end = float(grid[0]), float(grid[-1])
    step = float(np.min(np.diff(grid)))

    scheme = "l21sigma" if integrator == "l2-1sigma" else "l1"
    memory = make_history(kind, bound.orders, t0, y0, t_end=t_end + (t_end - t0) * SAME_STEP,
                          dt_min=step / 10 if scheme == "l21sigma" else step, tol=history_tol,
                          scheme=scheme)
    memory.rules = memory_rules(kernels.jit)
    if integrator != "adams":
        return _ImplicitStepper(rhs, memory, newton_tol, max_newton, kernels)
    return _AdamsStepper(rhs, bound.orders, y0, step, len(grid) - 1, memory, t0)
