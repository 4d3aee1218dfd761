"""Problem 4: a VAE whose latent z is discrete, quantised as in VQ-VAE.

The encoder outputs a continuous vector zhat; the latent is the nearest of K code
vectors e_0..e_{K-1} in squared Euclidean distance (ties to the lowest index):
    k(zhat) = argmin_j ||zhat - e_j||^2,   z_q = e_k.

`vq-quantize` derives k exactly. `vq-gradient` writes z_q as a piecewise-constant
function of zhat (constant on each Voronoi cell), differentiates it with SymPy
(the zero matrix off the cell boundaries) and derives what VQ-VAE uses instead:
the straight-through surrogate z_st = zhat + sg(z_q - zhat) with Jacobian I, the
codebook loss ||sg(zhat) - e_k||^2 and the commitment loss beta ||zhat - sg(e_k)||^2.
Every step is checked by an independent path in Python fractions or floats:
brute-force distances, the tie rule, sampling around zhat and central finite differences.
"""
from __future__ import annotations

import functools
import math
import random
from fractions import Fraction

import sympy as sp

from .core import (Check, Derivation, ExamProblem, Family, Figure, Notation, Param, Remark, Step,
                   StepKind, Table, compare, register, register_alias, register_exam_problem, rounded)
from .values import ParameterError, parse_list, parse_matrix, parse_number

MIN_CODES = 2
MAX_CODES = 12
MAX_DIM = 6
MAX_MAGNITUDE = 10**6
MAX_GRADIENT_CODES = 8            # vq-gradient displays z_q case by case: keep the cases readable
MAX_GRADIENT_DIM = 4
FD_STEP = Fraction(1, 10**6)      # the largest finite-difference step the checks use
SAMPLED_DIRECTIONS = 8            # random directions of the cell-radius check
SAMPLED_POINTS = 8                # random points at which the displayed quantiser is evaluated

DEFAULT_CODEBOOK = "0,0;1,1;2,0"
DEFAULT_ZHAT = "3/2,1"
DEFAULT_BETA = "1/4"

i_index = sp.Symbol("i", integer=True, positive=True)
j_index = sp.Symbol("j", integer=True, nonnegative=True)
ZHAT_BASE = sp.IndexedBase(Notation("zhat", r"\hat{z}"))
CODE_BASE = sp.IndexedBase(Notation("e", "e"))
BETA = Notation("beta", r"\beta")

# Notation shared by the steps.
SQUARED_DISTANCE = Notation("d_j(zhat)", r"d_j(\hat{z})")
NEAREST = Notation("k(zhat)", r"k(\hat{z})")
ARGMIN = Notation("argmin_j d_j(zhat)", r"\operatorname*{argmin}_j d_j(\hat{z})")
QUANTISED = Notation("z_q", r"z_q")
QUANTISER = Notation("z_q(zhat)", r"z_q(\hat{z})")
JACOBIAN = Notation("dz_q/dzhat", r"\frac{\partial z_q}{\partial \hat{z}}")
CELL_RADIUS = Notation("rho", r"\rho")
STRAIGHT_THROUGH = Notation("z_st", r"z_{\mathrm{st}}")
STRAIGHT_THROUGH_JACOBIAN = Notation("dz_st/dzhat", r"\frac{\partial z_{\mathrm{st}}}{\partial \hat{z}}")
CODEBOOK_LOSS = Notation("L_codebook", r"\mathcal{L}_{\mathrm{codebook}}")
COMMITMENT_LOSS = Notation("L_commit", r"\mathcal{L}_{\mathrm{commit}}")
COMMITMENT_GRADIENT = Notation("dL_commit/dzhat", r"\frac{\partial \mathcal{L}_{\mathrm{commit}}}{\partial \hat{z}}")


class StopGradient(sp.Function):
    """sg(x): the identity in the forward pass, a constant (zero derivative) in the backward pass."""

    def fdiff(self, argindex=1):
        return sp.S.Zero

    def _latex(self, printer, exp=None):
        shown = r"\operatorname{sg}\left(" + printer._print(self.args[0]) + r"\right)"
        return shown if exp is None else shown + "^{" + exp + "}"


class ShownMatrix(sp.ImmutableMatrix):
    """An immutable matrix whose str() fits on one line: Matrix([[0, 0], [0, 0]])."""

    def _sympystr(self, printer):
        return "Matrix(" + printer._print(self.tolist()) + ")"


def forward(expr):
    """The forward-pass value: every sg(x) replaced by x."""
    return expr.replace(StopGradient, lambda argument: argument)


def component_symbols(dim: int) -> tuple[Notation, ...]:
    return tuple(Notation(f"zhat{i}", rf"\hat{{z}}_{{{i}}}", real=True) for i in range(1, dim + 1))


def code_symbols(k: int, dim: int) -> tuple[Notation, ...]:
    return tuple(Notation(f"e{k}_{i}", rf"e_{{{k},{i}}}", real=True) for i in range(1, dim + 1))


def shown(matrix) -> ShownMatrix:
    """A ShownMatrix copy (ImmutableMatrix returns an immutable argument unchanged, so copy its rows)."""
    return ShownMatrix(sp.Matrix(matrix).tolist())


def column(values) -> ShownMatrix:
    return ShownMatrix([[value] for value in values])


# ------------------------------------------------- independent numeric paths
# Python fractions and floats only: no SymPy, so they cannot share a SymPy mistake.

def as_fractions(values) -> list[Fraction]:
    return [Fraction(int(sp.Rational(v).p), int(sp.Rational(v).q)) for v in values]


def exact_squared_distances(codes: list[list[Fraction]], point: list[Fraction]) -> list[Fraction]:
    return [sum(((x - c) ** 2 for x, c in zip(point, code)), Fraction(0)) for code in codes]


def exact_nearest(codes: list[list[Fraction]], point: list[Fraction]) -> int:
    """Brute force: the smallest (distance, index) pair, so ties go to the lowest index."""
    distances = exact_squared_distances(codes, point)
    return min(range(len(codes)), key=lambda j: (distances[j], j))


def float_squared_distances(codes, point) -> list[float]:
    point_f = [float(x) for x in point]
    return [math.fsum((x - float(c)) ** 2 for x, c in zip(point_f, code)) for code in codes]


def shifted(point: list[Fraction], axis: int, step: Fraction) -> list[Fraction]:
    moved = list(point)
    moved[axis] += step
    return moved


def central_difference(function, point: list[Fraction], step: Fraction) -> list[list[Fraction]]:
    """Rows: output components; columns: input axes. Exact, in fractions."""
    columns = []
    for axis in range(len(point)):
        ahead = function(shifted(point, axis, step))
        behind = function(shifted(point, axis, -step))
        columns.append([(a - b) / (2 * step) for a, b in zip(ahead, behind)])
    return [list(row) for row in zip(*columns)]


def _flat(matrix) -> list:
    return [entry for row in matrix for entry in row]


# --------------------------------------------------------------- parameters

def _check_magnitude(values, name: str) -> None:
    for value in values:
        if abs(value) > MAX_MAGNITUDE:
            raise ParameterError(name, f"entry {value} is too large; entries must lie in "
                                 f"[-{MAX_MAGNITUDE}, {MAX_MAGNITUDE}]")


def _parse_codebook(text: str, name: str):
    codes = parse_matrix(text, name)
    if len(codes) < MIN_CODES:
        raise ParameterError(name, f"needs at least {MIN_CODES} codes, one per row, rows separated by ';'")
    if len(codes) > MAX_CODES:
        raise ParameterError(name, f"has {len(codes)} codes; at most {MAX_CODES} are allowed")
    if len(codes[0]) > MAX_DIM:
        raise ParameterError(name, f"codes have dimension {len(codes[0])}; at most {MAX_DIM} is allowed")
    for code in codes:
        _check_magnitude(code, name)
    return codes


def _parse_zhat(text: str, name: str):
    zhat = parse_list(text, name)
    if len(zhat) > MAX_DIM:
        raise ParameterError(name, f"has {len(zhat)} entries; at most {MAX_DIM} are allowed")
    _check_magnitude(zhat, name)
    return zhat


def _parse_beta(text: str, name: str):
    beta = parse_number(text, name)
    if not 0 < beta <= MAX_MAGNITUDE:
        raise ParameterError(name, f"the commitment weight must be > 0 and at most {MAX_MAGNITUDE}, got {beta}")
    return beta


VQ_PARAMS = (
    Param("codebook", _parse_codebook, DEFAULT_CODEBOOK,
          "the code vectors, one per row, rows separated by ';', entries by ','"),
    Param("zhat", _parse_zhat, DEFAULT_ZHAT, "the encoder output, comma-separated, same dimension as the codes"),
)


# -------------------------------------------------------------- common steps

def squared_distances(codebook, zhat):
    """Evaluate the displayed sum d_j = sum_i (zhat_i - e_{j,i})^2 for every code, exactly."""
    dim = len(zhat)
    at_zhat = expanded_distance(dim).xreplace({ZHAT_BASE[i + 1]: zhat[i] for i in range(dim)})
    return [at_zhat.xreplace({CODE_BASE[j_index, i + 1]: code[i] for i in range(dim)}) for code in codebook]


@functools.lru_cache(maxsize=16)
def distance_definition(dim: int):
    return sp.Sum((ZHAT_BASE[i_index] - CODE_BASE[j_index, i_index]) ** 2, (i_index, 1, dim))


@functools.lru_cache(maxsize=16)
def expanded_distance(dim: int):
    return distance_definition(dim).doit()


def nearest_code(distances) -> int:
    """The lowest index among the minimisers of the exact distances."""
    smallest = min(distances)
    return next(j for j, d in enumerate(distances) if d == smallest)


def tied_codes(distances, k: int) -> list[int]:
    return [j for j, d in enumerate(distances) if d == distances[k]]


def check_distances(codebook, zhat, distances) -> Check:
    return compare("squared distances: SymPy vs float brute force", distances,
                   float_squared_distances(codebook, zhat), how="float loop")


def check_minimum(codebook, zhat, k: int) -> Check:
    """k must attain the smallest float distance (a float loop cannot resolve exact ties)."""
    floats = float_squared_distances(codebook, zhat)
    return compare(f"d_k of code {k} is the smallest float distance", floats[k], min(floats), how="float minimum")


def check_tie_rule(codebook, zhat, k: int) -> Check:
    """In exact fractions: no earlier code is as close, no later code is closer."""
    distances = exact_squared_distances([as_fractions(code) for code in codebook], as_fractions(zhat))
    earlier = all(distances[j] > distances[k] for j in range(k))
    later = all(distances[j] >= distances[k] for j in range(k + 1, len(distances)))
    tied = [j for j, d in enumerate(distances) if d == distances[k]]
    detail = (f"exact distances {[str(d) for d in distances]}; code {k}: "
              f"{'no earlier code as close' if earlier else 'an earlier code is as close'}, "
              f"{'no later code closer' if later else 'a later code is closer'}"
              + (f"; codes {tied} tie, the lowest wins" if len(tied) > 1 else ""))
    return Check("tie rule in exact fractions: lowest index among the nearest", earlier and later, detail)


def check_quantised(codebook, zhat, code) -> Check:
    codes = [as_fractions(c) for c in codebook]
    brute = codes[exact_nearest(codes, as_fractions(zhat))]
    return compare("z_q vs the brute-force nearest code", list(code), [float(x) for x in brute],
                   how="brute force")


def quantisation_steps(codebook, zhat):
    """The steps both families share: distances, the nearest index, the quantised code."""
    dim = len(zhat)
    distances = squared_distances(codebook, zhat)
    k = nearest_code(distances)
    distance_check = check_distances(codebook, zhat, distances)
    tied = tied_codes(distances, k)
    tie_text = (f" Codes ${', '.join(str(j) for j in tied)}$ tie; the lowest index wins."
                if len(tied) > 1 else " No other code is as close.")
    distance_list = Notation("d", r"\left(" + ", ".join(rf"d_{{{j}}}(\hat{{z}})" for j in range(len(codebook)))
                             + r"\right)")
    steps = [
        Step(StepKind.DEFINITION, "squared distance to a code", SQUARED_DISTANCE, (distance_definition(dim),),
             "The quantiser compares the encoder output with every code by squared Euclidean distance.",
             (distance_check,)),
        Step(StepKind.COMPUTATION, "squared distances at the encoder output", distance_list, (tuple(distances),),
             "Substitute $\\hat{z}$ and each code into the sum; the arithmetic is exact.",
             (distance_check,)),
        Step(StepKind.RESULT, "index of the nearest code", NEAREST, (ARGMIN, sp.Integer(k)),
             f"The smallest squared distance is ${sp.latex(distances[k])}$, reached by code ${k}$." + tie_text,
             (check_minimum(codebook, zhat, k), check_tie_rule(codebook, zhat, k))),
        Step(StepKind.SUBSTITUTION, "quantised code", QUANTISED,
             (Notation(f"e_{k}", f"e_{{{k}}}"), column(codebook[k])),
             "The latent passed to the decoder is the chosen code itself.",
             (check_quantised(codebook, zhat, codebook[k]),)),
    ]
    return steps, distances, k


def codebook_table(codebook, distances, k: int) -> Table:
    rows = tuple((f"${j}$", f"${sp.latex(tuple(code))}$", f"${sp.latex(distances[j])}$",
                  "yes" if j == k else "")
                 for j, code in enumerate(codebook))
    return Table("Codes and their squared distances to the encoder output",
                 ("$j$", "$e_j$", "$d_j(\\hat{z})$", "chosen"), rows)


def vector_text(values) -> str:
    return sp.latex(tuple(values)) if len(values) > 1 else sp.latex(values[0])


def codes_text(codebook) -> str:
    return ", ".join(f"$e_{{{j}}} = {vector_text(code)}$" for j, code in enumerate(codebook))


# ------------------------------------------------------------------- figure

def codebook_figure(codebook, zhat, k: int) -> Figure | None:
    """The codes, zhat and the chosen code over the Voronoi cells clipped to a box (2-D only)."""
    if len(zhat) != 2:
        return None
    codes = [as_fractions(code) for code in codebook]
    point = as_fractions(zhat)
    xs = [c[0] for c in codes] + [point[0]]
    ys = [c[1] for c in codes] + [point[1]]
    low_x, high_x = math.floor(min(xs)) - 1, math.ceil(max(xs)) + 1
    low_y, high_y = math.floor(min(ys)) - 1, math.ceil(max(ys)) + 1
    box = [(Fraction(low_x), Fraction(low_y)), (Fraction(high_x), Fraction(low_y)),
           (Fraction(high_x), Fraction(high_y)), (Fraction(low_x), Fraction(high_y))]
    # Coordinates arrive in centimetres, already scaled: TikZ cannot hold a length of 10^6 cm.
    scale = Fraction(6, max(high_x - low_x, high_y - low_y))

    def place(point):
        return "(" + ",".join(f"{float(x * scale):.4f}" for x in point) + ")"

    cells = []
    for j, code in enumerate(codes):
        if any(codes[earlier] == code for earlier in range(j)):
            continue  # a repeated code never wins: the earlier copy takes its whole cell
        polygon = box
        for other in codes:
            if other != code:
                normal = (2 * (other[0] - code[0]), 2 * (other[1] - code[1]))
                bound = other[0] ** 2 + other[1] ** 2 - code[0] ** 2 - code[1] ** 2
                polygon = clip_half_plane(polygon, normal, bound)
        if len(polygon) >= 3:
            corners = [place(p) for index, p in enumerate(polygon) if p != polygon[index - 1]]
            cells.append({"path": " -- ".join(corners) + " -- cycle",
                          "chosen": j == k})
    return Figure("codebook", "The codes $e_j$ and their cells (the points nearest to each code) in a box; "
                  "the encoder output $\\hat{z}$ falls in the shaded cell, so $z_q$ is its code.",
                  {"box": f"{place(box[0])} rectangle {place(box[2])}",
                   "cells": cells,
                   "codes": [{"at": place(code), "label": f"e_{{{j}}}", "chosen": j == k}
                             for j, code in enumerate(codes)],
                   "zhat": place(point),
                   "chosen": place(codes[k])})


def clip_half_plane(polygon, normal, bound):
    """Sutherland-Hodgman: the part of a convex polygon with normal . p <= bound, exactly."""
    def inside(p):
        return normal[0] * p[0] + normal[1] * p[1] <= bound

    def crossing(p, q):
        value_p = normal[0] * p[0] + normal[1] * p[1] - bound
        value_q = normal[0] * q[0] + normal[1] * q[1] - bound
        t = value_p / (value_p - value_q)
        return (p[0] + t * (q[0] - p[0]), p[1] + t * (q[1] - p[1]))

    clipped = []
    for index, current in enumerate(polygon):
        previous = polygon[index - 1]
        if inside(current):
            if not inside(previous):
                clipped.append(crossing(previous, current))
            clipped.append(current)
        elif inside(previous):
            clipped.append(crossing(previous, current))
    return clipped


# ---------------------------------------------------------------- families

class VQFamily(Family):
    params = VQ_PARAMS

    def validate(self, params: dict) -> None:
        dim = len(params["codebook"][0])
        if len(params["zhat"]) != dim:
            count = len(params["zhat"])
            raise ParameterError("zhat", f"has {count} {'entry' if count == 1 else 'entries'} but the codes have "
                                 f"dimension {dim}; "
                                 "zhat needs one entry per code coordinate")

    def generate(self, rng: random.Random) -> dict[str, str]:
        """3-4 distinct integer codes in 2-D and a half-integer zhat, nearest code ahead by at least 1/4."""
        while True:
            count = rng.choice([3, 4])
            points = rng.sample([(x, y) for x in range(-1, 4) for y in range(-1, 3)], count)
            codes = [[Fraction(x), Fraction(y)] for x, y in points]
            zhat = [Fraction(rng.randint(-2, 7), 2), Fraction(rng.randint(-2, 5), 2)]
            if all(x.denominator == 1 for x in zhat):
                continue
            distances = sorted(exact_squared_distances(codes, zhat))
            if distances[1] - distances[0] >= Fraction(1, 4):
                return {"codebook": ";".join(f"{x},{y}" for x, y in points),
                        "zhat": ",".join(str(x) for x in zhat)}


@register
class VQQuantize(VQFamily):
    name = "vq-quantize"
    summary = "index of the nearest code to zhat in squared Euclidean distance (ties: lowest index)"

    def question(self, params: dict) -> str:
        return (f"A vector quantiser has the codes {codes_text(params['codebook'])}. An encoder outputs "
                f"$\\hat{{z}} = {vector_text(params['zhat'])}$. Which code does the quantiser choose, that is, "
                "which index $k$ minimises $\\lVert \\hat{z} - e_j \\rVert^2$? Ties go to the lowest index.")

    def derive(self, params: dict, problem: str | None = None) -> Derivation:
        codebook, zhat = params["codebook"], params["zhat"]
        steps, distances, k = quantisation_steps(codebook, zhat)
        codes = [as_fractions(code) for code in codebook]
        checks = [compare("nearest code by exact brute force over the codes", k,
                          exact_nearest(codes, as_fractions(zhat)), how="brute force")]
        return Derivation(problem or self.name, self.name, self.params_json(params), self.question(params),
                          steps, sp.Integer(k), k, checks, [], [codebook_table(codebook, distances, k)],
                          codebook_figure(codebook, zhat, k))


@register
class VQGradient(VQFamily):
    name = "vq-gradient"
    summary = ("Jacobian dz_q/dzhat of the quantised code (zero), with the straight-through, "
               "codebook and commitment gradients of VQ-VAE")
    params = VQ_PARAMS + (Param("beta", _parse_beta, DEFAULT_BETA, "weight of the commitment loss, > 0"),)
    numeric = False  # the answer is a matrix, not one number

    def validate(self, params: dict) -> None:
        super().validate(params)
        codebook, zhat = params["codebook"], params["zhat"]
        if len(codebook) > MAX_GRADIENT_CODES:
            raise ParameterError("codebook", f"has {len(codebook)} codes; the gradient shows the quantiser case by "
                                 f"case and allows at most {MAX_GRADIENT_CODES}")
        if len(zhat) > MAX_GRADIENT_DIM:
            raise ParameterError("codebook", f"codes have dimension {len(zhat)}; the gradient allows at most "
                                 f"{MAX_GRADIENT_DIM}")
        for j, code in enumerate(codebook):
            for earlier in range(j):
                if codebook[earlier] == code:
                    raise ParameterError("codebook", f"codes {earlier} and {j} are equal; the gradient needs "
                                         "distinct codes")
        distances = exact_squared_distances([as_fractions(code) for code in codebook], as_fractions(zhat))
        best = min(distances)
        tied = [j for j, d in enumerate(distances) if d == best]
        if len(tied) > 1:
            raise ParameterError("zhat", f"is equally close to codes {', '.join(map(str, tied))} (squared distance "
                                 f"{best}): it lies on a cell boundary, where z_q jumps and has no derivative; "
                                 "move zhat off the boundary")

    def generate(self, rng: random.Random) -> dict[str, str]:
        return {**super().generate(rng), "beta": rng.choice(["1/4", "1/4", "1/2", "1"])}

    def question(self, params: dict) -> str:
        return (f"A VAE has a discrete latent, as in VQ-VAE: the encoder outputs $\\hat{{z}} = "
                f"{vector_text(params['zhat'])}$ and the latent is the nearest of the codes "
                f"{codes_text(params['codebook'])}. Compute the Jacobian "
                "$\\partial z_q / \\partial \\hat{z}$ of the quantised code at this $\\hat{z}$ and explain why "
                "a discrete latent stops back-propagation into the encoder whatever the signal $s$ is. Then "
                "give the Jacobian of the straight-through code and the gradients of the codebook loss and of "
                f"the commitment loss with $\\beta = {sp.latex(params['beta'])}$.")

    def derive(self, params: dict, problem: str | None = None) -> Derivation:
        codebook, zhat, beta = params["codebook"], params["zhat"], params["beta"]
        steps, distances, k = quantisation_steps(codebook, zhat)
        codes = [as_fractions(code) for code in codebook]
        point = as_fractions(zhat)

        symbols, quantiser, jacobian = piecewise_quantiser(tuple(tuple(code) for code in codebook))
        at_zhat = dict(zip(symbols, zhat))
        steps.append(Step(
            StepKind.THEOREM, "the quantiser as a function of the encoder output", QUANTISER, (quantiser,),
            "Code $j$ is returned where $d_j(\\hat{z}) \\le d_i(\\hat{z})$ for every $i$; each difference "
            "$d_i - d_j$ is linear in $\\hat{z}$, so the cells are convex polyhedra, and on each cell "
            "$z_q$ is a constant vector. The first case that holds wins, which is the tie rule.",
            (check_quantiser_cases(codebook, zhat, symbols, quantiser),)))

        radius, nearest_rival, candidates = cell_radius(codebook, distances, k)
        radius_check = check_cell_radius(codes, point, k, radius, nearest_rival)
        steps.append(Step(
            StepKind.COMPUTATION, "distance to the cell boundary", CELL_RADIUS,
            (sp.Min(*candidates, evaluate=False), radius),
            f"The boundary shared with code $j$ is the hyperplane $d_j = d_{{{k}}}$; $\\hat{{z}}$ lies at distance "
            f"$(d_j - d_{{{k}}})/(2\\lVert e_j - e_{{{k}}} \\rVert)$ from it. Within the smallest of these, "
            f"reached for code ${nearest_rival}$, the quantiser keeps returning $e_{{{k}}}$.",
            (radius_check,), approximation=rounded(radius)))

        decided: dict = {}
        answer = ShownMatrix([[case_value(entry, at_zhat, decided) for entry in row] for row in jacobian])
        step = min(FD_STEP, Fraction(float(sp.N(radius, 30)) / 2))
        jacobian_check = compare(f"central finite differences of the brute-force quantiser, h={float(step):.3g}",
                                 _flat(answer.tolist()),
                                 _flat(central_difference(lambda x: codes[exact_nearest(codes, x)], point, step)),
                                 how="finite differences")
        steps.append(Step(
            StepKind.RESULT, "Jacobian of the quantised code", JACOBIAN, (answer,),
            "SymPy differentiates each case of $z_q(\\hat{z})$; every case is a constant, so every entry is 0. "
            "This holds at every $\\hat{z}$ inside a cell, ours included; on a boundary $z_q$ jumps and has no "
            "derivative. No gradient can reach the encoder through $z_q$.",
            (jacobian_check, radius_check)))

        steps += straight_through_steps(codes, point, k, symbols, codebook[k])
        steps += loss_steps(codes, point, k, beta, symbols, codebook[k], zhat, step)

        value = [[int(entry) for entry in row] for row in answer.tolist()]
        remarks = []
        if params_are_defaults(self, params):
            remarks.append(key_note())
        return Derivation(problem or self.name, self.name, self.params_json(params), self.question(params),
                          steps, answer, value, [jacobian_check], remarks,
                          [codebook_table(codebook, distances, k), difference_quotient_table(codes, point)],
                          codebook_figure(codebook, zhat, k), answer_text=ANSWER_TEXT)


def params_are_defaults(family: Family, params: dict) -> bool:
    return all(param.to_text(params[param.name]) == param.default for param in family.params)


# ----------------------------------------------------------- gradient steps

@functools.lru_cache(maxsize=128)
def piecewise_quantiser(codebook: tuple):
    """z_q(zhat) as a column of Piecewise cases, and its Jacobian, case by case, by SymPy.

    The cases stay unevaluated: SymPy's own case merging is exponential in the number of codes.
    """
    dim = len(codebook[0])
    symbols = component_symbols(dim)
    distances = [sum((s - c) ** 2 for s, c in zip(symbols, code)) for code in codebook]
    conditions = [sp.And(*[closer_than(distances[j], distances[other], symbols)
                           for other in range(len(codebook)) if other != j], evaluate=False)
                  for j in range(len(codebook) - 1)] + [sp.true]
    rows = [sp.Piecewise(*[(code[axis], condition) for code, condition in zip(codebook, conditions)],
                         evaluate=False)
            for axis in range(dim)]
    jacobian = [[sp.Piecewise(*[(sp.diff(expr, symbol), condition) for expr, condition in row.args],
                              evaluate=False)
                 for symbol in symbols] for row in rows]
    return symbols, sp.ImmutableMatrix([[row] for row in rows]), jacobian


def closer_than(distance, other_distance, symbols):
    """d_j <= d_i as an unevaluated linear inequality in zhat, integer coefficients without common factor."""
    difference = sp.expand(distance - other_distance)
    constant = difference.xreplace({symbol: 0 for symbol in symbols})
    content, linear = (difference - constant).as_content_primitive()
    if linear == 0:
        return sp.true if constant <= 0 else sp.false
    if linear.could_extract_minus_sign():
        return sp.GreaterThan(-linear, constant / content, evaluate=False)
    return sp.LessThan(linear, -constant / content, evaluate=False)


def case_value(piecewise, point: dict, decided: dict):
    """The first case whose condition holds at the point; `decided` remembers each condition's truth."""
    if not isinstance(piecewise, sp.Piecewise):  # a single case collapses to its expression
        return piecewise.xreplace(point)
    for expr, condition in piecewise.args:
        if condition not in decided:
            decided[condition] = holds(condition, point)
        if decided[condition]:
            return expr.xreplace(point)
    raise ValueError("no case of the quantiser holds")


def holds(condition, point: dict) -> bool:
    """A conjunction of linear inequalities at a rational point, side by side in exact numbers
    (SymPy's own evaluation of relationals is slow)."""
    if condition is sp.true:
        return True
    parts = condition.args if isinstance(condition, sp.And) else (condition,)
    for part in parts:
        if part is sp.true:
            continue
        if part is sp.false:
            return False
        left, right = part.lhs.xreplace(point), part.rhs.xreplace(point)
        if not COMPARISONS[part.rel_op](left, right):
            return False
    return True


COMPARISONS = {"<=": lambda a, b: a <= b, "<": lambda a, b: a < b,
               ">=": lambda a, b: a >= b, ">": lambda a, b: a > b}


def check_quantiser_cases(codebook, zhat, symbols, quantiser) -> Check:
    """The displayed cases at zhat and at seeded random points vs the brute-force quantiser."""
    codes = [as_fractions(code) for code in codebook]
    rng = random.Random(20211)
    points = [as_fractions(zhat)] + [[Fraction(rng.randint(-40, 40), 8) + x for x in as_fractions(zhat)]
                                     for _ in range(SAMPLED_POINTS)]
    derived, brute = [], []
    for point in points:
        exact_point = {s: sp.Rational(x.numerator, x.denominator) for s, x in zip(symbols, point)}
        decided: dict = {}
        derived += [case_value(row, exact_point, decided) for row in quantiser]
        brute += codes[exact_nearest(codes, point)]
    return compare(f"displayed cases vs brute force at zhat and {SAMPLED_POINTS} random points", derived,
                   brute, how="brute force")


def cell_radius(codebook, distances, k: int):
    """rho = min over j of the distance from zhat to the hyperplane bisecting e_k and e_j;
    returns rho, the j reaching it, and every candidate distance in code order."""
    candidates = {}
    for j, code in enumerate(codebook):
        if j != k:
            gap = sum(((a - b) ** 2 for a, b in zip(code, codebook[k])), sp.Integer(0))
            candidates[j] = sp.radsimp((distances[j] - distances[k]) / (2 * sp.sqrt(gap)))
    rival = min(candidates, key=lambda j: (sp.N(candidates[j], 30), j))
    return candidates[rival], rival, list(candidates.values())


def check_cell_radius(codes, point, k: int, radius, rival: int) -> Check:
    """Points 0.999 rho away (along every boundary normal and random directions) keep code k;
    the point 1.001 rho towards the nearest boundary does not."""
    rho = float(sp.N(radius, 30))
    rng = random.Random(4231)
    directions = [[c - e for c, e in zip(code, codes[k])] for j, code in enumerate(codes) if j != k]
    directions += [[Fraction(rng.randint(-1000, 1000)) for _ in point] for _ in range(SAMPLED_DIRECTIONS)]

    def moved(direction, factor):
        length = math.sqrt(float(sum(x * x for x in direction))) or 1.0
        scale = Fraction(factor * rho / length)
        return [x + scale * d for x, d in zip(point, direction)]

    kept = all(exact_nearest(codes, moved(direction, 0.999)) == k for direction in directions)
    toward = [c - e for c, e in zip(codes[rival], codes[k])]
    left = exact_nearest(codes, moved(toward, 1.001)) != k
    return Check("cell radius: code kept at 0.999 rho, lost at 1.001 rho", kept and left,
                 f"rho = {rho:.12g}; {len(directions)} directions at 0.999 rho keep code {k}: {kept}; "
                 f"1.001 rho towards code {rival} leaves the cell: {left}")


def straight_through_steps(codes, point, k: int, symbols, code):
    zhat_vector = sp.ImmutableMatrix(symbols)
    straight = zhat_vector + sp.ImmutableMatrix([StopGradient(c - s) for c, s in zip(code, symbols)])
    forward_value = forward(straight)
    forward_check = compare("straight-through forward pass vs the brute-force nearest code",
                            list(forward_value.subs(dict(zip(symbols, [sp.Rational(x.numerator, x.denominator)
                                                                        for x in point])))),
                            [float(x) for x in codes[exact_nearest(codes, point)]], how="brute force")
    jacobian = shown(straight.jacobian(symbols))
    frozen = [c - x for c, x in zip(codes[k], point)]  # sg(z_q - zhat) keeps its forward value
    surrogate_check = compare("finite differences with the stop-gradient term frozen",
                              _flat(jacobian.tolist()),
                              _flat(central_difference(lambda x: [a + b for a, b in zip(x, frozen)], point, FD_STEP)),
                              how="finite differences")
    return [
        Step(StepKind.DEFINITION, "straight-through code", STRAIGHT_THROUGH, (straight, forward_value),
             "$\\operatorname{sg}$ is the identity in the forward pass, so the decoder still receives $z_q$; in "
             "the backward pass it is treated as a constant.",
             (forward_check,)),
        Step(StepKind.RESULT, "Jacobian of the straight-through code", STRAIGHT_THROUGH_JACOBIAN, (jacobian,),
             "Only the $\\hat{z}$ outside $\\operatorname{sg}$ carries a derivative: the gradient of the decoder "
             "loss with respect to $z_q$ is copied unchanged onto $\\hat{z}$ and on into the encoder.",
             (surrogate_check,)),
    ]


def loss_steps(codes, point, k: int, beta, symbols, code, zhat, zhat_step: Fraction):
    chosen = code_symbols(k, len(symbols))
    values = {**dict(zip(symbols, zhat)), **dict(zip(chosen, code))}
    codebook_loss = sum((StopGradient(s) - e) ** 2 for s, e in zip(symbols, chosen))
    codebook_gradient = sp.ImmutableMatrix([sp.expand(sp.diff(codebook_loss, e)) for e in chosen])
    codebook_value = shown(forward(codebook_gradient).subs(values))
    commitment_loss = BETA * sum((s - StopGradient(e)) ** 2 for s, e in zip(symbols, chosen))
    commitment_gradient = sp.ImmutableMatrix([sp.expand(sp.diff(commitment_loss, s)) for s in symbols])
    commitment_value = shown(forward(commitment_gradient).subs({**values, BETA: beta}))
    beta_f = Fraction(int(beta.p), int(beta.q))
    distances = exact_squared_distances(codes, point)
    gap = min(d - distances[k] for j, d in enumerate(distances) if j != k)
    reach = max(abs(x - c) for entry in codes for x, c in zip(point, entry))
    code_step = min(FD_STEP, gap / (4 * (reach + 1)))

    def codebook_loss_of(flat_codes):
        rows = [flat_codes[r * len(point):(r + 1) * len(point)] for r in range(len(codes))]
        nearest = exact_nearest(rows, point)
        return [sum(((x - c) ** 2 for x, c in zip(point, rows[nearest])), Fraction(0))]

    by_code = central_difference(codebook_loss_of, _flat(codes), code_step)[0]
    derived_by_code = [float(codebook_value[axis]) if row == k else 0.0
                       for row in range(len(codes)) for axis in range(len(point))]
    codebook_check = compare(f"finite differences over every code entry, nearest code re-chosen, "
                             f"h={float(code_step):.3g}", derived_by_code, by_code, how="finite differences")

    def commitment_of(x):
        return [beta_f * sum(((a - c) ** 2 for a, c in zip(x, codes[exact_nearest(codes, x)])), Fraction(0))]

    by_zhat = central_difference(commitment_of, point, zhat_step)[0]
    commitment_check = compare(f"finite differences over zhat, nearest code re-chosen, h={float(zhat_step):.3g}",
                               list(commitment_value), by_zhat, how="finite differences")
    gradient_codebook = Notation("dL_codebook/de_k", rf"\frac{{\partial \mathcal{{L}}_{{\mathrm{{codebook}}}}}}"
                                 rf"{{\partial e_{{{k}}}}}")
    return [
        Step(StepKind.DEFINITION, "codebook loss", CODEBOOK_LOSS, (codebook_loss,),
             "The codes get no gradient through the straight-through path, so a k-means-like loss pulls the "
             "chosen code towards the encoder output, which is held fixed.", (codebook_check,)),
        Step(StepKind.RESULT, "codebook gradient on the chosen code", gradient_codebook,
             (codebook_gradient, codebook_value),
             f"Only $e_{{{k}}}$ appears in the loss, so every other code gets a zero gradient.", (codebook_check,)),
        Step(StepKind.DEFINITION, "commitment loss", COMMITMENT_LOSS, (commitment_loss,),
             "The commitment loss holds the encoder output near its code, with the code held fixed, so that "
             "copying the gradient from $z_q$ to $\\hat{z}$ stays a fair approximation.", (commitment_check,)),
        Step(StepKind.RESULT, "commitment gradient on the encoder output", COMMITMENT_GRADIENT,
             (commitment_gradient, commitment_value),
             "Differentiate in $\\hat{z}$; the stopped code is a constant.", (commitment_check,)),
    ]


def difference_quotient_table(codes, point) -> Table:
    """Difference quotients of z_q with growing steps: zero until a step jumps into another cell."""
    rows = []
    for step in (Fraction(1, 100), Fraction(1, 10), Fraction(1, 2), Fraction(1), Fraction(2)):
        reached, largest = set(), Fraction(0)
        for axis in range(len(point)):
            ahead = exact_nearest(codes, shifted(point, axis, step))
            behind = exact_nearest(codes, shifted(point, axis, -step))
            reached |= {ahead, behind}
            largest = max([largest] + [abs(a - b) / (2 * step) for a, b in zip(codes[ahead], codes[behind])])
        rows.append((f"${sp.latex(sp.Rational(step.numerator, step.denominator))}$",
                     ", ".join(str(j) for j in sorted(reached)),
                     f"${sp.latex(sp.Rational(largest.numerator, largest.denominator))}$"))
    return Table("Central difference quotients of $z_q$ along the axes, step $h$",
                 ("$h$", "codes reached at $\\hat{z} \\pm h$ along each axis", "largest entry in absolute value"),
                 tuple(rows))


# ------------------------------------------------------------------- prose

ANSWER_TEXT = (
    "A discrete latent is an obstacle, and the reason has nothing to do with $s$. The encoder influences "
    "the distortion term only through $z$, and a discrete $z$ is a piecewise constant function of the "
    "encoder output: above, $z_q$ stays equal to one code on the whole cell around $\\hat{z}$ and jumps at "
    "the cell boundaries. Its Jacobian is the zero matrix wherever it exists, so the chain rule multiplies "
    "the decoder's gradient with respect to $z$, however large, by zero, and the encoder receives no "
    "gradient from $-\\ln P_\\Theta(s \\mid z)$. The signal $s$ enters only that decoder term, which comes "
    "after $z$ in the computation, so a continuous $s$ would not help, and a discrete $s$ with a continuous "
    "$z$, as in Problem 3, is no obstacle. VQ-VAE keeps the forward pass and changes the backward pass: the "
    "decoder still receives $z_q$, but through the straight-through code "
    "$\\hat{z} + \\operatorname{sg}(z_q - \\hat{z})$, whose Jacobian is the identity, the decoder's gradient "
    "with respect to $z_q$ is handed to $\\hat{z}$ unchanged. The codes, which this path does not reach, are "
    "trained by the codebook loss, a k-means step moving each chosen code towards the encoder outputs "
    "assigned to it, and the commitment loss keeps the encoder outputs close to their codes so that the "
    "copied gradient stays a sensible estimate.")


def key_note() -> Remark:
    return Remark("note", (
        "The official answer is right in substance: a discrete latent blocks back-propagation into the encoder "
        "whatever $s$ is, and VQ-VAE works around it with straight-through gradients and a k-means-like loss. "
        "The sheet adds two computed facts. The zero that stops learning is the Jacobian "
        "$\\partial z_q / \\partial \\hat{z}$, derived above as the zero matrix and confirmed by finite "
        "differences; the decoder's own gradient with respect to $z$, which the key writes as z.grad, is in "
        "general not zero, and it is exactly what the straight-through surrogate, with identity Jacobian, passes "
        "on to the encoder. The codebook and commitment gradients $2(e_k - \\hat{z})$ and "
        "$2\\beta(\\hat{z} - e_k)$ then train the codes and keep the encoder near them."))


# ------------------------------------------------------------- the exam's part

register_alias("4", "vq-gradient", "Is a discrete latent an obstacle to back-propagation?",
               codebook=DEFAULT_CODEBOOK, zhat=DEFAULT_ZHAT)
register_exam_problem(ExamProblem(
    4, "Discrete latents and VQ-VAE", 25,
    "Now both the signal $s$ and the latent $z$ are discrete. We make the latent discrete as VQ-VAE does: the "
    "encoder produces a continuous vector $\\hat{z}$, and $z$ is the nearest of a few code vectors $e_j$. The "
    "question is whether back-propagation can still reach the encoder through such a $z$, and if not, what "
    "VQ-VAE does about it.",
    ("4",)))
