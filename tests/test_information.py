"""Information families (derivations/information.py): entropy, cross-entropy, kl, mutual-information."""
from __future__ import annotations

import json
import random
import re
import shutil
import subprocess
from fractions import Fraction

import mpmath
import pytest
import sympy as sp
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cli import cli
from derivations import information
from derivations.core import FAMILIES, solve
from derivations.values import ParameterError
from derivations.verify import verify_family
from grading import grade as grading

INFO_FAMILIES = ("entropy", "cross-entropy", "kl", "mutual-information")
SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
R = sp.Rational
LN2, LN3 = sp.log(2), sp.log(3)


@pytest.fixture
def fresh_cache():
    """No derivation made under a monkeypatch outlives it, and none made before it is reused."""
    information._built.cache_clear()
    yield
    information._built.cache_clear()


def run(*args):
    return CliRunner().invoke(cli, list(args))


def check(derivation, name):
    found = [c for c in derivation.all_checks if c.name == name]
    assert found, (name, [c.name for c in derivation.all_checks])
    return found[0]


# ----------------------------------------------- test-only reference (mpmath, Fraction)

def mp(x: Fraction) -> mpmath.mpf:
    return mpmath.mpf(x.numerator) / x.denominator


def ref_entropy(P) -> mpmath.mpf:
    with mpmath.workdps(40):
        return -sum((mp(p) * mpmath.log(mp(p)) for p in P if p), mpmath.mpf(0))


def ref_cross(P, Q) -> mpmath.mpf:
    with mpmath.workdps(40):
        return -sum((mp(p) * mpmath.log(mp(q)) for p, q in zip(P, Q) if p), mpmath.mpf(0))


def ref_kl(P, Q) -> mpmath.mpf:
    with mpmath.workdps(40):
        return sum((mp(p) * mpmath.log(mp(p) / mp(q)) for p, q in zip(P, Q) if p), mpmath.mpf(0))


def ref_mi(joint) -> mpmath.mpf:
    rows = [sum(row, Fraction(0)) for row in joint]
    columns = [sum(column, Fraction(0)) for column in zip(*joint)]
    with mpmath.workdps(40):
        return sum((mp(p) * mpmath.log(mp(p) / (mp(rows[x]) * mp(columns[y])))
                    for x, row in enumerate(joint) for y, p in enumerate(row) if p), mpmath.mpf(0))


def close(value, reference) -> bool:
    return abs(mpmath.mpf(value) - reference) <= 1e-12 * max(1, abs(reference))


def text(values) -> str:
    return ",".join(str(v) for v in values)


# ------------------------------------------------------------- strategies

weights = st.lists(st.integers(0, 6), min_size=1, max_size=6).filter(any)


def normalise(counts) -> list[Fraction]:
    total = sum(counts)
    return [Fraction(c, total) for c in counts]


@st.composite
def pairs(draw):
    """(P, Q) of one length, Q > 0 wherever P > 0; zeros in either, Q = P sometimes."""
    P = normalise(draw(weights))
    if draw(st.booleans()) and draw(st.booleans()):
        return P, list(P)
    extra = draw(st.lists(st.integers(0, 5), min_size=len(P), max_size=len(P)))
    Q = normalise([e + (1 if p else 0) for e, p in zip(extra, P)])
    return P, Q


@st.composite
def joints(draw):
    rows, columns = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    cells = draw(st.lists(st.integers(0, 5), min_size=rows * columns, max_size=rows * columns).filter(any))
    flat = normalise(cells)
    return [flat[r * columns:(r + 1) * columns] for r in range(rows)]


# -------------------------------------------------- agreement with the reference

@SETTINGS
@given(weights.map(normalise))
def test_entropy_agrees_with_reference(P):
    derivation = solve("entropy", {"P": text(P)})
    assert derivation.passed, [c for c in derivation.all_checks if not c.passed]
    assert close(derivation.value, ref_entropy(P))
    assert not derivation.answer.has(sp.Float)  # exact: logs kept symbolic


@SETTINGS
@given(pairs())
def test_cross_entropy_and_kl_agree_with_reference(pair):
    P, Q = pair
    raw = {"P": text(P), "Q": text(Q)}
    cross, kl = solve("cross-entropy", raw), solve("kl", raw)
    assert cross.passed and kl.passed
    assert close(cross.value, ref_cross(P, Q)) and close(kl.value, ref_kl(P, Q))
    assert (kl.answer == 0) == (P == Q)
    assert sp.expand(cross.answer - kl.answer - solve("entropy", {"P": raw["P"]}).answer) == 0


@SETTINGS
@given(joints())
def test_mutual_information_agrees_with_reference(joint):
    raw = {"joint": ";".join(text(row) for row in joint)}
    derivation = solve("mutual-information", raw)
    assert derivation.passed, [c for c in derivation.all_checks if not c.passed]
    assert close(derivation.value, ref_mi(joint))


def test_three_by_three_joint_and_one_cell():
    joint = [[Fraction(1, 9)] * 3, [Fraction(1, 18), Fraction(1, 6), Fraction(1, 9)],
             [Fraction(1, 12), Fraction(1, 12), Fraction(1, 6)]]
    derivation = solve("mutual-information", {"joint": ";".join(text(r) for r in joint)})
    assert derivation.passed and close(derivation.value, ref_mi(joint))
    one = solve("mutual-information", {"joint": "1"})
    assert one.passed and one.answer == 0 and one.value == 0


# --------------------------------------------------------- hand-computed cases

@pytest.mark.parametrize("family, raw, expected", [
    ("entropy", {"P": "1/2,1/2"}, LN2),
    ("entropy", {"P": "1"}, 0),
    ("entropy", {"P": "1/4,1/4,1/4,1/4"}, 2 * LN2),
    ("entropy", {"P": "1/2,1/4,1/4,0"}, 3 * LN2 / 2),
    ("entropy", {"P": "0.5,0.5"}, LN2),
    ("kl", {"P": "1/2,1/2", "Q": "1/4,3/4"}, LN2 - LN3 / 2),
    ("kl", {"P": "1,0", "Q": "1/2,1/2"}, LN2),
    ("kl", {"P": "1/3,2/3", "Q": "1/3,2/3"}, 0),
    ("cross-entropy", {"P": "1/2,1/2", "Q": "1/4,3/4"}, 2 * LN2 - LN3 / 2),
    ("cross-entropy", {"P": "1,0", "Q": "1/2,1/2"}, LN2),
    ("mutual-information", {"joint": "1/2,0;0,1/2"}, LN2),
    ("mutual-information", {"joint": "1/4,1/4;1/4,1/4"}, 0),
    ("mutual-information", {"joint": "1/6,1/3;1/6,1/3"}, 0),  # independent, unequal marginals
    ("mutual-information", {"joint": "1/4,1/4;0,1/2"}, 3 * LN2 / 2 - 3 * LN3 / 4),
])
def test_exact_answers(family, raw, expected):
    derivation = solve(family, raw)
    assert derivation.passed
    assert sp.expand(derivation.answer - expected) == 0
    assert "." not in str(derivation.answer)  # no decimals such as 0.693...


@pytest.mark.parametrize("family, raw", [
    ("entropy", {"P": ",".join(["1/6"] * 6)}),      # at the bound ln 6 = ln 2 + ln 3: decided exactly
    ("entropy", {"P": ",".join(["1/12"] * 12)}),
    ("entropy", {"P": "0,1/10,1/10,1/10,1/10,1/10,1/10,1/10,1/10,1/10,1/10"}),
    ("mutual-information", {"joint": "1/6,0,0;0,1/3,0;0,0,1/2"}),  # Y a function of X: I = H(X) = H(Y)
    ("mutual-information", {"joint": "1/6,1/6;1/3,0;0,1/3"}),      # X determines Y: I = H(Y)
])
def test_bounds_hold_with_equality(family, raw):
    derivation = solve(family, raw)
    assert derivation.passed, [c for c in derivation.all_checks if not c.passed]


def test_answer_expr_is_closed_and_json_is_exact():
    result = run("solve", "kl", "-p", "P=1/2,1/2", "-p", "Q=1/4,3/4", "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["answer"]["expr"] == "log(2) - log(3)/2"
    assert data["params"] == {"P": ["1/2", "1/2"], "Q": ["1/4", "3/4"]}
    assert abs(data["answer"]["value"] - (mpmath.log(2) - mpmath.log(3) / 2)) < 1e-15
    names = [c["name"] for c in data["checks"]]
    assert len(names) == len(set(names))
    assert "KL(P||Q) >= 0, equal to 0 iff P = Q" in names
    assert any(s["name"] == "cross-entropy minus entropy" for s in data["steps"])


def test_identities_are_steps():
    cross = solve("cross-entropy", {"P": "1/2,1/3,1/6", "Q": "1/3,1/3,1/3"})
    assert any(s.name == "entropy plus divergence" and s.checked for s in cross.steps)
    mutual = solve("mutual-information", {"joint": "1/4,1/4;0,1/2"})
    names = [s.name for s in mutual.steps]
    assert "mutual information from the entropies" in names and "mutual information as a divergence" in names
    marginal_steps = [s for s in mutual.steps if s.name.startswith(("row sums", "column sums"))]
    assert [s.forms[0] for s in marginal_steps] == [(R(1, 2), R(1, 2)), (R(1, 4), R(3, 4))]


def test_zero_convention_step_only_where_needed():
    assert solve("entropy", {"P": "1/2,1/2,0"}).steps[0].name == "the convention for zero probabilities"
    assert all(s.name != "the convention for zero probabilities" for s in solve("entropy", {"P": "1/2,1/2"}).steps)


# ----------------------------------------------- a wrong answer makes a check fail

def test_wrong_entropy_fails_named_checks(monkeypatch, fresh_cache):
    real = information.entropy_exact
    monkeypatch.setattr(information, "entropy_exact", lambda P: real(P) + R(1, 10))
    derivation = solve("entropy", {"P": "1/2,1/4,1/4"})
    assert check(derivation, "H(P) vs -sum P ln P in mpmath at 50 digits").passed is False
    assert check(derivation, "H(P): SymPy's collected logs = an own prime-by-prime tally").passed is False
    assert not derivation.passed


def test_entropy_above_the_uniform_bound_fails(monkeypatch, fresh_cache):
    monkeypatch.setattr(information, "entropy_exact", lambda P: sp.log(5))
    derivation = solve("entropy", {"P": "1/2,1/4,1/4"})
    assert check(derivation, "0 <= H(P) <= ln 3 (support size), equal to ln 3 iff P is uniform on its support"
                 ).passed is False


def test_wrong_kl_reference_fails(monkeypatch, fresh_cache):
    monkeypatch.setattr(information, "reference_kl", lambda P, Q: mpmath.mpf("0.15"))
    derivation = solve("kl", {"P": "1/2,1/2", "Q": "1/4,3/4"})
    assert check(derivation, "KL(P||Q) vs sum P ln(P/Q) in mpmath at 50 digits").passed is False


def test_negative_kl_fails_gibbs(monkeypatch, fresh_cache):
    real = information.kl_exact
    monkeypatch.setattr(information, "kl_exact", lambda P, Q: -real(P, Q))
    derivation = solve("kl", {"P": "1/2,1/2", "Q": "1/4,3/4"})
    assert check(derivation, "KL(P||Q) >= 0, equal to 0 iff P = Q").passed is False
    assert check(derivation, "KL(P||Q) = H(P,Q) - H(P) exactly (SymPy)").passed is False


def test_wrong_divergence_breaks_the_cross_entropy_identity(monkeypatch, fresh_cache):
    real = information.kl_exact
    monkeypatch.setattr(information, "kl_exact", lambda P, Q: real(P, Q) + sp.log(2) / 100)
    derivation = solve("cross-entropy", {"P": "1/2,1/2", "Q": "1/4,3/4"})
    assert check(derivation, "H(P,Q) = H(P) + KL(P||Q) exactly (SymPy)").passed is False
    assert check(derivation, "H(P) + KL(P||Q) vs mpmath at 50 digits").passed is False
    assert check(derivation, "H(P,Q) vs -sum P ln Q in mpmath at 50 digits").passed is True


def test_wrong_mutual_information_divergence_fails(monkeypatch, fresh_cache):
    monkeypatch.setattr(information, "mutual_information_divergence", lambda joint, rows, columns: sp.log(2))
    derivation = solve("mutual-information", {"joint": "1/4,1/4;0,1/2"})
    assert check(derivation, "I(X;Y): H(X) + H(Y) - H(X,Y) = KL(P_XY || P_X P_Y) exactly (SymPy)").passed is False


def test_mutual_information_above_the_bound_fails(monkeypatch, fresh_cache):
    real = information.entropy_exact
    calls = []

    def inflated_joint_entropy(values):  # the third call is H(X,Y): make it too small
        calls.append(values)
        return real(values) - (sp.log(2) if len(calls) == 3 else 0)
    monkeypatch.setattr(information, "entropy_exact", inflated_joint_entropy)
    derivation = solve("mutual-information", {"joint": "1/4,1/4;0,1/2"})
    assert check(derivation, "0 <= I(X;Y) <= min(H(X), H(Y)), I = 0 iff X and Y are independent").passed is False
    assert check(derivation, "I(X;Y) vs the double sum of P ln(P/(P_X P_Y)) in mpmath at 50 digits").passed is False


# ------------------------------------------------------------------- grading

@pytest.mark.parametrize("family, raw, answers", [
    ("entropy", {"P": "1/2,1/2"}, ["ln 2", "log(2)", "ln(2)", r"\ln 2", r"\log 2", "0.6931", "-log(1/2)"]),
    ("entropy", {"P": "1/2,1/4,1/4"}, ["3/2 ln 2", "3*log(2)/2", r"\frac{3}{2}\ln 2", "log(8)/2"]),
    ("kl", {"P": "1/2,1/2", "Q": "1/4,3/4"}, ["ln 2 - ln(3)/2", "log(2/sqrt(3))", r"\ln 2 - \frac{1}{2}\ln 3"]),
    ("cross-entropy", {"P": "1/2,1/2", "Q": "1/4,3/4"}, ["2 ln 2 - ln(3)/2", "log(4/sqrt(3))"]),
    ("mutual-information", {"joint": "1/4,1/4;0,1/2"}, ["3/2 ln 2 - 3/4 ln 3", r"\frac{3}{2}\ln 2 - \frac{3}{4}\ln 3"]),
])
def test_grade_accepts_equivalent_forms(family, raw, answers):
    for answer in answers:
        result = grading.grade(family, raw, answer)
        assert result.correct, (answer, result.feedback)


@pytest.mark.parametrize("family, raw, answer, mistake, words", [
    ("entropy", {"P": "1/2,1/2"}, "1", "log-base", "log base 2"),
    ("entropy", {"P": "1/2,1/4,1/4"}, "3/2", "log-base", "log base 2"),
    ("entropy", {"P": "1/2,1/4,1/4"}, "ln 3", "uniform", "uniform"),
    ("kl", {"P": "1/2,1/2", "Q": "1/4,3/4"}, "3/4 ln(3/2) - 1/4 ln(2)", "swapped", "KL(Q||P)"),
    ("kl", {"P": "1/2,1/2", "Q": "1/4,3/4"}, "1 - log(3)/(2*log(2))", "log-base", "log base 2"),
    ("cross-entropy", {"P": "1/3,2/3", "Q": "1/2,1/2"}, "-(1/2) ln(1/3) - (1/2) ln(2/3)", "swapped", "swapped"),
    ("cross-entropy", {"P": "1/2,1/2", "Q": "1/4,3/4"}, "2 - log(3)/(2*log(2))", "log-base", "log base 2"),
    ("mutual-information", {"joint": "1/4,1/4;0,1/2"}, "3 ln 2 - 3/4 ln 3", "joint-left-out", "H(X,Y)"),
    ("mutual-information", {"joint": "1/2,0;0,1/2"}, "1", "log-base", "log base 2"),
])
def test_grade_names_model_mistakes(family, raw, answer, mistake, words):
    result = grading.grade(family, raw, answer)
    assert not result.correct
    assert result.mistake == mistake, result.feedback
    assert words in result.feedback


def test_swapped_kl_is_not_offered_where_it_is_infinite():
    family = FAMILIES["kl"]
    assert family.mistakes(family.parse({"P": "1,0", "Q": "1/2,1/2"})) == []


def test_mutual_information_swapped_divergence():
    joint = "1/8,3/8;3/8,1/8"
    family = FAMILIES["mutual-information"]
    params = family.parse({"joint": joint})
    swapped = dict((code, value) for code, value, _ in family.mistakes(params))["swapped"]
    result = grading.grade("mutual-information", {"joint": joint}, str(swapped))
    assert result.mistake == "swapped" and "KL(P_X P_Y || P_XY)" in result.feedback


# ------------------------------------------------------------------- the CLI

@pytest.mark.parametrize("args, words", [
    (["kl", "-p", "P=1/2,1/2", "-p", "Q=1,0"], "parameter 'Q': entry 1 is 0 where P is 1/2 > 0, so KL(P||Q) is infinite"),
    (["cross-entropy", "-p", "P=1/2,1/2", "-p", "Q=0,1"], "parameter 'Q': entry 0 is 0 where P is 1/2 > 0"),
    (["entropy", "-p", "P=1/2,1/3"], "parameter 'P': entries sum to 5/6, not 1"),
    (["entropy", "-p", "P=3/2,-1/2"], "parameter 'P': entry 1 is negative"),
    (["entropy", "-p", "P=1/2,x"], "parameter 'P': 'x' is not a number"),
    (["kl", "-p", "P=1/2,1/2", "-p", "Q=1/3,1/3,1/3"], "parameter 'Q': has 3 entries but P has 2"),
    (["mutual-information", "-p", "joint=1/4,1/4;1/4"], "parameter 'joint': rows have different lengths"),
    (["mutual-information", "-p", "joint=1/4,1/4;1/4,1/2"], "parameter 'joint': entries sum to 5/4, not 1"),
    (["entropy", "-p", "P=1/3000000000000000,2999999999999999/3000000000000000"], "denominator above 10^15"),
    (["mutual-information", "-p", "joint=1/99999989,1/99999847;99999987/199999978,99999845/199999694"],
     "the sum of row 0"),  # each cell fine, the row sum's denominator near 10^16
    (["entropy", "-p", "Q=1"], "parameter 'Q': unknown parameter for entropy"),
])
def test_bad_input_is_one_error_line_exit_2(args, words):
    result = run("solve", *args)
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and words in lines[0], lines


def test_solve_markdown_is_deterministic():
    first = run("solve", "mutual-information", "-p", "joint=1/4,1/4;0,1/2")
    second = run("solve", "mutual-information", "-p", "joint=1/4,1/4;0,1/2")
    assert first.exit_code == 0 and first.output == second.output
    assert "0 \\ln 0" in first.output and "P_X(x)" in first.output


def test_long_sums_stay_short():
    P = ",".join(f"{k}/210" for k in range(1, 21))
    derivation = solve("kl", {"P": P, "Q": ",".join(["1/20"] * 20)})
    assert derivation.passed
    assert all(len(step.latex) < 600 for step in derivation.steps), max(len(s.latex) for s in derivation.steps)
    assert len(derivation.tables[0].rows) == 20


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex not installed")
@pytest.mark.parametrize("args", [
    ["entropy", "-p", "P=" + ",".join(f"{k}/210" for k in range(1, 21))],
    ["kl", "-p", "P=1/2,1/4,1/4,0", "-p", "Q=1/8,1/8,1/4,1/2"],
    ["mutual-information", "-p", "joint=" + ";".join([",".join(["1/36"] * 6)] * 6)],
])
def test_latex_compiles_without_overfull_boxes(tmp_path, args):
    result = run("solve", *args, "--format", "latex")
    assert result.exit_code == 0, result.output
    (tmp_path / "sheet.tex").write_text(result.output)
    compiled = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "sheet.tex"],
                              cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert compiled.returncode == 0, compiled.stdout[-2000:]
    log = (tmp_path / "sheet.log").read_text(encoding="latin-1")
    assert not re.search(r"Overfull \\hbox", log), log[log.find("Overfull"):][:400]


# -------------------------------------------------- generators and verify

@pytest.mark.parametrize("name", INFO_FAMILIES)
def test_generated_variants_parse_and_pass(name):
    family = FAMILIES[name]
    rng = random.Random(11)
    drawn = [family.generate(rng) for _ in range(60)]
    for raw in drawn:
        derivation = solve(name, raw)
        assert derivation.passed, (raw, [c for c in derivation.all_checks if not c.passed])
    again = random.Random(11)
    assert [family.generate(again) for _ in range(60)] == drawn
    assert isinstance(family.domain, str) and family.domain and "\n" not in family.domain


def test_generators_reach_the_edge_cases():
    rng = random.Random(5)
    entropies = [FAMILIES["entropy"].generate(rng)["P"] for _ in range(200)]
    assert any(p == "1" for p in entropies)  # a one-point distribution
    assert any("0" in p.split(",") for p in entropies)  # a zero probability
    joints = [FAMILIES["mutual-information"].generate(rng)["joint"] for _ in range(200)]
    assert any(j.count(";") == 2 and j.split(";")[0].count(",") == 2 for j in joints)  # 3 x 3
    pairs = [FAMILIES["kl"].generate(rng) for _ in range(200)]
    assert any(p["P"] == p["Q"] for p in pairs)


@pytest.mark.parametrize("name", INFO_FAMILIES)
def test_verify_rows_pass(name):
    row = verify_family(name, 25, seed=3)
    assert row.failures == 0, row.failed
    assert row.cases == 25 and row.checks > 25


def test_long_decimals_within_rounding_are_read():
    derivation = solve("entropy", {"P": "0.3333333333333,0.3333333333333,0.3333333333333"})
    assert derivation.passed and abs(derivation.value - float(mpmath.log(3))) < 1e-11


def test_parse_rejects_bad_joints_directly():
    with pytest.raises(ParameterError, match="row 1, column 0 is negative"):
        information.parse_joint("1/2,1/2;-1/4,1/4", "joint")
    with pytest.raises(ParameterError, match="at most 8 x 8"):
        information.parse_joint(";".join([",".join(["1/81"] * 9)] * 9), "joint")
