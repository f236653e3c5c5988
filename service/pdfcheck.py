"""A quick check of an uploaded PDF, with the reviewer's own errors and messages.

``reviewer.pdf_text.extract_paper`` extracts every page (0.7 s for an 11-page paper),
which is too slow to do inside an upload request when many arrive at once. Here the file
is opened, decrypted with the empty password if needed and its pages counted; only a file
whose first pages use no font at all (a scan, images only) gets the full check, which then
says whether it has a text layer. The worker extracts the text anyway and records any
later failure on the job.
"""

from __future__ import annotations

from pathlib import Path

from pypdf import PasswordType, PdfReader
from pypdf.errors import PyPdfError

from reviewer.errors import (
    CorruptPdfError,
    EncryptedPdfError,
    NotAPdfError,
    TooManyPagesError,
)
from reviewer.pdf_text import extract_paper

FONT_CHECK_PAGES = 3
SIGNATURE_WINDOW = 1024  # readers accept junk before %PDF- within the first KiB
PARSE_ERRORS = (
    PyPdfError,
    ValueError,
    KeyError,
    TypeError,
    AttributeError,
    IndexError,
    OSError,
    AssertionError,
    RecursionError,
    ZeroDivisionError,
)


def _describe(exc: BaseException) -> str:
    message = " ".join(str(exc).split())[:160]
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def _open(path: Path) -> PdfReader:
    try:
        reader = PdfReader(path, strict=False)
    except PARSE_ERRORS as exc:
        raise CorruptPdfError(path, _describe(exc)) from exc
    if reader.is_encrypted:
        try:
            opened = reader.decrypt("")
        except PARSE_ERRORS as exc:
            raise EncryptedPdfError(path, _describe(exc)) from exc
        if opened == PasswordType.NOT_DECRYPTED:
            raise EncryptedPdfError(path)
    return reader


def _page_count(reader: PdfReader, path: Path) -> int:
    try:
        count = len(reader.pages)
    except PARSE_ERRORS as exc:
        raise CorruptPdfError(path, f"cannot read the page tree: {_describe(exc)}") from exc
    if count == 0:
        raise CorruptPdfError(path, "no pages found")
    return count


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
    reader = _open(path)
    pages = _page_count(reader, path)
    if pages > max_pages:
        raise TooManyPagesError(path, f"{pages} pages, the limit is {max_pages}")
    if not _has_fonts(reader, min(pages, FONT_CHECK_PAGES)):
        extract_paper(path, max_pages=max_pages, max_mb=max_mb)  # the full, slower check
