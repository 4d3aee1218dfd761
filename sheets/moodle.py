"""Moodle XML for the variants: a `numerical` question per numeric part, an `essay` per explanation part.

The element names follow Moodle's XML import (question/format/xml/format.php): a
`category` pseudo-question per exam part, so that a quiz can draw one random variant
of each part; `<answer fraction="100">` with `<text>` and an absolute `<tolerance>`
for numerical questions; `responseformat`, `responserequired`, `responsefieldlines`,
`attachments` and `graderinfo` for essays. Texts are HTML in CDATA sections. The question
texts carry the math of our prose as \\(...\\), which Moodle's MathJax filter renders; the
general feedback of a numerical question is the worked solution with its math as MathML
(rendered by the browser itself, as on the HTML sheets), and after the right answer come
answers at fraction 0, one per mistake `derive grade` names for this part, each with the
grader's own feedback. Moodle takes the first answer whose interval holds the response, so
a mistake whose interval touches the right answer's (or an earlier mistake's) is left out.
"""
from __future__ import annotations

import html
import math
import re
from dataclasses import dataclass, field
from typing import Any

from derivations.exam import Exam

from . import html as sheet_html
from .render import environment

RELATIVE_TOLERANCE = 1e-3   # as `derive grade` judges numbers
ABSOLUTE_FLOOR = 1e-6       # for answers at or near zero

_ENV = environment()


def cdata(text: str) -> str:
    """Text in a CDATA section; a ']]>' inside is split across two sections."""
    return "<![CDATA[" + str(text).replace("]]>", "]]]]><![CDATA[>") + "]]>"


def xml_text(text: str) -> str:
    return html.escape(str(text), quote=True)


_ENV.filters["cdata"] = cdata
_ENV.filters["xml"] = xml_text

_MATH = re.compile(r"\$\$(.+?)\$\$|\$(.+?)\$", re.DOTALL)
_TEXT_ESCAPES = {r"\%": "%", r"\&": "&", r"\#": "#", r"\_": "_", r"\$": "$", r"\{": "{", r"\}": "}"}


def prose_html(text: str) -> str:
    """Our LaTeX-safe prose (math only inside $...$) as HTML for Moodle's MathJax filter."""
    text = str(text)
    protected = text.replace(r"\$", "\0")
    pieces, position = [], 0
    for match in _MATH.finditer(protected):
        pieces.append(_plain(protected[position:match.start()]))
        if match.group(1) is not None:
            pieces.append(r"\[" + html.escape(match.group(1).replace("\0", r"\$"), quote=False) + r"\]")
        else:
            pieces.append(r"\(" + html.escape(match.group(2).replace("\0", r"\$"), quote=False) + r"\)")
        position = match.end()
    pieces.append(_plain(protected[position:]))
    return "".join(pieces)


def _plain(text: str) -> str:
    text = text.replace("\0", r"\$")
    for escaped, char in _TEXT_ESCAPES.items():
        text = text.replace(escaped, char)
    return html.escape(text, quote=False)


def number_text(value: Any) -> str:
    """A number as Moodle reads it back exactly: ints as ints, floats by shortest round trip."""
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, int):
        return str(value)
    return repr(float(value))


def tolerance(value: Any) -> str:
    """Absolute tolerance: 0 for integer answers (indices), else 0.1% of the value (at least 1e-6)."""
    if isinstance(value, int):
        return "0"
    return f"{max(RELATIVE_TOLERANCE * abs(float(value)), ABSOLUTE_FLOOR):.3g}"


@dataclass
class Question:
    kind: str            # "numerical" or "essay"
    name: str
    idnumber: str
    text: str            # HTML
    feedback: str        # HTML
    grade: str
    answer: str = ""
    tolerance: str = ""
    graderinfo: str = ""
    mistakes: list = field(default_factory=list)  # (answer, tolerance, feedback HTML) at fraction 0


def _grade(points: float) -> str:
    return f"{points:.7g}"


def part_questions(variant, part, problem, exam: Exam) -> list[Question]:
    """The Moodle questions of one part of one variant.

    A numeric part gets a `numerical` question (one per entry when its value is a list);
    a part that asks for an explanation (it has a prose answer) or has no number gets an
    `essay`, graded by hand with the model answer as grader information. A part that is
    both (2c: the gradient, which is zero, and why) gets both, sharing its points.
    """
    d = part.view
    intro = f"<p>{prose_html(problem.intro)}</p>\n" if problem.intro else ""
    heading = (f"<p><strong>Problem {problem.number}, {xml_text(part.label)}: "
               f"{xml_text(part.exam_part.title)}</strong></p>\n")
    question = f"<p>{prose_html(d.question)}</p>\n"
    points = exam.part_points(part.exam_part) or 1.0
    answer_math = r"\(" + html.escape(d.answer_latex, quote=False) + r"\)"
    explanation = f"<p>{prose_html(d.answer_text)}</p>" if d.answer_text else ""
    base = f"{part.label} {variant.id}"
    essay = bool(d.answer_text) or not part.numeric
    if part.numeric and essay:
        points /= 2
    questions = []
    if part.numeric:
        values = d.value if isinstance(d.value, (list, tuple)) else [d.value]
        listed = isinstance(d.value, (list, tuple))
        for index, value in enumerate(values, start=1):
            precision = ("Enter a whole number." if isinstance(value, int) else
                         "Enter a decimal number; answers within 0.1% of the exact value count as correct.")
            if listed:
                precision = f"The answer is a list of {len(values)} numbers; enter number {index}. " + precision
            questions.append(Question(
                "numerical", base + (f" ({index} of {len(values)})" if listed else ""),
                f"{variant.id}-{part.label}" + (f"-{index}" if listed else ""),
                intro + heading + question + f"<p><em>{xml_text(precision)}</em></p>",
                worked_solution(d), _grade(points / len(values)), answer=number_text(value),
                tolerance=tolerance(value),
                mistakes=[] if listed else mistake_answers(part, value)))
    if essay:
        ask = "<p><em>Explain your answer.</em></p>" if part.numeric else ""
        questions.append(Question(
            "essay", base + (" (explanation)" if part.numeric else ""),
            f"{variant.id}-{part.label}" + ("-explanation" if part.numeric else ""),
            intro + heading + question + ask, f"<p>Answer: {answer_math}</p>{explanation}", _grade(points),
            graderinfo=f"<p>Model answer: {answer_math}</p>{explanation}"))
    return questions


def worked_solution(d) -> str:
    """The general feedback: the derivation's steps, checks and answer, as on the HTML sheet."""
    return (f"<p><strong>Worked solution</strong> (derived and checked by derive)</p>\n"
            f"{sheet_html.render_solution(d)}")


def mistake_answers(part, value) -> list[tuple[str, str, str]]:
    """Fraction-0 answers for the mistakes `derive grade` names for this part: the values come
    from the model (grading.grade.named_mistakes re-derives it), the feedback is the grader's.
    A mistake whose tolerance interval meets the right answer's, or an earlier mistake's, is
    dropped: Moodle would give the first matching answer, so it could never be reached or
    would take a right answer's place."""
    from grading.grade import BadInput, make_target, named_mistakes
    try:
        target = make_target(part.problem, dict(arg.split("=", 1) for arg in part.args))
    except BadInput:
        return []
    taken = [(float(value), float(tolerance(value)))]
    answers = []
    # Other families' answers are left out: deriving ring-nll for every ring part would take
    # more time than the rest of a variant; the mistakes kept get the grader's own words.
    for mistake in named_mistakes(target, families=False):
        width = float(tolerance(mistake.value))
        if any(abs(float(mistake.value) - centre) <= width + other for centre, other in taken):
            continue
        taken.append((float(mistake.value), width))
        answers.append((number_text(mistake.value), tolerance(mistake.value),
                        f"<p>{xml_text(mistake.feedback[:1].upper() + mistake.feedback[1:])}.</p>"))
    return answers


def variant_questions(variant, exam: Exam) -> list[tuple[str, list[Question]]]:
    """Every part's questions for one variant, in exam order, keyed by part label."""
    return [(part.label, part_questions(variant, part, exam.problem_of(part.exam_part), exam))
            for part in variant.parts]


def _rounded(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return "(" + ", ".join(_rounded(item) for item in value) + ")"
    if isinstance(value, int):
        return str(value)
    number = float(value)
    return f"{number:.6g}" if math.isfinite(number) else str(number)


def moodle_xml(seed: int, per_variant: list[list[tuple[str, list[Question]]]], exam: Exam) -> str:
    """The quiz: one category per exam part holding that part's questions from every variant,
    so that a Moodle quiz can draw a random variant of each part. The categories are named
    after the exam's title and the part ('/' separates categories in Moodle, so none is kept)."""
    categories = []
    course = " ".join(exam.heading.replace("/", "-").split())
    for exam_part in exam.parts:
        questions = [q for variant in per_variant for label, qs in variant if label == exam_part.label for q in qs]
        categories.append({"path": f"$course$/top/{course} (seed {seed})/Problem {exam_part.label}",
                           "questions": questions})
    return _ENV.get_template("moodle.xml.j2").render(categories=categories)
