"""Metrics of one solution against another: errors per state on a common grid, matched
spike-time errors, interspike intervals (the numbers of ``metrics.json``)."""

from __future__ import annotations

import numpy as np

from ..solvers.solution import Solution


def match_spikes(reference: np.ndarray, other: np.ndarray) -> np.ndarray:
    """|t_other − t_ref| for each reference spike matched to its nearest spike in ``other``
    (empty when ``other`` has none)."""
    reference, other = np.asarray(reference), np.asarray(other)
    if other.size == 0 or reference.size == 0:
        return np.array([])
    nearest = np.abs(other[None, :] - reference[:, None]).min(axis=1)
    return nearest


def common_grid(reference: Solution, other: Solution) -> tuple[np.ndarray, dict, dict]:
    """Both solutions' states on one grid: the shared grid, else the coarser of the two with
    the finer solution interpolated onto it (exact where the finer grid refines it)."""
    if np.array_equal(reference.t, other.t):
        return reference.t, reference.states, other.states
    coarse, fine = (reference, other) if len(reference.t) <= len(other.t) else (other, reference)
    resampled = {n: np.interp(coarse.t, fine.t, fine[n]) for n in fine.names}
    if coarse is reference:
        return coarse.t, reference.states, resampled
    return coarse.t, resampled, other.states


def solution_metrics(reference: Solution, other: Solution) -> dict:
    """Metrics of ``other`` against ``reference`` (the contract of ``metrics.json``, plus
    reference spike count and mean interspike interval).  Traces are compared on the shared
    grid, or on the coarser of two grids with the finer solution interpolated onto it."""
    _, ref_states, other_states = common_grid(reference, other)
    rel_l2, max_abs = {}, {}
    for name in reference.names:
        ref = ref_states[name]
        diff = other_states[name] - ref
        rel_l2[name] = float(np.linalg.norm(diff) / max(np.linalg.norm(ref), 1e-300))
        max_abs[name] = float(np.max(np.abs(diff)))
    errors = match_spikes(reference.spike_times, other.spike_times)
    same_count = len(other.spike_times) == len(reference.spike_times)
    isi = np.diff(other.spike_times)
    return {
        "wall_time_s": float(other.meta.get("wall_time_s", float("nan"))),
        "rel_l2": rel_l2,
        "max_abs": max_abs,
        "spike_count": int(len(other.spike_times)),
        "reference_spike_count": int(len(reference.spike_times)),
        "max_spike_time_error_ms": float(errors.max()) if errors.size and same_count else None,
        "mean_isi_ms": float(isi.mean()) if isi.size else None,
    }
