"""Render derivations into question and solution sheets (Markdown and LaTeX).

Templates hold layout only; every formula arrives as LaTeX made by SymPy, every
number already formatted, every user string already escaped.
"""
from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import jinja2
from pylatexenc.latexencode import UnicodeToLatexEncoder

from derivations.core import Derivation
from derivations.exam import Exam, ExamPart, ExamProblem

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"


_ENCODER = UnicodeToLatexEncoder(non_ascii_only=False, unknown_char_policy="replace")


@functools.lru_cache(maxsize=4096)
def _escaped(text: str) -> str:
    return _ENCODER.unicode_to_latex(text)


def latex_escape(text: str) -> str:
    """User and plain text made safe for LaTeX: every special character becomes a macro.
    Cached: the same titles and step names recur on every sheet of a variant run."""
    return _escaped(str(text))


class _TemplateCache(jinja2.FileSystemBytecodeCache):
    """Jinja's compiled templates, kept between runs: compiling ours took 0.05 s at the start
    of every run. Jinja keys each entry by the template's name and checks it against a hash of
    the source, so an edited template is compiled afresh; the directory is Jinja's private
    per-user one under the system's temporary directory. A cache that cannot be written is
    simply not kept."""

    def dump_bytecode(self, bucket) -> None:
        try:
            super().dump_bytecode(bucket)
        except OSError:
            pass


def template_cache(syntax: dict[str, str], directory: str | None = None) -> jinja2.BytecodeCache | None:
    """The compiled-template cache of environments with this syntax. Jinja's key is the
    template's name alone, and the same name read with other delimiters is other code, so
    the syntax is part of each entry's file name."""
    tag = hashlib.sha256(repr(sorted(syntax.items())).encode("utf-8")).hexdigest()[:16]
    try:
        return _TemplateCache(directory, pattern=f"__derive_{tag}_%s.cache")
    except (OSError, RuntimeError):  # no safe private directory here: compile every time
        return None


def environment(**syntax) -> jinja2.Environment:
    """A Jinja environment for our templates: strict about undefined names, no autoescape
    (each output format escapes its own way), compiled templates kept between runs."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)),
                             undefined=jinja2.StrictUndefined, trim_blocks=True,
                             lstrip_blocks=True, keep_trailing_newline=True, autoescape=False,
                             bytecode_cache=template_cache(syntax), **syntax)
    env.filters["latex_escape"] = latex_escape
    return env


MARKDOWN = environment()
LATEX = environment(block_start_string=r"\BLOCK{", block_end_string="}",
                     variable_start_string=r"\VAR{", variable_end_string="}",
                     comment_start_string=r"\#{", comment_end_string="}",
                     line_comment_prefix="%#")


@dataclass
class PartView:
    label: str            # "(a)", or "" for a one-part problem
    title: str
    derivation: Derivation
    figure_tex: str = ""  # the TikZ picture, rendered from templates/figures/


@dataclass
class ProblemView:
    number: int
    title: str
    points: int
    intro: str
    parts: list[PartView]


@dataclass
class SheetView:
    title: str
    subtitle: str
    problems: list[ProblemView]
    student: str = ""          # LaTeX-escaped in the LaTeX writer, as-is in Markdown
    variant: str = ""
    notes: list[str] = field(default_factory=list)


def part_label(part: ExamPart, problem: ExamProblem) -> str:
    return "" if len(problem.parts) == 1 else f"({part.name})"


def render_figure(derivation: Derivation) -> str:
    if derivation.figure is None:
        return ""
    template = LATEX.get_template(f"figures/{derivation.figure.template}.tex.j2")
    return template.render(data=derivation.figure.data, caption=derivation.figure.caption)


def problem_view(problem: ExamProblem, derivations: dict[str, Derivation]) -> ProblemView:
    """A problem of the exam with its parts' derivations (keyed by part label)."""
    parts = [PartView(part_label(part, problem), part.title, derivations[part.label],
                      render_figure(derivations[part.label])) for part in problem.parts]
    return ProblemView(problem.number, problem.title, shown_points(problem.points), problem.intro, parts)


def shown_points(points: float | None) -> float | int:
    """Points as the sheet prints them: 25, not 25.0; 0 (not shown) when the exam gives none."""
    if points is None:
        return 0
    return int(points) if float(points).is_integer() else points


def exam_sheet(exam: Exam, derivations: dict[str, Derivation], subtitle: str) -> SheetView:
    return SheetView(exam.heading, subtitle, [problem_view(problem, derivations) for problem in exam.problems])


def render_markdown(sheet: SheetView, solutions: bool) -> str:
    return MARKDOWN.get_template("sheet.md.j2").render(sheet=sheet, solutions=solutions)


def render_latex(sheet: SheetView, solutions: bool) -> str:
    return LATEX.get_template("sheet.tex.j2").render(sheet=sheet, solutions=solutions)


def single_part_sheet(derivation: Derivation) -> SheetView:
    """A sheet holding one derivation, for `derive solve`. A seed alias keeps its problem
    number (1b is part b of Problem 1); a family has none."""
    from derivations.core import ALIASES, FAMILIES
    alias = ALIASES.get(derivation.problem)
    digits = len(derivation.problem) - len(derivation.problem.lstrip("0123456789"))
    number = int(derivation.problem[:digits]) if alias and digits else None
    title = alias.title if alias else FAMILIES[derivation.family].summary
    part = PartView("", title, derivation, render_figure(derivation))
    problem = ProblemView(number, f"{derivation.problem} ({derivation.family})", 0, "", [part])
    return SheetView(f"derive solve {derivation.problem}", "Worked solution, derived and checked", [problem])
