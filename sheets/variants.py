"""`derive variants`: one exam per student, each with its own checked solution sheet.

Every part of every exam problem gets fresh parameters from its family's generate(),
drawn from a random stream named by the seed, the variant id and the part. A
variant therefore depends on (seed, id) alone: adding a student to a roster never
changes anyone else's exam. A part keeps the parameters that tell it apart from its
sibling parts of the same family (1a stays the all-zero labeling, 1b the all-one),
so every variant asks the same questions with other numbers.

Each drawn part is derived and must pass all its checks before anything is written;
each distinct parameter set is derived once, and with several variants two forked
workers share the derivations. The sheets are rendered with the exam's own templates.
All question sheets go into one LaTeX document and the solution sheets into one or two
(balanced so that both cores finish together); a figure that recurs is typeset once per
document as a PDF form. pikepdf (qpdf) cuts the PDFs into per-variant files at the named
destination each variant starts with. Everything is written into a temporary directory
beside the target and moved into place at the end, so a failed or interrupted run leaves
no half-written file.

Output (DIR defaults to build/variants):
    manifest.json                 {"seed": S, "variants": [{"id", "parts": [{"problem", "family", "args", "value"}]}]}
    moodle.xml                    a numerical question per numeric part, an essay per explanation part
    answer-key.csv                id, name, part, family, value, answer (LaTeX): the table for grading
    questions.pdf, solutions.pdf  all variants, each starting on a fresh sheet (duplex printing)
    ID-questions.{pdf,md}, ID-solutions.{pdf,md}  per variant
"""
from __future__ import annotations

import contextlib
import csv
import dataclasses
import hashlib
import io
import json
import logging
import math
import multiprocessing
import os
import random
import re
import shutil
import signal
import tempfile
import unicodedata
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import jinja2
from derivations import ALIASES, FAMILIES, exam_problems
from derivations.core import Derivation, Family, agree
from derivations.values import ParameterError

from . import pdf, render

PARALLEL_FROM = 4         # variants from which two worker processes share the work
SPLIT_FROM = 4            # variants from which the solution sheets compile as two documents
MAX_DRAWS = 60            # parameter draws per part before giving up (a generator bug)
MAX_ROSTER_BYTES = 2_000_000
MAX_NAME = 120
ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,39}$")
MANIFEST = "manifest.json"
MOODLE = "moodle.xml"
ANSWER_KEY = "answer-key.csv"
ALL_QUESTIONS = "questions.pdf"
ALL_SOLUTIONS = "solutions.pdf"
DEST_PREFIX = "derive-variant-"


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
    problem: str          # the alias, e.g. "1a"
    family: Family
    args: list[str]
    view: DerivationView

    @property
    def value(self) -> Any:
        return self.view.value

    @property
    def numeric(self) -> bool:
        return self.family.numeric and self.view.value is not None

    def manifest(self) -> dict:
        return {"problem": self.problem, "family": self.family.name, "args": list(self.args),
                "value": self.view.value}


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


def fixed_defaults(alias: str) -> dict[str, str]:
    """The alias's own parameters that set it apart from the family's other aliases.

    1a and 1b are both ring-pl; assignment=0 versus assignment=1 is what makes them
    different questions, so a variant keeps it. An alias with no sibling (such as 4)
    fixes nothing: its defaults are just the exam's numbers.
    """
    mine = ALIASES[alias]
    siblings = [other for other in ALIASES.values() if other.family == mine.family and other.name != alias]
    return {name: text for name, text in mine.defaults.items()
            if any(other.defaults.get(name) != text for other in siblings)}


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
                derivation = family.derive(params, problem=alias)
            except Exception as failure:  # a crash on generated input is a bug to report, with its input
                raise VariantError(f"variant {variant_id}, part {alias}: the derivation failed "
                                   f"({type(failure).__name__}: {failure}); reproduce with: "
                                   f"{describe(family, args)}") from None
            if not derivation.passed:
                failed = [f"{check.name} ({check.detail})" for check in derivation.all_checks if not check.passed]
                raise VariantError(f"variant {variant_id}, part {alias}: checks failed, nothing written: "
                                   f"{'; '.join(failed) or 'no checks ran'}; reproduce with: "
                                   f"{describe(family, args)}")
            if family.numeric and not finite(derivation.value):
                raise VariantError(f"variant {variant_id}, part {alias}: the answer value {derivation.value!r} "
                                   f"is not a finite number; reproduce with: {describe(family, args)}")
            self.cache[key] = DerivationView.of(derivation, self.latex)
        return self.cache[key]


def draw_variant(seed: int, student: Student, deriver: Deriver) -> Variant:
    parts: list[Part] = []
    for problem in exam_problems():
        for alias in problem.parts:
            parts.append(draw_part(seed, student.id, alias, parts, deriver))
    return Variant(student, parts)


def draw_part(seed: int, variant_id: str, alias: str, earlier: list[Part], deriver: Deriver) -> Part:
    """Draw until the parameters are valid and the part is no copy of an earlier part of its family."""
    family = FAMILIES[ALIASES[alias].family]
    fixed = fixed_defaults(alias)
    rng = random.Random(f"derive-variants/{seed}/{variant_id}/{alias}")
    kin = [part for part in earlier if part.family is family]
    last_reason = "no draw"
    for _ in range(MAX_DRAWS):
        raw = {**family.generate(rng), **fixed}
        try:
            params = family.parse(raw)
        except ParameterError as bad:
            last_reason = str(bad)
            continue
        args = family.args(params)
        if any(part.args == args for part in kin):
            last_reason = "the same parameters as another part"
            continue
        part = Part(alias, family, args, deriver.derive(variant_id, alias, family, params, args))
        # Two parts asking the same question of one family (1a, 1b) must not share an answer.
        twin = next((o.problem for o in kin if part.numeric and o.numeric and values_agree(o.value, part.value)), None)
        if twin is not None:
            last_reason = f"the same answer as part {twin}"
            continue
        return part
    raise VariantError(f"variant {variant_id}, part {alias}: no usable parameters from {family.name}.generate() "
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
    preamble: str
    figures: dict[str, str]      # figure key -> TikZ source, referenced as \derivefigure{key}
    moodle: list                 # (alias, [moodle.Question]) in exam order
    answers: list[str]           # each part's answer in LaTeX, in exam order


def figure_key(tex: str) -> str:
    return hashlib.sha256(tex.encode("utf-8")).hexdigest()[:16]


def variant_sheet(variant: Variant, solutions: bool, markdown: bool, figures: dict[str, str] | None) -> render.SheetView:
    """A variant's sheet; each figure is a reference into `figures`, typeset once per document.
    With figures None the sheets leave the figures out (they are most of pdflatex's time)."""
    problems = []
    for problem in exam_problems():
        parts = []
        for part in (p for p in variant.parts if p.problem in problem.parts):
            figure_tex = ""
            view = part.view if figures is not None else dataclasses.replace(part.view, figure=None)
            if solutions and not markdown and view.figure is not None:
                tex = render.render_figure(part.view)
                key = figure_key(tex)
                figures[key] = tex
                figure_tex = f"\\derivefigure{{{key}}}"
            parts.append(render.PartView(render.part_label(part.problem, problem), ALIASES[part.problem].title,
                                         view, figure_tex))
        problems.append(render.ProblemView(problem.number, problem.title, problem.points, problem.intro, parts))
    what = "worked solutions, derived and checked by derive" if solutions else "questions"
    name = markdown_text(variant.student.name) if markdown else variant.student.name
    return render.SheetView(render.EXAM_TITLE, f"Variant {variant.id}: {what}", problems,
                            student=name, variant=variant.id)


def split_document(tex: str) -> tuple[str, str]:
    begin, end = "\\begin{document}\n", "\\end{document}"
    start = tex.index(begin) + len(begin)
    return tex[:start], tex[start:tex.rindex(end)]


def make_variant(seed: int, student: Student, deriver: Deriver, with_figures: bool = True) -> VariantResult:
    from . import moodle
    variant = draw_variant(seed, student, deriver)
    figures: dict[str, str] | None = {} if with_figures else None
    try:
        with quiet_pylatexenc():
            questions_tex = render.render_latex(variant_sheet(variant, False, False, figures), solutions=False)
            solutions_tex = render.render_latex(variant_sheet(variant, True, False, figures), solutions=True)
        questions_md = render.render_markdown(variant_sheet(variant, False, True, figures), solutions=False)
        solutions_md = render.render_markdown(variant_sheet(variant, True, True, figures), solutions=True)
    except jinja2.TemplateError as failure:
        raise VariantError(f"variant {variant.id}: rendering the sheet failed "
                           f"({type(failure).__name__}: {failure})") from None
    preamble, questions_body = split_document(questions_tex)
    solutions_preamble, solutions_body = split_document(solutions_tex)
    if solutions_preamble != preamble:
        raise VariantError("the question and solution sheets have different LaTeX preambles")
    return VariantResult(student, variant.manifest(), questions_body, solutions_body, questions_md, solutions_md,
                         preamble, figures or {}, moodle.variant_questions(variant),
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


# --------------------------------------------------------- parallel workers

_WORKER: dict[str, Any] = {}


def _worker_job(job: tuple[int, Student, bool]) -> tuple:
    """Runs in a forked worker; errors come back as data (ParameterError does not survive pickling)."""
    seed, student, with_figures = job
    deriver = _WORKER.setdefault("deriver", Deriver())
    try:
        return ("ok", make_variant(seed, student, deriver, with_figures))
    except ParameterError as bad:
        return ("parameter", bad.name, bad.message)
    except VariantError as failure:
        return ("variant", str(failure))
    except Exception as failure:  # noqa: BLE001 - reported with its type, as a failed variant
        return ("variant", f"variant {student.id}: {type(failure).__name__}: {failure}")


def _unpack(outcome: tuple) -> VariantResult:
    if outcome[0] == "ok":
        return outcome[1]
    if outcome[0] == "parameter":
        raise ParameterError(outcome[1], outcome[2])
    raise VariantError(outcome[1])


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


class Workers:
    """Two forked worker processes when there are two cores and several variants, else none.

    They derive and render the variants (SymPy is single-threaded). Forked before any thread
    starts; every job returns plain data."""

    def __init__(self, count: int) -> None:
        self.pool = None
        if (min(cpu_count(), 2) >= 2 and count >= PARALLEL_FROM
                and "fork" in multiprocessing.get_all_start_methods()):
            _WORKER.clear()
            self.pool = multiprocessing.get_context("fork").Pool(2, initializer=_ignore_interrupts)

    @property
    def parallel(self) -> bool:
        return self.pool is not None

    def variants(self, jobs: list[tuple]) -> Iterator[tuple]:
        if self.pool is None:
            deriver = Deriver()
            for seed, student, with_figures in jobs:
                yield ("ok", make_variant(seed, student, deriver, with_figures))
            return
        yield from self.pool.imap(_worker_job, jobs, chunksize=1)

    def close(self) -> None:
        if self.pool is not None:
            self.pool.terminate()
            self.pool.join()
            self.pool = None


def _ignore_interrupts() -> None:
    """Ctrl-C reaches the whole process group: the parent stops the workers and cleans up,
    so the workers themselves ignore it (no traceback from each)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def make_variants(seed: int, students: list[Student], advance, workers: Workers | None = None,
                  with_figures: bool = True) -> list[VariantResult]:
    """Every variant, in roster order; each worker caches the derivations it has done."""
    own = workers is None
    workers = workers or Workers(len(students))
    try:
        results = []
        for outcome in workers.variants([(seed, student, with_figures) for student in students]):
            results.append(_unpack(outcome))
            advance(1)
        return results
    finally:
        if own:
            workers.close()


# ------------------------------------------------------------ combined PDFs

PREAMBLE_ADDITIONS = (
    "%% derive variants: each variant numbers its own pages and names itself in the footer;\n"
    "%% a figure that recurs across variants is typeset once, as a PDF form, and reused.\n"
    "\\makeatletter\n"
    "\\def\\derivevariant{}\n"
    "\\def\\@oddfoot{\\hfil{\\small\\derivevariant\\quad\\thepage}\\hfil}\n"
    "\\let\\@evenfoot\\@oddfoot\n"
    "\\newbox\\derivefigurebox\n"
    "\\newcommand{\\derivefigure}[1]{\\leavevmode\\pdfrefxform\\csname derivefigure@#1\\endcsname\\relax}\n"
    "\\makeatother\n"
)


def combined_document(preamble: str, results: list[VariantResult], bodies: list[str],
                      figures: dict[str, str]) -> str:
    """One document holding every variant; each starts on a new page at the named
    destination derive-variant-<index>, which is how the split finds its first page."""
    head = preamble[:preamble.rindex("\\begin{document}")]
    chunks = [head, PREAMBLE_ADDITIONS, "\\begin{document}\n"]
    for key, tex in figures.items():
        chunks.append(f"\\setbox\\derivefigurebox=\\hbox{{%\n{tex}}}\\immediate\\pdfxform\\derivefigurebox\n"
                      f"\\expandafter\\xdef\\csname derivefigure@{key}\\endcsname{{\\the\\pdflastxform}}\n")
    for index, (result, body) in enumerate(zip(results, bodies)):
        label = render.latex_escape(f"Variant {result.student.id}")
        chunks.append(f"\\clearpage\\setcounter{{page}}{{1}}\\gdef\\derivevariant{{{label}}}"
                      f"\\pdfdest name{{{DEST_PREFIX}{index}}} xyz\\relax\n")
        chunks.append(body)
    chunks.append("\\end{document}\n")
    return "".join(chunks)


def page_ranges(document, count: int) -> list[range]:
    """Each variant's pages in a combined PDF (a pikepdf.Pdf), from its named destination
    to the next one."""
    import pikepdf
    starts: dict[int, int] = {}
    names = document.Root.get("/Names")
    tree = names.get("/Dests") if names is not None else None
    for name, destination in (pikepdf.NameTree(tree).items() if tree is not None else ()):
        if name.startswith(DEST_PREFIX):
            target = destination.D if isinstance(destination, pikepdf.Dictionary) else destination
            starts[int(name[len(DEST_PREFIX):])] = pikepdf.Page(target[0]).index
    if sorted(starts) != list(range(count)):
        raise VariantError(f"the combined PDF has {len(starts)} variant markers, expected {count}")
    firsts = [starts[index] for index in range(count)] + [len(document.pages)]
    ranges = [range(firsts[i], firsts[i + 1]) for i in range(count)]
    if any(len(pages) == 0 for pages in ranges):
        raise VariantError("a variant has no pages in the combined PDF")
    return ranges


def split_pdf(pdf_bytes: bytes, count: int) -> list[bytes]:
    """Per-variant PDFs cut from a combined one. qpdf (through pikepdf) copies the pages with
    the fonts and forms they use; its file ID is a hash of the content, so the bytes depend
    on the input only."""
    import pikepdf
    with pikepdf.open(io.BytesIO(pdf_bytes)) as document:
        pieces = []
        for pages in page_ranges(document, count):
            with pikepdf.new() as piece:
                piece.pages.extend(document.pages[pages.start:pages.stop])
                pieces.append(_pdf_bytes(piece))
        return pieces


def print_file(documents: list[tuple[bytes, int]]) -> bytes:
    """All variants of the compiled documents (PDF bytes, variant count) in one file, each padded
    to an even page count so that duplex printing starts every variant on a fresh sheet."""
    import pikepdf
    with contextlib.ExitStack() as stack:
        printing = stack.enter_context(pikepdf.new())
        for pdf_bytes, count in documents:
            document = stack.enter_context(pikepdf.open(io.BytesIO(pdf_bytes)))
            for pages in page_ranges(document, count):
                printing.pages.extend(document.pages[pages.start:pages.stop])
                if len(pages) % 2:
                    box = document.pages[pages[-1]].mediabox
                    printing.add_blank_page(page_size=(box[2] - box[0], box[3] - box[1]))
        return _pdf_bytes(printing)


def _pdf_bytes(document) -> bytes:
    buffer = io.BytesIO()
    document.save(buffer, deterministic_id=True, compress_streams=True)
    return buffer.getvalue()


# pdflatex time, in units of one character of running text (about 0.8 us): a figure costs
# about 2.2 ms whatever its template (measured on the ring, staircase, density and codebook
# figures of a 50-variant run). The estimate only balances the two cores.
FIGURE_COST = 2_700


def document_cost(bodies: list[str], figures: dict[str, str]) -> int:
    return sum(len(body) for body in bodies) + FIGURE_COST * len(figures)


def chunk_figures(results: list[VariantResult]) -> dict[str, str]:
    figures: dict[str, str] = {}
    for result in results:
        figures.update(result.figures)
    return figures


def solution_chunks(results: list[VariantResult], questions_cost: int) -> list[tuple[int, int]]:
    """Split the solution sheets into two documents so that, with the question document on the
    same core as the first, both cores finish together: S_second = (S + Q) / 2. A figure shared
    by the two halves is typeset in each, as a document cannot share a form.

    The split depends on the sheets alone, never on the machine: which glyphs a document uses
    decides its font subsets, so the bytes of every PDF depend on where the cut falls."""
    count = len(results)
    if count < SPLIT_FROM:
        return [(0, count)]
    total = document_cost([r.solutions_body for r in results], chunk_figures(results))
    best, best_gap = count, None
    for cut in range(1, count):
        tail = results[cut:]
        tail_cost = document_cost([r.solutions_body for r in tail], chunk_figures(tail))
        gap = abs(tail_cost - (total + questions_cost) / 2)
        if best_gap is None or gap < best_gap:
            best, best_gap = cut, gap
    return [(0, best), (best, count)]


# ---------------------------------------------------------------- building

def variant_files(student: Student) -> list[str]:
    return [f"{student.id}-questions.pdf", f"{student.id}-questions.md",
            f"{student.id}-solutions.pdf", f"{student.id}-solutions.md"]


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
                   progress: bool = False, figures: bool = True) -> list[Path]:
    """Write the variant exams into out_dir and return the files written, in a fixed order.

    With a roster, count may be None (one variant per student) or must equal the number of
    students. figures=False leaves the TikZ figures out of the solution sheets: they are most
    of pdflatex's time.
    """
    students = resolve_students(count, roster)
    if not exam_problems():
        raise VariantError("no exam problems are registered")
    with progress_bar(progress, len(students) + 2) as advance:
        results = make_variants(seed, students, advance, with_figures=figures)
        outputs = assemble(seed, results)
        advance(1)
        files = publish(Path(out_dir), outputs)
        advance(1)
    return files


def assemble(seed: int, results: list[VariantResult]) -> dict[str, bytes]:
    """Compile, split and collect every output file (nothing is written here)."""
    from . import moodle
    questions, solutions, questions_print, solutions_print = compile_sheets(results)
    outputs: dict[str, bytes] = {}
    for index, result in enumerate(results):
        contents = [questions[index], result.questions_md.encode("utf-8"),
                    solutions[index], result.solutions_md.encode("utf-8")]
        outputs.update(zip(variant_files(result.student), contents))
    outputs[ALL_QUESTIONS] = questions_print
    outputs[ALL_SOLUTIONS] = solutions_print
    manifest = {"seed": seed, "variants": [result.manifest for result in results]}
    outputs[MANIFEST] = (json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
    outputs[MOODLE] = moodle.moodle_xml(seed, [result.moodle for result in results]).encode("utf-8")
    outputs[ANSWER_KEY] = answer_key(results).encode("utf-8")
    return outputs


def compile_sheets(results: list[VariantResult]) -> tuple[list[bytes], list[bytes], bytes, bytes]:
    """The per-variant question and solution PDFs and the two print files.

    pdflatex is single-threaded: the longest solution document starts first, and the question
    document and the rest of the solutions share the other core. Each document is cut into
    per-variant files in its own thread as soon as it comes out of pdflatex."""
    preamble = results[0].preamble
    if any(result.preamble != preamble for result in results):
        raise VariantError("the variant sheets have different LaTeX preambles")
    questions_source = combined_document(preamble, results, [r.questions_body for r in results], {})
    chunks = solution_chunks(results, document_cost([r.questions_body for r in results], {}))
    solution_sources = [combined_document(preamble, results[a:b], [r.solutions_body for r in results[a:b]],
                                          chunk_figures(results[a:b])) for a, b in chunks]
    timeout = pdf.TIMEOUT_SECONDS + 2 * len(results)

    def compile_and_split(source: str, count: int) -> tuple[bytes, list[bytes]]:
        data = pdf.compile_pdf(source, timeout)
        return data, split_pdf(data, count)

    try:
        with ThreadPoolExecutor(max_workers=2) as pool:
            order = sorted(range(len(chunks)), key=lambda i: -len(solution_sources[i]))
            jobs = {order[0]: pool.submit(compile_and_split, solution_sources[order[0]],
                                          chunks[order[0]][1] - chunks[order[0]][0])}
            questions_job = pool.submit(compile_and_split, questions_source, len(results))
            for index in order[1:]:
                jobs[index] = pool.submit(compile_and_split, solution_sources[index],
                                          chunks[index][1] - chunks[index][0])
            questions_pdf, questions = questions_job.result()
            questions_print = print_file([(questions_pdf, len(results))])
            compiled = [jobs[index].result() for index in range(len(chunks))]
    except pdf.LatexError as failure:
        raise VariantError(str(failure)) from None
    solutions_print = print_file([(data, b - a) for (data, _), (a, b) in zip(compiled, chunks)])
    solutions = [piece for _, pieces in compiled for piece in pieces]
    return questions, solutions, questions_print, solutions_print


def answer_key(results: list[VariantResult]) -> str:
    """The grading table: one row per variant and part, with the value and the exact answer."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["id", "name", "part", "family", "value", "answer"])
    for result in results:
        for part, latex in zip(result.manifest["parts"], result.answers):
            writer.writerow([result.student.id, spreadsheet_safe(result.student.name), part["problem"],
                             part["family"], json.dumps(part["value"]), latex])
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

def publish(out_dir: Path, outputs: dict[str, bytes]) -> list[Path]:
    """Write every file into a temporary directory beside out_dir, then move them into place.

    A new out_dir is the temporary directory renamed in one step. An existing one gets
    each file by rename (each file atomic); files a previous run listed in its manifest
    and this run does not write (a smaller --count) are removed. Nothing else is touched.
    """
    out_dir = Path(out_dir)
    parent = out_dir.resolve().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        if out_dir.exists() and not out_dir.is_dir():
            raise ParameterError("out", f"'{out_dir}' exists and is not a directory")
        staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".tmp", dir=parent))
    except OSError as failure:
        raise ParameterError("out", f"cannot write under '{out_dir}' ({failure.strerror})") from None
    try:
        for name, data in outputs.items():
            path = staging / name
            path.write_bytes(data)
            os.chmod(path, 0o644)
        os.chmod(staging, 0o755)
        stale = previous_files(out_dir) - set(outputs)
        if not out_dir.exists():
            os.rename(staging, out_dir)
        else:
            for name in outputs:
                os.replace(staging / name, out_dir / name)
            for name in sorted(stale):
                (out_dir / name).unlink(missing_ok=True)
    except OSError as failure:
        raise ParameterError("out", f"cannot write '{out_dir}' ({failure.strerror})") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return [out_dir / name for name in outputs]


def previous_files(out_dir: Path) -> set[str]:
    """The files an earlier run wrote here, as its manifest lists them (empty if none)."""
    try:
        manifest = json.loads((out_dir / MANIFEST).read_text(encoding="utf-8"))
        ids = [entry["id"] for entry in manifest["variants"]]
    except (OSError, ValueError, KeyError, TypeError):
        return set()
    return {name for variant_id in ids if isinstance(variant_id, str) and ID_PATTERN.match(variant_id)
            for name in variant_files(Student(variant_id))}
