"""Execute every notebook in notebooks/ top to bottom, with small settings.

Each notebook reads ``SPLITPINN_SMALL=1`` from the environment (inherited by the kernel) and
shortens its runs; its last cell asserts the physics it showed, so a notebook that runs but
shows the wrong thing fails too.  Notebooks are executed in memory in a temporary working
directory and never written back.  A second test checks that the committed notebooks carry no
outputs or execution counts.
"""

import re
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
CELL_TIMEOUT_S = 300
KERNEL = "python3"
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def test_notebooks_present():
    assert len(NOTEBOOKS) >= 4, f"expected the four notebooks in {NOTEBOOK_DIR}"


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs(path, tmp_path, monkeypatch):
    monkeypatch.setenv("SPLITPINN_SMALL", "1")  # the kernel inherits os.environ
    before = path.read_bytes()
    nb = nbformat.reads(before.decode("utf-8"), as_version=4)
    client = nbclient.NotebookClient(
        nb, kernel_name=KERNEL, timeout=CELL_TIMEOUT_S, allow_errors=False,
        resources={"metadata": {"path": str(tmp_path)}})
    try:
        client.execute()
    except nbclient.exceptions.CellExecutionError as exc:
        text = ANSI.sub("", str(exc))  # the kernel colours its tracebacks
        pytest.fail(f"{path.name}: a cell raised\n{text}", pytrace=False)
    assert path.read_bytes() == before, f"{path.name} was modified on disk"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_committed_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        assert cell.outputs == [], f"{path.name}: cell {index} has outputs"
        assert cell.execution_count is None, f"{path.name}: cell {index} has an execution count"
