"""`derive audit`: the exam's key is flagged where it is wrong, and nowhere else; our sheets pass."""
import json
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import cli
from grading import audit
from grading.audit import canonical, find_equations, split_relations
from derivations.exam import load_exam
from grading.keyread import read_key

SEED = Path(__file__).resolve().parents[2] / "shared" / "seed" / "ttic31230-autumn2021-exam3.md"


def run(*args):
    return CliRunner().invoke(cli, list(args))


def findings_of(path):
    result = run("audit", str(path), "--format", "json")
    assert result.exit_code in (0, 1), result.output
    data = json.loads(result.stdout)
    assert (result.exit_code == 1) == any(not f["ok"] for f in data["findings"])
    return data["findings"]


def wrong(findings):
    return [f for f in findings if not f["ok"]]


# ----------------------------------------------------------- the exam's key

@pytest.mark.skipif(not SEED.exists(), reason="the seed exam is not beside the checkout")
def test_the_exam_key_is_flagged_on_exactly_its_wrong_lines():
    findings = findings_of(SEED)
    assert all(set(f) == {"line", "part", "latex", "ok", "detail"} for f in findings)
    flagged = wrong(findings)
    assert [(f["line"], f["part"]) for f in flagged] == [(32, "1a"), (50, "1b")]
    final_a, final_b = flagged
    assert final_a["latex"].startswith(r"\ln \tilde{P}(\mathcal{Y}) = N \ln \frac{1}{3} \approx 1.1 N")
    assert "approximation has the wrong sign" in final_a["detail"] and "-1.0986 N" in final_a["detail"]
    assert final_b["detail"].startswith("sign error") and "0.1429 N" in final_b["detail"]
    assert "0.14 N approximates the left side" in final_b["detail"]
    lines = {f["line"]: f for f in findings}
    # the intermediate lines of Problem 1 are checked, and correct
    for line in (20, 22, 24, 26, 28, 30, 38, 40, 42, 44, 46, 48):
        assert lines[line]["ok"] and lines[line]["detail"].startswith("checked"), lines[line]
    assert "for each of the 3 labels" in lines[24]["detail"]  # s(Y[n=i]) = s(Y) = 0 for every label i
    # lines that cannot be tied to a derivation are reported, and never counted as wrong
    assert lines[18]["ok"] and lines[18]["detail"].startswith("not checkable")


@pytest.mark.skipif(not SEED.exists(), reason="the seed exam is not beside the checkout")
def test_the_exam_key_text_report_and_exit_code():
    result = run("audit", str(SEED))
    assert result.exit_code == 1
    flagged = [line for line in result.stdout.splitlines() if "WRONG" in line]
    assert len(flagged) == 2 and ":32: [1a]" in flagged[0] and ":50: [1b]" in flagged[1]
    assert ", 2 wrong, " in result.stdout.splitlines()[-1]
    assert "problem 1, part 1b: ring-pl" in result.stdout


RING_STATEMENT = (r"Sites $\mathcal{Y}[0], \ldots, \mathcal{Y}[N-1]$ on a ring take labels $\mathcal{Y}[n] \in \{-1,0,1\}$,"
                  "\n" r"scored by $s(\mathcal{Y}) = \sum_{n=0}^{N-2} \mathcal{Y}[n]\mathcal{Y}[n+1] + \mathcal{Y}[N-1]\mathcal{Y}[0]$;"
                  "\nwe want the negative log pseudo-likelihood of a constant labeling.\n")

KEY_AS_LATEX = r"""\documentclass{article}
\begin{document}
\section*{Problem 1: 25 pts}
""" + RING_STATEMENT + r"""
% the key's Problem 1, typed in LaTeX: \[ Z_n = 4 \] in a comment is ignored
\subsection*{(a) the labeling $\mathcal{Y}[n] = 0$}
\[ Z_{n} = 3 \]
\[ \ln \tilde{P}(\mathcal{Y}) = N \ln \frac{1}{3} \approx 1.1 N \text{ nats} \]
\subsection*{(b) the labeling $\mathcal{Y}[n] = 1$}
\begin{align*}
Z_{n} &= e^{N}(1 + e^{-2} + e^{-4}) \\
-\ln \tilde{P}(\mathcal{Y}) &= N \ln \frac{1}{1 + e^{-2} + e^{-4}} \approx .14 N
\end{align*}
\begin{equation}
P_{s}(\mathcal{Y} \mid \mathcal{Y}/n) = \frac{1}{1 + e^{-2} + e^{-4}} \approx .87
\end{equation}
\textbf{Answer:} $N \ln\left(1 + e^{-2} + e^{-4}\right)$.
\end{document}
"""


def test_a_latex_key_is_read_the_same_way(tmp_path):
    sheet = tmp_path / "key.tex"
    sheet.write_text(KEY_AS_LATEX)
    findings = findings_of(sheet)
    summary = [(f["line"], f["part"], f["ok"]) for f in findings]
    assert summary == [(10, "1a", True), (11, "1a", False), (14, "1b", True), (15, "1b", False),
                       (18, "1b", True), (20, "1b", True)]


# ------------------------------------------------------------ our own sheets

@pytest.fixture(scope="module")
def our_sheets(tmp_path_factory):
    """The exam's solution sheet as `derive build` renders it (Markdown and LaTeX, no PDF)."""
    from sheets import build, render
    exam = load_exam()
    sheet = render.exam_sheet(exam, build.exam_derivations(exam), build.SOLUTIONS_SUBTITLE)
    folder = tmp_path_factory.mktemp("sheets")
    markdown, latex = folder / "exam3-solutions.md", folder / "exam3-solutions.tex"
    markdown.write_text(render.render_markdown(sheet, solutions=True))
    latex.write_text(render.render_latex(sheet, solutions=True))
    return markdown, latex


@pytest.mark.parametrize("which", [0, 1])
def test_our_generated_sheet_flags_nothing(our_sheets, which):
    findings = findings_of(our_sheets[which])
    assert wrong(findings) == []
    checked = [f for f in findings if f["detail"].startswith(("checked", "the stated answer"))]
    assert len(checked) >= 20  # Problem 1 alone has 22 checkable lines
    parts = {f["part"] for f in checked}
    assert {"1a", "1b"} <= parts


def test_a_deliberately_wrong_derivation_makes_our_sheet_fail(our_sheets, monkeypatch):
    """The audit compares with the derivation: corrupt one derived value and a correct line is flagged."""
    from derivations import ring
    real = ring.RingPseudoLikelihood.derive

    def corrupted(self, params, problem=None):
        derivation = real(self, params, problem)
        for index, step in enumerate(derivation.steps):
            if step.name == "conditional partition function of the labeling":
                derivation.steps[index] = type(step)(step.kind, step.name, step.lhs,
                                                     tuple(2 * form for form in step.forms), step.text, step.checks)
        return derivation

    audit.part_model.cache_clear()
    monkeypatch.setattr(ring.RingPseudoLikelihood, "derive", corrupted)
    try:
        flagged = wrong(findings_of(our_sheets[0]))
    finally:
        audit.part_model.cache_clear()
    assert flagged and all(f["part"] in ("1a", "1b") for f in flagged)
    assert any(f["latex"].startswith("Z_n = 3") and "factor of 2" in f["detail"] for f in flagged)


# ------------------------------------------------------- hand-made mistakes

MISTAKES = r"""# Problem 1

""" + RING_STATEMENT + r"""
(a) The labeling $\mathcal{Y}[n] = 0$.

$$Z_n = 4$$

$$P_{s}(\mathcal{Y} \mid \mathcal{Y}/n) = 1/3 \approx 0.4$$

$$-\ln \tilde{P}(\mathcal{Y}) = 2 N \ln 3$$

$$E = mc^2$$

(b) The labeling $\mathcal{Y}[n] = 1$.

$$s(\mathcal{Y}[n=0]) = N - 3$$

$$s(\mathcal{Y}[n=i]) = N$$

$$-\ln \tilde{P}(\mathcal{Y}) = N \log_{10}(1 + e^{-2} + e^{-4})$$

$$-\ln \tilde{P}(\mathcal{Y}) = N \ln (1 + e^{-2} + e^{-4}) \approx 0.1429 N$$

**Answer:** $N \ln 3$
"""


def test_hand_made_mistakes_are_flagged_with_the_reason(tmp_path):
    sheet = tmp_path / "mistakes.md"
    sheet.write_text(MISTAKES)
    findings = {f["line"]: f for f in findings_of(sheet)}
    assert not findings[9]["ok"] and "the two sides differ" in findings[9]["detail"]
    assert not findings[11]["ok"] and "approximation is off" in findings[11]["detail"]
    assert not findings[13]["ok"] and "factor of 2" in findings[13]["detail"]
    assert findings[15]["ok"] and findings[15]["detail"].startswith("not checkable")
    assert not findings[19]["ok"]
    assert not findings[21]["ok"]  # true for i = 1 only
    assert not findings[23]["ok"] and "log base 10" in findings[23]["detail"]
    assert findings[25]["ok"] and findings[25]["detail"].startswith("checked 2")
    assert not findings[27]["ok"] and findings[27]["detail"].startswith("the stated answer is not the derived one")


def test_problem_level_lines_and_headings(tmp_path):
    sheet = tmp_path / "levels.md"
    sheet.write_text("$$Z_n = 3$$\n\n## Problem 1\n\n" + RING_STATEMENT + "\n$$Z_n = 3$$\n\n$$Z_n = 5$$\n\n"
                     "(a) The labeling $\\mathcal{Y}[n] = 0$.\n\n(b) The labeling $\\mathcal{Y}[n] = 1$.\n\n"
                     "## Problem 9\n\n### (a)\n\n$$x = 1$$\n\n### (b)\n\n$$y = 2$$\n")
    findings = findings_of(sheet)
    assert [(f["part"], f["ok"]) for f in findings] == [("", True), ("1", True), ("1", False), ("9", True)]
    assert findings[0]["detail"] == "not checkable: no problem heading above it"
    assert "fails for part 1b but not for the others" in findings[1]["detail"]  # Z_n = 3 holds in 1a only
    assert findings[2]["detail"].startswith("in every part")
    # a problem that matches no family: one line, with the reason, not one per equation
    assert findings[3]["detail"].startswith("not modelled: ") and findings[3]["line"] == 17


def test_a_variant_sheet_is_checked_with_its_own_parameters(tmp_path):
    manifest = {"seed": 1, "variants": [{"id": "v001", "parts": [
        {"problem": "1a", "family": "ring-pl", "args": ["N=5", "labels=-1,0,1", "assignment=0", "J=1"], "value": 5.49},
        {"problem": "1b", "family": "ring-pl", "args": ["N=5", "labels=-1,0,1", "assignment=1", "J=2"], "value": 0.0}]}]}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    body = ("## Problem 1\n\n" + RING_STATEMENT + "\n### (a) $\\mathcal{Y}[n] = 0$\n\n$$-\\ln \\tilde{P}(\\mathcal{Y}) = 5 \\ln 3 \\approx 5.4931$$\n\n"
            "### (b) $\\mathcal{Y}[n] = 1$\n\n$$s(\\mathcal{Y}[n=0]) = 2 N - 4$$\n")
    (tmp_path / "v001-solutions.md").write_text(body)
    (tmp_path / "other.md").write_text(body)
    assert wrong(findings_of(tmp_path / "v001-solutions.md")) == []
    assert len(wrong(findings_of(tmp_path / "other.md"))) == 2  # the exam's N is symbolic and J = 1


# ------------------------------------------------------------ hostile sheets

def test_hostile_sheets_are_read_not_run(tmp_path):
    marker = tmp_path / "executed"
    sheet = tmp_path / "hostile.tex"
    sheet.write_text("\\section*{Problem 1}\n" + RING_STATEMENT + "\\subsection*{(a) $\\mathcal{Y}[n] = 0$}\n"
                     f"\\[ \\input{{{marker}}} = 1 \\]\n"
                     f"\\[ \\immediate\\write18{{touch {marker}}} Z_n = 3 \\]\n"
                     "\\[ \\def\\x{1} Z_n = \\x \\]\n"
                     "\\[ Z_n = 9^{9^{9^{9}}} \\]\n"
                     "\\[ Z_n = " + "(" * 400 + "3" + ")" * 400 + " \\]\n"
                     "\\[ Z_n = \\csname relax\\endcsname 3 \\]\n"
                     "\\[ Z_n = " + "1" * 5000 + " \\]\n")
    started = time.monotonic()
    findings = findings_of(sheet)
    assert time.monotonic() - started < 20
    assert len(findings) == 7
    assert all(f["ok"] and f["detail"].startswith("not checkable") for f in findings), findings
    assert not marker.exists()


def test_unreadable_files_are_one_line_errors(tmp_path):
    binary = tmp_path / "binary.md"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    big = tmp_path / "big.md"
    big.write_text("x" * (audit.MAX_FILE_BYTES + 1))
    for path in (binary, big, tmp_path / "missing.md"):
        result = run("audit", str(path))
        assert result.exit_code == 2, result.output
        assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1


# ---------------------------------------------------------------- the pieces

def test_canonical_spellings_agree():
    assert canonical(r"P_{s}(\mathcal{Y} \mid \mathcal{Y}/n)") == canonical(r"P\left(\mathcal{Y}[n] \mid \mathcal{Y}/n\right)")
    assert canonical(r"\tilde P_s(\mathcal Y)") == canonical(r"\tilde{P}(\mathcal{Y})")
    assert canonical(r"Z_{n}") == "Z_n"
    assert canonical(r"\ln x") == r"\ln x"


def test_relations_split_at_the_top_level_only():
    assert split_relations(r"a = b \approx c") == (["a", "b", "c"], ["=", r"\approx"])
    assert split_relations(r"s(Y[n=1]) = \sum_{n=0}^{N} x") == (["s(Y[n=1])", r"\sum_{n=0}^{N} x"], ["="])
    assert split_relations(r"P(w_1 = i) \le 1") == (["P(w_1 = i)", "1"], [r"\le"])


def test_equations_are_found_with_their_lines_and_parts():
    text = "## Problem 1\n(a) q\n\n$$\na = b\n$$\n\n```\n$$ignored = 1$$\n```\n(b) r\n**Answer:** $x$ and $y = 2$\n"
    found = [(e.line, e.latex, e.answer_line) for e in find_equations(text, "markdown")]
    assert found == [(5, "a = b", False), (12, "x", True), (12, "y = 2", True)]
    sheet = read_key(text, "markdown")
    assert [(p.number, [part.letter for part in p.parts]) for p in sheet.problems] == [("1", ["a", "b"])]
    assert [e.line for e in sheet.problems[0].parts[1].equations] == [12, 12]


from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(size=st.integers(2, 12), coupling=st.sampled_from(["1", "1/2", "2", "-1", "3/2"]),
       labels=st.sampled_from(["-1,0,1", "-1,1", "0,1,2"]), alias=st.sampled_from(["1a", "1b"]))
def test_generated_variant_sheets_flag_nothing(tmp_path_factory, size, coupling, labels, alias):
    """A variant's own solution sheet, audited with its manifest, flags nothing; audited against
    the exam's parameters instead, its result line is flagged."""
    import derivations
    from sheets import render
    label = labels.split(",")[-1] if alias == "1b" else labels.split(",")[-2]
    args = [f"N={size}", f"labels={labels}", f"assignment={label}", f"J={coupling}"]
    derivation = derivations.solve("ring-pl", dict(a.split("=", 1) for a in args))
    derivation.problem = alias
    folder = tmp_path_factory.mktemp("variant")
    (folder / "manifest.json").write_text(json.dumps(
        {"seed": 0, "variants": [{"id": "s1", "parts": [{"problem": alias, "family": "ring-pl", "args": args,
                                                          "value": derivation.value}]}]}))
    sheet = render.render_markdown(render.single_part_sheet(derivation), True)
    (folder / "s1-solutions.md").write_text(sheet)
    findings = findings_of(folder / "s1-solutions.md")
    assert wrong(findings) == [], findings
    assert sum(f["detail"].startswith("checked") for f in findings) >= 5
    (folder / "unlinked.md").write_text(sheet)  # no manifest: its statement fixes N, labels, J and the labeling
    assert wrong(findings_of(folder / "unlinked.md")) == []
