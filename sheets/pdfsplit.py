"""Cutting a combined variants PDF into one file per sheet, here or in a helper process.

Each sheet of a combined document starts at a named destination, derive-variant-<sheet>-<i>;
a sheet runs from its destination to the next. pikepdf (qpdf) copies each sheet's pages with
the fonts and forms they use into a file of its own. pikepdf keeps Python's global lock while
it works, so threads cannot cut two documents at once; a helper process (`Helper`) cuts one
while this process cuts the other. This module imports nothing heavier than pikepdf, so the
helper starts in a fraction of the time the derivations take to import.
"""
from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
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
    pieces = []
    for pages in ranges:
        with pikepdf.new() as piece:
            piece.pages.extend(document.pages[pages.start:pages.stop])
            pieces.append(pdf_bytes(piece))
    return pieces


def add_for_printing(printing, document, ranges: list[range]) -> None:
    """Appends the given page ranges of an open PDF to a print file, each padded to an even page
    count so that duplex printing starts every variant's sheet on a fresh sheet of paper."""
    for pages in ranges:
        printing.pages.extend(document.pages[pages.start:pages.stop])
        if len(pages) % 2:
            box = document.pages[pages[-1]].mediabox
            printing.add_blank_page(page_size=(box[2] - box[0], box[3] - box[1]))


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
    """The helper's side: one job as JSON on stdin, {"ok": true} or {"error": ...} on stdout."""
    import pikepdf  # noqa: F401  (imported before the job arrives, while the caller is busy)
    job = json.loads(sys.stdin.read())
    try:
        cut_to_files(Path(job["pdf"]), job["files"])
        reply = {"ok": True}
    except (SplitError, OSError, ValueError) as failure:
        reply = {"error": f"{type(failure).__name__}: {failure}"}
    sys.stdout.write(json.dumps(reply))


class Helper:
    """A second process, started early (it imports pikepdf while the variants are made), that
    cuts one combined document into files. Use as a context manager: leaving stops it."""

    def __init__(self) -> None:
        root = str(Path(__file__).resolve().parent.parent)
        self.process = subprocess.Popen([sys.executable, "-c", _BOOT, root], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def cut_to_files(self, pdf_path: Path, files: dict[str, list[str]]) -> None:
        """As the module's cut_to_files, in the helper; returns when every file is written."""
        job = json.dumps({"pdf": str(pdf_path), "files": {sheet: [str(p) for p in paths]
                                                          for sheet, paths in files.items()}})
        try:
            out, err = self.process.communicate(job.encode("utf-8"), timeout=HELPER_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            self.stop()
            raise SplitError(f"cutting the PDF took longer than {HELPER_TIMEOUT_SECONDS} s") from None
        try:
            reply = json.loads(out.decode("utf-8"))
        except ValueError:
            detail = err.decode("utf-8", "replace").strip().splitlines()
            raise SplitError("the PDF-cutting process failed: "
                             f"{detail[-1] if detail else f'exit status {self.process.returncode}'}") from None
        if "error" in reply:
            raise SplitError(reply["error"])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        for stream in (self.process.stdin, self.process.stdout, self.process.stderr):
            stream.close()

    def __enter__(self) -> "Helper":
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()
