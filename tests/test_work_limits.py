"""The work limit: ``max_steps=`` (``--max-steps``) reaches every method, integer and
fractional, and its default never refuses the fixed steps that a solve asked for."""

import numpy as np
import pytest

import splitpinn
from splitpinn.cli import main
from splitpinn.errors import SolverError
from splitpinn.solvers.marching import default_max_steps
from splitpinn.solvers.onsets import Onsets


@pytest.mark.parametrize("model, method, options", [
    ("lif", "reference", {}),
    ("lif", "split-pinn", {}),
    ("lif", "split-pinn", {"fixed_step": True}),
    ("frac-lif", "reference", {}),
    ("frac-lif", "reference", {"integrator": "l1"}),
    ("frac-lif", "reference", {"integrator": "adams"}),
    ("frac-lif", "split-pinn", {}),
])
def test_max_steps_reaches_every_method(model, method, options):
    """Three steps cannot reach 10 ms in any of them (the fractional ones were not limited
    at all: the option was dropped)."""
    with pytest.raises(SolverError, match=r"more than 3 steps before .*max_steps="):
        splitpinn.solve(model, method, 10.0, max_steps=3, **options)
    solved = splitpinn.solve(model, method, 10.0, max_steps=10**6, **options)
    assert solved.t[-1] == 10.0


@pytest.mark.parametrize("method", ["reference", "split-pinn"])
def test_the_command_line_limit_is_named_by_its_flag(method, capsys):
    status = main(["solve", "frac-lif", "--method", method, "--t-end", "10", "--max-steps", "5",
                   "--quiet"])
    err = capsys.readouterr().err
    assert status == 1 and "more than 5 steps" in err and "--max-steps" in err
    assert "max_steps=" not in err and len(err.splitlines()) == 1


def test_the_default_limit_counts_the_requested_grid():
    """frac-LIF by L1 on 2 ms at dt = 1e-4 ms asks for 20 000 steps, more than 10 000 +
    1000/ms: refused before, solved now (200 ms at dt = 5e-4 ms, 400 000 steps, likewise)."""
    assert default_max_steps(0.0, 2.0) < 20_000
    solved = splitpinn.solve("frac-lif", "reference", 2.0, 1e-4, integrator="l1", traces=False)
    assert solved.meta["solver"]["steps_accepted"] == 20_000


def test_the_default_limit_holds_the_graded_steps_after_an_onset():
    """L2-1σ grades its steps after an onset over 1 ms: on a grid that ends 0.5 ms after the
    start those steps outnumber the grid's several times over; the default limit of a
    fixed-step march counts them (the steps here are the union of the grid and the graded
    stretch, as the march takes them)."""
    bound = splitpinn.models.get("frac-lif").bind({"alpha": 0.6})
    grid = np.linspace(0.0, 0.5, 5001)
    graded = Onsets(bound.orders, grid, np.zeros(0)).graded_stretch(0.0)
    steps = np.union1d(np.round(graded, 12), np.round(grid[1:], 12)).size
    assert steps > 5 * (len(grid) - 1)
    from splitpinn.solvers.marching import _planned

    assert default_max_steps(0.0, 0.5, _planned(bound, grid)) >= steps
