"""A quick check of an uploaded PDF, with the reviewer's own errors and messages.

``reviewer.review.pdf_text.extract_paper`` extracts every page (0.7 s for an 11-page paper),
which is too slow to do inside an upload request when many arrive at once. Here the file
is opened, decrypted with the empty password if needed and its pages counted; only a file
whose first pages use no font at all (a scan, images only) gets the full check, which then
says whether it has a text layer. The worker extracts the text anyway and records any
later failure on the job.

The API never parses an upload itself: ``check_upload_bounded`` runs the check in a child
process (``python -m service.pdfcheck``) under an address-space limit, a CPU-time limit and a
wall-clock timeout, and reads its verdict back as one JSON line. A PDF built to exhaust its
parser kills only that child; the upload is refused as too costly to parse.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import tempfile
from pathlib import Path

from pypdf import PdfReader

from core.isolation import LAUNCHER
from reviewer.review import errors
from reviewer.review.errors import (
    NotAPdfError,
    PdfTooCostlyError,
    ReviewInputError,
    TooManyPagesError,
)
from reviewer.review.pdf_text import (
    PARSE_ERRORS,
    SIGNATURE_WINDOW,
    extract_paper,
    open_pdf,
    page_count,
)

FONT_CHECK_PAGES = 3
CHILD_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "PYTHONHASHSEED": "0"}


def _has_fonts(reader: PdfReader, pages: int) -> bool:
    """Whether any of the first ``pages`` pages uses a font: a text layer, most likely."""
    for index in range(pages):
        try:
            resources = reader.pages[index].get("/Resources")
            fonts = resources.get_object().get("/Font") if resources is not None else None
        except PARSE_ERRORS:
            continue
        if fonts:
            return True
    return False


def check_upload(path: Path, *, max_pages: int, max_mb: float) -> None:
    """Raise the reviewer's ReviewInputError for a file it would refuse (quickly, mostly)."""
    with path.open("rb") as handle:
        if b"%PDF-" not in handle.read(SIGNATURE_WINDOW):
            raise NotAPdfError(path)
    reader = open_pdf(path)
    pages = page_count(reader, path)
    if pages > max_pages:
        raise TooManyPagesError(path, f"{pages} pages, the limit is {max_pages}")
    if not _has_fonts(reader, min(pages, FONT_CHECK_PAGES)):
        extract_paper(path, max_pages=max_pages, max_mb=max_mb)  # the full, slower check


def check_upload_bounded(
    path: Path, *, max_pages: int, max_mb: float, timeout_s: float, memory_mb: int
) -> None:
    """``check_upload`` in a bounded child process; the same errors, plus PdfTooCostlyError
    when the child runs out of time or memory."""
    limits = ["--memory-mb", str(memory_mb), "--cpu-s", str(math.ceil(timeout_s))]
    limits += ["--nofile", "64", "--fsize-mb", "1"]
    child = [sys.executable, "-m", "service.pdfcheck", str(path.resolve()), str(max_pages)]
    child.append(str(max_mb))
    command = [sys.executable, "-I", "-S", str(LAUNCHER), *limits, "--", *child]
    with tempfile.TemporaryDirectory(prefix="pdfcheck-") as scratch:
        try:
            done = subprocess.run(
                command,
                cwd=scratch,
                env=CHILD_ENV,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=timeout_s,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise PdfTooCostlyError(path, f"parsing took over {timeout_s:g} s") from exc
    verdict = _verdict(done.stdout)
    if verdict is None:
        detail = f"the parser stopped (exit {done.returncode}) within {memory_mb} MB"
        raise PdfTooCostlyError(path, detail)
    error = verdict.get("error")
    if error is not None:
        raise _error_class(str(error))(path, str(verdict.get("detail", "")))


def _verdict(stdout: str) -> dict[str, object] | None:
    lines = stdout.strip().splitlines()
    try:
        verdict = json.loads(lines[-1]) if lines else None
    except json.JSONDecodeError:
        return None
    return verdict if isinstance(verdict, dict) else None


def _error_class(name: str) -> type[ReviewInputError]:
    found = getattr(errors, name, None)
    if isinstance(found, type) and issubclass(found, ReviewInputError):
        return found
    return PdfTooCostlyError


def _child(argv: list[str]) -> None:
    """``python -m service.pdfcheck PATH MAX_PAGES MAX_MB``: one JSON line, the verdict."""
    path, max_pages, max_mb = Path(argv[0]), int(argv[1]), float(argv[2])
    try:
        check_upload(path, max_pages=max_pages, max_mb=max_mb)
    except ReviewInputError as exc:
        print(json.dumps({"error": type(exc).__name__, "detail": exc.detail}))
        return
    print(json.dumps({"ok": True}))


if __name__ == "__main__":
    _child(sys.argv[1:])
