"""`derive grade`: judge a student's answer against the derivation, and name the mistake.

A part's expected answer is `Derivation.answer` (exact SymPy, a list, or an index).
The student's text is read by grading.parse (whitelist, time-limited); both are
evaluated at sample points (compare.py). Equal everywhere: correct (confirmed by
sympy.simplify when it finishes in time). Otherwise the answer is matched against
wrong answers computed from the model itself, each with the feedback it deserves:

- the N = 1 case: the general ring formula applied at N = 1 (or the one-site value
  given for general N or for another N), from re-deriving the family with N symbolic / N = 1;
- a sign error: -expected;
- natural log against log base 10 or 2: expected / ln 10, expected / ln 2;
- variance used in place of the standard deviation (and the reverse): the family
  re-derived with sigma2 replaced by sigma2^2 (so sqrt(sigma2) reads as sigma2);
- another family's answer for the same parameters (e.g. the exact -ln P of ring-nll
  given for the pseudo-likelihood);
- an index off by one: expected +- 1 for word / code indices;
- a missing or extra factor: a small fraction, a parameter's value, or a power of N.
"""
from __future__ import annotations

import contextlib
import csv
import io
import math
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import sympy as sp

import derivations
from derivations import core
from derivations.core import Derivation, Family, answer_str
from derivations.values import ParameterError

from . import compare, limits
from .limits import TimeLimit, time_limit
from .parse import Parsed, Unreadable, Vocabulary, parse_answer, vocabulary

RING_SIZE = sp.Symbol("N", integer=True, positive=True)  # the ring module's N (SymPy caches symbols)
POSITIVE_PARAMS = {"sigma2"}
JUDGE_SECONDS = limits.JUDGE_SECONDS


class BadInput(ValueError):
    """Input the grader cannot use (unknown problem, bad parameter, unreadable file): exit 2."""


@dataclass
class Result:
    correct: bool
    feedback: str
    expected: str
    parsed: str
    mistake: str = ""  # a short code: "sign", "factor", "log-base", "variance", "n1", "index", "family", ...

    def to_json(self) -> dict:
        return {"correct": self.correct, "feedback": self.feedback, "expected": self.expected,
                "parsed": self.parsed}


# ----------------------------------------------------------------- the target

@dataclass
class Target:
    """What one part asks for: its derivation, symbols and parameter values."""

    problem: str
    family: Family
    raw: dict[str, str]              # the `-p` texts, defaults merged in
    params: dict                     # parsed values
    derivation: Derivation
    symbols: dict[str, sp.Symbol]    # scalar parameters by name
    values: dict[sp.Symbol, Any]     # the numeric ones, by symbol
    vocab: Vocabulary
    cache: dict = field(default_factory=dict)

    @property
    def expected(self):
        """The answer, a matrix or nested list flattened row by row."""
        return flat_answer(self.derivation.answer)

    @property
    def is_list(self) -> bool:
        return isinstance(self.expected, list)

    @property
    def is_index(self) -> bool:
        """Word or code indices: integer answers of a family that is not about a gradient."""
        values = _listify(flat_answer(self.derivation.value))
        integers = bool(values) and all(isinstance(v, int) and not isinstance(v, bool) for v in values)
        about = f"{self.family.name} {self.family.summary}".lower()
        return integers and not any(word in about for word in ("gradient", "jacobian", "derivative"))

    @property
    def free(self) -> set:
        """Symbols left symbolic (no value given), over which answers are sampled."""
        return {symbol for symbol in self.symbols.values() if symbol not in self.values}

    def resolve(self, overrides: dict[str, str | None]) -> Derivation | None:
        """The derivation with some `-p` texts changed (None removes one); None if it cannot be derived."""
        raw = dict(self.raw)
        for name, text in overrides.items():
            if text is None:
                raw.pop(name, None)
            else:
                raw[name] = text
        key = tuple(sorted(raw.items()))
        if key not in self.cache:
            try:
                params = self.family.parse(raw)
                self.cache[key] = core.derive(self.family, params, self.problem)
            except TimeLimit:
                raise
            except Exception:  # noqa: BLE001 - a variant that cannot be derived gives no candidate
                self.cache[key] = None
        return self.cache[key]


def make_target(problem: str, raw: dict[str, str]) -> Target:
    """Derive the part; unknown problems and bad parameters raise BadInput."""
    try:
        family, defaults = core.resolve(problem)
        merged = {**defaults, **raw}
        params = family.parse(merged)
        derivation = core.derive(family, params, problem)
    except core.UnknownProblem as unknown:
        raise BadInput(f"problem: {unknown}") from None
    except ParameterError as bad:
        raise BadInput(str(bad)) from None
    if derivation.answer is None or isinstance(derivation.answer, str):
        raise BadInput(f"problem {problem}: its answer is an explanation, not a value that can be graded")
    return target_from(problem, family, merged, params, derivation)


def target_from(problem: str, family: Family, merged: dict[str, str], params: dict,
                derivation: Derivation) -> Target:
    answer_symbols = {s.name: s for s in _free_symbols(derivation.answer)}
    names = {param.name for param in family.params}
    shown = _derivation_symbols(derivation, names)  # the family's own symbol objects, e.g. Notation("zhat")
    symbols: dict[str, sp.Symbol] = {}
    values: dict[sp.Symbol, Any] = {}
    for param in family.params:
        value = params.get(param.name)
        if value is not None and not _is_scalar(value):
            continue
        symbol = answer_symbols.get(param.name) or shown.get(param.name) or _param_symbol(param.name)
        symbols[param.name] = symbol
        if value is not None:
            values[symbol] = sp.Integer(value) if isinstance(value, int) else value
    for name, symbol in answer_symbols.items():  # symbols of the answer that are not parameters
        symbols.setdefault(name, symbol)
    return Target(problem, family, merged, params, derivation, symbols, values, vocabulary(symbols))


def flat_answer(answer):
    """A scalar stays; a SymPy matrix or a (nested) list becomes one flat list, row by row."""
    if isinstance(answer, sp.MatrixBase):
        return [answer[i, j] for i in range(answer.rows) for j in range(answer.cols)]
    if isinstance(answer, (list, tuple)):
        flat = []
        for item in answer:
            inner = flat_answer(item)
            flat.extend(inner if isinstance(inner, list) else [inner])
        return flat
    return answer


def _derivation_symbols(derivation: Derivation, names: set[str]) -> dict[str, sp.Symbol]:
    """Symbols named like parameters anywhere in the derivation's steps, by name."""
    found: dict[str, sp.Symbol] = {}
    for step in derivation.steps:
        for item in (step.lhs, *step.forms):
            for symbol in _free_symbols(item):
                if symbol.name in names:
                    found.setdefault(symbol.name, symbol)
    return found


def _is_scalar(value) -> bool:
    return isinstance(value, (int, sp.Rational, sp.Float)) and not isinstance(value, bool)


def _param_symbol(name: str) -> sp.Symbol:
    if name == "N":
        return RING_SIZE
    if name in POSITIVE_PARAMS:
        return sp.Symbol(name, positive=True)
    return sp.Symbol(name, real=True)


def _free_symbols(answer) -> set:
    if isinstance(answer, (list, tuple)):
        return set().union(*[_free_symbols(item) for item in answer]) if answer else set()
    if isinstance(answer, sp.Basic):
        return {s for s in answer.free_symbols if isinstance(s, sp.Symbol)}
    return set()


# -------------------------------------------------------------------- judging

@dataclass
class Sampled:
    """An answer's values at the sample points: one list per component."""

    components: list  # list of (list of mpc) or None per component

    @property
    def ok(self) -> bool:
        return all(c is not None for c in self.components)


class Judge:
    def __init__(self, target: Target, student: Parsed, limited: bool = True):
        self.target = target
        self.student = student
        self.limited = limited  # False: no time limit (our own candidate values, for a file that must not vary)
        symbols = set(target.free) | _free_symbols(student.value) - set(target.values)
        self.points = [{**target.values, **point} for point in compare.sample_points(symbols)]
        self.numeric = not (target.free | (_free_symbols(student.value) - set(target.values)))
        floats = _has_float(student.value)
        self.rel = compare.NUMERIC if (self.numeric or floats) else compare.EXACT
        self.named = {name: float(value) for name, value in
                      ((n, target.values.get(s)) for n, s in target.symbols.items()) if value is not None}

    # -- values
    def sample(self, answer) -> Sampled:
        items = list(answer) if isinstance(answer, (list, tuple)) else [answer]
        return Sampled([compare.values_at(_as_expr(item), self.points) for item in items])

    def same(self, a: Sampled, b: Sampled, rel: float | None = None) -> bool:
        if not (a.ok and b.ok) or len(a.components) != len(b.components):
            return False
        return all(compare.agree(x, y, rel or self.rel) for x, y in zip(a.components, b.components))

    # -- the verdict
    def run(self) -> Result:
        target, student = self.target, self.student
        expected_text = answer_str(target.derivation.answer)
        parsed_text = shown(student.value)
        expected = self.sample(target.expected)
        if not expected.ok:
            raise BadInput(f"problem {target.problem}: its answer {expected_text} has no numeric value to grade against")
        if target.is_list and not student.is_list and _all_equal(expected):
            # "0" for a zero gradient: one value for a list whose entries are all equal
            self.student = student = Parsed([student.value] * len(target.expected), student.syntax)
        if target.is_list != student.is_list:
            want = f"a list of {len(target.expected)} values" if target.is_list else "a single value"
            return Result(False, f"the answer should be {want}", expected_text, parsed_text, "shape")
        if target.is_list and len(target.expected) != len(student.value):
            return Result(False, f"the answer should have {len(target.expected)} entries, not {len(student.value)}",
                          expected_text, parsed_text, "shape")
        given = self.sample(student.value)
        if not given.ok:
            return Result(False, "the answer has no finite value at the sample points "
                          f"(e.g. at {self.point_text(0)})", expected_text, parsed_text, "undefined")
        rel = compare.EXACT if target.is_index else self.rel
        if self.same(given, expected, rel):
            return Result(True, self.praise(given, expected), expected_text, parsed_text)
        mistake, feedback = self.diagnose(given, expected)
        return Result(False, feedback, expected_text, parsed_text, mistake)

    def praise(self, given: Sampled, expected: Sampled) -> str:
        if self.numeric:
            if self.target.is_index:
                return "correct"
            worst = max(_relative_error(a, b) for g, e in zip(given.components, expected.components)
                        for a, b in zip(g, e))
            if worst == 0:
                return "correct: equal to the expected value"
            return f"correct: within {worst:.1g} relative of the expected value (tolerance 1e-3)"
        if self.rel == compare.NUMERIC:
            return (f"correct: agrees with the expected expression within 1e-3 relative "
                    f"at {len(self.points)} sample points (decimal coefficients)")
        if self.proven():
            return "correct: equivalent to the expected expression (the difference simplifies to 0)"
        return f"correct: equal to the expected expression at {len(self.points)} random points"

    def proven(self) -> bool:
        """sympy.simplify(student - expected) == 0, within its time limit."""
        if _free_symbols(self.student.value) & set(self.target.values):
            return False  # never substitute numbers exactly into a student's expression
        items = zip(_listify(self.student.value), _listify(self.target.expected))
        try:
            with time_limit(limits.SIMPLIFY_SECONDS, "simplification"):
                return all(sp.simplify(_as_expr(a) - _as_expr(b).subs(self.target.values)) == 0
                           for a, b in items)
        except TimeLimit:
            return False
        except Exception:  # noqa: BLE001 - simplify failing proves nothing either way
            return False

    def point_text(self, index: int) -> str:
        point = self.points[index]
        shown = [f"{s} = {compare.short_number(float(v))}" for s, v in point.items() if s not in self.target.values]
        return ", ".join(shown) or "the given parameters"

    # -- mistakes
    def diagnose(self, given: Sampled, expected: Sampled) -> tuple[str, str]:
        try:
            with time_limit(limits.MISTAKES_SECONDS, "matching mistakes") if self.limited else contextlib.nullcontext():
                for code, make in self.candidates():
                    found = make(given, expected)
                    if found:
                        return code, found
        except TimeLimit:
            pass
        return "other", self.plain_difference(given, expected)

    def candidates(self) -> list[tuple[str, Callable]]:
        return [("n1", self.n1_case), *self.family_mistakes(), ("sign", self.sign_error), ("log-base", self.log_base),
                ("variance", self.variance_for_deviation), ("family", self.other_family),
                ("index", self.index_off_by_one), ("step", self.intermediate), ("factor", self.factor),
                ("size", self.other_size)]

    def family_mistakes(self) -> list[tuple[str, Callable]]:
        """Wrong answers the family itself predicts (Family.mistakes(params): code, answer,
        feedback): ends treated as interior sites, a ring's Z for a chain's, KL's arguments
        swapped ... Each keeps its own code."""
        try:
            predicted = self.target.family.mistakes(self.target.params)
        except Exception:  # noqa: BLE001 - a hook that cannot answer here names no mistake
            return []

        def make(answer, feedback):
            def found(given, expected):
                if self.matches(given, answer) and not self.matches(expected, answer):
                    return (f"{feedback}; the expected answer is {answer_str(self.target.derivation.answer)}"
                            + self.about(self.target.expected))
                return None
            return found
        return [(code, make(answer, feedback)) for code, answer, feedback in predicted]

    def matches(self, given: Sampled, candidate) -> bool:
        if candidate is None:
            return False
        return self.same(given, self.sample(candidate))

    def n1_case(self, given, expected) -> str | None:
        target = self.target
        if "N" not in target.symbols or target.is_list:
            return None
        size = target.values.get(target.symbols["N"])
        if size == 1:
            general = target.resolve({"N": None})
            if general is None or not isinstance(general.answer, sp.Basic):
                return None
            formula = general.answer
            extrapolated = formula.subs(RING_SIZE, 1)
            if self.matches(given, extrapolated) and not self.matches(expected, extrapolated):
                return (f"the N=1 case: {answer_str(formula)} holds for N >= 2 only; with one site "
                        f"{target.family.single_site_reason} and the answer is {answer_str(target.derivation.answer)} "
                        f"(about {_value_text(target.expected)}), not {_value_text(extrapolated)}")
        elif size is None:
            single = target.resolve({"N": "1"})
            if single is not None and self.matches(given, single.answer):
                return (f"the N=1 case: {answer_str(single.answer)} is the value for one site "
                        f"({target.family.single_site_reason}); "
                        f"for general N (N >= 2) the answer is {answer_str(target.derivation.answer)}")
        else:
            single = target.resolve({"N": "1"})
            if single is not None and isinstance(single.answer, sp.Basic) and self.matches(given, single.answer) \
                    and not self.matches(expected, single.answer):
                return (f"the N=1 case: {answer_str(single.answer)} (about {_value_text(single.answer)}) is the value "
                        f"for a ring of one site; this part has N = {size}: {answer_str(target.derivation.answer)}"
                        + self.about(target.expected))
        return None

    def other_size(self, given, expected) -> str | None:
        """The general formula at another ring size (a neighbour's variant, or a misread N)."""
        target = self.target
        if "N" not in target.symbols or target.is_list:
            return None
        size = target.values.get(target.symbols["N"])
        if size is None or size == 1:
            return None
        general = self.target.resolve({"N": None})
        if general is None or not isinstance(general.answer, sp.Basic):
            return None
        formula = general.answer
        per_site = sp.simplify(formula / RING_SIZE)
        if per_site.free_symbols or per_site == 0:
            return None
        value = compare.evaluate(per_site, {})
        other = given.components[0][0] / value if value else None
        if other is None or not compare.is_real([other]):
            return None
        guess = round(compare.to_float(other))
        if guess < 2 or guess == size or abs(compare.to_float(other) - guess) > 1e-3 * guess:
            return None
        candidate = formula.subs(RING_SIZE, guess)
        if self.matches(given, candidate):
            return (f"that is the answer for N = {guess}; this part has N = {size}: "
                    f"{answer_str(self.target.derivation.answer)}" + self.about(self.target.expected))
        return None

    def sign_error(self, given, expected) -> str | None:
        if target_is_zero(expected):
            return None
        negated = Sampled([[-v for v in component] for component in expected.components])
        if self.same(given, negated):
            return (f"a sign error: your answer is minus the expected {answer_str(self.target.derivation.answer)}"
                    + self.about(self.target.expected))
        return None

    def log_base(self, given, expected) -> str | None:
        target = self.target
        items = _listify(target.expected)
        uses_log = any(isinstance(item, sp.Basic) and item.has(sp.log) for item in items)
        in_nats = "nats" in (target.family.summary or "") or "nats" in _question_text(target)
        if not (uses_log or in_nats) or target.is_index:
            return None
        for base, name in ((10, "log base 10"), (2, "log base 2 (bits)")):
            for sign, extra in ((1, ""), (-1, ", and the sign is wrong")):
                candidate = [sign * _as_expr(item) / sp.log(base) for item in items]
                if self.matches(given, candidate if target.is_list else candidate[0]):
                    return (f"{name} used instead of the natural log{extra}: the answer is in nats, "
                            f"{answer_str(target.derivation.answer)}")
        return None

    def variance_for_deviation(self, given, expected) -> str | None:
        target = self.target
        if "sigma2" not in target.symbols:
            return None
        symbol = target.symbols["sigma2"]
        options = (("variance", "the variance sigma2 used where the standard deviation sqrt(sigma2) belongs",
                    lambda v: v ** 2, lambda e: e.subs(symbol, symbol ** 2)),
                   ("deviation", "the standard deviation sqrt(sigma2) used where the variance sigma2 belongs",
                    lambda v: sp.sqrt(v), lambda e: e.subs(symbol, sp.sqrt(symbol))))
        for _, text, on_value, on_symbol in options:
            value = target.params.get("sigma2")
            if value is None:
                candidate = [on_symbol(_as_expr(item)) for item in _listify(target.expected)]
                candidate = candidate if target.is_list else candidate[0]
            else:
                param = next(p for p in target.family.params if p.name == "sigma2")
                changed = [on_value(v) for v in value] if isinstance(value, (list, tuple)) else on_value(value)
                if any(not _rational(v) for v in _listify(changed)):
                    continue  # sqrt of a non-square: not a value a parameter can take exactly
                variant = target.resolve({"sigma2": param.to_text(changed)})
                candidate = None if variant is None else flat_answer(variant.answer)
            if self.matches(given, candidate):
                return f"{text}: the expected answer is {answer_str(target.derivation.answer)}" + self.about(target.expected)
        return self.sigma_derivative(given, symbol)

    def sigma_derivative(self, given, symbol) -> str | None:
        """An entry differentiated with respect to sigma instead of sigma2: by the chain rule it is
        the expected entry times d(sigma2)/d(sigma) = 2 sigma."""
        target = self.target
        if not target.is_list:
            return None
        items = [_as_expr(item) for item in target.expected]
        sigma = sp.sqrt(symbol)
        for index in range(len(items)):
            candidate = list(items)
            candidate[index] = 2 * sigma * items[index]
            if self.matches(given, candidate) and not self.matches(given, items):
                return (f"entry {index + 1}: the derivative with respect to sigma = sqrt(sigma2) instead of sigma2 "
                        f"(chain rule: d/dsigma2 = d/dsigma / (2 sigma)); the expected answer is "
                        f"{answer_str(target.derivation.answer)}")
        return None

    def other_family(self, given, expected) -> str | None:
        """Another part of the same family (1a for 1b), or a family with the same parameters
        (ring-nll for ring-pl), derived with the same parameter values."""
        target = self.target
        alias = derivations.ALIASES.get(target.problem)
        for sibling in derivations.ALIASES.values():
            if alias is None or sibling.family != target.family.name or sibling.name == alias.name:
                continue
            derived = self.other(("alias", sibling.name), target.family, {**target.raw, **sibling.defaults})
            if derived is not None and self.matches_answer(given, expected, derived):
                return (f"that is the answer to part {sibling.name} ({sibling.title.lower()}); "
                        f"this part asks for {answer_str(target.derivation.answer)}" + self.about(target.expected))
        names = tuple(p.name for p in target.family.params)
        for other in derivations.FAMILIES.values():
            if other.name == target.family.name or tuple(p.name for p in other.params) != names:
                continue
            derived = self.other(("family", other.name), other, dict(target.raw))
            if derived is not None and self.matches_answer(given, expected, derived):
                return (f"that is the answer of {other.name} ({other.summary}), not of {target.family.name} "
                        f"({target.family.summary}); expected {answer_str(target.derivation.answer)}")
        return None

    def matches_answer(self, given, expected, derived: Derivation) -> bool:
        answer = flat_answer(derived.answer)
        return self.matches(given, answer) and not self.matches(expected, answer)

    def other(self, key, family: Family, raw: dict[str, str]) -> Derivation | None:
        """Another derivation for comparison, cached on the target; None when it cannot be derived
        or its answer's shape differs from this part's."""
        cache = self.target.cache
        if key not in cache:
            try:
                derived = core.derive(family, family.parse(dict(raw)), family.name)
            except TimeLimit:
                raise
            except Exception:  # noqa: BLE001 - no candidate from a family that cannot take these parameters
                derived = None
            if derived is not None and isinstance(flat_answer(derived.answer), list) != self.target.is_list:
                derived = None
            cache[key] = derived
        return cache[key]

    def intermediate(self, given, expected) -> str | None:
        """A quantity the derivation shows on the way (a step's value), given as the answer."""
        target = self.target
        allowed = set(target.symbols.values())
        for step in target.derivation.steps:
            for form in step.forms:
                value = flat_answer(form)
                if isinstance(value, list) != target.is_list:
                    continue
                items = _listify(value)
                if target.is_list and len(items) != len(target.expected):
                    continue
                if not all(isinstance(item, sp.Basic) and not item.has(sp.Piecewise) and
                           item.free_symbols <= allowed for item in items):
                    continue
                if self.matches(given, value) and not self.matches(expected, value):
                    return (f"that is the {step.name} (a step of the derivation), not the answer; the expected answer is "
                            f"{answer_str(target.derivation.answer)}" + self.about(target.expected))
        return None

    def index_off_by_one(self, given, expected) -> str | None:
        target = self.target
        if not target.is_index:
            return None
        unit = _index_unit(target.family.name)
        want = _listify(flat_answer(target.derivation.value))
        for shift in (1, -1):
            candidate = [sp.Integer(v + shift) for v in want]
            if self.matches(given, candidate if target.is_list else candidate[0]):
                got = ", ".join(str(v + shift) for v in want)
                right = ", ".join(str(v) for v in want)
                if shift == 1:
                    why = f"{unit}s are numbered from 0"
                elif unit == "word":
                    why = "word i covers the half-open interval sum_{j<i} P[j] <= eps < sum_{j<=i} P[j]"
                else:
                    why = f"{unit}s are numbered from 0, and the {unit} asked for is {right}"
                plural = "s" if len(want) > 1 else ""
                return f"an index off by one: {unit}{plural} {got} instead of {right} ({why})"
        if target.is_list:  # some positions off by one
            wrong = [(i, compare.to_float(g[0]), w) for i, (g, w) in enumerate(zip(given.components, want))
                     if not compare.close(g[0], w, compare.EXACT)]
            if wrong and all(abs(got - w) == 1 for _, got, w in wrong):
                listed = "; ".join(f"position {i + 1}: {unit} {got:g} instead of {w}" for i, got, w in wrong)
                return f"an index off by one at some positions ({listed})"
        return None

    def factor(self, given, expected) -> str | None:
        if self.target.is_index:
            return None
        for index, (g, e) in enumerate(zip(given.components, expected.components)):
            if compare.agree(g, e, self.rel):
                continue
            text = compare.describe_factor(g, e, self.free_points(), self.named)
            if text is None:
                return None
            where = f"entry {index + 1}: " if self.target.is_list else ""
            return f"{where}{text}: the expected answer is {answer_str(self.target.derivation.answer)}" + \
                self.about(self.target.expected)
        return None

    def free_points(self) -> list[dict]:
        return [{s: v for s, v in point.items() if s not in self.target.values} for point in self.points]

    def about(self, expr) -> str:
        if not self.numeric or isinstance(expr, (list, tuple)):
            return ""
        text = _value_text(expr)
        return "" if text == answer_str(expr) else f" (about {text})"

    def plain_difference(self, given, expected) -> str:
        target = self.target
        if self.numeric and target.is_list:
            wrong = [f"entry {i + 1}: {compare.short_number(g[0])} instead of {compare.short_number(e[0])}"
                     for i, (g, e) in enumerate(zip(given.components, expected.components))
                     if not compare.agree(g, e, self.rel)]
            return f"not the expected {answer_str(target.derivation.answer)} ({'; '.join(wrong)})"
        if self.numeric:
            mine = compare.short_number(given.components[0][0])
            want = compare.short_number(expected.components[0][0])
            if answer_str(target.derivation.answer) == want:
                return f"not the expected value: expected {want}, got {mine}"
            return f"not the expected value: expected {answer_str(target.derivation.answer)} = {want}, got {mine}"
        return (f"not equivalent to the expected {answer_str(target.derivation.answer)}: at {self.point_text(0)} "
                f"yours is {compare.short_number(given.components[0][0])}, expected "
                f"{compare.short_number(expected.components[0][0])}")


def shown(value) -> str:
    """A student's parsed answer as SymPy's str(), decimals without padding zeros."""
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(shown(item) for item in value) + "]"
    return sp.sstr(value, order="rev-lex", full_prec=False)


def _all_equal(sampled: Sampled) -> bool:
    first = sampled.components[0] if sampled.components else None
    return first is not None and all(compare.agree(c, first, compare.EXACT) for c in sampled.components)


def target_is_zero(sampled: Sampled) -> bool:
    return all(abs(v) <= compare.ABSOLUTE for component in sampled.components for v in component)


def _relative_error(a, b) -> float:
    scale = max(abs(a), abs(b))
    return 0.0 if scale == 0 else float(abs(a - b) / scale)


def _listify(value) -> list:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _as_expr(value):
    if isinstance(value, sp.Basic):
        return value
    if isinstance(value, bool):
        return sp.Integer(int(value))
    if isinstance(value, int):
        return sp.Integer(value)
    if isinstance(value, float):
        return sp.Float(value, 30)
    return sp.sympify(value)  # our own derived values only (numbers, SymPy objects), never user text


def _rational(value) -> bool:
    return isinstance(value, sp.Rational) or (isinstance(value, sp.Basic) and value.is_Rational)


def _has_float(value) -> bool:
    return any(isinstance(item, sp.Basic) and item.has(sp.Float) for item in _listify(value))


def _value_text(expr) -> str:
    value = compare.evaluate(_as_expr(expr), {})
    if value is None:
        return answer_str(expr)
    return compare.short_number(value)


def _question_text(target: Target) -> str:
    return target.derivation.question or ""


def _index_unit(family_name: str) -> str:
    if family_name.startswith("gan"):
        return "word"
    if family_name.startswith("vq"):
        return "code"
    return "index"


# ----------------------------------------------------------------- entry points

def grade_answer(target: Target, text: str) -> Result:
    """Judge one answer text; Unreadable propagates (exit 2)."""
    parsed = parse_answer(text, target.vocab)
    try:
        with time_limit(JUDGE_SECONDS, "judging the answer"):
            return Judge(target, parsed).run()
    except TimeLimit:
        return Result(False, f"judged wrong: the answer could not be evaluated within {JUDGE_SECONDS:g} s",
                      answer_str(target.derivation.answer), shown(parsed.value), "time")


def grade(problem: str, raw: dict[str, str], text: str) -> Result:
    return grade_answer(make_target(problem, raw), text)


# ----------------------------------------------------- mistakes, listed ahead

@dataclass(frozen=True)
class Mistake:
    """A wrong number the grader recognises, and the feedback `derive grade` gives for it."""

    value: Any          # an int (an index) or a float, as a student would type it
    code: str           # the Result.mistake code: "sign", "n1", "family", ...
    feedback: str


def mistake_candidates(target: Target, families: bool = True) -> list:
    """Wrong answers made from the model itself, one per mistake the matchers look for:
    the sign error, log base 10 or 2, the value for a ring of one site (N = 1), variance for
    standard deviation, the sibling part's answer and (with families) the answers of the
    families with the same parameters, an index off by one. Only for a single numeric answer."""
    expected = target.expected
    if target.is_list or target.free:
        return []
    if target.is_index:
        return [expected + 1, expected - 1]
    found = [-expected, expected / sp.log(10), expected / sp.log(2)]
    size = target.values.get(target.symbols["N"]) if "N" in target.symbols else None
    if size is not None:
        single = target.resolve({"N": "1"} if size != 1 else {"N": None})
        if single is not None and isinstance(single.answer, sp.Basic):
            found.append(single.answer if size != 1 else single.answer.subs(RING_SIZE, 1))
    value = target.params.get("sigma2")
    if value is not None:
        param = next(p for p in target.family.params if p.name == "sigma2")
        for change in (lambda v: v ** 2, sp.sqrt):
            changed = [change(v) for v in value] if isinstance(value, (list, tuple)) else change(value)
            if all(_rational(v) for v in _listify(changed)):
                variant = target.resolve({"sigma2": param.to_text(changed)})
                if variant is not None and not isinstance(variant.answer, (list, tuple)):
                    found.append(variant.answer)
    alias = derivations.ALIASES.get(target.problem)
    for sibling in derivations.ALIASES.values():
        if alias is not None and sibling.family == target.family.name and sibling.name != alias.name:
            found.append(("alias", sibling.name, target.family, {**target.raw, **sibling.defaults}))
    names = tuple(p.name for p in target.family.params)
    for other in derivations.FAMILIES.values():
        if families and other.name != target.family.name and tuple(p.name for p in other.params) == names:
            found.append(("family", other.name, other, dict(target.raw)))
    return found


def named_mistakes(target: Target, families: bool = True) -> list[Mistake]:
    """The model's wrong numbers that `derive grade` names, each with the grader's own feedback
    for that number as typed (so an LMS that shows it agrees with `derive grade`), in the order
    the candidates come, each value once. Judged without a time limit: the values are ours,
    and the list must not depend on the machine's speed. families=False leaves out the other
    families' answers (ring-nll's exact -ln P for ring-pl: its transfer-matrix derivation
    costs more than all the other candidates together)."""
    judge = Judge(target, Parsed(sp.Integer(0), "sympy"), limited=False)
    mistakes: list[Mistake] = []
    for candidate in mistake_candidates(target, families):
        if isinstance(candidate, tuple):  # another part or family: derived only now, cached on the target
            kind, name, family, raw = candidate
            derived = judge.other((kind, name), family, raw)
            if derived is None:
                continue
            candidate = flat_answer(derived.answer)
        number = compare.evaluate(_as_expr(candidate), {}) if isinstance(candidate, (sp.Basic, int)) else None
        if number is None or not compare.is_real([number]):
            continue
        value: Any = compare.to_float(number)
        if not math.isfinite(value):
            continue
        if target.is_index:
            if value != round(value) or value < 0:
                continue
            value = int(round(value))
        else:
            value = float(f"{value:.12g}")
        typed = sp.Integer(value) if isinstance(value, int) else sp.Float(repr(value), 30)
        result = Judge(target, Parsed(typed, "sympy"), limited=False).run()
        if result.correct or result.mistake in ("", "other"):
            continue
        if any(m.value == value for m in mistakes):
            continue
        mistakes.append(Mistake(value, result.mistake, result.feedback))
    return mistakes


# ------------------------------------------------------------------ batch mode

CSV_COLUMNS = ("id", "part", "answer", "correct", "score", "mistake", "feedback", "expected", "parsed")


@dataclass
class BatchRow:
    id: str
    part: str
    answer: str
    correct: bool | None   # None: not graded (unknown id or part, unreadable answer)
    mistake: str
    feedback: str
    expected: str
    parsed: str

    def csv_row(self) -> list[str]:
        graded = self.correct is not None
        return [self.id, self.part, self.answer, ("true" if self.correct else "false") if graded else "",
                ("1" if self.correct else "0") if graded else "0", self.mistake, self.feedback,
                self.expected, self.parsed]

    def to_json(self) -> dict:
        return {"id": self.id, "part": self.part, "answer": self.answer, "correct": self.correct,
                "score": 1 if self.correct else 0, "mistake": self.mistake, "feedback": self.feedback,
                "expected": self.expected, "parsed": self.parsed}


def read_manifest(path: Path) -> dict[tuple[str, str], dict]:
    """(variant id, part) -> the manifest's part entry."""
    try:
        if Path(path).stat().st_size > 5 * MAX_ANSWERS_BYTES:
            raise BadInput(f"--manifest '{path}': larger than {5 * MAX_ANSWERS_BYTES} bytes")
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as failure:
        raise BadInput(f"--manifest '{path}': cannot read ({failure})") from None
    except json.JSONDecodeError as failure:
        raise BadInput(f"--manifest '{path}': not JSON ({failure.msg}, line {failure.lineno})") from None
    variants = data.get("variants") if isinstance(data, dict) else None
    if not isinstance(variants, list):
        raise BadInput(f"--manifest '{path}': expected {{\"variants\": [...]}} as written by derive variants")
    parts: dict[tuple[str, str], dict] = {}
    for variant in variants:
        if not isinstance(variant, dict) or "id" not in variant or not isinstance(variant.get("parts"), list):
            raise BadInput(f"--manifest '{path}': every variant needs an id and a list of parts")
        for part in variant["parts"]:
            if not isinstance(part, dict) or not {"problem", "family", "args"} <= set(part):
                raise BadInput(f"--manifest '{path}': variant {variant['id']}: a part needs problem, family and args")
            if not isinstance(part["args"], list) or not all(isinstance(a, str) for a in part["args"]):
                raise BadInput(f"--manifest '{path}': variant {variant['id']}: args must be a list of NAME=VALUE texts")
            # Exam files may use one family in several parts: the part label ("1a") names it.
            parts[(str(variant["id"]), str(part.get("part", part["problem"])))] = part
    return parts


MAX_ANSWERS_BYTES = 20_000_000


def read_answers(path: Path) -> list[tuple[str, str, str]]:
    try:
        if Path(path).stat().st_size > MAX_ANSWERS_BYTES:
            raise BadInput(f"--answers '{path}': larger than {MAX_ANSWERS_BYTES} bytes")
        text = Path(path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as failure:
        raise BadInput(f"--answers '{path}': cannot read ({failure})") from None
    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        raise BadInput(f"--answers '{path}': empty; expected a header id,part,answer")
    header = [cell.strip().lower() for cell in rows[0]]
    if not {"id", "part", "answer"} <= set(header):
        raise BadInput(f"--answers '{path}': the header must name the columns id, part, answer (found {','.join(header)})")
    where = {name: header.index(name) for name in ("id", "part", "answer")}
    answers = []
    for number, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) < len(header):
            raise BadInput(f"--answers '{path}': line {number} has {len(row)} cells, expected {len(header)}")
        answers.append((row[where["id"]].strip(), row[where["part"]].strip(), row[where["answer"]]))
    return answers


def grade_batch(manifest: Path, answers: Path) -> list[BatchRow]:
    parts = read_manifest(manifest)
    targets: dict[tuple[str, tuple[str, ...]], Target | str] = {}
    rows = []
    for student, part, text in read_answers(answers):
        entry = parts.get((student, part))
        if entry is None:
            known = "unknown variant id" if not any(key[0] == student for key in parts) else "no such part in the variant"
            rows.append(BatchRow(student, part, text, None, "not graded", f"not graded: {known} ({student}, {part})", "", ""))
            continue
        key = (entry["family"], tuple(entry["args"]))
        if key not in targets:
            targets[key] = _batch_target(entry)
        target = targets[key]
        if isinstance(target, str):
            rows.append(BatchRow(student, part, text, None, "not graded", f"not graded: {target}", "", ""))
            continue
        try:
            result = grade_answer(target, text)
        except Unreadable as unreadable:
            rows.append(BatchRow(student, part, text, False, "unreadable", f"unreadable answer: {unreadable}",
                                 answer_str(target.derivation.answer), ""))
            continue
        except BadInput as bad:
            rows.append(BatchRow(student, part, text, None, "not graded", f"not graded: {bad}", "", ""))
            continue
        rows.append(BatchRow(student, part, text, result.correct, result.mistake, result.feedback,
                             result.expected, result.parsed))
    return rows


def _batch_target(entry: dict) -> Target | str:
    raw = {}
    for arg in entry["args"]:
        name, sep, value = arg.partition("=")
        if not sep:
            return f"manifest args '{arg}' is not NAME=VALUE"
        raw[name.strip()] = value
    alias = derivations.ALIASES.get(str(entry.get("problem")))
    problem = alias.name if alias is not None and alias.family == entry["family"] else entry["family"]
    try:
        return make_target(problem, raw)
    except BadInput as bad:
        return f"manifest part cannot be derived: {bad}"


def batch_csv(rows: list[BatchRow]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        writer.writerow([spreadsheet_safe(cell) for cell in row.csv_row()])
    return buffer.getvalue()


_NUMBER_CELL = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def spreadsheet_safe(cell: str) -> str:
    """A student's text must not become a spreadsheet formula: a cell that starts with
    = + - @ (or a tab or carriage return) and is not a plain number gets a leading quote."""
    if cell and cell[0] in "=+-@\t\r" and not _NUMBER_CELL.match(cell):
        return "'" + cell
    return cell


def batch_summary(rows: list[BatchRow]) -> list[dict]:
    """Per part: answers, graded, correct, the share correct and the commonest mistakes."""
    summary = []
    for part in sorted({row.part for row in rows}, key=_part_order):
        mine = [row for row in rows if row.part == part]
        graded = [row for row in mine if row.correct is not None]
        right = sum(1 for row in graded if row.correct)
        mistakes = Counter(row.mistake for row in graded if not row.correct and row.mistake)
        summary.append({"part": part, "answers": len(mine), "graded": len(graded), "correct": right,
                        "percent": round(100.0 * right / len(graded), 1) if graded else 0.0,
                        "mistakes": dict(mistakes.most_common())})
    return summary


def summary_text(summary: list[dict]) -> str:
    lines = [f"{'part':<6}{'answers':>8}{'graded':>8}{'correct':>8}{'%':>7}  mistakes"]
    for item in summary:
        mistakes = ", ".join(f"{name} {count}" for name, count in item["mistakes"].items()) or "-"
        lines.append(f"{item['part']:<6}{item['answers']:>8}{item['graded']:>8}{item['correct']:>8}"
                     f"{item['percent']:>7.1f}  {mistakes}")
    return "\n".join(lines)


def _part_order(part: str):
    digits = "".join(ch for ch in part if ch.isdigit())
    return (int(digits) if digits else 10**6, part)
