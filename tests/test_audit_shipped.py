"""Every shipped exam's own solution sheet audits clean: no WRONG line (issue 13, graphical-models bug).

The sheets are built in-process (no PDF), as `derive build EXAM` writes them, then audited.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from grading import audit
from grading.recognise import ChainScore, NotModelled, chain_score

EXAMS = sorted(Path(__file__).resolve().parent.parent.joinpath("exams").glob("*.toml"))


def _sheet(exam_path: Path, folder: Path, latex: bool) -> Path:
    from derivations.exam import load_exam
    from sheets import build, render
    exam = load_exam(exam_path)
    sheet = render.exam_sheet(exam, build.exam_derivations(exam), build.SOLUTIONS_SUBTITLE)
    out = folder / f"{exam_path.stem}-solutions.{'tex' if latex else 'md'}"
    out.write_text(render.render_latex(sheet, solutions=True) if latex else render.render_markdown(sheet, solutions=True))
    return out


@pytest.mark.parametrize("latex", [False, True], ids=["md", "tex"])
@pytest.mark.parametrize("exam_path", EXAMS, ids=[p.stem for p in EXAMS])
def test_shipped_exam_sheet_audits_clean(exam_path, latex, tmp_path):
    report = audit.audit_report(_sheet(exam_path, tmp_path, latex))
    wrong = [f.text_line("sheet") for f in report.findings if not f.ok]
    assert wrong == []
    assert report.findings, "the sheet was read"


def test_graphical_models_parts_are_recognised_as_their_families(tmp_path):
    path = next(p for p in EXAMS if p.stem == "graphical-models")
    report = audit.audit_report(_sheet(path, tmp_path, latex=False))
    parts = {part["part"]: part for problem in report.problems for part in problem["parts"]}
    assert parts["1a"]["family"] == "chain-z"
    assert parts["1b"]["family"] == "chain-pl" and parts["1b"]["params"]["labels"] == "-1,1"
    assert parts["2a"]["family"] == "potts-chain-pl" and parts["2a"]["params"]["K"] == "2"
    for label in ("1b", "2a"):   # the end/interior conditionals are checked, not skipped
        assert parts[label]["ok"] >= 2 and parts[label]["checked"] >= 4 and parts[label]["wrong"] == 0
    assert parts["4a"]["family"] == "ring-pl"


@pytest.mark.parametrize("score, expected", [
    (r"\sum_{n=0}^{N-2}Y[n+1]Y[n]", ChainScore("product", "1", "0")),
    (r"2\sum_{n=0}^{N-2}Y[n+1]Y[n]+\frac{\sum_{n=0}^{N-1}Y[n]}{2}", ChainScore("product", "2", "1/2")),
    (r"-\frac{3\sum_{n=0}^{N-2}Y[n+1]Y[n]}{2}-\sum_{n=0}^{N-1}Y[n]", ChainScore("product", "-3/2", "-1")),
    (r"2\sum_{n=0}^{N-2}\delta_{Y[n+1]Y[n]}", ChainScore("agreement", "2", "0")),
    (r"\sum_{i=1}^{N-1}\mathbb{1}[Y[i]=Y[i+1]]", ChainScore("agreement", "1", "0")),
])
def test_chain_score_reads_coupling_field_and_kind(score, expected):
    assert chain_score(score) == expected


def test_chain_score_refuses_what_it_cannot_read():
    assert chain_score(r"\sum_{n}Y[n]") is None                      # a field alone is no chain score
    assert isinstance(chain_score(r"J\sum_{n=0}^{N-2}Y[n+1]Y[n]"), NotModelled)   # a symbolic coupling
    assert isinstance(chain_score(r"\sum_nY[n+1]Y[n]+\sum_n\delta_{Y[n+1]Y[n]}"), NotModelled)


def test_variant_parts_reads_an_exam_manifest_by_part_name(tmp_path):
    """An exam's variant manifest names parts by "part" ("1b"), its "problem" being the family."""
    import json
    (tmp_path / "manifest.json").write_text(json.dumps({"variants": [{"id": "v001", "parts": [
        {"problem": "chain-pl", "part": "1b", "family": "chain-pl",
         "args": ["N=4", "labels=-1,1", "J=-1", "h=0", "assignment=1"]}]}]}))
    sheet = tmp_path / "v001-solutions.md"
    sheet.write_text("# x\n")
    assert audit.variant_parts(sheet) == {"1b": ("chain-pl", ("N=4", "labels=-1,1", "J=-1", "h=0", "assignment=1"))}
