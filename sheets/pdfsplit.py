"""Cutting a combined variants PDF into one file per sheet, here or in a helper process.

Each sheet of a combined document starts at a named destination, derive-variant-<sheet>-<i>;
a sheet runs from its destination to the next. pikepdf (qpdf) copies each sheet's pages with
the fonts and forms they use into a file of its own. pikepdf keeps Python's global lock while
it works, so a thread cannot cut while the process does other pikepdf work; a helper process
(`Helper`) cuts the documents while the caller makes the print files (write_print_file). This
module imports nothing heavier than pikepdf, so the helper starts in a fraction of the time
the derivations take to import.
"""
from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

DEST_PREFIX = "derive-variant-"
SHEETS = ("questions", "solutions")
HELPER_TIMEOUT_SECONDS = 120


class SplitError(RuntimeError):
    """A combined PDF could not be cut: its sheet markers are wrong, or the helper failed."""


def page_ranges(document, count: int) -> dict[str, list[range]]:
    """Each variant's question and solution pages in a combined PDF (a pikepdf.Pdf): from
    the named destination its sheet starts at to the next one."""
    import pikepdf
    starts: dict[tuple[str, int], int] = {}
    names = document.Root.get("/Names")
    tree = names.get("/Dests") if names is not None else None
    for name, destination in (pikepdf.NameTree(tree).items() if tree is not None else ()):
        match = re.fullmatch(re.escape(DEST_PREFIX) + r"(questions|solutions)-(\d+)", name)
        if match:
            target = destination.D if isinstance(destination, pikepdf.Dictionary) else destination
            starts[match[1], int(match[2])] = pikepdf.Page(target[0]).index
    expected = [(sheet, index) for index in range(count) for sheet in SHEETS]
    if sorted(starts) != sorted(expected):
        raise SplitError(f"the combined PDF has {len(starts)} sheet markers, expected {len(expected)}")
    firsts = [starts[key] for key in expected] + [len(document.pages)]
    ranges = [range(firsts[i], firsts[i + 1]) for i in range(len(expected))]
    if any(len(pages) == 0 for pages in ranges):
        raise SplitError("a sheet has no pages in the combined PDF")
    return {sheet: ranges[offset::2] for offset, sheet in enumerate(SHEETS)}


def cut_pages(document, ranges: list[range]) -> list[bytes]:
    """One PDF per range of pages. qpdf copies the pages with the fonts and forms they use;
    its file ID is a hash of the content, so the bytes depend on the input only."""
    import pikepdf
    pages = list(document.pages)  # slicing document.pages costs time in proportion to its length
    pieces = []
    for span in ranges:
        with pikepdf.new() as piece:
            piece.pages.extend(pages[span.start:span.stop])
            pieces.append(pdf_bytes(piece))
    return pieces


def write_print_file(sources: list[tuple[Path, list[range]]], blank: Path, out: Path) -> None:
    """One file of the given page ranges of several PDFs, in order, each range padded with the
    one page of `blank` to an even page count, so that duplex printing starts every variant's
    sheet on a fresh sheet of paper. Made by qpdf's own page selection (pikepdf.Job): adding
    pages one at a time through pikepdf costs time in proportion to the pages already added,
    which at 1000 variants was most of the run. The file ID is a hash of the content."""
    import pikepdf
    arguments = ["qpdf", "--empty", "--deterministic-id", "--pages"]
    for path, ranges in sources:
        for span in ranges:
            arguments += [str(path), f"{span.start + 1}-{span.stop}"]
            if len(span) % 2:
                arguments += [str(blank), "1"]
    arguments += ["--", str(out)]
    try:
        pikepdf.Job(arguments).run()
    except (pikepdf.PdfError, OSError, RuntimeError) as failure:  # qpdf's errors come as any of these
        raise SplitError(f"cannot make {Path(out).name}: {failure}") from None
    os.chmod(out, 0o644)


def write_blank_page(like: Path, out: Path) -> None:
    """A one-page PDF with an empty page the size of the first page of `like`."""
    import pikepdf
    with pikepdf.open(like) as document, pikepdf.new() as blank:
        box = document.pages[0].mediabox
        blank.add_blank_page(page_size=(box[2] - box[0], box[3] - box[1]))
        blank.save(out, deterministic_id=True)


def pdf_bytes(document) -> bytes:
    buffer = io.BytesIO()
    document.save(buffer, deterministic_id=True, compress_streams=True)
    return buffer.getvalue()


def write_file(path: Path, data: bytes) -> None:
    path = Path(path)
    path.write_bytes(data)
    os.chmod(path, 0o644)


def cut_to_files(pdf_path: Path, files: dict[str, list[str]]) -> None:
    """Cuts a combined PDF and writes each sheet to its file: files[sheet][i] is the path of
    variant i's sheet (in the document's order)."""
    import pikepdf
    counts = {len(paths) for paths in files.values()}
    if len(counts) != 1 or set(files) != set(SHEETS):
        raise SplitError("every variant needs a file for each sheet")
    try:
        with pikepdf.open(pdf_path) as document:
            ranges = page_ranges(document, counts.pop())
            for sheet in SHEETS:
                for path, data in zip(files[sheet], cut_pages(document, ranges[sheet])):
                    write_file(Path(path), data)
    except pikepdf.PdfError as failure:
        raise SplitError(f"cannot cut {Path(pdf_path).name}: {failure}") from None


# ------------------------------------------------------------ helper process

_BOOT = "import sys; sys.path.insert(0, sys.argv[1]); from sheets import pdfsplit; pdfsplit.serve()"


def serve() -> None:
    """The helper's side: one job per line of JSON on stdin, each answered by a line,
    {"ok": true} or {"error": ...}, on stdout; it ends when stdin does."""
    import pikepdf  # noqa: F401  (imported before the first job arrives, while the caller is busy)
    for line in sys.stdin:
        job = json.loads(line)
        try:
            cut_to_files(Path(job["pdf"]), job["files"])
            reply = {"ok": True}
        except (SplitError, OSError, ValueError) as failure:
            reply = {"error": f"{type(failure).__name__}: {failure}"}
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()


class Helper:
    """A second process, started early (it imports pikepdf while the variants are made), that
    cuts combined documents into files, one at a time, in the order they are submitted. Use as
    a context manager: leaving stops it.

    A job is submitted (written to the helper) apart from waiting for its reply, so that a
    caller can hand over a job and then hold Python's lock in pikepdf work of its own while
    the helper cuts; a reader thread collects the replies, which come in job order."""

    def __init__(self) -> None:
        root = str(Path(__file__).resolve().parent.parent)
        self.errors = tempfile.TemporaryFile()  # read only if it fails; a pipe could fill and block it
        self.process = subprocess.Popen([sys.executable, "-c", _BOOT, root], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=self.errors)
        self.sending = threading.Lock()
        self.submitted = 0
        self.replies: list[dict] = []  # the i-th reply answers the i-th job
        self.replies_ended = False     # the helper's output has ended: it exited
        self.arrived = threading.Condition()
        self.reader = threading.Thread(target=self._read_replies, name="pdfsplit-replies", daemon=True)
        self.reader.start()

    def _read_replies(self) -> None:
        for line in self.process.stdout:
            try:
                reply = json.loads(line)
            except ValueError:
                reply = {"error": f"an unreadable reply from the PDF-cutting process: {line[:80]!r}"}
            with self.arrived:
                self.replies.append(reply)
                self.arrived.notify_all()
        with self.arrived:
            self.replies_ended = True
            self.arrived.notify_all()

    def submit(self, pdf_path: Path, files: dict[str, list[str]]) -> int:
        """Hands the helper a cut (as the module's cut_to_files) and returns its ticket for
        wait(); returns as soon as the job is written. Callable from several threads."""
        job = json.dumps({"pdf": str(pdf_path), "files": {sheet: [str(p) for p in paths]
                                                          for sheet, paths in files.items()}})
        with self.sending:
            try:
                self.process.stdin.write(job.encode("utf-8") + b"\n")
                self.process.stdin.flush()
            except (OSError, ValueError):  # the helper is gone (a broken pipe, or stopped)
                raise SplitError(self._failure()) from None
            ticket = self.submitted
            self.submitted += 1
        return ticket

    def wait(self, ticket: int) -> None:
        """Returns once the job's files are all written; raises SplitError if it failed."""
        with self.arrived:
            answered = self.arrived.wait_for(lambda: len(self.replies) > ticket or self.replies_ended,
                                             HELPER_TIMEOUT_SECONDS)
            reply = self.replies[ticket] if len(self.replies) > ticket else None
        if not answered:
            self.stop()
            raise SplitError(f"cutting the PDF took longer than {HELPER_TIMEOUT_SECONDS} s")
        if reply is None:
            raise SplitError(self._failure())
        if "error" in reply:
            raise SplitError(reply["error"])

    def _failure(self) -> str:
        self.process.wait()
        self.errors.seek(0)
        detail = self.errors.read().decode("utf-8", "replace").strip().splitlines()
        return f"the PDF-cutting process failed: {detail[-1] if detail else f'exit status {self.process.returncode}'}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        if self.reader is not threading.current_thread():
            self.reader.join()  # it sees the end of the output now that the process is gone
        for stream in (self.process.stdin, self.process.stdout, self.errors):
            try:
                stream.close()
            except OSError:  # stdin's last buffered job could not be flushed to a dead process
                pass

    def __enter__(self) -> "Helper":
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()
