"""The splitting planner: classification of the library models, scheme stages, overrides."""

import functools

import numpy as np
import pytest
import sympy as sp

from splitpinn import Model, ModelError, State, cli, models
from splitpinn.solvers.splitting import classify, plan, scheme_stages

x, y, z, k = sp.symbols("x y z k", real=True)


@functools.cache
def _bound(name):
    """Library models bound to their defaults (planning does not modify them)."""
    return models.get(name).bind()


def _kinds(name, **kwargs):
    the_plan = plan(_bound(name), **kwargs)
    return {s.name: (s.kind, s.decoupled) for s in the_plan.subproblems}


# -- classification of the library models -----------------------------------------------------


def test_hh_splits_into_voltage_and_decoupled_gates():
    kinds = _kinds("hh")
    # V' is affine in V with a coefficient -(g_Na m^3 h + g_K n^4 + g_L)/C of the gates;
    # x' = alpha_x(V)(1 - x) - beta_x(V) x for each gate, no gate in another gate's equation.
    assert list(kinds) == ["V", "m,h,n"]
    assert kinds["V"][0] == "conditionally linear"
    assert kinds["m,h,n"] == ("conditionally linear", True)


def test_hh_reasons_name_the_frozen_states():
    subs = plan(_bound("hh")).subproblems
    assert "h, m, n" in subs[0].reason
    assert "V" in subs[1].reason and "frozen" in subs[1].reason


def test_lif_is_one_linear_subproblem_without_splitting_error():
    the_plan = plan(_bound("lif"))
    assert [(s.name, s.kind) for s in the_plan.subproblems] == [("V", "linear")]
    assert the_plan.stages == [(0, 1.0)]
    assert the_plan.order == 0
    assert "no splitting error" in str(the_plan)


@pytest.mark.parametrize("name, fast, slow", [("izhikevich", "v", "u"), ("fhn", "v", "w")])
def test_quadratic_and_cubic_membranes_are_nonlinear(name, fast, slow):
    kinds = _kinds(name)
    assert kinds[fast][0] == "nonlinear"  # 0.04 v^2 + 5 v + ..., v - v^3/3 - ...
    # u' = a(b v - u) and w' = (v + a - b w)/tau: the coefficient of u (w) is a constant and
    # v enters only the inhomogeneous part, frozen over the sub-step -> linear, not merely
    # conditionally linear (the coefficient does not depend on the other state).
    assert kinds[slow][0] == "linear"


def test_morris_lecar_voltage_nonlinear_recovery_conditionally_linear():
    kinds = _kinds("morris-lecar")
    # m_inf(V)(V - V_Ca): dV'/dV contains V through tanh -> nonlinear.
    assert kinds["V"][0] == "nonlinear"
    # N' = phi cosh((V-V3)/(2V4)) (N_inf(V) - N): affine in N, coefficient depends on V.
    assert kinds["N"][0] == "conditionally linear"


def test_classify_on_hand_written_right_hand_sides():
    assert classify([-k * x + y + 3], [x], [y])[0] == "linear"
    assert classify([-y * x + 1], [x], [y])[0] == "conditionally linear"
    assert classify([x**2 - y], [x], [y])[0] == "nonlinear"
    # stricter than brian2: a coefficient containing the variable itself is nonlinear
    assert classify([x * sp.exp(x)], [x], [])[0] == "nonlinear"
    # coupling inside a group: dx'/dx = y with y one of the group's own states
    assert classify([x * y, -y], [x, y], [])[0] == "nonlinear"
    kind, reason = classify([-z * x + y, -x - z * y], [x, y], [z])
    assert kind == "conditionally linear" and "z" in reason


# -- scheme stages ------------------------------------------------------------------------------


def _fractions(stages, n):
    total = np.zeros(n)
    for i, c in stages:
        total[i] += c
    return total


@pytest.mark.parametrize("n", [2, 3])
@pytest.mark.parametrize("scheme", ["lie", "strang", "yoshida"])
def test_each_subproblem_advances_one_full_step(scheme, n):
    stages = scheme_stages(n, scheme)
    assert np.allclose(_fractions(stages, n), 1.0, rtol=0, atol=1e-14)
    # neighbouring stages of the same sub-problem are merged
    assert all(a[0] != b[0] for a, b in zip(stages, stages[1:], strict=False))


def test_lie_runs_each_subproblem_once_in_order():
    assert scheme_stages(3, "lie") == [(0, 1.0), (1, 1.0), (2, 1.0)]


@pytest.mark.parametrize("n", [2, 3])
def test_strang_is_symmetric(n):
    stages = scheme_stages(n, "strang")
    assert stages == stages[::-1]
    assert stages[0] == (0, 0.5) and stages[n - 1] == (n - 1, 1.0)


def test_yoshida_is_the_triple_jump():
    w1 = 1 / (2 - 2 ** (1 / 3))
    w0 = 1 - 2 * w1
    assert 2 * w1**3 + w0**3 == pytest.approx(0, abs=1e-14)  # the order-4 condition
    stages = scheme_stages(2, "yoshida")
    expected = [(0, w1 / 2), (1, w1), (0, (w1 + w0) / 2), (1, w0), (0, (w0 + w1) / 2),
                (1, w1), (0, w1 / 2)]
    assert [i for i, _ in stages] == [i for i, _ in expected]
    assert np.allclose([c for _, c in stages], [c for _, c in expected], rtol=1e-14)
    assert any(c < 0 for _, c in stages)
    assert stages == stages[::-1]


def test_single_subproblem_and_unknown_scheme():
    assert scheme_stages(1, "yoshida") == [(0, 1.0)]
    with pytest.raises(ModelError, match="unknown scheme"):
        scheme_stages(2, "euler")


@pytest.mark.parametrize("scheme, order", [("lie", 1), ("strang", 2), ("yoshida", 4)])
def test_plan_order_and_default_scheme(scheme, order):
    bound = _bound("hh")
    the_plan = plan(bound, scheme=scheme)
    assert the_plan.scheme == scheme and the_plan.order == order
    assert f"{scheme} (order {order})" in str(the_plan)
    assert plan(bound).scheme == "yoshida"


def test_fractional_plans_advance_each_memory_once_per_step():
    """Strang by default when only the last sub-problem (strang's middle one) is fractional;
    symmetric (the mean of Lie and reversed Lie, each advancing every sub-problem once over
    the step) when an outer one is too; a scheme that splits a fractional stage is
    refused."""
    assert plan(_bound("fo-hh")).stages == [(0, 0.5), (1, 1.0), (0, 0.5)]
    izhikevich = plan(_bound("frac-izhikevich"))
    assert izhikevich.scheme == "symmetric" and izhikevich.order == 2
    assert izhikevich.branches == [[(0, 1.0), (1, 1.0)], [(1, 1.0), (0, 1.0)]]
    assert "the mean of [v(1h) -> u(1h)] and [u(1h) -> v(1h)]" in str(izhikevich)
    assert plan(_bound("frac-izhikevich"), scheme="lie").branches == [[(0, 1.0), (1, 1.0)]]
    assert plan(_bound("frac-lif")).scheme == "lie"  # one sub-problem: nothing to split
    with pytest.raises(ModelError, match="once per step"):
        plan(_bound("frac-izhikevich"), scheme="strang")
    with pytest.raises(ModelError, match="once per step"):
        plan(_bound("fo-hh"), scheme="yoshida")


# -- overrides ------------------------------------------------------------------------------------


def test_custom_partition_is_classified_and_printed():
    the_plan = plan(_bound("hh"), partition=[["V", "m"], ["h", "n"]])
    subs = the_plan.subproblems
    assert [s.states for s in subs] == [["V", "m"], ["h", "n"]]
    # V' contains m^3 (V - E_Na) and m' contains V: each coefficient holds a group state
    assert subs[0].kind == "nonlinear"
    assert subs[1].kind == "conditionally linear" and subs[1].decoupled
    text = str(the_plan)
    assert "[0] V,m: nonlinear, solver pinn" in text
    assert "[1] h,n: conditionally linear, solver pinn" in text
    assert [s["states"] for s in the_plan.describe()["subproblems"]] == [["V", "m"], ["h", "n"]]


def test_three_way_partition_of_hh():
    the_plan = plan(_bound("hh"), scheme="strang", partition=[["V"], ["m"], ["h", "n"]])
    assert len(the_plan.subproblems) == 3
    assert np.allclose(_fractions(the_plan.stages, 3), 1.0)


def test_solver_per_subproblem_appears_in_plan_and_describe():
    the_plan = plan(_bound("hh"), solvers={"V": "exact", "m,h,n": "classical"})
    assert [s.solver for s in the_plan.subproblems] == ["exact", "classical"]
    text = str(the_plan)
    assert "[0] V: conditionally linear, solver exact" in text
    assert "[1] m,h,n: conditionally linear, solver classical" in text
    described = the_plan.describe()["subproblems"]
    assert [(d["states"], d["solver"]) for d in described] == [
        (["V"], "exact"), (["m", "h", "n"], "classical")]
    # keyed by the first state of a group; unmentioned sub-problems stay pinn
    the_plan = plan(_bound("hh"), solvers={"m": "exact"})
    assert [s.solver for s in the_plan.subproblems] == ["pinn", "exact"]
    # one solver for all
    assert {s.solver for s in plan(_bound("hh"), solvers="classical").subproblems} \
        == {"classical"}


@pytest.mark.parametrize("partition, match", [
    ([["V", "m"], ["h", "q"]], "unknown state 'q'"),
    ([["V", "m"], ["h"]], "every state exactly once"),
    ([["V", "m"], ["m", "h", "n"]], "every state exactly once"),
    ([["V", "m", "h", "n"], []], "every state exactly once"),
])
def test_bad_partitions_raise(partition, match):
    with pytest.raises(ModelError, match=match):
        plan(_bound("hh"), partition=partition)


@pytest.mark.parametrize("solvers, match", [
    ("rk45", "unknown sub-solver"),
    ({"V": "magic"}, "unknown sub-solver"),
    ({"h": "exact"}, "not a sub-problem"),
    ({"Q": "pinn"}, "not a sub-problem"),
    (["pinn", "exact"], "solvers must be one sub-solver's name or a mapping"),  # before: an
    # AttributeError ('list' object has no attribute 'get')
])
def test_bad_solvers_raise(solvers, match):
    with pytest.raises(ModelError, match=match):
        plan(_bound("hh"), solvers=solvers)


def test_unknown_scheme_in_plan_raises():
    with pytest.raises(ModelError, match="unknown scheme"):
        plan(_bound("hh"), scheme="ruth")


@pytest.mark.parametrize("name, state", [("izhikevich", "v"), ("fhn", "v"),
                                         ("morris-lecar", "V")])
def test_exact_solver_on_nonlinear_subproblem_raises(name, state):
    with pytest.raises(ModelError, match="nonlinear"):
        plan(_bound(name), solvers={state: "exact"})


def test_exact_solver_on_declared_nonlinear_model_raises():
    bound = Model("logistic", [State("x", 0.1)], {"x": x * (1 - x)}, {}).bind()
    with pytest.raises(ModelError, match="nonlinear"):
        plan(bound, solvers={"x": "exact"})
    assert plan(bound, solvers={"x": "classical"}).subproblems[0].solver == "classical"


def test_exact_solver_refuses_a_time_dependent_stimulus():
    """The exact flow freezes the right-hand side's inhomogeneous part at the stage start, so a
    sinusoidal drive cannot have an exact sub-flow: the planner must refuse, not mislead."""
    from splitpinn import I_ext
    from splitpinn.declare.stimulus import sinusoid

    a = sp.Symbol("a", real=True)
    driven = Model("drive", [State("x", 0.0)], {"x": -a * x + I_ext}, {"a": 1.0},
                   stimulus=sinusoid(2.0, 100.0))
    with pytest.raises(ModelError, match="time-dependent"):
        plan(driven.bind(), solvers="exact")
    constant = Model("drive", [State("x", 0.0)], {"x": -a * x + I_ext}, {"a": 1.0}, stimulus=2.0)
    assert plan(constant.bind(), solvers="exact").subproblems[0].kind == "linear"


# -- command line ------------------------------------------------------------------------------


def test_cli_plan_hh_prints_both_subproblems(capsys):
    assert cli.main(["plan", "hh"]) == 0
    out = capsys.readouterr().out
    assert "splitting plan for hh: yoshida (order 4)" in out
    assert "[0] V: conditionally linear, solver pinn" in out
    assert "[1] m,h,n: conditionally linear, solver pinn" in out
    assert "dV/dt = " in out and "dn/dt = " in out
    assert "stages: V(" in out


def test_cli_plan_scheme_option_and_bad_scheme(capsys):
    assert cli.main(["plan", "izhikevich", "--scheme", "lie"]) == 0
    out = capsys.readouterr().out
    assert "lie (order 1), 2 stage(s) per step" in out
    assert "[0] v: nonlinear" in out and "[1] u: linear" in out
    assert cli.main(["plan", "hh", "--scheme", "bogus"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "unknown scheme" in err
