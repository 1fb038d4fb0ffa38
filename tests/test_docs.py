"""Documentation stays in step with the code: every name a docstring refers to exists, and
docs/API.md is what docs/make_api.py generates."""

import builtins
import importlib
import importlib.util
import inspect
import pkgutil
import re
from pathlib import Path

import pytest

import splitpinn

ROOT = Path(__file__).resolve().parents[1]


def _make_api():
    spec = importlib.util.spec_from_file_location("make_api", ROOT / "docs" / "make_api.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


MAKE_API = _make_api()

#: Every module of the package, sub-packages and the mapped folders (models/, fractional/)
#: included.
MODULES = sorted({m.name for package in [splitpinn, *map(importlib.import_module,
                                                          MAKE_API.MAPPED)]
                  for m in pkgutil.walk_packages(package.__path__, package.__name__ + ".")
                  if not m.name.endswith("__main__")}  # python -m splitpinn, as make_api
                 | set(MAKE_API.MAPPED) | {"splitpinn"})

#: A Sphinx cross-reference, ``:func:`~splitpinn.x.y```, ``:meth:`Class.method```, ...
ROLE = re.compile(r":(?:func|class|meth|mod|attr|data|exc|obj):`~?([^`]+)`")
#: A name in single backticks (the fractional package writes its references so).
TICKED = re.compile(r"(?<![`\w:])`([A-Za-z_]\w*(?:\.\w+)*)`(?!`)")


def _attribute(obj, name: str):
    """``getattr(obj, name)``, or, for a class, one of its instance attributes (annotated, or
    set as ``self.name`` in its source) as ``True``; AttributeError if none."""
    try:
        return getattr(obj, name)
    except AttributeError:
        if inspect.isclass(obj) and (
                name in getattr(obj, "__annotations__", {})
                or re.search(rf"self\.{name}\b\s*(:[^=]*)?=", inspect.getsource(obj))):
            return True
        raise


def _resolves(name: str, module, owner=None) -> bool:
    """Whether ``name`` (the target of ``title <target>`` where given) names something: a
    dotted path from an importable module, or a name in ``owner`` (a class), ``module``, its
    package, the splitpinn package or the builtins."""
    name = name.rpartition("<")[2].rstrip(">") if name.rstrip().endswith(">") else name
    parts = "".join(name.split()).removesuffix("()").split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        try:
            for part in parts[i:]:
                obj = _attribute(obj, part)
            return True
        except AttributeError:
            break
    package = importlib.import_module(module.__name__.rpartition(".")[0] or module.__name__)
    for base in [owner, module, package, splitpinn, builtins]:
        obj = base
        try:
            for part in parts:
                obj = _attribute(obj, part)
            return True
        except AttributeError:
            continue
    return False


def _docstrings(module):
    """(where, docstring, owning class or None) of the module and of everything defined in it:
    functions, classes and their methods and properties."""
    yield module.__name__, module.__doc__, None
    for name, obj in list(vars(module).items()):
        if not (inspect.isclass(obj) or inspect.isfunction(obj)) or \
                getattr(obj, "__module__", None) != module.__name__:
            continue
        owner = obj if inspect.isclass(obj) else None
        yield f"{module.__name__}.{name}", obj.__doc__, owner
        for member, value in list(vars(obj).items()) if owner else ():
            function = value.fget if isinstance(value, property) else \
                getattr(value, "__func__", value)
            if inspect.isfunction(function):
                yield f"{module.__name__}.{name}.{member}", function.__doc__, owner


def _dangling(module_name: str) -> list[str]:
    module = importlib.import_module(module_name)
    found = []
    for where, doc, owner in _docstrings(module):
        for pattern in (ROLE, TICKED):
            found += [f"{where}: {m[0]}" for m in pattern.finditer(doc or "")
                      if not _resolves(m[1], module, owner)]
    return found


@pytest.mark.parametrize("module_name", MODULES)
def test_docstrings_refer_to_names_that_exist(module_name):
    """A cross-reference in a docstring (:func:`x`, :class:`x`, `name`, ...) names a module,
    class, function, method or attribute that exists: removing or renaming one means
    rewriting the text that points at it."""
    assert not _dangling(module_name)


def test_the_check_finds_a_dangling_reference():
    module = type(splitpinn)("splitpinn.fake")
    module.__doc__ = ("Uses :func:`splitpinn.fractional.caputo_l1` and `graded_mesh`, not "
                      ":func:`~splitpinn.fractional.caputo_l1_torch` or `no_such_thing`.")
    module.graded_mesh = object()
    found = [m[1] for p in (ROLE, TICKED) for m in p.finditer(module.__doc__)
             if not _resolves(m[1], module)]
    assert found == ["splitpinn.fractional.caputo_l1_torch", "no_such_thing"]


def test_the_api_page_lists_every_module():
    """The internals part covers the sub-packages' modules (walked, not just the top level)."""
    assert {m for m in MODULES if m.startswith("splitpinn.")
            and not m.startswith(("splitpinn.models.", "splitpinn.fractional."))} \
        <= set(MAKE_API.MODULES)


def test_api_page_is_current():
    assert (ROOT / "docs" / "API.md").read_text() == MAKE_API.render(), \
        "docs/API.md is out of date: run .venv/bin/python docs/make_api.py"
