"""Information theory on finite distributions: entropy, cross-entropy, KL divergence, mutual information.

Probabilities are exact rationals and every logarithm stays symbolic: SymPy's expand_log collects a
sum of P ln Q terms into rational multiples of ln 2, ln 3, ln 5, ... (zero entries follow the
convention 0 ln 0 = 0). Each value is confirmed three ways that share no code with that path: an own
prime-by-prime tally of the same logarithms (exact), the defining sum in mpmath at 50 digits, and the
inequalities the quantity must satisfy (Gibbs: KL >= 0 with equality iff P = Q; H <= ln |support|;
I <= min(H(X), H(Y))). The identities a student is asked for, H(P,Q) = H(P) + KL(P||Q) and
I(X;Y) = H(X) + H(Y) - H(X,Y) = KL(P_XY || P_X P_Y), are computed steps with exact checks.
"""
from __future__ import annotations

import dataclasses
import functools
import random
from collections import Counter, defaultdict
from typing import Any

import mpmath
import sympy as sp

from .core import (FAMILIES, Check, Derivation, Family, Notation, Param, Step, StepKind, Table,
                   register, to_latex)
from .values import ParameterError, check_probabilities, parse_list, parse_matrix

# ------------------------------------------------------------------ constants

MAX_OUTCOMES = 20            # entries of P and Q
MAX_SIDE = 8                 # rows and columns of a joint distribution
MAX_DENOMINATOR = 10 ** 15   # keeps the factoring of every number instant (15-place decimals pass)
REFERENCE_DIGITS = 50        # working precision of the mpmath references
AGREEMENT = mpmath.mpf(10) ** -40  # relative gap the high-precision checks allow
SHOWN_TERMS = 8              # longer sums are left to the table, so a displayed line stays short
INEXACT_SLACK = 1e-9         # inequality slack when decimal inputs miss a total of 1 by rounding

# ------------------------------------------------------------------ notation

H_P = Notation("info: H_P", "H(P)")  # the name sorts it after H(P,Q) in sums
H_PQ = Notation("info: H(P,Q)", "H(P, Q)")
H_QP = Notation("info: H(Q,P)", "H(Q, P)")
KL_PQ = Notation("info: KL(P||Q)", r"\mathrm{KL}(P \,\|\, Q)")
I_XY = Notation("info: I(X;Y)", "I(X; Y)")
H_X = Notation("info: H(X)", "H(X)")
H_Y = Notation("info: H(Y)", "H(Y)")
H_XY = Notation("info: H_joint(X,Y)", "H(X, Y)")  # the name sorts it after H(Y) in sums
KL_JOINT = Notation("info: KL(P_XY||P_X P_Y)", r"\mathrm{KL}(P_{XY} \,\|\, P_X P_Y)")
MIN_H = Notation("info: min(H(X),H(Y))", r"\min(H(X), H(Y))")
P_X = Notation("info: P_X", "P_X")
P_Y = Notation("info: P_Y", "P_Y")
ZERO_LOG = Notation("info: 0 ln 0", r"0 \ln 0")
INDEX = sp.Symbol("i", integer=True, positive=True)
X_INDEX = sp.Symbol("x", integer=True)
Y_INDEX = sp.Symbol("y", integer=True)
T = sp.Symbol("t", positive=True)

ENTROPY_TERM = Notation("info: P_i ln P_i", r"P_i \ln P_i")
CROSS_TERM = Notation("info: P_i ln Q_i", r"P_i \ln Q_i")
KL_TERM = Notation("info: P_i ln P_i/Q_i", r"P_i \ln \frac{P_i}{Q_i}")
MARGINAL_X_TERM = Notation("info: P_X(x) ln P_X(x)", r"P_X(x) \ln P_X(x)")
MARGINAL_Y_TERM = Notation("info: P_Y(y) ln P_Y(y)", r"P_Y(y) \ln P_Y(y)")
JOINT_TERM = Notation("info: P(x,y) ln P(x,y)", r"P(x, y) \ln P(x, y)")
MI_TERM = Notation("info: P(x,y) ln P(x,y)/P_X P_Y", r"P(x, y) \ln \frac{P(x, y)}{P_X(x) P_Y(y)}")


# ------------------------------------------------------------------ parameters

def _check_denominators(values, name: str, where=lambda index: f"entry {index}") -> None:
    for index, value in enumerate(values):
        if value.q > MAX_DENOMINATOR:
            raise ParameterError(name, f"{where(index)} ({value}) has a denominator above 10^15; "
                                       "give at most 15 decimal places or a fraction with a smaller denominator")


def parse_distribution(text: str, name: str) -> list:
    """A probability vector: 1 to MAX_OUTCOMES exact entries >= 0 summing to 1."""
    values = parse_list(text, name)
    if len(values) > MAX_OUTCOMES:
        raise ParameterError(name, f"has {len(values)} entries; at most {MAX_OUTCOMES} outcomes are allowed")
    check_probabilities(values, name)
    _check_denominators(values, name)
    return values


def parse_joint(text: str, name: str) -> list:
    """A joint distribution: rows (values of X) separated by ';', entries >= 0 summing to 1 over all cells."""
    rows = parse_matrix(text, name)
    if len(rows) > MAX_SIDE or len(rows[0]) > MAX_SIDE:
        raise ParameterError(name, f"is {len(rows)} x {len(rows[0])}; at most {MAX_SIDE} x {MAX_SIDE} is allowed")
    width = len(rows[0])
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            if value < 0:
                raise ParameterError(name, f"row {r}, column {c} is negative ({value}); probabilities must be >= 0")
    flat = [value for row in rows for value in row]
    try:
        check_probabilities(flat, name)
    except ParameterError as error:
        raise ParameterError(name, f"{error.message} (the sum runs over every cell)") from None
    _check_denominators(flat, name, lambda index: f"row {index // width}, column {index % width}")
    # the marginals' logarithms are factored too; sums of coprime denominators grow fast
    _check_denominators([sp.Add(*row) for row in rows], name, lambda index: f"the sum of row {index}")
    _check_denominators([sp.Add(*column) for column in zip(*rows)], name, lambda index: f"the sum of column {index}")
    return rows


P_PARAM = Param("P", parse_distribution, "1/2,1/4,1/4",
                "probabilities of the outcomes 1..n, comma-separated, >= 0, summing to 1")
Q_PARAM = Param("Q", parse_distribution, "1/4,1/4,1/2",
                "a second distribution on the same n outcomes; > 0 wherever P > 0")
JOINT_PARAM = Param("joint", parse_joint, "1/4,1/4;0,1/2",
                    "joint distribution P(x,y): one row per value of X, ';' between rows, all cells summing to 1")


def support_check(P, Q, what: str) -> None:
    """Q must be > 0 wherever P > 0, else the divergence (or cross-entropy) is +infinity."""
    if len(P) != len(Q):
        raise ParameterError("Q", f"has {len(Q)} entries but P has {len(P)}; give one probability per outcome")
    for index, (p, q) in enumerate(zip(P, Q)):
        if p > 0 and q == 0:
            raise ParameterError("Q", f"entry {index} is 0 where P is {p} > 0, so {what} is infinite; "
                                      "Q must be > 0 wherever P > 0")


def _exact_total(values) -> bool:
    return sum(values, sp.Integer(0)) == 1


# ---------------------------------------------------- the SymPy path (exact)

@functools.lru_cache(maxsize=8192)
def log_primes(argument):
    """ln(argument) of a positive rational, expanded by SymPy over the primes of its numerator and denominator.

    A sum of coefficient * log_primes(argument) is then collected by SymPy's Add on its own (like
    logarithms combine): expand_log of the whole sum gives the same at several times the cost.
    """
    return sp.expand_log(sp.log(argument), force=True, factor=True)


def log_sum(terms):
    """sum coefficient * ln(argument), collected over primes."""
    return sp.Add(*[coefficient * log_primes(argument) for coefficient, argument in terms])


def entropy_sum(P):
    """-sum P_i ln P_i over the support (0 ln 0 = 0), as SymPy evaluates it term by term."""
    return -sp.Add(*[p * sp.log(p) for p in P if p > 0])


def cross_entropy_sum(P, Q):
    return -sp.Add(*[p * sp.log(q) for p, q in zip(P, Q) if p > 0])


def kl_sum(P, Q):
    return sp.Add(*[p * sp.log(p / q) for p, q in zip(P, Q) if p > 0])


def marginals(joint) -> tuple[list, list]:
    rows = [sp.Add(*row) for row in joint]
    columns = [sp.Add(*column) for column in zip(*joint)]
    return rows, columns


def mutual_information_divergence(joint, rows, columns):
    """sum P(x,y) [ln P(x,y) - ln P_X(x) - ln P_Y(y)] over the cells with P(x,y) > 0, collected."""
    return log_sum([term for x, row in enumerate(joint) for y, p in enumerate(row) if p > 0
                    for term in ((p, p), (-p, rows[x]), (-p, columns[y]))])


def entropy_exact(P):
    return log_sum([(-p, p) for p in P if p > 0])


def cross_entropy_exact(P, Q):
    return log_sum([(-p, q) for p, q in zip(P, Q) if p > 0])


def kl_exact(P, Q):
    # ln P_i - ln Q_i, each factored alone: their ratio's numbers can be twice as long
    return log_sum([term for p, q in zip(P, Q) if p > 0 for term in ((p, p), (-p, q))])


# ------------------------------------------- an own exact tally (independent)

def log_tally(terms) -> dict[int, sp.Rational]:
    """sum coefficient * ln(argument) for exact positive rational arguments, as {prime: coefficient}."""
    tally: dict[int, sp.Rational] = defaultdict(lambda: sp.Integer(0))
    for coefficient, argument in terms:
        argument = sp.Rational(argument)
        for prime, power in sp.factorint(int(argument.p)).items():
            tally[int(prime)] += coefficient * power
        for prime, power in sp.factorint(int(argument.q)).items():
            tally[int(prime)] -= coefficient * power
    return {prime: c for prime, c in sorted(tally.items()) if c != 0}


def tally_of(expr) -> dict[int, sp.Rational] | None:
    """A collected SymPy expression read back as {prime: coefficient}; None if it is not of that shape."""
    expr = sp.sympify(expr)  # our own SymPy objects only, never user text
    if expr == 0:
        return {}
    tally = {}
    for term, coefficient in expr.as_coefficients_dict().items():
        if not (isinstance(term, sp.log) and term.args[0].is_Integer and sp.isprime(term.args[0])
                and coefficient.is_Rational):
            return None
        tally[int(term.args[0])] = coefficient
    return {prime: c for prime, c in sorted(tally.items()) if c != 0}


def entropy_tally(P) -> dict:
    return log_tally([(-p, p) for p in P if p > 0])


def cross_entropy_tally(P, Q) -> dict:
    return log_tally([(-p, q) for p, q in zip(P, Q) if p > 0])


def kl_tally(P, Q) -> dict:
    return log_tally([(p, p) for p, q in zip(P, Q) if p > 0] + [(-p, q) for p, q in zip(P, Q) if p > 0])


def add_tallies(*signed) -> dict:
    total: dict[int, sp.Rational] = defaultdict(lambda: sp.Integer(0))
    for sign, tally in signed:
        for prime, c in tally.items():
            total[prime] += sign * c
    return {prime: c for prime, c in sorted(total.items()) if c != 0}


def tally_check(name: str, expr, tally: dict) -> Check:
    read = tally_of(expr)
    ok = read == tally
    shown = lambda t: " + ".join(f"({c}) ln {p}" for p, c in t.items()) or "0"  # noqa: E731
    detail = (f"both give {shown(tally)}" if ok else
              f"SymPy {shown(read) if read is not None else to_latex(expr)}, tally {shown(tally)}")
    return Check(name, ok, detail)


# ------------------------------------------------ mpmath references (independent)

def _mpf(value) -> mpmath.mpf:
    value = sp.Rational(value)
    return mpmath.mpf(int(value.p)) / int(value.q)


def reference_entropy(P) -> mpmath.mpf:
    """-sum p ln p at REFERENCE_DIGITS digits, zero entries skipped."""
    with mpmath.workdps(REFERENCE_DIGITS):
        return -mpmath.fsum(_mpf(p) * mpmath.log(_mpf(p)) for p in P if p > 0)


def reference_cross_entropy(P, Q) -> mpmath.mpf:
    with mpmath.workdps(REFERENCE_DIGITS):
        return -mpmath.fsum(_mpf(p) * mpmath.log(_mpf(q)) for p, q in zip(P, Q) if p > 0)


def reference_kl(P, Q) -> mpmath.mpf:
    with mpmath.workdps(REFERENCE_DIGITS):
        return mpmath.fsum(_mpf(p) * (mpmath.log(_mpf(p)) - mpmath.log(_mpf(q))) for p, q in zip(P, Q) if p > 0)


def reference_mutual_information(joint) -> mpmath.mpf:
    """sum P(x,y) ln(P(x,y) / (P_X(x) P_Y(y))), marginals summed in mpmath."""
    with mpmath.workdps(REFERENCE_DIGITS):
        cells = [[_mpf(p) for p in row] for row in joint]
        rows = [mpmath.fsum(row) for row in cells]
        columns = [mpmath.fsum(column) for column in zip(*cells)]
        return mpmath.fsum(p * mpmath.log(p / (rows[x] * columns[y]))
                           for x, row in enumerate(cells) for y, p in enumerate(row) if p > 0)


def combine(*signed) -> mpmath.mpf:
    """sum sign * reference at the reference precision (outside it mpmath would round to 15 digits)."""
    with mpmath.workdps(REFERENCE_DIGITS):
        return mpmath.fsum(sign * value for sign, value in signed)


def high_precision(expr) -> mpmath.mpf:
    """A derived SymPy value at REFERENCE_DIGITS + 10 digits, as an mpmath number.

    A collected sum c_1 ln p_1 + c_2 ln p_2 + ... is evaluated term by term as it stands (SymPy's
    evalf takes ten times longer for the same digits); anything else goes through evalf.
    """
    expr = sp.sympify(expr)  # our own SymPy objects only, never user text
    with mpmath.workdps(REFERENCE_DIGITS + 10):
        if expr.is_Rational:
            return _mpf(expr)
        tally = tally_of(expr)
        if tally is not None:
            return mpmath.fsum(_mpf(c) * mpmath.log(prime) for prime, c in tally.items())
        return mpmath.mpf(str(sp.N(expr, REFERENCE_DIGITS + 10)))


def value_of(expr):
    """answer.value: an int for an integer, else a float (accurate far beyond 1e-9)."""
    return int(expr) if expr.is_Integer else float(high_precision(expr))


def precise_check(name: str, derived, reference: mpmath.mpf) -> Check:
    """The derived value agrees with a 50-digit reference to 1e-40 relative (absolute near 0)."""
    with mpmath.workdps(REFERENCE_DIGITS):
        value = high_precision(derived)
        gap = abs(value - reference)
        ok = gap <= AGREEMENT * max(1, abs(reference))
        return Check(name, bool(ok), f"derived {mpmath.nstr(value, 20)}, mpmath {mpmath.nstr(reference, 20)} "
                                     f"at {REFERENCE_DIGITS} digits; gap {mpmath.nstr(gap, 3)}")


# ------------------------------------------------------------ display helpers

@functools.lru_cache(maxsize=8192)
def cell(value) -> str:
    """A table cell's inline math; the same small fractions and logs recur across variants."""
    return f"${to_latex(value)}$"


@functools.lru_cache(maxsize=8192)
def shown_term(coefficient, argument, count: int = 1):
    """coefficient ln(argument) kept as written, e.g. 2 * (1/4) ln(1/4)."""
    term = sp.UnevaluatedExpr(coefficient) * sp.UnevaluatedExpr(sp.log(argument, evaluate=False))
    return term if count == 1 else sp.Mul(count, term, evaluate=False)


def shown_sum(pairs, negate: bool):
    """The instance's terms, equal ones grouped; None when there are more than SHOWN_TERMS of them."""
    counts = Counter(pairs)
    if len(counts) > SHOWN_TERMS or not counts:
        return None
    terms = [shown_term(c, a, n) for (c, a), n in counts.items()]
    total = terms[0] if len(terms) == 1 else sp.Add(*terms, evaluate=False)
    return sp.Mul(-1, total, evaluate=False) if negate else total


def brief(expr):
    """The expression, or None when it has more than SHOWN_TERMS terms (counting inside a shown sum of values)."""
    terms = sum(len(sp.Add.make_args(arg)) for arg in sp.Add.make_args(expr))
    return expr if terms <= SHOWN_TERMS else None


def _forms(*forms) -> tuple:
    """Forms in order, each once, None skipped."""
    kept: list = []
    for form in forms:
        if form is not None and not any(form == seen for seen in kept):
            kept.append(form)
    return tuple(kept)


def drop_empty(steps: list) -> list:
    """Steps whose every form was too long to show are left out; the next step points to the table."""
    kept, dropped = [], False
    for step in steps:
        if not step.forms:
            dropped = True
            continue
        if dropped:
            step = dataclasses.replace(step, text=step.text + " The sum has too many terms for one line; the "
                                       "table below lists each outcome's contribution.")
            dropped = False
        kept.append(step)
    return kept


def approx(value):
    """The rounded decimal shown after the exact value (as core.rounded shows it), for irrational values."""
    if value.is_Rational:
        return None
    text = f"{float(high_precision(value)):.4f}"
    return Notation(text, text)


def vector_latex(values) -> str:
    """(a, b, c) for inline math, breakable after each comma (a long P must not run into the margin)."""
    return "(" + r",\allowbreak ".join(to_latex(v) for v in values) + ")"


def decimal(value) -> str:
    return f"{float(high_precision(value)):.4f}"


@functools.lru_cache(maxsize=None)
def zero_log_step() -> Step:
    """0 ln 0 = 0 as the limit of t ln t at 0 from above, by SymPy."""
    limit = sp.limit(T * sp.log(T), T, 0, "+")
    check = Check("SymPy: t ln t -> 0 as t -> 0+", limit == 0, f"the limit is {limit}")
    return Step(StepKind.THEOREM, "the convention for zero probabilities", ZERO_LOG,
                (sp.Limit(T * sp.log(T), T, 0, "+"), limit),
                "An outcome of probability 0 contributes nothing: the term is taken as the limit of "
                "$t \\ln t$ as $t$ falls to 0.", (check,))


def at_most(a, b, slack: float) -> bool:
    """a <= b + slack, at the working precision of the values (outside it the sum rounds to 15 digits)."""
    with mpmath.workdps(REFERENCE_DIGITS + 10):
        return bool(a <= b + slack)


def inequality_slack(*vectors) -> float:
    return 0.0 if all(_exact_total(v) for v in vectors) else INEXACT_SLACK


# ------------------------------------------------------------------ entropy

def entropy_derivation(P) -> tuple[list, Any, list, list]:
    answer = entropy_exact(P)
    support = [p for p in P if p > 0]
    size = len(support)
    slack = inequality_slack(P)

    exact = tally_check("H(P): SymPy's collected logs = an own prime-by-prime tally", answer, entropy_tally(P))
    numeric = precise_check("H(P) vs -sum P ln P in mpmath at 50 digits", answer, reference_entropy(P))
    value = high_precision(answer)
    bound = sp.log(size)
    uniform = len(set(support)) == 1
    at_bound = tally_of(answer) == log_tally([(1, size)])
    with mpmath.workdps(REFERENCE_DIGITS + 10):
        bound_value = mpmath.log(size)
    # at the bound the exact tallies decide (two roundings of ln 6 need not agree in the last digit)
    if slack:  # decimals that miss a total of 1 by rounding: equality holds only up to the slack
        equality = not uniform or at_most(abs(value - bound_value), 0, slack)
    else:
        equality = at_bound == uniform
    ok = (value >= -slack and (at_bound or at_most(value, bound_value, slack)) and equality
          and ((size == 1) == (answer == 0)))
    bounds = Check(f"0 <= H(P) <= ln {size} (support size), equal to ln {size} iff P is uniform on its support",
                   bool(ok), f"H(P) = {mpmath.nstr(value, 15)}, ln {size} = {float(bound):.15g}; "
                             f"{'uniform' if uniform else 'not uniform'} on the support, "
                             f"{'at' if at_bound else 'below'} the bound")

    n = len(P)
    steps = []
    if size < n:
        steps.append(zero_log_step())
    steps += [
        Step(StepKind.DEFINITION, "entropy", H_P, (-sp.Sum(ENTROPY_TERM, (INDEX, 1, n)),),
             "The entropy in nats is the expected value of $-\\ln P_i$; natural logarithms throughout."),
        Step(StepKind.SUBSTITUTION, "the terms of the sum", H_P,
             _forms(shown_sum([(p, p) for p in support], negate=True), brief(entropy_sum(P))),
             "Put in the probabilities" + (", leaving out the outcomes of probability 0" if size < n else "")
             + "; equal terms are grouped.", (numeric,)),
        Step(StepKind.SIMPLIFICATION, "collected over primes", H_P, (answer,),
             "Expand every logarithm of a fraction into logarithms of primes and collect.", (exact, numeric),
             approximation=approx(answer)),
        Step(StepKind.THEOREM, "the uniform bound", H_P, (bound,), f"At most $\\ln {size}$, the entropy of the "
             f"uniform distribution on the {size} outcome{'s' if size > 1 else ''} of positive probability, "
             "with equality only for that distribution.", (bounds,), relation=r"\le"),
        Step(StepKind.RESULT, "entropy", H_P, (answer,), "The entropy in nats.", (numeric, bounds),
             approximation=approx(answer)),
    ]
    steps = drop_empty(steps)
    rows = tuple((str(i + 1), cell(p), cell(log_sum([(-p, p)])) if p > 0 else "$0$",
                  decimal(-p * sp.log(p)) if p > 0 else "0")
                 for i, p in enumerate(P))
    table = Table("Each outcome's contribution $-P_i \\ln P_i$", ("$i$", "$P_i$", "$-P_i \\ln P_i$", "decimal"),
                  rows)
    return steps, answer, [numeric, exact, bounds], [table]


# ------------------------------------------------- cross-entropy and KL

def divergence_parts(P, Q) -> dict:
    """H(P), H(P,Q) and KL(P||Q), each collected by SymPy from its own sum."""
    return {"entropy": entropy_exact(P), "cross": cross_entropy_exact(P, Q), "kl": kl_exact(P, Q)}


def gibbs_check(name: str, divergence, P, Q) -> Check:
    """KL >= 0, and 0 exactly iff P = Q (a strictly positive value otherwise, at 60 digits)."""
    slack = inequality_slack(P, Q)
    value = high_precision(divergence)
    same = list(P) == list(Q)
    ok = (divergence == 0) if same else value > -slack and (value > 0 or slack > 0)
    return Check(name, bool(ok), f"KL = {mpmath.nstr(value, 15)}; P {'=' if same else '!='} Q")


def pair_table(P, Q, kind: str) -> Table:
    rows = []
    for i, (p, q) in enumerate(zip(P, Q)):
        if kind == "kl":
            term = log_sum([(p, p), (-p, q)]) if p > 0 else sp.Integer(0)
        else:
            term = log_sum([(-p, q)]) if p > 0 else sp.Integer(0)
        rows.append((str(i + 1), cell(p), cell(q), cell(term),
                     decimal(term) if p > 0 else "0"))
    head = "$P_i \\ln (P_i / Q_i)$" if kind == "kl" else "$-P_i \\ln Q_i$"
    return Table(f"Each outcome's contribution {head}", ("$i$", "$P_i$", "$Q_i$", head, "decimal"), tuple(rows))


def cross_entropy_derivation(P, Q):
    parts = divergence_parts(P, Q)
    answer, entropy, divergence = parts["cross"], parts["entropy"], parts["kl"]
    n = len(P)
    kept = [(p, q) for p, q in zip(P, Q) if p > 0]
    slack = inequality_slack(P, Q)

    exact = tally_check("H(P,Q): SymPy's collected logs = an own prime-by-prime tally", answer,
                        cross_entropy_tally(P, Q))
    numeric = precise_check("H(P,Q) vs -sum P ln Q in mpmath at 50 digits", answer, reference_cross_entropy(P, Q))
    identity = Check("H(P,Q) = H(P) + KL(P||Q) exactly (SymPy)", (answer - entropy - divergence) == 0,
                     f"H(P,Q) - H(P) - KL(P||Q) collects to {(answer - entropy - divergence)}")
    pieces = precise_check("H(P) + KL(P||Q) vs mpmath at 50 digits", entropy + divergence,
                           combine((1, reference_entropy(P)), (1, reference_kl(P, Q))))
    value, floor = high_precision(answer), high_precision(entropy)
    same = list(P) == list(Q)
    above = at_most(floor, value, slack) and (slack > 0 or value != floor)  # strictly, for exact inputs
    gibbs = Check("H(P,Q) >= H(P), equal iff Q = P", bool((answer == entropy) if same else above),
                  f"H(P,Q) = {mpmath.nstr(value, 15)}, H(P) = {mpmath.nstr(floor, 15)}")

    # 0 ln Q_i needs the convention only where Q_i = 0 too; elsewhere it is 0 times a finite number
    steps = [zero_log_step()] if any(p == 0 and q == 0 for p, q in zip(P, Q)) else []
    steps += [
        Step(StepKind.DEFINITION, "cross-entropy", H_PQ, (-sp.Sum(CROSS_TERM, (INDEX, 1, n)),),
             "The expected code length in nats when outcomes follow $P$ but are coded for $Q$."),
        Step(StepKind.SUBSTITUTION, "the terms of the sum", H_PQ,
             _forms(shown_sum([(p, q) for p, q in kept], negate=True), brief(cross_entropy_sum(P, Q))),
             "Put in the probabilities; outcomes with $P_i = 0$ contribute nothing.", (numeric,)),
        Step(StepKind.SIMPLIFICATION, "collected over primes", H_PQ, (answer,),
             "Expand the logarithms into logarithms of primes and collect.", (exact, numeric),
             approximation=approx(answer)),
        Step(StepKind.COMPUTATION, "the entropy alone", H_P, (entropy,), "The same sum with $Q$ replaced by $P$.",
             (pieces,), approximation=approx(entropy)),
        Step(StepKind.COMPUTATION, "the divergence", KL_PQ, _forms(brief(kl_sum(P, Q)), divergence),
             "The sum of $P_i \\ln (P_i / Q_i)$ over the outcomes with $P_i > 0$.", (pieces,),
             approximation=approx(divergence)),
        Step(StepKind.THEOREM, "entropy plus divergence", H_PQ,
             _forms(H_P + KL_PQ, brief(sp.Add(entropy, divergence, evaluate=False)), entropy + divergence),
             "Since $-\\ln Q_i = -\\ln P_i + \\ln (P_i / Q_i)$, the cross-entropy splits into the entropy and "
             "the divergence; the two computed values add up to the value above.", (identity, pieces)),
        Step(StepKind.THEOREM, "Gibbs' inequality", H_PQ, (H_P,),
             "The divergence is never negative, so coding for the wrong distribution never helps; equality "
             "holds only when $Q = P$.", (gibbs,), relation=r"\ge"),
        Step(StepKind.RESULT, "cross-entropy", H_PQ, (answer,), "The cross-entropy in nats.", (numeric, identity),
             approximation=approx(answer)),
    ]
    return drop_empty(steps), answer, [numeric, exact, identity, pieces, gibbs], [pair_table(P, Q, "cross")]


def kl_derivation(P, Q):
    parts = divergence_parts(P, Q)
    answer, entropy, cross = parts["kl"], parts["entropy"], parts["cross"]
    n = len(P)
    kept = [(p, q) for p, q in zip(P, Q) if p > 0]

    exact = tally_check("KL(P||Q): SymPy's collected logs = an own prime-by-prime tally", answer, kl_tally(P, Q))
    numeric = precise_check("KL(P||Q) vs sum P ln(P/Q) in mpmath at 50 digits", answer, reference_kl(P, Q))
    identity = Check("KL(P||Q) = H(P,Q) - H(P) exactly (SymPy)", (answer - cross + entropy) == 0,
                     f"KL(P||Q) - H(P,Q) + H(P) collects to {(answer - cross + entropy)}")
    pieces = precise_check("H(P,Q) - H(P) vs mpmath at 50 digits", cross - entropy,
                           combine((1, reference_cross_entropy(P, Q)), (-1, reference_entropy(P))))
    gibbs = gibbs_check("KL(P||Q) >= 0, equal to 0 iff P = Q", answer, P, Q)

    steps = [zero_log_step()] if len(kept) < n else []
    steps += [
        Step(StepKind.DEFINITION, "divergence", KL_PQ, (sp.Sum(KL_TERM, (INDEX, 1, n)),),
             "The expected log ratio of the two distributions under $P$, in nats."),
        Step(StepKind.SUBSTITUTION, "the terms of the sum", KL_PQ,
             _forms(shown_sum([(p, p / q) for p, q in kept], negate=False), brief(kl_sum(P, Q))),
             "Put in the probabilities, each ratio reduced; outcomes with $P_i = 0$ contribute nothing.", (numeric,)),
        Step(StepKind.SIMPLIFICATION, "collected over primes", KL_PQ, (answer,),
             "Expand the logarithms into logarithms of primes and collect.", (exact, numeric),
             approximation=approx(answer)),
        Step(StepKind.COMPUTATION, "cross-entropy", H_PQ, _forms(brief(cross_entropy_sum(P, Q)), cross),
             "The sum of $-P_i \\ln Q_i$ over the outcomes with $P_i > 0$.", (pieces,), approximation=approx(cross)),
        Step(StepKind.COMPUTATION, "the entropy", H_P, _forms(brief(entropy_sum(P)), entropy),
             "The sum of $-P_i \\ln P_i$ over the same outcomes.", (pieces,), approximation=approx(entropy)),
        Step(StepKind.THEOREM, "cross-entropy minus entropy", KL_PQ,
             _forms(H_PQ - H_P, brief(sp.Add(cross, -entropy, evaluate=False)), cross - entropy),
             "Splitting $\\ln (P_i / Q_i) = \\ln P_i - \\ln Q_i$ gives the divergence as the extra code length "
             "paid for coding with $Q$; the difference agrees with the value above.", (identity, pieces)),
        Step(StepKind.THEOREM, "Gibbs' inequality", KL_PQ, (sp.Integer(0),),
             "By Jensen's inequality for the convex $-\\ln$, the divergence is never negative, and it is 0 "
             "only when the two distributions coincide.", (gibbs,), relation=r"\ge"),
        Step(StepKind.RESULT, "divergence", KL_PQ, (answer,), "The divergence in nats.", (numeric, gibbs),
             approximation=approx(answer)),
    ]
    return drop_empty(steps), answer, [numeric, exact, identity, pieces, gibbs], [pair_table(P, Q, "kl")]


# ------------------------------------------------------- mutual information

def mutual_information_derivation(joint):
    rows, columns = marginals(joint)
    flat = [p for row in joint for p in row]
    entropy_x, entropy_y, entropy_xy = entropy_exact(rows), entropy_exact(columns), entropy_exact(flat)
    answer = entropy_x + entropy_y - entropy_xy  # like logs combine in the Add
    divergence = mutual_information_divergence(joint, rows, columns)
    slack = inequality_slack(flat)
    total = sp.Add(*flat)

    mass = Check("marginals: P_X and P_Y each sum to the total mass of the joint",
                 sp.Add(*rows) == total and sp.Add(*columns) == total and len(rows) == len(joint),
                 f"sum P_X = {sp.Add(*rows)}, sum P_Y = {sp.Add(*columns)}, sum of the cells = {total}")
    with mpmath.workdps(REFERENCE_DIGITS):
        cells = [[_mpf(p) for p in row] for row in joint]
        reference_rows = [mpmath.fsum(row) for row in cells]
        reference_columns = [mpmath.fsum(column) for column in zip(*cells)]
    entropies = [precise_check(f"{label} vs -sum p ln p in mpmath at 50 digits", derived,
                               reference_entropy(values))
                 for label, derived, values in (("H(X)", entropy_x, rows), ("H(Y)", entropy_y, columns),
                                                ("H(X,Y)", entropy_xy, flat))]
    marginal_check = Check("marginals vs row and column sums in mpmath",
                           all(abs(high_precision(a) - b) <= AGREEMENT for a, b in
                               zip(rows + columns, reference_rows + reference_columns)),
                           f"P_X = {[str(r) for r in rows]}, P_Y = {[str(c) for c in columns]}")
    identity = Check("I(X;Y): H(X) + H(Y) - H(X,Y) = KL(P_XY || P_X P_Y) exactly (SymPy)",
                     (answer - divergence) == 0,
                     f"the difference collects to {(answer - divergence)}")
    exact = tally_check("I(X;Y): SymPy's collected logs = an own prime-by-prime tally of the entropies", answer,
                        add_tallies((1, entropy_tally(rows)), (1, entropy_tally(columns)), (-1, entropy_tally(flat))))
    numeric = precise_check("I(X;Y) vs the double sum of P ln(P/(P_X P_Y)) in mpmath at 50 digits", answer,
                            reference_mutual_information(joint))
    value = high_precision(answer)
    smaller_name, smaller_exact = ((H_X, entropy_x) if high_precision(entropy_x) <= high_precision(entropy_y)
                                   else (H_Y, entropy_y))
    smaller = high_precision(smaller_exact)
    independent = all(joint[x][y] == rows[x] * columns[y] for x in range(len(rows)) for y in range(len(columns)))
    # at the bound (Y a function of X, or the reverse) the exact forms decide, not the last digit
    ok = (value >= -slack and (answer - smaller_exact == 0 or at_most(value, smaller, slack))
          and (answer == 0) == independent)
    bounds = Check("0 <= I(X;Y) <= min(H(X), H(Y)), I = 0 iff X and Y are independent", bool(ok),
                   f"I = {mpmath.nstr(value, 15)}, min(H(X), H(Y)) = {mpmath.nstr(smaller, 15)}; the joint "
                   f"{'is' if independent else 'is not'} the product of its marginals")

    kept = [(p, rows[x] * columns[y]) for x, row in enumerate(joint) for y, p in enumerate(row) if p > 0]
    steps = [zero_log_step()] if any(p == 0 for p in flat) else []
    steps += [
        Step(StepKind.COMPUTATION, "row sums, the marginal of the first variable", P_X, (tuple(rows),),
             "Sum each row of the joint table over $y$.", (mass, marginal_check)),
        Step(StepKind.COMPUTATION, "column sums, the marginal of the second variable", P_Y, (tuple(columns),),
             "Sum each column of the joint table over $x$.", (mass, marginal_check)),
        Step(StepKind.COMPUTATION, "entropy of the row sums", H_X,
             _forms(-sp.Sum(MARGINAL_X_TERM, (X_INDEX, 1, len(rows))),
                    shown_sum([(p, p) for p in rows if p > 0], negate=True), entropy_x),
             "The entropy of the row sums.", (entropies[0],), approximation=approx(entropy_x)),
        Step(StepKind.COMPUTATION, "entropy of the column sums", H_Y,
             _forms(-sp.Sum(MARGINAL_Y_TERM, (Y_INDEX, 1, len(columns))),
                    shown_sum([(p, p) for p in columns if p > 0], negate=True), entropy_y),
             "The entropy of the column sums.", (entropies[1],), approximation=approx(entropy_y)),
        Step(StepKind.COMPUTATION, "joint entropy", H_XY,
             _forms(-sp.Sum(sp.Sum(JOINT_TERM, (Y_INDEX, 1, len(columns))), (X_INDEX, 1, len(rows))),
                    shown_sum([(p, p) for p in flat if p > 0], negate=True), entropy_xy),
             "The entropy of the whole table, every cell an outcome.", (entropies[2],),
             approximation=approx(entropy_xy)),
        Step(StepKind.THEOREM, "mutual information from the entropies", I_XY,
             _forms(H_X + H_Y - H_XY, brief(sp.Add(entropy_x, entropy_y, -entropy_xy, evaluate=False)), answer),
             "What knowing one variable saves on coding the other: the two marginal entropies minus the "
             "joint entropy.", (exact, numeric), approximation=approx(answer)),
        Step(StepKind.THEOREM, "mutual information as a divergence", I_XY,
             _forms(KL_JOINT, sp.Sum(sp.Sum(MI_TERM, (Y_INDEX, 1, len(columns))), (X_INDEX, 1, len(rows))),
                    shown_sum([(p, p / q) for p, q in kept], negate=False), divergence),
             "The divergence of the joint from the product of its marginals, summed over the cells with "
             "$P(x, y) > 0$; it equals the entropy form above.", (identity, numeric)),
        Step(StepKind.THEOREM, "the bound by the marginal entropies", I_XY, (MIN_H,),
             "Since $I(X; Y) = H(X) - H(X \\mid Y) = H(Y) - H(Y \\mid X)$ and conditional entropies of discrete "
             "variables are never negative; and $I(X; Y) \\ge 0$ by Gibbs' inequality, with 0 only for "
             "independent variables.", (bounds,), relation=r"\le"),
        Step(StepKind.COMPUTATION, "the smaller marginal entropy", MIN_H, _forms(smaller_name, smaller_exact),
             "Here the bound is " + ("$H(X)$" if smaller_name == H_X else "$H(Y)$") + ", and the value above "
             "lies below it.", (bounds,), approximation=approx(smaller_exact)),
        Step(StepKind.RESULT, "mutual information", I_XY, (answer,), "The mutual information in nats.",
             (numeric, identity, bounds), approximation=approx(answer)),
    ]
    header = ("$P(x, y)$",) + tuple(f"$y = {y + 1}$" for y in range(len(columns))) + ("$P_X(x)$",)
    body = [(f"$x = {x + 1}$",) + tuple(cell(p) for p in row) + (cell(rows[x]),)
            for x, row in enumerate(joint)]
    body.append(("$P_Y(y)$",) + tuple(cell(c) for c in columns) + (cell(total),))
    table = Table("The joint distribution with its marginals in the margins", header, tuple(body))
    checks = [numeric, exact, identity, mass, marginal_check, *entropies, bounds]
    return drop_empty(steps), answer, checks, [table]


# ------------------------------------------------------------------ generators

DENOMINATORS = (2, 3, 4, 5, 6, 8, 10, 12)


def draw_distribution(rng: random.Random, size: int, zeros: bool, denominator: int | None = None) -> list:
    """`size` multiples of 1/d summing to 1, at least one zero when `zeros` (and size > 1)."""
    d = denominator or rng.choice([d for d in DENOMINATORS if d >= size])
    positive = size - 1 if zeros and size > 1 else size
    d = max(d, positive)
    cuts = sorted(rng.sample(range(1, d), positive - 1)) if positive > 1 else []
    counts = [b - a for a, b in zip([0] + cuts, cuts + [d])]
    if zeros and size > 1:
        counts.insert(rng.randrange(size), 0)
    return [sp.Rational(c, d) for c in counts]


def as_text(values) -> str:
    return ",".join(str(v) for v in values)


def draw_pair(rng: random.Random) -> tuple[list, list]:
    """(P, Q) on 1 to 4 outcomes, Q > 0 wherever P > 0; sometimes P has a zero, sometimes Q = P."""
    size = rng.choice([1, 2, 2, 3, 3, 3, 4, 4])
    P = draw_distribution(rng, size, zeros=rng.random() < 0.25)
    if rng.random() < 0.1:
        return P, list(P)
    while True:
        Q = draw_distribution(rng, size, zeros=rng.random() < 0.2)
        if all(q > 0 for p, q in zip(P, Q) if p > 0):
            return P, Q


# ------------------------------------------------------------------ families

def _freeze(params: dict) -> tuple:
    def frozen(value):
        return tuple(frozen(v) for v in value) if isinstance(value, list) else value
    return tuple((name, frozen(value)) for name, value in params.items())


def _thaw(value):
    return [_thaw(v) for v in value] if isinstance(value, tuple) else value


@functools.lru_cache(maxsize=4096)
def _built(family_name: str, frozen: tuple) -> Derivation:
    """Each distinct parameter set is derived once per process (generated variants repeat often)."""
    return FAMILIES[family_name].build({name: _thaw(value) for name, value in frozen})


class InformationFamily(Family):
    numeric = True
    domain = ""

    def build(self, params: dict) -> Derivation:
        raise NotImplementedError

    def derive(self, params: dict, problem: str | None = None) -> Derivation:
        built = _built(self.name, _freeze(params))
        return dataclasses.replace(built, problem=problem or self.name, params=dict(built.params),
                                   steps=list(built.steps), checks=list(built.checks),
                                   remarks=list(built.remarks), tables=list(built.tables))

    def mistakes(self, params: dict) -> list[tuple[str, Any, str]]:
        """Wrong answers a student is likely to give, as (code, value, feedback)."""
        return []

    def _derivation(self, params, steps, answer, checks, tables, remarks=()) -> Derivation:
        return Derivation(self.name, self.name, self.params_json(params), self.question(params), steps, answer,
                          value_of(answer), checks, list(remarks), tables)


@register
class EntropyFamily(InformationFamily):
    name = "entropy"
    summary = "entropy H(P) = -sum P ln P of a finite distribution, in nats (0 ln 0 = 0)"
    domain = "P: 1 to 20 exact probabilities >= 0 summing to 1, denominators at most 10^12"
    params = (P_PARAM,)

    def question(self, params: dict) -> str:
        P = params["P"]
        return (f"A random variable takes the values $1, \\dots, {len(P)}$ with probabilities "
                f"$P = {vector_latex(P)}$. Compute its entropy $H(P)$ in nats (natural logarithms), "
                "treating $0 \\ln 0$ as 0, and compare it with the largest entropy possible on its support.")

    def generate(self, rng: random.Random) -> dict[str, str]:
        size = rng.choice([1, 2, 2, 3, 3, 4, 4, 5])
        return {"P": as_text(draw_distribution(rng, size, zeros=rng.random() < 0.25))}

    def build(self, params: dict) -> Derivation:
        steps, answer, checks, tables = entropy_derivation(params["P"])
        return self._derivation(params, steps, answer, checks, tables)

    def mistakes(self, params: dict) -> list[tuple[str, Any, str]]:
        size = sum(1 for p in params["P"] if p > 0)
        return [("uniform", sp.log(size),
                 f"that is ln {size}, the entropy of the uniform distribution on the support; H(P) reaches it "
                 "only when every outcome of positive probability is equally likely")]


@register
class CrossEntropyFamily(InformationFamily):
    name = "cross-entropy"
    summary = "cross-entropy H(P,Q) = -sum P ln Q = H(P) + KL(P||Q), in nats"
    domain = "P, Q: equal-length exact distributions (<= 20 entries) with Q > 0 wherever P > 0"
    params = (P_PARAM, Q_PARAM)

    def validate(self, params: dict) -> None:
        support_check(params["P"], params["Q"], "the cross-entropy H(P,Q)")

    def question(self, params: dict) -> str:
        return (f"Outcomes $1, \\dots, {len(params['P'])}$ occur with probabilities $P = {vector_latex(params['P'])}$, "
                f"and a model predicts $Q = {vector_latex(params['Q'])}$. Compute the cross-entropy "
                "$H(P, Q) = -\\sum_i P_i \\ln Q_i$ in nats, and show that it equals "
                "$H(P) + \\mathrm{KL}(P \\,\\|\\, Q)$.")

    def generate(self, rng: random.Random) -> dict[str, str]:
        P, Q = draw_pair(rng)
        return {"P": as_text(P), "Q": as_text(Q)}

    def build(self, params: dict) -> Derivation:
        steps, answer, checks, tables = cross_entropy_derivation(params["P"], params["Q"])
        return self._derivation(params, steps, answer, checks, tables)

    def mistakes(self, params: dict) -> list[tuple[str, Any, str]]:
        P, Q = params["P"], params["Q"]
        found = [("entropy-only", entropy_exact(P),
                  "that is H(P), the entropy of P alone; coding for Q costs KL(P||Q) more")]
        if all(p > 0 for p, q in zip(P, Q) if q > 0):
            found.insert(0, ("swapped", cross_entropy_exact(Q, P),
                             "P and Q swapped: that is H(Q,P) = -sum Q ln P; the expectation is over P, the "
                             "logarithm of Q"))
        return found


@register
class KLFamily(InformationFamily):
    name = "kl"
    summary = "KL divergence KL(P||Q) = sum P ln(P/Q) = H(P,Q) - H(P), in nats"
    domain = "P, Q: equal-length exact distributions (<= 20 entries) with Q > 0 wherever P > 0"
    params = (P_PARAM, Q_PARAM)

    def validate(self, params: dict) -> None:
        support_check(params["P"], params["Q"], "KL(P||Q)")

    def question(self, params: dict) -> str:
        return (f"Let $P = {vector_latex(params['P'])}$ and $Q = {vector_latex(params['Q'])}$ on the outcomes "
                f"$1, \\dots, {len(params['P'])}$. Compute $\\mathrm{{KL}}(P \\,\\|\\, Q)$ in nats, write it as a "
                "cross-entropy minus an entropy, and confirm that it is not negative.")

    def generate(self, rng: random.Random) -> dict[str, str]:
        P, Q = draw_pair(rng)
        return {"P": as_text(P), "Q": as_text(Q)}

    def build(self, params: dict) -> Derivation:
        steps, answer, checks, tables = kl_derivation(params["P"], params["Q"])
        return self._derivation(params, steps, answer, checks, tables)

    def mistakes(self, params: dict) -> list[tuple[str, Any, str]]:
        P, Q = params["P"], params["Q"]
        if not all(p > 0 for p, q in zip(P, Q) if q > 0):
            return []  # KL(Q||P) is infinite here, so no finite answer can be this slip
        return [("swapped", kl_exact(Q, P),
                 "the arguments swapped: that is KL(Q||P); the divergence is not symmetric, and KL(P||Q) takes "
                 "the expectation under P of ln(P/Q)")]


@register
class MutualInformationFamily(InformationFamily):
    name = "mutual-information"
    summary = "mutual information I(X;Y) = H(X) + H(Y) - H(X,Y) = KL(P_XY||P_X P_Y) of a joint table, in nats"
    domain = "joint: an exact table of at most 8 x 8 probabilities >= 0 summing to 1 over all cells"
    params = (JOINT_PARAM,)

    def question(self, params: dict) -> str:
        joint = params["joint"]
        if len(joint[0]) <= 4:
            table = f"$P(x, y) = {to_latex(sp.Matrix(joint))}$"
        else:  # a wide matrix would run into the margin; rows as breakable lists
            table = ("$P(x, y)$, given row by row ($x = 1, \\dots, " f"{len(joint)}$" "), each row listing "
                     f"$y = 1, \\dots, {len(joint[0])}$: " + "; ".join(f"${vector_latex(row)}$" for row in joint))
        return ("Random variables $X$ (rows) and $Y$ (columns) have the joint distribution "
                f"{table}. Find the marginals $P_X$ and $P_Y$, the entropies "
                "$H(X)$, $H(Y)$ and $H(X, Y)$, and the mutual information $I(X; Y)$ in nats; check that it equals "
                "$\\mathrm{KL}(P_{XY} \\,\\|\\, P_X P_Y)$.")

    def generate(self, rng: random.Random) -> dict[str, str]:
        shape = rng.choice([(1, 2), (2, 2), (2, 2), (2, 3), (3, 2), (3, 3), (3, 3)])
        cells = shape[0] * shape[1]
        if rng.random() < 0.2:  # independent: the product of two marginals
            rows = draw_distribution(rng, shape[0], zeros=False)
            columns = draw_distribution(rng, shape[1], zeros=False)
            table = [[r * c for c in columns] for r in rows]
        else:
            flat = draw_distribution(rng, cells, zeros=rng.random() < 0.35,
                                     denominator=rng.choice([d for d in (4, 6, 8, 9, 12, 16) if d >= cells]))
            table = [flat[r * shape[1]:(r + 1) * shape[1]] for r in range(shape[0])]
        return {"joint": ";".join(as_text(row) for row in table)}

    def build(self, params: dict) -> Derivation:
        steps, answer, checks, tables = mutual_information_derivation(params["joint"])
        return self._derivation(params, steps, answer, checks, tables)

    def mistakes(self, params: dict) -> list[tuple[str, Any, str]]:
        joint = params["joint"]
        rows, columns = marginals(joint)
        flat = [p for row in joint for p in row]
        found = [("joint-left-out", entropy_exact(rows) + entropy_exact(columns),
                  "that is H(X) + H(Y); the joint entropy H(X,Y) has to be subtracted")]
        if all(p > 0 for p in flat):
            swapped = log_sum([term for x, row in enumerate(joint) for y, p in enumerate(row)
                               for term in ((rows[x] * columns[y], rows[x]), (rows[x] * columns[y], columns[y]),
                                            (-rows[x] * columns[y], p))])
            found.append(("swapped", swapped, "the divergence taken the wrong way round: that is "
                          "KL(P_X P_Y || P_XY); the mutual information is KL(P_XY || P_X P_Y)"))
        return found
