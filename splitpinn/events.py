"""Threshold crossings for the time-marching solvers (split-PINN and fractional reference).

Both march on a grid with a step map ``s -> state after a step of length s``; a crossing
inside a step is located by root finding on that map, so its accuracy is the solver's, not
the grid's.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.optimize import brentq

from .model import BoundModel


def crossing_function(bound: BoundModel) -> Callable[[float, np.ndarray], np.ndarray]:
    """``values(t, y)``: one number per event (``g`` of its condition), then the spike
    detector's ``y[state] − threshold`` if the model has one; a crossing is an upward sign
    change.  Index k ≥ ``len(bound.events)`` is the detector."""
    detector = bound.model.spike_detector
    det_index = bound.index(detector.state) if detector else None

    def values(time: float, y: np.ndarray) -> np.ndarray:
        out = [ev.value(time, y) for ev in bound.events]
        if detector:
            out.append(y[det_index] - detector.threshold)
        return np.array(out)

    return values


def locate_crossing(fun: Callable[[float], float], h: float) -> float:
    """Root of ``fun(s)`` on (0, h] where fun(0) < 0 <= fun(h), to ~1e-13 ms."""
    if fun(h) == 0.0:
        return h
    return brentq(fun, 0.0, h, xtol=1e-13, rtol=4 * np.finfo(float).eps)
