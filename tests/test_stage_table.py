"""The tabulated frozen-coefficient stage against the same least-squares fit solved directly
in 40-digit arithmetic (mpmath), and its residual bounds against the fit's residuals."""

import math

import mpmath
import numpy as np
import pytest

from splitpinn.api import resolve_model
from splitpinn.numeric import kernels
from splitpinn.numeric.stage_table import WIDTH, Z_HIGH, Z_LOW, StageTable, direct_stage
from splitpinn.solvers.subsolvers import LeastSquaresPINN


@pytest.fixture(scope="module")
def system():
    bound = resolve_model("hh").bind({})
    return LeastSquaresPINN(bound).frozen_system()


def _precise_end_value(system, z: float) -> float:
    """E(z) from the normal equations solved with 40 significant digits."""
    g0, g1, g2, o_sum, v_sum, *_, end = system
    with mpmath.workdps(40):
        z, mat = mpmath.mpf(float(z)), mpmath.matrix
        m = mat(g0.tolist()) - z * mat(g1.tolist()) + z * z * mat(g2.tolist())
        w = mpmath.lu_solve(m, mat(o_sum.tolist()) - z * mat(v_sum.tolist()))
        return float(sum(w[k] * end[k] for k in range(len(end))))


def _table_end_value(table, z: float) -> float:
    """E(z) as the composed step takes it from the table (kernels.tabulated_stage with
    u0 = 0, b = 1 and no tolerance to meet)."""
    value, _ = kernels.tabulated_stage(z, 1.0, 0.0, Z_LOW, WIDTH, table.coefficients,
                                       table.residual, table.reach, math.inf)
    return value


def test_the_table_is_as_accurate_as_the_direct_solve(system):
    """Where a stage can meet its tolerance (z in [-20, 4]), E from the table is within
    1e-12 (relative to max(1, |E|)) of the precise value, no worse than the direct solve."""
    table = StageTable.from_system(system)
    z = np.random.default_rng(0).uniform(-20.0, 4.0, 25)
    precise = np.array([_precise_end_value(system, v) for v in z])
    scale = np.maximum(1.0, np.abs(precise))
    table_error = np.abs([_table_end_value(table, v) for v in z] - precise) / scale
    direct_error = np.abs(direct_stage(system, z)[0] - precise) / scale
    assert table_error.max() <= 1e-12
    assert table_error.max() <= max(10 * direct_error.max(), 1e-15)


def test_the_residual_bounds_hold_on_every_piece(system):
    """Per piece, the bounds exceed the largest |ρ| and |ν| of the fit at 40 points."""
    table = StageTable.from_system(system)
    z = np.linspace(Z_LOW, Z_HIGH, 40 * len(table.residual), endpoint=False)
    _, residuals, values = direct_stage(system, z)
    piece = ((z - Z_LOW) / WIDTH).astype(int)
    assert np.all(np.abs(residuals).max(axis=1) <= table.residual[piece])
    assert np.all(np.abs(values).max(axis=1) <= table.reach[piece])
    # the bound is not vacuous where steps live: the residual of a z in [-1, 0] is tiny
    near = (z >= -1) & (z < 0)
    assert table.residual[piece[near]].max() < 1e-10


def test_the_kernel_takes_the_table_only_where_its_bound_meets_the_tolerance(system):
    """kernels.tabulated_stage: u0 + b·E(z) with the bound where that meets tol; (NaN, inf)
    outside the table or when the bound misses tol (the composed step then solves)."""
    table = StageTable.from_system(system)
    args = (Z_LOW, WIDTH, table.coefficients, table.residual, table.reach)
    value, bound = kernels.tabulated_stage(-0.3, 0.02, -65.0, *args, 1e-8)
    assert value == pytest.approx(-65.0 + 0.02 * _precise_end_value(system, -0.3), abs=1e-14)
    assert 0 < bound <= 1e-8
    for z, b in [(Z_HIGH + 1, 0.02), (Z_LOW - 1, 0.02), (-0.3, np.nan), (-30.0, 5.0)]:
        value, bound = kernels.tabulated_stage(z, b, 0.5, *args, 1e-8)
        assert np.isnan(value) and bound == np.inf


def test_a_system_is_tabulated_once_per_process(system):
    """Every solve with the same trainer basis shares one table."""
    table = StageTable.of(system)
    assert StageTable.of(tuple(np.array(a) for a in system)) is table
    np.testing.assert_array_equal(table.coefficients,
                                  StageTable.from_system(system).coefficients)
