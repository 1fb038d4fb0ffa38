"""Refractoriness as Brian2 defines it, against closed forms and Brian2 itself."""

import numpy as np
import pytest
from exact import mittag_leffler
from scipy.optimize import brentq

import splitpinn

FRAC_LIF = splitpinn.models.get("frac-lif").parameters  # tau 20, R 40, V_rest = V_reset -70


# -- a solve that ends just after a refractory end --------------------------------------------
@pytest.mark.parametrize("method", ["reference", "split-pinn"])
@pytest.mark.parametrize("t_end, dt", [(39.97, None), (40.0, 0.04)])
def test_t_end_just_after_a_refractory_end(method, t_end, dt):
    """frac-LIF (α = 0.6, R·I = 60 mV) fires once, at the Mittag-Leffler time T (V − V_rest
    = R·I (1 − E_α(−t^α/τ)) from rest), and is held at V_reset until T + t_ref = 39.967 ms;
    a t_end 3 µs (or 33 µs) later left less than one step for the steps graded after that
    onset ("need 0 < dt <= span", both methods).  The solve on [0, t_end] is the start of
    a longer one."""
    alpha, drive = 0.6, 1.5 * FRAC_LIF["R"]
    target = 1 - (FRAC_LIF["V_th"] - FRAC_LIF["V_rest"]) / drive
    first = brentq(lambda t: mittag_leffler(alpha, -t**alpha / FRAC_LIF["tau"]) - target,
                   1.0, 60.0, xtol=1e-13)
    params = {"alpha": alpha, "I": 1.5}
    short = splitpinn.solve("frac-lif", method, t_end, dt, parameters=params)
    longer = splitpinn.solve("frac-lif", method, t_end + 1.0, dt, parameters=params)
    step = dt or 0.01
    np.testing.assert_allclose(short.spike_times, [first], rtol=0, atol=0.02 * step**2)
    assert first + FRAC_LIF["t_ref"] < t_end
    np.testing.assert_allclose(short.spike_times, longer.spike_times, rtol=0, atol=1e-8)
    at = int(np.searchsorted(longer.t, t_end - 1e-9))
    assert longer.t[at] == pytest.approx(t_end, abs=1e-12)
    assert FRAC_LIF["V_reset"] < short["V"][-1] < FRAC_LIF["V_th"]  # released, rising
    assert short["V"][-1] == pytest.approx(longer["V"][at], abs=1e-5)
