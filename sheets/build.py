"""`derive build`: an exam's question sheet and its checked solution sheet."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from derivations import solve
from derivations.core import Derivation, DuplicateCheckName
from derivations.exam import Exam

from . import html, pdf, render
from .files import write_atomic

SOLUTIONS_SUBTITLE = "Worked solutions, derived and checked by derive"


class FailedChecks(RuntimeError):
    """A derivation whose checks did not all pass: no sheet is written."""


class OutputError(RuntimeError):
    """The output directory cannot be written (bad usage: exit 2)."""


@dataclass
class BuildResult:
    files: list[Path]
    derivations: dict[str, Derivation]


def exam_derivations(exam: Exam) -> dict[str, Derivation]:
    """Each part's derivation with the exam's fixed parameters, keyed by part label."""
    return {part.label: solve(part.use, part.fixed) for part in exam.parts}


def build_exam(exam: Exam, out_dir: Path) -> BuildResult:
    try:
        derivations = exam_derivations(exam)
    except DuplicateCheckName as clash:
        raise FailedChecks(f"checks failed, no sheet written: {clash}") from None
    failed = [f"{label}: {check.name}" for label, d in derivations.items()
              for check in d.all_checks if not check.passed]
    if failed:
        raise FailedChecks("checks failed, no sheet written: " + "; ".join(failed))
    sheet = render.exam_sheet(exam, derivations, SOLUTIONS_SUBTITLE)
    questions = render.SheetView(sheet.title, "Questions", sheet.problems)
    markdown = render.render_markdown(sheet, solutions=True)
    solutions_tex = render.render_latex(sheet, solutions=True)
    questions_tex = render.render_latex(questions, solutions=False)
    # Both PDFs compile at once: pdflatex is single-threaded and the machine has two cores.
    with ThreadPoolExecutor(max_workers=2) as pool:
        solutions_pdf, questions_pdf = pool.map(pdf.compile_pdf, [solutions_tex, questions_tex])
    outputs = {
        out_dir / f"{exam.stem}-solutions.md": markdown,
        out_dir / f"{exam.stem}-solutions.tex": solutions_tex,
        out_dir / f"{exam.stem}-solutions.pdf": solutions_pdf,
        out_dir / f"{exam.stem}.pdf": questions_pdf,
        out_dir / f"{exam.stem}-solutions.html": html.render_html(sheet, solutions=True),
        out_dir / f"{exam.stem}.html": html.render_html(questions, solutions=False),
    }
    try:
        for path, data in outputs.items():
            write_atomic(path, data)
    except OSError as failure:
        raise OutputError(f"--out '{out_dir}': cannot write {failure.filename or out_dir} "
                          f"({failure.strerror or failure})") from None
    return BuildResult(list(outputs), derivations)
