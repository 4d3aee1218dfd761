"""Problem 2 (derivations/gan.py): the bigram GAN sampler, its string and its zero gradient."""
from __future__ import annotations

import bisect
import dataclasses
import random
import re
import shutil
import subprocess
import time
from fractions import Fraction

import pytest
import sympy as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from derivations import gan
from derivations.core import ALIASES, FAMILIES, solve
from derivations.exam import load_exam
from derivations.values import ParameterError

GAN_FAMILIES = ("gan-first-word", "gan-next-word", "gan-string", "gan-gradient")
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# ------------------------------------------------------ a third, test-only path

def bisect_word(probs, eps) -> int:
    """The contract's convention with bisect over exact cumulative sums (independent of gan.py)."""
    values = [Fraction(str(p)) for p in probs]
    eps = Fraction(str(eps))
    positive = [i for i, p in enumerate(values) if p > 0]
    if eps == 1:
        return positive[-1]
    sums, running = [], Fraction(0)
    for p in values:
        running += p
        sums.append(running)
    index = bisect.bisect_right(sums, eps)  # first i with eps < C_i
    while index < len(values) and values[index] == 0:
        index += 1
    return index if index < len(values) else positive[-1]


def text(values) -> str:
    return ",".join(str(v) for v in values)


@pytest.fixture
def fresh_caches():
    """Monkeypatched derivations must not reuse results cached from the real ones."""
    cached = (gan.build_sampler, gan.analyse, gan.generic_sampler, gan.check_generic_sampler,
              gan.boundary_step, gan.first_word_remarks, gan.rule_intervals, gan.relaxed_output,
              gan._rule_bounds, gan._expanded_rule_bounds, gan._cdf_parts, gan._frequencies, gan._misplaced,
              gan._grid_disagreements, gan._boundary_words)  # the originals, captured before any monkeypatching

    def clear():
        for function in cached:
            function.cache_clear()
    clear()
    yield
    clear()


# ------------------------------------------------------------- seed answers

@pytest.mark.parametrize("problem, expected", [
    ("2a", 1), ("2b", 1), ("2c", [0, 0, 0]), ("gan-first-word", 1), ("gan-next-word", 1),
    ("gan-string", [1, 1, 0]), ("gan-gradient", [0, 0, 0]),
])
def test_seed_answers(problem, expected):
    derivation = solve(problem)
    assert derivation.value == expected
    assert derivation.passed
    assert all(step.checked for step in derivation.steps)
    payload = derivation.to_json()
    assert payload["answer"]["value"] == expected
    assert all(check["passed"] for check in payload["checks"])


def test_aliases_and_exam_problem():
    assert ALIASES["2a"].family == "gan-first-word"
    assert ALIASES["2b"].family == "gan-next-word"
    assert ALIASES["2c"].family == "gan-gradient"
    problem = load_exam().problems[1]
    assert problem.points == 25 and [part.use for part in problem.parts] == ["2a", "2b", "2c"]
    for name in GAN_FAMILIES:
        assert name in FAMILIES


def test_seed_cumulative_sums_intervals_and_lengths():
    derivation = solve("2a")
    by_name = {step.name: step for step in derivation.steps}
    third, fifth, half = sp.Rational(3, 10), sp.Rational(1, 5), sp.Rational(1, 2)
    assert by_name["cumulative sums, evaluated"].forms[0] == (fifth, sp.Rational(7, 10), 1)
    intervals = by_name["one interval per word"].forms[0]
    assert intervals == (sp.Interval.Ropen(0, fifth), sp.Interval.Ropen(fifth, sp.Rational(7, 10)),
                         sp.Interval(sp.Rational(7, 10), 1))
    lengths = by_name["each word has the right probability"].forms[0]
    assert lengths == (fifth, half, third) and sum(lengths) == 1
    piecewise = by_name["the sampler"].forms[0]
    assert isinstance(piecewise, sp.Piecewise)
    assert piecewise.subs(gan.EPS, sp.Rational(3, 5)) == 1
    assert piecewise.subs(gan.EPS, fifth) == 1  # half-open: the boundary belongs to the next word
    assert piecewise.subs(gan.EPS, 1) == 2


def test_seed_sampling_check_is_reported():
    checks = {check.name: check for check in solve("2a").all_checks}
    sampling = checks["20000 seeded uniform draws through the sampler of P"]
    assert sampling.passed and "seed 31230" in sampling.detail


# ------------------------------------------------------------ boundary cases

@pytest.mark.parametrize("probs, eps, expected", [
    ("1/5,1/2,3/10", "0", 0),
    ("1/5,1/2,3/10", "1/5", 1),
    ("1/5,1/2,3/10", "7/10", 2),
    ("1/5,1/2,3/10", "1", 2),
    ("0,1/2,0,1/2,0", "0", 1),       # leading zero-probability word skipped
    ("0,1/2,0,1/2,0", "1/2", 3),     # a zero-probability word between two boundaries
    ("0,1/2,0,1/2,0", "1", 3),       # eps = 1: the last word of positive probability
    ("1", "1", 0),
    ("1", "0", 0),
    ("0.1,0.2,0.7", "0.3", 2),
    ("0.3333333333333,0.3333333333333,0.3333333333333", "0.99999999999995", 2),  # rounding slack
    ("0.3333333333333,0.3333333333333,0.3333333333333", "1", 2),
])
def test_first_word_boundaries(probs, eps, expected):
    derivation = solve("gan-first-word", {"P": probs, "eps": eps})
    assert derivation.value == expected == bisect_word(probs.split(","), eps)
    assert derivation.passed


def test_zero_probability_words_are_never_produced():
    derivation = solve("gan-first-word", {"P": "0,1/2,0,1/2,0", "eps": "1/4"})
    names = [check.name for check in derivation.all_checks]
    assert "zero-probability words of P are never produced" in names
    sampler = gan.build_sampler(tuple(sp.Rational(x) for x in ("0", "1/2", "0", "1/2", "0")), gan.EPS)
    assert sampler.intervals[0] is sp.S.EmptySet and sampler.intervals[2] is sp.S.EmptySet
    assert sampler.intervals[4] is sp.S.EmptySet
    for point in [Fraction(k, 64) for k in range(65)]:
        assert sampler.word(point) in (1, 3)


def test_next_word_uses_the_row_of_the_current_word():
    q = "1/2,1/4,1/4;1/3,1/3,1/3;0,1/2,1/2"
    for w, row in enumerate(["1/2,1/4,1/4", "1/3,1/3,1/3", "0,1/2,1/2"]):
        for eps in ("0", "1/4", "1/3", "1/2", "3/4", "1"):
            derivation = solve("gan-next-word", {"Q": q, "w": str(w), "eps": eps})
            assert derivation.value == bisect_word(row.split(","), eps)
            assert derivation.passed


def test_string_follows_the_chain():
    derivation = solve("gan-string", {"P": "1/2,1/2", "Q": "0,1;1,0", "eps": "1/4,0,1/2,1"})
    assert derivation.value == [0, 1, 0, 1]  # the deterministic rows alternate the words
    probability = next(step for step in derivation.steps if step.name == "probability of the string")
    assert probability.forms[-1] == sp.Rational(1, 2)
    assert derivation.passed


def test_gradient_contrast_steps():
    derivation = solve("2c")
    by_name = {step.name: step for step in derivation.steps}
    assert by_name["its gradient"].forms[0] == (0, 1, 2)
    assert by_name["its gradient at the given noise"].forms[0] == (-2, sp.Rational(-8, 5), 0)
    jump = by_name["no derivative on a boundary"].forms[0]
    assert jump == -1 / gan.H
    assert "(REINFORCE)" in " ".join(remark.text for remark in derivation.remarks)
    assert "zero gradient" in derivation.answer_text


# ------------------------------------------------------------------ remarks

def test_key_remarks():
    first = [remark for remark in solve("2a").remarks if remark.kind == "key"]
    assert len(first) == 1 and r"\left\{\frac{1}{5}\right\}" in first[0].text  # the shared end point
    second = [remark for remark in solve("2b").remarks if remark.kind == "key"]
    assert len(second) == 1
    assert r"\left(j + 1\right) {Q}_{w_{t},j}" in second[0].text  # SymPy evaluates the key's upper sum
    assert r"\sum_{k=0}^{j - 1} {Q}_{w_{t},k}" in second[0].text   # the corrected rule


# ----------------------------------------------------------------- bad input

@pytest.mark.parametrize("problem, raw, name, fragment", [
    ("2a", {"P": "-1/5,3/5,3/5"}, "P", "negative"),
    ("2a", {"P": "1/5,1/5"}, "P", "sum"),
    ("2a", {"P": "0.3,0.3,0.3"}, "P", "sum"),
    ("2a", {"P": ""}, "P", "empty"),
    ("2a", {"P": "1/5,x"}, "P", "not a number"),
    ("2a", {"P": ",".join(["1/30"] * 30)}, "P", "at most"),
    ("2a", {"eps": "3/2"}, "eps", "outside [0, 1]"),
    ("2a", {"eps": "-0.1"}, "eps", "outside [0, 1]"),
    ("2a", {"eps": "1/0"}, "eps", "divides by zero"),
    ("2a", {"w": "1"}, "w", "unknown parameter"),
    ("2b", {"w": "3"}, "w", "outside the vocabulary"),
    ("2b", {"w": "-1"}, "w", ">= 0"),
    ("2b", {"w": "1.5"}, "w", "not an integer"),
    ("2b", {"Q": "1/2,1/2;1"}, "Q", "different lengths"),
    ("2b", {"Q": "1/2,1/2;1/2,1/2;1/2,1/2"}, "Q", "square"),
    ("2b", {"Q": "1/2,1/2;1/2,1/4", "w": "0"}, "Q", "row 1"),
    ("2b", {"Q": "1/2,1/2;-1/2,3/2", "w": "0"}, "Q", "row 1"),
    ("gan-string", {"eps": ""}, "eps", "empty list"),
    ("gan-string", {"eps": "1/2,2"}, "eps", "position 2"),
    ("gan-string", {"P": "1/2,1/2"}, "Q", "same vocabulary"),
    ("2c", {"eps": "1/5"}, "eps", "boundary"),
    ("2c", {"eps": "7/10"}, "eps", "boundary"),
    ("2c", {"P": "1/2,1/2,0", "eps": "1"}, "eps", "probability zero"),
    ("2c", {"P": "0,1/2,1/2", "eps": "0"}, "eps", "boundary"),
])
def test_bad_input(problem, raw, name, fragment):
    with pytest.raises(ParameterError) as error:
        solve(problem, raw)
    assert error.value.name == name
    assert fragment in str(error.value)


def test_gradient_accepts_the_ends_of_the_noise_range_when_they_are_not_jumps():
    assert solve("2c", {"eps": "0"}).value == [0, 0, 0]
    assert solve("2c", {"eps": "1"}).value == [0, 0, 0]
    assert solve("2c", {"P": "1", "eps": "1/2"}).value == [0]


# ------------------------------------------- checks must be able to fail

def test_wrong_cumulative_sums_fail_the_checks(monkeypatch, fresh_caches):
    """Off by one: C_i = sum over j < i. The sampler is then wrong and the checks must say so."""
    def exclusive(probs):
        total, sums = sp.Integer(0), []
        for p in probs:
            sums.append(total)
            total += p
        sums[-1] = total  # keep the top at 1 so the Piecewise still covers [0, 1]
        return tuple(sums)
    monkeypatch.setattr(gan, "cumulative_sums", exclusive)
    derivation = solve("2a")
    failed = [check.name for check in derivation.all_checks if not check.passed]
    assert not derivation.passed
    assert any("cumulative sums" in name for name in failed)
    assert any("seeded uniform draws" in name for name in failed)
    assert any("direct scan" in name for name in failed)


def test_closed_intervals_fail_the_boundary_check(monkeypatch, fresh_caches):
    """The key's closed intervals give eps = C_i to the lower word: the boundary check catches it."""
    real = gan.build_sampler.__wrapped__

    def closed(probs, symbol):
        sampler = real(probs, symbol)
        intervals = tuple(sp.Interval(i.start, i.end) if i is not sp.S.EmptySet else i for i in sampler.intervals)
        pieces = [(sp.Integer(k), sp.Contains(symbol, i)) for k, i in enumerate(intervals) if i is not sp.S.EmptySet]
        return dataclasses.replace(sampler, intervals=intervals, piecewise=sp.Piecewise(*pieces))
    monkeypatch.setattr(gan, "build_sampler", closed)
    monkeypatch.setattr(gan, "analyse", gan.analyse.__wrapped__)
    derivation = solve("2a", {"eps": "1/5"})
    failed = {check.name for check in derivation.all_checks if not check.passed}
    assert "sampler of P at eps = 0, every C_i and 1 vs the direct scan" in failed
    assert "intervals of P partition [0, 1] as the direct scan does" in failed
    assert "requested eps = 1/5: Piecewise vs direct scan" in failed


def test_nonzero_gradient_fails_the_finite_differences(monkeypatch, fresh_caches):
    """Claim the gradient of the expected index for the word: finite differences refute it."""
    real = gan.generic_sampler.__wrapped__

    def wrong(size):
        symbols, word, gradient, expected, expected_gradient = real(size)
        return symbols, word, expected_gradient, expected, expected_gradient
    monkeypatch.setattr(gan, "generic_sampler", wrong)
    derivation = solve("2c")
    assert not derivation.passed
    failed = {check.name for check in derivation.all_checks if not check.passed}
    assert any(name.startswith("exact difference quotients along each P[j]") for name in failed)
    assert any(name.startswith("difference quotients along P + h(e_a - e_b)") for name in failed)


def test_sampling_check_fails_for_the_wrong_distribution():
    right = gan.build_sampler((sp.Rational(1, 5), sp.Rational(1, 2), sp.Rational(3, 10)), gan.EPS)
    other = gan.build_sampler((sp.Rational(1, 4), sp.Rational(1, 2), sp.Rational(1, 4)), gan.EPS)
    assert gan.check_sampling(right, "P", gan.sampling_frequencies(right)).passed
    assert not gan.check_sampling(right, "P", gan.sampling_frequencies(other)).passed


def test_the_keys_garbled_rule_is_caught(monkeypatch, fresh_caches):
    """Read literally, the key's upper end sum_{k<=j} Q[w_t, j] is (j + 1) Q[w_t, j]: the rule check fails."""
    real = gan._rule_bounds.__wrapped__

    def garbled(row, j):
        low, _ = real(row, j)
        return low, (j + 1) * gan.Q_BASE[row, j]
    monkeypatch.setattr(gan, "_rule_bounds", garbled)
    derivation = solve("2b", {"w": "0", "eps": "3/5"})  # row (1/2, 1/4, 1/4): the word is 1
    assert derivation.value == 1
    failed = {check.name for check in derivation.all_checks if not check.passed}
    assert failed == {"the rule with corrected indices, expanded for row 0 at eps = 3/5"}


# --------------------------------------------------- property-based checks

@st.composite
def distributions(draw, min_size=1, max_size=5, zeros=True):
    size = draw(st.integers(min_size, max_size))
    weights = draw(st.lists(st.integers(0 if zeros else 1, 6), min_size=size, max_size=size))
    if sum(weights) == 0:
        weights[draw(st.integers(0, size - 1))] = 1
    total = sum(weights)
    return [sp.Rational(w, total) for w in weights]


@st.composite
def noise_values(draw, probs=None):
    """Grid points, the distribution's own boundaries, 0 and 1."""
    choices = [st.integers(0, 40).map(lambda k: sp.Rational(k, 40)), st.sampled_from([sp.Integer(0), sp.Integer(1)])]
    if probs:
        sums = list(gan.cumulative_sums(probs))
        choices.append(st.sampled_from(sums))
    return draw(st.one_of(*choices))


@SETTINGS
@given(st.data())
def test_first_word_property(data):
    probs = data.draw(distributions())
    eps = data.draw(noise_values(probs))
    derivation = solve("gan-first-word", {"P": text(probs), "eps": str(eps)})
    assert derivation.value == bisect_word(probs, eps)
    assert probs[derivation.value] > 0
    assert derivation.passed, [c for c in derivation.all_checks if not c.passed]


@SETTINGS
@given(st.data())
def test_next_word_property(data):
    size = data.draw(st.integers(1, 4))
    rows = [data.draw(distributions(size, size)) for _ in range(size)]
    w = data.draw(st.integers(0, size - 1))
    eps = data.draw(noise_values(rows[w]))
    derivation = solve("gan-next-word", {"Q": ";".join(text(r) for r in rows), "w": str(w), "eps": str(eps)})
    assert derivation.value == bisect_word(rows[w], eps)
    assert derivation.passed, [c for c in derivation.all_checks if not c.passed]


@SETTINGS
@given(st.data())
def test_string_property(data):
    size = data.draw(st.integers(1, 4))
    probs = data.draw(distributions(size, size))
    rows = [data.draw(distributions(size, size)) for _ in range(size)]
    noise = data.draw(st.lists(noise_values(), min_size=1, max_size=7))
    derivation = solve("gan-string", {"P": text(probs), "Q": ";".join(text(r) for r in rows),
                                      "eps": text(noise)})
    expected = [bisect_word(probs, noise[0])]
    for eps in noise[1:]:
        expected.append(bisect_word(rows[expected[-1]], eps))
    assert derivation.value == expected
    assert derivation.passed, [c for c in derivation.all_checks if not c.passed]


@SETTINGS
@given(st.data())
def test_gradient_property(data):
    probs = data.draw(distributions(zeros=False))
    eps = data.draw(noise_values())
    if gan.jump_points(probs, eps):
        with pytest.raises(ParameterError):
            solve("gan-gradient", {"P": text(probs), "eps": str(eps)})
        return
    derivation = solve("gan-gradient", {"P": text(probs), "eps": str(eps)})
    assert derivation.value == [0] * len(probs)
    assert derivation.passed, [c for c in derivation.all_checks if not c.passed]
    # an independent look: nudging P towards another distribution never changes the word
    word = bisect_word(probs, eps)
    for a in range(len(probs)):
        for b in range(len(probs)):
            if a != b:
                moved = [Fraction(str(p)) for p in probs]
                moved[a] += Fraction(1, 10**9)
                moved[b] -= Fraction(1, 10**9)
                assert bisect_word(moved, eps) == word


# -------------------------------------------------- generation and re-entry

@pytest.mark.parametrize("name", GAN_FAMILIES)
def test_generated_variants(name):
    family = FAMILIES[name]
    rng = random.Random(2021)
    for _ in range(40):
        raw = family.generate(rng)
        params = family.parse(raw)
        derivation = family.derive(params)
        assert derivation.passed, (raw, [c for c in derivation.all_checks if not c.passed])
        # denominators a student can handle, no boundary noise, at most four words
        probs = params.get("P") or params["Q"][params["w"]]
        assert len(probs) <= 4 and all(int(p.q) in (1, 2, 4, 5, 10) for p in probs)
        assert gan.jump_points(probs, params["eps"] if name != "gan-string" else params["eps"][0]) is None
        # the -p arguments reproduce the same answer
        again = solve(name, dict(arg.split("=", 1) for arg in family.args(params)))
        assert again.value == derivation.value
    assert FAMILIES[name].generate(random.Random(7)) == FAMILIES[name].generate(random.Random(7))


# -------------------------------------------------------------------- prose

def _prose(derivation):
    yield derivation.question
    yield derivation.answer_text
    for step in derivation.steps:
        yield step.text
    for remark in derivation.remarks:
        yield remark.text
    if derivation.figure:
        yield derivation.figure.caption
    for table in derivation.tables:
        yield table.caption


@pytest.mark.parametrize("problem, raw", [
    ("2a", {}), ("2b", {}), ("2c", {}), ("gan-string", {}),
    ("gan-first-word", {"P": "0,1/2,0,1/2", "eps": "1/2"}),
    ("gan-gradient", {"P": "1/4,0,3/4", "eps": "1/2"}),
])
def test_prose_is_ascii_and_latex_safe(problem, raw):
    derivation = solve(problem, raw)
    intro = load_exam().problems[1].intro
    assert intro.isascii()
    for prose in list(_prose(derivation)) + [intro]:
        assert prose.isascii(), prose
        assert prose.count("$") % 2 == 0, prose
        outside = re.sub(r"\$[^$]*\$", "", prose)
        assert not re.search(r"[%&#_^~\\{}]", outside), (prose, outside)
    for step in derivation.steps:
        assert step.latex  # every displayed equation comes from SymPy objects


# ------------------------------------------------------------------- figure

def _render_figure(derivation) -> str:
    render = pytest.importorskip("sheets.render")
    return render.render_figure(derivation)


def test_figure_template_renders():
    picture = _render_figure(solve("2a"))
    assert r"\begin{pgfpicture}" in picture and r"\end{pgfpicture}" in picture
    assert r"\dfcolor{red!75!black}\dfline{1\dfux}{0.2000\dfuy}{1\dfux}{0.7000\dfuy}" in picture  # the chosen riser
    assert r"\dfline{-0.6\dfux}{0.6000\dfuy}{1\dfux}{0.6000\dfuy}" in picture  # eps = 3/5 meets it
    assert r"\epsilon = \frac{3}{5}" in picture
    assert "VAR" not in picture and "BLOCK" not in picture
    zero = _render_figure(solve("gan-first-word", {"P": "0,1/2,1/2", "eps": "1/4"}))
    risers = re.findall(r"\\dfline\{(\d)\\dfux\}\{([\d.]+)\\dfuy\}\{\1\\dfux\}\{([\d.]+)\\dfuy\}", zero)
    assert risers == [("1", "0.0000", "0.5000"), ("2", "0.5000", "1.0000")]  # none for the zero-probability word


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex not installed")
def test_figure_compiles(tmp_path):
    body = "\n".join(_render_figure(solve(p)) for p in ("2a", "2b"))
    source = tmp_path / "figure.tex"
    source.write_text("\\documentclass{article}\n\\usepackage{amsmath,amssymb,tikz,booktabs}\n"
                      "\\begin{document}\n" + body + "\n\\end{document}\n")
    result = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", source.name],
                            cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout[-2000:]


# ------------------------------------------------------------------- timing

@pytest.mark.parametrize("problem", ["2a", "2b", "2c", "gan-string"])
def test_derive_is_fast(problem):
    solve(problem)
    start = time.perf_counter()
    for _ in range(5):
        solve(problem)
    assert (time.perf_counter() - start) / 5 < 0.3
