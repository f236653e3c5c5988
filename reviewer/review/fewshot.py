"""Example reviews for few-shot prompting, from ``samples/fewshot/`` (licence-checked files).

The files hold whole papers and whole reviews. What a reviewer is shown depends on its
model's output profile (:func:`shown_example`): a capable model (``full``) sees each example
as stored; the embedded model (``compact``) sees the paper's opening and the review cut to
the bounds of its own form, so the example neither fills its context nor models a reply
its form would reject.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field

from core.resources import shipped_path
from gateway.profiles import OutputProfile
from reviewer.review.form import ReviewForm

FEWSHOT_DIR = shipped_path("samples", "fewshot")
LIST_FIELDS: tuple[str, ...] = ("Strengths", "Weaknesses", "Questions", "Limitations")
ELLIPSIS = "…"
# A boundary earlier than this share of the limit wastes too much of it; cut finer instead.
MIN_KEPT_SHARE = 0.5
HEADING_CHARS = 80
SENTENCE_ENDS = (".", "!", "?", ":", ";", ",")


class FewshotExample(BaseModel):
    """A paper, the review it got, and where both come from."""

    name: str
    source: str = Field(description="Origin of the paper and review, and what was changed.")
    licence: str = Field(description="Licence that allows their use here.")
    paper_excerpt: str = Field(description="The paper's text (whole in the stored files).")
    review: ReviewForm


def load_fewshot(count: int, folder: Path = FEWSHOT_DIR) -> list[FewshotExample]:
    """The first ``count`` examples (sorted by file name); fewer if fewer exist."""
    if count <= 0 or not folder.is_dir():
        return []
    files = sorted(folder.glob("*.json"))[:count]
    return [FewshotExample.model_validate_json(f.read_text(encoding="utf-8")) for f in files]


def shown_example(example: FewshotExample, profile: OutputProfile) -> FewshotExample:
    """``example`` as a model with ``profile`` is shown it; unchanged when nothing needs a cut.

    The paper is cut to ``profile.fewshot_paper_chars`` at a paragraph or line end, with a
    note of how much was left out; the review's lists keep their first
    ``profile.review_items`` items, and each item and the Summary are cut at a word to
    ``review_item_chars`` / ``review_summary_chars``.
    """
    paper = cut_paper(example.paper_excerpt, profile.fewshot_paper_chars)
    review = cut_review(example.review, profile)
    if paper == example.paper_excerpt and review == example.review:
        return example
    return example.model_copy(update={"paper_excerpt": paper, "review": review})


def cut_review(review: ReviewForm, profile: OutputProfile) -> ReviewForm:
    """``review`` within ``profile``'s bounds on list length, item length and Summary length."""
    items, chars = profile.review_items, profile.review_item_chars
    update: dict[str, object] = {
        name: [cut_words(item, chars) for item in getattr(review, name)[:items]]
        for name in LIST_FIELDS
    }
    update["Summary"] = cut_words(review.Summary, profile.review_summary_chars)
    update["Ethical_Concerns_Text"] = cut_words(review.Ethical_Concerns_Text, chars)
    return ReviewForm.model_validate(review.model_dump() | update)


def cut_words(text: str, limit: int) -> str:
    """``text`` if it fits ``limit`` characters, else its start cut at a word and ending in "…"."""
    if len(text) <= limit:
        return text
    head = text[: limit - len(ELLIPSIS) + 1]  # one more: a space there ends the last word
    space = head.rfind(" ")
    kept = head[:space] if space >= limit * MIN_KEPT_SHARE else head[:-1]
    return kept.rstrip() + ELLIPSIS


def cut_paper(text: str, limit: int | None) -> str:
    """``text``'s first ``limit`` characters at most, cut at a paragraph or line end, with a note.

    ``None`` or a text that fits: ``text`` itself. The note says how many characters of
    ``text`` are not shown; it comes on top of ``limit``.
    """
    if limit is None or len(text) <= limit:
        return text
    kept = _without_trailing_heading(text[: _boundary(text, limit)].rstrip())
    return f"{kept}\n\n[{ELLIPSIS} {len(text) - len(kept)} characters not shown]"


def _without_trailing_heading(text: str) -> str:
    """``text`` less a last paragraph that reads as a heading, whose section was cut away.

    A heading here is one short line without sentence-ending punctuation ("1 INTRODUCTION",
    "2.1 MULTI-SCALE APPROACHES"); the first paragraph always stays.
    """
    head, separator, last = text.rpartition("\n\n")
    is_heading = (
        "\n" not in last and len(last) <= HEADING_CHARS and not last.endswith(SENTENCE_ENDS)
    )
    return head.rstrip() if separator and head.strip() and is_heading else text


def _boundary(text: str, limit: int) -> int:
    """Where to cut ``text`` to keep at most ``limit`` characters: the latest good boundary."""
    for separator in ("\n\n", "\n", " "):
        end = text.rfind(separator, 0, limit + 1)
        if end >= limit * MIN_KEPT_SHARE:
            return end
    return limit
