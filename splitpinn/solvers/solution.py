"""The result of a solve: states on a grid, spike times and metadata; npz and CSV files."""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import ModelError
from ..fractional.history import SAME_STEP
from ..numeric.kernels import SAME_TIME
from .dense import DenseOutput, hermite

#: File formats of :meth:`Solution.save`, by suffix.
SAVE_FORMATS = (".npz", ".csv")


def output_grid(t_end: float, dt: float, t0: float = 0.0) -> np.ndarray:
    """Uniform grid from ``t0`` to ``t_end`` whose spacing is ``dt`` (or just below, if ``dt``
    does not divide the interval)."""
    n = max(1, int(np.ceil((t_end - t0) / dt - SAME_STEP)))  # dt divides it up to rounding
    return np.linspace(t0, t_end, n + 1)


@dataclass
class EventRecord:
    """One event of one neuron: its time, name (the condition, or "spike" for a detector),
    and the state before and after the reset (equal for a detector)."""

    time: float
    event: str
    before: dict
    after: dict


@dataclass
class Solution:
    """States on a grid: ``t`` (n,), ``y`` (n_states, n), ``names``, ``spike_times`` and ``meta``
    (model, method, parameters, initial values, solver settings, ``wall_time_s``, ...)."""

    t: np.ndarray
    y: np.ndarray
    names: list[str]
    spike_times: np.ndarray
    meta: dict = field(default_factory=dict)
    #: One record per event (time, event name, states before and after the reset).
    events: list = field(default_factory=list)
    #: Derivatives (n_states, n) on the grid (None when not known).
    dydt: np.ndarray | None = None
    #: The solver's own dense output (:mod:`splitpinn.solvers.dense`), None for a loaded file.
    dense: DenseOutput | None = field(default=None, repr=False)

    def sol(self, times) -> np.ndarray:
        """Dense output (n_states, len(times)) anywhere in [t[0], t[-1]], from the solver's
        own steps (each accepted step's interpolant, as scipy's ``OdeSolution``): accurate to
        the solve's tolerance between output points.  A solution loaded from a file has only
        its grid: cubic Hermite on the grid values and derivatives, split at the events."""
        times = np.atleast_1d(np.asarray(times, dtype=float))
        if times.size and (times.min() < self.t[0] - SAME_TIME
                           or times.max() > self.t[-1] + SAME_TIME):
            raise ValueError(f"sol(t) is defined on [{self.t[0]:g}, {self.t[-1]:g}] ms")
        if self.dense is not None:
            return self.dense(times)
        knots, values, slopes = self._knots()
        i = np.clip(np.searchsorted(knots, times, "right") - 1, 0, len(knots) - 2)
        i = np.where(knots[i] == knots[i + 1], i + 1, i)  # a jump: take the right piece
        i = np.minimum(i, len(knots) - 2)
        h = knots[i + 1] - knots[i]
        s = np.where(h > 0, (times - knots[i]) / np.where(h > 0, h, 1), 1.0)
        return hermite(s, h, values[:, i], slopes[:, i], values[:, i + 1], slopes[:, i + 1])

    def _knots(self):
        """Grid points and events (a jump: two knots at the event time) with values and
        slopes; where no derivatives are stored (a loaded file), slopes are the secants of
        each stretch between jumps (:func:`numpy.gradient`, second order), never across one."""
        t, y = self.t, self.y
        inner = [e for e in self.events if e.before != e.after and t[0] < e.time < t[-1]]
        times = np.array([e.time for e in inner])
        at = np.searchsorted(t, times, "left")  # the first grid point after each jump
        dydt = self.dydt
        if dydt is None:
            dydt = np.zeros_like(y)
            for a, b in zip([0, *at], [*at, t.size], strict=True):
                if b - a >= 2:  # second order at the ends too, where there are 3 points
                    dydt[:, a:b] = np.gradient(y[:, a:b], t[a:b], axis=1,
                                               edge_order=2 if b - a >= 3 else 1)
        if not inner:
            return t, y, dydt
        before, after = (self._event_states(inner, side).T for side in ("before", "after"))
        pairs = np.stack([before, after], axis=2).reshape(len(self.names), -1)
        # slopes beside a jump: the nearest grid derivative on the same side
        near = np.stack([dydt[:, at - 1], dydt[:, np.minimum(at, t.size - 1)]],
                        axis=2).reshape(len(self.names), -1)
        where = np.repeat(at, 2)
        knots = np.insert(t, where, np.repeat(times, 2))
        values = np.insert(y, where, pairs, axis=1)
        slopes = np.insert(dydt, where, near, axis=1)
        return knots, values, slopes

    def _event_states(self, events, side: str) -> np.ndarray:
        """The states (events, n_states) of ``events`` on their ``side`` ("before" or
        "after" the reset), in the order of ``names``."""
        return np.array([[getattr(e, side)[n] for n in self.names] for e in events],
                        dtype=float).reshape(len(events), len(self.names))

    def __getitem__(self, name: str) -> np.ndarray:
        """The values of state ``name`` on the grid: ``sol["V"]``."""
        return self.y[self.names.index(name)]

    @property
    def states(self) -> dict[str, np.ndarray]:
        """State name -> its values on the grid."""
        return dict(zip(self.names, self.y, strict=True))

    def save(self, path: str | Path) -> None:
        """Write the solution atomically (temp file, then rename), in the format of the suffix:
        ``.npz`` (the command-line contract: ``t``, one array per state, ``spike_times``,
        ``meta``; and the events: ``event_times``, ``event_names``, the states before and
        after each, ``event_before`` and ``event_after`` (events, states)) or ``.csv`` (see
        :meth:`save_csv`).  Another suffix is a ModelError."""
        path = Path(path)
        if path.suffix not in SAVE_FORMATS:
            raise ModelError(f"cannot save {path.name!r}: the file name must end in "
                             f"{' or '.join(SAVE_FORMATS)}")
        if path.suffix == ".csv":
            return self.save_csv(path)
        arrays = {"t": self.t, **self.states, "spike_times": np.asarray(self.spike_times),
                  "meta": np.array(json.dumps(self.meta, default=_jsonable)),
                  "event_times": np.array([e.time for e in self.events], dtype=float),
                  "event_names": np.array([e.event for e in self.events], dtype=str),
                  **{f"event_{side}": self._event_states(self.events, side)
                     for side in ("before", "after")}}
        write_atomically(path, lambda f: np.savez(f, **arrays))

    def save_csv(self, path: str | Path) -> None:
        """Write a CSV atomically: three comment lines, ``# spike_times_ms: t1,t2,...``,
        ``# meta: {JSON}`` and ``# events: [JSON]`` (per event: time, name, the states before
        and after it), then the header ``t,<state>,...`` and one row per grid point (17
        significant digits).  ``pandas.read_csv(path, comment="#")`` reads the table;
        :meth:`load` reads it all back."""
        before, after = (self._event_states(self.events, side).tolist()
                         for side in ("before", "after"))
        events = [[e.time, e.event, b, a]
                  for e, b, a in zip(self.events, before, after, strict=True)]
        lines = [f"# spike_times_ms: {','.join(map(repr, map(float, self.spike_times)))}",
                 f"# meta: {json.dumps(self.meta, default=_jsonable)}",
                 f"# events: {json.dumps(events, default=_jsonable)}",
                 ",".join(["t", *self.names])]
        rows = np.vstack([self.t, self.y]).T
        text = "\n".join(lines + [",".join(f"{v:.17g}" for v in row) for row in rows]) + "\n"
        write_atomically(Path(path), lambda f: f.write(text.encode()))

    @classmethod
    def load(cls, path: str | Path) -> Solution:
        """A solution written by :meth:`save` (``.npz`` or ``.csv``), with its events, so that
        :meth:`sol` splits its pieces at the resets.  A file that :meth:`save` did not write
        is a ModelError."""
        try:
            return cls._load_csv(path) if Path(path).suffix == ".csv" else cls._load_npz(path)
        except (ValueError, KeyError, TypeError, IndexError, zipfile.BadZipFile) as exc:
            raise ModelError(f"{str(path)!r} is not a solution saved by splitpinn "
                             f"({type(exc).__name__}: {' '.join(str(exc).split())})") from None

    @classmethod
    def _load_npz(cls, path: str | Path) -> Solution:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            names = list(meta["states"])
            keys = ("event_times", "event_names", "event_before", "event_after")
            events = zip(*(data[k] for k in keys), strict=True) \
                if keys[0] in data.files else []  # older files have none
            return cls(data["t"], np.array([data[n] for n in names]), names,
                       data["spike_times"], meta, [event_record(names, *e) for e in events])

    @classmethod
    def _load_csv(cls, path: str | Path) -> Solution:
        with open(path) as f:
            spikes = f.readline().partition(":")[2].strip()
            meta = json.loads(f.readline().partition(":")[2])
            line, events = f.readline(), []
            if line.startswith("# events:"):  # older files have none
                events, line = json.loads(line.partition(":")[2]), f.readline()
            names = line.strip().split(",")[1:]
            table = np.loadtxt(f, delimiter=",", ndmin=2)
        return cls(table[:, 0], table[:, 1:].T.copy(), names,
                   np.array([float(x) for x in spikes.split(",") if x]), meta,
                   [event_record(names, *e) for e in events])

    def to_dataframe(self):
        """A pandas DataFrame indexed by ``t`` (ms) with one column per state."""
        import pandas as pd

        return pd.DataFrame(dict(self.states), index=pd.Index(self.t, name="t"))


def event_record(names, time, name, before, after) -> EventRecord:
    """The record of an event at ``time`` from the states (ordered as ``names``) before and
    after it."""
    return EventRecord(float(time), str(name), dict(zip(names, map(float, before), strict=True)),
                       dict(zip(names, map(float, after), strict=True)))


def _jsonable(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"cannot store {type(value).__name__} in meta")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_atomically(path: Path, write) -> None:
    """Call ``write(file)`` on a temporary file beside ``path`` and rename it into place, so a
    failed write never leaves a partial ``path``."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes it 0600; give a normal file's mode
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class Batch:
    """The solutions of a batch of B neurons: ``len(batch) == B``, ``batch[i]`` is the i-th
    neuron's :class:`Solution`, iteration yields them in order; ``parameters`` maps each
    parameter to its B values, ``spike_times`` is a list of B arrays and ``meta`` holds the
    whole batch's ``wall_time_s``."""

    def __init__(self, solutions: list[Solution], parameters: dict, meta: dict) -> None:
        self.solutions, self.parameters, self.meta = solutions, parameters, meta

    def __len__(self) -> int:
        return len(self.solutions)

    def __getitem__(self, i: int) -> Solution:
        return self.solutions[i]

    def __iter__(self):
        return iter(self.solutions)

    @property
    def spike_times(self) -> list[np.ndarray]:
        return [s.spike_times for s in self.solutions]
