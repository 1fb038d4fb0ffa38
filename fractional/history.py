"""Memory of the L1 Caputo derivative for time-marching solvers.

A solver marching t_0 < t_1 < ... splits the L1 derivative at a time t in (t_last, t_last + h]
into the part fixed by completed intervals (the history) and the part from the current interval:

    D^a u(t) ~ history_term(t) + local_coefficient(t) * (u(t) - u_last),

    history_term(t) = sum_k (u_{k+1} - u_k)/(t_{k+1} - t_k)
                            * [(t - t_k)^(1-a) - (t - t_{k+1})^(1-a)] / Gamma(2-a)  (+ jumps),
    local_coefficient(t) = 1 / (Gamma(2-a) (t - t_last)^a).

At t = t_last + h this is exactly the L1 scheme. A jump (u changes at one instant, e.g. a spike
reset) adds du (t - t_jump)^(-a) / Gamma(1-a), the Caputo derivative of a step, so memory survives
resets. Components of order a = 1 have no history; their local term is the backward difference.

`FastHistory` folds all but the most recent intervals into sum-of-exponentials accumulators
(`soe.soe_kernel`): O(N_exp) work per step and O(N_exp) memory, relative kernel error <= tol.
`FullHistory` is the same memory without exponentials: every interval stays exact (O(N) work
per evaluation and O(N) memory).  Both are a `History`, whose arithmetic is
`splitpinn.fractional.rules`: the rules of splitpinn's compiled march, run as plain Python.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from scipy.special import rgamma

from . import rules
from .l1 import validate_alpha
from .soe import soe_tables

FAST_THRESHOLD_STEPS = 2000  # above this many steps the fast history is the default
#: Step lengths that differ by less than this fraction are the same step (rounding of the
#: times): the one definition, for these memories and the marching of :mod:`splitpinn`.
SAME_STEP = 1e-9


def soe_setup(alpha: np.ndarray, t0: float, t_end: float, dt_min: float, tol: float):
    """Checked set-up of a fast history: (delta, t_max, s, w), s and w from `soe_tables`.

    Intervals that ended at least delta before t_last may be folded into the SOE accumulators;
    t_max is the last time at which the kernel is accurate.
    """
    span = float(t_end) - t0
    if not (0 < dt_min < span):
        raise ValueError(
            f"need 0 < dt_min < t_end - t0, got dt_min={dt_min!r}, t_end - t0={span!r}"
        )
    # Steps equal to dt_min up to rounding of the times still count as dt_min.
    delta = float(dt_min) * (1.0 - 1e-6)
    s, w = soe_tables(alpha, delta, span, tol)
    return delta, t0 + span * (1.0 + SAME_STEP), s, w  # t_max: slack for rounding only


def exact_setup(alpha: np.ndarray):
    """The set-up of a full memory as a fast one: (delta, t_max, s, w) with no exponentials,
    no interval ever folded (delta = inf) and no horizon (t_max = inf)."""
    none = np.zeros((alpha.size, 0))
    return math.inf, math.inf, none, none.copy()


#: Taylor coefficients of phi(y) = int_0^1 (1 - 2v) exp(-y v) dv = sum_k PHI_SERIES[k-1] y^k
#: (k = 1..20; the first omitted term is below 1/20! < 1e-18 for y <= 1).
PHI_SERIES = np.array([(-1) ** (k + 1) * k / (math.factorial(k) * (k + 1) * (k + 2))
                       for k in range(1, 21)])


@dataclass
class MarchState:
    """A fast memory as the arrays that the compiled march
    (:func:`splitpinn.numeric.kernels.march`) updates in place: ``clock`` = (t_last, t_ref,
    start of the pending L2-1σ piece), the accumulators ``acc`` (m, N_exp), ``u_last``, the
    increment ``du_p`` of the pending piece, ``window`` = (first, end, a piece is pending)
    into the exact pieces ``wa``, ``wb`` (start and end), ``wdu``, ``wd2`` (increment and
    curvature), which have room for more pieces after ``end``."""

    clock: np.ndarray
    acc: np.ndarray
    u_last: np.ndarray
    du_p: np.ndarray
    window: np.ndarray
    wa: np.ndarray
    wb: np.ndarray
    wdu: np.ndarray
    wd2: np.ndarray

    @classmethod
    def of(cls, t_last, t_ref, acc, u_last, pieces, pending, room: int) -> MarchState:
        """From a memory's pieces (a, b, du, d2) and its pending piece (a, du) or None, with
        room for ``room`` more pieces."""
        m, k = u_last.size, len(pieces)
        wa, wb = np.empty(k + room), np.empty(k + room)
        wdu, wd2 = np.empty((k + room, m)), np.empty((k + room, m))
        for i, (a, b, du, d2) in enumerate(pieces):
            wa[i], wb[i], wdu[i], wd2[i] = a, b, du, d2
        start, du_p = (np.nan, np.zeros(m)) if pending is None else pending
        return cls(np.array([t_last, t_ref, start], dtype=float), np.array(acc, dtype=float),
                   np.array(u_last, dtype=float), np.array(du_p, dtype=float),
                   np.array([0, k, pending is not None], dtype=np.int64), wa, wb, wdu, wd2)

    def compacted(self, room: int) -> MarchState:
        """A copy without the pieces already folded, with room for ``room`` more."""
        first, end = self.window[0], self.window[1]
        pieces = list(zip(self.wa[first:end], self.wb[first:end], self.wdu[first:end],
                          self.wd2[first:end], strict=True))
        pending = (self.clock[2], self.du_p) if self.window[2] else None
        return MarchState.of(self.clock[0], self.clock[1], self.acc, self.u_last, pieces,
                             pending, room)


class MemoryRules(NamedTuple):
    """The functions of :mod:`splitpinn.fractional.rules` that a :class:`History` calls:
    as they are (:data:`PLAIN_RULES`), or the same compiled (splitpinn's solvers hand their
    memories the compiled march's)."""

    record: Callable
    terms: Callable
    cache: Callable


PLAIN_RULES = MemoryRules(rules.memory_record, rules.memory_terms, rules.memory_cache)


class History:
    """A Caputo memory for time marching: record the states at step ends (:meth:`append`),
    evaluate the memory for the next step (:meth:`terms`).

    Held as a :class:`MarchState` and updated by :mod:`splitpinn.fractional.rules`, the rules
    that splitpinn's compiled march runs too (``rules``: those functions, plain or compiled).
    alpha: Caputo order(s) in (0, 1], a scalar or one per component; t0: initial time (ms in
    splitpinn, any unit here); u0: 1-D array of initial state values, one per component;
    ``setup`` = (delta, t_max, s, w) (:func:`soe_setup` or :func:`exact_setup`); ``sigma``,
    ``quadratic`` and ``beta``: the scheme (L1: σ = 1, linear pieces; L2-1σ: see
    :mod:`splitpinn.fractional.l21sigma`).
    """

    def __init__(self, alpha, t0: float, u0, setup=None, *, sigma: float = 1.0,
                 quadratic: bool = False, beta=None):
        u0 = np.array(u0, dtype=float, ndmin=1)
        if u0.ndim != 1:
            raise ValueError(f"u0 must be a 1-D array of state values, got shape {u0.shape}")
        alpha = np.asarray(validate_alpha(alpha), dtype=float)
        if alpha.ndim > 1 or (alpha.ndim == 1 and alpha.shape != u0.shape):
            raise ValueError(
                f"alpha must be a scalar or have one order per component ({u0.shape[0]}), "
                f"got shape {alpha.shape}"
            )
        if not math.isfinite(t0):
            raise ValueError(f"t0 must be finite, got {t0!r}")
        self._alpha = np.broadcast_to(alpha, u0.shape).copy()
        delta, self._t_max, s, w = setup or exact_setup(self._alpha)
        constants = np.array([rgamma(1.0 - self._alpha), rgamma(2.0 - self._alpha),
                              rgamma(3.0 - self._alpha),
                              np.full(self._alpha.shape, float(quadratic))])
        beta = np.zeros((u0.size, 1)) if beta is None else beta
        #: The constants of the rules: (sigma, delta, s, w, orders, constants (4, m):
        #: 1/Γ(1−α), 1/Γ(2−α), 1/Γ(3−α), quadratic; (the L2-1σ curvature series per
        #: component, PHI_SERIES)), as the compiled march takes them.
        self.tables = (float(sigma), float(delta), s, w, self._alpha, constants,
                       (np.ascontiguousarray(beta, dtype=float), PHI_SERIES))
        self._state = MarchState.of(float(t0), float(t0), np.zeros_like(s), u0, [], None, 16)
        self.rules = PLAIN_RULES
        #: The records' work space: the decays and gains of the lengths folded last, reused
        #: while those lengths repeat (each keyed by its length, so any rules may use it)
        self._record_cache = rules.memory_cache(u0.size, s.shape[1], 1)

    @property
    def alpha(self) -> np.ndarray:
        """Caputo order of each component."""
        return self._alpha.copy()

    @property
    def sigma(self) -> float:
        """The point t_last + sigma (t - t_last) at which the relation holds, for all components."""
        return self.tables[0]

    @property
    def t_last(self) -> float:
        """End time of the last completed interval (t0 before any append)."""
        return float(self._state.clock[0])

    @property
    def u_last(self) -> np.ndarray:
        """State at t_last (after any jump recorded there)."""
        return self._state.u_last.copy()

    @property
    def n_exp(self) -> int:
        """Number of exponentials per component (0: a full memory)."""
        return self.tables[2].shape[1]

    @property
    def memory_floats(self) -> int:
        """Number of floats the memory holds: the exponentials' nodes, weights and
        accumulators, the exact pieces, the pending piece."""
        state, m = self._state, self._alpha.size
        pieces = int(state.window[1] - state.window[0])
        return 3 * self.tables[2].size + pieces * (2 + 2 * m) + int(state.window[2]) * (1 + m)

    def append(self, t: float, u) -> None:
        """Record the state u (1-D) at the end of the completed interval [t_last, t].

        t == t_last records a jump of u at that instant (kept in memory, e.g. a spike reset);
        for L2-1σ, a same-time append with u unchanged marks a kink.
        """
        t = float(t)
        u = np.array(u, dtype=float, ndmin=1)
        if u.shape != self._state.u_last.shape:
            raise ValueError(f"u must have shape {self._state.u_last.shape}, got {u.shape}")
        if not t >= self.t_last:
            raise ValueError(f"times must not decrease: t={t!r} < t_last={self.t_last!r}")
        if self._state.window[1] + 1 >= self._state.wa.size:
            self._state = self.march_state(self._state.wa.size)  # compacted, twice the room
        sigma, delta, s, w, _, constants, series = self.tables
        state = self._state
        self.rules.record(t, u, state.u_last, state.clock, state.acc, s, w, state.window,
                          state.wa, state.wb, state.wdu, state.wd2, state.du_p, delta,
                          constants, series, self._record_cache)

    def terms(self, t) -> tuple[np.ndarray, np.ndarray]:
        """The memory for steps from t_last to the times ``t`` (P,) > t_last: H and c (P, m)
        with D^a u(t_last + σ(t − t_last)) ≈ H + c·(u(t) − u_last)."""
        times = np.asarray(t, dtype=float).reshape(-1)
        if not times.min() > self.t_last:
            raise ValueError(f"evaluation times must exceed t_last={self.t_last!r}")
        if times.max() > self._t_max:
            raise ValueError(f"evaluation time beyond t_end={self._t_max!r} of the SOE kernel")
        sigma, _, s, _, orders, constants, series = self.tables
        state, m = self._state, self._alpha.size
        H, c = np.empty((m, times.size)), np.empty((m, times.size))
        self.rules.terms(np.ascontiguousarray(times - self.t_last), sigma, state.clock,
                         state.acc, s, state.window, state.wa, state.wb, state.wdu, state.wd2,
                         state.du_p, orders, constants, series,
                         self.rules.cache(m, s.shape[1], times.size), H, c)
        return H.T, c.T

    def history_term(self, t) -> np.ndarray:
        """The part of the derivative fixed by the recorded steps, for steps ending at t >
        t_last: (m,) for a scalar t, else (P, m)."""
        return self._one(t, 0)

    def local_coefficient(self, t) -> np.ndarray:
        """What multiplies u(t) − u_last; the shape of :meth:`history_term`."""
        return self._one(t, 1)

    def _one(self, t, which: int) -> np.ndarray:
        times = np.asarray(t, dtype=float)
        if times.ndim > 1:
            raise ValueError(f"t must be a scalar or a 1-D array, got shape {times.shape}")
        out = self.terms(times)[which]
        return out[0] if times.ndim == 0 else out

    def march_state(self, room: int) -> MarchState:
        """A copy of the memory as the arrays of the compiled march, its window compacted,
        with room for ``room`` more steps."""
        return self._state.compacted(room + 1)

    def take(self, state: MarchState) -> None:
        """Take over the memory that a compiled march left in ``state``."""
        self._state = state

    def copy(self) -> History:
        """An independent copy (the constants shared)."""
        twin = copy.copy(self)
        twin._state = self.march_state(0)
        twin._record_cache = tuple(a.copy() for a in self._record_cache)
        return twin


class FastHistory(History):
    """Sum-of-exponentials L1 memory (Jiang et al., CiCP 2017): O(N_exp) per step and memory.

    t_end: last time at which the history is evaluated; dt_min: the smallest time step (intervals
    whose end is closer than dt_min to t_last are kept exact, so shorter steps stay correct);
    tol: relative accuracy of the kernel (t - tau)^(-a) on [dt_min, t_end - t0].
    """

    def __init__(self, alpha, t0: float, u0, t_end: float, dt_min: float, tol: float = 1e-8):
        alpha = np.broadcast_to(validate_alpha(alpha), np.shape(np.atleast_1d(u0))).astype(float)
        super().__init__(alpha, t0, u0, soe_setup(alpha, float(t0), t_end, dt_min, tol))


class FullHistory(History):
    """Exact L1 memory: every interval kept, O(N) work per evaluation and O(N) memory — a
    fast memory without exponentials (``n_exp`` 0), whose window never folds."""

    def __init__(self, alpha, t0: float, u0):
        super().__init__(alpha, t0, u0)


def default_history_kind(n_steps: int) -> str:
    """Return "fast" for runs longer than FAST_THRESHOLD_STEPS steps, else "full"."""
    return "fast" if n_steps > FAST_THRESHOLD_STEPS else "full"
