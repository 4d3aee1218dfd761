"""`derive`: exact, machine-checked worked solutions for exam problems.

The CLI only wires: it parses options, calls derivations/ and sheets/, and
formats. Bad input becomes one `error:` line and exit 2; a failed check, exit 1.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

EXIT_FAILED = 1
EXIT_USAGE = 2

# numpy here works on arrays of a few hundred numbers, too small for OpenBLAS's worker threads;
# on two cores such a thread only takes CPU from pdflatex (and starting it costs 0.05 s). Set
# before numpy is first imported; a value the user set is kept.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

# SymPy and the derivations (a fifth of a second) are imported by the commands that need
# them, inside click, so that Ctrl-C during their import ends the run as it does later on.
try:
    import click
except KeyboardInterrupt:
    sys.stderr.write("error: aborted\n")
    sys.exit(EXIT_FAILED)


class DeriveGroup(click.Group):
    """Every usage error as one `error:` line (exit 2), never click's multi-line block."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        try:
            result = super().main(args=args, prog_name=prog_name, complete_var=complete_var,
                                  standalone_mode=False, **extra)
        except click.exceptions.Exit as done:
            sys.exit(done.exit_code)
        except click.UsageError as problem:
            click.echo(f"error: {one_line(problem.format_message())}", err=True)
            sys.exit(EXIT_USAGE)
        except click.ClickException as problem:
            click.echo(f"error: {one_line(problem.format_message())}", err=True)
            sys.exit(problem.exit_code)
        except click.Abort:
            click.echo("error: aborted", err=True)
            sys.exit(EXIT_FAILED)
        sys.exit(result or 0)


def one_line(text: str) -> str:
    return " ".join(text.split())


class Failed(click.ClickException):
    """A derivation or check failed (exit 1)."""

    exit_code = EXIT_FAILED


def usage_error(message: str) -> click.UsageError:
    return click.UsageError(message)


def parse_assignments(pairs: tuple[str, ...]) -> dict[str, str]:
    """`-p NAME=VALUE` pairs into a dict; each name at most once."""
    values: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        name = name.strip()
        if not sep or not name:
            raise usage_error(f"-p '{pair}': expected NAME=VALUE, for example -p N=5")
        if name in values:
            raise usage_error(f"parameter '{name}' given twice")
        values[name] = value
    return values


def derive_or_fail(problem: str, raw: dict[str, str]):
    import derivations
    from derivations.core import DuplicateCheckName, UnknownProblem
    from derivations.values import ParameterError
    try:
        return derivations.solve(problem, raw)
    except UnknownProblem as unknown:
        raise usage_error(f"problem: {unknown}") from None
    except ParameterError as bad:
        raise usage_error(str(bad)) from None
    except DuplicateCheckName as clash:  # two checks disagree under one name: neither may be trusted
        raise Failed(f"{problem}: checks failed: {clash}") from None


def write_output(text: str | bytes, output: str | None) -> None:
    if output is None:
        click.echo(text if isinstance(text, str) else text.decode("utf-8"), nl=False)
        return
    from sheets.files import write_atomic
    try:
        write_atomic(Path(output), text)
    except OSError as failure:
        raise usage_error(f"-o '{output}': cannot write ({failure.strerror})") from None


def load_exam_or_fail(exam: str | None):
    """The exam file named on the command line (a path or a shipped exam's name), or the seed exam."""
    import derivations  # noqa: F401 - registers the families the exam names
    from derivations.exam import ExamError, load_exam
    try:
        return load_exam(exam)
    except ExamError as bad:
        raise usage_error(one_line(str(bad))) from None


exam_argument = click.argument("exam", required=False, metavar="[EXAM]")

params_option = click.option("-p", "--param", "params", multiple=True, metavar="NAME=VALUE",
                             help="A parameter value, e.g. -p N=5 -p J=1/2 (repeatable).")


@click.group(cls=DeriveGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option("0.1.0", prog_name="derive")
def cli():
    """Exact, machine-checked worked solutions for exam problems.

    \b
    Example:
      derive list
      derive solve 1b --format json
      derive build
    """


@cli.command("list")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def list_command(fmt: str):
    """The problems (seed aliases and families, with parameters, defaults and domains) and
    the shipped exams.

    \b
    Example:
      derive list --format json
    """
    from derivations.catalogue import catalogue
    from derivations.exam import exam_catalogue
    entries, exams = catalogue(), exam_catalogue()
    if fmt == "json":
        click.echo(json.dumps({"problems": entries, "exams": exams}, indent=2))
        return
    for entry in entries:
        kind = f"alias of {entry['family']}" if entry["kind"] == "alias" else "family"
        click.echo(f"{entry['name']:<15} {kind:<22} {entry['summary']}")
        if entry["kind"] == "family" and entry["domain"]:
            click.echo(f"{'':<15}   domain: {entry['domain']}")
        for param in entry["params"]:
            default = "(symbolic)" if param["default"] is None else param["default"]
            click.echo(f"{'':<15}   {param['name']}={default}  {param['help']}")
    click.echo("")
    click.echo("exams (derive build EXAM, derive variants EXAM ...):")
    for exam in exams:
        parts = ", ".join(f"{part['part']}={part['use']}" for part in exam["parts"])
        click.echo(f"{exam['name']:<24} {exam['file']:<36} {exam['title']}")
        click.echo(f"{'':<24}   parts: {parts}")


@cli.command()
@click.argument("problem")
@params_option
@click.option("--format", "fmt", type=click.Choice(["markdown", "latex", "html", "json"]), default="markdown",
              show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write to FILE instead of stdout.")
def solve(problem: str, params: tuple[str, ...], fmt: str, output: str | None):
    """Derive and check one problem.

    \b
    Example:
      derive solve 1b --format json
      derive solve ring-pl -p N=5 -p assignment=1,0,-1,1,0
      derive solve 2a -p P=1/4,1/4,1/2 -p eps=0.6 -o 2a.md
    """
    derivation = derive_or_fail(problem, parse_assignments(params))
    if fmt == "json":
        text = json.dumps(derivation.to_json(), indent=2) + "\n"
    else:
        from sheets import render
        sheet = render.single_part_sheet(derivation)
        if fmt == "html":
            from sheets import html
            text = html.render_html(sheet, True)
        else:
            text = render.render_markdown(sheet, True) if fmt == "markdown" else render.render_latex(sheet, True)
    if not derivation.passed:
        failed = [check.name for check in derivation.all_checks if not check.passed]
        raise Failed(f"{problem}: checks failed: {'; '.join(failed) or 'no checks ran'}")
    write_output(text, output)


@cli.command()
@exam_argument
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="build", show_default=True,
              help="Directory for the sheets.")
def build(exam: str | None, out_dir: str):
    """An exam's question sheet and checked solution sheet (Markdown, LaTeX, PDF, HTML).

    EXAM is an exam file (TOML) or the name of a shipped one (derive list); without it,
    the seed exam, written as exam3.pdf and exam3-solutions.*. Otherwise the files are
    named after the exam file: STEM.pdf, STEM-solutions.{md,tex,pdf,html}.

    \b
    Example:
      derive build --out build
      derive build exams/graphical-models.toml
    """
    exam_data = load_exam_or_fail(exam)
    from sheets.build import FailedChecks, OutputError, build_exam
    from sheets.pdf import LatexError
    try:
        result = build_exam(exam_data, Path(out_dir))
    except (FailedChecks, LatexError) as failed:
        raise Failed(str(failed)) from None
    except OutputError as failure:
        raise usage_error(str(failure)) from None
    for path in result.files:
        click.echo(str(path))


@cli.command()
@click.option("--variants", "count", type=click.IntRange(0, 100_000), default=20, show_default=True,
              help="Random parameter sets per family, besides the seed parameters.")
@click.option("--seed", type=int, default=0, show_default=True)
def verify(count: int, seed: int):
    """Run every check of every problem over the seed and random parameters.

    \b
    Example:
      derive verify --variants 50 --seed 1
    """
    import time
    from derivations.verify import format_table, verify_all
    start = time.perf_counter()
    rows = verify_all(count, seed, progress=sys.stderr.isatty())
    click.echo(format_table(rows))
    click.echo(f"wall time {time.perf_counter() - start:.2f} s (families run in parallel on two cores)")
    if any(row.failures for row in rows):
        raise Failed("some checks failed (see the table)")


@cli.command()
@exam_argument
@click.option("--seed", type=int, required=True)
@click.option("--count", type=click.IntRange(1, 10_000),
              help="Number of variants; with --roster, omit it (one per student) or give the roster's size.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="build/variants", show_default=True)
@click.option("--roster", type=click.Path(dir_okay=False, exists=True),
              help="CSV with the columns id,name: one variant per student, named on the sheets.")
def variants(exam: str | None, seed: int, count: int | None, out_dir: str, roster: str | None):
    """Variant exams: question and solution sheets, manifest.json and moodle.xml.

    EXAM is an exam file (TOML) or a shipped exam's name; without it, the seed exam. Each
    variant depends on the seed and its id only (v001, v002, ... or the roster's ids), so
    the same seed and count, or roster, give byte-identical files.

    \b
    Example:
      derive variants --seed 7 --count 50 --out build/variants
      derive variants exams/graphical-models.toml --seed 7 --count 3
      derive variants --seed 7 --roster students.csv
    """
    if count is None and roster is None:
        raise usage_error("--count is required unless --roster lists the students")
    from sheets import pdfsplit
    # The PDF-cutting helper process starts before SymPy is imported: its own start (Python and
    # pikepdf, 0.12 s of CPU) then runs on the second core, idle while this one imports.
    with pdfsplit.Helper() as helper:
        exam_data = load_exam_or_fail(exam)
        from derivations.values import ParameterError
        from sheets.variants import VariantError, build_variants
        try:
            files = build_variants(seed, count, Path(out_dir), Path(roster) if roster else None,
                                   progress=sys.stderr.isatty(), helper=helper, exam=exam_data)
        except VariantError as failure:
            raise Failed(str(failure)) from None
        except ParameterError as bad:
            raise usage_error(str(bad)) from None
    click.echo(f"{len(files)} files in {out_dir}")


@cli.command()
@click.argument("problem", required=False)
@click.argument("answer", required=False)
@params_option
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--manifest", type=click.Path(dir_okay=False, exists=True), help="Batch: a variants manifest.json.")
@click.option("--answers", type=click.Path(dir_okay=False, exists=True), help="Batch: answers.csv (id,part,answer).")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Batch: the scores CSV.")
def grade(problem, answer, params, fmt, manifest, answers, output):
    """Judge a student's answer (SymPy syntax or LaTeX) against the derivation.

    \b
    Example:
      derive grade 1b "N*ln(1+e^{-2}+e^{-4})"
      derive grade 3a "\\hat{z} + \\sigma \\epsilon" --format json
      derive grade --manifest build/variants/manifest.json --answers answers.csv -o scores.csv
    """
    from grading import cli_grade
    cli_grade(problem, answer, parse_assignments(params), fmt, manifest, answers, output)


@cli.command()
@click.argument("file", type=click.Path(dir_okay=False, exists=True))
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def audit(file: str, fmt: str):
    """Check every equation of an existing solution sheet (Markdown or LaTeX).

    \b
    Example:
      derive audit ../shared/seed/ttic31230-autumn2021-exam3.md
    """
    from grading import cli_audit
    cli_audit(Path(file), fmt)


def main() -> None:
    """The console entry point: the CLI, then an exit without tearing the interpreter down.

    A variants run leaves about a million SymPy objects in caches; freeing them one by one
    took ~0.4 s after every file was written and closed, a tenth of the run. Output streams
    are flushed first; nothing else needs the interpreter's cleanup (temporary files and
    pdflatex processes are closed by the commands themselves)."""
    try:
        cli()
        code = 0
    except SystemExit as done:
        if done.code is not None and not isinstance(done.code, int):
            raise
        code = done.code or 0
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (derive ... | head): nothing left to say
            pass
    os._exit(code)


if __name__ == "__main__":
    main()
