"""chain-dp against an enumeration of every labeling written here, independently of derivations/."""
import itertools
import math
import random
import subprocess
import sys
from pathlib import Path

import pytest
import sympy as sp
from hypothesis import given, settings, strategies as st

from derivations import chain_dp, core, solve
from derivations.values import ParameterError

ROOT = Path(__file__).resolve().parent.parent


def enumerated_z(node, edge):
    size, k = len(node), len(edge)
    total = 0.0
    for y in itertools.product(range(k), repeat=size):
        s = sum(node[t][y[t]] for t in range(size)) + sum(edge[a][b] for a, b in zip(y, y[1:]))
        total += math.exp(s)
    return total


def text(matrix):
    return ";".join(",".join(str(v) for v in row) for row in matrix)


scores = st.sampled_from([sp.Rational(v) for v in ("0", "1", "-1", "2", "1/2", "-3/2", "5/4", "3")])


@settings(max_examples=40, deadline=None)
@given(data=st.data(), size=st.integers(1, 8), k=st.sampled_from([2, 3]))
def test_z_agrees_with_enumeration(data, size, k):
    node = [[data.draw(scores) for _ in range(k)] for _ in range(size)]
    edge = [[data.draw(scores) for _ in range(k)] for _ in range(k)]
    derivation = solve("chain-dp", {"node": text(node), "edge": text(edge)})
    assert derivation.passed
    expected = enumerated_z([[float(v) for v in r] for r in node], [[float(v) for v in r] for r in edge])
    assert math.isclose(derivation.value, expected, rel_tol=1e-9)
    # the last computed column sums to the answer
    assert sp.simplify(sp.Add(*derivation.steps[-2].forms[0]) - derivation.answer) == 0


def test_the_classroom_example_by_hand():
    e = sp.E
    derivation = solve("chain-dp", {})
    assert sp.simplify(derivation.answer - (1 + e + 3 * e**2 + 3 * e**3)) == 0
    columns = [step.forms[0] for step in derivation.steps if step.name.startswith("column t=")]
    assert list(columns[0]) == [1, e] and list(columns[1]) == [2 * e**2, 1 + e**2]
    work = derivation.tables[1]
    assert work.rows[0] == ("3", "$12$", "$8$") and [row[0] for row in work.rows] == ["3", "20", "50", "100"]


def test_one_position_has_no_edges():
    assert solve("chain-dp", {"node": "0,1,2", "edge": "5,5,5;5,5,5;5,5,5"}).answer == 1 + sp.E + sp.exp(2)


def test_the_largest_domain_is_checked_by_mpmath():
    rng = random.Random(7)
    node = ";".join(",".join(str(rng.randint(-20, 20)) for _ in range(5)) for _ in range(12))
    edge = ";".join(",".join(str(rng.randint(-20, 20)) for _ in range(5)) for _ in range(5))
    derivation = solve("chain-dp", {"node": node, "edge": edge})
    assert derivation.passed
    assert {"Z vs the forward recursion in mpmath", "Z vs a backward recursion in mpmath"} <= {
        c.name for c in derivation.all_checks}


def test_a_wrong_recursion_fails_its_named_checks(monkeypatch):
    real = chain_dp.forward_exact

    def dropped_edge(node, edge):  # forgets the edge factor e^{S_E[y',y]}
        return real(node, [[0] * len(edge)] * len(edge))
    monkeypatch.setattr(chain_dp, "forward_exact", dropped_edge)
    derivation = solve("chain-dp", {})
    failed = {check.name for check in derivation.all_checks if not check.passed}
    assert {"Z_2(y) vs the enumerated prefixes ending in y, t=2", "Z vs enumerating all 2^3 labelings",
            "Z vs a backward recursion in mpmath"} <= failed
    assert "Z_1(y) vs the enumerated prefixes ending in y, t=1" not in failed


@pytest.mark.parametrize("raw, name", [
    ({"node": ";".join(["0,0"] * 13)}, "node"), ({"node": "0,0,0,0,0,0", "edge": "0"}, "node"),
    ({"node": "1"}, "node"), ({"edge": "0,0,0;0,0,0;0,0,0"}, "edge"), ({"edge": "0,0;0"}, "edge"),
    ({"node": "21,0;0,0"}, "node"), ({"edge": "0,-21;0,0"}, "edge"), ({"node": "x,0"}, "node"),
    ({"node": ";".join(",".join(f"1/{p}" for p in (2, 3, 5, 7, 11)) for _ in range(12)),
      "edge": ";".join(["1/13,1/17,1/19,1/23,1/29"] * 5)}, "node"),
])
def test_out_of_domain_parameters_are_refused_by_name(raw, name):
    with pytest.raises(ParameterError) as refused:
        solve("chain-dp", raw)
    assert refused.value.name == name


def test_the_cli_refuses_with_one_error_line_and_exit_2():
    run = subprocess.run([sys.executable, "cli.py", "solve", "chain-dp", "-p", "edge=1,2,3"], cwd=ROOT,
                         capture_output=True, text=True)
    assert run.returncode == 2 and run.stderr.strip().count("\n") == 0 and "'edge'" in run.stderr


def test_variants_draw_matching_shapes():
    family = core.FAMILIES["chain-dp"]
    drawn = [family.generate(random.Random(seed)) for seed in range(30)]
    for d in drawn:
        k = len(d["node"].split(";")[0].split(","))
        assert len(d["edge"].split(";")) == k
    assert all(solve("chain-dp", d).passed for d in drawn)


def grade(answer, *params):
    args = [item for p in params for item in ("-p", p)]
    return subprocess.run([sys.executable, "cli.py", "grade", "chain-dp", *args, answer], cwd=ROOT,
                          capture_output=True, text=True).stdout


@pytest.mark.parametrize("answer", ["1 + exp(1) + 3*exp(2) + 3*exp(3)", "1 + e + 3 e^{2} + 3 e^{3}",
                                    "(1+exp(1))*(1+3*exp(2))"])
def test_grade_accepts_equivalent_forms(answer):
    assert grade(answer).startswith("correct")


def test_grade_names_the_missing_first_node_scores():
    assert "node scores of the first position are missing" in grade("exp(3)+3*exp(2)+3*exp(1)+1")


def test_grade_names_the_missing_last_node_factor():
    out = grade("1+e+3*exp(2)+3*exp(3)", "node=0,1;1,0;1,2")
    assert "summed without its node factors" in out
