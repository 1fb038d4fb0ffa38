"""The rulebook of the marching: every numeric rule once, as plain Python that numba compiles.

Step control and the error norm, the refractory guard (:func:`fires`), the fractional march,
the least-squares PINN stages (frozen coefficients, Gauss–Newton) and the composed step with
its adaptive march between events.  Every function that evaluates the model takes its
functions as its first argument ``model`` (a
:class:`~splitpinn.numeric.compiled.ModelFunctions`: ``rhs``, ``jacobian``,
``state_diagonal``, ``crossings``, ``stimulus``), so that numba compiles it once for every
model.  :mod:`splitpinn.numeric.compiled` writes this source, after the memory's rules
that it imports (:mod:`splitpinn.fractional.rules`), into a module and compiles every
function with ``numba.njit(cache=True)``, so that the machine code is cached on disk next
to that module and later processes load it instead of compiling again.  ``compiled=False`` runs
the same functions as plain Python (:func:`splitpinn.numeric.compiled.plain_model`): the same
results, slowly.

Scalar loops throughout: numba compiles array expressions and its LAPACK binding
(np.linalg.solve) in about ten seconds per process, more than a long run takes.
"""

import math

import numpy as np

# The generated modules define these above the kernels (compiled._module_text drops this import)
from ..fractional.rules import memory_cache, memory_record, memory_terms

_SMALL = 1e-3  # below this |x| the Taylor series is used (its truncation error is < 1e-16)
#: From this |x| on, 1 − e^(−|x|) >= 0.39 is formed from e^(−|x|) within two roundings; below,
#: it would cancel, and expm1 forms it.
_NO_CANCELLATION = 0.5

#: Functions numba inlines into their callers (called per stage and state: a call that
#: passes the stage's arrays costs more than the stage itself).
INLINE = ("input_at", "tabulated_stage", "frozen_stage", "stage_row", "trial_points",
          "stage_diagonals", "frozen_values", "step_decision", "record_knot",
          "stage_arrays", "linearised_weights", "copy_memory", "memory_compose",
          "memory_trial")

#: The functions that allocate arrays, and their callers: only they are compiled with numba's
#: reference counting (NRT).  Every other function allocates nothing and is compiled without
#: it: the atomic increments and decrements on each array passed through an inlined call cost
#: a composed HH step more than its arithmetic (a batch of HH neurons ran 2.4x slower).  A
#: function without it must not return an array to one with it, whose count would then drop
#: below its owners' (:func:`stage_arrays` is inlined instead).
ALLOCATING = ("march", "stage_scratch", "march_composed", "march_network", "compose",
              "stage_rows", "memory_scratch", "coupled_scratch",
              "memory_cache", "flow_scratch", "flow_rows")

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
    """g(x) = x / (1 − e^(−x)), g(0) = 1, for one float (see :mod:`splitpinn.declare.functions`):
    with u = e^(−|x|), x / (1 − u) for x > 0 and |x|·u / (1 − u) (= x·e^x / (e^x − 1)) for x < 0,
    which cannot overflow (e^(−x) does below x ≈ −709).  One exponential per call from
    |x| = :data:`_NO_CANCELLATION` on (expm1 as well took a sixth of a composed HH step)."""
    a = abs(x)
    if a < _SMALL:
        return 1 + x / 2 + x * x / 12
    u = math.exp(-a)
    d = 1.0 - u if a >= _NO_CANCELLATION else -math.expm1(-a)
    return (x if x > 0 else a * u) / d


def XOverOneMinusExpPrime(x):  # noqa: N802
    """g'(x) for one float (for x < 0 as e^x (e^x − 1 − x) / (e^x − 1)², without overflow)."""
    if abs(x) < _SMALL:
        return 0.5 + x / 6 - x**3 / 180
    if x < 0:
        em1 = math.expm1(x)
        return math.exp(x) * (em1 - x) / (em1 * em1)
    em = -math.expm1(-x)
    return (em - x * math.exp(-x)) / em**2


def sampled(x, times, values, linear):
    """A recorded input at time x: its samples (``times`` increasing) interpolated linearly
    (``linear``) or held from each sample to the next; the first or last value outside
    them (as :meth:`splitpinn.declare.stimulus.Sampled.evaluate`).  Printed into a model's
    stimulus that varies inside a step, with its samples as constants of the module."""
    if x <= times[0]:
        return values[0]
    if x >= times[times.size - 1]:
        return values[values.size - 1]
    low, high = 0, times.size - 1  # times[low] <= x < times[high]
    while high - low > 1:
        middle = (low + high) // 2
        if times[middle] <= x:
            low = middle
        else:
            high = middle
    if not linear:
        return values[low]
    weight = (x - times[low]) / (times[high] - times[low])
    return values[low] + weight * (values[high] - values[low])


def address(array):
    """A C-contiguous array as a model's functions take it: uncompiled, the array flattened
    (a view); compiled, the pointer to its data (:func:`splitpinn.numeric.address.address`)."""
    return array.reshape(-1)


def call(function, *args):
    """A model's ``function`` on ``args``; compiled, ``function`` is its address and
    :func:`splitpinn.numeric.address.call` calls through it."""
    return function(*args)


def input_at(model, t, held, p, smooth):
    """I_ext at time t: the model's ``stimulus`` where it varies smoothly
    (``smooth``), else the ``held`` value of the current step (a constant or stepwise
    stimulus)."""
    return call(model.stimulus, t, held, address(p), address(p), address(p)) if smooth else held


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
    if cholesky_factor(m):
        cholesky_solve(m, r)
    else:
        for i in range(r.size):
            r[i] = np.nan


def cholesky_factor(m):
    """m's lower triangle <- its Cholesky factor L (m = L Lᵀ) in place; False where m is not
    positive definite."""
    n = m.shape[0]
    for j in range(n):
        for k in range(j):
            m[j, j] -= m[j, k] * m[j, k]
        if not m[j, j] > 0:
            return False
        m[j, j] = math.sqrt(m[j, j])
        for i in range(j + 1, n):
            for k in range(j):
                m[i, j] -= m[i, k] * m[j, k]
            m[i, j] /= m[j, j]
    return True


def cholesky_solve(m, r):
    """r <- (L Lᵀ)^-1 r in place, L the factor of :func:`cholesky_factor` in m."""
    n = r.size
    for i in range(n):
        for k in range(i):
            r[i] -= m[i, k] * r[k]
        r[i] /= m[i, i]
    for i in range(n - 1, -1, -1):
        for k in range(i + 1, n):
            r[i] -= m[k, i] * r[k]
        r[i] /= m[i, i]


def newton_step(model, t_star, stim, p, active, linear, jac, newton_tol, max_newton, sigma, u_last,
                H, c, u, scratch):
    """One implicit L1 / L2-1σ step of the reference: u with H + c (u − u_last) =
    f(t*, σu + (1 − σ)u_last) by Newton from u_last (clamped states, not ``active``, stay);
    returns (whether it converged to a finite u, iterations).  ``jac``: the Jacobian when
    ``linear`` (constant), else work space for it."""
    n = u.size
    u_star, f, r, m = scratch
    for i in range(n):
        u[i] = u_last[i]
    tries = 0
    for _ in range(max_newton):
        tries += 1
        for i in range(n):
            u_star[i] = sigma * u[i] + (1.0 - sigma) * u_last[i]
        call(model.rhs, t_star, stim, address(u_star), address(p), address(f))
        if not linear:
            call(model.jacobian, t_star, stim, address(u_star), address(p), address(jac))
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
            return False, tries
        if linear or converged:
            return True, tries
    return False, tries


def memory_stage(model, h, u, u_last, members, y, p, held, active, sigma, t0, H, c, fit, scratch,
                 first, last):
    """One least-squares PINN stage of length h from (t0, u_last) of a decoupled sub-problem
    with Caputo states, rows ``first``..``last`` − 1 of the arrays below (the model's states
    ``members``; the others held at their values in ``y``, the model's state at the stage
    start), fitted against its memory: per state the
    trial u(τ) = u_last + vals(τ)·w meets the L2-1σ
    relation H_j + c_j (u(τ_j) − u_last) = f(t0 + στ_j h, u_last + σ(u(τ_j) − u_last)) at the
    fit points τ_j > 0 (``H``, ``c`` (n, m − 1): the memory at the points t0 + τ_j h,
    j >= 1, see :func:`memory_terms`) by Gauss–Newton from w = 0, at most
    |iterations| times (one solve where iterations < 0: linear).  ``fit`` = (vals (n, m, K),
    end (n, K), padding (n, K): the zero columns, τ (m,), the number of fit points,
    iterations, tol, smooth: whether the stimulus varies inside the stage, else ``held``;
    the residual a step must meet; vals transposed (n, K, m); whether the right-hand side
    changes inside the stage, else the first iteration, from u ≡ u_last, evaluates it
    once).  The factor of each state's normal matrix is kept in ``scratch`` while its
    columns c_j − σ·∂f/∂u repeat (a linear sub-problem on equal steps: the rows leave out
    the step's factor h, whose rounding differs from step to step), and from its first reuse
    on the operator −N⁻¹(c_j − σ·∂f/∂u)·vals_j of its normal equations, whose product with
    the residuals replaces the two triangular solves (latency bound).  Clamped states (not
    ``active``) stay.  Writes the states at the stage end into u; returns (the largest
    linearised residual of the relation times h at the check points relative to
    max(1, |u|), inf where Gauss–Newton did not converge; iterations)."""
    vals, end, padding, tau, n_fit, iterations, tol, smooth = fit[:8]
    vals_t, varying = fit[9], fit[10]
    w, point, fd, f, jac, factors, step, columns, trial, change, solver = scratch[:11]
    n_points, width = vals.shape[1], vals.shape[2]
    for k in range(y.size):
        point[k] = y[k]
    for i in range(first, last):
        for a in range(width):
            w[i, a] = 0.0
        for j in range(n_points):
            trial[i, j] = 0.0  # vals·w at the points
    worst, converged, count = math.inf, False, 0
    for _ in range(abs(iterations)):
        count += 1
        scale = 1.0  # max(1, |u|) over the states and points, before this update
        for j in range(n_points):
            if count == 1 and j > 0 and not varying:  # u ≡ u_last, f constant in t: as at 0
                for i in range(first, last):
                    f[i, j], jac[i, j] = f[i, 0], jac[i, 0]
                continue
            for i in range(first, last):
                point[members[i]] = u_last[i] + sigma * trial[i, j]
                scale = max(scale, abs(u_last[i] + trial[i, j]))
            time = t0 + sigma * tau[j] * h
            value = input_at(model, time, held, p, smooth)
            for i in range(first, last):
                call(model.state_diagonal, members[i], time, value, address(point),
                     address(p), address(fd))
                f[i, j], jac[i, j] = fd[0], sigma * fd[1]
        moved, worst = 0.0, 0.0
        for i in range(first, last):
            if not active[i]:
                continue  # c (u − u_last) = 0 holds it: w stays 0
            # the normal equations over the fit points (τ > 0), each row a column factor
            # c − σ·∂f/∂u times vals: the matrix's factor is kept while those repeat
            normal, same = factors[i], True
            for j in range(1, n_fit):
                same = same and c[i, j - 1] - jac[i, j] == columns[i, j]
            if not same:
                for a in range(width):
                    for e in range(a + 1):
                        normal[a, e] = 0.0
                    if padding[i, a]:
                        normal[a, a] = 1.0
                for j in range(1, n_fit):
                    columns[i, j] = c[i, j - 1] - jac[i, j]
                    for a in range(width):
                        column = columns[i, j] * vals[i, j, a]
                        for e in range(a + 1):
                            normal[a, e] += column * columns[i, j] * vals[i, j, e]
                if not cholesky_factor(normal):
                    columns[i, 1] = np.nan  # no factor kept
                solver[i, 1, 0] = np.nan  # its operator: built when the factor is reused
            elif solver[i, 1, 0] != solver[i, 1, 0]:
                for j in range(1, n_fit):  # row j of the operator: −N⁻¹ (column_j vals_j)
                    for a in range(width):
                        solver[i, j, a] = -columns[i, j] * vals[i, j, a]
                    cholesky_solve(normal, solver[i, j])
            for a in range(width):
                step[a] = 0.0
            for j in range(1, n_fit):
                r = c[i, j - 1] * trial[i, j] + H[i, j - 1] - f[i, j]
                for a in range(width):  # the operator's product, or the right-hand side
                    step[a] += (solver[i, j, a] if same else -columns[i, j] * vals[i, j, a]) * r
            if not same:
                if columns[i, 1] == columns[i, 1]:
                    cholesky_solve(normal, step)
                else:
                    for a in range(width):
                        step[a] = np.nan
            for j in range(n_points):
                change[j] = 0.0
            for a in range(width):  # the points innermost: vectorised
                for j in range(n_points):
                    change[j] += vals_t[i, a, j] * step[a]
            for j in range(1, n_points):  # how far u moved; the residual at the check points
                trial[i, j] += change[j]
                moved = abs(change[j]) if not abs(change[j]) <= moved else moved  # NaN wins
                if j >= n_fit:
                    r = c[i, j - 1] * trial[i, j] + H[i, j - 1] - f[i, j] \
                        - jac[i, j] * change[j]
                    res = h * abs(r) / max(1.0, abs(u_last[i] + trial[i, j]))
                    worst = res if not res <= worst else worst
            for a in range(width):
                w[i, a] += step[a]
        if iterations < 0 or moved <= 1e-3 * tol * scale:
            converged = True
            break
    for i in range(first, last):
        value = u_last[i]
        for a in range(width):
            value += end[i, a] * w[i, a]
        u[i] = value
    return (worst if converged else math.inf), count


def memory_scratch(n, size, n_points, width):
    """Work space of :func:`memory_stage` for n states of a model of ``size`` states, then
    :func:`coupled_scratch` (:func:`coupled_memory_stage`)."""
    return (np.empty((n, width)), np.empty(size), np.empty(2), np.empty((n, n_points)),
            np.empty((n, n_points)), np.empty((n, width, width)), np.empty(width),
            np.full((n, n_points), np.nan), np.empty((n, n_points)), np.empty(n_points),
            np.full((n, n_points, width), np.nan)) + coupled_scratch(size, n, width)


def copy_memory(into, source):
    """The arrays of the fractional march's memory (clock, accumulators, last state and
    slope, window), its event functions and the model's states of ``source`` copied into
    those of ``into``, element by element (no slice copies: it runs without reference
    counting)."""
    for a in range(3):
        into[0][a] = source[0][a]
        into[4][a] = source[4][a]
    for i in range(source[1].shape[0]):
        into[2][i] = source[2][i]
        into[3][i] = source[3][i]
        for j in range(source[1].shape[1]):
            into[1][i, j] = source[1][i, j]
    for j in range(source[5].size):
        into[5][j] = source[5][j]
    for i in range(source[6].size):
        into[6][i] = source[6][i]


def memory_compose(model, t, h, y, x, p, held, frozen, free, index, sigma, H, c, fit, scratch,
                   work):
    """One composed step of split-PINN's plan for a single neuron from (t, y) over h, against
    its memory (the states ``index`` of the model's, see :func:`march`), the step end into x:
    the plan's stages in each of its branches (a fractional sub-problem:
    :func:`memory_stage` of its states (:func:`coupled_memory_stage` where they couple),
    against the memory terms H, c of its rows, which are
    the same for every stage of the step, since each fractional sub-problem is advanced once
    per branch over the whole step from the recorded state; an integer-order one: the stage of
    :func:`compose_row`, :func:`stage_row`), the branches' ends averaged.  ``fit`` (see
    :func:`march`) holds the fractional sub-problems' trial spaces stacked along the memory's
    states, the plan and the integer stages' trial space; ``frozen`` (model states) and
    ``free`` (the memory's) the clamp; ``held`` the stimulus over the step.  Returns (the
    largest stage residual, whether every stage met its tolerance with finite values, the
    Gauss–Newton iterations)."""
    vals, end, padding, tau, n_fit, tol, smooth, accept, vals_t, varying, plan, stage = fit
    stage_sub, stage_c, branch_end, members, iterations, coupled, first = plan
    table, basis = stage_arrays(stage)
    integer, u, u_first = work
    total, clock = integer[9], integer[10]  # clock: one per sub-problem
    for i in range(y.size if branch_end.size > 1 else 0):
        total[i] = 0.0
    worst, good, count, begin = 0.0, True, 0, 0
    for b in range(branch_end.size):
        for i in range(y.size):
            x[i] = y[i]
        for k in range(members.shape[0]):
            clock[k] = 0.0
        for st in range(begin, branch_end[b]):
            k, part = stage_sub[st], stage_c[st]
            a = first[k]
            if a < 0:  # integer order
                res = stage_row(model, members, k, iterations[k], coupled[k], t + clock[k] * h,
                                part * h, x, frozen, held, p, table, basis, integer)
                good = good and res <= table[8]
            else:  # the memory's rows a..e − 1
                e = a
                for m in range(members.shape[1]):
                    e += 1 if members[k, m] >= 0 else 0
                for i in range(a, e):
                    u_first[i] = x[index[i]]
                stage_fit = (vals, end, padding, tau, n_fit, iterations[k], tol, smooth,
                             accept, vals_t, varying[k])
                if coupled[k]:
                    res, tries = coupled_memory_stage(model, h, u, u_first, index, x, p, held, free,
                                                      sigma, t + clock[k] * h, H, c, stage_fit,
                                                      scratch, a, e)
                else:
                    res, tries = memory_stage(model, h, u, u_first, index, x, p, held, free, sigma,
                                              t + clock[k] * h, H, c, stage_fit, scratch, a, e)
                count += tries
                good = good and res <= accept
                for i in range(a, e):
                    x[index[i]] = u[i]
            for m in range(members.shape[1]):
                if members[k, m] < 0:
                    break
                good = good and math.isfinite(x[members[k, m]])
            worst = res if not res <= worst else worst  # NaN wins
            clock[k] += part
        for i in range(y.size if branch_end.size > 1 else 0):
            total[i] += x[i]
        begin = branch_end[b]
    if branch_end.size > 1:
        for i in range(y.size):
            x[i] = total[i] / branch_end.size
    return worst, good, count


def march(model, stops, keep, t_star, stim_star, stim_end, p, active, y, index, before, n_events,
          armed, linear, jac, newton_tol, max_newton, sigma, delta, clock, acc, u_last, du_p,
          window, wa, wb, wdu, wd2, s, w, orders, constants, tables, fit, locate, event, out):
    """The implicit L1 / L2-1σ march of :func:`splitpinn.numeric.compiled.march_uniform` with a
    sum-of-exponentials memory of the model's states ``index``, over any step ends ``stops``
    (equal or graded), from the model's states y (updated in place): per step Newton
    (:func:`newton_step`; the memory holds every state), or, where ``fit`` holds a trial space
    (its vals non-empty), split-PINN's composed step against the memory
    (:func:`memory_compose`, accepted where every stage meets its tolerance: fit[7] for the
    fractional ones; ``stim_star``: the stimulus held over each step).  ``active``: the model's
    states not clamped.  Returns (steps taken, Newton or Gauss–Newton iterations of those
    steps, the largest stage residual of the composed ones).  It stops before a step whose
    Newton iteration or fit fails, and before one where an event :func:`fires` (``armed``:
    whether the neuron is out of its refractory period), then goes back to the last stop where
    ``keep`` holds (a grid point): the memory (``clock`` = t_last, t_ref, start of the pending
    piece; ``acc``, ``u_last``, ``du_p``; the window of exact pieces ``wa``, ``wb``, ``wdu``,
    ``wd2`` from window[0] to window[1]; window[2]: a piece is pending), y and ``before`` are
    left as they were there.  ``out`` (stops, model states) gets the states at each stop.
    Where a reset event or the spike detector (not both) fires in the step after a kept
    stop, and ``locate`` holds (the stimulus inside a step is ``stim_star``'s, or ``fit`` evaluates
    it), the crossing is root-found on the step's own flow (:func:`memory_trial` of shorter
    steps, :func:`root_trial`), not taken: ``event`` = (its column, time, the states there);
    else event[0] = −1.

    ``fit`` = (vals (n, m, K), end (n, K), padding (n, K): the fractional sub-problems' trial
    spaces stacked along the memory's states (see :func:`memory_stage`), τ (m,), the number of
    fit points, tol, smooth stimulus, the residual a fractional stage must meet, vals
    transposed, per sub-problem whether its right-hand side changes inside a stage, the plan
    (stage_sub, stage_c, branch_end, members: as :func:`compose_row`'s; iterations and
    whether its states couple per sub-problem; first: a fractional sub-problem's first row in
    the memory, −1 for integer order), the integer stages' trial space
    (:func:`stage_arrays`))."""
    n, modes = acc.shape
    size = y.size
    vals, tau = fit[0], fit[3]
    fitted, n_points, width = vals.size > 0, tau.size, vals.shape[2]
    points = n_points if fitted else 1  # the memory per step: at each point, or at the end
    taus = np.empty(max(points - 1, 1))  # the lengths the memory is evaluated for
    free, frozen = np.empty(n, dtype=np.bool_), np.empty(size, dtype=np.bool_)
    for i in range(size):
        frozen[i] = not active[i]
    for i in range(n):
        free[i] = active[index[i]]
    cache = memory_cache(n, modes, taus.size)
    # the memory at the last stop kept (restored if the march stops between kept stops)
    saved = (clock.copy(), acc.copy(), u_last.copy(), du_p.copy(), window.copy(), before.copy(),
             y.copy())
    work = (u_last.copy(), np.empty(size), np.empty(before.size), taus,
            np.empty((n, taus.size)), np.empty((n, taus.size)),
            (np.empty(n), np.empty(n), np.empty(n), np.empty((n, n))), free, frozen,
            memory_scratch(n, size, n_points, width),
            (stage_scratch(size, fit[11]), np.empty(n), np.empty(n)), cache, saved,
            np.empty(before.size), np.empty(5))
    return march_steps(model, stops, keep, t_star, stim_star, stim_end, p, y, index, before,
                       n_events, armed, linear, jac, newton_tol, max_newton, sigma, delta, clock,
                       acc, u_last, du_p, window, wa, wb, wdu, wd2, s, w, orders, constants,
                       tables, fit, locate, event, out, work)


def march_steps(model, stops, keep, t_star, stim_star, stim_end, p, y, index, before, n_events,
                armed, linear, jac, newton_tol, max_newton, sigma, delta, clock, acc, u_last, du_p,
                window, wa, wb, wdu, wd2, s, w, orders, constants, tables, fit, locate, event,
                out, work):
    """The steps of :func:`march`, with its work arrays ``work`` (allocated there: the steps
    run without reference counting, which would cost the composed step's arrays an atomic
    increment and decrement each per step)."""
    u, x, g, taus, H, c, newton, free, frozen, stage, composing, cache, saved = work[:13]
    n, size = u.size, y.size
    memory = (clock, acc, u_last, du_p, window, wa, wb, wdu, wd2, s, orders, constants, tables)
    solver = (linear, jac, newton_tol, max_newton, sigma)
    live = (clock, acc, u_last, du_p, window, before, y)
    iterations, count, kept, kept_iterations = 0, 0, 0, 0
    worst, kept_worst = 0.0, 0.0
    event[0] = -1.0
    for k in range(stops.size):
        h = stops[k] - clock[0]
        good, tries, res = memory_trial(model, h, t_star[k], stim_star[k], p, y, x, index,
                                        memory, solver, fit, work)
        if not good:
            break
        call(model.crossings, stops[k], stim_end[k], address(x), address(p), address(g))
        if crossed(before, g, n_events, armed):
            if locate and kept == count:
                memory_event(model, h, stim_star[k], p, y, index, before, n_events, armed,
                             memory, solver, fit, work, event)
            break
        worst = res if res > worst else worst
        iterations += tries  # accepted (only accepted work is counted): record it
        for i in range(n):
            u[i] = x[index[i]]
        memory_record(stops[k], u, u_last, clock, acc, s, w, window, wa, wb, wdu, wd2, du_p,
                      delta, constants, tables, cache)
        for i in range(size):
            out[k, i] = x[i]
            y[i] = x[i]
        for j in range(g.size):
            before[j] = g[j]
        count += 1
        if keep[k]:
            kept, kept_iterations, kept_worst = count, iterations, worst
            if k + 1 < stops.size and not keep[k + 1]:  # steps between kept stops follow
                copy_memory(saved, live)
    if kept < count:  # back to the last kept stop (the window's arrays are only appended to)
        copy_memory(live, saved)
    return kept, kept_iterations, kept_worst


def memory_trial(model, h, t_star, held, p, y, x, index, memory, solver, fit, work):
    """x <- the model's states after a step of length h from the memory's last record (its
    states y), not recorded: Newton (:func:`newton_step`; the memory holds every state) with
    the relation at ``t_star``, or split-PINN's composed step (:func:`memory_compose`) where
    ``fit`` holds a trial space; ``held``: the stimulus of the step.  Returns (whether it is
    good: converged, finite, every stage within its tolerance; the iterations; the largest
    stage residual)."""
    u, taus, H, c, newton, free, frozen, stage, composing, cache = \
        work[0], work[3], work[4], work[5], work[6], work[7], work[8], work[9], work[10], \
        work[11]
    clock, acc, u_last, du_p, window, wa, wb, wdu, wd2, s, orders, constants, tables = memory
    linear, jac, newton_tol, max_newton, sigma = solver
    n = u.size
    fitted, tau = fit[0].size > 0, fit[3]
    first = 1 if fitted else 0  # the stage's memory skips τ = 0
    # a composed step fits only the memory's free states: with all of them clamped (a
    # refractory period) it reads no memory terms
    needed = not fitted
    for i in range(n):
        needed = needed or free[i]
    for j in range(taus.size):
        taus[j] = tau[first + j] * h if fitted else h
    if needed:
        memory_terms(taus, sigma, clock, acc, s, window, wa, wb, wdu, wd2, du_p, orders,
                     constants, tables, cache, H, c)
    if fitted:
        res, good, tries = memory_compose(model, clock[0], h, y, x, p, held, frozen, free,
                                          index, sigma, H, c, fit, stage, composing)
        return good, tries, res if good else 0.0
    good, tries = newton_step(model, t_star, held, p, free, linear, jac, newton_tol,
                              max_newton, sigma, u_last, H.reshape(n), c.reshape(n), u, newton)
    for i in range(y.size):
        x[i] = y[i]
    for i in range(n):
        x[index[i]] = u[i]
    return good, tries, 0.0


def memory_event(model, h, held, p, y, index, before, n_events, armed, memory, solver, fit,
                 work, event):
    """The first event that fires in the step of length h from the memory's last record
    (:func:`march_steps` found one): each firing reset threshold's crossing, or where none
    fires the spike detector's, by :func:`root_trial` on the step's flow
    (:func:`memory_trial` of shorter steps), the earliest into ``event`` = (column, time,
    the states there); none (event[0] = −1) where both a reset and the detector fire, or a
    shorter step fails."""
    x, g, end, bracket, at = work[1], work[2], work[13], work[14], event[2:]
    clock, sigma, smooth = memory[0], solver[4], fit[6]
    resets, detector = False, False
    for j in range(g.size):  # the step's end values: g from march_steps
        end[j] = g[j]
        if fires(before[j], g[j], j, n_events, armed):
            resets, detector = resets or j < n_events, detector or j >= n_events
    if resets and detector:
        return
    t0 = clock[0]
    for column in range(n_events if resets else g.size):
        if not fires(before[column], end[column], column, n_events, armed):
            continue
        bracket[0], bracket[1], bracket[2], bracket[3], bracket[4] = \
            0.0, h, before[column], end[column], 0.0
        tol = root_tolerance(t0)
        for _ in range(ROOT_ITERATIONS):
            s = root_trial(bracket, tol)
            if s < 0.0:
                break
            stop = t0 + s  # the step as the loop's partial step takes it: to t0 + s
            good, _, _ = memory_trial(model, stop - t0, t0 + sigma * (stop - t0), held, p, y,
                                      x, index, memory, solver, fit, work)
            if not good:
                event[0] = -1.0
                return
            call(model.crossings, stop, input_at(model, stop, held, p, smooth), address(x),
                 address(p), address(g))
            root_update(bracket, s, g[column])
        if event[0] < 0 or t0 + bracket[1] < event[1]:  # the earliest wins
            event[0], event[1] = column, t0 + bracket[1]
    if event[0] < 0:
        return
    memory_trial(model, event[1] - t0, t0 + sigma * (event[1] - t0), held, p, y, x, index,
                 memory, solver, fit, work)
    for i in range(y.size):
        at[i] = x[i]


def tabulated_stage(z, b, u0, z_low, width, coefficients, residual, reach, tol):
    """A frozen-coefficient stage from a :class:`~splitpinn.numeric.stage_table.StageTable`: (the
    value at the stage end, the bound of its residual), or (NaN, inf) where z lies outside
    the table or the bound misses ``tol`` (then the stage is solved directly).  The piece's
    polynomial by Horner's rule in s² on its even and its odd powers at once: two independent
    chains of operations, each half as long as one (a composed HH step waits on them)."""
    x = (z - z_low) * (1.0 / width)  # exactly (z − z_low) / width: a power of two
    if not (x >= 0.0 and x < coefficients.shape[0]) or not math.isfinite(b):
        return math.nan, math.inf
    piece = int(x)
    bound = abs(b) * residual[piece] / max(1.0, abs(u0) - abs(b) * reach[piece])
    if not bound <= tol:
        return math.nan, math.inf
    s = 2.0 * (x - piece) - 1.0
    s2, even, odd = s * s, 0.0, 0.0
    for k in range(coefficients.shape[1] - 2, -1, -2):
        even = even * s2 + coefficients[piece, k]
        odd = odd * s2 + coefficients[piece, k + 1]
    return u0 + b * (even + s * odd), bound


def trial_points(model, t0, hh, y, members, frozen, held, p, smooth, vals, tau, w, first, last,
                 scratch):
    """hh·f and hh·∂f/∂u of the sub-problem's states (``members``) at points first..last−1 of
    the trial u = u₀ + vals·w (the other states held at y), into ``scratch``'s f and jac
    (zero for clamped states); returns max(1, |u|) over them."""
    point, fd, f, jac = scratch[1], scratch[2], scratch[3], scratch[4]
    scale = 1.0
    for j in range(first, last):
        for q in range(y.size):
            point[q] = y[q]
        for m in range(members.size):
            i = members[m]
            if i < 0:
                break
            u = y[i]
            for a in range(vals.shape[1]):
                u += vals[j, a] * w[i, a]
            point[i] = u
            scale = max(scale, abs(u))
        time = t0 + tau[j] * hh
        value = input_at(model, time, held, p, smooth)
        for m in range(members.size):
            i = members[m]
            if i < 0:
                break
            call(model.state_diagonal, i, time, value, address(point), address(p), address(fd))
            active = 0.0 if frozen[i] else hh
            f[i, j], jac[i, j] = fd[0] * active, fd[1] * active
    return scale


def linearised_weights(z, b, g0, g1, g2, o_sum, v_sum, g, w):
    """w <- the weights of the least-squares stage of the linear equation u' = (b + z·(u − u₀))
    / hh (frozen coefficients: z = hh·∂f/∂u, b = hh·f at the stage start): the normal
    equations (G0 − zG1 + z²G2) w = b(Σo − zΣv), ``g`` their matrix (overwritten)."""
    for a in range(w.size):
        w[a] = b * o_sum[a] - z * b * v_sum[a]
        for e in range(a + 1):
            g[a, e] = g0[a, e] - z * g1[a, e] + z * z * g2[a, e]
    cholesky_solve_in_place(g, w)


def fit_move(vals, n_fit, x, moved):
    """The larger of ``moved`` and the largest change |vals·x| of a trial at the fit points
    (NaN wins)."""
    for j in range(n_fit):
        change = 0.0
        for a in range(x.size):
            change += vals[j, a] * x[a]
        moved = abs(change) if not abs(change) <= moved else moved
    return moved


def newton_converged(theta, moved, limit):
    """Whether Gauss–Newton has converged after a move δ_k = ``moved`` with contraction θ =
    δ_k/δ_(k−1): the next move predicted by Newton's quadratic convergence, θ²·δ_k (δ_k where
    θ ≥ 1), is at most ``limit``."""
    return (theta * theta * moved if theta < 1.0 else moved) <= limit


def newton_hopeless(theta, moved, limit, done, iterations):
    """Whether Gauss–Newton, ``done`` + 1 of at most ``iterations`` iterations taken, cannot
    converge: from its second iteration on, θ^(iterations left)·δ_k misses ``limit`` (too
    slow, or diverging: θ ≥ 1, NaN; no power, which overflows in Python).  Hairer & Wanner's
    early exit from Radau's Newton iteration."""
    return done > 0 and not (theta < 1.0 and theta ** (iterations - done - 1) * moved <= limit)


def fitted_stage(model, t0, hh, y, members, frozen, held, p, smooth, table, basis, iterations,
                 linear, tol, scratch, new):
    """One least-squares PINN stage of length ``hh`` of a decoupled sub-problem (its states
    ``members``, −1 padded) whose right-hand side changes inside the stage — nonlinear in its
    own state, or driven by a time-varying input: per state the trial u(τ) = u₀ + vals(τ)·w
    meets ops(τ)·w = hh·f(t0 + τ·hh, u(τ)) at the fit points in the least-squares sense.  A
    ``linear`` sub-problem takes one solve, and its residual at the check points is exact.
    Otherwise Gauss–Newton, at most ``iterations`` times, from the linearised stage
    (:func:`frozen_stage`'s system, ``table``, with z = hh·∂f/∂u and b = hh·f at the stage
    start: the first Gauss–Newton step from u ≡ u₀ where the input is held, exact for a linear
    f).  With δ_k the largest move of u at the fit points (δ₀: the start's) and the contraction
    θ = δ_k/δ_(k−1), it has converged when the next move predicted by Newton's quadratic
    convergence, θ²·δ_k (δ_k where θ ≥ 1), is at most 1e-3·tol·max(1, |u|), and fails from its
    second iteration on where θ^(iterations left)·δ_k is not (diverging, too slow, NaN: Hairer &
    Wanner's early exit from Radau's Newton iteration); then the residual at the check points.
    Writes the states at the stage end into ``new``; returns the largest residual at the check
    points relative to max(1, |u|), inf where Gauss–Newton did not converge."""
    g0, g1, g2, o_sum, v_sum = table[0], table[1], table[2], table[3], table[4]
    vals, ops, end, tau, n_fit = basis
    w, fd, f, jac, normal, step = scratch[0], scratch[2], scratch[3], scratch[4], scratch[5], \
        scratch[6]
    row = scratch[11]  # one row of the linearised fit: ops − hh·∂f/∂u·vals
    n_points, width = vals.shape
    drive = input_at(model, t0, held, p, smooth)
    previous = 0.0  # the last move, δ_(k−1)
    for m in range(members.size):
        i = members[m]
        if i < 0:
            break
        for a in range(width):
            w[i, a] = 0.0
        if linear or frozen[i]:
            continue
        call(model.state_diagonal, i, t0, drive, address(y), address(p), address(fd))
        linearised_weights(hh * fd[1], hh * fd[0], g0, g1, g2, o_sum, v_sum, normal, w[i])
        previous = fit_move(vals, n_fit, w[i], previous)
    # the points evaluated: the fit points while iterating (all of them for a linear fit,
    # whose residual at the check points comes with its one solve), then the check points
    # once after convergence (one call site: each inlined copy costs compile time)
    first, last = 0, (n_points if linear else n_fit)
    converged = False
    for done in range(iterations + 1):  # Gauss–Newton iterations done so far
        scale = trial_points(model, t0, hh, y, members, frozen, held, p, smooth, vals, tau, w,
                             first, last, scratch)
        if converged or done == iterations:
            break
        moved = 0.0
        for m in range(members.size):
            i = members[m]
            if i < 0:
                break
            for a in range(width):  # the normal equations over the fit points
                step[a] = 0.0
                for e in range(a + 1):
                    normal[a, e] = 0.0
            for j in range(n_fit):
                r = -f[i, j]
                for a in range(width):
                    r += ops[j, a] * w[i, a]
                    row[a] = ops[j, a] - jac[i, j] * vals[j, a]
                for a in range(width):
                    step[a] -= row[a] * r
                    for e in range(a + 1):
                        normal[a, e] += row[a] * row[e]
            cholesky_solve_in_place(normal, step)
            moved = fit_move(vals, n_fit, step, moved)
            for a in range(width):
                w[i, a] += step[a]
        theta = moved / previous if previous > 0.0 else math.inf  # the contraction
        previous, limit = moved, 1e-3 * tol * scale
        converged = linear or newton_converged(theta, moved, limit)
        if linear:
            break
        if converged:
            first, last = n_fit, n_points
        elif newton_hopeless(theta, moved, limit, done, iterations):
            break
    worst = math.inf
    if converged:
        worst = 0.0
        for m in range(members.size):
            i = members[m]
            if i < 0:
                break
            for j in range(n_fit, n_points):
                # linear: f was taken at u₀, and is f + jac·vals·w at the trial, exactly
                moving = jac[i, j] if linear else 0.0
                r, u = -f[i, j], y[i]
                for a in range(width):
                    r += (ops[j, a] - moving * vals[j, a]) * w[i, a]
                    u += vals[j, a] * w[i, a]
                res = abs(r) / max(1.0, abs(u))
                worst = res if not res <= worst else worst  # NaN wins
    for m in range(members.size):
        i = members[m]
        if i < 0:
            break
        value = y[i]
        for a in range(width):
            value += end[a] * w[i, a]
        new[i] = value
    return worst


def coupled_stage(model, t0, hh, y, members, frozen, held, p, smooth, basis, iterations, linear,
                  tol, scratch, new):
    """One least-squares PINN stage of length ``hh`` of a sub-problem whose states couple
    (``members``, −1 padded; e.g. the partition [["V", "m"], ["h", "n"]] of HH): per state s
    the trial u_s(τ) = u0_s + vals(τ)·w_s, and the residual rows ops(τ_j)·w_s − hh·f_s(t0 +
    τ_j·hh, u(τ_j)) at the fit points, all states' weights fitted together by Gauss–Newton on
    the (S·K) system whose blocks are δ_sl·ops − hh·∂f_s/∂u_l·vals (:func:`coupled_point`):
    a ``linear`` sub-problem by one solve; otherwise from the linearised stage (f and its
    Jacobian at the stage start at every point), as :func:`fitted_stage`, whose convergence
    test and early exit it shares; after convergence the residual at the check points, relative to
    max(1, |u|).  Clamped states have zero right-hand side (they stay).  Writes the states at
    the stage end into ``new``; returns the largest residual at the check points, inf where
    Gauss–Newton did not converge."""
    vals, ops, end, tau, n_fit = basis
    w, point = scratch[0], scratch[1]
    f, jac, normal, step, row, base, trial, live = scratch[13:21]
    n_points, width = vals.shape
    count = 0
    for m in range(members.size):
        i = members[m]
        if i < 0:
            break
        base[m], live[m], count = y[i], 0.0 if frozen[i] else 1.0, count + 1
        for a in range(width):
            w[i, a] = 0.0
    size = count * width
    previous, converged = 0.0, False  # the last move δ_(k−1)
    for done in range(iterations):  # Gauss–Newton iterations done so far
        for a in range(size):
            step[a] = 0.0
            for e in range(a + 1):
                normal[a, e] = 0.0
        scale = 1.0
        for j in range(n_fit):
            # the first iteration of a nonlinear fit: the linearised stage (f and ∂f/∂u of
            # the stage start, τ_0 = 0, at every point), as fitted_stage's start
            if j == 0 or done > 0 or linear:
                for s in range(count):
                    trial[s] = 0.0
                    for a in range(width):
                        trial[s] += vals[j, a] * w[members[s], a]
                scale = max(scale, coupled_point(model, t0 + tau[j] * hh, hh, 1.0, y, members,
                                                 count, base, trial, live, held, p, smooth,
                                                 point, f, jac, True))
            for s in range(count):  # state s's residual row and its linearisation
                i = members[s]
                r = -f[i]
                for a in range(width):
                    r += ops[j, a] * w[i, a]
                for l in range(count):
                    coupling = jac[i, members[l]]
                    for a in range(width):
                        row[l * width + a] = (ops[j, a] if l == s else 0.0) \
                            - coupling * vals[j, a]
                normal_add(normal, step, row, r, size)
        cholesky_solve_in_place(normal[:size, :size], step[:size])
        moved = 0.0
        for s in range(count):
            moved = fit_move(vals, n_fit, step[s * width:(s + 1) * width], moved)
            for a in range(width):
                w[members[s], a] += step[s * width + a]
        theta = moved / previous if previous > 0.0 else math.inf  # the contraction
        previous, limit = moved, 1e-3 * tol * scale
        converged = linear or newton_converged(theta, moved, limit)
        if converged or newton_hopeless(theta, moved, limit, done, iterations):
            break
    worst = math.inf if not converged else 0.0
    for j in range(n_fit if converged else n_points, n_points):
        for s in range(count):
            trial[s] = 0.0
            for a in range(width):
                trial[s] += vals[j, a] * w[members[s], a]
        coupled_point(model, t0 + tau[j] * hh, hh, 1.0, y, members, count, base, trial, live,
                      held, p, smooth, point, f, jac, False)
        for s in range(count):
            i = members[s]
            r = -f[i]
            for a in range(width):
                r += ops[j, a] * w[i, a]
            res = abs(r) / max(1.0, abs(base[s] + trial[s]))
            worst = res if not res <= worst else worst  # NaN wins
    for s in range(count):
        i = members[s]
        value = y[i]
        for a in range(width):
            value += end[a] * w[i, a]
        new[i] = value
    return worst


def coupled_memory_stage(model, h, u, u_last, members, y, p, held, active, sigma, t0, H, c, fit,
                         scratch, first, last):
    """:func:`memory_stage` (same arguments and result) of a sub-problem with Caputo states
    that couple, the memory's rows ``first``..``last`` − 1: per state s the trial u_s(τ) =
    u_last_s + vals_s(τ)·w_s, and the rows of the L2-1σ relation c_sj·(u_s(τ_j) − u_last_s) +
    H_sj − f_s(t0 + στ_j h, u_last + σ(u(τ_j) − u_last)) at the fit points τ_j > 0, all
    states' weights fitted together by Gauss–Newton on the system whose blocks are
    δ_sl·c_s·vals_s − σ·∂f_s/∂u_l·vals_l (:func:`coupled_point`), from w = 0 (a right-hand
    side constant in t evaluated once in the first iteration, as :func:`memory_stage` does),
    converged as :func:`coupled_stage`; after convergence the residual of the relation times
    h at the check points, relative to max(1, |u|).  Clamped states (not ``active``) stay: their
    weights are held at zero."""
    vals, end, padding, tau, n_fit, iterations, tol, smooth = fit[:8]
    varying = fit[10]
    w, point = scratch[0], scratch[1]
    f, jac, normal, step, row, base, trial, live = scratch[11:]
    own = members[first:last]
    n_points, width = vals.shape[1], vals.shape[2]
    count = last - first
    size = count * width
    for s in range(count):
        base[s], live[s] = u_last[first + s], 1.0 if active[first + s] else 0.0
        for a in range(width):
            w[first + s, a] = 0.0
    previous, converged, tries = 0.0, False, 0
    for done in range(abs(iterations)):
        tries += 1
        for a in range(size):
            step[a] = 0.0
            for e in range(a + 1):
                normal[a, e] = 0.0
            # padding and clamped states' weights: an identity row, no equations
            if padding[first + a // width, a % width] or live[a // width] == 0.0:
                normal[a, a] = 1.0
        scale = 1.0
        for j in range(1, n_fit):
            # from u ≡ u_last a right-hand side constant in t is the same at every point
            if j == 1 or done > 0 or varying:
                for s in range(count):
                    trial[s] = 0.0
                    for a in range(width):
                        trial[s] += vals[first + s, j, a] * w[first + s, a]
                scale = max(scale, coupled_point(model, t0 + sigma * tau[j] * h, 1.0, sigma, y, own,
                                                 count, base, trial, live, held, p, smooth,
                                                 point, f, jac, True))
            for s in range(count):
                if live[s] == 0.0:
                    continue
                i, coefficient = first + s, c[first + s, j - 1]
                r = coefficient * trial[s] + H[i, j - 1] - f[own[s]]
                for l in range(count):
                    coupling = jac[own[s], own[l]]
                    for a in range(width):
                        row[l * width + a] = (coefficient * vals[i, j, a] if l == s else 0.0) \
                            - coupling * vals[first + l, j, a]
                normal_add(normal, step, row, r, size)
        cholesky_solve_in_place(normal[:size, :size], step[:size])
        moved = 0.0
        for s in range(count):
            moved = fit_move(vals[first + s], n_fit, step[s * width:(s + 1) * width], moved)
            for a in range(width):
                w[first + s, a] += step[s * width + a]
        theta = moved / previous if previous > 0.0 else math.inf  # the contraction
        previous, limit = moved, 1e-3 * tol * scale
        converged = iterations < 0 or newton_converged(theta, moved, limit)
        if converged or newton_hopeless(theta, moved, limit, done, abs(iterations)):
            break
    worst = math.inf if not converged else 0.0
    for j in range(n_fit if converged else n_points, n_points):
        for s in range(count):
            trial[s] = 0.0
            for a in range(width):
                trial[s] += vals[first + s, j, a] * w[first + s, a]
        coupled_point(model, t0 + sigma * tau[j] * h, 1.0, sigma, y, own, count, base, trial, live,
                      held, p, smooth, point, f, jac, False)
        for s in range(count):
            if live[s] != 0.0:
                r = c[first + s, j - 1] * trial[s] + H[first + s, j - 1] - f[own[s]]
                res = h * abs(r) / max(1.0, abs(base[s] + trial[s]))
                worst = res if not res <= worst else worst  # NaN wins
    for s in range(count):
        value = u_last[first + s]
        for a in range(width):
            value += end[first + s, a] * w[first + s, a]
        u[first + s] = value
    return worst, tries


def coupled_point(model, time, factor, sigma, y, members, count, base, trial, live, held, p, smooth,
                  point, f, jac, linearise):
    """One point of a coupled stage (:func:`coupled_stage`, :func:`coupled_memory_stage`):
    the model's states there into ``point`` — the sub-problem's (``members``, ``count`` of
    them) at base + σ·trial, the others held at y — ``factor``·f there into ``f`` (n,) and,
    where ``linearise``, factor·σ·∂f/∂u into ``jac`` (n, n), zero in the rows and columns of
    clamped states (``live`` 0).  Returns max(1, |base + trial|) over the sub-problem."""
    scale = 1.0
    for q in range(y.size):
        point[q] = y[q]
    for s in range(count):
        point[members[s]] = base[s] + sigma * trial[s]
        scale = max(scale, abs(base[s] + trial[s]))
    value = input_at(model, time, held, p, smooth)
    call(model.rhs, time, value, address(point), address(p), address(f))
    if linearise:
        call(model.jacobian, time, value, address(point), address(p), address(jac))
    for s in range(count):
        i = members[s]
        f[i] *= factor * live[s]
        for l in range(count if linearise else 0):
            jac[i, members[l]] *= factor * sigma * live[s] * live[l]
    return scale


def normal_add(normal, right, row, r, size):
    """One residual r and its row of a least-squares system added to its normal equations:
    the lower triangle of ``normal`` += row·rowᵀ, their right-hand side ``right`` −= row·r
    (the first ``size`` entries)."""
    for a in range(size):
        right[a] -= row[a] * r
        for e in range(a + 1):
            normal[a, e] += row[a] * row[e]


def coupled_scratch(size, n, width):
    """Work arrays of :func:`coupled_stage` and :func:`coupled_memory_stage` for n states of
    a model of ``size`` states and trial spaces of ``width`` columns: f (size,), its Jacobian
    (size, size), the normal matrix, right-hand side and one row of the (at most n·width)
    system, and per state its start, its trial's change at a point and whether it is free."""
    return (np.empty(size), np.empty((size, size)), np.empty((n * width, n * width)),
            np.empty(n * width), np.empty(n * width), np.empty(n), np.empty(n), np.empty(n))


#: Up to this many states, a model's ``state_diagonals`` takes a sub-problem's states as the
#: bits of one int64 (:func:`stage_diagonals`); beyond, ``state_diagonal`` is called per state.
MASKED = 62


def stage_diagonals(model, t0, drive, y, members, k, p, diagonal):
    """f and ∂f/∂x of sub-problem k's states (``members[k]``) at (t0, y) into their rows of
    ``diagonal`` (n, 2): one call of the model's ``state_diagonals`` (up to :data:`MASKED`
    states), else one ``state_diagonal`` per state."""
    if y.size <= MASKED:
        mask = 0
        for m in range(members.shape[1]):
            i = members[k, m]
            if i < 0:
                break
            mask |= 1 << i
        call(model.state_diagonals, mask, t0, drive, address(y), address(p), address(diagonal))
    else:
        for m in range(members.shape[1]):
            i = members[k, m]
            if i < 0:
                break
            call(model.state_diagonal, i, t0, drive, address(y), address(p),
                 address(diagonal[i]))


def frozen_stage(model, t0, hh, y, members, k, frozen, drive, p, g0, g1, g2, o_sum, v_sum, o_check,
                 v_check, end, tol, z_low, width, coefficients, residual, reach, diagonal, g, w):
    """One least-squares PINN stage of length ``hh`` of a decoupled sub-problem with frozen
    coefficients and a right-hand side constant over the stage (HH's, LIF's), as
    :meth:`~splitpinn.solvers.subsolvers.LeastSquaresPINN.frozen_system` describes:
    :func:`stage_diagonals`, then :func:`frozen_values`.  Returns the largest residual.  Its
    arrays come one by one (the table's, ``members[k]``: sub-problem k's states), not in
    tuples: taking arrays out of a tuple per stage cost a composed HH step more than its
    arithmetic."""
    stage_diagonals(model, t0, drive, y, members, k, p, diagonal)
    return frozen_values(hh, y, members, k, frozen, g0, g1, g2, o_sum, v_sum, o_check, v_check,
                         end, tol, z_low, width, coefficients, residual, reach, diagonal, g, w)


def frozen_values(hh, y, members, k, frozen, g0, g1, g2, o_sum, v_sum, o_check, v_check, end, tol,
                  z_low, width, coefficients, residual, reach, diagonal, g, w):
    """The frozen-coefficient stage of :func:`frozen_stage` from its states' f and ∂f/∂x at
    the stage start (``diagonal``), in place on y: per state, z = hh·∂f/∂x and b = hh·f, the
    value from the table where its bounded residual meets the tolerance
    (:func:`tabulated_stage`), else the K×K normal equations (G0 − zG1 + z²G2) w = b(Σo − zΣv)
    and the residual at the check points.  Returns the largest residual."""
    K, C = end.size, o_check.shape[0]
    worst = 0.0
    for m in range(members.shape[1]):
        i = members[k, m]
        if i < 0:
            break
        z, b, u0 = hh * diagonal[i, 1], hh * diagonal[i, 0], y[i]
        if frozen[i]:  # as z·0 and b·0: NaN from a non-finite diagonal stays
            z, b = z * 0.0, b * 0.0
        value, bound = tabulated_stage(z, b, u0, z_low, width, coefficients, residual, reach,
                                       tol)
        if bound <= tol:
            y[i] = value
            worst = bound if bound > worst else worst
            continue
        linearised_weights(z, b, g0, g1, g2, o_sum, v_sum, g, w)
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
        y[i] = value
    return worst


def stage_row(model, members, k, iterations, coupled, t0, hh, y, frozen, held, p, table, basis,
              scratch):
    """Stage of sub-problem k (its states ``members[k]``) of one row in place on its states y
    (n,): :func:`frozen_stage` where ``iterations`` is 0, else :func:`fitted_stage` (or
    :func:`coupled_stage` where its states are ``coupled``): with at most that many
    Gauss–Newton iterations (−1: a linear sub-problem, one solve); :func:`exact_stage` where
    it is :data:`STAGE_EXACT`, :func:`rk4_stage` where :data:`STAGE_RK4`.  ``table``
    and ``basis``: the trial space's arrays, taken out of the kernel's ``stage`` tuple once per
    kernel call (:func:`stage_arrays`); ``held``: the input over the stage, unless it varies
    smoothly.  Returns the stage's largest residual."""
    g0, g1, g2, o_sum, v_sum, o_check, v_check, end, tol, z_low, width, coefficients, residual, \
        reach = table
    smooth = basis[5]
    g, w, new, diagonal = scratch[5], scratch[6], scratch[7], scratch[12]
    if iterations == STAGE_EXACT:
        return exact_stage(model, t0, hh, y, members[k], frozen, held, p, smooth, scratch[13],
                           scratch[14], scratch[21:])
    if iterations == STAGE_RK4:
        return rk4_stage(model, t0, hh, y, members[k], frozen, held, p, smooth, RK4_SUBSTEPS,
                         scratch[13], scratch[21:])
    if coupled:
        worst = coupled_stage(model, t0, hh, y, members[k], frozen, held, p, smooth, basis[:5],
                              abs(iterations), iterations < 0, tol, scratch, new)
    elif iterations != 0:
        worst = fitted_stage(model, t0, hh, y, members[k], frozen, held, p, smooth, table,
                             basis[:5], abs(iterations), iterations < 0, tol, scratch, new)
    else:  # in place on y
        return frozen_stage(model, t0, hh, y, members, k, frozen,
                            input_at(model, t0, held, p, smooth), p, g0, g1, g2, o_sum, v_sum,
                            o_check, v_check, end, tol, z_low, width, coefficients, residual,
                            reach, diagonal, g, w)
    for m in range(members.shape[1]):
        if members[k, m] < 0:
            break
        y[members[k, m]] = new[members[k, m]]
    return worst


#: Codes of a sub-problem's stage kind in a plan's ``iterations`` (beside the Gauss–Newton
#: iterations of a least-squares stage, >= −1): its exact flow, or classical RK4.
STAGE_EXACT = -2
STAGE_RK4 = -3
#: Equal RK4 sub-steps per stage of :func:`rk4_stage`.
RK4_SUBSTEPS = 4
#: Terms of the Taylor series of :func:`expm_in_place` once the matrix is scaled to a norm of
#: at most 1/4: the first left out is below 0.25^15/15! < 1e-21.
TAYLOR_TERMS = 14


def flow_scratch(n):
    """Work arrays of :func:`exact_stage` (four (n + 1)-square matrices) and of
    :func:`rk4_stage` (three vectors) for n states."""
    return (np.empty((n + 1, n + 1)), np.empty((n + 1, n + 1)), np.empty((n + 1, n + 1)),
            np.empty((n + 1, n + 1)), np.empty(n), np.empty(n), np.empty(n))


def expm_in_place(a, m, out, term, work):
    """out[:m, :m] <- e^A of A = a[:m, :m] (destroyed) by scaling and squaring: A/2^s of
    1-norm at most 1/4, its Taylor series (:data:`TAYLOR_TERMS`), squared s times; NaN where
    A is not finite."""
    norm = 0.0
    for j in range(m):
        column = 0.0
        for i in range(m):
            column += abs(a[i, j])
        norm = column if not column <= norm else norm  # NaN wins
    if not math.isfinite(norm):
        for i in range(m):
            for j in range(m):
                out[i, j] = np.nan
        return
    squarings = 0
    while norm > 0.25:
        norm *= 0.5
        squarings += 1
    scale = 0.5**squarings
    for i in range(m):
        for j in range(m):
            a[i, j] *= scale
            out[i, j] = 1.0 if i == j else 0.0
            term[i, j] = out[i, j]
    for k in range(1, TAYLOR_TERMS + 1):
        matmul_into(term, a, m, work, 1.0 / k)
        for i in range(m):
            for j in range(m):
                term[i, j] = work[i, j]
                out[i, j] += work[i, j]
    for _ in range(squarings):
        matmul_into(out, out, m, work, 1.0)
        for i in range(m):
            for j in range(m):
                out[i, j] = work[i, j]


def matmul_into(x, y, m, out, factor):
    """out[:m, :m] <- factor · x[:m, :m] y[:m, :m]."""
    for i in range(m):
        for j in range(m):
            total = 0.0
            for k in range(m):
                total += x[i, k] * y[k, j]
            out[i, j] = factor * total


def exact_stage(model, t0, hh, y, members, frozen, held, p, smooth, f, jac, work):
    """The exact flow of a linear sub-problem (its states ``members``, −1 padded) over hh, in
    place on y: x' = A x + b with A, b frozen at (t0, y), the others held; x(hh) is the top
    of e^(hh [[A, b], [0, 0]]) (x, 1) (:func:`expm_in_place`).  Clamped states have zero
    rows and columns (they stay).  Returns 0, or inf where the flow is not finite."""
    a, e, term = work[0], work[1], work[2]
    size = 0
    while size < members.size and members[size] >= 0:
        size += 1
    stim = input_at(model, t0, held, p, smooth)
    call(model.rhs, t0, stim, address(y), address(p), address(f))
    call(model.jacobian, t0, stim, address(y), address(p), address(jac))
    for r in range(size):
        i = members[r]
        b = 0.0 if frozen[i] else f[i]
        for c in range(size):
            j = members[c]
            value = 0.0 if frozen[i] or frozen[j] else jac[i, j]
            a[r, c] = hh * value
            b -= value * y[j]
        a[r, size], a[size, r] = hh * b, 0.0
    a[size, size] = 0.0
    expm_in_place(a, size + 1, e, term, work[3])
    worst = 0.0
    for r in range(size):  # the states last: e's top rows times (x, 1)
        value = e[r, size]
        for c in range(size):
            value += e[r, c] * y[members[c]]
        term[0, r] = value
    for r in range(size):
        y[members[r]] = term[0, r]
        worst = worst if math.isfinite(term[0, r]) else math.inf
    return worst


def rk4_stage(model, t0, hh, y, members, frozen, held, p, smooth, substeps, f, work):
    """Classical RK4 on a sub-problem (its states ``members``, −1 padded) over hh in
    ``substeps`` equal sub-steps (a plan's: :data:`RK4_SUBSTEPS`), the others held, in place
    on y; clamped states stay.  Returns 0, or inf where the result is not finite."""
    start, slope, total = work[4], work[5], work[6]
    size = 0
    while size < members.size and members[size] >= 0:
        size += 1
    dt = hh / substeps
    for j in range(substeps):
        for r in range(size):
            start[r], slope[r], total[r] = y[members[r]], 0.0, 0.0
        for q in range(4):
            c = 0.0 if q == 0 else (1.0 if q == 3 else 0.5)
            time = t0 + (j + c) * dt
            for r in range(size):
                y[members[r]] = start[r] + c * dt * slope[r]
            call(model.rhs, time, input_at(model, time, held, p, smooth), address(y),
                 address(p), address(f))
            for r in range(size):
                slope[r] = 0.0 if frozen[members[r]] else f[members[r]]
                total[r] += (2.0 if q == 1 or q == 2 else 1.0) * slope[r]
        for r in range(size):
            y[members[r]] = start[r] + dt / 6.0 * total[r]
    worst = 0.0
    for r in range(size):
        worst = worst if math.isfinite(y[members[r]]) else math.inf
    return worst


def flow_rows(model, members, kind, substeps, t0, hh, y, frozen, held, params, smooth,
              residuals):
    """:func:`exact_stage` (``kind`` :data:`STAGE_EXACT`) or :func:`rk4_stage` (on
    ``substeps``) of the states ``members`` for every row of a batch, in place on y (R, n)."""
    n = y.shape[1]
    f, jac, work = np.empty(n), np.empty((n, n)), flow_scratch(n)
    for r in range(y.shape[0]):
        if kind == STAGE_EXACT:
            residuals[r] = exact_stage(model, t0[r], hh[r], y[r], members, frozen[r], held[r],
                                       params[r], smooth, f, jac, work)
        else:
            residuals[r] = rk4_stage(model, t0[r], hh[r], y[r], members, frozen[r], held[r],
                                     params[r], smooth, substeps, f, work)
    return 0


def stage_arrays(stage):
    """The kernel's ``stage`` tuple (:class:`splitpinn.numeric.compiled.StageKernel`) as the
    table of the frozen-coefficient stage and the basis of the fitted one (+ smooth)."""
    (g0, g1, g2, o_sum, v_sum, o_check, v_check, end, tol, z_low, width, coefficients,
     residual, reach, vals, ops, tau, n_fit, smooth) = stage
    return ((g0, g1, g2, o_sum, v_sum, o_check, v_check, end, tol, z_low, width, coefficients,
             residual, reach), (vals, ops, end, tau, n_fit, smooth))


def stage_scratch(n, stage):
    """Work arrays of :func:`stage_row` and :func:`compose_row` for n states, allocated once
    per call of a kernel (an allocation per stage cost a batch of HH neurons a third of its
    time), then :func:`coupled_scratch`."""
    K, M = stage[7].size, stage[16].size
    return (np.empty((n, K)), np.empty(n), np.empty(2), np.empty((n, M)), np.empty((n, M)),
            np.empty((K, K)), np.empty(K), np.empty(n), np.empty(n), np.empty(n), np.empty(n),
            np.empty(K), np.empty((n, 2))) + coupled_scratch(n, n, K) + flow_scratch(n)


def stage_rows(model, members, iterations, coupled, t0, hh, y, frozen, held, params, stage,
               residuals):
    """:func:`stage_row` of the states ``members[0]`` for every row of a batch, in place on
    y (R, n)."""
    scratch = stage_scratch(y.shape[1], stage)
    table, basis = stage_arrays(stage)
    for r in range(y.shape[0]):
        residuals[r] = stage_row(model, members, 0, iterations, coupled, t0[r], hh[r], y[r],
                                 frozen[r], held[r], params[r], table, basis, scratch)
    return 0


def compose_row(model, t, y, h, frozen, stim, p, plan, stage, scratch):
    """One row's composed step of :class:`splitpinn.numeric.compiled.Composition`, in place on
    its states y (n,): the plan's stages (:func:`stage_row`) in each of its branches, the
    branches' ends averaged (one branch but for the symmetric scheme).  ``stim``: the input
    held over the step, unless it varies smoothly.  Returns (the largest stage residual, the
    first sub-problem whose stage missed the tolerance, or −1)."""
    stage_sub, stage_c, branch_end, members, iterations, coupled = plan
    table, basis = stage_arrays(stage)
    tol = table[8]
    start, total, clock = scratch[8], scratch[9], scratch[10]  # clock: one per sub-problem
    for i in range(y.size):
        start[i], total[i] = y[i], 0.0
    worst, failed_at, first = 0.0, -1, 0
    for b in range(branch_end.size):
        for i in range(y.size):
            y[i] = start[i]
        for k in range(members.shape[0]):
            clock[k] = 0.0
        for st in range(first, branch_end[b]):
            k, c = stage_sub[st], stage_c[st]
            res = stage_row(model, members, k, iterations[k], coupled[k], t + clock[k] * h,
                            c * h, y, frozen, stim, p, table, basis, scratch)
            worst = res if not res <= worst else worst  # NaN wins
            clock[k] += c
            if not worst <= tol and failed_at < 0:
                failed_at = k
        for i in range(y.size):
            total[i] += y[i]
        first = branch_end[b]
    if branch_end.size > 1:
        for i in range(y.size):
            y[i] = total[i] / branch_end.size
    return worst, failed_at


def compose(model, t, y, h, frozen, stim, params, plan, stage, failed_at, residuals):
    """:func:`compose_row` for every row of a batch, in place on y (R, n)."""
    scratch = stage_scratch(y.shape[1], stage)
    for r in range(y.shape[0]):
        residuals[r], failed_at[r] = compose_row(model, t[r], y[r], h[r], frozen[r], stim[r],
                                                 params[r], plan, stage, scratch)
    return 0


def error_norm(y0, y1, error, rtol, atol):
    """The RMS norm of a step's local ``error`` estimate, each state scaled by
    atol + rtol·max(|y0|, |y1|) (``solve_ivp``'s norm); :func:`step_control` accepts ≤ 1."""
    total = 0.0
    for i in range(y0.size):
        total += (error[i] / (atol + rtol * max(abs(y0[i]), abs(y1[i])))) ** 2
    return math.sqrt(total / y0.size)


def step_control(err, h_tried, h, limited, retried, order, h_max):
    """(accept, next step) from the error norm ``err`` of a step of length ``h_tried``:
    accepted at err ≤ 1; the next step is h_tried·clip(SAFETY·err^(−1/(order+1)),
    MIN_FACTOR, MAX_FACTOR) (FAILED_FACTOR for a non-finite err), at most ``h_max``, and no
    longer than h_tried after an accepted step that follows a rejected one (``retried``: the
    step just found to be too long is not tried again at once, as ``solve_ivp``); an
    accepted step that ended early at a stop (``limited``: cut short of ``h`` by more than
    :data:`~splitpinn.fractional.history.SAME_STEP`) keeps the current step ``h`` if that is
    longer."""
    if not math.isfinite(err):
        factor = FAILED_FACTOR
    elif err == 0.0:
        factor = MAX_FACTOR
    else:
        factor = min(max(SAFETY * err ** (-1.0 / (order + 1)), MIN_FACTOR), MAX_FACTOR)
    accept = err <= 1.0
    if accept and retried:
        factor = min(factor, 1.0)
    grown = min(h_max, h_tried * factor)
    return accept, (max(h, grown) if accept and limited else grown)


#: Root finding of a crossing (:func:`root_trial`): at most ROOT_ITERATIONS trials, until the
#: bracket is ROOT_RTOL·max(1, |t|) + ROOT_ATOL (ms) wide.
ROOT_ITERATIONS, ROOT_RTOL, ROOT_ATOL = 100, 1e-13, 1e-14


def root_tolerance(t):
    """The width (ms) below which a crossing's bracket in a step from time t is closed."""
    return ROOT_RTOL * max(1.0, abs(t)) + ROOT_ATOL


def root_trial(bracket, tol):
    """The next trial point of the Illinois variant of regula falsi on ``bracket`` = [a, b,
    g(a), g(b), side of the last move], or −1 where the bracket is closed (narrower than
    ``tol``, or g(b) = 0).  The point stays half a tolerance inside the bracket (CVODE's root
    finder also moves such points inwards): where the secant lands on the root (g linear, as
    for an IF neuron), the next trial closes the bracket, instead of ~40 more trials creeping
    towards it as rounding keeps the secant at the end that has reached the root."""
    a, b, ga, gb = bracket[0], bracket[1], bracket[2], bracket[3]
    if not (b - a > tol and gb != 0.0):
        return -1.0
    s = b - gb * (b - a) / (gb - ga)
    if not math.isfinite(s):
        s = (a + b) / 2
    return min(max(s, a + tol / 2), b - tol / 2)


def root_update(bracket, s, gs):
    """``bracket`` (see :func:`root_trial`) after the trial at s gave g(s) = gs: the end on
    its side moves there, and the other end's value is halved where the same end moved last
    time (Illinois).  g(s) >= 0 moves b: the root found is the point just past the crossing."""
    if gs >= 0:
        bracket[1], bracket[3] = s, gs
        if bracket[4] == 1.0:
            bracket[2] /= 2
        bracket[4] = 1.0
    else:
        bracket[0], bracket[2] = s, gs
        if bracket[4] == -1.0:
            bracket[3] /= 2
        bracket[4] = -1.0


def composed_step(model, t, y, h, frozen, stim, p, plan, stage, scratch, trial, rtol, atol,
                  order, split):
    """The composed step (:func:`compose_row`) from (t, y) over h, into trial[2]: taken once
    where ``order`` is 0 (fixed steps; the error is then 0, or inf where a stage missed its
    tolerance or a state is not finite), else by step doubling, once with h and twice with
    h/2: trial[0] gets the estimate of the half steps' local error, trial[2] the half steps,
    extrapolated by it where the plan is ``split``, and the error is its norm (inf where a
    stage missed its tolerance or it is not finite).  Returns the error and the largest
    residual of the composed steps that succeeded."""
    worst, good, n, doubled = 0.0, True, y.size, order > 0
    for part in range(3 if doubled else 1):  # one call site: each inlined copy costs compile time
        into = trial[part if doubled else 2]
        for i in range(n):  # element loops: slice assignments compile slowly
            into[i] = trial[1, i] if part == 2 else y[i]
        res, bad = compose_row(model, t + h / 2 * (part == 2), into,
                               h if part == 0 else h / 2, frozen, stim, p, plan, stage, scratch)
        good = good and bad < 0
        if bad < 0 and res > worst:
            worst = res
    big, small = trial[0], trial[2]
    for i in range(n):
        big[i] = (small[i] - big[i]) / (2.0**order - 1.0) if doubled else 0.0
        good = good and math.isfinite(small[i])
    err = error_norm(y, small, big, rtol, atol)
    for i in range(n):
        small[i] += big[i] if split else 0.0
    return (err if good and math.isfinite(err) else math.inf), worst


def locate(model, t, y, h, end, g0, g1, column, frozen, stim, p, plan, stage, scratch, trial,
           order, split, smooth, g, bracket, at):
    """The time s in (0, h] where event function ``column`` crosses zero on the step from
    (t, y) (from g0 < 0 to g1 >= 0 at its ``end`` states), by :func:`root_trial` on the
    composed step's flow (:func:`composed_step`), not on an interpolant; the states at s into
    ``at``; returns (s, the trials made)."""
    bracket[0], bracket[1], bracket[2], bracket[3], bracket[4] = 0.0, h, g0, g1, 0.0
    for i in range(y.size):
        at[i] = end[i]
    tol, tries = root_tolerance(t), 0
    while tries < ROOT_ITERATIONS:
        s = root_trial(bracket, tol)
        if s < 0.0:
            break
        tries += 1
        composed_step(model, t, y, s, frozen, stim, p, plan, stage, scratch, trial, 1.0, 1.0,
                      order, split)
        call(model.crossings, t + s, input_at(model, t + s, stim, p, smooth), address(trial[2]),
             address(p), address(g))
        if g[column] >= 0:
            for i in range(y.size):
                at[i] = trial[2, i]
        root_update(bracket, s, g[column])
    return bracket[1], tries


def record_event(records, r, count, time, column, before, after):
    """Event ``count`` of row r into ``records`` (R, capacity, 2 + 2n): its time, event
    function (a reset event's, or the spike detector's after them) and the states before
    and after it."""
    n = before.size
    records[r, count, 0], records[r, count, 1] = time, column
    for i in range(n):
        records[r, count, 2 + i], records[r, count, 2 + n + i] = before[i], after[i]


def sample_step(model, t0, y0, t1, y1, truncated, frozen, stim, stim_end, p, plan, stage,
                scratch, smooth, grid, row, values, slopes, next_out, work, slope):
    """The output grid inside an accepted step (t0, t1] of output row ``row``: one composed
    step from its start to each grid point before t1 (dense output of the scheme's order),
    the end states at t1 (their slopes with the stimulus there, ``stim_end``); none at t1
    where the step was ``truncated`` at an event (that point shows the state after it).
    Returns (composed steps, their largest residual)."""
    taken, worst = 0, 0.0
    last = t1 - SAME_TIME if truncated else t1 + SAME_TIME
    while values.shape[2] and next_out[row] < grid.size and grid[next_out[row]] <= last:
        q = next_out[row]
        for i in range(y0.size):
            work[i] = y1[i] if grid[q] >= t1 else y0[i]
        if grid[q] < t1:
            res, bad = compose_row(model, t0, work, grid[q] - t0, frozen, stim, p, plan, stage,
                                   scratch)
            taken += 1
            if bad < 0 and res > worst:
                worst = res
        output_point(model, grid[q], work, frozen, stim if grid[q] < t1 else stim_end, p,
                     smooth, row, q, values, slopes, slope)
        next_out[row] += 1
    return taken, worst


def output_point(model, time, state, frozen, stim, p, smooth, row, q, values, slopes, slope):
    """Grid point q of output row ``row``: the states and their right-hand sides (zero where
    ``frozen``)."""
    call(model.rhs, time, input_at(model, time, stim, p, smooth), address(state), address(p),
         address(slope))
    for i in range(state.size):
        values[row, i, q] = state[i]
        slopes[row, i, q] = 0.0 if frozen[i] else slope[i]


def step_decision(err, step, h, retried, order, h_max, same_step):
    """(accept, next step) of a try of length ``step`` whose error (:func:`composed_step`) is
    ``err``: a fixed step (``order`` 0) is accepted where every stage met its tolerance, and
    is followed by one to the grid (or half the step after a failure); an adaptive one by
    :func:`step_control`, which keeps the current step ``h`` after one cut short of it by
    more than ``same_step``."""
    if order == 0:
        return err == 0.0, (math.inf if err == 0.0 else step / 2)
    return step_control(err, step, h, step < h * (1.0 - same_step), retried, order, h_max)


def first_crossings(model, t, y, step, end, before, g, armed, n_events, frozen, held, p, plan,
                    stage, scratch, trial, order, split, smooth, work, bracket, at, first_at,
                    spike_at):
    """The events that :func:`fires` in the accepted step from (t, y) to its ``end`` states
    (event functions ``before`` there, ``g`` at its end), each found by :func:`locate`:
    returns the offset of the first reset's crossing and its event (inf and −1 where none
    fires; the lowest event of a tie), that of the spike detector's (inf), and the composed
    steps taken; their states into ``first_at`` and ``spike_at``."""
    first, which, spike, taken = math.inf, -1, math.inf, 0
    for j in range(g.size):
        if fires(before[j], g[j], j, n_events, armed):
            s, tries = locate(model, t, y, step, end, before[j], g[j], j, frozen, held, p, plan,
                              stage, scratch, trial, order, split, smooth, work, bracket, at)
            taken += tries if order == 0 else 3 * tries
            if j >= n_events:
                spike = s
                for i in range(y.size):
                    spike_at[i] = at[i]
            elif s < first:
                first, which = s, j
                for i in range(y.size):
                    first_at[i] = at[i]
    return first, which, spike, taken


def record_knot(knot, t0, y0, t1, y1, frozen):
    """An accepted step as a piece of the dense output: ``knot`` (2 + 3n) gets its start and
    end (time, states) and its frozen states."""
    n = y0.size
    knot[0], knot[1 + n] = t0, t1
    for i in range(n):
        knot[1 + i], knot[2 + n + i], knot[2 + 2 * n + i] = y0[i], y1[i], frozen[i]


def march_composed(model, t, y, h, retried, t_end, breaks, levels, clamp, refractory_end,
                   before, params, plan, stage, control, grid, rows, values, slopes, next_out,
                   knots, events, counts, worst):
    """The composed steps of every row (:func:`composed_step`), adaptive or fixed, events and
    refractory periods included, in place on its time t, states y, step h, whether its last
    try was rejected (``retried``, see :func:`step_control`), clamp and refractory end, event
    functions ``before`` and output; the grid inside an accepted step sampled by
    :func:`sample_step`.  Adaptive steps (``order`` > 0) are controlled by the step-doubling
    estimate as the marching loop does (:func:`step_control`); fixed steps (``order`` 0) land
    on the ``grid``, and a step whose stage fails is tried again on half the step, down to
    ``smallest``.  Steps end at the stimulus's ``breaks`` (its jumps and kinks, sorted),
    between which a stepwise stimulus holds each row's ``levels`` (R, breaks + 1; see
    :func:`level`), and at refractory ends.

    Where an event :func:`fires` in an accepted step, its crossing is found by :func:`locate`;
    a spike detector's crossing before the first reset is recorded, and the step ends at the
    first reset, which :func:`apply_reset` applies: ``events`` = (records (R, capacity,
    2 + 2n), see :func:`record_event`; refractory periods (R, E); clamped states (E, n)).
    During a row's refractory period [spike, ``refractory_end``) its thresholds are not
    checked and the states of its ``clamp`` are frozen; when it ends, a row at or past a
    threshold fires at once (Brian2's rule, as the marching loop's ``_release``).

    A row stops at ``t_end``, when it would be stuck (a step below :data:`SAME_TIME` or
    ``smallest``), when its tries reach ``max_tries``, when its records have no room for
    another step's events, and after a reset that lands at or past a threshold without a
    refractory period (status 1): the loop takes it from there.  ``control`` = (rtol, atol,
    order, h_max, max_tries, same_step: the relative difference below which two step
    lengths are the same, n_events: the number of reset events, whose functions come before
    the spike detector's, smallest); ``counts`` (R, 5) gets accepted and rejected steps,
    composed steps, events recorded and the status; ``worst`` the largest residual of a
    successful composed step.  ``rows``: each row's index in the output ``values``,
    ``slopes`` (B, n, N; N = 0 without traces) and ``next_out`` (B,).  ``knots`` (R,
    max_tries, 2 + 3n) gets each accepted step's start and end (time, states) and its
    frozen states, the dense output's pieces
    (none where its second axis is empty)."""
    rtol, atol, order, h_max, max_tries, same_step, n_events, smallest = control
    records, fixed = events[0], order == 0
    floor = max(SAME_TIME, smallest)  # a try below it: stuck
    smooth = stage[18]
    scratch = stage_scratch(y.shape[1], stage)
    n = y.shape[1]
    trial, slope = np.empty((3, n)), np.empty(n)  # the step h, then two steps h/2
    end, at, first_at, spike_at = np.empty(n), np.empty(n), np.empty(n), np.empty(n)
    g, work, bracket = np.empty(before.shape[1]), np.empty(before.shape[1]), np.empty(5)
    frozen = np.empty(n, dtype=np.bool_)
    split = plan[3].shape[0] > 1  # more than one sub-problem: a splitting error to extrapolate
    for r in range(y.shape[0]):
        p, row, ahead = params[r], rows[r], 0  # breaks[ahead]: the next break
        while t[r] < t_end - SAME_TIME and counts[r, 0] + counts[r, 1] < max_tries \
                and counts[r, 3] + 2 <= records.shape[1] and counts[r, 4] == 0:
            armed = t[r] >= refractory_end[r] - SAME_TIME
            if armed and refractory_end[r] > -math.inf:  # the refractory period ends now
                release(model, r, y, clamp, refractory_end, before,
                        level(breaks, levels[r], t[r]), p, smooth, t[r], events, counts, grid,
                        row, values, slopes, next_out, slope, end)
                continue
            for i in range(n):
                frozen[i] = clamp[r, i] and not armed
            while ahead < breaks.size and breaks[ahead] <= t[r] + SAME_TIME:
                ahead += 1
            held = levels[r, ahead]  # over the step
            stop = min(t_end, t[r] + h[r])
            if ahead < breaks.size and breaks[ahead] < stop:
                stop = breaks[ahead]
            if fixed:
                on = np.searchsorted(grid, t[r] + SAME_TIME, side="right")  # the next point
                stop = min(stop, grid[on]) if on < grid.size else stop
            stop = stop if armed else min(stop, refractory_end[r])
            step = stop - t[r]
            if step < SAME_TIME:
                break
            err, res = composed_step(model, t[r], y[r], step, frozen, held, p, plan, stage,
                                     scratch, trial, rtol, atol, order, split)
            counts[r, 2] += 1 if fixed else 3
            worst[r] = max(worst[r], res)
            accept, new_h = step_decision(err, step, h[r], retried[r], order, h_max, same_step)
            retried[r] = not accept
            if not accept:
                if new_h < floor:
                    break  # stuck: the loop reports it
                counts[r, 1] += 1
                h[r] = new_h
                continue
            for i in range(n):
                end[i] = trial[2, i]
            after = level(breaks, levels[r], stop)  # a jump at the stop: the value after it
            call(model.crossings, stop, input_at(model, stop, after, p, smooth), address(end),
                 address(p), address(g))
            first, which, spike, taken = first_crossings(
                model, t[r], y[r], step, end, before[r], g, armed, n_events, frozen, held, p,
                plan, stage, scratch, trial, order, split, smooth, work, bracket, at, first_at,
                spike_at)
            counts[r, 2] += taken
            t1, y1 = (t[r] + first, first_at) if which >= 0 else (stop, end)
            after = level(breaks, levels[r], t1)
            if spike < first:
                record_event(records, r, counts[r, 3], t[r] + spike, n_events, spike_at, spike_at)
                counts[r, 3] += 1
            taken, res = sample_step(model, t[r], y[r], t1, y1, which >= 0, frozen, held, after,
                                     p, plan, stage, scratch, smooth, grid, row, values, slopes,
                                     next_out, trial[1], slope)
            counts[r, 2] += taken
            worst[r] = max(worst[r], res)
            if knots.shape[1]:
                record_knot(knots[r, counts[r, 0]], t[r], y[r], t1, y1, frozen)
            t[r], h[r] = t1, new_h
            counts[r, 0] += 1
            if which >= 0:
                apply_reset(model, r, which, y1, y, clamp, refractory_end, before, after, p,
                            smooth, t1, events, counts, grid, row, values, slopes, next_out,
                            slope)
            else:
                for i in range(n):
                    y[r, i] = y1[i]
                for j in range(g.size):
                    before[r, j] = g[j]
    return 0


def level(breaks, levels, time):
    """A stepwise stimulus at ``time``: its ``levels`` hold between its ``breaks`` (one more
    than they), and at a break it has the value after it (a step's own value is the level
    after its start)."""
    return levels[np.searchsorted(breaks, time + SAME_TIME, side="right")]


def march_network(model, t, y, h, retried, t_end, breaks, levels, clamp, refractory_end,
                  before, params, plan, stage, control, grid, values, slopes, next_out, knots,
                  events, counts, worst, network):
    """The rows of a network (delta synapses) in lockstep, as :func:`march_composed` marches
    one row: every row takes the same steps (the shortest any row's control allows; a try
    that any row rejects, every row tries again on the shortest step proposed), stops at the
    network's first spike, where the rows that fire there are reset, and at every delivery
    (:func:`deliver`).  ``network`` = (weights (R, R), the target state, the delay, the
    pending deliveries (Q, 2: time, source; in time order, from index ends[0] to ends[1]),
    ``ends``, each row's last spike time).  The other arguments and the stops are
    :func:`march_composed`'s (``rows``: the output rows are the rows)."""
    rtol, atol, order, h_max, max_tries, same_step, n_events, smallest = control
    queue, ends = network[3], network[4]
    records, fixed = events[0], order == 0
    floor = max(SAME_TIME, smallest)  # a try below it: stuck
    smooth = stage[18]
    n_rows, n, n_g = y.shape[0], y.shape[1], before.shape[1]
    scratch = stage_scratch(n, stage)
    trial, slope, at, hit = np.empty((3, n)), np.empty(n), np.empty(n), np.empty(n)
    new, spike_at = np.empty((n_rows, n)), np.empty((n_rows, n))
    g, work, bracket = np.empty((n_rows, n_g)), np.empty(n_g), np.empty(5)
    frozen, fired_now = np.empty((n_rows, n), dtype=np.bool_), np.empty(n_rows, dtype=np.bool_)
    first, spike, new_h, jump = np.empty(n_rows), np.empty(n_rows), np.empty(n_rows), \
        np.empty(n_rows)
    which = np.empty(n_rows, dtype=np.int64)
    split = plan[3].shape[0] > 1  # more than one sub-problem: a splitting error to extrapolate
    ahead = 0  # breaks[ahead]: the next break
    while True:
        now = t[0]
        while ahead < breaks.size and breaks[ahead] <= now + SAME_TIME:
            ahead += 1
        stim = levels[:, ahead]  # over the step
        deliver(model, now, y, clamp, refractory_end, before, stim, params, smooth, events,
                counts, grid, values, slopes, next_out, slope, hit, g, network, fired_now, jump)
        room = ends[1] + 2 * n_rows <= queue.shape[0]
        for r in range(n_rows):
            room = room and counts[r, 3] + 4 <= records.shape[1] and counts[r, 4] == 0 \
                and counts[r, 0] + counts[r, 1] < max_tries
        if not room or now >= t_end - SAME_TIME:
            break
        stop = t_end
        for r in range(n_rows):
            armed = now >= refractory_end[r] - SAME_TIME
            stop = min(stop, now + h[r]) if armed else min(stop, now + h[r], refractory_end[r])
            for i in range(n):
                frozen[r, i] = clamp[r, i] and not armed
        if ahead < breaks.size:
            stop = min(stop, breaks[ahead])
        if fixed:
            on = np.searchsorted(grid, now + SAME_TIME, side="right")  # the next grid point
            stop = min(stop, grid[on]) if on < grid.size else stop
        if ends[0] < ends[1]:
            stop = min(stop, queue[ends[0], 0])  # the next delivery
        step = stop - now
        if step < SAME_TIME:
            break
        ends_at = levels[:, ahead + 1] if ahead < breaks.size and stop >= breaks[ahead] \
            else stim  # a jump at the stop: the value after it
        accepted, stuck = True, False
        for r in range(n_rows):
            err, res = composed_step(model, now, y[r], step, frozen[r], stim[r], params[r], plan,
                                     stage, scratch, trial, rtol, atol, order, split)
            counts[r, 2] += 1 if fixed else 3
            worst[r] = max(worst[r], res)
            accept, new_h[r] = step_decision(err, step, h[r], retried[r], order, h_max,
                                             same_step)
            retried[r] = not accept
            for i in range(n):
                new[r, i] = trial[2, i]
            if not accept:
                accepted = False
                counts[r, 1] += 1
                stuck = stuck or new_h[r] < floor
        if stuck:
            break  # the loop reports it
        if not accepted:  # lockstep: every row tries again
            shortest = new_h.min()
            for r in range(n_rows):
                h[r] = shortest
            continue
        earliest = math.inf  # the network's first spike, a detector's included
        for r in range(n_rows):
            p, armed = params[r], now >= refractory_end[r] - SAME_TIME
            call(model.crossings, stop, input_at(model, stop, ends_at[r], p, smooth),
                 address(new[r]), address(p), address(g[r]))
            first[r], which[r], spike[r], taken = first_crossings(
                model, now, y[r], step, new[r], before[r], g[r], armed, n_events, frozen[r],
                stim[r], p, plan, stage, scratch, trial, order, split, smooth, work, bracket, at,
                hit, spike_at[r])  # the state at a reset: the step to the earliest, below
            counts[r, 2] += taken
            earliest = min(earliest, first[r], spike[r])
        t1 = stop
        if earliest < math.inf:  # every row stops there
            t1, ends_at = now + earliest, stim
            for r in range(n_rows):
                composed_step(model, now, y[r], earliest, frozen[r], stim[r], params[r], plan,
                              stage, scratch, trial, 1.0, 1.0, order, split)
                counts[r, 2] += 1 if fixed else 3
                for i in range(n):
                    new[r, i] = trial[2, i]
                if not first[r] <= earliest + SAME_TIME:
                    which[r] = -1
                else:
                    spike[r] = math.inf  # a firing row's detector: not before its reset
            for r in range(n_rows):  # detector crossings: no reset
                if spike[r] <= earliest + SAME_TIME:
                    record_event(records, r, counts[r, 3], now + spike[r], n_events,
                                 spike_at[r], spike_at[r])
                    counts[r, 3] += 1
                    emit(network, now + spike[r], r)
        for r in range(n_rows):
            taken, res = sample_step(model, now, y[r], t1, new[r], which[r] >= 0, frozen[r],
                                     stim[r], ends_at[r], params[r], plan, stage, scratch,
                                     smooth, grid, r, values, slopes, next_out, trial[1], slope)
            counts[r, 2] += taken
            worst[r] = max(worst[r], res)
            if knots.shape[1]:
                record_knot(knots[r, counts[r, 0]], now, y[r], t1, new[r], frozen[r])
            t[r], h[r] = t1, new_h[r]
            counts[r, 0] += 1
            for i in range(n):
                y[r, i] = new[r, i]
            call(model.crossings, t1, input_at(model, t1, ends_at[r], params[r], smooth),
                 address(y[r]), address(params[r]), address(before[r]))
        for c in range(n_events):  # the resets, event by event
            for r in range(n_rows):
                if which[r] == c:
                    for i in range(n):
                        hit[i] = y[r, i]
                    apply_reset(model, r, c, hit, y, clamp, refractory_end, before, ends_at[r],
                                params[r], smooth, t1, events, counts, grid, r, values, slopes,
                                next_out, slope)
                    emit(network, t1, r)
    return 0


def emit(network, time, source):
    """Row ``source`` spiked at ``time``: its delivery joins the queue (network[3]), and its
    last spike time (network[5]) is ``time``."""
    delay, queue, ends, last_spike = network[2], network[3], network[4], network[5]
    queue[ends[1], 0], queue[ends[1], 1] = time + delay, source
    ends[1] += 1
    last_spike[source] = time


def deliver(model, now, y, clamp, refractory_end, before, stim, params, smooth, events, counts,
            grid, values, slopes, next_out, slope, hit, g, network, fired_now, jump):
    """The rows whose refractory period ends ``now`` are released (:func:`release`), then the
    spikes due ``now`` are delivered (every row is there: lockstep): the target state of
    each row jumps by the summed weights of their sources.  A row that a jump carries past
    its threshold fires at once unless it is refractory (then the jump only moves its
    state), and its own spike (without delay) is delivered before the next one fires: one
    at a time, lowest index first, each row at most once per instant (as the marching
    loop's ``_deliver_due``).  ``network``: see :func:`march_network`."""
    weights, target, queue, ends, last_spike = network[0], network[1], network[3], \
        network[4], network[5]
    n_rows, n_events = y.shape[0], events[1].shape[1]
    for r in range(n_rows):
        if now >= refractory_end[r] - SAME_TIME and refractory_end[r] > -math.inf and \
                release(model, r, y, clamp, refractory_end, before, stim[r], params[r], smooth,
                        now, events, counts, grid, r, values, slopes, next_out, slope, hit) >= 0:
            emit(network, now, r)
    if not (ends[0] < ends[1] and queue[ends[0], 0] <= now + SAME_TIME):
        return
    for r in range(n_rows):
        fired_now[r] = abs(last_spike[r] - now) <= SAME_TIME
    while True:
        jumped = ends[0] < ends[1] and queue[ends[0], 0] <= now + SAME_TIME
        if jumped:
            for r in range(n_rows):
                jump[r] = 0.0
            while ends[0] < ends[1] and queue[ends[0], 0] <= now + SAME_TIME:
                source = int(queue[ends[0], 1])
                ends[0] += 1
                for r in range(n_rows):
                    jump[r] += weights[r, source]
            for r in range(n_rows):
                y[r, target] += jump[r]
        ready, column = -1, -1
        for r in range(n_rows):
            p, armed, past = params[r], now >= refractory_end[r] - SAME_TIME, -1
            call(model.crossings, now, input_at(model, now, stim[r], p, smooth), address(y[r]),
                 address(p), address(g[r]))
            for j in range(g.shape[1]):
                if fires(before[r, j], g[r, j], j, n_events, armed):
                    past = j if past < 0 else past
                else:
                    before[r, j] = g[r, j]
            if past >= 0 and not fired_now[r] and ready < 0:
                ready, column = r, past
        if ready < 0:
            for r in range(n_rows):
                for j in range(g.shape[1]):
                    before[r, j] = g[r, j]
            if not jumped:
                return
            continue
        fired_now[ready] = True
        for i in range(y.shape[1]):
            hit[i] = y[ready, i]
        if column < n_events:
            apply_reset(model, ready, column, hit, y, clamp, refractory_end, before, stim[ready],
                        params[ready], smooth, now, events, counts, grid, ready, values, slopes,
                        next_out, slope)
        else:
            record_event(events[0], ready, counts[ready, 3], now, column, hit, hit)
            counts[ready, 3] += 1
            for j in range(g.shape[1]):
                before[ready, j] = g[ready, j]
        emit(network, now, ready)
        if counts[ready, 4]:
            return


def release(model, r, y, clamp, refractory_end, before, held, p, smooth, t, events, counts,
            grid, row, values, slopes, next_out, slope, hit):
    """Row r's refractory period ends at t: its thresholds are checked again, and a row at
    or past one fires at once (the lowest event; Brian2's rule, as the marching loop's
    ``_release``), the grid point at t showing the states after the reset.  Returns the
    event that fired, or −1."""
    refractory_end[r] = -math.inf
    call(model.crossings, t, input_at(model, t, held, p, smooth), address(y[r]), address(p),
         address(before[r]))
    for j in range(events[1].shape[1]):
        if before[r, j] >= 0:
            if values.shape[2] and next_out[row] > 1 and \
                    abs(grid[next_out[row] - 1] - t) <= SAME_TIME:
                next_out[row] -= 1  # the grid point here shows the reset
            for i in range(y.shape[1]):
                hit[i] = y[r, i]
            apply_reset(model, r, j, hit, y, clamp, refractory_end, before, held, p, smooth, t,
                        events, counts, grid, row, values, slopes, next_out, slope)
            return j
    return -1


def apply_reset(model, r, c, hit, y, clamp, refractory_end, before, held, p, smooth, t, events,
                counts, grid, row, values, slopes, next_out, slope):
    """Event c of row r fires at time t in the states ``hit``: the model's reset into y[r],
    the event recorded (:func:`record_event`), its refractory period and clamp begun, the
    event functions there into before[r], a grid point at t given the states after it.  A
    reset that lands at or past a threshold without a refractory period sets the row's
    status (counts[r, 4]) to 1."""
    records, refractory, clamps = events
    for i in range(y.shape[1]):
        y[r, i] = hit[i]  # the states the reset leaves
    call(model.reset, c, t, input_at(model, t, held, p, smooth), address(hit), address(p),
         address(y[r]))
    record_event(records, r, counts[r, 3], t, c, hit, y[r])
    counts[r, 3] += 1
    refractory_end[r] = t + refractory[r, c]
    for i in range(y.shape[1]):
        clamp[r, i] = clamps[c, i]
    call(model.crossings, t, input_at(model, t, held, p, smooth), address(y[r]), address(p),
         address(before[r]))
    if refractory[r, c] <= 0:
        for j in range(refractory.shape[1]):
            if before[r, j] >= 0:
                counts[r, 4] = 1  # it would fire again at once: the loop reports it
    if values.shape[2] and next_out[row] < grid.size and \
            abs(grid[next_out[row]] - t) <= SAME_TIME:
        output_point(model, t, y[r], clamps[c], held, p, smooth, row, next_out[row], values,
                     slopes, slope)
        next_out[row] += 1


def rhs_rows(model, t, stim, y, params, out):
    """``rhs`` row by row of a batch into ``out`` (R, n)."""
    for r in range(y.shape[0]):
        call(model.rhs, t[r], stim[r], address(y[r]), address(params[r]), address(out[r]))
    return 0
