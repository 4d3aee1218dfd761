"""`derive build`: real PDFs, reproducible bytes, and a snapshot of the Markdown sheet."""
import os
import time
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import cli
from sheets import pdf
from derivations.exam import load_exam

SEED_TITLE = "TTIC 31230 Fundamentals of Deep Learning, Autumn 2021, Exam 3"

SNAPSHOT = Path(__file__).parent / "snapshots" / "exam3-solutions.md"
needs_tex = pytest.mark.skipif(not pdf.pdflatex_available(), reason="pdflatex is not installed (run ./setup.sh)")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    first = tmp_path_factory.mktemp("first")
    second = tmp_path_factory.mktemp("second")
    for out in (first, second):
        result = CliRunner().invoke(cli, ["build", "--out", str(out)])
        assert result.exit_code == 0, result.output
    return first, second


@needs_tex
def test_build_writes_the_sheets(built):
    first, _ = built
    assert sorted(p.name for p in first.iterdir()) == [
        "exam3-solutions.html", "exam3-solutions.md", "exam3-solutions.pdf", "exam3-solutions.tex",
        "exam3.html", "exam3.pdf"]


@needs_tex
def test_two_builds_are_byte_identical(built):
    first, second = built
    for name in ("exam3-solutions.md", "exam3-solutions.tex", "exam3-solutions.pdf", "exam3.pdf",
                 "exam3-solutions.html", "exam3.html"):
        assert (first / name).read_bytes() == (second / name).read_bytes(), name


def pdf_text(path: Path) -> str:
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True,
                          check=True).stdout


def page_count(path: Path) -> int:
    info = subprocess.run(["pdfinfo", str(path)], capture_output=True, text=True, check=True).stdout
    return int(re.search(r"Pages:\s+(\d+)", info).group(1))


@needs_tex
@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler-utils not installed")
def test_solution_pdf_shows_the_corrected_answers(built):
    first, _ = built
    text = pdf_text(first / "exam3-solutions.pdf")
    assert 3 <= page_count(first / "exam3-solutions.pdf") <= 30
    for expected in ("Problem 1", "1.0986", "0.1429", "0.8668", "differs from the official key"):
        assert expected in text, expected
    questions = pdf_text(first / "exam3.pdf")
    assert "Problem 1" in questions and "0.1429" not in questions


@needs_tex
def test_markdown_sheet_matches_snapshot(built):
    first, _ = built
    produced = (first / "exam3-solutions.md").read_text()
    if os.environ.get("UPDATE_SNAPSHOTS"):
        SNAPSHOT.write_text(produced)
    assert produced == SNAPSHOT.read_text(), "run with UPDATE_SNAPSHOTS=1 after an intended change"


@needs_tex
def test_no_line_of_the_solution_sheet_runs_into_the_margin(built, tmp_path):
    """TeX reports every line it could not fit as an overfull box; a remark quoting two long
    formulas, or a check name without spaces, used to stick out by up to 28pt."""
    first, _ = built
    (tmp_path / "sheet.tex").write_text((first / "exam3-solutions.tex").read_text())
    subprocess.run(pdf.COMMAND + ["sheet.tex"], cwd=tmp_path, capture_output=True, timeout=120, check=True)
    log = (tmp_path / "sheet.log").read_text(encoding="latin-1")
    assert re.findall(r"Overfull \\hbox \((.*?)\)", log) == []


def test_latex_errors_report_the_log_lines_only():
    if not pdf.pdflatex_available():
        pytest.skip("pdflatex is not installed")
    with pytest.raises(pdf.LatexError) as failure:
        pdf.compile_pdf("\\documentclass{article}\\begin{document}\\undefinedmacro\\end{document}")
    message = str(failure.value)
    assert "Undefined control sequence" in message
    assert len(message.splitlines()) < 35


def test_shell_escape_is_refused():
    if not pdf.pdflatex_available():
        pytest.skip("pdflatex is not installed")
    marker = Path("/tmp/derive-shell-escape-marker")
    marker.unlink(missing_ok=True)
    source = ("\\documentclass{article}\\begin{document}\\immediate\\write18{touch " + str(marker)
              + "}x\\end{document}")
    pdf.compile_pdf(source)
    assert not marker.exists()


# ------------------------------------------------------- streamed pdflatex

SMALL = "\\documentclass{article}\n\\begin{document}\nFirst line.\n\n$x^2$\n\\end{document}\n"


@needs_tex
def test_a_streamed_document_gives_the_bytes_of_a_file(tmp_path):
    with pdf.LatexStream() as stream:
        for line in SMALL.splitlines(keepends=True):
            stream.write(line)
            time.sleep(0.02)  # pdflatex waits on the pipe between chunks
        assert stream.failure() is None
        streamed = stream.result()
    assert streamed == pdf.compile_pdf(SMALL)


@needs_tex
def test_a_latex_error_in_a_stream_is_seen_before_the_end():
    with pdf.LatexStream() as stream:
        stream.write("\\documentclass{article}\n\\begin{document}\n\\undefinedmacro\n")
        deadline = time.monotonic() + 20
        while stream.failure() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert "Undefined control sequence" in str(stream.failure())
        stream.write("more text\n" * 20000)  # pdflatex no longer reads: the writer must not hang
        with pytest.raises(pdf.LatexError, match="Undefined control sequence"):
            stream.result()


@needs_tex
def test_an_abandoned_stream_stops_pdflatex_and_leaves_nothing():
    for pause in (0, 0.3):  # before and after pdflatex opens the pipe
        with pdf.LatexStream() as stream:
            stream.write("\\documentclass{article}\n\\begin{document}\n")
            time.sleep(pause)
        assert stream.process.poll() is not None
        assert not stream.writer.is_alive()
        assert not Path(stream.workdir).exists()


@needs_tex
def test_every_checked_step_and_only_those_carry_the_check_mark(built):
    """The mark is a box set once in the preamble; each checked step's item ends with it."""
    from sheets.build import exam_derivations
    first, _ = built
    tex = (first / "exam3-solutions.tex").read_text()
    preamble, body = tex.split("\\begin{document}")
    assert "\\sbox{\\stepcheckbox}{$\\checkmark$}" in preamble
    items = [line for line in body.splitlines() if line.startswith("\\item {\\itshape ")]
    steps = [step for d in exam_derivations(load_exam()).values() for step in d.steps]
    assert len(items) == len(steps)
    marked = [line.endswith("\\hfill\\stepcheck") for line in items]
    assert marked == [step.checked for step in steps]
    assert any(marked)
    assert "\\checkmark" not in body


def test_compiled_templates_are_kept_and_give_what_a_fresh_compile_gives(tmp_path):
    from sheets import render
    view = render.SheetView(SEED_TITLE, "", [])
    fresh = render.environment()
    fresh.bytecode_cache = None
    expected = fresh.get_template("sheet.md.j2").render(sheet=view, solutions=True)
    for attempt in range(2):  # the first compiles and keeps the code, the second loads it
        env = render.environment()
        env.bytecode_cache = render.template_cache({}, str(tmp_path))
        assert env.get_template("sheet.md.j2").render(sheet=view, solutions=True) == expected
        assert len(list(tmp_path.iterdir())) == 1


def test_a_template_read_with_other_delimiters_is_not_taken_from_the_cache(tmp_path):
    """Jinja keys its cache by template name; the same name under another syntax is other code."""
    from sheets import render
    view = render.SheetView(SEED_TITLE, "", [])
    other = {"variable_start_string": "<<", "variable_end_string": ">>"}
    fresh = render.environment(**other)
    fresh.bytecode_cache = None
    expected = fresh.get_template("sheet.md.j2").render(sheet=view, solutions=True)
    for syntax in ({}, other):
        env = render.environment(**syntax)
        env.bytecode_cache = render.template_cache(syntax, str(tmp_path))
        produced = env.get_template("sheet.md.j2").render(sheet=view, solutions=True)
    assert produced == expected
    assert len(list(tmp_path.iterdir())) == 2


def test_templates_render_where_their_compiled_code_cannot_be_kept(tmp_path):
    from sheets import render
    env = render.environment()
    env.bytecode_cache = render.template_cache({}, str(tmp_path / "missing"))
    assert "TTIC 31230" in env.get_template("sheet.md.j2").render(
        sheet=render.SheetView(SEED_TITLE, "", []), solutions=True)
