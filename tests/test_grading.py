"""`derive grade`: reading answers safely, judging them, naming the mistake, batch grading."""
import csv
import io
import json
import time

import pytest
import sympy as sp
from click.testing import CliRunner
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import derivations
from cli import cli
from grading import grade as grading
from grading.grade import make_target
from grading.parse import Unreadable, parse_answer, vocabulary

N = sp.Symbol("N", integer=True, positive=True)
RING_1B = "N*log(1 + exp(-2) + exp(-4))"


def run(*args):
    return CliRunner().invoke(cli, list(args))


def ring_vocab():
    return vocabulary({"N": N, "J": sp.Symbol("J", real=True)})


def read(text):
    return parse_answer(text, ring_vocab()).value


# --------------------------------------------------------------------- reading

@pytest.mark.parametrize("text", [
    "N*log(1+exp(-2)+exp(-4))",
    "N*ln(1+e^{-2}+e^{-4})",
    "N ln(1 + e**-2 + e^(-4))",
    "-N*log(1/(1+exp(-2)+exp(-4)))",
    r"N \ln\left(1+e^{-2}+e^{-4}\right)",
    r"N\log{\left(1 + e^{-2} + e^{-4}\right)}",
    r"-N \ln \frac{1}{1+e^{-2}+e^{-4}}",
    r"N \cdot \ln(1 + \exp(-2) + \exp(-4))",
    r"$N \ln (1+e^{-2}+e^{-4})$",
])
def test_equivalent_spellings_read_to_the_same_value(text):
    expected = N * sp.log(1 + sp.exp(-2) + sp.exp(-4))
    value = read(text)
    assert sp.simplify(value - expected) == 0


def test_latex_functions_fractions_roots_and_bases():
    assert read(r"\frac{1}{3}") == sp.Rational(1, 3)
    assert read(r"\frac12") == sp.Rational(1, 2)
    assert read(r"\sqrt{4}") == 2
    assert read(r"\sqrt[3]{8}") == 2
    assert read(r"\log_{10} 100") == 2
    assert read(r"\log_2 8") == 3
    assert read(r"\log_{10} N") == sp.log(N) / sp.log(10)
    assert read(r"$e^{23}$") == sp.E ** 23
    assert read(r"$e^23$") == 3 * sp.E ** 2  # TeX reads one token after ^
    assert read("e^23") == sp.E ** 23  # SymPy syntax: ^ is **
    assert read(r"2N \text{ nats}") == 2 * N
    assert read(r"\ln 3 N") == sp.log(3 * N)  # a function without parentheses takes the product after it
    assert read(r"N \ln 3") == N * sp.log(3)


def test_sympy_syntax_implicit_products_and_decimals():
    assert read("2N") == 2 * N
    assert read("(N+1)(N-1)") == (N + 1) * (N - 1)
    assert read("2.5e-3") == sp.Float("0.0025", 30)
    assert float(read("1e5")) == 1e5
    assert read("log(8, 2)") == 3
    assert read("log10(N)") == sp.log(N) / sp.log(10)
    assert read("z = 3*N") == 3 * N  # a left-hand side is dropped


def test_exam_spellings_of_the_vae_symbols():
    zhat, eps, sigma2 = sp.Symbol("zhat", real=True), sp.Symbol("eps", real=True), sp.Symbol("sigma2", positive=True)
    vocab = vocabulary({"zhat": zhat, "sigma2": sigma2, "eps": eps})
    for text in (r"\hat{z} + \sigma \epsilon", r"\hat z + \sqrt{\sigma^2}\,\varepsilon", "zhat + sqrt(sigma2)*eps",
                 "z_hat + sigma*epsilon", r"\hat{z} + \epsilon_1 \sigma"):
        assert sp.simplify(parse_answer(text, vocab).value - (zhat + sp.sqrt(sigma2) * eps)) == 0, text


def test_lists_and_matrices_read_flat():
    assert read("[1, 2, 3]") == [1, 2, 3]
    assert read("1, 2") == [1, 2]
    assert read("[[0, 0], [0, 1]]") == [0, 0, 0, 1]
    assert read("Matrix([[1, 2], [3, 4]])") == [1, 2, 3, 4]
    assert read(r"\left[\begin{matrix}1 & 0\\0 & N\end{matrix}\right]") == [1, 0, 0, N]
    assert read(r"\begin{pmatrix}1 & 2\end{pmatrix}") == [1, 2]
    with pytest.raises(Unreadable, match="only as the whole answer"):
        read(r"1 + \begin{pmatrix}1 & 2\end{pmatrix}")
    with pytest.raises(Unreadable, match="not allowed"):
        read(r"\begin{pmatrix}\input{x} & 2\end{pmatrix}")
    assert read(r"\left(1, 2\right)") == [1, 2]
    assert read(r"[0, \frac{1}{2}]") == [0, sp.Rational(1, 2)]
    assert read(r"(N+1)(N-1)") == (N + 1) * (N - 1)


HOSTILE = [
    "__import__('os').system('echo hi')",
    "().__class__",
    "().__class__.__bases__[0].__subclasses__()",
    "N.__class__",
    "_N",
    "__builtins__",
    "lambda: 1",
    "(lambda x: x)(1)",
    "[x for x in range(10**9)]",
    "open('/etc/passwd').read()",
    "exec('1')",
    "eval('1')",
    "getattr(N, 'func')",
    "sympify('N')",
    "'N'",
    "b'N'",
    "N if 1 else 2",
    "log(x=1)",
    "log(*[1])",
    "9**9**9**9",
    "9^9^9^9",
    "10**1001",
    "2**(10**6)",
    "1" * 60,
    "1e400",
    "x" * 100000,
    "(" * 300 + "1" + ")" * 300,
    "9**9**N",
    "exp(1) ** 10**5",
    r"\input{/etc/passwd}",
    r"\include{/etc/passwd}",
    r"\def\x{1}\x",
    r"\csname x\endcsname",
    r"\write18{echo hi}",
    r"\immediate\write18{echo hi}",
    r"\newcommand{\x}{1}",
    r"\catcode`\^=12",
    r"\begin{verbatim}x\end{verbatim}",
    r"\unknowncommand",
    r"\text{anything}",
    "% comment",
    "N; import os",
    "N\x00",
    "",
    "   ",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_input_is_refused_quickly(text):
    started = time.monotonic()
    with pytest.raises(Unreadable):
        parse_answer(text, ring_vocab())
    assert time.monotonic() - started < 2.5


def test_hostile_input_never_runs(tmp_path):
    """Python and TeX that would create a file if run: refused, and no file appears."""
    marker = tmp_path / "executed"
    attempts = [
        f"__import__('os').system('touch {marker}')",
        f"__import__('pathlib').Path('{marker}').touch()",
        f"open('{marker}', 'w')",
        f"\\immediate\\write18{{touch {marker}}}",
        f"\\input{{{marker}}}",
        f"exec(\"open('{marker}','w')\")",
    ]
    for text in attempts:
        result = run("grade", "1b", text)
        assert result.exit_code == 2, (text, result.output)
        assert result.stderr.startswith("error: answer:") and result.stderr.count("\n") == 1
    assert not marker.exists()


@pytest.mark.parametrize("text", ["N**N**N", "exp(exp(exp(N)))", "sin(10**999)", "(N+1)**1000 - N**1000"])
def test_expensive_but_legal_answers_are_judged_wrong_in_time(text):
    started = time.monotonic()
    result = run("grade", "1b", "--format", "json", text)
    assert result.exit_code in (1, 2), result.output
    if result.exit_code == 1:
        assert json.loads(result.stdout)["correct"] is False
    assert time.monotonic() - started < 15


def test_unknown_names_are_named_in_the_error():
    with pytest.raises(Unreadable, match="unknown name 'x'; known: J, N, e, pi"):
        parse_answer("x + N", ring_vocab())
    with pytest.raises(Unreadable, match="unknown symbol 'y'"):
        parse_answer(r"\frac{y}{2}", ring_vocab())


# --------------------------------------------------------------------- judging

def test_correct_answers_in_both_syntaxes_exit_0():
    for text in (RING_1B, r"N \ln\left(1+e^{-2}+e^{-4}\right)", "0.142932*N"):
        result = run("grade", "1b", text)
        assert result.exit_code == 0, (text, result.output)
        assert result.stdout.startswith("correct")
    result = run("grade", "1b", "--", r"-N \ln \frac{1}{1+e^{-2}+e^{-4}}")
    assert result.exit_code == 0, result.output
    result = run("grade", "1b", "--", r"-\ln \tilde{P}(\mathcal{Y}) = N \ln (1+e^{-2}+e^{-4})")  # a whole equation
    assert result.exit_code == 0, result.output


def test_json_output_has_exactly_the_contract_keys():
    result = run("grade", "1b", RING_1B, "--format", "json")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert set(data) == {"correct", "feedback", "expected", "parsed"}
    assert data["correct"] is True and data["expected"] == RING_1B and data["parsed"] == RING_1B
    assert "simplifies to 0" in data["feedback"]


def judged(problem, text, **params):
    result = run("grade", problem, "--format", "json", *[f"-p{k}={v}" for k, v in params.items()], "--", text)
    assert result.exit_code in (0, 1), result.output
    data = json.loads(result.stdout)
    assert (result.exit_code == 0) == data["correct"]
    return data


def test_sign_error_is_named():
    data = judged("1b", r"N \ln \frac{1}{1 + e^{-2} + e^{-4}}")  # the official key's final line
    assert not data["correct"] and data["feedback"].startswith("a sign error")
    data = judged("1a", "N*log(1/3)")
    assert data["feedback"].startswith("a sign error")


def test_factors_are_named():
    assert judged("1b", "log(1+exp(-2)+exp(-4))")["feedback"].startswith("a missing factor of N")
    assert judged("1b", "2*N*log(1+exp(-2)+exp(-4))")["feedback"].startswith("an extra factor of 2")
    assert judged("1b", "N*log(1+exp(-2)+exp(-4))/3")["feedback"].startswith("a missing factor of 3")
    assert judged("1a", "log(3)", N="5")["feedback"].startswith("a missing factor of 5 (1/N, N = 5)")
    assert judged("1a", "N*log(3)*sqrt(2)")["feedback"].startswith("not equivalent")


def test_numeric_answers_do_not_claim_accidental_factors():
    # 3a at the seed: zhat - sqrt(sigma2) eps = -1/10 is -1/11 of 11/10, which is no mistake of scale.
    data = judged("3a", "zhat - sqrt(sigma2)*eps")
    assert not data["correct"] and "factor" not in data["feedback"], data
    assert judged("3a", "2*(zhat + sqrt(sigma2)*eps)")["feedback"].startswith("an extra factor of 2")


def test_log_base_is_named():
    for text, base in (("N*log10(1+exp(-2)+exp(-4))", "log base 10"),
                       (r"N \log_2 (1+e^{-2}+e^{-4})", "log base 2"), ("N*log(3, 10)", None)):
        data = judged("1b" if base else "1a", text)
        assert not data["correct"]
        if base:
            assert data["feedback"].startswith(base), data
        else:
            assert data["feedback"].startswith("log base 10")


def test_the_n1_case_both_ways():
    data = judged("1a", "log(3)", N="1")  # the general formula applied at N = 1
    assert not data["correct"] and data["feedback"].startswith("the N=1 case")
    assert "N >= 2" in data["feedback"]
    assert judged("1a", "log(1+2*e)", N="1")["correct"]  # the one-site value is right there
    assert judged("1b", r"\ln\left(2 + e^{-1}\right)", N="1")["correct"]
    data = judged("1a", "log(1 + 2*E)")  # the one-site value given for general N
    assert data["feedback"].startswith("the N=1 case")


def test_a_symbolic_answer_equal_for_n_at_least_2_is_correct():
    # (N - 1) + 1 written oddly still equals N for every N; and the N >= 2 form is the contract's answer
    assert judged("1b", "(N-1)*log(1+exp(-2)+exp(-4)) + log(1+exp(-2)+exp(-4))")["correct"]


def test_the_other_part_and_the_exact_likelihood_are_recognised():
    data = judged("1b", "N*log(3)")
    assert data["feedback"].startswith("that is the answer to part 1a")
    exact = derivations.solve("ring-nll", {"N": "4", "assignment": "1"}).value
    data = judged("1b", f"{exact:.6f}", N="4")
    assert data["feedback"].startswith("that is the answer of ring-nll")


def test_numeric_answers_count_within_1e_3_relative():
    value = derivations.solve("1b", {"N": "7"}).value
    assert judged("1b", f"{value * (1 + 9e-4):.9f}", N="7")["correct"]
    assert not judged("1b", f"{value * (1 + 2e-3):.9f}", N="7")["correct"]
    assert judged("1b", "7*log(1+exp(-2)+exp(-4))", N="7")["correct"]


def test_word_and_code_indices_off_by_one():
    word = derivations.solve("2a").value
    data = judged("2a", str(word + 1))
    assert data["feedback"].startswith("an index off by one") and "numbered from 0" in data["feedback"]
    data = judged("2a", str(word - 1)) if word > 0 else judged("2a", str(word + 1))
    assert data["feedback"].startswith("an index off by one")
    assert judged("2a", str(word))["correct"]
    code = derivations.solve("vq-quantize").value
    assert judged("vq-quantize", str(code + 1))["feedback"].startswith("an index off by one: code")


def test_a_zero_gradient_may_be_given_as_0():
    assert judged("2c", "0")["correct"]
    assert not judged("2c", "1")["correct"]


def test_usage_errors_are_one_line_exit_2():
    for args in (["grade", "1b"], ["grade", "nope", "1"], ["grade", "1b", "N", "-p", "N=0"],
                 ["grade", "1b", "N", "-p", "M=3"], ["grade", "1b", "N", "-o", "x.csv"]):
        result = run(*args)
        assert result.exit_code == 2, (args, result.output)
        assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1


def test_a_deliberately_wrong_derivation_fails_the_right_answer(monkeypatch):
    """The grader judges against the derivation: corrupt the derived answer and the right answer fails."""
    from derivations import ring
    real = ring.RingPseudoLikelihood.derive

    def corrupted(self, params, problem=None):
        derivation = real(self, params, problem)
        derivation.answer = -derivation.answer
        return derivation

    monkeypatch.setattr(ring.RingPseudoLikelihood, "derive", corrupted)
    data = judged("1b", RING_1B)
    assert not data["correct"] and data["feedback"].startswith("a sign error")


# ------------------------------------------------------------ property tests

@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(size=st.integers(2, 40), label=st.sampled_from(["0", "1", "-1"]), coupling=st.sampled_from(["1", "1/2", "2", "-1"]),
       factor=st.sampled_from([2, 3, sp.Rational(1, 2), sp.Rational(1, 3)]))
def test_numeric_ring_answers_and_their_mistakes(size, label, coupling, factor):
    target = make_target("ring-pl", {"N": str(size), "assignment": label, "J": coupling})
    value = float(target.derivation.value)
    assert grading.grade_answer(target, f"{value:.8f}").correct
    if abs(value) > 1e-6:
        negative = grading.grade_answer(target, f"{-value:.8f}")
        assert not negative.correct and negative.mistake == "sign"
        scaled = grading.grade_answer(target, f"{float(value * factor):.8f}")
        assert not scaled.correct and scaled.mistake in ("factor", "family")
        if scaled.mistake == "factor":
            shown = str(factor) if factor > 1 else str(1 / factor)
            assert f"factor of {shown}" in scaled.feedback


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(a=st.integers(-5, 5).filter(lambda a: a != 0), b=st.integers(1, 5))
def test_symbolic_rewrites_stay_correct(a, b):
    """Adding and removing the same term, or splitting the log, keeps the answer correct."""
    target = make_target("1b", {})
    text = f"N*log(1+exp(-2)+exp(-4)) + {a}*N/{b} - {a}*N/{b}"
    assert grading.grade_answer(target, text).correct
    split = f"N*(log({b}*(1+exp(-2)+exp(-4))) - log({b}))"
    assert grading.grade_answer(target, split).correct


# -------------------------------------------------------------------- batch

def write_batch(tmp_path):
    manifest = {"seed": 7, "variants": [
        {"id": "alice", "parts": [
            {"problem": "1a", "family": "ring-pl", "args": ["N=5", "assignment=0"], "value": 5 * 1.0986122886681098},
            {"problem": "1b", "family": "ring-pl", "args": ["N=5", "assignment=1"], "value": None}]},
        {"id": "bob", "parts": [
            {"problem": "1a", "family": "ring-pl", "args": ["N=3", "assignment=0"], "value": 3 * 1.0986122886681098},
            {"problem": "1b", "family": "ring-pl", "args": ["N=3", "assignment=1"], "value": None}]},
    ]}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    rows = [["id", "part", "answer"],
            ["alice", "1a", "5*log(3)"],
            ["alice", "1b", "5*ln(1+e^{-2}+e^{-4})"],
            ["bob", "1a", "5*log(3)"],            # alice's number: bob has N = 3
            ["bob", "1b", r"3 \ln \frac{1}{1+e^{-2}+e^{-4}}"],
            ["carol", "1a", "1"],
            ["alice", "2a", "1"],
            ["bob", "1a", "__import__('os')"]]
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    (tmp_path / "answers.csv").write_text(buffer.getvalue())


def test_batch_grading_writes_scores_and_a_summary(tmp_path):
    write_batch(tmp_path)
    out = tmp_path / "scores.csv"
    result = run("grade", "--manifest", str(tmp_path / "manifest.json"), "--answers", str(tmp_path / "answers.csv"),
                 "-o", str(out))
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(out.open()))
    assert [r["id"] for r in rows] == ["alice", "alice", "bob", "bob", "carol", "alice", "bob"]
    assert [r["score"] for r in rows] == ["1", "1", "0", "0", "0", "0", "0"]
    assert rows[2]["mistake"] == "size" and rows[2]["feedback"].startswith("that is the answer for N = 5; this part has N = 3")
    assert rows[3]["mistake"] == "sign"
    assert rows[4]["correct"] == "" and "unknown variant id" in rows[4]["feedback"]
    assert rows[5]["correct"] == "" and "no such part" in rows[5]["feedback"]
    assert rows[6]["mistake"] == "unreadable"
    assert "1a" in result.stdout and "1b" in result.stdout and "50.0" in result.stdout
    assert "not graded" in result.stderr


def test_batch_json_and_bad_files(tmp_path):
    write_batch(tmp_path)
    result = run("grade", "--manifest", str(tmp_path / "manifest.json"), "--answers", str(tmp_path / "answers.csv"),
                 "--format", "json")
    data = json.loads(result.stdout)
    summary = {item["part"]: item for item in data["summary"]}
    assert summary["1a"]["correct"] == 1 and summary["1a"]["graded"] == 3
    assert summary["1b"]["mistakes"] == {"sign": 1}
    (tmp_path / "bad.csv").write_text("student,answer\nalice,1\n")
    result = run("grade", "--manifest", str(tmp_path / "manifest.json"), "--answers", str(tmp_path / "bad.csv"))
    assert result.exit_code == 2 and result.stderr.startswith("error: --answers")
    (tmp_path / "bad.json").write_text("{not json")
    result = run("grade", "--manifest", str(tmp_path / "bad.json"), "--answers", str(tmp_path / "answers.csv"))
    assert result.exit_code == 2 and result.stderr.startswith("error: --manifest")
    result = run("grade", "1a", "1", "--manifest", str(tmp_path / "manifest.json"), "--answers", str(tmp_path / "answers.csv"))
    assert result.exit_code == 2


# ------------------------------------------------------------- Problem 3 (VAE)

def test_vae_reparameterisation_in_exam_spellings():
    assert judged("3a", r"\hat{z} + \sigma \epsilon")["correct"]  # the exam's parameters are plugged in
    assert judged("vae-reparam", r"\hat{z} + \sigma \epsilon")["correct"]  # symbolic
    assert judged("vae-reparam", "zhat + sqrt(sigma2)*eps")["correct"]
    for problem in ("3a", "vae-reparam"):
        data = judged(problem, r"\hat{z} + \sigma^2 \epsilon")
        assert not data["correct"] and data["feedback"].startswith("the variance sigma2 used where the standard deviation")


def test_vae_gradient_and_rate_mistakes():
    assert judged("3b", "[1, eps/(2*sqrt(sigma2))]")["correct"]
    data = judged("vae-gradient", "[1, eps]")
    assert data["feedback"].startswith("entry 2: the derivative with respect to sigma")
    rate = derivations.solve("3c").value
    assert judged("3c", f"{rate:.6f}")["correct"]
    assert judged("3c", f"{rate / 0.6931471805599453:.6f}")["feedback"].startswith("log base 2 (bits)")


def test_batch_csv_cells_never_become_spreadsheet_formulas():
    assert grading.spreadsheet_safe("=HYPERLINK(\"x\")") == "'=HYPERLINK(\"x\")"
    assert grading.spreadsheet_safe("-N*log(3)") == "'-N*log(3)"
    assert grading.spreadsheet_safe("@SUM(1)") == "'@SUM(1)"
    assert grading.spreadsheet_safe("-0.5") == "-0.5" and grading.spreadsheet_safe("N") == "N"


# expressions in N built at random, printed by SymPy in both syntaxes, must read back to the same value
_leaves = st.one_of(st.just(N), st.integers(1, 9).map(sp.Integer), st.sampled_from([sp.E, sp.pi, sp.Rational(1, 3)]))


def _combine(children):
    pair = st.tuples(children, children)
    return st.one_of(
        pair.map(lambda ab: ab[0] + ab[1]), pair.map(lambda ab: ab[0] - ab[1]), pair.map(lambda ab: ab[0] * ab[1]),
        pair.map(lambda ab: ab[0] / ab[1]), st.tuples(children, st.integers(-3, 3)).map(lambda ab: ab[0] ** ab[1]),
        children.map(lambda a: sp.log(1 + a ** 2)), children.map(lambda a: sp.exp(-a / 7)),
        children.map(lambda a: sp.sqrt(1 + a ** 2)))


def beyond_exponent_limit(expr) -> bool:
    """A numeric exponent the parser refuses by design (grading.limits.MAX_EXPONENT), such as
    exp(-19683/7): nested powers and exponentials reach one now and then."""
    from grading.limits import MAX_EXPONENT
    exponents = [power.exp for power in expr.atoms(sp.Pow)] + [e.args[0] for e in expr.atoms(sp.exp)]
    return any(x.is_number and abs(x) > MAX_EXPONENT for x in exponents)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(expr=st.recursive(_leaves, _combine, max_leaves=6))
@example(expr=sp.exp(sp.Rational(-19683, 7)))  # found by CI: refused by the parser's limits, not read back
@example(expr=sp.exp(-N / 7) + sp.log(1 + N ** 2))
def test_sympy_printed_expressions_read_back_in_both_syntaxes(expr):
    if not expr.is_finite or expr.has(sp.zoo, sp.nan) or len(sp.latex(expr)) > 900 or beyond_exponent_limit(expr):
        return
    vocab = ring_vocab()
    for text in (sp.sstr(expr), sp.latex(expr), sp.latex(expr, ln_notation=True)):
        value = parse_answer(text, vocab).value
        for size in (2, 5):
            a, b = complex(sp.N(value.subs(N, size))), complex(sp.N(expr.subs(N, size)))
            assert abs(a - b) <= 1e-9 * max(1, abs(a), abs(b)), (text, value, expr)


def test_an_intermediate_quantity_given_as_the_answer_is_named():
    data = judged("1b", "exp(4)/(1+exp(2)+exp(4))")
    assert data["feedback"].startswith("that is the site conditional (a step of the derivation)")
    data = judged("4", "[[1, 0], [0, 1]]")  # the straight-through estimator's Jacobian, not dz_q/dzhat
    assert not data["correct"] and "a step of the derivation" in data["feedback"]
    assert judged("4", "0")["correct"] and judged("4", "[[0, 0], [0, 0]]")["correct"]


@pytest.mark.parametrize("problem", sorted(derivations.ALIASES) + ["ring-nll", "vae-reparam", "vae-gradient",
                                                                     "vae-kl", "vq-quantize", "gan-string"])
def test_every_answer_as_the_sheets_print_it_is_graded_correct(problem):
    """The answer in LaTeX (as the solution sheets and the variants' answer key print it) and in
    SymPy's str() (as `solve --format json` prints it) reads back and is judged correct."""
    target = make_target(problem, {})
    for text in (target.derivation.answer_latex, grading.answer_str(target.derivation.answer)):
        result = grading.grade_answer(target, text)
        assert result.correct, (problem, text, result)


_PIECES = st.sampled_from([
    "N", "e", "\\ln", "\\log", "\\frac", "{", "}", "(", ")", "[", "]", "^", "_", "-", "+", "*", "/", "\\left(",
    "\\right)", "\\sqrt", "2", "0.5", "\\cdot", " ", "ln", "log", "exp", ",", "=", "\\sum", "\\hat{z}", "\\begin{pmatrix}",
    "\\end{pmatrix}", "&", "\\\\", "$", "\\text{nats}", "**", "9", "J", "\\pi", "|", "%", "'", "!", "__", ".", "lambda"])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=st.one_of(st.lists(_PIECES, max_size=25).map("".join), st.text(max_size=40)))
def test_any_text_is_read_or_refused_never_crashes(text):
    """Random fragments of both syntaxes: either a verdict or Unreadable, quickly, nothing else."""
    target = make_target("1b", {})
    started = time.monotonic()
    try:
        result = grading.grade_answer(target, text)
    except Unreadable:
        return
    finally:
        assert time.monotonic() - started < 10
    assert isinstance(result.correct, bool) and result.feedback
