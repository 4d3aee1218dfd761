"""pdflatex, run safely and reproducibly.

No shell escape, a timeout, a private temporary directory, and fixed dates and
IDs (SOURCE_DATE_EPOCH plus \\pdfinfoomitdate and \\pdftrailerid in the preamble),
so the same source gives the same bytes.
"""
from __future__ import annotations

import errno
import os
import queue
import re
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

TIMEOUT_SECONDS = 60
FIXED_EPOCH = "1638316800"  # 2021-12-01, the exam's term; any fixed value works


class LatexError(RuntimeError):
    """pdflatex failed; the message holds the relevant log lines only."""


def pdflatex_available() -> bool:
    return shutil.which("pdflatex") is not None


def _environment(workdir: str) -> dict[str, str]:
    return {**os.environ, "SOURCE_DATE_EPOCH": FIXED_EPOCH, "FORCE_SOURCE_DATE": "1",
            "TEXMFOUTPUT": workdir, "openout_any": "p", "openin_any": "p"}


COMMAND = ["pdflatex", "-no-shell-escape", "-interaction=nonstopmode", "-halt-on-error", "-file-line-error"]


def _output(workdir: str, returncode: int, stdout: bytes = b"") -> Path:
    """The PDF pdflatex wrote into workdir, or a LatexError with the log's relevant lines."""
    log_path = Path(workdir, "sheet.log")
    pdf_path = Path(workdir, "sheet.pdf")
    if returncode != 0 or not pdf_path.exists():
        log = log_path.read_text(encoding="latin-1") if log_path.exists() else stdout.decode("latin-1")
        # A streamed run has no stdout to fall back on: a pdflatex stopped before its log says only how it ended.
        detail = relevant_log_lines(log) or f"no log was written (exit status {returncode})"
        raise LatexError("pdflatex failed:\n" + detail)
    return pdf_path


def _require_pdflatex() -> None:
    if not pdflatex_available():
        raise LatexError("pdflatex not found; run ./setup.sh (it installs TeX Live from apt)")


def compile_pdf(source: str, timeout: int = TIMEOUT_SECONDS) -> bytes:
    """The PDF bytes of a LaTeX document (one pdflatex pass: our sheets need no references)."""
    _require_pdflatex()
    with tempfile.TemporaryDirectory(prefix="derive-tex-") as workdir:
        Path(workdir, "sheet.tex").write_text(source, encoding="utf-8")
        try:
            result = subprocess.run(COMMAND + ["sheet.tex"], cwd=workdir, env=_environment(workdir),
                                    stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise LatexError(f"pdflatex took longer than {timeout} s and was stopped") from None
        return _output(workdir, result.returncode, result.stdout).read_bytes()


class LatexStream:
    """pdflatex typesetting a document while it is still being written.

    The source goes through a named pipe, so TeX sets the first pages while the caller
    derives the next ones; a writer thread feeds the pipe and the caller never blocks.
    The same source gives the same PDF as compile_pdf. Use as a context manager: leaving
    it stops pdflatex if it is still running and removes its temporary directory.
    """

    def __init__(self, timeout: int = TIMEOUT_SECONDS) -> None:
        _require_pdflatex()
        self.timeout = timeout
        self.workdir = tempfile.mkdtemp(prefix="derive-tex-")
        self.pipe = os.path.join(self.workdir, "sheet.tex")
        os.mkfifo(self.pipe, 0o600)
        # TeX reads a file's first line once to look for a %&format line, which would
        # swallow it from a pipe; -no-parse-first-line keeps it.
        self.process = subprocess.Popen(COMMAND + ["-no-parse-first-line", "sheet.tex"], cwd=self.workdir,
                                        env=_environment(self.workdir), stdin=subprocess.DEVNULL,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.chunks: queue.SimpleQueue = queue.SimpleQueue()
        self.closed = self.aborted = False
        self.writer = threading.Thread(target=self._feed, name="pdflatex-feed", daemon=True)
        self.writer.start()

    def _open_pipe(self) -> int | None:
        """The pipe's writing end, once pdflatex has opened the other (None if it never will).
        Polled: a blocking open would wait forever for a pdflatex that died first."""
        while True:
            try:
                descriptor = os.open(self.pipe, os.O_WRONLY | os.O_NONBLOCK)
            except OSError as failure:
                if failure.errno != errno.ENXIO or self.aborted or self.process.poll() is not None:
                    return None
                time.sleep(0.005)
                continue
            os.set_blocking(descriptor, True)
            return descriptor

    def _feed(self) -> None:
        descriptor = self._open_pipe()
        if descriptor is None:
            return
        try:
            while (chunk := self.chunks.get()) is not None:
                data = memoryview(chunk.encode("utf-8"))
                while data:
                    data = data[os.write(descriptor, data):]
        except OSError:  # pdflatex stopped reading (an error, or abort); its log says why
            pass
        finally:
            os.close(descriptor)

    def write(self, text: str) -> None:
        if self.closed:
            raise RuntimeError("the LaTeX source is already complete")
        self.chunks.put(text)

    def close(self) -> None:
        """The source is complete: pdflatex reads to the end and finishes."""
        if not self.closed:
            self.closed = True
            self.chunks.put(None)

    def failure(self) -> LatexError | None:
        """The error, if pdflatex has already stopped on one (checked without waiting)."""
        if self.process.poll() in (None, 0):
            return None
        try:
            _output(self.workdir, self.process.returncode)
        except LatexError as failure:
            return failure
        return None

    def result(self) -> bytes:
        """Closes the source, waits for pdflatex and returns the PDF (or raises LatexError)."""
        return self.finished().read_bytes()

    def finished(self) -> Path:
        """As result(), but the PDF's path: it stays until the stream is left."""
        self.close()
        try:
            self.process.wait(self.timeout)
        except subprocess.TimeoutExpired:
            self.abort()
            raise LatexError(f"pdflatex took longer than {self.timeout} s after its input ended and was stopped") from None
        self.writer.join()
        return _output(self.workdir, self.process.returncode)

    def abort(self) -> None:
        """Stops pdflatex if it still runs, and the writer with it."""
        self.aborted = True
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.close()
        self.writer.join()

    def __enter__(self) -> "LatexStream":
        return self

    def __exit__(self, *exc_info) -> None:
        self.abort()
        shutil.rmtree(self.workdir, ignore_errors=True)


def relevant_log_lines(log: str, context: int = 3, limit: int = 30) -> str:
    """The error lines of a TeX log ('!' or file:line:error) with a little context."""
    lines = log.splitlines()
    picked: list[str] = []
    for index, line in enumerate(lines):
        if line.startswith("!") or re.match(r"^[^:\s]+:\d+: ", line):
            picked.extend(lines[index:index + context + 1])
            picked.append("...")
    return "\n".join(picked[:limit]) or "\n".join(lines[-limit:])
