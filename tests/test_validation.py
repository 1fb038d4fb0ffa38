"""Early input checks: parameters that break an equation, output grids too large for memory."""

import numpy as np
import pytest
import sympy as sp

import splitpinn
from splitpinn import Event, Model, ModelError, State, models
from splitpinn.numeric.validation import check_finite_equations, check_output_size

x, a, b, k, w = sp.symbols("x a b k w", real=True)


def toy(equation, parameters, **kwargs):
    return Model("toy", [State("x", 1.0)], {"x": equation}, parameters, **kwargs)


@pytest.mark.parametrize("name", models.names())
def test_library_defaults_pass(name):
    check_finite_equations(models.get(name), {})


def test_tau_zero_names_parameter_and_equation():
    with pytest.raises(ModelError) as info:
        check_finite_equations(models.get("lif"), {"tau": 0.0})
    message = str(info.value)
    assert "parameter tau = 0 makes the equation of V infinite or undefined" in message
    assert "dV/dt = " in message and "/tau" in message
    # the other parameters of that equation are not blamed
    assert "R =" not in message and "V_rest =" not in message


def test_near_zero_is_fine():
    check_finite_equations(models.get("lif"), {"tau": 1e-6})
    check_finite_equations(models.get("hh"), {"C": -1.0})  # unphysical but finite


def test_blames_the_auxiliary_it_goes_through():
    with pytest.raises(ModelError, match=r"V2 = 0 makes the equation of V .*through "
                                         r"auxiliary m_inf"):
        check_finite_equations(models.get("morris-lecar"), {"V2": 0.0})


def test_a_combination_lists_every_parameter_of_the_expression():
    # 1/(a - b) breaks only for a = b: neither parameter alone is to blame
    model = toy(-x / (a - b), {"a": 1.0, "b": 2.0})
    check_finite_equations(model, {"a": 1.5})
    with pytest.raises(ModelError, match=r"parameters a = 2, b = 2 make the equation of x"):
        check_finite_equations(model, {"a": 2.0})


def test_undefined_and_complex_values():
    with pytest.raises(ModelError, match="k = 0"):  # sin(0)/0: nan
        check_finite_equations(toy(-x * sp.sin(k) / k, {"k": 1.0}), {"k": 0.0})
    with pytest.raises(ModelError, match="k = -1 makes the equation of x"):  # sqrt(-1): complex
        check_finite_equations(toy(-sp.sqrt(k) * x, {"k": 1.0}), {"k": -1.0})
    with pytest.raises(ModelError, match="k = inf"):
        check_finite_equations(toy(-k * x, {"k": 1.0}), {"k": np.inf})


def test_stimulus_and_events_are_checked():
    stimulated = toy(-x + sp.Symbol("I_ext", real=True), {"w": 1.0}, stimulus=5 / w)
    with pytest.raises(ModelError, match="w = 0 makes the stimulus"):
        check_finite_equations(stimulated, {"w": 0.0})
    reset = toy(1 + 0 * x, {"a": 1.0, "b": 1.0},
                events=[Event(sp.Ge(x, 2 / b), {"x": a / b})])
    with pytest.raises(ModelError, match=r"b = 0 makes the condition of event 0"):
        check_finite_equations(reset, {"b": 0.0})


def test_batch_names_the_neuron():
    tau = np.array([10.0, 5.0, 0.0, 0.0])
    with pytest.raises(ModelError, match=r"tau = 0 \(neuron 2\)"):
        check_finite_equations(models.get("lif"), {"tau": tau, "I": 1.0})
    check_finite_equations(models.get("lif"), {"I": np.linspace(-5, 5, 11)})


def test_solve_refuses_tau_zero():
    """Through the public API (splitpinn.solve calls the check before lambdifying)."""
    with pytest.raises(ModelError) as info:
        splitpinn.solve("lif", "reference", 10.0, parameters={"tau": 0})
    assert "tau = 0" in str(info.value) and "equation of V" in str(info.value)


# -- output size -------------------------------------------------------------------------------
GiB = 2**30


def test_output_size_limit_is_exact():
    # 2**26 times x (3 states + the time axis) x 8 bytes = 2 GiB exactly
    check_output_size(2**26, 3, limit_bytes=2 * GiB)
    with pytest.raises(ModelError, match=r"needs 2 GiB, more than the 2 GiB allowed"):
        check_output_size(2**26, 3, limit_bytes=2 * GiB - 1)
    # a batch multiplies the states, not the time axis: 2**26 x (3 x 4 + 1) x 8 = 6.5 GiB
    with pytest.raises(ModelError, match=r"x 4 neurons needs 6.5 GiB"):
        check_output_size(2**26, 3, batch=4, limit_bytes=6 * GiB)


def test_output_size_message_says_how_to_change_it():
    with pytest.raises(ModelError) as info:
        check_output_size(1e10, 4, limit_bytes=GiB)
    message = str(info.value)
    assert "373 GiB" in message  # 1e10 x 5 x 8 bytes
    for remedy in ("larger dt", "shorter t_end", "traces=False"):
        assert remedy in message
    with pytest.raises(ModelError):
        check_output_size(float("inf"), 1)


def test_default_limit_allows_ordinary_runs():
    check_output_size(10**6 + 1, 4, batch=10)  # 100 ms of HH at 1e-4 ms, 10 neurons: 0.3 GiB


def test_solve_refuses_an_oversized_grid_at_once():
    # 1e15 output times: refused by the check, not by a failed allocation
    with pytest.raises(ModelError, match="GiB"):
        splitpinn.solve("hh", "reference", 1e6, 1e-9)
