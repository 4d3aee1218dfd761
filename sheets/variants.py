"""`derive variants`: one exam per student, each with its own checked solution sheet.

Every part of the exam gets fresh parameters from its family's generate(), drawn from a
random stream named by the seed, the variant id and the part's label. A variant therefore
depends on (seed, id) alone: adding a student to a roster never changes anyone else's exam.
A part redraws the parameters its exam file lists in `vary` (by default every one it does
not fix) and keeps the others (1a stays the all-zero labeling, 1b the all-one), so every
variant asks the same questions with other numbers.

Each drawn part is derived and must pass all its checks, or the run stops and nothing is
put in place; each distinct parameter set is derived once. The sheets are rendered with the
exam's own templates. One process makes the variants in order while pdflatex typesets them,
as they come, in two combined documents (read from named pipes), so deriving and
typesetting share the two cores; a figure that recurs is typeset once per document as a PDF
form. pikepdf (qpdf) cuts the PDFs into per-variant files at the named destination each
sheet starts with, in a helper process (see pdfsplit). Every file is written,
as soon as it is made, into a temporary directory beside the target, created before any
work starts (an output that cannot be written is refused at once), and moved into place
at the end, so a failed or interrupted run leaves no half-written file.

Output (DIR defaults to build/variants):
    manifest.json                 {"seed": S, "exam": {...}, "variants": [{"id", "parts": [{"problem", "part", "family",
                                  "args", "points", "value"}]}]}
    moodle.xml                    a numerical question per numeric part, an essay per explanation part
    answer-key.csv                exam, id, name, part, points, family, value, answer (LaTeX): the table for grading
    questions.pdf, solutions.pdf  all variants, each starting on a fresh sheet (duplex printing)
    ID-questions.{pdf,md,html}, ID-solutions.{pdf,md,html}  per variant
"""
from __future__ import annotations

import contextlib
import csv
import dataclasses
import functools
import gc
import hashlib
import io
import json
import logging
import math
import os
import random
import re
import shutil
import tempfile
import threading
import unicodedata
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import jinja2
from derivations.core import Derivation, Family, agree, derive
from derivations.exam import Exam, ExamPart, load_exam
from derivations.values import ParameterError

from . import html, pdf, pdfsplit, render
from .pdfsplit import DEST_PREFIX, SHEETS, SplitError

SPLIT_FROM = 4            # variants from which the sheets compile as two documents
MAX_DRAWS = 60            # parameter draws per part before giving up (a generator bug)
MAX_ROSTER_BYTES = 2_000_000
MAX_NAME = 120
ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,39}$")
MANIFEST = "manifest.json"
MOODLE = "moodle.xml"
ANSWER_KEY = "answer-key.csv"
ALL_QUESTIONS = "questions.pdf"
ALL_SOLUTIONS = "solutions.pdf"


class VariantError(RuntimeError):
    """A variant could not be made: a failed check, a generator that found nothing, LaTeX failed."""


# ----------------------------------------------------------------- students

@dataclass(frozen=True)
class Student:
    id: str
    name: str = ""   # empty without a roster


def numbered_ids(count: int) -> list[Student]:
    width = max(3, len(str(count)))
    return [Student(f"v{index:0{width}d}") for index in range(1, count + 1)]


def read_roster(path: Path) -> list[Student]:
    """A CSV with a header naming the columns `id` and `name` (others are ignored)."""
    try:
        data = Path(path).read_bytes()
    except OSError as failure:
        raise ParameterError("roster", f"cannot read '{path}' ({failure.strerror})") from None
    if len(data) > MAX_ROSTER_BYTES:
        raise ParameterError("roster", f"file is larger than {MAX_ROSTER_BYTES} bytes")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as bad:
        raise ParameterError("roster", f"is not UTF-8 text (byte {bad.start})") from None
    rows = list(csv.reader(io.StringIO(text, newline="")))
    while rows and not any(cell.strip() for cell in rows[-1]):
        rows.pop()
    if not rows:
        raise ParameterError("roster", "is empty; expected a header line 'id,name' and one line per student")
    header = [cell.strip().lower() for cell in rows[0]]
    if "id" not in header or "name" not in header:
        raise ParameterError("roster", f"header must name the columns id and name, got '{','.join(rows[0])[:60]}'")
    id_column, name_column = header.index("id"), header.index("name")
    students: list[Student] = []
    seen: dict[str, int] = {}
    for line, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) <= max(id_column, name_column):
            raise ParameterError("roster", f"line {line}: expected the columns id and name, got {len(row)} column(s)")
        student_id, name = row[id_column].strip(), row[name_column].strip()
        if not ID_PATTERN.match(student_id):
            raise ParameterError("roster", f"line {line}: id '{_clip(student_id)}' must be 1-40 letters, digits, "
                                 "'.', '_' or '-', starting with a letter or digit (it names the files)")
        if student_id.lower() in seen:  # s1 and S1 would name the same file on some systems
            raise ParameterError("roster", f"line {line}: id '{student_id}' repeats line {seen[student_id.lower()]}")
        seen[student_id.lower()] = line
        students.append(Student(student_id, check_name(name, line)))
    if not students:
        raise ParameterError("roster", "has a header but no students")
    return students


def check_name(name: str, line: int) -> str:
    """Names are untrusted: printable text only. Escaping happens where they are rendered."""
    if not name:
        raise ParameterError("roster", f"line {line}: the name is empty")
    if len(name) > MAX_NAME:
        raise ParameterError("roster", f"line {line}: the name is longer than {MAX_NAME} characters")
    for char in name:
        if unicodedata.category(char) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"):
            raise ParameterError("roster", f"line {line}: the name contains the control or format character "
                                 f"U+{ord(char):04X}; only printable text is allowed")
    return name


def _clip(text: str, width: int = 30) -> str:
    shown = "".join(c if c.isprintable() else "?" for c in text)
    return shown if len(shown) <= width else shown[:width] + "..."


def markdown_text(text: str) -> str:
    """Plain text shown literally in Markdown: every punctuation mark that could mean markup is escaped."""
    return re.sub(r"([\\`*_{}\[\]<>()#+!|~&$^])", r"\\\1", text)


# ------------------------------------------------------------- drawing parts

@dataclass(frozen=True)
class StepView:
    """A step as the templates read it, its LaTeX printed once (SymPy printing is the slow part)."""

    kind: Any
    name: str
    text: str
    checks: tuple
    checked: bool
    latex: str


@dataclass(frozen=True)
class DerivationView:
    """What the sheet templates and the Moodle writer read from a Derivation, computed once.

    Remarks about the official key are left out: they compare the exam's own numbers with
    its key, which a variant does not have."""

    problem: str
    family: str
    question: str
    steps: tuple
    answer_latex: str
    value: Any
    answer_text: str
    tables: tuple
    figure: Any
    remarks: tuple
    all_checks: tuple

    @classmethod
    def of(cls, d: Derivation, latex_cache: dict | None = None) -> "DerivationView":
        steps = tuple(StepView(step.kind, step.name, step.text, tuple(step.checks), step.checked,
                               step_latex(step, latex_cache))
                      for step in d.steps)
        return cls(d.problem, d.family, d.question, steps, d.answer_latex, d.value, d.answer_text,
                   tuple(d.tables), d.figure, tuple(r for r in d.remarks if r.kind != "key"),
                   tuple(d.all_checks))


def _latex_key(value: Any) -> Any:
    """A key under which equal keys print the same LaTeX. SymPy's == is structural and
    type-aware (Float(2) != Integer(2), precision included; a Notation's LaTeX is part of
    its identity); plain Python values carry their type (1, 1.0 and True are == in Python)."""
    if isinstance(value, (tuple, list)):
        return (type(value), tuple(_latex_key(item) for item in value))
    return (type(value), value)


def step_latex(step: Any, cache: dict | None) -> str:
    """step.latex, printed once per distinct step display (many steps recur across variants:
    the definitions, and every part whose drawn numbers match another's)."""
    if cache is None:
        return step.latex
    try:
        key = _latex_key((step.lhs, step.forms, step.relation, step.approximation))
        hash(key)
    except TypeError:  # an unhashable form: print it every time
        return step.latex
    if key not in cache:
        cache[key] = step.latex
    return cache[key]


@dataclass
class Part:
    exam_part: ExamPart
    family: Family
    args: list[str]
    view: DerivationView
    points: float | None = None

    @property
    def problem(self) -> str:
        """What `derive solve` takes: the seed alias or family the exam file names."""
        return self.exam_part.use

    @property
    def label(self) -> str:
        return self.exam_part.label

    @property
    def value(self) -> Any:
        return self.view.value

    @property
    def numeric(self) -> bool:
        return self.family.numeric and self.view.value is not None

    def manifest(self) -> dict:
        return {"problem": self.problem, "part": self.label, "family": self.family.name, "args": list(self.args),
                "points": self.points, "value": self.view.value}


@dataclass
class Variant:
    student: Student
    parts: list[Part]

    @property
    def id(self) -> str:
        return self.student.id

    def manifest(self) -> dict:
        entry: dict[str, Any] = {"id": self.id}
        if self.student.name:
            entry["name"] = self.student.name
        entry["parts"] = [part.manifest() for part in self.parts]
        return entry


def values_agree(a: Any, b: Any) -> bool:
    if isinstance(a, (list, tuple)) or isinstance(b, (list, tuple)):
        if not (isinstance(a, (list, tuple)) and isinstance(b, (list, tuple))) or len(a) != len(b):
            return False
        return all(values_agree(x, y) for x, y in zip(a, b))
    return agree(float(a), float(b))


def finite(value: Any) -> bool:
    if isinstance(value, (list, tuple)):
        return all(finite(item) for item in value)
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def describe(family: Family, args: list[str]) -> str:
    return f"derive solve {family.name} " + " ".join(f"-p {arg}" for arg in args)


class Deriver:
    """Derives each distinct (part, parameters) once and insists that every check passed."""

    def __init__(self) -> None:
        self.cache: dict[tuple, DerivationView] = {}
        self.latex: dict[Any, str] = {}

    def derive(self, variant_id: str, alias: str, family: Family, params: dict, args: list[str]) -> DerivationView:
        key = (alias, tuple(args))
        if key not in self.cache:
            try:
                derivation = derive(family, params, alias)
            except Exception as failure:  # a crash on generated input is a bug to report, with its input
                raise VariantError(f"variant {variant_id}, part {alias}: the derivation failed "
                                   f"({type(failure).__name__}: {failure}); reproduce with: "
                                   f"{describe(family, args)}") from None
            if not derivation.passed:
                failed = [f"{check.name} ({check.detail})" for check in derivation.all_checks if not check.passed]
                raise VariantError(f"variant {variant_id}, part {alias}: checks failed, nothing written: "
                                   f"{'; '.join(failed) or 'no checks ran'}; reproduce with: "
                                   f"{describe(family, args)}")
            if family.numeric and derivation.value is not None and not finite(derivation.value):  # None: symbolic
                raise VariantError(f"variant {variant_id}, part {alias}: the answer value {derivation.value!r} "
                                   f"is not a finite number; reproduce with: {describe(family, args)}")
            self.cache[key] = DerivationView.of(derivation, self.latex)
        return self.cache[key]


def draw_variant(seed: int, student: Student, deriver: Deriver, exam: Exam) -> Variant:
    parts: list[Part] = []
    for exam_part in exam.parts:
        part = draw_part(seed, student.id, exam_part, parts, deriver)
        part.points = exam.part_points(exam_part)
        parts.append(part)
    return Variant(student, parts)


def draw_part(seed: int, variant_id: str, exam_part: ExamPart, earlier: list[Part], deriver: Deriver) -> Part:
    """Draw until the parameters are valid and the part is no copy of an earlier part of its family.
    The part's `vary` parameters come from the draw; the others keep the exam's values."""
    family, alias = exam_part.family, exam_part.use
    rng = random.Random(f"derive-variants/{seed}/{variant_id}/{exam_part.label}")
    kin = [part for part in earlier if part.family is family]
    last_reason = "no draw"
    for _ in range(MAX_DRAWS):
        drawn = family.generate(rng)
        raw = {**exam_part.defaults, **{name: text for name, text in drawn.items() if name in exam_part.vary}}
        try:
            params = family.parse(raw)
        except ParameterError as bad:
            last_reason = str(bad)
            continue
        args = family.args(params)
        if any(part.args == args for part in kin):
            last_reason = "the same parameters as another part"
            continue
        part = Part(exam_part, family, args, deriver.derive(variant_id, alias, family, params, args))
        # Two parts asking the same question of one family (1a, 1b) must not share an answer.
        twin = next((o.label for o in kin if part.numeric and o.numeric and values_agree(o.value, part.value)), None)
        if twin is not None:
            last_reason = f"the same answer as part {twin}"
            continue
        return part
    raise VariantError(f"variant {variant_id}, part {exam_part.label}: no usable parameters from {family.name}.generate() "
                       f"in {MAX_DRAWS} draws (last: {last_reason})")


# ------------------------------------------------------------------ sheets

@dataclass
class VariantResult:
    """One variant, drawn, derived, checked and rendered: plain data (it crosses processes)."""

    student: Student
    manifest: dict
    questions_body: str          # LaTeX between \begin{document} and \end{document}
    solutions_body: str
    questions_md: str
    solutions_md: str
    questions_html: str
    solutions_html: str
    preamble: str
    figures: dict[str, str]      # figure key -> TikZ source, referenced as \derivefigure{key}
    moodle: list                 # (alias, [moodle.Question]) in exam order
    answers: list[str]           # each part's answer in LaTeX, in exam order


@dataclass(frozen=True)
class VariantRecord:
    """What the run keeps of a variant once its sheets are sent and written: the manifest,
    Moodle XML and answer key are made from these at the end (a few KB, not the sheets' 200)."""

    student: Student
    manifest: dict
    moodle: list
    answers: list[str]

    @classmethod
    def of(cls, result: VariantResult) -> "VariantRecord":
        return cls(result.student, result.manifest, result.moodle, result.answers)


def figure_key(tex: str) -> str:
    return hashlib.sha256(tex.encode("utf-8")).hexdigest()[:16]


def variant_sheet(variant: Variant, exam: Exam, solutions: bool, markdown: bool,
                  figures: dict[str, str] | None, tikz: bool = True) -> render.SheetView:
    """A variant's sheet; each figure is a reference into `figures`, typeset once per document.
    With figures None the sheets leave the figures out (they are most of pdflatex's time);
    tikz=False keeps them as data (the HTML sheet draws its own SVG)."""
    problems = []
    for problem in exam.problems:
        parts = []
        for part in (p for p in variant.parts if p.exam_part in problem.parts):
            figure_tex = ""
            view = part.view if figures is not None else dataclasses.replace(part.view, figure=None)
            if tikz and solutions and not markdown and view.figure is not None:
                tex = render.render_figure(part.view)
                key = figure_key(tex)
                figures[key] = tex
                figure_tex = f"\\derivefigure{{{key}}}"
            parts.append(render.PartView(render.part_label(part.exam_part, problem), part.exam_part.title,
                                         view, figure_tex))
        problems.append(render.ProblemView(problem.number, problem.title, render.shown_points(problem.points),
                                           problem.intro, parts))
    what = "worked solutions, derived and checked by derive" if solutions else "questions"
    name = markdown_text(variant.student.name) if markdown else variant.student.name
    return render.SheetView(exam.heading, f"Variant {variant.id}: {what}", problems,
                            student=name, variant=variant.id)


def split_document(tex: str) -> tuple[str, str]:
    begin, end = "\\begin{document}\n", "\\end{document}"
    start = tex.index(begin) + len(begin)
    return tex[:start], tex[start:tex.rindex(end)]


def make_variant(seed: int, student: Student, deriver: Deriver, exam: Exam,
                 with_figures: bool = True) -> VariantResult:
    from . import moodle
    variant = draw_variant(seed, student, deriver, exam)
    figures: dict[str, str] | None = {} if with_figures else None
    try:
        with quiet_pylatexenc():
            questions_tex = render.render_latex(variant_sheet(variant, exam, False, False, figures), solutions=False)
            solutions_tex = render.render_latex(variant_sheet(variant, exam, True, False, figures), solutions=True)
        questions_md = render.render_markdown(variant_sheet(variant, exam, False, True, figures), solutions=False)
        solutions_md = render.render_markdown(variant_sheet(variant, exam, True, True, figures), solutions=True)
        drawn = {} if with_figures else None
        questions_html = html.render_html(variant_sheet(variant, exam, False, False, drawn, tikz=False), solutions=False)
        solutions_html = html.render_html(variant_sheet(variant, exam, True, False, drawn, tikz=False), solutions=True)
    except jinja2.TemplateError as failure:
        raise VariantError(f"variant {variant.id}: rendering the sheet failed "
                           f"({type(failure).__name__}: {failure})") from None
    preamble, questions_body = split_document(questions_tex)
    solutions_preamble, solutions_body = split_document(solutions_tex)
    if solutions_preamble != preamble:
        raise VariantError("the question and solution sheets have different LaTeX preambles")
    return VariantResult(student, variant.manifest(), questions_body, solutions_body, questions_md, solutions_md,
                         questions_html, solutions_html, preamble, figures or {}, moodle.variant_questions(variant, exam),
                         [part.view.answer_latex for part in variant.parts])


@contextlib.contextmanager
def quiet_pylatexenc() -> Iterator[None]:
    """pylatexenc logs a warning for each character it cannot spell in LaTeX (it prints '?');
    the sheet shows that, so the log line would only clutter the terminal."""
    logger = logging.getLogger("pylatexenc")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


# ------------------------------------------------------------ combined PDFs

PREAMBLE_ADDITIONS = (
    "%% derive variants: each variant numbers its own pages and names itself in the footer;\n"
    "%% a figure that recurs across variants is typeset once, as a PDF form, and reused.\n"
    "%% zlib level 3, not 9: 8% less pdflatex time for 11% larger files.\n"
    "\\pdfcompresslevel=3\n"
    "\\makeatletter\n"
    "\\def\\derivevariant{}\n"
    "\\def\\@oddfoot{\\hfil{\\small\\derivevariant\\quad\\thepage}\\hfil}\n"
    "\\let\\@evenfoot\\@oddfoot\n"
    "\\newbox\\derivefigurebox\n"
    "\\newcommand{\\derivefigure}[1]{\\leavevmode\\pdfrefxform\\csname derivefigure@#1\\endcsname\\relax}\n"
    "\\makeatother\n"
)


@functools.lru_cache(maxsize=1)
def sheet_preamble() -> str:
    """The LaTeX preamble every sheet shares, through \\begin{document}: known before any
    variant is made (the sheet template puts nothing of a sheet's own above it)."""
    blank = render.SheetView("", "", [])  # the title is set after \begin{document}
    return split_document(render.render_latex(blank, solutions=True))[0]


def document_head() -> str:
    """The start of a combined document: the sheets' preamble with the combined additions."""
    preamble = sheet_preamble()
    return preamble[:preamble.rindex("\\begin{document}")] + PREAMBLE_ADDITIONS + "\\begin{document}\n"


def variant_source(result: VariantResult, index: int, defined: set[str]) -> str:
    """A variant's two sheets in a combined document, each starting on a new page at the named
    destination derive-variant-<sheet>-<index>, which is how the split finds its first page.
    A figure not yet in `defined` is set first, once per document, as a PDF form."""
    chunks = []
    for key, tex in result.figures.items():
        if key not in defined:
            defined.add(key)
            chunks.append(f"\\setbox\\derivefigurebox=\\hbox{{%\n{tex}}}\\immediate\\pdfxform\\derivefigurebox\n"
                          f"\\expandafter\\xdef\\csname derivefigure@{key}\\endcsname{{\\the\\pdflastxform}}\n")
    label = render.latex_escape(f"Variant {result.student.id}")
    for sheet, body in zip(SHEETS, (result.questions_body, result.solutions_body)):
        chunks.append(f"\\clearpage\\setcounter{{page}}{{1}}\\gdef\\derivevariant{{{label}}}"
                      f"\\pdfdest name{{{DEST_PREFIX}{sheet}-{index}}} xyz\\relax\n")
        chunks.append(body)
    return "".join(chunks)


DOCUMENT_END = "\\end{document}\n"


def combined_document(results: list[VariantResult]) -> str:
    """The whole source of one combined document, as it is streamed to pdflatex."""
    defined: set[str] = set()
    return (document_head() + "".join(variant_source(result, index, defined) for index, result in enumerate(results))
            + DOCUMENT_END)


# The first document's share of the variants. It starts typesetting as soon as the first
# variant is made and the second only once its own first variant is, so the first takes more:
# with 50 variants on two cores, 0.76 was fastest of 0.72, 0.76 and 0.8 (median of 7 runs
# each: 2.74, 2.72, 2.84 s) and, once the helper cut every document, level with 0.7 and 0.82
# (2.93, 2.90, 2.91 s, 6 runs each, a slower hour); 0.5 leaves a core idle ~0.7 s.
# The cut depends on the count alone, never on the machine: which glyphs a document uses
# decides its font subsets, so the bytes of every PDF depend on where the cut falls.
FIRST_DOCUMENT_SHARE = 0.76


def document_ranges(count: int) -> list[range]:
    """The variants of each combined document: two for two cores, one for a few variants."""
    if count < SPLIT_FROM:
        return [range(count)]
    cut = min(count - 1, max(1, round(count * FIRST_DOCUMENT_SHARE)))
    return [range(cut), range(cut, count)]


# ---------------------------------------------------------------- building

def sheet_file(student: Student, sheet: str, suffix: str) -> str:
    """The name of a variant's sheet: ID-questions.pdf, ID-solutions.md, ..."""
    return f"{student.id}-{sheet}.{suffix}"


def variant_files(student: Student) -> list[str]:
    return [sheet_file(student, sheet, suffix) for sheet in SHEETS for suffix in ("pdf", "md", "html")]


def resolve_students(count: int | None, roster: Path | None) -> list[Student]:
    if roster is None:
        if count is None:
            raise ParameterError("count", "is required unless --roster gives the students")
        if count < 1:
            raise ParameterError("count", f"must be at least 1, got {count}")
        return numbered_ids(count)
    students = read_roster(roster)
    if count is not None and count != len(students):
        raise ParameterError("count", f"is {count} but the roster has {len(students)} students; "
                             f"omit --count or give {len(students)}")
    return students


def build_variants(seed: int, count: int | None, out_dir: Path, roster: Path | None = None,
                   progress: bool = False, figures: bool = True,
                   helper: pdfsplit.Helper | None = None, exam: Exam | None = None) -> list[Path]:
    """Write the variant exams into out_dir and return the files written, in a fixed order.

    With a roster, count may be None (one variant per student) or must equal the number of
    students. figures=False leaves the figures out of the solution sheets. An out_dir that
    cannot be written is refused before any work is done. A helper (pdfsplit.Helper) the
    caller started, and stops, cuts the PDFs; without one, the run starts its own. With no
    exam, the seed exam.
    """
    students = resolve_students(count, roster)
    exam = exam if exam is not None else load_exam()
    with Staging(Path(out_dir)) as staging, progress_bar(progress, len(students) + 2) as advance, \
            collecting_no_cycles():
        names = make_outputs(seed, students, staging, exam, advance, figures, helper)
        advance(1)
        files = staging.publish(names)
        advance(1)
    return files


@contextlib.contextmanager
def collecting_no_cycles() -> Iterator[None]:
    """Python's cycle collector off for the run. The derivations make millions of short-lived
    SymPy objects but almost no reference cycles (peak memory is the same without it), yet
    its passes over the SymPy caches took 0.18 s of a 2.7 s run of 50 variants. The objects
    alive before the run, and after it, are frozen out of its sight: switched back on, its
    first pass would otherwise walk the million cached objects the run made (0.05 s)."""
    enabled = gc.isenabled()
    gc.freeze()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()


def make_outputs(seed: int, students: list[Student], staging: "Staging", exam: Exam, advance=lambda steps: None,
                 with_figures: bool = True, helper: pdfsplit.Helper | None = None) -> list[str]:
    """Writes every output file into staging and returns their names, in a fixed order.

    One process makes the variants, in roster order, while pdflatex typesets them as they
    come (see Typesetting): deriving and typesetting share the two cores. Each file is
    written as soon as it is made; nothing is in place until staging.publish."""
    from . import moodle
    deriver = Deriver()
    records: list[VariantRecord] = []
    with Typesetting(students, staging, helper) as typesetting:
        for index, student in enumerate(students):
            result = make_variant(seed, student, deriver, exam, with_figures)
            typesetting.add(index, result)
            for sheet, markdown, page in zip(SHEETS, (result.questions_md, result.solutions_md),
                                             (result.questions_html, result.solutions_html)):
                staging.write(sheet_file(student, sheet, "md"), markdown.encode("utf-8"))
                staging.write(sheet_file(student, sheet, "html"), page.encode("utf-8"))
            records.append(VariantRecord.of(result))
            advance(1)
        # Made while pdflatex sets the last pages.
        manifest = {"seed": seed, "exam": {"name": exam.stem, "title": exam.heading},
                    "variants": [record.manifest for record in records]}
        staging.write(MANIFEST, (json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))
        staging.write(MOODLE, moodle.moodle_xml(seed, [record.moodle for record in records], exam).encode("utf-8"))
        staging.write(ANSWER_KEY, answer_key(records, exam).encode("utf-8"))
        typesetting.finish()
    return [name for student in students for name in variant_files(student)] + [
        ALL_QUESTIONS, ALL_SOLUTIONS, MANIFEST, MOODLE, ANSWER_KEY]


class CombinedDocument:
    """Some consecutive variants in one LaTeX document, typeset by pdflatex while they are made."""

    def __init__(self, variants: range, stream: pdf.LatexStream) -> None:
        self.variants = variants
        self.stream = stream
        self.defined: set[str] = set()
        self.handed_over = threading.Event()  # set once its cut is given to the helper (or failed)
        stream.write(document_head())

    @property
    def complete(self) -> bool:
        return self.stream.closed

    def add(self, index: int, result: VariantResult) -> None:
        self.stream.write(variant_source(result, index - self.variants.start, self.defined))
        if index == self.variants[-1]:
            self.stream.write(DOCUMENT_END)
            self.stream.close()


class Typesetting:
    """pdflatex, in two processes, typesetting the variants' sheets as they are added.

    The sheets go into two combined documents read from named pipes (one for a few
    variants). As each pdflatex ends, a helper process (pdfsplit.Helper: pikepdf holds
    Python's lock, so only another process can cut while this one works) cuts its PDF into
    per-variant files in staging, while finish() makes the two print files here. The caller
    may give a helper it started earlier; without one, and with one document (a few
    variants), the cut is made here. A LaTeX error stops the run at the next variant.
    Leaving the context stops pdflatex and the helper first (a failed run ends fast), then
    waits for the cutting threads."""

    def __init__(self, students: list[Student], staging: "Staging", helper: pdfsplit.Helper | None = None) -> None:
        self.students = students
        self.staging = staging
        self.stack = contextlib.ExitStack()
        self.pool = self.stack.enter_context(ThreadPoolExecutor(max_workers=2))
        self.jobs: list = []
        self.ranges = document_ranges(len(students))
        self.documents: list[CombinedDocument] = []
        self.helper = helper  # one the caller started (and stops), or ours, started below
        # The first pdflatex starts at once and reads its preamble while the first variant is
        # made. The second, and the helper if none was given, start once that variant is in:
        # any sooner, they would take CPU from the first variant, which everything waits for.
        self._start_document()

    def _start_document(self) -> None:
        try:
            stream = self.stack.enter_context(pdf.LatexStream(pdf.TIMEOUT_SECONDS + 2 * len(self.students)))
        except pdf.LatexError as failure:  # pdflatex missing
            self.stack.close()
            raise VariantError(str(failure)) from None
        self.documents.append(CombinedDocument(self.ranges[len(self.documents)], stream))

    def __enter__(self) -> "Typesetting":
        return self

    def __exit__(self, *exc_info) -> None:
        self.stack.close()

    def add(self, index: int, result: VariantResult) -> None:
        if result.preamble != sheet_preamble():
            raise VariantError("the variant sheets have a different LaTeX preamble from the combined document")
        document = next(document for document in self.documents if index in document.variants)
        document.add(index, result)
        failure = document.stream.failure()
        if failure is not None:  # a LaTeX error stops the run now, not after every variant is made
            raise VariantError(str(failure))
        if document.complete:
            self.jobs.append(self.pool.submit(self._cut, document))
        if len(self.documents) < len(self.ranges):
            self._start_document()
            if self.helper is None:
                self.helper = self.stack.enter_context(pdfsplit.Helper())

    def _cut(self, document: CombinedDocument) -> None:
        """Waits for the document's pdflatex, then writes its variants' PDFs into staging."""
        files = {sheet: [self.staging.path(sheet_file(self.students[index], sheet, "pdf"))
                         for index in document.variants] for sheet in SHEETS}
        if self.helper is None:
            pdfsplit.cut_to_files(document.stream.finished(), files)
            return
        try:  # the helper takes the documents in turn; this process makes the print files
            ticket = self.helper.submit(document.stream.finished(), files)
        finally:
            document.handed_over.set()
        self.helper.wait(ticket)

    def finish(self) -> None:
        """Writes the two print files, each sheet of every variant in order, padded to an even
        page count, once every pdflatex has ended; then waits until every per-variant PDF is
        written."""
        import pikepdf
        try:
            sources = []
            for document in self.documents:
                finished = document.stream.finished()
                if self.helper is not None:
                    # pikepdf keeps Python's lock while it works: the last document's cut must be
                    # handed to the helper before this process starts on the print files.
                    document.handed_over.wait()
                with pikepdf.open(finished) as opened:
                    sources.append((finished, pdfsplit.page_ranges(opened, len(document.variants))))
            blank = Path(self.documents[0].stream.workdir, "blank.pdf")  # removed with the stream
            pdfsplit.write_blank_page(sources[0][0], blank)
            for sheet, name in zip(SHEETS, (ALL_QUESTIONS, ALL_SOLUTIONS)):
                pdfsplit.write_print_file([(path, ranges[sheet]) for path, ranges in sources], blank,
                                          self.staging.path(name))
            for job in self.jobs:
                job.result()
        except (pdf.LatexError, SplitError, pikepdf.PdfError) as failure:
            raise VariantError(str(failure)) from None


def answer_key(records: list[VariantRecord], exam: Exam) -> str:
    """The grading table: one row per variant and part, with the value and the exact answer."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["exam", "id", "name", "part", "points", "family", "value", "answer"])
    for record in records:
        for part, latex in zip(record.manifest["parts"], record.answers):
            writer.writerow([exam.stem, record.student.id, spreadsheet_safe(record.student.name), part["part"],
                             json.dumps(part["points"]), part["family"], json.dumps(part["value"]), latex])
    return buffer.getvalue()


def spreadsheet_safe(text: str) -> str:
    """A leading = + - @ would make a spreadsheet read the cell as a formula; a quote keeps it text."""
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


@contextlib.contextmanager
def progress_bar(enabled: bool, length: int):
    if not enabled:
        yield lambda steps: None
        return
    import click
    with click.progressbar(length=length, label="variants", file=click.get_text_stream("stderr")) as bar:
        yield bar.update


# ----------------------------------------------------------------- writing

class Staging:
    """The output files, written into a temporary directory beside out_dir as they are made,
    and moved into place together by publish(); leaving without publishing removes them all.

    A new out_dir is the temporary directory renamed in one step. An existing one gets
    each file by rename (each file atomic); files a previous run listed in its manifest
    and this run does not write (a smaller --count) are removed. Nothing else is touched.
    """

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = Path(out_dir)
        parent = self.out_dir.resolve().parent
        try:
            parent.mkdir(parents=True, exist_ok=True)
            if self.out_dir.exists() and not self.out_dir.is_dir():
                raise ParameterError("out", f"'{self.out_dir}' exists and is not a directory")
            self.directory = Path(tempfile.mkdtemp(prefix=f".{self.out_dir.name}.", suffix=".tmp", dir=parent))
        except OSError as failure:
            blocker = next((path for path in (parent, *parent.parents) if path.exists()), None)
            if blocker is not None and not blocker.is_dir():  # mkdir only says "File exists"
                raise ParameterError("out", f"'{blocker}' is a file, not a directory") from None
            raise ParameterError("out", f"cannot write under '{self.out_dir}' ({failure.strerror})") from None

    def path(self, name: str) -> Path:
        return self.directory / name

    def write(self, name: str, data: bytes) -> None:
        try:
            pdfsplit.write_file(self.path(name), data)
        except OSError as failure:
            raise ParameterError("out", f"cannot write '{self.out_dir}' ({failure.strerror})") from None

    def publish(self, names: list[str]) -> list[Path]:
        """Moves the named files into out_dir (each must have been written) and returns their paths."""
        try:
            missing = [name for name in names if not self.path(name).is_file()]
            if missing:
                raise VariantError(f"internal error: {missing[0]} was never written")
            os.chmod(self.directory, 0o755)
            stale = previous_files(self.out_dir) - set(names)
            if not self.out_dir.exists():
                os.rename(self.directory, self.out_dir)
            else:
                for name in names:
                    os.replace(self.path(name), self.out_dir / name)
                for name in sorted(stale):
                    (self.out_dir / name).unlink(missing_ok=True)
        except OSError as failure:
            raise ParameterError("out", f"cannot write '{self.out_dir}' ({failure.strerror})") from None
        return [self.out_dir / name for name in names]

    def __enter__(self) -> "Staging":
        return self

    def __exit__(self, *exc_info) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)  # gone already once renamed into place


def publish(out_dir: Path, outputs: dict[str, bytes]) -> list[Path]:
    """Writes files given as bytes, as a run does (for callers that have them in memory)."""
    with Staging(out_dir) as staging:
        for name, data in outputs.items():
            staging.write(name, data)
        return staging.publish(list(outputs))


def previous_files(out_dir: Path) -> set[str]:
    """The files an earlier run wrote here, as its manifest lists them (empty if none)."""
    try:
        manifest = json.loads((out_dir / MANIFEST).read_text(encoding="utf-8"))
        ids = [entry["id"] for entry in manifest["variants"]]
    except (OSError, ValueError, KeyError, TypeError):
        return set()
    return {name for variant_id in ids if isinstance(variant_id, str) and ID_PATTERN.match(variant_id)
            for name in variant_files(Student(variant_id))}
