"""Problem 2: a bigram language model as a GAN generator, sampled by the inverse CDF.

The generator maps uniform noise eps in [0, 1] to a word through the cumulative
sums C_i = sum_{j<=i} P[j]: word i is the unique i with C_{i-1} <= eps < C_i
(half-open intervals), eps = 1 gives the last word of positive probability, and a
word of probability zero has an empty interval, so it is never produced.

Families:
  gan-first-word  the first word from P                               (2a)
  gan-next-word   the next word from row Q[w] of the transition table (2b)
  gan-string      a whole string, one noise value per position
  gan-gradient    d(word)/dP = 0: the sampled word is piecewise constant in P (2c)

Every derived sampler is a SymPy Piecewise; the checks run it against a direct
scan of the probabilities in exact fractions, against seeded uniform sampling,
and (for the gradient) against exact finite differences.
"""
from __future__ import annotations

import dataclasses
import functools
import math
import random
from fractions import Fraction

import sympy as sp

from .core import (Check, Derivation, Family, Figure, Notation, Param, Remark, Step,
                   StepKind, Table, compare, numeric_value, register, register_alias,)
from .values import ParameterError, check_probabilities, parse_int, parse_list, parse_matrix, parse_number

MAX_WORDS = 26           # vocabulary size accepted (the checks loop over words and rows)
MAX_POSITIONS = 200      # string length accepted by gan-string
SAMPLE_SEED = 31230      # fixed seed of every sampling check
SAMPLE_DRAWS = 20_000    # uniform draws per sampling check
SAMPLE_SIGMAS = 5        # allowed deviation, in standard errors
SAMPLED_PREFIX = 6       # gan-string: positions covered by the sampling check
GRID = 40                # exact grid eps = k/GRID for the sampler checks

EPS = sp.Symbol("epsilon")
EPS_T = sp.Symbol("epsilon_t")
H = sp.Symbol("h", positive=True)
i_, j_, k_ = sp.symbols("i j k", integer=True, nonnegative=True)
P_BASE = sp.IndexedBase("P")
Q_BASE = sp.IndexedBase("Q")
W_T = sp.Symbol("w_t", integer=True, nonnegative=True)
NEXT_WORD = Notation("w_{t+1}", r"w_{t+1}")
EPS_NEXT = Notation("epsilon_{t+1}", r"\epsilon_{t+1}")  # gan-string: one noise value per position
LOSS = Notation("L", r"\mathcal{L}")


class UnitStep(sp.Function):
    """The right-continuous step H(x): 1 for x >= 0, 0 for x < 0 (so H(0) = 1).

    H(0) = 1 is what makes the intervals half-open: at eps = C_i the count of
    passed boundaries already includes C_i.
    """

    nargs = 1

    @classmethod
    def eval(cls, x):
        if x.is_extended_nonnegative:
            return sp.Integer(1)
        if x.is_extended_negative:
            return sp.Integer(0)
        return None

    def fdiff(self, argindex=1):
        return sp.DiracDelta(self.args[0])

    def _latex(self, printer, exp=None):
        shown = r"H\left(" + printer._print(self.args[0]) + r"\right)"
        return shown if exp is None else "{" + shown + "}^{" + exp + "}"


# ------------------------------------------------------------------ parameters

def _fraction(value) -> Fraction:
    value = sp.Rational(value)
    return Fraction(int(value.p), int(value.q))


@functools.lru_cache(maxsize=4096)
def _fractions(probs: tuple) -> tuple:
    return tuple(_fraction(p) for p in probs)


@functools.lru_cache(maxsize=8192)
def _tex_cached(expr) -> str:
    return sp.latex(expr)


def tex_matrix(rows) -> str:
    """SymPy's LaTeX layout of a matrix, assembled from the (remembered) LaTeX of its entries."""
    body = r"\\".join(" & ".join(tex(value) for value in row) for row in rows)
    return r"\left[\begin{matrix}" + body + r"\end{matrix}\right]"


def tex(expr) -> str:
    """sympy.latex, remembered: variants keep meeting the same small fractions and intervals."""
    try:
        return _tex_cached(expr)
    except TypeError:  # unhashable
        return sp.latex(expr)


def parse_distribution(text: str, name: str) -> list:
    values = parse_list(text, name)
    if len(values) > MAX_WORDS:
        raise ParameterError(name, f"has {len(values)} entries; at most {MAX_WORDS} words are allowed")
    check_probabilities(values, name)
    return values


def _check_unit(value, name: str, where: str = "") -> None:
    if value < 0 or value > 1:
        raise ParameterError(name, f"{where}{value} is outside [0, 1]; the noise is uniform on [0, 1]")


def parse_noise(text: str, name: str):
    value = parse_number(text, name)
    _check_unit(value, name)
    return value


def parse_noise_list(text: str, name: str) -> list:
    raw = text.strip()
    if raw in ("", "[]"):
        raise ParameterError(name, "empty list; give one noise value in [0, 1] per position, e.g. 1/4,3/5")
    values = parse_list(raw, name)
    if len(values) > MAX_POSITIONS:
        raise ParameterError(name, f"has {len(values)} values; at most {MAX_POSITIONS} positions are allowed")
    for position, value in enumerate(values, start=1):
        _check_unit(value, name, f"position {position}: ")
    return values


def parse_transitions(text: str, name: str) -> list:
    rows = parse_matrix(text, name)
    size, width = len(rows), len(rows[0])
    if size != width:
        raise ParameterError(name, f"has {size} rows of {width} entries; Q must be square, one row "
                                   "and one column per word")
    if size > MAX_WORDS:
        raise ParameterError(name, f"has {size} words; at most {MAX_WORDS} are allowed")
    for index, row in enumerate(rows):
        try:
            check_probabilities(row, name)
        except ParameterError as error:
            raise ParameterError(name, f"row {index} is not a distribution: {error.message}") from None
    return rows


def _distribution_param(name: str, default: str) -> Param:
    return Param(name, parse_distribution, default,
                 "probabilities of the words 0..I-1, comma-separated, >= 0, summing to 1")


EPS_PARAM = Param("eps", parse_noise, "3/5", "the noise value, a number in [0, 1]")


# ------------------------------------------------- the sampler and its checks

def cumulative_sums(probs) -> tuple:
    total, sums = sp.Integer(0), []
    for p in probs:
        total += p
        sums.append(total)
    return tuple(sums)


def positive_words(probs) -> list[int]:
    return [index for index, p in enumerate(probs) if p > 0]


@dataclasses.dataclass(frozen=True)
class Sampler:
    """The derived inverse-CDF sampler of one distribution."""

    probs: tuple
    cumulative: tuple
    intervals: tuple      # SymPy intervals A_i (EmptySet for a zero-probability word)
    piecewise: sp.Piecewise
    symbol: sp.Symbol

    @functools.cached_property
    def table(self) -> list[tuple]:
        """The Piecewise read back as (word, low, high, left_open, right_open) in exact fractions."""
        rows = []
        for expr, condition in self.piecewise.args:
            if condition == sp.true:
                rows.append((int(expr), Fraction(0), Fraction(1), False, False))
                continue
            if not isinstance(condition, sp.Contains) or condition.args[0] != self.symbol:
                raise TypeError(f"unexpected sampler condition {condition}")
            interval = condition.args[1]
            if interval is sp.S.EmptySet:
                continue
            rows.append((int(expr), _fraction(interval.start), _fraction(interval.end),
                         bool(interval.left_open), bool(interval.right_open)))
        return rows

    def word(self, eps) -> int:
        """Evaluate the derived Piecewise exactly (first matching branch, as SymPy does)."""
        eps = _fraction(eps) if not isinstance(eps, Fraction) else eps
        for word, low, high, left_open, right_open in self.table:
            above = eps > low if left_open else eps >= low
            below = eps < high if right_open else eps <= high
            if above and below:
                return word
        raise ValueError(f"eps = {eps} is outside every branch of the sampler")

    def words_at(self, scaled, unit: int) -> list[int]:
        """word() at the noises scaled[k] / unit, in integers: the same comparisons, a common denominator."""
        common = math.lcm(unit, *[end.denominator for _, low, high, _, _ in self.table for end in (low, high)])
        rows = [(word, low.numerator * (common // low.denominator), high.numerator * (common // high.denominator),
                 left_open, right_open) for word, low, high, left_open, right_open in self.table]
        words = []
        for point in scaled:
            at = point * (common // unit)
            for word, low, high, left_open, right_open in rows:
                if (at > low if left_open else at >= low) and (at < high if right_open else at <= high):
                    words.append(word)
                    break
            else:
                raise ValueError(f"eps = {Fraction(point, unit)} is outside every branch of the sampler")
        return words

    def word_counts(self, ordered: "numpy.ndarray") -> list[int] | None:
        """How many of the sorted float draws each word gets, by binary search on the branch ends,
        with the same float comparisons as words(). None if two branches overlap in floats: then
        the first matching branch must be found draw by draw."""
        import numpy as np

        ranges = []
        for word, low, high, left_open, right_open in self.table:
            low_f, high_f = float(low), float(high)
            if low_f < high_f or (low_f == high_f and not left_open and not right_open):
                ranges.append((low_f, left_open, high_f, right_open, word))
        ranges.sort()
        for (_, _, end, end_open, _), (start, start_open, _, _, _) in zip(ranges, ranges[1:]):
            if end > start or (end == start and not end_open and not start_open):
                return None
        counts = [0] * len(self.probs)
        for low_f, left_open, high_f, right_open, word in ranges:
            first = int(np.searchsorted(ordered, low_f, side="right" if left_open else "left"))
            stop = int(np.searchsorted(ordered, high_f, side="left" if right_open else "right"))
            if 0 <= word < len(counts):
                counts[word] += max(stop - first, 0)
            elif stop > first:
                return None  # a word outside the vocabulary: leave it to words()
        return counts

    def words(self, noise: "numpy.ndarray") -> "numpy.ndarray":
        """Evaluate the derived Piecewise on an array of floats, branch by branch."""
        import numpy as np  # imported on first use: the CLI starts faster without it

        result = np.full(noise.shape, -1, dtype=np.int64)
        for word, low, high, left_open, right_open in self.table:
            low_f, high_f = float(low), float(high)
            above = noise > low_f if left_open else noise >= low_f
            below = noise < high_f if right_open else noise <= high_f
            result[(result == -1) & above & below] = word
        return result


@functools.lru_cache(maxsize=512)
def build_sampler(probs: tuple, symbol: sp.Symbol) -> Sampler:
    """Half-open intervals [C_{i-1}, C_i) inside [0, 1]; the last positive word also takes eps = 1."""
    cumulative = cumulative_sums(probs)
    last = positive_words(probs)[-1]
    one = sp.Integer(1)

    def capped(value):  # min(value, 1), compared exactly in Fractions
        return one if _fraction(value) > 1 else value
    intervals = []
    for index in range(len(probs)):
        low = capped(cumulative[index - 1] if index else sp.Integer(0))
        if index == last:
            intervals.append(_interval(low, one, False))
        elif index > last or probs[index] == 0:
            intervals.append(sp.S.EmptySet)
        else:
            intervals.append(_interval(low, capped(cumulative[index]), True))
    pieces = [(sp.Integer(index), _contains(symbol, interval))
              for index, interval in enumerate(intervals) if interval is not sp.S.EmptySet]
    # Distinct words, disjoint non-empty intervals, undecided membership: SymPy's Piecewise evaluation
    # would find nothing to merge or drop, so skip it.
    undecided = all(isinstance(condition, sp.Contains) for _, condition in pieces)
    return Sampler(tuple(probs), cumulative, tuple(intervals), sp.Piecewise(*pieces, evaluate=not undecided), symbol)


@functools.lru_cache(maxsize=4096)
def _interval(low, high, right_open: bool):
    """[low, high) or [low, high]: the same few intervals recur across distributions."""
    return sp.Interval.Ropen(low, high) if right_open else sp.Interval(low, high)


@functools.lru_cache(maxsize=4096)
def _contains(symbol, interval):
    """eps in A. For a symbol without assumptions SymPy cannot decide membership of an interval (nor
    of {1}): A is [a, b) or [a, b] with a < b, numbers or the rule's sums, so evaluating would only
    return the same unevaluated Contains, slowly."""
    plain = isinstance(symbol, sp.Symbol) and not set(symbol.assumptions0) - {"commutative"}
    return sp.Contains(symbol, interval, evaluate=not plain)


def reference_word(probs, eps) -> int:
    """The contract's rule by a direct scan in exact fractions (independent of the Piecewise)."""
    eps = eps if isinstance(eps, Fraction) else _fraction(eps)
    if not isinstance(probs, tuple):  # lists: one-off moves of a distribution, not worth remembering
        return _scan_once([p if isinstance(p, Fraction) else _fraction(p) for p in probs], eps)
    totals, last_positive = _scan_table(probs)
    if eps == 1:
        return last_positive
    for running, index in totals:
        if eps < running:
            return index
    return last_positive


def _scan_once(values: list[Fraction], eps: Fraction) -> int:
    """The same scan in integers: everything times a common denominator."""
    scale = math.lcm(eps.denominator, *[p.denominator for p in values])
    ints = [p.numerator * (scale // p.denominator) for p in values]
    last_positive = max(index for index, p in enumerate(ints) if p > 0)
    if eps == 1:
        return last_positive
    noise, running = eps.numerator * (scale // eps.denominator), 0
    for index, p in enumerate(ints):
        running += p
        if p > 0 and noise < running:
            return index
    return last_positive


@functools.lru_cache(maxsize=4096)
def _scan_table(probs: tuple) -> tuple:
    """The running totals at the words of positive probability, and the last such word (per distribution)."""
    values = probs if all(isinstance(p, Fraction) for p in probs) else _fractions(probs)
    last_positive = max(index for index, p in enumerate(values) if p > 0)
    running, totals = Fraction(0), []
    for index, p in enumerate(values):
        running += p
        if p > 0:
            totals.append((running, index))
    return tuple(totals), last_positive


def boundary_points(probs) -> list[Fraction]:
    """eps = 0, every C_i inside [0, 1], and 1."""
    points = {Fraction(0), Fraction(1)}
    running = Fraction(0)
    for p in _fractions(tuple(probs)):
        running += p
        if running <= 1:
            points.add(running)
    return sorted(points)


def test_points(probs) -> list[Fraction]:
    """The boundary points and the midpoints between neighbouring ones."""
    ordered = boundary_points(probs)
    return sorted(set(ordered) | {(a + b) / 2 for a, b in zip(ordered, ordered[1:])})


@functools.lru_cache(maxsize=1024)
def probes(probs: tuple) -> tuple:
    """The probe noises (boundaries, midpoints, the grid) in order, and the directly scanned word at each.

    Computed in integers, every noise times a common denominator `unit`, which is also returned."""
    values = _fractions(probs)
    unit = math.lcm(2 * math.lcm(*[p.denominator for p in values]), GRID)
    # test_points(probs) in integers: 0, 1, every C_i <= 1, and the midpoints between neighbours
    boundaries, running = {0, unit}, 0
    for p in values:
        running += p.numerator * (unit // p.denominator)
        if running <= unit:
            boundaries.add(running)
    ordered = sorted(boundaries)
    scaled = sorted(set(ordered) | {(a + b) // 2 for a, b in zip(ordered, ordered[1:])}
                    | {k * (unit // GRID) for k in range(GRID + 1)})
    # the direct scan of reference_word, in the same integers
    totals, last_positive = _scan_table(probs)
    totals = [(running.numerator * (unit // running.denominator), index) for running, index in totals]
    direct = []
    for point in scaled:
        word = last_positive
        if point != unit:
            word = next((index for running, index in totals if point < running), last_positive)
        direct.append(word)
    return tuple(Fraction(point, unit) for point in scaled), tuple(direct), unit, tuple(scaled)


def check_cumulative(probs, cumulative, label: str) -> Check:
    return Check(f"cumulative sums of {label} by a running total in exact fractions",
                 *_cumulative_outcome(tuple(probs), tuple(cumulative)))


@functools.lru_cache(maxsize=1024)
def _cumulative_outcome(probs: tuple, cumulative: tuple) -> tuple[bool, str]:
    running, independent = Fraction(0), []
    for p in _fractions(tuple(probs)):
        running += p
        independent.append(running)
    exact = all(_fraction(c) == r for c, r in zip(cumulative, independent))
    near_one = abs(independent[-1] - 1) <= Fraction(1, 10**12)
    shown = ", ".join(str(r) for r in independent)
    return (bool(exact and near_one and len(cumulative) == len(independent)),
            f"derived {', '.join(str(c) for c in cumulative)}; running total {shown}; "
            f"last = 1{' within 1e-12' if independent[-1] != 1 else ''}")


def check_intervals(sampler: Sampler, label: str) -> Check:
    """Every probe noise lies in exactly one interval, the one of the directly scanned word."""
    points = probes(sampler.probs)[0]
    bad = _misplaced(sampler)
    return Check(f"intervals of {label} partition [0, 1] as the direct scan does",
                 not bad, "; ".join(bad[:3]) or f"each of {len(points)} probe points (boundaries, midpoints, "
                 f"a grid of {GRID + 1}) lies in exactly one interval, the scanned word's")


@functools.lru_cache(maxsize=1024)
def _misplaced(sampler: Sampler) -> tuple[str, ...]:
    """The probe points not in exactly the scanned word's interval (once per sampler)."""
    points, direct, unit, scaled = probes(sampler.probs)
    bounds = []
    for index, interval in enumerate(sampler.intervals):
        if interval is not sp.S.EmptySet:
            bounds.append((index, _fraction(interval.start), _fraction(interval.end),
                           bool(interval.left_open), bool(interval.right_open)))
    # in integers: points and interval ends times a common denominator
    common = math.lcm(unit, *[end.denominator for _, low, high, _, _ in bounds for end in (low, high)])
    scaled = [point * (common // unit) for point in scaled]
    bounds = [(index, low.numerator * (common // low.denominator), high.numerator * (common // high.denominator),
               left_open, right_open) for index, low, high, left_open, right_open in bounds]
    bad = []
    for point, at, expected in zip(points, scaled, direct):
        owners = [index for index, low, high, left_open, right_open in bounds
                  if (at > low if left_open else at >= low) and (at < high if right_open else at <= high)]
        if owners != [expected]:
            bad.append(f"eps={point}: intervals {owners}, direct scan {expected}")
    return tuple(bad)


def check_boundaries(sampler: Sampler, label: str) -> Check:
    passed, detail = _boundary_words(sampler)
    return Check(f"sampler of {label} at eps = 0, every C_i and 1 vs the direct scan", passed, detail)


@functools.lru_cache(maxsize=1024)
def _boundary_words(sampler: Sampler) -> tuple[bool, str]:
    points = boundary_points(sampler.probs)
    derived = [sampler.word(point) for point in points]
    direct = [reference_word(sampler.probs, point) for point in points]
    return derived == direct, f"eps = {', '.join(str(p) for p in points)}: derived {derived}, direct scan {direct}"


def check_grid(sampler: Sampler, label: str) -> Check:
    points = probes(sampler.probs)[0]
    wrong = _grid_disagreements(sampler)
    return Check(f"sampler of {label} on a grid of {GRID + 1} noise values and the midpoints",
                 not wrong, f"{len(points)} points agree with the direct scan" if not wrong
                 else f"disagrees at eps = {', '.join(wrong[:5])}")


@functools.lru_cache(maxsize=1024)
def _grid_disagreements(sampler: Sampler) -> tuple[str, ...]:
    points, direct, unit, scaled = probes(sampler.probs)
    derived = sampler.words_at(scaled, unit)
    return tuple(str(p) for p, a, b in zip(points, derived, direct) if a != b)


def check_zero_words(sampler: Sampler, label: str, frequencies) -> Check | None:
    zero = [index for index, p in enumerate(sampler.probs) if p == 0]
    if not zero:
        return None
    produced = sorted({sampler.word(point) for point in test_points(sampler.probs)}
                      | {index for index, f in enumerate(frequencies) if f > 0})
    hit = [index for index in zero if index in produced]
    return Check(f"zero-probability words of {label} are never produced", not hit,
                 f"zero-probability words {zero}; words produced at the test points and in the draws {produced}")


@functools.lru_cache(maxsize=8)
def uniform_noise(columns: int = 0) -> "numpy.ndarray":
    """The fixed-seed uniform draws of every sampling check (read-only)."""
    import numpy as np

    rng = np.random.default_rng(SAMPLE_SEED)
    draws = rng.random(SAMPLE_DRAWS) if columns == 0 else rng.random((SAMPLE_DRAWS, columns))
    draws.setflags(write=False)
    return draws


def sampling_frequencies(sampler: Sampler) -> list[float]:
    return list(_frequencies(sampler))


@functools.lru_cache(maxsize=1024)
def _frequencies(sampler: Sampler) -> tuple:
    counts = sampler.word_counts(sorted_noise())
    if counts is None:  # branches that overlap: evaluate them in order, draw by draw
        words = sampler.words(uniform_noise())
        if (words < 0).any():
            return (math.nan,) * len(sampler.probs)
        counts = [int((words == index).sum()) for index in range(len(sampler.probs))]
    elif sum(counts) < SAMPLE_DRAWS:  # some draw in no branch
        return (math.nan,) * len(sampler.probs)
    return tuple(float(c) / SAMPLE_DRAWS for c in counts)


@functools.lru_cache(maxsize=1)
def sorted_noise() -> "numpy.ndarray":
    """The draws of uniform_noise() in increasing order (read-only)."""
    import numpy as np

    draws = np.sort(uniform_noise())
    draws.setflags(write=False)
    return draws


def check_sampling(sampler: Sampler, label: str, frequencies) -> Check:
    deviations = []
    for f, p in zip(frequencies, sampler.probs):
        p = float(p)
        error = math.sqrt(max(p * (1 - p), 0.0) / SAMPLE_DRAWS)
        deviations.append(abs(f - p) / error if error > 0 else (0.0 if abs(f - p) < 1e-12 else math.inf))
    ok = all(math.isfinite(d) and d <= SAMPLE_SIGMAS for d in deviations)
    shown = ", ".join(f"{f:.4f}" for f in frequencies)
    target = ", ".join(f"{float(p):.4f}" for p in sampler.probs)
    worst = max(deviations) if deviations else 0.0
    return Check(f"{SAMPLE_DRAWS} seeded uniform draws through the sampler of {label}", ok,
                 f"seed {SAMPLE_SEED}: frequencies {shown} vs probabilities {target}; largest deviation "
                 f"{worst:.2f} standard errors (limit {SAMPLE_SIGMAS})")


def check_lengths(sampler: Sampler, lengths, label: str) -> Check:
    return Check(f"interval lengths of {label} equal the probabilities and sum to 1",
                 *_lengths_outcome(tuple(lengths), tuple(sampler.probs)))


@functools.lru_cache(maxsize=1024)
def _lengths_outcome(lengths: tuple, probs: tuple) -> tuple[bool, str]:
    ok_each = compare("interval lengths", lengths, probs, how="probabilities")
    total = sum(lengths, sp.Integer(0))
    return ok_each.passed and total == 1, ok_each.detail + f"; total length {total}"


@dataclasses.dataclass(frozen=True)
class Analysis:
    """The sampler of one distribution with every check that does not depend on eps."""

    sampler: Sampler
    lengths: tuple
    cumulative: Check
    intervals: Check
    boundaries: Check
    grid: Check
    sampling: Check
    lengths_check: Check
    zero_words: Check | None


@functools.lru_cache(maxsize=1024)
def analyse(probs: tuple, symbol: sp.Symbol, label: str) -> Analysis:
    """Computed once per distribution: variants keep meeting the same small distributions."""
    sampler = build_sampler(probs, symbol)
    frequencies = sampling_frequencies(sampler)
    lengths = tuple(interval.measure for interval in sampler.intervals)
    return Analysis(sampler, lengths,
                    check_cumulative(probs, sampler.cumulative, label),
                    check_intervals(sampler, label),
                    check_boundaries(sampler, label),
                    check_grid(sampler, label),
                    check_sampling(sampler, label, frequencies),
                    check_lengths(sampler, lengths, label),
                    check_zero_words(sampler, label, frequencies))


# ------------------------------------------------------------ shared steps

@dataclasses.dataclass(frozen=True)
class Context:
    """How one use of the sampler is named on the sheet."""

    label: str          # plain name for check names: "P" or "row 2 of Q"
    dist_latex: str     # LaTeX of the distribution: P or Q[2, :]
    term: sp.Expr       # its j-th entry, for the definition of C
    symbol: sp.Symbol   # the noise symbol
    head: str           # LaTeX of the sampler, e.g. \hat{w}(P, \epsilon)
    cumulative: str     # LaTeX name of the cumulative sums: C or D


def sampler_steps(probs, eps, ctx: Context):
    """Cumulative sums, intervals, the Piecewise, the interval lengths and the word at eps."""
    analysis = analyse(tuple(probs), ctx.symbol, ctx.label)
    sampler, lengths = analysis.sampler, analysis.lengths
    cumulative_check, interval_check = analysis.cumulative, analysis.intervals
    boundary_check, grid_check = analysis.boundaries, analysis.grid
    length_check, sampling_check, zero_check = analysis.lengths_check, analysis.sampling, analysis.zero_words

    c = ctx.cumulative
    size = len(probs)
    cumulative_name = Notation(f"{c}_i", f"{c}_i")
    names = Notation(f"({c}_0..)", r"\left(" + ", ".join(f"{c}_{{{i}}}" for i in range(size)) + r"\right)")
    interval_names = Notation("(A_0..)", r"\left(" + ", ".join(f"A_{{{i}}}" for i in range(size)) + r"\right)")
    length_names = Notation("(|A_0|..)", r"\left(" + ", ".join(f"|A_{{{i}}}|" for i in range(size)) + r"\right)")
    sampler_name = Notation("w_hat", ctx.head)
    zeros = [i for i, p in enumerate(probs) if p == 0]
    zero_text = ""
    if zeros:
        zero_text = (" A word of probability zero gets an empty interval, so it is never produced (here "
                     + ", ".join(f"${i}$" for i in zeros) + ").")
    steps = [
        Step(StepKind.DEFINITION, "cumulative sums", cumulative_name,
             (_running_sum(ctx.term),),
             f"${c}_i$ is the total probability of the words $0, \\dots, i$; "
             f"${c}_{{-1}} = 0$ and the last one is $1$.", (cumulative_check,)),
        Step(StepKind.COMPUTATION, "cumulative sums, evaluated", names, (tuple(sampler.cumulative),),
             f"Running totals of ${ctx.dist_latex} = {tex(tuple(probs))}$, in exact fractions.",
             (cumulative_check,)),
        Step(StepKind.COMPUTATION, "one interval per word", interval_names, (tuple(sampler.intervals),),
             f"Word $i$ owns $A_i = [{c}_{{i-1}}, {c}_i)$, closed on the left and open on the right, so "
             "the intervals do not overlap and cover $[0, 1]$; the point $\\epsilon = 1$ goes to the "
             "last word of positive probability." + zero_text, (interval_check,)),
        Step(StepKind.DEFINITION, "the sampler", sampler_name, (sampler.piecewise,),
             "The generator returns the word whose interval contains the noise; it is a deterministic "
             "function of the noise, constant on each interval.", (boundary_check, grid_check)),
        Step(StepKind.THEOREM, "each word has the right probability", length_names, (lengths,),
             "For uniform noise the probability of landing in an interval is its length, and "
             f"$|A_i| = {c}_i - {c}_{{i-1}}$ is exactly the probability of word $i$.",
             tuple(check for check in (length_check, sampling_check, zero_check) if check is not None)),
    ]
    word = sampler.word(eps)
    direct = reference_word(probs, eps)
    requested = Check(f"requested eps = {eps}: Piecewise vs direct scan", word == direct,
                      f"derived {word}, direct scan {direct}")
    value_name = Notation("w_hat(eps)", ctx.head.replace(tex(ctx.symbol), tex(eps)))
    steps.append(Step(StepKind.RESULT, "the word at the given noise", value_name, (sp.Integer(word),),
                      f"${tex(ctx.symbol)} = {tex(eps)}$ lies in $A_{{{word}}} = {tex(sampler.intervals[word])}$.",
                      (requested, boundary_check)))
    return steps, word, sampler


@functools.lru_cache(maxsize=64)
def _running_sum(term):
    return sp.Sum(term, (j_, 0, i_))


def cdf_figure(probs, eps, word: int, dist_latex: str, what: str) -> Figure:
    """Data for templates/figures/cdf.tex.j2: the CDF staircase, the noise line and the chosen word."""
    size = len(probs)
    unit, cumulative, steps, ticks = _cdf_parts(tuple(probs))
    words = [{"x": x, "next": following, "low": low, "high": high, "label": label, "chosen": index == word,
              "positive": positive} for index, (x, following, low, high, label, positive) in enumerate(steps)]
    ticks = [dict(tick) for tick in ticks]
    chosen_low = cumulative[word - 1] if word else sp.Integer(0)
    return Figure("cdf", f"The cumulative sums of ${dist_latex}$ as a staircase over the word index. "
                         f"The noise $\\epsilon = {tex(eps)}$ (dashed) meets the riser of word "
                         f"${word}$, whose interval is marked on the vertical axis; {what}.",
                  {"unit": f"{unit:.2f}", "words": words, "ticks": ticks,
                   "eps": f"{float(eps):.4f}", "eps_label": tex(eps), "word": word,
                   "word_x": f"{word:d}", "axis_x": "-0.6", "end_x": f"{size - 0.5:.2f}",
                   "chosen_low": f"{min(float(chosen_low), 1.0):.4f}",
                   "chosen_high": f"{min(float(cumulative[word]), 1.0):.4f}",
                   "distribution": dist_latex})


@functools.lru_cache(maxsize=1024)
def _cdf_parts(probs: tuple) -> tuple:
    """The figure's staircase and ticks, which depend on the distribution only."""
    size = len(probs)
    unit = min(1.2, 9.0 / max(size, 1))
    cumulative = cumulative_sums(probs)
    steps = []
    for index in range(size):
        low = cumulative[index - 1] if index else sp.Integer(0)
        high = cumulative[index]
        steps.append((f"{index:d}", f"{(index + 1 if index < size - 1 else size - 0.5):.2f}",
                      f"{min(float(low), 1.0):.4f}", f"{min(float(high), 1.0):.4f}", str(index),
                      bool(probs[index] > 0)))
    ticks, last = [], -1.0
    for value in sorted(set(min(c, sp.Integer(1)) for c in cumulative)):
        y = float(value)
        if y - last >= 0.06 or not ticks:
            ticks.append((("y", f"{y:.4f}"), ("label", tex(value))))
            last = y
    return unit, cumulative, tuple(steps), tuple(ticks)


def _first_word_context(symbol=EPS) -> Context:
    return Context("P", "P", P_BASE[j_], symbol, r"\hat{w}\left(P, " + tex(symbol) + r"\right)", "C")


def _row_context(w: int) -> Context:
    return Context(f"row {w} of Q", f"Q[{w}, :]", Q_BASE[w, j_], EPS_T,
                   r"\hat{w}\left(Q, " + str(w) + ", " + tex(EPS_T) + r"\right)", "D")


@functools.lru_cache(maxsize=4)
def _general_rule(noise: sp.Symbol = EPS_T):
    """w_{t+1} = j  iff  noise in [sum_{k<j} Q[w_t, k], sum_{k<=j} Q[w_t, k])."""
    low = sp.Sum(Q_BASE[W_T, k_], (k_, 0, j_ - 1))
    high = sp.Sum(Q_BASE[W_T, k_], (k_, 0, j_))
    return low, high, _contains(noise, sp.Interval.Ropen(low, high))


@functools.lru_cache(maxsize=4096)
def _rule_bounds(row: int, j: int) -> tuple:
    """The rule's two sums with w_t = row and j fixed, expanded by SymPy (structure only, cached)."""
    return tuple(bound.xreplace({W_T: row}) for bound in _expanded_rule_bounds(j))


@functools.lru_cache(maxsize=256)
def _expanded_rule_bounds(j: int) -> tuple:
    """The rule's two sums with j fixed, expanded by SymPy for a symbolic current word w_t."""
    low, high, _ = _general_rule()
    return (low.xreplace({j_: j}).doit(), high.xreplace({j_: j}).doit())


@functools.lru_cache(maxsize=2048)
def rule_intervals(row: int, entries: tuple) -> tuple:
    """The displayed rule's bounds for every j, expanded by SymPy and filled with this row's entries
    (exactly, in Fractions)."""
    values = {("Q", row, k): _fraction(entry) for k, entry in enumerate(entries)}
    return tuple(tuple(exact_value(bound, values) for bound in _rule_bounds(row, j)) for j in range(len(entries)))


def exact_value(expr, values: dict) -> Fraction:
    """A rational SymPy expression, steps H(x) allowed, at exact values (symbols, and indexed entries
    by (name, *indices), -> Fractions), in Python Fractions: what xreplace and SymPy's arithmetic would
    give, without building SymPy numbers."""
    return _evaluator(expr)(values)


@functools.lru_cache(maxsize=4096)
def _evaluator(expr):
    """exact_value compiled once per expression into nested closures."""
    if expr.is_Rational:
        value = Fraction(int(expr.p), int(expr.q))
        return lambda values: value
    if isinstance(expr, sp.Indexed):  # keyed by (name, *indices): SymPy's == on Indexed is slow
        key = (expr.base.label.name, *(int(index) for index in expr.indices))
        return lambda values: values[key]
    if expr.is_Symbol:
        return lambda values: values[expr]
    if expr.is_Pow and expr.exp.is_Integer:
        base, power = _evaluator(expr.base), int(expr.exp)
        return lambda values: base(values) ** power
    if isinstance(expr, UnitStep):
        argument = _evaluator(expr.args[0])
        return lambda values: Fraction(1 if argument(values) >= 0 else 0)
    if expr.is_Mul and expr.args[0] is sp.S.NegativeOne:  # -x, the commonest product here
        rest = _evaluator(expr.func(*expr.args[1:]))
        return lambda values: -rest(values)
    parts = [_evaluator(arg) for arg in expr.args]
    if expr.is_Add:
        first, others = parts[0], parts[1:]

        def total(values):
            result = first(values)
            for part in others:
                result += part(values)
            return result
        return total
    if expr.is_Mul:
        return lambda values: math.prod((part(values) for part in parts), start=Fraction(1))
    raise TypeError(f"cannot evaluate {expr} exactly in fractions")


def _rational(value: Fraction) -> sp.Rational:
    return sp.Rational(value.numerator, value.denominator)


def check_general_rule(matrix, row: int, eps) -> Check:
    """The displayed rule, expanded for this row, picks exactly one j: the directly scanned word.

    eps = 1 (and rounding slack above the last sum) falls outside every half-open
    interval; the convention then gives the last word of positive probability.
    """
    eps_f = _fraction(eps)
    matched = [j for j, (low, high) in enumerate(rule_intervals(row, tuple(matrix[row]))) if low <= eps_f < high]
    positive = positive_words(matrix[row])
    picked = matched[0] if len(matched) == 1 else (positive[-1] if not matched else None)
    if eps == 1:
        picked = positive[-1]
    direct = reference_word(matrix[row], eps)
    return Check(f"the rule with corrected indices, expanded for row {row} at eps = {eps}",
                 picked == direct and len(matched) <= 1,
                 f"intervals containing eps: j in {matched}; rule gives {picked}, direct scan {direct}")


# ------------------------------------------------------------------ families

class GanFamily(Family):
    numeric = True


def random_distribution(rng: random.Random, size: int) -> tuple[list, int]:
    """A distribution with every entry positive, all multiples of 1/d for a small d."""
    denominator = rng.choice([d for d in (4, 5, 10) if d >= size])
    cuts = sorted(rng.sample(range(1, denominator), size - 1))
    parts = [b - a for a, b in zip([0] + cuts, cuts + [denominator])]
    return [sp.Rational(part, denominator) for part in parts], denominator


def random_noise(rng: random.Random, denominator: int):
    """An odd multiple of 1/(2d): never on a boundary of a distribution in multiples of 1/d."""
    return sp.Rational(2 * rng.randrange(denominator) + 1, 2 * denominator)


def _text(values) -> str:
    return ",".join(str(v) for v in values)


def _matrix_text(rows) -> str:
    return ";".join(_text(row) for row in rows)


@register
class GanFirstWord(GanFamily):
    name = "gan-first-word"
    domain = "P: 1 to 26 probabilities >= 0 summing to 1; eps in [0, 1]; all read exactly"
    summary = "first word of a bigram GAN from uniform noise: inverse CDF with half-open intervals"
    params = (_distribution_param("P", "1/5,1/2,3/10"), EPS_PARAM)

    def question(self, params: dict) -> str:
        probs, eps = params["P"], params["eps"]
        return (f"The words are $0, \\dots, {len(probs) - 1}$ and the first word has distribution "
                f"$P = {tex(tuple(probs))}$. Give a deterministic function $\\hat{{w}}(P, \\epsilon)$ "
                "of one uniform noise value $\\epsilon \\in [0, 1]$ such that $\\hat{w}(P, \\epsilon) = i$ "
                f"with probability $P[i]$, and evaluate it at $\\epsilon = {tex(eps)}$.")

    def generate(self, rng: random.Random) -> dict[str, str]:
        probs, denominator = random_distribution(rng, rng.choice([3, 3, 4]))
        return {"P": _text(probs), "eps": str(random_noise(rng, denominator))}

    def derive(self, params: dict, problem: str | None = None) -> Derivation:
        probs, eps = params["P"], params["eps"]
        steps, word, sampler = sampler_steps(probs, eps, _first_word_context())
        remarks = list(first_word_remarks(tuple(probs)))
        table = interval_table(sampler, "P", "C")
        return Derivation(problem or self.name, self.name, self.params_json(params), self.question(params),
                          steps, sp.Integer(word), word, [steps[-1].checks[0]], remarks, [table],
                          cdf_figure(probs, eps, word, "P", "the word sampled is the one whose riser the line meets"))


@register
class GanNextWord(GanFamily):
    name = "gan-next-word"
    domain = "Q: a square table of 1 to 26 rows of probabilities; w a word; eps in [0, 1]; all read exactly"
    summary = "next word of a bigram GAN: inverse CDF of row Q[w] of the transition table"
    params = (
        Param("Q", parse_transitions, "1/2,1/4,1/4;1/3,1/3,1/3;0,1/2,1/2",
              "transition table, rows separated by ';', row i = P(next word | current word i)"),
        Param("w", lambda text, name: parse_int(text, name, minimum=0), "2", "the current word, 0-based"),
        Param("eps", parse_noise, "3/10", "the noise value, a number in [0, 1]"),
    )

    def validate(self, params: dict) -> None:
        size = len(params["Q"])
        if params["w"] >= size:
            raise ParameterError("w", f"word {params['w']} is outside the vocabulary 0..{size - 1}")

    def question(self, params: dict) -> str:
        matrix, w, eps = params["Q"], params["w"], params["eps"]
        return (f"The transition table of the bigram model is $Q = {tex_matrix(matrix)}$, with "
                "$Q[i, j]$ the probability that word $j$ follows word $i$. Give a deterministic function "
                "$\\hat{w}(Q, w_t, \\epsilon_t)$ of one uniform noise value that returns $j$ with probability "
                f"$Q[w_t, j]$, and evaluate it for the current word $w_t = {w}$ at "
                f"$\\epsilon_t = {tex(eps)}$.")

    def generate(self, rng: random.Random) -> dict[str, str]:
        size = rng.choice([3, 3, 4])
        rows, denominators = zip(*(random_distribution(rng, size) for _ in range(size)))
        w = rng.randrange(size)
        return {"Q": _matrix_text(rows), "w": str(w), "eps": str(random_noise(rng, denominators[w]))}

    def derive(self, params: dict, problem: str | None = None) -> Derivation:
        matrix, w, eps = params["Q"], params["w"], params["eps"]
        row = matrix[w]
        low, high, rule = _general_rule()
        rule_check = check_general_rule(matrix, w, eps)
        row_check = Check(f"row {w} of Q is a distribution", all(p >= 0 for p in row)
                          and abs(_fraction(sum(row, sp.Integer(0))) - 1) <= Fraction(1, 10**12),
                          f"entries {', '.join(str(p) for p in row)}, sum {sum(row, sp.Integer(0))}")
        ctx = _row_context(w)
        steps = [
            Step(StepKind.DEFINITION, "the next-word rule", sp.Eq(NEXT_WORD, j_), (rule,),
                 "Given the current word $w_t$, the next word is the index $j$ whose interval, built from "
                 "the running totals of row $w_t$ of $Q$, contains the noise.", (rule_check,),
                 relation=r"\iff"),
            Step(StepKind.SUBSTITUTION, "the row of the current word", Notation("Q[w,:]", ctx.dist_latex),
                 (tuple(row),), f"Only row $w_t = {w}$ of $Q$ matters; it is a distribution over the next word.",
                 (row_check,)),
        ]
        more, word, sampler = sampler_steps(row, eps, ctx)
        steps += more
        remarks = list(next_word_remarks(low, high, rule))
        table = interval_table(sampler, ctx.dist_latex, "D")
        return Derivation(problem or self.name, self.name, self.params_json(params), self.question(params),
                          steps, sp.Integer(word), word, [steps[-1].checks[0], rule_check], remarks, [table],
                          cdf_figure(row, eps, word, ctx.dist_latex,
                                     f"the current word is ${w}$, so the row ${ctx.dist_latex}$ is used"))


@register
class GanString(GanFamily):
    name = "gan-string"
    domain = "P, Q: 1 to 26 words; eps: 1 to 200 values in [0, 1]; all read exactly"
    numeric = False  # the answer is a list of words
    summary = "a whole string from the bigram GAN: first word from P, each next word from row Q[w_t]"
    params = (
        _distribution_param("P", "1/5,1/2,3/10"),
        Param("Q", parse_transitions, "1/2,1/4,1/4;1/3,1/3,1/3;0,1/2,1/2",
              "transition table, rows separated by ';'"),
        Param("eps", parse_noise_list, "3/5,1/2,3/10", "one noise value in [0, 1] per position"),
    )

    def validate(self, params: dict) -> None:
        if len(params["Q"]) != len(params["P"]):
            raise ParameterError("Q", f"has {len(params['Q'])} words but P has {len(params['P'])}; "
                                      "both must use the same vocabulary")

    def question(self, params: dict) -> str:
        probs, matrix, noise = params["P"], params["Q"], params["eps"]
        return (f"A bigram generator has first-word distribution $P = {tex(tuple(probs))}$ and "
                f"transition table $Q = {tex_matrix(matrix)}$. Using the inverse-CDF sampler with the "
                f"noise values $(\\epsilon_1, \\dots, \\epsilon_{{{len(noise)}}}) = {tex(tuple(noise))}$, "
                "one per position, generate the string $w_1, \\dots, w_T$ and give its probability.")

    def generate(self, rng: random.Random) -> dict[str, str]:
        size = rng.choice([3, 3, 4])
        probs, first_denominator = random_distribution(rng, size)
        rows, denominators = zip(*(random_distribution(rng, size) for _ in range(size)))
        noise = [random_noise(rng, first_denominator)]
        word = reference_word(probs, noise[0])
        for _ in range(rng.choice([3, 4]) - 1):
            noise.append(random_noise(rng, denominators[word]))
            word = reference_word(rows[word], noise[-1])
        return {"P": _text(probs), "Q": _matrix_text(rows), "eps": _text(noise)}

    def derive(self, params: dict, problem: str | None = None) -> Derivation:
        probs, matrix, noise = params["P"], params["Q"], params["eps"]
        first = build_sampler(tuple(probs), EPS)
        rows = {}
        words, steps, table_rows = [], [], []
        low, high, rule = _general_rule(EPS_NEXT)
        first_word_symbol = Notation("w_1", "w_1")
        rule_checks = []
        for position, eps in enumerate(noise, start=1):
            if position == 1:
                sampler, used, used_latex = first, "P", "P"
            else:
                previous = words[-1]
                if previous not in rows:
                    rows[previous] = build_sampler(tuple(matrix[previous]), EPS_T)
                sampler, used = rows[previous], f"row {previous} of Q"
                used_latex = f"Q[{previous}, :]"
                if position == 2:
                    rule_checks.append(check_general_rule(matrix, previous, eps))
            word = sampler.word(eps)
            words.append(word)
            direct = reference_word(sampler.probs, eps)
            check = Check(f"position {position}: Piecewise of {used} vs direct scan at eps = {eps}",
                          word == direct, f"derived {word}, direct scan {direct}")
            head = Notation(f"w_hat_{position}", r"\hat{w}\left(" + used_latex + ", " + tex(eps) + r"\right)")
            steps.append(Step(StepKind.COMPUTATION, f"word {position}", Notation(f"w_{position}", f"w_{{{position}}}"),
                              (head, sp.Integer(word)),
                              f"$\\epsilon_{{{position}}} = {tex(eps)}$ lies in "
                              f"${tex(sampler.intervals[word])}$, the interval of word ${word}$ for "
                              f"${used_latex}$.", (check,)))
            table_rows.append((str(position), f"${tex(eps)}$", f"${used_latex}$",
                               f"${tex(tuple(sampler.cumulative))}$",
                               f"${tex(sampler.intervals[word])}$", str(word)))

        factors = [probs[words[0]]] + [matrix[a][b] for a, b in zip(words, words[1:])]
        probability = sp.Mul(*factors)
        interval_volume = first.intervals[words[0]].measure
        for a, b in zip(words, words[1:]):
            interval_volume *= rows[a].intervals[b].measure
        volume_check = compare("string probability = product of the interval lengths", probability,
                               interval_volume, how="product of lengths")
        sampled_check = check_string_sampling(first, rows, words, factors)
        definition = Step(StepKind.DEFINITION, "the generation rule", sp.Eq(NEXT_WORD, j_), (rule,),
                          f"The first word is ${tex(first_word_symbol)} = \\hat{{w}}(P, \\epsilon_1)$; "
                          "each later word applies the same inverse-CDF rule to the row of $Q$ picked "
                          "by the word before it, with its own noise value.",
                          tuple(rule_checks) or (steps[0].checks[0],), relation=r"\iff")
        probability_name = Notation("P(w)", r"P(w_1, \dots, w_{" + str(len(noise)) + "})")
        shown = sp.Mul(*factors, evaluate=False) if len(factors) > 1 else factors[0]
        steps = [definition] + steps + [
            Step(StepKind.COMPUTATION, "probability of the string", probability_name,
                 (shown, probability) if len(factors) > 1 else (probability,),
                 "The noise values are independent, so the probability of the string is the product of the "
                 "interval lengths met along the way, which are the entries of $P$ and $Q$.",
                 (volume_check, sampled_check)),
            Step(StepKind.RESULT, "the string", Notation("(w_1..w_T)", r"\left(w_1, \dots, w_{" + str(len(noise)) + r"}\right)"),
                 (tuple(sp.Integer(w) for w in words),), "Reading the words off position by position.",
                 tuple(step.checks[0] for step in steps)),
        ]
        table = Table("Position by position: the distribution used, its cumulative sums and the chosen interval",
                      ("$t$", "$\\epsilon_t$", "distribution", "cumulative sums", "interval", "$w_t$"),
                      tuple(table_rows))
        remarks = [Remark("note", (
            f"The string length is the number of noise values, here $T = {len(noise)}$. The rows of $Q$ "
            "for words that never occur as a current word do not affect the string.")),
            Remark("note", (
                "Each position has its own noise value: $\\epsilon_1$ picks the first word and "
                "$\\epsilon_{t+1}$ picks $w_{t+1}$ from row $w_t$ of $Q$. Part (b) of the exam calls the noise "
                "of that step $\\epsilon_t$; only the name differs."))]
        answer = [sp.Integer(w) for w in words]
        return Derivation(problem or self.name, self.name, self.params_json(params), self.question(params),
                          steps, answer, list(words), [steps[-1].checks[0], volume_check, sampled_check],
                          remarks, [table],
                          cdf_figure(probs, noise[0], words[0], "P", "this is the first position of the string"))


def check_string_sampling(first: Sampler, rows: dict, words, factors) -> Check:
    """Seeded draws of whole noise vectors through the derived samplers; frequency of this string."""
    length = min(len(words), SAMPLED_PREFIX)
    noise = uniform_noise(length)
    # Only draws that still follow the string matter: each one's next word comes from row words[t-1].
    match = first.words(noise[:, 0]) == words[0]
    for t in range(1, length):
        alive = match.nonzero()[0]
        match[alive] = rows[words[t - 1]].words(noise[alive, t]) == words[t]
    p = float(sp.Mul(*factors[:length]))
    frequency = float(match.mean())
    error = math.sqrt(p * (1 - p) / SAMPLE_DRAWS)
    ok = abs(frequency - p) <= SAMPLE_SIGMAS * error + 1e-15
    return Check(f"{SAMPLE_DRAWS} seeded noise vectors: frequency of the first {length} words",
                 bool(ok), f"seed {SAMPLE_SEED}: frequency {frequency:.5f} vs probability {p:.5f}, "
                 f"{abs(frequency - p) / error if error else 0:.2f} standard errors (limit {SAMPLE_SIGMAS})")


def interval_table(sampler: Sampler, dist_latex: str, c: str) -> Table:
    rows = []
    for index, (p, interval) in enumerate(zip(sampler.probs, sampler.intervals)):
        rows.append((str(index), f"${tex(p)}$", f"${tex(sampler.cumulative[index])}$",
                     f"${tex(interval)}$", f"${tex(interval.measure)}$"))
    return Table(f"The interval of each word for ${dist_latex}$",
                 ("word $i$", "probability", f"${c}_i$", "interval $A_i$", "length"), tuple(rows))


@functools.lru_cache(maxsize=1024)
def _closed_interval(low, high):
    return sp.Interval(low, high)


@functools.lru_cache(maxsize=1024)
def _intersection(first, second):
    return sp.Intersection(first, second)


@functools.lru_cache(maxsize=1024)
def first_word_remarks(probs: tuple) -> tuple[Remark, ...]:
    remarks = []
    cumulative = cumulative_sums(probs)
    inner = [c for c in cumulative[:-1] if 0 < c < 1]
    if inner and len(probs) >= 2:
        first = next(i for i in range(len(probs) - 1) if 0 < cumulative[i] < 1)
        closed = [_closed_interval(cumulative[i - 1] if i else sp.Integer(0), cumulative[i])
                  for i in (first, first + 1)]
        overlap = _intersection(*closed)
        remarks.append(Remark("key", (
            "The official key gives each word a closed interval, so neighbouring intervals share their "
            f"end point: here ${tex(closed[0])} \\cap {tex(closed[1])} = "
            f"{tex(overlap)}$, and at that noise value the word it calls unique is not. We close each "
            "interval on the left and open it on the right; the probabilities are unchanged because a "
            "single point has probability zero, but the function is then well defined everywhere.")))
    remarks.append(Remark("note", (
        "Two edge cases follow the same convention: $\\epsilon = 1$ belongs to no half-open interval and is "
        "given to the last word of positive probability, and a word of probability zero has an empty "
        "interval, so no noise value produces it.")))
    return tuple(remarks)


@functools.lru_cache(maxsize=1)
def next_word_remarks(low, high, rule) -> tuple[Remark, ...]:
    wrong_upper = sp.Sum(Q_BASE[W_T, j_], (k_, 0, j_))
    shown = sp.Eq(wrong_upper, wrong_upper.doit(), evaluate=False)
    return (
        Remark("key", (
            "The official key answers with the unique $w_j$ and an interval whose sums mix up their "
            "indices: its lower end sums over $j < i$ with an $i$ that is never defined, and in its upper "
            f"end the summand does not depend on the summation index, so ${tex(shown)}$ instead of a "
            "running total. The next word is the index $j$ itself, with "
            f"${tex(sp.Eq(NEXT_WORD, j_))} \\iff {tex(rule)}$; like part (a) the interval "
            "is half-open, so boundary noise values are not claimed by two words.")),
        Remark("note", (
            "This is part (a) applied to the row of $Q$ selected by the current word: the row is a "
            "distribution over the next word, and its running totals play the role of $C_i$.")),
    )


# ------------------------------------------------------------------ gradient

@functools.lru_cache(maxsize=64)
def generic_sampler(size: int):
    """w_hat(P, eps) = sum_{i=0}^{I-2} H(eps - C_i) for symbolic P_0..P_{I-1}, and its partial derivatives."""
    symbols = sp.symbols(f"P_0:{size}", real=True)
    sums = [sp.Add(*symbols[: i + 1]) for i in range(size)]
    word = sp.Add(*[UnitStep(EPS - sums[i]) for i in range(size - 1)]) if size > 1 else sp.Integer(0)
    gradient = tuple(sp.diff(word, symbol) for symbol in symbols)
    expected = sp.Add(*[index * symbol for index, symbol in enumerate(symbols)])
    expected_gradient = tuple(sp.diff(expected, symbol) for symbol in symbols)
    return symbols, word, gradient, expected, expected_gradient


def jump_points(probs, eps) -> str | None:
    """Why eps is a point where the word jumps under small changes of P, or None if it is not."""
    cumulative = cumulative_sums(probs)
    size = len(probs)
    if eps >= cumulative[-1] or eps == 1:
        if probs[-1] == 0:
            return (f"eps = {eps} is at the top of [0, 1] and the last word has probability zero: giving it a "
                    "little probability would make it the sampled word, so the word jumps there and has no "
                    "derivative; choose a smaller eps")
        if size > 1 and cumulative[-2] > eps:
            return (f"eps = {eps} falls inside the rounding slack of the decimal probabilities; choose eps < "
                    f"{cumulative[-2]}")
    for index in range(size - 1):
        if eps == cumulative[index]:
            boundaries = sorted({c for c in cumulative[:-1] if 0 < c < 1})
            return (f"eps = {eps} equals the boundary C_{index} = {cumulative[index]}: the sampled word jumps "
                    "there, so it has no derivative; choose eps off the boundaries "
                    + ", ".join(str(b) for b in boundaries))
    return None


@register
class GanGradient(GanFamily):
    name = "gan-gradient"
    domain = "P: 1 to 26 probabilities >= 0 summing to 1; eps in [0, 1], not on a boundary C_i; all read exactly"
    numeric = False  # the answer is a vector (of zeros) with an explanation, not one number
    summary = "gradient of the sampled word with respect to P: zero (piecewise constant), by finite differences"
    params = (_distribution_param("P", "1/5,1/2,3/10"), EPS_PARAM)

    def validate(self, params: dict) -> None:
        problem = jump_points(params["P"], params["eps"])
        if problem:
            raise ParameterError("eps", problem)

    def question(self, params: dict) -> str:
        probs, eps = params["P"], params["eps"]
        return (f"With the sampler of part (a), $P = {tex(tuple(probs))}$ and $\\epsilon = {tex(eps)}$, "
                "compute the gradient of the sampled word with respect to $P$. Training the generator means "
                "back-propagating the discriminator's loss through the generated string into $P$ and $Q$: "
                "explain what goes wrong, and whether it goes wrong for every discrete output.")

    def generate(self, rng: random.Random) -> dict[str, str]:
        probs, denominator = random_distribution(rng, rng.choice([3, 3, 4]))
        return {"P": _text(probs), "eps": str(random_noise(rng, denominator))}

    def derive(self, params: dict, problem: str | None = None) -> Derivation:
        probs, eps = params["P"], params["eps"]
        size = len(probs)
        symbols, word_expr, gradient, expected, expected_gradient = generic_sampler(size)
        point = dict(zip(symbols, probs))
        word = reference_word(probs, eps)

        generic_check = check_generic_sampler(tuple(probs), symbols, word_expr)
        at_point = [g.xreplace({**point, EPS: eps}) for g in gradient]
        coordinate_check = check_coordinate_differences(probs, eps, at_point)
        direction_check = check_direction_differences(probs, eps, at_point)
        sampler_name = Notation("w_hat", r"\hat{w}(P, \epsilon)")
        grad_name = Notation("grad w_hat", r"\left(" + ", ".join(
            r"\frac{\partial \hat{w}}{\partial P_{" + str(i) + "}}" for i in range(size)) + r"\right)")
        steps = [
            Step(StepKind.DEFINITION, "the sampler as a count of passed boundaries", sampler_name, (word_expr,),
                 "For any $P$, the word index equals the number of boundaries $C_0, \\dots, C_{I-2}$ that the "
                 "noise has reached; $H$ is the unit step with $H(0) = 1$, which makes the intervals "
                 "half-open.", (generic_check,)),
            Step(StepKind.THEOREM, "partial derivatives", grad_name, (gradient,),
                 "Differentiating each step gives a Dirac delta placed on a boundary: the derivative is zero "
                 "at every noise value that is not a boundary, and does not exist on a boundary, where the "
                 "word jumps by a whole index.", (coordinate_check,)),
        ]
        jump = boundary_step(tuple(probs), symbols, word_expr)
        if jump is not None:
            steps.append(jump)
        steps += contrast_steps(probs, eps, symbols, expected, expected_gradient)
        steps.append(chain_rule_step(probs, eps, symbols, expected, expected_gradient))
        result_name = Notation("grad at point", r"\nabla_P \hat{w}\left(P, " + tex(eps) + r"\right)")
        steps.append(Step(StepKind.RESULT, "the gradient at the given noise", result_name, (tuple(at_point),),
                          f"$\\epsilon = {tex(eps)}$ is not a boundary, so every delta vanishes: the sampled "
                          f"word ${word}$ does not move when $P$ changes a little, in any direction that keeps it "
                          "a distribution.", (direction_check, coordinate_check)))
        answer = list(at_point)
        remarks = gradient_remarks()
        figure = cdf_figure(probs, eps, word, "P", "moving the boundaries a little leaves the line on the same riser")
        return Derivation(problem or self.name, self.name, self.params_json(params), self.question(params),
                          steps, answer, numeric_value(answer), [direction_check, coordinate_check],
                          remarks, [], figure, answer_text=gradient_answer_text(expected_gradient))


def _word_of(probs: list[Fraction], eps: Fraction) -> int:
    return reference_word(probs, eps)


def _step_size(probs, eps) -> Fraction:
    """Smaller than the distance from eps to every boundary, so an honest check sees no change."""
    return _step_size_of(tuple(probs), eps)


@functools.lru_cache(maxsize=1024)
def _step_size_of(probs: tuple, eps) -> Fraction:
    values = [_fraction(p) for p in probs]
    eps_f = _fraction(eps)
    running, distances = Fraction(0), []
    for p in values:
        running += p
        if running != eps_f:
            distances.append(abs(running - eps_f))
    positive = [p for p in values if p > 0]
    gap = min(distances + positive + [Fraction(1)])
    return min(Fraction(1, 10**6), gap / (4 * len(values)))


@functools.lru_cache(maxsize=1024)
def check_generic_sampler(probs: tuple, symbols, word_expr) -> Check:
    """The count-of-steps form at the given P vs the direct scan, at boundaries and midpoints."""
    cumulative = cumulative_sums(probs)
    points = [p for p in test_points(probs) if p < _fraction(cumulative[-1])]
    if probs[-1] > 0:
        points.append(Fraction(1))
    values = dict(zip(symbols, _fractions(probs)))
    derived = [int(exact_value(word_expr, {**values, EPS: p})) for p in points]
    direct = [reference_word(probs, p) for p in points]
    return Check("count-of-steps form vs the direct scan at 0, every C_i, the midpoints and 1",
                 derived == direct, f"eps = {', '.join(str(p) for p in points)}: derived {derived}, direct {direct}")


def check_coordinate_differences(probs, eps, at_point) -> Check:
    """Exact one-sided difference quotients along each coordinate P[j] (both sides when P[j] > 0)."""
    values = [_fraction(p) for p in probs]
    eps_f = _fraction(eps)
    h = _step_size(probs, eps)
    base = _word_of(values, eps_f)
    quotients = []
    for j in range(len(values)):
        sides = [h, -h] if values[j] > 0 else [h]
        worst = Fraction(0)
        for step in sides:
            moved = list(values)
            moved[j] += step
            quotient = Fraction(_word_of(moved, eps_f) - base) / step
            worst = quotient if abs(quotient) > abs(worst) else worst
        quotients.append(worst)
    return compare(f"exact difference quotients along each P[j], h = {h}", [float(g) for g in at_point],
                   [float(q) for q in quotients], how="finite differences")


def _directions(size: int) -> list[tuple[int, int]]:
    if size <= 6:
        return [(a, b) for a in range(size) for b in range(size) if a != b]
    return [(a, a + 1) for a in range(size - 1)] + [(a + 1, a) for a in range(size - 1)]


def check_direction_differences(probs, eps, at_point) -> Check:
    """Along P + h (e_a - e_b), which stays a distribution: the word must not change."""
    values = [_fraction(p) for p in probs]
    eps_f = _fraction(eps)
    h = _step_size(probs, eps)
    base = _word_of(values, eps_f)
    derived, measured = [], []
    for a, b in _directions(len(values)):
        if values[b] <= 0:
            continue  # moving mass out of an empty word would leave the simplex
        moved = list(values)
        moved[a] += h
        moved[b] -= h
        measured.append(float(Fraction(_word_of(moved, eps_f) - base) / h))
        derived.append(float(at_point[a] - at_point[b]))
    return compare(f"difference quotients along P + h(e_a - e_b), h = {h}, {len(measured)} directions",
                   derived, measured, how="finite differences")


@functools.lru_cache(maxsize=64)
def _right_limit_at_zero(expr):
    return sp.limit(expr, H, 0, "+")


@functools.lru_cache(maxsize=64)
def _limit_tex(quotient) -> str:
    return tex(sp.Limit(quotient, H, 0, "+"))


@functools.lru_cache(maxsize=1024)
def boundary_step(probs: tuple, symbols, word_expr) -> Step | None:
    """At eps = C_i the quotient along e_i - e_m is (i - m)/h: unbounded as h -> 0."""
    cumulative = cumulative_sums(probs)
    candidates = [i for i in range(len(probs) - 1) if probs[i] > 0 and 0 < cumulative[i] < 1
                  and any(p > 0 for p in probs[i + 1:])]
    if not candidates:
        return None
    i = candidates[0]
    m = next(k for k in range(i + 1, len(probs)) if probs[k] > 0)
    boundary = cumulative[i]
    moved = {symbol: p + (H if k == i else -H if k == m else 0) for k, (symbol, p) in enumerate(zip(symbols, probs))}
    still = {symbol: p for symbol, p in zip(symbols, probs)}
    after = word_expr.xreplace({**moved, EPS: boundary})
    before = word_expr.xreplace({**still, EPS: boundary})
    quotient = (after - before) / H  # the two words are integers, so this is (i - m)/h
    limit = _right_limit_at_zero(quotient)
    values = [_fraction(p) for p in probs]
    gap = min([p for p in values if p > 0])
    measured, derived = [], []
    for h in (gap / 10, gap / 10**4, gap / 10**7):
        shifted = list(values)
        shifted[i] += h
        shifted[m] -= h
        quotient_fd = Fraction(reference_word(shifted, _fraction(boundary)) - reference_word(values, _fraction(boundary))) / h
        measured.append(float(quotient_fd))
        derived.append(float(quotient.xreplace({H: sp.Rational(h.numerator, h.denominator)})))
    check = compare(f"difference quotients at the boundary eps = C_{i}, three step sizes", derived, measured,
                    how="finite differences")
    name = Notation("jump quotient", r"\frac{\hat{w}\left(P + h(e_{" + str(i) + "} - e_{" + str(m)
                    + r"}), C_{" + str(i) + r"}\right) - \hat{w}\left(P, C_{" + str(i) + r"}\right)}{h}")
    return Step(StepKind.THEOREM, "no derivative on a boundary", name, (quotient,),
                f"At the boundary $\\epsilon = C_{{{i}}} = {tex(boundary)}$ the noise picks word ${m}$; moving "
                f"probability $h > 0$ from word ${m}$ to word ${i}$ lifts $C_{{{i}}}$ above the noise and the word "
                f"drops to ${i}$. The quotient grows without bound: "
                f"${_limit_tex(quotient)} = {tex(limit)}$.", (check,))


def _continuous_index(values: list, eps):
    """A relaxed inverse CDF, in exact Fractions: the word index plus how far eps is through its
    interval. Exact, so a difference quotient with a step far below any float's spacing still sees
    the one linear piece it is on."""
    running, last = Fraction(0), None
    for index, p in enumerate(values):
        if p > 0:
            if eps < running + p:
                return index + (eps - running) / p
            last = (index, running, p)
        running += p
    index, start, p = last
    return index + (eps - start) / p


@functools.lru_cache(maxsize=256)
def relaxed_output(symbols: tuple, word: int):
    """The relaxed inverse CDF on the interval of `word`: x = word + (eps - C_{word-1}) / P_word."""
    offset = sp.Add(*symbols[:word]) if word else sp.Integer(0)
    relaxed = word + (EPS - offset) / symbols[word]
    return relaxed, tuple(sp.diff(relaxed, symbol) for symbol in symbols)


def contrast_steps(probs, eps, symbols, expected, expected_gradient) -> list[Step]:
    size = len(probs)
    point = dict(zip(symbols, probs))
    values = [_fraction(p) for p in probs]
    step = Fraction(1, 10**6)
    fd_expected = []
    for j in range(size):
        up, down = list(values), list(values)
        up[j] += step
        down[j] -= step
        fd_expected.append((sum(i * p for i, p in enumerate(up)) - sum(i * p for i, p in enumerate(down))) / (2 * step))
    expected_check = compare("expected index: central differences along each P[j]",
                             [g.xreplace(point) for g in expected_gradient], fd_expected, tolerance=1e-6,
                             how="finite differences")
    word = reference_word(probs, eps)
    relaxed, relaxed_gradient = relaxed_output(symbols, word)
    exact_point = {**dict(zip(symbols, _fractions(tuple(probs)))), EPS: _fraction(eps)}
    exact_at_point = tuple(_rational(exact_value(g, exact_point)) for g in relaxed_gradient)
    at_point = [float(g) for g in exact_at_point]
    eps_f = _fraction(eps)
    # A step a quarter of the distance from eps to the nearest boundary, so the central quotient sees
    # one linear piece, and at most 1e-6 P_word: in exact arithmetic its only error is the curvature
    # of 1/P_word, relative h^2 / (P_word^2 - h^2) < 1e-11.
    h = min(_step_size(probs, eps) / 4, _fraction(probs[word]) / 10**6)
    fd_relaxed = []
    for j in range(size):
        up, down = list(values), list(values)
        up[j] += h
        down[j] -= h
        fd_relaxed.append(float((_continuous_index(up, eps_f) - _continuous_index(down, eps_f)) / (2 * h)))
    relaxed_check = compare("relaxed inverse CDF: central differences along each P[j]", at_point, fd_relaxed,
                            how=f"finite differences (h = {float(h):.3g})")
    grad_expected = Notation("grad m", r"\nabla_P\, m(P)")
    relaxed_name = Notation("x(P, eps)", r"x(P, \epsilon)")
    relaxed_grad_name = Notation("grad x", r"\nabla_P\, x\left(P, " + tex(eps) + r"\right)")
    return [
        Step(StepKind.DEFINITION, "a continuous output: the expected index", Notation("m(P)", "m(P)"),
             (expected,), "For contrast, a generator that outputs the mean word index, a real number.",
             (expected_check,)),
        Step(StepKind.COMPUTATION, "its gradient", grad_expected, (expected_gradient,),
             "This output moves smoothly with $P$, so its gradient is not zero.", (expected_check,)),
        Step(StepKind.DEFINITION, "a continuous output from the same noise", relaxed_name, (relaxed,),
             f"Another contrast keeps the noise but returns the word index plus how far $\\epsilon$ has come "
             f"through the word's interval; on the interval of word ${word}$ it is this expression.",
             (relaxed_check,)),
        Step(StepKind.COMPUTATION, "its gradient at the given noise", relaxed_grad_name,
             (exact_at_point,),
             "Nonzero: moving the boundaries moves this output, because it is not rounded to a word.",
             (relaxed_check,)),
    ]


def _softplus(x: float) -> float:
    return math.log1p(math.exp(-abs(x))) + max(x, 0.0)


@functools.lru_cache(maxsize=1)
def stand_in_loss():
    """A smooth loss of the generated output, L(s) = ln(1 + e^s), and its derivative."""
    s = sp.Symbol("s")
    loss = sp.log(1 + sp.exp(s))
    return s, loss, sp.diff(loss, s)


@functools.lru_cache(maxsize=1024)
def _slope_at(slope, s, value) -> float:
    """float(slope at s = value): expected indices recur across distributions."""
    return float(slope.xreplace({s: value}))


@functools.lru_cache(maxsize=1)
def _loss_tex() -> str:
    return tex(sp.Eq(LOSS, stand_in_loss()[1]))


def chain_rule_step(probs, eps, symbols, expected, expected_gradient) -> Step:
    """dL/dP through a smooth stand-in loss L(s) = ln(1 + e^s): zero for the word, not for m(P)."""
    s, loss, loss_slope = stand_in_loss()
    values = [_fraction(p) for p in probs]
    eps_f = _fraction(eps)
    h = _step_size(probs, eps)
    point = dict(zip(symbols, probs))
    m_value = expected.xreplace(point)
    slope_at_m = _slope_at(loss_slope, s, m_value)  # the derived dL/ds at s = m(P)
    derived_discrete, measured_discrete, derived_cont, measured_cont = [], [], [], []
    base_word = reference_word(values, eps_f)
    for j in range(len(values)):
        moved = list(values)
        moved[j] += h
        up = _softplus(float(reference_word(moved, eps_f)))
        measured_discrete.append((up - _softplus(float(base_word))) / float(h))
        derived_discrete.append(0.0)
        step = 1e-6
        m_up = sum(i * (float(p) + (step if i == j else 0.0)) for i, p in enumerate(values))
        m_down = sum(i * (float(p) - (step if i == j else 0.0)) for i, p in enumerate(values))
        measured_cont.append((_softplus(m_up) - _softplus(m_down)) / (2 * step))
        derived_cont.append(slope_at_m * float(expected_gradient[j]))
    check = compare("loss ln(1+e^s) through the word and through m(P): differences along each P[j]",
                    derived_discrete + derived_cont, measured_discrete + measured_cont, tolerance=1e-6,
                    how="finite differences")
    lhs = Notation("dL/dP", r"\frac{\partial \mathcal{L}}{\partial P_j}")
    slope = Notation("dL/ds", r"\frac{\partial \mathcal{L}}{\partial s}")
    ds = Notation("ds/dP", r"\frac{\partial s}{\partial P_j}")
    return Step(StepKind.THEOREM, "the chain rule through the discriminator", lhs,
                (sp.Mul(slope, ds, evaluate=False),),
                "Back-propagation multiplies the discriminator's sensitivity to the generated output $s$ by "
                "the output's sensitivity to the parameters. With $s$ the sampled word the second factor is "
                "zero, so nothing reaches $P$ or $Q$; with a continuous $s$ such as $m(P)$ it is not. The "
                f"check uses the stand-in loss ${_loss_tex()}$.", (check,))


def gradient_answer_text(expected_gradient) -> str:
    shown = tex(tuple(expected_gradient))
    return (
        "The sampled word is an integer. A small change of $P$ only slides the interval boundaries $C_i$, and "
        "unless a boundary crosses the noise value the same word comes out, so the derivative of the word with "
        "respect to $P$ is zero wherever it exists; at a boundary the word jumps and there is no derivative at "
        "all. Back-propagation multiplies the discriminator's gradient with respect to the generated string by "
        "this derivative, so the generator's parameters receive a zero gradient and never learn. The same "
        "happens for every generator with a discrete output, however the probabilities are computed (a "
        "transformer included), because the final map from probabilities and noise to a symbol is piecewise "
        "constant. A gradient flows only when the discriminator is applied to a continuous signal that depends "
        f"smoothly on the parameters, for example the expected word index, whose gradient is ${shown}$; this is "
        "why GANs work best for continuous data such as images and sound.")


def gradient_remarks() -> list[Remark]:
    return [
        Remark("note", (
            "The boundaries $\\epsilon = C_i$ have probability zero under uniform noise, so almost every "
            "draw sees a zero gradient, and the rare draw on a boundary sees none at all: either way nothing "
            "useful reaches $P$.")),
        Remark("note", (
            "Workarounds avoid differentiating through the sample: the score-function (REINFORCE) estimator "
            "differentiates the log-probability of the sampled string instead, and relaxations such as "
            "Gumbel-softmax feed the discriminator a continuous vector in place of the word.")),
    ]


# ------------------------------------------------------------- the seed aliases

register_alias("2a", "gan-first-word", "First word from uniform noise", P="1/5,1/2,3/10", eps="3/5")
register_alias("2b", "gan-next-word", "Next word from the transition table",
               Q="1/2,1/4,1/4;1/3,1/3,1/3;0,1/2,1/2", w="2", eps="3/10")
register_alias("2c", "gan-gradient", "Why the discrete generator gets no gradient", P="1/5,1/2,3/10", eps="3/5")
