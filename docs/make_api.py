"""Write docs/API.md from the docstrings and signatures of the package.

    .venv/bin/python docs/make_api.py          # rewrite docs/API.md
    .venv/bin/python docs/make_api.py --check  # exit 1 if docs/API.md is out of date

The page has two parts: the user API (:data:`USER_API`: what a user calls, with full
docstrings) and, listed apart, the internals (every other public name of every module, one line
each) for contributors.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import sys
from pathlib import Path

#: The user API, module by module, in the order of the page.  Every other public name of the
#: package is an internal and is listed apart.
USER_API = {
    "splitpinn.solvers.driver": ["solve", "default_output_dt"],
    "splitpinn.declare.model": ["Model"],
    "splitpinn.declare.parts": ["State", "Event", "SpikeDetector"],
    "splitpinn.models": ["get", "names"],
    "splitpinn.declare.stimulus": ["constant", "step", "pulse_train", "sinusoid", "sampled",
                                   "read_csv", "breakpoints"],
    "splitpinn.solvers.solution": ["Solution", "Batch"],
    "splitpinn.analysis.compare": ["compare", "Comparison", "write_comparison", "parse_variant",
                                   "variant_key", "setup", "discretisation"],
    "splitpinn.analysis.metrics": ["solution_metrics", "match_spikes"],
    "splitpinn.analysis.plotting": ["plot_solution", "plot_traces", "plot_errors", "plot_raster",
                           "plot_comparison", "save_figure", "method_colours", "run_title"],
    "splitpinn.solvers.splitting": ["plan", "Plan"],
    "splitpinn.analysis.discretise": ["discretise", "DiscreteMap"],
    "splitpinn.analysis.sweep": ["sweep", "SweepResult"],
    "splitpinn.analysis.fi": ["fi_curve", "FICurve"],
    "splitpinn.analysis.latency": ["latency", "LatencyResult"],
    "splitpinn.analysis.fit": ["fit", "FitResult", "read_data", "plot_fit"],
    "splitpinn.analysis.spike_trains": ["van_rossum_loss", "gamma_loss", "gamma_factor"],
    "splitpinn.io.modelfile": ["load", "loads", "to_toml", "to_latex", "to_brian2"],
    "splitpinn.io.neuroml": ["load_cell"],
    "splitpinn.errors": ["ModelError", "SolverError"],
}
#: Packages installed under ``splitpinn`` from top-level folders (not found by walking it).
MAPPED = ["splitpinn.models", "splitpinn.fractional"]
OUT = Path(__file__).with_name("API.md")


def _modules() -> list[str]:
    import splitpinn

    found = [m.name for m in pkgutil.walk_packages(splitpinn.__path__, "splitpinn.")
             if not m.name.endswith("__main__")]
    return [*USER_API, *sorted(set(found + MAPPED) - set(USER_API))]


#: Every documented module: the user API's first, then the others in alphabetical order.
MODULES = _modules()


def public_members(module):
    """Public classes and functions defined in ``module`` (or re-exported by a package)."""
    names = getattr(module, "__all__", None) or [n for n in vars(module) if not n.startswith("_")]
    for name in names:
        obj = getattr(module, name)
        if not (inspect.isclass(obj) or inspect.isfunction(obj)):
            continue
        home = getattr(obj, "__module__", "")
        if home == module.__name__ or (hasattr(module, "__all__") and
                                       home.startswith(module.__name__)):
            yield name, obj


class _Text(str):
    """An annotation kept as text (``from __future__ import annotations``), shown unquoted."""

    def __repr__(self) -> str:
        return str(self)


def _signature(obj, method: bool = False) -> str:
    """``(a: int, b: str = 'x') -> float``; a method's without its ``self`` or ``cls``."""
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return "(...)"
    params = list(sig.parameters.values())[1 if method else 0:]

    def text(annotation):
        return _Text(annotation) if isinstance(annotation, str) else annotation

    def default(value):
        # a module's repr names its path on this machine: show its name, the same everywhere
        return _Text(value.__name__) if inspect.ismodule(value) else value

    return str(sig.replace(parameters=[p.replace(annotation=text(p.annotation),
                                                 default=default(p.default)) for p in params],
                           return_annotation=text(sig.return_annotation)))


def _summary(obj) -> str:
    return (inspect.getdoc(obj) or "").split("\n\n")[0].replace("\n", " ")


def _members(cls) -> list[str]:
    """One line per public method and property of ``cls`` (and ``obj[key]`` where the class
    documents ``__getitem__``)."""
    lines = []
    for name, member in vars(cls).items():
        if isinstance(member, property):
            if not name.startswith("_"):
                lines.append(f"- `{cls.__name__}.{name}` (property): {_summary(member)}")
            continue
        func = getattr(member, "__func__", member)  # classmethod, staticmethod
        if not inspect.isfunction(func):
            continue
        if name == "__getitem__" and inspect.getdoc(func):
            lines.append(f"- `{cls.__name__}[key]`: {_summary(func)}")
        elif not name.startswith("_"):
            bound = not isinstance(member, staticmethod)
            lines.append(f"- `{cls.__name__}.{name}{_signature(func, bound)}`: "
                         f"{_summary(func)}")
    return lines


def _user_part() -> list[str]:
    lines = ["## User API", ""]
    for module_name, names in USER_API.items():
        module = importlib.import_module(module_name)
        members = dict(public_members(module))
        missing = [n for n in names if n not in members]
        if missing:
            raise RuntimeError(f"USER_API lists {', '.join(missing)}, which {module_name} "
                               "does not define")
        lines += [f"### `{module_name}`", "", inspect.getdoc(module) or "", ""]
        for name in names:
            obj = members[name]
            kind = "class" if inspect.isclass(obj) else "def"
            lines += [f"#### {kind} `{name}{_signature(obj)}`", "", inspect.getdoc(obj) or "", ""]
            if inspect.isclass(obj):
                lines += [*_members(obj), ""]
    return lines


def _internal_part() -> list[str]:
    lines = ["## Internals", "",
             "For contributors: the other public names of each module, which a user does not "
             "need (their docstrings hold the details).", ""]
    for module_name in MODULES:
        module = importlib.import_module(module_name)
        user = set(USER_API.get(module_name, ()))
        rest = [(n, obj) for n, obj in public_members(module) if n not in user]
        if not rest:
            continue
        lines += [f"### `{module_name}`", ""]
        if module_name not in USER_API:
            lines += [_summary(module), ""]
        lines += [f"- {'class' if inspect.isclass(obj) else 'def'} `{n}{_signature(obj)}`: "
                  f"{_summary(obj)}" for n, obj in rest]
        lines.append("")
    return lines


def render() -> str:
    """The text of docs/API.md."""
    lines = ["# splitpinn API", "",
             "Generated from the docstrings by `docs/make_api.py`; `make test` checks that it is "
             "current. The user API comes first; the internals are listed apart at the end.", ""]
    return "\n".join(lines + _user_part() + _internal_part()).rstrip() + "\n"


def main() -> int:
    text = render()
    if "--check" in sys.argv:
        if not OUT.exists() or OUT.read_text() != text:
            print("docs/API.md is out of date: run .venv/bin/python docs/make_api.py",
                  file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
