"""The registry: names resolve to working implementations, options come from their signatures,
unknown names and options are refused with the known ones."""

import inspect

import numpy as np
import pytest
from exact import mittag_leffler

import splitpinn
from splitpinn import ModelError, models
from splitpinn.solvers import registry
from splitpinn.solvers.registry import Entry


def test_kinds_and_names():
    assert registry.names("method") == ("reference", "split-pinn", "vanilla-pinn")
    assert registry.names("trainer") == ("least-squares", "adam-lbfgs")
    assert {"DOP853", "RK45", "Radau", "BDF", "LSODA", "l1", "adams"} <= \
        set(registry.names("integrator"))


def test_options_are_read_from_the_signature():
    """A made-up entry: its options are whatever its target's signature says, minus the
    parameters the caller supplies, with their defaults."""
    entry = Entry("method", "dumps", "json:dumps", frozenset({"obj"}), "")
    import json

    expected = [p for p in inspect.signature(json.dumps).parameters.values()
                if p.name != "obj" and p.kind is not p.VAR_KEYWORD]
    assert list(entry.options.values()) == expected
    assert entry.options["indent"].default is None


def test_solve_options_exclude_what_solve_supplies():
    for name in registry.names("method"):
        opts = registry.options("method", name)
        assert not {"bound", "quiet"} & set(opts), name
    assert "iterations" in registry.options("method", "vanilla-pinn")
    assert {"scheme", "trainer", "history", "seed"} <= set(registry.options("method",
                                                                             "split-pinn"))
    assert "seed" not in registry.options("trainer", "least-squares")  # solve_split's seed


def test_unknown_name_and_option_list_the_known_ones():
    with pytest.raises(ModelError, match=r"unknown method 'rk4' \(known: reference, "
                                         r"split-pinn, vanilla-pinn\)"):
        registry.get("method", "rk4")
    known = ", ".join(registry.options("method", "reference"))
    with pytest.raises(ModelError, match=rf"unknown option 'trainer' for method 'reference' "
                                         rf"\(known: {known}\)"):
        registry.check_options("method", "reference", {"trainer": "adam-lbfgs"})
    registry.check_options("method", "reference", {"integrator": "RK45"})
    without_options = Entry("method", "sqrt", "math:sqrt", frozenset({"x"}), "")
    with pytest.raises(ModelError, match=r"unknown option 'indent' .* \(known: none\)"):
        without_options.check_options(["indent"])


# -- every registered name is one its implementation accepts ----------------------------------
FRACTIONAL = "splitpinn.solvers.fractional_reference:solve_fractional_reference"


@pytest.mark.parametrize("name", registry.names("integrator"))
def test_every_integrator_runs(name):
    """Each registered integrator is one its solver takes, checked against a closed form."""
    if registry.get("integrator", name).target == FRACTIONAL:
        # 20 D^0.6 V = -(V + 45) from -60: V = -45 - 15 E_0.6(-t^0.6 / 20); V falls 0.8 mV
        sol = splitpinn.solve("frac-lif", "reference", 1.0, 0.01, integrator=name,
                              parameters={"alpha": 0.6, "I": 0.625}, initial={"V": -60.0})
        exact = -45.0 - 15.0 * np.array([mittag_leffler(0.6, -t**0.6 / 20) for t in sol.t])
        tol = 0.02  # measured 1.1e-2 (l1, weakly singular start), 2e-5 (adams, l2-1sigma)
    else:
        # 10 V' = -(V + 45) from -60: V = -45 - 15 exp(-t/10)
        sol = splitpinn.solve("lif", "reference", 1.0, 0.5, integrator=name,
                              initial={"V": -60.0})
        exact, tol = -45.0 - 15.0 * np.exp(-sol.t / 10.0), 1e-6
    assert sol.meta["solver"]["integrator"] == name
    np.testing.assert_allclose(sol["V"], exact, rtol=0, atol=tol)


@pytest.mark.parametrize("name", registry.names("trainer"))
def test_trainers_construct_with_their_options(name):
    entry = registry.get("trainer", name)
    bound = models.get("lif").bind()
    defaults = {k: p.default for k, p in entry.options.items()}
    trainer = entry.implementation(bound, seed=0, **defaults)
    assert trainer.settings()["trainer"] == name
