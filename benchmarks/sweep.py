"""Sweep benchmarks (issue 12), printed as a markdown table.

1. An F–I curve of HH, 200 currents over 0–20 µA/cm², 500 ms each, by split-PINN: wall time of
   the sweep (``--jobs``, default all cores) and its speed-up over solving the points one by one
   in one process.
2. The same sweep on a Dask ``LocalCluster`` with 2 workers (1 thread each) against ``--jobs 2``:
   the overhead of Dask (target: at most 20 %).

Worker start-up is not counted: each pool of workers (loky processes, Dask workers) first solves
one short point per worker, as a user's long-running pool or cluster already would have.

    .venv/bin/python benchmarks/sweep.py                            # the targets (hours here)
    .venv/bin/python benchmarks/sweep.py --points 4 --t-end 2       # a smoke run
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import splitpinn
from splitpinn.sweep import sweep


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
    args = parser.parse_args()
    currents = np.linspace(0.0, args.i_max, args.points)
    common = dict(method=args.method, t_end=args.t_end)

    def one_by_one():
        return [splitpinn.solve(args.model, args.method, args.t_end, parameters={"I": float(i)},
                                quiet=True).spike_times for i in currents]

    def run(**kwargs):
        sweep(args.model, {"I": currents[:8]}, args.method, min(args.t_end, 0.5),
              chunk_size=1, **kwargs)  # start the workers
        return _timed(lambda: sweep(args.model, {"I": currents}, **common, **kwargs))

    serial, t_serial = _timed(one_by_one)
    local, t_local = run(jobs=args.jobs)
    two, t_two = run(jobs=2)
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster:
        dask, t_dask = run(scheduler=cluster.scheduler_address)
    for result in (local, two, dask):
        for k, spikes in enumerate(serial):
            np.testing.assert_allclose(result.spike_times(k), spikes, rtol=0, atol=1e-9)
    label = f"{args.model} F-I, {args.points} currents 0-{args.i_max:g}, {args.t_end:g} ms"
    print(f"| case | {args.method} | wall (s) | ratio |\n|---|---|---|---|")
    print(f"| {label} | one by one, one process | {t_serial:.2f} | 1 |")
    print(f"| {label} | sweep --jobs {args.jobs or 'all'} | {t_local:.2f} | "
          f"speed-up {t_serial / t_local:.2f} |")
    print(f"| {label} | sweep --jobs 2 | {t_two:.2f} | 1 |")
    print(f"| {label} | sweep on Dask, 2 local workers | {t_dask:.2f} | "
          f"overhead {100 * (t_dask / t_two - 1):+.0f} % (target <= +20 %) |")


if __name__ == "__main__":
    main()
