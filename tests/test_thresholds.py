"""Strict thresholds (``lhs > rhs``) as Brian2 reads them: a state exactly at the threshold
is below it.  Judged by construction: the cases sit exactly on the threshold in floating
point, where ``>`` and ``>=`` must differ."""

import pytest

import splitpinn
from splitpinn import Model, ModelError

LIF = "dv/dt = (v_rest - v + R*I)/tau : volt"
PARAMETERS = {"v_rest": "-65*mV", "R": "10*Mohm", "tau": "10*ms", "v_th": "-50*mV",
              "v_reset": "-65*mV"}


def _lif(threshold: str, current: str, **extra) -> Model:
    return Model.from_equations(LIF, name="lif", threshold=threshold, reset="v = v_reset",
                                parameters={**PARAMETERS, "I": current},
                                initial={"v": "-65*mV"}, **extra)


def test_equilibrium_exactly_at_a_strict_threshold_never_fires():
    """At the rheobase (R I = 15 mV) the equilibrium is exactly V_th = −50 mV, and the
    compiled split-PINN steps reach it to the last bit: ``v > v_th`` never fires,
    ``v >= v_th`` does.  (The numpy path's rounding ends one ulp above V_th and fires under
    either: a rounding past the threshold, not a threshold rule.)"""
    strict = splitpinn.solve(_lif("v > v_th", "1.5*nA"), "split-pinn", 1000.0, 1.0)
    assert strict.y[0, -1] == -50.0  # the case is the one it claims to be
    assert len(strict.spike_times) == 0
    loose = splitpinn.solve(_lif("v >= v_th", "1.5*nA"), "split-pinn", 1000.0, 1.0)
    assert len(loose.spike_times) >= 1


def test_a_start_exactly_at_a_strict_threshold_is_below_it():
    """v(0) = V_th: legal and silent for ``>`` (v decays), refused for ``>=`` (it would fire
    at t0 unseen)."""
    decay = "dv/dt = (v_rest - v)/tau : volt"
    common = {"name": "decay", "reset": "v = v_rest", "initial": {"v": "-50*mV"},
              "parameters": {"v_rest": "-65*mV", "tau": "10*ms", "v_th": "-50*mV"}}
    model = Model.from_equations(decay, threshold="v > v_th", **common)
    for method in ("reference", "split-pinn"):
        assert len(splitpinn.solve(model, method, 10.0).spike_times) == 0
    with pytest.raises(ModelError, match="starts at or past the threshold"):
        splitpinn.solve(Model.from_equations(decay, threshold="v >= v_th", **common),
                        "reference", 10.0)


def test_a_reset_exactly_to_a_strict_threshold_is_legal_without_refractoriness():
    """``v = v_th`` after a spike of ``v > v_th`` is below the threshold, so it needs no
    refractory period; after a spike of ``v >= v_th`` it would fire again at once, which is
    refused (here checked before any spike: no current, the neuron rests)."""
    parameters = {k: v for k, v in PARAMETERS.items() if k != "v_reset"}
    common = {"name": "lif", "reset": "v = v_th", "initial": {"v": "-65*mV"},
              "parameters": {**parameters, "I": "0*nA"}}
    with pytest.raises(ModelError, match="past"):
        splitpinn.solve(Model.from_equations(LIF, threshold="v >= v_th", **common),
                        "reference", 20.0)
    sol = splitpinn.solve(Model.from_equations(LIF, threshold="v > v_th", **common),
                          "reference", 20.0)
    assert len(sol.spike_times) == 0
