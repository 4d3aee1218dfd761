"""potts-chain-pl against an enumeration of the joint written here, independently of derivations/."""
import itertools
import math
import random
import subprocess
import sys
from pathlib import Path

import pytest
import sympy as sp
from hypothesis import given, settings, strategies as st

from derivations import core, potts, solve
from derivations.values import ParameterError

ROOT = Path(__file__).resolve().parent.parent


def potts_score(colouring, coupling):
    return coupling * sum(1 for a, b in zip(colouring, colouring[1:]) if a == b)


def enumerated_pl(colours, coupling, colouring):
    """-ln PL read off the enumerated joint: P(Y) / sum_b P(Y[n=b]) at every site."""
    size = len(colouring)
    weights = {y: math.exp(potts_score(y, coupling)) for y in itertools.product(range(colours), repeat=size)}
    z = math.fsum(weights.values())
    total = 0.0
    for site in range(size):
        own = weights[tuple(colouring)] / z
        others = math.fsum(weights[tuple(colouring[:site]) + (b,) + tuple(colouring[site + 1:])] / z
                           for b in range(colours))
        total -= math.log(own / others)
    return total


couplings = st.sampled_from(["1", "1/2", "-1", "2", "-3/2", "0", "7/3"])


@settings(max_examples=40, deadline=None)
@given(coupling=couplings, size=st.integers(1, 8), colours=st.sampled_from([2, 3]), data=st.data())
def test_constant_colouring_agrees_with_enumeration(coupling, size, colours, data):
    colour = data.draw(st.integers(0, colours - 1))
    raw = {"J": coupling, "K": str(colours), "assignment": str(colour)}
    general, at_size = solve("potts-chain-pl", raw), solve("potts-chain-pl", {**raw, "N": str(size)})
    assert general.passed and at_size.passed
    expected = enumerated_pl(colours, float(sp.Rational(coupling)), [colour] * size)
    assert math.isclose(at_size.value, expected, rel_tol=1e-9, abs_tol=1e-12)
    if size >= 2:  # the N >= 2 formula, taken literally at N = 2 too
        assert math.isclose(float(general.answer.subs(potts.N, size)), expected, rel_tol=1e-9, abs_tol=1e-12)


@settings(max_examples=30, deadline=None)
@given(coupling=couplings, size=st.integers(1, 7), colours=st.sampled_from([2, 3]), data=st.data())
def test_explicit_colouring_agrees_with_enumeration(coupling, size, colours, data):
    colouring = [data.draw(st.integers(0, colours - 1)) for _ in range(size)]
    derivation = solve("potts-chain-pl", {"J": coupling, "K": str(colours), "N": str(size),
                                          "assignment": ",".join(map(str, colouring))})
    assert derivation.passed and derivation.params["N"] == size
    expected = enumerated_pl(colours, float(sp.Rational(coupling)), colouring)
    assert math.isclose(derivation.value, expected, rel_tol=1e-9, abs_tol=1e-12)


def test_the_classroom_answer_and_the_literal_small_chains():
    N = potts.N
    assert sp.simplify(solve("potts-chain-pl", {}).answer
                       - (2 * sp.log(1 + sp.exp(-1)) + (N - 2) * sp.log(1 + sp.exp(-2)))) == 0
    assert solve("potts-chain-pl", {"N": "1"}).answer == sp.log(2)
    assert solve("potts-chain-pl", {"N": "1", "K": "3"}).answer == sp.log(3)
    assert sp.simplify(solve("potts-chain-pl", {"N": "2"}).answer - 2 * sp.log(1 + sp.exp(-1))) == 0
    three = solve("potts-chain-pl", {"K": "3"}).answer
    assert sp.simplify(three - (2 * sp.log(1 + 2 * sp.exp(-1)) + (N - 2) * sp.log(1 + 2 * sp.exp(-2)))) == 0


def test_a_large_chain_is_checked_by_re_scoring():
    derivation = solve("potts-chain-pl", {"N": "1000", "K": "4", "J": "1/2"})
    assert derivation.passed
    assert "2 end sites + (N-2) interior sites re-scored, N=1000" in [c.name for c in derivation.all_checks]


def test_a_wrong_end_site_fails_the_enumeration(monkeypatch):
    real = potts.pl_changes
    monkeypatch.setattr(potts, "pl_changes", lambda params, site, size=5: real(params, 2 if site == 0 else site, size))
    derivation = solve("potts-chain-pl", {"K": "3"})
    failed = [check.name for check in derivation.all_checks if not check.passed]
    assert "brute force from the enumerated joint, N=1..8" in failed


def test_a_wrong_score_fails_its_named_check(monkeypatch):
    monkeypatch.setattr(potts, "score", lambda labeling, coupling: coupling * len(labeling))
    derivation = solve("potts-chain-pl", {"N": "4"})
    assert not derivation.passed
    assert not next(c for c in derivation.all_checks if c.name == "displayed score vs counting equal pairs, N=5").passed


@pytest.mark.parametrize("raw, name", [
    ({"K": "6"}, "K"), ({"K": "1"}, "K"), ({"J": "21"}, "J"), ({"N": "0"}, "N"), ({"N": "2000000"}, "N"),
    ({"assignment": "2"}, "assignment"), ({"assignment": "1/2"}, "assignment"), ({"assignment": "-1"}, "assignment"),
    ({"assignment": "0,1", "N": "3"}, "assignment"), ({"assignment": ",".join(["0"] * 13)}, "assignment"),
    ({"J": "exp(1)"}, "J"),
])
def test_out_of_domain_parameters_are_refused_by_name(raw, name):
    with pytest.raises(ParameterError) as refused:
        solve("potts-chain-pl", raw)
    assert refused.value.name == name


def test_the_cli_refuses_with_one_error_line_and_exit_2():
    run = subprocess.run([sys.executable, "cli.py", "solve", "potts-chain-pl", "-p", "K=9"], cwd=ROOT,
                         capture_output=True, text=True)
    assert run.returncode == 2 and run.stderr.strip().count("\n") == 0 and "'K'" in run.stderr


def test_variants_draw_valid_colourings():
    family = core.FAMILIES["potts-chain-pl"]
    drawn = [family.generate(random.Random(seed)) for seed in range(40)]
    assert all(int(d["assignment"]) < int(d["K"]) for d in drawn)
    assert len({d["K"] for d in drawn}) > 1
    assert all(solve("potts-chain-pl", d).passed for d in drawn[:10])


@pytest.mark.parametrize("answer", [
    "2*log(1+exp(-1)) + (N-2)*log(1+exp(-2))",
    r"2\ln\left(1+e^{-1}\right) + (N-2)\ln\left(1+e^{-2}\right)",
    "2*log(exp(1)+1) - 2 + (N-2)*log(1+exp(-2))",
])
def test_grade_accepts_equivalent_forms(answer):
    run = subprocess.run([sys.executable, "cli.py", "grade", "potts-chain-pl", answer], cwd=ROOT,
                         capture_output=True, text=True)
    assert run.stdout.startswith("correct"), run.stdout + run.stderr


def test_grade_names_the_ends_mistake():
    run = subprocess.run([sys.executable, "cli.py", "grade", "potts-chain-pl", "N*log(1+exp(-2))"], cwd=ROOT,
                         capture_output=True, text=True)
    assert run.stdout.startswith("incorrect") and "end sites were treated as interior sites" in run.stdout
