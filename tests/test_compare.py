"""compare(): metrics against the reference, metrics.json, figures and the command line."""

import json
import math

import numpy as np
import pytest

from splitpinn import Solution, cli
from splitpinn.analysis.compare import (
    Comparison,
    compare,
    parse_variant,
    split_methods,
    variant_key,
    write_comparison,
)
from splitpinn.analysis.metrics import match_spikes, solution_metrics
from splitpinn.errors import ModelError

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
        setup = m.pop("setup")
        assert setup["method"] == method and setup["dt"] == 0.05
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


@pytest.mark.parametrize("methods", [["reference"], [], ("split-pinn",)])
def test_compare_needs_two_methods(methods):
    with pytest.raises(ModelError, match="at least two methods, the reference first"):
        compare("lif", methods, 10.0)


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


# -- method variants -------------------------------------------------------------------------


def test_parse_variants():
    assert parse_variant("reference") == ("reference", {})
    assert parse_variant(" reference[integrator=adams, dt=0.0025] ") == \
        ("reference", {"integrator": "adams", "dt": 0.0025})
    assert parse_variant("split-pinn[seed=3,fixed_step=true,rtol=1e-8]") == \
        ("split-pinn", {"seed": 3, "fixed_step": True, "rtol": 1e-8})
    assert split_methods("reference,reference[integrator=adams,dt=0.0025],split-pinn") == \
        ["reference", "reference[integrator=adams,dt=0.0025]", "split-pinn"]
    assert variant_key("reference", {"integrator": "adams", "dt": 0.0025}) == \
        "reference[integrator=adams,dt=0.0025]"
    assert variant_key("split-pinn", {}) == "split-pinn"


@pytest.mark.parametrize("spec, message", [
    ("reference[integrator]", r"'integrator' is not key=value"),
    ("reference[dt=1,dt=2]", r"'dt' given twice"),
    ("reference[dt=1", r"is not NAME or NAME\[key=value"),
])
def test_malformed_variants_name_the_problem(spec, message):
    with pytest.raises(ModelError, match=message):
        parse_variant(spec)


def test_variants_are_keyed_by_their_text_and_checked_before_solving():
    c = compare("lif", ["reference", ("reference", {"integrator": "RK45"}),
                        "reference[dt=0.025]"], 20.0)
    assert list(c.metrics) == ["reference", "reference[integrator=RK45]", "reference[dt=0.025]"]
    assert c.solutions["reference[integrator=RK45]"].meta["solver"]["integrator"] == "RK45"
    fine = c.solutions["reference[dt=0.025]"]
    assert fine.t[1] == pytest.approx(0.025) and c.solutions["reference"].t[1] == 0.05
    # compared on the coarser grid, which the finer one refines: both solve the same problem
    assert c.metrics["reference[dt=0.025]"]["max_abs"]["V"] < 1e-7
    with pytest.raises(ModelError, match=r"unknown option 'bogus' for method 'reference'"):
        compare("lif", ["reference", "split-pinn", "reference[bogus=1]"], 20.0)
    with pytest.raises(ModelError, match=r"'reference' given twice"):
        compare("lif", ["reference", "reference"], 20.0)
    with pytest.raises(ModelError, match=r"compare solves one neuron: I must be a single value"):
        compare("lif", ["reference", "split-pinn"], 20.0, parameters={"I": [1.0, 2.0]})


def test_default_grid_is_shared_by_every_method():
    """No dt: one default output grid per model for every method (frac-LIF: 0.01 ms)."""
    c = compare("frac-lif", ["reference", "split-pinn"], 0.5)
    assert np.array_equal(c.solutions["reference"].t, c.solutions["split-pinn"].t)
    assert c.solutions["reference"].t[1] == pytest.approx(0.01)


def test_frac_lif_against_an_independent_adams_reference():
    """split-PINN marches the L2-1σ scheme of the default reference: against it the error is
    round-off.  Against Adams at dt/4 it is the L2-1σ discretisation error, far from
    round-off; the summary names the reference (Adams, its dt) and the L2-1σ reference (its
    integrator and dt)."""
    l21 = "reference[integrator=l2-1sigma]"
    methods = ["reference[integrator=adams,dt=0.005]", l21, "split-pinn"]
    c = compare("frac-lif", methods, 15.0, 0.02)
    assert c.reference == methods[0]
    rel = {k: m["rel_l2"]["V"] for k, m in c.metrics.items()}
    assert rel["split-pinn"] > 1e-8 and rel[l21] > 1e-8  # measured 1.7e-7; round-off 1e-13
    assert rel["split-pinn"] == pytest.approx(rel[l21], rel=1e-3)  # the same scheme
    summary = c.summary()
    assert "errors against the first method, reference[integrator=adams,dt=0.005] " \
           "(dt 0.005 ms, integrator adams" in summary
    line = next(x for x in summary.splitlines() if x.startswith(l21 + " "))
    assert "dt 0.02 ms, integrator l2-1sigma" in line
    assert "warning" not in summary  # the reference is independent of split-PINN's scheme
    # with the L2-1σ reference first, split-PINN shares its discretisation: a warning says so
    same = Comparison("frac-lif", l21, {k: c.solutions[k] for k in methods[1:]},
                      {k: solution_metrics(c.solutions[l21], c.solutions[k])
                       for k in methods[1:]})
    assert same.metrics["split-pinn"]["rel_l2"]["V"] < 1e-9
    assert same.warnings() == [
        "warning: split-pinn shares the reference's discretisation (l2-1sigma, step 0.02 ms): "
        "its error is agreement with the same scheme, not error against the true solution; add "
        "an independent reference, e.g. reference[integrator=adams,dt=<dt/4>], first"]
    assert same.warnings()[0] in same.summary()


def test_cli_compare_variants(tmp_path, capsys):
    out = tmp_path / "lif"
    status = cli.main(["compare", "lif", "--methods", "reference,reference[integrator=RK45]",
                       "--t-end", "20", "--out", str(out), "--quiet"])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    doc = json.loads((out / "metrics.json").read_text())
    assert list(doc["methods"]) == ["reference", "reference[integrator=RK45]"]
    assert doc["methods"]["reference[integrator=RK45]"]["setup"]["integrator"] == "RK45"
    assert "errors against the first method, reference (dt 0.05 ms" in captured.out
    assert "reference reference" not in captured.out  # the wording of issue 18
    status = cli.main(["compare", "lif", "--methods", "reference,reference[nope=1]",
                       "--t-end", "20", "--out", str(tmp_path / "never"), "--quiet"])
    err = capsys.readouterr().err
    assert status == 2 and "unknown option 'nope' for method 'reference'" in err
    assert not (tmp_path / "never").exists()
