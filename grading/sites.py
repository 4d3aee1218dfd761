"""Checking a key's site-by-site claims on an open chain by enumeration at small sizes.

On a ring every site looks alike, so a family's symbolic derivation gives Z_n, s(Y[n=i])
and the site conditional once. On an open chain the end sites differ from the inner
ones and keys say so with conditions ("for 1 < i < N", cases arrays). Here each claim
is evaluated at N = 1..MAX_SIZE and at every site its condition admits, against values
computed two ways: per-site quantities by enumerating the labels of one site (this
module), and the whole pseudo-likelihood from the family's own derivation, which must
agree with that enumeration before anything is checked.

A claim that holds for N >= 2 but fails at N = 1 is a warning naming N = 1, not a mistake.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from fractions import Fraction

import sympy as sp

import derivations

from . import limits
from .limits import TimeLimit, time_limit
from .parse import Unreadable, parse_latex, vocabulary

SIZES = (1, 2, 3, 4, 5, 6)
TOLERANCE = 1e-9


@dataclass(frozen=True)
class ChainModel:
    labels: tuple[sp.Expr, ...]
    score_kind: str             # "product" (J Y[n]Y[n+1]) or "agreement" (J [Y[n] = Y[n+1]])
    coupling: sp.Expr
    base: int                   # the key's first site: 0 or 1
    assignment: sp.Expr         # the constant label
    family: str
    args: tuple[tuple[str, str], ...]
    field: sp.Expr = sp.Integer(0)       # h, times every label (product scores only)
    size: int | None = None              # the N the statement fixes: claims are checked there only

    def score(self, labels: tuple) -> sp.Expr:
        total = sp.Integer(0)
        for left, right in zip(labels, labels[1:]):
            total += left * right if self.score_kind == "product" else (1 if left == right else 0)
        return self.coupling * total + self.field * sum(labels, sp.Integer(0))

    def sizes(self) -> tuple[int, ...]:
        return (self.size,) if self.size is not None else SIZES

    def constant(self, size: int) -> tuple:
        return (self.assignment,) * size

    def changed(self, size: int, site: int, label) -> tuple:
        labels = list(self.constant(size))
        labels[site - self.base] = label
        return tuple(labels)

    def site_partition(self, size: int, site: int) -> sp.Expr:
        return sum(sp.exp(self.score(self.changed(size, site, v))) for v in self.labels)

    def site_conditional(self, size: int, site: int) -> sp.Expr:
        return sp.exp(self.score(self.constant(size))) / self.site_partition(size, site)

    def pseudo_likelihood(self, size: int) -> sp.Expr:
        return sp.Mul(*[self.site_conditional(size, site) for site in self.sites(size)])

    def sites(self, size: int) -> range:
        return range(self.base, self.base + size)

    def family_negative_log_pl(self, size: int) -> float | None:
        """-ln PL from the family's derivation at this size, or None when it cannot derive it."""
        family = derivations.FAMILIES.get(self.family)
        if family is None:
            return None
        raw = dict(self.args)
        raw["N"] = str(size)
        try:
            derivation = family.derive(family.parse(raw), problem=self.family)
            return float(derivation.value)
        except Exception:  # noqa: BLE001 - a size the family refuses is a size we do not check
            return None


def model_from(match) -> ChainModel:
    site = match.site_model
    labels = tuple(sp.Rational(Fraction(v)) for v in site["labels"])
    coupling = sp.Rational(Fraction(site["J"]))
    assignment = sp.Rational(Fraction(match.args["assignment"]))
    size = int(match.args["N"]) if "N" in match.args and match.args["N"].isdigit() else None
    return ChainModel(labels, "agreement" if site["score"] == "agreement" else "product", coupling,
                      int(site["base"]), assignment, match.family, tuple(sorted(match.args.items())),
                      sp.Rational(Fraction(site.get("h", "0"))), size if size is not None and size <= 12 else None)


# ------------------------------------------------------------------ quantities in the key's text

_SITE = r"(?P<site>[a-z])"


def quantity_patterns(labels) -> list[tuple[re.Pattern, str]]:
    """Canonical spellings (the variable written Y, the score s, probabilities P) -> quantity kind."""
    label = r"(?P<label>-?\d+)"
    return [
        (re.compile(r"-\\ln\\tilde\{P\}\(Y\)"), "neg_log_pl"),
        (re.compile(r"\\tilde\{P\}\(Y\)"), "pl"),
        (re.compile(r"P\(Y\[" + _SITE + r"(?:=" + label + r")?\]\|Y/(?P=site)\)"), "conditional"),
        (re.compile(r"P\(Y\|Y/" + _SITE + r"\)"), "conditional"),
        (re.compile(r"s\(Y\[" + _SITE + r"=" + label + r"\]\)"), "changed_score"),
        (re.compile(r"s\(Y\)"), "score"),
        (re.compile(r"Z_\{?" + _SITE + r"\}?(?![A-Za-z0-9(])"), "site_partition"),
    ]


@dataclass
class Slot:
    name: str
    kind: str
    site: str | None
    label: str | None


def substitute(text: str, patterns) -> tuple[str, list[Slot]]:
    slots: list[Slot] = []
    for pattern, kind in patterns:
        def replace(match, kind=kind):
            groups = match.groupdict()
            name = f"\\Q{chr(65 + len(slots) // 26)}{chr(65 + len(slots) % 26)}"
            slots.append(Slot(name, kind, groups.get("site"), groups.get("label")))
            return " " + name + " "
        text = pattern.sub(replace, text)
    return text, slots


def slot_value(model: ChainModel, slot: Slot, size: int, point: dict) -> sp.Expr | None:
    site = point.get(slot.site) if slot.site else None
    if slot.kind == "score":
        return model.score(model.constant(size))
    if slot.kind == "pl":
        return model.pseudo_likelihood(size)
    if slot.kind == "neg_log_pl":
        return -sp.log(model.pseudo_likelihood(size))
    if site is None:
        return None
    if slot.kind == "changed_score":
        return model.score(model.changed(size, site, sp.Rational(Fraction(slot.label))))
    if slot.kind == "site_partition":
        return model.site_partition(size, site)
    if slot.kind == "conditional":
        if slot.label is not None and sp.Rational(Fraction(slot.label)) != model.assignment:
            return None  # the conditional of a label the assignment does not have: not modelled
        return model.site_conditional(size, site)
    return None


# ------------------------------------------------------------------ conditions

def parse_condition(text: str, symbols: dict) -> list[list[tuple[sp.Expr, str, sp.Expr]]] | None:
    """"for $1 < i < N$", "for $i=1$ or $i=N$": a disjunction of chains of relations; None if unreadable."""
    maths = re.findall(r"\$([^$]+)\$", text)
    if not maths:
        return None
    options = []
    for math_text in maths:
        pieces = re.split(r"(<=|>=|\\leq?|\\geq?|<|>|=|\\neq)", math_text)
        sides = []
        for piece in pieces[::2]:
            try:
                with time_limit(limits.PARSE_SECONDS, "reading a condition"):
                    sides.append(parse_latex(piece.strip(), vocabulary(symbols)).value)
            except (Unreadable, TimeLimit, TypeError, ValueError, RecursionError):
                return None
        relations = pieces[1::2]
        options.append([(sides[k], relations[k], sides[k + 1]) for k in range(len(relations))])
    return options


def holds(condition, point: dict) -> bool:
    if condition is None:
        return True
    for chain in condition:
        if all(_relation(float(a.subs(point)), op, float(b.subs(point))) for a, op, b in chain):
            return True
    return False


def _relation(a: float, op: str, b: float) -> bool:
    return {"<": a < b, ">": a > b, "=": abs(a - b) < 1e-12, "<=": a <= b, "\\le": a <= b, "\\leq": a <= b,
            ">=": a >= b, "\\ge": a >= b, "\\geq": a >= b, "\\neq": abs(a - b) >= 1e-12}[op]


# ------------------------------------------------------------------ checking one claim

@dataclass
class Outcome:
    status: str        # "ok", "wrong", "warning", "unchecked"
    detail: str


def _float(expr) -> float | None:
    try:
        value = complex(sp.N(expr, 20))
    except (TypeError, ValueError, ArithmeticError):
        return None
    if abs(value.imag) > 1e-12 or not math.isfinite(value.real):
        return None
    return value.real


def family_agrees(model: ChainModel) -> str:
    """'' when the family's -ln PL equals the enumeration at every size, else why not."""
    for size in model.sizes():
        derived = model.family_negative_log_pl(size)
        if derived is None:
            return f"{model.family} cannot derive N = {size}"
        enumerated = _float(-sp.log(model.pseudo_likelihood(size)))
        if enumerated is None or abs(derived - enumerated) > 1e-9 * max(1.0, abs(derived)):
            return f"{model.family} gives {derived:.6g} at N = {size}, the enumeration {enumerated}"
    return ""


def check_relation(model: ChainModel, left: str, right: str, relation: str, condition_text: str,
                   approximation_digits: int | None = None) -> Outcome:
    """left REL right at every size and admitted site."""
    patterns = quantity_patterns(model.labels)
    left_text, left_slots = substitute(left, patterns)
    right_text, right_slots = substitute(right, patterns)
    slots = left_slots + right_slots
    site_letters = sorted({s.site for s in slots if s.site} | set(re.findall(r"(?<![A-Za-z\\])([in])(?![A-Za-z])",
                                                                             condition_text)))
    N = sp.Symbol("N", integer=True, positive=True)
    symbols = {"N": N, **{letter: sp.Symbol(letter, integer=True) for letter in site_letters}}
    table = {slot.name: sp.Symbol(slot.name[1:]) for slot in slots}
    vocab = vocabulary(symbols, table)
    try:
        with time_limit(limits.PARSE_SECONDS, "reading an equation"):
            a = parse_latex(left_text, vocab).value
            b = parse_latex(right_text, vocab).value
    except (Unreadable, TimeLimit, TypeError, ValueError, RecursionError, ArithmeticError, AttributeError):
        return Outcome("unchecked", "not checkable: a side cannot be read")
    if not slots and not (a.free_symbols | b.free_symbols) - {N}:
        return Outcome("unchecked", "not checkable: no side ties to a derived quantity")
    condition_text = _worded_condition(condition_text, model, site_letters)
    condition = parse_condition(condition_text, symbols) if condition_text else None
    if condition_text and condition is None:
        return Outcome("unchecked", f"not checkable: the condition '{condition_text}' cannot be read")
    failures, checked = [], 0
    for size in model.sizes():
        sites = list(model.sites(size)) if site_letters else [None]
        for site in sites:
            point = {N: size}
            if site is not None:
                point.update({symbols[letter]: site for letter in site_letters})
            if not holds(condition, point):
                continue
            named = {str(s): s for s in point}
            values = {}
            for slot in slots:
                value = slot_value(model, slot, size, {letter: site for letter in site_letters})
                if value is None:
                    return Outcome("unchecked", "not checkable: a quantity the chain model does not give")
                values[table[slot.name]] = value
            left_value = _float(a.subs(values).subs(point))
            right_value = _float(b.subs(values).subs(point))
            if left_value is None or right_value is None:
                continue  # undefined at this point (a log of 0, N - 2 sites of a 1-site chain)
            checked += 1
            if not _agree(left_value, right_value, relation, approximation_digits):
                where = f"N = {size}" + "".join(f", {letter} = {site}" for letter in site_letters)
                failures.append((size, where, left_value, right_value))
            del named
    if not checked:
        return Outcome("unchecked", "not checkable: no size or site satisfies its condition")
    kind = "approximation" if relation != "=" else "equality"
    scope = (f"N = {model.size}" if model.size is not None else f"N = {SIZES[0]}..{SIZES[-1]}") + (" at every admitted site" if site_letters else "")
    if not failures:
        return Outcome("ok", f"checked 1 relation(s) ({kind}) against the chain at {scope}")
    if all(size == 1 for size, *_ in failures):
        _, where, x, y = failures[0]
        return Outcome("warning", f"warning: holds for N >= 2 but not at N = 1 (at {where}: the left side is "
                                  f"{x:.6g}, the right side {y:.6g})")
    size, where, x, y = next(f for f in failures if f[0] > 1)
    if abs(x + y) <= TOLERANCE * max(1.0, abs(x)):
        reason = "sign error"
    else:
        reason = "the two sides differ"
    return Outcome("wrong", f"{reason}: at {where} the left side is {x:.6g}, the right side {y:.6g}")


END_SITE, INTERIOR_SITE = "at an end site", "at an interior site"


def _worded_condition(text: str, model: ChainModel, site_letters: list[str]) -> str:
    """Our sheets say "at an end site" / "at an interior site" in words: as a condition on the site letter."""
    if text not in (END_SITE, INTERIOR_SITE):
        return text
    if len(site_letters) != 1:
        return ""  # a claim about no one site (the labeling's score) holds at every site alike
    site, first, last = site_letters[0], model.base, f"N - 1 + {model.base}" if model.base else "N - 1"
    if text == END_SITE:
        return f"for ${site} = {first}$ or ${site} = {last}$"
    return f"for ${first} < {site} < {last}$"


def _agree(x: float, y: float, relation: str, digits: int | None) -> bool:
    if relation == "=":
        return abs(x - y) <= TOLERANCE * max(1.0, abs(x), abs(y))
    unit = 10.0 ** (-(digits or 0))
    return abs(x - y) <= 0.5 * unit * (1 + 1e-9) + 1e-12 or (abs(y) <= abs(x) and abs(x - y) < unit)
