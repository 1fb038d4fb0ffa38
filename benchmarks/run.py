"""Accuracy and speed table: model × method → error, spike-time error, wall time.

Each case solves one problem with several methods and compares them with a truth: solve_ivp at
rtol = atol = 1e-12 for integer order; for fractional order the L1 reference with the full
history on the same grid (frac-LIF) or the Adams predictor-corrector (FO-HH, whose integer-order
states L1 treats only to first order).  Wall times are medians over ``--repeats`` runs taken in
this one process; "history floats" is the memory the fractional history holds.

    .venv/bin/python benchmarks/run.py               # the README table
    .venv/bin/python benchmarks/run.py --only hh     # cases whose name contains "hh"
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import dataclass, field

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
    truth: dict = field(default_factory=lambda: dict(INTEGER_TRUTH))


INTEGER_TRUTH = {"rtol": 1e-12, "atol": 1e-12}
REFERENCE = "reference (DOP853, rtol 1e-10)"

CASES = [
    Case("hh I=10", "hh", 100.0, 0.0125, [
        Run(REFERENCE, "reference"),
        Run("split-PINN defaults (LS trainer, Yoshida)", "split-pinn"),
        Run("split-PINN LS, Strang", "split-pinn", {"scheme": "strang"}, dt=0.01),
        Run("split-PINN exact sub-flows, Yoshida", "split-pinn", {"solvers": "exact"},
            repeats=1),
    ]),
    Case("hh I=10", "hh", 20.0, 0.0125, [
        Run("split-PINN defaults", "split-pinn"),
        Run("vanilla PINN (DeepXDE, 5000 Adam)", "vanilla-pinn", repeats=1),
        Run("split-PINN Adam->L-BFGS (paper trainer), Strang", "split-pinn",
            {"trainer": "adam-lbfgs", "scheme": "strang"}, t_end=0.5, dt=0.05, repeats=1),
    ]),
    Case("izhikevich RS", "izhikevich", 200.0, 0.05, [
        Run(REFERENCE, "reference"),
        Run("split-PINN defaults", "split-pinn"),
    ], preset="RS"),
    Case("lif", "lif", 100.0, 0.05, [Run("split-PINN defaults", "split-pinn")]),
    Case("fhn", "fhn", 200.0, 0.05, [Run("split-PINN defaults", "split-pinn")]),
    Case("morris-lecar", "morris-lecar", 200.0, 0.05, [Run("split-PINN defaults", "split-pinn")]),
    Case("frac-lif a=0.6 I=1.5", "frac-lif", 200.0, 0.01, [
        Run("L1 reference, full history", "reference", {"history": "full"}),
        Run("split-PINN defaults", "split-pinn"),
        Run("Adams predictor-corrector", "reference", {"integrator": "adams"}),
    ], parameters={"alpha": 0.6, "I": 1.5}, truth={"history": "full"}),
    Case("frac-lif a=0.6 I=3", "frac-lif", 1000.0, 0.01, [
        Run("L1 reference, full history", "reference", {"history": "full"}, repeats=1),
        Run("L1 reference, fast history (SOE)", "reference", {"history": "fast"}),
    ], parameters={"alpha": 0.6, "I": 3.0}, truth={"history": "full"}),
    Case("fo-hh n, eta=0.8", "fo-hh", 100.0, 0.01, [
        Run("Adams predictor-corrector", "reference", {"integrator": "adams"}),
        Run("L1 reference", "reference"),
        Run("split-PINN defaults", "split-pinn"),
    ], parameters={"eta": 0.8}, preset="n", truth={"integrator": "adams"}),
]


def _timed(fn, repeats: int):
    walls, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        walls.append(time.perf_counter() - start)
    return result, statistics.median(walls)


def run_case(case: Case, repeats: int) -> list[str]:
    """Rows of the table for one case; a run identical to the truth reuses its solve."""
    common = dict(parameters=case.parameters, preset=case.preset)
    rows = []
    truths: dict[tuple, tuple] = {}
    for run in case.runs:
        t_end, dt = run.t_end or case.t_end, run.dt or case.dt
        if (t_end, dt) not in truths:
            truths[t_end, dt] = _timed(lambda t_end=t_end, dt=dt: splitpinn.solve(
                case.model, "reference", t_end, dt, **common, **case.truth), 1)
        truth, truth_wall = truths[t_end, dt]
        options = dict(run.options)
        if run.method != "reference":
            options["seed"] = 0
        if run.method == "reference" and options == case.truth and (run.repeats or repeats) == 1:
            solution, wall = truth, truth_wall
        else:
            solution, wall = _timed(lambda run=run, t_end=t_end, dt=dt, options=options:
                                    splitpinn.solve(case.model, run.method, t_end, dt, **common,
                                                    **options), run.repeats or repeats)
        m = solution_metrics(truth, solution)
        first = truth.names[0]
        err = m["max_spike_time_error_ms"]
        memory = solution.meta["solver"].get("memory_floats", "")
        rows.append(f"| {case.name}, 0-{t_end:g} ms | {run.label} | {dt:g} | "
                    f"{m['rel_l2'][first]:.1e} | {m['spike_count']}/{m['reference_spike_count']} | "
                    f"{'-' if err is None else f'{err:.1e}'} | {wall:.2f} | {memory} |")
        print(rows[-1], file=sys.stderr, flush=True)
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs per timing (median)")
    parser.add_argument("--only", help="run cases whose name contains this text")
    args = parser.parse_args(argv)
    print("| case | method | dt (ms) | rel. L2 (first state) | spikes / truth | "
          "max spike err (ms) | wall (s) | history floats |")
    print("|---|---|---|---|---|---|---|---|")
    for case in CASES:
        if args.only and args.only not in case.name:
            continue
        for row in run_case(case, args.repeats):
            print(row, flush=True)


if __name__ == "__main__":
    main()
