"""Fitting (``splitpinn.fit``, ``splitpinn fit``): the spike-train losses, recovery of HH
conductances from a trace (clean and noisy), of Izhikevich c, d and of the frac-LIF order α
from spike trains, failing candidates, Ctrl-C, the files, the same fit from local processes
and from a Dask cluster, and bad input (one line, exit 2, no file).  Small populations keep the
file to about a minute; the synthetic data use parameter values away from the defaults."""

import json

import matplotlib
import numpy as np
import pandas as pd
import pytest

import splitpinn
from splitpinn import Model, ModelError, SolverError
from splitpinn.analysis import fit as fitting
from splitpinn.analysis.spike_trains import gamma_factor, gamma_loss, van_rossum_loss
from splitpinn.cli import main

matplotlib.use("Agg")

T_HH = np.round(np.arange(0.0, 50.0 + 1e-9, 0.05), 10)  # 0-50 ms every 0.05 ms
HH_TRUE = {"g_Na": 100.0, "g_K": 30.0}  # defaults 120, 36
HH_FREE = {"g_Na": (70.0, 140.0), "g_K": (20.0, 45.0)}
SMALL = dict(population=10, generations=12)


def blowup() -> Model:
    """dx/dt = p x², x(0) = 1: x = 1/(1 − p t) blows up at t = 1/p, so every p > 1 fails on
    [0, 1] ms."""
    return Model.from_equations("dx/dt = p*x**2 : 1\np : 1/ms (constant)", name="blowup",
                                parameters={"p": 0.3}, initial={"x": 1.0})


def blowup_data(p=0.5):
    t = np.linspace(0.0, 1.0, 21)
    return {"t_ms": t, "x": 1.0 / (1.0 - p * t)}


@pytest.fixture(scope="module")
def hh_trace():
    return splitpinn.solve("hh", "split-pinn", 50.0, t_eval=T_HH, parameters=HH_TRUE)["V"]


def relative_errors(found, truth):
    return {k: abs(found[k] / v - 1) for k, v in truth.items()}


# -- losses -------------------------------------------------------------------------------------
def test_spike_losses_count_missing_extra_and_shifted_spikes():
    data = np.array([10.0, 30.0, 50.0, 70.0])
    assert gamma_factor(data, data, 1.0, 100.0) == pytest.approx(1.0)
    assert gamma_loss(data, data + 0.9, 1.0, 100.0) == 0.0  # within the window
    assert gamma_loss(data, data + 1.1, 1.0, 100.0) > 1.0  # none coincide
    assert gamma_loss(data, data[:3], 1.0, 100.0) > gamma_loss(data, data, 1.0, 100.0)
    assert van_rossum_loss(data, data, 5.0) == 0.0
    assert van_rossum_loss(data, [], 5.0) == pytest.approx(1.0)
    missing, extra = van_rossum_loss(data, data[:3], 5.0), \
        van_rossum_loss(data, np.r_[data, 90.0], 5.0)
    assert 0.2 < missing < 0.3 and 0.2 < extra < 0.3  # about 1/N each
    shifts = [van_rossum_loss(data, data + d, 5.0) for d in (0.1, 0.5, 2.0)]
    assert 0 < shifts[0] < shifts[1] < shifts[2]  # continuous in the spike times


# -- recovery -------------------------------------------------------------------------------------
def test_hh_conductances_from_a_trace_within_1_percent(hh_trace, tmp_path):
    out = tmp_path / "hh"
    result = splitpinn.fit("hh", {"t_ms": T_HH, "V": hh_trace}, HH_FREE, out=out, **SMALL)
    assert max(relative_errors(result.parameters, HH_TRUE).values()) < 0.01
    assert result.loss < 1e-6
    # the files: fit.json by the contract, history per generation, the figure
    document = json.loads((out / "fit.json").read_text())
    assert document["parameters"] == result.parameters and document["status"] == "done"
    assert document["free"] == {k: list(v) for k, v in HH_FREE.items()}
    assert document["target"] == "trace" and document["evaluations"] == result.evaluations
    assert document["wall_time_s"] > 0
    history = pd.read_csv(out / "history.csv")
    assert list(history.columns) == ["generation", "best_loss", "mean_loss"]
    assert history["generation"].tolist() == list(range(len(history)))
    assert np.all(np.diff(history["best_loss"]) <= 0) and len(history) >= 2
    pd.testing.assert_frame_equal(history, result.history, check_dtype=False)
    assert (out / "fit.png").stat().st_size > 0
    assert sorted(p.name for p in out.iterdir()) == ["fit.json", "fit.png", "history.csv"]
    # the best fit's solution reproduces the data at the samples
    assert np.max(np.abs(result.solution.sol(T_HH)[0] - hh_trace)) < 1.0


def test_hh_from_a_noisy_trace_by_the_command_line_within_3_percent(hh_trace, tmp_path,
                                                                    capsys):
    noisy = hh_trace + np.random.default_rng(7).normal(0.0, 1.0, hh_trace.size)  # 1 mV
    data = tmp_path / "trace.csv"
    pd.DataFrame({"t_ms": T_HH, "V": noisy}).to_csv(data, index=False)
    out = tmp_path / "fit"
    assert main(["fit", "hh", "--data", str(data), "--free", "g_Na=70:140",
                 "--free", "g_K=20:45", "--population", "10", "--generations", "12",
                 "--seed", "3", "--out", str(out), "--quiet"]) == 0
    assert "g_Na = " in capsys.readouterr().out
    found = json.loads((out / "fit.json").read_text())["parameters"]
    assert max(relative_errors(found, HH_TRUE).values()) < 0.03


def test_izhikevich_c_d_reproduce_every_spike_within_half_a_millisecond():
    truth = {"c": -55.0, "d": 4.0}  # RS: -65, 8
    spikes = splitpinn.solve("izhikevich", "split-pinn", 500.0, parameters=truth,
                             traces=False).spike_times
    result = splitpinn.fit("izhikevich", {"spike_time_ms": spikes},
                           {"c": (-70.0, -45.0), "d": (1.0, 10.0)}, target="spikes",
                           t_end=500.0, population=10, generations=15, rtol=1e-5, atol=1e-6)
    fitted = splitpinn.solve("izhikevich", "split-pinn", 500.0, parameters=result.parameters,
                             traces=False).spike_times
    assert len(fitted) == len(spikes) >= 10
    assert np.max(np.abs(fitted - spikes)) < 0.5


def test_frac_lif_order_from_its_spike_train_within_0_01():
    spikes = splitpinn.solve("frac-lif", "reference", 60.0, 0.25, parameters={"alpha": 0.7},
                             traces=False).spike_times  # default 0.6
    result = splitpinn.fit("frac-lif", spikes, {"alpha": (0.4, 0.95)}, target="spikes",
                           method="reference", t_end=60.0, population=6, generations=5,
                           dt=0.25)
    assert abs(result.parameters["alpha"] - 0.7) < 0.01
    assert result.history["generation"].iloc[-1] >= 1



def _lif_train(current: float, t_end: float) -> np.ndarray:
    """The library LIF's spike times from rest under I (closed form, t_ref included)."""
    p = splitpinn.models.get("lif").parameters
    v_inf = p["V_rest"] + p["R"] * current
    first = p["tau"] * np.log((v_inf - p["V_rest"]) / (v_inf - p["V_th"]))
    period = p["tau"] * np.log((v_inf - p["V_reset"]) / (v_inf - p["V_th"])) + p["t_ref"]
    return first + np.arange(int((t_end - first) // period) + 1) * period


def test_gamma_metric_fit_makes_every_spike_coincide():
    """``metric="gamma"`` (coincidences within ``window``, 1 ms by default): the LIF's I from
    its closed-form spike train at I = 3 nA over 60 ms.  The loss is zero once every spike
    coincides, so the fit ends anywhere in that set; the closed-form train at the fitted I
    (measured 2.97 nA) has every spike within the window of the data's (0.68 ms at most),
    which the default I = 2 nA (three spikes fewer) does not."""
    data = _lif_train(3.0, 60.0)
    result = splitpinn.fit("lif", {"spike_time_ms": data}, {"I": (2.0, 5.0)},
                           target="spikes", metric="gamma", method="reference", t_end=60.0,
                           population=8, generations=6)
    assert result.meta["metric"] == "gamma" and result.meta["loss"] < 1e-12
    fitted = _lif_train(result.parameters["I"], 60.0)
    assert fitted.size == data.size and np.max(np.abs(fitted - data)) < 1.0
    assert _lif_train(2.0, 60.0).size < data.size


# -- failures, interruption, reproducibility ------------------------------------------------------
def test_a_failing_candidate_scores_inf_and_the_batch_goes_on():
    problem, lo, hi = fitting._problem(blowup(), blowup(), fitting.read_data(blowup_data()),
                                       {"p": (0.2, 1.5)}, "reference", None, 0.0, None, None,
                                       None, None, None, None, None, {})
    X = np.array([[0.5], [1.2], [0.3], [1.4], [0.6]])
    _, losses, failures = fitting.score(problem, np.arange(5), X)
    assert np.isinf(losses[[1, 3]]).all() and np.isfinite(losses[[0, 2, 4]]).all()
    assert losses[0] < 1e-12 and len(failures) == 2


def test_fit_with_failing_candidates_recovers_the_truth():
    result = splitpinn.fit(blowup(), blowup_data(), {"p": (0.2, 1.5)}, method="reference",
                           population=8, generations=10)
    assert abs(result.parameters["p"] - 0.5) < 1e-4
    assert result.meta["failed_evaluations"] > 0
    with pytest.raises(SolverError, match="every candidate of the first generation failed"):
        splitpinn.fit(blowup(), blowup_data(), {"p": (1.1, 1.5)}, method="reference",
                      population=5, generations=2)


def test_same_seed_same_fit_and_ctrl_c_keeps_the_best_so_far(tmp_path, monkeypatch):
    run = dict(method="reference", population=6, generations=4, seed=5, polish=False)
    a = splitpinn.fit(blowup(), blowup_data(), {"p": (0.2, 0.9)}, **run)
    b = splitpinn.fit(blowup(), blowup_data(), {"p": (0.2, 0.9)}, **run)
    assert a.parameters == b.parameters and a.loss == b.loss
    pd.testing.assert_frame_equal(a.history, b.history)

    log = fitting._Search._log

    def interrupt(search, generation, *args):
        log(search, generation, *args)
        if generation == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(fitting._Search, "_log", interrupt)
    out = tmp_path / "stopped"
    with pytest.raises(KeyboardInterrupt):
        splitpinn.fit(blowup(), blowup_data(), {"p": (0.2, 0.9)}, out=out, **run)
    document = json.loads((out / "fit.json").read_text())
    assert document["status"] == "interrupted" and document["parameters"]["p"] > 0
    assert len(pd.read_csv(out / "history.csv")) == 3
    assert sorted(p.name for p in out.iterdir()) == ["fit.json", "history.csv"]


def test_dask_cluster_gives_the_same_fit_as_two_jobs(tmp_path):
    distributed = pytest.importorskip("distributed")
    run = dict(method="reference", population=6, generations=3, seed=11)
    by_jobs = splitpinn.fit(blowup(), blowup_data(), {"p": (0.2, 0.9)}, jobs=2,
                            out=tmp_path / "jobs", **run)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None, host="127.0.0.1") as cluster:
        by_dask = splitpinn.fit(blowup(), blowup_data(), {"p": (0.2, 0.9)},
                                scheduler=cluster.scheduler_address, out=tmp_path / "dask",
                                **run)
    assert by_jobs.parameters == by_dask.parameters and by_jobs.loss == by_dask.loss
    assert by_jobs.evaluations == by_dask.evaluations
    assert (tmp_path / "jobs" / "history.csv").read_text() == \
        (tmp_path / "dask" / "history.csv").read_text()
    single = splitpinn.fit(blowup(), blowup_data(), {"p": (0.2, 0.9)}, **run)
    assert single.parameters["p"] == pytest.approx(by_jobs.parameters["p"], rel=1e-9)


# -- bad input -------------------------------------------------------------------------------------
def test_cli_bad_input_one_line_exit_2_no_file(tmp_path, capsys):
    good = tmp_path / "good.csv"
    pd.DataFrame({"t_ms": [0.0, 0.5, 1.0], "V": [-65.0, -60.0, -64.0]}).to_csv(good, index=False)
    files = {"nocol.csv": "t_ms,U\n0,1\n1,2\n", "backwards.csv": "t_ms,V\n0,1\n2,2\n1,3\n",
             "nan.csv": "t_ms,V\n0,1\nnan,2\n", "text.csv": "t_ms,V\n0,1\n1,x\n",
             "spikes.csv": "spike_time_ms\n5\n10\n", "flat.csv": "t_ms,V\n0,-65\n1,-65\n",
             "one.csv": "t_ms,V\n0,-65\n", "empty.csv": ""}
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    (tmp_path / "latin.csv").write_bytes("t_ms,V\n0,-65 \xb5V\n".encode("latin-1"))
    (tmp_path / "afile").write_text("not a folder")
    out = tmp_path / "out"
    base = ["fit", "hh", "--out", str(out), "--quiet"]
    cases = [["--data", str(tmp_path / "nocol.csv"), "--free", "g_Na=50:150"],
             ["--data", str(tmp_path / "backwards.csv"), "--free", "g_Na=50:150"],
             ["--data", str(tmp_path / "nan.csv"), "--free", "g_Na=50:150"],
             ["--data", str(tmp_path / "text.csv"), "--free", "g_Na=50:150"],
             ["--data", str(tmp_path / "missing.csv"), "--free", "g_Na=50:150"],
             ["--data", str(good), "--free", "g_Na=150:50"],
             ["--data", str(good), "--free", "g_Na=50:inf"],
             ["--data", str(good), "--free", "g_Na=nan:5"],
             ["--data", str(good), "--free", "g_Na=50"],
             ["--data", str(good), "--free", "g_XX=1:2"],
             ["--data", str(good), "--free", "g_Na=50:150", "--set", "g_Na=100"],
             ["--data", str(good), "--free", "g_Na=50:150", "--state", "m"],
             ["--data", str(good), "--free", "g_Na=50:150", "--population", "3"],
             ["--data", str(good), "--free", "g_Na=50:150", "--jobs", "2", "--scheduler",
              "tcp://127.0.0.1:1"],
             ["--data", str(tmp_path / "spikes.csv"), "--target", "spikes",
              "--free", "g_Na=50:150"],
             ["--data", str(good), "--target", "spikes", "--t-end", "20",
              "--free", "g_Na=50:150"],
             *[["--data", str(tmp_path / f), "--free", "g_Na=50:150"]
               for f in ("flat.csv", "one.csv", "empty.csv", "latin.csv", ".")],
             ["--data", str(good), "--free", "g_Na=50:150", "--t-end", "0.5"],  # before 1 ms
             ["--data", str(good), "--free", "g_Na=50:150", "--t0", "0.3"],  # after 0 ms
             ["--data", str(good), "--free", "g_Na=50:150", "--t0", "nan"],
             ["--data", str(good), "--free", "g_Na=50:150", "--seed", "-1"],
             ["--data", str(good), "--free", "g_Na=5:5"],
             ["--data", str(good), "--free", "g_Na=1:2:3"],
             ["--data", str(good), "--free", "g_Na=50:150", "--free", "g_Na=60:70"],
             # before: silently ignored on a trace target
             ["--data", str(good), "--free", "g_Na=50:150", "--metric", "gamma"],
             ["--data", str(good), "--free", "g_Na=50:150", "--window", "3"],
             ["--data", str(good), "--free", "g_Na=50:150", "--out", str(tmp_path / "afile")],
             ["--data", str(good), "--free", "g_Na=50:150", "--out", str(out / "deeper")]]
    for extra in cases:
        assert main([*base, *extra]) == 2, extra
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("splitpinn: error: "), (extra, err)
        assert "Traceback" not in err[0]
    assert main(["fit", "frac-lif", "--data", str(tmp_path / "spikes.csv"), "--target",
                 "spikes", "--t-end", "20", "--free", "alpha=0.5:1.5", "--out", str(out)]) == 2
    assert "(0, 1]" in capsys.readouterr().err
    assert not out.exists()


def test_python_bad_input_raises_model_error():
    with pytest.raises(ModelError, match="both free and set"):
        splitpinn.fit("hh", {"t_ms": [0, 1], "V": [0, 1]}, {"g_K": (1, 2)},
                      parameters={"g_K": 3.0})
    with pytest.raises(ModelError, match="needs the end time"):
        splitpinn.fit("hh", [5.0, 6.0], {"g_K": (1, 2)}, target="spikes")
    with pytest.raises(ModelError, match="no spikes"):
        splitpinn.fit("hh", [], {"g_K": (1, 2)}, target="spikes", t_end=10.0)
    trace = {"t_ms": [0.0, 1.0], "V": [-65.0, -60.0]}
    for data, kwargs, message in [
        (trace, {"free": {}}, "at least one free parameter"),
        (trace, {"target": "voltage"}, "unknown target 'voltage'"),
        (5, {}, "expected a CSV file, a DataFrame or a mapping"),
        ({"t_ms": [0, 1], "V": ["a", "b"]}, {}, "column 'V' is not numeric"),
        ({"t_ms": [0, 1], "Q": [0, 1]}, {"state": "Q"}, "hh has no state 'Q'"),
        ([1.0, 2.0], {"target": "spikes", "t_end": 5.0, "metric": "zz"}, "unknown spike metric"),
        ([1.0, 2.0], {"target": "spikes", "t_end": 5.0, "window": -1}, "window must be a number"),
        (trace, {"seed": -1}, "seed must be an integer >= 0"),
        (trace, {"tol": float("nan")}, "tol must be a finite number >= 0"),
        # before: scipy's RuntimeError from the first generation
        ({"t_ms": [0.0, 1.0, 2.0], "V": [-65.0, -60.0]}, {}, "different lengths"),
        # before: silently ignored
        (trace, {"metric": "gamma"}, "apply to a spike target"),
    ]:
        with pytest.raises(ModelError, match=message):
            splitpinn.fit("hh", data, **{"free": {"g_K": (1, 2)}, **kwargs})
