"""A toolkit for discrete models: a score over the labelings of a few sites.

A family that states a score s(Y) (a ring, an open chain, any small graph) gets from here
the independent numeric paths its checks compare against: Z by enumerating every
labeling, the conditional of one site given the rest, -ln pseudo-likelihood and -ln P,
re-scoring with one site changed, and the transfer-matrix path for chains and rings at
any size. Exact (SymPy) score changes come from the same literal score, so a family's
derived formulas and its checks start from one definition.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Callable, Sequence

import mpmath
import sympy as sp

ENUMERATION_LIMIT = 20_000  # labelings an enumeration may visit (3^9, 2^14)
_ENUMERATED: dict = {}      # (model key, size) -> {labeling: score}, oldest first


def log_sum_exp(values: Sequence[float]) -> float:
    top = max(values)
    return top + math.log(math.fsum(math.exp(value - top) for value in values))


@dataclass(frozen=True)
class LabelingModel:
    """P(Y) proportional to e^{s(Y)} over labelings Y of `size` sites, each site one of `labels`.

    `score` takes a labeling (a tuple of labels, as given: floats for the numeric paths,
    SymPy numbers for exact ones) and returns s(Y) in the same arithmetic."""

    labels: tuple
    score: Callable[[tuple], object]
    key: tuple | None = None  # names the model (labels and parameters): enumerations are then kept

    def enumerated(self, size: int) -> dict:
        """s(Y) for every labeling of `size` sites, computed once per named model and size."""
        if self.key is None:
            return {labeling: self.score(labeling) for labeling in self.labelings(size)}
        cache_key = (self.key, size)
        table = _ENUMERATED.get(cache_key)
        if table is None:
            table = {labeling: self.score(labeling) for labeling in self.labelings(size)}
            _ENUMERATED[cache_key] = table
            if len(_ENUMERATED) > 256:
                _ENUMERATED.pop(next(iter(_ENUMERATED)))
        return table

    def labelings(self, size: int):
        if len(self.labels) ** size > ENUMERATION_LIMIT:
            raise ValueError(f"{len(self.labels)}^{size} labelings is more than an enumeration may visit")
        return itertools.product(self.labels, repeat=size)

    def enumerable(self, size: int) -> bool:
        return len(self.labels) ** size <= ENUMERATION_LIMIT

    def with_site(self, labeling: Sequence, site: int, label) -> tuple:
        """The labeling with one site changed."""
        changed = list(labeling)
        changed[site] = label
        return tuple(changed)

    def score_changes(self, labeling: Sequence, site: int) -> list:
        """s(Y[site = b]) - s(Y) for every label b, by re-scoring the whole labeling."""
        own = self.score(tuple(labeling))
        return [self.score(self.with_site(labeling, site, label)) - own for label in self.labels]

    # Numeric paths (floats): the labels and score must be float ones.

    def log_partition(self, size: int) -> float:
        """ln Z by enumerating every labeling."""
        return log_sum_exp(list(self.enumerated(size).values()))

    def neg_log_p(self, labeling: Sequence) -> float:
        """-ln P(Y) = ln Z - s(Y), Z by enumeration."""
        return self.log_partition(len(labeling)) - self.score(tuple(labeling))

    def conditional(self, labeling: Sequence, site: int) -> list[float]:
        """P(Y[site] = b | the other sites) for every label b, by re-scoring."""
        changes = self.score_changes(labeling, site)
        norm = log_sum_exp(changes)
        return [math.exp(change - norm) for change in changes]

    def neg_log_pl(self, labeling: Sequence) -> float:
        """-ln PL(Y) = sum over sites of ln sum_b e^{s(Y[n=b]) - s(Y)}, by re-scoring."""
        return math.fsum(log_sum_exp(self.score_changes(labeling, site)) for site in range(len(labeling)))

    def neg_log_pl_enumerated(self, labeling: Sequence) -> float:
        """-ln PL(Y) from the enumerated joint distribution: each site's conditional is
        P(Y) / sum_b P(Y[n=b]), every P read off the table of all labelings (no re-scoring)."""
        size = len(labeling)
        weights = self.enumerated(size)
        log_z = log_sum_exp(list(weights.values()))
        point = tuple(labeling)
        total = 0.0
        for site in range(size):
            own = weights[point] - log_z
            neighbourhood = log_sum_exp([weights[self.with_site(point, site, b)] - log_z for b in self.labels])
            total -= own - neighbourhood
        return total


# ------------------------------------------------------------ transfer matrices

def _mpf(value):
    value = sp.Rational(value)
    return mpmath.mpf(int(value.p)) / int(value.q)


def _transfer(labels, pair, field):
    """T[a, b] = e^{pair(a, b) + (field(a) + field(b)) / 2}: symmetric when pair is."""
    return mpmath.matrix([[mpmath.exp(_mpf(pair(a, b)) + (_mpf(field(a)) + _mpf(field(b))) / 2)
                           for b in labels] for a in labels])


def _power_scaled(matrix, power: int):
    """(M^power / e^s, s) by repeated squaring, rescaled so the entries stay near 1."""
    result, log_scale = None, mpmath.mpf(0)
    base, base_scale = matrix, mpmath.mpf(0)
    while power:
        if power & 1:
            result = base if result is None else result * base
            log_scale += base_scale
            top = max(abs(x) for x in result)
            result, log_scale = result / top, log_scale + mpmath.log(top)
        power >>= 1
        if power:
            base = base * base
            base_scale *= 2
            top = max(abs(x) for x in base)
            base, base_scale = base / top, base_scale + mpmath.log(top)
    return result, log_scale


def chain_log_partition(labels, pair: Callable, field: Callable, size: int, digits: int = 40):
    """ln Z of the open chain s(Y) = sum_n pair(Y[n], Y[n+1]) + sum_n field(Y[n]):
    Z = w^T T^(N-1) w with w[a] = e^{field(a)/2}, in O(log N) matrix products (mpmath)."""
    with mpmath.workdps(digits):
        boundary = mpmath.matrix([mpmath.exp(_mpf(field(a)) / 2) for a in labels])
        if size == 1:
            return mpmath.log(mpmath.fsum(boundary[i] ** 2 for i in range(len(labels))))
        power, log_scale = _power_scaled(_transfer(labels, pair, field), size - 1)
        total = mpmath.fsum(boundary[i] * power[i, j] * boundary[j]
                            for i in range(len(labels)) for j in range(len(labels)))
        return log_scale + mpmath.log(total)


def ring_log_partition(labels, pair: Callable, field: Callable, size: int, digits: int = 40):
    """ln Z of the ring (the chain plus the pair Y[N-1], Y[0]): Z = tr(T^N)."""
    with mpmath.workdps(digits):
        power, log_scale = _power_scaled(_transfer(labels, pair, field), size)
        return log_scale + mpmath.log(mpmath.fsum(power[i, i] for i in range(len(labels))))


def chain_transfer_matrix(labels, pair: Callable, field: Callable) -> tuple[sp.Matrix, sp.Matrix]:
    """The exact (SymPy) T and w of chain_log_partition, for the steps a sheet shows."""
    k = len(labels)
    transfer = sp.Matrix(k, k, lambda i, j: sp.exp(pair(labels[i], labels[j]) + (field(labels[i]) + field(labels[j])) / 2))
    boundary = sp.Matrix(k, 1, lambda i, j: sp.exp(field(labels[i]) / 2))
    return transfer, boundary
