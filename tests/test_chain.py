"""The open-chain families against enumeration written here, and the family kit they are built on."""
import itertools
import math
import random

import pytest
import sympy as sp
from hypothesis import given, settings, strategies as st

from derivations import chain, core, solve
from derivations.core import Check, Derivation, DuplicateCheckName, Step, StepKind
from derivations.values import ParameterError


def chain_score(labeling, coupling, field):
    return coupling * sum(a * b for a, b in zip(labeling, labeling[1:])) + field * sum(labeling)


def enumerated_z(labels, coupling, field, size):
    return math.fsum(math.exp(chain_score(y, coupling, field)) for y in itertools.product(labels, repeat=size))


def enumerated_pl(labels, coupling, field, labeling):
    """-ln PL from the joint distribution, written independently of derivations/."""
    total = 0.0
    for site in range(len(labeling)):
        weights = []
        for label in labels:
            trial = list(labeling)
            trial[site] = label
            weights.append(math.exp(chain_score(trial, coupling, field)))
        total -= math.log(math.exp(chain_score(labeling, coupling, field)) / math.fsum(weights))
    return total


couplings = st.sampled_from(["1", "1/2", "-1", "2", "-3/2", "0"])
fields = st.sampled_from(["0", "1/2", "-1/2", "1", "-2"])


@settings(max_examples=25, deadline=None)
@given(coupling=couplings, field=fields)
def test_chain_z_symbolic_agrees_with_enumeration_for_n_1_to_8(coupling, field):
    derivation = solve("chain-z", {"J": coupling, "h": field})
    assert derivation.passed
    J, h = float(sp.Rational(coupling)), float(sp.Rational(field))
    for size in range(1, 9):
        value = float(derivation.answer.subs(chain.N, size))
        assert math.isclose(value, enumerated_z((-1, 1), J, h, size), rel_tol=1e-9)


@settings(max_examples=25, deadline=None)
@given(coupling=couplings, field=fields, size=st.integers(1, 8), three=st.booleans())
def test_chain_z_at_a_size_agrees_with_enumeration(coupling, field, size, three):
    labels = "-1,0,1" if three else "-1,1"
    derivation = solve("chain-z", {"J": coupling, "h": field, "N": str(size), "labels": labels})
    assert derivation.passed
    expected = enumerated_z([float(x) for x in labels.split(",")], float(sp.Rational(coupling)),
                            float(sp.Rational(field)), size)
    assert math.isclose(derivation.value, expected, rel_tol=1e-9)


@settings(max_examples=30, deadline=None)
@given(coupling=couplings, field=fields, size=st.integers(1, 8), label=st.sampled_from(["-1", "1"]))
def test_chain_pl_of_a_constant_labeling_agrees_with_enumeration(coupling, field, size, label):
    J, h = float(sp.Rational(coupling)), float(sp.Rational(field))
    general = solve("chain-pl", {"J": coupling, "h": field, "assignment": label})
    at_size = solve("chain-pl", {"J": coupling, "h": field, "assignment": label, "N": str(size)})
    assert general.passed and at_size.passed
    expected = enumerated_pl((-1.0, 1.0), J, h, [float(label)] * size)
    assert math.isclose(at_size.value, expected, rel_tol=1e-9, abs_tol=1e-12)
    if size >= 2:  # the N >= 2 formula, taken literally
        assert math.isclose(float(general.answer.subs(chain.N, size)), expected, rel_tol=1e-9, abs_tol=1e-12)


@settings(max_examples=20, deadline=None)
@given(data=st.data(), size=st.integers(1, 7))
def test_chain_pl_of_an_explicit_labeling_agrees_with_enumeration(data, size):
    labels = data.draw(st.sampled_from(["-1,1", "-1,0,1", "0,1,2"]))
    values = labels.split(",")
    labeling = [data.draw(st.sampled_from(values)) for _ in range(size)]
    coupling, field = data.draw(couplings), data.draw(fields)
    derivation = solve("chain-pl", {"labels": labels, "assignment": ",".join(labeling), "J": coupling, "h": field,
                                    "N": str(size)})
    assert derivation.passed and derivation.params["N"] == size
    expected = enumerated_pl([float(v) for v in values], float(sp.Rational(coupling)), float(sp.Rational(field)),
                             [float(v) for v in labeling])
    assert math.isclose(derivation.value, expected, rel_tol=1e-9, abs_tol=1e-12)


def test_the_end_sites_have_one_neighbour():
    derivation = solve("chain-pl", {"J": "1"})
    assert sp.simplify(derivation.answer - (2 * sp.log(1 + sp.exp(-2)) + (chain.N - 2) * sp.log(1 + sp.exp(-4)))) == 0
    assert solve("chain-pl", {"N": "1"}).answer == sp.log(2)  # one site, no field: both labels alike
    assert solve("chain-z", {"J": "1"}).answer == 2 * (sp.E + sp.exp(-1)) ** (chain.N - 1)


def test_a_wrong_transfer_matrix_fails_its_named_check(monkeypatch):
    real = chain.chain_log_z
    monkeypatch.setattr(chain, "chain_log_z", lambda params, size: real(params, size) + 1e-6)
    derivation = solve("chain-z", {"J": "1/2", "h": "1/2", "N": "40"})
    failed = [check.name for check in derivation.all_checks if not check.passed]
    assert "ln of w^T T^(N-1) w vs ln of the enumerated Z, N=1..8" in failed
    assert "Z vs the transfer matrix in mpmath, N=40" in failed


def test_a_wrong_end_site_fails_the_enumeration(monkeypatch):
    real = chain.pl_changes
    monkeypatch.setattr(chain, "pl_changes", lambda params, site, size=5: real(params, 2 if site == 0 else site, size))
    derivation = solve("chain-pl", {"J": "1"})
    assert not next(c for c in derivation.all_checks if c.name.startswith("brute force from the enumerated joint")).passed


@pytest.mark.parametrize("family, raw, name", [
    ("chain-z", {"labels": "1,1"}, "labels"), ("chain-z", {"J": "21"}, "J"), ("chain-z", {"N": "1000"}, "N"),
    ("chain-z", {"labels": "-1,0,1"}, "N"), ("chain-pl", {"assignment": "2"}, "assignment"),
    ("chain-pl", {"assignment": "1,1", "N": "3"}, "assignment"), ("chain-pl", {"N": "0"}, "N"),
])
def test_out_of_domain_parameters_are_refused_by_name(family, raw, name):
    with pytest.raises(ParameterError) as refused:
        solve(family, raw)
    assert refused.value.name == name


def test_chain_variants_draw_from_the_declared_parameters():
    family = core.FAMILIES["chain-pl"]
    drawn = [family.generate(random.Random(seed)) for seed in range(40)]
    assert all(set(d) == {"N", "labels", "J", "h", "assignment"} for d in drawn)
    assert all(d["assignment"] in d["labels"].split(",") for d in drawn)
    assert len({d["J"] for d in drawn}) > 1 and all(3 <= int(d["N"]) <= 10 for d in drawn)
    assert all(solve("chain-pl", d).passed for d in drawn[:10])


def test_the_chain_families_use_the_kit_not_the_ring():
    source = open(chain.__file__, encoding="utf-8").read()
    assert "from . import discrete" in source
    assert "from .ring" not in source and "import ring" not in source


# ------------------------------------------------------------ the kit itself

def _derivation(checks):
    step = Step(StepKind.RESULT, "r", sp.Symbol("x"), (sp.Integer(1),), "t", tuple(checks))
    return Derivation("p", "f", {}, "q", [step], sp.Integer(1), 1, [])


def test_two_different_checks_under_one_name_are_refused():
    """Until now the second of two same-named checks was dropped: a failure could hide behind a pass."""
    passing, failing = Check("same", True, "derived 1, direct 1"), Check("same", False, "derived 1, direct 2")
    with pytest.raises(DuplicateCheckName):
        _derivation([passing, failing])
    shared = _derivation([passing, passing])  # one check confirming two things is fine
    assert shared.passed and len(shared.all_checks) == 1


def test_the_memo_derives_each_parameter_set_once_and_hands_out_copies(monkeypatch):
    family = core.FAMILIES["chain-z"]
    calls = []
    real = type(family).derive
    monkeypatch.setattr(type(family), "derive", lambda self, params, problem=None: calls.append(1) or real(self, params, problem))
    first = solve("chain-z", {"N": "4"})
    second = solve("chain-z", {"N": "4"})
    assert len(calls) == 1 and first.answer == second.answer
    first.steps.clear()
    assert solve("chain-z", {"N": "4"}).steps


def test_agrees_at_can_fail():
    good = core.agrees_at("n squared", chain.N ** 2, chain.N, [1, 2, 3], lambda k: k * k)
    bad = core.agrees_at("n squared", chain.N ** 2 + 1, chain.N, [1, 2, 3], lambda k: k * k)
    assert good.passed and not bad.passed and "derived ['2', '5', '10']" in bad.detail
