"""A quick check of an uploaded PDF, with the reviewer's own errors and messages.

``reviewer.review.pdf_text.extract_paper`` extracts every page (0.7 s for an 11-page paper),
which is too slow to do inside an upload request when many arrive at once. Here the file
is opened, decrypted with the empty password if needed and its pages counted; only a file
whose first pages use no font at all (a scan, images only) gets the full check, which then
says whether it has a text layer. The worker extracts the text anyway and records any
later failure on the job.
"""

from __future__ import annotations

from pathlib import Path

from pypdf import PdfReader

from reviewer.review.errors import (
    NotAPdfError,
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
