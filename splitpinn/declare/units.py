"""Physical units for models declared from text (pint underneath).

Every quantity is stored as a number in a *project unit*: ms, mV, µA/cm², mS/cm², µF/cm², nA,
MΩ, nS, pF, pA (or 1).  An annotation in one of them is kept; one that gives the same numbers
in one of them is replaced by it (mV/MΩ by nA); another is replaced by the project unit of its
dimension (current → nA, conductance → nS, …).  A dimension without one keeps an annotation
made of project units (nS/mV, mV/ms) or is composed of ms, mV, nA and cm.

Unit literals in equations follow Brian2: an optional SI prefix, a base unit (``volt``/``V``,
``second``/``s``, ``amp``/``A``, ``ohm``, ``siemens``/``S``, ``farad``/``F``, ``metre``/``m``,
``hertz``/``Hz``, ``molar``/``M``, ``mole``/``mol``, ``coulomb``/``C``, ``kelvin``/``K``,
``gram``/``g``, ``litre``/``l``) and an optional power 2 or 3 (``cm2`` is cm²).

:func:`with_units` goes the other way: it rewrites a stored expression (numbers in project
units) so that each sum, comparison and function argument is dimensionally consistent, by
attaching unit symbols (``65*mV``, ``/ms``) whose conversion factors are all 1.  Parsing the
printed result gives back the same numbers.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Mapping

import pint
import sympy as sp
from sympy.printing.precedence import PRECEDENCE
from sympy.printing.str import StrPrinter

from ..errors import ModelError

_PREFIXES = "yzafpnumcdkMGT"
_BASES = {"volt", "V", "second", "s", "amp", "ampere", "A", "ohm", "siemens", "S", "farad", "F",
          "metre", "meter", "m", "hertz", "Hz", "molar", "M", "mole", "mol", "coulomb", "C",
          "kelvin", "K", "gram", "g", "litre", "liter", "l"}
_LITERAL = re.compile(rf"^([{_PREFIXES}]?)([A-Za-z]+?)([23]?)$")

#: The project units (see the module docstring for how annotations map onto them).
PROJECT_UNITS = ("ms", "mV", "uA/cm**2", "mS/cm**2", "uF/cm**2", "nA", "Mohm", "nS", "pF", "pA")
#: The project unit per dimension (for annotations in other units).
_PREFERRED = ("ms", "mV", "nA", "uA/cm**2", "nS", "mS/cm**2", "pF", "uF/cm**2", "Mohm")


@functools.cache
def registry() -> pint.UnitRegistry:
    """The shared pint registry."""
    return pint.UnitRegistry()


def unit(text: str) -> pint.Unit:
    """A pint unit from text: ``"mV"``, ``"uA/cm**2"``, ``"µF/cm²"``, ``"1"``."""
    return registry().Unit("" if text.strip() == "1" else text)


def pretty(u: pint.Unit) -> str:
    """A unit as display text (``µA/cm²``; empty for dimensionless)."""
    return f"{u:~P}"


def literal(name: str) -> pint.Unit | None:
    """The unit a Brian2-style unit literal names (``mV``, ``msiemens``, ``cm2``), or None."""
    match = _LITERAL.match(name)
    candidates = [("", name, "")] if name in _BASES else []
    if match and match.group(2) in _BASES:
        candidates.append(match.groups())
    for prefix, base, power in candidates:
        try:
            u = registry().Unit(prefix + base)
        except (pint.errors.UndefinedUnitError, ValueError, AttributeError):
            continue
        return u ** int(power) if power else u
    return None


@functools.cache
def _project_units() -> tuple[pint.Unit, ...]:
    return tuple(unit(u) for u in PROJECT_UNITS)


def project_unit(u: pint.Unit) -> pint.Unit:
    """The unit in which a quantity annotated with ``u`` is stored (see the module docstring)."""
    if u.dimensionless:
        return registry().dimensionless
    if u in _project_units():
        return u
    for p in _project_units():  # the same numbers in a project unit: mV/MΩ is nA
        if p.dimensionality == u.dimensionality and factor(u, p) == 1.0:
            return p
    for name in _PREFERRED:
        p = unit(name)
        if p.dimensionality == u.dimensionality:
            return p
    if set(u._units) <= {name for p in _project_units() for name in p._units}:
        return u  # made of project units, e.g. nS/mV or mV/ms
    dims = u.dimensionality
    mass, length = dims.get("[mass]", 0), dims.get("[length]", 0)
    time, current = dims.get("[time]", 0), dims.get("[current]", 0)
    others = set(dims) - {"[mass]", "[length]", "[time]", "[current]"}
    if others:
        return u  # e.g. concentration or temperature: kept as annotated
    # mV contributes mass^1 length^2 time^-3 current^-1; solve for the four exponents.
    powers = {"ms": time + 3 * mass, "mV": mass, "nA": current + mass, "cm": length - 2 * mass}
    return math.prod((unit(n) ** p for n, p in powers.items() if p), start=registry().dimensionless)


def factor(source: pint.Unit, target: pint.Unit) -> float:
    """The number that converts a magnitude in ``source`` into one in ``target``.

    Raises pint's DimensionalityError when the dimensions differ."""
    if source == target:
        return 1.0
    value = registry().Quantity(1.0, source).to(target).magnitude
    return float(f"{value:.15g}")  # 1e-3, not 0.0010000000000000002


def convert(expr: sp.Expr, source: pint.Unit, target: pint.Unit) -> sp.Expr:
    """``expr`` (a magnitude in ``source``) as a magnitude in ``target``."""
    f = factor(source, target)
    return expr if f == 1.0 else sp.Rational(repr(f)) * expr


def to_text(u: pint.Unit) -> str:
    """A unit as Brian2-style text: ``mV``, ``uA/cm**2``, ``1`` for dimensionless."""
    return str(_symbolic(u)) if not u.dimensionless else "1"


#: Brian2's name for each unit that pint parses out of a prefixed one (millivolt -> volt):
#: (name, power).  Brian2 wants annotations in base units; it stores SI values, so only the
#: dimension of an annotation matters.
_BRIAN2_BASES = {
    "volt": ("volt", 1), "ampere": ("amp", 1), "second": ("second", 1), "meter": ("meter", 1),
    "siemens": ("siemens", 1), "farad": ("farad", 1), "ohm": ("ohm", 1), "hertz": ("hertz", 1),
    "coulomb": ("coulomb", 1), "kelvin": ("kelvin", 1), "mole": ("mole", 1),
    "molar": ("mmolar", 1), "gram": ("kilogram", 1), "liter": ("meter", 3),
    "joule": ("joule", 1), "watt": ("watt", 1), "henry": ("henry", 1), "tesla": ("tesla", 1),
    "weber": ("weber", 1), "newton": ("newton", 1), "pascal": ("pascal", 1),
}
_SI_DIMENSIONS = {"[length]": "meter", "[mass]": "kilogram", "[time]": "second",
                  "[current]": "amp", "[temperature]": "kelvin", "[substance]": "mole"}


def brian2_unit(u: pint.Unit) -> str:
    """A unit as a Brian2 annotation, in base units: ``volt`` for mV, ``amp/meter**2`` for
    µA/cm², ``volt/second`` for mV/ms, ``1`` for dimensionless (Brian2 refuses ``mV`` there)."""
    if u.dimensionless:
        return "1"
    out = sp.Integer(1)
    for name, power in u._units.items():
        parsed = registry().parse_unit_name(name)
        base = _BRIAN2_BASES.get(parsed[0][1]) if parsed else None
        if base is None:  # e.g. degree_Celsius: the SI base units of its dimension
            out = sp.Integer(1)
            for dim, p in u.dimensionality.items():
                if dim not in _SI_DIMENSIONS:
                    raise ModelError(f"Brian2 has no unit of dimension {dim} (in {u})")
                out *= sp.Symbol(_SI_DIMENSIONS[dim]) ** sp.nsimplify(p)
            break
        out *= sp.Symbol(base[0]) ** (base[1] * sp.nsimplify(power))
    return str(out)


def _abbreviation(name: str) -> str:
    return registry().get_symbol(name).replace("µ", "u").replace("Ω", "ohm")


def _symbolic(u: pint.Unit) -> sp.Expr:
    """A unit as a product of powers of sympy symbols named by the unit abbreviations."""
    out = sp.Integer(1)
    for name, power in u._units.items():
        p = sp.Integer(int(power)) if float(power).is_integer() else sp.Float(power)
        out *= sp.Symbol(_abbreviation(name)) ** p
    return out


class _Printer(StrPrinter):
    def _print_Float(self, expr):
        return repr(float(expr))


class _Int(sp.Function):
    """Brian2's int(condition): 1 where the comparison holds, else 0 (a Heaviside step written
    as a comparison of two quantities in one unit, as Brian2 wants it)."""

    nargs = 1

    def _sympystr(self, printer):
        return f"int({printer._print(self.args[0])})"

    _brian2str = _sympystr


def _zero(target: pint.Unit) -> sp.Symbol:
    """A zero that keeps its unit when printed (``0*mV``, ``0/ms``): Brian2 refuses ``V > 0``
    and ``dM/dt = 0`` for a dimensioned ``V`` or ``M``."""
    unit_text = to_text(target)
    return sp.Symbol("0" + unit_text[1:] if unit_text.startswith("1/") else f"0*{unit_text}")


_MUL = PRECEDENCE["Mul"]


def _is_zero(expr) -> bool:
    """0, or a zero with its unit (:func:`_zero`)."""
    return bool(expr.is_zero) or (expr.is_Symbol and expr.name[:1] == "0")


class _Brian2Printer(_Printer):
    """Functions that Brian2 lacks written with the ones it has (they read back the same):
    exprel, int(condition), %, and/or/not; Min, Max and Piecewise as sums of value*int(...)."""

    printmethod = "_brian2str"  # not sympy's _sympystr: functions print as Brian2 has them
    _NAMES = {"Abs": "abs", "ceiling": "ceil", "asin": "arcsin", "acos": "arccos",
              "atan": "arctan"}

    def _print_Function(self, expr):
        name = self._NAMES.get(type(expr).__name__)
        if name is None:
            return super()._print_Function(expr)
        return f"{name}({', '.join(self._print(a) for a in expr.args)})"

    _print_Abs = _print_ceiling = _print_Function

    def _print_Exp1(self, expr):
        return "e"

    def _print_And(self, expr):
        return " and ".join(f"({self._print(a)})" for a in expr.args)

    def _print_Or(self, expr):
        return " or ".join(f"({self._print(a)})" for a in expr.args)

    def _print_Not(self, expr):
        return f"not ({self._print(expr.args[0])})"

    def _print_Relational(self, expr):
        return f"{self._print(expr.lhs)} {expr.rel_op} {self._print(expr.rhs)}"

    def _print_Piecewise(self, expr):
        terms, before = [], []
        for value, cond in expr.args:
            if cond is sp.false:
                continue
            cases = [*(sp.Not(c) for c in before), *([] if cond is sp.true else [cond])]
            when = " and ".join(f"({self._print(c)})" for c in cases) if len(cases) > 1 \
                else (self._print(cases[0]) if cases else "")
            if not _is_zero(value):
                shown = self.parenthesize(value, _MUL, strict=True)
                terms.append(f"{shown}*int({when})" if when else shown)
            if cond is sp.true:
                break
            before.append(cond)
        return f"({' + '.join(terms)})" if terms else "0"

    def _print_Max(self, expr):
        return self._extreme(expr, ">=")

    def _print_Min(self, expr):
        return self._extreme(expr, "<=")

    def _extreme(self, expr, op):
        a, *rest = expr.args
        b = type(expr)(*rest) if len(rest) > 1 else rest[0]
        flip = {">=": "<", "<=": ">"}[op]
        pa, pb = (self.parenthesize(x, _MUL, strict=True) for x in (a, b))
        terms = [f"{pa}*int({pa} {op} {pb})", f"{pb}*int({pa} {flip} {pb})"]
        kept = [term for x, term in zip((a, b), terms, strict=True) if not _is_zero(x)]
        return f"({' + '.join(kept)})" if kept else "0"

    def _print_XOverOneMinusExp(self, expr):
        return f"1/exprel({self._print(-expr.args[0])})"

    def _print_Heaviside(self, expr):
        if len(expr.args) == 2 and expr.args[1] in (0, 1):
            return f"int({self._print(expr.args[0])} {'>=' if expr.args[1] == 1 else '>'} 0)"
        return super()._print_Heaviside(expr)

    def _print_Mod(self, expr):
        return "({}) % ({})".format(*(self._print(a) for a in expr.args))


def text(expr, brian2: bool = False) -> str:
    """``expr`` as text, with floats written as Python writes them (0.04, not
    0.0400000000000000) so that the text reads back to the same doubles; ``brian2`` writes
    x/(1 − e^(−x)), Heaviside and Mod with Brian2's exprel, int(condition) and %, logic with
    and/or/not, and Min, Max and Piecewise as sums of value*int(condition)."""
    return (_Brian2Printer() if brian2 else _Printer()).doprint(expr)


# -- stored expression -> expression with unit symbols ---------------------------------------

_SAME_UNIT = {"Min", "Max", "Mod"}
_KEEP_UNIT = {"Abs", "floor", "ceiling"}


def with_units(expr, units: Mapping[str, pint.Unit], target: pint.Unit | None,
               brian2: bool = False) -> sp.Expr:
    """``expr`` with unit symbols attached so that it reads as a quantity in ``target``.

    ``units`` gives the unit of each symbol (missing: dimensionless; ``t`` is in ms).  With
    ``target`` None the expression keeps its own unit.  Terms already in a unit equal to the
    wanted one up to a factor 1 (mS·mV and µA) are left alone.  ``brian2``: a zero keeps its
    unit (``V > 0*mV``) and a Heaviside step becomes int(comparison), as Brian2 needs."""
    fixed, u = _Attacher(units, brian2).fix(sp.sympify(expr), target)
    return fixed if target is None else _to(fixed, u, target, brian2)


def unit_of(expr, units: Mapping[str, pint.Unit]) -> pint.Unit | None:
    """The unit of a stored expression (None for a pure number)."""
    return _Attacher(units).fix(sp.sympify(expr), None)[1]


def infer(name: str, equations, units: Mapping[str, pint.Unit]) -> pint.Unit | None:
    """The unit of symbol ``name`` (whose unit is unknown) that makes the sums it appears in
    consistent: in a sum with a term ``c*name*rest``, the other terms' unit over rest's.
    ``equations`` are (expression, unit of the expression) pairs; None when no sum tells."""
    marker = sp.Dummy("known")
    for expr, target in equations:
        whole = sp.Add(sp.sympify(expr), marker, evaluate=False)
        known = {**units, marker.name: target}
        for add in sp.preorder_traversal(whole):
            if not add.is_Add:
                continue
            for term in add.args:
                factors = sp.Mul.make_args(term)
                if not any(f.is_Symbol and f.name == name for f in factors):
                    continue
                others = [unit_of(a, known) for a in add.args
                          if a is not term and not any(getattr(s, "name", None) == name
                                                       for s in a.free_symbols)]
                others = [u for u in others if u is not None]
                if others:
                    rest = unit_of(sp.Mul(*[f for f in factors if getattr(f, "name", None)
                                             != name]), known)
                    return others[0] / rest if rest is not None else others[0]
    return None


class _Attacher:
    def __init__(self, units: Mapping[str, pint.Unit], brian2: bool = False) -> None:
        self.units = {"t": unit("ms"), **units}
        self.brian2 = brian2

    def fix(self, e, want: pint.Unit | None = None):
        """(expression with unit symbols, its unit or None for a pure number); sums are
        brought to ``want`` where one of their terms is in it."""
        one = registry().dimensionless
        if e.is_Number or isinstance(e, sp.NumberSymbol) or e in (sp.true, sp.false):
            return e, None
        if e.is_Symbol:
            return e, self.units.get(e.name, one)
        if e.is_Add:
            return self.common(e.args, sp.Add, want)
        if e.is_Mul:  # a single sum among the factors is brought to what the product wants
            sums = [a for a in e.args if a.is_Add]
            parts = [self.fix(a) for a in e.args if not a.is_Add]
            rest = _product([u for _, u in parts])
            inner = want / rest if want is not None and rest is not None else want
            parts += [self.fix(a, inner if len(sums) == 1 else None) for a in sums]
            return sp.Mul(*[p for p, _ in parts]), _product([u for _, u in parts])
        if e.is_Pow:
            base, bu = self.fix(e.base)
            if e.exp.is_Number:
                return base ** e.exp, None if bu is None else bu ** float(e.exp)
            return _to(base, bu, one) ** _to(*self.fix(e.exp, one), one), one
        if isinstance(e, sp.Piecewise):
            values, u = self.common([a.expr for a in e.args], _tuple, want)
            conds = [self.fix(a.cond)[0] for a in e.args]
            return sp.Piecewise(*zip(values, conds, strict=True)), u
        if isinstance(e, sp.Rel):
            (lhs, rhs), _ = self.common(e.args, _tuple)
            return type(e)(lhs, rhs), one
        if isinstance(e, sp.Heaviside) and self.brian2:
            return _Int(self.fix(_comparison(e))[0]), one
        if isinstance(e, sp.Heaviside | sp.sign):
            return type(e)(self.fix(e.args[0])[0], *e.args[1:]), one
        if isinstance(e, sp.logic.boolalg.BooleanFunction):
            return type(e)(*[self.fix(a)[0] for a in e.args]), one
        name = type(e).__name__
        if name in _SAME_UNIT:
            return self.common(e.args, lambda *a: type(e)(*a), want)
        if name in _KEEP_UNIT:
            arg, u = self.fix(e.args[0], want)
            return type(e)(arg), u
        if isinstance(e, sp.Function):
            return type(e)(*[_to(*self.fix(a, one), one) for a in e.args]), one
        raise ModelError(f"cannot write {e} with units")

    def common(self, args, build, want=None):
        """Terms brought to one unit: ``want`` if a term is in it, else the first dimensional
        term's unit, else dimensionless."""
        parts = [self.fix(a, want) for a in args]
        found = [u for _, u in parts if u is not None]
        if not found:
            return build(*[p for p, _ in parts]), None
        if want is not None and any(_same(u, want) for u in found):
            target = want
        else:
            target = next((u for u in found if not u.dimensionless), found[0])
        return build(*[_unfolded(a, p, u, target, self.brian2)
                       for a, (p, u) in zip(args, parts, strict=True)]), target


def _product(units):
    """The product of the units that are not None (None if all are)."""
    found = [u for u in units if u is not None]
    return math.prod(found[1:], start=found[0]) if found else None


def _comparison(step: sp.Heaviside) -> sp.Rel:
    """Heaviside(a − b, h) as the comparison a >= b (h = 1) or a > b, the terms with a
    negative coefficient on the right."""
    lhs, rhs = [], []
    for term in sp.Add.make_args(step.args[0]):
        (rhs if term.could_extract_minus_sign() else lhs).append(term)
    rel = sp.Ge if len(step.args) > 1 and (step.args[1] - 1).is_zero else sp.Gt
    return rel(sp.Add(*lhs), -sp.Add(*rhs), evaluate=False)


def _unfolded(term, fixed, u, target, brian2=False):
    """A term of a sum in ``target``: where its coefficient is the conversion factor from its
    own unit (``1000*I_ext`` with I_ext in nA, in a sum in pA), the bare term, which the
    parser converts back; otherwise the term with unit symbols attached."""
    coefficient, _ = term.as_coeff_Mul()
    if (u is not None and coefficient not in (0, 1) and u.dimensionality == target.dimensionality
            and float(coefficient) == factor(u, target)):
        return fixed / coefficient
    return _to(fixed, u, target, brian2)


def _same(u: pint.Unit, target: pint.Unit) -> bool:
    """True when a magnitude in ``u`` is the same number in ``target``."""
    if u == target:
        return True
    if u.dimensionality != target.dimensionality:
        return False
    return factor(u, target) == 1.0


def _to(expr, u: pint.Unit | None, target: pint.Unit, brian2: bool = False):
    """Attach the unit symbols that make ``expr`` (of unit ``u``, None: a number) read as
    ``target``; the magnitude is unchanged (``brian2``: a zero keeps its unit)."""
    if u is None:
        if target.dimensionless:
            return expr
        return _zero(target) if brian2 and sp.sympify(expr).is_zero else expr * _symbolic(target)
    if _same(u, target):
        return expr
    if target.dimensionless and expr.is_Add:  # exp(V/(10*mV) + 4), not exp((V/10 + 4*mV)/mV)
        return sp.Add(*[a * _symbolic(target / u) for a in expr.args])
    return expr * _symbolic(target / u)


def _tuple(*args):
    return args
