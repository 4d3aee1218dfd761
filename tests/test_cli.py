"""The CLI surface of ../shared/CONTRACT.md: commands, exit codes, JSON, errors."""
import json

import pytest
from click.testing import CliRunner

from cli import cli


def run(*args):
    return CliRunner().invoke(cli, list(args))


def test_solve_json_shape():
    result = run("solve", "1b", "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["problem"] == "1b" and data["family"] == "ring-pl"
    assert data["params"] == {"N": "N", "labels": [-1, 0, 1], "assignment": 1, "J": 1}
    assert data["answer"]["expr"] == "N*log(1 + exp(-2) + exp(-4))"
    assert data["answer"]["value"] is None
    assert data["answer"]["latex"]
    assert all(set(step) >= {"latex", "text", "checked"} for step in data["steps"])
    assert all(step["checked"] for step in data["steps"])
    assert data["checks"] and all(check["passed"] for check in data["checks"])
    assert all(set(check) == {"name", "passed", "detail"} for check in data["checks"])


def test_solve_numeric_value():
    data = json.loads(run("solve", "1a", "-p", "N=4", "--format", "json").output)
    assert data["params"]["N"] == 4
    assert abs(data["answer"]["value"] - 4.394449154672439) < 1e-12


def test_solve_writes_markdown_and_latex_files(tmp_path):
    for fmt, marker in (("markdown", "$$"), ("latex", r"\begin{document}")):
        target = tmp_path / f"out.{fmt}"
        result = run("solve", "1a", "--format", fmt, "-o", str(target))
        assert result.exit_code == 0, result.output
        assert marker in target.read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.latex", "out.markdown"]


@pytest.mark.parametrize("args, message", [
    (["solve", "1a", "-p", "N=0"], "error: parameter 'N': must be an integer >= 1"),
    (["solve", "1a", "-p", "N=abc"], "error: parameter 'N': 'abc' is not a number"),
    (["solve", "1a", "-p", "J=1/0"], "error: parameter 'J': '1/0' divides by zero"),
    (["solve", "1a", "-p", "labels=1,1"], "error: parameter 'labels': labels must be distinct"),
    (["solve", "1a", "-p", "assignment=5"], "error: parameter 'assignment': 5 is not a label"),
    (["solve", "1a", "-p", "N=3", "-p", "assignment=1,0"], "error: parameter 'assignment': has 2 labels but N = 3"),
    (["solve", "1a", "-p", "bogus=1"], "error: parameter 'bogus': unknown parameter"),
    (["solve", "1a", "-p", "N"], "error: -p 'N': expected NAME=VALUE"),
    (["solve", "1a", "-p", "N=2", "-p", "N=3"], "error: parameter 'N' given twice"),
    (["solve", "nope"], "error: problem: unknown problem 'nope'"),
    (["solve", "1a", "--format", "pdf"], "error: Invalid value for '--format'"),
    (["solve"], "error: Missing argument 'PROBLEM'"),
    (["frobnicate"], "error: No such command 'frobnicate'"),
])
def test_bad_input_is_one_error_line_and_exit_2(args, message):
    result = run(*args)
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), result.output
    assert "Traceback" not in result.output


def test_bad_input_leaves_no_file(tmp_path):
    target = tmp_path / "never.md"
    result = run("solve", "1a", "-p", "N=-3", "-o", str(target))
    assert result.exit_code == 2
    assert list(tmp_path.iterdir()) == []


def test_failed_check_exits_1_and_writes_nothing(tmp_path, monkeypatch):
    from derivations import ring
    real = ring.derive_constant_pl
    monkeypatch.setattr(ring, "derive_constant_pl",
                        lambda *a: (lambda s, ans, r, t: (s, 2 * ans, r, t))(*real(*a)))
    target = tmp_path / "wrong.json"
    result = run("solve", "1b", "--format", "json", "-o", str(target))
    assert result.exit_code == 1
    assert result.output.startswith("error: 1b: checks failed")
    assert not target.exists()


def test_list_text_and_json():
    text = run("list")
    assert text.exit_code == 0 and "1a" in text.output and "ring-nll" in text.output
    listing = json.loads(run("list", "--format", "json").output)
    entries = listing["problems"]
    names = {entry["name"] for entry in entries}
    assert {"chain-z", "chain-pl"} <= names
    assert "ttic31230-2021-exam3" in {exam["name"] for exam in listing["exams"]}
    assert "ttic31230-2021-exam3" in text.output
    assert {"1a", "1b", "ring-pl", "ring-nll"} <= names
    one_b = next(e for e in entries if e["name"] == "1b")
    assert {"name": "assignment", "default": "1"}.items() <= next(
        p for p in one_b["params"] if p["name"] == "assignment").items()


def test_verify_small_run_passes():
    result = run("verify", "--variants", "2", "--seed", "3")
    assert result.exit_code == 0, result.output
    assert "ring-pl" in result.output and "total" in result.output


def test_ctrl_c_during_the_imports_is_one_line_not_a_traceback():
    """SymPy's import takes a fifth of a second; an interrupt then (simulated on importing it)
    ends the run the way an interrupt later on does."""
    import subprocess
    import sys
    from pathlib import Path
    script = ("import builtins, runpy, sys\n"
              "real = builtins.__import__\n"
              "def interrupted(name, *args, **kwargs):\n"
              "    if name == 'sympy':\n"
              "        raise KeyboardInterrupt\n"
              "    return real(name, *args, **kwargs)\n"
              "builtins.__import__ = interrupted\n"
              "sys.argv = ['cli.py', 'solve', '1b']\n"
              "runpy.run_path('cli.py', run_name='__main__')\n")
    result = subprocess.run([sys.executable, "-c", script], cwd=Path(__file__).resolve().parent.parent,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr.strip() == "error: aborted" and result.stdout == ""
