"""The review form (NeurIPS fields) and the records a review run produces.

These models are the reviewer's contract with the graph, the report renderer and the
calibration code. There is deliberately no Accept/Reject field: the decision comes from a
threshold on the aggregated Overall score, never from the model's own word.
"""

from __future__ import annotations

import functools
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from gateway.profiles import OutputProfile
from reviewer.checks.models import ChecksReport

Score4 = Annotated[int, Field(ge=1, le=4)]
# The records below hold any review a profile accepted; the size bounds a model's reply must
# meet come from its output profile (``review_form(profile)``), so a capable model's
# NeurIPS-length review is kept whole and the embedded model's stays inside its token limit.
Text = Annotated[str, Field(min_length=1)]
Items = Annotated[list[Text], Field(min_length=1)]

SCORE_FIELDS: tuple[str, ...] = (
    "Originality",
    "Quality",
    "Clarity",
    "Significance",
    "Soundness",
    "Presentation",
    "Contribution",
    "Overall",
    "Confidence",
)


class ReviewForm(BaseModel):
    """One reviewer's review, NeurIPS form. Scores outside their range fail validation."""

    model_config = ConfigDict(extra="forbid")

    Summary: Text = Field(description="What the paper claims and does, in your words.")
    Strengths: Items = Field(description="The paper's main strengths, one per item.")
    Weaknesses: Items = Field(description="The paper's main weaknesses, one per item.")
    Questions: list[Text] = Field(description="Questions for the authors.")
    Limitations: list[Text] = Field(description="Limitations and societal impact.")
    Ethical_Concerns: bool = Field(description="True if the paper raises ethical concerns.")
    Ethical_Concerns_Text: str = Field("", description="Which, if any.")
    Originality: Score4
    Quality: Score4
    Clarity: Score4
    Significance: Score4
    Soundness: Score4
    Presentation: Score4
    Contribution: Score4
    Overall: int = Field(ge=1, le=10, description="1 very strong reject … 10 award quality.")
    Confidence: int = Field(ge=1, le=5, description="1 guess … 5 certain.")


class ReflectionReply(BaseModel):
    """A reflection round: the (possibly revised) review and whether the reviewer is done."""

    model_config = ConfigDict(extra="forbid")

    thought: str = Field(description="What to change and why.")
    review: ReviewForm
    done: bool = Field(description="True when the review needs no further revision.")


class MetaReviewReply(BaseModel):
    """The area chair's consensus text (scores are aggregated numerically, not by the model)."""

    model_config = ConfigDict(extra="forbid")

    summary: Text = Field(description="The consensus of the reviews.")
    strengths: Items = Field(description="Strengths the reviewers agree on.")
    weaknesses: Items = Field(description="Weaknesses the reviewers agree on.")
    disagreements: list[Text] = Field(description="Where reviewers disagree.")


def _bounded_text(chars: int) -> Any:
    return Annotated[str, Field(min_length=1, max_length=chars)]


def _bounded_items(profile: OutputProfile, *, min_items: int) -> Any:
    items: Any = list[_bounded_text(profile.review_item_chars)]  # type: ignore[misc]
    return Annotated[items, Field(min_length=min_items, max_length=profile.review_items)]


@functools.cache
def review_form(profile: OutputProfile) -> type[ReviewForm]:
    """The review form with ``profile``'s bounds: what a reviewer's reply must validate as."""
    lists = {
        name: (_bounded_items(profile, min_items=1), ReviewForm.model_fields[name])
        for name in ("Strengths", "Weaknesses")
    } | {
        name: (_bounded_items(profile, min_items=0), ReviewForm.model_fields[name])
        for name in ("Questions", "Limitations")
    }
    fields: dict[str, Any] = {
        "Summary": (
            _bounded_text(profile.review_summary_chars),
            ReviewForm.model_fields["Summary"],
        ),
        "Ethical_Concerns_Text": (
            str,
            Field("", max_length=profile.review_item_chars, description="Which, if any."),
        ),
        **lists,
    }
    return create_model("ReviewForm", __base__=ReviewForm, __doc__=ReviewForm.__doc__, **fields)


@functools.cache
def reflection_reply(profile: OutputProfile) -> type[ReflectionReply]:
    """The reflection reply with ``profile``'s bounds on its thought and its review."""
    fields: dict[str, Any] = {
        "thought": (
            str,
            Field(max_length=profile.review_thought_chars, description="What to change and why."),
        ),
        "review": (review_form(profile), ...),
    }
    return create_model(
        "ReflectionReply", __base__=ReflectionReply, __doc__=ReflectionReply.__doc__, **fields
    )


@functools.cache
def meta_review_reply(profile: OutputProfile) -> type[MetaReviewReply]:
    """The meta-review reply with ``profile``'s bounds."""
    base = MetaReviewReply.model_fields
    fields: dict[str, Any] = {
        "summary": (_bounded_text(profile.review_summary_chars), base["summary"]),
        "strengths": (_bounded_items(profile, min_items=1), base["strengths"]),
        "weaknesses": (_bounded_items(profile, min_items=1), base["weaknesses"]),
        "disagreements": (_bounded_items(profile, min_items=0), base["disagreements"]),
    }
    return create_model(
        "MetaReviewReply", __base__=MetaReviewReply, __doc__=MetaReviewReply.__doc__, **fields
    )


class ReviewerResult(BaseModel):
    """Everything one reviewer produced: its first review and each reflection."""

    index: int = Field(ge=0)
    model: str
    persona: str
    rounds: list[ReviewForm] = Field(min_length=1, description="Review, then each reflection.")
    thoughts: list[str] = Field(default_factory=list, description="One per reflection round.")
    stopped_early: bool = Field(description="The reviewer said done before the round limit.")

    @property
    def final(self) -> ReviewForm:
        """The review after the last reflection."""
        return self.rounds[-1]


class ReviewerFailure(BaseModel):
    """A reviewer that produced no valid review; the ensemble goes on without it."""

    index: int = Field(ge=0)
    model: str
    error: str


class ScoreStats(BaseModel):
    """Mean and spread of one score across reviewers."""

    mean: float
    std: float = Field(ge=0)
    min: int
    max: int
    values: list[int]


class Decision(BaseModel):
    """Accept/reject by threshold on mean Overall, and an accept probability."""

    decision: Literal["accept", "reject"]
    overall_mean: float
    threshold: float
    probability: float | None = Field(None, ge=0, le=1)
    calibrated: bool = Field(description="False until a fitted calibration.json is used.")
    provenance: str = Field(description="Where the threshold and probability come from.")


class InjectionFlag(BaseModel):
    """Text in the paper that looks like instructions to the reviewer, or hidden text."""

    kind: Literal["instruction", "hidden_text"]
    page: int | None = None
    excerpt: str = Field(max_length=300)
    reason: str


class CutRecord(BaseModel):
    """A part of the paper left out of what the reviewers saw, and why."""

    section: str
    chars: int = Field(ge=0)
    reason: str


class Section(BaseModel):
    """A heading and the text under it."""

    title: str
    text: str


class PaperText(BaseModel):
    """The text of a paper as extracted (from a PDF or given directly)."""

    source: str = Field(description="File path or an id.")
    title: str = ""
    pages: int | None = None
    text: str
    sections: list[Section] = Field(default_factory=list)
    page_texts: list[str] = Field(
        default_factory=list,
        description="Each page's text (running headers and footers removed), for the checks "
        "that report a page; empty for text given directly.",
    )


class Excerpt(BaseModel):
    """What the reviewers were shown, within the model's context budget, and what was cut."""

    text: str
    budget_tokens: int
    estimated_tokens: int
    kept_sections: list[str]
    cut: list[CutRecord] = Field(default_factory=list)

    @property
    def truncated(self) -> bool:
        """Whether anything was left out."""
        return bool(self.cut)


class PaperInfo(BaseModel):
    """Where the reviewed paper came from."""

    source: str
    title: str = ""
    pages: int | None = None
    chars: int = Field(ge=0)


class ReviewReport(BaseModel):
    """Everything a review run produced: the content of ``review.json``."""

    paper: PaperInfo
    shown: Excerpt = Field(description="What the reviewers saw (text omitted in review.json).")
    injection_flags: list[InjectionFlag] = Field(default_factory=list)
    reviewers: list[ReviewerResult]
    failures: list[ReviewerFailure] = Field(default_factory=list)
    meta_review: MetaReviewReply | None
    meta_review_error: str | None = None
    scores: dict[str, ScoreStats] = Field(description="Per score field, across final reviews.")
    decision: Decision
    usage: dict[str, float | int] = Field(description="Calls, tokens, cost, cache hits.")
    ledger: list[dict[str, object]] = Field(default_factory=list, description="Every LLM call.")
    checks: ChecksReport | None = Field(
        None,
        description="What the checks found (references, numbers, cross-references, prior "
        "work); None when checks.enabled was off. Evidence for reviewers, never a score.",
    )
    settings: dict[str, object] = Field(default_factory=dict, description="Review settings used.")
    models: list[str] = Field(default_factory=list)
    wall_time_s: float = Field(ge=0)
