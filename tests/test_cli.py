"""The command line: bad input fails cleanly with no file; a good solve writes the contract."""

import json
import math
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import splitpinn.api
from splitpinn import ModelError, SolverError
from splitpinn.cli import main

SOLVE = ["solve", "lif", "--method", "reference", "--t-end", "10", "--quiet"]

BAD_INPUT = {
    "unknown model": ["solve", "nosuch", "--method", "reference", "--t-end", "10"],
    "unknown method": ["solve", "lif", "--method", "bogus", "--t-end", "10"],
    "unknown preset": ["solve", "izhikevich", "--method", "reference", "--preset", "ZZ",
                       "--t-end", "10"],
    "unknown parameter": SOLVE + ["--set", "Q=1"],
    "unknown state": SOLVE + ["--init", "W=1"],
    "assignment without =": SOLVE + ["--set", "I"],
    "non-numeric parameter": SOLVE + ["--set", "I=abc"],
    "non-numeric initial": SOLVE + ["--init", "V=minus-sixty"],
    "nan parameter": SOLVE + ["--set", "I=nan"],
    "inf parameter": SOLVE + ["--set", "tau=inf"],
    "-inf initial": SOLVE + ["--init", "V=-inf"],
    "alpha 0": ["solve", "frac-lif", "--method", "reference", "--t-end", "10",
                "--set", "alpha=0"],
    "alpha 1.5": ["solve", "frac-lif", "--method", "reference", "--t-end", "10",
                  "--set", "alpha=1.5"],
    "alpha -0.2": ["solve", "frac-lif", "--method", "reference", "--t-end", "10",
                   "--set", "alpha=-0.2"],
    "t_end 0": ["solve", "lif", "--method", "reference", "--t-end", "0"],
    "t_end negative": ["solve", "lif", "--method", "reference", "--t-end", "-5"],
    "t_end nan": ["solve", "lif", "--method", "reference", "--t-end", "nan"],
    "t_end non-numeric": ["solve", "lif", "--method", "reference", "--t-end", "ten"],
    "dt 0": SOLVE + ["--dt", "0"],
    "dt negative": SOLVE + ["--dt", "-0.1"],
    "dt inf": SOLVE + ["--dt", "inf"],
    "option of another method": SOLVE + ["--trainer", "adam-lbfgs"],
    "unknown trainer": ["solve", "lif", "--method", "split-pinn", "--t-end", "1",
                        "--trainer", "sgd"],
    "tau = 0": SOLVE + ["--set", "tau=0"],
    "output grid too large": ["solve", "hh", "--method", "reference", "--t-end", "1e6",
                              "--dt", "1e-9"],
    "dt longer than the run": SOLVE + ["--dt", "20"],
    "history on an integer-order model": SOLVE + ["--history", "fast"],
    "estimate-error on an integer-order model": SOLVE + ["--estimate-error"],
    "fractional integrator on an integer-order model": SOLVE + ["--integrator", "l1"],
    "unknown scheme": ["solve", "lif", "--method", "split-pinn", "--t-end", "1", "--scheme",
                       "zzz"],
    "max-steps 0": SOLVE + ["--max-steps", "0"],
    "iterations not a number": ["solve", "fhn", "--method", "vanilla-pinn", "--t-end", "1",
                                "--iterations", "x"],
    "negative seed": ["solve", "lif", "--method", "split-pinn", "--t-end", "1",
                      "--seed", "-3"],  # before: exit 3, numpy's ValueError
    "no command": [],
    "unknown command": ["zzz"],
}


#: Exit status -> the start of the one line on stderr.
PREFIX = {2: "splitpinn: error: ", 1: "splitpinn: solver failed: ",
          3: "splitpinn: internal error: "}


def assert_clean_failure(status, err, expected=2):
    """One line on stderr, no traceback: ``splitpinn: error: ...`` with exit 2 (bad input),
    ``splitpinn: solver failed: ...`` with exit 1 (a numerical failure) or
    ``splitpinn: internal error: ...`` with exit 3 (a bug)."""
    assert status == expected, err
    lines = err.strip("\n").splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(PREFIX[expected]), err
    assert "Traceback" not in err


@pytest.mark.parametrize("case", list(BAD_INPUT))
def test_bad_input_fails_cleanly_without_output(case, tmp_path, capsys):
    out, plot = tmp_path / "x.npz", tmp_path / "x.png"
    status = main(BAD_INPUT[case] + ["--out", str(out), "--plot", str(plot)])
    captured = capsys.readouterr()
    assert_clean_failure(status, captured.err)
    assert not out.exists() and not plot.exists()
    assert list(tmp_path.iterdir()) == []  # no temporary files left behind either


@pytest.mark.parametrize("option", ["--out", "--plot"])
def test_missing_output_directory(option, tmp_path, capsys):
    target = tmp_path / "missing" / ("x.npz" if option == "--out" else "x.png")
    status = main(SOLVE + [option, str(target)])
    captured = capsys.readouterr()
    assert_clean_failure(status, captured.err)
    assert "missing" in captured.err
    assert not target.exists() and not target.parent.exists()


@pytest.mark.parametrize("option, name, expected", [
    ("--out", ".", "is a directory"), ("--plot", ".", "is a directory"),
    ("--out", "x.txt", "the file name must end in .npz or .csv"),
    ("--stimulus", "empty.csv", "the first line must be 't_ms,value', got ''"),
    ("--stimulus", "latin.csv", "is not UTF-8 text"),
    ("--stimulus", "nan.csv", "line 2: expected two finite numbers, got '0,nan'"),
    ("--stimulus", "absent.csv", "No such file or directory"),
    ("--stimulus", ".", "Is a directory"),
])
def test_bad_paths_and_stimulus_files(option, name, expected, tmp_path, capsys):
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "latin.csv").write_bytes(b"t_ms,value\n0,\xb5\n")
    (tmp_path / "nan.csv").write_text("t_ms,value\n0,nan\n1,2\n")
    before = sorted(tmp_path.iterdir())
    out = ["--out", str(tmp_path / "x.npz")] if option != "--out" else []
    status = main(SOLVE + out + [option, str(tmp_path / name)])
    captured = capsys.readouterr()
    assert_clean_failure(status, captured.err)
    assert expected in captured.err
    assert sorted(tmp_path.iterdir()) == before


def test_python_m_splitpinn_runs_the_command_line(tmp_path):
    """``python -m splitpinn`` (before: 'No module named splitpinn.__main__')."""
    proc = subprocess.run([sys.executable, "-m", "splitpinn", "solve", "nosuch", "--method",
                           "reference", "--t-end", "10"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)
    assert_clean_failure(proc.returncode, proc.stderr)
    assert "unknown model 'nosuch'" in proc.stderr


def test_bad_input_names_the_culprit(capsys):
    assert main(SOLVE + ["--set", "Q=1"]) != 0
    assert "'Q'" in capsys.readouterr().err
    assert main(SOLVE + ["--init", "W=1"]) != 0
    assert "'W'" in capsys.readouterr().err
    assert main(["solve", "frac-lif", "--method", "reference", "--t-end", "10",
                 "--set", "alpha=1.5"]) != 0
    assert "(0, 1]" in capsys.readouterr().err


def test_console_script_reports_bad_input_without_traceback(tmp_path):
    exe = Path(sys.executable).with_name("splitpinn")
    exe = str(exe) if exe.exists() else shutil.which("splitpinn")
    assert exe, "the splitpinn entry point is not installed"
    proc = subprocess.run([exe, "solve", "nosuch", "--method", "reference", "--t-end", "10",
                           "--out", "x.npz"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)
    assert_clean_failure(proc.returncode, proc.stderr)
    assert "nosuch" in proc.stderr
    assert not (tmp_path / "x.npz").exists()


def test_solve_writes_npz_and_png(tmp_path, capsys):
    out, plot = tmp_path / "x.npz", tmp_path / "x.png"
    status = main(["solve", "lif", "--method", "reference", "--t-end", "30", "--out", str(out),
                   "--plot", str(plot), "--quiet"])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    assert captured.err == ""  # --quiet: no progress bar
    with np.load(out, allow_pickle=False) as data:
        assert {"t", "V", "spike_times", "meta"} <= set(data.files)
        t, v, spikes = data["t"], data["V"], data["spike_times"]
        meta = json.loads(str(data["meta"]))
    assert t.ndim == v.ndim == spikes.ndim == 1 and t.shape == v.shape
    assert t[0] == 0.0 and t[-1] == 30.0
    # LIF defaults (tau 10, R I = 20, V_rest = V_reset = -65, V_th = -50, t_ref 2):
    # T = 10 ln 4, spikes at T and 2T + 2
    period = 10 * math.log(4)
    np.testing.assert_allclose(spikes, [period, 2 * period + 2], rtol=0, atol=1e-6)
    assert v.max() < -50.0 + 1e-9 and v.min() >= -65.0 - 1e-9
    assert meta["model"] == "lif" and meta["method"] == "reference"
    assert meta["parameters"]["tau"] == 10.0 and meta["parameters"]["V_th"] == -50.0
    assert meta["initial"] == {"V": -65.0}
    assert isinstance(meta["wall_time_s"], float) and 0 < meta["wall_time_s"] < 60
    png = plot.read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 1000
    # outputs get an ordinary file's permissions, like any file created here
    (tmp_path / "plain").touch()
    plain = (tmp_path / "plain").stat().st_mode & 0o777
    assert out.stat().st_mode & 0o777 == plain == plot.stat().st_mode & 0o777
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plain", "x.npz", "x.png"]


def test_solve_overrides_reach_the_output(tmp_path, capsys):
    out = tmp_path / "x.npz"
    status = main(["solve", "lif", "--method", "reference", "--t-end", "10", "--dt", "0.7",
                   "--set", "V_reset=-70", "--set", "t_ref=3", "--init", "V=-70",
                   "--out", str(out), "--quiet"])
    assert status == 0, capsys.readouterr().err
    with np.load(out, allow_pickle=False) as data:
        t, v = data["t"], data["V"]
        meta = json.loads(str(data["meta"]))
    # --dt 0.7 does not divide 10: a uniform grid of spacing <= 0.7 ending exactly at 10
    steps = np.diff(t)
    assert t[-1] == 10.0 and np.all(steps <= 0.7) and steps.min() > 0.6
    np.testing.assert_allclose(steps, steps[0], rtol=0, atol=1e-12)
    assert meta["parameters"]["V_reset"] == -70.0 and meta["parameters"]["t_ref"] == 3.0
    assert meta["initial"] == {"V": -70.0}
    # from -70 towards V_rest + R I = -45 with tau = 10 (no spike before 10 ms)
    np.testing.assert_allclose(v, -45.0 - 25.0 * np.exp(-t / 10.0), rtol=0, atol=1e-7)


def test_progress_bar_on_stderr_unless_quiet(capsys, monkeypatch):
    # a terminal
    monkeypatch.setattr("splitpinn.solvers.progress._interactive", lambda stream: True)
    assert main(["solve", "lif", "--method", "reference", "--t-end", "10"]) == 0
    captured = capsys.readouterr()
    assert "ms" in captured.err and "Traceback" not in captured.err
    assert "lif" in captured.out


def test_models_lists_library_and_presets(capsys):
    assert main(["models"]) == 0
    text = capsys.readouterr().out
    for name in ["lif", "izhikevich", "hh", "fhn", "morris-lecar", "frac-lif", "fo-hh",
                 "frac-izhikevich"]:
        assert any(line.split()[0] == name for line in text.splitlines() if line.strip()), name
    izh = next(line for line in text.splitlines() if line.startswith("izhikevich"))
    for preset in ["RS", "IB", "CH", "FS", "LTS", "TC", "RZ"]:
        assert preset in izh.split()



def test_parameter_that_breaks_an_equation_is_named(capsys):
    assert main(SOLVE + ["--set", "tau=0"]) == 2
    err = capsys.readouterr().err
    assert "tau = 0" in err and "equation of V" in err, err


def test_oversized_output_grid_refused_at_once(capsys):
    # 1e15 output points: refused before any work, with the size and the remedies
    assert main(["solve", "hh", "--method", "reference", "--t-end", "1e6", "--dt", "1e-9",
                 "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "GiB" in err and "dt" in err and "t_end" in err, err


def test_option_of_another_method_lists_the_known_ones(capsys):
    assert main(SOLVE + ["--trainer", "adam-lbfgs"]) == 2
    err = capsys.readouterr().err
    assert "--trainer does not apply to method reference" in err
    assert "--integrator" in err and "--history" in err  # what reference does take


def test_options_routed_to_the_methods_that_take_them():
    """Derived from the methods' signatures: --history goes to both, --scheme to split-PINN
    only, and nothing else is passed (the solvers keep their own defaults)."""
    from splitpinn.cli import _method_options, build_parser

    args = build_parser().parse_args(["compare", "lif", "--methods", "reference,split-pinn",
                                      "--t-end", "1", "--out", "x", "--history", "full",
                                      "--scheme", "lie"])
    assert _method_options(args, ["reference", "split-pinn"]) == {
        "reference": {"history": "full"}, "split-pinn": {"history": "full", "scheme": "lie"}}
    args = build_parser().parse_args(["solve", "hh", "--method", "vanilla-pinn", "--t-end", "1",
                                      "--seed", "3", "--iterations", "7"])
    assert _method_options(args, ["vanilla-pinn"]) == {
        "vanilla-pinn": {"iterations": 7, "seed": 3}}


def test_library_messages_translated_to_flags():
    from splitpinn.cli import _as_flags, build_parser

    args = build_parser().parse_args(SOLVE)
    assert _as_flags("history= applies to fractional-order models only", args) == \
        "--history applies to fractional-order models only"
    assert _as_flags("try integrator='Radau' or \"BDF\"", args) == \
        "try --integrator Radau or \"BDF\""
    # values, non-options and options without a flag stay as written
    for text in ["reference[integrator=adams,dt=0.0025]", "use x= or y=",
                 "trainer_options= is a dict"]:
        assert _as_flags(text, args) == text


def _solve_raising(monkeypatch, error):
    def failing(*args, **kwargs):
        raise error

    monkeypatch.setattr(splitpinn.api, "solve", failing)


def test_solver_error_is_reported_as_solver_failed(monkeypatch, tmp_path, capsys):
    """A numerical failure that the solvers report: exit 1, one line that keeps the message
    (options named as flags), no file."""
    _solve_raising(monkeypatch, SolverError("reference solver failed at t = 3 ms: step size "
                                            "underflow; try integrator='Radau'"))
    out = tmp_path / "x.npz"
    status = main(SOLVE + ["--out", str(out)])
    err = capsys.readouterr().err
    assert_clean_failure(status, err, expected=1)
    assert "step size underflow; try --integrator Radau" in err
    assert list(tmp_path.iterdir()) == []


def test_model_error_from_inside_a_solve_is_bad_input(monkeypatch, capsys):
    _solve_raising(monkeypatch, ModelError("lif: unknown parameter 'Q' (known: tau, R)"))
    status = main(SOLVE)
    err = capsys.readouterr().err
    assert_clean_failure(status, err, expected=2)
    assert "unknown parameter 'Q'" in err


@pytest.mark.parametrize("error", [
    np.linalg.LinAlgError("Singular matrix"),
    FloatingPointError("overflow encountered in exp"),
    ValueError("f(a) and f(b) must have different signs"),
    ZeroDivisionError("float division by zero"),
    RuntimeError("maximum recursion depth exceeded"),
    KeyError("ComplexInfinity"),
    TypeError("unsupported operand type(s) for +: 'NoneType' and 'float'"),
])
def test_any_other_exception_is_an_internal_error(error, monkeypatch, tmp_path, capsys):
    """Only a SolverError is a solver failure: anything else escaping a solve (numpy's and
    scipy's exceptions included: the solvers turn the failures they expect into
    SolverError) is a bug, said so in one line with its own exit status, no file."""
    _solve_raising(monkeypatch, error)
    out = tmp_path / "x.npz"
    status = main(SOLVE + ["--out", str(out)])
    err = capsys.readouterr().err
    assert_clean_failure(status, err, expected=3)
    assert f"{type(error).__name__}: {error}" in err and "please report" in err
    assert "solver failed" not in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("error, expected", [
    (OSError(28, "No space left on device"), "No space left on device"),
    (MemoryError(), "out of memory"),
])
def test_files_and_memory_are_not_bugs(error, expected, monkeypatch, capsys):
    """A file that cannot be written, memory that runs out: exit 2, not a solver failure
    nor a bug."""
    _solve_raising(monkeypatch, error)
    status = main(SOLVE)
    err = capsys.readouterr().err
    assert_clean_failure(status, err, expected=2)
    assert expected in err


@pytest.mark.parametrize("argv, expected", [
    # a stage that no step can pass (the solution blows up within nanoseconds)
    (["solve", "fhn", "--method", "split-pinn", "--t-end", "2", "--set", "tau=-1e-9"],
     "sub-problem w"),
    # a work limit reached; the remedy is given in command-line terms
    (["solve", "hh", "--method", "reference", "--t-end", "50", "--max-steps", "100"],
     "--integrator Radau"),
])
def test_real_numerical_failures_are_solver_failures(argv, expected, tmp_path, capsys):
    out = tmp_path / "x.npz"
    status = main(argv + ["--quiet", "--out", str(out)])
    err = capsys.readouterr().err
    assert_clean_failure(status, err, expected=1)
    assert expected in err
    assert not out.exists()


def test_internal_error_traceback_on_request(monkeypatch, capsys):
    _solve_raising(monkeypatch, KeyError("ComplexInfinity"))
    assert main(SOLVE) == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("splitpinn: internal error: KeyError: 'ComplexInfinity'")
    assert "SPLITPINN_TRACEBACK=1" in err
    monkeypatch.setenv("SPLITPINN_TRACEBACK", "1")
    with pytest.raises(KeyError):
        main(SOLVE)


def test_help_has_no_markup(capsys):
    """Command-line help is plain text: no reST roles or double backticks."""
    from splitpinn.cli import COMMANDS

    for argv in [["--help"]] + [[command, "--help"] for command in COMMANDS]:
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 0
        text = capsys.readouterr().out
        assert "usage: splitpinn" in text
        assert "``" not in text and not re.search(r":(class|func|mod|meth|data|attr):", text), \
            text
