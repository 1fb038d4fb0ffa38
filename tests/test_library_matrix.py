"""Every library model (and its presets where they are cheap) by every method, at the model's
and the method's defaults, over a short run that holds spikes: split-PINN must agree with the
reference.

The reference is the judge, not a round trip: for integer order scipy's DOP853 at
rtol = atol = 1e-10 (the reference's defaults), which shares nothing with split-PINN but the
model's right-hand side and the marching loop's event handling; for fractional order the L2-1σ
reference at the same dt.  Two second-order discretisations of one Caputo problem differ by
their errors, so the fractional tolerances below are those errors' size (the accuracy itself
is judged against converged solutions in tests/test_fractional_split_order.py).

Agreement means: equal spike counts (at least the number listed, so the run holds spikes),
matched spike times within ``SPIKE_TOL_MS``, and a relative L2 error of every state on the
output grid within ``TRACE_TOL``: ‖split − ref‖ / max(‖ref‖, √N) (an RMS floor of one unit:
ILIF's spike memory M stays at 1e-14), leaving out the grid points between two matched spike
times, where one solution is already reset and the other not yet.

vanilla-pinn (the DeepXDE baseline over the whole interval) refuses, with a ModelError naming
the reason, the models it cannot represent (reset events, Caputo orders); on the three it
takes (hh, fhn, morris-lecar) it is run at smoke level only (a few Adam iterations: the exact
initial condition and finite states).  It is slow (minutes at its 5000 default iterations) and
known to miss spiking dynamics; its accuracy is measured in tests/test_baselines.py.

Measured with numba's cache warm: 46 s in all, 18 s without the slow cases (the other
frac-izhikevich presets, fo-hh's three, AdEx's second spike); 74 s in all while other tests
shared the two cores.  A cold cache first compiles the kernels of each model whose composed
step is compiled (seconds per model).
"""

from dataclasses import dataclass

import numpy as np
import pytest

import splitpinn
from splitpinn import ModelError, models

#: By "fractional": spike times (ms) and traces.  Integer order: the issue's 1e-4 ms (measured
#: worst 3.2e-6 ms, 1.6e-6); fractional: below the second-order errors at the default dt 0.01
#: (measured worst 3.6e-4 ms, 2.6e-4).  Each case's figures are in the test's docstring.
SPIKE_TOL_MS = {False: 1e-4, True: 1e-3}
TRACE_TOL = {False: 1e-4, True: 1e-3}


@dataclass(frozen=True)
class Case:
    model: str
    preset: str | None
    t_end: float  # ms
    spikes: int  # at least, by the reference
    slow: bool = False

    @property
    def id(self) -> str:
        name = self.model if self.preset is None else f"{self.model}-{self.preset}"
        return name if not self.slow or self.preset else f"{name}-{self.t_end:g}ms"


IZHIKEVICH = ["RS", "IB", "CH", "FS", "LTS", "TC", "RZ"]
CASES = [
    Case("lif", None, 20.0, 1),
    *[Case("izhikevich", p, 10.0, 1) for p in IZHIKEVICH],
    Case("hh", None, 20.0, 2),
    Case("fhn", None, 10.0, 1),
    Case("morris-lecar", None, 30.0, 1),
    Case("linear-lif", None, 5.0, 5),
    Case("ilif", None, 8.0, 3),
    Case("da-lif", None, 5.0, 3),
    Case("arslif", None, 25.0, 2),
    Case("adex", None, 20.0, 1),  # the upswing to V_peak = 0 mV: steps down to ~1e-11 ms
    Case("adex", None, 45.0, 2, slow=True),  # the second spike after the w += b jump
    Case("frac-lif", None, 10.0, 1),
    Case("frac-izhikevich", "RS", 4.0, 1),  # two spikes in 30 ms: tests/test_fractional_split.py
    # the second spike of each preset follows its own reset (c, d) and 0.5 ms clamp
    *[Case("frac-izhikevich", p, t_end, 2, slow=True) for p, t_end in
      [("IB", 6.0), ("CH", 5.0), ("FS", 7.5), ("LTS", 6.0), ("TC", 5.5), ("RZ", 6.0)]],
    *[Case("fo-hh", p, 12.5, 1, slow=True) for p in ["n", "m", "h"]],  # I on at 10 ms
]


PARAMS = [pytest.param(c, id=c.id, marks=[pytest.mark.slow] if c.slow else []) for c in CASES]


def _solve(case: Case, method: str):
    return splitpinn.solve(case.model, method, case.t_end, preset=case.preset)


def _between_spikes(t: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Grid points at or between the matched spike times of a and b."""
    out = np.zeros(t.shape, bool)
    for x, y in zip(a, b, strict=True):
        out |= (t >= min(x, y) - 1e-12) & (t <= max(x, y) + 1e-12)
    return out


def test_every_library_model_is_in_the_matrix():
    assert {c.model for c in CASES} == set(models.names())


@pytest.mark.parametrize("case", PARAMS)
def test_split_pinn_agrees_with_the_reference(case):
    """Measured (worst spike-time error in ms / worst trace error): lif 3e-9 / 5e-11,
    izhikevich presets <= 1.8e-6 / 1.4e-6 (IB), hh 3.2e-6 / 1.6e-6, fhn 1.1e-7 / 4.6e-8,
    morris-lecar 1.7e-7 / 3e-8, linear-lif 4e-13, ilif 1.7e-7 / 6.3e-8, da-lif 3e-11,
    arslif 3.3e-10 / 7e-11, adex 1.2e-8 / 8e-9 (45 ms: 2.9e-7 / 1.8e-8); fractional (against
    the L2-1σ reference at the same dt): frac-lif 5e-10, frac-izhikevich presets <= 6.9e-5 /
    6.3e-5, fo-hh presets <= 3.6e-4 / 2.6e-4 (m)."""
    ref = _solve(case, "reference")
    split = _solve(case, "split-pinn")
    fractional = min(ref.meta["orders"].values()) < 1
    assert len(ref.spike_times) >= case.spikes, ref.spike_times
    assert len(split.spike_times) == len(ref.spike_times), (split.spike_times, ref.spike_times)
    errors = np.abs(split.spike_times - ref.spike_times)
    assert np.all(errors <= SPIKE_TOL_MS[fractional]), errors
    np.testing.assert_allclose(split.t, ref.t, rtol=0, atol=1e-12)
    keep = ~_between_spikes(ref.t, ref.spike_times, split.spike_times)
    for k, name in enumerate(ref.names):
        r, s = ref.y[k][keep], split.y[k][keep]
        assert np.all(np.isfinite(s)), name
        rel = np.linalg.norm(s - r) / max(np.linalg.norm(r), np.sqrt(r.size))
        assert rel <= TRACE_TOL[fractional], (name, rel)


@pytest.mark.parametrize("name", models.names())
def test_vanilla_pinn_runs_or_refuses_with_the_reason(name):
    model = models.get(name)
    bound = model.bind()
    if bound.fractional or model.events:
        reason = "Caputo orders" if bound.fractional else "reset events"
        with pytest.raises(ModelError, match=reason):
            splitpinn.solve(name, "vanilla-pinn", 1.0, iterations=5)
        return
    sol = splitpinn.solve(name, "vanilla-pinn", 1.0, iterations=20, points=50)
    assert np.all(np.isfinite(sol.y))
    np.testing.assert_allclose(sol.y[:, 0], bound.y0, rtol=1e-12, atol=1e-12)
