"""Onset latency: the LIF predictor recovers a LIF's own τ and R exactly, the wave packet's
moments, and HH's latency table."""

import matplotlib
import numpy as np
import pytest
from scipy.integrate import quad

from splitpinn import ModelError
from splitpinn.analysis.latency import WavePacket, fit_predictors, latency, lif_latency
from splitpinn.cli import main

matplotlib.use("Agg")

COLUMNS = ["I", "latency_ms", "lif_ms", "lif_rel_err", "sa_lif_ms", "sa_lif_rel_err",
           "qi_lif_ms", "qi_lif_rel_err"]


def test_lif_predictor_recovers_the_lif():
    result = latency("lif", [1.4, 1.6, 2.0, 3.0, 5.0], "reference", t_end=40.0, t_on=5.0,
                     theta=15.0, jobs=1)
    assert np.isnan(result.latency_ms[0])  # R I = 14 mV < θ: no spike
    np.testing.assert_allclose(result.latency_ms[1:], lif_latency(result.I[1:], 10, 10, 15),
                               rtol=1e-8)
    fitted = result.predictors["lif"].parameters
    assert fitted["tau"] == pytest.approx(10.0, rel=1e-6)
    assert fitted["R"] == pytest.approx(10.0, rel=1e-6)
    for name in ("lif", "sa_lif", "qi_lif"):
        assert np.nanmax(result.relative_error(name)) < 1e-5


def test_wave_packet_density_and_expected_latency():
    packet = WavePacket(lambda I: 3.0 / I, a=2.0, b=0.5)
    for I in (1.0, 4.0):
        mass = quad(packet.density, 0, np.inf, args=(I,))[0]
        mean = quad(lambda t, I=I: t * packet.density(t, I), 0, np.inf)[0]
        assert mass == pytest.approx(1.0, rel=1e-8)
        assert packet.expected(I) == pytest.approx(mean, rel=1e-8)
    assert packet.density(-1.0, 1.0) == 0.0


def test_fit_needs_three_firing_amplitudes():
    with pytest.raises(ModelError, match="at least 3"):
        fit_predictors([1.0, 2.0, 3.0], [np.nan, 2.0, 1.0])


@pytest.mark.slow
def test_hh_latency_table(tmp_path, capsys):
    out = tmp_path / "lat"
    assert main(["latency", "hh", "--vary", "I=2,2.5,4,8,15", "--t-end", "25", "--jobs", "2",
                 "--quiet", "--out", str(out)]) == 0
    import pandas as pd

    table = pd.read_csv(out / "latency.csv")
    assert list(table.columns) == COLUMNS
    assert np.isnan(table["latency_ms"][0])  # below rheobase (≈ 2.23 from rest)
    firing = table["latency_ms"][1:].to_numpy()
    assert np.all(np.diff(firing) < 0) and np.all(firing > 0)
    import json

    fitted = json.loads((out / "latency.json").read_text())["predictors"]
    assert set(fitted) == {"lif", "sa_lif", "qi_lif"}
    assert all(np.isfinite(v) for p in fitted.values() for v in p.values())
    for name in ("lif", "sa_lif", "qi_lif"):
        errors = table[f"{name}_rel_err"][1:]
        expected = np.abs(table[f"{name}_ms"][1:] - firing) / firing
        np.testing.assert_allclose(errors, expected, rtol=1e-12)
    assert (out / "latency.png").stat().st_size > 0
