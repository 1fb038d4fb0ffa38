"""Dense output from a solver's own steps, as scipy's ``OdeSolution``: one piece per accepted
step, searched by time — not an interpolation of the output grid.

A piece is the step itself, evaluated by its stepper's ``dense`` when asked (split-PINN: one
composed step from the step start to the query time, the sub-flow of the scheme, as on the
output grid), or the integrator's own interpolant (the ``solve_ivp`` integrators' dense
output, DOP853's of order 7).  With a fractional memory, which has moved on when the output is
asked for, the fractional states get linear pieces (the L1 relation is built on the
piecewise-linear interpolant of the steps, and a Caputo solution's slope is not its
right-hand side) and the integer-order states of a mixed model (FO-HH's V) cubic Hermite.

A jump (a reset, a coupling jump) ends one piece and starts the next at the same time; at
that time the dense output gives the state after the jump, as the output grid does.
"""

from __future__ import annotations

import numpy as np


def hermite(s, h, y0, f0, y1, f1, cubic=True):
    """Cubic Hermite interpolation at fractions ``s`` of steps of length ``h`` from values and
    derivatives at their ends (error O(h⁴)); linear where ``cubic`` is False."""
    h00 = np.where(cubic, (1 + 2 * s) * (1 - s) ** 2, 1 - s)
    h01 = np.where(cubic, s**2 * (3 - 2 * s), s)
    h10 = np.where(cubic, s * (1 - s) ** 2, 0.0)
    h11 = np.where(cubic, s**2 * (s - 1), 0.0)
    return h00 * y0 + h10 * h * f0 + h01 * y1 + h11 * h * f1


class StepRecorder:
    """The pieces of every row of a march, collected step by step (in chunks: a batch adds
    many rows at a time); :meth:`dense` gives each row's :class:`DenseOutput`."""

    def __init__(self, n_rows: int, linear: np.ndarray, stepper) -> None:
        #: Per state: linear pieces (a fractional state) or cubic Hermite.
        self.linear = np.asarray(linear, dtype=bool)
        self.n, self.n_rows, self.stepper = self.linear.size, n_rows, stepper
        self.steps: list[tuple] = []
        self.hermite: list[tuple] = []
        self.interpolants: list[list[tuple]] = [[] for _ in range(n_rows)]

    @staticmethod
    def _add(chunks: list, rows, t0, t1, *columns) -> None:
        keep = np.asarray(t1) > np.asarray(t0)  # zero-length steps carry nothing
        if keep.any():
            chunks.append(tuple(np.array(c)[keep] for c in (rows, t0, t1, *columns)))

    def add_steps(self, rows, t0, y0, t1, y1, frozen) -> None:
        """Accepted steps of ``rows`` (R,) on [t0, t1] (R,): end states and clamps (R, n),
        evaluated later by the stepper's ``dense``."""
        self._add(self.steps, rows, t0, t1, y0, y1, frozen)

    def add_hermite(self, rows, t0, y0, t1, y1, f0, f1) -> None:
        """Cubic Hermite pieces (linear for the linear states) of ``rows`` on [t0, t1], with
        end values and derivatives (R, n)."""
        self._add(self.hermite, rows, t0, t1, y0, y1, f0, f1)

    def add_interpolant(self, row: int, t0: float, t1: float, interpolant, part: slice) -> None:
        """One piece of ``row`` on [t0, t1] given by ``interpolant(times) -> (m, q)``, of
        whose rows ``part`` are this row's states (a network stacks its neurons)."""
        if t1 > t0:
            self.interpolants[row].append((float(t0), float(t1), interpolant, part))

    def dense(self) -> list[DenseOutput | None]:
        """The dense output of every row (None for a row that recorded nothing)."""
        out: list[DenseOutput | None] = [
            InterpolantPieces(pieces, self.n) if pieces else None for pieces in self.interpolants]
        for chunks, kind in ((self.steps, StepPieces), (self.hermite, HermitePieces)):
            if not chunks:
                continue
            rows, t0, *columns = (np.concatenate(c) for c in zip(*chunks, strict=True))
            order = np.lexsort((t0, rows))  # by row, then start time
            bounds = np.searchsorted(rows[order], np.arange(self.n_rows + 1))
            for r in range(self.n_rows):
                if bounds[r + 1] > bounds[r]:
                    part = order[bounds[r]: bounds[r + 1]]
                    out[r] = kind(r, t0[part], *(c[part] for c in columns), recorder=self)
        return out


class DenseOutput:
    """Pieces sorted by start time; ``self(times)`` evaluates them, shape (n, len(times))."""

    def __init__(self, starts: np.ndarray, ends: np.ndarray, n: int) -> None:
        self.starts, self.ends, self.n = starts, ends, n

    def __call__(self, times) -> np.ndarray:
        times = np.atleast_1d(np.asarray(times, dtype=float))
        if times.size == 0:
            return np.empty((self.n, 0))
        i = np.clip(np.searchsorted(self.starts, times, "right") - 1, 0, len(self.starts) - 1)
        return self._evaluate(i, times)

    def _evaluate(self, i: np.ndarray, times: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class StepPieces(DenseOutput):
    """The accepted steps of one row, each evaluated by the stepper's ``dense`` (for
    split-PINN the composed sub-flow from the step start)."""

    def __init__(self, row, t0, t1, y0, y1, frozen, *, recorder) -> None:
        super().__init__(t0, t1, recorder.n)
        self.row, self.y0, self.y1, self.frozen = row, y0, y1, frozen
        self.stepper = recorder.stepper

    def _evaluate(self, i, times):
        rows = np.full(len(self.starts), self.row)
        return self.stepper.dense(rows, self.starts, self.y0, self.ends, self.y1,
                                  self.frozen, i, times).T


class HermitePieces(DenseOutput):
    """Cubic Hermite pieces (linear for the recorder's linear states), in time order."""

    def __init__(self, row, t0, t1, y0, y1, f0, f1, *, recorder) -> None:
        super().__init__(t0, t1, recorder.n)
        self.y0, self.y1, self.f0, self.f1 = y0, y1, f0, f1
        self.cubic = ~recorder.linear

    def _evaluate(self, i, times):
        h = (self.ends[i] - self.starts[i])[:, None]
        s = (times - self.starts[i])[:, None] / h
        return hermite(s, h, self.y0[i], self.f0[i], self.y1[i], self.f1[i], self.cubic).T


class InterpolantPieces(DenseOutput):
    """Pieces given by the integrator's own interpolants."""

    def __init__(self, pieces: list[tuple], n: int) -> None:
        super().__init__(np.array([p[0] for p in pieces]), np.array([p[1] for p in pieces]), n)
        self.pieces = [(p[2], p[3]) for p in pieces]

    def _evaluate(self, i, times):
        out = np.empty((self.n, times.size))
        for k in np.unique(i):
            at = i == k
            interpolant, part = self.pieces[k]
            out[:, at] = np.asarray(interpolant(times[at])).reshape(-1, int(at.sum()))[part]
        return out
