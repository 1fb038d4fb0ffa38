"""ARSLIF population (Wu et al., RBA-FE): thresholds coupled through the population rate drive
the mean rate to the rate at which they stop moving.

The equilibrium, from the model's equations.  With ``population_coupling`` every spike adds
(α + β)·1 ms/(τ_adapt N) to every V_th, so between and across spikes

    τ_adapt dV_th,i/dt = (α + β) r(t) − α f − β f_adapt,i,   r = (1/N) Σ_j Σ_k δ(t − t_jk)·1 ms.

Averaged over i: τ_adapt d⟨V_th⟩/dt = (α + β) r − α f − β ⟨f_adapt⟩, zero at
r = (α f + β ⟨f_adapt⟩)/(α + β).  That is the authors' equilibrium, where f_adapt is one
population mean and all thresholds move together.  Here f_adapt is each neuron's own, so
V_th,i − V_th,j drifts at β(f_adapt,j − f_adapt,i)/τ_adapt and ⟨V_th⟩ cannot stop while
active and silent neurons coexist.  Only the active neurons (|R I| ≥ V_th) fire, and their
thresholds, all with f_adapt = f_active, stop at

    r* = (α f + β f_active)/(α + β),

while the silent ones' keep rising at β(f_active − f_rest)/τ_adapt and stay silent.  The test
checks that the rate goes to r*, not to the ⟨f_adapt⟩ form (half the neurons are silent, so the
two differ by β(f_active − f_rest)/2 = 0.012 spikes/ms).

Scale: a threshold moves by at most (α + β)|r − r*|/τ_adapt ≈ 1e-4 per ms, so with the published
τ_adapt = 1000 ms the inputs and thresholds are ~0.02 to settle within 1000 ms.  The targets
are lowered (f 0.03, f_active 0.06, f_rest 0: r* = 0.042 spikes/ms) to keep the reference
solve to ~1000 spikes per population.
"""

import numpy as np
import pytest
from scipy.optimize import brentq

import splitpinn
from splitpinn.models.arslif import arslif, population_coupling

N_SILENT, N_ACTIVE = 10, 10
N = N_SILENT + N_ACTIVE
I_SILENT = np.linspace(0.0, 0.002, N_SILENT)
I_ACTIVE = np.linspace(0.015, 0.025, N_ACTIVE)
PARAMETERS = {"I": np.concatenate([I_SILENT, I_ACTIVE]), "f": 0.03, "f_active": 0.06,
              "f_rest": 0.0}
P = {**arslif(own_rate=False).parameters, **PARAMETERS}
ALPHA, BETA, TAU, TAU_MEM = P["a_err"], P["b_err"], P["tau_adapt"], P["tau_mem"]
R_STAR = (ALPHA * P["f"] + BETA * P["f_active"]) / (ALPHA + BETA)
R_MEAN_FORM = (ALPHA * P["f"] + BETA * (P["f_active"] + P["f_rest"]) / 2) / (ALPHA + BETA)
T_END, T_MID = 1000.0, 400.0
TIMES = np.array([0.0, 100.0, T_MID, T_END])
#: Initial V_th of an active neuron as a fraction of its input: 0.97 fires slowly (rate below
#: r*), 0.4 fast (above).  Silent neurons start at 0.01, above their inputs.
CASES = {"below": 0.97, "above": 0.4}


def lif_rates(inputs, thresholds):
    """Closed-form rates (spikes/ms) of LIFs reset to 0: 1/(τ_mem ln(I/(I − θ))), and their
    derivatives in θ, −r² τ_mem/(I − θ)."""
    r = 1.0 / (TAU_MEM * np.log(inputs / (inputs - thresholds)))
    return r, -r**2 * TAU_MEM / (inputs - thresholds)


def window_rate(spike_times, start, stop):
    """Population rate (spikes/ms per neuron) on [start, stop) from each neuron's first and last
    spike in it, (k − 1)/(t_k − t_1): free of the ±1 spike of counting at the window's edges."""
    total = 0.0
    for times in spike_times:
        inside = times[(times >= start) & (times < stop)]
        if inside.size >= 2:
            total += (inside.size - 1) / (inside[-1] - inside[0])
    return total / len(spike_times)


@pytest.fixture(scope="module", params=list(CASES))
def population(request):
    theta0 = np.concatenate([np.full(N_SILENT, 0.01), CASES[request.param] * I_ACTIVE])
    batch = splitpinn.solve(arslif(own_rate=False), "reference", T_END, t_eval=TIMES,
                            parameters=PARAMETERS, initial={"V_th": theta0},
                            coupling=population_coupling(N, PARAMETERS))
    v_th = np.array([sol["V_th"] for sol in batch])  # (N, len(TIMES))
    return request.param, batch.spike_times, v_th


def test_thresholds_move_by_the_spikes_and_the_drift(population):
    """Integrating the equation above: V_th,i(T) − V_th,i(0) = ((α + β) S(T)/N
    − (α f + β f_adapt,i) T)/τ_adapt, with S(T) the population's spike count.  It checks the
    coupling weights and their units against the model (solver tolerance)."""
    _, spikes, v_th = population
    count = sum(times.size for times in spikes)
    assert count > 500
    f_adapt = np.repeat([P["f_rest"], P["f_active"]], [N_SILENT, N_ACTIVE])
    expected = ((ALPHA + BETA) * count / N - (ALPHA * P["f"] + BETA * f_adapt) * T_END) / TAU
    np.testing.assert_allclose(v_th[:, -1] - v_th[:, 0], expected, rtol=0, atol=1e-9)
    assert np.all(v_th[:N_SILENT, -1] > I_SILENT)  # the silent neurons stayed silent
    assert all(times.size == 0 for times in spikes[:N_SILENT])


def test_threshold_moves_towards_the_target_rate(population):
    """Rate below r*: the active thresholds fall; above: they rise."""
    case, spikes, v_th = population
    first = window_rate(spikes, 0.0, 100.0)
    change = v_th[N_SILENT:, 1] - v_th[N_SILENT:, 0]
    if case == "below":
        assert first < 0.8 * R_STAR
        assert np.all(change < 0)
    else:
        assert first > 1.5 * R_STAR
        assert np.all(change > 0)


def test_mean_rate_settles_at_the_active_equilibrium(population):
    """The distance |rate − r*| shrinks window by window and ends within a bound from the
    averaged dynamics.  Active thresholds move together, θ_i = θ_i(0) + Δ, and with θ slow
    against the interspike intervals τ_adapt dΔ/dt = (α + β)(r̄(Δ) − r*), r̄ the mean of the
    closed-form rates.  r̄ is decreasing, so from the measured Δ(T_MID) the distance falls at
    least like exp(−(α + β) m t/τ_adapt) and |r̄ − r*| ≤ M |Δ − Δ*|, where m and M are the
    smallest and largest |r̄'| between Δ(T_MID) and Δ*."""
    _, spikes, v_th = population
    windows = [(0.0, 100.0), (100.0, T_MID), (T_MID, 800.0), (800.0, T_END)]
    distance = [abs(window_rate(spikes, a, b) - R_STAR) for a, b in windows]
    assert np.all(np.diff(distance) < 0)

    theta0 = v_th[N_SILENT:, 0]

    def mean_rate(delta):
        rates, slopes = lif_rates(I_ACTIVE, theta0 + delta)
        return rates.sum() / N, slopes.sum() / N

    delta_star = brentq(lambda d: mean_rate(d)[0] - R_STAR, -0.99 * theta0.min(),
                        (I_ACTIVE - theta0).min() * (1 - 1e-9))
    delta_mid = float(np.mean(v_th[N_SILENT:, 2] - theta0))
    slopes = np.abs([mean_rate(d)[1] for d in np.linspace(delta_mid, delta_star, 101)])
    bound = slopes.max() * abs(delta_mid - delta_star) * np.exp(
        -(ALPHA + BETA) * slopes.min() * (windows[-1][0] - T_MID) / TAU)
    assert distance[-1] <= bound, (distance, bound)
    assert bound < abs(R_MEAN_FORM - R_STAR) / 2  # and the test tells r* from the mean form
