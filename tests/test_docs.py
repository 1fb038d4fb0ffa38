"""Documentation stays in step with the code: every public name has a docstring, and
docs/API.md is what docs/make_api.py generates."""

import importlib.util
import inspect
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _make_api():
    spec = importlib.util.spec_from_file_location("make_api", ROOT / "docs" / "make_api.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


MAKE_API = _make_api()


@pytest.mark.parametrize("module_name", MAKE_API.MODULES)
def test_public_names_have_docstrings(module_name):
    module = importlib.import_module(module_name)
    assert inspect.getdoc(module), f"{module_name} has no module docstring"
    missing = [name for name, obj in MAKE_API.public_members(module) if not inspect.getdoc(obj)]
    assert not missing, f"{module_name}: no docstring for {', '.join(missing)}"


def test_api_page_is_current():
    assert (ROOT / "docs" / "API.md").read_text() == MAKE_API.render(), \
        "docs/API.md is out of date: run .venv/bin/python docs/make_api.py"
