"""L2-1σ Caputo derivative: orders against closed forms, the marching memories."""

import math
import subprocess
import sys

import numpy as np
import pytest
from exact import march_relation, mittag_leffler
from scipy.special import erfcx

from splitpinn.fractional import (
    FastL21SigmaHistory,
    FullL21SigmaHistory,
    caputo_l21sigma,
    default_sigma,
    graded_mesh,
    l21sigma_weights,
    make_history,
    onset_mesh,
    onset_refinement,
)
from splitpinn.numeric.compiled import memory_rules

NS = np.array([32, 64, 128, 256])


def _order(ns, errors):
    """Least-squares slope of log(error) against log(h), h = 1/N."""
    return np.polyfit(np.log(1.0 / np.asarray(ns)), np.log(errors), 1)[0]


def _sigma_points(t, alpha, sigma=None):
    sigma = 1.0 - alpha / 2.0 if sigma is None else sigma
    return t[:-1] + sigma * np.diff(t)


def _power_derivative(p, alpha, t):
    """Caputo derivative of t^p (p > 0): Gamma(p+1)/Gamma(p+1-alpha) t^(p-alpha)."""
    return math.gamma(p + 1) / math.gamma(p + 1 - alpha) * t ** (p - alpha)


def _march(history, t, a_mat, forcing=None):
    """Implicit L2-1σ march of D^alpha u = A u + forcing(t) on the mesh t: states at t.

    Each step solves  history_term + C (u - u_last) = A (s u + (1-s) u_last) + forcing(t*)
    with t* = t_last + s (t - t_last), s = sigma: linear in u.
    """
    a_mat = np.atleast_2d(a_mat)
    s = history.sigma
    out = [history.u_last]
    for tk in t[1:]:
        coef, known, u_last = history.local_coefficient(tk), history.history_term(tk), out[-1]
        t_star = history.t_last + s * (tk - history.t_last)
        rhs = (1 - s) * a_mat @ u_last - known + coef * u_last
        if forcing is not None:
            rhs = rhs + forcing(t_star)
        u = np.linalg.solve(np.diag(coef) - s * a_mat, rhs)
        history.append(tk, u)
        out.append(u)
    return np.array(out)


def test_mittag_leffler_evaluator_against_closed_forms():
    x = np.linspace(0.0, 1.0, 11)
    np.testing.assert_allclose(mittag_leffler(1.0, -x), np.exp(-x), rtol=1e-14)
    np.testing.assert_allclose(mittag_leffler(0.5, -x), erfcx(x), rtol=1e-14)  # e^(x^2) erfc(x)


@pytest.mark.parametrize("alpha", [0.3, 0.6, 0.9])
def test_mittag_leffler_relaxation_second_order_on_graded_mesh(alpha):
    """D^a x = -x, x(0) = 1 on [0, 1]: x = E_a(-t^a). Grading r = 2/a (Chen & Stynes).

    Measured max errors at N = 256: 4.1e-6 / 3.4e-6 / 1.6e-6, slopes 1.97 / 1.97 / 1.85 for
    a = 0.3 / 0.6 / 0.9. With r = 1/a the slope is 0.97 to 0.98 (order r a).
    """
    errors = []
    for n in NS:
        t = graded_mesh(1.0, n, 2.0 / alpha)
        x = _march(FullL21SigmaHistory(alpha, 0.0, [1.0]), t, -1.0)[:, 0]
        errors.append(np.max(np.abs(x - mittag_leffler(alpha, -(t**alpha)))))
    assert _order(NS, errors) >= 1.8
    assert errors[-1] < 1e-5


@pytest.mark.parametrize(("alpha", "t_on"), [(0.3, 0.0), (0.6, 50.0), (0.9, 50.0)])
def test_onset_mesh_then_uniform_steps_is_second_order(alpha, t_on):
    """Relaxation started at t_on: onset_mesh over 0.2, then steps dt up to t_on + 1.

    Measured max errors at dt = 1/320: 9.1e-7 / 1.8e-6 / 1.2e-6 (slopes 1.98 / 1.97 / 1.86)
    against 1.1e-2 / 2.8e-3 / 1.6e-4 (slopes 0.10 / 0.53 / 0.88) with steps dt from t_on.
    Offsets below 1e-12 t_on are dropped (not resolvable next to t_on = 50).
    """
    dts = 1 / np.array([40, 80, 160, 320])
    errors = {}
    for graded in (True, False):
        errors[graded] = []
        for dt in dts:
            head = onset_mesh(0.2, dt, alpha, min_step=1e-12 * t_on) if graded else np.zeros(1)
            assert np.all(np.diff(head) <= dt * (1 + 1e-9))
            s = np.concatenate([head, head[-1] + dt * np.arange(1, round((1 - head[-1]) / dt) + 1)])
            t = t_on + s
            u = _march(FullL21SigmaHistory(alpha, t_on, [1.0]), t, -1.0)[:, 0]
            errors[graded].append(np.max(np.abs(u - mittag_leffler(alpha, -((t - t_on) ** alpha)))))
    assert np.polyfit(np.log(dts), np.log(errors[True]), 1)[0] >= 1.8
    assert errors[True][-1] < 2e-6 and errors[False][-1] > 50 * errors[True][-1]


@pytest.mark.parametrize("alpha", [0.6, 0.9])
def test_onset_refinement_through_an_offset_grid_is_second_order(alpha):
    """Relaxation started at t_on = 50.0037, off the grid of step dt (multiples of dt): the
    steps of onset_refinement through the grid points up to t_on + 0.2, then the grid to 51.
    The mesh holds every grid point, no step is longer than the grid's, and neighbouring
    steps stay within onset_mesh's grading (ratio <= 2^r - 1); the max error falls like dt²
    (measured slopes 1.95 / 1.86, as onset_mesh's steps merged with the grid give; smaller
    orders need offsets below the 1e-12 t_on that are dropped).
    """
    t_on, dts, errors = 50.0037, 1 / np.array([40, 80, 160, 320]), []
    for dt in dts:
        grid = dt * np.arange(math.ceil(t_on / dt), round((t_on + 1) / dt) + 1)
        head = grid[grid <= t_on + 0.2]
        s = onset_refinement(head - t_on, 0.2, dt, alpha, min_step=1e-12 * t_on)
        assert np.all(np.isin(head - t_on, s)) and np.all(np.diff(s) <= dt * (1 + 1e-9))
        steps = np.diff(s)
        assert np.max(steps[1:] / steps[:-1]) <= 2 ** (2 / alpha) - 1 + 1e-6
        t = np.concatenate([t_on + s, grid[grid > t_on + s[-1] + 1e-9]])
        u = _march(FullL21SigmaHistory(alpha, t_on, [1.0]), t, -1.0)[:, 0]
        errors.append(np.max(np.abs(u - mittag_leffler(alpha, -((t - t_on) ** alpha)))))
    assert np.polyfit(np.log(dts), np.log(errors), 1)[0] >= 1.8
    assert errors[-1] < 2e-6


def _relax_reset_hold(alpha, dt, kink=True, graded=True):
    """D^a u = 1 - u, u(0) = 0; reset to 0 at t = 0.4 (a jump) and held until 0.5; free to 1.

    Returns u(0.4-) and u(1). Each free segment starts with onset_mesh steps when graded.
    """

    def mesh(start, end):
        head = onset_mesh(0.1, dt, alpha, min_step=1e-12 * start) if graded else np.zeros(1)
        tail = head[-1] + dt * np.arange(1, round((end - start - head[-1]) / dt) + 1)
        return start + np.concatenate([head, tail])

    history = FullL21SigmaHistory(alpha, 0.0, [0.0])
    before = _march(history, mesh(0.0, 0.4), -1.0, lambda t: np.ones(1))[-1, 0]
    history.append(0.4, [0.0])  # the reset: a jump, kept in the memory
    history.append(0.5, [0.0])  # held: a constant piece
    if kink:
        history.append(0.5, [0.0])  # same-time append: u' jumps here, no quadratic across
    after = _march(history, mesh(0.5, 1.0), -1.0, lambda t: np.ones(1))[-1, 0]
    return np.array([before, after])


@pytest.mark.parametrize("alpha", [0.6, 0.9])
def test_reset_and_hold_second_order_with_kink_marked(alpha):
    """Against the same march at dt = 1/1280. Measured errors at dt = 1/20..1/160:
    a = 0.6: 3.2e-4 5.8e-5 9.5e-6 9.2e-7; a = 0.9: 2.3e-4 8.0e-5 2.2e-5 5.6e-6 (slope 1.79).
    Uniform steps: first order (5.6e-4 / 1.6e-4 at 1/160); the hold end not marked as a kink:
    1.5e-2 / 3.5e-3 whatever dt (the quadratic across it sees the steep onset).
    """
    dts = 1 / np.array([20, 40, 80, 160])
    exact = _relax_reset_hold(alpha, 1 / 1280)
    errors = {
        case: [np.max(np.abs(_relax_reset_hold(alpha, dt, *case) - exact)) for dt in dts]
        for case in [(True, True), (False, True), (True, False)]
    }
    assert np.polyfit(np.log(dts), np.log(errors[True, True]), 1)[0] >= 1.7
    assert errors[True, False][-1] > 10 * errors[True, True][-1]
    assert min(errors[False, True]) > 1e-3


@pytest.mark.parametrize("alpha", [0.3, 0.6, 0.9])
def test_manufactured_solution_second_order(alpha):
    """D^a u = -u + g with u = t^(1+a) + t^2, g from the exact derivative; uniform mesh.

    Measured slopes 1.99 / 2.00 / 2.00 for a = 0.3 / 0.6 / 0.9 (N = 32..256).
    """

    def exact(t):
        return t ** (1 + alpha) + t**2

    def forcing(t):
        return _power_derivative(1 + alpha, alpha, t) + _power_derivative(2, alpha, t) + exact(t)

    errors = []
    for n in NS:
        t = graded_mesh(1.0, n)
        u = _march(FullL21SigmaHistory(alpha, 0.0, [0.0]), t, -1.0, forcing)[:, 0]
        errors.append(np.max(np.abs(u - exact(t))))
    assert abs(_order(NS, errors) - 2.0) <= 0.1


def test_mixed_orders_share_sigma_and_stay_second_order():
    """x' = -x + y/2 + g1, D^0.6 y = 0.3 x - y + g2 with x = sin t + t^2, y = t^1.6 + t^2.

    One sigma = 0.7 (Alikhanov's for 0.6); the order-1 x uses the derivative of the quadratic at
    t*. Measured slopes 1.95 (x) and 2.00 (y); with the plain difference quotient (u_n -
    u_{n-1})/tau for x (second order only at sigma = 1/2) they drop to 0.99 and 0.86.
    """
    a_mat = np.array([[-1.0, 0.5], [0.3, -1.0]])

    def exact(t):
        return np.stack([np.sin(t) + t**2, t**1.6 + t**2], axis=-1)

    def forcing(t):
        d_y = _power_derivative(1.6, 0.6, t) + _power_derivative(2, 0.6, t)
        return np.array([np.cos(t) + 2 * t, d_y]) - a_mat @ exact(t)

    errors = []
    for n in NS:
        t = graded_mesh(2.0, n)
        history = FullL21SigmaHistory([1.0, 0.6], 0.0, [0.0, 0.0])
        assert history.sigma == default_sigma([1.0, 0.6]) == 0.7
        errors.append(np.max(np.abs(_march(history, t, a_mat, forcing) - exact(t)), axis=0))
    errors = np.array(errors)
    assert min(_order(NS, errors[:, 0]), _order(NS, errors[:, 1])) >= 1.9


@pytest.mark.parametrize("alpha", [0.3, 0.6, 0.9])
def test_consistency_order_three_minus_alpha(alpha):
    # Measured slopes for u = t^3 on a uniform mesh: 2.62 / 2.38 / 2.10 for a = 0.3 / 0.6 / 0.9.
    errors = []
    for n in NS:
        t = graded_mesh(2.0, n)
        err = caputo_l21sigma(t**3, t, alpha) - _power_derivative(3, alpha, _sigma_points(t, alpha))
        errors.append(np.max(np.abs(err)))
    assert abs(_order(NS, errors) - (3 - alpha)) <= 0.15


@pytest.mark.parametrize("sigma", [None, 0.9])
@pytest.mark.parametrize("alpha", [0.2, 0.5, 0.9, 1.0])
def test_exact_for_quadratics_on_graded_mesh(alpha, sigma):
    """Quadratic interpolation is exact for quadratics; so is the last (linear) piece at the
    default sigma, whose error integrates to zero. Another sigma: exact from the second step on.
    """
    t = graded_mesh(3.0, 60, 2.5)  # far intervals are short: the series branch is exercised
    ts = _sigma_points(t, alpha, sigma)
    exact = 2 * _power_derivative(1, alpha, ts) - 0.7 * _power_derivative(2, alpha, ts)
    got = caputo_l21sigma(1 + 2 * t - 0.7 * t**2, t, alpha, sigma)
    first = 0 if sigma is None else 1
    np.testing.assert_allclose(got[first:], exact[first:], rtol=1e-12)


def test_uniform_weights_match_general_formula():
    """Alikhanov's published coefficients c_j against the general (non-uniform) construction."""
    alpha, h, n = 0.4, 0.1, 12
    t = h * np.arange(n + 1)
    u = np.sin(3 * t) + t**2
    du = np.diff(u)
    by_weights = [
        h**-alpha / math.gamma(2 - alpha) * l21sigma_weights(alpha, k) @ du[k::-1] for k in range(n)
    ]
    np.testing.assert_allclose(caputo_l21sigma(u, t, alpha), by_weights, rtol=1e-13)
    np.testing.assert_array_equal(l21sigma_weights(1.0, 3), [1.0, 0.0, 0.0, 0.0])


@pytest.mark.parametrize("r", [1.0, 2.5])
def test_alpha_one_is_midpoint_rule(r):
    t = graded_mesh(3.0, 40, r)
    u = np.stack([np.exp(t), np.cos(t)], axis=1)
    np.testing.assert_allclose(caputo_l21sigma(u, t, 1.0), np.diff(u, axis=0) / np.diff(t)[:, None],
                               rtol=1e-14)
    # u' = lam u by the march: the implicit midpoint recursion (1 + lam h/2)/(1 - lam h/2).
    lam, h = -2.0, np.diff(t)
    marched = _march(FullL21SigmaHistory(1.0, 0.0, [1.0]), t, lam)[:, 0]
    midpoint = np.concatenate([[1.0], np.cumprod((1 + lam * h / 2) / (1 - lam * h / 2))])
    np.testing.assert_allclose(marched, midpoint, rtol=1e-13)


def test_alpha_one_sigma_one_is_bdf2():
    t = np.linspace(0.0, 1.0, 21)
    u = np.exp(np.sin(4 * t))
    bdf2 = (3 * u[2:] - 4 * u[1:-1] + u[:-2]) / (2 * (t[1] - t[0]))
    np.testing.assert_allclose(caputo_l21sigma(u, t, 1.0, sigma=1.0)[1:], bdf2, rtol=1e-12)


@pytest.mark.parametrize("sigma", [0.5, 0.7, 1.0])
def test_order_one_components_are_a_stable(sigma):
    """u' = A u marched with one shared sigma (the order-1 rows of a mixed system): the norm
    never grows, for stiff decay and for fast rotation (|lambda dt| up to 1e6)."""
    t = np.linspace(0.0, 1.0, 51)
    for a_mat in ([[-5.0]], [[-5e7]], [[0.0, 500.0], [-500.0, 0.0]], [[-1e3, 1e4], [-1e4, -1e3]]):
        u0 = np.ones(len(a_mat))
        history = FullL21SigmaHistory(np.ones(len(a_mat)), 0.0, u0, sigma=sigma)
        norms = np.linalg.norm(_march(history, t, np.array(a_mat)), axis=1)
        assert np.all(np.diff(norms) <= 1e-12 * norms[:-1]), (a_mat, norms)


@pytest.mark.parametrize("orders", [0.3, 0.75, [1.0, 0.6]])
def test_memories_reproduce_the_sample_formula(orders):
    t = graded_mesh(4.0, 400, 2.0)
    u = np.stack([np.sin(2.3 * t) + 0.4 * np.cos(5.1 * t + 1.0), np.exp(-0.3 * t)], axis=1)
    sigma = default_sigma(orders)
    alphas = np.broadcast_to(orders, (2,))
    expected = np.stack([caputo_l21sigma(u[:, c], t, alphas[c], sigma) for c in range(2)], axis=1)
    scale = np.max(np.abs(expected))
    full = march_relation(FullL21SigmaHistory(orders, 0.0, u[0]), t, u)
    np.testing.assert_allclose(full, expected, rtol=0, atol=1e-13 * scale)
    fast_history = FastL21SigmaHistory(orders, 0.0, u[0], t_end=4.0, dt_min=0.01, tol=1e-10)
    fast = march_relation(fast_history, t, u)
    # Measured max |fast - expected| / scale: 1.3e-12 (0.3), 1.1e-12 (0.75), 7e-14 ([1, 0.6]).
    np.testing.assert_allclose(fast, expected, rtol=0, atol=1e-10 * scale)


@pytest.mark.parametrize("alpha", [0.2, 0.6, 0.9])
def test_fast_agrees_with_full_to_tolerance_over_5000_steps_with_a_jump(alpha):
    """|fast - full| <= tol * full for an increasing signal with an upward jump.

    Each piece enters through the positive kernel times Q'(r) >= 0 (the signal and its
    quadratic pieces increase), and the SOE kernel has relative error <= tol, so the fast
    history differs from the full one by at most tol times the full history. Measured max ratio
    |fast - full| / (tol full): 0.004 (a = 0.2), 0.10 (0.6), 0.046 (0.9).
    """
    n, dt, tol = 5000, 0.01, 1e-8
    times = list(dt * np.arange(1, n + 1))
    times.insert(2000, times[1999] + 0.4 * dt)  # the jump is recorded at this time

    def signal(tk):
        return np.array([tk + 0.3 * np.sin(tk) + 0.1 * tk**2])

    fast = FastL21SigmaHistory(alpha, 0.0, signal(0.0), t_end=(n + 1) * dt, dt_min=dt, tol=tol)
    full = FullL21SigmaHistory(alpha, 0.0, signal(0.0))
    fast.rules = full.rules = memory_rules()  # compiled: the full sum is O(N) per call
    ratio = 0.0
    for k, tk in enumerate(times):
        u = signal(tk) + (2.5 if k >= 2000 else 0.0)
        for v in [u] if k != 2000 else [u - 2.5, u]:
            fast.append(tk, v)
            full.append(tk, v)
        if k % 17 and not 1995 <= k <= 2010:  # the full sum is O(N): check a subset of steps
            continue
        t_eval = tk + np.array([0.3, 1.0]) * dt
        exact = full.history_term(t_eval)[:, 0]
        assert np.all(exact > 0)
        ratio = max(ratio, np.max(np.abs(fast.history_term(t_eval)[:, 0] - exact) / (tol * exact)))
        np.testing.assert_allclose(fast.local_coefficient(t_eval), full.local_coefficient(t_eval),
                                   rtol=1e-14)
    assert ratio <= 1.0, ratio
    assert fast.memory_floats < 500 < full.memory_floats


@pytest.mark.parametrize("alpha", [0.3, 0.8])
@pytest.mark.parametrize("kind", ["full", "fast"])
def test_jump_is_the_caputo_derivative_of_a_step_at_the_sigma_point(kind, alpha):
    dt, t_jump, du = 0.05, 1.0, 2.5
    h = make_history(kind, alpha, 0.0, [1.0], t_end=20.0, dt_min=dt, tol=1e-10, scheme="l21sigma")
    h.append(t_jump, [1.0])  # constant before the jump: no contribution
    h.append(t_jump, [1.0 + du])
    t = t_jump + np.array([1e-3, 0.02, 0.05])
    sigma = 1 - alpha / 2
    step = du * (sigma * (t - t_jump)) ** -alpha / math.gamma(1 - alpha)
    np.testing.assert_allclose(h.history_term(t)[:, 0], step, rtol=1e-13)
    linear = (sigma * (t - t_jump)) ** (1 - alpha) / math.gamma(2 - alpha) / (t - t_jump)
    np.testing.assert_allclose(h.local_coefficient(t)[:, 0], linear, rtol=1e-13)
    for k in range(1, 300):  # constant afterwards; the jump ages into the SOE accumulators
        h.append(t_jump + k * dt, [1.0 + du])
    t = h.t_last + np.array([0.01, dt])
    step = du * (h.t_last + sigma * (t - h.t_last) - t_jump) ** -alpha / math.gamma(1 - alpha)
    np.testing.assert_allclose(h.history_term(t)[:, 0], step, rtol=1e-9)


def test_validation():
    with pytest.raises(ValueError, match="sigma"):
        caputo_l21sigma(np.zeros(3), np.arange(3.0), 0.5, sigma=0.4)
    with pytest.raises(ValueError, match="sigma"):
        FullL21SigmaHistory(0.5, 0.0, [0.0], sigma=1.5)
    with pytest.raises(ValueError, match="increasing"):
        caputo_l21sigma(np.zeros(3), np.array([0.0, 1.0, 1.0]), 0.5)
    with pytest.raises(ValueError, match="non-negative integer"):
        l21sigma_weights(0.5, -1)
    with pytest.raises(ValueError, match="dt"):
        onset_mesh(0.1, 0.2, 0.5)
    np.testing.assert_allclose(onset_mesh(1.0, 0.1, [1.0, 1.0]), np.linspace(0, 1, 11))
    with pytest.raises(ValueError, match="scheme"):
        make_history("full", 0.5, 0.0, [0.0], t_end=1.0, dt_min=0.1, scheme="l2")
    h = make_history("fast", 0.5, 0.0, [0.0], t_end=1.0, dt_min=0.1, scheme="l21sigma")
    h.append(0.1, [1.0])
    with pytest.raises(ValueError, match="exceed"):
        h.local_coefficient(0.1)
    with pytest.raises(ValueError, match="t_end"):
        h.history_term(1.5)


def test_import_does_not_load_torch():
    code = (
        "import sys, splitpinn\n"
        "assert 'torch' not in sys.modules, 'splitpinn itself imports torch'\n"
        "import splitpinn.fractional\n"
        "assert 'torch' not in sys.modules, 'splitpinn.fractional imports torch'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_first_moment_reads_no_further_than_its_series():
    """The L1 memory's march tables carry a one-term zero series for the L2-1σ curvature
    integral (its pieces have no curvature); far from a piece (z² <= 1e-4) the integral used
    to read four terms — past the end: an IndexError in plain Python, memory beyond the array
    in compiled code.  It reads only what is there: zero."""
    from splitpinn.fractional import rules

    assert rules.piece_moments(1.0, 1e-3, 0.6, 1.0, 1.0, np.zeros(1))[1] == 0.0
