"""Results out of a solve: DataFrame, CSV and npz files by suffix, meta with version and units,
``splitpinn.plotting`` without an import of its own."""

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import splitpinn
from splitpinn import cli
from splitpinn.errors import ModelError


@pytest.fixture(scope="module")
def izh():
    return splitpinn.solve("izhikevich", "reference", 60.0, 0.05, parameters={"I": 12.0})


def test_to_dataframe_round_trips(izh):
    frame = izh.to_dataframe()
    assert list(frame.columns) == ["v", "u"] and frame.index.name == "t"
    np.testing.assert_array_equal(frame.index.to_numpy(), izh.t)
    np.testing.assert_array_equal(frame.to_numpy().T, izh.y)
    back = splitpinn.Solution(frame.index.to_numpy(), frame.to_numpy().T, list(frame.columns),
                              izh.spike_times, izh.meta)
    np.testing.assert_array_equal(back["u"], izh["u"])


def test_meta_holds_version_and_units(izh):
    assert izh.meta["version"] == splitpinn.__version__
    assert izh.meta["units"]["v"] == "mV" and izh.meta["units"]["I"] == "mV/ms"
    assert set(izh.meta["units"]) == {"v", "u", "a", "b", "c", "d", "I"}


def test_csv_round_trip_exact(izh, tmp_path):
    path = tmp_path / "izh.csv"
    izh.save(path)
    lines = path.read_text().splitlines()
    assert lines[0].startswith("# spike_times_ms: ") and lines[1].startswith("# meta: {")
    assert lines[2].startswith("# events: [[")
    assert lines[3] == "t,v,u"
    table = pd.read_csv(path, comment="#")  # the table alone, as pandas reads it
    np.testing.assert_array_equal(table["v"].to_numpy(), izh["v"])
    back = splitpinn.Solution.load(path)
    assert back.names == ["v", "u"] and back.meta == json.loads(json.dumps(izh.meta))
    np.testing.assert_array_equal(back.t, izh.t)
    np.testing.assert_array_equal(back.y, izh.y)
    assert len(izh.spike_times) >= 2
    np.testing.assert_array_equal(back.spike_times, izh.spike_times)


def test_files_without_event_records_still_load(izh, tmp_path):
    """Files written before the events were kept (npz without the event arrays, CSV with two
    comment lines) load as before, with no events."""
    npz, csv = tmp_path / "old.npz", tmp_path / "old.csv"
    np.savez(npz, t=izh.t, **izh.states, spike_times=izh.spike_times,
             meta=np.array(json.dumps(izh.meta)))
    izh.save(csv)
    lines = csv.read_text().splitlines()
    csv.write_text("\n".join(lines[:2] + lines[3:]) + "\n")
    for path in (npz, csv):
        back = splitpinn.Solution.load(path)
        assert back.events == [] and back.names == ["v", "u"]
        np.testing.assert_array_equal(back.y, izh.y)
        np.testing.assert_array_equal(back.spike_times, izh.spike_times)


@pytest.mark.parametrize("name, content", [
    ("text.npz", b"not a zip"), ("broken.npz", b"PK\x03\x04 truncated"),
    ("empty.csv", b""), ("table.csv", b"t,V\n0,1\n"), ("latin.csv", b"# \xe9\xe9\n")])
def test_load_refuses_files_that_save_did_not_write(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ModelError, match="is not a solution saved by splitpinn") as info:
        splitpinn.Solution.load(path)
    assert "\n" not in str(info.value)


def test_load_refuses_an_npz_of_other_arrays(tmp_path):
    path = tmp_path / "other.npz"
    np.savez(path, x=np.arange(3))
    with pytest.raises(ModelError, match="is not a solution saved by splitpinn.*meta"):
        splitpinn.Solution.load(path)


def test_save_refuses_other_suffixes(izh, tmp_path):
    with pytest.raises(ModelError, match=r"'x\.txt': the file name must end in \.npz or \.csv"):
        izh.save(tmp_path / "x.txt")
    assert list(tmp_path.iterdir()) == []


def test_cli_out_by_suffix(tmp_path, capsys):
    for suffix in (".npz", ".csv"):
        out = tmp_path / f"lif{suffix}"
        status = cli.main(["solve", "lif", "--method", "reference", "--t-end", "20", "--quiet",
                           "--out", str(out)])
        assert status == 0, capsys.readouterr().err
        sol = splitpinn.Solution.load(out)
        assert sol.names == ["V"] and len(sol.spike_times) == 1
    status = cli.main(["solve", "lif", "--method", "reference", "--t-end", "20", "--quiet",
                       "--out", str(tmp_path / "lif.json")])
    err = capsys.readouterr().err
    assert status == 2 and "must end in .npz or .csv" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "lif.json").exists()


def test_cli_models_verbose_shows_defaults_with_units(capsys):
    assert cli.main(["models", "--verbose"]) == 0
    out = capsys.readouterr().out
    assert "g_Na=120 mS/cm², g_K=36 mS/cm²" in out and "tau=10 ms, R=10 MΩ" in out


def test_plotting_needs_no_import_of_its_own():
    code = "import splitpinn; print(callable(splitpinn.plotting.plot_solution))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "True"
