"""Sweep benchmarks (issue 12), printed as a markdown table.

1. An F–I curve of HH, 200 currents over 0–20 µA/cm², 500 ms each, by split-PINN: wall time of
   the sweep (``--jobs``, default all cores; chunks of ``--chunk-size`` points, default one
   batch per worker) and its speed-up over solving the points one by one in one process (all
   of them by default; ``--serial-points K`` times K evenly spaced points and scales to all,
   as the table then says); those points are also checked against the sweep's spikes.
2. The same sweep on a Dask ``LocalCluster`` with 2 workers (1 thread each) against ``--jobs 2``:
   the overhead of Dask (target: at most 20 %).

Worker start-up is not counted: each pool of workers (loky processes, Dask workers) first solves
one short point per worker, as a user's long-running pool or cluster already would have.

    .venv/bin/python benchmarks/sweep.py                            # the targets (~10 min here)
    .venv/bin/python benchmarks/sweep.py --points 4 --t-end 2       # a smoke run
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

import splitpinn
from splitpinn.analysis.sweep import sweep


def _timed(function):
    start = time.perf_counter()
    value = function()
    return value, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="hh")
    parser.add_argument("--method", default="split-pinn")
    parser.add_argument("--points", type=int, default=200)
    parser.add_argument("--i-max", type=float, default=20.0)
    parser.add_argument("--t-end", type=float, default=500.0)
    parser.add_argument("--jobs", type=int, default=None, help="default: all cores")
    parser.add_argument("--chunk-size", type=int, default=None,
                        help="points per chunk (default: one chunk per worker)")
    parser.add_argument("--serial-points", type=int, default=None,
                        help="points timed one by one, scaled to --points (default: all)")
    args = parser.parse_args()
    currents = np.linspace(0.0, args.i_max, args.points)
    common = dict(method=args.method, t_end=args.t_end)
    jobs = args.jobs or len(os.sched_getaffinity(0))
    timed_points = min(args.serial_points or args.points, args.points)
    sampled = np.unique(np.linspace(0, args.points - 1, timed_points).round().astype(int))

    def one_by_one():
        return [splitpinn.solve(args.model, args.method, args.t_end,
                                parameters={"I": float(currents[k])}, quiet=True).spike_times
                for k in sampled]

    def run(workers, **kwargs):
        chunk = args.chunk_size or -(-args.points // workers)
        sweep(args.model, {"I": currents[:workers]}, args.method, min(args.t_end, 0.5),
              chunk_size=1, **kwargs)  # start the workers
        return _timed(lambda: sweep(args.model, {"I": currents}, **common, chunk_size=chunk,
                                    **kwargs))

    serial, t_sampled = _timed(one_by_one)
    t_serial = t_sampled * args.points / len(sampled)
    local, t_local = run(jobs, jobs=jobs)
    two, t_two = (local, t_local) if jobs == 2 else run(2, jobs=2)
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster:
        dask, t_dask = run(2, scheduler=cluster.scheduler_address)
    for result in (local, two, dask):
        for k, spikes in zip(sampled, serial, strict=True):
            np.testing.assert_allclose(result.spike_times(k), spikes, rtol=0, atol=1e-9)
        np.testing.assert_allclose(result.table["rate_hz"].to_numpy(dtype=float),
                                   local.table["rate_hz"].to_numpy(dtype=float), atol=1e-12)
    label = f"{args.model} F-I, {args.points} currents 0-{args.i_max:g}, {args.t_end:g} ms"
    print(f"| case | {args.method} | wall (s) | ratio |\n|---|---|---|---|")
    how = "" if len(sampled) == args.points else \
        f" ({len(sampled)} points timed: {t_sampled:.1f} s, scaled)"
    print(f"| {label} | one by one, one process{how} | {t_serial:.1f} | 1 |")
    print(f"| {label} | sweep --jobs {jobs} | {t_local:.1f} | "
          f"speed-up {t_serial / t_local:.1f} |")
    if jobs != 2:
        print(f"| {label} | sweep --jobs 2 | {t_two:.1f} | 1 |")
    print(f"| {label} | sweep on Dask, 2 local workers | {t_dask:.1f} | "
          f"overhead {100 * (t_dask / t_two - 1):+.0f} % against --jobs 2 (target <= +20 %) |")


if __name__ == "__main__":
    main()
