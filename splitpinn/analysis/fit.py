"""Fitting a model to recorded data: free parameters searched inside bounds so that the model
reproduces a sampled state (a voltage trace) or a spike train.

The search is scipy's differential evolution with ``vectorized=True``: scipy hands over a
whole generation of candidates at once and the generation is **one batched solve**
(:func:`splitpinn.solve` with a 1-D array per free parameter; candidates that differ in a
Caputo order, which a batch cannot mix, are solved as one batch per order).  ``jobs`` local
processes or the workers of a Dask cluster (``scheduler``) each solve a slice of the
generation.  The best candidate is then polished by Nelder–Mead inside the bounds (in
coordinates scaled to the unit cube).  Everything is seeded: the same seed gives the same fit,
with any ``jobs`` or cluster.

A candidate whose solve fails (SolverError or ModelError) scores ``inf`` and the fit goes on:
when a batch fails, its halves are solved again, down to single candidates, so that only the
failing ones are lost.  Only when every candidate of the first generation fails does the fit
stop, with the first failure's message (nothing can be learnt from such a search).

Losses:

* ``trace`` — normalised mean squared error at the sample times, mean((model − data)²) /
  var(data): 1 is as good as the data's mean, 0 a perfect fit.  The model's values come from
  the solver's dense output at the sample times (``t_eval``), not from an interpolated grid.
* ``spikes`` — ``metric="van-rossum"`` (default; time constant ``window``, default the data's
  mean interspike interval: shorter ones leave the search more local minima) or ``"gamma"``
  (coincidence window ``window``, default 1 ms): see :mod:`splitpinn.analysis.spike_trains`.
  Both count missing and extra spikes.

Files in ``out``: ``fit.json`` (best parameters, loss, evaluations, wall time, bounds, target
and the settings), ``history.csv`` (``generation,best_loss,mean_loss``; generation 0 is the
initial population) and ``fit.png`` (data and fitted model), written atomically.  The first two
are rewritten after every generation (``"status": "running"``), so that an interrupted fit
(Ctrl-C) leaves its best so far (``"status": "interrupted"``).
"""

from __future__ import annotations

import csv
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import ModelError, SolverError
from . import parallel
from .spike_trains import gamma_loss, van_rossum_loss

TARGETS = ("trace", "spikes")
#: Spike-train losses and their default window (ms): van Rossum's tau (None: the data's mean
#: interspike interval), the gamma factor's delta.
SPIKE_METRICS = {"van-rossum": None, "gamma": 1.0}
#: Files a fit writes into its folder.
OUTPUTS = ("fit.json", "history.csv", "fit.png")
#: The search stops when the spread of the population's losses is below this fraction of their
#: mean (scipy's ``tol``) ...
DEFAULT_TOL = 0.01
#: ... or below this absolute spread (scipy's ``atol``; losses are normalised, 0 is a perfect fit).
DEFAULT_ATOL = 1e-10
#: Nelder–Mead polish: stop when the simplex is this small (fraction of each bound's width).
POLISH_XTOL = 1e-4


def population_size(n_free: int) -> int:
    """The default candidates per generation: 10 per free parameter, at least 15."""
    return max(15, 10 * n_free)


def generation_count(n_free: int) -> int:
    """The default most generations: 40 + 20 per free parameter."""
    return 40 + 20 * n_free


# -- input -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Data:
    """What a fit aims at: ``times`` (sample or spike times, ms), ``values`` (the samples of
    ``state``; None for spikes) and ``source`` (the file, for messages)."""

    target: str
    times: np.ndarray
    values: np.ndarray | None = None
    state: str | None = None
    source: str = "data"


def _columns_of(data, source: str) -> dict[str, np.ndarray]:
    """Column name -> float array, from a CSV file, a DataFrame or a mapping."""
    if isinstance(data, str | Path):
        return _read_csv(Path(data))
    if hasattr(data, "columns"):  # a pandas DataFrame
        data = {str(c): data[c].to_numpy() for c in data.columns}
    if not isinstance(data, Mapping):
        raise ModelError(f"{source}: expected a CSV file, a DataFrame or a mapping of columns")
    out = {}
    for name, column in data.items():
        try:
            out[str(name)] = np.asarray(column, dtype=float).ravel()
        except (TypeError, ValueError):
            raise ModelError(f"{source}: column {name!r} is not numeric") from None
    return out


def _read_csv(path: Path) -> dict[str, np.ndarray]:
    name = str(path)
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            rows = [row for row in csv.reader(f) if row]
    except OSError as exc:
        raise ModelError(f"data file {name!r}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ModelError(f"data file {name!r} is not UTF-8 text ({exc.reason})") from None
    if not rows:
        raise ModelError(f"data file {name!r} is empty")
    header = [c.strip() for c in rows[0]]
    table = []
    for line, row in enumerate(rows[1:], start=2):
        try:
            numbers = [float(c) for c in row]
        except ValueError:
            numbers = []
        if len(numbers) != len(header):
            raise ModelError(f"data file {name!r}, line {line}: expected {len(header)} numbers "
                             f"({','.join(header)}), got {','.join(row)!r}")
        table.append(numbers)
    columns = np.array(table, dtype=float).reshape(-1, len(header)).T
    return dict(zip(header, columns, strict=True))


def read_data(data, target: str = "trace", state: str | None = None,
              states: Sequence[str] | None = None) -> Data:
    """The fit's :class:`Data` from ``data``: a CSV file, a DataFrame or a mapping of columns
    (``t_ms`` and one state's samples for ``target="trace"``; ``spike_time_ms`` for
    ``"spikes"``, which may also be a plain sequence of times).  ``state`` names the sampled
    column (default: the one column besides ``t_ms`` that is one of ``states``).  ModelError
    for missing columns, non-finite values, times that do not increase strictly, no spikes."""
    if target not in TARGETS:
        raise ModelError(f"unknown target {target!r} (known: {', '.join(TARGETS)})")
    source = f"data file {str(data)!r}" if isinstance(data, str | Path) else "data"
    if target == "spikes" and not isinstance(data, str | Path | Mapping) \
            and not hasattr(data, "columns"):
        data = {"spike_time_ms": data}
    columns = _columns_of(data, source)
    if target == "spikes":
        if "spike_time_ms" not in columns:
            raise ModelError(f"{source}: a spike target needs the column spike_time_ms, got "
                             f"{', '.join(columns) or 'none'}")
        times = columns["spike_time_ms"]
        _check_times(times, source, "spike_time_ms")
        if times.size == 0:
            raise ModelError(f"{source} holds no spikes")
        return Data("spikes", times, source=source)
    if "t_ms" not in columns:
        raise ModelError(f"{source}: a trace target needs the columns t_ms,<state>, got "
                         f"{', '.join(columns) or 'none'}")
    others = [c for c in columns if c != "t_ms"]
    if state is None:
        candidates = [c for c in others if states is None or c in states]
        if len(candidates) != 1:
            raise ModelError(f"{source}: cannot tell which column is the sampled state "
                             f"(columns: {', '.join(columns)}); name it with state")
        state = candidates[0]
    if state not in columns:
        raise ModelError(f"{source}: no column {state!r} (columns: {', '.join(columns)})")
    times, values = columns["t_ms"], columns[state]
    if times.shape != values.shape:
        raise ModelError(f"{source}: columns t_ms and {state} have different lengths "
                         f"({times.size} and {values.size})")
    _check_times(times, source, "t_ms")
    if times.size < 2:
        raise ModelError(f"{source}: a trace needs at least two samples")
    if not np.all(np.isfinite(values)):
        raise ModelError(f"{source}: column {state!r} holds a non-finite value")
    if not np.var(values) > 0:
        raise ModelError(f"{source}: column {state!r} is constant; its normalised error is "
                         "undefined")
    return Data("trace", times, values, state, source)


def _check_times(times: np.ndarray, source: str, column: str) -> None:
    if not np.all(np.isfinite(times)):
        raise ModelError(f"{source}: column {column} holds a non-finite time")
    steps = np.diff(times)
    if np.any(steps <= 0):
        k = int(np.argmax(steps <= 0)) + 1
        raise ModelError(f"{source}: {column} does not increase strictly ({times[k]:g} ms "
                         f"after {times[k - 1]:g} ms)")


def parse_bounds(spec, name: str) -> tuple[float, float]:
    """``"LO:HI"`` or a pair ``(lo, hi)`` -> finite floats with lo < hi, else ModelError."""
    try:
        lo, hi = (float(v) for v in (spec.split(":") if isinstance(spec, str) else spec))
    except (TypeError, ValueError):
        raise ModelError(f"--free {name}: expected LO:HI, got {spec!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ModelError(f"--free {name}: the bounds must be finite numbers, got {lo:g}:{hi:g}")
    if not lo < hi:
        raise ModelError(f"--free {name}: the lower bound must be below the upper one, got "
                         f"{lo:g}:{hi:g}")
    return lo, hi


def parse_free(items: Sequence[str]) -> dict[str, tuple[float, float]]:
    """``["g_Na=50:200", ...]`` -> ``{"g_Na": (50.0, 200.0), ...}`` (``--free``)."""
    from .sweep import parse_named

    return parse_named(items, "free", "PARAM=LO:HI", parse_bounds)


# -- scoring -----------------------------------------------------------------------------------
@dataclass
class Problem:
    """Everything that scores candidates (it travels to worker processes): the model and how
    to solve it, the free parameters' names, the data and the loss."""

    model: object
    method: str
    names: list[str]
    data: Data
    t_end: float
    common: dict
    metric: str | None
    window: float | None
    #: Free parameters that set a Caputo order (a batch holds one order only).
    orders: list[str] = field(default_factory=list)

    def solve(self, X: np.ndarray, traces: bool | None = None, t_eval=None):
        """Solve the candidates ``X`` (B, n_free): a Batch, or a Solution for B = 1."""
        from ..solvers.driver import solve

        values = {n: (X[:, j] if len(X) > 1 else float(X[0, j]))
                  for j, n in enumerate(self.names)}
        trace = self.data.target == "trace"
        return solve(self.model, self.method, self.t_end,
                     parameters={**self.common["parameters"], **values},
                     traces=trace if traces is None else traces,
                     t_eval=self.data.times if trace and t_eval is None else t_eval,
                     **{k: v for k, v in self.common.items() if k != "parameters"})

    def loss(self, solution) -> float:
        """The loss of one solution against the data (inf where it is not finite)."""
        d = self.data
        if d.target == "trace":
            error = np.mean((solution[d.state] - d.values) ** 2) / np.var(d.values)
        elif self.metric == "gamma":
            error = gamma_loss(d.times, solution.spike_times, self.window,
                               self.t_end - self.common["t0"])
        else:
            error = van_rossum_loss(d.times, solution.spike_times, self.window)
        return float(error) if np.isfinite(error) else math.inf


def score(problem: Problem, indices: np.ndarray, X: np.ndarray):
    """``(indices, losses, failures)`` of the candidates ``X`` (B, n_free): one batched solve
    per Caputo order; a batch that fails is halved until only the failing candidates remain,
    each scoring inf, with its error's first line in ``failures``."""
    losses, failures = np.full(len(X), math.inf), []
    if problem.orders:
        keys = X[:, [problem.names.index(n) for n in problem.orders]]
        groups = [np.flatnonzero((keys == key).all(axis=1)) for key in np.unique(keys, axis=0)]
    else:
        groups = [np.arange(len(X))]
    for group in groups:
        _score_group(problem, X, group, losses, failures)
    return indices, losses, failures


def _score_group(problem, X, group, losses, failures) -> None:
    try:
        result = problem.solve(X[group])
    except (ModelError, SolverError, ArithmeticError) as exc:
        if len(group) == 1:
            failures.append((str(exc).strip().splitlines() or [type(exc).__name__])[0])
            return
        half = len(group) // 2
        _score_group(problem, X, group[:half], losses, failures)
        _score_group(problem, X, group[half:], losses, failures)
        return
    solutions = [result] if len(group) == 1 else list(result)
    for k, solution in zip(group, solutions, strict=True):
        losses[k] = problem.loss(solution)


class _Search:
    """The objective scipy calls: scores a generation (here, in processes or on Dask), keeps
    the best candidate so far, the evaluation count, the history and the files."""

    def __init__(self, problem: Problem, lo, hi, jobs, client, record, bar) -> None:
        self.problem, self.lo, self.hi = problem, lo, hi
        self.jobs, self.client, self.record, self.bar = jobs, client, record, bar
        self.slots = parallel.workers(client) if client is not None else jobs
        self.best_x, self.best_loss = None, math.inf
        self.evaluations = self.failed = 0
        self.first_failure = None
        self.history: list[tuple[int, float, float]] = []
        self.population = None

    def losses(self, X: np.ndarray) -> np.ndarray:
        """Losses of the candidates ``X`` (S, n_free), in order."""
        X = np.atleast_2d(X)
        parts = np.array_split(np.arange(len(X)), min(self.slots, len(X)))
        tasks = [(self.problem, idx, X[idx]) for idx in parts if idx.size]
        losses = np.full(len(X), math.inf)
        processes = len(tasks) if self.jobs > 1 else 1
        for idx, part, failures in parallel.run(score, tasks, processes, self.client):
            losses[idx] = part
            self.failed += len(failures)
            if failures and self.first_failure is None:
                self.first_failure = failures[0]
        self.evaluations += len(X)
        k = int(np.argmin(losses))
        if losses[k] < self.best_loss:
            self.best_loss, self.best_x = float(losses[k]), X[k].copy()
        return losses

    def generation(self, X_T: np.ndarray) -> np.ndarray:
        """scipy's vectorised objective: ``X_T`` is (n_free, S)."""
        losses = self.losses(X_T.T)
        if not self.history:  # the initial population
            if not np.isfinite(losses).any():
                raise SolverError("every candidate of the first generation failed: "
                                  f"{self.first_failure}")
            self._log(0, losses, X_T.T)
        return losses

    def callback(self, intermediate_result) -> None:
        self._log(len(self.history), intermediate_result.population_energies,
                  intermediate_result.population)

    def _log(self, generation: int, energies, population) -> None:
        finite = energies[np.isfinite(energies)]
        self.history.append((generation, self.best_loss,
                             float(finite.mean()) if finite.size else math.inf))
        self.population = np.asarray(population, dtype=float)
        self.bar.update(1)
        self.bar.set_postfix_str(f"best loss {self.best_loss:.4g}", refresh=False)
        self.record("running")

    def polish(self, evaluations: int) -> None:
        """Nelder–Mead from the best candidate, in unit-cube coordinates, inside the bounds;
        its first simplex spans the final population's spread."""
        from scipy.optimize import minimize

        width = self.hi - self.lo
        u0 = (self.best_x - self.lo) / width
        spread = np.std((self.population - self.lo) / width, axis=0) \
            if self.population is not None else np.full(len(u0), 0.01)
        steps = np.clip(2 * spread, 1e-3, 0.05)
        simplex = [u0] + [np.clip(u0 + np.where(u0 + s <= 1, s, -s) * np.eye(len(u0))[j], 0, 1)
                          for j, s in enumerate(steps)]
        minimize(lambda u: float(self.losses((self.lo + u * width)[None, :])[0]), u0,
                 method="Nelder-Mead", bounds=[(0.0, 1.0)] * len(u0),
                 options={"initial_simplex": np.array(simplex), "xatol": POLISH_XTOL,
                          "fatol": math.inf, "maxfev": evaluations})


# -- result and files ---------------------------------------------------------------------------
@dataclass
class FitResult:
    """A finished (or interrupted) fit: ``parameters`` (the best values of the free
    parameters), ``loss``, ``history`` (DataFrame ``generation, best_loss, mean_loss``),
    ``solution`` (the best fit's :class:`~splitpinn.solvers.solution.Solution`, on the default
    output grid), ``data``, and ``meta`` (the document of ``fit.json``)."""

    parameters: dict[str, float]
    loss: float
    history: object
    solution: object
    data: Data
    meta: dict

    @property
    def evaluations(self) -> int:
        return self.meta["evaluations"]

    @property
    def wall_time_s(self) -> float:
        return self.meta["wall_time_s"]


def _history_frame(rows):
    import pandas as pd

    return pd.DataFrame(rows, columns=["generation", "best_loss", "mean_loss"])


def plot_fit(result: FitResult, axes=None):
    """The data and the fitted model (trace: samples and the model's state; spikes: the
    model's first state with the data's and the model's spike times marked) above the loss
    per generation.  ``axes``: two Axes.  Returns the Figure."""
    import matplotlib.pyplot as plt

    from .plotting import label

    if axes is None:
        fig, axes = plt.subplots(2, 1, figsize=(8, 5.5), height_ratios=[2.2, 1],
                                 layout="constrained")
    top, bottom = axes
    fig = top.figure
    solution, data = result.solution, result.data
    units = solution.meta.get("units", {})
    if data.target == "trace":
        top.plot(data.times, data.values, ".", ms=2.5, color="0.55", label="data")
        top.plot(solution.t, solution[data.state], lw=1.1, color="C3", label="fit")
        top.set_ylabel(label(data.state, units))
    else:
        state = solution.names[0]
        top.plot(solution.t, solution[state], lw=1.0, color="C3", label="fit")
        top.set_ylabel(label(state, units))
        low, high = top.get_ylim()
        top.vlines(data.times, high, high + 0.08 * (high - low), color="k", lw=1.2,
                   label="data spikes")
        top.vlines(solution.spike_times, high + 0.1 * (high - low), high + 0.18 * (high - low),
                   color="C3", lw=1.2, label="fit spikes")
    top.set_xlabel("t (ms)")
    top.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, fontsize="small")
    values = ", ".join(f"{k} = {v:.4g}" for k, v in result.parameters.items())
    top.set_title(f"{result.meta['model']} fitted to {data.target} ({result.meta['method']}): "
                  f"{values}; loss {result.loss:.3g}", fontsize="medium")
    history = result.history
    bottom.semilogy(history["generation"], history["best_loss"].clip(lower=1e-16), "o-", ms=2.5,
                    lw=1, label="best")
    mean = history["mean_loss"].replace([np.inf], np.nan)
    bottom.semilogy(history["generation"], mean.clip(lower=1e-16), lw=1, label="mean")
    bottom.set_xlabel("generation")
    bottom.set_ylabel("loss")
    bottom.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, fontsize="small")
    return fig


def write_outputs(result: FitResult, out: Path, figure: bool = True) -> None:
    """``fit.json`` and ``history.csv`` (and ``fit.png`` with ``figure``), each atomically."""
    from .sweep import write_json, write_table

    write_json(out / "fit.json", result.meta)
    write_table(out / "history.csv", list(result.history.columns),
                result.history.itertuples(index=False))
    if figure and result.solution is not None:
        from .plotting import save_figure

        save_figure(plot_fit(result), out / "fit.png")


# -- the fit ------------------------------------------------------------------------------------
def fit(model, data, free: Mapping, target: str = "trace", state: str | None = None,
        method: str = "split-pinn", *, t_end: float | None = None, t0: float = 0.0,
        dt: float | None = None, parameters: Mapping[str, float] | None = None,
        initial: Mapping[str, float] | None = None, preset: str | None = None, stimulus=None,
        population: int | None = None, generations: int | None = None, seed: int = 0,
        metric: str | None = None, window: float | None = None, polish: bool = True,
        tol: float = DEFAULT_TOL, jobs: int | None = None, scheduler: str | None = None,
        out: str | Path | None = None, quiet: bool = True, **options) -> FitResult:
    """Fit the ``free`` parameters of ``model`` (a Model, library name or model file) to
    ``data``.

    ``data``: a CSV file, a DataFrame or a mapping of columns — ``t_ms`` and the samples of
    ``state`` for ``target="trace"`` (the model is solved on [t0, last sample] and compared at
    the samples), ``spike_time_ms`` for ``target="spikes"`` (then ``t_end`` is required).
    ``free`` maps parameter names to bounds ``(lo, hi)`` or ``"LO:HI"``; the other parameters
    take ``parameters`` (fixed values), the ``preset`` or their defaults.  ``method``,
    ``dt``, ``initial``, ``stimulus`` and ``options`` are those of :func:`splitpinn.solve`.

    Search: differential evolution, ``population`` candidates per generation (default
    :func:`population_size`) for at most ``generations`` (default :func:`generation_count`),
    each generation one batched solve, split over ``jobs`` local processes (default 1: this
    one) or the Dask cluster at ``scheduler``; then a Nelder–Mead ``polish`` of the best.
    ``seed`` makes it reproducible.  ``metric`` (spikes: ``"van-rossum"``, the default, or
    ``"gamma"``) with ``window`` (ms) picks the spike loss.  With ``out``, the folder gets
    ``fit.json``, ``history.csv`` and ``fit.png``.  ``quiet=False`` shows a bar per
    generation.

    Returns a :class:`FitResult`.  Raises ModelError for bad input, before any solve.
    """
    from ..solvers.driver import resolve_model
    from ..solvers.progress import bar as progress_bar

    start = time.perf_counter()
    resolved = resolve_model(model)
    target_data = read_data(data, target, state, resolved.state_names)
    problem, lo, hi = _problem(resolved, model, target_data, free, method, t_end, t0, dt,
                               parameters, initial, preset, stimulus, metric, window, options)
    n = len(problem.names)
    population = population_size(n) if population is None else population
    generations = generation_count(n) if generations is None else generations
    _check_search(population, generations, seed, tol, jobs, scheduler)
    out = _prepare_out(out)
    meta = {"model": resolved.name, "method": method, "target": target_data.target,
            "state": target_data.state, "data": target_data.source,
            "samples": int(target_data.times.size), "t0": float(t0),
            "t_end": problem.t_end, "free": {k: [a, b] for k, a, b in zip(problem.names, lo, hi,
                                                                         strict=True)},
            "fixed": dict(parameters or {}), "preset": preset,
            "metric": problem.metric if target_data.target == "spikes" else "nmse",
            "window_ms": problem.window, "population": population, "generations": generations,
            "seed": seed, "polish": polish}
    client = parallel.connect(scheduler) if scheduler is not None else None
    bar = progress_bar(generations + 1, f"fit {resolved.name}", "gen", quiet, leave=True)
    search = None

    def result(status: str, solution=None) -> FitResult:
        best = {} if search.best_x is None else \
            dict(zip(problem.names, map(float, search.best_x), strict=True))
        document = {"parameters": best, "loss": search.best_loss,
                    "evaluations": search.evaluations,
                    "failed_evaluations": search.failed,
                    "generations_run": max(0, len(search.history) - 1),
                    "wall_time_s": time.perf_counter() - start,
                    "evaluations_per_s": search.evaluations / (time.perf_counter() - start),
                    "status": status, **meta}
        return FitResult(best, search.best_loss, _history_frame(search.history), solution,
                         target_data, document)

    def record(status: str) -> None:
        if out is not None:
            write_outputs(result(status), out, figure=False)

    try:
        with bar:
            search = _Search(problem, lo, hi, jobs or 1, client, record, bar)
            _differential_evolution(search, lo, hi, population, generations, seed, tol)
        if polish:
            search.polish(100 * n)
        final = result("done", _best_solution(problem, search.best_x))
    except KeyboardInterrupt:
        if out is not None and search is not None and search.best_x is not None:
            interrupted = result("interrupted")
            write_outputs(interrupted, out, figure=False)
        raise
    finally:
        if client is not None:
            client.close()
    if out is not None:
        write_outputs(final, out)
    return final


def _best_solution(problem: Problem, best_x: np.ndarray):
    """The best candidate solved once more, on the default output grid (for the figure)."""
    return problem.solve(best_x[None, :], traces=True, t_eval=None)


def _differential_evolution(search: _Search, lo, hi, population, generations, seed, tol):
    from scipy.optimize import differential_evolution
    from scipy.stats import qmc

    unit = qmc.LatinHypercube(d=len(lo), rng=np.random.default_rng(seed)).random(population)
    return differential_evolution(
        search.generation, list(zip(lo, hi, strict=True)), maxiter=generations,
        init=lo + unit * (hi - lo), rng=np.random.default_rng(seed + 1), polish=False,
        vectorized=True, updating="deferred", tol=tol, atol=DEFAULT_ATOL,
        callback=search.callback)


def _problem(resolved, model, data: Data, free, method, t_end, t0, dt, parameters, initial,
             preset, stimulus, metric, window, options):
    """Check the fit's input; the :class:`Problem` and the bounds (lo, hi arrays)."""
    from ..numeric.bound import bind
    from ..solvers import registry
    from ..solvers.driver import check_times

    if not isinstance(free, Mapping) or not free:
        raise ModelError("a fit needs at least one free parameter with bounds (--free)")
    bounds = {str(k): parse_bounds(v, str(k)) for k, v in free.items()}
    names = list(bounds)
    parameters = dict(parameters or {})
    for name in names:
        if name not in resolved.parameters:
            raise ModelError(f"{resolved.name}: unknown free parameter {name!r} "
                             f"(known: {', '.join(resolved.parameters)})")
        if name in parameters:
            raise ModelError(f"{name} is both free and set")
    registry.get("method", method).check_options(options)
    if data.target == "trace":
        if metric is not None or window is not None:
            raise ModelError("metric and window apply to a spike target (--target spikes); a "
                             "trace is scored by its normalised mean squared error")
        if data.state not in resolved.state_names:
            raise ModelError(f"{resolved.name} has no state {data.state!r} (states: "
                             f"{', '.join(resolved.state_names)})")
        last = float(data.times[-1])
        if t_end is not None and t_end < last:
            raise ModelError(f"t_end = {t_end:g} ms is before the last sample ({last:g} ms)")
        t_end = last if t_end is None else t_end
    elif t_end is None:
        raise ModelError("a spike target needs the end time of the recording (--t-end)")
    check_times(t_end, dt, t0)
    if data.times[0] < t0 or data.times[-1] > t_end:
        raise ModelError(f"{data.source}: times must lie inside [t0, t_end] = "
                         f"[{t0:g}, {t_end:g}] ms")
    if data.target == "spikes":
        metric = "van-rossum" if metric is None else metric
        if metric not in SPIKE_METRICS:
            raise ModelError(f"unknown spike metric {metric!r} (known: "
                             f"{', '.join(SPIKE_METRICS)})")
        window = SPIKE_METRICS[metric] if window is None else window
        if window is None:  # van Rossum: the mean interspike interval of the data
            times = data.times
            window = float(np.diff(times).mean()) if times.size > 1 else (t_end - t0) / 2
        if not (isinstance(window, int | float) and math.isfinite(window) and window > 0):
            raise ModelError(f"the spike metric's window must be a number > 0 ms, got {window!r}")
    lo = np.array([bounds[n][0] for n in names])
    hi = np.array([bounds[n][1] for n in names])
    # both corners of the box bind (orders inside (0, 1], valid values), so every candidate can
    for corner in (lo, hi):
        bind(resolved, {**parameters, **dict(zip(names, map(float, corner), strict=True))},
             initial, preset)
    common = {"dt": dt, "t0": float(t0), "parameters": parameters, "initial": dict(initial or {}),
              "preset": preset, "stimulus": stimulus, **options}
    return (Problem(model if isinstance(model, str) else resolved, method, names, data,
                    float(t_end), common, metric if data.target == "spikes" else None,
                    window if data.target == "spikes" else None, _orders(resolved, names)),
            lo, hi)


def _orders(model, names: list[str]) -> list[str]:
    """The names among ``names`` that appear in a state's Caputo order."""
    import sympy as sp

    used = set().union(*(sp.sympify(s.order).free_symbols for s in model.states))
    return [n for n in names if model.symbol(n) in used]


def _check_search(population, generations, seed, tol, jobs, scheduler) -> None:
    from ..solvers.driver import check_integer

    parallel.check_workers(jobs, scheduler)
    parallel.check_count("generations", generations)
    parallel.check_count("population", population)
    if population < 5:
        raise ModelError(f"population must be at least 5, got {population}")
    check_integer("seed", seed, 0)
    if not (isinstance(tol, int | float) and math.isfinite(tol) and tol >= 0):
        raise ModelError(f"tol must be a finite number >= 0, got {tol!r}")


def _prepare_out(out) -> Path | None:
    """The output folder, created; the last fit's figure in it removed (it would not match)."""
    if out is None:
        return None
    from .sweep import output_folder

    out = output_folder(out)
    out.mkdir(exist_ok=True)
    (out / "fit.png").unlink(missing_ok=True)
    return out
