"""The derivation core: steps, checks, derivations, families and their registry.

A family states a parameterised model and derives its answer as a list of named
steps, each a SymPy equation with a short reason and the independent numeric
checks that confirm it. Presentation (Markdown, LaTeX, JSON) lives elsewhere.
"""
from __future__ import annotations

import enum
import math
import random
from dataclasses import dataclass, field
from typing import Any, Callable

import sympy as sp

from .values import ParameterError

TOLERANCE = 1e-9  # relative agreement every numeric check demands


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

    @property
    def all_checks(self) -> list[Check]:
        """Whole-answer checks first, then each step's, each name once."""
        seen: dict[str, Check] = {}
        for check in list(self.checks) + [c for step in self.steps for c in step.checks]:
            seen.setdefault(check.name, check)
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

@dataclass(frozen=True)
class Param:
    """A family parameter: how to read it from text and show it back."""

    name: str
    parse: Callable[[str, str], Any]     # (text, name) -> value; raises ParameterError
    default: str | None                  # text form; None means "symbolic when omitted"
    help: str
    to_json: Callable[[Any], Any] = lambda value: json_value(value)
    to_text: Callable[[Any], str] = lambda value: text_value(value)


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
    """A parameterised problem. Subclasses set name, summary, params and derive()."""

    name: str = ""
    summary: str = ""
    params: tuple[Param, ...] = ()
    numeric: bool = True  # has a numeric answer value (Moodle 'numerical' part)

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
        """A random valid, classroom-sensible parameter set as `-p` texts."""
        raise NotImplementedError

    def args(self, params: dict) -> list[str]:
        return [f"{param.name}={param.to_text(params[param.name])}"
                for param in self.params if params.get(param.name) is not None]

    def params_json(self, params: dict) -> dict:
        return {param.name: (param.to_json(params[param.name]) if params[param.name] is not None
                             else param.name)
                for param in self.params}


@dataclass(frozen=True)
class Alias:
    """A seed part of the exam: a family with the exam's parameters as defaults."""

    name: str
    family: str
    defaults: dict[str, str]
    title: str


@dataclass(frozen=True)
class ExamProblem:
    number: int
    title: str
    points: int
    intro: str          # our own words, with $...$ math
    parts: tuple[str, ...]  # alias names, in order


FAMILIES: dict[str, Family] = {}
ALIASES: dict[str, Alias] = {}
EXAM: dict[int, ExamProblem] = {}


def register(family_class: type[Family]) -> type[Family]:
    family = family_class()
    FAMILIES[family.name] = family
    return family_class


def register_alias(name: str, family: str, title: str, **defaults: str) -> None:
    ALIASES[name] = Alias(name, family, dict(defaults), title)


def register_exam_problem(problem: ExamProblem) -> None:
    EXAM[problem.number] = problem


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
    return family.derive(params, problem=problem)


def exam_problems() -> list[ExamProblem]:
    return [EXAM[number] for number in sorted(EXAM)]
