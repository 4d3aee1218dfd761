"""Exam files: the seed exam as data, hand-written exams, and bad files refused with one line."""
import csv
import io
import json
import shutil

import pytest
from click.testing import CliRunner

from cli import cli
from derivations.exam import ExamError, load_exam, read_exam

needs_tex = pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex is not installed")

QUIZ = '''title = "Course quiz"
subtitle = "Chains and rings"

[[problem]]
title = "Two chains"
intro = "Our own words, with $N$ sites."

[[problem.part]]
use = "1b"
params = { N = "5" }
points = 10

[[problem.part]]
name = "open"
use = "chain-pl"
vary = ["J"]
points = 15
'''


def run(*args):
    return CliRunner().invoke(cli, list(args))


def write(tmp_path, text, name="quiz.toml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_the_seed_exam_file_lists_the_exam_parts_in_order():
    exam = load_exam()
    assert exam.stem == "exam3"
    assert [part.label for part in exam.parts] == ["1a", "1b", "2a", "2b", "2c", "3a", "3b", "3c", "4"]
    assert [problem.points for problem in exam.problems] == [25, 25, 25, 25]
    one_a = exam.parts[0]
    assert one_a.vary == ("N", "labels", "J") and one_a.defaults["assignment"] == "0"
    assert load_exam("exams/ttic31230-2021-exam3.toml").stem == "ttic31230-2021-exam3"
    assert load_exam("ttic31230-2021-exam3").parts == load_exam("exams/ttic31230-2021-exam3.toml").parts


def test_a_hand_written_exam_reads_its_parts_points_and_vary(tmp_path):
    exam = load_exam(write(tmp_path, QUIZ))
    assert exam.heading == "Course quiz: Chains and rings"
    first, second = exam.parts
    assert (first.label, first.use, first.fixed, first.points) == ("1a", "1b", {"N": "5"}, 10)
    assert first.vary == ("labels", "assignment", "J")  # every parameter the part does not fix
    both = load_exam(write(tmp_path, QUIZ.replace('points = 10', 'points = 10\nvary = ["N"]'), "both.toml"))
    assert both.parts[0].fixed == {"N": "5"} and both.parts[0].vary == ("N",)  # the sheet's N, redrawn per variant
    assert (second.label, second.family.name, second.vary, second.points) == ("1open", "chain-pl", ("J",), 15)
    assert exam.problems[0].points == 25


BAD = [
    ("title = \n", "not valid TOML", "line 1"),
    ('title = "x"\n[[problem]]\ntitle = "p"\n[[problem.part]]\nuse = "nope"\n', "key 'problem[1].part[1].use'", "line 5"),
    ('title = "x"\n[[problem]]\ntitle = "p"\n[[problem.part]]\nuse = "1b"\nparams = { N = "0" }\n',
     "key 'problem[1].part[1].params.N'", "line 6"),
    ('title = "x"\n[[problem]]\ntitle = "p"\n[[problem.part]]\nuse = "1b"\nparams = { M = "3" }\n',
     "key 'problem[1].part[1].params.M'", "unknown parameter"),
    ('title = "x"\n[[problem]]\ntitle = "p"\n[[problem.part]]\nuse = "1b"\n[[problem.part]]\nname = "a"\nuse = "1a"\n',
     "key 'problem[1].part[2].name'", "line 7"),
    ('title = "x"\n[[problem]]\ntitle = "p"\n[[problem.part]]\nuse = "1b"\nvary = ["Q"]\n', "key 'problem[1].part[1].vary'",
     "'Q' is not a parameter"),
    ('title = "x"\n[[problem]]\ntitle = "p"\n[[problem.part]]\nuse = "1b"\nvary = ["N", "N"]\n',
     "vary", "names a parameter twice"),
    ('title = "x"\ncolour = "red"\n[[problem]]\ntitle = "p"\n[[problem.part]]\nuse = "1b"\n', "key 'colour'", "line 2"),
    ('title = "x"\n', "key 'problem'", "at least one"),
    ('title = "x"\n[[problem]]\ntitle = "p"\npoints = "many"\n[[problem.part]]\nuse = "1b"\n', "problem[1].points",
     "line 4"),
]


@pytest.mark.parametrize("text, key, detail", BAD)
def test_bad_exam_files_exit_2_with_one_line_naming_file_and_key(tmp_path, text, key, detail):
    path = write(tmp_path, text)
    out = tmp_path / "out"
    result = run("build", str(path), "--out", str(out))
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and str(path) in lines[0]
    assert key in lines[0] and detail in lines[0]
    assert not out.exists()
    with pytest.raises(ExamError):
        read_exam(path, "quiz")


def test_a_missing_exam_file_is_one_error_line(tmp_path):
    result = run("variants", str(tmp_path / "none.toml"), "--seed", "1", "--count", "1", "--out", str(tmp_path / "v"))
    assert result.exit_code == 2 and result.output.startswith("error: ") and "no such exam file" in result.output
    assert not (tmp_path / "v").exists()


@needs_tex
def test_a_hand_written_exam_builds_and_varies_only_its_parts(tmp_path):
    path = write(tmp_path, QUIZ)
    built = run("build", str(path), "--out", str(tmp_path / "b"))
    assert built.exit_code == 0, built.output
    names = sorted(p.name for p in (tmp_path / "b").iterdir())
    assert names == ["quiz-solutions.html", "quiz-solutions.md", "quiz-solutions.pdf", "quiz-solutions.tex",
                     "quiz.html", "quiz.pdf"]
    sheet = (tmp_path / "b" / "quiz-solutions.md").read_text()
    assert "Course quiz: Chains and rings" in sheet and "Problem 1: Two chains (25 points)" in sheet
    assert "(a)" in sheet and "(open)" in sheet and "Problem 2" not in sheet

    varied = run("variants", str(path), "--seed", "5", "--count", "3", "--out", str(tmp_path / "v"))
    assert varied.exit_code == 0, varied.output
    manifest = json.loads((tmp_path / "v" / "manifest.json").read_text())
    assert manifest["exam"] == {"name": "quiz", "title": "Course quiz: Chains and rings"}
    for variant in manifest["variants"]:
        parts = variant["parts"]
        assert [(p["part"], p["problem"], p["family"], p["points"]) for p in parts] == [
            ("1a", "1b", "ring-pl", 10), ("1open", "chain-pl", "chain-pl", 15)]
        assert "N=5" in parts[0]["args"]
        chain_args = dict(arg.split("=", 1) for arg in parts[1]["args"])
        assert chain_args["labels"] == "-1,1" and chain_args["h"] == "0" and chain_args["assignment"] == "1"
    couplings = {dict(a.split("=", 1) for a in v["parts"][1]["args"])["J"] for v in manifest["variants"]}
    assert len(couplings) >= 2  # J is redrawn
    key = list(csv.DictReader(io.StringIO((tmp_path / "v" / "answer-key.csv").read_text())))
    assert {(row["exam"], row["part"]) for row in key} == {("quiz", "1a"), ("quiz", "1open")}
    moodle = (tmp_path / "v" / "moodle.xml").read_text()
    assert "$course$/top/Course quiz: Chains and rings (seed 5)/Problem 1a" in moodle
    assert "$course$/top/Course quiz: Chains and rings (seed 5)/Problem 1open" in moodle
    assert "Problem 2a" not in moodle


@needs_tex
def test_the_seed_exam_by_file_builds_what_derive_build_builds(tmp_path):
    assert run("build", "--out", str(tmp_path / "default")).exit_code == 0
    assert run("build", "exams/ttic31230-2021-exam3.toml", "--out", str(tmp_path / "named")).exit_code == 0
    for suffix in ("-solutions.md", "-solutions.tex", "-solutions.pdf", ".pdf", "-solutions.html", ".html"):
        default = (tmp_path / "default" / f"exam3{suffix}").read_bytes()
        assert default == (tmp_path / "named" / f"ttic31230-2021-exam3{suffix}").read_bytes()
