"""Run the review graph on one paper and assemble what it produced into a ReviewReport."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from gateway.ledger import Ledger
from graphs.review import ReviewInput, build_review_graph
from reviewer.form import PaperInfo, ReviewReport
from reviewer.reviewing import ReviewDeps, reviewer_model


def review(inputs: ReviewInput, deps: ReviewDeps, ledger_path: Path | None = None) -> ReviewReport:
    """Review one paper (a PDF path or text) with its own ledger; return the full report."""
    ledger = Ledger(ledger_path)
    paper_deps = replace(deps, gateway=deps.gateway.with_ledger(ledger))
    start = time.perf_counter()
    state = build_review_graph().invoke(inputs, config=graph_config(deps), context=paper_deps)
    return assemble_report(state, paper_deps, time.perf_counter() - start)


def graph_config(deps: ReviewDeps) -> dict[str, Any]:
    """Reviewers run concurrently, except when they all share the one embedded server.

    The embedded llama.cpp server answers one request at a time and reuses the KV cache of
    the longest prefix shared with the previous request. Run one after another, each
    reviewer's reflections follow its own review and every reviewer after the first starts
    on the paper prefix already processed; interleaved, they would evict each other's cache.
    """
    settings = deps.settings
    models = {reviewer_model(settings, i) for i in range(settings.review.num_reviewers)}
    return {"max_concurrency": 1} if models == {"local"} else {}


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
