"""Sub-problem solvers behind one interface: advance a sub-problem's states over one stage.

``advance(sub, stage)`` returns the new values of ``sub.states`` after the stage; every other
state in ``stage.y`` stays frozen.  Solvers:

* :class:`LeastSquaresPINN` (default, trainer ``"least-squares"``): a random-feature network
  u(τ) = u₀ + τ·Σ W φ(τ) whose trial form meets the initial condition exactly; its output layer
  W is fitted to the residual at Chebyshev collocation points by Gauss–Newton (one
  least-squares solve when the sub-problem is (conditionally) linear).
* :class:`AdamLBFGSPINN` (trainer ``"adam-lbfgs"``): the paper's trainer, a tanh MLP trained by
  Adam then L-BFGS, warm-started from the previous step.
* :class:`ExactFlow`: the matrix-exponential flow of a (conditionally) linear sub-problem.
* :class:`ClassicalRK4`: classical Runge–Kutta sub-steps, for verification and hybrids.

A PINN whose residual misses its tolerance raises :class:`StageFailure`; the marcher retries
with smaller steps and otherwise stops with an error naming the time and the sub-problem.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import scipy.linalg
import scipy.linalg.lapack

from .errors import ModelError, StageFailure
from .functions import lambdify
from .model import BoundModel
from .splitting import SubProblem


@dataclass
class Stage:
    """One stage: clock start ``t0`` and length ``h`` (ms, may be negative in 4th-order
    schemes), the full state ``y``, a mask of states held fixed (refractory clamp), and the
    fractional memory of the sub-problem (``None`` for integer order)."""

    t0: float
    h: float
    y: np.ndarray
    frozen: np.ndarray
    memory: object = None


def evaluate(bound: BoundModel, sub: SubProblem, times: np.ndarray, y_sub: np.ndarray,
             y: np.ndarray, jacobian: str | None = "full"):
    """Right-hand sides (S, m) of ``sub`` at ``times`` with its own states ``y_sub`` (S, m) and
    the others frozen at their values in ``y``; with ``jacobian="full"`` also the Jacobians
    (S, S, m), with ``"diagonal"`` only their diagonals (S, m)."""
    args = list(y)
    for k, i in enumerate(sub.index):
        args[i] = y_sub[k]
    stim = stage_stimulus(bound, times)
    n = len(sub.index)
    f = np.empty((n, len(times)))
    jac = None
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        for k, value in enumerate(sub.f(times, stim, *args)):
            f[k] = value
        if jacobian == "diagonal":
            jac = np.empty((n, len(times)))
            for k, value in enumerate(sub.jacobian_diagonal(times, stim, *args)):
                jac[k] = value
        elif jacobian == "full":
            jac = np.empty((n, n, len(times)))
            for k, row in enumerate(sub.jacobian(times, stim, *args)):
                for j, value in enumerate(row):
                    jac[k, j] = value
    return f, jac


def stage_stimulus(bound: BoundModel, times: np.ndarray):
    """The stimulus at ``times`` of one stage, sampled a hair inside [min, max]: steps end
    at stimulus jumps, so a jump at a stage boundary belongs to the neighbouring stage."""
    if bound.constant_stimulus is not None:
        return bound.constant_stimulus
    lo, hi = times.min(), times.max()
    margin = 1e-9 * (hi - lo)
    return bound.stimulus(np.clip(times, lo + margin, hi - margin))


def _active(sub: SubProblem, stage: Stage) -> np.ndarray:
    return ~stage.frozen[sub.index]


class ExactFlow:
    """x(t0+h) = e^{hA}x0 + ∫ e^{(h−s)A} b ds for x' = A x + b with A, b frozen at the stage."""

    name = "exact"

    def __init__(self, bound: BoundModel) -> None:
        self.bound = bound

    def advance(self, sub: SubProblem, stage: Stage) -> np.ndarray:
        if sub.kind == "nonlinear" or sub.fractional:
            raise ModelError(f"no exact flow for the {sub.kind} sub-problem {sub.name}")
        x0 = stage.y[sub.index]
        t0 = np.array([stage.t0])
        f, jac = evaluate(self.bound, sub, t0, x0[:, None], stage.y)
        active = _active(sub, stage)
        a = jac[:, :, 0] * active[:, None] * active[None, :]
        b = f[:, 0] * active - a @ x0
        n = len(x0)
        aug = np.zeros((n + 1, n + 1))
        aug[:n, :n], aug[:n, n] = a, b
        return (scipy.linalg.expm(stage.h * aug) @ np.append(x0, 1.0))[:n]


class ClassicalRK4:
    """Classical 4th-order Runge–Kutta with ``substeps`` equal sub-steps per stage."""

    name = "classical"

    def __init__(self, bound: BoundModel, substeps: int = 4) -> None:
        self.bound, self.substeps = bound, substeps

    def advance(self, sub: SubProblem, stage: Stage) -> np.ndarray:
        if sub.fractional:
            raise ModelError(f"classical RK cannot solve the fractional sub-problem {sub.name}")
        active = _active(sub, stage)
        x = stage.y[sub.index].astype(float)
        dt = stage.h / self.substeps

        def rhs(time, xs):
            f, _ = evaluate(self.bound, sub, np.array([time]), xs[:, None], stage.y, None)
            return f[:, 0] * active

        for j in range(self.substeps):
            s = stage.t0 + j * dt
            k1 = rhs(s, x)
            k2 = rhs(s + dt / 2, x + dt / 2 * k1)
            k3 = rhs(s + dt / 2, x + dt / 2 * k2)
            k4 = rhs(s + dt, x + dt * k3)
            x = x + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        return x


def chebyshev_points(m: int) -> np.ndarray:
    """Chebyshev–Lobatto points on [0, 1] (clustered at the ends, where the trial is pinned)."""
    return (1 - np.cos(np.pi * np.arange(m) / (m - 1))) / 2


def collocation_points(m: int) -> np.ndarray:
    """``m`` Chebyshev–Lobatto fit points on [0, 1] (the last is τ = 1), then the m − 1
    check points between them, where a PINN's residual is judged."""
    fit = chebyshev_points(m)
    return np.concatenate([fit, (fit[1:] + fit[:-1]) / 2])


class _Collocation:
    """Collocation points τ in [0, 1] followed by check points between them, and the PINN's
    fixed, seeded hidden layer φ = [1, tanh(aτ + b)] with its derivative there."""

    def __init__(self, features: int, points: int, seed: int) -> None:
        rng = np.random.default_rng(seed)
        self.n_fit = points
        self.tau = collocation_points(points)
        weights = rng.uniform(-0.5, 0.5, features - 1)
        z = np.tanh(np.outer(self.tau, weights) + rng.uniform(-0.5, 0.5, features - 1))
        self.phi = np.hstack([np.ones((len(self.tau), 1)), z])
        self.dphi = np.hstack([np.zeros((len(self.tau), 1)), (1 - z**2) * weights])


_GELSY, _GELSY_LWORK = scipy.linalg.lapack.get_lapack_funcs(("gelsy", "gelsy_lwork"),
                                                            dtype=np.float64)


def _lstsq(a: np.ndarray, b: np.ndarray, rcond: float = 1e-14) -> np.ndarray:
    """Least squares by LAPACK's column-pivoted QR (dgelsy), called directly: these systems
    are tiny and solved thousands of times, so the wrapper overhead of scipy.linalg.lstsq
    would dominate."""
    m, n = a.shape
    x = _GELSY(a, b, np.zeros(n, dtype=np.int32), rcond, _gelsy_lwork(m, n, rcond))[1]
    return x[:n]


@functools.cache
def _gelsy_lwork(m: int, n: int, rcond: float) -> int:
    return int(_GELSY_LWORK(m, n, 1, rcond)[0])


class LeastSquaresPINN:
    """Random-feature PINN whose output layer is fitted by (Gauss–Newton) least squares.

    Per sub-problem state the trial is u(τ) = u₀ + τ·φ(τ)ᵀW with τ = (t − t0)/h and a fixed,
    seeded hidden layer φ of ``features`` tanh units (one of them constant).  The residual
    h·(du/dt − f) at ``points`` Chebyshev points is driven to zero (one least-squares solve for
    a (conditionally) linear sub-problem, Gauss–Newton iterations otherwise); the step is
    accepted when the residual at the points between them, relative to max(1, |u|), is below
    ``tol`` (``fractional_tol`` for sub-problems with Caputo states: the L1 relation inside a
    step carries (t − t₀)^(1−α) terms from the last intervals, which a step after a very short
    one (an event) resolves only to ~1e-8).  Components that do not couple (diagonal
    Jacobian, e.g. HH gates with V frozen) are fitted as independent small problems.
    """

    name = "least-squares"

    def __init__(self, bound: BoundModel, features: int = 12, points: int | None = None,
                 tol: float = 1e-8, fractional_tol: float = 1e-6, max_iterations: int = 25,
                 seed: int = 0) -> None:
        if features < 2:
            raise ModelError("the least-squares PINN needs at least 2 features")
        self.bound, self.tol, self.max_iterations = bound, tol, max_iterations
        self.fractional_tol = fractional_tol
        self.features = features
        colloc = _Collocation(features, points or 2 * features, seed)
        self.tau, self.n_fit, self.phi = colloc.tau, colloc.n_fit, colloc.phi
        self.p = self.tau[:, None] * colloc.phi  # u − u₀ for an ordinary derivative
        self.d = colloc.phi + self.tau[:, None] * colloc.dphi  # d/dτ of it
        self._warm: dict[str, tuple[np.ndarray, float]] = {}
        self._integer_operators: dict[str, tuple] = {}
        self.iterations = 0
        self.max_residual = 0.0

    def settings(self) -> dict:
        return {"trainer": self.name, "features": self.features, "points": self.n_fit,
                "tol": self.tol, "fractional_tol": self.fractional_tol,
                "max_iterations": self.max_iterations}

    def _operators(self, sub: SubProblem, stage: Stage):
        """Per state k: ``vals[k]`` maps W to u − u₀ at the points, ``ops[k]`` maps W to h
        times the derivative, ``known[k]`` is h times the known (history) part of it, and
        ``weight[k]`` weighs the residual rows.

        Ordinary derivative: u = u₀ + τφ(τ)ᵀW.  Caputo derivative of order α < 1 (L1): the
        solution of the L1 relation inside a step grows like (t − t₀)^α and the history of
        the last interval adds (t − t₀)^(1−α) terms, so the trial is
        u = u₀ + τ^α φ(τ)ᵀW₁ + τ φ(τ)ᵀW₂, and h·D^α u = h·[history(t) + c(t)(u − u₀)] with
        c(t) = 1/(Γ(2−α)(t − t₀)^α).  The row at τ = 0 (where c is infinite) is dropped.
        A sub-problem with fractional states has 2K weights per state (integer-order states
        leave the second half at zero)."""
        if not sub.fractional and sub.name in self._integer_operators:
            return self._integer_operators[sub.name]
        s, m = len(sub.index), len(self.tau)
        width = self.features * (2 if sub.fractional else 1)
        vals = np.zeros((s, m, width))
        ops = np.zeros((s, m, width))
        vals[:, :, : self.features] = self.p
        ops[:, :, : self.features] = self.d
        known = np.zeros((s, m))
        weight = np.ones((s, m))
        fractional = np.nonzero(sub.orders < 1)[0]
        if fractional.size:
            tail = self.tau > 0
            times = stage.t0 + self.tau[tail] * stage.h
            history = stage.memory.history_term(times)
            scale = stage.h * stage.memory.local_coefficient(stage.t0 + stage.h)
            for k in fractional:
                a = sub.orders[k]
                vals[k] = np.hstack([self.tau[:, None] ** a * self.phi, self.p])
                ops[k] = scale[k] * np.hstack([self.phi, self.tau[:, None] ** (1 - a) * self.phi])
                known[k, tail] = stage.h * history[:, k] * (not stage.frozen[sub.index[k]])
                weight[k, ~tail] = 0.0
        else:
            self._integer_operators[sub.name] = vals, ops, known, weight
        return vals, ops, known, weight

    def _linearised(self, sub, stage, w, operators):
        """Residual r (S, m) at W and its Jacobian in W: diagonal blocks (S, m, K) when the
        components decouple, else the full (S·m, S·K) matrix."""
        vals, ops, known, weight = operators
        u = stage.y[sub.index][:, None] + np.einsum("kij,jk->ki", vals, w)
        times = stage.t0 + self.tau * stage.h
        f, jac = evaluate(self.bound, sub, times, u, stage.y,
                          "diagonal" if sub.decoupled else "full")
        if stage.frozen.any():
            active = _active(sub, stage)
            f = f * active[:, None]
            jac = jac * (active[:, None] if sub.decoupled else
                         (active[:, None] * active[None, :])[:, :, None])
        r = (np.einsum("kij,jk->ki", ops, w) + known - stage.h * f) * weight
        if sub.decoupled:
            return r, (ops - stage.h * jac[:, :, None] * vals) * weight[:, :, None], u
        s, m, k = ops.shape
        a = -stage.h * jac[:, :, :, None] * vals[None]  # a[k, l, i, j]
        for j in range(s):
            a[j, j] += ops[j]
        a = (a * weight[:, None, :, None]).transpose(0, 2, 1, 3)
        return r, a.reshape(s * m, s * k), u

    def _solve(self, sub: SubProblem, r: np.ndarray, a: np.ndarray) -> np.ndarray:
        """Least-squares update ΔW (K, S) from the fit rows."""
        n, s = self.n_fit, r.shape[0]
        if sub.decoupled:
            return np.stack([_lstsq(a[j, :n], -r[j, :n]) for j in range(s)], axis=1)
        rows = (np.arange(s)[:, None] * r.shape[1] + np.arange(n)).ravel()
        return _lstsq(a[rows], -r[:, :n].ravel()).reshape(s, -1).T

    def _apply(self, sub: SubProblem, a: np.ndarray, step: np.ndarray) -> np.ndarray:
        """The change of the residual, A·ΔW, shaped like r."""
        if sub.decoupled:
            return np.einsum("kij,jk->ki", a, step)
        return (a @ step.T.ravel()).reshape(step.shape[1], -1)

    def advance(self, sub: SubProblem, stage: Stage) -> np.ndarray:
        operators = self._operators(sub, stage)
        w = self._warm_start(sub, stage.h, operators[0].shape[2])
        for _ in range(self.max_iterations):
            r, a, u = self._linearised(sub, stage, w, operators)
            step = self._solve(sub, r, a)
            w += step
            r = r + self._apply(sub, a, step)  # exact when linear, O(|ΔW|²) otherwise
            self.iterations += 1
            change = np.max(np.abs(np.einsum("kij,jk->ki", operators[0], step)))
            if sub.kind != "nonlinear" or change <= 1e-3 * self.tol * max(1.0, np.max(np.abs(u))):
                break
        u = stage.y[sub.index][:, None] + np.einsum("kij,jk->ki", operators[0], w)
        check = slice(self.n_fit, None)
        residual = float(np.max(np.abs(r[:, check]) / np.maximum(1.0, np.abs(u[:, check]))))
        self.max_residual = max(self.max_residual, residual)
        tol = self.fractional_tol if sub.fractional else self.tol
        if not np.isfinite(residual) or residual > tol:
            self._warm.pop(sub.name, None)
            raise StageFailure(residual, tol)
        self._warm[sub.name] = (w, stage.h)
        end = self.n_fit - 1  # the last Chebyshev point is τ = 1
        return stage.y[sub.index] + np.einsum("kj,jk->k", operators[0][:, end], w)

    def _warm_start(self, sub: SubProblem, h: float, width: int) -> np.ndarray:
        """The previous stage's output weights, scaled by the ratio of stage lengths (the
        increment u − u₀ grows like h·u' over short stages); zeros for a first stage."""
        if sub.name not in self._warm:
            return np.zeros((width, len(sub.index)))
        w, h_old = self._warm[sub.name]
        return w * (h / h_old) if h_old else np.zeros_like(w)


class AdamLBFGSPINN:
    """The paper's trainer: a tanh MLP per sub-problem, trial u = u₀ + τ·N(τ), trained on the
    residual at Chebyshev points by ``adam_iterations`` Adam steps then L-BFGS, warm-started
    from the previous stage's network.  Slow but faithful; ``tol`` applies as for
    :class:`LeastSquaresPINN`, looser by default because first-order training stalls near
    a relative residual of 1e-4 whatever the step (measured on x' = −x and HH gates)."""

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
        self._rhs: dict = {}
        self.max_residual = 0.0

    def settings(self) -> dict:
        return {"trainer": self.name, "width": self.width, "depth": self.depth,
                "points": self.n_fit, "adam_iterations": self.adam_iterations,
                "learning_rate": self.learning_rate, "lbfgs_iterations": self.lbfgs_iterations,
                "tol": self.tol}

    def _network(self, sub: SubProblem):
        torch = self.torch
        if sub.name not in self._nets:
            torch.manual_seed(self.seed)
            layers, width_in = [], 1
            for _ in range(self.depth):
                layers += [torch.nn.Linear(width_in, self.width), torch.nn.Tanh()]
                width_in = self.width
            layers.append(torch.nn.Linear(width_in, len(sub.index)))
            self._nets[sub.name] = torch.nn.Sequential(*layers).double()
        return self._nets[sub.name]

    def _torch_rhs(self, sub: SubProblem):
        if sub.name not in self._rhs:
            self._rhs[sub.name] = lambdify(self.bound.args, sub.exprs, "torch")
        return self._rhs[sub.name]

    def advance(self, sub: SubProblem, stage: Stage) -> np.ndarray:
        torch = self.torch
        net, rhs = self._network(sub), self._torch_rhs(sub)
        tau = torch.tensor(self.tau[:, None], requires_grad=True)
        times = stage.t0 + self.tau * stage.h
        stim = torch.as_tensor(stage_stimulus(self.bound, times), dtype=torch.float64)
        u0 = torch.tensor(stage.y[sub.index])
        active = torch.tensor(_active(sub, stage), dtype=torch.float64)
        frac = np.nonzero(sub.orders < 1)[0]
        hist = coef = None
        if stage.memory is not None and frac.size:
            tail = self.tau > 0
            hist = np.zeros((len(self.tau), len(sub.index)))
            coef = np.zeros_like(hist)
            hist[tail] = stage.memory.history_term(times[tail])
            coef[tail] = stage.memory.local_coefficient(times[tail])
            hist, coef = torch.tensor(hist), torch.tensor(coef)

        def residual():
            u = u0 + tau * net(tau)
            args = list(torch.tensor(stage.y))  # frozen states as tensors (torch.exp etc.)
            for k, i in enumerate(sub.index):
                args[i] = u[:, k]
            f = torch.stack([torch.broadcast_to(torch.as_tensor(v, dtype=torch.float64),
                                                (len(self.tau),))
                             for v in rhs(torch.tensor(times), stim, *args)], dim=1) * active
            du = torch.stack([torch.autograd.grad(u[:, k].sum(), tau, create_graph=True)[0][:, 0]
                              for k in range(u.shape[1])], dim=1)
            if hist is not None:
                for k in frac:
                    du[:, k] = stage.h * (coef[:, k] * (u[:, k] - u0[k]) + hist[:, k])
            return du - stage.h * f, u

        def loss():
            r, _ = residual()
            return (r[: self.n_fit] ** 2).mean()

        adam = torch.optim.Adam(net.parameters(), lr=self.learning_rate)
        for _ in range(self.adam_iterations):
            adam.zero_grad()
            value = loss()
            value.backward()
            adam.step()
        lbfgs = torch.optim.LBFGS(net.parameters(), max_iter=self.lbfgs_iterations,
                                  tolerance_grad=1e-14, tolerance_change=1e-16,
                                  line_search_fn="strong_wolfe")

        def closure():
            lbfgs.zero_grad()
            value = loss()
            value.backward()
            return value

        lbfgs.step(closure)
        r, u = residual()
        r, u = r.detach().numpy()[self.n_fit:], u.detach().numpy()[self.n_fit:]
        res = float(np.max(np.abs(r) / np.maximum(1.0, np.abs(u))))
        self.max_residual = max(self.max_residual, res)
        if not np.isfinite(res) or res > self.tol:
            raise StageFailure(res, self.tol)
        with torch.no_grad():
            end = u0 + net(torch.ones(1, 1, dtype=torch.float64))[0]
        return end.numpy()
