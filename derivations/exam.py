"""Exams as data: a TOML file picks problems from the bank (families and seed aliases).

The format is the contract's ("Exam files"). A file is read with the standard library's
tomllib and checked whole before anything is derived: every key known, every part's
family or alias registered, every fixed parameter readable by its family, part names
unique within a problem, `vary` naming parameters of the family. A bad file is one
ExamError naming the file, the TOML line where it can be found, and the key.
"""
from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .core import ALIASES, Family, UnknownProblem, resolve
from .values import ParameterError

EXAMS_DIR = Path(__file__).resolve().parent.parent / "exams"
SEED_EXAM = EXAMS_DIR / "ttic31230-2021-exam3.toml"
SEED_STEM = "exam3"        # what `derive build` with no EXAM has always written
MAX_EXAM_BYTES = 1_000_000
PART_NAMES = "abcdefghijklmnopqrstuvwxyz"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,15}$")

EXAM_KEYS = {"title", "subtitle", "problem"}
PROBLEM_KEYS = {"title", "points", "intro", "part"}
PART_KEYS = {"name", "use", "params", "vary", "points", "title"}


class ExamError(ValueError):
    """A bad exam file: the message names the file, the line where known, and the key."""


@dataclass(frozen=True)
class ExamPart:
    name: str                   # "a", unique within its problem
    label: str                  # "1a"; the problem number alone for a one-part problem
    use: str                    # the family or seed alias, as `derive solve` takes it
    family: Family
    defaults: dict[str, str]    # the alias's parameters with the file's fixed ones on top
    fixed: dict[str, str]       # the file's `params`
    vary: tuple[str, ...]       # what a variant redraws
    points: float | None
    title: str


@dataclass(frozen=True)
class ExamProblem:
    number: int
    title: str
    points: float | None
    intro: str                  # our own words, with $...$ math
    parts: tuple[ExamPart, ...]


@dataclass(frozen=True)
class Exam:
    path: Path
    stem: str                   # output files are STEM.pdf and STEM-solutions.*
    title: str
    subtitle: str
    problems: tuple[ExamProblem, ...]

    @property
    def heading(self) -> str:
        return f"{self.title}: {self.subtitle}" if self.subtitle else self.title

    @property
    def parts(self) -> list[ExamPart]:
        return [part for problem in self.problems for part in problem.parts]

    def problem_of(self, part: ExamPart) -> ExamProblem:
        return next(problem for problem in self.problems if part in problem.parts)

    def part_points(self, part: ExamPart) -> float | None:
        """The part's own points, or its share of the problem's."""
        if part.points is not None:
            return part.points
        problem = self.problem_of(part)
        return None if problem.points is None else problem.points / len(problem.parts)


def shipped_exams() -> list[Path]:
    return sorted(EXAMS_DIR.glob("*.toml"))


def find_exam(name: str) -> Path:
    """An exam file by path, or a shipped exam by its stem (`graphical-models`)."""
    path = Path(name)
    if path.exists() or path.suffix == ".toml" or "/" in name:
        return path
    shipped = EXAMS_DIR / f"{name}.toml"
    return shipped if shipped.exists() else path


def load_exam(path: Path | str | None = None) -> Exam:
    """The exam in `path`; with None, the seed exam under its historical stem."""
    if path is None:
        return read_exam(SEED_EXAM, SEED_STEM)
    path = find_exam(str(path))
    return read_exam(path, path.stem)


def read_exam(path: Path, stem: str) -> Exam:
    text = _read_text(path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as bad:
        raise ExamError(f"{path}: not valid TOML: {bad}") from None
    return _Reader(path, text).exam(data, stem)


def _read_text(path: Path) -> str:
    try:
        if not path.is_file():
            raise ExamError(f"{path}: no such exam file" if not path.exists() else f"{path}: not a regular file")
        if path.stat().st_size > MAX_EXAM_BYTES:
            raise ExamError(f"{path}: larger than {MAX_EXAM_BYTES} bytes; an exam file is a few KB")
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as bad:
        raise ExamError(f"{path}: not UTF-8 text (byte {bad.start})") from None
    except OSError as failure:
        raise ExamError(f"{path}: cannot read ({failure.strerror})") from None


class _Reader:
    """Checks the parsed TOML; errors name the key as problem[1].part[2].use (counted from 1)
    and the line, found from the [[problem]] and [[problem.part]] headers of the text."""

    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self.lines = text.splitlines()

    def fail(self, key: str, message: str, section: tuple[int, int] | None = None, name: str | None = None):
        line = self.line_of(section, name)
        where = f"line {line}: " if line else ""
        raise ExamError(f"{self.path}: {where}key '{key}': {message}")

    def line_of(self, section: tuple[int, int] | None, name: str | None) -> int | None:
        """The line of `name = ...` in the section (problem p, part q: q = 0 for the problem's own
        keys, p = 0 for the top level), else the section's header line."""
        problem, part = section or (0, 0)
        seen_problems = seen_parts = 0
        header = None
        for number, line in enumerate(self.lines, start=1):
            stripped = line.strip()
            if stripped.startswith("[[problem]]"):
                seen_problems, seen_parts = seen_problems + 1, 0
            elif stripped.startswith("[[problem.part]]"):
                seen_parts += 1
            if (seen_problems, seen_parts) != (problem, part):
                continue
            if stripped.startswith("["):
                header = header or number
            elif name is not None and re.match(rf"^{re.escape(name)}\s*=", stripped):
                return number
        return header

    def exam(self, data: dict, stem: str) -> Exam:
        self.known(data, EXAM_KEYS, "", (0, 0))
        title = self.text(data, "title", "title", (0, 0), required=True)
        subtitle = self.text(data, "subtitle", "subtitle", (0, 0))
        problems = data.get("problem")
        if not isinstance(problems, list) or not problems:
            self.fail("problem", "an exam needs at least one [[problem]] table", (0, 0), "title")
        return Exam(self.path, stem, title, subtitle,
                    tuple(self.problem(entry, number) for number, entry in enumerate(problems, start=1)))

    def problem(self, data: Any, number: int) -> ExamProblem:
        key = f"problem[{number}]"
        where = (number, 0)
        if not isinstance(data, dict):
            self.fail(key, "must be a table", where)
        self.known(data, PROBLEM_KEYS, key + ".", where)
        title = self.text(data, "title", key + ".title", where, required=True)
        intro = self.text(data, "intro", key + ".intro", where)
        points = self.points(data, key + ".points", where)
        entries = data.get("part")
        if not isinstance(entries, list) or not entries:
            self.fail(key + ".part", "a problem needs at least one [[problem.part]] table", where, "title")
        single = len(entries) == 1
        parts, names = [], {}
        for index, entry in enumerate(entries, start=1):
            part = self.part(entry, number, index, single)
            if part.name in names:
                self.fail(f"{key}.part[{index}].name", f"'{part.name}' is already the name of part {names[part.name]} "
                          "of this problem; part names must be unique", (number, index), "name")
            names[part.name] = index
            parts.append(part)
        if points is None and all(part.points is not None for part in parts):
            points = sum(part.points for part in parts)
        return ExamProblem(number, title, points, intro, tuple(parts))

    def part(self, data: Any, number: int, index: int, single: bool) -> ExamPart:
        key = f"problem[{number}].part[{index}]"
        where = (number, index)
        if not isinstance(data, dict):
            self.fail(key, "must be a table", where)
        self.known(data, PART_KEYS, key + ".", where)
        default_name = PART_NAMES[index - 1] if index <= len(PART_NAMES) else str(index)
        name = self.text(data, "name", key + ".name", where) or default_name
        if not _NAME.match(name):
            self.fail(key + ".name", f"'{name[:30]}' must be 1-16 letters, digits, '_' or '-'", where, "name")
        use = self.text(data, "use", key + ".use", where, required=True)
        try:
            family, alias_defaults = resolve(use)
        except UnknownProblem as unknown:
            self.fail(key + ".use", str(unknown), where, "use")
        fixed = self.params(data.get("params", {}), family, key + ".params", where)
        defaults = {**alias_defaults, **fixed}
        try:
            family.parse(dict(defaults))
        except ParameterError as bad:
            self.fail(f"{key}.params.{bad.name}", bad.message, where, "params")
        names = [param.name for param in family.params]
        vary = data.get("vary")
        if vary is None:
            vary = [name for name in names if name not in fixed]
        elif not isinstance(vary, list) or not all(isinstance(item, str) for item in vary):
            self.fail(key + ".vary", "must be a list of parameter names, e.g. [\"J\", \"N\"]", where, "vary")
        for item in vary:
            if item not in names:
                self.fail(key + ".vary", f"'{item}' is not a parameter of {family.name}; "
                          f"allowed: {', '.join(names)}", where, "vary")
        if len(set(vary)) != len(vary):
            self.fail(key + ".vary", "names a parameter twice", where, "vary")
        alias = ALIASES.get(use)
        title = self.text(data, "title", key + ".title", where) or (alias.title if alias else family.summary)
        label = str(number) if single else f"{number}{name}"
        return ExamPart(name, label, use, family, defaults, fixed, tuple(vary),
                        self.points(data, key + ".points", where), title)

    def params(self, data: Any, family: Family, key: str, where) -> dict[str, str]:
        if not isinstance(data, dict):
            self.fail(key, "must be a table of NAME = \"VALUE\", e.g. { N = \"5\" }", where, "params")
        names = [param.name for param in family.params]
        texts = {}
        for name, value in data.items():
            if name not in names:
                self.fail(f"{key}.{name}", f"unknown parameter for {family.name}; allowed: {', '.join(names)}",
                          where, "params")
            if isinstance(value, bool) or not isinstance(value, (str, int)):
                self.fail(f"{key}.{name}", "give the value as a -p text in quotes, e.g. \"1/2\" or \"-1,0,1\"",
                          where, "params")
            texts[name] = str(value)
        return texts

    def points(self, data: dict, key: str, where) -> float | None:
        value = data.get("points")
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 10_000:
            self.fail(key, "must be a number from 0 to 10000", where, "points")
        return value

    def text(self, data: dict, name: str, key: str, where, required: bool = False) -> str:
        value = data.get(name)
        if value is None:
            if required:
                self.fail(key, "is required", where)
            return ""
        if not isinstance(value, str):
            self.fail(key, "must be a string", where, name)
        if len(value) > 20_000:
            self.fail(key, "is longer than 20000 characters", where, name)
        return value

    def known(self, data: dict, keys: set[str], prefix: str, where) -> None:
        for name in data:
            if name not in keys:
                self.fail(prefix + name, f"unknown key; allowed: {', '.join(sorted(keys))}", where, name)


def exam_catalogue() -> list[dict]:
    """The shipped exams for `derive list`."""
    entries = []
    for path in shipped_exams():
        try:
            exam = load_exam(path)
        except ExamError as bad:
            entries.append({"name": path.stem, "file": f"exams/{path.name}", "title": f"(unreadable: {bad})",
                            "parts": []})
            continue
        entries.append({"name": path.stem, "file": f"exams/{path.name}", "title": exam.heading,
                        "parts": [{"part": part.label, "use": part.use, "family": part.family.name}
                                  for part in exam.parts]})
    return entries

