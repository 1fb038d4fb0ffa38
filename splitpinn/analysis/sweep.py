"""Parameter sweeps: a grid of parameter values solved in parallel, written resumably.

A grid is the cartesian product of the varied parameters' values, the last one varying fastest;
its points are numbered from 0 in that order.  Points are cut into chunks, and each chunk is
solved by :func:`solve_chunk` on one worker: a local process (joblib/loky, ``jobs``) or a worker
of a Dask cluster (``scheduler``).  With ``out``, each finished chunk is written as its own file
in ``out/parts/`` (temporary file, fsync, rename), and ``sweep.csv`` and ``spikes.csv`` are then
rewritten atomically from all finished points, sorted by point, so that a kill at any moment
leaves only whole rows.  ``resume=True`` reads ``out/parts/`` and computes only the missing points.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import math
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ModelError, SolverError
from ..solvers.solution import write_atomically
from . import parallel

MANIFEST, PARTS = "sweep.json", "parts"
#: Files that sweeps, F–I curves and latency runs write into their folder.
OUTPUTS = (MANIFEST, "sweep.csv", "spikes.csv", "sweep.png", "fi.csv", "fi.png", "latency.csv",
           "latency.json", "latency.png")


# -- the grid ----------------------------------------------------------------------------------
def parse_values(spec: str, name: str = "value") -> np.ndarray:
    """``START:STOP:N`` (N evenly spaced values, both ends included) or ``v1,v2,...``."""
    parts = spec.split(":")
    try:
        if len(parts) == 3:
            start, stop, count = float(parts[0]), float(parts[1]), parts[2].strip()
            if not count.isdigit() or int(count) < 1:
                raise ModelError(f"--vary {name}: N in START:STOP:N must be an integer >= 1, "
                                 f"got {count!r}")
            values = np.linspace(start, stop, int(count))
        elif len(parts) == 1:
            values = np.array([float(v) for v in spec.split(",")])
        else:
            raise ValueError
    except ValueError:
        raise ModelError(f"--vary {name}: {spec!r} is neither START:STOP:N nor v1,v2,... "
                         "of numbers") from None
    if not np.all(np.isfinite(values)):
        raise ModelError(f"--vary {name}: {spec!r} holds a non-finite value")
    return values


def parse_vary(items: Sequence[str]) -> dict[str, np.ndarray]:
    """``["I=0:20:5", "tau=5,10"]`` -> ``{"I": array, "tau": array}`` in the given order."""
    return parse_named(items, "vary", "PARAM=START:STOP:N or PARAM=v1,v2,...", parse_values)


def parse_named(items: Sequence[str], option: str, form: str, parse) -> dict:
    """``NAME=SPEC`` items of the repeatable ``--option`` -> ``{NAME: parse(SPEC, NAME)}`` in
    the given order; ModelError (naming ``form``) for a malformed item or a name given twice."""
    out: dict = {}
    for item in items:
        name, sep, spec = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise ModelError(f"--{option} expects {form}, got {item!r}")
        if name in out:
            raise ModelError(f"--{option} {name} is given twice")
        out[name] = parse(spec, name)
    return out


def grid(vary: Mapping[str, Sequence[float]]) -> list[dict[str, float]]:
    """The cartesian product of ``vary``'s values as one dict per point, the last name fastest."""
    names = list(vary)
    return [dict(zip(names, map(float, values), strict=True))
            for values in itertools.product(*(np.asarray(vary[n], dtype=float) for n in names))]


def _as_vary(vary) -> dict[str, np.ndarray]:
    if isinstance(vary, str):
        return parse_vary([vary])
    if not isinstance(vary, Mapping):
        return parse_vary(list(vary))
    out = {}
    for name, values in vary.items():
        values = parse_values(values, name) if isinstance(values, str) else \
            np.atleast_1d(np.asarray(values, dtype=float))
        if values.ndim != 1 or values.size == 0 or not np.all(np.isfinite(values)):
            raise ModelError(f"vary {name}: expected a non-empty 1-D list of finite numbers")
        out[name] = values
    return out


# -- solving -----------------------------------------------------------------------------------
@dataclass
class PointResult:
    """One grid point's outcome: spike times (ms), wall time (s) and ``"ok"`` or the error."""

    spike_times: np.ndarray
    wall_time_s: float
    status: str


def solve_chunk(model, method: str, points: list[dict[str, float]],
                common: Mapping) -> list[PointResult]:
    """Solve the grid ``points`` (parameter values each) with ``common`` settings (``t_end``,
    ``dt``, ``parameters``, ``initial``, ``preset``, ``options``): the one place where a sweep
    solves.  The chunk is one batched solve (spike times only); if the batch fails, each point
    is solved alone, and a point whose solve raises ModelError or SolverError records the
    error's first line as its status."""
    from ..solvers.driver import solve

    start = time.perf_counter()
    varied = {k: np.array([p[k] for p in points], dtype=float) for k in points[0]} \
        if points else {}
    if len(points) > 1 and varied:
        try:
            batch = solve(model, method, common["t_end"], common["dt"],
                          parameters={**common["parameters"], **varied},
                          initial=common["initial"], preset=common["preset"], quiet=True,
                          traces=False, **common["options"])
        except (ModelError, SolverError):
            pass  # solve alone below, so that each point reports its own error
        else:
            share = (time.perf_counter() - start) / len(points)
            return [PointResult(np.asarray(s.spike_times, dtype=float), share, "ok")
                    for s in batch]
    results = []
    for values in points:
        start = time.perf_counter()
        try:
            solution = solve(model, method, common["t_end"], common["dt"],
                             parameters={**common["parameters"], **values},
                             initial=common["initial"], preset=common["preset"], quiet=True,
                             traces=False, **common["options"])
        except (ModelError, SolverError) as exc:
            message = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            results.append(PointResult(np.array([]), time.perf_counter() - start, message))
            continue
        results.append(PointResult(np.asarray(solution.spike_times, dtype=float),
                                   float(solution.meta["wall_time_s"]), "ok"))
    return results


def _numbered_chunk(numbers, model, method, points, common):
    return numbers, solve_chunk(model, method, points, common)


def rate_hz(spike_times: np.ndarray) -> float:
    """1000 / mean interspike interval (Hz; times in ms), 0 with fewer than two spikes."""
    s = np.asarray(spike_times, dtype=float)
    return 0.0 if s.size < 2 else float(1000.0 * (s.size - 1) / (s[-1] - s[0]))


def _chunks(numbers: list[int], size: int) -> list[list[int]]:
    return [numbers[i:i + size] for i in range(0, len(numbers), size)]


# -- results and files -------------------------------------------------------------------------
@dataclass
class SweepResult:
    """A finished sweep: ``varied`` parameter names, ``table`` (the rows of ``sweep.csv`` as a
    pandas DataFrame) and ``spikes`` (``spikes.csv``: ``point``, ``spike_time_ms``)."""

    varied: list[str]
    table: object
    spikes: object
    meta: dict

    def spike_times(self, point: int) -> np.ndarray:
        """The spike times (ms) of grid point ``point``."""
        s = self.spikes
        return s.loc[s["point"] == point, "spike_time_ms"].to_numpy()


def _columns(varied: list[str]) -> list[str]:
    return ["point", *varied, "spike_count", "first_spike_ms", "rate_hz", "wall_time_s", "status"]


def _row(point: int, values: Mapping[str, float], r: PointResult) -> dict:
    s = r.spike_times
    return {"point": point, **values, "spike_count": int(s.size),
            "first_spike_ms": float(s[0]) if s.size else None, "rate_hz": rate_hz(s),
            "wall_time_s": r.wall_time_s, "status": r.status}


def write_table(path: Path, header: list[str], rows) -> None:
    """Write a CSV file durably and atomically (temporary file, fsync, rename); floats exactly
    (shortest round-trip form), None as an empty cell."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow("" if v is None else repr(float(v)) if isinstance(v, float) else v
                        for v in row)
    _write_durably(path, buffer.getvalue().encode())


def write_json(path: Path, document, indent: int | None = 1) -> None:
    """Write a JSON document durably and atomically."""
    _write_durably(path, json.dumps(document, indent=indent).encode())


def _write_durably(path: Path, data: bytes) -> None:
    def write(f):
        f.write(data)
        f.flush()
        os.fsync(f.fileno())

    write_atomically(path, write)


class _Store:
    """The sweep's folder: manifest, one file per finished chunk, and the two CSV files."""

    def __init__(self, out: Path, manifest: dict, points: list[dict], resume: bool) -> None:
        self.out, self.parts, self.points = out, out / PARTS, points
        self.varied = list(manifest["vary"])
        existing = out / MANIFEST
        if existing.exists() or self.parts.exists():
            if not resume:
                raise ModelError(f"{str(out)!r} already holds a sweep: pass --resume to continue "
                                 "it, or choose another --out")
            if not existing.exists():
                raise ModelError(f"{str(out)!r} holds sweep parts but no {MANIFEST}; "
                                 "cannot resume it")
            try:
                old = json.loads(existing.read_text())
            except ValueError as exc:  # JSON's and UTF-8's decoding errors
                old = exc
            if not isinstance(old, dict):
                detail = f" ({old})" if isinstance(old, ValueError) else ""
                raise ModelError(f"--resume: {existing} is not a sweep's manifest{detail}; "
                                 "choose another --out")
            if old != manifest:
                changed = sorted(k for k in {*old, *manifest} if old.get(k) != manifest.get(k))
                raise ModelError(f"--resume: the sweep in {str(out)!r} was made with other "
                                 f"settings ({', '.join(changed)} differ)")
        out.mkdir(exist_ok=True)
        self.parts.mkdir(exist_ok=True)
        write_json(out / MANIFEST, manifest)
        stale = [*self.parts.glob(".*"), *(p for name in OUTPUTS for p in out.glob(f".{name}.*"))]
        for path in stale:
            path.unlink(missing_ok=True)  # temporary files of a killed write
        self.done: dict[int, PointResult] = {}
        for path in sorted(self.parts.glob("points-*.json")):
            try:
                records = [(r["point"], r["values"], PointResult(
                    np.array(r["spike_times"], dtype=float), r["wall_time_s"], r["status"]))
                    for r in json.loads(path.read_text())]
            except (ValueError, TypeError, KeyError) as exc:  # not our JSON
                raise ModelError(f"--resume: {path} is not a part of this sweep "
                                 f"({type(exc).__name__}: {exc}); delete it to compute its "
                                 "points again") from None
            for k, values, result in records:
                if not (isinstance(k, int) and 0 <= k < len(points)) or values != points[k]:
                    raise ModelError(f"--resume: {path} does not match the grid at point {k}")
                self.done.setdefault(k, result)

    def add(self, numbers: list[int], results: list[PointResult]) -> None:
        records = [{"point": k, "values": self.points[k], "spike_times": r.spike_times.tolist(),
                    "wall_time_s": r.wall_time_s, "status": r.status}
                   for k, r in zip(numbers, results, strict=True)]
        name = f"points-{numbers[0]:06d}-{numbers[-1]:06d}.json"
        write_json(self.parts / name, records, indent=None)
        self.done.update(zip(numbers, results, strict=True))
        self.write_csv()

    def write_csv(self) -> None:
        keys = sorted(self.done)
        rows = [_row(k, self.points[k], self.done[k]).values() for k in keys]
        spikes = [(k, float(s)) for k in keys for s in self.done[k].spike_times]
        write_table(self.out / "spikes.csv", ["point", "spike_time_ms"], spikes)
        write_table(self.out / "sweep.csv", _columns(self.varied), rows)


def _model_label(model) -> str:
    return model if isinstance(model, str) else f"{model.name}: {model}"


def sweep(model, vary, method: str = "reference", t_end: float = 100.0,
          dt: float | None = None, *, parameters: Mapping[str, float] | None = None,
          initial: Mapping[str, float] | None = None, preset: str | None = None,
          jobs: int | None = None, scheduler: str | None = None, chunk_size: int | None = None,
          out: str | Path | None = None, resume: bool = False, quiet: bool = True,
          **options) -> SweepResult:
    """Solve ``model`` at every point of the grid ``vary`` and collect spikes and rates.

    ``vary`` maps parameter names to values (a list, or a string ``"START:STOP:N"`` or
    ``"v1,v2,..."``); the points are its cartesian product, the last name varying fastest.
    ``method``, ``t_end``, ``dt``, ``parameters``, ``initial``, ``preset`` and ``options`` are
    those of :func:`splitpinn.solve`, the same at every point.  ``jobs`` local processes (default:
    all cores) or the Dask cluster at ``scheduler`` solve chunks of ``chunk_size`` points
    (default: about four chunks per worker).  With ``out``, the folder receives ``sweep.csv``,
    ``spikes.csv``, ``sweep.json`` (the settings) and ``parts/``; ``resume`` continues a sweep
    there.  ``quiet=False`` shows a progress bar over points.

    Returns a :class:`SweepResult`.  Raises ModelError for bad input (before any file is
    written); a point that fails records its error in ``status`` and the sweep goes on.
    """
    from ..solvers.driver import resolve_model
    from ..solvers.progress import bar as progress_bar

    vary = _as_vary(vary)
    resolved = resolve_model(model)
    parameters, initial = dict(parameters or {}), dict(initial or {})
    out = _check(resolved, vary, method, t_end, dt, parameters, preset, options, jobs, scheduler,
                 chunk_size, out, resume)
    points = grid(vary)
    common = {"t_end": float(t_end), "dt": dt, "parameters": parameters, "initial": initial,
              "preset": preset, "options": options}
    manifest = json.loads(json.dumps(
        {"model": _model_label(model), "method": method,
         "vary": {n: v.tolist() for n, v in vary.items()}, **common}, default=str))
    client = parallel.connect(scheduler) if scheduler is not None else None
    try:
        store = _Store(out, manifest, points, resume) if out is not None else None
        done = store.done if store else {}
        missing = [k for k in range(len(points)) if k not in done]
        workers = parallel.workers(client) if client else (jobs or parallel.cores())
        size = chunk_size or max(1, min(64, math.ceil(len(missing) / (4 * max(workers, 1)))))
        tasks = [(numbers, model, method, [points[k] for k in numbers], common)
                 for numbers in _chunks(missing, size)]
        local = min(jobs or parallel.cores(), len(tasks) or 1)
        runner = parallel.run(_numbered_chunk, tasks, local, client)
        with progress_bar(len(points), f"sweep {resolved.name}", "point", quiet,
                          initial=len(points) - len(missing), leave=True) as bar:
            for numbers, results in runner:
                if store:
                    store.add(numbers, results)
                else:
                    done.update(zip(numbers, results, strict=True))
                bar.update(len(numbers))
        if store and not tasks:
            store.write_csv()
    finally:
        if client is not None:
            client.close()
    return _result(list(vary), points, done, manifest)


def _check(model, vary, method, t_end, dt, parameters, preset, options, jobs, scheduler,
           chunk_size, out, resume) -> Path | None:
    """Raise ModelError for bad sweep input; return ``out`` as a Path (or None)."""
    from ..solvers import registry
    from ..solvers.driver import check_times

    if not vary:
        raise ModelError("a sweep needs at least one varied parameter")
    registry.check_options("method", method, options)
    check_times(t_end, dt)
    for name in vary:
        if name in parameters:
            raise ModelError(f"{name} is both varied and set")
    model.resolve_parameters(preset, {**parameters, **{n: v[0] for n, v in vary.items()}})
    parallel.check_workers(jobs, scheduler)
    parallel.check_count("chunk size", chunk_size)
    if resume and out is None:
        raise ModelError("resume needs the folder of the sweep (out)")
    return None if out is None else output_folder(out)


def output_folder(out: str | Path) -> Path:
    """``out`` as a Path: a folder that exists or can be made in an existing one, else
    ModelError."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ModelError(f"--out {str(out)!r} exists and is not a directory")
    if not out.parent.is_dir():
        raise ModelError(f"directory {str(out.parent)!r} does not exist")
    return out


def _result(varied, points, done: Mapping[int, PointResult], meta: dict) -> SweepResult:
    import pandas as pd

    keys = sorted(done)
    table = pd.DataFrame([_row(k, points[k], done[k]) for k in keys], columns=_columns(varied))
    table["first_spike_ms"] = table["first_spike_ms"].astype(float)
    spikes = pd.DataFrame([(k, float(s)) for k in keys for s in done[k].spike_times],
                          columns=["point", "spike_time_ms"])
    return SweepResult(varied, table, spikes, meta)


# -- figure -------------------------------------------------------------------------------------
def plot_sweep(result: SweepResult, ax=None):
    """Firing rate against the first varied parameter (one line per value of the others), or a
    heat map of the rate over two varied parameters.  Returns the Figure."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4.5)) if ax is None else (ax.figure, ax)
    table = result.table
    rate = table["rate_hz"].where(table["status"] == "ok")
    first = result.varied[0]
    if len(result.varied) == 2:
        second = result.varied[1]
        image = table.assign(rate=rate).pivot(index=second, columns=first, values="rate")
        mesh = ax.pcolormesh(image.columns, image.index, image.to_numpy(), shading="nearest",
                             cmap="viridis")
        fig.colorbar(mesh, ax=ax, label="rate (Hz)")
        ax.set_ylabel(second)
    else:
        others = result.varied[1:]
        table = table.assign(rate=rate)
        groups = table.groupby(others, sort=False) if others else [((), table)]
        for key, group in groups:
            key = key if isinstance(key, tuple) else (key,)
            label = ", ".join(f"{n}={v:g}" for n, v in zip(others, key, strict=True)) or None
            ax.plot(group[first], group["rate"], "o-", ms=3, lw=1, label=label)
        if others and len(table) // max(1, table[first].nunique()) <= 10:
            ax.legend(fontsize="small")
        ax.set_ylabel("rate (Hz)")
    ax.set_xlabel(first)
    ax.set_title(f"{result.meta.get('model', '').split(':')[0]} ({result.meta.get('method', '')})")
    fig.tight_layout()
    return fig
