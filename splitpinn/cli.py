"""The ``splitpinn`` command line: ``models``, ``plan``, ``show``, ``solve``, ``compare``,
``sweep``, ``fi-curve``, ``latency`` and ``fit``.

Every run ends with exit status 0 or with one line on stderr and no file written:

* 2 and ``splitpinn: error: ...`` — bad input, the user's mistake (:class:`ModelError`, a bad
  option), or a file that cannot be read or written, or memory that runs out;
* 1 and ``splitpinn: solver failed: ...`` — a numerical failure the solvers report
  (:class:`SolverError`);
* 3 and ``splitpinn: internal error: ...`` — any other exception: a bug in splitpinn.  Set the
  environment variable ``SPLITPINN_TRACEBACK=1`` to see its traceback.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import sys
import warnings
from pathlib import Path

os.environ.setdefault("DDE_BACKEND", "pytorch")

#: Exit statuses: a solver failure, bad input, a bug.
EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INTERNAL = 1, 2, 3


class InputError(Exception):
    """Bad command-line input."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, no usage dump
        raise InputError(message)


def _assignments(items: list[str], what: str) -> dict[str, float]:
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise InputError(f"--{what} expects NAME=VALUE, got {item!r}")
        try:
            number = float(value)
        except ValueError:
            raise InputError(f"--{what} {name}: {value!r} is not a number") from None
        if not math.isfinite(number):
            raise InputError(f"--{what} {name}: {value!r} is not a finite number")
        out[name] = number
    return out


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be a finite number > 0")
    return value


def _writable_file(text: str) -> Path:
    path = Path(text)
    if not path.parent.is_dir():
        raise argparse.ArgumentTypeError(f"directory {str(path.parent)!r} does not exist")
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r} is a directory")
    return path


def _output_file(text: str) -> Path:
    from .solvers.solution import SAVE_FORMATS

    path = _writable_file(text)
    if path.suffix not in SAVE_FORMATS:
        raise argparse.ArgumentTypeError(f"{text!r}: the file name must end in "
                                         f"{' or '.join(SAVE_FORMATS)}")
    return path


def _add_stimulus_options(p: argparse.ArgumentParser) -> None:
    from .declare.stimulus import INTERPOLATIONS

    p.add_argument("--stimulus", metavar="FILE.csv",
                   help="recorded input replacing the model's stimulus: a CSV file with the "
                        "columns t_ms,value (value in the model's current unit)")
    p.add_argument("--stimulus-interpolation", choices=INTERPOLATIONS, default="previous",
                   help="between samples: hold the previous value (default) or interpolate")


def _stimulus(args):
    """The recorded stimulus of ``--stimulus``, or None."""
    from .declare.stimulus import read_csv

    return read_csv(args.stimulus, args.stimulus_interpolation) if args.stimulus else None


def _add_solve_options(p: argparse.ArgumentParser, t_end_required: bool = True,
                       seed: bool = True) -> None:
    from .fractional import HISTORY_KINDS
    from .solvers import composition as split
    from .solvers import reference, registry

    p.add_argument("model", help="library model name (see: splitpinn models)")
    p.add_argument("--t-end", type=_positive, required=t_end_required,
                   help="end time (ms)" + ("" if t_end_required else
                                           "; a spike target needs it, a trace ends at its "
                                           "last sample"))
    p.add_argument("--dt", type=_positive,
                   help="output spacing (ms); the step of fixed-step methods (fractional "
                        "references, --fixed-step)")
    p.add_argument("--preset", help="named parameter set (e.g. Izhikevich RS, FS, ...)")
    p.add_argument("--set", action="append", default=[], metavar="PARAM=VALUE",
                   help="override a parameter (repeatable)")
    p.add_argument("--init", action="append", default=[], metavar="STATE=VALUE",
                   help="override an initial value (repeatable)")
    p.add_argument("--history", choices=HISTORY_KINDS,
                   help="fractional memory: full sum or sum-of-exponentials (default by length)")
    p.add_argument("--scheme", help="split-PINN composition: lie, strang, symmetric or "
                   "yoshida")
    p.add_argument("--trainer", choices=registry.names("trainer"),
                   help="split-PINN trainer (default least-squares)")
    p.add_argument("--integrator", choices=registry.names("integrator"),
                   help="reference integrator (default DOP853; fractional models: l2-1sigma)")
    p.add_argument("--rtol", type=_positive,
                   help="relative tolerance of the adaptive steps (split-PINN default "
                        f"{split.DEFAULT_RTOL:g}, reference {reference.DEFAULT_RTOL:g})")
    p.add_argument("--atol", type=_positive,
                   help=f"absolute tolerance (split-PINN default {split.DEFAULT_ATOL:g}, "
                        f"reference {reference.DEFAULT_ATOL:g})")
    p.add_argument("--fixed-step", action="store_const", const=True, default=None,
                   help="split-PINN: use the --dt spacing as the step (no error control)")
    p.add_argument("--estimate-error", action="store_const", const=True, default=None,
                   help="fractional reference: also solve at twice the step and report the "
                        "estimated error in meta")
    p.add_argument("--max-steps", type=_count,
                   help="the most steps per neuron before giving up (default 10000 + 1000 "
                        "per ms, plus the grid's steps for fixed-step methods)")
    p.add_argument("--iterations", type=int, help="vanilla-PINN Adam iterations")
    if seed:
        p.add_argument("--seed", type=int, help="random seed for the PINNs (default 0)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the commands in :data:`COMMANDS` (errors raise
    :class:`InputError`)."""
    from .solvers import registry

    parser = _Parser(prog="splitpinn", description="Split-PINN solves of neuron models.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    p = sub.add_parser("models", help="list the library models and their presets")
    p.add_argument("--verbose", action="store_true",
                   help="also show each model's parameter defaults with units")
    p = sub.add_parser("plan", help="print the splitting plan of a model")
    p.add_argument("model")
    p.add_argument("--scheme", default=None, help="lie, strang, symmetric or yoshida")
    p.add_argument("--preset")
    p.add_argument("--set", action="append", default=[], metavar="PARAM=VALUE")
    p = sub.add_parser("show", help="print a model as text, a TOML model file, LaTeX or Brian2")
    p.add_argument("model", help="library model name, .toml model file or .nml NeuroML2 file")
    p.add_argument("--format", default="text", choices=["text", "toml", "latex", "brian2"])
    p = sub.add_parser("solve", help="solve a model with one method")
    _add_solve_options(p)
    p.add_argument("--method", required=True, choices=registry.names("method"),
                   help="the solve method")
    p.add_argument("--out", type=_output_file,
                   help="write t, the states, spike times and meta (.npz, or .csv)")
    p.add_argument("--plot", type=_writable_file, help="write a figure of the solution")
    p.add_argument("--no-traces", action="store_true",
                   help="keep spike times only (t and the states at the start and end): for "
                        "long runs whose output grid would not fit in memory")
    _add_stimulus_options(p)
    p = sub.add_parser("compare", help="compare methods against the first one")
    _add_solve_options(p)
    p.add_argument("--methods", required=True,
                   help="comma-separated method variants, reference first, e.g. "
                        "'reference[integrator=adams,dt=0.0025],reference,split-pinn'")
    p.add_argument("--out", required=True, help="directory for metrics.json and figures")
    _add_stimulus_options(p)
    for name, text in (("sweep", "solve a model over a grid of parameter values"),
                       ("fi-curve", "firing rate against constant current I"),
                       ("latency", "first-spike latency against the amplitude of a step current")):
        p = sub.add_parser(name, help=text)
        _add_solve_options(p)
        _add_sweep_options(p, method_required=name == "sweep")
    p.add_argument("--t-on", type=float, default=0.0, help="step onset (ms, default 0)")
    p.add_argument("--theta", type=_positive, default=1.0,
                   help="threshold distance the LIF predictors assume (default 1)")
    _add_fit_parser(sub)
    return parser


def _add_fit_parser(sub) -> None:
    from .analysis.fit import SPIKE_METRICS, TARGETS
    from .solvers import registry

    p = sub.add_parser("fit", help="fit free parameters to a recorded trace or spike train")
    _add_solve_options(p, t_end_required=False, seed=False)
    p.add_argument("--data", required=True, metavar="FILE.csv",
                   help="the recording: columns t_ms,<state> (trace) or spike_time_ms (spikes)")
    p.add_argument("--free", action="append", required=True, metavar="PARAM=LO:HI",
                   help="a parameter to fit and its bounds (repeatable)")
    p.add_argument("--target", choices=TARGETS, default="trace",
                   help="what the data holds (default trace)")
    p.add_argument("--state", help="the sampled state of a trace (default: the data's column)")
    p.add_argument("--method", choices=registry.names("method"), default="split-pinn",
                   help="the solve method (default split-pinn; fractional models: reference "
                        "is faster)")
    p.add_argument("--t0", type=float, default=0.0, help="start of the solves (ms, default 0)")
    p.add_argument("--population", type=_count,
                   help="candidates per generation (default 10 per free parameter, at least "
                        "15)")
    p.add_argument("--generations", type=_count,
                   help="the most generations (default 40 + 20 per free parameter)")
    p.add_argument("--seed", type=_natural, default=0, help="seed of the search (default 0)")
    p.add_argument("--metric", choices=list(SPIKE_METRICS),
                   help="spike loss: van-rossum (default) or gamma")
    p.add_argument("--window", type=_positive,
                   help="spike loss window (ms): van Rossum's tau (default: the data's mean "
                        "interspike interval) or the gamma factor's delta (default "
                        f"{SPIKE_METRICS['gamma']:g})")
    p.add_argument("--no-polish", action="store_true",
                   help="skip the Nelder-Mead polish of the best candidate")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--jobs", type=_count,
                       help="local processes sharing each generation (default 1)")
    where.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                       help="share each generation among the workers of this Dask scheduler")
    p.add_argument("--out", required=True, help="output directory")
    _add_stimulus_options(p)


def _natural(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} must be an integer >= 0")
    return int(text)


def _count(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be an integer >= 1")
    return int(text)


def _add_sweep_options(p: argparse.ArgumentParser, method_required: bool) -> None:
    from .solvers import registry

    p.add_argument("--method", required=method_required, choices=registry.names("method"),
                   default=None if method_required else "reference",
                   help="the solve method" + ("" if method_required else " (default reference)"))
    p.add_argument("--vary", action="append", required=True,
                   metavar="PARAM=START:STOP:N|PARAM=v1,v2,...",
                   help="values of a parameter (repeatable: the grid is the cartesian product, "
                        "the last --vary fastest)")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--jobs", type=_count, help="local worker processes (default: all cores)")
    where.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                       help="solve on the workers of this Dask scheduler")
    p.add_argument("--chunk-size", type=_count,
                   help="points per task (default: about four tasks per worker)")
    p.add_argument("--resume", action="store_true",
                   help="continue the sweep in --out, computing only the missing points")
    p.add_argument("--out", required=True, help="output directory")


def _flag(option: str) -> str:
    return "--" + option.replace("_", "-")


def _method_options(args, methods: list[str], exclude=()) -> dict[str, dict]:
    """Per method, the options given in ``args`` that it takes (read from the registry of
    methods); refuse an option that none of ``methods`` takes, listing the ones they do.
    ``exclude``: flags of the command itself that share a method option's name."""
    from .solvers import registry

    passed = {"t_end", "dt", *_common(args), *exclude}  # what every solve gets anyway

    def flags(method: str) -> list[str]:
        return [k for k in registry.options("method", method)
                if hasattr(args, k) and k not in passed]

    accepted = {m: flags(m) for m in methods}
    given = {k: getattr(args, k) for m in registry.names("method") for k in flags(m)
             if getattr(args, k) is not None}
    for k in given:
        if not any(k in accepted[m] for m in methods):
            known = "; ".join(f"{m}: {', '.join(map(_flag, accepted[m])) or 'none'}"
                              for m in methods)
            raise InputError(f"{_flag(k)} does not apply to method {', '.join(methods)} "
                             f"(options: {known})")
    return {m: {k: v for k, v in given.items() if k in accepted[m]} for m in methods}


def _as_flags(message: str, args) -> str:
    """A library message in command-line terms: a method option named as a keyword argument,
    ``option=`` or ``option='value'``, becomes ``--option`` or ``--option value`` where
    ``args`` has that flag."""
    from .solvers import registry

    flags = {k for m in registry.names("method") for k in registry.options("method", m)
             if hasattr(args, k)}

    def flag(match):
        if match[1] not in flags:
            return match[0]
        value = match[2] if match[2] is not None else match[3]
        return _flag(match[1]) + ("" if value is None else f" {value}")

    return re.sub(r"""(?<![\w-])(\w+)=(?:'([^']*)'|"([^"]*)"|(?![\w.+'"-]))""", flag, message)


def _common(args) -> dict:
    return dict(parameters=_assignments(args.set, "set"), initial=_assignments(args.init, "init"),
                preset=args.preset, quiet=args.quiet)


def _cmd_models(args) -> None:
    from . import models

    for name in models.names():
        model = models.get(name)
        presets = f"  presets: {' '.join(model.presets)} (default {model.default_preset})" \
            if model.presets else ""
        print(f"{name:16s} {model.description}{presets}")
        parameters = ", ".join(f"{k}={v:g}" + (f" {model.units[k]}" if model.units.get(k) else "")
                               for k, v in model.parameters.items()) if args.verbose \
            else " ".join(model.parameters)
        print(f"{'':16s} states: {' '.join(model.state_names)}; parameters: {parameters}")


def _cmd_plan(args) -> None:
    from .api import resolve_model
    from .solvers.splitting import plan

    model = resolve_model(args.model)
    bound = model.bind(_assignments(args.set, "set"), preset=args.preset)
    print(plan(bound, scheme=args.scheme))


def _cmd_show(args) -> None:
    from .api import resolve_model
    from .io.modelfile import show

    print(show(resolve_model(args.model), args.format), end="")


def _headless() -> None:
    """Draw figures off-screen (the command line never opens windows)."""
    import matplotlib

    matplotlib.use("Agg")


def _cmd_solve(args) -> None:
    from .api import solve

    if args.no_traces and args.plot:
        raise InputError("--plot needs the traces: drop --no-traces")
    solution = solve(args.model, args.method, args.t_end, args.dt, **_common(args),
                     stimulus=_stimulus(args), traces=not args.no_traces,
                     **_method_options(args, [args.method])[args.method])
    if args.out:
        solution.save(args.out)
    if args.plot:
        _headless()
        from .analysis.plotting import plot_solution, save_figure

        save_figure(plot_solution(solution), args.plot)
    spikes = solution.spike_times
    print(f"{solution.meta['model']} by {solution.meta['method']}: {len(spikes)} spikes, "
          f"wall time {solution.meta['wall_time_s']:.2f} s"
          + (f", first at {spikes[0]:.4f} ms" if len(spikes) else ""))


def _cmd_compare(args) -> None:
    from .analysis.compare import compare, parse_variant, split_methods, write_comparison
    from .analysis.sweep import output_folder
    from .solvers import registry

    methods = split_methods(args.methods)
    names = [parse_variant(m)[0] for m in methods]
    for name in names:
        registry.get("method", name)
    out = output_folder(args.out)
    _headless()
    comparison = compare(args.model, methods, args.t_end, args.dt, **_common(args),
                         stimulus=_stimulus(args), options=_method_options(args, names))
    write_comparison(comparison, out)
    print(comparison.summary())


def _sweep_options(args) -> dict:
    return dict(method=args.method, t_end=args.t_end, dt=args.dt, jobs=args.jobs,
                scheduler=args.scheduler, chunk_size=args.chunk_size, out=args.out,
                resume=args.resume, **_common(args),
                **_method_options(args, [args.method])[args.method])


def _currents(args):
    from .analysis.sweep import parse_vary

    vary = parse_vary(args.vary)
    if list(vary) != ["I"]:
        raise InputError(f"{args.command} varies the current: give one --vary I=..., "
                         f"not {', '.join(vary)}")
    return vary["I"]


def _cmd_sweep(args) -> None:
    from .analysis.sweep import parse_vary, plot_sweep, sweep

    vary = parse_vary(args.vary)
    _headless()
    from .analysis.plotting import save_figure

    result = sweep(args.model, vary, **_sweep_options(args))
    save_figure(plot_sweep(result), Path(args.out) / "sweep.png")
    failed = int((result.table["status"] != "ok").sum())
    print(f"sweep of {args.model} by {args.method}: {len(result.table)} points, {failed} failed; "
          f"{args.out}/sweep.csv, spikes.csv, sweep.png")


def _cmd_fi_curve(args) -> None:
    from .analysis.fi import fi_curve

    currents = _currents(args)
    _headless()
    curve = fi_curve(args.model, currents, **_sweep_options(args))
    exact = "" if curve.closed_form is None else \
        f", largest deviation from the closed form {_max_rel(curve.rate_hz, curve.closed_form_hz)}"
    print(f"F-I curve of {args.model} by {args.method}: {len(curve.I)} currents{exact}; "
          f"{args.out}/fi.csv, fi.png")


def _max_rel(values, exact) -> str:
    import numpy as np

    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.abs(values - exact) / np.abs(exact)
    rel = rel[np.isfinite(rel)]
    return f"{rel.max():.2e} (relative)" if rel.size else "-"


def _cmd_latency(args) -> None:
    from .analysis.latency import PREDICTORS, latency

    currents = _currents(args)
    _headless()
    result = latency(args.model, currents, t_on=args.t_on, theta=args.theta,
                     **_sweep_options(args))
    errors = "; ".join(f"{n} median rel. error {_median(result.relative_error(n))}"
                       for n in PREDICTORS if n in result.predictors) or \
        "fewer than 3 currents fire: no predictor fitted"
    print(f"latency of {args.model} by {args.method}: {len(result.I)} currents; {errors}; "
          f"{args.out}/latency.csv, latency.json, latency.png")


def _median(values) -> str:
    import numpy as np

    values = values[np.isfinite(values)]
    return f"{np.median(values):.3g}" if values.size else "-"


def _cmd_fit(args) -> None:
    from .analysis.fit import fit, parse_free

    free = parse_free(args.free)
    _headless()
    common = _common(args)
    result = fit(args.model, args.data, free, target=args.target, state=args.state,
                 method=args.method, t_end=args.t_end, t0=args.t0, dt=args.dt,
                 stimulus=_stimulus(args), population=args.population,
                 generations=args.generations, seed=args.seed, metric=args.metric,
                 window=args.window, polish=not args.no_polish, jobs=args.jobs,
                 scheduler=args.scheduler, out=args.out, **common,
                 **_method_options(args, [args.method], exclude=["seed"])[args.method])
    values = ", ".join(f"{k} = {v:.6g}" for k, v in result.parameters.items())
    print(f"fit of {args.model} to {args.target} by {args.method}: {values}; loss "
          f"{result.loss:.4g} after {result.evaluations} evaluations in "
          f"{result.wall_time_s:.1f} s; {args.out}/fit.json, history.csv, fit.png")


COMMANDS = {"models": _cmd_models, "plan": _cmd_plan, "show": _cmd_show, "solve": _cmd_solve,
            "compare": _cmd_compare, "sweep": _cmd_sweep, "fi-curve": _cmd_fi_curve,
            "latency": _cmd_latency, "fit": _cmd_fit}


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status (see the module docstring)."""
    from .errors import ModelError, SolverError

    args = None
    try:
        args = build_parser().parse_args(argv)
        with warnings.catch_warnings():
            # numpy's floating-point warnings from a diverging solve are noise here: its
            # result is checked, and a failure reported in one line
            warnings.simplefilter("ignore", RuntimeWarning)
            COMMANDS[args.command](args)
    except (InputError, ModelError) as exc:  # the user's mistake
        return _fail(EXIT_BAD_INPUT, "error", _as_flags(str(exc), args))
    except SolverError as exc:  # a numerical failure, reported by the solvers
        return _fail(EXIT_FAILED, "solver failed", _as_flags(_describe(exc), args))
    except BrokenPipeError:  # e.g. `splitpinn models | head`: the reader left, say nothing
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as exc:  # a file could not be read or written
        return _fail(EXIT_BAD_INPUT, "error", str(exc))
    except MemoryError:
        return _fail(EXIT_BAD_INPUT, "error", "out of memory (try a shorter run or a "
                     "coarser --dt)")
    except KeyboardInterrupt:
        print("splitpinn: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug: one line, the traceback on request
        if os.environ.get("SPLITPINN_TRACEBACK"):
            raise
        return _fail(EXIT_INTERNAL, "internal error",
                     f"{_describe(exc)} (a bug in splitpinn, please report it; set "
                     "SPLITPINN_TRACEBACK=1 for the traceback)")
    return 0


def _describe(exc: BaseException) -> str:
    """The exception's message, with its type where the message alone says little."""
    from .errors import SolverError

    text = str(exc)
    if isinstance(exc, SolverError) and text:
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _fail(status: int, what: str, message: str) -> int:
    """Print ``splitpinn: WHAT: MESSAGE`` as one line on stderr; return ``status``."""
    print(f"splitpinn: {what}: {' '.join(message.split())}", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
