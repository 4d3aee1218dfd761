"""`derive build`: the exam's question sheet and its checked solution sheet."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from derivations import ALIASES, exam_problems, solve
from derivations.core import Derivation

from . import html, pdf, render
from .files import write_atomic

SOLUTIONS = "exam3-solutions"
QUESTIONS = "exam3"


class FailedChecks(RuntimeError):
    """A derivation whose checks did not all pass: no sheet is written."""


class OutputError(RuntimeError):
    """The output directory cannot be written (bad usage: exit 2)."""


@dataclass
class BuildResult:
    files: list[Path]
    derivations: dict[str, Derivation]


def exam_derivations() -> dict[str, Derivation]:
    return {alias: solve(alias) for problem in exam_problems() for alias in problem.parts}


def exam_sheet(derivations: dict[str, Derivation]) -> render.SheetView:
    titles = {alias: ALIASES[alias].title for alias in derivations}
    problems = [render.problem_view(problem, derivations, titles) for problem in exam_problems()]
    return render.SheetView(render.EXAM_TITLE, "Worked solutions, derived and checked by derive",
                            problems)


def build_exam(out_dir: Path) -> BuildResult:
    derivations = exam_derivations()
    failed = [f"{alias}: {check.name}" for alias, d in derivations.items()
              for check in d.all_checks if not check.passed]
    if failed:
        raise FailedChecks("checks failed, no sheet written: " + "; ".join(failed))
    sheet = exam_sheet(derivations)
    questions = render.SheetView(render.EXAM_TITLE, "Questions", sheet.problems)
    markdown = render.render_markdown(sheet, solutions=True)
    solutions_tex = render.render_latex(sheet, solutions=True)
    questions_tex = render.render_latex(questions, solutions=False)
    # Both PDFs compile at once: pdflatex is single-threaded and the machine has two cores.
    with ThreadPoolExecutor(max_workers=2) as pool:
        solutions_pdf, questions_pdf = pool.map(pdf.compile_pdf, [solutions_tex, questions_tex])
    outputs = {
        out_dir / f"{SOLUTIONS}.md": markdown,
        out_dir / f"{SOLUTIONS}.tex": solutions_tex,
        out_dir / f"{SOLUTIONS}.pdf": solutions_pdf,
        out_dir / f"{QUESTIONS}.pdf": questions_pdf,
        out_dir / f"{SOLUTIONS}.html": html.render_html(sheet, solutions=True),
        out_dir / f"{QUESTIONS}.html": html.render_html(questions, solutions=False),
    }
    try:
        for path, data in outputs.items():
            write_atomic(path, data)
    except OSError as failure:
        raise OutputError(f"--out '{out_dir}': cannot write {failure.filename or out_dir} "
                          f"({failure.strerror or failure})") from None
    return BuildResult(list(outputs), derivations)
