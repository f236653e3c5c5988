"""A paper's text and sections, from a PDF (pypdf) or from plain text.

``extract_paper`` checks the file before it reads it, in this order, and raises the
matching :class:`~reviewer.review.errors.ReviewInputError` with a one-line, actionable message:
exists, size limit, ``%PDF-`` signature, parses, not encrypted (an empty user password is
tried), page limit, has a text layer. ``paper_from_text`` runs the same cleaning and
section split on text that is already extracted (the ICLR calibration texts).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from pypdf import PasswordType, PdfReader
from pypdf.errors import PyPdfError

from reviewer.review.errors import (
    CorruptPdfError,
    EncryptedPdfError,
    NoExtractableTextError,
    NotAPdfError,
    PaperNotFoundError,
    PdfTooLargeError,
    TooManyPagesError,
)
from reviewer.review.form import PaperText
from reviewer.review.text_clean import (
    CONNECTORS,
    build_vocabulary,
    is_heading,
    join_hyphenated,
    normalise_line,
    render,
    strip_markdown,
    strip_running_lines,
    title_like,
    to_blocks,
    to_sections,
)

MIN_TEXT_CHARS = 200
"""Fewer non-space characters than this in the whole PDF means it has no usable text layer."""
SIGNATURE_WINDOW = 1024  # readers accept junk before %PDF- within the first KiB
# pypdf raises its own errors, but a damaged file can also surface as any of these.
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
log = logging.getLogger(__name__)


def extract_paper(path: Path, *, max_pages: int, max_mb: float) -> PaperText:
    """The cleaned text and sections of the PDF at ``path``.

    Raises a :class:`~reviewer.review.errors.ReviewInputError` subclass when the file is missing,
    larger than ``max_mb`` MiB, not a PDF, corrupt, encrypted, longer than ``max_pages``
    pages or without a text layer.
    """
    path = Path(path)
    _check_file(path, max_mb)
    reader = open_pdf(path)
    n_pages = page_count(reader, path)
    if n_pages > max_pages:
        raise TooManyPagesError(path, f"{n_pages} pages, the limit is {max_pages}")
    pages = _page_texts(reader, path, n_pages)
    chars = sum(len("".join(text.split())) for text in pages)
    if chars < MIN_TEXT_CHARS:
        raise NoExtractableTextError(path, f"{chars} characters of text on {n_pages} pages")
    return _paper_from_pages(str(path), pages)


def paper_from_text(source: str, text: str, title: str = "") -> PaperText:
    """A :class:`PaperText` from already-extracted text (markdown debris is tolerated).

    ``title`` defaults to the first line when that looks like a title. Headings may be
    plain ("1 INTRODUCTION", "Abstract") or markdown ("# 1 INTRODUCTION", "## Method").
    """
    lines = strip_markdown(text.splitlines())
    sections = to_sections(to_blocks(lines))
    return PaperText(
        source=source,
        title=title or guess_title(lines[:8]),
        pages=None,
        text=render(sections),
        sections=sections,
    )


def guess_title(lines: list[str]) -> str:
    """The title from the first lines of the first page, or "" if the first line is not one.

    An ALL-CAPS title continues over following ALL-CAPS lines; any title continues after a
    line ending in a hyphen or a connecting word ("of", "for", "via"), up to four lines.
    """
    lines = [normalise_line(x) for x in lines if x.strip()][:6]
    if not lines or not _looks_like_title(lines[0]):
        return ""
    vocab, title = build_vocabulary(lines), lines[0]
    for line in lines[1:4]:
        caps = title.isupper() and line.isupper() and not line.endswith(".")
        open_end = title.endswith("-") or title.split()[-1].lower() in CONNECTORS
        if not (caps or open_end) or is_heading(line):
            break
        title = join_hyphenated(title, line, vocab) if title.endswith("-") else f"{title} {line}"
    return title


def _looks_like_title(line: str) -> bool:
    words = re.findall(r"[A-Za-z]+", line)
    if len(words) < 2 or len(line) > 250 or line.endswith(".") or "@" in line:
        return False
    if line.lower().startswith(("arxiv", "http", "preprint")):
        return False
    return not is_heading(line) and title_like(line[:90])


def _check_file(path: Path, max_mb: float) -> None:
    if not path.exists():
        raise PaperNotFoundError(path)
    if not path.is_file():
        raise PaperNotFoundError(path, "it is a directory or a special file, not a file")
    size_mb = path.stat().st_size / (1024 * 1024)
    if size_mb > max_mb:
        raise PdfTooLargeError(path, f"{size_mb:.1f} MB, the limit is {max_mb:g} MB")
    with path.open("rb") as fh:
        head = fh.read(SIGNATURE_WINDOW)
    if b"%PDF-" not in head:
        raise NotAPdfError(path)


def open_pdf(path: Path) -> PdfReader:
    """A reader for ``path``, decrypted with the empty password where that is enough."""
    try:
        reader = PdfReader(path, strict=False)
    except PARSE_ERRORS as exc:
        raise CorruptPdfError(path, describe_error(exc)) from exc
    if reader.is_encrypted:
        try:
            opened = reader.decrypt("")
        except PARSE_ERRORS as exc:  # an unsupported algorithm or a missing crypto package
            raise EncryptedPdfError(path, describe_error(exc)) from exc
        if opened == PasswordType.NOT_DECRYPTED:
            raise EncryptedPdfError(path)
    return reader


def page_count(reader: PdfReader, path: Path) -> int:
    """The number of pages, or a CorruptPdfError naming what broke."""
    try:
        count = len(reader.pages)
    except PARSE_ERRORS as exc:
        raise CorruptPdfError(path, f"cannot read the page tree: {describe_error(exc)}") from exc
    if count == 0:
        raise CorruptPdfError(path, "no pages found")
    return count


def _page_texts(reader: PdfReader, path: Path, n_pages: int) -> list[str]:
    """The text of every page; a page that fails is logged and counts as empty.

    When every page fails, the file is corrupt rather than scanned.
    """
    texts: list[str] = []
    failures: list[str] = []
    for index in range(n_pages):
        try:
            texts.append(reader.pages[index].extract_text())
        except PARSE_ERRORS as exc:
            failures.append(f"page {index + 1}: {describe_error(exc)}")
            texts.append("")
    if failures and len(failures) == n_pages:
        raise CorruptPdfError(path, f"no page could be read; {failures[0]}")
    for failure in failures:
        log.warning("%s: text of %s could not be extracted", path, failure)
    return texts


def _paper_from_pages(source: str, pages: list[str]) -> PaperText:
    page_lines = strip_running_lines([text.splitlines() for text in pages])
    lines = [line for page in page_lines for line in page]
    sections = to_sections(to_blocks(lines))
    return PaperText(
        source=source,
        title=guess_title(next((p for p in page_lines if p), [])),
        pages=len(pages),
        text=render(sections),
        sections=sections,
        page_texts=["\n".join(page) for page in page_lines],
    )


def describe_error(exc: BaseException) -> str:
    message = " ".join(str(exc).split())[:160]
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__
