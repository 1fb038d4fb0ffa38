"""Sweeps: the grid, the rows against closed forms, failed points, the figure, resumption after
SIGKILL, and identical CSVs from local processes and from a Dask cluster."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest

from splitpinn import ModelError
from splitpinn.analysis.sweep import grid, parse_vary, plot_sweep, rate_hz, sweep
from splitpinn.cli import main

matplotlib.use("Agg")

LIF = dict(tau=10.0, R=10.0, V_rest=-65.0, V_th=-50.0, t_ref=2.0)
SWEEP = ["sweep", "lif", "--method", "reference", "--t-end", "60", "--quiet",
         "--vary", "I=1.6:3:4", "--vary", "tau=5,10"]
EXE = str(Path(sys.executable).with_name("splitpinn"))


def read(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, keep_default_na=False, na_values=[""])


def assert_same_results(a: pd.DataFrame, b: pd.DataFrame, rtol=1e-12):
    """Equal tables apart from wall times, floats to ``rtol``."""
    a, b = a.drop(columns=["wall_time_s"], errors="ignore"), \
        b.drop(columns=["wall_time_s"], errors="ignore")
    assert list(a.columns) == list(b.columns)
    pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=rtol, atol=0)


def test_values_and_grid_order():
    vary = parse_vary(["I=0:1:3", "tau=5,10", "V_th=-50"])
    assert list(vary) == ["I", "tau", "V_th"]
    np.testing.assert_array_equal(vary["I"], [0.0, 0.5, 1.0])
    points = grid(vary)
    assert len(points) == 6
    assert [(p["I"], p["tau"]) for p in points[:3]] == [(0.0, 5.0), (0.0, 10.0), (0.5, 5.0)]
    for bad in (["I=1:2"], ["I=1:2:0"], ["I=1:2:2.5"], ["I=a,b"], ["I=1,inf"], ["I"],
                ["I=1", "I=2"]):
        with pytest.raises(ModelError):
            parse_vary(bad)


def test_rows_match_the_closed_form():
    result = sweep("lif", {"I": [1.6, 2.5], "tau": [5.0, 10.0]}, "reference", 60.0, jobs=1)
    table = result.table
    assert list(table.columns) == ["point", "I", "tau", "spike_count", "first_spike_ms",
                                   "rate_hz", "wall_time_s", "status"]
    assert table["point"].tolist() == [0, 1, 2, 3]
    assert (table["status"] == "ok").all()
    for _, row in table.iterrows():
        drive = LIF["R"] * row["I"]
        first = row["tau"] * np.log(drive / (drive - 15.0))  # from V_rest = V_reset
        isi = LIF["t_ref"] + first
        spikes = result.spike_times(row["point"])
        assert row["spike_count"] == len(spikes) == int((60.0 - first) // isi) + 1
        assert row["first_spike_ms"] == pytest.approx(first, rel=1e-8)
        assert row["rate_hz"] == pytest.approx(1000 / isi, rel=1e-8)


def test_rate_from_all_intervals():
    assert rate_hz([]) == rate_hz([3.0]) == 0.0
    assert rate_hz([1.0, 3.0, 7.0]) == pytest.approx(1000 / 3.0)


def test_failed_point_records_its_error_and_the_sweep_goes_on():
    result = sweep("lif", {"t_ref": [-1.0, 2.0]}, "reference", 30.0, jobs=1)
    status = result.table["status"].tolist()
    assert "refractory" in status[0] and "\n" not in status[0]
    assert status[1] == "ok" and result.table["spike_count"][1] > 0
    assert result.table["spike_count"][0] == 0 and np.isnan(result.table["first_spike_ms"][0])


def test_bad_input_raises_before_any_file(tmp_path):
    out = tmp_path / "s"
    for kwargs in ({"vary": {"Q": [1.0]}}, {"vary": {"I": [1.0]}, "parameters": {"I": 2.0}},
                   {"vary": {"I": [1.0]}, "jobs": 0},
                   {"vary": {"I": [1.0]}, "trainer": "least-squares"},
                   {"vary": {"I": [1.0]}, "jobs": 1, "scheduler": "tcp://127.0.0.1:1"}):
        with pytest.raises(ModelError):
            sweep("lif", method="reference", t_end=10.0, out=out, **kwargs)
    assert not out.exists()
    for vary, kwargs, message in [({}, {}, "at least one varied parameter"),
                                  ({"I": []}, {}, "non-empty 1-D list of finite numbers"),
                                  ({"I": [[1.0, 2.0]]}, {}, "non-empty 1-D list"),
                                  ({"I": [np.nan]}, {}, "non-empty 1-D list"),
                                  ("I", {}, "--vary expects PARAM=START:STOP:N"),
                                  ({"I": [1.0]}, {"resume": True}, "resume needs the folder"),
                                  ({"I": [1.0]}, {"chunk_size": 0}, "chunk size must be"),
                                  ({"I": [1.0]}, {"jobs": "2"}, "jobs must be an integer")]:
        with pytest.raises(ModelError, match=message):
            sweep("lif", vary, "reference", 5.0, **kwargs)


def test_existing_sweep_needs_resume_with_the_same_settings(tmp_path):
    out = tmp_path / "s"
    first = sweep("lif", {"I": [2.0, 3.0]}, "reference", 20.0, jobs=1, out=out)
    with pytest.raises(ModelError, match="--resume"):
        sweep("lif", {"I": [2.0, 3.0]}, "reference", 20.0, jobs=1, out=out)
    with pytest.raises(ModelError, match="vary"):
        sweep("lif", {"I": [2.0, 4.0]}, "reference", 20.0, jobs=1, out=out, resume=True)
    again = sweep("lif", {"I": [2.0, 3.0]}, "reference", 20.0, jobs=1, out=out, resume=True)
    assert_same_results(first.table, again.table)
    assert_same_results(read(out / "sweep.csv"), first.table)


def test_figure_rate_line_and_heat_map():
    one = sweep("lif", {"I": [2.0, 3.0]}, "reference", 30.0, jobs=1)
    fig = plot_sweep(one)
    np.testing.assert_allclose(fig.axes[0].lines[0].get_ydata(), one.table["rate_hz"])
    two = sweep("lif", {"I": [2.0, 3.0], "tau": [5.0, 10.0]}, "reference", 30.0, jobs=1)
    fig = plot_sweep(two)
    mesh = fig.axes[0].collections[0].get_array().reshape(2, 2)  # rows tau, columns I
    np.testing.assert_allclose(mesh.T.ravel(), two.table["rate_hz"])


@pytest.mark.slow
def test_sigkill_then_resume_gives_every_point_once(tmp_path):
    out = tmp_path / "killed"
    args = [EXE, *SWEEP, "--jobs", "1", "--chunk-size", "1", "--out", str(out)]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(list((out / "parts").glob("points-*"))) < 3:
        assert proc.poll() is None, proc.stderr.read().decode()
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stderr.close()
    partial = read(out / "sweep.csv")  # whole rows only, each point once; may lag parts/ by one
    assert 2 <= len(partial) < 8
    assert partial["point"].is_unique and (partial["status"] == "ok").all()
    assert main([*SWEEP, "--jobs", "1", "--out", str(out), "--resume"]) == 0
    resumed, spikes = read(out / "sweep.csv"), read(out / "spikes.csv")
    assert resumed["point"].tolist() == list(range(8))
    assert not [p.name for p in out.rglob(".*")]  # no temporary files left
    assert main([*SWEEP, "--jobs", "2", "--out", str(tmp_path / "whole")]) == 0
    assert_same_results(resumed, read(tmp_path / "whole" / "sweep.csv"))
    assert_same_results(spikes, read(tmp_path / "whole" / "spikes.csv"))
    assert (out / "sweep.png").stat().st_size > 0


@pytest.fixture(scope="module")
def by_jobs(tmp_path_factory):
    out = tmp_path_factory.mktemp("jobs") / "sweep"
    assert main([*SWEEP, "--jobs", "2", "--chunk-size", "3", "--out", str(out)]) == 0
    return read(out / "sweep.csv"), read(out / "spikes.csv")


@pytest.mark.slow
def test_local_cluster_gives_the_same_csv(by_jobs, tmp_path):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None, host="127.0.0.1") as cluster:
        out = tmp_path / "dask"
        assert main([*SWEEP, "--scheduler", cluster.scheduler_address, "--chunk-size", "3",
                     "--out", str(out)]) == 0
    assert_same_results(read(out / "sweep.csv"), by_jobs[0])
    assert_same_results(read(out / "spikes.csv"), by_jobs[1])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_scheduler_and_worker_processes_give_the_same_csv(by_jobs, tmp_path):
    distributed = pytest.importorskip("distributed")
    dask = shutil.which("dask", path=str(Path(sys.executable).parent)) or shutil.which("dask")
    assert dask, "the dask command line is not installed"
    address = f"tcp://127.0.0.1:{_free_port()}"
    host, port = address[len("tcp://"):].split(":")
    started = [subprocess.Popen([dask, "scheduler", "--host", host, "--port", port,
                                 "--no-dashboard"], cwd=tmp_path, stderr=subprocess.DEVNULL)]
    try:
        started.append(subprocess.Popen([dask, "worker", address, "--nworkers", "1",
                                         "--nthreads", "1", "--no-dashboard"], cwd=tmp_path,
                                        stderr=subprocess.DEVNULL))
        client = None
        deadline = time.monotonic() + 60
        while client is None:
            try:
                client = distributed.Client(address, timeout="2s")
            except OSError:
                assert time.monotonic() < deadline, "the scheduler did not start"
                time.sleep(0.5)
        client.wait_for_workers(1, timeout=120)
        client.close()
        out = tmp_path / "cluster"
        proc = subprocess.run([EXE, *SWEEP, "--scheduler", address, "--chunk-size", "3",
                               "--out", str(out)], capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
    finally:
        for p in reversed(started):
            p.terminate()
        for p in reversed(started):
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
    assert_same_results(read(out / "sweep.csv"), by_jobs[0])
    assert_same_results(read(out / "spikes.csv"), by_jobs[1])


def test_cli_bad_input_one_line_no_files(tmp_path, capsys):
    out = tmp_path / "s"
    cases = [["--vary", "I=1:2:x"], ["--vary", "Q=1,2"], ["--vary", "I=1,2", "--set", "I=3"],
             ["--vary", "I=1,2", "--jobs", "0"],
             ["--vary", "I=1,2", "--jobs", "2", "--scheduler", "tcp://127.0.0.1:1"],
             ["--vary", "I="], ["--vary", "I=1,nan"], ["--vary", "I=1:2:0"], ["--vary", "I"],
             ["--vary", "I=1:2"], ["--vary", "I=1,2", "--vary", "I=3"],
             ["--vary", "I=1,2", "--chunk-size", "0"]]
    base = ["sweep", "lif", "--method", "reference", "--t-end", "10", "--out", str(out)]
    (tmp_path / "afile").write_text("not a folder")
    others = [["sweep", "lif", "--method", "reference", "--t-end", "10", "--vary", "I=1,2",
               "--out", str(tmp_path / where)] for where in ("afile", "missing/s")]
    others += [[command, "lif", "--methods", methods, "--t-end", "10", "--out", str(out)]
               for command, methods in [("compare", "reference"),
                                        ("compare", "reference[x=1],split-pinn"),
                                        ("compare", "reference[integrator,split-pinn"),
                                        ("compare", "reference[dt=x],split-pinn")]]
    others += [["compare", "lif", "--methods", "reference,split-pinn", "--t-end", "10",
                "--out", str(tmp_path / where)] for where in ("afile", "missing/s")]
    others += [["latency", "lif", "--vary", "I=1,2", "--t-end", "10", "--out", str(out), *extra]
               for extra in (["--t-on", "20"], ["--t-on", "nan"], ["--t-on", "-5"],
                             ["--theta", "0"])]
    others.append(["fi-curve", "lif", "--vary", "tau=1,2", "--t-end", "10", "--out", str(out)])
    for argv in [[*base, *extra] for extra in cases] + others:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("splitpinn: error: "), err
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["afile"]


def test_progress_bar_counts_points(capsys, monkeypatch):
    # a terminal
    monkeypatch.setattr("splitpinn.solvers.progress._interactive", lambda stream: True)
    sweep("lif", {"I": [2.0, 3.0]}, "reference", 10.0, jobs=1, quiet=False)
    err = capsys.readouterr().err
    assert "2/2" in err and "point" in err


@pytest.mark.slow
def test_unreachable_scheduler_is_bad_input(tmp_path, capsys):
    out = tmp_path / "s"
    assert main(["sweep", "lif", "--vary", "I=1,2", "--method", "reference", "--t-end", "10",
                 "--scheduler", f"tcp://127.0.0.1:{_free_port()}", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no Dask scheduler answers" in err[0]
    assert not out.exists()


@pytest.mark.parametrize("damage, message", [
    (lambda out: (out / "sweep.json").unlink(), "holds sweep parts but no sweep.json"),
    # before: internal error (exit 3), json's JSONDecodeError
    (lambda out: (out / "sweep.json").write_text("{not json"),
     "sweep.json is not a sweep's manifest"),
    (lambda out: (out / "sweep.json").write_text("[]"), "sweep.json is not a sweep's manifest"),
    (lambda out: next((out / "parts").glob("points-*.json")).write_text("[{}]"),
     "is not a part of this sweep"),
    (lambda out: next((out / "parts").glob("points-*.json")).write_text("garbage"),
     "is not a part of this sweep"),
])
def test_resume_of_a_damaged_folder_is_one_line(damage, message, tmp_path, capsys):
    out = tmp_path / "s"
    argv = ["sweep", "lif", "--method", "reference", "--t-end", "10", "--vary", "I=1,2",
            "--jobs", "1", "--quiet", "--out", str(out)]
    assert main(argv) == 0
    damage(out)
    capsys.readouterr()
    assert main([*argv, "--resume"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("splitpinn: error: ") and message in err[0], err
