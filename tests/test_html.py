"""HTML sheets: they parse without errors, every formula is MathML, text is escaped, figures
are inline SVG, and a real browser (headless Chromium) lays every formula out."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import html5lib
import pytest
from click.testing import CliRunner

from cli import cli
from sheets import html, render
from derivations.exam import load_exam
from sheets import build


def exam_derivations():
    return build.exam_derivations(load_exam())


def exam_sheet(derivations):
    return render.exam_sheet(load_exam(), derivations, build.SOLUTIONS_SUBTITLE)

ROOT = Path(__file__).resolve().parent.parent
SCREENSHOT = ROOT / "build" / "html-solutions-screenshot.png"
MATHML = "{http://www.w3.org/1998/Math/MathML}"
SVG = "{http://www.w3.org/2000/svg}"
RAW_TEX = ("\\frac", "$$", "\\left", "\\hat", "\\mathcal")


@pytest.fixture(scope="module")
def derivations():
    return exam_derivations()


@pytest.fixture(scope="module")
def pages(derivations):
    sheet = exam_sheet(derivations)
    questions = render.SheetView(sheet.title, "Questions", sheet.problems)
    return {"solutions": html.render_html(sheet, solutions=True),
            "questions": html.render_html(questions, solutions=False)}


def parse(text: str):
    parser = html5lib.HTMLParser(tree=html5lib.getTreeBuilder("etree"), namespaceHTMLElements=False)
    tree = parser.parse(text)
    return tree, parser.errors


def text_outside_math(element) -> str:
    """The page's text with every <math> element left out."""
    pieces = [element.text or ""]
    for child in element:
        if child.tag != f"{MATHML}math":
            pieces.append(text_outside_math(child))
        pieces.append(child.tail or "")
    return "".join(pieces)


def test_sheets_parse_without_errors(pages):
    for name, page in pages.items():
        tree, errors = parse(page)
        assert errors == [], (name, errors[:3])
        assert page.startswith("<!DOCTYPE html>\n")


def test_every_formula_is_mathml_and_no_tex_is_left_in_the_text(pages, derivations):
    tree, _ = parse(pages["solutions"])
    maths = tree.findall(f".//{MATHML}math")
    displays = [m for m in maths if m.get("display") == "block"]
    steps = sum(len(d.steps) for d in derivations.values())
    assert len(displays) >= steps  # one display per step (and any $$...$$ of the prose)
    text = text_outside_math(tree.find("body"))
    for tex in RAW_TEX + ("$",):
        assert tex not in text, tex
    # The figures are inline SVG, one per derivation that has one, with MathML labels.
    figures = tree.findall(f".//{SVG}svg")
    assert len(figures) == sum(1 for d in derivations.values() if d.figure is not None) >= 4
    for figure in figures:
        assert figure.findall(f".//{SVG}foreignObject//{MATHML}math"), figure.get("aria-label")
    # No script, no stylesheet or image fetched: the page is self-contained.
    assert not tree.findall(".//script") and not tree.findall(".//link") and not tree.findall(".//img")


def test_the_question_sheet_holds_no_solution(pages):
    assert "Solution" not in pages["questions"] and "Independent checks" not in pages["questions"]
    assert "Problem 1" in pages["questions"]


def test_untrusted_text_is_escaped(derivations):
    sheet = exam_sheet(derivations)
    hostile = render.SheetView(sheet.title, "x", sheet.problems[:1], student="<script>alert('x')</script> & $\\frac{1}{2}$")
    page = html.render_html(hostile, solutions=False)
    assert "<script>" not in page
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; $\\frac{1}{2}$" in page
    assert parse(page)[1] == []


def test_prose_math_and_escapes():
    shown = str(html.prose(r"If $a < b$ then 100\% & <b>x</b>"))
    assert shown.startswith("If <math")
    assert "&#x0003C;" in shown  # the '<' inside the formula, as latex2mathml writes it
    assert shown.endswith(" then 100% &amp; &lt;b&gt;x&lt;/b&gt;")


def test_solve_format_html_and_bad_input(tmp_path):
    out = tmp_path / "3c.html"
    result = CliRunner().invoke(cli, ["solve", "3c", "--format", "html", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert parse(out.read_text(encoding="utf-8"))[1] == []
    bad = tmp_path / "bad.html"
    result = CliRunner().invoke(cli, ["solve", "1a", "-p", "N=0", "--format", "html", "-o", str(bad)])
    assert result.exit_code == 2
    assert result.output.startswith("error:") and len(result.output.strip().splitlines()) == 1
    assert not bad.exists()


def test_the_html_is_the_same_bytes_every_time(pages, derivations):
    again = html.render_html(exam_sheet(exam_derivations()), solutions=True)
    assert again == pages["solutions"]


# ------------------------------------------------------------------ browser

MEASURE = """<script>
window.addEventListener("load", function () {
  var maths = Array.prototype.slice.call(document.querySelectorAll("math"));
  var sizes = maths.map(function (m) { var r = m.getBoundingClientRect(); return [r.width, r.height]; });
  var fractions = Array.prototype.slice.call(document.querySelectorAll("mfrac")).map(function (f) {
    var r = f.getBoundingClientRect(), top = f.children[0].getBoundingClientRect(),
        bottom = f.children[1].getBoundingClientRect();
    return [r.top + window.scrollY, r.height, top.bottom - bottom.top, Math.min(top.right, bottom.right) - Math.max(top.left, bottom.left)]; });
  var figures = Array.prototype.slice.call(document.querySelectorAll("svg.figure")).map(function (s) {
    var r = s.getBoundingClientRect(); return [s.getAttribute("aria-label"), r.top + window.scrollY, r.width, r.height]; });
  var out = document.createElement("pre");
  out.id = "derive-measurements";
  out.textContent = JSON.stringify({sizes: sizes, fractions: fractions, figures: figures,
                                    text: document.body.innerText});
  document.body.appendChild(out);
});
</script>
"""
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--mute-audio"]
WINDOW = (1000, 3200)


def chromium() -> str | None:
    return next((path for path in map(shutil.which, ("chromium", "chromium-browser")) if path), None)


def run_chromium(binary: str, profile: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([binary, *FLAGS, f"--user-data-dir={profile}", *args], capture_output=True,
                          text=True, timeout=90)


def test_chromium_lays_out_every_formula_and_shows_the_ring(pages, tmp_path):
    binary = chromium()
    if binary is None:
        pytest.skip("chromium is not installed (./setup.sh installs Debian's chromium package)")
    page = tmp_path / "exam3-solutions.html"
    page.write_text(pages["solutions"], encoding="utf-8")
    probe = tmp_path / "probe.html"
    probe.write_text(pages["solutions"].replace("</body>", MEASURE + "</body>"), encoding="utf-8")
    with tempfile.TemporaryDirectory() as profile:
        try:
            dumped = run_chromium(binary, Path(profile), f"--window-size={WINDOW[0]},{WINDOW[1]}",
                                  "--virtual-time-budget=5000", "--dump-dom", probe.as_uri())
        except (OSError, subprocess.TimeoutExpired) as failure:
            pytest.skip(f"chromium cannot run here ({failure})")
        found = re.search(r'<pre id="derive-measurements">(.*?)</pre>', dumped.stdout, re.DOTALL)
        if dumped.returncode != 0 or found is None:
            pytest.skip(f"chromium cannot run here (exit {dumped.returncode}: {dumped.stderr.strip()[-200:]})")
        import html as html_module
        measured = json.loads(html_module.unescape(found.group(1)))
        SCREENSHOT.parent.mkdir(exist_ok=True)
        SCREENSHOT.unlink(missing_ok=True)
        shot = run_chromium(binary, Path(profile), f"--window-size={WINDOW[0]},{WINDOW[1]}",
                            f"--screenshot={SCREENSHOT}", page.as_uri())
    expected = pages["solutions"].count("<math ")
    assert len(measured["sizes"]) == expected > 100
    empty = [index for index, (width, height) in enumerate(measured["sizes"]) if width <= 0 or height <= 0]
    assert empty == [], f"{len(empty)} <math> elements have no rendered size"
    for tex in RAW_TEX:
        assert tex not in measured["text"], tex
    # Fractions are set as fractions: every numerator sits above its denominator (not beside
    # it), and some fractions are in the screenshot.
    fractions = measured["fractions"]
    assert len(fractions) == pages["solutions"].count("<mfrac>") > 50
    misplaced = [f for f in fractions if f[2] > 1.0 or f[3] <= 0]
    assert misplaced == [], misplaced[:3]
    assert any(top < WINDOW[1] for top, *_ in fractions)
    # The ring figure (1a) lies wholly inside the screenshot, at a real size.
    rings = [figure for figure in measured["figures"] if figure[0].startswith("The ring")]
    assert rings, measured["figures"]
    _, top, width, height = rings[0]
    assert width > 150 and height > 150 and top + height < WINDOW[1]
    assert shot.returncode == 0, shot.stderr[-300:]
    assert SCREENSHOT.read_bytes().startswith(b"\x89PNG")
