"""One registry of the solve methods, split-PINN trainers and reference integrators, with the
options that each accepts.

Each entry names the function or class that implements it (imported only when asked for) and
the parameters its caller supplies; its options are the remaining named parameters of that
signature, read with :func:`inspect.signature`, so no list of options is kept by hand.
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass

from ..errors import ModelError


@dataclass(frozen=True)
class Entry:
    """A registered name, its implementation ``"module:attribute"``, the parameters of that
    implementation that the caller fills in itself (not options) and a one-line summary."""

    kind: str
    name: str
    target: str
    supplied: frozenset[str]
    summary: str

    @property
    def implementation(self):
        """The implementing function or class (imported now)."""
        module, _, attribute = self.target.partition(":")
        return getattr(importlib.import_module(module), attribute)

    @property
    def options(self) -> dict[str, inspect.Parameter]:
        """Option name -> :class:`inspect.Parameter` (its default), in signature order."""
        parameters = inspect.signature(self.implementation).parameters.values()
        return {p.name: p for p in parameters if p.name not in self.supplied
                and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}

    def check_options(self, given) -> None:
        """Raise :class:`ModelError` naming the first of ``given`` (names) that this entry
        does not accept, with the list of the ones it does."""
        known = self.options
        for name in given:
            if name not in known:
                raise ModelError(f"unknown option {name!r} for {self.kind} {self.name!r} "
                                 f"(known: {', '.join(known) or 'none'})")


def _entries(kind: str, supplied: set[str], items) -> dict[str, Entry]:
    return {name: Entry(kind, name, target, frozenset(supplied), summary)
            for name, target, summary in items}


_SOLVE = {"bound", "grid", "quiet", "traces"}  # what splitpinn.solve passes to every method

#: The solve methods of :func:`splitpinn.solve`.
METHODS = _entries("method", _SOLVE, [
    ("reference", "splitpinn.solvers.reference:solve_reference",
     "classical solver: solve_ivp (integer order), implicit L2-1σ, L1 or Adams "
     "(fractional)"),
    ("split-pinn", "splitpinn.solvers.composition:solve_split",
     "splitting composition marched in time, each sub-problem solved by a PINN"),
    ("vanilla-pinn", "splitpinn.solvers.baselines:solve_vanilla_pinn",
     "one DeepXDE network over the whole interval (baseline)"),
])

#: The PINN trainers of split-PINN (``trainer=``; their settings go in ``trainer_options=``).
TRAINERS = _entries("trainer", {"bound", "seed"}, [
    ("least-squares", "splitpinn.solvers.subsolvers:LeastSquaresPINN",
     "random-feature network, output layer by (Gauss-Newton) least squares"),
    ("adam-lbfgs", "splitpinn.solvers.subsolvers:AdamLBFGSPINN",
     "tanh network trained by Adam then L-BFGS (the paper's trainer)"),
])

#: The reference's integrators (``integrator=``): solve_ivp methods for integer-order models,
#: fixed-step L2-1σ, L1 and Adams schemes for fractional ones.  Options: those of the driving
#: solver.
INTEGRATORS = {
    **_entries("integrator", _SOLVE | {"integrator", "history"}, [
        (name, "splitpinn.solvers.reference:solve_reference", f"solve_ivp {name} (integer order)")
        for name in ("DOP853", "RK45", "Radau", "BDF", "LSODA")]),
    **_entries("integrator", _SOLVE | {"integrator"}, [
        ("l2-1sigma", "splitpinn.solvers.fractional_reference:solve_fractional_reference",
         "implicit L2-1σ scheme, second order, Newton per step (fractional order; default)"),
        ("l1", "splitpinn.solvers.fractional_reference:solve_fractional_reference",
         "implicit L1 scheme, order 2 - alpha, Newton per step (fractional order)"),
        ("adams", "splitpinn.solvers.fractional_reference:solve_fractional_reference",
         "fractional Adams-Bashforth-Moulton predictor-corrector (fractional order)"),
    ]),
}

REGISTRIES = {"method": METHODS, "trainer": TRAINERS, "integrator": INTEGRATORS}


def get(kind: str, name: str) -> Entry:
    """The entry ``name`` of ``kind`` ("method", "trainer" or "integrator");
    raises :class:`ModelError` for an unknown name, with the list of known ones."""
    entries = REGISTRIES[kind]
    if name not in entries:
        raise ModelError(f"unknown {kind} {name!r} (known: {', '.join(entries)})")
    return entries[name]


def names(kind: str) -> tuple[str, ...]:
    """The registered names of ``kind``, in order."""
    return tuple(REGISTRIES[kind])


def options(kind: str, name: str) -> dict[str, inspect.Parameter]:
    """The options of ``name`` of ``kind`` (see :attr:`Entry.options`)."""
    return get(kind, name).options


def check_options(kind: str, name: str, given) -> None:
    """Raise :class:`ModelError` for an unknown ``name`` or an option in ``given`` that it does
    not accept (see :meth:`Entry.check_options`)."""
    get(kind, name).check_options(given)
