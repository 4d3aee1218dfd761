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
from sympy.core.cache import cacheit

from .core import (Check, Derivation, Family, Figure, Notation, Param, Remark, Step,
                   StepKind, Table, compare, register, register_alias, rounded)
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


class RememberedLatex:
    """Mixin: printed by the printer's own method for the class, once per object and printer settings.
    Equal SymPy objects print alike, and these recur: the loss gradients of each code index in every
    variant, the conditions of a quantiser in each of its rows."""

    def _latex(self, printer, **kwargs):
        for cls in type(self).__mro__:
            method = getattr(printer, "_print_" + cls.__name__, None)
            if method is not None:
                break
        if kwargs:
            return method(self, **kwargs)
        key = (self, type(printer), repr(printer._settings))
        if key not in _PRINTED:
            if len(_PRINTED) > 4096:
                _PRINTED.clear()
            _PRINTED[key] = method(self)
        return _PRINTED[key]


_PRINTED: dict = {}


class RememberedMatrix(RememberedLatex, sp.ImmutableMatrix):
    pass


class Conditions(RememberedLatex, sp.And):
    """The conjunction that selects one code. Its inequalities recur across codebooks (one per pair
    of codes), so while it is printed the printer remembers their LaTeX too."""

    def _latex(self, printer, **kwargs):
        if "_print_Relational" in vars(printer):  # already remembering
            return super()._latex(printer, **kwargs)
        plain = printer._print_Relational
        settings = repr(printer._settings)

        def remembered(relation):
            key = (relation, type(printer), settings)
            if key not in _PRINTED:
                _PRINTED[key] = plain(relation)
            return _PRINTED[key]
        printer._print_Relational = remembered  # this printer object only, for this call
        try:
            return super()._latex(printer, **kwargs)
        finally:
            del printer._print_Relational


class ShownMatrix(RememberedLatex, sp.ImmutableMatrix):
    """An immutable matrix whose str() fits on one line: Matrix([[0, 0], [0, 0]])."""

    def _sympystr(self, printer):
        return "Matrix(" + printer._print(self.tolist()) + ")"


@cacheit
def forward(expr):
    """The forward-pass value: every sg(x) replaced by x."""
    return expr.replace(StopGradient, lambda argument: argument)


@functools.lru_cache(maxsize=16)
def component_symbols(dim: int) -> tuple[Notation, ...]:
    return tuple(Notation(f"zhat{i}", rf"\hat{{z}}_{{{i}}}", real=True) for i in range(1, dim + 1))


@functools.lru_cache(maxsize=64)
def code_symbols(k: int, dim: int) -> tuple[Notation, ...]:
    return tuple(Notation(f"e{k}_{i}", rf"e_{{{k},{i}}}", real=True) for i in range(1, dim + 1))


def shown(matrix) -> ShownMatrix:
    """A ShownMatrix copy (ImmutableMatrix returns an immutable argument unchanged, so copy its rows)."""
    return ShownMatrix(sp.Matrix(matrix).tolist())


def tex(value) -> str:
    """sp.latex of a number or a tuple of numbers, remembered: variants keep meeting the same ones."""
    return _tex(_typed(value))


def _typed(value):
    """A cache key that tells apart values SymPy calls equal but prints differently (2 and 2.0)."""
    if isinstance(value, tuple):
        return (tuple, tuple(_typed(item) for item in value))
    return (type(value), value)


@functools.lru_cache(maxsize=4096)
def _tex(key) -> str:
    kind, value = key
    return sp.latex(tuple(item for _, item in value) if kind is tuple else value)


def column(values) -> ShownMatrix:
    return ShownMatrix([[value] for value in values])


# ------------------------------------------------- independent numeric paths
# Python fractions and floats only: no SymPy, so they cannot share a SymPy mistake.

def as_fractions(values) -> list[Fraction]:
    return [as_fraction(v) for v in values]


def as_fraction(value) -> Fraction:
    if isinstance(value, Fraction):
        return value
    if not isinstance(value, sp.Rational):
        value = sp.Rational(value)
    return Fraction(int(value.p), int(value.q))


def exact_squared_distances(codes: list[list[Fraction]], point: list[Fraction]) -> list[Fraction]:
    return [sum(((x - c) ** 2 for x, c in zip(point, code)), Fraction(0)) for code in codes]


def exact_nearest(codes: list[list[Fraction]], point: list[Fraction]) -> int:
    """Brute force: the smallest (distance, index) pair, so ties go to the lowest index."""
    return nearest_and_distance(codes, point)[0]


def nearest_and_distance(codes: list[list[Fraction]], point: list[Fraction]) -> tuple[int, Fraction]:
    """The brute-force nearest code and its exact squared distance. Exact in integers: every
    coordinate times the common denominator D (all squared distances scale by D^2, order kept);
    Fraction arithmetic would normalise after every operation."""
    scale = math.lcm(*[x.denominator for x in point], *[c.denominator for code in codes for c in code])
    at = [x.numerator * (scale // x.denominator) for x in point]
    best, best_j = None, 0
    for j, code in enumerate(codes):
        distance = 0
        for x, c in zip(at, code):
            gap = x - c.numerator * (scale // c.denominator)
            distance += gap * gap
        if best is None or distance < best:
            best, best_j = distance, j
    return best_j, Fraction(best, scale * scale)


def float_squared_distances(codes, point) -> list[float]:
    # float() of a Fraction is correctly rounded, as is SymPy's float() of a Rational, and cheaper
    point_f = [float(x) for x in as_fractions(point)]
    return [math.fsum((x - float(c)) ** 2 for x, c in zip(point_f, as_fractions(code))) for code in codes]


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


def _common_denominator(codes, point) -> int:
    return math.lcm(*[x.denominator for x in point], *[c.denominator for code in codes for c in code])


def _integers(rows, scale: int) -> list[list[int]]:
    """Rows of Fractions times scale, a multiple of every denominator."""
    return [[x.numerator * (scale // x.denominator) for x in row] for row in rows]


def _nearest_index(rows: list[list[int]], at: list[int]) -> int:
    """Brute force over integer coordinates: the lowest index among the nearest rows."""
    best, best_j = None, 0
    for j, row in enumerate(rows):
        distance = sum((x - c) * (x - c) for x, c in zip(at, row))
        if best is None or distance < best:
            best, best_j = distance, j
    return best_j


def _integer_distances(codes, point, scale: int) -> list[int]:
    """Squared distances from point to every code, times scale^2."""
    at = _integers([point], scale)[0]
    return [sum((x - c) * (x - c) for x, c in zip(at, row)) for row in _integers(codes, scale)]


def evaluated(matrix, values: dict) -> ShownMatrix:
    """A polynomial matrix at exact numbers (symbols -> Fractions), entry by entry, as SymPy numbers."""
    return ShownMatrix([[sp.Rational(value.numerator, value.denominator)
                         for value in (exact_evaluator(entry)(values) for entry in row)]
                        for row in matrix.tolist()])


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
    evaluate = exact_evaluator(expanded_distance(dim))
    zhat_entries, code_entries = distance_entries(dim)
    at_zhat = dict(zip(zhat_entries, as_fractions(zhat)))
    values = [evaluate({**at_zhat, **dict(zip(code_entries, as_fractions(code)))}) for code in codebook]
    return [sp.Rational(value.numerator, value.denominator) for value in values]


@functools.lru_cache(maxsize=16)
def distance_entries(dim: int) -> tuple:
    """The indexed zhat[i] and e[j, i] of the displayed sum, the very objects in it (quicker dict keys)."""
    entries = {entry: entry for entry in expanded_distance(dim).atoms(sp.Indexed)}
    return (tuple(entries[ZHAT_BASE[i + 1]] for i in range(dim)),
            tuple(entries[CODE_BASE[j_index, i + 1]] for i in range(dim)))


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
             f"The smallest squared distance is ${tex(distances[k])}$, reached by code ${k}$." + tie_text,
             (check_minimum(codebook, zhat, k), check_tie_rule(codebook, zhat, k))),
        Step(StepKind.SUBSTITUTION, "quantised code", QUANTISED,
             (Notation(f"e_{k}", f"e_{{{k}}}"), column(codebook[k])),
             "The latent passed to the decoder is the chosen code itself.",
             (check_quantised(codebook, zhat, codebook[k]),)),
    ]
    return steps, distances, k


def codebook_table(codebook, distances, k: int) -> Table:
    rows = tuple((f"${j}$", f"${tex(tuple(code))}$", f"${tex(distances[j])}$",
                  "yes" if j == k else "")
                 for j, code in enumerate(codebook))
    return Table("Codes and their squared distances to the encoder output",
                 ("$j$", "$e_j$", "$d_j(\\hat{z})$", "chosen"), rows)


def vector_text(values) -> str:
    return tex(tuple(values)) if len(values) > 1 else tex(values[0])


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

    # The clipping runs on integers: coordinates times the codes' common denominator, as homogeneous
    # (x, y, w) triples (exact like Fractions, without normalising after every operation).
    unit = math.lcm(*[c.denominator for code in codes for c in code])
    integral = [[int(c * unit) for c in code] for code in codes]
    corners_box = [(int(x * unit), int(y * unit), 1) for x, y in box]

    def place_homogeneous(point):
        # float(Fraction(x, w * unit) * scale) as one correctly rounded integer division
        x, y, w = point
        below = w * unit * scale.denominator
        return f"({x * scale.numerator / below:.4f},{y * scale.numerator / below:.4f})"

    cells = []
    for j, code in enumerate(integral):
        if any(integral[earlier] == code for earlier in range(j)):
            continue  # a repeated code never wins: the earlier copy takes its whole cell
        polygon = corners_box
        for other in integral:
            if other != code:
                normal = (2 * (other[0] - code[0]), 2 * (other[1] - code[1]))
                bound = other[0] ** 2 + other[1] ** 2 - code[0] ** 2 - code[1] ** 2
                polygon = clip_half_plane(polygon, normal, bound)
        if len(polygon) >= 3:
            corners = [place_homogeneous(p) for index, p in enumerate(polygon) if p != polygon[index - 1]]
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
    """Sutherland-Hodgman: the part of a convex polygon with normal . p <= bound, exactly. Integer
    normal and bound; corners (x, y, w) stand for (x/w, y/w) with w > 0 in lowest terms, so equal
    points have equal triples."""
    def excess(p):  # w (normal . p/w - bound): the sign of normal . p - bound
        return normal[0] * p[0] + normal[1] * p[1] - bound * p[2]

    def crossing(p, q, at_p, at_q):
        # p + t (q - p) with t = value_p / (value_p - value_q), cleared of denominators
        x, y, w = at_p * q[0] - at_q * p[0], at_p * q[1] - at_q * p[1], at_p * q[2] - at_q * p[2]
        if w < 0:
            x, y, w = -x, -y, -w
        common = math.gcd(x, y, w)
        return (x // common, y // common, w // common)

    values = [excess(p) for p in polygon]
    clipped = []
    for index, current in enumerate(polygon):
        previous = polygon[index - 1]
        now, before = values[index], values[index - 1]
        if now <= 0:
            if before > 0:
                clipped.append(crossing(previous, current, before, now))
            clipped.append(current)
        elif before <= 0:
            clipped.append(crossing(previous, current, before, now))
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
                f"the commitment loss with $\\beta = {tex(params['beta'])}$.")

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
        exact_zhat = dict(zip(symbols, point))
        answer = ShownMatrix([[chosen_case(case_list(entry), exact_zhat, decided).xreplace(at_zhat) for entry in row]
                              for row in jacobian])
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
    distances = [code_distance(tuple(code), dim) for code in codebook]
    conditions = [Conditions(*[closer_than(distances[j], distances[other], symbols)
                               for other in range(len(codebook)) if other != j], evaluate=False)
                  for j in range(len(codebook) - 1)] + [sp.true]
    rows = [sp.Piecewise(*[(code[axis], condition) for code, condition in zip(codebook, conditions)],
                         evaluate=False)
            for axis in range(dim)]
    built: dict = {}  # entries with the same cases are one (immutable) object: typically all zero

    def cases(pieces):
        if pieces not in built:
            built[pieces] = sp.Piecewise(*pieces, evaluate=False)
        return built[pieces]
    jacobian = [[cases(tuple((derivative(expr, symbol), condition) for expr, condition in row.args))
                 for symbol in symbols] for row in rows]
    return symbols, sp.ImmutableMatrix([[row] for row in rows]), jacobian


@functools.lru_cache(maxsize=1024)
def code_distance(code: tuple, dim: int):
    """||zhat - e||^2 expanded, less ||zhat||^2, which every code shares (codes recur across codebooks)."""
    symbols = component_symbols(dim)
    return sp.expand(sum((s - c) ** 2 for s, c in zip(symbols, code))) - sum(s ** 2 for s in symbols)


@cacheit
def derivative(expr, symbol):
    return sp.diff(expr, symbol)


@functools.lru_cache(maxsize=4096)
def closer_than(distance, other_distance, symbols):
    """d_j <= d_i as an unevaluated linear inequality in zhat, integer coefficients without common factor.
    Both distances come expanded and less the shared ||zhat||^2, so their difference is linear."""
    constant, linear = (distance - other_distance).as_coeff_Add()
    content, linear = linear.as_content_primitive()
    if linear == 0:
        return sp.true if constant <= 0 else sp.false
    if linear.could_extract_minus_sign():
        return sp.GreaterThan(-linear, constant / content, evaluate=False)
    return sp.LessThan(linear, -constant / content, evaluate=False)


def chosen_case(cases, point: dict, decided: dict):
    """The expression of the first case (from a case_list) whose condition holds at the point
    (symbols -> Fractions); `decided` remembers each condition's truth."""
    for expr, condition in cases:
        if condition not in decided:
            decided[condition] = holds(condition, point)
        if decided[condition]:
            return expr
    raise ValueError("no case of the quantiser holds")


def case_list(piecewise) -> list[tuple]:
    """The (expression, condition) cases in order; a single case collapses to its expression."""
    if not isinstance(piecewise, sp.Piecewise):
        return [(piecewise, sp.true)]
    return [pair.args for pair in piecewise.args]


def case_value(cases, point: dict, decided: dict) -> Fraction:
    """The displayed case (from a case_list) at a point given in Fractions, evaluated exactly in Fractions."""
    return exact_evaluator(chosen_case(cases, point, decided))(point)


def holds(condition, point: dict) -> bool:
    """A conjunction of linear inequalities at a rational point, side by side in exact Fractions
    (SymPy's own evaluation of relationals is slow)."""
    if condition is sp.true:
        return True
    parts = condition.args if isinstance(condition, sp.And) else (condition,)
    for part in parts:
        if part is sp.true:
            continue
        if part is sp.false:
            return False
        if not relation_evaluator(part)(point):
            return False
    return True


COMPARISONS = {"<=": lambda a, b: a <= b, "<": lambda a, b: a < b,
               ">=": lambda a, b: a >= b, ">": lambda a, b: a > b}


@functools.lru_cache(maxsize=4096)
def relation_evaluator(relation):
    """point -> truth of the displayed relation; compiled once, as relations recur across codebooks."""
    compare_sides = COMPARISONS[relation.rel_op]
    left, right = linear_form(relation.lhs), linear_form(relation.rhs)
    if left is None or right is None:
        left, right = exact_evaluator(relation.lhs), exact_evaluator(relation.rhs)
        return lambda point: compare_sides(left(point), right(point))
    # lhs - rhs = sum a_i x_i + a_0, times the common denominator of the a's (> 0): integers
    coefficients = {symbol: left[0].get(symbol, 0) - right[0].get(symbol, 0)
                    for symbol in set(left[0]) | set(right[0])}
    constant = left[1] - right[1]
    unit = math.lcm(constant.denominator, *[a.denominator for a in coefficients.values()])
    terms = [(symbol, int(a * unit)) for symbol, a in coefficients.items() if a]
    constant = int(constant * unit)

    def holds_at(point):
        # x_i = n_i / d_i: multiply through by D = lcm(d_i) > 0, the sign is kept
        values = [(a, point[symbol]) for symbol, a in terms]
        scale = math.lcm(*[value.denominator for _, value in values])
        total = constant * scale
        for a, value in values:
            total += a * value.numerator * (scale // value.denominator)
        return compare_sides(total, 0)
    return holds_at


def linear_form(expr):
    """({symbol: coefficient}, constant) in Fractions if expr is a linear polynomial with rational
    coefficients, else None."""
    coefficients, constant = {}, Fraction(0)
    for term, coefficient in expr.as_coefficients_dict().items():
        if not coefficient.is_Rational:
            return None
        value = Fraction(int(coefficient.p), int(coefficient.q))
        if term == 1:
            constant += value
        elif term.is_Symbol:
            coefficients[term] = coefficients.get(term, 0) + value
        else:
            return None
    return coefficients, constant


@functools.lru_cache(maxsize=4096)
def exact_evaluator(expr):
    """point -> the value of a polynomial SymPy expression in Python Fractions (no SymPy arithmetic)."""
    if expr.is_Rational:
        value = Fraction(int(expr.p), int(expr.q))
        return lambda point: value
    if expr.is_Symbol or isinstance(expr, sp.Indexed):
        return lambda point: point[expr]
    if expr.is_Pow and expr.exp.is_Integer and expr.exp >= 0:
        base, power = exact_evaluator(expr.base), int(expr.exp)
        return lambda point: base(point) ** power
    terms = [exact_evaluator(arg) for arg in expr.args]
    if expr.is_Add:
        return lambda point: sum((term(point) for term in terms), Fraction(0))
    if expr.is_Mul:
        return lambda point: math.prod((term(point) for term in terms), start=Fraction(1))
    raise TypeError(f"cannot evaluate {expr} exactly in fractions")


@functools.lru_cache(maxsize=16)
def sample_offsets(dim: int) -> tuple:
    """The seeded random offsets from zhat of the points where the displayed cases are checked."""
    rng = random.Random(20211)
    return tuple(tuple(Fraction(rng.randint(-40, 40), 8) for _ in range(dim)) for _ in range(SAMPLED_POINTS))


def check_quantiser_cases(codebook, zhat, symbols, quantiser) -> Check:
    """The displayed cases at zhat and at seeded random points vs the brute-force quantiser."""
    codes = [as_fractions(code) for code in codebook]
    at = as_fractions(zhat)
    points = [at] + [[offset + x for offset, x in zip(offsets, at)] for offsets in sample_offsets(len(at))]
    rows = [case_list(row) for row in quantiser]
    derived, brute = [], []
    for point in points:
        exact_point = dict(zip(symbols, point))
        decided: dict = {}
        derived += [case_value(row, exact_point, decided) for row in rows]
        brute += codes[exact_nearest(codes, point)]
    return compare(f"displayed cases vs brute force at zhat and {SAMPLED_POINTS} random points", derived,
                   brute, how="brute force")


def cell_radius(codebook, distances, k: int):
    """rho = min over j of the distance from zhat to the hyperplane bisecting e_k and e_j;
    returns rho, the j reaching it, and every candidate distance in code order."""
    candidates, sizes = {}, {}
    for j, code in enumerate(codebook):
        if j != k:
            gap = sum(((a - b) ** 2 for a, b in zip(code, codebook[k])), sp.Integer(0))
            candidates[j], sizes[j] = plane_distance(distances[j] - distances[k], gap)
    rival = min(candidates, key=lambda j: (sizes[j], j))
    return candidates[rival], rival, list(candidates.values())


@functools.lru_cache(maxsize=4096)
def plane_distance(excess, squared_gap):
    """excess / (2 sqrt(squared_gap)) with a rational denominator, and its value to 30 digits
    (the same numbers recur across variants)."""
    distance = excess * unit_plane_distance(squared_gap)
    return distance, sp.N(distance, 30)


@functools.lru_cache(maxsize=1024)
def unit_plane_distance(squared_gap):
    """1 / (2 sqrt(squared_gap)) with the denominator rationalised; a rational excess times it stays so."""
    return sp.radsimp(1 / (2 * sp.sqrt(squared_gap)))


@functools.lru_cache(maxsize=16)
def sample_directions(dim: int) -> tuple:
    """The seeded random directions of the cell-radius check."""
    rng = random.Random(4231)
    return tuple(tuple(rng.randint(-1000, 1000) for _ in range(dim)) for _ in range(SAMPLED_DIRECTIONS))


def check_cell_radius(codes, point, k: int, radius, rival: int) -> Check:
    """Points 0.999 rho away (along every boundary normal and random directions) keep code k;
    the point 1.001 rho towards the nearest boundary does not."""
    rho = float(sp.N(radius, 30))
    # Exact, in integers: a direction is an integer vector over a denominator, so is every moved point.
    unit = _common_denominator(codes, point)
    at, integral = _integers([point], unit)[0], _integers(codes, unit)
    directions = [([c - e for c, e in zip(row, integral[k])], unit) for j, row in enumerate(integral) if j != k]
    directions += [(list(direction), 1) for direction in sample_directions(len(point))]

    def nearest_moved(direction, denominator, factor):
        length = math.sqrt(float(Fraction(sum(x * x for x in direction), denominator * denominator))) or 1.0
        scale = Fraction(factor * rho / length)
        # zhat + scale * direction / denominator, over the common denominator unit * q * denominator
        p, q = scale.numerator, scale.denominator
        moved = [x * q * denominator + p * d * unit for x, d in zip(at, direction)]
        return _nearest_index([[c * q * denominator for c in row] for row in integral], moved)

    kept = all(nearest_moved(direction, denominator, 0.999) == k for direction, denominator in directions)
    toward = [c - e for c, e in zip(integral[rival], integral[k])]
    left = nearest_moved(toward, unit, 1.001) != k
    return Check("cell radius: code kept at 0.999 rho, lost at 1.001 rho", kept and left,
                 f"rho = {rho:.12g}; {len(directions)} directions at 0.999 rho keep code {k}: {kept}; "
                 f"1.001 rho towards code {rival} leaves the cell: {left}")


@cacheit
def straight_through(code: tuple, dim: int):
    """zhat + sg(e_k - zhat) and its Jacobian by SymPy (sympy's cache: cleared with SymPy's own).
    The Jacobian is taken once per dimension, for symbolic code entries: it does not depend on them."""
    symbols = component_symbols(dim)
    straight = sp.ImmutableMatrix(symbols) + sp.ImmutableMatrix([StopGradient(c - s) for c, s in zip(code, symbols)])
    return straight, straight_through_jacobian(dim)


@cacheit
def straight_through_jacobian(dim: int) -> ShownMatrix:
    symbols = component_symbols(dim)
    straight = sp.ImmutableMatrix(symbols) + sp.ImmutableMatrix([StopGradient(c - s) for c, s in
                                                                 zip(code_symbols("k", dim), symbols)])
    return shown(straight.jacobian(symbols))


def straight_through_steps(codes, point, k: int, symbols, code):
    straight, jacobian = straight_through(tuple(code), len(symbols))
    forward_value = forward(straight)
    forward_check = compare("straight-through forward pass vs the brute-force nearest code",
                            list(forward_value.xreplace(dict(zip(symbols, [sp.Rational(x.numerator, x.denominator)
                                                                            for x in point])))),
                            [float(x) for x in codes[exact_nearest(codes, point)]], how="brute force")
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


@cacheit
def vq_losses(k: int, dim: int):
    """The codebook and commitment losses of code k and their gradients, by SymPy. For k > 0 the
    forms of code 0 with e_0 renamed e_k: new symbols make SymPy's differentiation costly."""
    symbols, chosen = component_symbols(dim), code_symbols(k, dim)
    if k:
        renamed = dict(zip(code_symbols(0, dim), chosen))
        return tuple(form.xreplace(renamed) for form in vq_losses(0, dim))
    codebook_loss = sum((StopGradient(s) - e) ** 2 for s, e in zip(symbols, chosen))
    codebook_gradient = RememberedMatrix([sp.expand(sp.diff(codebook_loss, e)) for e in chosen])
    commitment_loss = BETA * sum((s - StopGradient(e)) ** 2 for s, e in zip(symbols, chosen))
    commitment_gradient = RememberedMatrix([sp.expand(sp.diff(commitment_loss, s)) for s in symbols])
    return codebook_loss, codebook_gradient, commitment_loss, commitment_gradient


def loss_steps(codes, point, k: int, beta, symbols, code, zhat, zhat_step: Fraction):
    chosen = code_symbols(k, len(symbols))
    beta_f = Fraction(int(beta.p), int(beta.q))
    values = {**dict(zip(symbols, point)), **dict(zip(chosen, codes[k])), BETA: beta_f}
    codebook_loss, codebook_gradient, commitment_loss, commitment_gradient = vq_losses(k, len(symbols))
    codebook_value = evaluated(forward(codebook_gradient), values)
    commitment_value = evaluated(forward(commitment_gradient), values)
    # The brute-force losses in integers: everything times a common denominator S, so squared
    # distances scale by S^2 (exact, like Fractions, without normalising after every operation).
    unit = _common_denominator(codes, point)
    distances = _integer_distances(codes, point, unit)
    gap = Fraction(min(d - distances[k] for j, d in enumerate(distances) if j != k), unit * unit)
    at, rows = _integers([point], unit)[0], _integers(codes, unit)
    reach = Fraction(max(abs(x - c) for row in rows for x, c in zip(at, row)), unit)
    code_step = min(FD_STEP, gap / (4 * (reach + 1)))

    scale = math.lcm(unit, code_step.denominator)
    at, rows, h = _integers([point], scale)[0], _integers(codes, scale), int(code_step * scale)
    base = _integer_distances(codes, point, scale)
    by_code = []
    for r, row in enumerate(rows):
        others = min(base[:r] + base[r + 1:])
        for axis in range(len(point)):
            offset = at[axis] - row[axis]
            # the nearest code re-chosen after moving entry (r, axis) by +h and by -h
            ahead, behind = (min(others, base[r] - offset ** 2 + (offset - move) ** 2) for move in (h, -h))
            by_code.append(Fraction(ahead - behind, 2 * h * scale))
    derived_by_code = [float(codebook_value[axis]) if row == k else 0.0
                       for row in range(len(codes)) for axis in range(len(point))]
    codebook_check = compare(f"finite differences over every code entry, nearest code re-chosen, "
                             f"h={float(code_step):.3g}", derived_by_code, by_code, how="finite differences")

    scale = math.lcm(unit, zhat_step.denominator)
    at, rows, h = _integers([point], scale)[0], _integers(codes, scale), int(zhat_step * scale)
    base = _integer_distances(codes, point, scale)
    by_zhat = []
    for axis in range(len(point)):
        ahead, behind = (min(d - (at[axis] - row[axis]) ** 2 + (at[axis] + move - row[axis]) ** 2
                             for d, row in zip(base, rows)) for move in (h, -h))
        by_zhat.append(beta_f * Fraction(ahead - behind, 2 * h * scale))
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
    unit = _common_denominator(codes, point)
    for step in (Fraction(1, 100), Fraction(1, 10), Fraction(1, 2), Fraction(1), Fraction(2)):
        # in integers: coordinates times a common denominator of the codes, zhat and the step
        scale = math.lcm(unit, step.denominator)
        at, integral, h = _integers([point], scale)[0], _integers(codes, scale), int(step * scale)
        reached, largest = set(), 0
        for axis in range(len(point)):
            ahead = _nearest_index(integral, [x + h if i == axis else x for i, x in enumerate(at)])
            behind = _nearest_index(integral, [x - h if i == axis else x for i, x in enumerate(at)])
            reached |= {ahead, behind}
            largest = max([largest] + [abs(a - b) for a, b in zip(integral[ahead], integral[behind])])
        largest = Fraction(largest, scale) / (2 * step)
        rows.append((f"${tex(sp.Rational(step.numerator, step.denominator))}$",
                     ", ".join(str(j) for j in sorted(reached)),
                     f"${tex(sp.Rational(largest.numerator, largest.denominator))}$"))
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


# ------------------------------------------------------------- the seed alias

register_alias("4", "vq-gradient", "Is a discrete latent an obstacle to back-propagation?",
               codebook=DEFAULT_CODEBOOK, zhat=DEFAULT_ZHAT)
