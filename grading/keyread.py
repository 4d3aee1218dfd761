"""Reading an answer key into problems, parts, statements and equations.

A key is read, never compiled. LaTeX is walked with pylatexenc's LatexWalker:
problem headings (`{\\bf Problem 7.}`, `\\section*{Problem 7}`), part markers (`{\\bf (a)}`,
`(a)` at a line's start), solutions wrapped in macros or environments (`\\solution{...}`),
display math (`$$`, `\\[...\\]`, equation/align/eqnarray rows with `& = &`, a row that starts
with `& = &` continuing the left side above), cases arrays with their `\\mbox{for ...}` conditions.
Markdown is read line by line as before ("Problem 1", "### Problem 7", "(a)", "Solution:").

What comes out is plain data: a Sheet of Problems, each with its statement text (what the
recogniser reads to tie the problem to a family) and its equations (what the audit checks).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from pylatexenc.latexwalker import (LatexCharsNode, LatexCommentNode, LatexEnvironmentNode, LatexGroupNode,
                                    LatexMacroNode, LatexMathNode, LatexSpecialsNode, LatexWalker,
                                    get_default_latex_context_db)
from pylatexenc.macrospec import MacroSpec

MAX_EQUATIONS = 2000
MAX_NODES = 200_000  # nodes walked in one LaTeX file: far above any problem set


class KeyError_(ValueError):
    """The key cannot be read (too many equations, too many nodes)."""


@dataclass
class Case:
    value: str            # the case's value, LaTeX
    condition: str        # its condition as written ("for $1 < i < N$"), "" when none


@dataclass
class Equation:
    line: int
    latex: str                      # as the key writes it (one row of an aligned display)
    check: str = ""                 # what is checked when it differs from `latex` (a continued row)
    answer_line: bool = False       # an "Answer:" line: a bare expression is the part's answer
    in_solution: bool = False
    inline: bool = False            # $...$ inside prose (no condition of its own, none taken from prose)
    condition: str = ""             # prose before the display: "For $1 < i < N$ we get"
    cases: list[Case] = field(default_factory=list)
    lhs_of_cases: str = ""          # with cases: the left side and relation before the brace
    part: str = ""                  # filled in by the audit: "7a", "7", ""
    display: int = -1               # rows of one display share this number (and the prose condition above)

    @property
    def text(self) -> str:
        return self.check or self.latex


@dataclass
class Part:
    letter: str | None              # None: the problem's own text before its first part
    line: int
    statement: list[str] = field(default_factory=list)   # prose and math of the question
    equations: list[Equation] = field(default_factory=list)

    @property
    def statement_text(self) -> str:
        return " ".join(self.statement)


@dataclass
class Problem:
    number: str | None              # as written: "7", "1"; None for text above any problem
    line: int
    title: str
    intro: Part
    parts: list[Part] = field(default_factory=list)

    def all_parts(self) -> list[Part]:
        return [self.intro] + self.parts


@dataclass
class Sheet:
    kind: str
    problems: list[Problem]

    def equations(self) -> list[Equation]:
        return [eq for problem in self.problems for part in problem.all_parts() for eq in part.equations]


# ------------------------------------------------------------------ events
# Both readers produce one ordered list of events; one builder turns them into problems.

@dataclass
class _Event:
    position: int
    kind: str          # "problem", "part", "solution", "text", "math"
    payload: object


_PROBLEM = re.compile(r"^Problem\s*(\d+)\b[.:]?\s*(.*)$", re.IGNORECASE | re.DOTALL)
_PART = re.compile(r"^\(([a-h])\)")
_SOLUTION_WORD = re.compile(r"^(answer|solution)\b", re.IGNORECASE)
_RELATION_HINT = re.compile(r"=|\\approx|\\propto|\\le|\\ge|\\neq|\\sim|<|>|\\in\b")
_CONDITION = re.compile(r"\bfor\s*\$[^$]*[<>=][^$]*\$", re.IGNORECASE)


def _builder(events: list[_Event], line_of, kind: str) -> Sheet:
    events.sort(key=lambda event: (event.position, event.kind != "problem"))
    problems = [Problem(None, 1, "", Part(None, 1))]
    part = problems[0].intro
    in_solution = False
    prose_since_math: list[str] = []
    count, last_display, last_condition = 0, -1, ""
    for event in events:
        if event.kind == "problem":
            number, title = event.payload
            problem = Problem(number, line_of(event.position), title, Part(None, line_of(event.position)))
            problems.append(problem)
            part, in_solution, prose_since_math = problem.intro, False, []
            part.statement.append(title)
        elif event.kind == "part":
            letter = event.payload
            part = Part(letter, line_of(event.position))
            problems[-1].parts.append(part)
            in_solution, prose_since_math = False, []
        elif event.kind == "solution":
            in_solution = bool(event.payload)
            prose_since_math = []
        elif event.kind == "text":
            text, solution_text = event.payload
            if not (in_solution or solution_text):
                part.statement.append(text)
            prose_since_math.append(text)
        else:
            equation: Equation = event.payload
            equation.in_solution = in_solution or equation.in_solution
            if not equation.in_solution:
                part.statement.append(equation.latex)
            if not equation.inline:
                if equation.display >= 0 and equation.display == last_display:
                    equation.condition = equation.condition or last_condition
                else:
                    equation.condition = (equation.condition or _condition_of(" ".join(prose_since_math))
                                          or _worded_site(prose_since_math))
                    last_condition = equation.condition if not equation.cases else ""
                last_display = equation.display
                prose_since_math = []
            part.equations.append(equation)
            count += 1
            if count > MAX_EQUATIONS:
                raise KeyError_(f"too many equations (more than {MAX_EQUATIONS})")
    if not problems[0].intro.equations and problems[0].intro.statement == []:
        problems.pop(0)
    return Sheet(kind, problems)


def _condition_of(prose: str) -> str:
    """A condition the prose just before a display states ("For $1 < i < N$ we get")."""
    sentence = re.split(r"(?<=[.!?])\s+(?=[A-Z])", prose.strip())[-1] if prose.strip() else ""
    return sentence if _CONDITION.search(sentence) else ""


def _worded_site(prose: list[str]) -> str:
    """Our own sheets name the site in a step's title ("*Conditional at an end site* (simplification)"):
    the prose since the display before, past its "Checked: ..." note."""
    notes = [k for k, text in enumerate(prose) if re.match(r"\W*checked\b", text.strip(), re.IGNORECASE)]
    own = " ".join(prose[notes[-1] + 1:] if notes else prose)
    worded = re.search(r"\bat\s+an?\s+(end|interior)\s+site\b", own, re.IGNORECASE)
    return f"at an {worded.group(1).lower()} site" if worded else ""


# ---------------------------------------------------------------- Markdown

_DISPLAY = re.compile(
    r"(?<!\\)\$\$(?P<dollars>.+?)\$\$"
    r"|(?<!\\)\\\[(?P<brackets>.+?)\\\]"
    r"|\\begin\{(?P<env>equation|align|gather|multline|eqnarray|displaymath|math)(?P<star>\*?)\}"
    r"(?P<body>.+?)\\end\{(?P=env)(?P=star)\}",
    re.DOTALL)
_INLINE = re.compile(r"(?<![\\$])\$(?!\$)(?P<a>[^$]+?)(?<!\\)\$(?!\$)|\\\((?P<b>.+?)\\\)")
_MARKER_PREFIX = re.compile(r"^(?:[#>*_~\s]|\{\\bf\s*|\\(?:sub)*section\*?\{|\\paragraph\*?\{|\\textbf\{|\\item\s*)+")


def _blank(match: re.Match) -> str:
    return re.sub(r"[^\n]", " ", match.group(0))


def _line_finder(text: str):
    line_starts = [0] + [m.end() for m in re.finditer("\n", text)]

    def line_of(position: int) -> int:
        low, high = 0, len(line_starts)
        while low + 1 < high:
            middle = (low + high) // 2
            if line_starts[middle] <= position:
                low = middle
            else:
                high = middle
        return low + 1
    return line_starts, line_of


def _heading_number(head: str) -> tuple[str, str] | None:
    found = _PROBLEM.match(head)
    if not found:
        return None
    title = re.sub(r"[*#_{}]|\\bf\b", " ", found.group(2))
    return found.group(1), " ".join(title.split())


def read_markdown(text: str) -> Sheet:
    text = re.sub(r"^(```|~~~).*?^\1[^\n]*$", _blank, text, flags=re.DOTALL | re.MULTILINE)
    text = re.sub(r"<!--.*?-->", _blank, text, flags=re.DOTALL)
    line_starts, line_of = _line_finder(text)
    events: list[_Event] = []
    displays = []
    for match in _DISPLAY.finditer(text):
        group = "dollars" if match.group("dollars") is not None else (
            "brackets" if match.group("brackets") is not None else "body")
        body, start = match.group(group) or "", match.start(group)
        displays.append((match.start(), match.end()))
        aligned = match.group("env") in ("align", "eqnarray", "gather", "multline") if match.group("env") else False
        rows = re.split(r"\\\\", body) if aligned else [body]
        offset = start
        for row in rows:
            stripped = row.strip()
            if stripped:
                first = offset + (len(row) - len(row.lstrip()))
                events.append(_Event(first, "math", Equation(line_of(first), stripped)))
            offset += len(row) + 2
    for number, start in enumerate(line_starts):
        end = line_starts[number + 1] if number + 1 < len(line_starts) else len(text)
        line = text[start:end]
        if any(a <= start < b for a, b in displays):
            continue
        head = _MARKER_PREFIX.sub("", line.strip())
        problem = _heading_number(head)
        if problem:
            events.append(_Event(start, "problem", problem))
            continue
        part = _PART.match(head)
        if part:
            events.append(_Event(start, "part", part.group(1)))
        solution_line = bool(_SOLUTION_WORD.match(head))
        if solution_line:
            events.append(_Event(start, "solution", True))
        if line.strip():
            events.append(_Event(start + 1, "text", (line.strip(), False)))
        if solution_line:
            answer = head.lower().startswith("answer")
            for inline in _INLINE.finditer(line):
                body = (inline.group("a") or inline.group("b") or "").strip()
                if answer or _RELATION_HINT.search(body):
                    events.append(_Event(start + inline.start() + 1, "math",
                                         Equation(line_of(start), body, answer_line=answer, in_solution=True,
                                                  inline=True)))
    return _builder(events, line_of, "markdown")


# ------------------------------------------------------------------- LaTeX

SOLUTION_MACROS = {"solution", "answer", "sol", "soln", "ans", "solutionbox"}
SOLUTION_ENVIRONMENTS = {"solution", "answer", "sol", "proof"}
MATH_ENVIRONMENTS = {"equation", "align", "gather", "multline", "eqnarray", "displaymath", "math", "alignat",
                     "flalign"}
SKIPPED_ENVIRONMENTS = {"tikzpicture", "verbatim", "lstlisting", "comment", "figure", "picture"}
HEADING_MACROS = {"section", "subsection", "subsubsection", "paragraph", "textbf", "item"}
_CASES_ENVIRONMENTS = {"array", "cases"}


def _latex_context():
    db = get_default_latex_context_db()
    db.add_context_category("derive-keys", prepend=True, macros=[
        MacroSpec(name, "{") for name in SOLUTION_MACROS] + [MacroSpec("cal", ""), MacroSpec("bf", "")])
    return db


def _plain(nodes) -> str:
    """The words of a node list: characters, math as written, macro arguments."""
    out = []
    for node in nodes or ():
        if node is None:
            continue
        if isinstance(node, LatexCharsNode):
            out.append(node.chars)
        elif isinstance(node, LatexMathNode):
            out.append(node.latex_verbatim())
        elif isinstance(node, LatexGroupNode):
            out.append(_plain(node.nodelist))
        elif isinstance(node, LatexMacroNode) and node.nodeargd is not None:
            out.append(_plain([a for a in node.nodeargd.argnlist if a is not None]))
        elif isinstance(node, LatexEnvironmentNode):
            out.append(_plain(node.nodelist))
        elif isinstance(node, LatexSpecialsNode):
            out.append(" ")
    return "".join(out)


class _LatexReader:
    def __init__(self, text: str):
        self.text = text
        self.line_starts, self.line_of = _line_finder(text)
        self.events: list[_Event] = []
        self.visited = 0
        self.displays = 0
        self.solution_line: int | None = None   # the line of a "Solution:" / "Answer:" word
        self.answer_line: int | None = None

    def line_prefix_is_blank(self, position: int) -> bool:
        """Only spacing macros, braces or ~ before `position` on its line: a marker there is a heading."""
        start = self.text.rfind("\n", 0, position) + 1
        prefix = self.text[start:position]
        return not re.sub(r"\\(?:medskip|bigskip|smallskip|noindent|item|par|vspace\{[^}]*\})|[~{}\s]|\\bf", "",
                          prefix)

    def visit(self, nodes, in_solution: bool) -> None:
        for node in nodes or ():
            if node is None:
                continue
            self.visited += 1
            if self.visited > MAX_NODES:
                raise KeyError_(f"the LaTeX is too large to read (more than {MAX_NODES} nodes)")
            if isinstance(node, LatexCommentNode):
                continue
            if isinstance(node, LatexCharsNode):
                self.chars(node, in_solution)
            elif isinstance(node, LatexGroupNode):
                self.group(node, in_solution)
            elif isinstance(node, LatexMacroNode):
                self.macro(node, in_solution)
            elif isinstance(node, LatexEnvironmentNode):
                self.environment(node, in_solution)
            elif isinstance(node, LatexMathNode):
                self.math(node, in_solution)

    def heading(self, node, text: str) -> bool:
        text = " ".join(text.split()).lstrip("* ")
        problem = _heading_number(text)
        if problem and self.line_prefix_is_blank(node.pos):
            self.events.append(_Event(node.pos, "problem", problem))
            return True
        part = _PART.match(text)
        if part and self.line_prefix_is_blank(node.pos):
            self.events.append(_Event(node.pos, "part", part.group(1)))
            self.events.append(_Event(node.pos + 1, "text", (text, False)))
            return True
        return False

    def chars(self, node: LatexCharsNode, in_solution: bool) -> None:
        for piece in re.finditer(r"[^\n]+", node.chars):
            stripped = piece.group(0).strip()
            if not stripped:
                continue
            position = node.pos + piece.start() + (len(piece.group(0)) - len(piece.group(0).lstrip()))
            if self.heading_at(position, stripped):
                continue
            if _SOLUTION_WORD.match(stripped) and self.line_prefix_is_blank(position):
                self.solution_word(position, stripped)
            self.events.append(_Event(position, "text", (stripped, in_solution)))

    def solution_word(self, position: int, word: str) -> None:
        """"Solution:" or "Answer:": the solution starts; on an Answer line a bare expression is the answer."""
        self.events.append(_Event(position, "solution", True))
        self.solution_line = self.line_of(position)
        self.answer_line = self.solution_line if word.lower().startswith("answer") else None

    def heading_at(self, position: int, text: str) -> bool:
        class _At:
            pos = position
        return self.heading(_At, text)

    def group(self, node: LatexGroupNode, in_solution: bool) -> None:
        if self.heading(node, _plain(node.nodelist)):
            return
        self.visit(node.nodelist, in_solution)

    def macro(self, node: LatexMacroNode, in_solution: bool) -> None:
        args = [a for a in (node.nodeargd.argnlist if node.nodeargd else []) if a is not None]
        if node.macroname in SOLUTION_MACROS:
            self.events.append(_Event(node.pos, "solution", True))
            self.visit(args, True)
            self.events.append(_Event(node.pos + len(node.latex_verbatim()), "solution", False))
            return
        if node.macroname in ("newcommand", "renewcommand", "def", "providecommand", "input", "include"):
            return
        if node.macroname in HEADING_MACROS and self.heading(node, _plain(args)):
            return
        if node.macroname in HEADING_MACROS and _SOLUTION_WORD.match(_plain(args).strip()):
            self.solution_word(node.pos, _plain(args).strip())
            return
        self.visit(args, in_solution)

    def environment(self, node: LatexEnvironmentNode, in_solution: bool) -> None:
        name = node.environmentname.rstrip("*")
        if name in SKIPPED_ENVIRONMENTS:
            return
        if name in SOLUTION_ENVIRONMENTS:
            self.events.append(_Event(node.pos, "solution", True))
            self.visit(node.nodelist, True)
            self.events.append(_Event(node.pos + len(node.latex_verbatim()), "solution", False))
            return
        if name in MATH_ENVIRONMENTS:
            self.rows(node.nodelist, in_solution)
            return
        self.visit(node.nodelist, in_solution)

    def math(self, node: LatexMathNode, in_solution: bool) -> None:
        if node.displaytype == "display":
            self.rows(node.nodelist, in_solution)
            return
        body = _source(self.text, node.nodelist).strip()
        self.events.append(_Event(node.pos, "text", ("$" + body + "$", in_solution)))
        line = self.line_of(node.pos)
        answer = self.answer_line == line
        before = self.text[max(0, node.pos - 12):node.pos]
        a_condition = re.search(r"\b(for|or|and|if|when|with)\s*$", before, re.IGNORECASE)
        if body and not a_condition and (
                answer or ((in_solution or self.solution_line == line) and _RELATION_HINT.search(body))):
            self.events.append(_Event(node.pos + 1, "math", Equation(line, body, answer_line=answer,
                                                                      in_solution=True, inline=True)))

    def rows(self, nodes, in_solution: bool) -> None:
        """One equation per row of a display; a row starting with `& = &` continues the left side above."""
        rows: list[list] = [[]]
        for node in nodes or ():
            if isinstance(node, LatexMacroNode) and node.macroname == "\\":
                rows.append([])
            elif not isinstance(node, LatexCommentNode):
                rows[-1].append(node)
        left_side = ""
        self.displays += 1
        for row in rows:
            columns: list[list] = [[]]
            for node in row:
                if isinstance(node, LatexSpecialsNode) and node.specials_chars == "&":
                    columns.append([])
                else:
                    columns[-1].append(node)
            texts = [_source(self.text, column).strip() for column in columns]
            latex = " ".join(t for t in texts if t)
            if not latex:
                continue
            first = next(n for n in row if not (isinstance(n, LatexCharsNode) and not n.chars.strip()))
            position = first.pos + (len(first.chars) - len(first.chars.lstrip())
                                    if isinstance(first, LatexCharsNode) else 0)
            equation = Equation(self.line_of(position), latex, in_solution=in_solution, display=self.displays)
            starts_with_relation = bool(re.match(r"\s*(=|\\approx|\\le|\\ge|<|>)", latex))
            if len(columns) > 1 and not texts[0] and starts_with_relation and left_side:
                equation.check = left_side + " " + latex
            elif texts[0]:
                left_side = texts[0] if len(columns) > 1 else re.split(r"=|\\approx", latex)[0].strip()
            cases = _cases(self.text, columns[-1] if len(columns) > 1 else row)
            if cases:
                equation.cases = cases[1]
                equation.lhs_of_cases = re.split(r"\\left\s*\\\{|\\begin\{(?:array|cases)\}", equation.text)[0]
            self.events.append(_Event(position, "math", equation))


def _source(text: str, nodes) -> str:
    nodes = [n for n in nodes or () if n is not None]
    if not nodes:
        return ""
    return text[nodes[0].pos:nodes[-1].pos + nodes[-1].len]


def _cases(text: str, nodes) -> tuple[str, list[Case]] | None:
    """`lhs = \\left\\{\\begin{array}{ll} v & \\mbox{for ...} \\\\ ... \\end{array}\\right.` as cases."""
    nodes = [n for n in nodes or () if n is not None]
    for index, node in enumerate(nodes):
        if isinstance(node, LatexEnvironmentNode) and node.environmentname in _CASES_ENVIRONMENTS:
            before = [n for n in nodes[:index] if not (isinstance(n, LatexMacroNode) and n.macroname in ("left", "{"))]
            cases = []
            for row in _split(node.nodelist, lambda n: isinstance(n, LatexMacroNode) and n.macroname == "\\"):
                columns = _split(row, lambda n: isinstance(n, LatexSpecialsNode) and n.specials_chars == "&")
                value = _source(text, columns[0]).strip()
                if not value:
                    continue
                condition = " ".join(_plain(column) for column in columns[1:]).strip()
                cases.append(Case(value, condition))
            return (_source(text, before).strip(), cases) if cases else None
    return None


def _split(nodes, is_separator) -> list[list]:
    out: list[list] = [[]]
    for node in nodes or ():
        if node is None:
            continue
        if is_separator(node):
            out.append([])
        else:
            out[-1].append(node)
    return out


def read_latex(text: str) -> Sheet:
    walker = LatexWalker(text, latex_context=_latex_context(), tolerant_parsing=True)
    nodes, _, _ = walker.get_latex_nodes()
    document = next((n for n in nodes if isinstance(n, LatexEnvironmentNode) and n.environmentname == "document"),
                    None)
    reader = _LatexReader(text)
    reader.visit(document.nodelist if document is not None else nodes, False)
    return _builder(reader.events, reader.line_of, "latex")


def read_key(text: str, kind: str) -> Sheet:
    return read_latex(text) if kind == "latex" else read_markdown(text)
