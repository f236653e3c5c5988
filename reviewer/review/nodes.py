"""The review graph's nodes and state (graphs/review.py wires them): paper → excerpt →
N concurrent reviewers → meta-review → decision.

    START → load_paper → prepare_excerpt ─Send×N→ review_one ─→ write_meta_review → decide → END

Dependencies (gateway, settings, calibration, few-shot examples, progress callback) arrive
as LangGraph's runtime context (``ReviewDeps``); tests swap the gateway's backend.
"""

from __future__ import annotations

import operator
from pathlib import Path
from typing import Annotated, Any, TypedDict

from langgraph.runtime import Runtime
from langgraph.types import Send

from gateway.errors import AutoscholarError, ContextLengthError, StructuredOutputError
from reviewer.review.aggregate import aggregate_scores
from reviewer.review.decision import decide
from reviewer.review.excerpt import budget_excerpt
from reviewer.review.form import (
    CutRecord,
    Decision,
    Excerpt,
    InjectionFlag,
    MetaReviewReply,
    PaperInfo,
    PaperText,
    ReviewerFailure,
    ReviewerResult,
    ReviewReport,
    ScoreStats,
)
from reviewer.review.injection import find_injections, redact_paper
from reviewer.review.pdf_child import read_pdf
from reviewer.review.pdf_text import paper_from_text
from reviewer.review.reviewing import (
    ReviewDeps,
    excerpt_budget,
    meta_review,
    reviewer_model,
    run_reviewer,
)

SHRINK_ON_OVERFLOW = 0.6


class ReviewInput(TypedDict, total=False):
    """Either a PDF path, or a paper's text with an id (calibration uses text)."""

    pdf_path: str
    paper_text: str
    paper_id: str
    title: str


class ReviewState(ReviewInput, total=False):
    """Everything the graph accumulates; ``reviews`` is gathered from parallel reviewers."""

    paper: PaperText
    flags: list[InjectionFlag]
    shown: Excerpt
    reviews: Annotated[list[ReviewerResult], operator.add]
    failures: Annotated[list[ReviewerFailure], operator.add]
    meta: MetaReviewReply | None
    meta_error: str | None
    scores: dict[str, ScoreStats]
    decision: Decision


class ReviewerTask(TypedDict):
    """What one reviewer branch receives through ``Send``."""

    index: int
    shown: Excerpt
    paper: PaperText


def load_paper(state: ReviewState, runtime: Runtime[ReviewDeps]) -> dict[str, Any]:
    """Extract the paper's text and flag instruction-like or hidden text in it."""
    limits = runtime.context.settings.review
    flags: list[InjectionFlag] = []
    if state.get("pdf_path"):
        reading = read_pdf(
            Path(state["pdf_path"]),
            max_pages=limits.max_pages,
            max_mb=limits.max_pdf_mb,
            timeout_s=limits.pdf_timeout_s,
            memory_mb=limits.pdf_memory_mb,
        )
        paper, flags = reading.paper, [*reading.flags]
    else:
        source = state.get("paper_id") or "text"
        paper = paper_from_text(source, state.get("paper_text", ""), state.get("title", ""))
    flags += find_injections(paper.text)
    return {"paper": paper, "flags": flags}


def prepare_excerpt(state: ReviewState, runtime: Runtime[ReviewDeps]) -> dict[str, Any]:
    """What reviewers see: flagged text removed, cut to the context budget, cuts recorded."""
    paper = redact_paper(state["paper"], state.get("flags", []))
    return {"shown": budget_excerpt(paper, excerpt_budget(runtime.context))}


def fan_out(state: ReviewState, runtime: Runtime[ReviewDeps]) -> list[Send]:
    """One concurrent branch per reviewer."""
    count = runtime.context.settings.review.num_reviewers
    paper = redact_paper(state["paper"], state.get("flags", []))
    return [
        Send("review_one", ReviewerTask(index=i, shown=state["shown"], paper=paper))
        for i in range(count)
    ]


class NoReviewsError(AutoscholarError):
    """Every reviewer failed; there is nothing to aggregate."""


def review_one(task: ReviewerTask, runtime: Runtime[ReviewDeps]) -> dict[str, Any]:
    """One reviewer; a reviewer whose replies never validate is recorded, not fatal."""
    deps = runtime.context
    try:
        return {"reviews": [_review_within_context(task, deps)]}
    except StructuredOutputError as exc:
        model = reviewer_model(deps.settings, task["index"])
        return {"failures": [ReviewerFailure(index=task["index"], model=model, error=str(exc))]}


def _review_within_context(task: ReviewerTask, deps: ReviewDeps) -> ReviewerResult:
    """If the prompt still overflows the context, retry once on a shorter excerpt."""
    try:
        return run_reviewer(task["index"], task["shown"], deps)
    except ContextLengthError:
        budget = int(task["shown"].budget_tokens * SHRINK_ON_OVERFLOW)
        shorter = budget_excerpt(task["paper"], budget)
        note = CutRecord(
            section="(whole excerpt)",
            chars=len(task["shown"].text) - len(shorter.text),
            reason="the model reported a context overflow; excerpt shrunk and retried",
        )
        shorter = shorter.model_copy(update={"cut": [*shorter.cut, note]})
        return run_reviewer(task["index"], shorter, deps)


def write_meta_review(state: ReviewState, runtime: Runtime[ReviewDeps]) -> dict[str, Any]:
    """The area chair's consensus text over all reviews; a failure here keeps the reviews."""
    reviews = state.get("reviews", [])
    if not reviews:
        errors = "; ".join(f.error[:200] for f in state.get("failures", []))
        raise NoReviewsError(f"{state['paper'].source}: every reviewer failed ({errors})")
    try:
        return {"meta": meta_review(reviews, state["paper"].title, runtime.context)}
    except StructuredOutputError as exc:
        return {"meta": None, "meta_error": str(exc)}


def decide_scores(state: ReviewState, runtime: Runtime[ReviewDeps]) -> dict[str, Any]:
    """Aggregate the scores and decide by threshold (and calibrator, when there is one)."""
    scores = aggregate_scores(state["reviews"])
    deps = runtime.context
    decision = decide(
        scores["Overall"].mean, deps.calibration, deps.settings.review.accept_threshold
    )
    return {"scores": scores, "decision": decision}


def assemble_report(state: dict[str, Any], deps: ReviewDeps, wall_time_s: float) -> ReviewReport:
    """The graph's final state plus the ledger and settings, as one validated record."""
    paper = state["paper"]
    ledger = deps.gateway.ledger
    totals = ledger.totals()
    reviews = sorted(state["reviews"], key=lambda r: r.index)
    return ReviewReport(
        paper=PaperInfo(
            source=paper.source, title=paper.title, pages=paper.pages, chars=len(paper.text)
        ),
        shown=state["shown"],
        injection_flags=state.get("flags", []),
        reviewers=reviews,
        failures=sorted(state.get("failures", []), key=lambda f: f.index),
        meta_review=state.get("meta"),
        meta_review_error=state.get("meta_error"),
        scores=state["scores"],
        decision=state["decision"],
        usage={
            "calls": totals.calls,
            "cache_hits": totals.cache_hits,
            "prompt_tokens": totals.prompt_tokens,
            "completion_tokens": totals.completion_tokens,
            "cost_usd": totals.cost_usd,
            "cached_prompt_tokens": totals.cached_prompt_tokens,
            "cache_savings_usd": totals.cache_savings_usd,
        },
        ledger=[e.model_dump(mode="json") for e in ledger.entries],
        settings=deps.settings.review.model_dump(mode="json"),
        models=sorted({r.model for r in reviews} | {deps.settings.llm.models.meta_reviewer}),
        wall_time_s=wall_time_s,
    )
