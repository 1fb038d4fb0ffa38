"""The ``splitpinn`` command line: ``models``, ``plan``, ``solve`` and ``compare``.

Bad input ends with one line on stderr and exit status 2, before any file is written.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path

os.environ.setdefault("DDE_BACKEND", "pytorch")

EXIT_BAD_INPUT, EXIT_FAILED = 2, 1


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


def _add_solve_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="library model name (see `splitpinn models`)")
    p.add_argument("--t-end", type=_positive, required=True, help="end time (ms)")
    p.add_argument("--dt", type=_positive, help="method step and output spacing (ms)")
    p.add_argument("--preset", help="named parameter set (e.g. Izhikevich RS, FS, ...)")
    p.add_argument("--set", action="append", default=[], metavar="PARAM=VALUE",
                   help="override a parameter (repeatable)")
    p.add_argument("--init", action="append", default=[], metavar="STATE=VALUE",
                   help="override an initial value (repeatable)")
    p.add_argument("--history", choices=["full", "fast"],
                   help="fractional memory: full sum or sum-of-exponentials (default by length)")
    p.add_argument("--scheme", help="split-PINN composition: lie, strang or yoshida")
    p.add_argument("--trainer", help="split-PINN trainer: least-squares or adam-lbfgs")
    p.add_argument("--integrator",
                   help="reference integrator: DOP853 (default), RK45, Radau, BDF, LSODA; "
                        "fractional: l1 (default) or adams")
    p.add_argument("--iterations", type=int, help="vanilla-PINN Adam iterations")
    p.add_argument("--seed", type=int, default=0, help="random seed for the PINNs")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the four commands (errors raise :class:`InputError`)."""
    parser = _Parser(prog="splitpinn", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    sub.add_parser("models", help="list the library models and their presets")
    p = sub.add_parser("plan", help="print the splitting plan of a model")
    p.add_argument("model")
    p.add_argument("--scheme", default=None, help="lie, strang or yoshida")
    p.add_argument("--preset")
    p.add_argument("--set", action="append", default=[], metavar="PARAM=VALUE")
    p = sub.add_parser("solve", help="solve a model with one method")
    _add_solve_options(p)
    p.add_argument("--method", required=True, help="reference, split-pinn or vanilla-pinn")
    p.add_argument("--out", type=_writable_file, help="write t, states, spike_times, meta (.npz)")
    p.add_argument("--plot", type=_writable_file, help="write a figure of the solution")
    p = sub.add_parser("compare", help="compare methods against the first one")
    _add_solve_options(p)
    p.add_argument("--methods", required=True,
                   help="comma-separated, reference first, e.g. reference,split-pinn")
    p.add_argument("--out", required=True, help="directory for metrics.json and figures")
    return parser


ACCEPTED_OPTIONS = {"reference": {"history", "integrator"},
                    "split-pinn": {"history", "scheme", "trainer"},
                    "vanilla-pinn": {"iterations"}}


def _method_options(args, methods: list[str]) -> dict[str, dict]:
    """Per method, the options of ``args`` that it takes; refuse an option that none of
    ``methods`` takes."""
    given = {"history": args.history, "scheme": args.scheme, "trainer": args.trainer,
             "iterations": args.iterations, "integrator": args.integrator}
    given = {k: v for k, v in given.items() if v is not None}
    for k in given:
        if not any(k in ACCEPTED_OPTIONS.get(m, ()) for m in methods):
            raise InputError(f"--{k} does not apply to method {', '.join(methods)}")
    options = {}
    for m in methods:
        options[m] = {k: v for k, v in given.items() if k in ACCEPTED_OPTIONS.get(m, ())}
        if m in ("split-pinn", "vanilla-pinn"):
            options[m]["seed"] = args.seed
    return options


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
        print(f"{'':16s} states: {' '.join(model.state_names)}; "
              f"parameters: {' '.join(model.parameters)}")


def _cmd_plan(args) -> None:
    from .api import resolve_model
    from .splitting import plan

    model = resolve_model(args.model)
    bound = model.bind(_assignments(args.set, "set"), preset=args.preset)
    print(plan(bound, scheme=args.scheme))


def _headless() -> None:
    """Draw figures off-screen (the command line never opens windows)."""
    import matplotlib

    matplotlib.use("Agg")


def _check_methods(methods: list[str]) -> None:
    from .api import METHODS

    for m in methods:
        if m not in METHODS:
            raise InputError(f"unknown method {m!r} (known: {', '.join(METHODS)})")


def _cmd_solve(args) -> None:
    from .api import solve

    _check_methods([args.method])
    solution = solve(args.model, args.method, args.t_end, args.dt, **_common(args),
                     **_method_options(args, [args.method])[args.method])
    if args.out:
        solution.save(args.out)
    if args.plot:
        _headless()
        from .plotting import plot_solution, save_figure

        save_figure(plot_solution(solution), args.plot)
    spikes = solution.spike_times
    print(f"{solution.meta['model']} by {solution.meta['method']}: {len(spikes)} spikes, "
          f"wall time {solution.meta['wall_time_s']:.2f} s"
          + (f", first at {spikes[0]:.4f} ms" if len(spikes) else ""))


def _cmd_compare(args) -> None:
    from .compare import compare, write_comparison

    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    _check_methods(methods)
    if len(methods) < 2:
        raise InputError("--methods needs at least two methods, the reference first")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {args.out!r} exists and is not a directory")
    if not out.parent.is_dir():
        raise InputError(f"directory {str(out.parent)!r} does not exist")
    _headless()
    comparison = compare(args.model, methods, args.t_end, args.dt, **_common(args),
                         options=_method_options(args, methods))
    write_comparison(comparison, out)
    print(comparison.summary())


COMMANDS = {"models": _cmd_models, "plan": _cmd_plan, "solve": _cmd_solve, "compare": _cmd_compare}


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    from .errors import ModelError, SolverError

    try:
        args = build_parser().parse_args(argv)
        COMMANDS[args.command](args)
    except (InputError, ModelError, ValueError) as exc:
        print(f"splitpinn: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except BrokenPipeError:  # e.g. `splitpinn models | head`: the reader left, say nothing
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (SolverError, OSError) as exc:
        print(f"splitpinn: failed: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("splitpinn: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
