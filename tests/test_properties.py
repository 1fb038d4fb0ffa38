"""Property-based tests (hypothesis): any input either solves or ends with one clear error.

Over every library model and the methods "reference" and "split-pinn", with random parameter
values (near their defaults and far outside physical ranges), initial values, t_end and dt:
a solve returns finite states or raises ModelError (bad input) or SolverError (a numerical
failure), never anything else; the command line exits 0, 1 or 2 with no traceback.

Profiles: "ci" (the default, a few examples, part of ``make test``) and "long" (many more):
``HYPOTHESIS_PROFILE=long .venv/bin/pytest tests/test_properties.py``.
"""

import contextlib
import io
import os
import signal
from functools import cache

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import splitpinn
from splitpinn import ModelError, SolverError, models
from splitpinn.cli import main

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


@given(problems())
def test_solve_returns_finite_states_or_a_documented_error(problem):
    name, method, t_end, dt, parameters, initial, preset = problem
    try:
        with time_limit(problem):
            solution = splitpinn.solve(name, method, t_end, dt, parameters=parameters,
                                       initial=initial, preset=preset)
    except (ModelError, SolverError) as exc:
        assert str(exc).strip(), "an error without a message"
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
