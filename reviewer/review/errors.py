"""Typed errors for a paper the reviewer cannot read.

Every message is one line: the file, what is wrong with it and what to do, e.g.
``paper.pdf: encrypted PDF; remove the password (qpdf --decrypt) and try again``.
None of them is retryable: the same file fails the same way until someone changes it.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from gateway.errors import EXIT_USAGE, AutoscholarError


class ReviewInputError(AutoscholarError):
    """The paper given to the reviewer cannot be used as it is.

    ``path`` is the file, ``detail`` the specifics (sizes, counts, the parser's complaint).
    Subclasses set ``reason`` (what is wrong) and ``advice`` (what to do).
    """

    exit_code = EXIT_USAGE

    reason: ClassVar[str] = "unusable paper"
    advice: ClassVar[str] = "check the file and try again"

    def __init__(self, path: Path | str, detail: str = "") -> None:
        self.path = Path(path)
        self.detail = " ".join(detail.split())
        super().__init__(self._message())

    def _message(self) -> str:
        detail = f" ({self.detail})" if self.detail else ""
        return f"{self.path}: {self.reason}{detail}; {self.advice}"


class PaperNotFoundError(ReviewInputError):
    """There is no file at the path (or it is a directory)."""

    reason = "no such file"
    advice = "check the path and try again"


class NotAPdfError(ReviewInputError):
    """The file does not start with the PDF signature ``%PDF-``."""

    reason = "not a PDF (no %PDF- signature at the start)"
    advice = "give the paper as a PDF file, or pass its plain text instead"


class CorruptPdfError(ReviewInputError):
    """pypdf cannot parse the file, or it has no readable pages (e.g. truncated)."""

    reason = "corrupt or truncated PDF"
    advice = "download or export the PDF again and retry"


class EncryptedPdfError(ReviewInputError):
    """The PDF needs a password to open."""

    reason = "encrypted PDF"
    advice = "remove the password (qpdf --decrypt --password=PW in.pdf out.pdf) and try again"


class NoExtractableTextError(ReviewInputError):
    """The PDF has (almost) no text layer: a scan or images only."""

    reason = "no extractable text"
    advice = "scanned? run OCR first (e.g. ocrmypdf in.pdf out.pdf) and try again"


class PdfTooLargeError(ReviewInputError):
    """The file is larger than ``review.max_pdf_mb``."""

    reason = "PDF too large"
    advice = "compress it (e.g. qpdf or ghostscript) or raise review.max_pdf_mb"


class TooManyPagesError(ReviewInputError):
    """The PDF has more pages than ``review.max_pages``."""

    reason = "too many pages"
    advice = "drop the appendices or raise review.max_pages"


class PdfTooCostlyError(ReviewInputError):
    """Parsing the PDF ran past the time or memory bound of the upload check (a PDF built
    to exhaust its parser: a decompression bomb, objects nested without end)."""

    reason = "PDF too costly to parse"
    advice = "export or print it to PDF again (e.g. qpdf in.pdf out.pdf) and retry"


def input_error_named(name: str) -> type[ReviewInputError]:
    """The ReviewInputError class called ``name`` (a child process reported it by name);
    PdfTooCostlyError for a name that is not one."""
    found = globals().get(name)
    if isinstance(found, type) and issubclass(found, ReviewInputError):
        return found
    return PdfTooCostlyError
