"""The arithmetic of a Caputo memory in time marching, written once.

A memory is the arrays of :class:`~splitpinn.fractional.history.MarchState`: the clock
(t_last, t_ref, start of the pending L2-1σ piece), the sum-of-exponentials accumulators, the
last state, and a window of exact pieces.  :func:`memory_record` records a step (the pending
piece settles with its curvature; pieces that ended ``delta`` ago fold into the accumulators,
:func:`memory_absorb`) and :func:`memory_terms` evaluates the memory for steps of given lengths
(H and c with H + c (u − u_last) ≈ D^α u at t_last + σ·length).

Plain Python on numpy arrays and floats (scalar loops, no array expressions), so that the
same functions serve twice: :class:`~splitpinn.fractional.history.History` runs them as they
are, and splitpinn's compiled march (:mod:`splitpinn.numeric.kernels`) compiles them with
numba into its own module.  No second, vectorised form is kept in step with them.
"""

import math

import numpy as np


def piece_moments(gap, h, alpha, rg1, rg2, beta):
    """The two integrals of a memory piece [b − h, b] (h > 0) that ends gap = t − b > 0
    before the evaluation time t: its L1 coefficient [(gap + h)^(1−α) − gap^(1−α)] /
    (Γ(2−α) h), free of cancellation (:func:`splitpinn.fractional.l1_kernel_quotient` for one
    float; ``rg2`` = 1/Γ(2−α)), and its L2-1σ curvature integral (1/Γ(1−α)) ∫ (t − r)^(−α)
    (2r − 2b + h) dr (``rg1`` = 1/Γ(1−α); ``beta``: its series coefficients, from
    :attr:`splitpinn.fractional.History.tables`), a series in
    z = h/(2 gap + h) where the closed form cancels.  One function for both, since they share
    gap^(1−α), log(1 + h/gap) and an expm1: the costly part of a stage's many points."""
    p = 1.0 - alpha
    power, log_ratio = gap**p, math.log1p(h / gap)
    rise = math.expm1(p * log_ratio)
    l1 = power * rise / h * rg2
    z = h / (2.0 * gap + h)
    z2 = z * z
    if z2 <= 1.0 / 16.0:
        # z^8 <= 1e-16: four terms suffice; never past the series (L1's is one zero)
        terms = min(4, beta.size) if z2 <= 1e-4 else beta.size
        poly = 0.0
        for j in range(terms - 1, -1, -1):
            poly = poly * z2 + beta[j]
        return l1, -4.0 * (gap / (1.0 - z)) ** (2.0 - alpha) * z * z2 * poly * rg1
    return l1, 2.0 * ((gap + 0.5 * h) * power * rise / p
                      - gap ** (1.0 + p) * math.expm1((1.0 + p) * log_ratio) / (1.0 + p)) * rg1


def phi_moment(y, series):
    """∫_0^1 (1 − 2v) e^(−yv) dv for y >= 0 without cancellation (``series``: its Taylor
    coefficients, used for y <= 1)."""
    if y <= 1.0:
        out = 0.0
        for k in range(series.size - 1, -1, -1):
            out = out * y + series[k]
        return out * y
    return (-math.expm1(-y) * (1.0 - 2.0 / y) + 2.0 * math.exp(-y)) / y


def same_length(x, y, scale):
    """Whether two lengths of time agree up to the rounding of times of size ``scale``."""
    return abs(x - y) <= 8 * 2.220446049250313e-16 * scale


def memory_absorb(a, b, du, d2, acc, clock, s, w, tables, cache):
    """Fold the piece [a, b] with increment du and curvature d2 (a jump where a == b) into
    the sum-of-exponentials accumulators ``acc`` (n, modes), now referenced to b (clock[1]):
    w ∫ e^(−s(b−r)) Q'(r) dr, Q'(b − x) = du/h + d2 (h − 2x).  ``cache``: the decay and the
    gains of the last lengths (in its first three arrays; the lengths in the first two slots
    of its fifth's first row), reused while they repeat (see :func:`memory_terms` for the
    rest)."""
    n, modes = acc.shape
    decay, slope, curve, lengths = cache[0], cache[1], cache[2], cache[4][0]
    scale = abs(a) + abs(b) + abs(clock[1])
    if not same_length(b - clock[1], lengths[0], scale):
        lengths[0] = b - clock[1]
        for i in range(n):
            for j in range(modes):
                decay[i, j] = math.exp(-s[i, j] * lengths[0])
    h = b - a
    if h > 0 and not same_length(h, lengths[1], scale):
        lengths[1] = h
        for i in range(n):
            for j in range(modes):
                y = s[i, j] * h
                slope[i, j] = -w[i, j] * math.expm1(-y) / y
                curve[i, j] = w[i, j] * h * h * phi_moment(y, tables[1])
    for i in range(n):
        for j in range(modes):
            gain = du[i] * slope[i, j] + d2[i] * curve[i, j] if h > 0 else w[i, j] * du[i]
            acc[i, j] = acc[i, j] * decay[i, j] + gain
    clock[1] = b


#: Terms of the Taylor series of e^(−y) for 0 <= y <= 1 that :func:`stage_modes` sums: the
#: first left out is below 1/18! < 2e-16.
SLOW_TERMS = 18
#: 1/k for k = 1..SLOW_TERMS: the ratios of the series' terms.
_INVERSE = 1.0 / np.arange(1.0, SLOW_TERMS + 1.0)


def stage_modes(taus, sigma, clock, acc, s, cache, H):
    """H (n, P) <- the accumulators decayed to every point t_last + x_q, x_q = σ·taus[q], of a
    stage (:func:`memory_terms` for split-PINN): each mode decayed to t_last (kept while
    t_last − t_ref repeats), then over x_q.  Where the lengths repeat (equal steps), every
    mode's decay over x_q is kept per point and the sum taken directly; for new lengths (a
    graded step), a mode that decays by at most e^(−1) over the stage (y = s·max x_q <= 1)
    is the series Σ_k (−y)^k/k! (x_q / max x)^k, summed over those modes first (moments),
    so that only the fast modes cost exponentials.  ``cache``: see :func:`memory_terms`."""
    n, modes = acc.shape
    E, keys, decay, moments = cache[3], cache[6], cache[7], cache[8]
    reach = clock[0] - clock[1]
    if not same_length(reach, keys[0], abs(clock[0]) + abs(clock[1])):
        keys[0] = reach
        for i in range(n):
            for j in range(modes):
                decay[i, j] = math.exp(-s[i, j] * reach)
    x_max = 0.0
    for q in range(taus.size):
        x_max = max(x_max, sigma * taus[q])
    fresh = not same_length(x_max, keys[1], abs(clock[0]) + abs(clock[0] + x_max))
    if fresh:  # new lengths; keys[2]: whether E holds the slow modes too
        keys[1], keys[2] = x_max, 0.0
    fill_slow = not fresh and keys[2] == 0.0
    keys[2] = 1.0 if fill_slow else keys[2]
    direct = keys[2] == 1.0
    for i in range(n):
        for q in range(taus.size):
            H[i, q] = 0.0
        if direct and not fill_slow:  # equal steps: the points innermost, vectorised,
            # four modes per pass over H (a quarter of its loads and stores; the same sums)
            last = modes - modes % 4
            for j in range(0, last, 4):
                a0, a1 = acc[i, j] * decay[i, j], acc[i, j + 1] * decay[i, j + 1]
                a2, a3 = acc[i, j + 2] * decay[i, j + 2], acc[i, j + 3] * decay[i, j + 3]
                for q in range(taus.size):
                    H[i, q] = (((H[i, q] + E[i, j, q] * a0) + E[i, j + 1, q] * a1)
                               + E[i, j + 2, q] * a2) + E[i, j + 3, q] * a3
            for j in range(last, modes):
                a = acc[i, j] * decay[i, j]
                for q in range(taus.size):
                    H[i, q] += E[i, j, q] * a
            continue
        for k in range(SLOW_TERMS):
            moments[k] = 0.0
        for j in range(modes):
            a, y = acc[i, j] * decay[i, j], s[i, j] * keys[1]
            if y <= 1.0 and not direct:
                for k in range(SLOW_TERMS):
                    moments[k] += a
                    a *= -y * _INVERSE[k]
                continue
            if (y > 1.0 and fresh) or (y <= 1.0 and fill_slow):
                for q in range(taus.size):
                    E[i, j, q] = math.exp(-s[i, j] * sigma * taus[q])
            for q in range(taus.size):
                H[i, q] += E[i, j, q] * a
        for q in range(0 if direct else taus.size):
            v, series = sigma * taus[q] / keys[1], 0.0
            for k in range(SLOW_TERMS - 1, -1, -1):
                series = series * v + moments[k]
            H[i, q] += series


def memory_terms(taus, sigma, clock, acc, s, window, wa, wb, wdu, wd2, du_p, orders,
                 constants, tables, cache, H, c):
    """The fractional memory for steps of lengths ``taus`` (P,) from t_last = clock[0]: H and c
    (n, P) with H + c (u − u_last) ≈ D^α u at t_last + σ tau (L1 at σ = 1 without curvature; see
    :mod:`splitpinn.fractional`): the accumulators decayed to t*, the exact pieces of the
    window, and the L2-1σ piece still pending (through the new point). One length for a step of
    a march; the collocation points of a stage for split-PINN's
    (:func:`splitpinn.numeric.kernels.memory_stage`). ``constants`` (4, n): 1/Γ(1−α), 1/Γ(2−α),
    1/Γ(3−α), whether the scheme is L2-1σ; ``tables``: the series coefficients of
    :func:`piece_moments` (n, terms) and of :func:`phi_moment`; ``cache``: see
    :func:`memory_absorb`, and per length its decay to t* (fourth array, (n, modes, P); of the
    many points of a stage: the fast modes' decay over x_q, see :func:`stage_modes`), c and the
    pending piece's factor (sixth, (2, n, P)), reused while the lengths they depend on repeat
    (fifth, (P, 5): slots 2-4 of each row); for :func:`stage_modes` its keys (seventh: t_last −
    t_ref, max x_q, whether E holds the slow modes too), the modes' decay to t_last (eighth, (n,
    modes)) and the moments (ninth, (SLOW_TERMS,))."""
    n, modes = acc.shape
    E, lengths, local = cache[3], cache[4], cache[5]
    if taus.size > 1:
        stage_modes(taus, sigma, clock, acc, s, cache, H)
    pending = constants[3, 0] > 0 and window[2] != 0
    h_p = clock[0] - clock[2] if pending else -1.0
    for q in range(taus.size):
        tau = taus[q]
        t_star = clock[0] + sigma * tau
        if taus.size == 1 and not same_length(t_star - clock[1], lengths[q, 2],
                                              abs(t_star) + abs(clock[1])):
            lengths[q, 2] = t_star - clock[1]
            for i in range(n):
                for j in range(modes):
                    E[i, j, q] = math.exp(-s[i, j] * lengths[q, 2])
        scale = abs(clock[0]) + abs(clock[0] + tau)
        if same_length(tau, lengths[q, 3], scale) and same_length(h_p, lengths[q, 4], scale):
            continue
        lengths[q, 3], lengths[q, 4] = tau, h_p
        for i in range(n):
            alpha, rg1, rg2, rg3 = orders[i], constants[0, i], constants[1, i], constants[2, i]
            head = (sigma * tau) ** (1.0 - alpha)
            local[0, i, q] = head * rg2 / tau
            if pending:
                k_p = head * tau * (2.0 * sigma - 2.0 + alpha) * rg3
                i0 = 0.0
                if alpha < 1.0:
                    l1, first = piece_moments(sigma * tau, h_p, alpha, rg1, rg2, tables[0][i])
                    i0 = h_p * l1
                    k_p += first
                k_p /= h_p + tau
                local[1, i, q] = i0 - k_p
                local[0, i, q] += k_p / tau
    for i in range(n):
        alpha, rg1, rg2 = orders[i], constants[0, i], constants[1, i]
        if taus.size == 1:  # a step of a march: the sum in a register
            total = 0.0
            for j in range(modes):
                total += E[i, j, 0] * acc[i, j]
            H[i, 0] = total
        if alpha < 1.0:
            for k in range(window[0], window[1]):
                h = wb[k] - wa[k]
                for q in range(taus.size):
                    gap = clock[0] + sigma * taus[q] - wb[k]
                    if h > 0:
                        l1, first = piece_moments(gap, h, alpha, rg1, rg2, tables[0][i])
                        H[i, q] += l1 * wdu[k, i] + first * wd2[k, i]
                    else:
                        H[i, q] += rg1 * gap ** (-alpha) * wdu[k, i]
        for q in range(taus.size):
            c[i, q] = local[0, i, q]
            if pending:
                H[i, q] += du_p[i] / h_p * local[1, i, q]


def memory_cache(n, modes, points):
    """The ``cache`` of :func:`memory_terms` for n states, ``modes`` exponentials and
    ``points`` lengths, empty."""
    return (np.empty((n, modes)), np.empty((n, modes)), np.empty((n, modes)),
            np.empty((n, modes, points)), np.full((points, 5), np.nan),
            np.empty((2, n, points)), np.full(3, np.nan), np.empty((n, modes)),
            np.empty(SLOW_TERMS))


def memory_record(t, u, u_last, clock, acc, s, w, window, wa, wb, wdu, wd2, du_p, delta,
                  constants, tables, cache):
    """Record the step from (clock[0], u_last) to (t, u) in the memory: the L2-1σ piece
    pending so far settles with its curvature (L1: the new interval settles at once, linear),
    and the pieces that ended at least ``delta`` before t fold into the accumulators.  At
    t = clock[0] the record is a jump of u (a reset; u unchanged: a kink), a piece of its
    own: the L2-1σ piece pending settles linear, and none is pending after it.  Writes at
    most two pieces after window[1]."""
    n = u.size
    h = t - clock[0]
    e = window[1]
    if constants[3, 0] > 0:
        if window[2]:
            h_p = clock[0] - clock[2]
            wa[e], wb[e] = clock[2], clock[0]
            for i in range(n):
                wdu[e, i] = du_p[i]
                wd2[e, i] = ((u[i] - u_last[i]) / h - du_p[i] / h_p) / (h_p + h) if h > 0 else 0.0
            e += 1
        window[2] = 1 if h > 0 else 0
        clock[2] = clock[0]
        for i in range(n):
            du_p[i] = u[i] - u_last[i]
    if constants[3, 0] == 0 or h == 0:
        wa[e], wb[e] = clock[0], t
        for i in range(n):
            wdu[e, i] = u[i] - u_last[i]
            wd2[e, i] = 0.0
        e += 1
    window[1] = e
    clock[0] = t
    for i in range(n):
        u_last[i] = u[i]
    while window[0] < window[1] and t - wb[window[0]] >= delta:
        k = window[0]
        memory_absorb(wa[k], wb[k], wdu[k], wd2[k], acc, clock, s, w, tables, cache)
        window[0] = k + 1
