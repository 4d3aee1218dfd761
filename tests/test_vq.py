"""Problem 4 (VQ-VAE): the nearest code, the zero Jacobian and the straight-through gradients."""
import random
import re
import shutil
import subprocess
import time
from fractions import Fraction

import numpy as np
import pytest
import sympy as sp
from hypothesis import HealthCheck, assume, given, settings, strategies as st

from derivations import FAMILIES, solve
from derivations.exam import load_exam
from derivations import vq
from derivations.values import ParameterError

HALVES = st.integers(min_value=-8, max_value=8).map(lambda n: Fraction(n, 2))


def text_of(rows) -> str:
    return ";".join(",".join(str(x) for x in row) for row in rows)


def numpy_nearest(codebook, zhat) -> int:
    """Independent of the module: numpy's argmin returns the first minimiser (halves are exact in binary)."""
    codes = np.array([[float(x) for x in row] for row in codebook])
    point = np.array([float(x) for x in zhat])
    return int(np.argmin(((codes - point) ** 2).sum(axis=1)))


@st.composite
def quantiser_inputs(draw, max_codes=6, max_dim=3):
    dim = draw(st.integers(min_value=1, max_value=max_dim))
    count = draw(st.integers(min_value=2, max_value=max_codes))
    codebook = [[draw(HALVES) for _ in range(dim)] for _ in range(count)]
    zhat = [draw(HALVES) for _ in range(dim)]
    return codebook, zhat


# ------------------------------------------------------------------ seed values

def test_seed_part_is_the_zero_jacobian():
    result = solve("4")
    assert result.value == [[0, 0], [0, 0]]
    assert result.to_json()["answer"]["expr"] == "Matrix([[0, 0], [0, 0]])"
    assert result.answer == sp.zeros(2, 2)
    assert result.passed and all(step.checked for step in result.steps)


def test_seed_quantisation_by_hand():
    # zhat = (3/2, 1): distances 13/4, 1/4, 5/4 to (0,0), (1,1), (2,0).
    result = solve("vq-quantize")
    assert result.value == 1
    distances = next(step for step in result.steps if step.name == "squared distances at the encoder output")
    assert distances.forms[0] == (sp.Rational(13, 4), sp.Rational(1, 4), sp.Rational(5, 4))


def test_tie_goes_to_the_lowest_index():
    # (3/2, 1/2) is at squared distance 1/2 from both (1,1) and (2,0).
    result = solve("vq-quantize", {"codebook": "0,0;1,1;2,0", "zhat": "3/2,1/2"})
    assert result.value == 1 and result.passed
    tie = next(check for check in result.all_checks if check.name.startswith("tie rule"))
    assert "[1, 2] tie" in tie.detail
    reversed_order = solve("vq-quantize", {"codebook": "2,0;1,1;0,0", "zhat": "3/2,1/2"})
    assert reversed_order.value == 0


def test_seed_gradients_of_vq_vae():
    steps = {step.name: step for step in solve("4").steps}
    assert steps["Jacobian of the straight-through code"].forms[-1] == sp.eye(2)
    # codebook: 2 (e_1 - zhat) = 2 ((1,1) - (3/2,1)); commitment: 2 * 1/4 * (zhat - e_1).
    assert list(steps["codebook gradient on the chosen code"].forms[-1]) == [-1, 0]
    assert list(steps["commitment gradient on the encoder output"].forms[-1]) == [sp.Rational(1, 4), 0]
    radius = steps["distance to the cell boundary"].forms[-1]
    assert sp.simplify(radius - sp.sqrt(2) / 4) == 0
    larger_beta = {step.name: step for step in solve("4", {"beta": "1"}).steps}
    assert list(larger_beta["commitment gradient on the encoder output"].forms[-1]) == [1, 0]


def test_remarks_note_without_key_error():
    result = solve("4")
    assert [remark.kind for remark in result.remarks] == ["note"]
    note = result.remarks[0].text
    assert "straight-through" in note and "Jacobian" in note and "z.grad" in note
    assert solve("4", {"zhat": "1/2,1"}).remarks == []  # a variant is not the exam's part
    assert "straight-through" in result.answer_text


def test_moodle_kind_and_json_shape():
    assert FAMILIES["vq-gradient"].numeric is False
    assert FAMILIES["vq-quantize"].numeric is True
    payload = solve("4").to_json()
    assert payload["params"] == {"codebook": [[0, 0], [1, 1], [2, 0]], "zhat": ["3/2", 1], "beta": "1/4"}
    assert all(step["checked"] for step in payload["steps"])


# ------------------------------------------------------------------ bad input

@pytest.mark.parametrize("problem, raw, name, words", [
    ("vq-quantize", {"zhat": "1"}, "zhat", "1 entry but the codes have dimension 2"),
    ("vq-quantize", {"zhat": "1,2,3"}, "zhat", "dimension 2"),
    ("vq-quantize", {"codebook": "1,1"}, "codebook", "at least 2 codes"),
    ("vq-quantize", {"codebook": "0,0;1"}, "codebook", "different lengths"),
    ("vq-quantize", {"codebook": "1e7,0;0,0"}, "codebook", "too large"),
    ("vq-quantize", {"zhat": "x,1"}, "zhat", "not a number"),
    ("4", {"zhat": "3/2,1/2"}, "zhat", "equally close to codes 1, 2"),
    ("4", {"codebook": "0,0;1,1;0,0"}, "codebook", "codes 0 and 2 are equal"),
    ("4", {"beta": "0"}, "beta", "> 0"),
    ("4", {"beta": "-1/4"}, "beta", "> 0"),
    ("4", {"codebook": ";".join(f"{j},0" for j in range(9))}, "codebook", "at most 8"),
    ("4", {"codebook": "0,0,0,0,0;1,1,1,1,1", "zhat": "0,0,0,0,1/4"}, "codebook", "at most 4"),
    ("vq-quantize", {"nope": "1"}, "nope", "unknown parameter"),
])
def test_bad_input_names_the_parameter(problem, raw, name, words):
    with pytest.raises(ParameterError) as caught:
        solve(problem, raw)
    assert caught.value.name == name
    assert words in caught.value.message


def test_quantize_accepts_what_the_gradient_refuses():
    # A tie and repeated codes are fine for the index (lowest wins), not for the derivative.
    assert solve("vq-quantize", {"codebook": "0,0;1,1;0,0", "zhat": "0,1/2"}).value == 0
    assert solve("vq-quantize", {"codebook": "1/3;1/3;1/3", "zhat": "2"}).value == 0


# ------------------------------------------------------- properties vs numpy

@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(quantiser_inputs())
def test_quantize_matches_numpy_argmin(inputs):
    codebook, zhat = inputs
    result = solve("vq-quantize", {"codebook": text_of(codebook), "zhat": text_of([zhat])})
    assert result.value == numpy_nearest(codebook, zhat)
    assert result.passed, [c for c in result.all_checks if not c.passed]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(quantiser_inputs(max_codes=5, max_dim=3), st.sampled_from(["1/4", "1/2", "1", "3/10"]))
def test_gradient_against_numpy(inputs, beta_text):
    codebook, zhat = inputs
    distances = [sum((z - c) ** 2 for z, c in zip(zhat, code)) for code in codebook]
    assume(len({tuple(code) for code in codebook}) == len(codebook))
    assume(sorted(distances)[0] < sorted(distances)[1])
    result = solve("vq-gradient", {"codebook": text_of(codebook), "zhat": text_of([zhat]), "beta": beta_text})
    assert result.passed, [c for c in result.all_checks if not c.passed]
    dim = len(zhat)
    assert result.value == [[0] * dim for _ in range(dim)]
    k = numpy_nearest(codebook, zhat)
    code = np.array([float(x) for x in codebook[k]])
    point = np.array([float(x) for x in zhat])
    beta = float(Fraction(beta_text))
    steps = {step.name: step for step in result.steps}
    np.testing.assert_allclose([float(x) for x in steps["codebook gradient on the chosen code"].forms[-1]],
                               2 * (code - point), rtol=0, atol=1e-12)
    np.testing.assert_allclose([float(x) for x in steps["commitment gradient on the encoder output"].forms[-1]],
                               2 * beta * (point - code), rtol=0, atol=1e-12)
    assert steps["Jacobian of the straight-through code"].forms[-1] == sp.eye(dim)
    # rho: numpy distance from zhat to each bisecting hyperplane.
    others = [np.array([float(x) for x in c]) for j, c in enumerate(codebook) if j != k]
    rho = min((np.sum((point - o) ** 2) - np.sum((point - code) ** 2)) / (2 * np.linalg.norm(o - code))
              for o in others)
    assert float(steps["distance to the cell boundary"].forms[-1]) == pytest.approx(rho, rel=1e-12)


def test_generated_variants_are_classroom_sensible():
    for family_name in ("vq-quantize", "vq-gradient"):
        family = FAMILIES[family_name]
        rng = random.Random(31230)
        for _ in range(60):
            raw = family.generate(rng)
            params = family.parse(raw)
            codebook, zhat = params["codebook"], params["zhat"]
            assert len(codebook) in (3, 4) and len(zhat) == 2
            assert all(x.is_integer for code in codebook for x in code)
            assert len({tuple(code) for code in codebook}) == len(codebook)
            assert all((2 * x).is_integer for x in zhat) and not all(x.is_integer for x in zhat)
            distances = sorted(sum((z - c) ** 2 for z, c in zip(zhat, code)) for code in codebook)
            assert distances[1] - distances[0] >= sp.Rational(1, 4)
            result = family.derive(params)
            assert result.passed
            assert family.args(params) == [f"{key}={value}" for key, value in raw.items()]
    assert FAMILIES["vq-gradient"].generate(random.Random(5)) == FAMILIES["vq-gradient"].generate(random.Random(5))


# ------------------------------------------------ checks that must fail

def failing(result) -> set[str]:
    return {check.name for check in result.all_checks if not check.passed}


def test_wrong_nearest_index_fails_its_checks(monkeypatch):
    monkeypatch.setattr(vq, "nearest_code", lambda distances: 0)
    result = solve("vq-quantize")
    assert not result.passed
    names = failing(result)
    assert any(name.startswith("tie rule") for name in names)
    assert "nearest code by exact brute force over the codes" in names
    assert "z_q vs the brute-force nearest code" in names


def test_tie_to_the_highest_index_fails(monkeypatch):
    def highest(distances):
        smallest = min(distances)
        return max(j for j, d in enumerate(distances) if d == smallest)
    monkeypatch.setattr(vq, "nearest_code", highest)
    result = solve("vq-quantize", {"zhat": "3/2,1/2"})
    assert result.value == 2 and not result.passed
    assert any(name.startswith("tie rule") for name in failing(result))


def test_nonzero_jacobian_fails_finite_differences(monkeypatch):
    original = vq.piecewise_quantiser.__wrapped__

    def ones_jacobian(codebook):
        symbols, quantiser, jacobian = original(codebook)
        return symbols, quantiser, [[sp.Integer(1) for _ in row] for row in jacobian]
    monkeypatch.setattr(vq, "piecewise_quantiser", ones_jacobian)
    result = solve("vq-gradient")
    assert result.value == [[1, 1], [1, 1]] and not result.passed
    assert any(name.startswith("central finite differences") for name in failing(result))


def test_wrong_cell_radius_fails(monkeypatch):
    original = vq.cell_radius
    for factor in (2, sp.Rational(1, 2)):
        def scaled(*args, factor=factor):
            radius, rival, candidates = original(*args)
            return radius * factor, rival, candidates
        monkeypatch.setattr(vq, "cell_radius", scaled)
        result = solve("vq-gradient")
        assert any(name.startswith("cell radius") for name in failing(result)), factor


def test_stop_gradient_that_passes_gradients_fails(monkeypatch):
    monkeypatch.setattr(vq.StopGradient, "fdiff", lambda self, argindex=1: sp.S.One)
    sp.core.cache.clear_cache()  # SymPy remembers derivatives taken with the real sg
    result = solve("vq-gradient")
    sp.core.cache.clear_cache()
    steps = {step.name: step for step in result.steps}
    assert steps["Jacobian of the straight-through code"].forms[-1] == sp.zeros(2, 2)
    assert "finite differences with the stop-gradient term frozen" in failing(result)


def test_doubled_loss_gradients_fail(monkeypatch):
    original = vq.forward
    monkeypatch.setattr(vq, "forward", lambda expr: 2 * original(expr))
    names = failing(solve("vq-gradient"))
    assert "straight-through forward pass vs the brute-force nearest code" in names
    assert any(name.startswith("finite differences over every code entry") for name in names)
    assert any(name.startswith("finite differences over zhat") for name in names)


def test_wrong_distances_fail(monkeypatch):
    original = vq.squared_distances
    monkeypatch.setattr(vq, "squared_distances", lambda codebook, zhat: [d + 1 for d in original(codebook, zhat)])
    assert "squared distances: SymPy vs float brute force" in failing(solve("vq-quantize"))


def test_displayed_cases_with_the_wrong_codes_fail(monkeypatch):
    original = vq.piecewise_quantiser.__wrapped__

    def shifted_codes(codebook):
        symbols, quantiser, jacobian = original(codebook)
        wrong = []
        for row in quantiser:
            cases = row.args
            wrong.append([sp.Piecewise(*[(cases[(n + 1) % len(cases)].expr, case.cond)
                                         for n, case in enumerate(cases)], evaluate=False)])
        return symbols, sp.ImmutableMatrix(wrong), jacobian
    monkeypatch.setattr(vq, "piecewise_quantiser", shifted_codes)
    assert any(name.startswith("displayed cases") for name in failing(solve("vq-gradient")))


# ---------------------------------------------------------------- figure

def test_figure_only_in_two_dimensions():
    figure = solve("4").figure
    assert figure.template == "codebook"
    assert len(figure.data["cells"]) == 3 and sum(cell["chosen"] for cell in figure.data["cells"]) == 1
    assert [code["chosen"] for code in figure.data["codes"]] == [False, True, False]
    assert figure.data["chosen"] == figure.data["codes"][1]["at"]
    assert solve("vq-quantize", {"codebook": "0,0,0;1,1,1", "zhat": "1/4,0,0"}).figure is None
    assert solve("vq-quantize", {"codebook": "0;1", "zhat": "1/4"}).figure is None
    # A repeated code has no cell of its own.
    repeated = solve("vq-quantize", {"codebook": "0,0;1,1;0,0", "zhat": "0,1/2"}).figure
    assert len(repeated.data["cells"]) == 2


def test_chosen_cell_contains_zhat():
    figure = solve("4").figure
    cell = next(c for c in figure.data["cells"] if c["chosen"])
    corners = [tuple(map(float, corner.strip("()").split(","))) for corner in cell["path"].split(" -- ")[:-1]]
    x, y = map(float, figure.data["zhat"].strip("()").split(","))
    signs = {np.sign((b[0] - a[0]) * (y - a[1]) - (b[1] - a[1]) * (x - a[0]))
             for a, b in zip(corners, corners[1:] + corners[:1])}
    assert signs in ({1.0}, {-1.0})


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="needs pdflatex")
def test_figure_compiles(tmp_path):
    from sheets.render import render_figure
    pictures = [render_figure(solve("4")),
                render_figure(solve("vq-quantize", {"codebook": "1000000,-1000000;-1000000,1000000;0,0",
                                                     "zhat": "999999.5,-999999.75"}))]
    document = ("\\documentclass{article}\\usepackage{amsmath,amssymb,tikz,booktabs}\\begin{document}\n"
                + "\n\n".join(pictures) + "\n\\end{document}\n")
    (tmp_path / "figure.tex").write_text(document)
    run = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "figure.tex"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stdout[-2000:]


# ------------------------------------------------------------ prose and speed

def outside_math(text: str) -> str:
    return re.sub(r"\$[^$]*\$", "", text)


def test_prose_is_ascii_and_latex_safe():
    derivations = [solve("4"), solve("vq-quantize", {"zhat": "3/2,1/2"})]
    texts = [load_exam().problems[3].intro]
    for result in derivations:
        texts += [result.question, result.answer_text] + [step.text for step in result.steps]
        texts += [remark.text for remark in result.remarks]
        texts += [result.figure.caption] + [table.caption for table in result.tables]
        texts += [cell for table in result.tables for cell in table.header + sum(table.rows, ())]
    for text in texts:
        assert text.isascii(), text
        assert text.count("$") % 2 == 0, text
        assert not re.search(r"[%&#_^~]", outside_math(text)), text


def test_seed_derivations_are_fast():
    vq.piecewise_quantiser.cache_clear()
    for problem in ("4", "vq-quantize"):
        start = time.perf_counter()
        solve(problem)
        assert time.perf_counter() - start < 0.3, problem
