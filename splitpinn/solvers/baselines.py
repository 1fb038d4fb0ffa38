"""The vanilla PINN baseline: one DeepXDE network over the whole interval [0, t_end].

This is what a user would try instead of split-PINN: no splitting, no time marching, one
fully connected network trained with Adam on the residuals of all the model's ODEs at
collocation points spread over [0, t_end].  It is given the usual, fair conditioning — the
initial condition is imposed exactly by an output transform, time enters the network scaled
to [-1, 1] and each state's output and residual are scaled by that state's magnitude — so that
its failure on spiking dynamics (design: rel. L2(V) ≈ 0.6 on HH 0–20 ms) is the method's, not a
handicap.  DeepXDE is imported only when a solve runs, so ``import splitpinn`` stays fast.
"""

from __future__ import annotations

import contextlib
import io
import os
import random
import time as _time

import numpy as np

from ..errors import ModelError, SolverError
from ..numeric.bound import BoundModel
from ..numeric.lambdify import lambdify
from .solution import Solution

#: Collocation points per ms of simulated time by default, and the default's bounds.
POINTS_PER_MS = 20
MIN_POINTS = 500
MAX_POINTS = 4000


def default_points(t_end: float) -> int:
    """About ``POINTS_PER_MS`` collocation points per ms, at least ``MIN_POINTS`` and at most
    ``MAX_POINTS`` (beyond that a single network is the bottleneck, not the sampling)."""
    return int(min(MAX_POINTS, max(MIN_POINTS, round(POINTS_PER_MS * t_end))))


def check_supported(bound: BoundModel) -> None:
    """Raise :class:`ModelError` for models the vanilla PINN cannot represent honestly: a
    fractional (Caputo) order, or reset events (a smooth network cannot jump)."""
    if bound.fractional:
        raise ModelError(f"vanilla-pinn supports integer-order models only (model "
                         f"{bound.model.name} has Caputo orders {bound.orders.tolist()})")
    if bound.model.events:
        raise ModelError(f"vanilla-pinn cannot represent reset events (model "
                         f"{bound.model.name}); use split-pinn or reference")


def _import_deepxde():
    """Import DeepXDE with the pytorch backend, swallowing the banner it prints on first
    import (noise on the command line's stdout/stderr, not progress)."""
    os.environ.setdefault("DDE_BACKEND", "pytorch")
    with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
        import deepxde as dde
    if dde.backend.backend_name != "pytorch":
        raise ModelError(f"vanilla-pinn needs DeepXDE's pytorch backend, but DDE_BACKEND="
                         f"{dde.backend.backend_name!r}")
    return dde


def solve_vanilla_pinn(bound: BoundModel, grid: np.ndarray, *, iterations: int = 5000,
                       width: int = 64, depth: int = 3, learning_rate: float = 1e-3,
                       points: int | None = None, seed: int = 0, quiet: bool = True,
                       traces: bool = True) -> list[Solution]:
    """Train one DeepXDE network u(t) per neuron on [t0, t_end] = [grid[0], grid[-1]] ms and
    sample it on ``grid``; one :class:`Solution` per neuron (``traces=False``: the end points
    only, spike times read off the full grid).

    u_k(t) = y0_k + τ·s_k·N_k(2τ − 1), τ = (t − t0)/(t_end − t0), with s_k = max(1, |y0_k|)
    meets the initial condition exactly; the loss is the mean square of
    (u_k' − f_k(t, I(t), u))/s_k at ``points`` uniform collocation points (default
    :func:`default_points`).  ``depth`` hidden tanh layers of ``width`` units, Adam for
    ``iterations`` steps at ``learning_rate``, float64, seeded by ``seed`` (same seed, same
    result; the global random states are restored afterwards).  Unless ``quiet``, a progress
    bar over the iterations on stderr; DeepXDE's own printing is always silenced.
    ``meta["wall_time_s"]`` is the training and sampling time (not the one-off DeepXDE import).

    Raises :class:`ModelError` for fractional models, models with reset events and bad
    options, and :class:`SolverError` when training diverged to non-finite values (a large
    error on spiking dynamics is this baseline's known behaviour, not an error).
    """
    check_supported(bound)
    for name, value in (("iterations", iterations), ("width", width), ("depth", depth)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
            raise ModelError(f"{name} must be a positive integer, got {value!r}")
    if not np.isfinite(learning_rate) or learning_rate <= 0:
        raise ModelError(f"learning_rate must be a positive number, got {learning_rate!r}")
    grid = np.asarray(grid, dtype=float)
    n_points = default_points(grid[-1] - grid[0]) if points is None else points
    if isinstance(n_points, bool) or not isinstance(n_points, int | np.integer) or n_points < 2:
        raise ModelError(f"points must be an integer >= 2, got {points!r}")
    settings = {"name": "deepxde", "iterations": int(iterations), "width": int(width),
                "depth": int(depth), "points": int(n_points),
                "learning_rate": float(learning_rate), "seed": int(seed), "threads": 1}
    rows = [bound] if not bound.batch else [bound.row(i) for i in range(bound.batch)]
    return [_solve_one(row, grid, settings, quiet, traces) for row in rows]


def _solve_one(bound: BoundModel, grid: np.ndarray, settings: dict, quiet: bool,
               traces: bool) -> Solution:
    """The vanilla PINN for one neuron (see :func:`solve_vanilla_pinn`)."""
    dde = _import_deepxde()
    import torch

    start = _time.perf_counter()  # the one-off import (seconds) is not the solve's cost
    previous_dtype, previous_threads = torch.get_default_dtype(), torch.get_num_threads()
    sink = io.StringIO()
    try:
        # a network this small runs fastest on one thread (intra-op threads on 2 shared
        # cores spin and slow every step ~5x); restored below
        torch.set_num_threads(1)
        # DeepXDE's own prints go to stdout
        with contextlib.redirect_stdout(sink), _seeded(dde, torch, settings["seed"]):
            dde.config.set_default_float("float64")
            model, final_loss = _train(dde, torch, bound, float(grid[0]), float(grid[-1]),
                                       settings, quiet)
            y = np.asarray(model.predict(grid[:, None]), dtype=float).T
    finally:
        torch.set_default_dtype(previous_dtype)  # DeepXDE set it globally; give it back
        torch.set_num_threads(previous_threads)
    if not np.all(np.isfinite(y)):
        raise SolverError(f"vanilla-pinn diverged on model {bound.model.name}: non-finite "
                          f"values (final loss {final_loss:g}); try a smaller learning_rate")
    spikes = np.asarray(bound.spike_times_from_trace(grid, dict(zip(bound.names, y,
                                                                    strict=True))), dtype=float)
    meta = {"solver": {**settings, "final_loss": final_loss},
            "wall_time_s": _time.perf_counter() - start}
    if not traces:
        grid, y = grid[[0, -1]], y[:, [0, -1]]
    return Solution(grid, y, list(bound.names), spikes, meta)


@contextlib.contextmanager
def _seeded(dde, torch, seed: int):
    """Seed DeepXDE (Python's, numpy's and torch's global generators) for the block, then give
    every generator its state from before: a solve leaves the caller's random streams as
    it found them."""
    states = (random.getstate(), np.random.get_state(), torch.get_rng_state(),
              torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None,
              dde.config.random_seed)
    dde.config.set_random_seed(seed)
    try:
        yield
    finally:
        python, numpy, cpu, cuda, dde.config.random_seed = states
        random.setstate(python)
        np.random.set_state(numpy)
        torch.set_rng_state(cpu)
        if cuda is not None:
            torch.cuda.set_rng_state_all(cuda)


def _train(dde, torch, bound: BoundModel, t0: float, t_end: float, settings: dict,
           quiet: bool):
    """Build the DeepXDE model on [t0, t_end] and run Adam; returns (model, final training
    loss)."""
    iterations, span = settings["iterations"], t_end - t0
    n = len(bound.names)
    y0 = torch.tensor(bound.y0, dtype=torch.float64)
    scale = torch.tensor(np.maximum(1.0, np.abs(bound.y0)), dtype=torch.float64)
    # arguments t, I_ext and the states: rhs_exprs hold the parameter values as numbers
    rhs = lambdify((*bound.args[:2], *bound.symbols), bound.rhs_exprs, "torch")

    def residual(x, u, stim):
        """(u_k' − f_k)/s_k for every state k; ``stim`` is I_ext at the points (numpy)."""
        du = [dde.grad.jacobian(u, x, i=k, j=0) for k in range(n)]
        f = rhs(x, stim, *(u[:, k:k + 1] for k in range(n)))
        return [(du[k] - f[k]) / scale[k] for k in range(n)]

    geometry = dde.geometry.TimeDomain(t0, t_end)
    # the stimulus may be a Heaviside step, which torch cannot lambdify: evaluate it with
    # numpy at the collocation points and hand it to the residual as an auxiliary variable
    data = dde.data.PDE(geometry, residual, [], num_domain=settings["points"], num_boundary=0,
                        train_distribution="uniform",
                        auxiliary_var_function=lambda x: np.asarray(
                            bound.stimulus(x[:, 0]), dtype=float).reshape(-1, 1))
    net = dde.nn.FNN([1] + [settings["width"]] * settings["depth"] + [n], "tanh",
                     "Glorot normal")
    net.apply_feature_transform(lambda x: 2.0 * (x - t0) / span - 1.0)
    net.apply_output_transform(lambda x, out: y0 + ((x - t0) / span) * scale * out)
    model = dde.Model(data, net)
    model.compile("adam", lr=settings["learning_rate"], verbose=0)
    callbacks = [] if quiet else [_ProgressCallback(dde, iterations, bound.model.name)]
    try:
        _, state = model.train(iterations=iterations, display_every=iterations + 1,
                               callbacks=callbacks, verbose=0)
    finally:
        for cb in callbacks:
            cb.close()
    return model, float(np.sum(state.loss_train))


def _ProgressCallback(dde, iterations: int, name: str):
    """A DeepXDE callback driving a tqdm bar (stderr) over the Adam iterations."""
    from .progress import bar

    class Progress(dde.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.bar = bar(iterations, f"vanilla-pinn {name}", "it")

        def on_epoch_end(self) -> None:
            self.bar.update(1)

        def close(self) -> None:
            self.bar.close()

    return Progress()
