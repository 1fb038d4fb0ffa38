"""Edge cases and friction of issue 18 that have no better home: progress output when stderr is
not a terminal, ``--no-traces`` (the remedy the output-size message names), and a stimulus CSV
saved with a byte-order mark, through the command line."""

import io

import numpy as np
import pytest

import splitpinn
from splitpinn.cli import main
from splitpinn.errors import ModelError
from splitpinn.numeric.validation import check_output_size
from splitpinn.solvers import progress

GiB = 2**30


class _Stream(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


def _run_bar(monkeypatch, tty: bool, quiet: bool = False, interval: float | None = None):
    stream = _Stream(tty)
    monkeypatch.setattr("sys.stderr", stream)
    if interval is not None:
        monkeypatch.setattr(progress, "LOG_INTERVAL_S", interval)
    bar = progress.progress_bar(100.0, "hh by split-pinn", quiet)
    clock = [0.0]
    monkeypatch.setattr(bar, "_time", lambda: clock[0], raising=False)  # a clock we advance
    bar.start_t = bar.last_print_t = 0.0
    for ms in range(1, 1001):  # 1000 updates over 300 s of wall time
        clock[0] = 0.3 * ms
        progress.advance_to(bar, ms / 10)
    bar.close()
    return stream.getvalue()


def test_a_bar_off_a_terminal_writes_a_few_plain_lines(monkeypatch):
    # a terminal: the bar redraws in place (carriage returns)
    assert "\r" in _run_bar(monkeypatch, tty=True)
    # a log file: no carriage returns, one line per LOG_INTERVAL_S (60 s): 4-5 lines in 300 s
    text = _run_bar(monkeypatch, tty=False)
    lines = text.splitlines()
    assert "\r" not in text and 3 <= len(lines) <= 6, text
    assert all(line.startswith("hh by split-pinn:") and " ms [" in line for line in lines)
    # --quiet: nothing, terminal or not
    assert _run_bar(monkeypatch, tty=False, quiet=True) == ""
    assert _run_bar(monkeypatch, tty=True, quiet=True) == ""


def test_a_short_solve_off_a_terminal_prints_no_progress(capsys):
    # capsys's stderr is not a terminal: a solve shorter than a minute prints no bar at all
    assert main(["solve", "lif", "--method", "reference", "--t-end", "50"]) == 0
    captured = capsys.readouterr()
    assert captured.err == "" and "lif by reference" in captured.out


def test_no_traces_keeps_spike_times_only(tmp_path, capsys):
    out, full = tmp_path / "spikes.npz", tmp_path / "full.npz"
    assert main(["solve", "lif", "--method", "reference", "--t-end", "200", "--quiet",
                 "--no-traces", "--out", str(out)]) == 0
    assert main(["solve", "lif", "--method", "reference", "--t-end", "200", "--quiet",
                 "--out", str(full)]) == 0
    spikes, traces = splitpinn.Solution.load(out), splitpinn.Solution.load(full)
    np.testing.assert_array_equal(spikes.t, [0.0, 200.0])
    assert len(spikes.spike_times) == len(traces.spike_times) >= 10
    np.testing.assert_allclose(spikes.spike_times, traces.spike_times, rtol=0, atol=1e-9)
    # --plot needs the traces: one line, no output
    plot = tmp_path / "never.png"
    assert main(["solve", "lif", "--method", "reference", "--t-end", "10", "--quiet",
                 "--no-traces", "--plot", str(plot)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--plot needs the traces" in err and not plot.exists()


def test_the_output_size_message_names_remedies_that_exist(capsys):
    with pytest.raises(ModelError) as info:
        check_output_size(2**26, 3, limit_bytes=GiB)
    assert "traces=False in Python, --no-traces on the command line" in str(info.value)
    # without traces only the time axis counts (2**26 x 8 bytes = 0.5 GiB), and a grid too
    # long even so does not suggest traces=False, which it already has
    check_output_size(2**26, 3, limit_bytes=GiB, traces=False)
    with pytest.raises(ModelError) as info:
        check_output_size(2**28, 3, limit_bytes=GiB, traces=False)
    assert "2.68e+08 times needs 2 GiB" in str(info.value) and "traces" not in str(info.value)
    # the command line: the hint names --no-traces, and --no-traces gets past the state count
    assert main(["solve", "hh", "--method", "reference", "--t-end", "1e6", "--dt", "1e-9"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--no-traces on the command line" in err
    with pytest.raises(ModelError, match=r"1e\+15 times needs"):  # 8 PB even for the times
        splitpinn.solve("hh", "reference", 1e6, 1e-9, traces=False)


def test_a_stimulus_csv_with_a_byte_order_mark_drives_the_cli(tmp_path, capsys):
    path, out = tmp_path / "excel.csv", tmp_path / "out.npz"
    path.write_bytes("t_ms,value\r\n0,0\r\n5,3\r\n25,0\r\n".encode("utf-8-sig"))
    assert main(["solve", "lif", "--method", "reference", "--t-end", "40", "--quiet",
                 "--stimulus", str(path), "--out", str(out)]) == 0, capsys.readouterr().err
    meta = splitpinn.Solution.load(out).meta["stimulus"]
    assert meta["source"] == str(path) and meta["samples"] == 3
    assert meta["t_range_ms"] == [0.0, 25.0] and meta["unused_parameters"] == ["I"]


def test_a_non_monotonic_stimulus_csv_names_its_line_from_the_cli(tmp_path, capsys):
    path, out = tmp_path / "rec.csv", tmp_path / "never.npz"
    path.write_text("t_ms,value\n0,0\n5,3\n4,1\n")
    assert main(["solve", "lif", "--method", "reference", "--t-end", "40", "--quiet",
                 "--stimulus", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "line 4: time 4 ms is not after" in err
    assert "Traceback" not in err and not out.exists()


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # scipy's, on the inf it now sees
@pytest.mark.parametrize("method", ["reference", "split-pinn"])
@pytest.mark.parametrize("name, parameters, initial", [
    ("hh", {}, {"V": -260.0, "n": 0.0}),  # the rate functions' exp(-x) beyond the doubles
    ("fhn", {"tau": 1e-9, "I": 0.5}, {}),  # v**3 beyond the doubles within nanoseconds
])
def test_overflow_on_the_single_neuron_path_is_a_solver_matter(method, name, parameters,
                                                                 initial):
    """A single neuron evaluates its right-hand side with Python floats, which raise
    OverflowError where numpy's overflow to inf: the solve must still end in a solution or
    a SolverError (the command line's 'solver failed'), not in that exception."""
    try:
        solution = splitpinn.solve(name, method, 0.05, parameters=parameters, initial=initial,
                                   max_steps=1000)
    except splitpinn.SolverError as exc:
        assert "t = " in str(exc)
    else:
        assert np.all(np.isfinite(solution.y))


_PAIR = {"I": [1.0, 2.0]}  # a batch of two neurons, for the coupling cases
#: Python bad input -> the ModelError message (a pattern); each named in the tracker of
#: uncovered error lines.  Marked "was:" where it escaped as another exception before.
API_BAD_INPUT = {
    "t_end a string": (dict(t_end="10"), r"t_end must be a finite number \(ms\), got '10'"),
    "t_end before t0": (dict(t_end=5.0, t0=6.0), "t_end must be later than t0 = 6 ms"),
    "dt longer than the run": (dict(t_end=5.0, dt=10.0), "longer than the interval"),
    "t_eval of strings": (dict(t_eval=["a", "b"]), "t_eval must be a 1-D array of times"),
    "t_eval decreasing": (dict(t_eval=[0, 2, 1]), "strictly increasing"),
    "t_eval past t_end": (dict(t_eval=[0, 6]), r"inside \[t0, t_end\] = \[0, 5\] ms"),
    "parameter of strings": (dict(parameters={"I": ["a", "b"]}), "holds a value that is not"),
    "2-D parameter": (dict(parameters={"I": np.ones((2, 2))}), r"1-D and non-empty.*\(2, 2\)"),
    "NaN in a batch": (dict(parameters={"I": [1.0, np.nan]}), "every value must be a finite"),
    "batch lengths differ": (dict(parameters={"I": [1.0, 2.0], "tau": [1.0, 2.0, 3.0]}),
                             r"different lengths: tau \(3\), I \(2\)"),
    "order differs in a batch": (dict(model="frac-lif", parameters={"alpha": [0.5, 0.6]}),
                                 "order of V differs between the neurons"),
    "coupling not a mapping": (dict(parameters=_PAIR, coupling=[[0, 1], [1, 0]]),
                               "coupling must be a mapping"),
    "coupling weight NaN": (dict(parameters=_PAIR, coupling={"weights": [[0, np.nan], [1, 0]],
                                                             "target": "V"}), "finite numbers"),
    # was: ValueError: could not convert string to float
    "coupling weight text": (dict(parameters=_PAIR, coupling={"weights": [["a", 1], [1, 0]],
                                                              "target": "V"}),
                             "coupling weights must be a 2 x 2 matrix of numbers"),
    # was: TypeError: Cannot convert expression to float
    "stimulus calls an unknown function": (dict(stimulus="foo(t)"),
                                           "unknown function foo in the stimulus"),
    # was: SympifyError
    "stimulus not an expression": (dict(stimulus=object()), "stimulus: <object object"),
    # was: ValueError / TypeError from numpy's SeedSequence
    "seed negative": (dict(method="split-pinn", seed=-1), "seed must be an integer >= 0"),
    "seed a float": (dict(method="split-pinn", seed=1.5), "seed must be an integer >= 0"),
    # was: accepted, or numpy's UFuncTypeError
    "rtol negative": (dict(method="split-pinn", rtol=-1.0), "rtol must be a finite number > 0"),
    "atol a string": (dict(atol="x"), "atol must be a finite number > 0"),
    "max_steps 0": (dict(max_steps=0), "max_steps must be an integer >= 1"),
    "max_steps a string": (dict(max_steps="x"), "max_steps must be an integer >= 1"),
}


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("case", list(API_BAD_INPUT))
def test_python_bad_input_is_a_model_error(case):
    kwargs, message = API_BAD_INPUT[case]
    kwargs = {"model": "lif", "method": "reference", "t_end": 5.0, **kwargs}
    with pytest.raises(ModelError, match=message) as info:
        splitpinn.solve(**kwargs)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("times, values, message", [
    (["a", "b"], [1.0, 2.0], "times and values must be numbers"),  # was: ValueError
    ([0.0, 1.0], [1.0, None], "times and values must be finite"),
])
def test_a_sampled_stimulus_of_non_numbers_is_a_model_error(times, values, message):
    with pytest.raises(ModelError, match=message):
        splitpinn.stimulus.sampled(times, values)


def test_values_a_batch_makes_impossible_are_model_errors():
    """Checked when binding (numeric/bound.py), per neuron of a batch: an initial value or a
    right-hand side that is not finite, an order outside (0, 1]."""
    log = splitpinn.Model.from_equations("dV/dt = -V/tau : 1\ntau : ms", name="log",
                                         parameters={"tau": 3.0},
                                         initial={"V": "log(tau/ms - 1)"})
    pole = splitpinn.Model.from_equations("dV/dt = -V/tau + 1/(V - a)/ms : 1\ntau : ms\na : 1",
                                          name="pole", parameters={"tau": 1.0, "a": 2.0},
                                          initial={"V": 1.0})
    order = splitpinn.Model.from_equations("D^(a) V = -V/ms : 1\na : 1", name="order",
                                           parameters={"a": 0.5})
    for model, kwargs, message in [
        (log, {"parameters": {"tau": [3.0, 1.0]}}, "log: the initial value of V is not finite"),
        (pole, {"initial": {"V": [1.0, 2.0]}}, r"pole: the equation of V \(.*\) is not finite"),
        (order, {"parameters": {"a": [1.5, 1.5]}}, r"order of V must lie in \(0, 1\], got 1.5"),
    ]:
        with pytest.raises(ModelError, match=message):
            splitpinn.solve(model, "reference", 1.0, **kwargs)
