"""The result of a solve: states on a time grid, spike times, and metadata; npz round trip."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


def output_grid(t_end: float, dt: float) -> np.ndarray:
    """Uniform grid from 0 to ``t_end`` whose spacing is ``dt`` (or just below, if ``dt`` does
    not divide ``t_end``)."""
    n = max(1, int(np.ceil(t_end / dt - 1e-9)))
    return np.linspace(0.0, t_end, n + 1)


@dataclass
class Solution:
    """States on a grid: ``t`` (n,), ``y`` (n_states, n), ``names``, ``spike_times`` and ``meta``
    (model, method, parameters, initial values, solver settings, ``wall_time_s``, ...)."""

    t: np.ndarray
    y: np.ndarray
    names: list[str]
    spike_times: np.ndarray
    meta: dict = field(default_factory=dict)

    def __getitem__(self, name: str) -> np.ndarray:
        return self.y[self.names.index(name)]

    @property
    def states(self) -> dict[str, np.ndarray]:
        return dict(zip(self.names, self.y, strict=True))

    def save(self, path: str | Path) -> None:
        """Write the npz of the command-line contract atomically (temp file, then rename)."""
        path = Path(path)
        arrays = {"t": self.t, **self.states, "spike_times": np.asarray(self.spike_times),
                  "meta": np.array(json.dumps(self.meta, default=_jsonable))}
        write_atomically(path, lambda f: np.savez(f, **arrays))

    @classmethod
    def load(cls, path: str | Path) -> Solution:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            names = list(meta["states"])
            return cls(data["t"], np.array([data[n] for n in names]), names,
                       data["spike_times"], meta)


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
