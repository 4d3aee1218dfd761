"""Problem 3 (derivations/vae.py): reparameterisation, its gradient, the rate as I(s;z), and the KL rate."""
from __future__ import annotations

import dataclasses
import math
import random
import re
import shutil
import subprocess
import time
from fractions import Fraction

import mpmath
import pytest
import sympy as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from derivations import vae
from derivations.core import ALIASES, FAMILIES, solve
from derivations.exam import load_exam
from derivations.values import ParameterError

VAE_FAMILIES = ("vae-reparam", "vae-gradient", "vae-rate", "vae-kl")
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

CACHED = (vae.reparam_model, vae.reparam_general_steps, vae.gradient_general_steps, vae._vectorised_forward,
          vae.noise_mass_check, vae.kl_model, vae.kl_general_steps, vae.gaussian_entropy,
          vae._gaussian_entropy_lambda, vae.toy_decoder, vae._built, vae.reparam_location_checks,
          vae.quantile_transform, vae._kernel_latex, vae._reparam_key_text, vae._reparam_note_texts,
          vae._weighted_gaussian, vae._weighted_entropy, vae.mixture_entropy_by_components, vae.window_nodes,
          vae.gaussian_entropy_check_quad)


@pytest.fixture
def fresh_caches(monkeypatch):
    """Set up after monkeypatch and torn down before it is undone: no result derived with a patched
    function outlives the patch, and none derived before it is reused under it."""
    clear_caches()
    yield
    clear_caches()


def clear_caches():
    from derivations.core import forget_derivations
    forget_derivations()
    for function in CACHED:
        function.cache_clear()


# ----------------------------------------------------- test-only independent paths

def mutual_information_reference(weights, means, variances, dps: int = 20) -> float:
    """I(s;z) = sum_s w_s KL(N_s || p) by mpmath.quad at `dps` digits (shares no code with vae.py)."""
    with mpmath.workdps(dps):
        ws = [mpmath.mpf(Fraction(str(w)).numerator) / Fraction(str(w)).denominator for w in weights]
        ms = [mpmath.mpf(Fraction(str(m)).numerator) / Fraction(str(m)).denominator for m in means]
        vs = [mpmath.mpf(Fraction(str(v)).numerator) / Fraction(str(v)).denominator for v in variances]
        kept = [(w, m, v) for w, m, v in zip(ws, ms, vs) if w > 0]

        def normal(z, m, v):
            return mpmath.exp(-(z - m) ** 2 / (2 * v)) / mpmath.sqrt(2 * mpmath.pi * v)

        total = mpmath.mpf(0)
        for w, m, v in kept:
            s = mpmath.sqrt(v)
            points = sorted({m2 + k * mpmath.sqrt(v2) for _, m2, v2 in kept for k in (-10, -5, -2, 0, 2, 5, 10)}
                            | {m + k * s for k in (-14, 14)})
            points = [x for x in points if m - 14 * s <= x <= m + 14 * s]

            def integrand(z, m=m, v=v):
                q = normal(z, m, v)
                p = mpmath.fsum(w2 * normal(z, m2, v2) for w2, m2, v2 in kept)
                return q * mpmath.log(q / p) if q > 0 else mpmath.mpf(0)
            total += w * mpmath.quad(integrand, points)
        return float(total)


def message_entropy(weights) -> float:
    return -sum(float(w) * math.log(float(w)) for w in weights if w > 0)


def frac(value) -> str:
    return str(Fraction(value).limit_denominator(1000))


def prose_problems(text: str) -> list[str]:
    """Plain ASCII; math only between $ signs; no bare LaTeX specials outside math."""
    problems = []
    if not text.isascii():
        problems.append("non-ASCII")
    if text.count("$") % 2:
        problems.append("unbalanced $")
    outside = text.split("$")[0::2]
    for segment in outside:
        for special in "%&#_^~\\{}":
            if special in segment:
                problems.append(f"bare {special!r} in {segment!r}")
    return problems


# ------------------------------------------------------------------ seed answers

def test_seed_answers_are_exact_and_checked():
    part_a = solve("3a")
    assert part_a.family == "vae-reparam"
    assert part_a.answer == sp.Rational(11, 10) and part_a.value == pytest.approx(1.1, rel=1e-12)
    part_b = solve("3b")
    assert part_b.answer == [1, sp.Rational(3, 40)] and part_b.value == [1, pytest.approx(0.075, rel=1e-12)]
    part_c = solve("3c")
    reference = mutual_information_reference([sp.Rational(1, 2)] * 2, [-1, 1], [1, 1], dps=30)
    assert part_c.value == pytest.approx(reference, rel=1e-9)
    assert 0.3368308203 < part_c.value < 0.3368308204
    for derivation in (part_a, part_b, part_c):
        assert derivation.passed, [c for c in derivation.all_checks if not c.passed]
        assert all(step.checked for step in derivation.steps), [s.name for s in derivation.steps if not s.checked]


def test_kl_symbolic_and_numeric():
    symbolic = solve("vae-kl")
    assert symbolic.value is None
    assert sp.simplify(symbolic.answer - (vae.MU ** 2 + vae.SIGMA2 - 1 - sp.log(vae.SIGMA2)) / 2) == 0
    numeric = solve("vae-kl", {"mu": "1/2", "sigma2": "4"})
    assert sp.simplify(numeric.answer - (sp.Rational(13, 8) - sp.log(2))) == 0
    assert numeric.value == pytest.approx(13 / 8 - math.log(2), rel=1e-12)
    assert solve("vae-kl", {"mu": "0", "sigma2": "1"}).value == 0
    assert symbolic.passed and numeric.passed


def test_symbolic_and_partly_symbolic_parameters():
    general = solve("vae-reparam")
    assert general.value is None
    assert sp.simplify(general.answer - (vae.ZHAT + sp.sqrt(vae.SIGMA2) * vae.EPS)) == 0
    partial = solve("vae-reparam", {"sigma2": "9"})
    assert sp.simplify(partial.answer - (vae.ZHAT + 3 * vae.EPS)) == 0 and partial.value is None
    gradient = solve("vae-gradient", {"sigma2": "1/4"})
    assert gradient.answer == [1, vae.EPS] and gradient.value is None
    assert sp.sstr(general.answer) in ("zhat + eps*sqrt(sigma2)", "eps*sqrt(sigma2) + zhat")
    for derivation in (general, partial, gradient):
        assert derivation.passed
        assert any("symbolic parameters checked at" in c.name for c in derivation.all_checks)


def test_json_follows_the_contract():
    for problem in ("3a", "3b", "3c", "vae-kl"):
        data = solve(problem).to_json()
        assert set(data) == {"problem", "family", "params", "answer", "steps", "checks"}
        assert set(data["answer"]) == {"expr", "latex", "value"}
        assert all(step["checked"] for step in data["steps"])
        assert all(check["passed"] for check in data["checks"])
    assert solve("3c").to_json()["params"] == {"weights": ["1/2", "1/2"], "zhat": [-1, 1], "sigma2": [1, 1]}
    assert isinstance(solve("3a").to_json()["answer"]["value"], float)
    assert solve("vae-kl").to_json()["answer"]["value"] is None


def test_exam_problem_and_aliases():
    problem = load_exam().problems[2]
    assert problem.points == 25 and [part.use for part in problem.parts] == ["3a", "3b", "3c"]
    assert {ALIASES[p.use].family for p in problem.parts} == {"vae-reparam", "vae-gradient", "vae-rate"}
    assert not prose_problems(problem.intro)
    assert FAMILIES["vae-gradient"].numeric is False  # a pair, not one Moodle number
    assert all(FAMILIES[name].numeric for name in ("vae-reparam", "vae-rate", "vae-kl"))


# -------------------------------------------------------------- property tests

fractions = st.builds(Fraction, st.integers(-40, 40), st.integers(1, 8))
variances = st.builds(Fraction, st.integers(1, 60), st.integers(1, 12))


@SETTINGS
@given(zhat=fractions, sigma2=variances, eps=st.builds(Fraction, st.integers(-30, 30), st.integers(1, 10)))
def test_reparam_and_gradient_match_direct_formulas(zhat, sigma2, eps):
    raw = {"zhat": str(zhat), "sigma2": str(sigma2), "eps": str(eps)}
    sample = solve("vae-reparam", raw)
    assert sample.value == pytest.approx(float(zhat) + math.sqrt(float(sigma2)) * float(eps), rel=1e-12, abs=1e-12)
    assert sample.passed, [c for c in sample.all_checks if not c.passed]
    gradient = solve("vae-gradient", raw)
    assert gradient.value[0] == 1
    assert gradient.value[1] == pytest.approx(float(eps) / (2 * math.sqrt(float(sigma2))), rel=1e-12, abs=1e-15)
    assert gradient.passed, [c for c in gradient.all_checks if not c.passed]


@SETTINGS
@given(mu=fractions, sigma2=variances)
def test_kl_matches_closed_form(mu, sigma2):
    derivation = solve("vae-kl", {"mu": str(mu), "sigma2": str(sigma2)})
    m, v = float(mu), float(sigma2)
    assert derivation.value == pytest.approx((m * m + v - 1 - math.log(v)) / 2, rel=1e-12, abs=1e-14)
    assert derivation.value >= 0 and derivation.passed


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_rate_matches_high_precision_quadrature(data):
    count = data.draw(st.integers(1, 4))
    raw_weights = data.draw(st.lists(st.integers(0, 5), min_size=count, max_size=count).filter(any))
    weights = [Fraction(w, sum(raw_weights)) for w in raw_weights]
    means = data.draw(st.lists(st.builds(Fraction, st.integers(-12, 12), st.just(2)), min_size=count,
                               max_size=count))
    spreads = data.draw(st.lists(st.sampled_from([Fraction(1, 16), Fraction(1, 4), Fraction(1), Fraction(4),
                                                  Fraction(9)]), min_size=count, max_size=count))
    derivation = solve("vae-rate", {"weights": ",".join(map(str, weights)), "zhat": ",".join(map(str, means)),
                                    "sigma2": ",".join(map(str, spreads))})
    assert derivation.passed, [c for c in derivation.all_checks if not c.passed]
    assert derivation.value == pytest.approx(mutual_information_reference(weights, means, spreads), rel=1e-9,
                                             abs=1e-10)
    assert -1e-12 <= derivation.value <= message_entropy(weights) + 1e-12


@pytest.mark.parametrize("raw", [
    {"weights": "3/10,7/10", "zhat": "0,1/1000", "sigma2": "1/1000000,1"},   # a spike inside a wide bump
    {"weights": "1/2,1/2", "zhat": "0,1000000", "sigma2": "1,1"},             # far apart: I = ln 2
    {"weights": "1/3,1/3,1/3", "zhat": "-3,0,3", "sigma2": "1/4,9,1/4"},
    {"weights": "1/2,1/2", "zhat": "2,-2", "sigma2": "1/4,1/4"},              # nearly separated
    {"weights": "1", "zhat": "5", "sigma2": "2"},                             # one message: I = 0
    {"weights": "1/2,1/2,0", "zhat": "0,1,2", "sigma2": "1,1,1"},             # a message never sent
    {"weights": "1/4,1/4,1/4,1/4", "zhat": "1,1,1,1", "sigma2": "4,4,4,4"},    # identical encoders
])
def test_rate_extremes(raw):
    derivation = solve("vae-rate", raw)
    assert derivation.passed, [c for c in derivation.all_checks if not c.passed]
    parsed = FAMILIES["vae-rate"].parse(raw)
    reference = mutual_information_reference(parsed["weights"], parsed["zhat"], parsed["sigma2"], dps=25)
    assert derivation.value == pytest.approx(reference, rel=1e-9, abs=1e-10)


@pytest.mark.parametrize("raw", [{"eps": "0"}, {"eps": "100"}, {"eps": "-100"}, {"sigma2": "1/1000000"},
                                 {"sigma2": "1000000", "zhat": "-1000000"}, {"eps": "-37/3", "sigma2": "2"}])
def test_reparam_extremes(raw):
    for family in ("vae-reparam", "vae-gradient"):
        derivation = solve(family, {"zhat": "1/2", "sigma2": "4", "eps": "3/10", **raw})
        assert derivation.passed, [c for c in derivation.all_checks if not c.passed]


def test_identical_and_far_apart_limits_are_computed():
    derivation = solve("3c")
    by_name = {c.name: c for c in derivation.all_checks}
    assert by_name["identical encoders: I computed by quadrature is 0"].passed
    far = next(c for name, c in by_name.items() if name.startswith("far-apart encoders"))
    assert far.passed and "0.69314718056" in far.detail


# ---------------------------------------------------- checks that can fail

def failing(derivation) -> list[str]:
    return [c.name for c in derivation.all_checks if not c.passed]


def test_variance_for_standard_deviation_is_caught(monkeypatch, fresh_caches):
    monkeypatch.setattr(vae, "reparam_map", lambda zhat, sigma2, eps: zhat + sigma2 * eps)
    wrong = solve("3a")
    assert wrong.value == pytest.approx(1.7)
    names = failing(wrong)
    assert any("quantile transform" in name for name in names)
    assert any("sample variance" in name for name in names)
    assert any("stated kernel" in name for name in names)
    assert "SymPy: p_z(z) / p(z) simplifies to 1" in names


def test_wrong_gradient_is_caught(monkeypatch, fresh_caches):
    original = vae.reparam_model

    def patched():
        model = original()
        return dataclasses.replace(model, gradient=(sp.Integer(1), vae.EPS / sp.sqrt(vae.SIGMA2)))
    monkeypatch.setattr(vae, "reparam_model", patched)
    names = failing(solve("3b"))
    assert any(name.startswith("dz/dsigma2 vs a centred difference") for name in names)
    assert any(name.startswith("chain rule through the toy decoder") for name in names)
    assert not any(name.startswith("dz/dzhat") for name in names)


def test_wrong_mutual_information_is_caught(monkeypatch, fresh_caches):
    original = vae.mutual_information
    monkeypatch.setattr(vae, "mutual_information", lambda mixture, order=vae.GL_ORDER_RATE: original(mixture, order) + 0.05)
    names = failing(solve("3c"))
    assert "rate by quadrature of sum_s Pop(s) KL(p(z|s) || p(z))" in names
    assert "h(z) as -sum_s Pop(s) E_s[ln p(z)], standardised quadrature" in names
    assert any(name.startswith("Monte Carlo E[ln p(z|s)/p(z)]") for name in names)


def test_rate_as_capacity_would_fail_the_bound(monkeypatch, fresh_caches):
    """Reporting H(s) + 0.01 (more than the message entropy) violates the bound and the checks."""
    original = vae.mutual_information
    monkeypatch.setattr(vae, "mutual_information", lambda mixture, order=vae.GL_ORDER_RATE: original(mixture, order) + 0.37)
    names = failing(solve("3c"))
    assert "0 <= I(s;z) <= H(s)" in names


def test_wrong_kl_is_caught(monkeypatch, fresh_caches):
    monkeypatch.setattr(vae, "kl_closed_form", lambda: (vae.MU ** 2 + vae.SIGMA2 - sp.log(vae.SIGMA2)) / 2)
    names = failing(solve("vae-kl", {"mu": "1/2", "sigma2": "4"}))
    assert any(name.startswith("KL vs quadrature") for name in names)
    assert "SymPy: the integrated moments give (mu^2 + sigma2 - 1 - ln sigma2)/2" in names


def test_sampling_tolerance_is_stated_and_seeded():
    first, second = solve("3a"), solve("3a")
    mean = next(c for c in first.all_checks if c.name.startswith("sample mean"))
    assert "seed 31230" in mean.detail and "5 standard errors" in mean.detail
    assert [c.detail for c in first.all_checks] == [c.detail for c in second.all_checks]
    rate = next(c for c in solve("3c").all_checks if c.name.startswith("Monte Carlo E[ln p(z|s)/p(z)]"))
    assert "empirical Bernstein" in rate.detail


# ------------------------------------------------- cheaper paths give the same results

def test_standard_moments_match_default_integration():
    """The moments by differentiation under the integral sign equal SymPy's default integration."""
    t = vae.T
    for k in range(5):
        default = sp.integrate(t ** k * sp.exp(-t ** 2 / 2) / sp.sqrt(2 * sp.pi), (t, -sp.oo, sp.oo))
        assert vae.standard_moment(k) == default, k


def test_gaussian_terms_are_built_as_before():
    """The marginal's terms, built from the general density by xreplace, match a direct build exactly."""
    values = [(sp.Rational(k, 2), v) for k in range(-7, 8)
              for v in (sp.Rational(1, 4), sp.Integer(1), sp.Integer(4), sp.Integer(9), sp.Rational(3, 8),
                        sp.Integer(2), sp.Rational(1, 10 ** 6), sp.Integer(10 ** 6), sp.Rational(27, 50))]
    for mean, variance in values:
        assert sp.srepr(vae._gaussian_at(mean, variance)) == sp.srepr(vae.gaussian(vae.Z, mean, variance))


@pytest.mark.parametrize("zhat, sigma2, eps", [("1/2", "4", "3/10"), ("0", "1", "0"), ("-3", "1/4", "-3/2"),
                                               ("2", "9", "8"), ("1", "2", "9"), ("0", "1", "-39"),
                                               ("0", "1", "100"), ("-1000000", "1000000", "-100"),
                                               ("5", "1/1000000", "37")])
def test_quantile_transform_agrees_with_a_40_digit_root(zhat, sigma2, eps):
    """The 20-digit quantile transform (float start where Phi(eps) is a float in (0, 1)) matches
    F^-1(Phi(eps)) solved at 40 digits from a start that knows nothing of the answer."""
    values = [sp.Rational(x) for x in (zhat, sigma2, eps)]
    fast = vae.quantile_transform(*values)
    with mpmath.workdps(40):
        zh, v, e = (mpmath.mpf(Fraction(str(x)).numerator) / Fraction(str(x)).denominator for x in values)
        tail = -abs(e) / mpmath.sqrt(2)
        target = mpmath.log(mpmath.erfc(-tail))
        sign = 1 if e > 0 else -1

        def equation(t):
            return mpmath.log(mpmath.erfc(sign * (t - zh) / mpmath.sqrt(2 * v))) - target
        reference = mpmath.findroot(equation, (zh, zh + sign))
        assert abs(fast - reference) <= mpmath.mpf(10) ** -15 * max(1, abs(reference))


def test_location_checks_are_shared_but_not_stale(monkeypatch, fresh_caches):
    """Parameter sets sharing (zhat, sigma2) share the eps-free checks; a patched model recomputes them."""
    first = solve("vae-reparam", {"zhat": "1/2", "sigma2": "4", "eps": "3/10"})
    second = solve("vae-reparam", {"zhat": "1/2", "sigma2": "4", "eps": "-1"})
    shared = "sample variance of z = g(eps) is sigma2"
    assert next(c for c in first.all_checks if c.name == shared) is next(c for c in second.all_checks
                                                                          if c.name == shared)
    clear_caches()
    monkeypatch.setattr(vae, "reparam_map", lambda zhat, sigma2, eps: zhat + sigma2 * eps)
    names = failing(solve("vae-reparam", {"zhat": "1/2", "sigma2": "4", "eps": "3/10"}))
    assert "p_z vs the stated kernel over its quadrature mass, 3 points" in names
    assert "sample variance of z = g(eps) is sigma2" in names


# ------------------------------------------------------------------ bad input

@pytest.mark.parametrize("problem, raw, name", [
    ("3a", {"sigma2": "0"}, "sigma2"),
    ("3a", {"sigma2": "-4"}, "sigma2"),
    ("3b", {"eps": "1e3"}, "eps"),
    ("3a", {"zhat": "x"}, "zhat"),
    ("vae-kl", {"sigma2": "-1/2"}, "sigma2"),
    ("3c", {"zhat": "-1,0,1"}, "zhat"),
    ("3c", {"sigma2": "1"}, "sigma2"),
    ("3c", {"sigma2": "1,0"}, "sigma2"),
    ("3c", {"weights": "1/2,1/3"}, "weights"),
    ("3c", {"weights": "3/2,-1/2"}, "weights"),
    ("3c", {"zhat": "1,2000000"}, "zhat"),
    ("3a", {"tau": "1"}, "tau"),
])
def test_bad_input_names_the_parameter(problem, raw, name):
    with pytest.raises(ParameterError) as error:
        solve(problem, raw)
    assert error.value.name == name


# --------------------------------------------------------------- generation

@pytest.mark.parametrize("family_name", VAE_FAMILIES)
def test_generate_gives_sensible_reproducible_variants(family_name):
    family = FAMILIES[family_name]
    drawn = [family.generate(random.Random(f"test/{index}")) for index in range(60)]
    assert drawn == [family.generate(random.Random(f"test/{index}")) for index in range(60)]
    for raw in drawn:
        params = family.parse(raw)
        assert family.parse(dict(arg.split("=", 1) for arg in family.args(params))) == params
        if family_name in ("vae-reparam", "vae-gradient"):
            assert params["sigma2"] != 1 and params["eps"] != 0  # the slip stays visible, the gradient nonzero
        if family_name == "vae-rate":
            assert len(set(params["zhat"])) == len(params["zhat"])
        if family_name == "vae-kl":
            assert (params["mu"], params["sigma2"]) != (0, 1)
    for raw in drawn[:8]:
        assert solve(family_name, raw).passed


# ----------------------------------------------------------- prose and figure

def test_prose_is_ascii_and_latex_safe():
    derivations = [solve(p) for p in ("3a", "3b", "3c", "vae-kl", "vae-reparam")]
    derivations.append(solve("vae-kl", {"mu": "1/2", "sigma2": "4"}))
    for derivation in derivations:
        texts = [derivation.question, derivation.answer_text] + [s.text for s in derivation.steps]
        texts += [r.text for r in derivation.remarks]
        if derivation.figure:
            texts.append(derivation.figure.caption)
        for text in texts:
            assert not prose_problems(text), (derivation.problem, text, prose_problems(text))
        assert any(r.kind == "key" for r in derivation.remarks) or derivation.family == "vae-kl"


def test_key_remarks_name_the_loose_spots():
    key_a = " ".join(r.text for r in solve("3a").remarks if r.kind == "key")
    assert "square root" in key_a and "\\frac{17}{10}" in key_a  # the slip's value at the seed
    key_b = " ".join(r.text for r in solve("3b").remarks if r.kind == "key")
    assert "$y$" in key_b and "\\Sigma" in key_b
    key_c = " ".join(r.text for r in solve("3c").remarks if r.kind == "key")
    assert "capacity" in key_c


def test_cached_derivations_are_fresh_copies():
    first = solve("3c")
    first.steps.clear()
    first.remarks.append(None)
    second = solve("3c")
    assert second.steps and None not in second.remarks and second.problem == "3c"
    assert solve("vae-rate").problem == "vae-rate"


def test_mixture_figure_renders():
    render = pytest.importorskip("sheets.render")
    assert solve("vae-kl").figure is None  # symbolic: nothing to plot
    for problem, raw in (("3a", {}), ("3c", {}), ("vae-kl", {"mu": "1", "sigma2": "1/4"})):
        tex = render.render_figure(solve(problem, raw))
        assert "\\begin{pgfpicture}" in tex and "\\dfcurve{" in tex
        assert "\\VAR" not in tex and "\\BLOCK" not in tex and "pgfplots" not in tex
    data = solve("3c").figure.data
    assert len(data["curves"]) == 3 and data["curves"][-1]["style"].startswith("very thick")
    coordinates = re.findall(r"\(([-\d.]+),([-\d.]+)\)", data["curves"][-1]["coords"])
    assert max(float(y) for _, y in coordinates) <= 4.0 and min(float(x) for x, _ in coordinates) >= 0


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex not installed")
def test_mixture_figure_compiles(tmp_path):
    render = pytest.importorskip("sheets.render")
    body = "\n".join(f"\\begin{{center}}{render.render_figure(solve(p))}\\end{{center}}" for p in ("3a", "3c"))
    document = ("\\documentclass{article}\\usepackage{amsmath,amssymb}\\usepackage{booktabs}\\usepackage{tikz}"
                f"\\begin{{document}}{body}\\end{{document}}")
    (tmp_path / "figure.tex").write_text(document)
    result = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "figure.tex"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-2000:]


def test_derivations_are_fast():
    for problem in ("3a", "3b", "3c", "vae-kl"):
        solve(problem)  # symbolic work cached once per process
        vae._built.cache_clear()
        start = time.perf_counter()
        solve(problem)
        assert time.perf_counter() - start < 0.3, problem
