"""Sub-problem solvers behind one interface: advance a sub-problem's states over one stage, for
a batch of rows (neurons) at once.

``advance(sub, stage)`` returns the new values (R, S) of ``sub.states`` after the stage and a
mask (R,) of the rows whose stage is trustworthy; every other state in ``stage.y`` stays
frozen.  A row that fails (a PINN residual above its tolerance, a non-finite value) makes the
marching core shrink that row's step.  Solvers:

* :class:`LeastSquaresPINN` (default, trainer ``"least-squares"``): a random-feature network
  u(τ) = u₀ + Σ W ψ(τ) whose trial form meets the initial condition exactly; its output layer W
  is fitted to the residual at Chebyshev collocation points by Gauss–Newton (one
  least-squares solve when the sub-problem is (conditionally) linear), all rows together.
* :class:`AdamLBFGSPINN` (trainer ``"adam-lbfgs"``): the paper's trainer, a tanh MLP trained by
  Adam then L-BFGS, row by row.
* :class:`ExactFlow`: the matrix-exponential flow of a (conditionally) linear sub-problem.
* :class:`ClassicalRK4`: classical Runge–Kutta sub-steps, for verification and hybrids.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import sympy as sp

from ..declare.model import I_ext, t
from ..errors import ModelError
from ..fractional.history import SAME_STEP
from ..numeric import cache
from ..numeric.bound import BoundModel
from ..numeric.compiled import FlowKernel, StageKernel, smooth_stimulus
from ..numeric.kernels import RK4_SUBSTEPS, STAGE_EXACT, STAGE_RK4
from ..numeric.lambdify import lambdify
from .splitting import SubProblem


@dataclass
class Stage:
    """One stage of R rows: clock start ``t0`` (R,) and length ``h`` (R,) in ms (negative in
    4th-order schemes), the full states ``y`` (R, n), a mask ``frozen`` (R, n) of states held
    fixed (refractory clamp), the rows' parameter columns ``params`` (P, R), the rows'
    L2-1σ memories of the sub-problem (a list of R histories; ``None`` for integer order), and
    the stimulus (R,) where it is one value over the composed step (a stepwise stimulus,
    :meth:`~splitpinn.numeric.bound.BoundModel.step_stimulus`; else None)."""

    t0: np.ndarray
    h: np.ndarray
    y: np.ndarray
    frozen: np.ndarray
    params: np.ndarray
    memory: list | None = None
    stimulus: np.ndarray | None = None

    @cached_property
    def rows(self) -> int:
        return len(self.t0)


def _active(sub: SubProblem, stage: Stage) -> np.ndarray:
    """(R, S): True where the sub-problem's state is not clamped."""
    return ~stage.frozen[:, sub.index]


def stage_stimulus(bound: BoundModel, times: np.ndarray, params, fixed=None) -> np.ndarray:
    """The stimulus at ``times`` (R, m) of one stage: ``fixed`` (R,) where the stage has one
    value (:attr:`Stage.stimulus`), else sampled a hair inside each row's [min, max]: steps
    end at stimulus jumps, so a jump at a stage boundary belongs to the neighbouring stage."""
    if fixed is not None:
        return np.broadcast_to(np.asarray(fixed, dtype=float)[:, None], times.shape)
    if bound.constant_stimulus is not None:
        return bound.stimulus_columns(times, params)
    lo, hi = times.min(axis=1, keepdims=True), times.max(axis=1, keepdims=True)
    margin = SAME_STEP * (hi - lo)
    return bound.stimulus_columns(np.clip(times, lo + margin, hi - margin), params)


class ExactFlow:
    """x(t0+h) = e^{hA}x0 + ∫ e^{(h−s)A} b ds for x' = A x + b with A, b frozen at the stage,
    by the compiled rule (:func:`~splitpinn.numeric.kernels.exact_stage`)."""

    name = "exact"
    kind = STAGE_EXACT

    def __init__(self, bound: BoundModel, jit: bool = True, substeps: int = RK4_SUBSTEPS):
        self.bound, self.kernels, self.substeps = bound, FlowKernel(bound, jit), substeps

    def advance(self, sub: SubProblem, stage: Stage):
        """(:func:`~splitpinn.solvers.splitting.plan` refuses a sub-problem that it cannot
        solve: a nonlinear one for the exact flow, one with Caputo states for both.)"""
        y, residual = self.kernels.flow(sub.index, self.kind, stage.t0, stage.h, stage.y,
                                        stage.frozen, stage.params, stage.stimulus,
                                        self.substeps)
        return y[:, sub.index], np.isfinite(residual)


class ClassicalRK4(ExactFlow):
    """Classical 4th-order Runge–Kutta with ``substeps`` equal sub-steps per stage (a plan's:
    :data:`~splitpinn.numeric.kernels.RK4_SUBSTEPS`), by the compiled rule
    (:func:`~splitpinn.numeric.kernels.rk4_stage`)."""

    name = "classical"
    kind = STAGE_RK4


def chebyshev_points(m: int) -> np.ndarray:
    """Chebyshev–Lobatto points on [0, 1] (clustered at the ends, where the trial is pinned)."""
    return (1 - np.cos(np.pi * np.arange(m) / (m - 1))) / 2


def collocation_points(m: int) -> np.ndarray:
    """``m`` Chebyshev–Lobatto fit points on [0, 1] (the last is τ = 1), then the m − 1
    check points between them, where a PINN's residual is judged."""
    fit = chebyshev_points(m)
    return np.concatenate([fit, (fit[1:] + fit[:-1]) / 2])


class _Basis:
    """The trial space of one Caputo order on the collocation points.

    The seeded hidden layer φ = [1, tanh(aτ + b)] spans, per state, u − u₀ = τφᵀW (order 1) or
    τ^α φᵀW₁ + τφᵀW₂ (order α < 1, whose L1 solution grows like (t − t₀)^α).  ``vals`` are
    these functions at the points and ``ops`` the derivative operator on them: d/dτ for order
    1, and for order α the L1 local term (t − t₀)^α·D^α up to the factor h^(1−α)/Γ(2−α)
    that the stage supplies.  Random tanh features are nearly dependent, so the columns are
    orthonormalised once (the span, and so the fitted function, is unchanged) and the
    batched normal equations stay well conditioned.
    """

    def __init__(self, tau: np.ndarray, n_fit: int, phi: np.ndarray, dphi: np.ndarray,
                 order: float) -> None:
        t = tau[:, None]
        if order == 1:
            vals, ops = t * phi, phi + t * dphi
        else:
            vals = np.hstack([t**order * phi, t * phi])
            ops = np.hstack([phi, t ** (1 - order) * phi])
        fit = np.vstack([vals[:n_fit], ops[:n_fit]])
        _, s, vt = np.linalg.svd(fit, full_matrices=False)
        keep = s > 1e-14 * s[0]
        transform = vt[keep].T / s[keep]
        self.vals, self.ops = vals @ transform, ops @ transform
        self.end = self.vals[n_fit - 1]  # τ = 1


class LeastSquaresPINN:
    """Random-feature PINN whose output layer is fitted by (Gauss–Newton) least squares.

    Per sub-problem state the trial is u(τ) = u₀ + ψ(τ)ᵀW with τ = (t − t0)/h and a fixed,
    seeded hidden layer of ``features`` tanh units (see :class:`_Basis`).  The residual
    h·(du/dt − f) at ``points`` Chebyshev points is driven to zero (one least-squares solve for
    a (conditionally) linear sub-problem, Gauss–Newton iterations otherwise); a row is
    accepted when its residual at the points between them, relative to max(1, |u|), is below
    ``tol`` (``fractional_tol`` for sub-problems with Caputo states: the L1 relation inside a
    step carries (t − t₀)^(1−α) terms from the last intervals, which a step after a very short
    one (an event) resolves only to ~1e-8).  Components that do not couple (diagonal
    Jacobian, e.g. HH gates with V frozen) are fitted as independent small problems, states
    that couple together, with the model's Jacobian.  Every stage runs in the kernels of
    :mod:`splitpinn.numeric.kernels` and starts from u ≡ u₀, so a trial stage leaves no state
    behind.
    """

    name = "least-squares"

    def __init__(self, bound: BoundModel, features: int = 12, points: int | None = None,
                 tol: float = 1e-8, fractional_tol: float = 1e-6, max_iterations: int = 25,
                 seed: int = 0) -> None:
        if features < 2:
            raise ModelError("the least-squares PINN needs at least 2 features")
        self.bound, self.tol, self.max_iterations = bound, tol, max_iterations
        self.fractional_tol, self.features = fractional_tol, features
        self.n_fit = points or 2 * features
        self.tau = collocation_points(self.n_fit)
        rng = np.random.default_rng(seed)
        weights = rng.uniform(-0.5, 0.5, features - 1)
        z = np.tanh(np.outer(self.tau, weights) + rng.uniform(-0.5, 0.5, features - 1))
        self._phi = np.hstack([np.ones((len(self.tau), 1)), z])
        self._dphi = np.hstack([np.zeros((len(self.tau), 1)), (1 - z**2) * weights])
        self._bases: dict[tuple, tuple] = {}
        #: Whether the stage kernels run compiled (the stepper sets it: ``compiled=``)
        self.jit = True
        self._kernel = None
        #: Per row of the last stage: its residual (inf where the fit failed)
        self.last_residual = np.zeros(1)

    def settings(self) -> dict:
        return {"trainer": self.name, "features": self.features, "points": self.n_fit,
                "tol": self.tol, "fractional_tol": self.fractional_tol,
                "max_iterations": self.max_iterations}

    def _stacked_basis(self, orders: np.ndarray):
        """The bases of a sub-problem's states stacked and zero-padded to one width:
        vals, ops (S, m, K), end values (S, K) and padding (S, K)."""
        key = tuple(float(a) for a in orders)
        if key not in self._bases:
            bases = [_Basis(self.tau, self.n_fit, self._phi, self._dphi, a) for a in key]
            width = max(b.vals.shape[1] for b in bases)

            def pad(x):
                return np.pad(x, [(0, 0)] * (x.ndim - 1) + [(0, width - x.shape[-1])])

            self._bases[key] = (np.array([pad(b.vals) for b in bases]),
                                np.array([pad(b.ops) for b in bases]),
                                np.array([pad(b.end) for b in bases]),
                                np.array([np.arange(width) >= b.vals.shape[1] for b in bases]))
        return self._bases[key]

    def _frozen_coefficients(self, sub: SubProblem) -> bool:
        """True for an integer-order, decoupled, (conditionally) linear sub-problem whose
        coefficients do not change inside a stage (HH gates with V frozen, V with the gates
        frozen): each state then obeys u' = a·u + b(t) with one number a per row."""
        key = ("frozen", sub.name)
        if key not in self._bases:
            own = [self.bound.symbols[i] for i in sub.index]
            coefficient_free = all(not sp.diff(f, x).has(t, I_ext)
                                   for f, x in zip(sub.exprs, own, strict=True))
            self._bases[key] = (sub.kind != "nonlinear" and sub.decoupled
                                and not sub.fractional and coefficient_free)
        return self._bases[key]

    def _time_varying(self, sub: SubProblem) -> bool:
        """Whether the right-hand side changes inside a stage (a time-dependent stimulus, or
        t itself): then it is evaluated at every collocation point."""
        key = ("varying", sub.name)
        if key not in self._bases:
            self._bases[key] = (sub.uses_time and not self.bound.stepwise_stimulus
                                or any(e.has(t) for e in sub.exprs))
        return self._bases[key]

    def frozen_system(self):
        """The precomputed products of the frozen-coefficient path — normal matrices G0, G1,
        G2, the sums Σo and Σv over the fit points, the check rows o and v, the end row —
        which :class:`~splitpinn.numeric.compiled.StageKernel` compiles and
        :class:`~splitpinn.numeric.stage_table.StageTable` tabulates.  For u' = a·u + b with
        z = h·a the fit rows are (ops − z·vals)W = h·b, so the normal matrix is
        G0 − z·G1 + z²·G2."""
        if "scalar" not in self._bases:
            vals, ops, end, _ = self._stacked_basis(np.array([1.0]))
            v, o, n = vals[0], ops[0], self.n_fit
            self._bases["scalar"] = (o[:n].T @ o[:n], o[:n].T @ v[:n] + v[:n].T @ o[:n],
                                     v[:n].T @ v[:n], o[:n].T.sum(axis=1), v[:n].T.sum(axis=1),
                                     o[n:], v[n:], end[0])
        return self._bases["scalar"]

    def compiled_stage(self, sub: SubProblem) -> int | None:
        """How :class:`~splitpinn.numeric.compiled.StageKernel` solves ``sub``'s stages: 0 —
        frozen coefficients and a right-hand side constant over the stage (one number z per
        state: :meth:`frozen_system`, tabulated); k > 0 — fitted at every point by at most k
        Gauss–Newton iterations (all states together where they couple); −1 — a linear
        sub-problem fitted by one solve; None — not compiled (Caputo states, whose memory it
        does not hold).  Decided once per sub-problem: :meth:`advance` asks at every stage."""
        key = ("compiled", sub.name)
        if key not in self._bases:
            if sub.fractional:
                self._bases[key] = None
            elif self._frozen_coefficients(sub) and not self._time_varying(sub):
                self._bases[key] = 0
            else:
                self._bases[key] = self.max_iterations if sub.kind == "nonlinear" else -1
        return self._bases[key]

    def memory_fit(self, sub: SubProblem) -> tuple | None:
        """How :func:`~splitpinn.numeric.kernels.memory_stage` (or
        :func:`~splitpinn.numeric.kernels.coupled_memory_stage`) fits ``sub``'s stages against
        a memory (stacked with the plan's others into the ``fit`` of
        :func:`~splitpinn.numeric.compiled.march_uniform` by
        :func:`~splitpinn.numeric.compiled.plan_fit`): its
        stacked trial space, at most ``max_iterations`` Gauss–Newton iterations (−1: linear,
        one solve), the tolerances, the trial space transposed, whether the right-hand side
        changes inside a stage (:meth:`_time_varying`); None without Caputo states."""
        if not sub.fractional:
            return None
        smooth = smooth_stimulus(self.bound) is not None
        vals, _, end, padding = self._stacked_basis(sub.orders)
        return (np.ascontiguousarray(vals, dtype=float), np.ascontiguousarray(end, dtype=float),
                np.ascontiguousarray(padding, dtype=bool),
                np.ascontiguousarray(self.tau, dtype=float), int(self.n_fit),
                self.max_iterations if sub.kind == "nonlinear" else -1, float(self.tol), smooth,
                float(self.fractional_tol),
                np.ascontiguousarray(vals.transpose(0, 2, 1), dtype=float),
                bool(self._time_varying(sub)))

    def compiled_basis(self):
        """The order-1 trial space for :class:`splitpinn.numeric.compiled.Composition`: its
        values and derivative operator at the points (m, K), its end row (K,), the points τ
        and how many of them are fit points (the rest are check points)."""
        vals, ops, end, _ = self._stacked_basis(np.array([1.0]))
        return vals[0], ops[0], end[0], self.tau, self.n_fit

    @property
    def kernels(self) -> StageKernel:
        """The stage kernels (compiled unless ``jit`` is False), built on first use."""
        if self._kernel is None:
            self._kernel = StageKernel(self.bound, self, self.jit)
        return self._kernel

    def _advance_compiled(self, sub: SubProblem, stage: Stage, iterations: int):
        """:meth:`advance` of an integer-order sub-problem by the stage kernels
        (:class:`~splitpinn.numeric.compiled.StageKernel`)."""
        y, residual = self.kernels.advance(sub.index, iterations, not sub.decoupled, stage.t0,
                                            stage.h, stage.y, stage.frozen, stage.params,
                                            stage.stimulus)
        return self._finish(y[:, sub.index].T, residual, sub)

    def _finish(self, values: np.ndarray, residual: np.ndarray, sub: SubProblem):
        """Values (R, S) and the mask of rows whose residual meets the tolerance."""
        residual = np.where(np.isfinite(residual), residual, np.inf)
        self.last_residual = residual
        ok = residual <= (self.fractional_tol if sub.fractional else self.tol)
        values = values.T
        return values, ok & np.all(np.isfinite(values), axis=1)

    def advance(self, sub: SubProblem, stage: Stage):
        """``sub``'s stage for the rows of ``stage``: (values (R, S), the rows that met the
        tolerance), by :meth:`compiled_stage`'s kernel.  A sub-problem with Caputo states is
        fitted against its memory inside the kernel march
        (:meth:`~splitpinn.solvers.composition.CompositionStepper.run`, :meth:`memory_fit`),
        never stage by stage."""
        if sub.fractional:
            raise ModelError(f"sub-problem {sub.name}: its Caputo states are fitted against "
                             "the memory by the kernel march, not stage by stage")
        return self._advance_compiled(sub, stage, self.compiled_stage(sub))

class AdamLBFGSPINN:
    """The paper's trainer: a tanh MLP per sub-problem, trial u = u₀ + τ·N(τ), trained on the
    residual at Chebyshev points by ``adam_iterations`` Adam steps then L-BFGS, warm-started
    from the previous stage's network.  Slow but faithful; ``tol`` applies as for
    :class:`LeastSquaresPINN`, looser by default because first-order training stalls near
    a relative residual of 1e-4 whatever the step (measured on x' = −x and HH gates).

    The rows of a stage train together, one network each, stacked into batched matrix
    products (one forward and backward pass for all rows): the loss is the sum of the rows'
    losses, so each row's gradient is its own and Adam, elementwise, takes each row's own
    steps; L-BFGS then minimises the sum (one line search for all rows).  Every row starts
    from the same network, the first row's of the previous stage: a batch of one trains as a
    single neuron does."""

    name = "adam-lbfgs"

    def __init__(self, bound: BoundModel, width: int = 20, depth: int = 2, points: int = 24,
                 adam_iterations: int = 100, learning_rate: float = 1e-3,
                 lbfgs_iterations: int = 50, tol: float = 1e-3, seed: int = 0) -> None:
        import torch

        self.torch, self.bound = torch, bound
        self.width, self.depth, self.tol = width, depth, tol
        self.adam_iterations, self.learning_rate = adam_iterations, learning_rate
        self.lbfgs_iterations, self.seed = lbfgs_iterations, seed
        self.tau = collocation_points(points)
        self.n_fit = points
        self._nets: dict = {}
        #: Per row of the last stage: its residual (inf where the fit failed)
        self.last_residual = np.zeros(1)

    def settings(self) -> dict:
        return {"trainer": self.name, "width": self.width, "depth": self.depth,
                "points": self.n_fit, "adam_iterations": self.adam_iterations,
                "learning_rate": self.learning_rate, "lbfgs_iterations": self.lbfgs_iterations,
                "tol": self.tol}

    def _network(self, sub: SubProblem, rows: int) -> list:
        """The sub-problem's network for ``rows`` rows: per layer (weights (R, in, out),
        biases (R, 1, out)), each row a copy of the network kept from the previous stage
        (seeded tanh layers at the first)."""
        torch = self.torch
        if sub.name not in self._nets:
            torch.manual_seed(self.seed)
            sizes = [1] + [self.width] * self.depth + [len(sub.index)]
            self._nets[sub.name] = [
                (layer.weight.detach().double().T, layer.bias.detach().double()[None])
                for layer in (torch.nn.Linear(a, b)
                              for a, b in zip(sizes[:-1], sizes[1:], strict=True))]
        return [(w.expand(rows, -1, -1).contiguous().requires_grad_(),
                 b.expand(rows, -1, -1).contiguous().requires_grad_())
                for w, b in self._nets[sub.name]]

    def _torch_rhs(self, sub: SubProblem):
        """The sub-problem's right-hand sides for torch, lambdified once per model content."""
        return cache.cached(self.bound.model.key, ("torch", tuple(sub.states)),
                            lambda: lambdify(self.bound.args, sub.exprs, "torch"))

    def advance(self, sub: SubProblem, stage: Stage):
        torch = self.torch
        rows, m = stage.rows, len(self.tau)
        layers, rhs = self._network(sub, rows), self._torch_rhs(sub)
        h = torch.tensor(stage.h)[:, None, None]
        tau = torch.tensor(np.broadcast_to(self.tau[None, :, None], (rows, m, 1)).copy(),
                           requires_grad=True)
        u0 = torch.tensor(stage.y[:, sub.index])[:, None, :]
        active = torch.tensor(_active(sub, stage), dtype=torch.float64)[:, None, :]
        sigma = np.ones((rows, 1))
        if stage.memory is not None:  # the memory's L2-1σ relation, as LeastSquaresPINN's
            tail = self.tau > 0
            sigma = np.array([[memory.sigma] for memory in stage.memory])
            hist, coef = np.zeros((rows, m, len(sub.index))), np.zeros((rows, m,
                                                                        len(sub.index)))
            for r, memory in enumerate(stage.memory):
                at = stage.t0[r] + self.tau[tail] * stage.h[r]
                hist[r, tail], coef[r, tail] = memory.terms(at)
            hist, coef = torch.tensor(hist) * active, torch.tensor(coef)
        times = stage.t0[:, None] + sigma * self.tau[None] * stage.h[:, None]  # f's times
        params = list(stage.params[:, :, None])
        stim = torch.tensor(np.broadcast_to(
            stage_stimulus(self.bound, times, params, stage.stimulus), times.shape).copy())
        # no τ = 0 row with a memory, whose local coefficient is infinite there
        fit = torch.tensor((self.tau > 0) | (stage.memory is None))[: self.n_fit]
        frozen_args = [torch.tensor(stage.y[:, i, None]) for i in range(stage.y.shape[1])] \
            + [torch.tensor(p) for p in params]
        sigma_t, times_t = torch.tensor(sigma), torch.tensor(times)

        def net(x):
            for k, (w, b) in enumerate(layers):
                x = torch.baddbmm(b, x, w)
                x = torch.tanh(x) if k < len(layers) - 1 else x
            return x

        def residual():
            u = u0 + tau * net(tau)
            args = list(frozen_args)
            for k, i in enumerate(sub.index):
                args[i] = u0[:, :, k] + sigma_t * (u[:, :, k] - u0[:, :, k])
            f = torch.stack([torch.broadcast_to(torch.as_tensor(v, dtype=torch.float64),
                                                (rows, m))
                             for v in rhs(times_t, stim, *args)], dim=2) * active
            if stage.memory is not None:
                du = h * (coef * (u - u0) + hist)
            else:
                du = torch.cat([torch.autograd.grad(u[:, :, k].sum(), tau,
                                                    create_graph=True)[0]
                                for k in range(u.shape[2])], dim=2)
            return du - h * f, u

        def loss():  # the rows' mean squares, summed: each row's gradient is its own
            r, _ = residual()
            return (r[:, : self.n_fit][:, fit] ** 2).mean(dim=(1, 2)).sum()

        parameters = [p for layer in layers for p in layer]
        adam = torch.optim.Adam(parameters, lr=self.learning_rate)
        for _ in range(self.adam_iterations):
            adam.zero_grad()
            value = loss()
            value.backward()
            adam.step()
        lbfgs = torch.optim.LBFGS(parameters, max_iter=self.lbfgs_iterations,
                                  tolerance_grad=1e-14, tolerance_change=1e-16,
                                  line_search_fn="strong_wolfe")

        def closure():
            lbfgs.zero_grad()
            value = loss()
            value.backward()
            return value

        lbfgs.step(closure)
        self._nets[sub.name] = [(w.detach()[0], b.detach()[0]) for w, b in layers]
        r, u = residual()
        r, u = r.detach().numpy()[:, self.n_fit:], u.detach().numpy()[:, self.n_fit:]
        residual_rows = np.max(np.abs(r) / np.maximum(1.0, np.abs(u)), axis=(1, 2))
        residual_rows[~np.isfinite(residual_rows)] = np.inf
        with torch.no_grad():
            values = (u0 + net(torch.ones(rows, 1, 1, dtype=torch.float64)))[:, 0].numpy()
        self.last_residual = residual_rows
        return values, residual_rows <= self.tol
