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

from .model import BoundModel, ModelError
from .splitting import SubProblem


class StageFailure(RuntimeError):
    """A sub-solver could not meet its residual tolerance on a stage."""

    def __init__(self, residual: float, tol: float) -> None:
        super().__init__(f"PINN residual {residual:.3g} above tolerance {tol:.3g}")
        self.residual = residual


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
             y: np.ndarray, jacobian: bool = True):
    """Right-hand sides (S, m) and, if asked, Jacobians (S, S, m) of ``sub`` at ``times`` with
    its own states ``y_sub`` (S, m) and the others frozen at their values in ``y``."""
    args = list(y)
    for k, i in enumerate(sub.index):
        args[i] = y_sub[k]
    stim = bound.stimulus(times)
    n = len(sub.index)
    f = np.empty((n, len(times)))
    jac = np.empty((n, n, len(times))) if jacobian else None
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        for k, value in enumerate(sub.f(times, stim, *args)):
            f[k] = value
        if jacobian:
            for k, row in enumerate(sub.jacobian(times, stim, *args)):
                for j, value in enumerate(row):
                    jac[k, j] = value
    return f, jac


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
            f, _ = evaluate(self.bound, sub, np.array([time]), xs[:, None], stage.y, False)
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


class _Collocation:
    """Collocation points τ in [0, 1], check points between them, and the PINN's fixed
    hidden layer evaluated there."""

    def __init__(self, features: int, points: int, seed: int) -> None:
        rng = np.random.default_rng(seed)
        self.tau = chebyshev_points(points)
        self.check = (self.tau[1:] + self.tau[:-1]) / 2
        self.weights = rng.uniform(-0.5, 0.5, features - 1)
        self.biases = rng.uniform(-0.5, 0.5, features - 1)
        self.values = {key: self._basis(tau) for key, tau in (("fit", self.tau),
                                                               ("check", self.check))}

    def _basis(self, tau: np.ndarray):
        """P = τ·φ(τ) (the trial increment) and D = d/dτ of it, with φ = [1, tanh(aτ + b)]."""
        z = np.tanh(np.outer(tau, self.weights) + self.biases)
        phi = np.hstack([np.ones((len(tau), 1)), z])
        dphi = np.hstack([np.zeros((len(tau), 1)), (1 - z**2) * self.weights])
        return tau[:, None] * phi, phi + tau[:, None] * dphi


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
    ``tol``.  Components that do not couple (diagonal Jacobian, e.g. HH gates with V frozen)
    are fitted as independent small problems.
    """

    name = "least-squares"

    def __init__(self, bound: BoundModel, features: int = 12, points: int | None = None,
                 tol: float = 1e-8, max_iterations: int = 25, seed: int = 0) -> None:
        if features < 2:
            raise ModelError("the least-squares PINN needs at least 2 features")
        self.bound, self.tol, self.max_iterations = bound, tol, max_iterations
        self.features = features
        colloc = _Collocation(features, points or 2 * features, seed)
        self.tau = np.concatenate([colloc.tau, colloc.check])
        self.n_fit = len(colloc.tau)
        p_fit, d_fit = colloc.values["fit"]
        p_chk, d_chk = colloc.values["check"]
        self.p, self.d = np.vstack([p_fit, p_chk]), np.vstack([d_fit, d_chk])
        self.p_end = p_fit[-1]  # the last Chebyshev point is τ = 1
        self._warm: dict[str, np.ndarray] = {}
        self.iterations = 0
        self.max_residual = 0.0

    def settings(self) -> dict:
        return {"trainer": self.name, "features": self.features, "points": self.n_fit,
                "tol": self.tol, "max_iterations": self.max_iterations}

    def _operators(self, sub: SubProblem, stage: Stage):
        """Per state: the matrix taking W to h·(its Caputo or ordinary derivative) at the
        points, and the known (history) part of that derivative times h."""
        s = len(sub.index)
        ops = np.repeat(self.d[None], s, axis=0)
        known = np.zeros((s, len(self.tau)))
        if stage.memory is not None:
            times = stage.t0 + self.tau * stage.h
            tail = self.tau > 0
            hist = np.zeros((len(self.tau), s))
            coef = np.zeros((len(self.tau), s))
            hist[tail] = stage.memory.history_term(times[tail])
            coef[tail] = stage.memory.local_coefficient(times[tail])
            for k in np.nonzero(sub.orders < 1)[0]:
                ops[k] = stage.h * coef[:, k, None] * self.p
                known[k] = stage.h * hist[:, k]
        return ops, known

    def _linearised(self, sub, stage, w, ops, known):
        """Residual r (S, m) at W and its Jacobian blocks A[k, :, l, :] (S, m, S, K)."""
        u = stage.y[sub.index][:, None] + (self.p @ w).T
        f, jac = evaluate(self.bound, sub, stage.t0 + self.tau * stage.h, u, stage.y)
        active = _active(sub, stage)
        f = f * active[:, None]
        jac = jac * (active[:, None] * active[None, :])[:, :, None]
        r = np.einsum("kij,jk->ki", ops, w) + known - stage.h * f
        a = -stage.h * np.einsum("kli,ij->kilj", jac, self.p)
        for k in range(len(sub.index)):
            a[k, :, k, :] += ops[k]
        return r, a, u

    def _solve(self, sub: SubProblem, r: np.ndarray, a: np.ndarray) -> np.ndarray:
        """Least-squares update ΔW (K, S) from the fit rows."""
        n, (s, _, _, k) = self.n_fit, a.shape
        if sub.decoupled:
            return np.stack([_lstsq(a[j, :n, j, :], -r[j, :n]) for j in range(s)], axis=1)
        big = a[:, :n].reshape(s * n, s * k)
        return _lstsq(big, -r[:, :n].ravel()).reshape(s, k).T

    def advance(self, sub: SubProblem, stage: Stage) -> np.ndarray:
        w = self._warm.get(sub.name, np.zeros((self.features, len(sub.index)))).copy()
        ops, known = self._operators(sub, stage)
        for _ in range(self.max_iterations):
            r, a, u = self._linearised(sub, stage, w, ops, known)
            step = self._solve(sub, r, a)
            w += step
            r = r + np.einsum("kilj,jl->ki", a, step)  # exact when linear, O(|ΔW|²) otherwise
            self.iterations += 1
            change = np.max(np.abs(self.p @ step))
            if sub.kind != "nonlinear" or change <= 1e-3 * self.tol * max(1.0, np.max(np.abs(u))):
                break
        u = stage.y[sub.index][:, None] + (self.p @ w).T
        check = slice(self.n_fit, None)
        residual = float(np.max(np.abs(r[:, check]) / np.maximum(1.0, np.abs(u[:, check]))))
        self.max_residual = max(self.max_residual, residual)
        if not np.isfinite(residual) or residual > self.tol:
            self._warm.pop(sub.name, None)
            raise StageFailure(residual, self.tol)
        self._warm[sub.name] = w
        return stage.y[sub.index] + self.p_end @ w


class AdamLBFGSPINN:
    """The paper's trainer: a tanh MLP per sub-problem, trial u = u₀ + τ·N(τ), trained on the
    residual at Chebyshev points by ``adam_iterations`` Adam steps then L-BFGS, warm-started
    from the previous stage's network.  Slow but faithful; ``tol`` applies as for
    :class:`LeastSquaresPINN`."""

    name = "adam-lbfgs"

    def __init__(self, bound: BoundModel, width: int = 20, depth: int = 2, points: int = 24,
                 adam_iterations: int = 200, learning_rate: float = 1e-3,
                 lbfgs_iterations: int = 100, tol: float = 1e-5, seed: int = 0) -> None:
        import torch

        self.torch, self.bound = torch, bound
        self.width, self.depth, self.tol = width, depth, tol
        self.adam_iterations, self.learning_rate = adam_iterations, learning_rate
        self.lbfgs_iterations, self.seed = lbfgs_iterations, seed
        tau = chebyshev_points(points)
        self.tau = np.concatenate([tau, (tau[1:] + tau[:-1]) / 2])
        self.n_fit = points
        self._nets: dict = {}
        self._rhs: dict = {}
        self.max_residual = 0.0
        self.iterations = 0

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
            import sympy as sp

            self._rhs[sub.name] = sp.lambdify(self.bound.args, sub.exprs, modules="torch")
        return self._rhs[sub.name]

    def advance(self, sub: SubProblem, stage: Stage) -> np.ndarray:
        torch = self.torch
        net, rhs = self._network(sub), self._torch_rhs(sub)
        tau = torch.tensor(self.tau[:, None], requires_grad=True)
        times = stage.t0 + self.tau * stage.h
        stim = torch.tensor(self.bound.stimulus(times))
        u0 = torch.tensor(stage.y[sub.index])
        active = torch.tensor(_active(sub, stage), dtype=torch.float64)
        frac = np.nonzero(sub.orders < 1)[0]
        hist = coef = None
        if stage.memory is not None and frac.size:
            tail = self.tau > 0
            hist, coef = np.zeros((len(self.tau), len(sub.index))), np.zeros_like(
                np.zeros((len(self.tau), len(sub.index))))
            hist[tail] = stage.memory.history_term(times[tail])
            coef[tail] = stage.memory.local_coefficient(times[tail])
            hist, coef = torch.tensor(hist), torch.tensor(coef)

        def residual():
            u = u0 + tau * net(tau)
            args = list(stage.y)
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
        self.iterations += self.adam_iterations + self.lbfgs_iterations
        r, u = residual()
        r, u = r.detach().numpy()[self.n_fit:], u.detach().numpy()[self.n_fit:]
        res = float(np.max(np.abs(r) / np.maximum(1.0, np.abs(u))))
        self.max_residual = max(self.max_residual, res)
        if not np.isfinite(res) or res > self.tol:
            raise StageFailure(res, self.tol)
        with torch.no_grad():
            end = u0 + net(torch.ones(1, 1, dtype=torch.float64))[0]
        return end.numpy()
