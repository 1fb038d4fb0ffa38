"""Delta synapses between the neurons of a batch (a coupled population).

``coupling={"weights": W, "target": "V", "delay": 0.0}``: when neuron j spikes at time t,
state ``target`` of every neuron i jumps by ``W[i, j]`` at t + delay.  The marching core asks
for the deliveries that are due, fires the neurons a jump carries past their threshold at the
same instant (each at most once per instant, in index order), and stops every neuron at the
next delivery time.  The target must be of order 1: a jump in a fractional state would stay
in its memory (an ill-posed, dt-dependent answer).
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Mapping

import numpy as np

from ..errors import ModelError
from ..numeric.bound import BoundModel
from ..numeric.kernels import SAME_TIME


class Coupling:
    """Pending spike deliveries of one network; see the module docstring."""

    def __init__(self, bound: BoundModel, weights, target: str, delay: float = 0.0) -> None:
        size = bound.batch or 1
        try:
            w = np.asarray(weights, dtype=float)
        except (TypeError, ValueError):
            w = None
        if w is None or w.shape != (size, size):
            got = "non-numeric or ragged values" if w is None else f"shape {w.shape}"
            raise ModelError(f"coupling weights must be a {size} x {size} matrix of numbers "
                             f"(one row and column per neuron), got {got}")
        if not np.all(np.isfinite(w)):
            raise ModelError("coupling weights must be finite numbers")
        if target not in bound.names:
            raise ModelError(f"coupling target {target!r} is not a state of "
                             f"{bound.model.name} (states: {', '.join(bound.names)})")
        order = float(bound.orders[bound.index(target)])
        if order < 1:
            raise ModelError(
                f"coupling target {target!r} of {bound.model.name} is a fractional state (order "
                f"{order:g}): a jump in it stays in its memory and is undone in part at every "
                "step after it, so the answer would depend on dt (as for a reset without a "
                "refractory clamp); couple into a state of order 1")
        if not (isinstance(delay, int | float) and math.isfinite(delay) and delay >= 0):
            raise ModelError(f"coupling delay must be a finite number >= 0 ms, got {delay!r}")
        self.weights, self.target, self.delay = w, bound.index(target), float(delay)
        self._pending: list[tuple[float, int, int]] = []
        self._count = 0

    @classmethod
    def from_spec(cls, bound: BoundModel, spec: Mapping) -> Coupling:
        """Build from ``{"weights": W, "target": STATE, "delay": ms}`` (delay optional)."""
        if not isinstance(spec, Mapping) or "weights" not in spec or "target" not in spec:
            raise ModelError('coupling must be a mapping {"weights": W, "target": STATE, '
                             '"delay": ms}')
        unknown = set(spec) - {"weights", "target", "delay"}
        if unknown:
            raise ModelError(f"unknown coupling key(s) {', '.join(sorted(unknown))} "
                             "(known: weights, target, delay)")
        return cls(bound, spec["weights"], spec["target"], spec.get("delay", 0.0))

    @property
    def inert(self) -> bool:
        """Whether every weight is zero: no spike moves any neuron."""
        return not self.weights.any()

    def emit(self, source: int, time: float) -> None:
        """Neuron ``source`` spiked at ``time``: schedule its delivery."""
        heapq.heappush(self._pending, (time + self.delay, self._count, source))
        self._count += 1

    def __len__(self) -> int:
        """The pending deliveries."""
        return len(self._pending)

    def pending(self, room: int) -> np.ndarray:
        """The pending deliveries as rows (time, source) in the order they are due, with
        ``room`` more rows after them: the queue of the compiled march
        (:func:`splitpinn.numeric.kernels.march_network`), which :meth:`replace` takes back."""
        queue = np.empty((len(self._pending) + room, 2))
        for k, (time, _, source) in enumerate(sorted(self._pending)):
            queue[k] = time, source
        return queue

    def replace(self, queue: np.ndarray) -> None:
        """The pending deliveries are the rows (time, source) of ``queue``, in that order."""
        self._pending = [(float(time), k, int(source)) for k, (time, source) in enumerate(queue)]
        heapq.heapify(self._pending)
        self._count = len(self._pending)

    def next_delivery(self, after: float) -> float:
        """The earliest pending delivery later than ``after`` (inf if none)."""
        times = [d for d, _, _ in self._pending if d > after + SAME_TIME]
        return min(times, default=math.inf)

    def is_due(self, time: float) -> bool:
        """Whether a delivery is due by ``time``."""
        return bool(self._pending) and self._pending[0][0] <= time + SAME_TIME

    def due(self, time: float) -> np.ndarray | None:
        """The summed jumps (B,) of every delivery due by ``time``, or None if none is."""
        sources = []
        while self._pending and self._pending[0][0] <= time + SAME_TIME:
            sources.append(heapq.heappop(self._pending)[2])
        if not sources:
            return None
        return self.weights[:, sources].sum(axis=1)
