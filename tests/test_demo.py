"""`make demo` (the README's first command) compares three methods on HH and writes figures.

Run here with a short interval and few vanilla-PINN iterations; the target is the same."""

import json
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(not (ROOT / ".venv" / ".installed").exists() or not shutil.which("make"),
                    reason="needs the project's .venv made by `make install`")
def test_make_demo_writes_metrics_and_figures(tmp_path):
    out = tmp_path / "demo"
    run = subprocess.run(["make", "-s", "demo", f"DEMO_DIR={out}", "DEMO_T_END=2",
                          "DEMO_ITERATIONS=30"], cwd=ROOT, capture_output=True, text=True,
                         timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["methods"]) == {"reference", "split-pinn", "vanilla-pinn"}
    assert metrics["methods"]["split-pinn"]["rel_l2"]["V"] < 1e-4
    for name in ("traces", "error", "raster"):
        png = (out / f"{name}.png").read_bytes()
        assert png.startswith(b"\x89PNG") and len(png) > 10_000
