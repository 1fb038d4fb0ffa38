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
