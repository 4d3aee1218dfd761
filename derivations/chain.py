"""An open chain of labels: its partition function and a labeling's pseudo-likelihood.

Sites Y[0..N-1], each a label from a small set, with score
    s(Y) = J sum_{n=0}^{N-2} Y[n] Y[n+1] + h sum_{n=0}^{N-1} Y[n];
unlike the ring, the two end sites have one neighbour each. `chain-z` derives Z by the
transfer matrix, `chain-pl` derives -ln PL of a labeling. Every form is checked by the
discrete-model toolkit: enumeration, re-scoring, and the transfer matrix in mpmath.
"""
from __future__ import annotations

import functools
import math

import sympy as sp

from . import discrete
from .core import (Derivation, Family, Notation, Param, Step, StepKind, Table, agrees_at, choice, compare,
                   integer_between, numeric_value, one_of_drawn, register, rounded, to_latex)
from .values import ParameterError, parse_int, parse_list, parse_number

N = sp.Symbol("N", integer=True, positive=True)
Y = sp.IndexedBase(Notation("Y", r"\mathcal{Y}"))
n = sp.Symbol("n", integer=True)
SCORE = Notation("s(Y)", r"s(\mathcal{Y})")
PARTITION = Notation("Z", "Z")
SUM_OVER_LABELINGS = Notation("sum_Y exp(s(Y))", r"\sum_{\mathcal{Y}} e^{s(\mathcal{Y})}")
NEG_LOG_PL = Notation("-ln PL(Y)", r"-\ln \tilde{P}(\mathcal{Y})")
CHECK_SIZES = range(1, 9)
MAX_SIZE = 10**6
MAX_EXPANDED = 8   # more than two labels: Z is written out as a sum, so N stays small
MAX_WRITTEN_OUT = 12  # two labels with a field: Z written out up to this N, the closed form beyond


def score(labeling, coupling, field):
    """s(Y) of an explicit labeling, literally (exact or float, as the labels are)."""
    pairs = sum((labeling[i] * labeling[i + 1] for i in range(len(labeling) - 1)), 0 * coupling)
    return coupling * pairs + field * sum(labeling, 0 * field)


def model(params, exact: bool = False) -> discrete.LabelingModel:
    coupling, field = params["J"], params["h"]
    if not exact:
        coupling, field = float(coupling), float(field)
    labels = tuple(params["labels"]) if exact else tuple(float(b) for b in params["labels"])
    return discrete.LabelingModel(labels, lambda labeling: score(labeling, coupling, field))


@functools.lru_cache(maxsize=64)
def score_definition(coupling, field):
    return coupling * sp.Sum(Y[n] * Y[n + 1], (n, 0, N - 2)) + field * sp.Sum(Y[n], (n, 0, N - 1))


def score_step(params) -> Step:
    labeling = [1, -1, 0, 1, 1]
    shown = score_definition(params["J"], params["h"]).subs(N, 5).doit().subs({Y[i]: labeling[i] for i in range(5)})
    check = compare("displayed score vs the chain loop, N=5", shown, score(labeling, float(params["J"]), float(params["h"])))
    return Step(StepKind.DEFINITION, "score", SCORE, (score_definition(params["J"], params["h"]),),
                "Each of the $N-1$ neighbouring pairs adds $J$ times its product; each site adds $h$ times its label.",
                (check,))


def validate_chain(params) -> None:
    labels = params["labels"]
    if len(set(labels)) != len(labels) or not 2 <= len(labels) <= 5:
        raise ParameterError("labels", "give 2 to 5 distinct labels")
    for name, limit in (("J", 20), ("h", 20)):
        if abs(params[name]) > limit:
            raise ParameterError(name, f"must be between -{limit} and {limit}")
    if any(abs(b) > 10 for b in labels):
        raise ParameterError("labels", "each label must be between -10 and 10")
    if params["N"] is not None and params["N"] > MAX_SIZE:
        raise ParameterError("N", f"must be at most {MAX_SIZE}")


CHAIN_PARAMS = (
    Param("N", lambda text, name: parse_int(text, name, minimum=1), None,
          "chain length, an integer >= 1; omitted = the symbol N", draw=integer_between(3, 10)),
    Param("labels", parse_list, "-1,1", "the label set, 2 to 5 distinct numbers", draw=lambda rng, drawn: rng.choice(
        ("-1,1", "-1,1", "-1,0,1") if int(drawn.get("N", "1")) <= MAX_EXPANDED else ("-1,1",))),
    Param("J", parse_number, "1", "coupling J of neighbouring sites", draw=choice("1", "1/2", "-1", "2")),
    Param("h", parse_number, "0", "field h on every site", draw=choice("0", "0", "1/2", "-1/2", "1")),
)


def chain_question(params, ask: str) -> str:
    labels = ", ".join(to_latex(b) for b in params["labels"])
    size = "N" if params["N"] is None else str(params["N"])
    shown = to_latex(sp.Eq(SCORE, score_definition(params["J"], params["h"])))
    return (f"An open chain of ${size}$ sites carries labels $\\mathcal{{Y}}[n] \\in \\{{{labels}\\}}$ with score "
            f"${shown}$ and $P(\\mathcal{{Y}}) \\propto e^{{s(\\mathcal{{Y}})}}$; the end sites have one neighbour. " + ask)


# ------------------------------------------------------------------ chain-z

@register
class ChainPartition(Family):
    name = "chain-z"
    summary = "partition function Z of an open chain with coupling J and field h, by the transfer matrix"
    domain = ("N integer 1..10^6 (symbolic N with two labels; N <= 8 with more); 2-5 labels in [-10, 10]; "
              "|J|, |h| <= 20; Z below e^700")
    params = CHAIN_PARAMS
    single_site_reason = "a chain of one site has no pairs, only its field term"

    def validate(self, params: dict) -> None:
        validate_chain(params)
        if len(params["labels"]) > 2 and (params["N"] is None or params["N"] > MAX_EXPANDED):
            raise ParameterError("N", f"give N from 1 to {MAX_EXPANDED} when there are more than two labels "
                                 "(Z is then written out term by term)")
        if params["N"] is not None and chain_log_z(params, params["N"]) > 700:
            raise ParameterError("N", "Z exceeds e^700, beyond a double; choose a smaller N, J or h")

    def question(self, params: dict) -> str:
        return chain_question(params, "Find the partition function $Z = \\sum_{\\mathcal{Y}} e^{s(\\mathcal{Y})}$"
                              + (" as a function of $N$." if params["N"] is None else "."))

    def derive(self, params: dict, problem: str | None = None) -> Derivation:
        labels, size = tuple(params["labels"]), params["N"]
        transfer, boundary = transfer_of(params)
        t_symbol, w_symbol = sp.MatrixSymbol("T", len(labels), len(labels)), sp.MatrixSymbol("w", len(labels), 1)
        terms = closed_form_terms(labels, params["J"], params["h"]) if len(labels) == 2 else None
        if size is None:
            answer = power_sum(terms, N - 1)
        elif terms is None or (params["h"] != 0 and size <= MAX_WRITTEN_OUT):
            answer = sp.expand((boundary.T * transfer ** (size - 1) * boundary)[0])  # a sum of exponentials
        else:
            answer = power_sum(terms, size - 1)
        floats = model(params)
        enumerable = [k for k in CHECK_SIZES if floats.enumerable(k)]
        trace_check = compare(f"ln of w^T T^(N-1) w vs ln of the enumerated Z, N=1..{enumerable[-1]}",
                              [chain_log_z(params, k) for k in enumerable],
                              [floats.log_partition(k) for k in enumerable], how="enumeration")
        steps = [score_step(params),
                 Step(StepKind.DEFINITION, "partition function", PARTITION,
                      (SUM_OVER_LABELINGS,),
                      "$Z$ adds $e^{s(\\mathcal{Y})}$ over all labelings.", (trace_check,)),
                 Step(StepKind.DEFINITION, "transfer matrix", t_symbol, (transfer,),
                      "Entry $(a, b)$ weighs one pair of neighbouring labels, with half of each site's field.",
                      (trace_check,)),
                 Step(StepKind.DEFINITION, "boundary vector", w_symbol, (boundary,),
                      "The end sites keep the other half of their field.", (trace_check,)),
                 Step(StepKind.THEOREM, "Z as a matrix product", PARTITION, (w_symbol.T * t_symbol ** (N - 1) * w_symbol,),
                      "Summing the labels site by site multiplies one $T$ per pair: $N - 1$ of them.", (trace_check,))]
        if size is None:
            check = agrees_at(f"ln of the closed form vs ln of the enumerated Z, N=1..{enumerable[-1]}",
                              sp.log(answer), N, enumerable, floats.log_partition, how="enumeration")
            text = "$T$ is symmetric: diagonalise it and project $w$ on its eigenvectors."
        else:
            by_enumeration = floats.enumerable(size)
            reference = floats.log_partition(size) if by_enumeration else chain_log_z(params, size)
            check = compare(f"Z vs {'enumeration' if by_enumeration else 'the transfer matrix in mpmath'}, N={size}",
                            answer, math.exp(reference), how="independent")
            text = f"The product at $N = {size}$, written out."
        steps.append(Step(StepKind.RESULT, "partition function", PARTITION, (answer,), text, (check,),
                          approximation=None if size is None else rounded(answer)))
        return Derivation(problem or self.name, self.name, self.params_json(params), self.question(params),
                          steps, answer, numeric_value(answer), [check])

    def mistakes(self, params: dict) -> list:
        """Z of the ring with the same pairs (the closing pair Y[N-1] Y[0] added)."""
        labels = tuple(params["labels"])
        if len(labels) != 2:
            return []
        transfer, _ = transfer_of(params)
        ring = sp.Add(*[value ** N for value in transfer.eigenvals(multiple=True)])
        ring = ring if params["N"] is None else ring.subs(N, params["N"])
        return [("ring", ring, "that is Z of a ring, where the last site also pairs with the first; "
                 "the open chain has N - 1 pairs, so Z = w^T T^(N-1) w")]


def transfer_of(params):
    coupling, field = params["J"], params["h"]
    return discrete.chain_transfer_matrix(tuple(params["labels"]), lambda a, b: coupling * a * b,
                                          lambda a: field * a)


def chain_log_z(params, size: int) -> float:
    coupling, field = params["J"], params["h"]
    return float(discrete.chain_log_partition(tuple(params["labels"]), lambda a, b: coupling * a * b,
                                              lambda a: field * a, size))


@functools.lru_cache(maxsize=64)
def closed_form_terms(labels: tuple, coupling, field):
    """Z = alpha lambda_1^(N-1) + beta lambda_2^(N-1) for two labels: T's eigenvalues by the
    quadratic formula, alpha + beta = w.w and alpha lambda_1 + beta lambda_2 = w^T T w (N = 1, 2)."""
    transfer, boundary = discrete.chain_transfer_matrix(labels, lambda a, b: coupling * a * b, lambda a: field * a)
    (a, b), (_, d) = transfer.tolist()
    root = sp.sqrt(sp.expand((a - d) ** 2 + 4 * b ** 2))
    high, low = (a + d + root) / 2, (a + d - root) / 2
    first, second = (boundary.T * boundary)[0], sp.expand((boundary.T * transfer * boundary)[0])
    alpha = sp.simplify((second - low * first) / (high - low))
    beta = sp.simplify((high * first - second) / (high - low))
    return tuple((weight, sp.expand(value)) for weight, value in ((alpha, high), (beta, low)) if weight != 0)


def power_sum(terms, power):
    """sum of weight * value^power; a numeric power stays a power (no huge expansions)."""
    if isinstance(power, int):
        return sp.Add(*[weight * sp.Pow(value, power, evaluate=power <= MAX_WRITTEN_OUT) for weight, value in terms])
    return sp.Add(*[weight * value ** power for weight, value in terms])


# ------------------------------------------------------------------ chain-pl

def pl_changes(params, site: int, size: int = 5):
    """s(Y[site = b]) - s(Y) for the constant labeling, re-scored on a literal chain of `size`."""
    exact = model(params, exact=True)
    return exact.score_changes((params["assignment"][0],) * size, site)


@register
class ChainPseudoLikelihood(Family):
    name = "chain-pl"
    summary = "-ln pseudo-likelihood of a labeling of an open chain with coupling J and field h, nats"
    domain = "N integer 1..10^6 or symbolic; 2-5 labels in [-10, 10]; |J|, |h| <= 20; N <= 12 for an explicit labeling"
    params = CHAIN_PARAMS + (Param("assignment", parse_list, "1", "one label (the constant labeling) or N labels",
                                   draw=one_of_drawn("labels")),)
    single_site_reason = "a chain of one site has no neighbours, only its field term"

    def validate(self, params: dict) -> None:
        validate_chain(params)
        assignment = params["assignment"]
        if any(label not in params["labels"] for label in assignment):
            raise ParameterError("assignment", "every entry must be one of the labels")
        if len(assignment) > 1:
            if len(assignment) > 12 or params["N"] not in (None, len(assignment)):
                raise ParameterError("assignment", "give one label, or N <= 12 labels")
            params["N"] = len(assignment)

    def question(self, params: dict) -> str:
        labeling = (f"the constant labeling $\\mathcal{{Y}}[n] = {to_latex(params['assignment'][0])}$"
                    if len(params["assignment"]) == 1 else f"$\\mathcal{{Y}} = {to_latex(tuple(params['assignment']))}$")
        return chain_question(params, f"Find $-\\ln \\tilde{{P}}(\\mathcal{{Y}})$ of {labeling}, in nats"
                              + (" as a function of $N$." if params["N"] is None else "."))

    def derive(self, params: dict, problem: str | None = None) -> Derivation:
        size, floats = params["N"], model(params)
        steps, tables = [score_step(params)], []
        if len(params["assignment"]) > 1:
            answer, table = explicit_pl(params, floats, steps)
            tables.append(table)
        else:
            general, single = constant_pl(params, floats, steps)
            answer = general
            if size is not None:
                answer = single if size == 1 else general.xreplace({N: size})
                steps.append(Step(StepKind.RESULT, f"the chain of {size} sites", NEG_LOG_PL, (answer,),
                                  f"The formula at $N = {size}$.", (pl_check_at(params, floats, size, answer),),
                                  approximation=rounded(answer)))
        return Derivation(problem or self.name, self.name, self.params_json(params), self.question(params),
                          steps, answer, numeric_value(answer), [steps[-1].checks[0]], tables=tables)

    def mistakes(self, params: dict) -> list:
        if len(params["assignment"]) > 1:
            return []
        interior = N * sp.log(sp.Add(*[sp.exp(c) for c in pl_changes(params, 2)]))
        return [("ends", interior if params["N"] is None else interior.subs(N, params["N"]),
                 "the two end sites were treated as interior sites: each has one neighbour, so its "
                 "conditional differs from the others'")]


def constant_pl(params, floats, steps):
    """-ln PL of the constant labeling: 2 end sites and N - 2 interior ones (N >= 2), and N = 1."""
    label = params["assignment"][0]
    end, interior = pl_changes(params, 0), pl_changes(params, 2)
    single = sp.log(sp.Add(*[sp.exp(params["h"] * (b - label)) for b in params["labels"]]))
    end_log, interior_log = (sp.log(sp.Add(*[sp.exp(c) for c in changes])) for changes in (end, interior))
    general = 2 * end_log + (N - 2) * interior_log
    sizes = [k for k in CHECK_SIZES if floats.enumerable(k)]
    enumerated = compare(f"brute force from the enumerated joint, N=1..{sizes[-1]}",
                         [float(single) if k == 1 else float(general.subs(N, k)) for k in sizes],
                         [floats.neg_log_pl_enumerated((float(label),) * k) for k in sizes], how="enumeration")
    own = params["J"] * (N - 1) * label ** 2 + params["h"] * N * label
    site_b = Notation("s(Y[n=b]) - s(Y)", r"s(\mathcal{Y}[n=b]) - s(\mathcal{Y})")
    for site, changes, where in ((0, end, "an end site"), (2, interior, "an interior site")):
        direct = floats.score_changes((float(label),) * 5, site)
        steps.append(Step(StepKind.COMPUTATION, f"score changes at {where}", site_b, (tuple(changes),),
                          f"Re-scoring the chain with {where} set to each label in turn (one entry per label).",
                          (compare(f"score changes at {where} vs the float chain, N=5", changes, direct, how="re-scored"),)))
    for where, log_form, site in (("an end site", end_log, 0), ("an interior site", interior_log, 2)):
        conditional = sp.exp(-log_form)
        reference = floats.conditional((float(label),) * 5, site)[list(params["labels"]).index(label)]
        steps.append(Step(StepKind.SIMPLIFICATION, f"conditional at {where}",
                          Notation(f"P(Y[n] | Y/n) at {where}", r"P(\mathcal{Y}[n] \mid \mathcal{Y}/n)"),
                          (conditional,), "$e^{s(\\mathcal{Y})}$ over the sum of $e^{s}$ with the site changed.",
                          (compare(f"conditional at {where} vs re-scored softmax", conditional, reference),),
                          approximation=rounded(conditional)))
    steps.append(Step(StepKind.SUBSTITUTION, "score of the labeling", SCORE, (own,),
                      "$N - 1$ equal pairs and $N$ equal field terms.",
                      (agrees_at("score of the constant labeling, N=1..6", own, N, range(1, 7),
                                 lambda k: floats.score((float(label),) * k), how="direct"),)))
    steps.append(Step(StepKind.RESULT, "the one-site chain", Notation("-ln PL(Y) at N=1",
                      r"-\ln \tilde{P}(\mathcal{Y})\big|_{N=1}"), (single,),
                      "A single site has no neighbour: only the field decides its conditional.", (enumerated,),
                      approximation=rounded(single)))
    steps.append(Step(StepKind.RESULT, "negative log pseudo-likelihood", NEG_LOG_PL, (general,),
                      "Two end sites and $N - 2$ interior ones, each adding $-\\ln$ of its conditional ($N \\ge 2$).",
                      (enumerated,)))
    return general, single


def explicit_pl(params, floats, steps):
    exact = model(params, exact=True)
    assignment = tuple(params["assignment"])
    rows, terms = [], []
    for site in range(len(assignment)):
        changes = exact.score_changes(assignment, site)
        terms.append(sp.log(sp.Add(*[sp.exp(c) for c in changes])))
        rows.append((str(site), to_latex(assignment[site]), ", ".join(to_latex(c) for c in changes),
                     f"{float(terms[-1]):.4f}"))
    answer = sp.Add(*terms)
    point = tuple(float(b) for b in assignment)
    check = (compare(f"brute force from the enumerated joint, N={len(point)}", answer,
                     floats.neg_log_pl_enumerated(point), how="enumeration") if floats.enumerable(len(point))
             else compare("re-scoring every site and label", answer, floats.neg_log_pl(point), how="re-scored"))
    steps.append(Step(StepKind.RESULT, "negative log pseudo-likelihood", NEG_LOG_PL, (answer,),
                      "Each site adds $\\ln \\sum_b e^{s(\\mathcal{Y}[n=b]) - s(\\mathcal{Y})}$.", (check,),
                      approximation=rounded(answer)))
    return answer, Table("Score changes and contributions, site by site",
                         ("site $n$", "$\\mathcal{Y}[n]$", "$s(\\mathcal{Y}[n=b]) - s(\\mathcal{Y})$ for each $b$",
                          "$-\\ln P(\\mathcal{Y}[n] \\mid \\mathcal{Y}/n)$"), tuple(rows))


def pl_check_at(params, floats, size: int, answer):
    """The answer at the requested N by a path that scales: enumeration, else re-scoring the two
    end sites and one interior site of a chain of 6 (every interior site of a constant labeling is alike)."""
    label = float(params["assignment"][0])
    if floats.enumerable(size):
        return compare(f"brute force from the enumerated joint, N={size}", answer,
                       floats.neg_log_pl_enumerated((label,) * size), how="enumeration")
    end, interior = (discrete.log_sum_exp(floats.score_changes((label,) * 6, k)) for k in (0, 2))
    return compare(f"2 end sites + (N-2) interior sites re-scored, N={size}", answer,
                   2 * end + (size - 2) * interior, how="re-scored")
