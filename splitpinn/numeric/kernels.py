"""The numba kernels of :mod:`splitpinn.numeric.compiled`, as plain Python.

They call a model's ``rhs``, ``jacobian`` and ``crossings`` by name.
:mod:`splitpinn.numeric.compiled` writes, per model, one module of this source followed by the
model's functions (which replace the stand-ins below), and compiles every function with
``numba.njit(cache=True)``, so that the machine code is cached on disk next to that module and
later processes load it instead of compiling again.  Run as plain Python (with any ``rhs``) they
give the same results, slowly.

Scalar loops throughout: numba compiles array expressions and its LAPACK binding
(np.linalg.solve) in about ten seconds per process, more than a long run takes.
"""

import math

import numpy as np

_SMALL = 1e-3  # below this |x| the Taylor series is used (its truncation error is < 1e-16)

#: Times closer than this (ms) are the same instant: a step's end and a stop (a stimulus jump,
#: a refractory end, t_end, a grid point, a spike delivery), an event and a grid point.  The
#: one definition (its relative counterpart for step lengths is
#: :data:`splitpinn.fractional.history.SAME_STEP`).
SAME_TIME = 1e-9

#: Step control (as ``solve_ivp``'s): after a step with error norm err, the next step is
#: h·SAFETY·err^(−1/(order+1)), clipped to [MIN_FACTOR, MAX_FACTOR]·h ...
SAFETY = 0.9
MIN_FACTOR = 0.2
MAX_FACTOR = 5.0
#: ... and h·FAILED_FACTOR after a step whose error is not finite (a failed stage, overflow).
FAILED_FACTOR = 0.25


def XOverOneMinusExp(x):  # noqa: N802 (the name of the sympy function it implements)
    """g(x) = x / (1 − e^(−x)), g(0) = 1, for one float (see :mod:`splitpinn.declare.functions`);
    for x < 0 as x·e^x / (e^x − 1), which cannot overflow (e^(−x) does below x ≈ −709)."""
    if abs(x) < _SMALL:
        return 1 + x / 2 + x * x / 12
    return x / -math.expm1(-x) if x > 0 else x * math.exp(x) / math.expm1(x)


def XOverOneMinusExpPrime(x):  # noqa: N802
    """g'(x) for one float (for x < 0 as e^x (e^x − 1 − x) / (e^x − 1)², without overflow)."""
    if abs(x) < _SMALL:
        return 0.5 + x / 6 - x**3 / 180
    if x < 0:
        em1 = math.expm1(x)
        return math.exp(x) * (em1 - x) / (em1 * em1)
    em = -math.expm1(-x)
    return (em - x * math.exp(-x)) / em**2


def rhs(t, I_ext, y, p, out):
    """Stand-in: the model's right-hand side into ``out`` (n,)."""
    raise NotImplementedError


def jacobian(t, I_ext, y, p, out):
    """Stand-in: the model's Jacobian into ``out`` (n, n)."""
    raise NotImplementedError


def diagonal(t, I_ext, y, p, out):
    """Stand-in: the right-hand side into ``out[0]`` and the Jacobian's diagonal into
    ``out[1]`` (all a frozen-coefficient stage needs, without the costly off-diagonal
    derivatives of rate functions)."""
    raise NotImplementedError


def crossings(t, I_ext, y, p, out):
    """Stand-in: the model's event functions, then its spike detector, into ``out``."""
    raise NotImplementedError


#: The smallest positive double: a strict threshold's event function at its threshold.
TINY = 5e-324


def strict(g):
    """The event function of a strict threshold (``lhs > rhs``): g = lhs − rhs, but just
    below zero where g is zero, so that the ">= 0" of :func:`fires` (and of root finding, the
    start and reset checks) reads it as ">".  Elementwise on arrays as well as on scalars."""
    return g - (g == 0.0) * TINY


def fires(before, after, column, n_events, armed):
    """The refractory guard, Brian2's ``(threshold) and not_refractory``: whether event
    function ``column`` fires on a step from ``before`` to ``after`` — it goes from below
    zero to zero or above, and if it is the threshold of one of the ``n_events`` reset events
    (the spike detector, after them, has no refractory period), the neuron is ``armed`` (not
    refractory).  Elementwise on broadcast arrays as well as on scalars."""
    return (before < 0) & (after >= 0) & (armed | (column >= n_events))


def crossed(before, after, n_events, armed):
    """Whether any event function :func:`fires` on a step from ``before`` to ``after``."""
    for j in range(before.size):  # noqa: SIM110 (a loop: numba compiles it quickly)
        if fires(before[j], after[j], j, n_events, armed):
            return True
    return False


def solve_in_place(m, r):
    """r <- m^-1 r in place for a small system (Gaussian elimination, partial pivoting)."""
    n = r.size
    for col in range(n):
        pivot = col
        for i in range(col + 1, n):
            if abs(m[i, col]) > abs(m[pivot, col]):
                pivot = i
        if pivot != col:
            for j in range(n):
                m[col, j], m[pivot, j] = m[pivot, j], m[col, j]
            r[col], r[pivot] = r[pivot], r[col]
        for i in range(col + 1, n):
            factor = m[i, col] / m[col, col]
            for j in range(col, n):
                m[i, j] -= factor * m[col, j]
            r[i] -= factor * r[col]
    for i in range(n - 1, -1, -1):
        for j in range(i + 1, n):
            r[i] -= m[i, j] * r[j]
        r[i] /= m[i, i]


def cholesky_solve_in_place(m, r):
    """r <- m^-1 r in place for a symmetric positive definite m given by its lower triangle
    (a normal matrix; half the work of elimination); NaN where m is not positive definite."""
    n = r.size
    for j in range(n):
        for k in range(j):
            m[j, j] -= m[j, k] * m[j, k]
        if not m[j, j] > 0:
            for i in range(n):
                r[i] = np.nan
            return
        m[j, j] = math.sqrt(m[j, j])
        for i in range(j + 1, n):
            for k in range(j):
                m[i, j] -= m[i, k] * m[j, k]
            m[i, j] /= m[j, j]
    for i in range(n):
        for k in range(i):
            r[i] -= m[i, k] * r[k]
        r[i] /= m[i, i]
    for i in range(n - 1, -1, -1):
        for k in range(i + 1, n):
            r[i] -= m[k, i] * r[k]
        r[i] /= m[i, i]


def march(t0, u0, du_last, acc, E, P, c, D, G1, G2, sigma,
          stops, t_star, stim_star, stim_end, p, active, before, n_events, armed, linear, jac,
          newton_tol, max_newton, out):
    """The implicit L1 / L2-1σ march of :func:`splitpinn.numeric.compiled.march_uniform`; returns
    (steps taken, Newton iterations of those steps); it stops before a step whose Newton
    iteration fails, and before one where an event :func:`fires` (``armed``: whether the
    neuron is out of its refractory period)."""
    n, modes = acc.shape
    u_last, u, u_star, f, r = u0.copy(), u0.copy(), u0.copy(), np.empty(n), np.empty(n)
    H, m, g = np.empty(n), np.empty((n, n)), np.empty(before.size)
    t_last, iterations, count = t0, 0, 0
    for k in range(stops.size):
        for i in range(n):
            H[i] = P[i] * du_last[i]
            for j in range(modes):
                H[i] += E[i, j] * acc[i, j]
            u[i] = u_last[i]
        converged, tries = False, 0
        for _ in range(max_newton):
            tries += 1
            for i in range(n):
                u_star[i] = sigma * u[i] + (1.0 - sigma) * u_last[i]
            rhs(t_star[k], stim_star[k], u_star, p, f)
            if not linear:
                jacobian(t_star[k], stim_star[k], u_star, p, jac)
            for i in range(n):
                r[i] = -(H[i] + c[i] * (u[i] - u_last[i]) - f[i])
                for j in range(n):
                    m[i, j] = -sigma * jac[i, j]
                m[i, i] += c[i]
                if not active[i]:
                    r[i] = 0.0
                    for j in range(n):
                        m[i, j] = 0.0
                    m[i, i] = 1.0
            solve_in_place(m, r)
            converged, finite = True, True
            for i in range(n):
                u[i] += r[i]
                finite = finite and math.isfinite(u[i])
                converged = converged and abs(r[i]) <= newton_tol * max(1.0, abs(u[i]))
            if not finite:
                converged = False
                break
            if linear or converged:
                converged = True
                break
        if not converged:
            break
        crossings(stops[k], stim_end[k], u, p, g)
        if crossed(before, g, n_events, armed):
            break
        # accepted (only accepted work is counted): record it in the memory
        iterations += tries
        scale = 1.0 / (2.0 * (stops[k] - t_last) ** 2)
        for i in range(n):
            step = u[i] - u_last[i]
            d2 = (step - du_last[i]) * scale  # the curvature L2-1σ keeps
            for j in range(modes):
                acc[i, j] = D[i, j] * acc[i, j] + G1[i, j] * du_last[i] + G2[i, j] * d2
            du_last[i], u_last[i] = step, u[i]
            out[k, i] = u[i]
        for j in range(g.size):
            before[j] = g[j]
        t_last = stops[k]
        count += 1
    return count, iterations


def tabulated_stage(z, b, u0, z_low, width, coefficients, residual, reach, tol):
    """A frozen-coefficient stage from a :class:`~splitpinn.numeric.stage_table.StageTable`: (the
    value at the stage end, the bound of its residual), or (NaN, inf) where z lies outside
    the table or the bound misses ``tol`` (then the stage is solved directly)."""
    x = (z - z_low) / width
    if not (x >= 0.0 and x < coefficients.shape[0]) or not math.isfinite(b):
        return math.nan, math.inf
    piece = int(x)
    bound = abs(b) * residual[piece] / max(1.0, abs(u0) - abs(b) * reach[piece])
    if not bound <= tol:
        return math.nan, math.inf
    s = 2.0 * (x - piece) - 1.0  # Clenshaw's recurrence for the Chebyshev series
    b1, b2 = 0.0, 0.0
    for k in range(coefficients.shape[1] - 1, 0, -1):
        b1, b2 = 2.0 * s * b1 - b2 + coefficients[piece, k], b1
    return u0 + b * (s * b1 - b2 + coefficients[piece, 0]), bound


def compose_row(t, y, h, frozen, stim, p, scheme):
    """One row's composed step of :class:`splitpinn.numeric.compiled.FrozenComposition`, in place on
    its states y (n,): each state's stage from the table where it applies, else by its
    normal equations.  Returns (the largest stage residual, the first sub-problem whose stage
    missed the tolerance, or −1)."""
    (stage_sub, stage_c, members, g0, g1, g2, o_sum, v_sum, o_check, v_check, end, tol,
     z_low, width, coefficients, residual, reach) = scheme
    n, K, C = y.size, end.size, o_check.shape[0]
    fd, g, w, new = np.empty((2, n)), np.empty((K, K)), np.empty(K), np.empty(n)
    clock = np.zeros(members.shape[0])
    worst, failed_at = 0.0, -1
    for st in range(stage_sub.size):
        k, c = stage_sub[st], stage_c[st]
        hh = c * h
        diagonal(t + clock[k] * h, stim, y, p, fd)
        for m in range(members.shape[1]):
            i = members[k, m]
            if i < 0:
                break
            active = 0.0 if frozen[i] else 1.0
            z, b, u0 = hh * fd[1, i] * active, hh * fd[0, i] * active, y[i]
            value, bound = tabulated_stage(z, b, u0, z_low, width, coefficients, residual,
                                           reach, tol)
            if bound <= tol:
                new[i] = value
                worst = bound if bound > worst else worst
                continue
            for a in range(K):
                w[a] = b * o_sum[a] - z * b * v_sum[a]
                for e in range(a + 1):
                    g[a, e] = g0[a, e] - z * g1[a, e] + z * z * g2[a, e]
            cholesky_solve_in_place(g, w)
            for q in range(C):
                res, u = -b, u0
                for a in range(K):
                    res += w[a] * (o_check[q, a] - z * v_check[q, a])
                    u += w[a] * v_check[q, a]
                res = abs(res) / max(1.0, abs(u))
                worst = res if not res <= worst else worst  # NaN wins
            value = u0
            for a in range(K):
                value += w[a] * end[a]
            new[i] = value
        for m in range(members.shape[1]):
            i = members[k, m]
            if i < 0:
                break
            y[i] = new[i]
        clock[k] += c
        if not worst <= tol and failed_at < 0:
            failed_at = k
    return worst, failed_at


def compose(t, y, h, frozen, stim, params, scheme, failed_at, residuals):
    """:func:`compose_row` for every row of a batch, in place on y (R, n)."""
    for r in range(y.shape[0]):
        residuals[r], failed_at[r] = compose_row(t[r], y[r], h[r], frozen[r], stim[r],
                                                 params[:, r], scheme)
    return 0


def step_control(err, h_tried, h, limited, order, h_max):
    """(accept, next step) from the error norm ``err`` of a step of length ``h_tried``:
    accepted at err ≤ 1; the next step is h_tried·clip(SAFETY·err^(−1/(order+1)),
    MIN_FACTOR, MAX_FACTOR) (FAILED_FACTOR for a non-finite err), at most ``h_max``; an
    accepted step that ended early at a stop (``limited``: cut short of ``h`` by more than
    :data:`~splitpinn.fractional.history.SAME_STEP`) keeps the current step ``h`` if that is
    longer."""
    if not math.isfinite(err):
        factor = FAILED_FACTOR
    elif err == 0.0:
        factor = MAX_FACTOR
    else:
        factor = min(max(SAFETY * err ** (-1.0 / (order + 1)), MIN_FACTOR), MAX_FACTOR)
    grown = min(h_max, h_tried * factor)
    accept = err <= 1.0
    return accept, (max(h, grown) if accept and limited else grown)


def march_adaptive(t, y, h, limit, hand_back, frozen, before, armed, stim, params, scheme, control,
                   grid, rows, values, slopes, next_out, knots, counts, worst):
    """Plain adaptive steps of every row, in place on its time t, states y, step h,
    event functions ``before`` and output: the composed step with step doubling, as
    :meth:`splitpinn.solvers.composition.CompositionStepper.attempt`, controlled as the marching
    loop does; the grid inside an accepted step sampled by one composed step from its start
    (``dense``).  A row stops at its ``limit`` (before the step that reaches it where
    ``hand_back``), before a step that crosses a threshold, when
    it would be stuck (a step below :data:`SAME_TIME`) and when its tries reach ``max_tries``:
    the loop takes that step.  ``armed`` (R,): whether a row is out of its refractory period
    (its thresholds are checked, see :func:`fires`; a row's stretch never spans a refractory
    end).  ``control`` = (rtol, atol, order, h_max, max_tries, same_step: the relative
    difference below which two step lengths are the same, n_events: the number of reset
    events, whose functions come before the spike detector's); ``counts``
    (R, 3) gets accepted and rejected steps and composed steps; ``worst``
    the largest residual of a successful composed step.  ``rows``: each row's index in the
    output ``values``, ``slopes`` (B, n, N; N = 0 without traces) and ``next_out`` (B,).
    ``knots`` (R, max_tries, 1 + n) gets each accepted step's end time and states, the
    dense output's pieces (none where its second axis is empty)."""
    rtol, atol, order, h_max, max_tries, same_step, n_events = control
    n = y.shape[1]
    trial, slope = np.empty((3, n)), np.empty(n)  # the step h, then two steps h/2
    g = np.empty(before.shape[1])
    denominator = 2.0**order - 1.0
    for r in range(y.shape[0]):
        p, row = params[:, r], rows[r]
        while t[r] < limit[r] - SAME_TIME and counts[r, 0] + counts[r, 1] < max_tries:
            stop = min(limit[r], t[r] + h[r])
            step = stop - t[r]
            if step < SAME_TIME or (hand_back[r] and stop >= limit[r] - SAME_TIME):
                break
            good = True
            for part in range(3):  # one call site: each inlined copy costs compile time
                for i in range(n):  # element loops: slice assignments compile slowly
                    trial[part, i] = trial[1, i] if part == 2 else y[r, i]
                res, bad = compose_row(t[r] + step / 2 * (part == 2), trial[part],
                                       step if part == 0 else step / 2, frozen[r], stim[r], p,
                                       scheme)
                good = good and bad < 0
                if bad < 0 and res > worst[r]:
                    worst[r] = res
            counts[r, 2] += 3
            big, small = trial[0], trial[2]
            total = 0.0
            for i in range(n):
                scale = atol + rtol * max(abs(y[r, i]), abs(small[i]))
                total += ((small[i] - big[i]) / denominator / scale) ** 2
            err = math.sqrt(total / n)
            if not (good and math.isfinite(err)):
                err = math.inf
            accept, new_h = step_control(err, step, h[r], step < h[r] * (1.0 - same_step),
                                         order, h_max)
            if not accept:
                if new_h < SAME_TIME:
                    break  # stuck: the loop reports it
                counts[r, 1] += 1
                h[r] = new_h
                continue
            crossings(stop, stim[r], small, p, g)
            if crossed(before[r], g, n_events, armed[r]):
                break
            while values.shape[2] and next_out[row] < grid.size \
                    and grid[next_out[row]] <= stop + SAME_TIME:
                q = next_out[row]
                for i in range(n):
                    trial[1, i] = small[i] if grid[q] >= stop else y[r, i]
                if grid[q] < stop:
                    res, bad = compose_row(t[r], trial[1], grid[q] - t[r], frozen[r], stim[r],
                                           p, scheme)
                    counts[r, 2] += 1
                    if bad < 0 and res > worst[r]:
                        worst[r] = res
                rhs(grid[q], stim[r], trial[1], p, slope)
                for i in range(n):
                    values[row, i, q] = trial[1, i]
                    slopes[row, i, q] = 0.0 if frozen[r, i] else slope[i]
                next_out[row] += 1
            if knots.shape[1]:
                knots[r, counts[r, 0], 0] = stop
                for i in range(n):
                    knots[r, counts[r, 0], 1 + i] = small[i]
            t[r], h[r] = stop, new_h
            for i in range(n):
                y[r, i] = small[i]
            for j in range(g.size):
                before[r, j] = g[j]
            counts[r, 0] += 1
    return 0


def rhs_rows(t, stim, y, params, out):
    """``rhs`` row by row of a batch into ``out`` (R, n)."""
    for r in range(y.shape[0]):
        rhs(t[r], stim[r], y[r], params[:, r], out[r])
    return 0
