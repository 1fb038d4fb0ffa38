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
per evaluation and O(N) memory).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np
from scipy.special import rgamma

from .l1 import l1_kernel_quotient, validate_alpha
from .soe import soe_tables

FAST_THRESHOLD_STEPS = 2000  # above this many steps the fast history is the default
_ROUNDING = 8 * np.finfo(float).eps  # relative rounding of a difference of two times
#: Step lengths that differ by less than this fraction are the same step (rounding of the
#: times): the one definition, for these memories and the marching of :mod:`splitpinn`.
SAME_STEP = 1e-9


def _interval_terms(t, a, b, du, groups):
    """History contribution at times t (P,) of intervals [a_k, b_k] with increments du (K, m).

    Intervals with b_k == a_k are jumps. groups: (alpha, component indices, 1/Gamma(1-alpha))
    per distinct order below 1. Returns (P, m). Requires t > b_k for all k.
    """
    out = np.zeros((t.shape[0], du.shape[1]))
    h = b - a
    jump = h == 0
    any_jump = bool(jump.any())
    if any_jump:
        h = np.where(jump, 1.0, h)  # placeholder length, overwritten below
    gap_b = t[:, None] - b
    for order, comp, rg1 in groups:
        coef = l1_kernel_quotient(gap_b, h, order)
        if any_jump:
            coef[:, jump] = rg1 * gap_b[:, jump] ** (-order)
        out[:, comp] = coef @ du[:, comp]
    return out


def reuse(cache: dict, key: str, lengths: tuple, scale: float, fn):
    """fn(*lengths), reused from cache[key] while lengths repeat up to rounding of times ~ scale."""
    hit = cache.get(key)
    if hit is None or len(hit[0]) != len(lengths) or any(
        abs(x - y) > _ROUNDING * scale for x, y in zip(hit[0], lengths, strict=True)
    ):
        hit = (lengths, fn(*lengths))
        cache[key] = hit
    return hit[1]


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

    def pieces(self) -> list:
        """The exact pieces (a, b, du, d2) of the window, in order."""
        return [(float(self.wa[k]), float(self.wb[k]), self.wdu[k].copy(), self.wd2[k].copy())
                for k in range(self.window[0], self.window[1])]


def march_tables(history, sigma: float, quadratic: bool, beta) -> tuple:
    """The constants of a fast memory for the compiled march: (sigma, delta, s, w, orders,
    constants (4, m): 1/Gamma(1-a), 1/Gamma(2-a), 1/Gamma(3-a), quadratic; (beta (m, terms):
    the series of the L2-1σ curvature integral per component, zero for order 1 or L1;
    PHI_SERIES))."""
    alpha = history._alpha
    constants = np.array([rgamma(1.0 - alpha), history._rg2, rgamma(3.0 - alpha),
                          np.full(alpha.shape, float(quadratic))])
    return (float(sigma), float(history._delta), history._s, history._w, alpha, constants,
            (np.ascontiguousarray(beta, dtype=float), PHI_SERIES))


class History(ABC):
    """Common interface: append completed intervals, evaluate history and local coefficients.

    alpha: Caputo order(s) in (0, 1], a scalar or one per component; t0: initial time (ms in
    splitpinn, any unit here); u0: 1-D array of initial state values, one per component.
    """

    def __init__(self, alpha, t0: float, u0):
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
        self._rg2 = rgamma(2.0 - self._alpha)
        # Components of order 1 have no memory (the kernel of a first derivative is local).
        self._groups = [
            (order, np.flatnonzero(self._alpha == order), float(rgamma(1.0 - order)))
            for order in np.unique(self._alpha)
            if order < 1.0
        ]
        self._t_last = float(t0)
        self._u_last = u0

    @property
    def alpha(self) -> np.ndarray:
        """Caputo order of each component."""
        return self._alpha.copy()

    @property
    def t_last(self) -> float:
        """End time of the last completed interval (t0 before any append)."""
        return self._t_last

    @property
    def u_last(self) -> np.ndarray:
        """State at t_last (after any jump recorded there)."""
        return self._u_last.copy()

    @property
    @abstractmethod
    def memory_floats(self) -> int:
        """Number of floats the object holds for the memory."""

    def append(self, t: float, u) -> None:
        """Record the state u (1-D) at the end of the completed interval [t_last, t].

        t == t_last records a jump of u at that instant (kept in memory, e.g. a spike reset).
        """
        t = float(t)
        u = np.array(u, dtype=float, ndmin=1)
        if u.shape != self._u_last.shape:
            raise ValueError(f"u must have shape {self._u_last.shape}, got {u.shape}")
        if not t >= self._t_last:
            raise ValueError(f"times must not decrease: t={t!r} < t_last={self._t_last!r}")
        self._record(t, u)
        self._t_last = t
        self._u_last = u

    def history_term(self, t) -> np.ndarray:
        """History part of D^a u for a step ending at t > t_last: (n_components,) or (P, n_comp)."""
        times, scalar = self._times(t)
        out = self._history(times)
        return out[0] if scalar else out

    def local_coefficient(self, t) -> np.ndarray:
        """1/(Gamma(2-a)(t - t_last)^a): multiplies u(t) - u_last; same shape as history_term."""
        times, scalar = self._times(t)
        out = self._rg2 * (times[:, None] - self._t_last) ** (-self._alpha)
        return out[0] if scalar else out

    def _times(self, t):
        times = np.asarray(t, dtype=float)
        if times.ndim > 1:
            raise ValueError(f"t must be a scalar or a 1-D array, got shape {times.shape}")
        scalar = times.ndim == 0
        times = times.reshape(-1)
        if not times.min() > self._t_last:
            raise ValueError(f"evaluation times must exceed t_last={self._t_last!r}")
        return times, scalar

    @abstractmethod
    def _record(self, t: float, u: np.ndarray) -> None:
        """Store the interval [t_last, t] ending at state u (called before t_last moves)."""

    @abstractmethod
    def _history(self, t: np.ndarray) -> np.ndarray:
        """History at times t (P,), shape (P, n_components)."""


class FastHistory(History):
    """Sum-of-exponentials history (Jiang et al., CiCP 2017): O(N_exp) per step and memory.

    t_end: last time at which the history is evaluated; dt_min: the smallest time step (intervals
    whose end is closer than dt_min to t_last are kept exact, so shorter steps stay correct);
    tol: relative accuracy of the kernel (t - tau)^(-a) on [dt_min, t_end - t0].
    """

    def __init__(self, alpha, t0: float, u0, t_end: float, dt_min: float, tol: float = 1e-8):
        super().__init__(alpha, t0, u0)
        self._delta, self._t_max, self._s, self._w = soe_setup(
            self._alpha, self._t_last, t_end, dt_min, tol
        )
        self._start_window()

    def _start_window(self) -> None:
        """Empty accumulators and window, from t_last on."""
        self._acc = np.zeros_like(self._s)  # weighted sums over absorbed intervals at _t_ref
        self._t_ref = self._t_last
        self._window: list[tuple[float, float, np.ndarray]] = []  # exact recent (a, b, du)
        self._cache: dict = {}  # for reuse()

    @property
    def n_exp(self) -> int:
        """Number of exponentials per component."""
        return self._s.shape[1]

    @property
    def memory_floats(self) -> int:
        window = sum(2 + du.size for _, _, du in self._window)
        return self._s.size + self._w.size + self._acc.size + window

    def _record(self, t, u):
        self._window.append((self._t_last, t, u - self._u_last))
        while self._window and t - self._window[0][1] >= self._delta:
            self._absorb(*self._window.pop(0))

    def _absorb(self, a, b, du):
        """Fold interval [a, b] (or a jump if a == b) into the accumulators, now referenced to b."""
        s, w = self._s, self._w
        scale = abs(b) + abs(self._t_ref)
        decay = reuse(self._cache, "decay", (b - self._t_ref,), scale, lambda d: np.exp(-s * d))
        if b > a:  # w * integral_a^b exp(-s (b - tau)) dtau / (b - a): u is linear on [a, b]
            gain = reuse(
                self._cache, "gain", (b - a,), scale, lambda h: -w * np.expm1(-s * h) / (s * h)
            )
        else:
            gain = w
        self._acc = self._acc * decay + du[:, None] * gain
        self._t_ref = b

    def march_state(self, room: int) -> MarchState:
        """The memory as the arrays of the compiled march, with room for ``room`` steps."""
        zero = np.zeros_like(self._u_last)
        pieces = [(a, b, du, zero) for a, b, du in self._window]
        return MarchState.of(self._t_last, self._t_ref, self._acc, self._u_last, pieces, None,
                             room + 1)

    def march_tables(self) -> tuple:
        """The constants of the compiled march (:func:`march_tables`): L1, sigma = 1."""
        if "march" not in self._cache:
            beta = np.zeros((self._alpha.size, 1))
            self._cache["march"] = march_tables(self, 1.0, False, beta)
        return self._cache["march"]

    def take(self, state: MarchState) -> None:
        """Take over the memory that a compiled march left in ``state``."""
        self._t_last, self._t_ref = float(state.clock[0]), float(state.clock[1])
        self._u_last, self._acc = state.u_last.copy(), state.acc.copy()
        self._window = [(a, b, du) for a, b, du, _ in state.pieces()]

    def _history(self, t):
        if t.max() > self._t_max:
            raise ValueError(f"evaluation time beyond t_end={self._t_max!r} of the SOE kernel")
        decay = np.exp(-self._s * (t - self._t_ref)[:, None, None])
        out = (decay * self._acc).sum(axis=2)
        if self._window:
            a, b, du = (np.array(x) for x in zip(*self._window, strict=True))
            out += _interval_terms(t, a, b, du, self._groups)
        return out


class FullHistory(FastHistory):
    """Exact history: every interval kept, O(N) work per evaluation and O(N) memory — a fast
    history without exponentials (``n_exp`` 0), whose window never folds, so that the
    compiled march takes it too."""

    def __init__(self, alpha, t0: float, u0):
        History.__init__(self, alpha, t0, u0)
        self._delta, self._t_max, self._s, self._w = exact_setup(self._alpha)
        self._start_window()


def default_history_kind(n_steps: int) -> str:
    """Return "fast" for runs longer than FAST_THRESHOLD_STEPS steps, else "full"."""
    return "fast" if n_steps > FAST_THRESHOLD_STEPS else "full"
