"""`derive variants`: manifest values against independent computation and `derive solve`,
Moodle XML, byte-identical reruns, hostile roster names, atomic output, the progress bar."""
from __future__ import annotations

import csv
import io
import itertools
import json
import math
import os
import pty
import select
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from fractions import Fraction
from pathlib import Path

import mpmath
import pytest
from click.testing import CliRunner

import derivations
from cli import cli
from derivations import FAMILIES, exam_problems
from derivations.core import Check
from sheets import pdf, pdfsplit, variants

ROOT = Path(__file__).resolve().parent.parent
SEED = 11
COUNT = 4  # from 4 variants the sheets go into two documents (SPLIT_FROM)
needs_tex = pytest.mark.skipif(not pdf.pdflatex_available(), reason="pdflatex is not installed (run ./setup.sh)")
needs_poppler = pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler-utils not installed")

HOSTILE = [
    ("s01", r"\input{/etc/passwd}"),
    ("s02", r"}{ \end{document} \def\x{boom} $x^2$ ^^5c"),
    ("s03", "100% & #1 _under_ ~tilde {braces} \\\\ Zoë Ünal"),
    ("s04", "<b>*bold*</b> [link](http://x) |pipe|"),
]


def run_cli(args: list[str]):
    result = CliRunner().invoke(cli, args)
    return result


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("variants") / "out"
    result = run_cli(["variants", "--seed", str(SEED), "--count", str(COUNT), "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def manifest(built):
    return json.loads((built / "manifest.json").read_text(encoding="utf-8"))


def parse_args(family_name: str, args: list[str]) -> dict:
    return FAMILIES[family_name].parse(dict(arg.split("=", 1) for arg in args))


# --------------------------------------------- independent computations, from scratch

def ring_score(labeling, coupling):
    size = len(labeling)
    return coupling * (sum(labeling[i] * labeling[i + 1] for i in range(size - 1)) + labeling[-1] * labeling[0])


def ring_labeling(params):
    assignment = [float(a) for a in params["assignment"]]
    return assignment * params["N"] if len(assignment) == 1 else assignment


def ring_pl(params):
    """-ln PL by re-scoring the literal ring for every site and label."""
    labels, coupling = [float(x) for x in params["labels"]], float(params["J"])
    labeling = ring_labeling(params)
    own = ring_score(labeling, coupling)
    total = 0.0
    for site in range(len(labeling)):
        scores = [ring_score(labeling[:site] + [b] + labeling[site + 1:], coupling) for b in labels]
        total += math.log(sum(math.exp(s - own) for s in scores))
    return total


def ring_nll(params):
    labels, coupling = [float(x) for x in params["labels"]], float(params["J"])
    labeling = ring_labeling(params)
    scores = [ring_score(list(c), coupling) for c in itertools.product(labels, repeat=len(labeling))]
    return math.log(sum(math.exp(s) for s in scores)) - ring_score(labeling, coupling)


def inverse_cdf(probabilities, eps):
    """Word i with sum_{j<i} P[j] <= eps < sum_{j<=i} P[j]; eps = 1 gives the last positive word."""
    probabilities = [Fraction(str(p)) for p in probabilities]
    eps = Fraction(str(eps))
    running = Fraction(0)
    for index, p in enumerate(probabilities):
        if p > 0 and running <= eps < running + p:
            return index
        running += p
    return max(i for i, p in enumerate(probabilities) if p > 0)


def word_gradient(params, h=Fraction(1, 10**6)):
    """Central differences of the sampled word in each P[i] (no renormalising: the word is
    piecewise constant either way)."""
    P = [Fraction(str(p)) for p in params["P"]]
    grads = []
    for i in range(len(P)):
        up, down = list(P), list(P)
        up[i] += h
        down[i] -= h
        grads.append((inverse_cdf(up, params["eps"]) - inverse_cdf(down, params["eps"])) / (2 * h))
    return [float(g) for g in grads]


def nearest_code(codebook, zhat):
    distances = [sum((Fraction(str(a)) - Fraction(str(b))) ** 2 for a, b in zip(code, zhat)) for code in codebook]
    return distances.index(min(distances))


def quantiser_jacobian(params, h=Fraction(1, 10**6)):
    codebook, zhat = params["codebook"], [Fraction(str(z)) for z in params["zhat"]]
    rows = []
    for out in range(len(zhat)):
        row = []
        for coordinate in range(len(zhat)):
            up, down = list(zhat), list(zhat)
            up[coordinate] += h
            down[coordinate] -= h
            row.append(float((Fraction(str(codebook[nearest_code(codebook, up)][out]))
                              - Fraction(str(codebook[nearest_code(codebook, down)][out]))) / (2 * h)))
        rows.append(row)
    return rows


def vae_rate(params):
    """I(s;z) = h(z) - sum_s w_s h(z|s), the mixture entropy by quadrature."""
    w = [float(x) for x in params["weights"]]
    mu = [float(x) for x in params["zhat"]]
    var = [float(x) for x in params["sigma2"]]

    def density(z):
        return sum(wi * mpmath.npdf(z, m, mpmath.sqrt(v)) for wi, m, v in zip(w, mu, var))

    spread = 12 * math.sqrt(max(var))
    points = sorted({min(mu) - spread, *mu, max(mu) + spread})
    entropy = -mpmath.quad(lambda z: density(z) * mpmath.log(density(z)) if density(z) > 0 else 0, points)
    conditional = sum(wi * 0.5 * math.log(2 * math.pi * math.e * v) for wi, v in zip(w, var))
    return float(entropy) - conditional


INDEPENDENT = {
    "ring-pl": ring_pl,
    "ring-nll": ring_nll,
    "gan-first-word": lambda p: inverse_cdf(p["P"], p["eps"]),
    "gan-next-word": lambda p: inverse_cdf(p["Q"][p["w"]], p["eps"]),
    "gan-gradient": word_gradient,
    "vq-quantize": lambda p: nearest_code(p["codebook"], p["zhat"]),
    "vq-gradient": quantiser_jacobian,
    "vae-reparam": lambda p: float(p["zhat"]) + math.sqrt(float(p["sigma2"])) * float(p["eps"]),
    "vae-gradient": lambda p: [1.0, float(p["eps"]) / (2 * math.sqrt(float(p["sigma2"])))],
    "vae-kl": lambda p: 0.5 * (float(p["mu"]) ** 2 + float(p["sigma2"]) - 1 - math.log(float(p["sigma2"]))),
    "vae-rate": vae_rate,
}


def close(a, b, tolerance=1e-9) -> bool:
    if isinstance(a, (list, tuple)):
        return isinstance(b, (list, tuple)) and len(a) == len(b) and all(close(x, y, tolerance) for x, y in zip(a, b))
    return abs(float(a) - float(b)) <= tolerance * max(1.0, abs(float(a)), abs(float(b)))


# ------------------------------------------------------------------- files

@needs_tex
def test_every_variant_has_its_files(built, manifest):
    ids = [v["id"] for v in manifest["variants"]]
    assert ids == ["v001", "v002", "v003", "v004"]
    expected = {"manifest.json", "moodle.xml", "answer-key.csv", "questions.pdf", "solutions.pdf"}
    for variant_id in ids:
        expected |= {f"{variant_id}-questions.pdf", f"{variant_id}-questions.md", f"{variant_id}-questions.html",
                     f"{variant_id}-solutions.pdf", f"{variant_id}-solutions.md", f"{variant_id}-solutions.html"}
    assert {p.name for p in built.iterdir()} == expected
    for name in expected:
        if name.endswith(".pdf"):
            assert (built / name).read_bytes().startswith(b"%PDF-"), name
    # No temporary directory left beside the output.
    assert not [p for p in built.parent.iterdir() if p.name.startswith(".")]


@needs_tex
def test_print_files_hold_every_sheet_in_order_each_on_fresh_paper(built, manifest):
    """questions.pdf and solutions.pdf: each variant's sheet, page by page as in its own file,
    then a blank page where the sheet has an odd number of pages (duplex printing)."""
    import pikepdf

    def contents(page):
        return page.obj.Contents.read_bytes() if "/Contents" in page.obj else b""

    blanks = 0
    for sheet in pdfsplit.SHEETS:
        with pikepdf.open(built / f"{sheet}.pdf") as printing:
            at = 0
            for entry in manifest["variants"]:
                with pikepdf.open(built / f"{entry['id']}-{sheet}.pdf") as own:
                    for page in own.pages:
                        assert contents(printing.pages[at]) == contents(page), (sheet, entry["id"], at)
                        at += 1
                    if len(own.pages) % 2:
                        assert contents(printing.pages[at]) == b"" and printing.pages[at].mediabox == own.pages[0].mediabox
                        at += 1
                        blanks += 1
            assert at == len(printing.pages) and at % 2 == 0
    assert blanks > 0  # the padding was exercised


@needs_tex
def test_manifest_covers_every_exam_part(manifest):
    aliases = [alias for problem in exam_problems() for alias in problem.parts]
    assert manifest["seed"] == SEED
    for variant in manifest["variants"]:
        assert [part["problem"] for part in variant["parts"]] == aliases
        for part in variant["parts"]:
            assert part["family"] == derivations.ALIASES[part["problem"]].family
            family = FAMILIES[part["family"]]
            if family.numeric:
                assert part["value"] is not None, part


@needs_tex
def test_manifest_values_agree_with_independent_computation(manifest):
    checked = 0
    for variant in manifest["variants"]:
        for part in variant["parts"]:
            compute = INDEPENDENT.get(part["family"])
            assert compute is not None, f"no independent computation in this test for {part['family']}"
            expected = compute(parse_args(part["family"], part["args"]))
            tolerance = 1e-6 if part["family"] == "vae-rate" else 1e-9
            assert close(part["value"], expected, tolerance), (variant["id"], part, expected)
            checked += 1
    assert checked == COUNT * len(manifest["variants"][0]["parts"])


@needs_tex
def test_args_reproduce_each_part_through_derive_solve(manifest):
    for variant in manifest["variants"]:
        for part in variant["parts"]:
            command = ["solve", part["family"], "--format", "json"]
            for arg in part["args"]:
                command += ["-p", arg]
            result = run_cli(command)
            assert result.exit_code == 0, (command, result.output)
            assert json.loads(result.output)["answer"]["value"] == part["value"], command


@needs_tex
def test_answers_differ_between_variants_and_between_sibling_parts(manifest):
    by_part: dict[str, list] = {}
    for variant in manifest["variants"]:
        for part in variant["parts"]:
            by_part.setdefault(part["problem"], []).append(json.dumps(part["args"]))
        values = {p["problem"]: p["value"] for p in variant["parts"]}
        if "1a" in values and "1b" in values:
            assert not close(values["1a"], values["1b"]), variant["id"]
    # Parameters vary from variant to variant for every part.
    for problem, args in by_part.items():
        assert len(set(args)) > 1, problem


@needs_tex
def test_answer_key_lists_every_part_with_its_value(built, manifest):
    with (built / "answer-key.csv").open(encoding="utf-8", newline="") as stream:
        rows = list(csv.DictReader(stream))
    expected = [(v["id"], p["problem"], p["value"]) for v in manifest["variants"] for p in v["parts"]]
    assert [(r["id"], r["part"], json.loads(r["value"])) for r in rows] == expected
    assert all(r["answer"] for r in rows)


def test_spreadsheet_formulas_in_names_are_defused():
    assert variants.spreadsheet_safe("=HYPERLINK(1)") == "'=HYPERLINK(1)"
    assert variants.spreadsheet_safe("Ada") == "Ada"


# ---------------------------------------------------------------- Moodle

def moodle_questions(root):
    category = None
    for question in root.findall("question"):
        if question.get("type") == "category":
            category = question.find("category/text").text
            continue
        yield category, question


@needs_tex
def test_moodle_xml_has_a_numerical_per_numeric_part_and_essays(built, manifest):
    root = ET.parse(built / "moodle.xml").getroot()
    assert root.tag == "quiz"
    found = {}
    for category, question in moodle_questions(root):
        assert category.startswith("$course$/top/")
        name = question.find("name/text").text
        assert question.find("questiontext").get("format") == "html"
        assert question.find("questiontext/text").text.strip()
        assert float(question.find("defaultgrade").text) > 0
        found[name] = question
    expected_names = set()
    for variant in manifest["variants"]:
        for part in variant["parts"]:
            derivation = derivations.solve(part["family"], dict(a.split("=", 1) for a in part["args"]))
            numeric = FAMILIES[part["family"]].numeric and part["value"] is not None
            base = f"{part['problem']} {variant['id']}"
            if numeric:
                values = part["value"] if isinstance(part["value"], list) else [part["value"]]
                for index, value in enumerate(values, start=1):
                    name = base + (f" ({index} of {len(values)})" if isinstance(part["value"], list) else "")
                    question = found[name]
                    assert question.get("type") == "numerical"
                    answer = question.find("answer")
                    assert answer.get("fraction") == "100"
                    assert float(answer.find("text").text) == value
                    tolerance = float(answer.find("tolerance").text)
                    if isinstance(value, int):
                        assert tolerance == 0
                    else:
                        assert 0 < tolerance <= max(1.01e-3 * abs(value), 1e-6)
                    expected_names.add(name)
                    # The question text carries its math for MathJax.
                    assert "\\(" in question.find("questiontext/text").text
            if derivation.answer_text or not numeric:
                name = base + (" (explanation)" if numeric else "")
                question = found[name]
                assert question.get("type") == "essay"
                assert question.find("responseformat").text == "editor"
                assert question.find("graderinfo/text").text.strip()
                expected_names.add(name)
    assert set(found) == expected_names


def numerical_answers(question):
    return [(answer.get("fraction"), float(answer.find("text").text), float(answer.find("tolerance").text),
             answer.find("feedback/text").text or "") for answer in question.findall("answer")]


@needs_tex
def test_numerical_questions_carry_the_worked_solution_and_the_mistakes(built):
    import html5lib
    root = ET.parse(built / "moodle.xml").getroot()
    numerical = [q for _, q in moodle_questions(root) if q.get("type") == "numerical"]
    assert numerical
    for question in numerical:
        name = question.find("name/text").text
        feedback = question.find("generalfeedback")
        assert feedback.get("format") == "html"
        solution = feedback.find("text").text
        assert '<ol class="steps">' in solution and "<math " in solution and "Answer:" in solution, name
        parser = html5lib.HTMLParser()
        parser.parseFragment(solution)
        assert parser.errors == [], (name, parser.errors[:3])
        (fraction, right, width, _), *mistakes = numerical_answers(question)
        assert fraction == "100"
        assert mistakes, f"{name}: no mistake answer"
        for fraction, value, tolerance, text in mistakes:
            assert fraction == "0" and text.startswith("<p>") and len(text) > 20, name
            # Moodle takes the first answer whose interval holds the response: no mistake's
            # interval may meet the right answer's.
            assert abs(value - right) > width + tolerance, (name, value, right)


@needs_tex
def test_moodle_mistake_feedback_is_what_derive_grade_says(built, manifest):
    import html
    from grading.grade import grade
    root = ET.parse(built / "moodle.xml").getroot()
    found = {q.find("name/text").text: q for _, q in moodle_questions(root) if q.get("type") == "numerical"}
    variant = manifest["variants"][0]
    checked = 0
    for part in variant["parts"]:
        question = found.get(f"{part['problem']} {variant['id']}")
        if question is None:
            continue
        raw = dict(arg.split("=", 1) for arg in part["args"])
        for answer in question.findall("answer")[1:]:
            typed = answer.find("text").text
            result = grade(part["problem"], raw, typed)
            assert not result.correct and result.mistake not in ("", "other")
            said = html.unescape(answer.find("feedback/text").text.removeprefix("<p>").removesuffix("</p>"))
            assert said == result.feedback[:1].upper() + result.feedback[1:] + ".", (part["problem"], typed)
            checked += 1
    assert checked >= 6


def test_a_mistake_within_the_tolerance_is_left_out(monkeypatch):
    """3a's z = 1.1 has tolerance 0.0011: a 'mistake' inside it, or whose own interval meets
    it, must not become an answer (Moodle would take the first matching one)."""
    from types import SimpleNamespace
    import grading.grade as grade_module
    from sheets import moodle
    fake = [grade_module.Mistake(1.1 * (1 + 5e-4), "sign", "inside the tolerance"),
            grade_module.Mistake(1.1 + 0.0011 + 0.0005, "factor", "intervals meet"),
            grade_module.Mistake(-1.1, "sign", "a sign error"),
            grade_module.Mistake(-1.1 * (1 + 1e-4), "log-base", "meets an earlier mistake")]
    monkeypatch.setattr(grade_module, "named_mistakes", lambda target, families=True: fake)
    part = SimpleNamespace(problem="3a", args=["zhat=1/2", "sigma2=4", "eps=3/10"])
    answers = moodle.mistake_answers(part, 1.1)
    assert answers == [("-1.1", "0.0011", "<p>A sign error.</p>")]


def test_the_model_gives_named_mistakes_with_the_graders_words():
    from grading.grade import make_target, named_mistakes
    mistakes = {m.code: m for m in named_mistakes(make_target("1b", {"N": "4", "J": "1/2"}))}
    assert {"sign", "log-base", "n1", "family"} <= set(mistakes)
    assert mistakes["sign"].value == pytest.approx(-1.6304238577775212, rel=1e-11)
    assert mistakes["n1"].feedback.startswith("the N=1 case")
    indices = named_mistakes(make_target("2a", {}))
    assert [(m.value, m.code) for m in indices] == [(2, "index"), (0, "index")]


def test_prose_math_becomes_mathjax_and_html_is_escaped():
    from sheets.moodle import cdata, prose_html
    html = prose_html(r"Is $a < b$ for \% of $$x^2$$ & <tags>?")
    assert html == r"Is \(a &lt; b\) for % of \[x^2\] &amp; &lt;tags&gt;?"
    assert cdata("a]]>b") == "<![CDATA[a]]]]><![CDATA[>b]]>"
    assert ET.fromstring(f"<t>{cdata('a]]>b')}</t>").text == "a]]>b"


# ----------------------------------------------------------- reproducibility

@needs_tex
def test_rerun_in_a_new_process_is_byte_identical(built, tmp_path):
    """Another process with another hash seed, stderr piped: same bytes, and no progress bar."""
    out = tmp_path / "again"
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    result = subprocess.run([sys.executable, "cli.py", "variants", "--seed", str(SEED), "--count", str(COUNT),
                             "--out", str(out)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # not a terminal: no progress bar
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in built.iterdir())
    for path in built.iterdir():
        assert (out / path.name).read_bytes() == path.read_bytes(), path.name


@needs_tex
def test_streamed_documents_give_the_bytes_of_a_plain_compile(built):
    """pdflatex reads the combined documents from a pipe while the variants are made; the
    sheets must be those of the same source compiled from a file (a lost or reordered chunk,
    or a swallowed first line, would change them)."""
    import pikepdf
    deriver = variants.Deriver()
    results = [variants.make_variant(SEED, student, deriver) for student in variants.numbered_ids(COUNT)]
    documents = variants.document_ranges(COUNT)
    assert len(documents) == 2  # both streams are exercised
    for indices in documents:
        data = pdf.compile_pdf(variants.combined_document([results[i] for i in indices]))
        with pikepdf.open(io.BytesIO(data)) as document:
            ranges = pdfsplit.page_ranges(document, len(indices))
            for sheet in pdfsplit.SHEETS:
                for index, piece in zip(indices, pdfsplit.cut_pages(document, ranges[sheet])):
                    assert piece == (built / f"{results[index].student.id}-{sheet}.pdf").read_bytes()


def test_a_variant_depends_on_seed_and_id_only():
    deriver = variants.Deriver()
    alone = variants.draw_variant(SEED, variants.Student("s02"), deriver)
    again = variants.draw_variant(SEED, variants.Student("s02", "Someone Else"), variants.Deriver())
    other_seed = variants.draw_variant(SEED + 1, variants.Student("s02"), deriver)
    assert [p.args for p in alone.parts] == [p.args for p in again.parts]
    assert [p.args for p in alone.parts] != [p.args for p in other_seed.parts]


# ------------------------------------------------------------------ roster

def write_roster(path: Path, rows) -> Path:
    with path.open("w", encoding="utf-8", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["id", "name"])
        writer.writerows(rows)
    return path


def run_in_terminal(args: list[str], timeout: float = 300) -> tuple[int, str]:
    """Run the CLI with stderr on a pseudo-terminal; return its exit code and what the terminal saw."""
    master, slave = pty.openpty()
    process = subprocess.Popen([sys.executable, "cli.py", *args], cwd=ROOT, stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=slave)
    os.close(slave)
    seen = b""
    while True:
        ready, _, _ = select.select([master], [], [], timeout)
        if not ready:
            process.kill()
            raise AssertionError("the CLI did not finish")
        try:
            chunk = os.read(master, 4096)
        except OSError:  # the terminal closed: the process is done
            break
        if not chunk:
            break
        seen += chunk
    os.close(master)
    process.wait(timeout=timeout)
    return process.returncode, seen.decode("utf-8", "replace")


@needs_tex
@needs_poppler
def test_hostile_roster_names_are_printed_literally(tmp_path):
    roster = write_roster(tmp_path / "roster.csv", HOSTILE)
    out = tmp_path / "out"
    code, terminal = run_in_terminal(["variants", "--seed", str(SEED), "--roster", str(roster), "--out", str(out)])
    assert code == 0, terminal
    assert "variants" in terminal and "100%" in terminal  # the progress bar, on a terminal
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert [(v["id"], v["name"]) for v in manifest["variants"]] == HOSTILE
    for student_id, name in HOSTILE:
        text = subprocess.run(["pdftotext", str(out / f"{student_id}-questions.pdf"), "-"], capture_output=True,
                              text=True, check=True).stdout
        flat = " ".join(text.split())
        assert " ".join(name.split()) in flat, (name, flat[:300])
        markdown = (out / f"{student_id}-questions.md").read_text(encoding="utf-8")
        assert "**Student:** " + variants.markdown_text(name) in markdown
    # Each student's sheet is theirs alone: one variant per student, named on every sheet.
    assert (out / "questions.pdf").exists()


def test_names_never_reach_tex_raw():
    result = variants.make_variant(SEED, variants.Student("s01", HOSTILE[0][1]), variants.Deriver())
    source = variants.combined_document([result])
    assert r"\input{/etc/passwd}" not in source
    assert r"{\textbackslash}input\{/etc/passwd\}" in source


@pytest.mark.parametrize("rows, message", [
    ([("s1", "Ada\x07Lovelace")], "control or format character U+0007"),
    ([("s1", "Ada\u202eLovelace")], "U+202E"),
    ([("s1", "Ada"), ("s1", "Bob")], "repeats line 2"),
    ([("../etc", "Ada")], "must be 1-40 letters"),
    ([("s1", "")], "name is empty"),
])
def test_bad_rosters_are_refused_with_one_error_line(tmp_path, rows, message):
    roster = write_roster(tmp_path / "roster.csv", rows)
    out = tmp_path / "out"
    result = run_cli(["variants", "--seed", "1", "--roster", str(roster), "--out", str(out)])
    assert result.exit_code == 2
    assert result.output.startswith("error: parameter 'roster'") and message in result.output
    assert result.output.count("\n") == 1
    assert not out.exists()


def test_count_must_match_the_roster(tmp_path):
    roster = write_roster(tmp_path / "roster.csv", [("s1", "Ada"), ("s2", "Bob")])
    result = run_cli(["variants", "--seed", "1", "--roster", str(roster), "--count", "3", "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "roster has 2 students" in result.output
    result = run_cli(["variants", "--seed", "1", "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "--count is required" in result.output


def test_roster_needs_a_header(tmp_path):
    path = tmp_path / "roster.csv"
    path.write_text("s1,Ada\n", encoding="utf-8")
    result = run_cli(["variants", "--seed", "1", "--roster", str(path), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "header must name the columns id and name" in result.output


# ---------------------------------------------------------- atomic output

@needs_tex
def test_nothing_is_written_when_latex_fails(tmp_path, monkeypatch):
    head = variants.document_head()
    monkeypatch.setattr(variants, "document_head", lambda: head + "\\derivenosuchmacro\n")
    out = tmp_path / "out"
    result = run_cli(["variants", "--seed", "1", "--count", "2", "--out", str(out)])
    assert result.exit_code == 1 and "Undefined control sequence" in result.output
    assert list(tmp_path.iterdir()) == []
    # An earlier run's files stay as they were.
    out.mkdir()
    (out / "manifest.json").write_text("old", encoding="utf-8")
    result = run_cli(["variants", "--seed", "1", "--count", "2", "--out", str(out)])
    assert result.exit_code == 1
    assert [p.name for p in out.iterdir()] == ["manifest.json"]
    assert (out / "manifest.json").read_text(encoding="utf-8") == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_an_out_that_cannot_be_written_is_refused_before_any_work(tmp_path, monkeypatch):
    def no_work(*args, **kwargs):
        raise AssertionError("a variant was made for an output that cannot be written")

    monkeypatch.setattr(variants, "make_variant", no_work)
    blocker = tmp_path / "file.txt"
    blocker.write_text("not a directory", encoding="utf-8")
    for out in (blocker, blocker / "out" / "deeper"):
        result = run_cli(["variants", "--seed", "1", "--count", "2", "--out", str(out)])
        assert result.exit_code == 2, result.output
        assert result.output.startswith("error:") and "out" in result.output and "is a file" in result.output
        assert str(blocker) in result.output and len(result.output.strip().splitlines()) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["file.txt"]


def test_the_cutting_helper_reports_a_broken_pdf(tmp_path):
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"%PDF-1.5\nnot really a PDF")
    files = {sheet: [str(tmp_path / f"v-{sheet}.pdf")] for sheet in pdfsplit.SHEETS}
    with pdfsplit.Helper() as helper:
        with pytest.raises(pdfsplit.SplitError, match="cannot cut broken.pdf"):
            helper.wait(helper.submit(broken, files))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.pdf"]


@needs_tex
def test_the_helper_takes_jobs_before_earlier_ones_end_and_answers_each(tmp_path):
    """A job is handed over without waiting for the one before it; each reply reaches its own
    job, a failed one among them included."""
    import pikepdf
    result = variants.make_variant(SEED, variants.Student("h1"), variants.Deriver())
    good = tmp_path / "good.pdf"
    good.write_bytes(pdf.compile_pdf(variants.combined_document([result])))
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"%PDF-1.5\nnot really a PDF")
    outs = [tmp_path / name for name in ("a", "b", "c")]
    for out in outs:
        out.mkdir()
    files = [{sheet: [str(out / f"{sheet}.pdf")] for sheet in pdfsplit.SHEETS} for out in outs]
    with pdfsplit.Helper() as helper:
        tickets = [helper.submit(good, files[0]), helper.submit(broken, files[1]), helper.submit(good, files[2])]
        helper.wait(tickets[2])
        with pytest.raises(pdfsplit.SplitError, match="cannot cut broken.pdf"):
            helper.wait(tickets[1])
        helper.wait(tickets[0])
    assert tickets == [0, 1, 2]
    assert list(outs[1].iterdir()) == []
    for sheet in pdfsplit.SHEETS:
        assert (outs[0] / f"{sheet}.pdf").read_bytes() == (outs[2] / f"{sheet}.pdf").read_bytes()
        with pikepdf.open(outs[0] / f"{sheet}.pdf") as document:
            assert len(document.pages) >= 1


def test_a_helper_that_died_fails_its_job_at_once(tmp_path):
    files = {sheet: [str(tmp_path / f"v-{sheet}.pdf")] for sheet in pdfsplit.SHEETS}
    with pdfsplit.Helper() as helper:
        helper.process.kill()
        helper.process.wait()
        with pytest.raises(pdfsplit.SplitError, match="the PDF-cutting process failed"):
            helper.wait(helper.submit(tmp_path / "any.pdf", files))


@needs_tex
def test_every_cut_is_handed_to_the_helper_before_the_print_files_are_made(tmp_path, monkeypatch):
    """pikepdf keeps Python's lock while it makes a print file; a cut not yet handed over by
    then would wait for it, and end the run that much later."""
    events = []
    submit, write_print_file = pdfsplit.Helper.submit, pdfsplit.write_print_file
    monkeypatch.setattr(pdfsplit.Helper, "submit",
                        lambda self, *args: events.append("cut") or submit(self, *args))
    monkeypatch.setattr(pdfsplit, "write_print_file",
                        lambda *args: events.append("print file") or write_print_file(*args))
    variants.build_variants(SEED, COUNT, tmp_path / "out")
    assert len(variants.document_ranges(COUNT)) == 2
    assert events == ["cut", "cut", "print file", "print file"]


def test_a_failed_check_stops_the_run(tmp_path, monkeypatch):
    family = FAMILIES[derivations.ALIASES[exam_problems()[0].parts[0]].family]
    real = type(family).derive

    def wrong(self, params, problem=None):
        derivation = real(self, params, problem)
        derivation.checks = [Check("deliberately wrong", False, "derived 1, independent 2")] + list(derivation.checks)
        return derivation

    monkeypatch.setattr(type(family), "derive", wrong)
    out = tmp_path / "out"
    result = run_cli(["variants", "--seed", "1", "--count", "2", "--out", str(out)])
    assert result.exit_code == 1
    assert "checks failed" in result.output and "deliberately wrong" in result.output
    assert f"derive solve {family.name} -p" in result.output
    assert list(tmp_path.iterdir()) == []


def test_rerun_with_fewer_variants_removes_only_our_stale_files(tmp_path):
    out = tmp_path / "out"
    def outputs(ids):
        files = {"manifest.json": json.dumps({"seed": 1, "variants": [{"id": i, "parts": []} for i in ids]}).encode()}
        for i in ids:
            files.update({name: b"x" for name in variants.variant_files(variants.Student(i))})
        return files
    variants.publish(out, outputs(["v001", "v002", "v003"]))
    (out / "notes.txt").write_text("mine", encoding="utf-8")
    written = variants.publish(out, outputs(["v001", "v002"]))
    names = sorted(p.name for p in out.iterdir())
    assert "v003-questions.pdf" not in names and "notes.txt" in names
    assert sorted(p.name for p in written) == sorted(set(names) - {"notes.txt"})
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_no_progress_bar_when_not_a_terminal(tmp_path, capsys):
    calls = []
    with variants.progress_bar(False, 5) as advance:
        advance(1)
        calls.append(1)
    assert calls and capsys.readouterr().err == ""


# ------------------------------------------------------------- speed-ups keep the content

def test_step_latex_cache_prints_what_the_step_prints():
    """The per-build LaTeX cache keys on type as well as value: 1, 1.0 and True are == in Python."""
    import sympy as sp
    from derivations.core import Step, StepKind
    x = sp.Symbol("x")
    steps = [Step(StepKind.COMPUTATION, "s", x, forms, "t", ()) for forms in
             [(sp.Integer(1),), (sp.Float(1.0),), (sp.Float("1.0", 30),), ((1, 2),), ((1.0, 2),), (sp.Integer(1),)]]
    cache: dict = {}
    assert [variants.step_latex(step, cache) for step in steps] == [step.latex for step in steps]
    assert len(cache) == 5  # the repeated step is printed once


def test_density_polyline_drops_only_invisible_points():
    """The mixture curves keep every point that lies visibly off the line between the kept ones."""
    from derivations import vae
    xs = [i / 100 * 9 for i in range(101)]
    points = [(x, 4 * math.exp(-(x - 4.5) ** 2)) for x in xs]
    kept = [tuple(map(float, p.strip("()").split(","))) for p in vae._polyline(points).split()]
    assert kept[0] == (0.0, round(points[0][1], 3)) and kept[-1] == (9.0, round(points[-1][1], 3))
    assert len(kept) < len(points)
    for x, y in points:  # every original point within the tolerance of the drawn polyline
        (x0, y0), (x1, y1) = next((a, b) for a, b in zip(kept, kept[1:]) if a[0] <= x <= b[0])
        off = abs((y1 - y0) * (x - x0) - (x1 - x0) * (y - y0)) / math.hypot(x1 - x0, y1 - y0)
        assert off <= vae.FIGURE_TOLERANCE + 0.001  # plus the rounding to 0.001 cm


def test_the_cycle_collector_is_back_on_after_a_run_and_ignores_its_objects():
    import gc
    assert gc.isenabled()
    try:
        with variants.collecting_no_cycles():
            assert not gc.isenabled()
            made = []
        assert gc.isenabled() and gc.is_tracked(made)
        assert not any(tracked is made for tracked in gc.get_objects())  # frozen: out of the collector's sight
        gc.disable()
        with variants.collecting_no_cycles():
            pass
        assert not gc.isenabled()  # a caller that had it off keeps it off
    finally:
        gc.enable()
        gc.unfreeze()
