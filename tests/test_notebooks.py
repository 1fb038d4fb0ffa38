"""Execute every notebook in notebooks/ top to bottom.

Each notebook reads ``SPLITPINN_SMALL=1`` from the environment (inherited by the kernel) and
shortens its runs; its last cell asserts the physics it showed, so a notebook that runs but
shows the wrong thing fails too.  ``test_notebook_runs`` executes them with small settings (part
of ``make test``).  ``test_notebook_runs_at_full_settings`` executes them as a user would, with
``SPLITPINN_SMALL`` unset; it takes minutes per notebook, so it runs only when
``SPLITPINN_FULL_NOTEBOOKS=1`` is set (``make notebooks`` does the same with nbconvert).
Notebooks are executed in memory in a temporary working directory and never written back.  A
last test checks that the committed notebooks carry no outputs or execution counts.
"""

import os
import re
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
CELL_TIMEOUT_S = 300            # small settings
FULL_CELL_TIMEOUT_S = 3600      # full settings
KERNEL = "python3"
ANSI = re.compile(r"\x1b\[[0-9;]*m")
FULL = os.environ.get("SPLITPINN_FULL_NOTEBOOKS") == "1"


def test_notebooks_present():
    names = [p.name for p in NOTEBOOKS]
    assert names == ["01_quick_start.ipynb", "02_hodgkin_huxley.ipynb",
                     "03_fractional_memory.ipynb", "04_your_own_model.ipynb",
                     "05_sweeps_and_fi_curves.ipynb", "06_spiking_networks.ipynb",
                     "07_fitting.ipynb"], f"the notebooks in {NOTEBOOK_DIR}: {names}"


def _execute(path: Path, workdir: Path, timeout: int) -> None:
    before = path.read_bytes()
    nb = nbformat.reads(before.decode("utf-8"), as_version=4)
    client = nbclient.NotebookClient(
        nb, kernel_name=KERNEL, timeout=timeout, allow_errors=False,
        resources={"metadata": {"path": str(workdir)}})
    try:
        client.execute()
    except nbclient.exceptions.CellExecutionError as exc:
        text = ANSI.sub("", str(exc))  # the kernel colours its tracebacks
        pytest.fail(f"{path.name}: a cell raised\n{text}", pytrace=False)
    assert path.read_bytes() == before, f"{path.name} was modified on disk"


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs(path, tmp_path, monkeypatch):
    monkeypatch.setenv("SPLITPINN_SMALL", "1")  # the kernel inherits os.environ
    _execute(path, tmp_path, CELL_TIMEOUT_S)


@pytest.mark.slow
@pytest.mark.skipif(not FULL, reason="full-settings notebooks: set SPLITPINN_FULL_NOTEBOOKS=1 "
                                     "(minutes per notebook; or run `make notebooks`)")
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs_at_full_settings(path, tmp_path, monkeypatch):
    monkeypatch.delenv("SPLITPINN_SMALL", raising=False)
    _execute(path, tmp_path, FULL_CELL_TIMEOUT_S)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_committed_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        assert cell.outputs == [], f"{path.name}: cell {index} has outputs"
        assert cell.execution_count is None, f"{path.name}: cell {index} has an execution count"
