"""Property-based tests (hypothesis): any input either solves or ends with one clear error.

Over every library model and the methods "reference" and "split-pinn", with random parameter
values (near their defaults and far outside physical ranges), initial values, t_end and dt:
a solve returns finite states or raises ModelError (bad input) or SolverError (a numerical
failure), never anything else; the command line exits 0, 1 or 2 with no traceback (3 is an
internal error: a bug).

A SolverError must be plausible for its input (:func:`assert_plausible_failure`): the solve
gave up on a step that was not short against the dynamics there — a blow-up, a stiff or a
fast-firing region — as an independent solve (the reference with the implicit Radau) shows.

Profiles: "ci" (the default, a few examples, part of ``make test``) and "long" (many more):
``HYPOTHESIS_PROFILE=long .venv/bin/pytest tests/test_properties.py``.
"""

import contextlib
import io
import math
import os
import re
import signal
import warnings
from functools import cache

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import splitpinn
from splitpinn import ModelError, SolverError, models
from splitpinn.cli import main
from splitpinn.numeric.kernels import SAME_TIME
from splitpinn.solvers.driver import default_output_dt

settings.register_profile("ci", max_examples=6, deadline=None, derandomize=True, database=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("long", max_examples=300, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

METHODS = ["reference", "split-pinn"]
#: Seconds one example may take: a solve that cannot finish must end with an error instead.
TIME_LIMIT = 60
#: Out-of-range values tried for any parameter or initial value.
EXTREMES = [0.0, -1.0, 1e-9, 1e6, -1e6]


class TookTooLong(BaseException):  # not an Exception: the command line must not catch it
    pass


@contextlib.contextmanager
def time_limit(what):
    """Fail (raise :class:`TookTooLong`) when the block runs longer than ``TIME_LIMIT``."""
    def expire(signum, frame):
        raise TookTooLong(f"still running after {TIME_LIMIT} s: {what}")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(TIME_LIMIT)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@cache
def model(name: str):
    return models.get(name)


def value_near(default: float):
    """A value for a parameter or state: the default, a rescaling of it (signs flipped too),
    an extreme, or anything moderate."""
    return st.one_of(
        st.just(default),
        st.floats(0.1, 10.0).map(lambda f: default * f),
        st.floats(-3.0, 3.0).map(lambda f: -default * 10**f),
        st.sampled_from(EXTREMES),
        st.floats(-500.0, 500.0),
    )


@st.composite
def problems(draw):
    """(model name, method, t_end, dt, parameters, initial, preset)."""
    name = draw(st.sampled_from(models.names()))
    m = model(name)
    chosen = draw(st.lists(st.sampled_from(list(m.parameters)), max_size=3, unique=True))
    parameters = {p: draw(value_near(m.parameters[p])) for p in chosen}
    bound = m.bind()
    states = draw(st.lists(st.sampled_from(m.state_names), max_size=2, unique=True))
    initial = {s: draw(value_near(float(bound.y0[bound.index(s)]))) for s in states}
    preset = draw(st.one_of(st.none(), st.sampled_from(list(m.presets)))) if m.presets \
        else None
    t_end = draw(st.floats(0.05, 5.0))
    dt = draw(st.one_of(st.none(), st.floats(t_end / 100, t_end)))
    return name, draw(st.sampled_from(METHODS)), t_end, dt, parameters, initial, preset


# -- when is a SolverError plausible? ------------------------------------------------------------
#: A step of length h is short against a rate r (per ms) while r·h is below this: a solver
#: that gave up on steps that short, where the dynamics are that slow, has a bug.  (A
#: least-squares PINN stage resolves r·h up to a few; an explicit integrator is stable up to
#: r·h ≈ 3; the failures seen have r·h from 0.84 — a fixed-step split-PINN on an Izhikevich
#: upswing — to 1e5.)
PLAUSIBLE = 0.5

_TIME = re.compile(r"\bt = ([-+0-9.e]+) ms")
_STEPS = re.compile(r"steps of ([-+0-9.e]+) ms")
_WORK = re.compile(r"more than (\d+) steps before t = ([-+0-9.e]+) ms")


def failure_point(message: str, model_name: str, dt):
    """(t, h) of a SolverError: the time where the solve gave up and the step it was down to
    (None where the message names none: an integrator's own step underflow)."""
    work = _WORK.search(message)
    if work:  # the work limit: the mean step up to there
        return float(work[2]), float(work[2]) / int(work[1])
    time = _TIME.search(message)
    assert time, f"a SolverError that does not say where: {message!r}"
    steps = _STEPS.search(message)
    if steps:
        return float(time[1]), float(steps[1])
    if "Newton" in message:  # the fixed step of the fractional reference
        return float(time[1]), dt or default_output_dt(model(model_name).bind())
    return float(time[1]), None


def rate(bound, t: float, y) -> float:
    """How fast the solution moves at (t, y), per ms: the largest of the Jacobian's spectral
    radius and |f_i| / max(|y_i|, 1) (a fast-firing neuron moves fast without being stiff);
    for Caputo order α < 1 the time scale of a rate r is r^(-1/α)."""
    params = bound.params(0)
    stim = float(np.asarray(bound.stimulus_columns(t, params)).reshape(-1)[0])
    states = [np.float64(v) for v in y]
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        jac = np.array(bound.jacobian_columns(t, stim, states, params), dtype=float)
        f = np.array(bound.rhs_columns(t, stim, states, params), dtype=float).reshape(-1)
        jac = jac.reshape(len(states), len(states))
        if not (np.all(np.isfinite(jac)) and np.all(np.isfinite(f))):
            return math.inf
        r = max(float(np.max(np.abs(np.linalg.eigvals(jac)))),
                float(np.max(np.abs(f) / np.maximum(np.abs(y), 1.0))))
    alpha = float(np.min(bound.orders))
    return r ** (1 / alpha) if r > 1 else r


def _probe(problem, t_probe: float):
    """An independent solve up to ``t_probe`` — the reference with Radau (implicit,
    stiff-capable) for integer order, the L2-1σ reference for fractional order: its (t, y)
    pairs and spike times, and the time where it failed (None if it did not)."""
    name, _, _, _, parameters, initial, preset = problem
    fractional = model(name).bind().fractional
    if fractional and t_probe < 1e-3:  # a graded onset over 1 ms on such steps: too big
        return [], [], None
    options = {} if fractional else {"integrator": "Radau"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            solution = splitpinn.solve(name, "reference", t_probe, t_probe / 50,
                                       parameters=parameters, initial=initial, preset=preset,
                                       **options)
        except SolverError as exc:
            return [], [], float(_TIME.search(str(exc))[1])
    return list(zip(solution.t, solution.y.T, strict=True)), solution.spike_times, None


def assert_plausible_failure(problem, exc: SolverError) -> None:
    """A SolverError is plausible where the solution is too fast for the step the solver gave
    up on: rate·h >= :data:`PLAUSIBLE`, the rate being the fastest (:func:`rate`, or the
    firing rate) at the start or along an independent solve up to the failure, and a step
    below SAME_TIME (an instant: the marching loop stops after 100 tries that short) or none
    named (an integrator's own step underflow) counting as SAME_TIME.  It is plausible too
    where the independent solve cannot get past that time either (a blow-up)."""
    name, method, t_end, dt, parameters, initial, preset = problem
    message = str(exc)
    t_fail, h = failure_point(message, name, dt)
    bound = model(name).bind(parameters, initial=initial, preset=preset)
    path, spikes, probe_failed = _probe(problem, min(t_end, t_fail + (h or 0.0)))
    if probe_failed is not None:
        if probe_failed <= 1.01 * t_fail + (h or 0.0):
            return
        path, spikes, _ = _probe(problem, 0.9 * probe_failed)  # how it got there
    fastest = max(rate(bound, float(t), y) for t, y in [(0.0, bound.y0), *path])
    if len(spikes) > 1:
        fastest = max(fastest, 1.0 / max(float(np.min(np.diff(spikes))), 1e-300))
    step = max(h or 0.0, SAME_TIME)
    assert fastest * step >= PLAUSIBLE, \
        (f"{message!r}, but the solution's fastest rate there is {fastest:.3g}/ms: steps of "
         f"{step:.3g} ms are short against it ({problem})")


def test_the_plausibility_check_rejects_a_failure_on_slow_dynamics():
    """A SolverError on a slow problem (LIF at its defaults, rate 1/τ = 0.1/ms) at steps of
    0.01 ms is not plausible; the same on FitzHugh–Nagumo with τ = 1e-9 ms is."""
    problem = ("lif", "split-pinn", 5.0, None, {}, {}, None)
    failure = SolverError("sub-problem V: no stage met its tolerance at t = 2 ms, even on "
                          "steps of 0.01 ms; the solution may blow up")
    with pytest.raises(AssertionError, match="short against it"):
        assert_plausible_failure(problem, failure)
    stiff = ("fhn", "split-pinn", 5.0, None, {"tau": 1e-9}, {}, None)
    assert_plausible_failure(stiff, failure)
    with pytest.raises(AssertionError, match="does not say where"):
        assert_plausible_failure(problem, SolverError("the solver failed"))


@given(problems())
def test_solve_returns_finite_states_or_a_documented_error(problem):
    name, method, t_end, dt, parameters, initial, preset = problem
    try:
        with time_limit(problem):
            solution = splitpinn.solve(name, method, t_end, dt, parameters=parameters,
                                       initial=initial, preset=preset)
    except ModelError as exc:
        assert str(exc).strip(), "an error without a message"
        return
    except SolverError as exc:
        assert_plausible_failure(problem, exc)
        return
    assert np.all(np.isfinite(solution.y)), solution.y
    assert solution.t[0] == 0.0 and abs(solution.t[-1] - t_end) < 1e-9 * max(1.0, t_end)
    assert solution.y.shape == (len(model(name).state_names), solution.t.size)


def _assignment(name: str):
    """``NAME=VALUE`` with a number, an extreme or some text that is not a number."""
    number = st.one_of(st.floats(allow_nan=True, allow_infinity=True),
                       st.sampled_from(EXTREMES)).map(repr)
    return st.one_of(number, st.text(max_size=5)).map(lambda v: f"{name}={v}")


@st.composite
def command_lines(draw):
    name = draw(st.one_of(st.sampled_from(models.names()), st.text(max_size=6)))
    m = model(name) if name in models.names() else None
    method = draw(st.sampled_from(METHODS + ["vanilla-pinn", "x"]))
    argv = ["solve", name, "--method", method,
            "--t-end", draw(st.one_of(st.floats(0.05, 3.0).map(repr),
                                      st.sampled_from(["0", "-1", "nan", "inf", "ten"]))),
            "--quiet"]
    if method == "vanilla-pinn":
        argv += ["--iterations", "2"]  # the default trains for minutes
    if draw(st.booleans()):
        argv += ["--dt", draw(st.one_of(st.floats(0.01, 1.0).map(repr),
                                        st.sampled_from(["0", "-0.1", "1e-300", "x"])))]
    names = list(m.parameters) + ["nosuch"] if m else ["I"]
    for p in draw(st.lists(st.sampled_from(names), max_size=2, unique=True)):
        argv += ["--set", draw(_assignment(p))]
    if m and draw(st.booleans()):
        argv += ["--init", draw(_assignment(draw(st.sampled_from(m.state_names))))]
    if draw(st.booleans()):
        argv += draw(st.sampled_from([["--history", "fast"], ["--trainer", "adam-lbfgs"],
                                      ["--integrator", "RK45"], ["--scheme", "strang"],
                                      ["--seed", "3"], ["--iterations", "1"]]))
    return argv


@given(command_lines())
def test_command_line_exits_cleanly(argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), time_limit(argv):
        status = main(argv)
    text = err.getvalue()
    assert status in (0, 1, 2), (argv, status, text)
    assert "Traceback" not in text and "internal error" not in text, (argv, text)
    if status:
        last = text.strip().splitlines()[-1]
        prefix = "splitpinn: error: " if status == 2 else "splitpinn: solver failed: "
        assert last.startswith(prefix), (argv, text)
    else:
        assert "spikes" in out.getvalue()
