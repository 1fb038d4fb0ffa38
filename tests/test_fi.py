"""F–I curves: LIF against its closed form, linear LIF against the ReLU, the LIF's ReLU
asymptote against the series expansion, the linear LIF's floor, and HH's rheobase."""

import matplotlib
import numpy as np
import pytest

import splitpinn
from splitpinn.analysis.fi import fi_curve, lif_rate, lif_relu, linear_lif_rate, sustained_rate
from splitpinn.cli import main

matplotlib.use("Agg")


def test_lif_rate_matches_closed_form_within_0p1_percent():
    curve = fi_curve("lif", [1.6, 2.5, 5.0], "reference", t_end=1000.0, jobs=1)
    expected = 1000 / (2.0 + 10 * np.log(10 * curve.I / (10 * curve.I - 15)))
    np.testing.assert_allclose(curve.closed_form_hz, expected, rtol=1e-12)
    np.testing.assert_allclose(curve.rate_hz, expected, rtol=1e-3)
    assert np.all(curve.rate_hz > 30)


def test_linear_lif_is_a_relu():
    parameters = {"C": 2.0, "lambda": 0.5, "theta": 1.5}
    curve = fi_curve("linear-lif", [-1.0, 0.0, 0.5, 1.0, 2.0, 3.5], "reference", t_end=60.0,
                     parameters=parameters, jobs=1)
    relu = 1000 * np.maximum(0.0, curve.I - 0.5) / (2.0 * 1.5)
    np.testing.assert_allclose(curve.closed_form_hz, relu, rtol=1e-12)
    np.testing.assert_allclose(curve.rate_hz, relu, rtol=1e-8)
    assert curve.rate_hz[2] == 0 and curve.rate_hz[-1] > 0


def test_linear_lif_with_refractory_period():
    np.testing.assert_allclose(linear_lif_rate([0.5, 3.0], 1.0, 1.0, 1.0, 2.0),
                               [0.0, 1000 / (2.0 + 0.5)])


def test_linear_lif_floor_holds_v_at_v_min():
    sol = splitpinn.solve("linear-lif", "reference", 3.0, 0.05,
                          parameters={"lambda": 1.0, "I": 0.5, "V_min": -0.2},
                          initial={"V": 0.3})
    expected = np.maximum(0.3 - 0.5 * sol.t, -0.2)  # down at I − λ, then held at the floor
    np.testing.assert_allclose(sol["V"], expected, atol=1e-8)
    assert len(sol.spike_times) == 0


def test_lif_relu_asymptote_and_its_error():
    tau, R = 10.0, 10.0
    x = np.array([10.0, 100.0, 1000.0])  # R I / θ
    I = x * 15.0 / R
    exact = lif_rate(I, tau, R, -65.0, -65.0, -50.0, 0.0)
    relu = lif_relu(I, tau, R, -65.0, -50.0)
    np.testing.assert_allclose(relu, 1000 * (x - 0.5) / tau)
    # closed form − ReLU = −1000/(12 τ x) − 1000/(24 τ x²) + O(x⁻³)
    leading = -1000 / (12 * tau * x)
    assert np.all(np.abs((exact - relu) / leading - 1) < 0.6 / x)
    assert np.all(np.abs((exact - relu) / leading - 1) > 0.4 / x)  # the x⁻² term is there
    curve = fi_curve("lif", [2.0, 20.0], "reference", 100.0, parameters={"t_ref": 0.0}, jobs=1)
    np.testing.assert_allclose(curve.asymptote(curve.I), lif_relu(curve.I, tau, R, -65, -50))
    assert fi_curve("lif", [2.0], "reference", 10.0, jobs=1).asymptote is None  # t_ref = 2


def test_sustained_rate_is_zero_when_firing_stops():
    assert sustained_rate([10.0, 25.0, 40.0], 500.0) == 0.0
    assert sustained_rate([10.0, 25.0, 40.0, 55.0], 86.0) == 0.0  # gap 31 > 2 ISIs
    assert sustained_rate([10.0, 30.0, 50.0, 70.0, 90.0], 100.0) == pytest.approx(50.0)


@pytest.mark.slow
def test_hh_rheobase_from_rest():
    curve = fi_curve("hh", [6.2, 6.3, 10.0], "reference", t_end=500.0, jobs=1, rtol=1e-7,
                     atol=1e-7)
    assert curve.rate_hz[0] == 0.0
    assert curve.sweep.table["spike_count"][0] > 0  # transient spikes, then it stops
    assert curve.rate_hz[1] > 40 and curve.rate_hz[1] < curve.rate_hz[2]
    assert curve.rate_hz[2] == pytest.approx(68.0, rel=0.03)
    assert np.isnan(curve.closed_form_hz).all()


def test_cli_writes_fi_csv_and_figure(tmp_path, capsys):
    out = tmp_path / "fi"
    assert main(["fi-curve", "linear-lif", "--vary", "I=-1:2:4", "--t-end", "20", "--jobs", "1",
                 "--quiet", "--out", str(out)]) == 0
    lines = (out / "fi.csv").read_text().splitlines()
    assert lines[0] == "I,rate_hz,closed_form_hz"
    table = np.array([[float(v) for v in line.split(",")] for line in lines[1:]])
    np.testing.assert_allclose(table, [[-1, 0, 0], [0, 0, 0], [1, 1000, 1000], [2, 2000, 2000]],
                               rtol=1e-12)
    assert (out / "fi.png").stat().st_size > 0 and (out / "sweep.csv").exists()
    assert "fi.csv" in capsys.readouterr().out


def test_linear_lif_floor_by_split_pinn():
    """The floor is a switch inside a step: the planner calls the equation nonlinear, and the
    adaptive steps (rtol 1e-8) resolve the kink where V reaches V_min."""
    sol = splitpinn.solve("linear-lif", "split-pinn", 3.0, 0.05,
                          parameters={"lambda": 1.0, "I": 0.5, "V_min": -0.2},
                          initial={"V": 0.3})
    np.testing.assert_allclose(sol["V"], np.maximum(0.3 - 0.5 * sol.t, -0.2), atol=1e-6)
