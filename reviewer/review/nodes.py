"""The review graph's nodes and state (graphs/review.py wires them): paper → checks →
excerpt → N concurrent reviewers → meta-review → decision.

    START → load_paper → run_checks → prepare_excerpt ─Send×N→ review_one
          → write_meta_review → decide → END

Dependencies (gateway, settings, calibration, few-shot examples, literature, progress
callback) arrive as LangGraph's runtime context (``ReviewDeps``); tests swap the gateway's
backend. The checks' findings reach the reviewers as evidence and the report as its Checks
section; no path leads from them to a score.
"""

from __future__ import annotations

import operator
from pathlib import Path
from typing import Annotated, Any, NotRequired, TypedDict

from langgraph.runtime import Runtime
from langgraph.types import Send

from gateway.errors import AutoscholarError, ContextLengthError, StructuredOutputError
from reviewer.checks.models import ChecksReport, Finding, PriorWork
from reviewer.checks.run import evidence_block, run_checks
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
from reviewer.review.injection import find_injections, redact, redact_paper
from reviewer.review.pdf_child import read_pdf
from reviewer.review.pdf_text import paper_from_text
from reviewer.review.reviewing import (
    ReviewDeps,
    evidence_chars,
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
    checks: ChecksReport
    evidence: str
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
    evidence: NotRequired[str]


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


def check_paper(state: ReviewState, runtime: Runtime[ReviewDeps]) -> dict[str, Any]:
    """The checks (no LLM), when ``checks.enabled``: references, citations, numbers,
    cross-references and the closest prior work, from the paper's page texts."""
    deps = runtime.context
    if not deps.settings.checks.enabled:
        return {}
    paper = state["paper"]
    pages = paper.page_texts or [paper.text]
    report = run_checks(paper.source, paper.title, pages, deps.literature, deps.settings.checks)
    if not paper.page_texts:  # text given directly: one "page" whose number means nothing
        findings = [f.model_copy(update={"page": None}) for f in report.findings]
        notes = [*report.notes, "pages unknown (the paper was given as text)"]
        report = report.model_copy(update={"findings": findings, "notes": notes, "pages": 0})
    return {"checks": report}


def prepare_excerpt(state: ReviewState, runtime: Runtime[ReviewDeps]) -> dict[str, Any]:
    """What reviewers see: flagged text removed, cut to the context budget, cuts recorded;
    the checks' evidence block (as flagged text removed) takes its room from the paper's."""
    deps = runtime.context
    flags = state.get("flags", [])
    paper = redact_paper(state["paper"], flags)
    checks = state.get("checks")
    evidence = ""
    if checks is not None:
        evidence = evidence_block(redact_checks(checks, flags), evidence_chars(deps.settings))
    shown = budget_excerpt(paper, excerpt_budget(deps, evidence))
    return {"shown": shown, "evidence": evidence}


def redact_checks(report: ChecksReport, flags: list[InjectionFlag]) -> ChecksReport:
    """``report`` with flagged text (instructions, hidden text) removed from every text that
    quotes the paper, as it is from the paper the reviewers see."""
    if not flags:
        return report

    def clean(finding: Finding) -> Finding:
        texts = {"message": finding.message, "evidence": finding.evidence}
        return finding.model_copy(update={k: redact(v, flags) for k, v in texts.items()})

    def clean_prior(paper: PriorWork) -> PriorWork:
        return paper.model_copy(update={"title": redact(paper.title, flags)})

    return report.model_copy(
        update={
            "findings": [clean(f) for f in report.findings],
            "prior_work": [clean_prior(p) for p in report.prior_work],
            "notes": [redact(note, flags) for note in report.notes],
        }
    )


def fan_out(state: ReviewState, runtime: Runtime[ReviewDeps]) -> list[Send]:
    """One concurrent branch per reviewer."""
    count = runtime.context.settings.review.num_reviewers
    paper = redact_paper(state["paper"], state.get("flags", []))
    evidence = state.get("evidence", "")
    return [
        Send(
            "review_one",
            ReviewerTask(index=i, shown=state["shown"], paper=paper, evidence=evidence),
        )
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
    evidence = task.get("evidence", "")
    try:
        return run_reviewer(task["index"], task["shown"], deps, evidence)
    except ContextLengthError:
        budget = int(task["shown"].budget_tokens * SHRINK_ON_OVERFLOW)
        shorter = budget_excerpt(task["paper"], budget)
        note = CutRecord(
            section="(whole excerpt)",
            chars=len(task["shown"].text) - len(shorter.text),
            reason="the model reported a context overflow; excerpt shrunk and retried",
        )
        shorter = shorter.model_copy(update={"cut": [*shorter.cut, note]})
        return run_reviewer(task["index"], shorter, deps, evidence)


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
        checks=state.get("checks"),
        settings=deps.settings.review.model_dump(mode="json"),
        models=sorted({r.model for r in reviews} | {deps.settings.llm.models.meta_reviewer}),
        wall_time_s=wall_time_s,
    )
