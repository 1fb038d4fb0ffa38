"""History objects for time marching: agreement with the L1 formula, fast vs full, jumps, SOE."""

import math

import numpy as np
import pytest
from exact import march_relation

from splitpinn.fractional import (
    FastHistory,
    FullHistory,
    caputo_l1,
    default_history_kind,
    graded_mesh,
    make_history,
    soe_kernel,
)
from splitpinn.numeric.compiled import memory_rules


def _signal(t):
    return np.stack([np.sin(2.3 * t) + 0.4 * np.cos(5.1 * t + 1.0), np.exp(-0.3 * t)], axis=1)


@pytest.mark.parametrize("r", [1.0, 2.0])
@pytest.mark.parametrize("alpha", [0.3, 0.75])
def test_marching_reproduces_caputo_l1(alpha, r):
    t = graded_mesh(4.0, 400, r)
    u = _signal(t)
    expected = caputo_l1(u, t, alpha)
    scale = np.max(np.abs(expected))
    full = march_relation(FullHistory(alpha, t[0], u[0]), t, u)
    np.testing.assert_allclose(full, expected, rtol=0, atol=1e-12 * scale)
    # dt_min = 10 h_mean: early graded steps are shorter, so the exact window holds several
    # intervals; the SOE kernel error (1e-10, relative) bounds the rest.
    fast_history = FastHistory(alpha, t[0], u[0], t_end=4.0, dt_min=0.1, tol=1e-10)
    fast = march_relation(fast_history, t, u)
    np.testing.assert_allclose(fast, expected, rtol=0, atol=1e-9 * scale)


@pytest.mark.parametrize("alpha", [0.2, 0.6, 0.9])
def test_fast_agrees_with_full_over_5000_steps_with_a_jump(alpha):
    """|fast - full| <= tol * H_abs, H_abs = the history of the total variation of u.

    Every interval or jump enters linearly through a positive kernel that the SOE reproduces to
    relative error tol, so the error is at most tol times the history with |du| in place of du
    (computed exactly by FullHistory fed the cumulative variation). The step containing the jump
    is split (0.4 h, jump, 0.6 h), as an event inside a step would be. Measured max ratio
    |fast - full| / (tol H_abs), checking every step: 0.009 (alpha 0.2), 0.15 (0.6), 0.03 (0.9).
    """
    rng = np.random.default_rng(7)
    freq, phase, amp = rng.uniform(0.2, 3, 6), rng.uniform(0, 6.3, 6), rng.uniform(0.2, 1, 6)
    n, dt, tol = 5000, 0.01, 1e-8
    times = list(dt * np.arange(1, n + 1))
    times.insert(2000, times[1999] + 0.4 * dt)  # the jump happens here

    def signal(tk):
        return np.array([amp @ np.sin(freq * tk + phase)])

    fast = FastHistory(alpha, 0.0, signal(0.0), t_end=(n + 1) * dt, dt_min=dt, tol=tol)
    full = FullHistory(alpha, 0.0, [signal(0.0)[0], 0.0])  # [u, total variation of u]
    fast.rules = full.rules = memory_rules()  # compiled: the full sum is O(N) per call
    ratio = 0.0
    for k, tk in enumerate(times):
        u = signal(tk) + (2.5 if k >= 2000 else 0.0)
        steps = [u] if k != 2000 else [u - 2.5, u]  # the jump is recorded at the same time
        for v in steps:
            var = full.u_last[1] + abs(v[0] - full.u_last[0])
            fast.append(tk, v)
            full.append(tk, [v[0], var])
        if k % 7 and not 1995 <= k <= 2010:  # the full sum is O(N): check a subset of steps
            continue
        t_eval = tk + np.array([0.3, 1.0]) * dt
        exact, h_abs = full.history_term(t_eval).T
        err = np.abs(fast.history_term(t_eval)[:, 0] - exact)
        ratio = max(ratio, np.max(err / (tol * h_abs)))
    assert ratio <= 1.0
    assert fast.memory_floats < 500 < full.memory_floats


@pytest.mark.parametrize("tol", [1e-6, 1e-10])
@pytest.mark.parametrize("beta", [0.2, 0.6, 0.9])
@pytest.mark.parametrize(("delta", "t_end"), [(0.01, 1000.0), (1e-4, 1.0)])
def test_soe_kernel_relative_error(beta, tol, delta, t_end):
    s, w = soe_kernel(beta, delta, t_end, tol)
    assert np.all(s > 0) and np.all(w > 0)
    t = np.geomspace(delta, t_end, 30011)  # not the grid used to build the nodes
    approx = np.exp(-np.outer(t, s)) @ w
    assert np.max(np.abs(approx * t**beta - 1.0)) <= tol
    # Measured N_exp (delta=0.01, t_end=1000, beta 0.2/0.6/0.9): 48/48/56 at 1e-6, 72/80/88 at 1e-10
    assert len(s) <= 100


def test_soe_kernel_hands_out_copies_of_what_it_keeps():
    """The nodes are kept for the process: a caller that changes its arrays changes no one
    else's."""
    s, w = soe_kernel(0.6, 0.01, 100.0, 1e-8)
    s_again, w_again = s.copy(), w.copy()
    s[:], w[:] = -1.0, -1.0
    s_third, w_third = soe_kernel(0.6, 0.01, 100.0, 1e-8)
    np.testing.assert_array_equal(s_third, s_again)
    np.testing.assert_array_equal(w_third, w_again)


@pytest.mark.parametrize("scheme", ["l1", "l21sigma"])
def test_memory_of_fast_is_independent_of_length(scheme):
    def memory(kind, n):
        h = make_history(kind, 0.5, 0.0, [0.0, 1.0], t_end=20.0, dt_min=0.01, scheme=scheme)
        for k in range(1, n + 1):
            h.append(0.01 * k, [np.sin(0.01 * k), 1.0])
        return h.memory_floats

    assert memory("fast", 100) == memory("fast", 1500)
    assert memory("full", 1500) >= 10 * memory("full", 100)


@pytest.mark.parametrize("alpha", [0.3, 0.8])
@pytest.mark.parametrize("kind", ["full", "fast"])
def test_jump_contributes_caputo_derivative_of_a_step(kind, alpha):
    """A step of height du at t_j has Caputo derivative du (t - t_j)^-alpha / Gamma(1-alpha)."""
    dt, t_jump, du = 0.05, 1.0, 2.5
    h = make_history(kind, alpha, 0.0, [1.0], t_end=20.0, dt_min=dt, tol=1e-10)
    h.append(t_jump, [1.0])  # constant before the jump: no contribution
    h.append(t_jump, [1.0 + du])
    t = t_jump + np.array([1e-3, 0.02, 0.05])
    exact = du * (t - t_jump) ** -alpha / math.gamma(1 - alpha)
    np.testing.assert_allclose(h.history_term(t)[:, 0], exact, rtol=1e-13)
    for k in range(1, 300):  # constant afterwards; the jump ages into the SOE accumulators
        h.append(t_jump + k * dt, [1.0 + du])
    t = h.t_last + np.array([0.01, dt])
    exact = du * (t - t_jump) ** -alpha / math.gamma(1 - alpha)
    np.testing.assert_allclose(h.history_term(t)[:, 0], exact, rtol=1e-9)


@pytest.mark.parametrize("kind", ["full", "fast"])
def test_mixed_orders_first_component_is_backward_difference(kind):
    t = graded_mesh(2.0, 200, 1.5)
    u = _signal(t)
    h = make_history(kind, [1.0, 0.5], t[0], u[0], t_end=2.0, dt_min=1e-3, tol=1e-10)
    assert h.history_term(t[1])[0] == 0.0
    got = march_relation(h, t, u)
    np.testing.assert_allclose(got[:, 0], np.diff(u[:, 0]) / np.diff(t), rtol=1e-13)
    expected = caputo_l1(u[:, 1], t, 0.5)
    np.testing.assert_allclose(got[:, 1], expected, rtol=0, atol=1e-9 * np.max(np.abs(expected)))


def test_kind_choice_and_validation():
    assert default_history_kind(100) == "full"
    assert default_history_kind(100_000) == "fast"
    with pytest.raises(ValueError, match="kind"):
        make_history("slow", 0.5, 0.0, [0.0], t_end=1.0, dt_min=0.1)
    with pytest.raises(ValueError, match="1.5"):
        FullHistory([0.5, 1.5], 0.0, [0.0, 0.0])
    with pytest.raises(ValueError, match="one order per component"):
        FullHistory([0.5, 0.5, 0.5], 0.0, [0.0, 0.0])
    h = FastHistory(0.5, 0.0, [0.0], t_end=1.0, dt_min=0.1)
    h.append(0.1, [1.0])
    with pytest.raises(ValueError, match="decrease"):
        h.append(0.05, [1.0])
    with pytest.raises(ValueError, match="exceed"):
        h.history_term(0.1)
    with pytest.raises(ValueError, match="t_end"):
        h.history_term(1.5)


def test_stage_modes_sum_the_decayed_modes_as_the_exponentials_do():
    """rules.stage_modes (the sum-of-exponentials memory at a split-PINN step's points: slow
    modes as a Taylor series on new step lengths, kept decays on repeated ones) against the
    direct sum Σ_j acc_j·exp(−s_j (t_last − t_ref + σ·x_q)), over rates from 1e-4 to 1e3 per
    ms, on new, repeated and again new lengths: within 4e-15 of the largest accumulator
    (measured 1.5e-15)."""
    from splitpinn.fractional import rules

    rng = np.random.default_rng(0)
    n, modes, points = 2, 40, 30
    s = np.exp(rng.uniform(math.log(1e-4), math.log(1e3), (n, modes)))
    acc = rng.normal(size=(n, modes))
    taus = np.sort(rng.uniform(0.0, 1.0, points))
    cache = (None, None, None, np.empty((n, modes, points)), None, None, np.full(3, np.nan),
             np.empty((n, modes)), np.empty(rules.SLOW_TERMS))
    H = np.empty((n, points))
    for t_last, t_ref, sigma, h in [(10.0, 9.5, 0.9, 0.01), (10.01, 9.5, 0.9, 0.01),
                                    (10.02, 9.5, 0.9, 0.01), (10.03, 9.6, 0.8, 0.3),
                                    (10.33, 9.6, 0.8, 0.3)]:
        rules.stage_modes(taus * h, sigma, np.array([t_last, t_ref]), acc, s, cache, H)
        exact = np.einsum("ij,ijq->iq", acc, np.exp(-s[:, :, None] * (
            t_last - t_ref + sigma * h * taus[None, None, :])))
        assert np.max(np.abs(H - exact)) <= 4e-15 * np.max(np.abs(acc)), (t_last, h)
