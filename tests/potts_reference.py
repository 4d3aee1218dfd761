"""A test-only potts-chain-pl: -ln PL of a constant colouring on an open chain, by brute force.

Written against the contract's parameters (N, K, J, assignment) so that the audit's path for
the family can be exercised before the real family lands."""
from __future__ import annotations

import math

from derivations.core import Derivation, Family, Param
from derivations.values import parse_int, parse_number


class PottsChainReference(Family):
    name = "potts-chain-pl"
    summary = "test reference: -ln PL, s(Y) = J #{n: Y[n] = Y[n+1]} on an open chain"
    params = (
        Param("N", lambda text, name: parse_int(text, name, minimum=1), None, "sites"),
        Param("K", lambda text, name: parse_int(text, name, minimum=2), "2", "colours"),
        Param("J", parse_number, "1", "coupling"),
        Param("assignment", lambda text, name: parse_int(text, name, minimum=0), "0", "constant colour"),
    )

    def derive(self, params: dict, problem: str | None = None) -> Derivation:
        size, colours, coupling = params["N"], params["K"], float(params["J"])
        labels = [params["assignment"]] * size

        def score(ys):
            return coupling * sum(1 for a, b in zip(ys, ys[1:]) if a == b)

        total = 0.0
        for site in range(size):
            weights = []
            for colour in range(colours):
                changed = list(labels)
                changed[site] = colour
                weights.append(math.exp(score(changed)))
            total += math.log(sum(weights)) - score(labels)
        return Derivation(problem or self.name, self.name, {}, "", [], None, total)
