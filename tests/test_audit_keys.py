"""`derive audit` on keys as instructors write them: problems tied to families by content,
LaTeX problem sets, renumbered headings, and a mutation set with its detection rate."""
import json
import os
import re
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import derivations
from cli import cli
from grading import audit

HERE = Path(__file__).resolve().parent
COURSE = HERE.parents[1] / "shared" / "course" / "DGMSolutions.tex"
SEED = HERE.parents[1] / "shared" / "seed" / "ttic31230-autumn2021-exam3.md"
needs_course = pytest.mark.skipif(not COURSE.exists(), reason="../shared/course/DGMSolutions.tex is not beside the checkout")
needs_seed = pytest.mark.skipif(not SEED.exists(), reason="the seed exam is not beside the checkout")


def report(path):
    result = CliRunner().invoke(cli, ["audit", str(path), "--format", "json"])
    assert result.exit_code in (0, 1), result.output
    data = json.loads(result.stdout)
    assert (result.exit_code == 1) == any(not f["ok"] for f in data["findings"])
    return data


def by_line(data):
    return {f["line"]: f for f in data["findings"]}


def wrong_lines(data):
    return [f["line"] for f in data["findings"] if not f["ok"]]


@pytest.fixture
def potts_family(monkeypatch):
    sys.path.insert(0, str(HERE))
    from potts_reference import PottsChainReference
    monkeypatch.setitem(derivations.FAMILIES, "potts-chain-pl", PottsChainReference())
    yield
    sys.path.remove(str(HERE))


# ------------------------------------------------------------ the instructor's problem set

@needs_course
def test_the_problem_set_flags_only_problem_7s_sign_errors(monkeypatch):
    monkeypatch.delitem(derivations.FAMILIES, "potts-chain-pl", raising=False)
    data = report(COURSE)
    lines = by_line(data)
    assert wrong_lines(data) == [304, 324]
    assert "sign error" in lines[304]["detail"] and lines[304]["part"] == "7a"
    assert "sign error" in lines[324]["detail"] and lines[324]["part"] == "7b"
    for line in (292, 294, 296, 298, 300, 302, 312, 314, 316, 318, 320, 322):
        assert lines[line]["ok"] and lines[line]["detail"].startswith("checked"), lines[line]
    assert "approximation" in lines[322]["detail"]  # the site conditional ~ .87
    problem_3 = [f for f in data["findings"] if f["part"] == "3"]
    assert len(problem_3) == 1 and problem_3[0]["detail"] == "not modelled: family potts-chain-pl not available"
    summary = {p["problem"]: p for p in data["problems"]}
    assert summary["7"]["modelled"] and [p["family"] for p in summary["7"]["parts"]] == ["ring-pl", "ring-pl"]
    assert summary["7"]["parts"][1]["params"]["assignment"] == "1"
    assert summary["7"]["parts"][1]["wrong"] == 1 and summary["7"]["parts"][1]["ok"] == 6
    for number in ("1", "2", "3", "4", "5", "6"):
        assert not summary[number]["modelled"]
        assert sum(1 for f in data["findings"] if f["part"].startswith(number)) == 1  # reported once


@needs_course
def test_problem_3_is_checked_once_its_family_exists(potts_family):
    data = report(COURSE)
    lines = by_line(data)
    assert wrong_lines(data) == [304, 324]
    summary = {p["problem"]: p for p in data["problems"]}["3"]["parts"][0]
    assert summary["family"] == "potts-chain-pl" and summary["params"] == {"K": "2", "J": "1", "assignment": "1"}
    assert lines[132]["detail"].startswith("checked")                  # f = N - 1
    assert lines[138]["detail"].startswith("checked")                  # inner site, "For 1 < i < N"
    assert lines[140]["detail"].startswith("checked")                  # the continued row
    for line in (134, 143, 147):                                       # the ends' formulas and the product
        assert lines[line]["ok"] and lines[line]["detail"].startswith("warning: holds for N >= 2 but not at N = 1")


# ------------------------------------------------------------ renumbered seed key

def _seed_findings(text, suffix=".md", tmp=None):
    path = tmp / f"key{suffix}"
    path.write_text(text)
    return report(path)


@needs_seed
@pytest.mark.parametrize("heading", ["**Problem 7: 25 pts.**", "{\\bf Problem 7.}", "### Problem 7"])
def test_the_seed_key_gives_the_same_findings_whatever_its_numbering(tmp_path, heading):
    original = SEED.read_text()
    base = report(SEED)
    changed = original.replace("**Problem 1: 25 pts.**", heading, 1)
    # the other problems are renumbered too, and moved ahead of the ring problem's number
    changed = changed.replace("**Problem 2. 25 pts**", "**Problem 12. 25 pts**")
    data = _seed_findings(changed, tmp=tmp_path)
    assert wrong_lines(data) == wrong_lines(base) == [32, 50]
    assert [f["part"] for f in data["findings"] if not f["ok"]] == ["7a", "7b"]
    strip = [(f["line"], f["ok"], f["detail"]) for f in data["findings"]]
    assert strip == [(f["line"], f["ok"], f["detail"]) for f in base["findings"]]


# ------------------------------------------------------------ mutations

CORRECT_MD = r"""## Problem 1
Sites $\mathcal{Y}[0], \ldots, \mathcal{Y}[N-1]$ sit on a ring; each label is in $\{-1,0,1\}$ and the score is
$$s(\mathcal{Y}) = \sum_{n=0}^{N-2} \mathcal{Y}[n]\mathcal{Y}[n+1] + \mathcal{Y}[N-1]\mathcal{Y}[0]$$
We ask for the negative log pseudo-likelihood.

(a) The labeling $\mathcal{Y}[n] = 0$.

$$Z_n = 3$$

$$-\ln \tilde{P}(\mathcal{Y}) = N \ln 3 \approx 1.1 N$$

(b) The labeling $\mathcal{Y}[n] = 1$.

$$s(\mathcal{Y}[n=-1]) = N - 4$$

$$Z_n = e^{N}(1 + e^{-2} + e^{-4})$$

$$P_s(\mathcal{Y}[n] \mid \mathcal{Y}/n) = \frac{1}{1 + e^{-2} + e^{-4}} \approx .87$$

$$-\ln \tilde{P}(\mathcal{Y}) = N \ln (1 + e^{-2} + e^{-4}) \approx .14 N$$

## Problem 2
A ring of sites with labels $\mathcal{Y}[n] \in \{0,1\}$ and score
$$s(\mathcal{Y}) = \sum_{n=0}^{N-2} \mathcal{Y}[n]\mathcal{Y}[n+1] + \mathcal{Y}[N-1]\mathcal{Y}[0]$$
Give the negative log pseudo-likelihood of the labeling $\mathcal{Y}[n] = 0$.

$$-\ln \tilde{P}(\mathcal{Y}) = N \ln 2 \approx 0.69 N$$

## Problem 3
A ring with labels $\mathcal{Y}[n] \in \{-1,0,1\}$ and score
$$s(\mathcal{Y}) = \frac{3}{2}\left(\sum_{n=0}^{N-2} \mathcal{Y}[n]\mathcal{Y}[n+1] + \mathcal{Y}[N-1]\mathcal{Y}[0]\right)$$
Give the negative log pseudo-likelihood of the labeling $\mathcal{Y}[n] = 1$.

$$Z_n = e^{3N/2}(1 + e^{-3} + e^{-6})$$
"""


def as_latex(markdown: str) -> str:
    """The same key as a LaTeX problem set: {\\bf Problem N.}, \\solution{eqnarray*} rows with & = &."""
    out = ["\\documentclass{article}", "\\newcommand{\\solution}[1]{#1}", "\\begin{document}"]
    for line in markdown.splitlines():
        heading = re.match(r"## Problem (\d+)", line)
        display = re.match(r"\$\$(.*?) = (.*)\$\$$", line)
        part = re.match(r"\((\w)\) (.*)", line)
        if heading:
            out.append(f"{{\\bf Problem {heading.group(1)}.}}")
        elif part:
            out.append(f"{{\\bf ({part.group(1)})}} {part.group(2)}")
        elif display and line.startswith("$$s(\\mathcal{Y}) ="):
            out.append(line)
        elif display:
            left = display.group(1).replace("\\mathcal{Y}", "{\\cal Y}")
            out.append(f"\\solution{{\\begin{{eqnarray*}} {left} & = & {display.group(2)} \\end{{eqnarray*}}}}")
        else:
            out.append(line)
    out.append("\\end{document}")
    return "\n".join(out) + "\n"


MUTATIONS = [  # (what, original text, mutated text)
    ("sign", r"N \ln 3 \approx", r"-N \ln 3 \approx"),
    ("factor N missing", r"= N \ln 3", r"= \ln 3"),
    ("factor N too many", r"Z_n = 3$$", r"Z_n = 3 N$$"),
    ("ln 3 for ln 2", r"N \ln 2", r"N \ln 3"),
    ("wrong approximation", r"\approx .87", r"\approx .78"),
    ("wrong approximation in N", r"\approx 0.69 N", r"\approx 0.96 N"),
    ("e^{-2} for e^{-3}", r"(1 + e^{-3} + e^{-6})", r"(1 + e^{-2} + e^{-6})"),
    ("sign in an exponent", r"e^{N}(1 + e^{-2} + e^{-4})", r"e^{N}(1 + e^{2} + e^{-4})"),
    ("sign in a score", r"= N - 4", r"= N + 4"),
]


def _mutated_line(source: str, key: str) -> int:
    """The one line where the mutated copy differs from the correct key."""
    changed = [n for n, (a, b) in enumerate(zip(source.splitlines(), key.splitlines()), 1) if a != b]
    assert len(changed) == 1
    return changed[0]


def detection(tmp_path) -> tuple[int, int, list[str]]:
    detected, total, missed = 0, 0, []
    for kind, suffix, render in (("markdown", ".md", lambda t: t), ("latex", ".tex", as_latex)):
        key = render(CORRECT_MD)
        for what, original, mutated in MUTATIONS:
            source = render(CORRECT_MD.replace(original, mutated, 1))
            assert source != key, what
            line = _mutated_line(source, key)
            path = tmp_path / f"{kind}-{total}{suffix}"
            path.write_text(source)
            flagged = wrong_lines(report(path))
            total += 1
            if flagged == [line]:
                detected += 1
            else:
                missed.append(f"{kind}: {what} (flagged {flagged}, mutated line {line})")
    return detected, total, missed


def test_the_correct_key_audits_clean_in_both_formats(tmp_path):
    for suffix, text in ((".md", CORRECT_MD), (".tex", as_latex(CORRECT_MD))):
        path = tmp_path / f"key{suffix}"
        path.write_text(text)
        data = report(path)
        assert wrong_lines(data) == []
        checked = [f for f in data["findings"] if f["detail"].startswith("checked")]
        assert len(checked) >= 8, data["findings"]
        families = [(p["problem"], part["params"]) for p in data["problems"] for part in p["parts"]]
        assert ("3", {"labels": "-1,0,1", "J": "3/2", "assignment": "1"}) in families


def test_every_mutation_is_flagged_at_its_line(tmp_path):
    detected, total, missed = detection(tmp_path)
    rate = detected / total
    print(f"\nmutation detection: {detected}/{total} = {rate:.0%}", *missed, sep="\n  ")
    assert total == 2 * len(MUTATIONS)
    assert missed == [], missed


# ------------------------------------------------------------ hostile files

def test_a_fifo_and_a_50_mb_file_are_refused_with_one_line(tmp_path):
    fifo = tmp_path / "key.md"
    os.mkfifo(fifo)
    big = tmp_path / "big.tex"
    with big.open("wb") as handle:
        handle.truncate(50 * 1024 * 1024)
    for path, reason in ((fifo, "not a regular file"), (big, "too large"), (tmp_path, "directory")):
        result = CliRunner().invoke(cli, ["audit", str(path)])
        assert result.exit_code == 2
        assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1 and reason in result.stderr


def test_a_deeply_nested_latex_key_is_harmless(tmp_path):
    path = tmp_path / "deep.tex"
    path.write_text("\\begin{document}{\\bf Problem 1.}" + "{" * 3000 + "x" + "}" * 3000 + "\\end{document}\n")
    result = CliRunner().invoke(cli, ["audit", str(path)])
    assert result.exit_code in (0, 2)
    assert "Traceback" not in result.output
