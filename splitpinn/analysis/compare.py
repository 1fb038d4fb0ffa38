"""Compare methods against a reference: errors per state, spike timing, wall time, figures."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import ModelError
from ..solvers import registry
from ..solvers.driver import default_output_dt, resolve_model, solve
from ..solvers.solution import Solution, write_atomically
from .metrics import solution_metrics


def _value(text: str):
    """An option value from text: int, float, true/false, or the text itself."""
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(text.lower(), text)


def parse_variant(spec: str) -> tuple[str, dict]:
    """``"NAME[key=value,...]"`` -> ``(NAME, {key: value})``, values read as numbers where
    they are; a plain ``"NAME"`` has no options.  Raises ModelError for malformed text."""
    match = re.fullmatch(r"\s*([\w-]+)\s*(?:\[(.*)\])?\s*", spec)
    if not match:
        raise ModelError(f"method variant {spec!r} is not NAME or NAME[key=value,...]")
    options = {}
    for item in filter(None, (x.strip() for x in (match[2] or "").split(","))):
        key, sep, value = (x.strip() for x in item.partition("="))
        if not sep or not key.isidentifier() or not value:
            raise ModelError(f"method variant {spec!r}: {item!r} is not key=value")
        if key in options:
            raise ModelError(f"method variant {spec!r}: {key!r} given twice")
        options[key] = _value(value)
    return match[1], options


def split_methods(text: str) -> list[str]:
    """Split a comma-separated list of method variants at the commas outside brackets."""
    return [m.strip() for m in re.split(r",(?![^\[]*\])", text) if m.strip()]


def variant_key(method: str, options: Mapping) -> str:
    """The name of a variant in summaries and ``metrics.json``: ``method[key=value,...]``."""
    if not options:
        return method
    return f"{method}[{','.join(f'{k}={v}' for k, v in options.items())}]"


def setup(solution: Solution) -> dict:
    """How a solution was made: method, integrator (reference) or scheme (split-PINN), the
    output spacing ``dt`` and the method's own fixed step where it has one (``step``)."""
    meta, solver = solution.meta, solution.meta.get("solver", {})
    out = {"method": meta.get("method"), "dt": meta.get("dt")}
    for key in ("integrator", "scheme", "trainer", "rtol", "atol"):
        if solver.get(key) is not None:
            out[key] = solver[key]
    if solver.get("dt") is not None:
        out["step"] = solver["dt"]
    return out


def discretisation(solution: Solution) -> str | None:
    """The fixed time discretisation whose error a solution carries, for fractional models:
    the reference's ``l2-1sigma``, ``l1`` or ``adams`` scheme, or the L2-1σ relation in
    split-PINN's residual when its plan does not split (a split plan adds its splitting
    error), with its step.  None where the method's own error control decides (integer
    order), for split plans and for the vanilla PINN."""
    meta = solution.meta
    if not any(a < 1 for a in meta.get("orders", {}).values()):
        return None
    info = setup(solution)
    step = info.get("step", info.get("dt"))
    unsplit = len(meta.get("solver", {}).get("plan", {}).get("subproblems", ())) == 1
    scheme = {"reference": info.get("integrator", "l2-1sigma"),
              "split-pinn": "l2-1sigma" if unsplit else None}.get(info["method"])
    if scheme is None or step is None:
        return None
    return f"{scheme}, step {step:g} ms"


def _describe(solution: Solution) -> str:
    """``setup`` as text: ``integrator adams, dt 0.0025 ms`` (the step only where it is not
    the output spacing)."""
    info = setup(solution)
    if info.get("step") == info.get("dt"):
        info.pop("step", None)
    return ", ".join(f"{k} {v:g}{' ms' if k in ('dt', 'step') else ''}"
                     if isinstance(v, float) else f"{k} {v}"
                     for k, v in info.items() if k != "method" and v is not None)


@dataclass
class Comparison:
    """Solutions of several methods (or method variants) on one problem and their metrics
    against the first, keyed by the variant's name."""

    model: str
    reference: str
    solutions: dict[str, Solution]
    metrics: dict[str, dict]
    #: the model's parameter values with the preset (figure titles show what differs)
    defaults: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict:
        """The ``metrics.json`` document of the command-line contract, with each method's
        ``setup`` (see :func:`setup`)."""
        methods = {k: {**m, "setup": setup(self.solutions[k])} for k, m in self.metrics.items()}
        return {"model": self.model, "reference": self.reference, "methods": methods}

    def warnings(self) -> list[str]:
        """One line per method under test that shares the reference's discretisation: its
        agreement with the reference is not its error against the true solution."""
        shared = discretisation(self.solutions[self.reference])
        if shared is None:
            return []
        return [f"warning: {k} shares the reference's discretisation ({shared}): its error is "
                "agreement with the same scheme, not error against the true solution; add an "
                "independent reference, e.g. reference[integrator=adams,dt=<dt/4>], first"
                for k, sol in self.solutions.items()
                if k != self.reference and discretisation(sol) == shared]

    def summary(self) -> str:
        """A plain-text table (method, rel. L2 of the first state, spikes, time, setup) under
        a line naming the reference, then the warnings."""
        ref = self.solutions[self.reference]
        first = ref.names[0]
        width = max(14, *map(len, self.metrics))
        lines = [f"errors against the first method, {self.reference} ({_describe(ref)})",
                 f"{'method':{width}s} {'rel L2(' + first + ')':>14s} {'spikes':>7s} "
                 f"{'max spike err (ms)':>19s} {'wall (s)':>9s}  setup"]
        for method, m in self.metrics.items():
            err = m["max_spike_time_error_ms"]
            lines.append(f"{method:{width}s} {m['rel_l2'][first]:14.3e} {m['spike_count']:7d} "
                         f"{'-' if err is None else f'{err:.3e}':>19s} {m['wall_time_s']:9.2f}"
                         f"  {_describe(self.solutions[method])}")
        return "\n".join(lines + self.warnings())


def compare(model, methods: Sequence[str | tuple[str, Mapping]], t_end: float,
            dt: float | None = None, *, parameters: Mapping[str, float] | None = None,
            initial: Mapping[str, float] | None = None, preset: str | None = None,
            stimulus=None, quiet: bool = True,
            options: Mapping[str, dict] | None = None) -> Comparison:
    """Solve with every method variant in ``methods`` (the first is the reference) and compute
    :func:`solution_metrics` of each against it.

    A variant is a method name, ``"NAME[key=value,...]"`` (e.g.
    ``"reference[integrator=adams,dt=0.0025]"``) or a pair ``(NAME, {key: value})``; its
    options go to :func:`splitpinn.solve` (``dt`` sets that variant's own step and grid), and
    its name in the results is the string (or :func:`variant_key` of the pair).  ``options``
    maps a method name to options for all its variants (a variant's own options win).
    Without ``dt`` every variant uses :func:`splitpinn.solvers.driver.default_output_dt` of the
    model, so all share one grid.  ``stimulus`` overrides the model's I_ext for every solve.

    Returns a :class:`Comparison`; raises ModelError for fewer than two methods, malformed or
    repeated variants, an
    unknown option, array-valued parameters (a batch) and what :func:`splitpinn.solve`
    raises."""
    if len(methods) < 2:
        raise ModelError("compare needs at least two methods, the reference first")
    model = resolve_model(model)
    if stimulus is not None:
        model = model.with_stimulus(stimulus)
    batch = [k for k, v in {**(parameters or {}), **(initial or {})}.items() if np.ndim(v) > 0]
    if batch:
        raise ModelError(f"compare solves one neuron: {', '.join(map(str, batch))} must be a "
                         "single value, not an array")
    variants = {}
    for spec in methods:
        if isinstance(spec, str):
            key, (method, own) = spec.strip(), parse_variant(spec)
        else:
            method, own = spec[0], dict(spec[1])
            key = variant_key(method, own)
        if key in variants:
            raise ModelError(f"method variant {key!r} given twice")
        variants[key] = (method, {**(options or {}).get(method, {}), **own})
        registry.check_options("method", method, [k for k in variants[key][1] if k != "dt"])
    if dt is None:
        dt = default_output_dt(model.bind(parameters, initial, preset))
    solutions = {}
    for key, (method, opts) in variants.items():
        step = opts.pop("dt", dt)
        solutions[key] = solve(model, method, t_end, step, parameters=parameters,
                               initial=initial, preset=preset, quiet=quiet, **opts)
    reference = next(iter(variants))
    metrics = {k: solution_metrics(solutions[reference], s) for k, s in solutions.items()}
    return Comparison(model.name, reference, solutions, metrics,
                      model.resolve_parameters(preset))


def write_comparison(comparison: Comparison, out: str | Path) -> None:
    """Write ``metrics.json``, ``traces.png``, ``error.png`` and ``raster.png`` into ``out``."""
    from .plotting import plot_comparison, save_figure

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    figures = plot_comparison(comparison)
    text = json.dumps(comparison.to_json(), indent=2)
    write_atomically(out / "metrics.json", lambda f: f.write(text.encode()))
    for name, fig in figures.items():
        save_figure(fig, out / f"{name}.png")
