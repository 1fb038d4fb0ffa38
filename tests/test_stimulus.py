"""Recorded inputs: ``stimulus.sampled`` (hold or interpolate samples), its breakpoints, CSV
files, ``solve(..., stimulus=...)`` and ``--stimulus`` on the command line."""

import pickle

import numpy as np
import pytest
import sympy as sp

import splitpinn
from splitpinn import cli, models, stimulus
from splitpinn.declare.model import t
from splitpinn.errors import ModelError
from splitpinn.numeric.lambdify import lambdify

TIMES = [0.0, 2.0, 3.0, 5.0]
VALUES = [1.0, 4.0, 4.0, -2.0]


def _numeric(expr):
    return lambdify((t,), expr)


def test_previous_holds_each_sample_until_the_next():
    f = _numeric(stimulus.sampled(TIMES, VALUES))
    at = np.array([-1.0, 0.0, 1.99, 2.0, 2.5, 3.0, 4.9, 5.0, 7.0])
    np.testing.assert_array_equal(f(at), [1, 1, 1, 4, 4, 4, 4, -2, -2])
    assert f(2.5) == 4.0  # scalar in, scalar out


def test_linear_interpolates_between_samples():
    f = _numeric(stimulus.sampled(TIMES, VALUES, interpolation="linear"))
    at = np.array([-1.0, 0.0, 1.0, 2.0, 2.5, 4.0, 5.0, 6.0])
    # 1 -> 4 over [0, 2]: slope 1.5; flat on [2, 3]; 4 -> -2 over [3, 5]: slope -3
    np.testing.assert_allclose(f(at), [1, 1, 2.5, 4, 4, 1, -2, -2], rtol=0, atol=1e-15)


def test_sympy_evaluates_at_numbers_and_parameters_scale_it():
    amp = sp.Symbol("A", real=True)
    expr = amp * stimulus.sampled(TIMES, VALUES)
    assert expr.subs({t: 2.5, amp: 3.0}) == 12.0
    assert "sampled[4 samples, previous](t)" in str(expr)


def test_a_sampled_stimulus_pickles_for_worker_processes():
    amp = sp.Symbol("A", real=True)
    back = pickle.loads(pickle.dumps(amp * stimulus.sampled(TIMES, VALUES, "linear")))
    assert back.subs({t: 1.0, amp: 2.0}) == 5.0
    np.testing.assert_array_equal(stimulus.breakpoints(back, 10.0), [2.0, 3.0, 5.0])


def test_breakpoints_at_jumps_and_kinks_only():
    held = stimulus.sampled(TIMES, VALUES)  # jumps at 2 and 5; none at 3 (4 -> 4)
    np.testing.assert_array_equal(stimulus.breakpoints(held, 10.0), [2.0, 5.0])
    ramp = stimulus.sampled(TIMES, VALUES, "linear")  # slope changes at 0, 2, 3, 5
    np.testing.assert_array_equal(stimulus.breakpoints(ramp, 10.0), [2.0, 3.0, 5.0])  # in (0, 10)
    shifted = stimulus.sampled(TIMES, VALUES).func(t - 1.5)  # the same input 1.5 ms later
    np.testing.assert_allclose(stimulus.breakpoints(shifted, 10.0), [3.5, 6.5])
    # mixed with a helper's step
    mixed = held + stimulus.step(1.0, on=4.0)
    np.testing.assert_array_equal(stimulus.breakpoints(mixed, 10.0), [2.0, 4.0, 5.0])
    # a window starting before 0 (t0 < 0) or after some jumps
    early = stimulus.sampled([-3.0, -1.0, 2.0], [0.0, 1.0, 2.0])  # 0 holds before -3: no jump
    np.testing.assert_array_equal(stimulus.breakpoints(early, 5.0, t0=-5.0), [-1, 2])
    train = stimulus.pulse_train(1, start=-20, width=1, period=10)
    np.testing.assert_allclose(stimulus.breakpoints(train, 12.0, t0=-12.0),
                               [-10, -9, 0, 1, 10, 11])
    np.testing.assert_array_equal(stimulus.breakpoints(mixed, 10.0, t0=3.0), [4.0, 5.0])


@pytest.mark.parametrize("args, message", [
    (([0, 1], [1.0]), r"1-D arrays of one length"),
    (([], []), r"1-D arrays of one length > 0"),
    (([0, 1, 1], [1, 2, 3]), r"times must increase strictly"),
    (([0, 2, 1], [1, 2, 3]), r"times must increase strictly"),
    (([0, 1], [1, np.nan]), r"must be finite"),
    (([0, 1], [1, 2], "cubic"), r"unknown interpolation 'cubic' \(known: previous, linear\)"),
])
def test_bad_samples_name_the_problem(args, message):
    with pytest.raises(ModelError, match=message):
        stimulus.sampled(*args)


# -- solving with a recorded input -----------------------------------------------------------

def test_hh_driven_by_samples_of_a_step_equals_the_step_stimulus():
    """A step of 10 µA/cm² on [5, 15) ms, sampled every 0.5 ms ("previous"), against the
    library step helper: same jumps, same breakpoints, same reference solution."""
    grid = np.arange(61) * 0.5
    samples = np.where((grid >= 5) & (grid < 15), 10.0, 0.0)
    recorded = splitpinn.solve("hh", "reference", 30.0, 0.01,
                               stimulus=stimulus.sampled(grid, samples))
    helper = splitpinn.solve(models.get("hh").with_stimulus(stimulus.step(10.0, 5.0, 15.0)),
                             "reference", 30.0, 0.01)
    assert len(helper.spike_times) == 1
    np.testing.assert_allclose(recorded.y, helper.y, rtol=0, atol=1e-9)
    np.testing.assert_allclose(recorded.spike_times, helper.spike_times, rtol=0, atol=1e-9)


def test_linear_samples_equal_a_piecewise_linear_ramp():
    """LIF driven by a current ramp 0 -> 3 nA over [2, 12] ms then held, as samples
    ("linear") and as a sympy Min/Max expression."""
    recorded = stimulus.sampled([2.0, 12.0], [0.0, 3.0], "linear")
    ramp = 3 * sp.Min(sp.Max((t - 2) / 10, 0), 1)
    a = splitpinn.solve("lif", "reference", 40.0, 0.05, stimulus=recorded)
    b = splitpinn.solve("lif", "reference", 40.0, 0.05, stimulus=ramp)
    assert len(b.spike_times) >= 2
    np.testing.assert_allclose(a["V"], b["V"], rtol=0, atol=1e-7)
    np.testing.assert_allclose(a.spike_times, b.spike_times, rtol=0, atol=1e-7)


@pytest.mark.parametrize("interpolation", ["previous", "linear"])
def test_the_kernels_read_a_recording_as_numpy_does(interpolation):
    """kernels.sampled (the rule printed into a model's stimulus) against numpy's
    interpolation (Sampled.evaluate): before, at, between and after the samples."""
    numba = pytest.importorskip("numba")
    from splitpinn.numeric import kernels

    rng = np.random.default_rng(1)
    times = np.cumsum(rng.uniform(0.01, 1.0, 200))
    values = rng.normal(size=200)
    recording = stimulus.sampled(times, values, interpolation).func
    at = np.concatenate([[times[0] - 1, times[-1] + 1], times,
                         rng.uniform(times[0], times[-1], 500)])
    expected = recording.evaluate(at)
    compiled = numba.njit(kernels.sampled)
    for rule in (kernels.sampled, compiled):
        got = [rule(x, times, values, interpolation == "linear") for x in at]
        np.testing.assert_allclose(got, expected, rtol=1e-15, atol=1e-15)


@pytest.mark.parametrize("model, t_end, truth", [
    ("hh", 30.0, dict(method="reference", rtol=1e-12, atol=1e-12)),
    ("frac-lif", 30.0, dict(method="reference", dt=0.0025)),
])
def test_a_linearly_interpolated_recording_is_solved_in_the_kernels(model, t_end, truth,
                                                                    monkeypatch):
    """A current recorded every 0.5 ms and interpolated linearly (a sampled sinusoid) drives
    split-PINN through the compiled stages (printed into the model's stimulus), never stage
    by stage, with the spikes of a converged reference: DOP853 at rtol 1e-12, or
    the L2-1σ reference at a quarter of the step."""
    from splitpinn.solvers import subsolvers

    samples = np.arange(0.0, t_end + 0.5, 0.5)
    recorded = stimulus.sampled(samples, 10 + 5 * np.sin(2 * np.pi * samples / 20), "linear")
    if model == "frac-lif":
        recorded = 0.4 * recorded  # two spikes in 30 ms
    reference = splitpinn.solve(model, t_end=t_end, stimulus=recorded, **truth)

    def stage_by_stage(*args):
        raise AssertionError("a stage left the kernel march")

    monkeypatch.setattr(subsolvers.LeastSquaresPINN, "advance", stage_by_stage)
    ours = splitpinn.solve(model, "split-pinn", t_end, 0.01, stimulus=recorded)
    assert ours.meta["solver"]["compiled"]
    assert len(reference.spike_times) >= 2
    assert len(ours.spike_times) == len(reference.spike_times)
    np.testing.assert_allclose(ours.spike_times, reference.spike_times, rtol=0, atol=1e-4)


# -- CSV files and the command line ------------------------------------------------------------

def _write(path, text):
    path.write_text(text)
    return path


def test_read_csv_builds_the_sampled_stimulus(tmp_path):
    path = _write(tmp_path / "i.csv", "t_ms,value\n0,1\n2,4\n3,4\n5,-2\n")
    f = _numeric(stimulus.read_csv(path))
    np.testing.assert_array_equal(f(np.array([1.0, 2.0, 6.0])), [1, 4, -2])


@pytest.mark.parametrize("text, message", [
    ("time,value\n0,1\n", r"the first line must be 't_ms,value', got 'time,value'"),
    ("t_ms,value\n0,1\n1,x\n", r"line 3: expected two finite numbers, got '1,x'"),
    ("t_ms,value\n0,1\n1,2,3\n", r"line 3: expected two finite"),
    ("t_ms,value\n0,1\n1,inf\n", r"line 3: expected two finite"),
    ("t_ms,value\n", r"holds no samples"),
    ("t_ms,value\n1,1\n0,2\n", r"line 3: time 0 ms is not after the previous sample's 1 ms "
                                r"\(times must increase strictly\)"),
    ("t_ms,value\n0,1\n1,2\n\n1,3\n", r"line 5: time 1 ms is not after"),
])
def test_read_csv_errors_name_the_file_and_line(tmp_path, text, message):
    with pytest.raises(ModelError, match=r"stimulus file '.*bad.csv'.*" + message):
        stimulus.read_csv(_write(tmp_path / "bad.csv", text))


def test_read_csv_accepts_a_utf8_byte_order_mark(tmp_path):
    """Spreadsheets save CSV as UTF-8 with a BOM; it used to make the header 't_ms' unknown."""
    path = tmp_path / "bom.csv"
    path.write_bytes("t_ms,value\r\n0,1\r\n2,4\r\n".encode("utf-8-sig"))
    f = _numeric(stimulus.read_csv(path))
    np.testing.assert_array_equal(f(np.array([1.0, 3.0])), [1, 4])


def test_a_recorded_stimulus_is_described_in_the_meta(tmp_path):
    """solve(stimulus=...) says what drove the neuron: the recording (source, samples,
    interpolation, time range), the I_ext it overrides and the parameters that no longer apply
    (lif's I, still listed in parameters)."""
    path = _write(tmp_path / "rec.csv", "t_ms,value\n0,0\n5,3\n25,0\n")
    sol = splitpinn.solve("lif", "reference", 40.0, stimulus=stimulus.read_csv(path, "linear"))
    assert sol.meta["stimulus"] == {
        "expression": "sampled[3 samples, linear](t)", "source": str(path), "samples": 3,
        "interpolation": "linear", "t_range_ms": [0.0, 25.0], "overrides": "I_ext",
        "overridden": "I", "unused_parameters": ["I"]}
    recorded = stimulus.sampled([0.0, 1.0], [2.0, 2.0])
    assert pickle.loads(pickle.dumps(stimulus.read_csv(path))).func.source == str(path)
    sol = splitpinn.solve("hh", "reference", 5.0, stimulus=recorded + sp.Symbol("I", real=True))
    assert sol.meta["stimulus"]["source"] is None and sol.meta["stimulus"]["samples"] == 2
    assert sol.meta["stimulus"]["unused_parameters"] == []  # I is still used
    assert "stimulus" not in splitpinn.solve("lif", "reference", 5.0).meta


def test_cli_stimulus_file_drives_the_solve(tmp_path, capsys):
    """LIF with a 3 nA step on [5, 25) ms from a CSV file: the spikes of the same step given
    by the helper."""
    path = _write(tmp_path / "step.csv", "t_ms,value\n0,0\n5,3\n25,0\n")
    out = tmp_path / "lif.npz"
    status = cli.main(["solve", "lif", "--method", "reference", "--t-end", "40", "--quiet",
                       "--stimulus", str(path), "--out", str(out)])
    assert status == 0, capsys.readouterr().err
    sol = splitpinn.Solution.load(out)
    expected = splitpinn.solve(models.get("lif").with_stimulus(stimulus.step(3.0, 5.0, 25.0)),
                               "reference", 40.0)
    assert len(expected.spike_times) >= 2
    np.testing.assert_allclose(sol.spike_times, expected.spike_times, rtol=0, atol=1e-9)
    assert sol.meta["stimulus"] == {
        "expression": "sampled[3 samples, previous](t)", "source": str(path), "samples": 3,
        "interpolation": "previous", "t_range_ms": [0.0, 25.0], "overrides": "I_ext",
        "overridden": "I", "unused_parameters": ["I"]}


def test_cli_bad_stimulus_file_is_one_line(tmp_path, capsys):
    out = tmp_path / "never.npz"
    status = cli.main(["solve", "lif", "--method", "reference", "--t-end", "10", "--quiet",
                       "--stimulus", str(tmp_path / "missing.csv"), "--out", str(out)])
    err = capsys.readouterr().err
    assert status == 2 and len(err.strip().splitlines()) == 1
    assert "stimulus file" in err and "missing.csv" in err and not out.exists()
