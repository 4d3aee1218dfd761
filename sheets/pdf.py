"""pdflatex, run safely and reproducibly.

No shell escape, a timeout, a private temporary directory, and fixed dates and
IDs (SOURCE_DATE_EPOCH plus \\pdfinfoomitdate and \\pdftrailerid in the preamble),
so the same source gives the same bytes.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

TIMEOUT_SECONDS = 60
FIXED_EPOCH = "1638316800"  # 2021-12-01, the exam's term; any fixed value works


class LatexError(RuntimeError):
    """pdflatex failed; the message holds the relevant log lines only."""


def pdflatex_available() -> bool:
    return shutil.which("pdflatex") is not None


def compile_pdf(source: str, timeout: int = TIMEOUT_SECONDS) -> bytes:
    """The PDF bytes of a LaTeX document (one pdflatex pass: our sheets need no references)."""
    if not pdflatex_available():
        raise LatexError("pdflatex not found; run ./setup.sh (it installs TeX Live from apt)")
    with tempfile.TemporaryDirectory(prefix="derive-tex-") as workdir:
        Path(workdir, "sheet.tex").write_text(source, encoding="utf-8")
        env = {**os.environ, "SOURCE_DATE_EPOCH": FIXED_EPOCH, "FORCE_SOURCE_DATE": "1",
               "TEXMFOUTPUT": workdir, "openout_any": "p", "openin_any": "p"}
        command = ["pdflatex", "-no-shell-escape", "-interaction=nonstopmode", "-halt-on-error",
                   "-file-line-error", "sheet.tex"]
        try:
            result = subprocess.run(command, cwd=workdir, env=env, stdin=subprocess.DEVNULL,
                                    capture_output=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise LatexError(f"pdflatex took longer than {timeout} s and was stopped") from None
        log_path = Path(workdir, "sheet.log")
        log = log_path.read_text(encoding="latin-1") if log_path.exists() else result.stdout.decode("latin-1")
        pdf_path = Path(workdir, "sheet.pdf")
        if result.returncode != 0 or not pdf_path.exists():
            raise LatexError("pdflatex failed:\n" + relevant_log_lines(log))
        return pdf_path.read_bytes()


def relevant_log_lines(log: str, context: int = 3, limit: int = 30) -> str:
    """The error lines of a TeX log ('!' or file:line:error) with a little context."""
    lines = log.splitlines()
    picked: list[str] = []
    for index, line in enumerate(lines):
        if line.startswith("!") or re.match(r"^[^:\s]+:\d+: ", line):
            picked.extend(lines[index:index + context + 1])
            picked.append("...")
    return "\n".join(picked[:limit]) or "\n".join(lines[-limit:])
