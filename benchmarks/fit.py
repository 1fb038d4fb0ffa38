"""Fitting benchmarks (issue 21), printed as a markdown table.

1. HH trace, 0–50 ms sampled every 0.05 ms, g_Na = 100 and g_K = 30 (defaults 120, 36) searched
   in [50, 200] × [10, 60] with ``fit``'s defaults (split-PINN, population 20, at most 80
   generations, Nelder–Mead polish, this process): wall time (target ≤ 60 s), recovery errors
   (target ≤ 1 %), evaluations per second — against solving the same number of candidates one
   by one (``--serial K`` random candidates timed, the rate scaled).
2. The same with 1 mV of Gaussian noise on the samples (target ≤ 3 %), and with ``--jobs 2``.
3. Izhikevich c = −55, d = 4 (RS: −65, 8) from its 500 ms spike train (van Rossum loss,
   split-PINN at rtol 1e-5, population 20, at most 25 generations): the largest spike-time
   error of the fitted model (target < 0.5 ms).
4. frac-LIF α = 0.7 from a 60 ms spike train (L2-1σ reference, step 0.25 ms; target |Δα| <
   0.01).

The first solve of a model compiles it (cached on disk afterwards); it is done before timing.

    .venv/bin/python benchmarks/fit.py                 # all rows (~3 min here)
    .venv/bin/python benchmarks/fit.py --only hh       # the HH rows
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import splitpinn

T_HH = np.round(np.arange(0.0, 50.0 + 1e-9, 0.05), 10)
HH_TRUE = {"g_Na": 100.0, "g_K": 30.0}
HH_FREE = {"g_Na": (50.0, 200.0), "g_K": (10.0, 60.0)}


def _row(name, result, truth, errors: str, start: float) -> str:
    wall = time.perf_counter() - start
    found = ", ".join(f"{k} = {result.parameters[k]:.5g} ({v:g})" for k, v in truth.items())
    return (f"| {name} | {found} | {errors} | {result.evaluations} | "
            f"{result.meta['generations_run']} | {wall:.1f} | {result.evaluations / wall:.1f} |")


def _relative(result, truth) -> str:
    return ", ".join(f"{abs(result.parameters[k] / v - 1):.1e}" for k, v in truth.items())


def hh_rows(serial: int) -> list[str]:
    clean = splitpinn.solve("hh", "split-pinn", 50.0, t_eval=T_HH, parameters=HH_TRUE)["V"]
    noisy = clean + np.random.default_rng(1).normal(0.0, 1.0, clean.size)
    rows = []
    for name, values, options in (("HH trace, defaults", clean, {}),
                                  ("HH trace + 1 mV noise", noisy, {}),
                                  ("HH trace, --jobs 2", clean, {"jobs": 2})):
        start = time.perf_counter()
        result = splitpinn.fit("hh", {"t_ms": T_HH, "V": values}, HH_FREE, **options)
        rows.append(_row(name, result, HH_TRUE, _relative(result, HH_TRUE), start))
    # the same work one candidate at a time
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    for _ in range(serial):
        values = {k: float(rng.uniform(*b)) for k, b in HH_FREE.items()}
        splitpinn.solve("hh", "split-pinn", 50.0, t_eval=T_HH, parameters=values)
    rate = serial / (time.perf_counter() - start)
    rows.append(f"| HH one by one ({serial} random candidates) | | | {serial} | | | {rate:.1f} |")
    return rows


def izhikevich_row() -> str:
    truth = {"c": -55.0, "d": 4.0}
    spikes = splitpinn.solve("izhikevich", "split-pinn", 500.0, parameters=truth,
                             traces=False).spike_times
    start = time.perf_counter()
    result = splitpinn.fit("izhikevich", spikes, {"c": (-70.0, -45.0), "d": (1.0, 10.0)},
                           target="spikes", t_end=500.0, generations=25, rtol=1e-5, atol=1e-6)
    fitted = splitpinn.solve("izhikevich", "split-pinn", 500.0, parameters=result.parameters,
                             traces=False).spike_times
    error = f"{np.max(np.abs(fitted - spikes)):.3f} ms (max spike)" \
        if len(fitted) == len(spikes) else f"{len(fitted)} vs {len(spikes)} spikes"
    return _row("Izhikevich spikes, 500 ms", result, truth, error, start)


def frac_row() -> str:
    spikes = splitpinn.solve("frac-lif", "reference", 60.0, 0.25, parameters={"alpha": 0.7},
                             traces=False).spike_times
    start = time.perf_counter()
    result = splitpinn.fit("frac-lif", spikes, {"alpha": (0.4, 0.95)}, target="spikes",
                           method="reference", t_end=60.0, dt=0.25)
    error = f"{abs(result.parameters['alpha'] - 0.7):.1e} (abs)"
    return _row("frac-LIF spikes, 60 ms (reference)", result, {"alpha": 0.7}, error, start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=["hh", "izhikevich", "frac"], default=None)
    parser.add_argument("--serial", type=int, default=200,
                        help="HH candidates solved one by one for the rate (default 200)")
    args = parser.parse_args()
    # compile each model once (the disk cache keeps it for later processes)
    splitpinn.solve("hh", "split-pinn", 5.0)
    splitpinn.solve("izhikevich", "split-pinn", 5.0)
    print("| fit | found (truth) | error | evaluations | generations | wall (s) | "
          "evaluations/s |")
    print("|---|---|---|---|---|---|---|")
    if args.only in (None, "hh"):
        for row in hh_rows(args.serial):
            print(row, flush=True)
    if args.only in (None, "izhikevich"):
        print(izhikevich_row(), flush=True)
    if args.only in (None, "frac"):
        print(frac_row(), flush=True)


if __name__ == "__main__":
    main()
