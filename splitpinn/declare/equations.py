"""Models from Brian2-style equation strings (:meth:`splitpinn.Model.from_equations`).

One declaration per line; ``#`` starts a comment::

    dV/dt = (-(V - V_rest) + R*I_ext)/tau : mV (unless refractory)   # a state
    D^alpha V = (-(V - V_rest) + R*I_ext)/tau : mV                   # a Caputo state
    D^(0.6) V = ... : mV                                             # order as a number
    I_Na = g_Na*m**3*h*(V - E_Na) : uA/cm**2                         # a subexpression
    tau : ms (constant)                                              # a parameter
    I_ext : nA                                                       # the stimulus's unit

A **Caputo state** writes ``D^order X`` (``order`` a number, a parameter or a parenthesised
expression) in place of ``dX/dt``.  Its right-hand side carries the units of X per ms, as for an
ordinary state (time is in ms, so the numbers are those of X/ms^order).

Expressions use ``+ - * / ** %``, comparisons (in ``Piecewise`` conditions and thresholds),
numbers, unit literals (``10*mV``, ``0.1*msiemens/cm**2``, ``5*ms``), ``pi``, the time ``t``
(ms), the stimulus ``I_ext``, declared names and the functions in :data:`FUNCTIONS`.  They are
read with Python's ``ast`` module and built node by node into sympy expressions: nothing is
passed to ``eval``.  Every sum, comparison, function argument and equation is checked for
dimensional consistency (pint) and converted into project units (:mod:`splitpinn.declare.units`).

Flags: ``(constant)`` and ``(shared)`` on parameters, ``(unless refractory)`` on states (the
states held during the refractory period).  A name in ``parameters=`` that the text does not
declare becomes a parameter in the unit of its value (``"10*ms"``), as Brian2 reads its
namespace.  A threshold without a reset records spikes (upward crossings of a constant) without
resetting.  Resets run their statements in order, as in Brian2.  States without an initial
value start at 0.

Errors are :class:`~splitpinn.errors.ModelError` naming the line and column.
"""

from __future__ import annotations

import ast
import keyword
import re
from collections.abc import Mapping
from dataclasses import dataclass

import pint
import sympy as sp

from ..errors import ModelError
from . import units as U
from .functions import XOverOneMinusExp
from .parts import Event, I_ext, SpikeDetector, State, t

# The functions below are named as in the equations: a wrong number of arguments reads
# "clip() missing 1 required positional argument: 'hi'".

def exprel(x):
    """Brian2's exprel(x) = (e^x − 1)/x, through the safe x/(1 − e^(−x)) of functions.py."""
    return 1 / XOverOneMinusExp(-x)


def clip(x, lo, hi):
    """x limited to [lo, hi] (Brian2's and numpy's clip)."""
    return sp.Min(sp.Max(x, lo), hi)


def log10(x):
    """The decimal logarithm."""
    return sp.log(x, 10)


#: Functions allowed in expressions: name -> (sympy builder, unit rule).  Unit rules:
#: "none" (dimensionless arguments and result), "same" (arguments in one unit, result in it),
#: "keep" (result in the argument's unit), "step" (any unit, dimensionless result),
#: "sqrt", "rel" (a comparison), "int" (Brian2's int(condition), a Heaviside step).
FUNCTIONS = {
    **{name: (getattr(sp, name), "none") for name in
       ("exp", "log", "sin", "cos", "tan", "sinh", "cosh", "tanh", "asin", "acos", "atan")},
    "arcsin": (sp.asin, "none"), "arccos": (sp.acos, "none"), "arctan": (sp.atan, "none"),
    "log10": (log10, "none"),
    "exprel": (exprel, "none"), "XOverOneMinusExp": (XOverOneMinusExp, "none"),
    "sqrt": (sp.sqrt, "sqrt"),
    "abs": (sp.Abs, "keep"), "Abs": (sp.Abs, "keep"), "floor": (sp.floor, "keep"),
    "ceil": (sp.ceiling, "keep"), "ceiling": (sp.ceiling, "keep"),
    "sign": (sp.sign, "step"), "Heaviside": (sp.Heaviside, "step"),
    "clip": (clip, "same"), "Min": (sp.Min, "same"), "Max": (sp.Max, "same"),
    "Mod": (sp.Mod, "same"), "Piecewise": (sp.Piecewise, "piecewise"),
    "Eq": (sp.Eq, "rel"), "Ne": (sp.Ne, "rel"), "int": (None, "int"),
}
_CONSTANTS = {"pi": sp.pi}
_FLAGS = {"constant", "shared", "unless refractory"}
_COMPARE = {ast.Gt: sp.Gt, ast.GtE: sp.Ge, ast.Lt: sp.Lt, ast.LtE: sp.Le, ast.Eq: sp.Eq,
            ast.NotEq: sp.Ne}
_AUG = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b,
        ast.Mult: lambda a, b: a * b, ast.Div: lambda a, b: a / b}


@dataclass
class _Name:
    kind: str             # "state", "parameter", "subexpression", "stimulus"
    unit: pint.Unit       # the project unit its numbers are in
    line: int
    symbol: sp.Symbol


@dataclass
class _Line:
    kind: str
    name: str
    expr: str | None      # the right-hand side text
    col: int              # 1-based column where ``expr`` starts
    unit: str
    unit_col: int
    flags: set
    line: int
    order: str | None = None
    order_col: int = 0


class _Where:
    """Where a piece of text came from, for error messages."""

    def __init__(self, label: str, line: int | None = None, col: int = 1) -> None:
        self.label, self.line, self.col = label, line, col

    def error(self, message: str, col_offset: int | None = None) -> ModelError:
        parts = [self.label] if self.label else []
        if self.line is not None:
            parts.append(f"line {self.line}")
        if col_offset is not None:
            parts.append(f"column {self.col + col_offset}")
        return ModelError(f"{', '.join(parts)}: {message}")


_KEYWORD_MARK = "__kw__"  # appended to Python keywords used as names, so that they parse
_NAMES_AS_KEYWORDS = set(keyword.kwlist) - {"and", "or", "not", "True", "False"}
_KEYWORD_RE = re.compile(rf"\b({'|'.join(sorted(_NAMES_AS_KEYWORDS))})\b")


def _parse(text: str, mode: str) -> tuple[ast.AST, list[int]]:
    """ast.parse, with Python keywords used as names (``lambda``) marked so that they parse;
    also the columns (in the marked text) where marks end, for :func:`_unmarked`."""
    ends: list[int] = []

    def mark(m):
        ends.append(m.end() + len(_KEYWORD_MARK) * (len(ends) + 1))
        return m.group(1) + _KEYWORD_MARK

    return ast.parse(_KEYWORD_RE.sub(mark, text), mode=mode), ends


def _unmarked(column: int, ends: list[int]) -> int:
    """A column of the marked text as a column of the text."""
    return column - len(_KEYWORD_MARK) * sum(end <= column for end in ends)


# -- expressions ------------------------------------------------------------------------------

class _Reader:
    """Builds (sympy expression, unit) pairs from Python ASTs of expression text."""

    def __init__(self, names: Mapping[str, _Name]) -> None:
        self.names = names

    def read(self, text: str, where: _Where, target: pint.Unit | None = None,
             condition: bool = False):
        """Parse ``text``; return (expression in ``target``, unit) or, without a target,
        (expression, its unit)."""
        if not text.strip():
            raise where.error("expected an expression", 0)
        lead = len(text) - len(text.lstrip())
        try:
            tree, self.marks = _parse(text.strip(), "eval")
        except SyntaxError as exc:
            raise where.error(f"{exc.msg}", lead + (exc.offset or 1) - 1) from None
        self.where, self.lead = where, lead
        expr, u = self.node(tree.body)
        if _is_condition(expr) != condition:
            what = "a comparison" if condition else "a value, not a comparison"
            raise where.error(f"expected {what}", lead)
        if target is not None and not condition:
            expr = self.convert(expr, u, target, tree.body, "the expression")
            u = target
        return expr, u

    def fail(self, node, message: str) -> ModelError:
        column = _unmarked(getattr(node, "col_offset", 0), self.marks)
        return self.where.error(message, self.lead + column)

    def convert(self, expr, u, target, node, what: str):
        if expr == 0:  # a literal 0 fits any unit
            return expr
        try:
            return U.convert(expr, u, target)
        except pint.errors.DimensionalityError:
            raise self.fail(node, f"inconsistent units: {what} is in {U.to_text(u)}, "
                                  f"expected {U.to_text(target)}") from None

    def same(self, parts, nodes, op: str):
        """Bring (expr, unit) pairs to the unit of the first one; a literal 0 fits any
        unit (``V > 0``)."""
        nonzero = [u for e, u in parts if e != 0]
        target = nonzero[0] if nonzero else parts[0][1]
        parts = [(e, target if e == 0 else u) for e, u in parts]
        out = []
        for (e, u), node in zip(parts, nodes, strict=True):
            try:
                out.append(U.convert(e, u, target))
            except pint.errors.DimensionalityError:
                raise self.fail(node, f"inconsistent units in {op}: {U.to_text(target)} and "
                                      f"{U.to_text(u)}") from None
        return out, target

    def node(self, n):
        method = getattr(self, f"_{type(n).__name__}", None)
        if method is None:
            raise self.fail(n, f"unsupported syntax ({type(n).__name__})")
        return method(n)

    def _Constant(self, n):
        if isinstance(n.value, bool):
            return sp.true if n.value else sp.false, U.registry().dimensionless
        if isinstance(n.value, int):
            return sp.Integer(n.value), U.registry().dimensionless
        if isinstance(n.value, float):
            return sp.Float(n.value), U.registry().dimensionless
        raise self.fail(n, f"unexpected constant {n.value!r}")

    def _Name(self, n):
        n.id = n.id.replace(_KEYWORD_MARK, "")
        if n.id in self.names:
            entry = self.names[n.id]
            return entry.symbol, entry.unit
        if n.id in _CONSTANTS:
            return _CONSTANTS[n.id], U.registry().dimensionless
        if n.id in FUNCTIONS:
            raise self.fail(n, f"function {n.id!r} used without arguments")
        u = U.literal(n.id)
        if u is None and re.fullmatch(r"xi(_\w+)?", n.id):  # Brian2's white noise
            raise self.fail(n, f"stochastic terms ({n.id}) are not supported: the equations "
                               "must be deterministic")
        if u is None:
            raise self.fail(n, f"undefined symbol {n.id!r}")
        return sp.Integer(1), u

    def _number(self, e, n):
        """``e``, refused where it is a truth value (True, False, a comparison) used as a
        number, which sympy cannot do arithmetic with."""
        if isinstance(e, sp.logic.boolalg.BooleanAtom | sp.logic.boolalg.BooleanFunction
                      | sp.core.relational.Relational):
            raise self.fail(n, "a truth value (a comparison, True or False) is not a number "
                               "here: write int(...) for 1 where it holds and 0 elsewhere")
        return e

    def _UnaryOp(self, n):
        e, u = self.node(n.operand)
        if isinstance(n.op, ast.USub):
            return -self._number(e, n.operand), u
        if isinstance(n.op, ast.UAdd):
            return e, u
        if isinstance(n.op, ast.Not):
            return sp.Not(e), u
        raise self.fail(n, "unsupported operator")

    def _BinOp(self, n):
        (a, ua), (b, ub) = self.node(n.left), self.node(n.right)
        op = type(n.op)
        if op not in (ast.BitXor, ast.BitAnd, ast.BitOr):
            a, b = self._number(a, n.left), self._number(b, n.right)
        if op in (ast.Add, ast.Sub, ast.Mod):
            symbol = {ast.Add: "+", ast.Sub: "-", ast.Mod: "%"}[op]
            (a, b), u = self.same([(a, ua), (b, ub)], [n.left, n.right], f"'{symbol}'")
            return {ast.Add: a + b, ast.Sub: a - b, ast.Mod: sp.Mod(a, b)}[op], u
        if op is ast.Mult:
            return a * b, ua * ub
        if op is ast.Div:
            return a / b, ua / ub
        if op is ast.Pow:
            if not ub.dimensionless:
                raise self.fail(n.right, f"the exponent has units ({U.to_text(ub)})")
            if ua.dimensionless:
                return a ** b, ua
            if not b.is_Number:
                raise self.fail(n.right, "a quantity with units needs a number as exponent")
            return a ** b, ua ** float(b)
        if op is ast.BitXor:
            raise self.fail(n, "'^' is not a power: write '**'")
        if op in (ast.BitAnd, ast.BitOr):
            return (sp.And if op is ast.BitAnd else sp.Or)(a, b), ua
        raise self.fail(n, f"unsupported operator ({op.__name__})")

    def _BoolOp(self, n):
        values = [self.node(v)[0] for v in n.values]
        return (sp.And if isinstance(n.op, ast.And) else sp.Or)(*values), \
            U.registry().dimensionless

    def _Compare(self, n):
        if len(n.ops) != 1:
            raise self.fail(n, "chained comparisons are not supported")
        parts = [self.node(n.left), self.node(n.comparators[0])]
        (a, b), _ = self.same(parts, [n.left, n.comparators[0]], "a comparison")
        return _COMPARE[type(n.ops[0])](a, b), U.registry().dimensionless

    def _Call(self, n):
        if not isinstance(n.func, ast.Name):
            raise self.fail(n, "only named functions can be called")
        name = n.func.id
        if name not in FUNCTIONS:
            known = ", ".join(sorted(k for k in FUNCTIONS if k[0].islower()))
            raise self.fail(n, f"unknown function {name!r} (known: {known})")
        if n.keywords:
            raise self.fail(n, f"{name}() takes no keyword arguments")
        build, rule = FUNCTIONS[name]
        if rule == "piecewise":
            return self._piecewise(n)
        if rule == "int":
            return self._int(n)
        args = [self.node(a) for a in n.args]
        one = U.registry().dimensionless
        try:
            if rule == "none":
                exprs = [self.convert(e, u, one, a, f"the argument of {name}")
                         for (e, u), a in zip(args, n.args, strict=True)]
                return build(*exprs), one
            if rule == "sqrt":
                (e, u), = args
                return build(e), u ** 0.5
            if rule == "keep":
                (e, u), = args
                return build(e), u
            if rule == "step":
                rest = [self.convert(e, u, one, a, f"the second argument of {name}")
                        for (e, u), a in zip(args[1:], n.args[1:], strict=True)]
                return build(args[0][0], *rest), one
            exprs, u = self.same(args, n.args, f"{name}()")
            return build(*exprs), (one if rule == "rel" else u)
        except (TypeError, ValueError) as exc:
            raise self.fail(n, f"{name}(): {' '.join(str(exc).split())}") from None

    def _int(self, n):
        """Brian2's int(condition) as a Heaviside step (so that solvers see the jump)."""
        cond = self.node(n.args[0])[0] if len(n.args) == 1 else None
        if isinstance(cond, sp.logic.boolalg.BooleanAtom):
            return sp.Integer(int(bool(cond))), U.registry().dimensionless
        if not isinstance(cond, sp.Gt | sp.Ge | sp.Lt | sp.Le):
            raise self.fail(n, "int() takes one comparison with >, >=, < or <=")
        x = cond.lhs - cond.rhs if isinstance(cond, sp.Gt | sp.Ge) else cond.rhs - cond.lhs
        return sp.Heaviside(x, 1 if isinstance(cond, sp.Ge | sp.Le) else 0), \
            U.registry().dimensionless

    def _piecewise(self, n):
        pieces, nodes = [], []
        for arg in n.args:
            if not (isinstance(arg, ast.Tuple) and len(arg.elts) == 2):
                raise self.fail(arg, "Piecewise expects (value, condition) pairs")
            pieces.append((self.node(arg.elts[0]), self.node(arg.elts[1])[0]))
            nodes.append(arg.elts[0])
        values, u = self.same([v for v, _ in pieces], nodes, "Piecewise")
        try:
            return sp.Piecewise(*zip(values, [c for _, c in pieces], strict=True)), u
        except (TypeError, ValueError) as exc:
            raise self.fail(n, f"Piecewise: {' '.join(str(exc).split())}") from None


def _is_condition(expr) -> bool:
    return isinstance(expr, sp.Rel | sp.logic.boolalg.BooleanFunction
                      | sp.logic.boolalg.BooleanAtom)


# -- lines ------------------------------------------------------------------------------------

_IDENT = r"[A-Za-z_]\w*"
_FLAGS_RE = re.compile(r"(?<=\s)\(\s*([A-Za-z_][\w\s,]*)\)\s*$")  # "mV (constant)"


def _split_lines(text: str, first_line: int) -> list[_Line]:
    lines = []
    for number, raw in enumerate(text.splitlines(), start=first_line):
        content = raw.split("#", 1)[0].rstrip()
        if content.strip():
            lines.append(_parse_line(content, _Where("", number)))
    return lines


def _parse_line(content: str, where: _Where) -> _Line:
    colon = _top_level_colon(content)
    if colon is None and ":" in content:  # inside open brackets: let the parser say which
        colon = content.rindex(":")
    if colon is None:
        raise where.error("expected ': unit' at the end of the line", len(content))
    lhs_rhs, annotation = content[:colon], content[colon + 1:]
    flags: set = set()
    match = _FLAGS_RE.search(annotation)
    if match:
        flags = {" ".join(f.split()) for f in match.group(1).split(",")}
        for f in flags - _FLAGS:
            raise where.error(f"unknown flag {f!r} (known: {', '.join(sorted(_FLAGS))})",
                              colon + 1 + match.start())
        annotation = annotation[:match.start()]
    unit_col = colon + 1 + len(annotation) - len(annotation.lstrip())
    unit = annotation.strip()
    if not unit:
        raise where.error("expected a unit after ':' (1 for dimensionless)", colon + 1)
    line = where.line
    m = re.match(rf"\s*d\s*({_IDENT})\s*/\s*dt\s*(=?)", lhs_rhs)
    if m:
        if not m.group(2) or not lhs_rhs[m.end():].strip():
            raise where.error(f"state {m.group(1)!r} has no equation", m.end())
        return _Line("state", m.group(1), lhs_rhs[m.end():], m.end() + 1, unit, unit_col,
                     flags, line)
    m = re.match(r"\s*D\s*\^\s*", lhs_rhs)
    if m:
        order_start, rest = m.end(), lhs_rhs[m.end():]
        order = _order_token(rest)
        if order is None:
            raise where.error("expected an order after 'D^'", order_start)
        m2 = re.match(rf"\s*({_IDENT})\s*(=?)", rest[len(order):])
        if not m2:
            raise where.error("expected a state name after the order",
                              order_start + len(order))
        end = order_start + len(order) + m2.end()
        if not m2.group(2) or not lhs_rhs[end:].strip():
            raise where.error(f"state {m2.group(1)!r} has no equation", end)
        return _Line("state", m2.group(1), lhs_rhs[end:], end + 1, unit, unit_col, flags,
                     line, order=order, order_col=order_start + 1)
    m = re.match(rf"\s*({_IDENT})\s*=(?!=)", lhs_rhs)
    if m:
        return _Line("subexpression", m.group(1), lhs_rhs[m.end():], m.end() + 1, unit,
                     unit_col, flags, line)
    m = re.fullmatch(rf"\s*({_IDENT})\s*", lhs_rhs)
    if m:
        return _Line("parameter", m.group(1), None, 0, unit, unit_col, flags, line)
    raise where.error("expected 'dX/dt = ...', 'D^order X = ...', 'x = ...' or a parameter "
                      "name before ':'", 0)


def _top_level_colon(text: str) -> int | None:
    depth = 0
    for i, c in enumerate(text):
        depth += (c in "([{") - (c in ")]}")
        if c == ":" and depth == 0:
            return i
    return None


def _order_token(text: str) -> str | None:
    if text.startswith("("):
        depth = 0
        for i, c in enumerate(text):
            depth += (c == "(") - (c == ")")
            if depth == 0:
                return text[:i + 1]
        return None
    m = re.match(r"[\w.]+", text)
    return m.group(0) if m else None


# -- the model ----------------------------------------------------------------------------

def declaration(equations: str, *, name: str,
                parameters: Mapping[str, float | str] | None = None,
                initial: Mapping[str, float | str] | None = None,
                threshold: str | None = None, reset: str | None = None,
                refractory: float | str = 0.0, stimulus: str | float | None = None,
                description: str = "", presets: Mapping[str, Mapping] | None = None,
                default_preset: str | None = None, default_dt: float | None = None,
                first_line: int = 1) -> dict:
    """The arguments of a :class:`~splitpinn.declare.model.Model` (``Model(**declaration(...))``,
    as :meth:`Model.from_equations <splitpinn.declare.model.Model.from_equations>` builds it)
    from Brian2-style text (see the module docstring).  ``presets`` map preset names to parameter
    values (numbers in project units or strings with units); ``first_line`` numbers the text's
    lines (for files).  The model's ``units`` hold the project unit of each dimensional state,
    parameter and subexpression."""
    lines = _split_lines(equations, first_line)
    names = _declare(lines)
    names["t"] = _Name("time", U.unit("ms"), 0, t)
    parameters = dict(parameters or {})
    values = _parameter_values(names, parameters)
    reader = _Reader(names)
    stim = _stimulus(names, reader, stimulus)
    states, rhs, aux = [], {}, {}
    initial = dict(initial or {})
    for key in initial:
        if key not in names or names[key].kind != "state":
            raise ModelError(f"initial value for {key!r}, which is not a state")
    for line in lines:
        where = _Where("", line.line, line.col)
        entry = names[line.name]
        if line.kind == "state":
            rhs[line.name] = _right_hand_side(reader, line, where, entry.unit, U.unit("ms"))
            order = 1.0
            if line.order is not None:
                order, _ = reader.read(line.order, _Where("", line.line, line.order_col),
                                       U.registry().dimensionless)
            init = _value(reader, initial.get(line.name, 0.0), entry.unit,
                          _Where(f"initial value of {line.name}"))
            states.append(State(line.name, init, order))
        elif line.kind == "subexpression":
            aux[line.name] = _right_hand_side(reader, line, where, entry.unit)
    if not states:
        raise ModelError("the equations declare no state (expected 'dX/dt = ... : unit')")
    event, detector = _events(names, reader, threshold, reset, refractory, lines)
    return dict(name=name, states=states, equations=rhs, parameters=values, auxiliaries=aux,
                stimulus=stim, events=[event] if event else [], spike_detector=detector,
                presets={k: _parameter_values(names, v, partial=True)
                         for k, v in (presets or {}).items()},
                default_preset=default_preset, description=description,
                default_dt=default_dt,
                units={k: U.pretty(v.unit) for k, v in names.items()
                       if v.kind not in ("stimulus", "time") and not v.unit.dimensionless})


def _right_hand_side(reader: _Reader, line: _Line, where: _Where, unit: pint.Unit,
                     per: pint.Unit | None = None):
    """The right-hand side of ``line`` in ``unit`` (per ``per``: a state's time derivative).

    When the annotation, not the expression, is what contradicts the equation — the
    right-hand side would fit a plain project unit instead (``dw/dt = V/tau : amp``), or a
    state's own equation is consistent only with another unit for it (``dV/dt = (E_L - V)/tau
    : amp``) — the error points at the annotation and names the unit that fits; otherwise
    (``dV/dt = V : mV``, a time constant missing?) at the expression."""
    target = unit / per if per is not None else unit
    try:
        expr, u = reader.read(line.expr, where)
    except ModelError:
        fits = _unit_that_fits(reader, line, where, unit) if per is not None else None
        if fits is None:
            raise
        raise _annotation_error(line, fits, per, f"with {line.name} in {U.to_text(fits)} the "
                                                 "equation is consistent") from None
    if expr == 0 or u.dimensionality == target.dimensionality:
        return reader.read(line.expr, where, target)[0]
    fits = U.project_unit(u * per if per is not None else u)
    if _plain(fits):
        rhs = U.to_text(fits / per if per is not None else fits)
        raise _annotation_error(line, fits, per, f"the right-hand side has units of {rhs}")
    return reader.read(line.expr, where, target)[0]  # raises, pointing at the expression


def _plain(u: pint.Unit) -> bool:
    return u.dimensionless or any(u == U.unit(x) for x in U.PROJECT_UNITS)


def _unit_that_fits(reader: _Reader, line: _Line, where: _Where, unit: pint.Unit):
    """The one plain project unit (of another dimension than ``unit``) for the state of
    ``line`` that makes its equation consistent, or None."""
    fits = []
    for candidate in [U.unit(x) for x in (*U.PROJECT_UNITS, "1")]:  # in order: nA before pA
        if candidate.dimensionality == unit.dimensionality or \
                any(candidate.dimensionality == f.dimensionality for f in fits):
            continue
        names = dict(reader.names)
        names[line.name] = _Name(names[line.name].kind, candidate, names[line.name].line,
                                 names[line.name].symbol)
        try:
            _Reader(names).read(line.expr, where, candidate / U.unit("ms"))
        except ModelError:
            continue
        fits.append(candidate)
    return fits[0] if len(fits) == 1 else None


def _annotation_error(line: _Line, fits: pint.Unit, per, why: str) -> ModelError:
    return _Where("", line.line, line.unit_col + 1).error(
        f"the unit annotation {line.unit.strip()!r} contradicts the equation of {line.name}: "
        f"{why}, so the annotation should be {U.to_text(fits)}", 0)


def _declare(lines: list[_Line]) -> dict[str, _Name]:
    names: dict[str, _Name] = {}
    for line in lines:
        where = _Where("", line.line, 1)
        if line.name in names:
            raise where.error(f"{line.name!r} is already declared on line "
                              f"{names[line.name].line}", 0)
        if line.name == "t" or line.name in FUNCTIONS or line.name in _CONSTANTS:
            raise where.error(f"{line.name!r} is reserved", 0)
        if line.name == "I_ext" and line.kind != "parameter":
            raise where.error("I_ext is the stimulus: declare only its unit ('I_ext : nA') and "
                              "give its expression as stimulus=", 0)
        if "unless refractory" in line.flags and line.kind != "state":
            raise where.error("only states can be '(unless refractory)'", 0)
        try:
            annotated, u = _Reader({}).read(line.unit, _Where("", line.line, line.unit_col + 1))
        except ModelError as exc:
            raise ModelError(f"{exc} (in the unit)") from None
        if annotated != 1:
            raise where.error(f"the unit {line.unit!r} has a number in it", line.unit_col)
        kind = "stimulus" if line.name == "I_ext" else line.kind
        names[line.name] = _Name(kind, U.project_unit(u), line.line,
                                 I_ext if kind == "stimulus" else sp.Symbol(line.name, real=True))
    return names


def _value(reader: _Reader, value, unit: pint.Unit, where: _Where):
    """A number (already in project units) or text with units, converted to ``unit``."""
    if isinstance(value, str):
        return reader.read(value, where, unit)[0]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise where.error(f"{value!r} is neither a number nor an expression")
    return float(value)


def _parameter_values(names: dict[str, _Name], given: Mapping, partial: bool = False):
    """Parameter values in project units; declares the undeclared names of ``given``."""
    constants = _Reader({})
    out = {}
    for key, value in given.items():
        where = _Where(f"parameter {key}")
        if key in names and names[key].kind != "parameter":
            raise where.error(f"{key!r} is a {names[key].kind}, not a parameter")
        if key not in names:
            if partial:
                raise where.error(f"unknown parameter {key!r}")
            if not key.isidentifier() or key == "t" or key in FUNCTIONS:
                raise where.error(f"{key!r} cannot be a parameter name")
            u = constants.read(value, where)[1] if isinstance(value, str) else \
                U.registry().dimensionless
            names[key] = _Name("parameter", U.project_unit(u), 0, sp.Symbol(key, real=True))
        number = _value(constants, value, names[key].unit, where)
        out[key] = float(number)
    if not partial:
        for key, entry in names.items():
            if entry.kind == "parameter" and key not in out:
                raise ModelError(f"line {entry.line}: parameter {key!r} has no value "
                                 "(give it in parameters=)")
    return out


def _stimulus(names: dict[str, _Name], reader: _Reader, stimulus):
    """The stimulus expression in I_ext's unit; when the text does not declare that unit
    (``I_ext : nA``), the stimulus's own unit (in project units) becomes it."""
    if stimulus is None or not isinstance(stimulus, str):
        names.setdefault("I_ext", _Name("stimulus", U.registry().dimensionless, 0, I_ext))
        return _value(reader, stimulus or 0.0, names["I_ext"].unit, _Where("stimulus"))
    expr, u = reader.read(stimulus, _Where("stimulus", None, 1))
    names.setdefault("I_ext", _Name("stimulus", U.project_unit(u), 0, I_ext))
    return reader.convert(expr, u, names["I_ext"].unit, None, "the stimulus")


def _events(names, reader, threshold, reset, refractory, lines):
    """(Event or None, SpikeDetector or None) from the threshold, reset and refractory."""
    ms = U.unit("ms")
    ref = _value(reader, refractory, ms, _Where("refractory"))
    if threshold is None:
        if reset is not None:
            raise ModelError("reset: a reset needs a threshold")
        if ref != 0:
            raise ModelError("refractory: a refractory period needs a threshold and a reset")
        return None, None
    cond, _ = reader.read(threshold, _Where("threshold", None, 1), condition=True)
    if isinstance(cond, sp.Lt | sp.Le):
        cond = (sp.Gt if isinstance(cond, sp.Lt) else sp.Ge)(cond.rhs, cond.lhs)
    if not isinstance(cond, sp.Gt | sp.Ge):
        raise ModelError("threshold: expected a comparison with >, >=, < or <=")
    if reset is None:
        if ref != 0:
            raise ModelError("refractory: a refractory period needs a reset")
        state = cond.lhs.name if cond.lhs.is_Symbol else None
        if state not in names or names[state].kind != "state" or not cond.rhs.is_number:
            raise ModelError("threshold: without a reset, the threshold must compare a state "
                             "with a constant (spikes are then recorded, nothing is reset)")
        return None, SpikeDetector(state, float(cond.rhs))
    clamp = tuple(line.name for line in lines if "unless refractory" in line.flags)
    return Event(cond, _reset(names, reader, reset), ref, clamp), None


def _reset(names, reader: _Reader, text: str) -> dict:
    """Reset statements (separated by ';' or new lines), run in order: a later statement sees
    the new values of earlier ones, as in Brian2."""
    lines = text.splitlines()
    current: dict = {}
    for lineno, raw in enumerate(lines, start=1):
        col = 0
        for part in raw.split(";"):
            if part.strip():
                lead = len(part) - len(part.lstrip())
                where = _Where("reset", lineno if len(lines) > 1 else None, col + lead + 1)
                _statement(names, reader, part.strip(), where, current)
            col += len(part) + 1
    if not current:
        raise ModelError("reset: no statement")
    return {s.name: v for s, v in current.items()}


def _statement(names, reader: _Reader, text: str, where: _Where, current: dict) -> None:
    try:
        tree, marks = _parse(text, "exec")
    except SyntaxError as exc:
        raise where.error(exc.msg, (exc.offset or 1) - 1) from None
    stmt = tree.body[0]
    if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
        target, op = stmt.targets[0], None
    elif isinstance(stmt, ast.AugAssign) and type(stmt.op) in _AUG:
        target, op = stmt.target, _AUG[type(stmt.op)]
    else:
        raise where.error("expected 'state = value' or 'state += value'",
                          _unmarked(stmt.col_offset, marks))
    if not isinstance(target, ast.Name):
        raise where.error("expected a state name on the left",
                          _unmarked(target.col_offset, marks))
    state = target.id.replace(_KEYWORD_MARK, "")
    if state not in names or names[state].kind != "state":
        states = ", ".join(k for k, v in names.items() if v.kind == "state")
        raise where.error(f"reset of unknown variable {state!r} (states: {states})",
                          _unmarked(target.col_offset, marks))
    start, end = (_unmarked(c, marks) for c in (stmt.value.col_offset,
                                                stmt.value.end_col_offset))
    value, _ = reader.read(text[start:end], _Where("reset", where.line, where.col + start),
                           names[state].unit)
    value = value.xreplace(current)
    symbol = names[state].symbol
    current[symbol] = op(current.get(symbol, symbol), value) if op else value
