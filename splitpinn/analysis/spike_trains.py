"""Distances between two spike trains (times in ms), the losses of spike-train fits.

* :func:`gamma_loss` — the coincidence factor Γ of Jolivet et al. (2008, J. Neurosci. Methods
  169:417), as brian2modelfitting's ``GammaFactor`` turns it into a loss: ``1 − Γ`` plus a
  penalty ``2·|ν_data − ν_model| / ν_data`` for a rate mismatch, clipped at 0.  Zero means
  the same number of spikes, each data spike with a model spike within ``delta``.  It is
  piecewise constant in the spike times (it counts), so a search finds it but cannot slide
  down it.
* :func:`van_rossum_loss` — the van Rossum (2001) distance: each train filtered by a causal
  exponential of time constant ``tau``, the squared L2 distance of the two filtered trains,
  divided by that of the data against no spikes (so 1 = as far as silence, 0 = the same
  train).  It is continuous in the spike times and counts a missing or extra spike as about
  1/N_data each: the default of ``fit``, whose local polish needs a slope (its ``tau``
  defaults to the data's mean interspike interval there).
"""

from __future__ import annotations

import numpy as np


def coincidences(data: np.ndarray, model: np.ndarray, delta: float) -> int:
    """Data spikes with a model spike within ``delta`` ms, each model spike matched at most
    once (both trains sorted; greedy in time order, which is optimal for intervals)."""
    i = j = count = 0
    while i < data.size and j < model.size:
        if model[j] < data[i] - delta:
            j += 1
        elif model[j] > data[i] + delta:
            i += 1
        else:
            count, i, j = count + 1, i + 1, j + 1
    return count


def gamma_factor(data, model, delta: float, duration: float) -> float:
    """Jolivet's Γ of ``model`` against ``data`` over ``duration`` ms with coincidence window
    ``delta`` ms: (N_coinc − ⟨N_coinc⟩) / (½ (N_data + N_model) (1 − 2 ν_data δ)), where
    ⟨N_coinc⟩ = 2 δ ν_data N_model is the count expected of a Poisson train at the data's rate
    ν_data (brian2modelfitting's normalisation).  1 for identical trains."""
    data, model = np.sort(np.asarray(data, float)), np.sort(np.asarray(model, float))
    if data.size + model.size == 0:
        return 1.0
    rate = data.size / duration
    expected = 2.0 * delta * rate * model.size
    norm = 0.5 * (data.size + model.size) * (1.0 - 2.0 * rate * delta)
    return float((coincidences(data, model, delta) - expected) / norm) if norm > 0 else 0.0


def gamma_loss(data, model, delta: float, duration: float) -> float:
    """``max(0, 1 + 2 |ν_data − ν_model| / ν_data − Γ)``: 0 only when the trains coincide
    within ``delta`` (``data`` must hold at least one spike)."""
    data, model = np.asarray(data, float), np.asarray(model, float)
    mismatch = 2.0 * abs(data.size - model.size) / data.size
    return max(0.0, 1.0 + mismatch - gamma_factor(data, model, delta, duration))


def _overlap(a: np.ndarray, b: np.ndarray, tau: float) -> float:
    """Σ_ij exp(−|a_i − b_j| / tau): the inner product of two exponentially filtered trains
    (up to the factor tau/2)."""
    if a.size == 0 or b.size == 0:
        return 0.0
    return float(np.exp(-np.abs(a[:, None] - b[None, :]) / tau).sum())


def van_rossum_loss(data, model, tau: float) -> float:
    """The squared van Rossum distance between ``model`` and ``data`` (time constant ``tau``
    ms), divided by that between ``data`` and an empty train (``data`` must not be empty)."""
    data, model = np.asarray(data, float), np.asarray(model, float)
    own = _overlap(data, data, tau)
    distance = own + _overlap(model, model, tau) - 2.0 * _overlap(data, model, tau)
    return max(0.0, distance) / own
