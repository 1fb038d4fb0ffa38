"""Write docs/API.md from the docstrings and signatures of the public API.

    .venv/bin/python docs/make_api.py          # rewrite docs/API.md
    .venv/bin/python docs/make_api.py --check  # exit 1 if docs/API.md is out of date
"""

from __future__ import annotations

import importlib
import inspect
import sys
from pathlib import Path

MODULES = [
    "splitpinn.api", "splitpinn.model", "splitpinn.stimulus", "splitpinn.functions",
    "splitpinn.models", "splitpinn.splitting", "splitpinn.subsolvers", "splitpinn.events",
    "splitpinn.marching",
    "splitpinn.reference", "splitpinn.fractional_reference", "splitpinn.fractional",
    "splitpinn.fractional_memory", "splitpinn.compare", "splitpinn.baselines",
    "splitpinn.solution", "splitpinn.plotting", "splitpinn.cli",
]
OUT = Path(__file__).with_name("API.md")


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


def _signature(obj) -> str:
    try:
        return str(inspect.signature(obj))
    except (TypeError, ValueError):
        return "(...)"


def render() -> str:
    lines = ["# splitpinn API", "",
             "Generated from the docstrings by `docs/make_api.py`; `make test` checks that it is "
             "current.", ""]
    for module_name in MODULES:
        module = importlib.import_module(module_name)
        lines += [f"## `{module_name}`", "", inspect.getdoc(module) or "", ""]
        for name, obj in public_members(module):
            kind = "class" if inspect.isclass(obj) else "def"
            lines += [f"### {kind} `{name}{_signature(obj)}`", "", inspect.getdoc(obj) or "", ""]
            if inspect.isclass(obj):
                for meth_name, meth in vars(obj).items():
                    if meth_name.startswith("_") or not callable(meth):
                        continue
                    summary = (inspect.getdoc(meth) or "").split("\n")[0]
                    lines.append(f"- `{name}.{meth_name}{_signature(meth)}`: {summary}")
                lines.append("")
    return "\n".join(lines).rstrip() + "\n"


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
