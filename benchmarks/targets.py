"""The targets of issue 20: split-PINN against plain peers, one markdown table.

Each row times split-PINN ("ours", the package's defaults) and a peer written here or taken from
another simulator, on the same problem, and compares their spike times with a truth:

* single neurons: a plain scipy ``solve_ivp(method="DOP853", rtol=atol=1e-10)`` written here,
  resets root-found by ``events=`` (terminal: apply the reset, restart; refractory periods held);
  truth: the same solve at rtol = atol = 1e-12;
* HH, one neuron: NEURON's CVode (single compartment, ``hh`` mechanism) at the loosest ``atol``
  whose spike times are as accurate as ours;
* 1000 HH neurons and the 20-neuron feedback IF network: Brian2 2.9, numpy target, dt 0.01 ms;
* fractional: the L2-1σ and L1 references; first solve of a new model in fresh processes.

Wall times are medians over ``--repeats`` runs in this one process, each after an untimed
warm-up solve (numba compiles or loads its code there), except the first-solve row.

    .venv/bin/python benchmarks/targets.py               # the table (idle machine, minutes)
    .venv/bin/python benchmarks/targets.py --quick       # short intervals, small batches
    .venv/bin/python benchmarks/targets.py --only brian2 # rows whose name contains "brian2"
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import sympy as sp
from scipy.integrate import solve_ivp

import splitpinn
from splitpinn.analysis.networks import feedback_equilibrium, if_neuron
from splitpinn.declare.stimulus import sinusoid
from splitpinn.numeric.bound import bind
from splitpinn.solvers.driver import resolve_model

ROOT = Path(__file__).resolve().parent.parent
PEER_TOL, TRUTH_TOL = 1e-10, 1e-12
SPIKE_TOL = 1e-4  # ms: split-PINN's spikes against the truth


def wang_buzsaki() -> splitpinn.Model:
    """Wang & Buzsáki (1996) interneuron, declared here (not in the library): transient Na with
    instantaneous activation, delayed-rectifier K, leak; spikes (V > -20 mV) under 1 µA/cm²."""
    return splitpinn.Model.from_equations(
        """
        dV/dt = (I_ext - I_Na - I_K - I_L)/C_m : mV
        dh/dt = phi*(alpha_h*(1 - h) - beta_h*h) : 1
        dn/dt = phi*(alpha_n*(1 - n) - beta_n*n) : 1
        I_Na = g_Na*m_inf**3*h*(V - E_Na) : uA/cm**2
        I_K = g_K*n**4*(V - E_K) : uA/cm**2
        I_L = g_L*(V - E_L) : uA/cm**2
        m_inf = alpha_m/(alpha_m + beta_m) : 1
        alpha_m = 1/exprel(-(V + 35*mV)/(10*mV))/ms : 1/ms
        beta_m = 4*exp(-(V + 60*mV)/(18*mV))/ms : 1/ms
        alpha_h = 0.07*exp(-(V + 58*mV)/(20*mV))/ms : 1/ms
        beta_h = 1/(exp(-(V + 28*mV)/(10*mV)) + 1)/ms : 1/ms
        alpha_n = 0.1/exprel(-(V + 34*mV)/(10*mV))/ms : 1/ms
        beta_n = 0.125*exp(-(V + 44*mV)/(80*mV))/ms : 1/ms
        I_ext : uA/cm**2
        """,
        name="wang-buzsaki",
        parameters={"C_m": "1*uF/cm**2", "g_Na": "35*msiemens/cm**2",
                    "g_K": "9*msiemens/cm**2", "g_L": "0.1*msiemens/cm**2",
                    "E_Na": "55*mV", "E_K": "-90*mV", "E_L": "-65*mV", "phi": 5.0,
                    "I": "1*uA/cm**2"},
        initial={"V": "-64*mV", "h": 0.78, "n": 0.09},
        threshold="V > -20*mV", stimulus="I",
        description="Wang-Buzsaki interneuron, declared in benchmarks/targets.py")


# -- the table ---------------------------------------------------------------------------------

@dataclass
class Row:
    """One line of the table; ``limit`` is a ratio (×) or, with ``seconds``, a wall time."""

    target: str
    ours: float
    peer: str = "-"
    peer_wall: float | None = None
    limit: float | None = None
    seconds: bool = False
    accurate: bool = True  # the accuracy part of the target (spikes, rates)
    spikes: str = "-"  # counts: ours/peer/truth
    err_ours: float | None = None
    err_peer: float | None = None
    note: str = ""

    def cells(self) -> list[str]:
        ratio = self.ours / self.peer_wall if self.peer_wall else None
        measured = self.ours if self.seconds else ratio
        met = "-" if self.limit is None or measured is None else \
            ("yes" if measured <= self.limit and self.accurate else "**no**")
        limit = "-" if self.limit is None else \
            (f"≤ {self.limit:g} s" if self.seconds else f"≤ {self.limit:g}×")
        return [self.target, f"{self.ours:.3g}", self.peer, _num(self.peer_wall, ".3g"),
                _num(ratio, ".2f"), limit, self.spikes, _num(self.err_ours, ".1e"),
                _num(self.err_peer, ".1e"), met, self.note]


HEADER = ["target", "ours (s)", "peer", "peer (s)", "ratio", "limit",
          "spikes ours/peer/truth", "max spike err ours (ms)", "peer (ms)", "met?", "note"]


def _num(value, spec: str) -> str:
    return "-" if value is None else "count differs" if value == math.inf else \
        format(value, spec)


@dataclass
class Settings:
    quick: bool
    repeats: int

    def span(self, t_end: float, quick_t_end: float) -> float:
        return quick_t_end if self.quick else t_end


def timed(fn, repeats: int, warm_up=None):
    """(the last result, the median wall time in s) of ``repeats`` calls of ``fn``, after one
    untimed call of ``warm_up`` (default: ``fn``)."""
    (warm_up or fn)()
    walls = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        walls.append(time.perf_counter() - start)
    return result, statistics.median(walls)


def spike_error(got, truth) -> float:
    """Largest |got − truth| over matched spikes; inf when the counts differ, 0 with none."""
    got, truth = np.asarray(got, dtype=float), np.asarray(truth, dtype=float)
    if len(got) != len(truth):
        return math.inf
    return float(np.max(np.abs(got - truth))) if len(got) else 0.0


def counts(*trains) -> str:
    return "/".join(str(len(s)) for s in trains)


def total(trains) -> int:
    """Spikes in a list of trains."""
    return sum(map(len, trains))


# -- the plain DOP853 peer ---------------------------------------------------------------------

def _x_over_one_minus_exp(x: float) -> float:
    return x / -math.expm1(-x) if abs(x) > 1e-9 else 1.0 + 0.5 * x


_MATH = [{"XOverOneMinusExp": _x_over_one_minus_exp}, "math"]


@dataclass
class Plain:
    """A model with its numbers substituted, as float functions of (t, *states) for
    ``solve_ivp``: the right-hand side, an upward-crossing function ``g`` (a reset event's
    condition or the spike detector's threshold), the reset and the refractory clamp."""

    rhs: object
    y0: np.ndarray
    g: object
    reset: object = None  # None: a spike detector (g only records crossings)
    reset_index: tuple = ()
    refractory: float = 0.0
    clamp_index: tuple = ()
    strict: bool = False  # the condition is ">" (fires past g = 0, not at it)


def plain(model, parameters=None, preset=None, stimulus=None) -> Plain:
    """The model's equations lambdified for Python floats (the ``math`` module), parameters and
    stimulus substituted: what one would write by hand for ``solve_ivp``."""
    model = resolve_model(model)
    if stimulus is not None:
        model = model.with_stimulus(stimulus)
    bound = bind(model, parameters, preset=preset)
    values = dict(zip(bound.param_symbols, map(float, bound.param_columns[:, 0]), strict=True))
    args = (splitpinn.t, *model.state_symbols)

    def number(expr):
        return model.expand(sp.sympify(expr)).xreplace(values)

    def fn(expr):
        expr = [number(e) for e in expr] if isinstance(expr, list) else number(expr)
        return sp.lambdify(args, expr, modules=_MATH, cse=True)

    rhs = fn([model.equations[n] for n in model.state_names])
    if not model.events:
        det = model.spike_detector
        return Plain(rhs, bound.y0, fn(model.symbol(det.state) - det.threshold))
    (ev,) = model.events
    names = model.state_names
    return Plain(rhs, bound.y0, fn(ev.condition.lhs - ev.condition.rhs),
                 fn(list(ev.reset.values())), tuple(names.index(k) for k in ev.reset),
                 float(number(ev.refractory)), tuple(names.index(k) for k in ev.clamp),
                 ev.condition.rel_op == ">")


def dop853(p: Plain, t_end: float, tol: float) -> np.ndarray:
    """Spike times of a plain DOP853 solve on [0, t_end]: a spike detector's crossings are
    non-terminal events; a reset event stops the solve, resets, holds the clamped states over
    the refractory period (firing at its end if at or past threshold) and restarts."""
    def rhs(time, y):
        return p.rhs(time, *y.tolist())

    def g(time, y):
        return p.g(time, *y.tolist())

    g.direction = 1.0
    options = dict(method="DOP853", rtol=tol, atol=tol)
    if p.reset is None:
        return solve_ivp(rhs, (0.0, t_end), p.y0, events=g, **options).t_events[0]
    g.terminal = True

    def held(time, y):
        dy = p.rhs(time, *y.tolist())
        for i in p.clamp_index:
            dy[i] = 0.0
        return dy

    spikes, t0, y = [], 0.0, np.array(p.y0, dtype=float)
    while True:
        sol = solve_ivp(rhs, (t0, t_end), y, events=g, **options)
        if sol.status != 1:
            return np.array(spikes)
        t0, y = float(sol.t_events[0][0]), sol.y_events[0][0].copy()
        while True:  # fire; again where a refractory period ends at or past threshold
            spikes.append(t0)
            y[list(p.reset_index)] = p.reset(t0, *y.tolist())
            if p.refractory == 0:
                break
            if t0 + p.refractory >= t_end:
                return np.array(spikes)
            y = solve_ivp(held, (t0, t0 + p.refractory), y, **options).y[:, -1].copy()
            t0 += p.refractory
            value = g(t0, y)
            if value < 0 or (value == 0 and p.strict):
                break


# -- rows --------------------------------------------------------------------------------------

@dataclass
class Case:
    """One single-neuron problem: ``model`` (library name or Model) over [0, t_end] ms."""

    name: str
    model: object
    t_end: float
    preset: str | None = None
    stimulus: object = None


CASES = [
    Case("izhikevich RS", "izhikevich", 200.0, preset="RS"),
    Case("fhn", "fhn", 200.0),
    Case("morris-lecar", "morris-lecar", 200.0),
    Case("adex", "adex", 500.0),
    Case("hh, I(t) = 10 + 5 sin(2πt/20)", "hh", 100.0, stimulus=sinusoid(5.0, 50.0, offset=10.0)),
    Case("wang-buzsaki (declared here)", wang_buzsaki(), 200.0),
]


def row_dop853(case: Case, s: Settings) -> Row:
    """Split-PINN ≤ 2× a plain DOP853 (rtol 1e-10), spikes within 1e-4 ms of DOP853 1e-12;
    both give spike times only (``traces=False``; DOP853 without ``t_eval``)."""
    t_end = s.span(case.t_end, case.t_end / 4)
    peer = plain(case.model, preset=case.preset, stimulus=case.stimulus)
    truth = dop853(peer, t_end, TRUTH_TOL)
    ours, wall = timed(lambda: splitpinn.solve(case.model, "split-pinn", t_end, preset=case.preset,
                                               stimulus=case.stimulus, traces=False), s.repeats)
    peer_spikes, peer_wall = timed(lambda: dop853(peer, t_end, PEER_TOL), s.repeats)
    err = spike_error(ours.spike_times, truth)
    return Row(f"{case.name}, {t_end:g} ms", wall, "DOP853 rtol 1e-10", peer_wall, 2.0,
               accurate=err <= SPIKE_TOL,
               spikes=counts(ours.spike_times, peer_spikes, truth), err_ours=err,
               err_peer=spike_error(peer_spikes, truth))


def row_neuron(s: Settings) -> Row:
    """HH one neuron (I = 10): split-PINN ≤ 3× NEURON's CVode at equal accuracy (the loosest
    atol, rtol 0, whose spikes are as close to DOP853 1e-12 as ours)."""
    t_end = s.span(100.0, 25.0)
    truth = dop853(plain("hh"), t_end, TRUTH_TOL)
    ours, wall = timed(lambda: splitpinn.solve("hh", "split-pinn", t_end, traces=False),
                       s.repeats)
    err = spike_error(ours.spike_times, truth)
    cvode = neuron_hh(resolve_model("hh").parameters)
    for atol in 10.0 ** -np.arange(3, 12):
        err_peer = spike_error(cvode(t_end, atol), truth)
        if err_peer <= err:
            break
    spikes, peer_wall = timed(lambda: cvode(t_end, atol), s.repeats)
    note = "peer: the loosest atol in 1e-3..1e-11 as accurate as ours" if err_peer <= err else \
        "peer: its tightest atol, still less accurate than ours"
    return Row(f"hh I=10, {t_end:g} ms", wall, f"NEURON 9.0.2 CVode atol {atol:.0e}", peer_wall,
               3.0, accurate=err <= SPIKE_TOL, spikes=counts(ours.spike_times, spikes, truth),
               err_ours=err, err_peer=err_peer, note=note)


def neuron_hh(values):
    """A function (t_end, atol) -> spike times of one NEURON section with the ``hh`` mechanism
    set to the library's HH (celsius 6.3, no rate tables, the current as an IClamp of the same
    density), solved by CVode with a NetCon at 0 mV, crossings interpolated (condition_order
    2)."""
    from neuron import h

    h.load_file("stdrun.hoc")
    h.celsius = 6.3
    h.usetable_hh = 0  # exact rate functions, not hh.mod's 1-mV lookup table
    soma = h.Section(name="soma")
    soma.L = soma.diam = 10.0
    soma.insert("hh")
    soma.cm, soma.ena, soma.ek = values["C"], values["E_Na"], values["E_K"]
    mech = soma(0.5).hh
    mech.gnabar, mech.gkbar = values["g_Na"] * 1e-3, values["g_K"] * 1e-3  # mS → S/cm²
    mech.gl, mech.el = values["g_L"] * 1e-3, values["E_L"]
    clamp = h.IClamp(soma(0.5))
    clamp.delay, clamp.dur = 0.0, 1e9
    clamp.amp = values["I"] * soma(0.5).area() * 1e-5  # µA/cm² × µm² → nA
    cvode = h.CVode()
    cvode.active(1)
    cvode.condition_order(2)
    times = h.Vector()
    detector = h.NetCon(soma(0.5)._ref_v, None, sec=soma)
    detector.threshold = 0.0
    detector.record(times)

    def run(t_end, atol):
        cvode.atol(atol)
        cvode.rtol(0.0)
        h.finitialize(-65.0)
        h.continuerun(t_end)
        return np.array(times)

    run.keep = (soma, clamp, detector, times)  # NEURON objects live while Python holds them
    return run


#: The library's HH in Brian2, the rates with exp: the export's exprel (``splitpinn show hh
#: --format brian2``) is ~30× slower per step in Brian2's numpy target.
BRIAN2_HH = """
dV/dt = (I - g_Na*m**3*h*(V - E_Na) - g_K*n**4*(V - E_K) - g_L*(V - E_L))/C : volt
dm/dt = alpha_m*(1 - m) - beta_m*m : 1
dh/dt = alpha_h*(1 - h) - beta_h*h : 1
dn/dt = alpha_n*(1 - n) - beta_n*n : 1
alpha_m = 0.1/mV*(V + 40*mV)/(1 - exp(-(V + 40*mV)/(10*mV)))/ms : Hz
beta_m = 4*exp(-(V + 65*mV)/(18*mV))/ms : Hz
alpha_h = 0.07*exp(-(V + 65*mV)/(20*mV))/ms : Hz
beta_h = 1/(1 + exp(-(V + 35*mV)/(10*mV)))/ms : Hz
alpha_n = 0.01/mV*(V + 55*mV)/(1 - exp(-(V + 55*mV)/(10*mV)))/ms : Hz
beta_n = 0.125*exp(-(V + 65*mV)/(80*mV))/ms : Hz
I : amp/meter**2 (constant)
"""


def _brian2_hh(currents):
    """HH neurons with currents ``currents`` (µA/cm²) in Brian2, the library's parameters,
    exponential Euler at dt 0.01 ms, a SpikeMonitor; (Network, monitor)."""
    import brian2 as b2

    b2.prefs.codegen.target = "numpy"
    b2.defaultclock.dt = 0.01 * b2.ms
    p = resolve_model("hh").parameters
    conductance, potential = b2.msiemens / b2.cm**2, b2.mV
    namespace = {"C": p["C"] * b2.uF / b2.cm**2, "g_Na": p["g_Na"] * conductance,
                 "g_K": p["g_K"] * conductance, "g_L": p["g_L"] * conductance,
                 "E_Na": p["E_Na"] * potential, "E_K": p["E_K"] * potential,
                 "E_L": p["E_L"] * potential}
    group = b2.NeuronGroup(len(currents), BRIAN2_HH, threshold="V > 0*mV",
                           refractory="V > 0*mV", method="exponential_euler", namespace=namespace)
    group.I = currents * b2.uA / b2.cm**2
    group.V = -65.0 * b2.mV
    for x in "mhn":  # gates at their steady state
        setattr(group, x, f"alpha_{x}/(alpha_{x} + beta_{x})")
    monitor = b2.SpikeMonitor(group)
    return b2.Network(group, monitor), monitor


def brian2_run(build, t_end: float, repeats: int):
    """(spike trains in ms, median wall of ``Network.run``) of networks from ``build()`` (not
    timed: equations parsed, groups built); run() includes Brian2's per-run code generation,
    cached by a first, untimed run."""
    import brian2 as b2

    walls = []
    for k in range(repeats + 1):
        net, monitor = build()
        start = time.perf_counter()
        net.run(t_end * b2.ms, namespace={})
        if k:
            walls.append(time.perf_counter() - start)
    trains = monitor.spike_trains()
    return [np.asarray(trains[i] / b2.ms) for i in range(len(trains))], statistics.median(walls)


#: split-PINN's tolerances in the batch rows: the defaults, then looser ones whose spikes are
#: still at least as close to the truth as Brian2's (its error at dt 0.01 is ~0.1 ms).
BATCH_TOLERANCES = [(None, None), (1e-6, 1e-8), (1e-4, 1e-6)]


def rows_batch(s: Settings) -> list[Row]:
    """1000 HH neurons, I = 0..20, 100 ms, traces=False: split-PINN ≤ 2× Brian2 numpy, at
    the default tolerances and at looser ones (accurate: spikes within 1e-4 ms of DOP853
    1e-12 at the defaults; no farther than Brian2's at the looser ones)."""
    size, t_end = (100, 20.0) if s.quick else (1000, 100.0)
    currents = np.linspace(0.0, 20.0, size)
    trains, peer_wall = brian2_run(partial(_brian2_hh, currents), t_end, s.repeats)
    chosen = np.random.default_rng(0).choice(size, 3 if s.quick else 8, replace=False)
    truths = {i: dop853(plain("hh", {"I": float(currents[i])}), t_end, TRUTH_TOL)
              for i in chosen}
    err_peer = max(spike_error(trains[i], truths[i]) for i in chosen)
    rows = []
    for rtol, atol in BATCH_TOLERANCES:
        def run(t, rtol=rtol, atol=atol):
            return splitpinn.solve("hh", "split-pinn", t, parameters={"I": currents},
                                   traces=False, rtol=rtol, atol=atol)

        batch, wall = timed(partial(run, t_end), s.repeats, warm_up=partial(run, 1.0))
        err = max(spike_error(batch.spike_times[i], truths[i]) for i in chosen)
        tolerances = "defaults" if rtol is None else f"rtol {rtol:g}, atol {atol:g}"
        rows.append(Row(f"{size} HH neurons, I = 0..20, {t_end:g} ms, split-PINN {tolerances}",
                        wall, "Brian2 2.9 numpy, exp. Euler, dt 0.01", peer_wall, 2.0,
                        accurate=err <= (SPIKE_TOL if rtol is None else err_peer),
                        spikes=f"{total(batch.spike_times)}/{total(trains)}/-",
                        err_ours=err, err_peer=err_peer,
                        note=f"spike errors over {len(chosen)} sampled neurons; peer wall: "
                             "Network.run() incl. its code generation, not the groups' "
                             "construction"))
    return rows


def random_network(n: int, seed: int, norm: float = 0.5):
    """W (N × N, no self-coupling, ‖W‖₂ = norm) and I (N,): tests/test_networks.py's network."""
    rng = np.random.default_rng(seed)
    w = rng.normal(size=(n, n))
    np.fill_diagonal(w, 0.0)
    return norm * w / np.linalg.norm(w, 2), rng.uniform(-0.05, 0.1, n)


def _brian2_network(weights, inputs):
    """The feedback IF network in Brian2 numpy (dV/dt = I, V ≥ 1 → V −= 1, on_pre V += w)."""
    import brian2 as b2

    b2.prefs.codegen.target = "numpy"
    b2.defaultclock.dt = 0.01 * b2.ms
    group = b2.NeuronGroup(len(inputs), "dV/dt = I/ms : 1\nI : 1 (constant)", threshold="V >= 1",
                           reset="V -= 1", method="euler")
    group.I = inputs
    synapses = b2.Synapses(group, group, "w : 1", on_pre="V_post += w")
    post, pre = np.nonzero(weights)
    synapses.connect(i=pre, j=post)
    synapses.w = weights[post, pre]
    monitor = b2.SpikeMonitor(group)
    return b2.Network(group, synapses, monitor), monitor


def row_network(s: Settings) -> Row:
    """20 feedback IF neurons over 1000 ms: split-PINN ≤ Brian2 numpy, rates within 4/T of a*."""
    t_end = s.span(1000.0, 100.0)
    weights, inputs = random_network(20, seed=0)
    a_star = feedback_equilibrium(weights, inputs, 1.0)

    def ours(t):
        return splitpinn.solve(if_neuron(), "split-pinn", t, parameters={"I": inputs},
                               coupling={"weights": weights, "target": "V", "delay": 0.0},
                               traces=False)

    batch, wall = timed(lambda: ours(t_end), s.repeats, warm_up=lambda: ours(10.0))
    trains, peer_wall = brian2_run(partial(_brian2_network, weights, inputs), t_end, s.repeats)
    off = [np.max(np.abs([len(x) / t_end for x in spikes] - a_star)) * t_end
           for spikes in (batch.spike_times, trains)]
    return Row(f"feedback IF network, 20 neurons, {t_end:g} ms", wall,
               "Brian2 2.9 numpy, dt 0.01", peer_wall, 1.0, accurate=max(off) <= 4,
               spikes=f"{total(batch.spike_times)}/{total(trains)}/-",
               note=f"largest rate − a* in units of 1/T: ours {off[0]:.2f}, Brian2 "
                    f"{off[1]:.2f} (limit 4)")


def rows_fractional(s: Settings) -> list[Row]:
    """frac-LIF (α 0.6, I 3, dt 0.01, fast history): 10⁶ steps by the default L2-1σ ≤ 10 s and
    by L1 ≤ 3 s; frac-LIF (α 0.6, I 1.5) split-PINN ≤ 1.2× the L2-1σ reference over 200 ms,
    spikes against L2-1σ at dt/4."""
    steps = 10**5 if s.quick else 10**6
    rows = []
    for label, integrator, limit in (("L2-1σ (default)", {}, 10.0),
                                     ("L1", {"integrator": "l1"}, 3.0)):
        def run(t_end, integrator=integrator):
            return splitpinn.solve("frac-lif", "reference", t_end, 0.01, history="fast",
                                   parameters={"alpha": 0.6, "I": 3.0}, traces=False,
                                   **integrator)

        long, wall = timed(lambda run=run: run(steps * 0.01), s.repeats,
                           warm_up=lambda run=run: run(20.0))
        rows.append(Row(f"frac-LIF α 0.6 I 3, {steps:.0e} steps, reference {label}", wall,
                        limit=limit * steps / 10**6, seconds=True,
                        spikes=f"{len(long.spike_times)}/-/-",
                        note="limit scaled to the steps" if s.quick else ""))
    t_end, dt, parameters = s.span(200.0, 50.0), 0.01, {"alpha": 0.6, "I": 1.5}
    truth = splitpinn.solve("frac-lif", "reference", t_end, dt / 4, parameters=parameters)
    ours, wall = timed(lambda: splitpinn.solve("frac-lif", "split-pinn", t_end, dt,
                                               parameters=parameters), s.repeats)
    ref, ref_wall = timed(lambda: splitpinn.solve("frac-lif", "reference", t_end, dt,
                                                  parameters=parameters), s.repeats)
    rows.append(Row(f"frac-LIF α 0.6 I 1.5, {t_end:g} ms, dt {dt:g}", wall,
                    "L2-1σ reference, same dt", ref_wall, 1.2,
                    spikes=counts(ours.spike_times, ref.spike_times, truth.spike_times),
                    err_ours=spike_error(ours.spike_times, truth.spike_times),
                    err_peer=spike_error(ref.spike_times, truth.spike_times),
                    note="truth: L2-1σ at dt/4"))
    return rows


_FIRST_SOLVE = """
import json, sys, time
sys.path.insert(0, {here!r})
import splitpinn
from targets import wang_buzsaki
model = {model}
start = time.perf_counter()
splitpinn.solve(model, "split-pinn", {t_end!r})
print(json.dumps(time.perf_counter() - start))
"""


def rows_first_solve(s: Settings) -> list[Row]:
    """The declared model's first split-PINN solve (100 ms) in a fresh process: with empty
    caches (the kernels and the model compiled), then (≤ 15 s) where an earlier process
    compiled the kernels for another model (HH), so that it compiles only the model's own
    functions, and in a later process that loads it (≤ 1 s); timed after the imports, inside
    the process, each cache a fresh folder."""
    t_end = s.span(100.0, 20.0)
    with tempfile.TemporaryDirectory() as folder:
        def child(cache: str, model: str = "wang_buzsaki()") -> float:
            code = _FIRST_SOLVE.format(here=str(Path(__file__).resolve().parent), t_end=t_end,
                                       model=model)
            env = dict(os.environ, NUMBA_CACHE_DIR=os.path.join(folder, cache, "numba"),
                       SPLITPINN_CACHE_DIR=os.path.join(folder, cache))
            out = subprocess.run([sys.executable, "-c", code], env=env, check=True,
                                 stdout=subprocess.PIPE, text=True).stdout
            return json.loads(out.splitlines()[-1])

        cold = child("first")
        child("second", model="'hh'")
        new = child("second")
        later = child("second")
    return [Row(f"first solve, everything compiled (caches empty), {t_end:g} ms", cold,
                note="no target: the kernels (once per machine) and the model"),
            Row(f"first solve of a new model, {t_end:g} ms", new, limit=15.0, seconds=True,
                note="kernels compiled by an earlier process, for HH"),
            Row(f"same model, a later process, {t_end:g} ms", later, limit=1.0, seconds=True)]


def package_lines() -> str:
    """Lines of the package's .py files (splitpinn/, models/, fractional/)."""
    parts = {d: sum(len(f.read_text().splitlines()) for f in (ROOT / d).rglob("*.py"))
             for d in ("splitpinn", "models", "fractional")}
    return f"Package lines: {sum(parts.values())} (" + \
        ", ".join(f"{d}/ {n}" for d, n in parts.items()) + ")"


SECTIONS = [*[(f"dop853 {c.name}", partial(row_dop853, c)) for c in CASES],
            ("hh neuron cvode", row_neuron),
            ("batch hh brian2", rows_batch),
            ("network feedback-if brian2", row_network),
            ("fractional", rows_fractional),
            ("first solve compile", rows_first_solve)]


def machine() -> str:
    model = next((line.split(":", 1)[1].strip() for line in
                  Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), "unknown CPU")
    return f"{len(os.sched_getaffinity(0))} cores (nproc), {model}"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs per timing (median)")
    parser.add_argument("--quick", action="store_true",
                        help="short intervals and small batches, one repeat (a smoke test)")
    parser.add_argument("--only", help="rows whose name contains this text (names: "
                        + "; ".join(name for name, _ in SECTIONS) + "; lines)")
    args = parser.parse_args(argv)
    settings = Settings(args.quick, 1 if args.quick else args.repeats)
    print(f"`{Path(sys.executable).name} {' '.join(sys.argv)}` on {machine()}"
          + (" — quick: not the targets' sizes" if args.quick else ""))
    chosen = [section for name, section in SECTIONS if not args.only or args.only in name]
    if chosen:
        print()
        print("| " + " | ".join(HEADER) + " |")
        print("|" + "---|" * len(HEADER))
    for section in chosen:
        rows = section(settings)
        for row in rows if isinstance(rows, list) else [rows]:
            print("| " + " | ".join(row.cells()) + " |", flush=True)
    if not args.only or args.only in "lines":
        print()
        print(package_lines())


if __name__ == "__main__":
    main()
