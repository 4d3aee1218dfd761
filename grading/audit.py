"""`derive audit`: check the equations of an answer key (Markdown or LaTeX) line by line.

The key is read, never compiled or executed (keyread: pylatexenc's walker for LaTeX). Each
problem is tied to a family by what its statement says (recognise: score, labels, ring or
chain, the constant assignment, stated numbers), never by its number; a problem that
matches no family is reported once as "not modelled", with the reason.

Each equation of a modelled part is checked against the family's derivation: every named
quantity it shows (Z_n, s(Y[n=1]), P(Y[n] | Y/n), -ln P~(Y), ...) is replaced by its
derived value, each side is read by the whitelist LaTeX reader, and every `=` and
`\\approx` is checked numerically at sample points (N at integers >= 2). An approximation
must agree to the last digit it shows. A generic label such as s(Y[n=i]) is checked for
every label. Open-chain families are checked site by site at N = 1..6 (sites), where a
claim that fails only at N = 1 is a warning.

A line is "ok" when it has at least one checked relation and all hold, "wrong" when one
fails (the detail names the mistake), and "not checkable" when nothing in it can be tied
to the derivation; not-checkable lines are reported with ok: true.
"""
from __future__ import annotations

import functools
import json
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path

import sympy as sp

import derivations
from derivations import core
from derivations.core import answer_str, to_latex

from . import compare, limits
from .grade import Target, flat_answer, target_from
from .limits import TimeLimit, time_limit
from .keyread import Equation, KeyError_, Problem, read_key
from .parse import Unreadable, parse_latex, vocabulary
from .recognise import Match, NotModelled, Statement, find_score, inline_maths, recognise

MAX_FILE_BYTES = 2_000_000
MAX_EQUATIONS = 2000
LINE_SECONDS = 3.0


class AuditError(ValueError):
    """The file cannot be audited at all (unreadable, too large): exit 2."""


@dataclass
class Finding:
    line: int
    part: str
    latex: str
    ok: bool
    detail: str
    checked: bool = True
    warning: bool = False

    def to_json(self) -> dict:
        return {"line": self.line, "part": self.part, "latex": self.latex, "ok": self.ok, "detail": self.detail}

    @property
    def status(self) -> str:
        if not self.ok:
            return "WRONG"
        if self.warning:
            return "warning"
        return "ok" if self.checked else "not checkable"

    def text_line(self, path: str) -> str:
        latex = " ".join(self.latex.split())
        if len(latex) > 90:
            latex = latex[:87] + "..."
        return f"{path}:{self.line}: [{self.part or '-'}] {self.status}: {latex} -- {self.detail}"


# ------------------------------------------------------------- reading a sheet

def read_sheet(path: Path) -> tuple[str, str]:
    """The key's text and kind; a file that is not a regular file, too large or not UTF-8 is refused."""
    try:
        info = path.stat()
    except OSError as failure:
        raise AuditError(f"FILE '{path}': cannot read ({failure.strerror})") from None
    if not stat.S_ISREG(info.st_mode):
        raise AuditError(f"FILE '{path}': not a regular file (a fifo, a device or a directory is not read)")
    if info.st_size > MAX_FILE_BYTES:
        raise AuditError(f"FILE '{path}': too large ({info.st_size} bytes; at most {MAX_FILE_BYTES})")
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as failure:
        raise AuditError(f"FILE '{path}': cannot read ({failure.strerror})") from None
    if len(data) > MAX_FILE_BYTES:
        raise AuditError(f"FILE '{path}': too large (more than {MAX_FILE_BYTES} bytes)")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise AuditError(f"FILE '{path}': not UTF-8 text") from None
    if "\x00" in text:
        raise AuditError(f"FILE '{path}': not text (it holds NUL bytes)")
    is_latex = path.suffix.lower() in (".tex", ".latex") or (
        path.suffix.lower() not in (".md", ".markdown") and ("\\documentclass" in text or "\\section" in text))
    return text, "latex" if is_latex else "markdown"


def find_equations(text: str, kind: str) -> list[Equation]:
    """The sheet's equations in order, each with its line (its part is set by the audit)."""
    return read_key(text, kind).equations()


# --------------------------------------------------------- canonical spellings

def canonical(tex: str) -> str:
    """One spelling for the many ways a sheet writes the same quantity."""
    t = tex
    t = re.sub(r"\\(?:left|right|bigl|bigr|Bigl|Bigr|biggl|biggr|big|Big|bigg|Bigg)(?![A-Za-z])", "", t)
    t = re.sub(r"\\(?:displaystyle|textstyle|nonumber|notag)(?![A-Za-z])", "", t)
    t = re.sub(r"\\(?:quad|qquad)(?![A-Za-z])", " ", t)
    t = re.sub(r"\\[,;:! ]", " ", t)
    t = re.sub(r"\{\s*\\cal\s+([A-Za-z])\s*\}", r"\1", t)
    t = re.sub(r"\\cal\s+([A-Za-z])", r"\1", t)
    t = re.sub(r"\\mathcal\s*\{\s*([A-Za-z])\s*\}", r"\1", t)
    t = re.sub(r"\\mathcal\s*([A-Za-z])", r"\1", t)
    t = re.sub(r"\\(tilde|hat|bar)\s*([A-Za-z])(?![A-Za-z])", r"\\\1{\2}", t)
    t = re.sub(r"\\(?:mid|vert)(?![A-Za-z])", "|", t)
    t = _squeeze(t)
    t = re.sub(r"([_^])\{(\w)\}", r"\1\2", t)
    t = re.sub(r"(?<![A-Za-z\\])\{([A-Za-z])\}_", r"\1_", t)   # SymPy's {Y}_{0}
    t = re.sub(r"P(\}?)_[sn](?=\()", r"P\1", t)               # P_s(...), P_n(...), \tilde{P}_s(...)
    t = t.replace("P(Y|Y/n)", "P(Y[n]|Y/n)")
    return t


def _squeeze(t: str) -> str:
    """Drop whitespace, except one space where a command name meets a letter (\\ln x)."""
    pieces = []
    for match in re.finditer(r"\s+|[^\s]+", t):
        chunk = match.group(0)
        if not chunk.isspace():
            pieces.append(chunk)
            continue
        before = "".join(pieces)
        after = t[match.end():match.end() + 1]
        if re.search(r"\\[A-Za-z]+$", before) and after.isalpha():
            pieces.append(" ")
    return "".join(pieces)


def strip_prose(tex: str) -> str:
    """Remove \\text{...}, \\tag{...}, \\label{...} and trailing punctuation from an equation."""
    out = tex
    for command in ("text", "textrm", "textnormal", "mbox", "hbox", "tag", "label", "intertext"):
        out = _remove_command(out, command)
    pieces = re.split(r"(\\begin\{[pbv]?matrix\}.*?\\end\{[pbv]?matrix\})", out, flags=re.DOTALL)
    out = "".join(piece if index % 2 else piece.replace("&", " ") for index, piece in enumerate(pieces))
    out = out.strip()
    out = re.sub(r"[.,;]\s*$", "", out)
    return out.strip()


def _remove_command(text: str, command: str) -> str:
    pattern = re.compile(r"\\" + command + r"\*?\s*\{")
    while True:
        match = pattern.search(text)
        if not match:
            return text
        depth, index = 1, match.end()
        while index < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[index], 0)
            index += 1
        text = text[:match.start()] + " " + text[index:]


# ------------------------------------------------------------- a part's model

@dataclass
class PartModel:
    """What a part's derivation knows: named quantities with values, and its answer."""

    alias: str
    target: Target
    quantities: dict[str, sp.Expr]       # canonical LaTeX -> value
    ambiguous: set[str] = field(default_factory=set)

    @property
    def answer(self):
        return self.target.derivation.answer


@functools.lru_cache(maxsize=64)
def part_model(alias: str, family_name: str | None = None, args: tuple[str, ...] = ()) -> PartModel | None:
    """The part's derivation with the exam's parameters, or with a variant's (family and `-p` args)."""
    try:
        if family_name is None:
            if alias not in core.ALIASES:
                return None
            family, raw = core.resolve(alias)
        else:
            family = core.FAMILIES[family_name]
            raw = dict(arg.split("=", 1) for arg in args)
        params = family.parse(dict(raw))
        derivation = core.derive(family, params, alias)
    except Exception:  # noqa: BLE001 - a part that cannot be derived leaves its lines not checkable
        return None
    try:
        return _model_of(alias, family, raw, params, derivation)
    except Exception:  # noqa: BLE001 - same: a derivation we cannot read gives no quantities
        return None


def _model_of(alias, family, raw, params, derivation) -> PartModel:
    target = target_from(alias, family, dict(raw), params, derivation)
    values: dict[str, list] = {}
    for step in derivation.steps:
        if not isinstance(step.lhs, sp.Basic) or isinstance(step.lhs, (list, tuple)):
            continue
        key = canonical(to_latex(step.lhs))
        for form in step.forms:
            if _pure(form, target):
                values.setdefault(key, []).append(form)
                break
    result_key = None
    if isinstance(derivation.answer, sp.Basic):
        for step in derivation.steps:
            if step.kind.value == "result" and step.forms and step.forms[0] == derivation.answer:
                result_key = canonical(to_latex(step.lhs))
    quantities: dict[str, sp.Expr] = {}
    ambiguous: set[str] = set()
    for key, forms in values.items():
        distinct = _distinct(forms, target)
        if not distinct:
            continue
        if len(distinct) > 1:
            if key == result_key:
                distinct = [derivation.answer]
            else:
                ambiguous.add(key)
                continue
        _add_quantity(quantities, key, distinct[0])
    return PartModel(alias, target, quantities, ambiguous)


def _pure(form, target: Target) -> bool:
    """A value: a SymPy expression in the part's parameter symbols only."""
    if not isinstance(form, sp.Expr) or isinstance(form, sp.MatrixExpr):
        return False
    if form.has(sp.Indexed, sp.Sum, sp.Product, sp.Piecewise, sp.Integral, sp.Derivative):
        return False
    allowed = set(target.symbols.values())
    return all(s in allowed for s in form.free_symbols)


def _distinct(forms: list, target: Target) -> list:
    points = compare.sample_points(target.free)
    kept, seen = [], []
    for form in forms:
        values = compare.values_at(form, [{**target.values, **p} for p in points])
        if values is None:
            continue
        if any(compare.agree(values, other, compare.EXACT) for other in seen):
            continue
        kept.append(form)
        seen.append(values)
    return kept


def _add_quantity(quantities: dict, key: str, value) -> None:
    """A quantity and the quantities it implies: -ln X = v gives X = e^{-v}, ln X = v gives X = e^v."""
    quantities[key] = value
    for prefix, sign in (("-\\ln ", -1), ("-\\ln", -1), ("\\ln ", 1), ("\\ln", 1), ("-\\log ", -1), ("\\log ", 1)):
        if key.startswith(prefix) and len(key) > len(prefix):
            inner = key[len(prefix):]
            quantities.setdefault(inner, sp.exp(sign * value))
            break


# ------------------------------------------------------------------- checking

@dataclass
class Verdict:
    status: str   # "ok", "wrong", "unchecked"
    detail: str


def placeholder(index: int) -> str:
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return "\\Q" + letters


_RELATIONS = re.compile(r"\\approx(?![A-Za-z])|\\simeq(?![A-Za-z])|\\propto(?![A-Za-z])|\\leq?(?![A-Za-z])"
                        r"|\\geq?(?![A-Za-z])|\\neq(?![A-Za-z])|\\sim(?![A-Za-z])|\\equiv(?![A-Za-z])"
                        r"|\\in(?![A-Za-z])|\\to(?![A-Za-z])|\\mapsto(?![A-Za-z])|:=|<|>|=")


def split_relations(tex: str) -> tuple[list[str], list[str]]:
    """Segments and the relations between them, at brace depth 0."""
    segments, relations = [], []
    depth, start, index = 0, 0, 0
    brackets = 0  # ( and [ together: an interval such as [a, b) still balances
    while index < len(tex):
        char = tex[index]
        if char == "\\" and index + 1 < len(tex) and tex[index + 1] in "{}":
            index += 2
            continue
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
        elif char in "([":
            brackets += 1
        elif char in ")]":
            brackets -= 1
        if depth == 0 and brackets <= 0:
            match = _RELATIONS.match(tex, index)
            if match:
                segments.append(tex[start:index])
                relations.append(match.group(0))
                index = match.end()
                start = index
                continue
        index += 1
    segments.append(tex[start:])
    return [s.strip() for s in segments], relations


def _decimals(segment: str) -> int | None:
    found = re.findall(r"\d*\.(\d+)", segment)
    return max(len(f) for f in found) if found else None


class LineCheck:
    """One equation checked against one part's model."""

    def __init__(self, model: PartModel, tex: str, answer_line: bool):
        self.model = model
        self.tex = tex
        self.answer_line = answer_line
        target = model.target
        self.points = [{**target.values, **p} for p in compare.sample_points(target.free)]
        self.free_points = compare.sample_points(target.free)

    def run(self) -> Verdict:
        canon = canonical(strip_prose(self.tex))
        labelled = self.expand_generic(canon)
        variants = [variant for _, variant in labelled]
        verdicts = [self.check(variant) for variant in variants]
        wrong = [(label, v) for (label, _), v in zip(labelled, verdicts) if v.status == "wrong"]
        if wrong:
            label, verdict = wrong[0]
            return verdict if label is None else Verdict("wrong", f"for the label {label}: {verdict.detail}")
        if all(v.status == "ok" for v in verdicts):
            if len(variants) > 1:
                return Verdict("ok", verdicts[0].detail + f" (for each of the {len(variants)} labels)")
            return verdicts[0]
        return next(v for v in verdicts if v.status == "unchecked")

    def expand_generic(self, canon: str) -> list[tuple[str | None, str]]:
        """s(Y[n=i]) with a letter i that is not a label: one variant per label of the model."""
        labels = []
        for key in self.model.quantities:
            for value in re.findall(r"\[n=([^\]]+)\]", key):
                if value not in labels:
                    labels.append(value)
        generic = {m.group(1) for m in re.finditer(r"\[n=([A-Za-z])\]", canon)} - set(labels)
        if not generic or not labels:
            return [(None, canon)]
        variants = []
        for label in labels:
            variant = canon
            for letter in generic:
                variant = variant.replace(f"[n={letter}]", f"[n={label}]")
            variants.append((label, variant))
        return variants

    def substitute(self, canon: str) -> tuple[str, dict[str, sp.Expr]]:
        table: dict[str, sp.Expr] = {}
        keys = sorted(self.model.quantities, key=len, reverse=True)
        text = canon
        for index, key in enumerate(keys):
            pattern = re.escape(key)
            if key[0].isalpha():
                pattern = r"(?<![A-Za-z\\])" + pattern
            if key[-1].isalnum():
                pattern += r"(?![A-Za-z0-9_])"
            name = placeholder(index)
            new_text = re.sub(pattern, lambda _: name + " ", text)
            if new_text != text:
                table[name] = self.model.quantities[key]
                text = new_text
        return text, table

    def read(self, segment: str, table: dict) -> sp.Expr | None:
        if not segment or len(segment) > limits.MAX_EQUATION_CHARS:
            return None
        vocab = vocabulary(self.model.target.symbols, table)
        vocab.sums = True
        try:
            with time_limit(limits.PARSE_SECONDS, "reading an equation"):
                parsed = parse_latex(segment, vocab)
        except (Unreadable, TimeLimit, RecursionError, TypeError, ValueError, ArithmeticError):
            return None
        return None if parsed.is_list else parsed.value

    def check(self, canon: str) -> Verdict:
        text, table = self.substitute(canon)
        segments, relations = split_relations(text)
        if not relations:
            if self.answer_line:
                return self.check_answer(segments[0], table)
            return Verdict("unchecked", "not checkable: no equation")
        exprs = [self.read(segment, table) for segment in segments]
        problems, checked = [], []
        for index, relation in enumerate(relations):
            left, right = exprs[index], exprs[index + 1]
            if relation not in ("=", "\\approx", "\\simeq"):
                continue
            if left is None or right is None:
                continue
            if relation == "=" and _decimals(segments[index + 1]) is None and _decimals(segments[index]) is None:
                outcome = self.check_equal(left, right, segments[index], segments[index + 1])
            else:
                decimals = _decimals(segments[index + 1]) if relation != "=" else max(
                    _decimals(segments[index]) or 0, _decimals(segments[index + 1]) or 0)
                reference = exprs[0] if index > 0 else None
                outcome = self.check_approx(left, right, decimals, reference)
            if outcome is None:
                continue
            checked.append(relation)
            if outcome:
                problems.append(outcome)
        if problems:
            return Verdict("wrong", "; ".join(problems))
        if checked:
            kinds = sorted({"approximation" if r != "=" else "equality" for r in checked})
            return Verdict("ok", f"checked {len(checked)} relation(s) ({', '.join(kinds)}) against the derivation")
        unknown = [s for s, e in zip(segments, exprs) if e is None]
        reason = "no side ties to a derived quantity" if unknown else "no = or \\approx to check"
        return Verdict("unchecked", f"not checkable: {reason}")

    def values(self, expr):
        return compare.values_at(expr, self.points)

    def check_equal(self, left, right, left_text: str, right_text: str) -> str | None:
        """'' when equal, a description of the mistake when not, None when it cannot be evaluated."""
        a, b = self.values(left), self.values(right)
        if a is None or b is None:
            return None
        if compare.agree(a, b, compare.EXACT):
            return ""
        return self.describe(left, right, a, b)

    def describe(self, left, right, a, b) -> str:
        shown_left, shown_right = self.approx_text(left, a), self.approx_text(right, b)
        if compare.agree(a, [-v for v in b], compare.EXACT):
            return (f"sign error: the left side is {shown_left} but the right side is {shown_right}")
        for base in (10, 2):
            scale = float(sp.log(base))
            if compare.agree(b, [v / scale for v in a], compare.EXACT) or compare.agree(a, [v / scale for v in b], compare.EXACT):
                return f"log base {base} against the natural log: the left side is {shown_left}, the right side {shown_right}"
        factor = compare.describe_factor(b, a, self.free_points, {})
        if factor:
            return f"the right side has {factor}: the left side is {shown_left}, the right side {shown_right}"
        return f"the two sides differ: the left side is {shown_left}, the right side {shown_right}"

    def check_approx(self, exact, approx, decimals: int | None, reference=None) -> str | None:
        """'' when `approx` rounds `exact` to the digits it shows, the mistake when not, None when
        it cannot be evaluated. An approximation c*m (m a monomial such as N) is checked on c."""
        unit_in_last_place = 10.0 ** (-(decimals or 0))

        def shows(value: float, shown_value: float) -> bool:
            """shown_value is value rounded, or cut off, to the digits shown."""
            if abs(value - shown_value) <= 0.5 * unit_in_last_place * (1 + 1e-9) + 1e-12:
                return True
            return abs(shown_value) <= abs(value) + 1e-12 and abs(value - shown_value) < unit_in_last_place and \
                (value >= 0) == (shown_value >= 0)

        tolerance = unit_in_last_place
        exact_values = self.values(exact)
        if exact_values is None or not compare.is_real(exact_values):
            return None
        symbols = approx.free_symbols
        coefficient, monomial = approx.as_coeff_Mul() if symbols else (approx, sp.Integer(1))
        if (symbols and not monomial.free_symbols) or not coefficient.is_number:
            return None
        monomial_values = self.values(monomial)
        if monomial_values is None:
            return None
        unit = "" if monomial == 1 else f" {monomial}"
        shown = f"{float(coefficient):g}{unit}"
        ratio = compare.constant_ratio(exact_values, monomial_values)
        if ratio is None or not compare.is_real([ratio]):
            approx_values = self.values(approx)
            if approx_values is None:
                return None
            if all(abs(x - y) <= 0.5 * tolerance * max(1, abs(m)) for x, y, m in
                   zip(exact_values, approx_values, monomial_values)):
                return ""
            return f"the approximation {shown} does not match {self.approx_text(exact, exact_values)}"
        value = compare.to_float(ratio)
        if shows(value, float(coefficient)):
            return ""
        if shows(-value, float(coefficient)):
            text = (f"the approximation has the wrong sign: the side before it, {answer_str(exact)}, "
                    f"is about {value:.4f}{unit}, not {shown}")
        else:
            text = f"the approximation is off: the side before it, {answer_str(exact)}, is about {value:.4f}{unit}, not {shown}"
        if reference is not None:
            reference_values = self.values(reference)
            reference_ratio = compare.constant_ratio(reference_values, monomial_values) if reference_values else None
            if reference_ratio is not None and compare.is_real([reference_ratio]) and \
                    shows(compare.to_float(reference_ratio), float(coefficient)):
                text += f" ({shown} approximates the left side, {answer_str(reference)})"
        return text

    def approx_text(self, expr, values) -> str:
        """An expression with its value: `N*log(3) (about 1.0986 N)`, or its value at a sample point."""
        shown = answer_str(expr)
        if _plain(expr):
            return shown
        if not expr.free_symbols:
            return f"{shown} (about {compare.short_number(values[0])})" if _not_plain_number(expr) else shown
        symbols = sorted(expr.free_symbols, key=str)
        if len(symbols) == 1:
            symbol = symbols[0]
            monomial_values = self.values(symbol)
            ratio = compare.constant_ratio(values, monomial_values) if monomial_values else None
            if ratio is not None and compare.is_real([ratio]):
                return f"{shown} (about {compare.to_float(ratio):.4f} {symbol})"
        point = ", ".join(f"{s} = {compare.short_number(float(v))}" for s, v in self.free_points[0].items())
        return f"{shown} (about {compare.short_number(values[0])} at {point})"

    def check_answer(self, segment: str, table: dict) -> Verdict:
        answer = flat_answer(self.model.answer)
        if isinstance(answer, list):
            return self.check_answer_list(segment, table, answer)
        if not isinstance(answer, sp.Basic):
            return Verdict("unchecked", "not checkable: the part's answer is not an expression")
        given = self.read(segment, table)
        if given is None:
            return Verdict("unchecked", "not checkable: the answer cannot be read")
        outcome = self.check_equal(answer, given, "", segment)
        if outcome is None:
            return Verdict("unchecked", "not checkable: the answer cannot be evaluated")
        if outcome == "":
            return Verdict("ok", f"the stated answer equals the derived {answer_str(self.model.answer)}")
        return Verdict("wrong", f"the stated answer is not the derived one: {outcome}")

    def check_answer_list(self, segment: str, table: dict, answer: list) -> Verdict:
        """A list or matrix answer, entry by entry."""
        vocab = vocabulary(self.model.target.symbols, table)
        try:
            with time_limit(limits.PARSE_SECONDS, "reading an equation"):
                parsed = parse_latex(segment, vocab)
        except (Unreadable, TimeLimit, RecursionError, TypeError, ValueError, ArithmeticError):
            return Verdict("unchecked", "not checkable: the answer cannot be read")
        given = parsed.value if parsed.is_list else None
        if given is None or len(given) != len(answer):
            return Verdict("unchecked", "not checkable: the answer's shape differs from the derived one")
        for index, (want, got) in enumerate(zip(answer, given)):
            outcome = self.check_equal(sp.sympify(want), got, "", segment)  # our own values only
            if outcome is None:
                return Verdict("unchecked", "not checkable: the answer cannot be evaluated")
            if outcome:
                return Verdict("wrong", f"the stated answer is not the derived one: entry {index + 1}: {outcome}")
        return Verdict("ok", f"the stated answer equals the derived {answer_str(self.model.answer)}")


def _plain(expr) -> bool:
    """A polynomial in the symbols with rational coefficients, such as N - 4: no value to add."""
    if expr.atoms(sp.Function, sp.NumberSymbol, sp.Float):
        return False
    return all(power.exp.is_Integer for power in expr.atoms(sp.Pow))


def _not_plain_number(expr) -> bool:
    return not (expr.is_Integer or expr.is_Float)


# ------------------------------------------------------------------ the audit

def check_with_model(model: PartModel | None, label: str, text: str, answer_line: bool) -> Verdict:
    """One equation against one part's derivation."""
    if model is None:
        return Verdict("unchecked", f"not checkable: part {label} cannot be derived")
    try:
        with time_limit(LINE_SECONDS, "checking the line"):
            return LineCheck(model, text, answer_line).run()
    except TimeLimit:
        return Verdict("unchecked", f"not checkable: the check took longer than {LINE_SECONDS:g} s")
    except RecursionError:
        return Verdict("unchecked", "not checkable: the equation is nested too deeply")
    except Exception as failure:  # noqa: BLE001 - a line we cannot check is never a crash nor "wrong"
        return Verdict("unchecked", f"not checkable: {type(failure).__name__} while checking")


@dataclass
class ModelledPart:
    """A part tied to a family: how each of its equations is checked."""

    label: str
    match: Match
    renames: tuple[tuple[str, str], ...]
    model: PartModel | None = None
    chain: object = None            # sites.ChainModel for the "sites" engine
    broken: str = ""                # why the chain model cannot be used

    def check(self, equation: Equation) -> Verdict:
        text = rename(equation.text, self.renames)
        if self.match.engine == "sites":
            return self.check_sites(equation, text)
        return check_with_model(self.model, self.label, text, equation.answer_line)

    def check_sites(self, equation: Equation, text: str) -> Verdict:
        from . import sites
        if self.broken:
            return Verdict("unchecked", f"not checkable: {self.broken}")
        outcomes = []
        try:
            with time_limit(LINE_SECONDS * 3, "checking the line"):
                if equation.cases:
                    left = canonical(strip_prose(rename(equation.lhs_of_cases, self.renames)))
                    segments, relations = split_relations(left)
                    for case in equation.cases:
                        condition = " ".join(c for c in (equation.condition, case.condition) if c)
                        outcomes.append(sites.check_relation(self.chain, segments[0],
                                                             canonical(strip_prose(case.value)), "=", condition))
                else:
                    segments, relations = split_relations(canonical(strip_prose(text)))
                    for index, relation in enumerate(relations):
                        if relation not in ("=", "\\approx"):
                            continue
                        left = segments[0] if relation == "\\approx" else segments[index]
                        digits = _decimals(segments[index + 1]) if relation == "\\approx" else None
                        outcomes.append(sites.check_relation(self.chain, left, segments[index + 1], relation,
                                                             equation.condition, digits))
        except TimeLimit:
            return Verdict("unchecked", f"not checkable: the check took longer than {3 * LINE_SECONDS:g} s")
        except (RecursionError, ValueError, TypeError, ArithmeticError) as failure:
            return Verdict("unchecked", f"not checkable: {type(failure).__name__} while checking")
        for status in ("wrong", "warning", "ok"):
            found = [o for o in outcomes if o.status == status]
            if found:
                detail = found[0].detail if status != "ok" or len(found) == 1 else \
                    f"checked {len(found)} relation(s) against the chain at N = 1..6"
                return Verdict(status, detail)
        return Verdict("unchecked", outcomes[0].detail if outcomes else "not checkable: no = or \\approx to check")


def rename(text: str, renames) -> str:
    """Each spelling replaced wherever it occurs, whatever spacing the key puts inside it."""
    for old, new in renames:
        pattern = r"\s*".join(re.escape(char) for char in old)
        if old[0].isalpha():
            pattern = r"(?<![A-Za-z\\])" + pattern
        text = re.sub(pattern, lambda _: new, text)
    return text


def _renames(variable: str, score_name: str) -> tuple[tuple[str, str], ...]:
    """The key's own spellings -> the ones the models use: its variable -> Y, its score -> s, Q -> P."""
    pairs = [("\\backslash", "/"), (":=", "="), ("\\tilde{Q}", "\\tilde{P}"), ("\\tilde Q", "\\tilde{P}"),
             ("Q_f(", "P("), ("Q_{f}(", "P(")]
    if variable and variable not in ("Y", "{\\calY}", "\\mathcal{Y}", "\\mathcalY"):
        pairs.append((variable, "Y"))
    if score_name and score_name != "s":
        pairs += [(f"{score_name}(", "s("), (f"P_{score_name}(", "P("), (f"P_{{{score_name}}}(", "P("),
                  (f"\\tilde{{P}}_{score_name}(", "\\tilde{P}(")]
    return tuple(pairs)


def _squashed(text: str) -> str:
    return re.sub(r"\\[,;:! ]|\s+", "", text)


def _statement_maths(problem: Problem) -> list[str]:
    parts = problem.all_parts()
    maths = [eq.latex for part in parts for eq in part.equations if not eq.in_solution]
    return maths + [m for part in parts for m in inline_maths(part.statement_text)]


@dataclass
class PartSummary:
    label: str
    line: int
    family: str | None = None
    params: dict = field(default_factory=dict)
    reason: str = ""
    counts: dict = field(default_factory=lambda: {"ok": 0, "wrong": 0, "warning": 0, "not checkable": 0})

    def to_json(self) -> dict:
        out = {"part": self.label, "line": self.line, "modelled": self.family is not None}
        if self.family is not None:
            out.update({"family": self.family, "params": self.params})
        else:
            out["reason"] = self.reason
        out.update({"checked": self.counts["ok"] + self.counts["wrong"] + self.counts["warning"],
                    "ok": self.counts["ok"], "wrong": self.counts["wrong"], "warnings": self.counts["warning"],
                    "not_checkable": self.counts["not checkable"]})
        return out


@dataclass
class Report:
    findings: list[Finding]
    problems: list[dict]

    def to_json(self) -> dict:
        return {"findings": [f.to_json() for f in self.findings], "problems": self.problems}


def audit_problem(problem: Problem, variant: dict) -> tuple[list[Finding], dict | None]:
    number = problem.number or ""
    if problem.number is None:
        findings = [Finding(eq.line, "", eq.latex.strip(), True, "not checkable: no problem heading above it", False)
                    for part in problem.all_parts() for eq in part.equations]
        return findings, None
    score_name, variable, score = find_score(_statement_maths(problem))
    renames = _renames(variable, score_name)
    lettered = problem.parts or [problem.intro]
    modelled: list[tuple[object, ModelledPart | NotModelled, PartSummary]] = []
    by_letter = {part.letter: part for part in problem.parts}
    for part in lettered:
        label = f"{number}{part.letter or ''}"
        referenced = ""
        mentioned = re.search(r"part\s*\(([a-h])\)", part.statement_text, re.IGNORECASE) if part.letter else None
        if mentioned and mentioned.group(1) in by_letter and mentioned.group(1) != part.letter:
            referenced = by_letter[mentioned.group(1)].statement_text
        own = part.statement_text if part.letter else problem.intro.statement_text
        intro = problem.intro.statement_text if part.letter else ""
        statement = Statement(rename(own, renames), rename(referenced, renames), rename(intro, renames), score,
                              "Y", score_name)
        named = [w for w in re.findall(r"\b(\d+[a-h]?)\b", problem.title) if w in variant and w != number]
        if label not in variant and len(lettered) == 1 and len(named) == 1:
            label = named[0]  # a sheet of `derive solve` names its part in the heading: "Problem 1: 1b"
        if label in variant:
            family, args = variant[label]
            found = Match(family, dict(a.split("=", 1) for a in args))
            found.engine = "derivation"
        else:
            found = recognise(statement)
        summary = PartSummary(label, part.line)
        if isinstance(found, Match):
            modelled.append((part, _modelled(label, found, renames), summary))
            summary.family, summary.params = found.family, dict(found.args)
        else:
            summary.reason = found.reason
            modelled.append((part, found, summary))
    findings: list[Finding] = []
    models = [(entry, summary) for _, entry, summary in modelled if isinstance(entry, ModelledPart)]
    if not models:
        reasons = list(dict.fromkeys(entry.reason for _, entry, _ in modelled))
        findings.append(Finding(problem.line, number, problem.title[:80], True,
                                "not modelled: " + "; ".join(reasons), False))
        return findings, {"problem": number, "line": problem.line, "modelled": False,
                          "parts": [s.to_json() for _, _, s in modelled]}
    if problem.parts:  # the problem's own text: checked against every modelled part
        for equation in problem.intro.equations:
            findings.append(_problem_level(equation, number, models))
    for part, entry, summary in modelled:
        if isinstance(entry, NotModelled):
            findings.append(Finding(part.line, summary.label, "", True, "not modelled: " + entry.reason, False))
            continue
        for equation in part.equations:
            finding = _finding(equation, summary.label, entry.check(equation))
            summary.counts[finding.status if finding.status != "WRONG" else "wrong"] += 1
            findings.append(finding)
    findings.sort(key=lambda f: f.line)
    return findings, {"problem": number, "line": problem.line, "modelled": True,
                      "parts": [s.to_json() for _, _, s in modelled]}


def _modelled(label: str, match: Match, renames) -> ModelledPart:
    entry = ModelledPart(label, match, renames)
    if match.engine == "sites":
        from . import sites
        entry.chain = sites.model_from(match)
        entry.broken = sites.family_agrees(entry.chain)
    else:
        entry.model = part_model(label, match.family, tuple(f"{k}={v}" for k, v in sorted(match.args.items())))
    return entry


def _finding(equation: Equation, label: str, verdict: Verdict) -> Finding:
    latex = equation.latex.strip()
    if verdict.status == "wrong":
        return Finding(equation.line, label, latex, False, verdict.detail)
    if verdict.status == "warning":
        return Finding(equation.line, label, latex, True, verdict.detail, True, True)
    return Finding(equation.line, label, latex, True, verdict.detail, verdict.status == "ok")


def _problem_level(equation: Equation, number: str, models) -> Finding:
    verdicts = [entry.check(equation) for entry, _ in models]
    latex = equation.latex.strip()
    wrong = [v for v in verdicts if v.status == "wrong"]
    if wrong and len(wrong) == len(verdicts):
        prefix = "" if len(verdicts) == 1 else "in every part: "
        return Finding(equation.line, number, latex, False, prefix + wrong[0].detail)
    if wrong:  # a problem-level line that holds for some parts only: unclear, not wrong
        parts = ", ".join(entry.label for (entry, _), v in zip(models, verdicts) if v.status == "wrong")
        return Finding(equation.line, number, latex, True,
                       f"not checkable: it fails for part {parts} but not for the others ({wrong[0].detail})", False)
    if all(v.status == "ok" for v in verdicts):
        return Finding(equation.line, number, latex, True, verdicts[0].detail)
    unchecked = next(v for v in verdicts if v.status != "ok")
    return _finding(equation, number, unchecked)


def variant_parts(path: Path) -> dict[str, tuple[str, tuple[str, ...]]]:
    """For a variant's sheet (ID-solutions.md beside the manifest.json of `derive variants`):
    each part's family and `-p` args. Empty for any other sheet."""
    match = re.fullmatch(r"(?P<id>.+)-solutions\.(?:md|markdown|tex)", path.name)
    manifest = path.parent / "manifest.json"
    if not match or not manifest.is_file():
        return {}
    try:
        if manifest.stat().st_size > 50 * MAX_FILE_BYTES:
            return {}
        data = json.loads(manifest.read_text(encoding="utf-8"))
        for variant in data.get("variants", []):
            if str(variant.get("id")) != match.group("id"):
                continue
            parts = {}
            for part in variant.get("parts", []):
                family, args = part.get("family"), part.get("args")
                if family in derivations.FAMILIES and isinstance(args, list) and all(
                        isinstance(a, str) and "=" in a for a in args):
                    # an exam's parts are named by "part" ("1b"); the seed exam's "problem" is the same alias
                    parts[str(part.get("part") or part.get("problem"))] = (family, tuple(args))
            return parts
    except (OSError, UnicodeDecodeError, ValueError, AttributeError, TypeError):
        return {}
    return {}


def audit_report(path: Path) -> Report:
    text, kind = read_sheet(path)
    derivations.FAMILIES  # noqa: B018 - the families register on import
    variant = variant_parts(path)
    try:
        sheet = read_key(text, kind)
    except KeyError_ as bad:
        raise AuditError(f"FILE '{path}': {bad}") from None
    except RecursionError:
        raise AuditError(f"FILE '{path}': nested too deeply to read") from None
    findings, problems = [], []
    for problem in sheet.problems:
        found, summary = audit_problem(problem, variant)
        findings += found
        if summary is not None:
            problems.append(summary)
    return Report(findings, problems)


def audit_file(path: Path) -> list[Finding]:
    return audit_report(path).findings
