"""Z of a chain with node and edge scores, by the forward recursion (dynamic programming).

Positions t = 1..T, each with a label y in 0..K-1, and the score
    s(Y) = sum_t S_N[t, Y_t] + sum_{t<T} S_E[Y_t, Y_{t+1}].
The forward recursion Z_1(y) = e^{S_N[1,y]}, Z_{t+1}(y) = e^{S_N[t+1,y]} sum_y' Z_t(y') e^{S_E[y',y]}
gives Z = sum_y Z_T(y) in about T K^2 multiply-adds where enumeration visits K^T labelings.
The exact table is kept as sums c e^a (a rational, c an integer); every entry is checked
against enumerating the prefixes that end in it, and Z against enumeration and a backward
recursion in mpmath.
"""
from __future__ import annotations

import functools
import itertools
import math
import random

import mpmath
import sympy as sp

from .discrete import ENUMERATION_LIMIT, log_sum_exp
from .core import (Derivation, float_at, Family, Notation, Param, Step, StepKind, Table, compare, numeric_value, register,
                   rounded, to_latex)
from .values import ParameterError, parse_matrix

T_SYM, t, y, y_prev = sp.symbols("T t y y'", integer=True)
Y = sp.IndexedBase(Notation("Y", r"\mathcal{Y}"))
S_N = sp.IndexedBase(Notation("S_N", "S_N"))
S_E = sp.IndexedBase(Notation("S_E", "S_E"))
Z_T = sp.IndexedBase(Notation("Z", "Z"))
SCORE = Notation("s(Y)", r"s(\mathcal{Y})")
PARTITION = Notation("Z", "Z")
MAX_T, MAX_K, MAX_SCORE = 12, 5, 20
MAX_TERMS = 1000         # distinct exponentials in one exact table entry
LARGER_T = (20, 50, 100)


def score(node, edge, labeling) -> float:
    """s(Y) of an explicit labeling, literally, in floats."""
    total = math.fsum(float(node[i][label]) for i, label in enumerate(labeling))
    return total + math.fsum(float(edge[a][b]) for a, b in zip(labeling, labeling[1:]))


def forward_exact(node, edge):
    """The table Z_t(y), t = 1..T, each entry a dict {exponent: integer count}."""
    k = len(edge)
    table = [[{node[0][label]: 1} for label in range(k)]]
    for row in node[1:]:
        previous, current = table[-1], []
        for label in range(k):
            entry: dict = {}
            for before in range(k):
                shift = edge[before][label] + row[label]
                for exponent, count in previous[before].items():
                    entry[exponent + shift] = entry.get(exponent + shift, 0) + count
            if len(entry) > MAX_TERMS:
                raise ParameterError("node", f"an exact Z_t(y) would have more than {MAX_TERMS} distinct "
                                     "exponentials; give scores with a small common denominator")
            current.append(entry)
        table.append(current)
    return table


def as_sympy(entry: dict):
    return sp.Add(*[count * sp.exp(exponent) for exponent, count in sorted(entry.items())])


def prefix_sums(node, edge, length: int) -> list[float]:
    """sum of e^{s(prefix)} over the labelings of positions 1..length ending in each label, by enumeration."""
    k = len(edge)
    totals = [[] for _ in range(k)]
    for labeling in itertools.product(range(k), repeat=length):
        totals[labeling[-1]].append(score(node, edge, labeling))
    return [math.exp(log_sum_exp(values)) for values in totals]


def mp(value) -> mpmath.mpf:
    value = sp.Rational(value)
    return mpmath.mpf(int(value.p)) / int(value.q)


def backward_mpmath(node, edge, digits: int = 40) -> float:
    """Z by the backward recursion B_T(y) = 1, B_t(y) = sum_y' e^{S_E[y,y'] + S_N[t+1,y']} B_{t+1}(y'),
    Z = sum_y e^{S_N[1,y]} B_1(y), in mpmath: a different order and arithmetic from the exact table."""
    k = len(edge)
    with mpmath.workdps(digits):
        backward = [mpmath.mpf(1)] * k
        for row in reversed(node[1:]):
            backward = [mpmath.fsum(mpmath.exp(mp(edge[a][b]) + mp(row[b])) * backward[b] for b in range(k))
                        for a in range(k)]
        return float(mpmath.fsum(mpmath.exp(mp(node[0][a])) * backward[a] for a in range(k)))


def forward_mpmath(node, edge, length: int, digits: int = 40) -> list[float]:
    """Z_length(y) by the forward recursion in mpmath (the table check when prefixes are too many)."""
    k = len(edge)
    with mpmath.workdps(digits):
        current = [mpmath.exp(mp(node[0][b])) for b in range(k)]
        for row in node[1:length]:
            current = [mpmath.exp(mp(row[b])) * mpmath.fsum(current[a] * mpmath.exp(mp(edge[a][b])) for a in range(k))
                       for b in range(k)]
        return [float(value) for value in current]


@functools.lru_cache(maxsize=None)
def score_written_out(size: int):
    """The displayed score at T = size, its sums done (cached: doit is most of a small derivation's time)."""
    return score_definition().subs(T_SYM, size).doit()


def score_definition():
    return (sp.Sum(S_N[t, Y[t]], (t, 1, T_SYM)) + sp.Sum(S_E[Y[t], Y[t + 1]], (t, 1, T_SYM - 1)))


def draw_node(rng: random.Random, drawn: dict) -> str:
    size, k = rng.randint(2, 4), rng.choice((2, 2, 3))
    return ";".join(",".join(rng.choice(("0", "0", "1", "-1")) for _ in range(k)) for _ in range(size))


def draw_edge(rng: random.Random, drawn: dict) -> str:
    k = len(drawn["node"].split(";")[0].split(","))
    return ";".join(",".join(rng.choice(("0", "1", "1", "-1")) for _ in range(k)) for _ in range(k))


def sci(value: int) -> str:
    if value < 10**6:
        return f"${value}$"
    mantissa, exponent = f"{float(value):.2e}".split("e")
    return f"$\\approx {mantissa} \\times 10^{{{int(exponent)}}}$"


@register
class ChainForwardRecursion(Family):
    name = "chain-dp"
    summary = "partition function Z of a chain with node and edge scores, by the forward recursion"
    domain = (f"T = 1..{MAX_T} positions, K = 2..{MAX_K} labels; rational scores with |s| <= {MAX_SCORE} "
              f"(at most {MAX_TERMS} distinct exponentials in an exact Z_t(y))")
    params = (
        Param("node", parse_matrix, "0,1;1,0;0,0", "node scores S_N[t,y]: T rows of K numbers, rows separated by ;",
              draw=draw_node),
        Param("edge", parse_matrix, "1,0;0,1", "edge scores S_E[y',y]: K rows of K numbers, rows separated by ;",
              draw=draw_edge),
    )
    single_site_reason = "with one position there are no edges: Z is the sum of e^{S_N[1,y]}"

    def validate(self, params: dict) -> None:
        node, edge = params["node"], params["edge"]
        if not 1 <= len(node) <= MAX_T:
            raise ParameterError("node", f"give 1 to {MAX_T} rows (one per position t)")
        k = len(node[0])
        if not 2 <= k <= MAX_K:
            raise ParameterError("node", f"give 2 to {MAX_K} scores per row (one per label)")
        if len(edge) != k or len(edge[0]) != k:
            raise ParameterError("edge", f"must be {k} x {k}, one row and one column per label")
        for name, matrix in (("node", node), ("edge", edge)):
            if any(abs(value) > MAX_SCORE for row in matrix for value in row):
                raise ParameterError(name, f"every score must be between -{MAX_SCORE} and {MAX_SCORE}")
        forward_exact(node, edge)  # refuses tables too large to write exactly

    def question(self, params: dict) -> str:
        node, edge = params["node"], params["edge"]
        size, k = len(node), len(edge)
        shown = to_latex(sp.Eq(SCORE, score_definition().subs(T_SYM, size)))
        return (f"A chain of ${size}$ positions carries labels $\\mathcal{{Y}}_t \\in \\{{{', '.join(map(str, range(k)))}\\}}$ "
                f"with score ${shown}$, where row $t$ of $S_N = {to_latex(sp.Matrix(node))}$ holds the node scores "
                f"of position $t$ and $S_E = {to_latex(sp.Matrix(edge))}$ (row $y'$, column $y$) scores a step "
                f"from $y'$ to $y$. Compute $Z = \\sum_{{\\mathcal{{Y}}}} e^{{s(\\mathcal{{Y}})}}$ by the forward "
                f"recursion, showing the table $Z_t(y)$.")

    def derive(self, params: dict, problem: str | None = None) -> Derivation:
        node, edge = params["node"], params["edge"]
        size, k = len(node), len(edge)
        table = forward_exact(node, edge)
        exact = [[as_sympy(entry) for entry in row] for row in table]
        steps = [score_step(node, edge)]
        recursion = sp.exp(S_N[t + 1, y]) * sp.Sum(Z_T[t, y_prev] * sp.exp(S_E[y_prev, y]), (y_prev, 0, k - 1))
        first_check = table_check(node, edge, exact, 1)
        steps.append(Step(StepKind.DEFINITION, "first column", Z_T[1, y], (sp.exp(S_N[1, y]),),
                          "$Z_t(y)$ sums $e^{s}$ over the labelings of positions $1..t$ that end in $y$; "
                          "at $t = 1$ only the node score counts.", (first_check,)))
        steps.append(Step(StepKind.THEOREM, "forward recursion", Z_T[t + 1, y], (recursion,),
                          "A prefix ending in $y$ at $t+1$ is a prefix ending in some $y'$ at $t$, one edge "
                          "$y' \\to y$ and the node score of $y$ at $t + 1$.",
                          (table_check(node, edge, exact, size),)))
        for length in range(1, size + 1):
            steps.append(Step(StepKind.COMPUTATION, f"column t={length}", Notation(f"Z_{length}", f"Z_{{{length}}}"),
                              (sp.Matrix(exact[length - 1]),),
                              "Entry $y$ is $Z_{%d}(y)$, $y = 0, \\dots, %d$." % (length, k - 1)
                              + ("" if length == 1 else
                                 " Each is $e^{S_N[%d,y]}$ times the column above weighted by $e^{S_E[y',y]}$." % length),
                              (table_check(node, edge, exact, length),)))
        answer = as_sympy(merge(table[-1]))
        value = float_at(answer)
        checks = [z_check(node, edge, value), compare("Z vs a backward recursion in mpmath", value,
                                                      backward_mpmath(node, edge), how="mpmath")]
        steps.append(Step(StepKind.RESULT, "partition function", PARTITION,
                          (sp.Sum(Z_T[size, y], (y, 0, k - 1)), answer),
                          f"Every labeling ends in some label at $t = {size}$, so $Z$ adds the last column.",
                          tuple(checks), approximation=rounded(answer)))
        tables = [Table("The forward table $Z_t(y)$, rounded", ("$t$",) + tuple(f"$Z_t({b})$" for b in range(k)),
                        tuple((str(length),) + tuple(f"{float(value):.4g}" for value in exact[length - 1])
                              for length in range(1, size + 1))),
                  Table(f"Work for $Z$ with $K = {k}$: the recursion's $T K^2$ multiply-adds against "
                        "enumeration's $K^T$ labelings", ("$T$", "recursion $T K^2$", "enumeration $K^T$"),
                        tuple((str(length), sci(length * k * k), sci(k ** length))
                              for length in (size,) + tuple(v for v in LARGER_T if v > size)))]
        return Derivation(problem or self.name, self.name, self.params_json(params), self.question(params),
                          steps, answer, numeric_value(answer), checks, tables=tables)

    def mistakes(self, params: dict) -> list:
        node, edge = params["node"], params["edge"]
        k = len(edge)
        right = merge(forward_exact(node, edge)[-1])
        no_first = merge(forward_exact([[0] * k] + node[1:], edge)[-1])
        no_last = merge(forward_exact(node[:-1] + [[0] * k], edge)[-1])
        found = [("first-node", no_first, "the node scores of the first position are missing: "
                  "Z_1(y) = e^{S_N[1,y]}, not 1")]
        if len(node) > 1:
            found.append(("last-node", no_last, "the last column was summed without its node factors: "
                          "Z_T(y) already includes e^{S_N[T,y]}, and Z = sum_y Z_T(y)"))
        return [(code, as_sympy(wrong), feedback) for code, wrong, feedback in found if wrong != right]


def merge(entries) -> dict:
    total: dict = {}
    for entry in entries:
        for exponent, count in entry.items():
            total[exponent] = total.get(exponent, 0) + count
    return total


def score_step(node, edge) -> Step:
    size, k = len(node), len(edge)
    labeling = [i % k for i in range(size)]
    shown = score_written_out(size).subs({Y[i + 1]: labeling[i] for i in range(size)})
    values = {S_N[i + 1, b]: node[i][b] for i in range(size) for b in range(k)}
    values.update({S_E[a, b]: edge[a][b] for a in range(k) for b in range(k)})
    check = compare("displayed score vs the scoring loop, Y=(0,1,...)", shown.xreplace(values),
                    score(node, edge, labeling), how="loop")
    return Step(StepKind.DEFINITION, "score", SCORE, (score_definition().subs(T_SYM, size),),
                "Every position adds its node score and every step between neighbours its edge score.", (check,))


def table_check(node, edge, exact, length: int):
    k = len(edge)
    derived = [float_at(value) for value in exact[length - 1]]
    if k ** length <= ENUMERATION_LIMIT:
        return compare(f"Z_{length}(y) vs the enumerated prefixes ending in y, t={length}", derived,
                       prefix_sums(node, edge, length), how="enumeration")
    return compare(f"Z_{length}(y) vs the forward recursion in mpmath, t={length}", derived,
                   forward_mpmath(node, edge, length), how="mpmath")


def z_check(node, edge, answer):
    k, size = len(edge), len(node)
    if k ** size <= ENUMERATION_LIMIT:
        reference = math.exp(log_sum_exp([score(node, edge, labeling)
                                          for labeling in itertools.product(range(k), repeat=size)]))
        return compare(f"Z vs enumerating all {k}^{size} labelings", answer, reference, how="enumeration")
    return compare("Z vs the forward recursion in mpmath", answer, forward_mpmath_total(node, edge), how="mpmath")


def forward_mpmath_total(node, edge) -> float:
    return math.fsum(forward_mpmath(node, edge, len(node)))
