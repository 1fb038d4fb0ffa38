"""Compiled (numba) forms of a model, and the hot loops that use them.

Fixed-step fractional runs and split-PINN's composed steps spent almost all their time in Python
around a few dozen flops (10^6 steps of frac-LIF took minutes; an HH stage cost ~200 µs).

* :func:`compiled_model`: a model's right-hand side, Jacobian and event functions printed from
  sympy as scalar Python (common subexpressions shared), written with the kernels of
  :mod:`splitpinn.numeric.kernels` into one module per model in a cache folder and compiled by numba
  with its disk cache: the first process compiles (seconds), later ones load the machine code.
* :func:`march_uniform`: the implicit L1 / L2-1σ march over a stretch of equal steps with a
  sum-of-exponentials memory (:meth:`~splitpinn.fractional.FastHistory.uniform_recurrence`),
  Newton per step, stopping before the first step that crosses a threshold.
* :class:`FrozenComposition`: split-PINN's composed step when every stage is a least-squares
  stage with frozen coefficients (HH, LIF), for all rows of a batch in one call, each stage
  taken from its :class:`~splitpinn.numeric.stage_table.StageTable` where that meets the tolerance;
  and its adaptive march between events (:meth:`FrozenComposition.march`), which takes the
  marching loop's Python out of the steps that need no event handling.

The fractional reference and split-PINN use them where they apply and keep their numpy paths
everywhere else (``compiled=False`` keeps those throughout, for debugging), and say so once
per model (:func:`fall_back`, a :class:`~splitpinn.errors.CompilationWarning` with the reason).
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
import os
import shutil
import sys
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import sympy as sp
from sympy.printing.pycode import PythonCodePrinter

from ..errors import CompilationWarning
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
    warnings.warn(f"model {bound.model.name!r} runs uncompiled (the numpy path: same results, "
                  f"10-100x slower): {error}", CompilationWarning, stacklevel=3)


#: The models :func:`fall_back` has warned about.
_WARNED: set[tuple[str, str | None]] = set()


class Marched(NamedTuple):
    """What :func:`march_uniform` did: the ``states`` (count, n) of the steps it took (all
    recorded), the memory's ``acc`` and ``du_last`` after them, the crossing functions
    ``before`` the next step and the Newton ``iterations`` (a step whose Newton iteration
    failed is not taken: the caller's numpy step repeats it and reports the failure)."""

    states: np.ndarray
    acc: np.ndarray
    du_last: np.ndarray
    before: np.ndarray
    iterations: int


@dataclass(frozen=True)
class CompiledModel:
    """The compiled functions of one model (see :mod:`splitpinn.numeric.kernels`): ``rhs``,
    ``jacobian`` and ``crossings`` ``f(t, I_ext, y, p, out)`` (out: (n,), (n, n), one value per
    event then the spike detector, as :class:`splitpinn.solvers.marching._Crossings`), and the
    kernels ``march``, ``compose``, ``march_adaptive`` and ``rhs_rows`` that call them (with the
    module's ``diagonal``)."""

    rhs: object
    jacobian: object
    crossings: object
    march: object
    compose: object
    march_adaptive: object
    rhs_rows: object


def compiled_model(bound: BoundModel) -> CompiledModel:
    """The compiled functions of ``bound``'s model, built on first use and kept for the
    process in :mod:`splitpinn.numeric.cache`: the sources under the model's key (printing
    them takes a while: once per model content, so each ``solve("hh", ...)`` after the first
    prints nothing), the compiled functions under a digest of the sources (models that differ
    only in their stimulus share them, and with them the kernels specialised to them:
    compiling those takes seconds)."""
    sources = cache.cached(bound.model.key, "compiled sources", lambda: _sources(bound))
    digest = hashlib.sha256("\0".join(sources).encode()).hexdigest()
    return cache.cached(f"sources {digest}", "compiled", lambda: _build(sources))


def _source(name: str, bound: BoundModel, outputs: list[tuple[str, sp.Expr]]) -> str:
    """Python source of ``def name(t, I_ext, y, p, out)`` assigning each expression to its
    output slot; every symbol is renamed (user names may be keywords or shadow builtins)."""
    n = len(bound.names)
    t, stim, *rest = bound.args
    states, params = rest[:n], rest[n:]
    rename = {t: sp.Symbol("t"), stim: sp.Symbol("I_ext")}
    rename |= {s: sp.Symbol(f"y{k}") for k, s in enumerate(states)}
    rename |= {s: sp.Symbol(f"p{k}") for k, s in enumerate(params)}
    exprs = [sp.sympify(e).xreplace(rename) for _, e in outputs]
    shared, reduced = sp.cse(exprs, symbols=sp.numbered_symbols("c"))
    printer = PythonCodePrinter({"allow_unknown_functions": True})
    lines = [f"def {name}(t, I_ext, y, p, out):"]
    lines += [f"    y{k} = y[{k}]" for k in range(n)]
    lines += [f"    p{k} = p[{k}]" for k in range(len(params))]
    lines += [f"    {s} = {printer.doprint(e)}" for s, e in shared]
    lines += [f"    out[{slot}] = {printer.doprint(e)}"
              for (slot, _), e in zip(outputs, reduced, strict=True)]
    return "\n".join(lines + ["    return 0"]) + "\n"


def _sources(bound: BoundModel) -> tuple[str, ...]:
    """The sources of ``rhs``, ``jacobian``, ``diagonal`` and ``crossings`` (see
    :class:`CompiledModel`)."""
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
    return (_source("rhs", bound, [(str(i), e) for i, e in enumerate(rhs)]),
            _source("jacobian", bound, [(f"{i}, {j}", jac[i, j]) for i in range(n)
                                        for j in range(n)]),
            _source("diagonal", bound, [(f"0, {i}", e) for i, e in enumerate(rhs)]
                    + [(f"1, {i}", jac[i, i]) for i in range(n)]),
            _source("crossings", bound, crossings))


_NAMES = ("XOverOneMinusExp", "XOverOneMinusExpPrime", "rhs", "jacobian", "diagonal",
          "crossings", "strict", "fires", "crossed", "solve_in_place", "cholesky_solve_in_place",
          "march", "tabulated_stage", "compose_row", "compose", "step_control", "march_adaptive",
          "rhs_rows")


def _build(sources: tuple[str, ...]) -> CompiledModel:
    """The module of :mod:`splitpinn.numeric.kernels` followed by the model's functions, every
    function compiled by numba with its disk cache; :class:`NotCompilable` with the reason where
    it cannot be written, loaded or compiled.

    The file ``model_<key>.py`` (key: a hash of numba's version and the text) is checked against
    the text before use and written again where it differs (empty, cut short, edited); what
    runs is the expected text itself.  Checking, writing and importing, and every compile of
    its functions later (the first call with new argument types, which loads numba's cache or
    compiles and saves it), happen under the file lock ``model_<key>.py.lock``: processes
    building the same model take turns, the first compiles and the others load its machine
    code, and numba's index of its cache (read, then rewritten) is never updated by two at
    once."""
    from filelock import FileLock, Timeout

    key, text = _module_text(sources)
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
    return CompiledModel(*(getattr(module, name) for name in
                           ("rhs", "jacobian", "crossings", "march", "compose", "march_adaptive",
                            "rhs_rows")))


def _module_text(sources: tuple[str, ...]) -> tuple[str, str]:
    """The key (a hash of numba's version and the text) and the text of the module of
    ``sources`` (see :func:`_build`)."""
    import numba

    text = "\n\n".join([inspect.getsource(kernels), *sources, _FOOTER])
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
        for function in _NAMES:
            dispatcher = getattr(module, function)
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


_FOOTER = f"""
import numba as _numba

for _name in {_NAMES!r}:
    globals()[_name] = _numba.njit(cache=True)(globals()[_name])
"""


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

    try:
        return kernel(*args)
    except (NumbaError, NotCompilable) as error:
        module = getattr(getattr(kernel, "py_func", None), "__module__", None) or ""
        key = getattr(error, "key", None) or module.removeprefix("splitpinn_model_") or None
        raise NotCompilable(str(error), key) from error


def march_uniform(model: CompiledModel, recurrence, t0: float, u0: np.ndarray,
                  stops: np.ndarray, t_star: np.ndarray, stim_star: np.ndarray,
                  stim_end: np.ndarray, params: np.ndarray, active: np.ndarray,
                  before: np.ndarray, jac_const: np.ndarray | None, newton_tol: float,
                  max_newton: int, *, n_events: int, armed: bool):
    """March from (t0, u0) to ``stops`` (equal steps, the recurrence's dt) until a step would
    cross a threshold (``before`` < 0 <= crossing; the first ``n_events`` functions, the
    thresholds of resets, only where the neuron is ``armed``: see
    :func:`splitpinn.numeric.kernels.fires`) or Newton fails; every step taken is
    recorded in the recurrence's state.  ``t_star``, ``stim_star``: the time and stimulus of
    each step's relation; ``stim_end`` the stimulus at each stop (for the crossings);
    ``jac_const``: the Jacobian when it is constant, else None.

    Returns a :class:`Marched`."""
    n = u0.size
    out = np.empty((stops.size, n))
    linear = jac_const is not None
    acc, du_last = recurrence.acc.copy(), recurrence.du_last.copy()
    after = np.array(before, dtype=float)
    count, iterations = _call(
        model.march, float(t0), np.asarray(u0, dtype=float), du_last, acc, recurrence.E,
        recurrence.P, recurrence.c, recurrence.D, recurrence.G1, recurrence.G2,
        float(recurrence.sigma), stops, t_star, stim_star, stim_end, params, active, after,
        int(n_events), bool(armed), linear, np.array(jac_const) if linear else np.zeros((n, n)),
        float(newton_tol), int(max_newton), out)
    return Marched(out[:count], acc, du_last, after, iterations)


class FrozenComposition:
    """The composed step of a split-PINN plan whose every stage is a least-squares PINN
    stage with frozen coefficients and a right-hand side constant over the stage (HH-type
    conditionally linear sub-problems under a constant or stepwise stimulus), compiled for
    all rows at once.  It computes what
    :meth:`~splitpinn.solvers.subsolvers.LeastSquaresPINN.advance` does on that path: per state,
    z = h·∂f/∂x and b = h·f at the stage start, the K×K normal equations
    (G0 − zG1 + z²G2) w = b(Σo − zΣv), the residual at the check points, and the value at the
    stage end; ``systems`` are those products (``frozen_system``).  Where a stage's z lies in
    its :class:`~splitpinn.numeric.stage_table.StageTable` and the bounded residual meets the
    tolerance, the table gives the value without the solve."""

    def __init__(self, bound: BoundModel, plan, system: tuple, tol: float) -> None:
        self.bound, self.model, self.tol = bound, compiled_model(bound), float(tol)
        members = np.full((len(plan.subproblems), max(len(sub.index) for sub in
                                                      plan.subproblems)), -1, dtype=np.int64)
        for k, sub in enumerate(plan.subproblems):
            members[k, : len(sub.index)] = sub.index
        system = tuple(np.ascontiguousarray(a, dtype=float) for a in system)
        table = StageTable.of(system)
        #: Everything the kernel's composed step needs besides the rows (kernels.compose_row)
        self.scheme = (np.array([k for k, _ in plan.stages], dtype=np.int64),
                       np.array([c for _, c in plan.stages], dtype=float), members, *system,
                       self.tol, Z_LOW, WIDTH, table.coefficients, table.residual, table.reach)
        self.params = np.ascontiguousarray(bound.param_columns, dtype=float)
        constant = bound.constant_stimulus
        self.stim = None if constant is None else np.ascontiguousarray(
            np.broadcast_to(constant, (self.params.shape[1],)), dtype=float)

    def _inputs(self, rows, t, h=None):
        """Time, stimulus and parameter columns (P, R) of ``rows``, C-contiguous (one array
        layout: one compiled specialisation).  The stimulus is the one over the steps
        [t, t + h] (a stepwise stimulus: see :meth:`~splitpinn.numeric.bound.BoundModel.
        step_stimulus`), or its value at t without ``h``."""
        t = np.ascontiguousarray(t, dtype=float)
        params = np.ascontiguousarray(self.params[:, rows])
        if self.stim is not None:
            return t, self.stim[rows], params
        over = None if h is None else self.bound.step_stimulus(t, h, params)
        if over is None:
            over = np.broadcast_to(self.bound.stimulus_columns(t, list(params)), t.shape)
        return t, np.ascontiguousarray(over, dtype=float), params

    def __call__(self, rows, t, y, h, frozen):
        """(states after the step (R, n), per-row ok, per-row largest stage residual, per-row
        index of the first sub-problem that missed its tolerance or −1)."""
        t, stim, params = self._inputs(rows, t, h)
        out = np.array(y, dtype=float, order="C")
        failed_at = np.full(len(rows), -1, dtype=np.int64)
        residuals = np.zeros(len(rows))
        _call(self.model.compose, t, out, np.ascontiguousarray(h, dtype=float),
              np.ascontiguousarray(frozen, dtype=bool), stim, params, self.scheme, failed_at,
              residuals)
        ok = (failed_at < 0) & np.isfinite(out).all(axis=1)
        return out, ok, residuals, failed_at

    def march(self, rows, t, y, h, limit, hand_back, frozen, before, armed, control, grid, out,
              next_out, knots):
        """Plain adaptive steps of ``rows`` up to ``limit`` (see
        :func:`splitpinn.numeric.kernels.march_adaptive`), in place on t, y, h, before (the rows'
        own copies; ``armed``: the rows out of their refractory period, whose thresholds are
        checked), the output ``out`` (2, B, n, N) or None and ``next_out`` (B, int64); returns
        counts (R, 3) of accepted steps, rejected steps and composed steps, and the largest
        residual of a successful composed step per row.  ``hand_back``: rows whose limit is
        a stimulus jump, whose last step the loop takes (its output there sees the stimulus
        after the jump).  ``knots``: the accepted steps' ends for the dense output.  The
        stimulus must be constant up to ``limit``."""
        _, stim, params = self._inputs(rows, t, limit - t)
        counts, worst = np.zeros((len(rows), 3), dtype=np.int64), np.zeros(len(rows))
        values, slopes = (out[0], out[1]) if out is not None else \
            2 * (np.empty((1, y.shape[1], 0)),)
        _call(self.model.march_adaptive, t, y, h, np.ascontiguousarray(limit, dtype=float),
              np.ascontiguousarray(hand_back, dtype=bool), np.ascontiguousarray(frozen, bool),
              before, np.ascontiguousarray(armed, dtype=bool), stim, params, self.scheme,
              control, np.ascontiguousarray(grid, float),
              rows.astype(np.int64), values, slopes, next_out, knots, counts, worst)
        return counts, worst

    def derivative(self, rows, t, y, frozen) -> np.ndarray:
        """The right-hand side (R, n) of ``rows``, zero for clamped states."""
        t, stim, params = self._inputs(rows, t)
        out = np.empty(np.shape(y))
        _call(self.model.rhs_rows, t, stim, np.ascontiguousarray(y, dtype=float), params, out)
        return np.where(frozen, 0.0, out)
