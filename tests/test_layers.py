"""The layer contract (tests/check_layers.py, run by ``make lint``): the package keeps it, and
the check catches what it should (an upward import, a cycle, an import inside a function)."""

import ast
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import check_layers  # noqa: E402


def test_the_package_keeps_its_layers_and_has_no_import_cycle():
    assert check_layers.violations() == []


def test_the_layers_are_in_pipeline_order():
    assert check_layers.layer("splitpinn.declare.model") > check_layers.layer(
        "splitpinn.numeric.bound") > check_layers.layer("splitpinn.solvers.marching") > \
        check_layers.layer("splitpinn.analysis.sweep") > check_layers.layer(
        "splitpinn.io.neuroml") > check_layers.layer("splitpinn.api")


def test_cycles_are_found():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert check_layers.cycles(graph) == [["a", "b", "c"]]
    assert check_layers.cycles({"a": {"b"}, "b": set()}) == []


def test_an_import_inside_a_function_counts(tmp_path):
    """A function-level import of a higher layer is an edge; one under TYPE_CHECKING is not."""
    source = tmp_path / "bound.py"
    source.write_text("from typing import TYPE_CHECKING\n"
                      "if TYPE_CHECKING:\n    from ..analysis import sweep\n"
                      "def f():\n    from ..solvers.marching import march\n")
    known = {"splitpinn.numeric.bound": source, "splitpinn.solvers.marching": source,
             "splitpinn.analysis.sweep": source}
    found = check_layers.imports("splitpinn.numeric.bound", source, known)
    assert found == {"splitpinn.solvers.marching"}
    assert ast.parse(source.read_text())  # the sample is valid Python
