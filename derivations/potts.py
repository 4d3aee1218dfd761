"""A Potts chain: -ln pseudo-likelihood of a colouring of an open chain.

Sites Y[0..N-1], each one of K colours 0..K-1, with the agreement score
    s(Y) = J #{n : Y[n] = Y[n+1]},
counted over the N - 1 neighbouring pairs of an open chain: the two end sites have one
neighbour each, and N = 1 (no pair) and N = 2 (two end sites) are taken literally. Every
form is checked by the discrete-model toolkit: enumeration of the joint and re-scoring.
"""
from __future__ import annotations

import functools
import operator

import sympy as sp

from . import discrete
from .core import (Derivation, Family, Notation, Param, Step, StepKind, Table, agrees_at, choice, compare,
                   integer_between, numeric_value, register, rounded, to_latex)
from .values import ParameterError, parse_int, parse_list, parse_number

N = sp.Symbol("N", integer=True, positive=True)
Y = sp.IndexedBase(Notation("Y", r"\mathcal{Y}"))
n = sp.Symbol("n", integer=True)
SCORE = Notation("s(Y)", r"s(\mathcal{Y})")
NEG_LOG_PL = Notation("-ln PL(Y)", r"-\ln \tilde{P}(\mathcal{Y})")
CHANGES = Notation("s(Y[n=b]) - s(Y)", r"s(\mathcal{Y}[n=b]) - s(\mathcal{Y})")
CHECK_SIZES = range(1, 9)
MAX_SIZE = 10**6
MAX_EXPLICIT = 12


def score(labeling, coupling):
    """s(Y) of an explicit colouring, literally: J times the number of equal neighbouring pairs."""
    return coupling * sum(map(operator.eq, labeling, labeling[1:]))


def model(params, exact: bool = False) -> discrete.LabelingModel:
    coupling = params["J"] if exact else float(params["J"])
    colours = tuple(sp.Integer(c) for c in range(params["K"])) if exact else tuple(float(c) for c in range(params["K"]))
    return discrete.LabelingModel(colours, lambda labeling: score(labeling, coupling))


@functools.lru_cache(maxsize=16)
def score_definition(coupling):
    return coupling * sp.Sum(sp.KroneckerDelta(Y[n], Y[n + 1]), (n, 0, N - 2))


def parse_colours(text: str, name: str) -> list[int]:
    values = parse_list(text, name)
    if any(not value.is_integer or value < 0 for value in values):
        raise ParameterError(name, "every entry must be a colour 0, 1, ..., K-1")
    return [int(value) for value in values]


def draw_colour(rng, drawn) -> str:
    return str(rng.randrange(int(drawn.get("K", "2"))))


def pl_changes(params, site: int, size: int = 5):
    """s(Y[site = b]) - s(Y) for the constant colouring, re-scored exactly on a literal chain of `size`."""
    return model(params, exact=True).score_changes((sp.Integer(params["assignment"][0]),) * size, site)


def log_norm(changes):
    return sp.log(sp.Add(*[sp.exp(c) for c in changes]))


@register
class PottsChainPseudoLikelihood(Family):
    name = "potts-chain-pl"
    summary = "-ln pseudo-likelihood of a colouring of an open Potts chain (score J per equal neighbouring pair), nats"
    domain = f"N integer 1..10^6 or symbolic; K = 2..5 colours; |J| <= 20; N <= {MAX_EXPLICIT} for an explicit colouring"
    params = (
        Param("N", lambda text, name: parse_int(text, name, minimum=1), None,
              "chain length, an integer >= 1; omitted = the symbol N", draw=integer_between(3, 10)),
        Param("K", lambda text, name: parse_int(text, name, minimum=2), "2", "number of colours, 2 to 5",
              draw=choice("2", "2", "3", "4")),
        Param("J", parse_number, "1", "score J of each equal neighbouring pair", draw=choice("1", "1/2", "2", "-1")),
        Param("assignment", parse_colours, "0", "one colour (the constant colouring) or N colours",
              draw=draw_colour),
    )
    single_site_reason = "a chain of one site has no pairs: all K colours are equally likely"

    def validate(self, params: dict) -> None:
        if params["K"] > 5:
            raise ParameterError("K", "give 2 to 5 colours")
        if abs(params["J"]) > 20:
            raise ParameterError("J", "must be between -20 and 20")
        if params["N"] is not None and params["N"] > MAX_SIZE:
            raise ParameterError("N", f"must be at most {MAX_SIZE}")
        assignment = params["assignment"]
        if any(colour >= params["K"] for colour in assignment):
            raise ParameterError("assignment", f"every entry must be a colour 0..{params['K'] - 1}")
        if len(assignment) > 1:
            if len(assignment) > MAX_EXPLICIT or params["N"] not in (None, len(assignment)):
                raise ParameterError("assignment", f"give one colour, or N <= {MAX_EXPLICIT} colours")
            params["N"] = len(assignment)

    def question(self, params: dict) -> str:
        size = "N" if params["N"] is None else str(params["N"])
        shown = to_latex(sp.Eq(SCORE, score_definition(params["J"])))
        labeling = (f"the constant colouring $\\mathcal{{Y}}[n] = {params['assignment'][0]}$"
                    if len(params["assignment"]) == 1 else f"$\\mathcal{{Y}} = {to_latex(tuple(params['assignment']))}$")
        colours = ", ".join(str(c) for c in range(params["K"]))
        return (f"An open chain of ${size}$ sites is coloured with $\\mathcal{{Y}}[n] \\in \\{{{colours}\\}}$; "
                f"the score ${shown}$ adds $J = {to_latex(params['J'])}$ for every pair of equal neighbours, and "
                f"$P(\\mathcal{{Y}}) \\propto e^{{s(\\mathcal{{Y}})}}$. The end sites have one neighbour. "
                f"Find $-\\ln \\tilde{{P}}(\\mathcal{{Y}})$ of {labeling}, in nats"
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
        interior = N * log_norm(pl_changes(params, 2))
        return [("ends", interior if params["N"] is None else interior.subs(N, params["N"]),
                 "the two end sites were treated as interior sites: an end site has one neighbour, so changing "
                 "its colour loses one agreement, not two")]


@functools.lru_cache(maxsize=16)
def score_written_out(coupling, labeling: tuple):
    """The displayed score at N = 5 for one colouring, its sum done (doit is slow; draws repeat)."""
    return score_definition(coupling).subs(N, 5).doit().subs({Y[i]: labeling[i] for i in range(5)})


def score_step(params) -> Step:
    labeling = (0, 0, 1, 1, 1) if params["K"] == 2 else (0, 0, 1, 2, 2)
    shown = score_written_out(params["J"], labeling)
    check = compare("displayed score vs counting equal pairs, N=5", shown,
                    score([float(c) for c in labeling], float(params["J"])), how="counted")
    return Step(StepKind.DEFINITION, "score", SCORE, (score_definition(params["J"]),),
                "Each of the $N-1$ neighbouring pairs adds $J$ when its two colours agree.", (check,))


def constant_pl(params, floats, steps):
    """-ln PL of the constant colouring: 2 end sites and N - 2 interior ones (N >= 2), and N = 1."""
    colour, colours = params["assignment"][0], params["K"]
    end, interior = pl_changes(params, 0), pl_changes(params, 2)
    single = sp.log(colours)
    end_log, interior_log = log_norm(end), log_norm(interior)
    general = 2 * end_log + (N - 2) * interior_log
    sizes = [k for k in CHECK_SIZES if floats.enumerable(k)]
    enumerated = compare(f"brute force from the enumerated joint, N=1..{sizes[-1]}",
                         [float(single) if k == 1 else float(general.subs(N, k)) for k in sizes],
                         [floats.neg_log_pl_enumerated((float(colour),) * k) for k in sizes], how="enumeration")
    for site, changes, where in ((0, end, "an end site"), (2, interior, "an interior site")):
        direct = floats.score_changes((float(colour),) * 5, site)
        steps.append(Step(StepKind.COMPUTATION, f"score changes at {where}", CHANGES, (tuple(changes),),
                          f"Re-colouring {where} with each colour $b = 0, \\dots, K-1$ in turn: a colour other than "
                          f"the neighbours' loses $J$ per neighbour.",
                          (compare(f"score changes at {where} vs the float chain, N=5", changes, direct,
                                   how="re-scored"),)))
    for where, log_form, site in (("an end site", end_log, 0), ("an interior site", interior_log, 2)):
        conditional = sp.exp(-log_form)
        reference = floats.conditional((float(colour),) * 5, site)[colour]
        steps.append(Step(StepKind.SIMPLIFICATION, f"conditional at {where}",
                          Notation(f"P(Y[n] | Y/n) at {where}", r"P(\mathcal{Y}[n] \mid \mathcal{Y}/n)"),
                          (conditional,), "$e^{s(\\mathcal{Y})}$ over the sum of $e^{s}$ with the site re-coloured.",
                          (compare(f"conditional at {where} vs re-scored softmax", conditional, reference),),
                          approximation=rounded(conditional)))
    own = params["J"] * (N - 1)
    steps.append(Step(StepKind.SUBSTITUTION, "score of the colouring", SCORE, (own,),
                      "All $N - 1$ pairs agree.",
                      (agrees_at("score of the constant colouring, N=1..6", own, N, range(1, 7),
                                 lambda k: floats.score((float(colour),) * k), how="counted"),)))
    steps.append(Step(StepKind.RESULT, "the one-site chain", Notation("-ln PL(Y) at N=1",
                      r"-\ln \tilde{P}(\mathcal{Y})\big|_{N=1}"), (single,),
                      "A single site has no neighbour: its conditional is uniform over the $K$ colours.", (enumerated,),
                      approximation=rounded(single)))
    steps.append(Step(StepKind.RESULT, "negative log pseudo-likelihood", NEG_LOG_PL, (general,),
                      "Two end sites and $N - 2$ interior ones, each adding $-\\ln$ of its conditional ($N \\ge 2$; "
                      "at $N = 2$ both sites are ends).", (enumerated,)))
    return general, single


def explicit_pl(params, floats, steps):
    exact = model(params, exact=True)
    assignment = tuple(sp.Integer(c) for c in params["assignment"])
    rows, terms = [], []
    for site in range(len(assignment)):
        changes = exact.score_changes(assignment, site)
        terms.append(log_norm(changes))
        rows.append((str(site), str(assignment[site]), "$" + ", ".join(to_latex(c) for c in changes) + "$",
                     f"{float(terms[-1]):.4f}"))
    answer = sp.Add(*terms)
    point = tuple(float(c) for c in assignment)
    check = (compare(f"brute force from the enumerated joint, N={len(point)}", answer,
                     floats.neg_log_pl_enumerated(point), how="enumeration") if floats.enumerable(len(point))
             else compare("re-scoring every site and colour", answer, floats.neg_log_pl(point), how="re-scored"))
    steps.append(Step(StepKind.RESULT, "negative log pseudo-likelihood", NEG_LOG_PL, (answer,),
                      "Each site adds $\\ln \\sum_b e^{s(\\mathcal{Y}[n=b]) - s(\\mathcal{Y})}$.", (check,),
                      approximation=rounded(answer)))
    return answer, Table("Score changes and contributions, site by site",
                         ("site $n$", "$\\mathcal{Y}[n]$", "$s(\\mathcal{Y}[n=b]) - s(\\mathcal{Y})$ for each $b$",
                          "$-\\ln P(\\mathcal{Y}[n] \\mid \\mathcal{Y}/n)$"), tuple(rows))


def pl_check_at(params, floats, size: int, answer):
    """The answer at the requested N by enumeration, else by re-scoring the two end sites and one
    interior site of a chain of 6 (every interior site of a constant colouring is alike)."""
    colour = float(params["assignment"][0])
    if floats.enumerable(size):
        return compare(f"brute force from the enumerated joint, N={size}", answer,
                       floats.neg_log_pl_enumerated((colour,) * size), how="enumeration")
    end, interior = (discrete.log_sum_exp(floats.score_changes((colour,) * 6, k)) for k in (0, 2))
    return compare(f"2 end sites + (N-2) interior sites re-scored, N={size}", answer,
                   2 * end + (size - 2) * interior, how="re-scored")
