"""Acceptance for issue #14: a capable model's real review validates under the ``full`` profile.

The reviews are The AI Scientist's stored GPT-4o reviews: the 500 ICLR rows and the 6 sample
papers' reviews in ``../shared`` (skipped when that checkout is absent), and the 20-review
fixture committed in ``tests/fixtures/gpt4o_reviews.jsonl`` (always runs). ``compact`` keeps
the embedded model's bounds, which reject most of them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from core.settings import Settings
from gateway.profiles import OutputProfile
from reviewer.review.form import ReviewForm, review_form
from tests.fixtures.build_gpt4o_reviews import (
    CSV_NAME,
    LIST_FIELDS,
    read_csv_reviews,
    review_from_ai_scientist,
)

REPO = Path(__file__).resolve().parents[2]
SHARED_DATA = REPO.parent / "shared" / "data"
CSV_PATH = SHARED_DATA / "iclr2022" / CSV_NAME
PAPERS = SHARED_DATA / "papers"
FIXTURE = REPO / "tests" / "fixtures" / "gpt4o_reviews.jsonl"

needs_shared = pytest.mark.skipif(
    not CSV_PATH.is_file(),
    reason=f"The AI Scientist's stored GPT-4o reviews are not here: {CSV_PATH} "
    "(check out ../shared next to the repository)",
)

Review = dict[str, Any]


def _shared_reviews() -> dict[str, Review]:
    """The 500 CSV rows and the sample papers' reviews, keyed by where each came from."""
    reviews = {f"csv:{pid}": review for pid, review in read_csv_reviews(CSV_PATH)}
    for path in sorted(PAPERS.glob("*.ai-scientist-review.json")):
        record = json.loads(path.read_text(encoding="utf-8"))
        reviews[f"paper:{path.name}"] = review_from_ai_scientist(record)
    return reviews


def _fixture_reviews() -> dict[str, Review]:
    """The committed 20 reviews, keyed by paper id."""
    lines = FIXTURE.read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines if line.strip()]
    return {record["paper_id"]: record["review"] for record in records}


def _rejected(form: type[ReviewForm], reviews: dict[str, Review]) -> list[str]:
    """The keys of the reviews that do not validate as ``form``."""
    rejected = []
    for key, review in reviews.items():
        try:
            form.model_validate(review)
        except ValidationError:
            rejected.append(key)
    return rejected


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    """Default settings: GPT-4o gets ``full``, the embedded model ``compact``."""
    return make_settings()


@pytest.fixture
def full(settings: Settings) -> OutputProfile:
    """GPT-4o's profile."""
    profile = settings.profile("openai/gpt-4o")
    assert profile.name == "full"
    return profile


@pytest.fixture
def compact(settings: Settings) -> OutputProfile:
    """The embedded model's profile."""
    profile = settings.profile("local")
    assert profile.name == "compact"
    return profile


def test_fixture_holds_long_real_reviews() -> None:
    reviews = _fixture_reviews()
    assert len(reviews) == 20
    assert all(len(r["Weaknesses"]) >= 6 and len(r["Questions"]) >= 8 for r in reviews.values())


def test_fixture_reviews_validate_under_full(full: OutputProfile) -> None:
    assert _rejected(review_form(full), _fixture_reviews()) == []


@needs_shared
def test_every_stored_gpt4o_review_validates_under_full(full: OutputProfile) -> None:
    reviews = _shared_reviews()
    assert len(reviews) == 506  # 500 ICLR rows + 6 sample papers
    assert _rejected(review_form(full), reviews) == []


@needs_shared
def test_compact_rejects_most_stored_gpt4o_reviews(compact: OutputProfile) -> None:
    rejected = _rejected(review_form(compact), _shared_reviews())
    assert len(rejected) == 485  # as measured in issue #14 with the form before profiles
    assert sum(key.startswith("paper:") for key in rejected) == 6


def test_compact_rejects_the_fixture_and_keeps_its_bounds(compact: OutputProfile) -> None:
    assert len(_rejected(review_form(compact), _fixture_reviews())) == 20
    assert (compact.review_items, compact.review_item_chars) == (4, 300)
    assert compact.review_summary_chars == 800


def test_compact_accepts_a_review_inside_its_bounds(compact: OutputProfile) -> None:
    review = next(iter(_fixture_reviews().values()))
    trimmed = {**review, **{name: review[name][:4] for name in LIST_FIELDS}}
    assert _rejected(review_form(compact), {"trimmed": trimmed}) == []


def _longer(review: Review, field: str, value: Any) -> Review:
    return {**review, field: value}


def test_full_accepts_replies_at_its_bounds(full: OutputProfile) -> None:
    review = next(iter(_fixture_reviews().values()))
    at_bounds = {
        "20 weaknesses": _longer(review, "Weaknesses", [f"Weakness {i}." for i in range(20)]),
        "2000-char item": _longer(review, "Questions", ["q" * 2000]),
        "5000-char summary": _longer(review, "Summary", "s" * 5000),
    }
    assert _rejected(review_form(full), at_bounds) == []


def test_full_rejects_runaway_replies(full: OutputProfile) -> None:
    review = next(iter(_fixture_reviews().values()))
    too_long = {
        "21 weaknesses": _longer(review, "Weaknesses", [f"Weakness {i}." for i in range(21)]),
        "2001-char item": _longer(review, "Questions", ["q" * 2001]),
        "5001-char summary": _longer(review, "Summary", "s" * 5001),
    }
    assert sorted(_rejected(review_form(full), too_long)) == sorted(too_long)
