"""Accuracy and speed table: model × method → error, spike-time error, wall time.

Each case solves one problem with several methods and compares them with a truth: solve_ivp at
rtol = atol = 1e-12 for integer order; for fractional order the L2-1σ reference at a quarter of
the step (converged: second order), never the scheme under test at the same step.  Wall times
are medians over ``--repeats`` runs taken in this one process; "history floats" is the memory
the fractional history holds.  Three more tables follow: a batch of HH neurons against one
neuron's solve, batches on fixed steps against their rows solved one by one, and a 10^6-step
fractional run.

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
from splitpinn.analysis.metrics import solution_metrics
from splitpinn.declare.stimulus import sampled, step


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
    stimulus: object = None  # an expression of t (splitpinn.declare.stimulus), or the model's own


INTEGER_TRUTH = {"rtol": 1e-12, "atol": 1e-12}
#: Fractional truth: L2-1σ at a quarter of the case's step ("dt_factor"), a converged solution
#: (its error is 1/16 of the default's), never the scheme under test at the same step.
FRACTIONAL_TRUTH = {"dt_factor": 0.25}
REFERENCE = "reference (DOP853, rtol 1e-10)"


def recorded_sinusoid(every: float, t_end: float = 100.0):
    """A recording: I = 10 + 5 sin(2πt/20) sampled every ``every`` ms, interpolated linearly
    (a kink at every sample, where steps end)."""
    times = np.arange(0.0, t_end + every / 2, every)
    return sampled(times, 10 + 5 * np.sin(2 * np.pi * times / 20), "linear")


CASES = [
    Case("hh I=10", "hh", 100.0, 0.0125, [
        Run(REFERENCE, "reference"),
        Run("split-PINN defaults (adaptive, LS trainer, Yoshida)", "split-pinn"),
        Run("split-PINN defaults, output grid 0.2", "split-pinn", dt=0.2),
        Run("split-PINN defaults, output grid 0.5", "split-pinn", dt=0.5),
        Run("split-PINN fixed step 0.0125 (the old default)", "split-pinn",
            {"fixed_step": True}),
        Run("split-PINN exact sub-flows, Yoshida", "split-pinn", {"solvers": "exact"},
            repeats=1),
    ]),
    Case("hh I=10", "hh", 20.0, 0.0125, [
        Run("split-PINN defaults", "split-pinn"),
        Run("vanilla PINN (DeepXDE, 5000 Adam)", "vanilla-pinn", repeats=1),
        Run("split-PINN Adam->L-BFGS (paper trainer), Strang, fixed step", "split-pinn",
            {"trainer": "adam-lbfgs", "scheme": "strang", "fixed_step": True}, t_end=0.5,
            dt=0.05, repeats=1),
    ]),
    Case("hh pulse I=10 on 10-60 ms", "hh", 100.0, 0.0125, [
        Run(REFERENCE, "reference"),
        Run("split-PINN defaults", "split-pinn"),
    ], stimulus=step(10.0, 10.0, 60.0)),
    Case("hh recorded sinusoid, sampled every 0.1 ms, linear", "hh", 100.0, 0.0125, [
        Run(REFERENCE, "reference"),
        Run("split-PINN defaults", "split-pinn"),
    ], stimulus=recorded_sinusoid(0.1)),
    Case("izhikevich RS", "izhikevich", 200.0, 0.05, [
        Run(REFERENCE, "reference"),
        Run("split-PINN defaults", "split-pinn"),
    ], preset="RS"),
    Case("lif", "lif", 100.0, 0.05, [Run("split-PINN defaults", "split-pinn")]),
    Case("adex tonic", "adex", 500.0, 0.05, [
        Run(REFERENCE, "reference"),
        Run("split-PINN defaults", "split-pinn"),
    ]),
    Case("fhn", "fhn", 200.0, 0.05, [Run("split-PINN defaults", "split-pinn")]),
    Case("morris-lecar", "morris-lecar", 200.0, 0.05, [Run("split-PINN defaults", "split-pinn")]),
    Case("frac-lif a=0.6 I=1.5", "frac-lif", 200.0, 0.01, [
        Run("L2-1σ reference (default)", "reference"),
        Run("L2-1σ reference, dt 0.02", "reference", dt=0.02),
        Run("L1 reference", "reference", {"integrator": "l1"}),
        Run("Adams predictor-corrector", "reference", {"integrator": "adams"}),
        Run("split-PINN defaults (L2-1σ residual)", "split-pinn"),
    ], parameters={"alpha": 0.6, "I": 1.5}, truth=dict(FRACTIONAL_TRUTH)),
    Case("fo-hh n, eta=0.8", "fo-hh", 100.0, 0.01, [
        Run("L2-1σ reference (default)", "reference"),
        Run("L1 reference", "reference", {"integrator": "l1"}),
        Run("Adams predictor-corrector", "reference", {"integrator": "adams"}),
        Run("split-PINN defaults (L2-1σ residual, Strang)", "split-pinn"),
    ], parameters={"eta": 0.8}, preset="n", truth=dict(FRACTIONAL_TRUTH)),
    Case("frac-izhikevich RS", "frac-izhikevich", 100.0, 0.01, [
        Run("L2-1σ reference (default)", "reference"),
        Run("split-PINN defaults (L2-1σ residual, symmetric)", "split-pinn", repeats=1),
    ], truth=dict(FRACTIONAL_TRUTH)),
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
    common = dict(parameters=case.parameters, preset=case.preset, stimulus=case.stimulus)
    rows = []
    truths: dict[tuple, tuple] = {}
    for run in case.runs:
        t_end, dt = run.t_end or case.t_end, run.dt or case.dt
        if (t_end, dt) not in truths:
            truth_options = dict(case.truth)
            factor = truth_options.pop("dt_factor", 1.0)
            truth = splitpinn.solve(case.model, "reference", t_end, dt * factor, **common,
                                    **truth_options)
            if factor != 1.0:  # sample the finer truth on this run's grid
                stride = round(1 / factor)
                truth.t, truth.y = truth.t[::stride], truth.y[:, ::stride]
            truths[t_end, dt] = truth, None
        truth, truth_wall = truths[t_end, dt]
        options = dict(run.options)
        if run.method != "reference":
            options["seed"] = 0
        if run.method == "reference" and options == case.truth and truth_wall is not None \
                and (run.repeats or repeats) == 1:
            solution, wall = truth, truth_wall
        else:
            solution, wall = _timed(lambda run=run, t_end=t_end, dt=dt, options=options:
                                    splitpinn.solve(case.model, run.method, t_end, dt, **common,
                                                    **options), run.repeats or repeats)
        m = solution_metrics(truth, solution)
        first = truth.names[0]
        err = m["max_spike_time_error_ms"]
        solver = solution.meta["solver"]
        memory = solver.get("memory_floats", "")
        steps = (f"{solver['steps_accepted']}/{solver['steps_rejected']}"
                 if "steps_accepted" in solver else "")
        per_stage = (f"{1e6 * wall / solver['stage_evaluations']:.0f}"
                     if solver.get("stage_evaluations") else "")
        per_step = f"{1e6 * wall / solver['steps_accepted']:.0f}" if steps else ""
        rows.append(f"| {case.name}, 0-{t_end:g} ms | {run.label} | {dt:g} | "
                    f"{m['rel_l2'][first]:.1e} | {m['spike_count']}/{m['reference_spike_count']} | "
                    f"{'-' if err is None else f'{err:.1e}'} | {wall:.2f} | {steps} | "
                    f"{per_step} | {per_stage} | {memory} |")
        print(rows[-1], file=sys.stderr, flush=True)
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs per timing (median)")
    parser.add_argument("--only", help="run cases whose name contains this text "
                        "('batch', 'fixed-step batches' and 'long fractional' select the "
                        "extra tables)")
    parser.add_argument("--batch", type=int, default=1000, help="neurons in the batch table")
    args = parser.parse_args(argv)
    print("| case | method | output dt (ms) | rel. L2 (first state) | spikes / truth | "
          "max spike err (ms) | wall (s) | steps acc/rej | µs/step | µs/stage | "
          "history floats |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for case in CASES:
        if args.only and args.only not in case.name:
            continue
        for row in run_case(case, args.repeats):
            print(row, flush=True)
    if not args.only or args.only in "batch":
        print()
        batch_table(args.batch)
    if not args.only or args.only in "fixed-step batches":
        print()
        fixed_step_batch_table()
    if not args.only or args.only in "long fractional":
        print()
        long_fractional_table()


def batch_table(size: int) -> None:
    """B HH neurons, I = linspace(0, 20, B), 0-100 ms: the batch's wall time against one
    neuron's solve, and 50 random neurons' spikes against the reference."""
    currents = np.linspace(0.0, 20.0, size)
    single, single_wall = _timed(lambda: splitpinn.solve("hh", "split-pinn", 100.0,
                                                         parameters={"I": 10.0}), 1)
    batch, wall = _timed(lambda: splitpinn.solve("hh", "split-pinn", 100.0,
                                                 parameters={"I": currents}, traces=False), 1)
    rng = np.random.default_rng(0)
    worst, counts_equal = 0.0, 0
    chosen = rng.choice(size, size=min(50, size), replace=False)
    for i in chosen:
        ref = splitpinn.solve("hh", "reference", 100.0, parameters={"I": float(currents[i])},
                              traces=False)
        got = batch[i].spike_times
        if len(got) == len(ref.spike_times):
            counts_equal += 1
            if len(got):
                worst = max(worst, float(np.max(np.abs(got - ref.spike_times))))
    print("| batch | wall (s) | one neuron (s) | ratio | spike counts equal (of sampled) | "
          "max spike err (ms) |")
    print("|---|---|---|---|---|---|")
    print(f"| {size} HH neurons, I = 0..20, 0-100 ms, split-PINN | {wall:.1f} | "
          f"{single_wall:.2f} | {wall / single_wall:.1f} | {counts_equal}/{len(chosen)} | "
          f"{worst:.1e} |", flush=True)


#: Batches on fixed steps (dt 0.01, spike times only): (label, model, t_end, parameters that
#: vary over the batch, options).
FIXED_STEP_BATCHES = [
    ("20 frac-LIF a=0.6, I = 1.2..3, split-PINN", "frac-lif", 200.0,
     {"alpha": 0.6, "I": np.linspace(1.2, 3.0, 20)}, {}),
    ("5 fo-hh, I = 5..15, split-PINN", "fo-hh", 50.0, {"I": np.linspace(5.0, 15.0, 5)}, {}),
    ("20 Izhikevich RS, I = 5..15, split-PINN fixed steps", "izhikevich", 200.0,
     {"I": np.linspace(5.0, 15.0, 20)}, {"fixed_step": True}),
]


def fixed_step_batch_table() -> None:
    """Each batch of :data:`FIXED_STEP_BATCHES` as one solve against its rows solved one by
    one (a sweep solves its points in such batches): wall times and the largest difference of
    their spike times."""
    print("| fixed-step batch | batch wall (s) | one by one (s) | ratio | "
          "spike times, batch vs one by one (ms) |")
    print("|---|---|---|---|---|")
    for label, model, t_end, varied, options in FIXED_STEP_BATCHES:
        def solve(parameters, model=model, t_end=t_end, options=options):
            return splitpinn.solve(model, "split-pinn", t_end, 0.01, parameters=parameters,
                                   traces=False, **options)

        size = max(np.size(v) for v in varied.values())
        rows = [{k: float(np.broadcast_to(v, size)[i]) for k, v in varied.items()}
                for i in range(size)]
        solve(rows[0])  # numba: compile the model's module, or load it from the disk cache
        batch, wall = _timed(lambda solve=solve, varied=varied: solve(varied), 1)
        singles, singles_wall = _timed(lambda solve=solve, rows=rows: [solve(r) for r in rows], 1)
        same = all(len(a) == len(b.spike_times)
                   for a, b in zip(batch.spike_times, singles, strict=True))
        diff = max((float(np.max(np.abs(a - b.spike_times)))
                    for a, b in zip(batch.spike_times, singles, strict=True) if len(a)),
                   default=0.0)
        print(f"| {label}, 0-{t_end:g} ms, dt 0.01 | {wall:.2f} | {singles_wall:.2f} | "
              f"{wall / singles_wall:.2f} | {f'{diff:.1e}' if same else 'counts differ'} |",
              flush=True)


def long_fractional_table() -> None:
    """frac-LIF alpha = 0.6, I = 3, 0-10 000 ms at dt 0.01 (10^6 steps), fast history, by the
    L1 and the L2-1σ reference: wall time (numba's code compiled or loaded beforehand),
    history memory, and the first 1000 ms against the 1000 ms run."""
    parameters = {"alpha": 0.6, "I": 3.0}

    def run(t_end, integrator):
        return splitpinn.solve("frac-lif", "reference", t_end, 0.01, parameters=parameters,
                               history="fast", integrator=integrator, traces=False)

    run(20.0, "l1")  # numba: compile the model's module, or load it from the disk cache
    print("| long fractional run | wall (s) | µs/step | history floats | "
          "first 1000 ms vs 1000 ms run (ms) |")
    print("|---|---|---|---|---|")
    for integrator in ("l1", "l2-1sigma"):
        short = run(1000.0, integrator)
        long, wall = _timed(lambda integrator=integrator: run(10_000.0, integrator), 1)
        head = long.spike_times[long.spike_times <= 1000.0]
        same = len(head) == len(short.spike_times)
        diff = float(np.max(np.abs(head - short.spike_times))) if same and len(head) else None
        steps = long.meta["solver"]["steps_accepted"]
        print(f"| frac-LIF a=0.6 I=3, 0-10000 ms, dt 0.01, fast history, reference "
              f"{integrator} | {wall:.1f} | "
              f"{wall / steps * 1e6:.1f} | {long.meta['solver']['memory_floats']} | "
              f"{'count differs' if not same else f'{diff:.1e}'} |", flush=True)


if __name__ == "__main__":
    main()
