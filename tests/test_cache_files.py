"""The cache files of the compiled models (:mod:`splitpinn.numeric.compiled`): a generated
module is checked before use and written again where it differs from its text, processes
building the same model take turns (one compiles, the others load its machine code), and a
model that runs uncompiled says so, once, with the reason.

Each subprocess compiles LIF's kernels (seconds) into its own SPLITPINN_CACHE_DIR, so that
no run shares a cache with another; in-process checks use a model no other test builds."""

import json
import os
import subprocess
import sys
import warnings

import numba
import numpy as np
import pytest

import splitpinn
import splitpinn.numeric.compiled as compiled
from splitpinn.api import resolve_model
from splitpinn.declare.model import Event, I_ext, Model, State
from splitpinn.errors import CompilationWarning
from splitpinn.numeric.address import address, call

#: Solves LIF by split-PINN (compiled, or the process fails: a fallback is an error) and
#: prints what the compiled kernel did and a digest of the results.
SCRIPT = """
import hashlib, json, warnings
import numba
import splitpinn
from splitpinn.errors import CompilationWarning
from splitpinn.api import resolve_model
from splitpinn.numeric.compiled import compiled_model

warnings.simplefilter("error", CompilationWarning)
solution = splitpinn.solve("lif", "split-pinn", 30.0)
kernel = compiled_model(resolve_model("lif").bind()).march_composed
print(json.dumps({
    "compiled": solution.meta["solver"]["compiled"],
    "dispatcher": isinstance(kernel, numba.core.dispatcher.Dispatcher)
                  and len(kernel.signatures) == 1,
    "hits": sum(kernel.stats.cache_hits.values()),
    "misses": sum(kernel.stats.cache_misses.values()),
    "spikes": solution.spike_times.tolist(),
    "y": hashlib.sha256(solution.y.tobytes()).hexdigest()}))
"""


def _start(folder):
    env = {**os.environ, "SPLITPINN_CACHE_DIR": str(folder)}
    return subprocess.Popen(
        [sys.executable, "-c", SCRIPT],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _report(process) -> dict:
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0, err
    return json.loads(out.splitlines()[-1])


def _lif_module(folder):
    """The path of LIF's generated module in ``folder`` and the text it must hold."""
    key, text = compiled._module_text(compiled._sources(resolve_model("lif").bind()), "model")
    return folder / f"model_{key}.py", text


def _kernels_module(folder):
    """The path of the kernels' module in ``folder``."""
    return folder / f"model_{compiled._module_text((), 'kernels')[0]}.py"


#: Calls a model's function (a numba cfunc) compiled: called from Python, it runs its source.
_evaluate = numba.njit(lambda function, t, stim, y, p, out: call(
        function, t, stim, address(y), address(p), address(out.reshape(-1))))


def _strays(folder) -> list:
    """Temporary files left in the cache folder (ours: *.tmp; numba's: *.tmp.<id>)."""
    return [p.name for p in folder.rglob("*") if ".tmp" in p.name]


def test_two_processes_building_the_same_model_take_turns(tmp_path):
    """Started together on an empty cache: both run compiled with the same results, one
    compiles the kernel and the other loads its machine code (they did not race), and the
    folder holds the kernels' and the model's module files and no temporary files."""
    runs = [_report(process) for process in [_start(tmp_path), _start(tmp_path)]]
    assert all(run["compiled"] and run["dispatcher"] for run in runs), runs
    assert runs[0]["spikes"] == runs[1]["spikes"] and len(runs[0]["spikes"]) >= 2
    assert runs[0]["y"] == runs[1]["y"]
    assert sorted((run["misses"], run["hits"]) for run in runs) == [(0, 1), (1, 0)], runs
    path, text = _lif_module(tmp_path)
    assert sorted(p.name for p in tmp_path.glob("model_*.py")) == \
        sorted([path.name, _kernels_module(tmp_path).name])
    assert path.read_text(encoding="utf-8") == text
    assert not _strays(tmp_path)


def test_a_fresh_process_rewrites_an_edited_module_and_runs_compiled(tmp_path):
    """A module file edited in place (same size, one function's body changed: it would still
    import, with a wrong right-hand side) is written again, and the solve runs compiled with
    the right results."""
    path, text = _lif_module(tmp_path)
    rhs = text.index("def rhs(")
    edited = text[:rhs] + text[rhs:].replace("out[0] =", "out[0] =-", 1)
    edited = edited.replace("\n\n\n", "\n\n", 1)
    assert edited != text and len(edited) == len(text)
    path.write_text(edited, encoding="utf-8")
    run = _report(_start(tmp_path))
    assert run["compiled"] and run["dispatcher"] and run["misses"] == 1, run
    assert path.read_text(encoding="utf-8") == text
    assert not _strays(tmp_path)
    numpy_run = splitpinn.solve("lif", "split-pinn", 30.0, compiled=False)
    np.testing.assert_allclose(run["spikes"], numpy_run.spike_times, rtol=0, atol=1e-9)


def _unique_lif(name: str) -> Model:
    """A LIF variant whose equations no other test uses (its module is built here)."""
    from splitpinn.models.lif import I, R, V, V_reset, V_rest, V_th, t_ref, tau

    return Model(name=name, states=[State("V", V_rest, 1.0)],
                 equations={"V": (-(V - V_rest) + R * I_ext) / tau - (V - V_rest) / 997},
                 parameters=dict(tau=10.0, R=10.0, V_rest=-65.0, V_reset=-65.0, V_th=-50.0,
                                 t_ref=2.0, I=2.0),
                 stimulus=I, events=[Event(V >= V_th, {"V": V_reset}, refractory=t_ref)])


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty cache folder for this test, and no warnings given yet."""
    monkeypatch.setenv("SPLITPINN_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(compiled, "_WARNED", set())
    return tmp_path


@pytest.mark.parametrize("damage", ["empty", "truncated", "garbage"])
def test_a_damaged_module_file_is_written_again(cache, monkeypatch, damage):
    """In process: an empty, cut-short or garbage file is replaced by the module's text and
    what loads is compiled code (its right-hand side is a compiled cfunc)."""
    bound = _unique_lif(f"lif-{damage}").bind()
    sources = compiled._sources(bound)
    key, text = compiled._module_text(sources, "model")
    path = cache / f"model_{key}.py"
    path.write_bytes({"empty": b"", "truncated": text.encode()[: len(text) // 2],
                      "garbage": b"\x00\xff garbage"}[damage])
    monkeypatch.delitem(sys.modules, f"splitpinn_model_{key}", raising=False)
    rhs = compiled._build(sources).functions.rhs
    assert path.read_text(encoding="utf-8") == text and not _strays(cache)
    out = np.empty(1)
    assert isinstance(rhs, numba.core.ccallback.CFunc)
    _evaluate(rhs.address, 0.0, 1.0, np.array([-60.0]), np.array(bound.params(0), dtype=float), out)
    expected = bound.rhs_columns(0.0, 1.0, [-60.0], bound.params(0))
    np.testing.assert_allclose(out, np.asarray(expected, dtype=float).ravel(), rtol=1e-14)
    monkeypatch.delitem(sys.modules, f"splitpinn_model_{key}")


def test_a_model_that_cannot_be_compiled_says_so_once(cache, monkeypatch):
    """A module that fails to load (here its compile step raises) leaves nothing in
    sys.modules, and the model runs on numpy with one CompilationWarning naming the reason,
    however often it is solved."""
    monkeypatch.setitem(compiled._FOOTERS, "model", "raise RuntimeError('no compiler here')\n")
    model = _unique_lif("lif-refused")
    with pytest.warns(CompilationWarning, match="lif-refused.*RuntimeError: no compiler here"):
        kept = splitpinn.solve(model, "split-pinn", 30.0)
    key, _ = compiled._module_text(compiled._sources(model.bind()), "model")
    assert f"splitpinn_model_{key}" not in sys.modules
    with warnings.catch_warnings(record=True) as again:
        warnings.simplefilter("always")
        splitpinn.solve(model, "split-pinn", 30.0)
    assert not [w for w in again if issubclass(w.category, CompilationWarning)]
    slow = splitpinn.solve(model, "split-pinn", 30.0, compiled=False)
    assert not kept.meta["solver"]["compiled"]
    np.testing.assert_array_equal(kept.y, slow.y)
    np.testing.assert_array_equal(kept.spike_times, slow.spike_times)


def test_without_a_writable_cache_folder_one_temporary_folder_serves_the_process(
        tmp_path, monkeypatch):
    """Where neither $SPLITPINN_CACHE_DIR nor the user cache folder can be made, builds share
    one temporary folder instead of making one each."""
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("SPLITPINN_CACHE_DIR", str(blocker / "cache"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    compiled._temporary_dir.cache_clear()
    try:
        first, second = compiled._cache_dir(), compiled._cache_dir()
    finally:
        compiled._temporary_dir.cache_clear()
    assert first == second and first.is_dir() and first.name.startswith("splitpinn-")
    first.rmdir()
