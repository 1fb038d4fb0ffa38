"""An immutable Model hashed by content, and the one cache of what is derived from it
(issue 19): ``solve("hh")`` twice in a process does the symbolic work once."""

import dataclasses
import pickle

import numpy as np
import pytest
import sympy as sp
from sympy.printing.pycode import PythonCodePrinter

import splitpinn
from splitpinn import models
from splitpinn.declare.model import Model, State
from splitpinn.declare.stimulus import sampled, step
from splitpinn.numeric import cache
from splitpinn.numeric.bound import Numeric


@pytest.fixture
def counts(monkeypatch):
    """Calls of sympy's lambdify (every lambdified callable) and of the Python code printer
    (lambdify's and the compiled sources' printing)."""
    seen = {"lambdify": 0, "print": 0}
    lambdify, doprint = sp.lambdify, PythonCodePrinter.doprint

    def counted_lambdify(*args, **kwargs):
        seen["lambdify"] += 1
        return lambdify(*args, **kwargs)

    def counted_print(self, *args, **kwargs):
        seen["print"] += 1
        return doprint(self, *args, **kwargs)

    monkeypatch.setattr(sp, "lambdify", counted_lambdify)
    monkeypatch.setattr(PythonCodePrinter, "doprint", counted_print)
    return seen


def _hh_solved_twice(counts, method):
    cache.clear()
    first = splitpinn.solve("hh", method, 5.0)
    after_first = dict(counts)
    second = splitpinn.solve("hh", method, 5.0)
    return first, second, after_first


@pytest.mark.parametrize("method", ["split-pinn", "reference"])
def test_second_solve_does_no_symbolic_work(counts, method):
    first, second, after_first = _hh_solved_twice(counts, method)
    assert after_first["lambdify"] > 0 and after_first["print"] > 0
    assert counts == after_first  # nothing lambdified or printed again
    np.testing.assert_array_equal(first.y, second.y)


def test_compiled_sources_are_printed_once_per_model_content(counts):
    from splitpinn.numeric import compiled

    cache.clear()
    first = compiled.compiled_model(models.get("hh").bind())
    printed = counts["print"]
    assert compiled.compiled_model(models.get("hh").bind()) is first
    assert counts["print"] == printed
    # another stimulus: new sources under the new model's key, the same compiled functions
    driven = models.get("hh").with_stimulus(step(sp.Symbol("I", real=True), on=1.0))
    assert compiled.compiled_model(driven.bind()) is first


def test_equal_models_share_one_cache_entry():
    cache.clear()
    a, b = models.get("hh"), models.get("hh")
    assert a is not b and a == b and hash(a) == hash(b) and a.key == b.key
    assert Numeric.of(a) is Numeric.of(b)
    assert a.bind().numeric is b.bind(parameters={"I": 3.0}).numeric
    assert list(cache.entries(a.key)) == ["numeric"]


def test_a_different_parameter_default_is_another_model():
    a = models.get("hh")
    b = dataclasses.replace(a, parameters={**a.parameters, "g_K": 35.0})
    assert b.key != a.key and b != a
    assert Numeric.of(b) is not Numeric.of(a)
    # the parameters' order is the callables' argument order: part of the content
    c = dataclasses.replace(a, parameters=dict(reversed(a.parameters.items())))
    assert c.key != a.key
    # so are the description, the presets, the units and the stimulus
    for change in [{"description": "other"}, {"units": {}},
                   {"stimulus": a.stimulus + 1}]:
        assert dataclasses.replace(a, **change).key != a.key
    izhikevich = models.get("izhikevich")
    presets = {**izhikevich.presets, "RS": {**izhikevich.presets["RS"], "d": 7.0}}
    assert dataclasses.replace(izhikevich, presets=presets).key != izhikevich.key


def test_models_are_immutable():
    model = models.get("lif")
    with pytest.raises(dataclasses.FrozenInstanceError):
        model.name = "other"
    with pytest.raises(dataclasses.FrozenInstanceError):
        model.stimulus = 2.0
    with pytest.raises(TypeError):
        model.parameters["tau"] = 2.0
    with pytest.raises(TypeError):
        model.equations.update({"V": sp.Integer(0)})
    with pytest.raises(TypeError):
        del model.units["V"]
    with pytest.raises(TypeError):
        model.events[0].reset["V"] = 0.0
    assert isinstance(model.states, tuple) and isinstance(model.events, tuple)
    with pytest.raises(TypeError):
        models.get("izhikevich").presets["RS"]["a"] = 1.0
    changed = model.with_stimulus(3.0)  # a new model; the old one is unchanged
    assert changed.stimulus == 3.0 and model.stimulus != 3.0 and changed.key != model.key
    assert dict(model.parameters) | {"tau": 2.0} != model.parameters  # copies are free


def test_pickling_keeps_the_content_and_the_key():
    for name in ("hh", "izhikevich", "frac-lif"):
        model = models.get(name)
        again = pickle.loads(pickle.dumps(model))
        assert again == model and again.key == model.key and again._content() == \
            model._content()
        assert again.bind().numeric is model.bind().numeric
        with pytest.raises(TypeError):
            again.parameters["x"] = 1.0


def test_recorded_stimuli_are_keyed_by_their_samples():
    model = models.get("lif")
    times = [0.0, 5.0, 10.0]
    one = model.with_stimulus(sampled(times, [0.0, 2.0, 0.0]))
    same = model.with_stimulus(sampled(times, [0.0, 2.0, 0.0]))  # another class, same samples
    other = model.with_stimulus(sampled(times, [0.0, 3.0, 0.0]))
    assert one.key == same.key and one.key != other.key
    assert pickle.loads(pickle.dumps(one)).key == one.key


def test_the_key_is_stable_and_equal_declarations_are_equal():
    def declare(default):
        V = sp.Symbol("V")
        return Model("decay", [State("V", 1.0)], {"V": -sp.Symbol("k") * V},
                     {"k": default})

    assert declare(0.5) == declare(0.5) and declare(0.5) != declare(0.25)
    assert len({declare(0.5), declare(0.5), declare(0.25)}) == 2
    assert declare(0.5) != "decay"


def test_the_cache_drops_the_least_recently_used_keys(monkeypatch):
    cache.clear()
    monkeypatch.setattr(cache, "MAX_KEYS", 2)
    built = []
    for key in ("a", "b", "a", "c"):
        cache.cached(key, "x", lambda key=key: built.append(key) or key)
    assert built == ["a", "b", "c"]  # "a" was kept by its second use, "b" dropped
    assert cache.entries("a") == {"x": "a"} and cache.entries("b") == {}
    cache.clear()
