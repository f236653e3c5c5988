"""PDF checks, text cleaning and section split (``reviewer.review.pdf_text``)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pypdf import PdfWriter

from reviewer.review.errors import (
    CorruptPdfError,
    EncryptedPdfError,
    NoExtractableTextError,
    NotAPdfError,
    PaperNotFoundError,
    PdfTooLargeError,
    ReviewInputError,
    TooManyPagesError,
)
from reviewer.review.form import PaperText
from reviewer.review.pdf_text import extract_paper, paper_from_text
from tests.fixtures.make_pdfs import RUNNING_HEADER, RUNNING_HEADER_RIGHT, TITLE, PdfFixtures
from tests.fixtures.pdfs import SAMPLE_PAPERS, pdf_fixtures_fixture, sample_papers  # noqa: F401


def _extract(path: Path, max_pages: int = 50, max_mb: float = 30.0) -> PaperText:
    return extract_paper(path, max_pages=max_pages, max_mb=max_mb)


def _raises(
    path: Path, error: type[ReviewInputError], max_pages: int = 50, max_mb: float = 30.0
) -> ReviewInputError:
    """Extract ``path`` expecting ``error``; check the message is one line naming the file."""
    with pytest.raises(error) as info:
        _extract(path, max_pages, max_mb)
    message = str(info.value)
    assert path.name in message and "\n" not in message
    assert info.value.path == path and not info.value.retryable
    return info.value


def test_missing_file_is_not_found(tmp_path: Path) -> None:
    err = _raises(tmp_path / "nowhere.pdf", PaperNotFoundError)
    assert "check the path" in str(err)


def test_directory_is_not_found(tmp_path: Path) -> None:
    folder = tmp_path / "folder.pdf"
    folder.mkdir()
    _raises(folder, PaperNotFoundError)


def test_text_file_named_pdf_is_not_a_pdf(pdf_fixtures: PdfFixtures) -> None:
    err = _raises(pdf_fixtures.not_a_pdf, NotAPdfError)
    assert str(err).startswith(str(pdf_fixtures.not_a_pdf))


def test_size_limit_is_checked_before_the_signature(pdf_fixtures: PdfFixtures) -> None:
    err = _raises(pdf_fixtures.not_a_pdf, PdfTooLargeError, max_mb=1e-6)
    assert "max_pdf_mb" in str(err)


def test_truncated_pdf_is_corrupt(pdf_fixtures: PdfFixtures) -> None:
    _raises(pdf_fixtures.truncated, CorruptPdfError)


def test_pdf_without_pages_is_corrupt(tmp_path: Path) -> None:
    empty = tmp_path / "empty.pdf"
    with empty.open("wb") as fh:
        PdfWriter().write(fh)
    err = _raises(empty, CorruptPdfError)
    assert "no pages" in str(err)


def test_encrypted_pdf_says_how_to_decrypt(pdf_fixtures: PdfFixtures) -> None:
    err = _raises(pdf_fixtures.encrypted, EncryptedPdfError)
    assert "qpdf --decrypt" in str(err)


def test_pdf_with_empty_user_password_opens(pdf_fixtures: PdfFixtures) -> None:
    paper = _extract(pdf_fixtures.encrypted_empty_password)
    assert paper.pages == 2 and "Introduction" in paper.text


def test_image_only_pdf_has_no_text(pdf_fixtures: PdfFixtures) -> None:
    err = _raises(pdf_fixtures.image_only, NoExtractableTextError)
    assert "OCR" in str(err)


def test_page_limit(pdf_fixtures: PdfFixtures) -> None:
    err = _raises(pdf_fixtures.many_pages, TooManyPagesError, max_pages=3)
    assert "5 pages" in str(err) and "max_pages" in str(err)
    assert _extract(pdf_fixtures.many_pages, max_pages=5).pages == 5


def test_clean_paper_sections_and_title(pdf_fixtures: PdfFixtures) -> None:
    paper = _extract(pdf_fixtures.clean)
    titles = [s.title for s in paper.sections]
    assert titles == [
        "Front matter",
        "Abstract",
        "1 Introduction",
        "2 Method",
        "3 Results",
        "4 Conclusion",
        "References",
    ]
    assert paper.title == TITLE and paper.pages == 2 and paper.source == str(pdf_fixtures.clean)
    assert all(s.text for s in paper.sections)


def test_clean_paper_has_no_running_headers_or_page_numbers(pdf_fixtures: PdfFixtures) -> None:
    paper = _extract(pdf_fixtures.clean)
    assert RUNNING_HEADER not in paper.text and RUNNING_HEADER_RIGHT not in paper.text
    assert not [line for line in paper.text.splitlines() if re.fullmatch(r"\s*\d+\s*", line)]


def test_line_break_hyphenation_is_joined(pdf_fixtures: PdfFixtures) -> None:
    text = _extract(pdf_fixtures.clean).text
    assert "strong generalization to unseen" in text and "gener-" not in text
    assert "state-of-the-art baseline" in text  # a compound keeps its hyphen


def test_paragraphs_are_reflowed_and_separated(pdf_fixtures: PdfFixtures) -> None:
    paper = _extract(pdf_fixtures.clean)
    intro = next(s for s in paper.sections if s.title == "1 Introduction")
    paragraphs = intro.text.split("\n\n")
    assert len(paragraphs) == 2 and all("\n" not in p for p in paragraphs)
    assert "  " not in paper.text


def test_plain_text_with_markdown_debris() -> None:
    text = "\n".join(
        [
            "A STUDY OF THINGS",
            "",
            "ABSTRACT",
            "",
            "We study **things**.",
            "",
            "3",
            "",
            "# 1 INTRODUCTION",
            "",
            "Things matter a lot. We look at them",
            "closely and well.",
            "",
            "## Method",
            "",
            "| a | b |",
            "|---|---|",
            "| 1 | 2 |",
            "",
            "2 RELATED WORK",
            "",
            "Others looked at things too.",
            "",
            "### 2.1 EARLIER THINGS",
            "",
            "Older work.",
            "",
            "CONCLUSION",
            "",
            "Things are fine.",
            "",
            "REFERENCES",
            "",
            "A. Person. Things. 2020.",
        ]
    )
    paper = paper_from_text("iclr:xyz", text)
    titles = [s.title for s in paper.sections]
    assert titles == [
        "Front matter",
        "ABSTRACT",
        "1 INTRODUCTION",
        "Method",
        "2 RELATED WORK",
        "CONCLUSION",
        "REFERENCES",
    ]
    assert paper.title == "A STUDY OF THINGS" and paper.pages is None
    assert "**" not in paper.text and "|---|" not in paper.text and "\n3\n" not in paper.text
    assert "| a | b |\n| 1 | 2 |" in paper.text
    related = paper.sections[4].text
    assert "2.1 EARLIER THINGS" in related and "Older work." in related
    assert "Things matter a lot. We look at them closely and well." in paper.sections[2].text


def test_explicit_title_wins() -> None:
    assert paper_from_text("id", "Some Heading Text\n\nBody.", title="Given").title == "Given"


def test_out_of_sequence_numbers_are_not_headings() -> None:
    text = "1 Introduction\nWe train for\n10 Epochs\nand 2020 Results are good.\n2 Method\nOk."
    titles = [s.title for s in paper_from_text("id", text).sections]
    assert titles == ["1 Introduction", "2 Method"]


_SAMPLES = sample_papers()
_SAMPLE_PARAMS = [pytest.param(p, id=p.stem) for p in _SAMPLES] or [
    pytest.param(None, marks=pytest.mark.skip(reason=f"sample papers not found at {SAMPLE_PAPERS}"))
]


@pytest.mark.parametrize("sample", _SAMPLE_PARAMS)
def test_sample_papers_extract(sample: Path) -> None:
    paper = _extract(sample)
    titles = " | ".join(s.title.lower() for s in paper.sections)
    assert len(paper.sections) >= 5 and len(paper.text) > 10_000
    for name in ("abstract", "introduction", "method", "conclusion", "references"):
        assert name in titles
    assert paper.title and "CAUTION" not in paper.text
