"""Accuracy and speed table: model × method → error, spike-time error, wall time.

Each case solves one problem with several methods and compares them with a tight reference
(solve_ivp at rtol = atol = 1e-12 for integer order; the L1 reference on the same grid for
fractional order).  Wall times are medians over ``--repeats`` runs taken in this one process.

    .venv/bin/python benchmarks/run.py               # the README table
    .venv/bin/python benchmarks/run.py --only hh     # cases whose name contains "hh"
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import dataclass, field

import numpy as np

import splitpinn
from splitpinn.compare import solution_metrics


@dataclass
class Run:
    """One row: a label, the method, its keyword options and its own repeat count."""

    label: str
    method: str
    options: dict = field(default_factory=dict)
    t_end: float | None = None  # shorter interval for slow methods (compared on it)
    dt: float | None = None  # default: the case's step
    repeats: int | None = None


@dataclass
class Case:
    name: str
    model: str
    t_end: float
    dt: float
    runs: list[Run]
    parameters: dict = field(default_factory=dict)
    preset: str | None = None
    truth: dict = field(default_factory=lambda: {"rtol": 1e-12, "atol": 1e-12})


CASES = [
    Case("hh I=10", "hh", 100.0, 0.0125, [
        Run("reference (DOP853, rtol 1e-10)", "reference", {}),
        Run("split-PINN defaults (LS, Yoshida)", "split-pinn", {}),
        Run("split-PINN LS, Strang", "split-pinn", {"scheme": "strang"}, dt=0.01),
        Run("split-PINN exact sub-flows, Yoshida", "split-pinn", {"solvers": "exact"},
            repeats=1),
    ]),
    Case("hh I=10 short", "hh", 20.0, 0.0125, [
        Run("split-PINN defaults", "split-pinn", {}),
        Run("vanilla PINN (DeepXDE, 5000 Adam)", "vanilla-pinn", {}, repeats=1),
        Run("split-PINN Adam->L-BFGS (paper trainer), Strang", "split-pinn",
            {"trainer": "adam-lbfgs", "scheme": "strang"}, t_end=0.5, dt=0.05, repeats=1),
    ]),
    Case("izhikevich RS", "izhikevich", 200.0, 0.05, [
        Run("reference (DOP853, rtol 1e-10)", "reference", {}),
        Run("split-PINN defaults", "split-pinn", {}),
        Run("split-PINN LS, Strang", "split-pinn", {"scheme": "strang"}, dt=0.01),
    ], preset="RS"),
    Case("lif", "lif", 100.0, 0.05, [
        Run("split-PINN defaults", "split-pinn", {}),
    ]),
    Case("fhn", "fhn", 200.0, 0.05, [
        Run("split-PINN defaults", "split-pinn", {}),
    ]),
    Case("morris-lecar", "morris-lecar", 200.0, 0.05, [
        Run("split-PINN defaults", "split-pinn", {}),
    ]),
]


def _timed(fn, repeats: int):
    walls, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        walls.append(time.perf_counter() - start)
    return result, statistics.median(walls)


def run_case(case: Case, repeats: int) -> list[str]:
    """Rows of the table for one case."""
    common = dict(parameters=case.parameters, preset=case.preset)
    rows = []
    truths: dict[float, splitpinn.Solution] = {}
    for run in case.runs:
        t_end = run.t_end or case.t_end
        if t_end not in truths:
            truths[t_end] = splitpinn.solve(case.model, "reference", t_end, case.dt,
                                            **common, **case.truth)
        truth = truths[t_end]
        dt = run.dt or case.dt
        options = dict(run.options)
        if run.method != "reference":
            options["seed"] = 0

        def solve(run=run, t_end=t_end, dt=dt, options=options):
            return splitpinn.solve(case.model, run.method, t_end, dt, **common, **options)

        solution, wall = _timed(solve, run.repeats or repeats)
        if not np.array_equal(solution.t, truth.t):
            truth = splitpinn.solve(case.model, "reference", t_end, dt, **common, **case.truth)
        m = solution_metrics(truth, solution)
        first = truth.names[0]
        err = m["max_spike_time_error_ms"]
        rows.append(f"| {case.name}, 0-{t_end:g} ms | {run.label} | {dt:g} | "
                    f"{m['rel_l2'][first]:.2e} | {m['spike_count']}/{m['reference_spike_count']} | "
                    f"{'-' if err is None else f'{err:.1e}'} | {wall:.2f} |")
        print(rows[-1], file=sys.stderr, flush=True)
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs per timing (median)")
    parser.add_argument("--only", help="run cases whose name contains this text")
    args = parser.parse_args(argv)
    print("| case | method | dt (ms) | rel L2 (V) | spikes | max spike err (ms) | wall (s) |")
    print("|---|---|---|---|---|---|---|")
    for case in CASES:
        if args.only and args.only not in case.name:
            continue
        for row in run_case(case, args.repeats):
            print(row, flush=True)


if __name__ == "__main__":
    main()
