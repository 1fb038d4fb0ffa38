"""The compiled model functions against lambdified sympy; the compiled fractional march
against the fractional reference with ``compiled=False``; split-PINN's kernels compiled and
as plain Python (``compiled=False``), and where numba fails.  The rest of the suite checks
the results against closed forms and converged solutions."""

import functools
import sys

import numba
import numpy as np
import pytest

import splitpinn.numeric.compiled as compiled
from splitpinn.api import resolve_model
from splitpinn.errors import CompilationWarning
from splitpinn.numeric.address import address, call
from splitpinn.solvers.fractional_reference import solve_fractional_reference
from splitpinn.solvers.solution import Batch, output_grid


@pytest.mark.parametrize("name, preset", [("frac-lif", None), ("fo-hh", "n"), ("hh", None),
                                          ("frac-izhikevich", None), ("morris-lecar", None),
                                          ("linear-lif", None)])
def test_compiled_functions_equal_the_lambdified_ones(name, preset):
    """The model's functions as the kernels call them (compiled; a cfunc called from Python
    would run its Python source) against sympy's lambdified ones."""
    bound = resolve_model(name).bind(preset=preset)
    functions = compiled.compiled_model(bound).functions
    evaluate = numba.njit(lambda function, t, stim, y, p, out: call(
        function, t, stim, address(y), address(p), address(out.reshape(-1))))
    n, params = len(bound.names), np.array(bound.params(0), dtype=float)
    rng = np.random.default_rng(1)
    count = len(bound.events) + (1 if bound.model.spike_detector else 0)
    for _ in range(5):
        y = np.asarray(bound.y0, dtype=float) * (1 + 0.2 * rng.standard_normal(n))
        t, stim = rng.uniform(0, 50), rng.uniform(-2, 12)
        f, jac, g = np.empty(n), np.empty((n, n)), np.empty(count)
        for function, out in ((functions.rhs, f), (functions.jacobian, jac),
                              (functions.crossings, g)):
            evaluate(function.address, t, stim, y, params, out)
        f_ref = np.array(bound.rhs_columns(t, stim, list(y), bound.params(0)), dtype=float)
        jac_ref = np.array(bound.jacobian_columns(t, stim, list(y), bound.params(0)),
                           dtype=float)
        g_ref = [ev.values(np.array([t]), y[None], [0])[0] for ev in bound.events]
        if bound.model.spike_detector:
            detector = bound.model.spike_detector
            g_ref.append(y[bound.index(detector.state)] - detector.threshold)
        np.testing.assert_allclose(f, f_ref, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(jac, jac_ref, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(g, g_ref, rtol=1e-12, atol=1e-12)


def _both(monkeypatch, bound, grid, integrator):
    """The fast-history reference compiled and not, and the share of steps compiled."""
    taken = []

    def counted(*args, **kwargs):
        marched = march(*args, **kwargs)
        taken.append(len(marched.states))
        return marched

    march = compiled.march_uniform
    monkeypatch.setattr(compiled, "march_uniform", counted)
    fast = solve_fractional_reference(bound, grid, history="fast", integrator=integrator)[0]
    slow = solve_fractional_reference(bound, grid, history="fast", integrator=integrator,
                                      compiled=False)[0]
    return fast, slow, sum(taken) / fast.meta["solver"]["steps_accepted"]


@pytest.mark.parametrize("integrator", ["l1", "l2-1sigma"])
def test_compiled_march_equals_the_plain_python_march(monkeypatch, integrator):
    """frac-LIF with resets and refractory holds: the same spikes and trace, most of the
    steps compiled."""
    bound = resolve_model("frac-lif").bind({"alpha": 0.6, "I": 3.0})
    fast, slow, share = _both(monkeypatch, bound, output_grid(60.0, 0.01), integrator)
    assert share > {"l1": 0.95, "l2-1sigma": 0.5}[integrator]  # L2-1σ grades after onsets
    assert fast.spike_times.size == slow.spike_times.size >= 3
    np.testing.assert_allclose(fast.spike_times, slow.spike_times, rtol=0, atol=1e-9)
    np.testing.assert_allclose(fast.y, slow.y, rtol=0, atol=1e-8)
    assert fast.meta["solver"]["memory_floats"] == slow.meta["solver"]["memory_floats"]


def test_compiled_march_of_a_system_with_a_stimulus_jump(monkeypatch):
    """FO-HH (four states, one fractional gate) with a current step between grid points:
    the compiled stretches end at the jump and agree with numpy steps."""
    bound = resolve_model("fo-hh").bind({"eta": 0.8, "t_on": 2.003}, preset="n")
    fast, slow, share = _both(monkeypatch, bound, output_grid(25.0, 0.01), "l1")
    assert share > 0.9
    assert fast.spike_times.size == slow.spike_times.size >= 1
    np.testing.assert_allclose(fast.spike_times, slow.spike_times, rtol=0, atol=1e-9)
    np.testing.assert_allclose(fast.y, slow.y, rtol=0, atol=1e-7)


def _fitted_steps(monkeypatch) -> list[int]:
    """A list that gets the steps of every kernel march with split-PINN's fit from now on."""
    fitted = []
    march = compiled.march_uniform

    def counted(*args, **kwargs):
        marched = march(*args, **kwargs)
        if kwargs.get("fit") is not None:
            fitted.append(len(marched.states))
        return marched

    monkeypatch.setattr(compiled, "march_uniform", counted)
    return fitted


@pytest.mark.parametrize("name, t_end, options", [
    ("frac-lif", 10.0, {"parameters": {"alpha": 0.6, "I": 3.0}}),  # one sub-problem
    ("fo-hh", 12.5, {"parameters": {"eta": 0.8}, "preset": "n"}),  # a spike after t_on 10
    ("frac-izhikevich", 5.0, {}),  # a spike at 3.05 ms, its reset and 0.5 ms clamp
])
def test_fractional_split_plans_march_in_the_kernel(monkeypatch, name, t_end, options):
    """frac-LIF (one sub-problem, a fast memory), and plans of several sub-problems against
    one memory: FO-HH (Strang: the integer-order V in halves around the fractional gates)
    and frac-Izhikevich (symmetric: v and u both fractional, two branches averaged).  Their
    composed steps, the graded ones after each onset included, run in the kernel march
    (kernels.memory_compose, the fractional stages by kernels.memory_stage), compiled or as
    plain Python (``compiled=False``), with the same spikes, states and steps.  (A third leg
    ran the composed steps stage by stage from Python until that path was deleted: nothing
    but this test took it.)"""
    import splitpinn

    fitted = _fitted_steps(monkeypatch)
    fast = splitpinn.solve(name, "split-pinn", t_end, 0.05, **options)
    share = sum(fitted) / fast.meta["solver"]["steps_accepted"]
    slow = splitpinn.solve(name, "split-pinn", t_end, 0.05, compiled=False, **options)
    assert fast.meta["solver"]["compiled"] and not slow.meta["solver"]["compiled"]
    assert share > 0.9
    assert fast.spike_times.size == slow.spike_times.size >= 1
    np.testing.assert_allclose(fast.spike_times, slow.spike_times, rtol=0, atol=1e-9)
    np.testing.assert_allclose(fast.y, slow.y, rtol=0, atol=1e-7)
    assert fast.meta["solver"]["steps_accepted"] == slow.meta["solver"]["steps_accepted"]


@pytest.mark.parametrize("name, t_end, currents", [
    ("frac-lif", 40.0, [1.6, 2.4, 3.0]),  # one sub-problem; resets and refractory holds
    ("frac-izhikevich", 12.0, [8.0, 14.0]),  # two sub-problems, symmetric; resets, clamps
])
def test_fractional_split_pinn_batch_marches_each_row_in_the_kernel(monkeypatch, name, t_end,
                                                                    currents):
    """An uncoupled batch marches each row's stretches in the kernel, as a single neuron
    does: the same spikes, final states and steps as its rows solved one by one."""
    import splitpinn

    fitted = _fitted_steps(monkeypatch)
    batch = splitpinn.solve(name, "split-pinn", t_end, 0.02, traces=False,
                            parameters={"I": np.array(currents)})
    share = sum(fitted) / sum(sol.meta["solver"]["steps_accepted"] for sol in batch)
    assert share > 0.9
    for sol, current in zip(batch, currents, strict=True):
        single = splitpinn.solve(name, "split-pinn", t_end, 0.02, traces=False,
                                 parameters={"I": current})
        assert sol.spike_times.size == single.spike_times.size >= 1
        np.testing.assert_allclose(sol.spike_times, single.spike_times, rtol=0, atol=1e-9)
        np.testing.assert_allclose(sol.y[:, -1], single.y[:, -1], rtol=0, atol=1e-7)
        assert sol.meta["solver"]["steps_accepted"] == single.meta["solver"]["steps_accepted"]


def test_integer_fixed_steps_march_in_the_kernel(monkeypatch):
    """Integer-order split-PINN on fixed steps, a single neuron and a batch: the steps run
    in the kernel (kernels.march_composed), events included, with the spikes, trace and steps
    of the composed steps taken one by one by the marching loop, and the spikes of the
    reference."""
    import splitpinn

    marched, march = [], compiled.Composition.march

    def counted(self, *args):
        counts, worst = march(self, *args)
        marched.append(int(counts[:, 0].sum()))
        return counts, worst

    monkeypatch.setattr(compiled.Composition, "march", counted)
    currents = np.array([6.0, 10.0, 14.0])
    run = functools.partial(splitpinn.solve, "izhikevich", "split-pinn", 60.0, 0.05,
                            fixed_step=True)
    single, batch = run(parameters={"I": 10.0}), run(parameters={"I": currents})
    steps = single.meta["solver"]["steps_accepted"] + \
        sum(sol.meta["solver"]["steps_accepted"] for sol in batch)
    assert sum(marched) == steps
    monkeypatch.setattr(compiled.Composition, "march", lambda self, *args: None)
    stepped = run(parameters={"I": currents})
    reference = splitpinn.solve("izhikevich", "reference", 60.0, 0.05,
                                parameters={"I": currents}, rtol=1e-12, atol=1e-12)
    for sol, loop, ref in zip(batch, stepped, reference, strict=True):
        assert sol.spike_times.size == loop.spike_times.size == ref.spike_times.size >= 1
        np.testing.assert_allclose(sol.spike_times, loop.spike_times, rtol=0, atol=1e-9)
        np.testing.assert_allclose(sol.y, loop.y, rtol=0, atol=1e-7)
        assert sol.meta["solver"]["steps_accepted"] == loop.meta["solver"]["steps_accepted"]
        assert np.max(np.abs(sol.spike_times - ref.spike_times)) < 0.05
    np.testing.assert_allclose(batch[1].y, single.y, rtol=0, atol=1e-7)


def test_a_model_numba_cannot_compile_runs_the_plain_python_kernels(monkeypatch):
    def refuse(bound):
        raise compiled.NotCompilable("no numba form")

    monkeypatch.setattr(compiled, "compiled_model", refuse)
    monkeypatch.setattr(compiled, "_WARNED", set())
    bound = resolve_model("frac-lif").bind({"alpha": 0.6, "I": 3.0})
    grid = output_grid(20.0, 0.01)
    with pytest.warns(CompilationWarning, match="frac-lif.*no numba form"):
        kept = solve_fractional_reference(bound, grid, history="fast", integrator="l1")[0]
    slow = solve_fractional_reference(bound, grid, history="fast", integrator="l1",
                                      compiled=False)[0]
    np.testing.assert_array_equal(kept.y, slow.y)


# -- the composed step of split-PINN in one kernel ---------------------------------------------
_RECORDING = np.arange(0.0, 10.01, 0.5)


@pytest.mark.parametrize("name, options, t_end", [
    ("hh", {"parameters": {"I": np.array([0.0, 6.5, 10.0])}}, 20.0),  # a batch, adaptive steps
    ("lif", {}, 60.0),  # resets and refractory holds
    ("hh", {"stimulus": "recording"}, 3.0),  # a recording printed into the module
    ("hh", {"partition": [["V", "m"], ["h", "n"]]}, 1.0),  # states that couple
])
def test_compiled_split_pinn_solve_equals_the_plain_python_one(name, options, t_end):
    """``compiled=False`` runs the same kernels as plain Python: the same steps, spikes and
    trace (numba's float arithmetic is Python's)."""
    import splitpinn
    from splitpinn.stimulus import sampled

    if options.get("stimulus") == "recording":  # interpolated linearly: compiled with the model
        options = {"stimulus": sampled(_RECORDING, 10 + 5 * np.sin(_RECORDING), "linear")}
    fast = splitpinn.solve(name, "split-pinn", t_end, **options)
    slow = splitpinn.solve(name, "split-pinn", t_end, compiled=False, **options)
    pairs = zip(fast, slow, strict=True) if isinstance(fast, Batch) else [(fast, slow)]
    for a, b in pairs:
        assert a.meta["solver"]["compiled"] and not b.meta["solver"]["compiled"]
        assert a.spike_times.size == b.spike_times.size
        np.testing.assert_allclose(a.spike_times, b.spike_times, rtol=0, atol=1e-9)
        np.testing.assert_allclose(a.y, b.y, rtol=0, atol=1e-7)
        assert a.meta["solver"]["steps_accepted"] == b.meta["solver"]["steps_accepted"]


def test_a_second_process_loads_the_compiled_code_from_the_disk_cache(tmp_path):
    """The generated module and numba's cache of it go to SPLITPINN_CACHE_DIR; a later
    process loads the machine code instead of compiling it."""
    import os
    import subprocess
    import sys

    script = ("import splitpinn\n"
              "from splitpinn.api import resolve_model\n"
              "from splitpinn.numeric.compiled import compiled_model\n"
              "splitpinn.solve('lif', 'split-pinn', 5.0)\n"
              "model = compiled_model(resolve_model('lif').bind())\n"
              "kernel = model.march_composed\n"
              "print(sum(kernel.stats.cache_hits.values()),"
              " sum(kernel.stats.cache_misses.values()))\n")
    env = {**os.environ, "SPLITPINN_CACHE_DIR": str(tmp_path)}
    runs = [subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                           text=True, check=True).stdout.split() for _ in range(2)]
    assert runs[0] == ["0", "1"] and runs[1] == ["1", "0"], runs
    assert len(list(tmp_path.glob("model_*.py"))) == 2  # the kernels' module and LIF's


@pytest.mark.parametrize("where", ["building", "calling"])
def test_split_pinn_runs_the_plain_kernels_where_numba_fails(monkeypatch, where):
    """A model numba cannot compile, found when its functions are printed ("building") or
    when a kernel is first typed ("calling": the output derivative at the start, before
    any step), leaves split-PINN on the same kernels as plain Python, with the same result,
    and says so."""
    import splitpinn

    def refuse(*args):
        raise compiled.NotCompilable("no numba form")

    monkeypatch.setattr(compiled, "compiled_model" if where == "building" else "_call", refuse)
    monkeypatch.setattr(compiled, "_WARNED", set())
    with pytest.warns(CompilationWarning, match="'lif'.*no numba form"):
        kept = splitpinn.solve("lif", "split-pinn", 30.0)
    monkeypatch.undo()
    slow = splitpinn.solve("lif", "split-pinn", 30.0, compiled=False)
    assert not kept.meta["solver"]["compiled"]
    np.testing.assert_array_equal(kept.y, slow.y)
    np.testing.assert_array_equal(kept.spike_times, slow.spike_times)


def test_the_loop_takes_no_step_of_a_compiled_march(monkeypatch):
    """With compiled composed steps the loop itself tries no step: the kernel takes every
    step, its crossings and resets included (it tried a handful per spike until they moved
    into the kernel)."""
    import splitpinn
    from splitpinn.solvers.composition import CompositionStepper

    tried = []
    original = CompositionStepper.attempt
    monkeypatch.setattr(CompositionStepper, "attempt",
                        lambda self, rows, *args: tried.append(len(rows))
                        or original(self, rows, *args))
    solution = splitpinn.solve("hh", "split-pinn", 40.0, parameters={"I": 10.0})
    accepted = solution.meta["solver"]["steps_accepted"]
    assert solution.spike_times.size == 3 and accepted > 900
    assert tried == []


def test_compiled_split_pinn_under_a_stepwise_stimulus_equals_the_plain_python_one():
    """A step current switched on between grid points and off on one: the compiled kernels
    (the stimulus's level between its jumps, kernels.level) give the plain Python run's steps
    and results, the output derivatives at the jumps included."""
    import splitpinn
    from splitpinn.declare.stimulus import step

    model = resolve_model("hh").with_stimulus(step(10.0, 2.005, 12.0))
    fast = splitpinn.solve(model, "split-pinn", 20.0)
    slow = splitpinn.solve(model, "split-pinn", 20.0, compiled=False)
    assert fast.meta["solver"]["compiled"] and not slow.meta["solver"]["compiled"]
    assert fast.spike_times.size == slow.spike_times.size == 1
    np.testing.assert_allclose(fast.spike_times, slow.spike_times, rtol=0, atol=1e-9)
    np.testing.assert_allclose(fast.y, slow.y, rtol=0, atol=1e-7)
    np.testing.assert_allclose(fast.dydt, slow.dydt, rtol=0, atol=1e-6)
    assert fast.meta["solver"]["steps_accepted"] == slow.meta["solver"]["steps_accepted"]


def _holds_array(numba_type) -> bool:
    """Whether a numba type is an array or a tuple holding one."""
    from numba.core import types

    if isinstance(numba_type, types.Array):
        return True
    return isinstance(numba_type, types.BaseTuple) and any(_holds_array(t)
                                                           for t in numba_type.types)


def test_functions_without_reference_counting_hand_back_no_arrays(tmp_path, monkeypatch):
    """Only kernels.ALLOCATING keep numba's reference counting; a function without it that
    returned an array to one with it would leave the array's count below its owners' (a
    double free: fo-hh's split-PINN corrupted the heap when stage_arrays did so).  Every
    compiled, not inlined kernel that HH's and fo-hh's solves use outside ALLOCATING returns no
    array (checked on the types numba compiles them for: compiled in this process, from a
    cache folder of its own and not the modules loaded before, since functions loaded from
    numba's cache hold no types)."""
    import splitpinn
    from splitpinn.numeric import cache
    from splitpinn.numeric.kernels import ALLOCATING, INLINE

    monkeypatch.setenv("SPLITPINN_CACHE_DIR", str(tmp_path))
    cache.clear()
    for loaded in [name for name in sys.modules if name.startswith("splitpinn_model_")]:
        monkeypatch.delitem(sys.modules, loaded)  # built again, not the loaded module
    for name in ("hh", "fo-hh"):
        splitpinn.solve(name, "split-pinn", 1.0, 0.01)
        module = compiled.compiled_model(resolve_model(name).bind()).compose.py_func.__globals__
        checked = 0
        for function, value in module.items():
            if isinstance(value, numba.core.registry.CPUDispatcher) \
                    and function not in ALLOCATING + INLINE:
                for result in value.overloads.values():
                    assert not _holds_array(result.signature.return_type), function
                    checked += 1
        assert checked >= 8, checked  # the stage and step-control functions


def test_adaptive_events_are_found_and_reset_in_the_kernel(monkeypatch):
    """The default adaptive split-PINN takes its events in the kernel (kernels.march_composed):
    with the marching loop's own root finding switched off, Izhikevich's resets (no refractory
    period), LIF's (a refractory period, its clamp) and HH's detector crossings land on the
    spikes of DOP853 at rtol 1e-12, single neurons and a batch, with each record's states
    before and after the model's reset."""
    import splitpinn
    import splitpinn.solvers.marching as marching

    def refused(*args):
        raise AssertionError("the marching loop root-found a crossing")

    cases = [("izhikevich", 200.0, {"I": np.array([6.0, 10.0, 14.0])}),
             ("lif", 100.0, {"I": 2.5}), ("hh", 60.0, {"I": np.array([8.0, 12.0])})]
    for name, t_end, parameters in cases:
        truth = splitpinn.solve(name, "reference", t_end, parameters=parameters,
                                integrator="DOP853", rtol=1e-12, atol=1e-12)
        with monkeypatch.context() as patch:  # the reference's steps root-find in the loop
            patch.setattr(marching, "_locate", refused)
            ours = splitpinn.solve(name, "split-pinn", t_end, parameters=parameters)
        for sol, ref in zip(*(s if isinstance(s, Batch) else [s] for s in (ours, truth)),
                            strict=True):
            assert sol.spike_times.size == ref.spike_times.size >= 3
            np.testing.assert_allclose(sol.spike_times, ref.spike_times, rtol=0, atol=1e-4)
            for event in sol.events:
                before, after = event.before, event.after
                if name == "izhikevich":  # v <- c, u <- u + d
                    assert after["v"] == -65.0 and after["u"] == before["u"] + 8.0
                    assert 0.0 <= before["v"] - 30.0 < 1e-6  # just past: g(s) >= 0
                elif name == "lif":
                    assert after["V"] == -65.0 and 0.0 <= before["V"] + 50.0 < 1e-6
                else:  # a detector: no reset
                    assert before == after and 0.0 <= before["V"] < 1e-6


def test_a_pulse_train_is_marched_across_its_jumps_in_the_kernel(monkeypatch):
    """HH under 20 pulses (40 jumps): the kernel holds the stimulus's level between its jumps
    (kernels.level), so no step is taken by the marching loop; the spikes are DOP853's at rtol
    1e-12, and at a jump the output shows the slope under the stimulus after it (Brian2's and
    the reference's convention)."""
    import splitpinn
    from splitpinn.declare.stimulus import pulse_train
    from splitpinn.solvers.composition import CompositionStepper

    def refused(*args):
        raise AssertionError("the marching loop took a step")

    stimulus = pulse_train(15.0, 5.0, 2.0, 10.0, 20)
    truth = splitpinn.solve("hh", "reference", 210.0, stimulus=stimulus, integrator="DOP853",
                            rtol=1e-12, atol=1e-12)
    monkeypatch.setattr(CompositionStepper, "attempt", refused)
    ours = splitpinn.solve("hh", "split-pinn", 210.0, stimulus=stimulus)
    assert ours.spike_times.size == truth.spike_times.size >= 10
    np.testing.assert_allclose(ours.spike_times, truth.spike_times, rtol=0, atol=1e-4)
    on = np.searchsorted(ours.t, 25.0)  # the fourth pulse begins at 25 ms, a grid point
    assert ours.t[on] == 25.0
    bound = resolve_model("hh").with_stimulus(stimulus).bind()
    assert bound.stimulus_columns(np.array([25.0 - 1e-6, 25.0]), bound.params()).tolist() == \
        [0.0, 15.0]
    slope = bound.rhs_rows(np.array([25.0]), ours.y[None, :, on])[0]
    np.testing.assert_allclose(ours.dydt[:, on], slope, rtol=1e-12)


@pytest.mark.parametrize("solvers", [{"V": "exact"}, {"m,h,n": "exact"}, "classical"])
def test_exact_and_classical_sub_flows_march_in_the_kernel(monkeypatch, solvers):
    """HH with sub-flows that have no trial space — the exact flow of a linear sub-problem
    (kernels.exact_stage: e^(h[[A, b], [0, 0]]) by scaling and squaring) or classical RK4
    (kernels.rk4_stage) — marches in the kernel like the PINN's stages, its crossings and
    resets included: the loop tries no step, and the spikes are within 1e-4 ms of DOP853 at
    rtol 1e-12 (measured 3.4e-6 and 3.3e-6 ms).  They went stage by stage with numpy
    sub-flows (5.6 and 27 s for 100 ms against 0.04 and 0.1 s now) until they were compiled."""
    import splitpinn
    from splitpinn.solvers.composition import CompositionStepper

    tried = []
    original = CompositionStepper.attempt
    monkeypatch.setattr(CompositionStepper, "attempt",
                        lambda self, rows, *args: tried.append(len(rows))
                        or original(self, rows, *args))
    solution = splitpinn.solve("hh", "split-pinn", 40.0, parameters={"I": 10.0},
                               solvers=solvers)
    truth = splitpinn.solve("hh", "reference", 40.0, parameters={"I": 10.0}, rtol=1e-12,
                            atol=1e-12)
    assert solution.meta["solver"]["compiled"] and tried == []
    assert solution.spike_times.size == truth.spike_times.size == 3
    np.testing.assert_allclose(solution.spike_times, truth.spike_times, rtol=0, atol=1e-4)
