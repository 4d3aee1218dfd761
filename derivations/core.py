"""The derivation core: steps, checks, derivations, families and their registry.

A family states a parameterised model and derives its answer as a list of named
steps, each a SymPy equation with a short reason and the independent numeric
checks that confirm it. Presentation (Markdown, LaTeX, JSON) lives elsewhere.
"""
from __future__ import annotations

import collections
import dataclasses
import enum
import math
import random
from dataclasses import dataclass, field
from typing import Any, Callable

import sympy as sp

from .values import ParameterError

TOLERANCE = 1e-9  # relative agreement every numeric check demands
MAX_DRAWS = 60    # draws of a parameter set before a generator is declared broken


class StepKind(enum.Enum):
    """What a step does; the value doubles as its label on the sheet."""

    DEFINITION = "definition"          # e.g. s(Y) = J (sum Y[n]Y[n+1] + Y[N-1]Y[0])
    SUBSTITUTION = "substitution"      # e.g. Y[n] = 1 everywhere  ->  s(Y) = N
    SIMPLIFICATION = "simplification"  # e.g. N ln(e^N) - N^2  ->  0
    THEOREM = "theorem"                # e.g. change of variables: p_z(z) = p_eps(eps) |d eps/dz|
    COMPUTATION = "computation"        # e.g. cumulative sums of P
    RESULT = "result"                  # the answer to the part


class Notation(sp.Symbol):
    """A named quantity shown with its own LaTeX, such as -ln P~(Y) or Z_n.

    The LaTeX is part of the symbol's identity: SymPy caches symbols by name, so two
    notations with one name and different LaTeX would otherwise be merged.
    """

    def __new__(cls, name: str, latex: str | None = None, **assumptions):
        cls._sanitize(assumptions, cls)
        obj = sp.Symbol.__xnew__(cls, name, **assumptions)  # uncached: see the docstring
        obj._latex_form = name if latex is None else latex
        return obj

    def _hashable_content(self):
        return super()._hashable_content() + (self._latex_form,)

    def _latex(self, printer) -> str:
        return self._latex_form

    def __getnewargs_ex__(self):
        # Unpickling must rebuild the same symbol, LaTeX form included.
        return (self.name, self._latex_form), self.assumptions0


class DuplicateCheckName(ValueError):
    """A derivation with two different checks of one name: a bug in its family, never shown."""


@dataclass(frozen=True)
class Check:
    """One independent confirmation; `passed` is computed, never assumed."""

    name: str
    passed: bool
    detail: str

    def to_json(self) -> dict:
        return {"name": self.name, "passed": self.passed, "detail": self.detail}


@dataclass(frozen=True)
class Step:
    """lhs = forms[0] = forms[1] = ..., each form a SymPy expression."""

    kind: StepKind
    name: str
    lhs: Any
    forms: tuple
    text: str
    checks: tuple[Check, ...] = ()
    relation: str = "="
    approximation: Any = None  # a rounded decimal shown after "\approx"

    @property
    def checked(self) -> bool:
        return bool(self.checks) and all(check.passed for check in self.checks)

    @property
    def latex(self) -> str:
        parts = [to_latex(self.lhs)] + [to_latex(form) for form in self.forms]
        shown = f" {self.relation} ".join(parts)
        if self.approximation is not None:
            shown += r" \approx " + to_latex(self.approximation)
        return shown

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "kind": self.kind.value,
            "latex": self.latex,
            "text": self.text,
            "checked": self.checked,
            "checks": [check.name for check in self.checks],
        }


@dataclass(frozen=True)
class Remark:
    """Prose beside the steps. kind 'key' marks where we differ from the official key."""

    kind: str
    text: str


@dataclass(frozen=True)
class Table:
    caption: str
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class Figure:
    """A TikZ figure: `template` under templates/figures/, `data` its numbers."""

    template: str
    caption: str
    data: dict


@dataclass
class Derivation:
    problem: str
    family: str
    params: dict
    question: str
    steps: list[Step]
    answer: Any
    value: Any
    checks: list[Check] = field(default_factory=list)
    remarks: list[Remark] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    figure: Figure | None = None
    answer_text: str = ""  # prose answer for explanation parts

    def __post_init__(self) -> None:
        self.all_checks  # refuses two different checks under one name, now rather than later

    @property
    def all_checks(self) -> list[Check]:
        """Whole-answer checks first, then each step's, each name once. One check may confirm
        several steps; two *different* checks under one name would let the second one's
        outcome hide behind the first's on every sheet, so they are refused."""
        seen: dict[str, Check] = {}
        for check in list(self.checks) + [c for step in self.steps for c in step.checks]:
            earlier = seen.setdefault(check.name, check)
            if earlier != check:
                raise DuplicateCheckName(f"{self.problem}: two different checks are named '{check.name}'")
        return list(seen.values())

    @property
    def passed(self) -> bool:
        checks = self.all_checks
        return bool(checks) and all(check.passed for check in checks)

    @property
    def answer_latex(self) -> str:
        return to_latex(self.answer)

    def to_json(self) -> dict:
        return {
            "problem": self.problem,
            "family": self.family,
            "params": self.params,
            "answer": {
                "expr": answer_str(self.answer),
                "latex": self.answer_latex,
                "value": self.value,
            },
            "steps": [step.to_json() for step in self.steps],
            "checks": [check.to_json() for check in self.all_checks],
        }


def to_latex(expr: Any) -> str:
    if isinstance(expr, str):
        raise TypeError("displayed equations come from SymPy, not strings: " + expr)
    if isinstance(expr, (list, tuple)):
        return r"\left(" + ", ".join(to_latex(item) for item in expr) + r"\right)"
    return sp.latex(expr, ln_notation=True)


def rounded(expr: Any, decimals: int = 4) -> Notation:
    """A fixed-decimals display of an exact expression (trailing zeros kept), times its symbols."""
    expr = sp.sympify(expr)  # our own SymPy objects and numbers, never user text
    symbols = sorted(expr.free_symbols, key=str)
    if len(symbols) == 1 and sp.Poly(expr, symbols[0]).is_monomial and sp.degree(expr, symbols[0]) == 1:
        coefficient = expr.coeff(symbols[0])
        return rounded(coefficient, decimals) * symbols[0]
    number = float(sp.N(expr, 30))
    text = f"{number:.{decimals}f}"
    return Notation(text, text)


def answer_str(answer: Any) -> str:
    """SymPy's str(), constants first (N*log(1 + exp(-2) + exp(-4)), as the key writes it)."""
    if isinstance(answer, (list, tuple)):
        return "[" + ", ".join(answer_str(item) for item in answer) + "]"
    return sp.sstr(answer, order="rev-lex")


def numeric_value(expr: Any) -> Any:
    """A float (or list of floats) accurate to well below 1e-9, or None if symbolic."""
    if isinstance(expr, (list, tuple)):
        values = [numeric_value(item) for item in expr]
        return None if any(v is None for v in values) else values
    expr = sp.sympify(expr)  # our own SymPy objects only, never user text
    if expr.free_symbols:
        return None
    if expr.is_Integer:
        return int(expr)
    return float(sp.N(expr, 30))


def agree(a: float, b: float, tolerance: float = TOLERANCE) -> bool:
    """Relative agreement, absolute near zero."""
    if not (math.isfinite(a) and math.isfinite(b)):
        return a == b
    return abs(a - b) <= tolerance * max(1.0, abs(a), abs(b))


def compare(name: str, derived: Any, independent: Any, tolerance: float = TOLERANCE,
            how: str = "") -> Check:
    """A check that the derived value equals an independently computed one."""
    if isinstance(derived, (list, tuple)):
        pairs = list(zip(derived, independent))
        ok = len(derived) == len(independent) and all(agree(float(a), float(b), tolerance) for a, b in pairs)
        shown = f"derived {[_short(a) for a in derived]}, {how or 'independent'} {[_short(b) for b in independent]}"
    else:
        ok = agree(float(derived), float(independent), tolerance)
        shown = f"derived {_short(derived)}, {how or 'independent'} {_short(independent)}"
    return Check(name, bool(ok), shown)


def _short(value: Any) -> str:
    number = float(value)
    return str(int(number)) if number.is_integer() and abs(number) < 1e15 else f"{number:.12g}"


# ----------------------------------------------------------------- parameters

Draw = Callable[[random.Random, dict], str]  # (rng, the texts drawn so far) -> a `-p` text


@dataclass(frozen=True)
class Param:
    """A family parameter: how to read it from text, show it back and draw it for a variant."""

    name: str
    parse: Callable[[str, str], Any]     # (text, name) -> value; raises ParameterError
    default: str | None                  # text form; None means "symbolic when omitted"
    help: str
    to_json: Callable[[Any], Any] = lambda value: json_value(value)
    to_text: Callable[[Any], str] = lambda value: text_value(value)
    draw: Draw | None = None             # a classroom value for a variant; None: keep the default


def choice(*texts: str) -> Draw:
    """Draw one of the given `-p` texts (repeat one to make it likelier)."""
    return lambda rng, drawn: rng.choice(texts)


def integer_between(low: int, high: int) -> Draw:
    """Draw an integer from low to high, both included."""
    return lambda rng, drawn: str(rng.randint(low, high))


def one_of_drawn(name: str) -> Draw:
    """Draw one entry of the list already drawn for parameter `name` (e.g. a label of the labels)."""
    return lambda rng, drawn: rng.choice(drawn[name].split(","))


def fractions(numerators: range, denominators: tuple[int, ...]) -> Draw:
    """Draw p/q with p from `numerators` and q from `denominators`, written in lowest terms."""
    def draw(rng: random.Random, drawn: dict) -> str:
        return str(sp.Rational(rng.choice(list(numerators)), rng.choice(denominators)))
    return draw


def json_value(value: Any) -> Any:
    """Exact JSON form: ints stay ints, other rationals become 'p/q' strings."""
    if isinstance(value, (list, tuple)):
        return [json_value(item) for item in value]
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, sp.Basic):
        if value.is_Integer:
            return int(value)
        return str(value)
    return value


def text_value(value: Any) -> str:
    """The `-p NAME=VALUE` text that reads back to the same value."""
    if isinstance(value, (list, tuple)):
        if value and isinstance(value[0], (list, tuple)):
            return ";".join(text_value(row) for row in value)
        return ",".join(text_value(item) for item in value)
    return str(value)


# ------------------------------------------------------------------- families

class Family:
    """A parameterised problem. Subclasses set name, summary, params and derive().

    Hooks a family may override: validate() (cross-parameter rules), generate() (when its
    parameters cannot be drawn one by one), mistakes() (wrong answers the grader names) and
    single_site_reason (why the N = 1 case is special, in the grader's words)."""

    name: str = ""
    summary: str = ""
    domain: str = ""      # the inputs it promises to answer, one line (derive list, README)
    params: tuple[Param, ...] = ()
    numeric: bool = True  # has a numeric answer value (Moodle 'numerical' part)
    single_site_reason: str = "with one site there are no neighbours"

    def parse(self, raw: dict[str, str]) -> dict:
        known = {param.name: param for param in self.params}
        for name in raw:
            if name not in known:
                allowed = ", ".join(known) or "none"
                raise ParameterError(name, f"unknown parameter for {self.name}; allowed: {allowed}")
        values: dict[str, Any] = {}
        for param in self.params:
            text = raw.get(param.name, param.default)
            values[param.name] = None if text is None else param.parse(text, param.name)
        self.validate(values)
        return values

    def validate(self, params: dict) -> None:
        """Cross-parameter constraints; raise ParameterError."""

    def derive(self, params: dict, problem: str | None = None) -> Derivation:
        raise NotImplementedError

    def question(self, params: dict) -> str:
        raise NotImplementedError

    def generate(self, rng: random.Random) -> dict[str, str]:
        """A random valid, classroom-sensible parameter set as `-p` texts: each declared
        parameter's draw, in declaration order (a draw may read the ones before it), drawn
        again while the family refuses the set (e.g. a coupling that overflows Z)."""
        for _ in range(MAX_DRAWS):
            drawn: dict[str, str] = {}
            for param in self.params:
                if param.draw is not None:
                    drawn[param.name] = param.draw(rng, drawn)
            try:
                self.parse(dict(drawn))
            except ParameterError:
                continue
            return drawn
        raise RuntimeError(f"{self.name}: no valid parameter set in {MAX_DRAWS} draws (a bug in its draws)")

    def mistakes(self, params: dict) -> list[tuple[str, Any, str]]:
        """Wrong answers this model predicts, as (code, answer, feedback): the grader names
        them and Moodle gives their feedback. Only the family knows them (ends treated as
        interior sites, arguments swapped...); the generic ones live in the grader."""
        return []

    def args(self, params: dict) -> list[str]:
        return [f"{param.name}={param.to_text(params[param.name])}"
                for param in self.params if params.get(param.name) is not None]

    def params_json(self, params: dict) -> dict:
        return {param.name: (param.to_json(params[param.name]) if params[param.name] is not None
                             else param.name)
                for param in self.params}


@dataclass(frozen=True)
class Alias:
    """A seed alias: a family with the seed exam's parameters as defaults (1a, 1b, ...)."""

    name: str
    family: str
    defaults: dict[str, str]
    title: str


FAMILIES: dict[str, Family] = {}
ALIASES: dict[str, Alias] = {}


def register(family_class: type[Family]) -> type[Family]:
    family = family_class()
    FAMILIES[family.name] = family
    return family_class


def register_alias(name: str, family: str, title: str, **defaults: str) -> None:
    ALIASES[name] = Alias(name, family, dict(defaults), title)


class UnknownProblem(LookupError):
    pass


def resolve(problem: str) -> tuple[Family, dict[str, str]]:
    """The family behind a problem name and the defaults its alias fixes."""
    if problem in ALIASES:
        alias = ALIASES[problem]
        return FAMILIES[alias.family], dict(alias.defaults)
    if problem in FAMILIES:
        return FAMILIES[problem], {}
    names = ", ".join(list(ALIASES) + list(FAMILIES))
    raise UnknownProblem(f"unknown problem '{problem}'; choose one of: {names}")


def solve(problem: str, raw: dict[str, str] | None = None) -> Derivation:
    family, defaults = resolve(problem)
    merged = {**defaults, **(raw or {})}
    params = family.parse(merged)
    return derive(family, params, problem)


# ---------------------------------------------------------------- memoisation

MEMO_SIZE = 4096
_DERIVED: "collections.OrderedDict[tuple, Derivation]" = collections.OrderedDict()


def forget_derivations() -> None:
    """Empty the memo (tests that patch a family's code must not see its earlier results)."""
    _DERIVED.clear()


def derive(family: Family, params: dict, problem: str | None = None) -> Derivation:
    """family.derive(params), done once per distinct parameter set (the `-p` texts that name
    it): a variant run, verify and the grader ask for the same parts again and again. Each
    caller gets its own copy of the lists, so none can change another's derivation."""
    key = (family.name, tuple(family.args(params)))
    built = _DERIVED.get(key)
    if built is None:
        built = family.derive(params, problem=family.name)
        _DERIVED[key] = built
        if len(_DERIVED) > MEMO_SIZE:
            _DERIVED.popitem(last=False)
    else:
        _DERIVED.move_to_end(key)
    return dataclasses.replace(built, problem=problem or family.name, params=dict(built.params),
                               steps=list(built.steps), checks=list(built.checks),
                               remarks=list(built.remarks), tables=list(built.tables))


# ------------------------------------------------------- fast numeric evaluation

class _NotFloatable(Exception):
    pass


def float_at(expr: Any, values: dict | None = None) -> float:
    """float(expr) with symbols replaced by `values` ({symbol: number}), by walking the tree in
    doubles: SymPy's evalf costs ~0.1 ms a call, and the checks evaluate a form at many sizes.
    Meant for the forms families check (sums of exponentials and powers, their logs,
    reciprocals and multiples), where doubles agree with SymPy far below a check's 1e-9; any
    other node, a complex intermediate or an overflow goes to SymPy's own float()."""
    values = values or {}
    try:
        value = _float_tree(expr, values)
        if isinstance(value, float):  # not a complex from a negative base's fractional power
            return value
    except (_NotFloatable, ArithmeticError, ValueError, TypeError, AttributeError):
        pass
    return float(expr.xreplace({symbol: sp.sympify(number) for symbol, number in values.items()})
                 if values else expr)


def _float_tree(expr, values: dict) -> float:
    if expr.is_Rational:
        return float(expr)
    if expr.is_Symbol and expr in values:
        return float(values[expr])
    if expr is sp.E:
        return math.e
    if expr.is_Add:
        return math.fsum(_float_tree(arg, values) for arg in expr.args)
    if expr.is_Mul:
        product = 1.0
        for arg in expr.args:
            product *= _float_tree(arg, values)
        return product
    if expr.is_Pow:
        return _float_tree(expr.base, values) ** _float_tree(expr.exp, values)
    if isinstance(expr, sp.exp):
        return math.exp(_float_tree(expr.args[0], values))
    if isinstance(expr, sp.log) and len(expr.args) == 1:
        return math.log(_float_tree(expr.args[0], values))
    raise _NotFloatable(expr)


# --------------------------------------------------------- declarative checks

def agrees_at(name: str, expr: Any, symbol: sp.Symbol, points, reference: Callable[[Any], float],
              how: str = "independent", tolerance: float = TOLERANCE) -> Check:
    """The check "expr at symbol = p equals reference(p) for every p in points": the derived
    form, evaluated, against an independent computation (enumeration, re-scoring ...)."""
    points = list(points)
    derived = [float_at(expr, {symbol: point}) for point in points]
    direct = [float(reference(point)) for point in points]
    return compare(name, derived, direct, tolerance, how=how)
