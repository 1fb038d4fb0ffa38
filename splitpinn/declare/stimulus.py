"""Stimulus shapes I(t) as sympy expressions of the time symbol ``t`` (ms).

Each helper returns an expression to pass as ``Model(stimulus=...)``, to
:meth:`Model.with_stimulus` or to ``solve(..., stimulus=...)``.  Amplitudes may be numbers or
parameter symbols, so that ``--set I=...`` still scales a shaped stimulus.  :func:`sampled`
turns a recorded input (arrays of times and values, like Brian2's ``TimedArray``) into such
an expression; :func:`read_csv` reads one from a ``t_ms,value`` file.
"""

from __future__ import annotations

import csv
import hashlib
import itertools
import math
from pathlib import Path

import numpy as np
import sympy as sp

from ..errors import ModelError
from .model import t

INTERPOLATIONS = ("previous", "linear")


def constant(amplitude) -> sp.Expr:
    """I(t) = amplitude."""
    return sp.sympify(amplitude)


def step(amplitude, on: float, off: float | None = None) -> sp.Expr:
    """amplitude between ``on`` and ``off`` ms (``off=None``: stays on), 0 elsewhere."""
    expr = sp.sympify(amplitude) * sp.Heaviside(t - on, 1)
    if off is not None:
        expr -= sp.sympify(amplitude) * sp.Heaviside(t - off, 1)
    return expr


def pulse_train(amplitude, start: float, width: float, period: float,
                count: int | None = None) -> sp.Expr:
    """Rectangular pulses of ``width`` ms every ``period`` ms from ``start`` (``count`` pulses,
    or unbounded)."""
    if not 0 < width < period:
        raise ValueError(f"pulse width {width} must lie in (0, period={period})")
    phase = sp.Mod(t - start, period)
    expr = sp.sympify(amplitude) * sp.Heaviside(t - start, 1) * sp.Heaviside(width - phase, 0)
    if count is not None:
        expr *= sp.Heaviside(start + count * period - t, 0)
    return expr


def sinusoid(amplitude, frequency_hz: float, offset=0.0, phase: float = 0.0) -> sp.Expr:
    """offset + amplitude·sin(2π f t + phase) with f in Hz and t in ms."""
    return sp.sympify(offset) + sp.sympify(amplitude) * sp.sin(
        2 * sp.pi * frequency_hz * t / 1000 + phase)


class Sampled(sp.Function):
    """A recorded input as a sympy function of one argument (the time, ms).

    :func:`sampled` makes one subclass per recording, holding ``times``, ``values`` and the
    ``interpolation``; lambdify evaluates it through :meth:`evaluate` (numpy), and sympy
    evaluates it at numbers.  Outside the recorded times it holds the first or last value."""

    nargs = 1
    times: np.ndarray
    values: np.ndarray
    interpolation: str
    source: str | None = None  # where the samples came from (a file name), for metadata

    @classmethod
    def eval(cls, x):
        if x.is_Number:
            return sp.Float(float(cls.evaluate(float(x))))
        return None

    @classmethod
    def evaluate(cls, x):
        """The input at times ``x`` (ms; a number or a numpy array)."""
        if cls.interpolation == "linear":
            return np.interp(x, cls.times, cls.values)
        index = np.searchsorted(cls.times, x, side="right") - 1
        return cls.values[np.clip(index, 0, len(cls.times) - 1)]

    @classmethod
    def corners(cls) -> np.ndarray:
        """Sample times where the input jumps ("previous") or its slope changes ("linear")."""
        if cls.interpolation == "previous":
            return cls.times[1:][np.diff(cls.values) != 0]
        slopes = np.concatenate([[0.0], np.diff(cls.values) / np.diff(cls.times), [0.0]])
        return cls.times[np.diff(slopes) != 0]

    @classmethod
    def fingerprint(cls) -> str:
        """The recording as text for a model's content key (:attr:`Model.key`): a digest
        of its samples, interpolation and source, whatever its class is named."""
        digest = hashlib.sha256(cls.times.tobytes() + b"|" + cls.values.tobytes()).hexdigest()
        return f"{cls.interpolation} {cls.source!r} {digest}"

    def _sympystr(self, printer):
        return (f"sampled[{len(self.times)} samples, {self.interpolation}]"
                f"({printer._print(self.args[0])})")

    def __reduce_ex__(self, protocol):
        # the class is made at run time: pickle the samples and rebuild one (worker processes)
        return _rebuild, (self.times, self.values, self.interpolation, self.args[0],
                          self.source)

    @classmethod
    def describe(cls) -> dict:
        """The recording as JSON-ready metadata: source, sample count, interpolation and the
        recorded time range (ms)."""
        return {"source": cls.source, "samples": len(cls.times),
                "interpolation": cls.interpolation,
                "t_range_ms": [float(cls.times[0]), float(cls.times[-1])]}


_counter = itertools.count(1)


def sampled(times, values, interpolation: str = "previous", *,
            source: str | None = None) -> sp.Expr:
    """The stimulus I(t) given by samples ``values`` at ``times`` (ms, strictly increasing):
    ``"previous"`` holds each value until the next sample (a step at every change),
    ``"linear"`` interpolates between samples; before the first and after the last sample the
    first and last values hold.  Solvers end their steps where the input jumps or kinks.
    ``source`` (e.g. a file name) is kept for the solution's metadata.
    Raises ModelError for arrays of different length, non-finite or unordered values."""
    if interpolation not in INTERPOLATIONS:
        raise ModelError(f"unknown interpolation {interpolation!r} "
                         f"(known: {', '.join(INTERPOLATIONS)})")
    try:
        times, values = np.array(times, dtype=float), np.array(values, dtype=float)
    except (TypeError, ValueError):
        raise ModelError("sampled stimulus: times and values must be numbers") from None
    if times.ndim != 1 or times.shape != values.shape or times.size == 0:
        raise ModelError(f"sampled stimulus: times and values must be 1-D arrays of one length "
                         f"> 0, got shapes {times.shape} and {values.shape}")
    if not (np.all(np.isfinite(times)) and np.all(np.isfinite(values))):
        raise ModelError("sampled stimulus: times and values must be finite")
    if np.any(np.diff(times) <= 0):
        raise ModelError("sampled stimulus: times must increase strictly")
    times.flags.writeable = values.flags.writeable = False
    function = type(f"Sampled{next(_counter)}", (Sampled,),
                    {"times": times, "values": values, "interpolation": interpolation,
                     "source": source})
    function._imp_ = function.evaluate  # the implementation that sympy.lambdify calls
    return function(t)


def _rebuild(times, values, interpolation, argument, source=None):
    return sampled(times, values, interpolation, source=source).func(argument)


def describe(expr) -> dict:
    """A stimulus expression as JSON-ready metadata: ``expression`` (its text) and, for a
    recorded input (:func:`sampled`), its ``source``, ``samples``, ``interpolation`` and
    ``t_range_ms`` (under ``recordings``, one entry each, when there are several)."""
    expr = sp.sympify(expr)
    out: dict = {"expression": str(expr)}
    recordings = sorted((r.func.describe() for r in expr.atoms(Sampled)),
                        key=lambda d: (str(d["source"]), d["t_range_ms"]))
    if len(recordings) == 1:
        out.update(recordings[0])
    elif recordings:
        out["recordings"] = recordings
    return out


def read_csv(path: str | Path, interpolation: str = "previous") -> sp.Expr:
    """A :func:`sampled` stimulus from a CSV file with the header ``t_ms,value`` and one row
    per sample (UTF-8, a byte-order mark allowed), times strictly increasing.  Raises
    ModelError naming the file (and line) for a malformed file."""
    path = Path(path)
    name = str(path)
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            rows = list(csv.reader(f))
    except OSError as exc:
        raise ModelError(f"stimulus file {name!r}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ModelError(f"stimulus file {name!r} is not UTF-8 text ({exc.reason})") from None
    if not rows or [c.strip() for c in rows[0]] != ["t_ms", "value"]:
        got = ','.join(rows[0]) if rows else ''
        raise ModelError(f"stimulus file {name!r}: the first line must be 't_ms,value', "
                         f"got {got!r}")
    data = []
    for line, row in enumerate(rows[1:], start=2):
        if not row:
            continue
        try:
            pair = [float(c) for c in row]
        except ValueError:
            pair = []
        if len(pair) != 2 or not all(map(math.isfinite, pair)):
            raise ModelError(f"stimulus file {name!r}, line {line}: expected two finite "
                             f"numbers, got {','.join(row)!r}")
        if data and pair[0] <= data[-1][0]:
            raise ModelError(f"stimulus file {name!r}, line {line}: time {pair[0]:g} ms is not "
                             f"after the previous sample's {data[-1][0]:g} ms (times must "
                             "increase strictly)")
        data.append(pair)
    if not data:
        raise ModelError(f"stimulus file {name!r} holds no samples")
    times, values = np.array(data).T
    try:
        return sampled(times, values, interpolation, source=name)
    except ModelError as exc:
        raise ModelError(f"stimulus file {name!r}: {exc}") from None


def breakpoints(expr, t_end: float, t0: float = 0.0) -> np.ndarray:
    """Times in (t0, t_end) where a stimulus expression may jump, so that solvers can end their
    steps there: zeros of ``Heaviside`` arguments and wrap-around points of ``Mod`` terms whose
    arguments are linear in ``t`` (the forms the helpers above build), and the jumps or kinks
    of :func:`sampled` inputs.  Other discontinuities are not found; the PINN residual check
    then reports the step that straddles one."""
    expr = sp.sympify(expr)
    times: set[float] = set()
    for recorded in expr.atoms(Sampled):
        arg = recorded.args[0]
        if _linear_in_t(arg):
            slope, start = float(sp.diff(arg, t)), float(arg.subs(t, 0))
            times |= set(((recorded.corners() - start) / slope).tolist())
    for mod in expr.atoms(sp.Mod):
        times |= _periodic_solutions(mod, 0, t0, t_end)
    for heaviside in expr.atoms(sp.Heaviside):
        arg = heaviside.args[0]
        mods = list(arg.atoms(sp.Mod))
        if len(mods) == 1:
            m = sp.Dummy("m")
            for root in sp.solve(arg.xreplace({mods[0]: m}), m):
                times |= _periodic_solutions(mods[0], root, t0, t_end)
        elif not mods and _linear_in_t(arg):
            times |= {float(r) for r in sp.solve(arg, t)}
    return np.array(sorted(x for x in times if t0 < x < t_end))


def _linear_in_t(expr) -> bool:
    return expr.is_polynomial(t) and sp.degree(expr, t) == 1 and expr.free_symbols == {t}


def _periodic_solutions(mod: sp.Mod, value, t0: float, t_end: float) -> set[float]:
    """Times in [t0, t_end] where ``Mod(u(t), P)`` equals ``value``: u(t) = value + k·P."""
    u, period = mod.args
    if not (_linear_in_t(u) and period.is_number and sp.sympify(value).is_number):
        return set()
    slope, u0 = float(sp.diff(u, t)), float(u.subs(t, 0))
    period, value = float(period), float(value)
    ends = sorted(((u0 + slope * t0 - value) / period, (u0 + slope * t_end - value) / period))
    ks = range(int(np.floor(ends[0])), int(np.ceil(ends[1])) + 1)
    return {(value + k * period - u0) / slope for k in ks}
