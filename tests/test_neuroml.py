"""NeuroML2 cells: the regular-spiking izhikevich2007Cell with a pulse input spikes when the same
model declared in Python does; every supported cell type loads and fires; integrate-and-fire
cells fire at the closed-form rate; bad files are errors naming the problem."""

from pathlib import Path

import numpy as np
import pytest
import sympy as sp

import splitpinn
from splitpinn import Event, I_ext, Model, State, stimulus
from splitpinn.cli import main
from splitpinn.errors import ModelError
from splitpinn.io.modelfile import load, loads, show

DATA = Path(__file__).parent / "data"


def _izhikevich_2007_rs() -> Model:
    """Izhikevich (2007), Dynamical Systems in Neuroscience, the RS neuron (pF, mV, ms, pA):
    C v' = k(v − v_r)(v − v_t) − u + I, u' = a(b(v − v_r) − u); v ≥ v_peak → v = c, u += d."""
    v, u, C, k, vr, vt, vpeak, a, b, c, d, I = sp.symbols(
        "v u C k vr vt vpeak a b c d I", real=True)
    return Model(
        "izhikevich-2007-rs", [State("v", -60.0), State("u", 0.0)],
        {"v": (k * (v - vr) * (v - vt) - u + I_ext) / C, "u": a * (b * (v - vr) - u)},
        dict(C=100.0, k=0.7, vr=-60.0, vt=-40.0, vpeak=35.0, a=0.03, b=-2.0, c=-50.0, d=100.0,
             I=100.0),
        stimulus=stimulus.step(I, on=10.0, off=210.0),
        events=[Event(v > vpeak, {"v": c, "u": u + d})])


def test_izhikevich_2007_rs_cell_spikes_like_the_python_model():
    cell = load(DATA / "izhikevich2007_rs.nml")
    assert cell.parameters == _izhikevich_2007_rs().parameters | {"v0": -60.0}
    ours = splitpinn.solve(cell, "reference", t_end=300.0, dt=0.05)
    python = splitpinn.solve(_izhikevich_2007_rs(), "reference", t_end=300.0, dt=0.05)
    assert len(python.spike_times) == 3
    np.testing.assert_allclose(ours.spike_times, python.spike_times, rtol=0, atol=1e-9)


@pytest.mark.parametrize("file, t_end, dt, spikes", [
    ("iaf.nml", 300.0, 0.05, 7),
    ("iaf_ref.nml", 300.0, 0.05, 9),
    ("izhikevich.nml", 150.0, 0.05, 4),
    ("izhikevich2007_rs.nml", 300.0, 0.05, 3),
    ("adex.nml", 50.0, 0.05, 2),
    ("fitzhugh_nagumo.nml", 2e5, 10.0, 6),  # its time unit is the second
])
def test_each_supported_cell_loads_and_fires(file, t_end, dt, spikes):
    solution = splitpinn.solve(str(DATA / file), "reference", t_end=t_end, dt=dt)
    assert len(solution.spike_times) == spikes


@pytest.mark.parametrize("file, refract", [("iaf.nml", 0.0), ("iaf_ref.nml", 5.0)])
def test_integrate_and_fire_cells_fire_at_the_closed_form_rate(file, refract):
    # C = 1 nF, g = 0.05 µS: tau = 20 ms; I = 1 nA: v_inf = -65 + 20 mV; reset -65, thresh -50
    solution = splitpinn.solve(str(DATA / file), "reference", t_end=200.0, dt=0.05)
    isi = 20.0 * np.log(20.0 / 5.0) + refract
    np.testing.assert_allclose(np.diff(solution.spike_times), isi, rtol=1e-8)


def test_adex_cell_equals_the_library_adex():
    cell = splitpinn.solve(str(DATA / "adex.nml"), "reference", t_end=50.0, dt=0.05)
    library = splitpinn.solve("adex", "reference", t_end=50.0, dt=0.05)
    assert len(library.spike_times) == 2
    np.testing.assert_allclose(cell.spike_times, library.spike_times, rtol=0, atol=1e-6)
    np.testing.assert_allclose(cell["w"], library["w"], rtol=0, atol=1e-6)


@pytest.mark.parametrize("file, expected", [
    ("malformed.nml", "malformed XML: line 3, column 1: error parsing attribute name"),
    ("unsupported.nml", "unsupported NeuroML element <sineGenerator> (id 'sine'"),
])
def test_bad_files_are_one_line_errors(file, expected, capsys):
    with pytest.raises(ModelError) as info:
        load(DATA / file)
    assert expected in str(info.value)
    assert main(["show", str(DATA / file)]) == 2
    err = capsys.readouterr().err
    assert expected in err and err.count("\n") == 1


def test_missing_file_and_unknown_suffix():
    with pytest.raises(ModelError, match="no such file"):
        load(DATA / "absent.nml")
    with pytest.raises(ModelError, match="expected a .toml model file or a .nml"):
        load(DATA / "iaf.xml")


@pytest.mark.parametrize("file", ["iaf_ref.nml", "izhikevich.nml", "izhikevich2007_rs.nml",
                                  "adex.nml"])
def test_cells_survive_a_model_file(file):
    cell = load(DATA / file)
    again = loads(show(cell, "toml"))
    assert again.units == cell.units and again.parameters == cell.parameters
    a = splitpinn.solve(cell, "reference", t_end=60.0, dt=0.05)
    b = splitpinn.solve(again, "reference", t_end=60.0, dt=0.05)
    assert len(a.spike_times) >= 1
    np.testing.assert_allclose(b.spike_times, a.spike_times, rtol=0, atol=1e-9)


_LONE = {  # one cell, no network, no input (issue 18: these were refused with a unit error)
    "iafCell": '<iafCell id="iaf" C="1.0nF" thresh="-50mV" reset="-70mV" '
               'leakConductance="0.05uS" leakReversal="-65mV"/>',
    "adExIaFCell": '<adExIaFCell id="adex" C="281pF" gL="30nS" EL="-70.6mV" VT="-50.4mV" '
                   'thresh="0mV" reset="-70.6mV" delT="2mV" tauw="144ms" refract="0ms" a="4nS" '
                   'b="0.0805nA"/>',
    "izhikevich2007Cell": '<izhikevich2007Cell id="rs" C="100pF" v0="-60mV" k="0.7nS_per_mV" '
                          'vr="-60mV" vt="-40mV" vpeak="35mV" a="0.03per_ms" b="-2nS" '
                          'c="-50.0mV" d="100pA"/>',
    "izhikevichCell": '<izhikevichCell id="izrs" v0="-70mV" thresh="30mV" a="0.02" b="0.2" '
                      'c="-65.0" d="6"/>',
}


def _lone(tmp_path, kind: str, cell: str | None = None) -> Path:
    path = tmp_path / f"{kind}.nml"
    path.write_text('<neuroml xmlns="http://www.neuroml.org/schema/neuroml2" id="lone">\n'
                    f'    {cell or _LONE[kind]}\n</neuroml>\n')
    return path


@pytest.mark.parametrize("kind", list(_LONE))
def test_a_lone_cell_solves_from_the_command_line_with_zero_input(kind, tmp_path, capsys):
    path, out = _lone(tmp_path, kind), tmp_path / "out.npz"
    assert main(["solve", str(path), "--method", "reference", "--t-end", "100", "--quiet",
                 "--out", str(out)]) == 0
    with np.load(out, allow_pickle=False) as data:
        assert data["spike_times"].size == 0  # no input: the cell does not fire
        assert data["t"][-1] == 100.0
    assert load(path).parameters["I"] == 0.0


def test_a_lone_iaf_cell_relaxes_and_fires_at_the_closed_form_times(tmp_path):
    path = _lone(tmp_path, "iafCell")  # tau = C/g = 20 ms, R = 20 MΩ; v0 = reset = -70 mV
    rest = splitpinn.solve(str(path), "reference", t_end=100.0, dt=0.5)
    np.testing.assert_allclose(rest["v"], -65.0 - 5.0 * np.exp(-rest.t / 20.0), atol=1e-6)
    # I = 1 nA (--set I=1): v_inf = -45 mV; from -70 to -50: T = tau ln(25/5), every ISI too
    driven = splitpinn.solve(str(path), "reference", t_end=200.0, dt=0.05,
                             parameters={"I": 1.0})
    period = 20.0 * np.log(25.0 / 5.0)
    np.testing.assert_allclose(driven.spike_times, period * np.arange(1, 7), rtol=1e-8)
    stimulated = splitpinn.solve(str(path), "reference", t_end=200.0, dt=0.05, stimulus=1.0)
    np.testing.assert_allclose(stimulated.spike_times, driven.spike_times, rtol=1e-10)


def test_a_lone_adex_cell_with_its_current_set_equals_the_library_adex(tmp_path):
    cell = splitpinn.solve(str(_lone(tmp_path, "adExIaFCell")), "reference", t_end=50.0,
                           dt=0.05, parameters={"I": 800.0})  # pA, as the library's I
    library = splitpinn.solve("adex", "reference", t_end=50.0, dt=0.05)
    np.testing.assert_allclose(cell.spike_times, library.spike_times, rtol=0, atol=1e-6)


@pytest.mark.parametrize("cell, expected", [
    ('<iafCell id="iaf" C="1.0mV" thresh="-50mV" reset="-70mV" leakConductance="0.05uS" '
     'leakReversal="-65mV"/>',
     "line 2, column 23: <iafCell id='iaf'> C: '1.0mV' should be a capacitance (e.g. 1.0pF)"),
    ('<izhikevich2007Cell id="rs" C="100pF" v0="-60mV" k="0.7nS" vr="-60mV" vt="-40mV" '
     'vpeak="35mV" a="0.03per_ms" b="-2nS" c="-50.0mV" d="100pA"/>',
     "line 2, column 54: <izhikevich2007Cell id='rs'> k: '0.7nS' should be a conductance per "
     "voltage (e.g. 0.7nS_per_mV)"),
    ('<iafCell id="iaf" C="1.0nF" thresh="-50mV" reset="-70mV" leakReversal="-65mV"/>',
     "line 2, column 5: <iafCell id='iaf'> has no attribute 'leakConductance'"),
    ('<iafCell id="iaf" C="1.0nF" thresh="-50mV" reset="-70mV" leakConductance="0.05uS" '
     'leakReversal="-65foo"/>',
     "line 2, column 87: <iafCell id='iaf'> leakReversal: '-65foo' has an unknown unit 'foo'"),
])
def test_a_bad_attribute_is_reported_at_its_place_in_the_users_file(cell, expected, tmp_path,
                                                                     capsys):
    path, out = _lone(tmp_path, "bad", cell), tmp_path / "out.npz"
    assert main(["solve", str(path), "--method", "reference", "--t-end", "100",
                 "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"{path}: {expected}" in err, err
    assert err.count("\n") == 1 and "Traceback" not in err and not out.exists()


_IAF = _LONE["iafCell"]
_PULSE = '<pulseGenerator id="drive" delay="{delay}" duration="200ms" amplitude="{amplitude}"/>'
_NET = ('<network id="net"><population id="pop" component="iaf" size="1"/>'
        '<explicitInput target="pop[0]" input="{input}"/></network>')


def _document(*elements: str) -> str:
    return ('<neuroml xmlns="http://www.neuroml.org/schema/neuroml2" id="x">\n'
            + "".join(f"    {e}\n" for e in elements) + "</neuroml>\n")


def _driven(delay="20ms", amplitude="1nA", input="drive") -> str:
    return _document(_IAF, _PULSE.format(delay=delay, amplitude=amplitude),
                     _NET.format(input=input))


@pytest.mark.parametrize("text, expected", [
    (_document(), "expected one cell of a supported type (iafCell, "),
    (_document(_IAF, _IAF.replace('id="iaf"', 'id="iaf2"')), "found 2"),
    (_driven(input="nosuch"), "line 4, column 70: input 'nosuch' is not a pulseGenerator"),
    (_driven(delay="20xs"), "line 3, column 32: <pulseGenerator id='drive'> delay: '20xs' is "
                            "not a time"),
    (_driven(delay="20mV"), "delay: '20mV' is not a time"),
    (_driven(amplitude="abc"), "amplitude: 'abc' is not a NeuroML quantity"),
    (_driven().replace(' amplitude="1nA"', ""), "<pulseGenerator id='drive'> has no attribute "
                                                "'amplitude'"),
    (_driven().replace("</network>", '<projection id="p" presynapticPopulation="pop" '
                                     'postsynapticPopulation="pop" synapse="s"/></network>'),
     "unsupported NeuroML element <projection> in network 'net'"),
    # before: loaded as one cell driven by both cells' inputs
    (_document(_IAF, _PULSE.format(delay="20ms", amplitude="1nA"),
               _PULSE.format(delay="50ms", amplitude="1nA").replace('"drive"', '"other"'),
               '<network id="net"><population id="pop" component="iaf" size="2"/>'
               '<explicitInput target="pop[0]" input="drive"/>'
               '<explicitInput target="pop/1/iaf" input="other"/></network>'),
     "line 5, column 116: inputs go to cells 0, 1 of population 'pop', but the file is loaded "
     "as one point cell"),
    ("", "malformed XML: line 1, column 1: Document is empty"),
    ("<root/>\n", "malformed XML: "),
    # before: the message was the repr of a tuple holding an OSError
    (_document("<!-- \xe9 -->", _IAF).encode("latin-1"),
     "malformed XML: Not a valid NeuroML 2 doc"),
])
def test_bad_documents_are_one_line_errors_without_output(text, expected, tmp_path, capsys):
    path, out = tmp_path / "cell.nml", tmp_path / "out.npz"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(ModelError) as info:
        load(path)
    assert expected in str(info.value) and "\n" not in str(info.value)
    assert main(["solve", str(path), "--method", "reference", "--t-end", "5",
                 "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"{path}: " in err and expected in err, err
    assert err.count("\n") == 1 and "OSError(" not in err and not out.exists()
