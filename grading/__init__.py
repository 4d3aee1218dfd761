"""`derive grade` and `derive audit`: judging students' answers and checking answer keys.

cli_grade and cli_audit are what cli.py calls. They print with click.echo and end
with the contract's exit codes: 0 correct / no wrong line, 1 incorrect / a wrong
line, 2 unreadable input (raised as click.UsageError, which cli.DeriveGroup prints
as one `error:` line on stderr).
"""
from __future__ import annotations

import json
from pathlib import Path

import click

EXIT_WRONG = 1


def _usage(message: str) -> click.UsageError:
    return click.UsageError(" ".join(message.split()))


def cli_grade(problem: str | None, answer: str | None, params: dict[str, str], fmt: str,
              manifest: str | None, answers: str | None, output: str | None) -> None:
    from .grade import BadInput, grade_batch, make_target, grade_answer
    from .parse import Unreadable

    if manifest or answers:
        if problem is not None or answer is not None or params:
            raise _usage("give either PROBLEM ANSWER [-p ...] or --manifest and --answers, not both")
        if not (manifest and answers):
            raise _usage("batch grading needs both --manifest FILE and --answers FILE")
        try:
            rows = grade_batch(Path(manifest), Path(answers))
        except BadInput as bad:
            raise _usage(str(bad)) from None
        _emit_batch(rows, fmt, output)
        return
    if output:
        raise _usage("-o/--output is for batch grading (--manifest and --answers)")
    if problem is None or answer is None:
        raise _usage("give PROBLEM and ANSWER, e.g. derive grade 1b \"N*log(1+exp(-2)+exp(-4))\"")
    try:
        target = make_target(problem, params)
    except BadInput as bad:
        raise _usage(str(bad)) from None
    try:
        result = grade_answer(target, answer)
    except Unreadable as unreadable:
        raise _usage(f"answer: {unreadable}") from None
    except BadInput as bad:
        raise _usage(str(bad)) from None
    if fmt == "json":
        click.echo(json.dumps(result.to_json(), indent=2))
    else:
        verdict = "correct" if result.correct else "incorrect"
        feedback = result.feedback
        if feedback.startswith("correct"):
            feedback = feedback[len("correct"):].lstrip(": ")
        click.echo(f"{verdict}: {feedback}" if feedback else verdict)
        click.echo(f"expected: {result.expected}")
        click.echo(f"parsed:   {result.parsed}")
    if not result.correct:
        click.get_current_context().exit(EXIT_WRONG)


def _emit_batch(rows, fmt: str, output: str | None) -> None:
    from .grade import batch_csv, batch_summary, summary_text

    summary = batch_summary(rows)
    table = batch_csv(rows)
    if output:
        from sheets.files import write_atomic
        try:
            write_atomic(Path(output), table)
        except OSError as failure:
            raise _usage(f"-o '{output}': cannot write ({failure.strerror})") from None
    if fmt == "json":
        click.echo(json.dumps({"rows": [row.to_json() for row in rows], "summary": summary}, indent=2))
        return
    if output:
        click.echo(summary_text(summary))
        click.echo(f"{len(rows)} answers graded into {output}")
    else:
        click.echo(table, nl=False)
        click.echo(summary_text(summary), err=True)
    not_graded = sum(1 for row in rows if row.correct is None)
    if not_graded:
        click.echo(f"warning: {not_graded} answer(s) not graded (unknown id or part); see the feedback column",
                   err=True)


def cli_audit(path: Path, fmt: str) -> None:
    from .audit import AuditError, audit_report

    try:
        report = audit_report(Path(path))
    except AuditError as bad:
        raise _usage(str(bad)) from None
    findings = report.findings
    if fmt == "json":
        click.echo(json.dumps(report.to_json(), indent=2))
    else:
        for finding in findings:
            click.echo(finding.text_line(str(path)))
        for problem in report.problems:
            if not problem["modelled"]:
                reasons = "; ".join(dict.fromkeys(part["reason"] for part in problem["parts"]))
                click.echo(f"problem {problem['problem']}: not modelled ({reasons})")
                continue
            for part in problem["parts"]:
                shown = (f"{part['family']} {part['params']}" if part["modelled"] else
                         f"not modelled ({part['reason']})")
                click.echo(f"problem {problem['problem']}, part {part['part']}: {shown}: {part['ok']} ok, "
                           f"{part['wrong']} wrong, {part['warnings']} warnings, {part['not_checkable']} not checkable")
        wrong = sum(1 for f in findings if not f.ok)
        warnings = sum(1 for f in findings if f.ok and f.warning)
        unchecked = sum(1 for f in findings if f.ok and not f.checked)
        click.echo(f"{len(findings)} findings: {len(findings) - wrong - unchecked - warnings} ok, {wrong} wrong, "
                   f"{warnings} warnings, {unchecked} not checkable or not modelled")
    if any(not f.ok for f in findings):
        click.get_current_context().exit(EXIT_WRONG)


__all__ = ["cli_grade", "cli_audit"]
