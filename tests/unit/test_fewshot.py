"""Few-shot examples: stored whole, shown whole to ``full`` models and cut for ``compact`` ones."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from gateway.profiles import COMPACT_PROFILE, FULL_PROFILE, OutputProfile
from reviewer.review.fewshot import (
    FEWSHOT_DIR,
    LIST_FIELDS,
    FewshotExample,
    cut_paper,
    cut_words,
    load_fewshot,
    shown_example,
)
from reviewer.review.form import ReviewForm, review_form
from tests.fixtures.build_fewshot import DEFAULT_PAPERS, NAMES, build_example, example_json

FULL = OutputProfile.model_validate(FULL_PROFILE)
COMPACT = OutputProfile.model_validate(COMPACT_PROFILE)
NOTE = re.compile(r"\n\n\[… (\d+) characters not shown\]$")
needs_shared = pytest.mark.skipif(
    not DEFAULT_PAPERS.is_dir(),
    reason=f"the sample PDFs are not at {DEFAULT_PAPERS} (check out ../shared next to the repo)",
)


@pytest.fixture(scope="module")
def examples() -> list[FewshotExample]:
    """Every committed example."""
    loaded = load_fewshot(10)
    assert [e.name for e in loaded] == sorted(NAMES)
    return loaded


def test_committed_files_are_whole_papers_and_long_reviews(examples: list[FewshotExample]) -> None:
    total_bytes = sum(p.stat().st_size for p in FEWSHOT_DIR.glob("*.json"))
    assert total_bytes < 200_000
    for example in examples:
        assert len(example.paper_excerpt) > 20_000
        assert "REFERENCES" not in example.paper_excerpt
        assert "References section dropped" in example.source
        review = example.review
        assert len(review.Weaknesses) > COMPACT.review_items
        assert len(review.Questions) > COMPACT.review_items
        review_form(FULL).model_validate(review.model_dump())  # a capable model's reply


def test_committed_files_validate_strictly() -> None:
    paths = sorted(FEWSHOT_DIR.glob("*.json"))
    assert len(paths) == len(NAMES)
    for path in paths:
        record = json.loads(path.read_text(encoding="utf-8"))
        assert set(record) == set(FewshotExample.model_fields), path.name
        assert "Decision" not in record["review"]
        ReviewForm.model_validate(record["review"])  # extra="forbid": no stray field


def test_full_profile_shows_the_example_unchanged(examples: list[FewshotExample]) -> None:
    for example in examples:
        shown = shown_example(example, FULL)
        assert shown.model_dump_json() == example.model_dump_json()


def test_compact_profile_meets_every_bound_of_its_form(examples: list[FewshotExample]) -> None:
    limit = COMPACT.fewshot_paper_chars
    assert limit is not None
    for example in examples:
        shown = shown_example(example, COMPACT)
        review_form(COMPACT).model_validate(shown.review.model_dump())
        note = NOTE.search(shown.paper_excerpt)
        assert note is not None
        kept = shown.paper_excerpt[: note.start()]
        assert len(kept) <= limit
        assert example.paper_excerpt.startswith(kept)
        assert int(note.group(1)) == len(example.paper_excerpt) - len(kept)
        assert shown.review.Overall == example.review.Overall
        assert example.review.model_dump() != shown.review.model_dump()


def test_compact_cut_keeps_the_first_items_and_cuts_at_words(
    examples: list[FewshotExample],
) -> None:
    profile = COMPACT.model_copy(update={"review_item_chars": 60, "review_summary_chars": 120})
    for example in examples:
        shown = shown_example(example, profile).review
        for name in LIST_FIELDS:
            original = getattr(example.review, name)[: profile.review_items]
            for whole, cut in zip(original, getattr(shown, name), strict=True):
                assert len(cut) <= 60
                _assert_word_prefix(whole, cut)
        _assert_word_prefix(example.review.Summary, shown.Summary)


def _assert_word_prefix(whole: str, cut: str) -> None:
    """``cut`` is ``whole``, or a start of it ending at a word, then "…"."""
    if cut == whole:
        return
    assert cut.endswith("…")
    head = cut[:-1]
    assert whole.startswith(head)
    assert whole[len(head)] == " "


def test_cut_words() -> None:
    assert cut_words("short enough", 12) == "short enough"
    assert cut_words("one two three four", 12) == "one two…"
    assert cut_words("one two three", 8) == "one two…"  # the space just past the limit
    assert cut_words("abcdefghijklmnopqrstuvwxyz", 10) == "abcdefghi…"  # no word end: hard cut


def _note(text: str, kept: str) -> str:
    return f"{kept}\n\n[… {len(text) - len(kept)} characters not shown]"


def test_cut_paper_prefers_paragraphs_then_lines() -> None:
    first, second, third = "A" * 49 + ".", "B" * 29 + ".", "C" * 29 + "."
    text = f"{first}\n\n{second}\n{third}"
    assert cut_paper(text, None) == text
    assert cut_paper(text, len(text)) == text
    # A paragraph end that keeps at least half the limit wins over a later line end ...
    assert cut_paper(text, 90) == _note(text, first)
    # ... and one earlier than that loses to it.
    assert cut_paper(text, 110) == _note(text, f"{first}\n\n{second}")
    one_line = "word " * 40
    assert cut_paper(one_line, 52) == _note(one_line, ("word " * 10).rstrip())


def test_cut_paper_drops_a_heading_left_without_its_section() -> None:
    body = "Some sentence of the abstract. " * 3
    text = f"ABSTRACT\n\n{body}\n\n1 INTRODUCTION\n\n{body}"
    assert cut_paper(text, len(text) - 10) == _note(text, f"ABSTRACT\n\n{body.rstrip()}")


def test_load_fewshot_counts(tmp_path: Path) -> None:
    assert [e.name for e in load_fewshot(1)] == [sorted(NAMES)[0]]
    assert load_fewshot(0) == []
    assert load_fewshot(2, tmp_path / "absent") == []


@needs_shared
@pytest.mark.parametrize("name", NAMES)
def test_committed_files_are_what_the_build_script_makes(name: str) -> None:
    built = example_json(build_example(name, DEFAULT_PAPERS))
    assert built == (FEWSHOT_DIR / f"{name}.json").read_text(encoding="utf-8")
