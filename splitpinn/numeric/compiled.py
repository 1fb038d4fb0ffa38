"""Compiled (numba) forms of a model, and the hot loops that use them.

Fixed-step fractional runs and split-PINN's composed steps spent almost all their time in Python
around a few dozen flops (10^6 steps of frac-LIF took minutes; an HH stage cost ~200 µs).

* :func:`compiled_model`: a model's right-hand side, Jacobian and event functions printed from
  sympy as scalar Python (common subexpressions shared) into one module per model in a cache
  folder, each compiled by numba (``cfunc``, with its disk cache) to a function that the
  kernels of :mod:`splitpinn.numeric.kernels` take as an argument (:class:`ModelFunctions`).
  The kernels are compiled once for every model (their argument types are the same), in a
  module of their own: a new model compiles only its own functions (about a second), and the
  first process on a machine compiles the kernels too (seconds); later ones load the machine
  code.
* :func:`march_uniform`: the implicit L1 / L2-1σ march over a stretch of steps, equal or graded
  after an onset, with a sum-of-exponentials memory
  (:class:`~splitpinn.fractional.history.MarchState`),
  Newton per step, stopping before the first step that crosses a threshold.
* :class:`StageKernel`: split-PINN's least-squares stages of integer-order sub-problems,
  their states fitted together where they couple, for all rows of a batch in one call (a
  frozen-coefficient stage taken from its
  :class:`~splitpinn.numeric.stage_table.StageTable` where that meets the tolerance, any other
  fitted by Gauss–Newton), and :class:`Composition`, the composed step of a plan made of such
  stages, and its march, adaptive or fixed, events and refractory periods included
  (:meth:`Composition.march`), which takes the marching loop's Python out of the steps of
  uncoupled integer-order rows.

Every rule is written once, in :mod:`splitpinn.numeric.kernels`; ``compiled=False`` runs the
same functions as plain Python (:func:`plain_model`), and so does a model numba cannot compile,
after a :class:`~splitpinn.errors.CompilationWarning` with the reason (:func:`fall_back`).
numba is imported on first use: it takes about a second.  The cache folder is
``$SPLITPINN_CACHE_DIR``, else ``$XDG_CACHE_HOME/splitpinn`` or ``~/.cache/splitpinn``, else one
temporary folder per process.  Its files are trusted only as far as they are checked: a module
file is written whole (a unique temporary name, then a rename), compared with the text it must
hold before it is used (and written again where it differs), and written, checked and compiled
under a lock per module, so that processes building the same model take turns (see
:func:`_build`).
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import hashlib
import importlib.util
import inspect
import math
import os
import shutil
import sys
import tempfile
import types
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import sympy as sp
from sympy.printing.pycode import PythonCodePrinter

from ..declare.stimulus import Sampled
from ..errors import CompilationWarning
from ..fractional import rules
from ..fractional.history import PLAIN_RULES, MemoryRules
from . import cache, kernels
from .bound import BoundModel
from .stage_table import WIDTH, Z_LOW, StageTable


class NotCompilable(Exception):
    """numba cannot compile this model's functions, or their module cannot be written or
    loaded (the caller keeps its numpy path and calls :func:`fall_back`).  ``key``: the
    model's generated module (the hash in its name), where known."""

    def __init__(self, reason: str, key: str | None = None) -> None:
        super().__init__(reason)
        self.key = key


def fall_back(bound: BoundModel, error: NotCompilable) -> None:
    """Say that ``bound``'s model runs uncompiled from now on, and why: a
    :class:`~splitpinn.errors.CompilationWarning` naming the reason, once per model (its
    name and generated module) and process."""
    seen = (bound.model.name, error.key)
    if seen in _WARNED:
        return
    _WARNED.add(seen)
    warnings.warn(f"model {bound.model.name!r} runs uncompiled (same results, 10-100x "
                  f"slower): {error}", CompilationWarning, stacklevel=3)


#: The models :func:`fall_back` has warned about.
_WARNED: set[tuple[str, str | None]] = set()


class Marched(NamedTuple):
    """What :func:`march_uniform` did: the ``states`` (count, n) at the stops it took (all
    recorded in the memory's :class:`~splitpinn.fractional.history.MarchState`, which it
    updated in place), the crossing functions ``before`` the next step and the Newton
    ``iterations`` (a step whose Newton iteration failed is not taken: the caller's numpy step
    repeats it and reports the failure); ``residual``: the largest residual of split-PINN's
    stages among them (0 for Newton steps); ``event``: where a reset event or the spike
    detector fires in the next step, (its index, its time, the states there: root-found,
    not recorded), else None."""

    states: np.ndarray
    before: np.ndarray
    iterations: int
    residual: float = 0.0
    event: tuple | None = None


class ModelFunctions(NamedTuple):
    """A model's functions, the first argument of every kernel that evaluates the model:
    ``rhs``, ``jacobian`` and ``crossings`` ``f(t, I_ext, y, p, out)`` (out: n values; the
    n×n Jacobian row by row; one value per event then the spike detector, as
    :class:`splitpinn.solvers.marching._Crossings`), ``state_diagonal(i, t, I_ext, y, p, out)``
    (state i's right-hand side and its derivative in that state: all a decoupled stage needs),
    ``state_diagonals(mask, t, I_ext, y, p, out)`` (the same of every state i whose bit
    ``1 << i`` is set in ``mask``, into out[2i] and out[2i + 1]: a sub-problem's states in one
    call, for models of at most :data:`~splitpinn.numeric.kernels.MASKED` states),
    ``reset(c, t, I_ext, y, p, out)`` (event c's reset: the states it sets, into ``out``)
    and ``stimulus(t, I_ext, y, p, out)``, which returns the stimulus where it varies inside a
    step (0 where it is constant or stepwise: then the caller hands its value to every
    function); each returns a float.  Compiled, each is a numba ``cfunc`` of the signature in
    :data:`_FOOTERS` (arrays as pointers to their data), and the kernels take their addresses
    (:attr:`CompiledModel.argument`): every model's are typed alike."""

    rhs: object
    jacobian: object
    state_diagonal: object
    crossings: object
    reset: object
    stimulus: object
    state_diagonals: object


@dataclass(frozen=True)
class CompiledModel:
    """The kernels ``march``, ``stage_rows``, ``compose``, ``march_composed``,
    ``march_network``, ``rhs_rows`` and ``flow_rows`` (see
    :mod:`splitpinn.numeric.kernels`) and the model's ``functions``.
    ``jit``: whether they are compiled (else the same functions as plain Python:
    :func:`plain_model`)."""

    march: object
    stage_rows: object
    compose: object
    march_composed: object
    march_network: object
    rhs_rows: object
    flow_rows: object
    functions: ModelFunctions
    jit: bool = True

    @functools.cached_property
    def argument(self) -> ModelFunctions:
        """What the kernels take as their first argument: the functions' addresses (compiled;
        ``functions`` keeps them alive), else the functions."""
        if not self.jit:
            return self.functions
        return ModelFunctions(*(function.address for function in self.functions))


#: The kernels of :class:`CompiledModel`, by name in the module.
_KERNELS = ("march", "stage_rows", "compose", "march_composed",
            "march_network", "rhs_rows", "flow_rows")


def compiled_model(bound: BoundModel) -> CompiledModel:
    """The compiled functions of ``bound``'s model, built on first use and kept for the
    process in :mod:`splitpinn.numeric.cache`: the sources under the model's key (printing
    them takes a while: once per model content, so each ``solve("hh", ...)`` after the first
    prints nothing), the compiled functions under a digest of the sources (models that differ
    only in a stepwise stimulus share them, and with them the kernels specialised to them:
    compiling those takes seconds)."""
    sources = cache.cached(bound.model.key, "compiled sources", lambda: _sources(bound))
    digest = hashlib.sha256("\0".join(sources).encode()).hexdigest()
    return cache.cached(f"sources {digest}", "compiled", lambda: _build(sources))


def plain_model(bound: BoundModel) -> CompiledModel:
    """The functions of :func:`compiled_model` as plain Python, uncompiled (``compiled=False``,
    and where numba fails): the same rules, about a hundred times slower."""
    sources = cache.cached(bound.model.key, "compiled sources", lambda: _sources(bound))
    digest = hashlib.sha256("\0".join(sources).encode()).hexdigest()
    return cache.cached(f"sources {digest}", "plain", lambda: _plain(sources))


def _plain(sources: tuple[str, ...]) -> CompiledModel:
    """The functions of the module of ``sources`` as plain Python: its text without the
    footer that compiles it, run in a namespace of its own, with math functions that give
    inf on overflow as numba's do (Python's raise; :func:`_call` runs them with numpy's
    floating-point warnings off)."""
    _, text = _module_text(sources, "model")
    namespace = {"__name__": "splitpinn_model_plain"}
    exec(compile(text.removesuffix(_FOOTERS["model"]), "<splitpinn model>", "exec"), namespace)
    namespace["math"] = _OVERFLOW_AS_INF
    return CompiledModel(*(namespace[name] for name in _KERNELS),
                         ModelFunctions(*(namespace[name] for name in ModelFunctions._fields)),
                         jit=False)


def _overflow_as_inf(name: str):
    """``math.<name>``, giving numpy's ±inf where Python raises OverflowError, as numba's
    math does."""
    function = getattr(math, name)

    @functools.wraps(function)
    def call(*args):
        try:
            return function(*args)
        except OverflowError:
            return float(getattr(np, {"pow": "power"}.get(name, name))(*args))

    return call


#: The math module for plain-Python kernels (see :func:`_plain`).
_OVERFLOW_AS_INF = types.SimpleNamespace(**{
    name: _overflow_as_inf(name) if callable(value) else value
    for name, value in vars(math).items() if not name.startswith("_")})


def _source(name: str, bound: BoundModel, outputs: list[tuple[str, sp.Expr]]) -> str:
    """Python source of ``def name(t, I_ext, y, p, out)`` assigning each expression to its
    output slot; every symbol is renamed (user names may be keywords or shadow builtins)."""
    return "\n".join([f"def {name}(t, I_ext, y, p, out):", *_body(bound, outputs, "    "),
                      "    return 0.0"]) + "\n"


def _branched_source(name: str, bound: BoundModel,
                     branches: list[list[tuple[str, sp.Expr]]]) -> str:
    """Python source of ``def name(k, t, I_ext, y, p, out)`` that assigns the outputs of
    ``branches[k]`` only (as :func:`_source`, one branch per k)."""
    lines = [f"def {name}(k, t, I_ext, y, p, out):"]
    for k, outputs in enumerate(branches):
        lines += [f"    {'if' if k == 0 else 'elif'} k == {k}:",
                  *_body(bound, outputs, "        ")]
    return "\n".join([*lines, "    return 0.0"]) + "\n"


def _masked_source(name: str, bound: BoundModel,
                   blocks: list[list[tuple[str, sp.Expr]]]) -> str:
    """Python source of ``def name(mask, t, I_ext, y, p, out)`` that assigns the outputs of
    ``blocks[k]`` for every bit k set in ``mask`` (each block as :func:`_branched_source`
    prints branch k: the same expressions, the same results); the first
    :data:`~splitpinn.numeric.kernels.MASKED` blocks only (an int64's bits; the kernels call
    it for no more states)."""
    lines = [f"def {name}(mask, t, I_ext, y, p, out):"]
    for k, outputs in enumerate(blocks[:kernels.MASKED]):
        lines += [f"    if mask & {1 << k}:", *_body(bound, outputs, "        ")]
    return "\n".join([*lines, "    return 0.0"]) + "\n"


def _body(bound: BoundModel, outputs: list[tuple[str, sp.Expr]], indent: str) -> list[str]:
    """The lines that load the states and parameters the expressions use from ``y`` and
    ``p`` and assign each (common subexpressions shared) to its slot of ``out`` (or return
    it, for the slot "")."""
    n = len(bound.names)
    t, stim, *rest = bound.args
    states, params = rest[:n], rest[n:]
    rename = {t: sp.Symbol("t"), stim: sp.Symbol("I_ext")}
    rename |= {s: sp.Symbol(f"y{k}") for k, s in enumerate(states)}
    rename |= {s: sp.Symbol(f"p{k}") for k, s in enumerate(params)}
    exprs = [sp.sympify(e).xreplace(rename) for _, e in outputs]
    used = {str(x) for e in exprs for x in e.free_symbols}
    shared, reduced = sp.cse(exprs, symbols=sp.numbered_symbols("c"))
    printer = _Printer({"allow_unknown_functions": True})
    lines = [f"y{k} = y[{k}]" for k in range(n) if f"y{k}" in used]
    lines += [f"p{k} = p[{k}]" for k in range(len(params)) if f"p{k}" in used]
    lines += [f"{s} = {printer.doprint(e)}" for s, e in shared]
    lines += [f"out[{slot}] = {printer.doprint(e)}" if slot else f"return {printer.doprint(e)}"
              for (slot, _), e in zip(outputs, reduced, strict=True)]
    return [indent + line for line in lines]


class _Printer(PythonCodePrinter):
    """Python code of an expression; a recording (:class:`~splitpinn.declare.stimulus.
    Sampled`) as a call of :func:`~splitpinn.numeric.kernels.sampled` on its samples, the
    module's constants :func:`_recordings` defines."""

    def _print_Function(self, expr):  # noqa: N802 (sympy's printer protocol)
        if isinstance(expr, Sampled):
            name = _recording_name(expr)
            return (f"sampled({self._print(expr.args[0])}, {name}_t, {name}_v, "
                    f"{expr.interpolation == 'linear'})")
        return super()._print_Function(expr)


def _recording_name(recording: Sampled) -> str:
    """The name of a recording's samples in a model's module: from the digest of its
    samples and interpolation, so that a model's module is the same whatever the
    recording's class is named."""
    return "_recording_" + hashlib.sha256(recording.fingerprint().encode()).hexdigest()[:16]


def _recordings(expr: sp.Expr) -> str:
    """Source defining the samples of each recording in ``expr`` as module constants (which
    numba compiles into the functions that read them)."""
    lines = []
    for recording in sorted(expr.atoms(Sampled), key=_recording_name):
        name = _recording_name(recording)
        for suffix, samples in (("t", recording.times), ("v", recording.values)):
            lines.append(f"{name}_{suffix} = np.array({list(map(float, samples))!r})")
    return "".join(line + "\n" for line in lines)


def smooth_stimulus(bound: BoundModel) -> sp.Expr | None:
    """The stimulus, an expression of t and the parameters (recordings included), where it
    varies inside a step, else None.  Printed into the model's module only then: models
    that differ only in a stepwise stimulus share one."""
    return None if bound.stepwise_stimulus else sp.sympify(bound.model.stimulus)


def _sources(bound: BoundModel) -> tuple[str, ...]:
    """The sources of ``stimulus``, ``rhs``, ``jacobian``, ``state_diagonal``, ``crossings``
    and ``reset`` (see :class:`ModelFunctions`)."""
    numeric = bound.numeric
    n = len(bound.names)
    jac = numeric.jacobian_exprs
    crossings = [(str(k), sp.Function("strict")(ev.expression) if ev.strict else ev.expression)
                 for k, ev in enumerate(numeric.events)]
    detector = bound.model.spike_detector
    if detector:
        state = bound.args[2 + bound.index(detector.state)]
        crossings.append((str(len(crossings)), state - detector.threshold))
    rhs = numeric.rhs_exprs
    smooth = smooth_stimulus(bound)
    recordings = () if smooth is None or not smooth.atoms(Sampled) else (_recordings(smooth),)
    return (*recordings, _source("stimulus", bound, [("", 0.0 if smooth is None else smooth)]),
            _source("rhs", bound, [(str(i), e) for i, e in enumerate(rhs)]),
            _source("jacobian", bound, [(f"{i * n + j}", jac[i, j]) for i in range(n)
                                        for j in range(n)]),
            _branched_source("state_diagonal", bound, [[("0", rhs[i]), ("1", jac[i, i])]
                                                       for i in range(n)]),
            _source("crossings", bound, crossings),
            _masked_source("state_diagonals", bound,
                           [[(str(2 * i), rhs[i]), (str(2 * i + 1), jac[i, i])]
                            for i in range(n)]),
            _branched_source("reset", bound, [list(zip(map(str, ev.reset_index), ev.reset_exprs,
                                                       strict=True))
                                              for ev in numeric.events]))


def _build(sources: tuple[str, ...]) -> CompiledModel:
    """The kernels (their module, built once per process) and the model's functions of
    ``sources`` (:func:`_module`)."""
    kernel_module = cache.cached("kernels", "module", lambda: _module((), "kernels"))
    model_module = _module(sources, "model")
    return CompiledModel(*(getattr(kernel_module, name) for name in _KERNELS),
                         ModelFunctions(*(getattr(model_module, name)
                                          for name in ModelFunctions._fields)))


def _module(sources: tuple[str, ...], role: str):
    """The module of :mod:`splitpinn.numeric.kernels` followed by ``sources``, compiled by
    numba with its disk cache as its footer ``role`` says (:data:`_FOOTERS`);
    :class:`NotCompilable` with the reason where it cannot be written, loaded or compiled.

    The file ``model_<key>.py`` (key: a hash of numba's version and the text) is checked against
    the text before use and written again where it differs (empty, cut short, edited); what
    runs is the expected text itself.  Checking, writing and importing, and every compile of
    its functions later (the first call with new argument types, which loads numba's cache or
    compiles and saves it), happen under the file lock ``model_<key>.py.lock``: processes
    building the same model take turns, the first compiles and the others load its machine
    code, and numba's index of its cache (read, then rewritten) is never updated by two at
    once."""
    from filelock import FileLock, Timeout

    key, text = _module_text(sources, role)
    name = f"splitpinn_model_{key}"
    module = sys.modules.get(name)  # this process has loaded it (only whole imports stay)
    if module is None:
        path = _cache_dir() / f"model_{key}.py"
        lock = FileLock(path.with_name(f"{path.name}.lock"), timeout=_LOCK_TIMEOUT)
        try:
            with lock:
                if not _holds(path, text):
                    _write(path, text)
                module = _import(name, path, text, lock)
        except Timeout as error:
            raise NotCompilable(f"{path} stayed locked by another process for "
                                f"{_LOCK_TIMEOUT:.0f} s", key) from error
        except OSError as error:
            raise NotCompilable(f"cannot write or lock {path}: {error}", key) from error
    return module


def _rulebook_text() -> str:
    """The rulebook as one module's text: the memory's rules (:mod:`splitpinn.fractional.rules`,
    which the kernels import), then :mod:`~splitpinn.numeric.kernels` without that import, so
    that the kernels call the compiled rules of their own module."""
    own = [line for line in inspect.getsource(kernels).splitlines(keepends=True)
           if not line.startswith("from ..fractional.rules import ")]
    return inspect.getsource(rules) + "\n\n" + "".join(own)


def _module_text(sources: tuple[str, ...], role: str) -> tuple[str, str]:
    """The key (a hash of numba's version and the text) and the text of the module of
    ``sources`` (see :func:`_module`)."""
    import numba

    text = "\n\n".join([_rulebook_text(), *sources, _FOOTERS[role]])
    return hashlib.sha256(f"{numba.__version__}\n{text}".encode()).hexdigest()[:20], text


#: Seconds to wait for another process's build or compile of the same model.
_LOCK_TIMEOUT = 600.0


def _holds(path: Path, text: str) -> bool:
    """Whether the file at ``path`` holds exactly ``text``."""
    try:
        return path.read_bytes() == text.encode()
    except OSError:  # absent (or unreadable: written again)
        return False


def _write(path: Path, text: str) -> None:
    """``text`` into ``path``, whole or not at all: a temporary file of a unique name in the
    same folder, renamed over ``path``."""
    handle, partial = tempfile.mkstemp(dir=path.parent, prefix=f"{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(text.encode())
            file.flush()
            os.fsync(file.fileno())
        os.chmod(partial, 0o644)  # mkstemp's 0o600 would hide it from a shared cache's group
        os.replace(partial, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(partial)
        raise


def _import(name: str, path: Path, text: str, lock):
    """The module ``name`` of ``text`` (the contents of ``path``, which numba's disk cache
    reads the functions' source stamps from), registered in ``sys.modules`` if it loads;
    each of its functions compiles under ``lock``."""
    key = name.removeprefix("splitpinn_model_")
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # numba's disk cache finds its module by name
    try:
        exec(compile(text, str(path), "exec", dont_inherit=True), module.__dict__)
        for dispatcher in vars(module).values():
            if hasattr(dispatcher, "py_func"):  # every function, compiled by the footer
                dispatcher.compile = _locked(lock, dispatcher.compile, key)
    except Exception as error:  # SyntaxError: a sympy construct without a Python form
        del sys.modules[name]
        raise NotCompilable(f"{type(error).__name__}: {error}", key) from error
    return module


def _locked(lock, compile_, key: str):
    """A dispatcher's ``compile`` under the module's file lock (reentrant: a kernel's compile
    compiles the functions it calls)."""
    from filelock import Timeout

    @functools.wraps(compile_)
    def locked(sig):
        try:
            with lock:
                return compile_(sig)
        except Timeout as error:
            raise NotCompilable(f"{lock.lock_file} stayed locked by another process for "
                                f"{_LOCK_TIMEOUT:.0f} s", key) from error

    return locked


#: The ends of the modules (:func:`_module`): "kernels" compiles every function by numba on its
#: first call, cached on disk, with reference counting only where it allocates
#: (``ALLOCATING``); "model" does the same and compiles the model's functions
#: (:class:`ModelFunctions`) at once, each to a ``cfunc`` of its signature (arrays as pointers
#: to their data), which the kernels call through its address (:mod:`splitpinn.numeric.address`).
_FOOTERS = {role: """
import numba as _numba
import types as _types

_F, _I = _numba.float64, _numba.int64
_P = _numba.types.CPointer(_F)
_SIGNATURES = {"rhs": _F(_F, _F, _P, _P, _P), "jacobian": _F(_F, _F, _P, _P, _P),
               "state_diagonal": _F(_I, _F, _F, _P, _P, _P), "crossings": _F(_F, _F, _P, _P, _P),
               "reset": _F(_I, _F, _F, _P, _P, _P), "stimulus": _F(_F, _F, _P, _P, _P),
               "state_diagonals": _F(_I, _F, _F, _P, _P, _P)} if %r else {}
for _name, _value in list(globals().items()):
    if _name in _SIGNATURES:
        globals()[_name] = _numba.cfunc(_SIGNATURES[_name], cache=True)(_value)
    elif isinstance(_value, _types.FunctionType):
        _inline = "always" if _name in INLINE else "never"
        globals()[_name] = _numba.njit(cache=True, inline=_inline,
                                       _nrt=_name in ALLOCATING)(_value)
from splitpinn.numeric.address import address, call
""" % (role == "model") for role in ("kernels", "model")}


def _cache_dir() -> Path:
    """The folder of the generated modules (and numba's cache of them), created on demand;
    where none is writable, one temporary folder per process (removed at its exit)."""
    home = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    for folder in (os.environ.get("SPLITPINN_CACHE_DIR"), os.path.join(home, "splitpinn")):
        if folder:
            try:
                Path(folder).mkdir(parents=True, exist_ok=True)
            except OSError:
                continue
            if os.access(folder, os.W_OK):
                return Path(folder)
    return _temporary_dir()


@functools.cache
def _temporary_dir() -> Path:
    """This process's temporary cache folder, made on first use and removed at exit."""
    folder = tempfile.mkdtemp(prefix="splitpinn-")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return Path(folder)


def _call(kernel, *args):
    """``kernel(*args)``; numba types a kernel on its first call, and a model function it
    cannot type is reported as :class:`NotCompilable` (with the model's key)."""
    from numba.core.errors import NumbaError

    if not hasattr(kernel, "py_func"):
        return _call_plain(kernel, *args)
    try:
        return kernel(*args)
    except (NumbaError, NotCompilable) as error:
        module = getattr(getattr(kernel, "py_func", None), "__module__", None) or ""
        key = getattr(error, "key", None) or module.removeprefix("splitpinn_model_") or None
        raise NotCompilable(str(error), key) from error


def _call_plain(kernel, *args):
    """``kernel(*args)`` of a plain-Python module (:func:`plain_model`), with numpy's
    floating-point warnings off (numba's kernels give inf and NaN silently)."""
    with np.errstate(all="ignore"):
        return kernel(*args)


class ModelKernels:
    """The functions of one model's module, compiled (``jit``) or as plain Python, built on
    first use.  Where numba cannot compile them (their module cannot be built, or a kernel
    cannot be typed on its first call), the same functions run as plain Python from then on,
    after a :class:`~splitpinn.errors.CompilationWarning` (:func:`fall_back`)."""

    def __init__(self, bound: BoundModel, jit: bool = True) -> None:
        self.bound, self._jit, self._model = bound, jit, None

    @property
    def model(self) -> CompiledModel:
        if self._model is None:
            self._model = self._compiled() if self._jit else plain_model(self.bound)
        return self._model

    @property
    def jit(self) -> bool:
        """Whether the functions run compiled."""
        return self.model.jit

    def _compiled(self) -> CompiledModel:
        try:
            return compiled_model(self.bound)
        except NotCompilable as error:  # no Python form, or its module cannot be written
            fall_back(self.bound, error)
            return plain_model(self.bound)

    def run(self, kernel: str, *args):
        """``kernel`` on the model's functions and ``args``."""
        try:
            return _call(getattr(self.model, kernel), self.model.argument, *args)
        except NotCompilable as error:  # only compiled kernels raise it
            fall_back(self.bound, error)
            self._model = plain_model(self.bound)
            return _call_plain(getattr(self._model, kernel), self._model.argument, *args)


def march_uniform(kernels: ModelKernels, tables: tuple, state, stops: np.ndarray,
                  keep: np.ndarray, t_star: np.ndarray, stim_star: np.ndarray,
                  stim_end: np.ndarray, params: np.ndarray, active: np.ndarray,
                  before: np.ndarray, jac_const: np.ndarray | None, newton_tol: float,
                  max_newton: int, *, n_events: int, armed: bool, fit: tuple | None = None,
                  y: np.ndarray | None = None, index: np.ndarray | None = None,
                  locate: bool = False):
    """March a fast L1 / L2-1σ memory (``state``, a
    :class:`~splitpinn.fractional.history.MarchState`, and its constants ``tables``, from the
    memory's ``tables``) to ``stops`` (equal or graded steps) until a step would cross
    a threshold (``before`` < 0 <= crossing; the first ``n_events`` functions, the thresholds
    of resets, only where the neuron is ``armed``: see :func:`splitpinn.numeric.kernels.fires`)
    or Newton fails, then back to the last stop where ``keep`` holds (see
    :func:`splitpinn.numeric.kernels.march`); every step taken is recorded in ``state``.
    ``t_star``, ``stim_star``: the time and stimulus of each step's relation; ``stim_end`` the
    stimulus at each stop (for the crossings); ``active``: the model's states not clamped;
    ``jac_const``: the Jacobian when it is constant, else None.  ``fit``: split-PINN's
    composed step in place of Newton (:func:`splitpinn.numeric.kernels.memory_compose`;
    ``stim_star`` then holds the stimulus over each step), from :func:`plan_fit`; then the
    memory holds the model's states ``index`` (default: all of them, in order) and ``y`` are
    the model's states at the memory's last time (default: the memory's).  ``locate``: where
    a reset event fires in the step after a kept stop, root-find it in the kernel
    (:func:`~splitpinn.numeric.kernels.memory_event`; only where the stimulus inside a step
    is ``stim_star``'s, or ``fit`` evaluates it).

    Returns a :class:`Marched` (its states: the model's)."""
    n = state.u_last.size
    y = np.array(state.u_last if y is None else y, dtype=float)
    index = np.arange(n) if index is None else np.ascontiguousarray(index, dtype=np.int64)
    out = np.empty((stops.size, y.size))
    linear = jac_const is not None
    after = np.array(before, dtype=float)
    sigma, delta, s, w, orders, constants, series = tables
    if fit is None:
        fit = _NO_FIT
    event = np.empty(2 + y.size)
    count, iterations, residual = kernels.run(
        "march", stops, np.ascontiguousarray(keep, dtype=bool), t_star, stim_star,
        stim_end, params, np.ascontiguousarray(active, dtype=bool), y, index, after,
        int(n_events), bool(armed), linear,
        np.array(jac_const, dtype=float) if linear else np.zeros((n, n)), float(newton_tol),
        int(max_newton), sigma, delta, state.clock, state.acc, state.u_last, state.du_p,
        state.window, state.wa, state.wb, state.wdu, state.wd2, s, w, orders, constants,
        series, fit, bool(locate), event, out)
    found = None if event[0] < 0 else (int(event[0]), float(event[1]), event[2:].copy())
    return Marched(out[:count], after, iterations, residual, found)


def memory_rules(jit: bool = True) -> MemoryRules:
    """The rules of a fractional memory (:mod:`splitpinn.fractional.rules`) as the kernels'
    module compiled them, for the memories the solvers march
    (:attr:`~splitpinn.fractional.history.History.rules`); as plain Python where ``jit`` is
    False or the module cannot be built."""
    if not jit:
        return PLAIN_RULES
    try:
        module = cache.cached("kernels", "module", lambda: _module((), "kernels"))
    except NotCompilable:
        return PLAIN_RULES
    return MemoryRules(module.memory_record, module.memory_terms, module.memory_cache)


def plan_arrays(plan, iterations) -> tuple:
    """A plan's stages for the kernels (:func:`~splitpinn.numeric.kernels.compose_row`): the
    sub-problem and step fraction of each stage, where each branch ends, the states of each
    sub-problem (−1 padded), ``iterations`` per sub-problem (see
    :meth:`~splitpinn.solvers.subsolvers.LeastSquaresPINN.compiled_stage`) and whether its
    states couple (:func:`~splitpinn.numeric.kernels.coupled_stage`)."""
    members = np.full((len(plan.subproblems), max(len(sub.index) for sub in
                                                  plan.subproblems)), -1, dtype=np.int64)
    for k, sub in enumerate(plan.subproblems):
        members[k, : len(sub.index)] = sub.index
    stages = [stage for branch in plan.branches for stage in branch]
    return (np.array([k for k, _ in stages], dtype=np.int64),
            np.array([c for _, c in stages], dtype=float),
            np.cumsum([len(branch) for branch in plan.branches]).astype(np.int64),
            members, np.array(iterations, dtype=np.int64),
            np.array([not sub.decoupled for sub in plan.subproblems], dtype=bool))


def plan_fit(plan, fits: list, iterations: list, stage: tuple | None) -> tuple:
    """The ``fit`` of :func:`march_uniform` for split-PINN's composed step of ``plan``
    (:func:`~splitpinn.numeric.kernels.memory_compose`) against one memory of the states of
    its fractional sub-problems, in their order: ``fits[k]`` the trial space of fractional
    sub-problem k (:meth:`~splitpinn.solvers.subsolvers.LeastSquaresPINN.memory_fit`), None
    for an integer-order one, whose ``iterations[k]`` and the trial space ``stage`` (a
    :class:`StageKernel`'s; None where there is none) take its stages.  The fractional
    sub-problems' trial spaces are stacked along the memory's states, padded to one width
    (columns of zeros, marked as padding)."""
    fractional = [fit for fit in fits if fit is not None]
    width = max(fit[0].shape[2] for fit in fractional)

    def stacked(slot, axis, value=0.0):
        widths = [(0, 0)] * fractional[0][slot].ndim
        return np.ascontiguousarray(np.concatenate([
            np.pad(fit[slot], widths[:axis] + [(0, width - fit[slot].shape[axis])]
                   + widths[axis + 1:], constant_values=value) for fit in fractional]))

    first, rows = [], 0
    for sub, fit in zip(plan.subproblems, fits, strict=True):
        first.append(-1 if fit is None else rows)
        rows += 0 if fit is None else len(sub.index)
    steps = [it if fit is None else fit[5] for fit, it in zip(fits, iterations, strict=True)]
    stage_sub, stage_c, branch_end, members, steps, coupled = plan_arrays(plan, steps)
    head = fractional[0]
    return (stacked(0, 2), stacked(1, 1), stacked(2, 1, True), head[3], head[4], head[6],
            head[7], head[8], stacked(9, 1),
            np.array([fit is not None and fit[10] for fit in fits], dtype=bool),
            (stage_sub, stage_c, branch_end, members, steps, coupled,
             np.array(first, dtype=np.int64)),
            _NO_STAGE if stage is None else stage)


#: The ``stage`` of :func:`plan_fit` of a plan without integer-order sub-problems (the types
#: of :attr:`StageKernel.stage`: one compiled march for all).
_NO_STAGE = (*(np.empty((0, 0)),) * 3, np.empty(0), np.empty(0), np.empty((0, 0)),
             np.empty((0, 0)), np.empty(0), 0.0, 0.0, 0.0, np.empty((0, 0)), np.empty(0),
             np.empty(0), np.empty((0, 0)), np.empty((0, 0)), np.empty(0), 0, False)

#: ``fit`` of :func:`march_uniform` for the reference's Newton steps (no trial space).
_NO_FIT = (np.empty((0, 0, 0)), np.empty((0, 0)), np.empty((0, 0), dtype=bool), np.empty(0), 0,
           0.0, False, 0.0, np.empty((0, 0, 0)), np.empty(0, dtype=bool),
           (np.empty(0, dtype=np.int64), np.empty(0), np.empty(0, dtype=np.int64),
            np.empty((0, 0), dtype=np.int64), np.empty(0, dtype=np.int64),
            np.empty(0, dtype=bool), np.empty(0, dtype=np.int64)), _NO_STAGE)


class FlowKernel(ModelKernels):
    """Stages without a trial space, for all rows at once: a linear sub-problem's exact flow
    (:func:`~splitpinn.numeric.kernels.exact_stage`) or classical RK4 sub-steps
    (:func:`~splitpinn.numeric.kernels.rk4_stage`), the plan's ``exact`` and ``classical``
    sub-solvers; and the rows' inputs of every stage kernel."""

    def __init__(self, bound: BoundModel, jit: bool = True) -> None:
        super().__init__(bound, jit)
        self.smooth = smooth_stimulus(bound) is not None
        #: Each row's parameters (R, P): what a model's function reads, contiguous per row
        self.params = np.ascontiguousarray(np.asarray(bound.param_columns, dtype=float).T)
        constant = bound.constant_stimulus
        self.stim = None if constant is None else np.ascontiguousarray(
            np.broadcast_to(constant, (self.params.shape[0],)), dtype=float)

    def _inputs(self, rows, t, h=None):
        """Time, stimulus and parameter rows (R, P) of ``rows``, C-contiguous (one array
        layout: one compiled specialisation; a row is what a model's function reads).  The
        stimulus is the one over the steps [t, t + h] (a stepwise stimulus: see
        :meth:`~splitpinn.numeric.bound.BoundModel.step_stimulus`), or its value at t without
        ``h``."""
        t = np.ascontiguousarray(t, dtype=float)
        params = self.params[rows]  # an index array: a C-contiguous copy
        columns = params.T
        if self.stim is not None:
            return t, self.stim[rows], params
        over = None if h is None else self.bound.step_stimulus(t, h, columns)
        if over is None:
            over = np.broadcast_to(self.bound.stimulus_columns(t, list(columns)), t.shape)
        return t, np.ascontiguousarray(over, dtype=float), params

    def _stage_inputs(self, t0, params, held):
        """The stages' start times, stimulus (``held`` where it is held over the stage, else
        its value at t0) and parameter rows (R, P) of the columns ``params``, C-contiguous."""
        t0 = np.ascontiguousarray(t0, dtype=float)
        stim = np.broadcast_to(self.bound.stimulus_columns(t0, list(params))
                               if held is None else held, t0.shape)
        return (t0, np.ascontiguousarray(stim, dtype=float),
                np.ascontiguousarray(np.asarray(params, dtype=float).T))

    def flow(self, index, kind: int, t0, h, y, frozen, params, held=None,
             substeps: int = kernels.RK4_SUBSTEPS):
        """One stage of ``kind`` (:data:`~splitpinn.numeric.kernels.STAGE_EXACT` or
        :data:`~splitpinn.numeric.kernels.STAGE_RK4`, on ``substeps``) of length ``h`` (R,)
        from (t0, y) of
        the states ``index`` of R rows with parameter columns ``params`` (P, R); ``held``:
        the stimulus over the stage where it is stepwise.  Returns the states (R, n) after
        it and the rows' residuals (0, or inf where not finite)."""
        t0, stim, params = self._stage_inputs(t0, params, held)
        out = np.array(y, dtype=float, order="C")
        residuals = np.zeros(len(t0))
        self.run("flow_rows", np.asarray(index, dtype=np.int64), int(kind), int(substeps), t0,
                 np.ascontiguousarray(h, dtype=float), out,
                 np.ascontiguousarray(frozen, dtype=bool), stim, params, self.smooth,
                 residuals)
        return out, residuals


class StageKernel(FlowKernel):
    """The least-squares PINN stages of every sub-problem, for all rows at once, by the
    kernels of :mod:`splitpinn.numeric.kernels` (what
    :meth:`~splitpinn.solvers.subsolvers.LeastSquaresPINN.advance` does):

    * frozen coefficients and a right-hand side constant over the stage (HH's sub-problems,
      LIF): per state z = h·∂f/∂x and b = h·f at the stage start, the K×K normal equations
      (G0 − zG1 + z²G2) w = b(Σo − zΣv) (``trainer.frozen_system``), the residual at the check
      points and the value at the stage end — or the value from the
      :class:`~splitpinn.numeric.stage_table.StageTable` where the bounded residual meets the
      tolerance (:func:`~splitpinn.numeric.kernels.frozen_stage`);
    * any other stage (nonlinear, or driven by a time-varying input): the fit at every point
      by Gauss–Newton (:func:`~splitpinn.numeric.kernels.fitted_stage`), of all its states
      together where they couple (:func:`~splitpinn.numeric.kernels.coupled_stage`);
    * the exact and classical sub-flows (:class:`FlowKernel`).

    (Caputo states are fitted against their memory inside the fractional march: see
    :func:`march_uniform`.)

    A time-varying stimulus that is not stepwise is compiled with the model
    (:func:`smooth_stimulus`) and evaluated wherever a stage needs it.  ``jit=False`` runs
    the same functions as plain Python; so does a model numba cannot compile, after a
    :class:`~splitpinn.errors.CompilationWarning` (:func:`fall_back`)."""

    def __init__(self, bound: BoundModel, trainer, jit: bool = True) -> None:
        super().__init__(bound, jit)
        self.tol = float(trainer.tol)
        system = tuple(np.ascontiguousarray(a, dtype=float) for a in trainer.frozen_system())
        table = StageTable.of(system)
        vals, ops, _, tau, n_fit = trainer.compiled_basis()
        #: The trial space and its table (kernels.stage_row)
        self.stage = (*system, self.tol, Z_LOW, WIDTH, table.coefficients, table.residual,
                      table.reach, np.ascontiguousarray(vals), np.ascontiguousarray(ops),
                      np.ascontiguousarray(tau, dtype=float), int(n_fit),
                      self.smooth)

    def advance(self, index, iterations: int, coupled: bool, t0, h, y, frozen, params,
                held=None):
        """One stage of length ``h`` (R,) from (t0, y) of the states ``index`` of R rows with
        parameter columns ``params`` (P, R), with at most ``iterations`` Gauss–Newton
        iterations (0: frozen coefficients), the states fitted together where they are
        ``coupled``; ``held``: the stimulus over the stage where it is stepwise.  Returns the
        states (R, n) after it and the rows' largest residuals."""
        t0, stim, params = self._stage_inputs(t0, params, held)
        out = np.array(y, dtype=float, order="C")
        residuals = np.zeros(len(t0))
        self.run("stage_rows", np.asarray(index, dtype=np.int64)[None], int(iterations),
                 bool(coupled), t0,
                 np.ascontiguousarray(h, dtype=float), out,
                 np.ascontiguousarray(frozen, dtype=bool), stim, params, self.stage, residuals)
        return out, residuals

    def derivative(self, rows, t, y, frozen) -> np.ndarray:
        """The right-hand side (R, n) of ``rows``, zero for clamped states."""
        t, stim, params = self._inputs(rows, t)
        out = np.empty(np.shape(y))
        self.run("rhs_rows", t, stim, np.ascontiguousarray(y, dtype=float), params, out)
        return np.where(frozen, 0.0, out)


class Composition(StageKernel):
    """The composed step of a split-PINN plan whose every stage a :class:`StageKernel`
    takes (``iterations`` per sub-problem: ``trainer.compiled_stage``), for all rows at
    once: its branches' stages in order, their ends averaged
    (:func:`~splitpinn.numeric.kernels.compose_row`), and its march (:meth:`march`)."""

    def __init__(self, bound: BoundModel, plan, trainer, iterations: list[int],
                 jit: bool = True) -> None:
        super().__init__(bound, trainer, jit)
        #: The plan's stages and sub-problems (kernels.compose_row)
        self.plan = plan_arrays(plan, iterations)

    def __call__(self, rows, t, y, h, frozen):
        """(states after the step (R, n), per-row ok, per-row largest stage residual, per-row
        index of the first sub-problem that missed its tolerance or −1)."""
        t, stim, params = self._inputs(rows, t, h)
        out = np.array(y, dtype=float, order="C")
        failed_at = np.full(len(rows), -1, dtype=np.int64)
        residuals = np.zeros(len(rows))
        self.run("compose", t, out, np.ascontiguousarray(h, dtype=float),
                 np.ascontiguousarray(frozen, dtype=bool), stim, params, self.plan, self.stage,
                 failed_at, residuals)
        ok = (failed_at < 0) & np.isfinite(out).all(axis=1)
        return out, ok, residuals, failed_at

    def march(self, rows, t, y, h, retried, t_end, breaks, levels, clamp, refractory_end,
              before, control, grid, out, next_out, knots, events, network=None):
        """The composed steps of ``rows`` up to ``t_end``, adaptive or fixed, events and
        refractory periods included (see :func:`splitpinn.numeric.kernels.march_composed`;
        with a ``network``, every row of the batch in lockstep with its spike deliveries:
        :func:`~splitpinn.numeric.kernels.march_network`), in place on t, y, h, retried, clamp,
        refractory_end and before (the rows' own copies), the output ``out`` (2, B, n, N) or
        None and ``next_out`` (B, int64); returns counts (R, 5) of accepted steps, rejected
        steps, composed steps, events recorded into ``events`` (records, refractory periods,
        clamps) and the status (1: a reset landed at or past a threshold), and the largest
        residual of a successful composed step per row.  ``breaks``: the stimulus's jumps
        and kinks, where steps end; ``levels`` (R, breaks + 1): a stepwise stimulus between
        them.  ``knots``: the accepted steps for the dense output."""
        params = self.params[rows]  # an index array: a C-contiguous copy
        counts, worst = np.zeros((len(rows), 5), dtype=np.int64), np.zeros(len(rows))
        values, slopes = (out[0], out[1]) if out is not None else \
            2 * (np.empty((1, y.shape[1], 0)),)
        common = (t, y, h, retried, float(t_end), np.ascontiguousarray(breaks, dtype=float),
                  np.ascontiguousarray(levels, dtype=float), clamp, refractory_end, before,
                  params, self.plan, self.stage, control, np.ascontiguousarray(grid, float))
        if network is None:
            self.run("march_composed", *common, rows.astype(np.int64), values, slopes,
                     next_out, knots, events, counts, worst)
        else:
            self.run("march_network", *common, values, slopes, next_out, knots, events, counts,
                     worst, network)
        return counts, worst
