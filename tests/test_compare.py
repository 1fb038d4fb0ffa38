"""compare(): metrics against the reference, metrics.json, figures and the command line."""

import json
import math

import numpy as np
import pytest

from splitpinn import Solution, cli
from splitpinn.compare import compare, match_spikes, solution_metrics, write_comparison

T_END = 40.0


@pytest.fixture(scope="module")
def lif_comparison():
    return compare("lif", ["reference", "split-pinn"], T_END)


def _lif_spikes(t_end):
    """Closed-form spike times of the library LIF (V starts at V_rest = V_reset)."""
    tau, r, v_rest, v_reset, v_th, t_ref, current = 10.0, 10.0, -65.0, -65.0, -50.0, 2.0, 2.0
    drive = r * current + v_rest
    period = tau * math.log((drive - v_reset) / (drive - v_th))
    count = math.floor((t_end - period) / (period + t_ref)) + 1
    return period + np.arange(count) * (period + t_ref)


def test_compare_lif_reference_and_split_pinn(lif_comparison):
    c = lif_comparison
    assert c.model == "lif" and c.reference == "reference"
    assert set(c.metrics) == {"reference", "split-pinn"}
    ref, split = c.solutions["reference"], c.solutions["split-pinn"]
    assert np.array_equal(ref.t, split.t)  # one shared grid (split-PINN's default step)
    assert ref.t[1] == pytest.approx(0.05)  # the LIF model's default_dt
    expected = _lif_spikes(T_END)
    assert len(expected) == 2
    np.testing.assert_allclose(ref.spike_times, expected, atol=1e-8)

    m_ref = c.metrics["reference"]
    assert m_ref["rel_l2"] == {"V": 0.0} and m_ref["max_abs"] == {"V": 0.0}
    assert m_ref["max_spike_time_error_ms"] == 0.0
    assert m_ref["spike_count"] == 2

    m = c.metrics["split-pinn"]
    assert m["spike_count"] == 2
    assert m["max_spike_time_error_ms"] < 1e-5
    # the metrics are what they say they are, recomputed here
    diff = split["V"] - ref["V"]
    assert m["rel_l2"]["V"] == pytest.approx(np.linalg.norm(diff) / np.linalg.norm(ref["V"]),
                                             rel=1e-12, abs=1e-300)
    assert m["max_abs"]["V"] == pytest.approx(np.max(np.abs(diff)), rel=1e-12, abs=1e-300)
    assert m["rel_l2"]["V"] < 1e-8
    assert m["max_spike_time_error_ms"] == pytest.approx(
        np.max(np.abs(split.spike_times - ref.spike_times)), rel=1e-12, abs=1e-300)
    for method in ("reference", "split-pinn"):
        assert c.metrics[method]["wall_time_s"] > 0
        assert c.metrics[method]["wall_time_s"] == c.solutions[method].meta["wall_time_s"]
    assert "split-pinn" in c.summary()


def _is_png(path):
    with open(path, "rb") as f:
        return f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_write_comparison_metrics_schema_and_figures(lif_comparison, tmp_path):
    out = tmp_path / "cmp"
    write_comparison(lif_comparison, out)
    doc = json.loads((out / "metrics.json").read_text())
    assert doc["reference"] == "reference"
    assert set(doc["methods"]) == {"reference", "split-pinn"}
    for method, m in doc["methods"].items():
        assert isinstance(m["wall_time_s"], float) and m["wall_time_s"] > 0
        assert set(m["rel_l2"]) == {"V"} and set(m["max_abs"]) == {"V"}
        assert isinstance(m["spike_count"], int)
        assert m["spike_count"] == len(lif_comparison.solutions[method].spike_times)
        assert isinstance(m["max_spike_time_error_ms"], float)
        assert m == lif_comparison.metrics[method]  # JSON floats round-trip exactly
    assert doc["methods"]["split-pinn"]["max_spike_time_error_ms"] < 1e-5
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert pngs == ["error.png", "raster.png", "traces.png"]
    assert all(_is_png(out / name) and (out / name).stat().st_size > 1000 for name in pngs)


# -- command line ---------------------------------------------------------------------------------


def test_cli_compare_lif(tmp_path, capsys):
    out = tmp_path / "lif"
    status = cli.main(["compare", "lif", "--methods", "reference,split-pinn", "--t-end", "30",
                       "--out", str(out), "--quiet"])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    assert captured.err == ""  # --quiet: no progress bars
    doc = json.loads((out / "metrics.json").read_text())
    assert set(doc["methods"]) == {"reference", "split-pinn"}
    split = doc["methods"]["split-pinn"]
    assert split["spike_count"] == len(_lif_spikes(30.0)) == 2
    assert split["max_spike_time_error_ms"] < 1e-5
    assert len(list(out.glob("*.png"))) == 3
    assert "split-pinn" in captured.out


@pytest.mark.parametrize("methods, message", [
    ("reference,bogus", "unknown method 'bogus'"),
    ("reference", "at least two methods"),
    ("split-pinn", "at least two methods"),
    (",", "at least two methods"),
])
def test_cli_compare_bad_methods(tmp_path, capsys, methods, message):
    out = tmp_path / "never"
    status = cli.main(["compare", "lif", "--methods", methods, "--t-end", "30",
                       "--out", str(out), "--quiet"])
    captured = capsys.readouterr()
    assert status == 2
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0]
    assert "Traceback" not in captured.err
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_cli_compare_unknown_model_creates_nothing(tmp_path, capsys):
    out = tmp_path / "never"
    status = cli.main(["compare", "nosuch", "--methods", "reference,split-pinn", "--t-end", "5",
                       "--out", str(out), "--quiet"])
    assert status == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert not out.exists()


# -- metrics on hand-made solutions -------------------------------------------------------------


def test_match_spikes_nearest_neighbour():
    ref = np.array([1.0, 5.0, 9.0])
    np.testing.assert_allclose(match_spikes(ref, np.array([9.05, 1.1, 4.8])), [0.1, 0.2, 0.05])
    np.testing.assert_allclose(match_spikes(ref, ref), [0.0, 0.0, 0.0])
    # one extra spike in the other train does not spoil the matches
    np.testing.assert_allclose(match_spikes(ref, np.array([1.0, 3.0, 5.5, 9.0])),
                               [0.0, 0.5, 0.0])
    assert match_spikes(ref, np.array([])).size == 0
    assert match_spikes(np.array([]), ref).size == 0


def _solution(t, v, spikes, wall=0.5):
    return Solution(np.asarray(t, float), np.asarray([v], float), ["V"], np.asarray(spikes, float),
                    {"wall_time_s": wall})


def test_solution_metrics_on_hand_made_traces():
    ref = _solution([0, 1, 2, 3], [1, 2, 3, 4], [1.5, 2.5])
    other = _solution([0, 1, 2, 3], [1, 2, 3, 5], [1.6, 2.3], wall=2.0)
    m = solution_metrics(ref, other)
    assert m["rel_l2"]["V"] == pytest.approx(1 / math.sqrt(30))
    assert m["max_abs"]["V"] == 1.0
    assert m["spike_count"] == 2
    assert m["max_spike_time_error_ms"] == pytest.approx(0.2)
    assert m["wall_time_s"] == 2.0


def test_solution_metrics_interpolates_a_finer_grid_and_flags_count_mismatch():
    ref = _solution([0, 1, 2], [0.0, 1.0, 4.0], [0.5])
    t = np.linspace(0, 2, 9)
    other = _solution(t, t**2, [0.5, 1.7])  # on the reference grid equal to it
    m = solution_metrics(ref, other)
    assert m["rel_l2"]["V"] == pytest.approx(0.0, abs=1e-15)
    assert m["spike_count"] == 2
    assert m["max_spike_time_error_ms"] is None  # counts differ: no matched maximum
