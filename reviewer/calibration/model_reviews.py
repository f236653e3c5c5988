"""Review the calibration papers with the review graph, one cached record per paper.

Each paper's record is written to ``reviews/<paper_id>.json`` as soon as it is done, and
papers already there are skipped, so an interrupted run resumes where it stopped. A record
made with other settings is never reused silently: the run stops and says so.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from pydantic import BaseModel, Field, ValidationError

from core.settings import Settings
from gateway.errors import BadRequestError, ContextLengthError, StructuredOutputError
from reviewer.calibration.data import CalibrationPaper
from reviewer.calibration.errors import CalibrationError
from reviewer.review.errors import ReviewInputError
from reviewer.review.form import ReviewForm, ReviewReport
from reviewer.review.nodes import NoReviewsError, ReviewInput
from reviewer.review.reviewing import ReviewDeps

# A paper the model cannot review (every reviewer's replies unparseable after re-asks, a prompt
# that does not fit) is left out and reported; any other error (no server, bad key, budget)
# stops the run.
PAPER_ERRORS = (
    NoReviewsError,
    StructuredOutputError,
    ContextLengthError,
    BadRequestError,
    ReviewInputError,
)
PaperStatus = Literal["cached", "reviewed", "failed"]


class PaperReviewRecord(BaseModel):
    """What calibration keeps of one paper's ReviewReport."""

    paper_id: str
    overall_mean: float = Field(ge=1, le=10)
    overall_values: list[int]
    failed_reviewers: int = Field(0, ge=0, description="Reviewers without a valid review.")
    final_reviews: list[ReviewForm]
    settings: dict[str, Any] = Field(description="The settings key the review was made with.")
    models: list[str]
    usage: dict[str, float | int]
    excerpt_tokens: int
    truncated: bool
    wall_time_s: float


def settings_key(settings: Settings) -> dict[str, Any]:
    """The settings that change a review's scores; a cached review must match them."""
    review = settings.review.model_dump(
        mode="json",
        exclude={"calibration_path", "max_concurrent_papers", "accept_threshold"},
    )
    key: dict[str, Any] = {
        "review": review,
        "reviewer_model": settings.llm.models.reviewer,
        "profile": settings.profile(settings.llm.models.reviewer).model_dump(mode="json"),
    }
    if "local" in {settings.llm.models.reviewer, *settings.review.models}:
        key["local"] = settings.local.model_dump(mode="json", include={"gguf_path", "quantization"})
    return key


def record_from_report(
    paper_id: str, report: ReviewReport, key: dict[str, Any]
) -> PaperReviewRecord:
    """The calibration record of one review run."""
    overall = report.scores["Overall"]
    return PaperReviewRecord(
        paper_id=paper_id,
        overall_mean=overall.mean,
        overall_values=overall.values,
        failed_reviewers=len(report.failures),
        final_reviews=[r.final for r in report.reviewers],
        settings=key,
        models=report.models,
        usage=report.usage,
        excerpt_tokens=report.shown.estimated_tokens,
        truncated=report.shown.truncated,
        wall_time_s=report.wall_time_s,
    )


def load_cached(path: Path, key: dict[str, Any]) -> PaperReviewRecord | None:
    """The record at ``path`` if there is one; an error if it is unreadable or differs in key."""
    if not path.is_file():
        return None
    try:
        record = PaperReviewRecord.model_validate_json(path.read_text(encoding="utf-8"))
    except ValidationError as exc:
        raise CalibrationError(
            f"{path}: not a valid cached review ({exc.error_count()} errors); delete it to redo."
        ) from exc
    if record.settings != key:
        differ = sorted(k for k in {*key, *record.settings} if key.get(k) != record.settings.get(k))
        raise CalibrationError(
            f"{path} was made with other settings ({', '.join(differ)} differ); "
            "use another --out folder or delete its reviews/ to start again."
        )
    return record


def write_record(path: Path, record: PaperReviewRecord) -> None:
    """Write atomically, so an interrupted run never leaves half a record behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".json.part")
    partial.write_text(json.dumps(record.model_dump(mode="json"), indent=1), encoding="utf-8")
    partial.replace(path)


@dataclass
class ModelReviews:
    """Records by paper id, the papers that failed (with why), and counts and time."""

    records: dict[str, PaperReviewRecord] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)
    cached: int = 0
    reviewed: int = 0
    wall_time_s: float = 0.0


class PaperReviewer(Protocol):
    """Reviews one paper with its own ledger (the entry point passes the review graph's
    ``review_paper``; calibration never imports graphs)."""

    def __call__(self, inputs: ReviewInput, deps: ReviewDeps) -> ReviewReport:
        """The paper's full report."""
        ...


def review_papers(
    papers: list[CalibrationPaper],
    deps: ReviewDeps,
    reviews_dir: Path,
    review: PaperReviewer,
    on_paper: Callable[[str, PaperStatus, str], None] | None = None,
) -> ModelReviews:
    """Review every paper in turn (the embedded server is single-threaded), caching each."""
    key = settings_key(deps.settings)
    result = ModelReviews()
    start = time.perf_counter()
    for paper in papers:
        path = reviews_dir / f"{paper.id}.json"
        status, detail = _one(paper, deps, review, path, key, result)
        if on_paper is not None:
            on_paper(paper.id, status, detail)
    result.wall_time_s = time.perf_counter() - start
    return result


def _one(
    paper: CalibrationPaper,
    deps: ReviewDeps,
    review: PaperReviewer,
    path: Path,
    key: dict[str, Any],
    result: ModelReviews,
) -> tuple[PaperStatus, str]:
    cached = load_cached(path, key)
    if cached is not None:
        result.records[paper.id] = cached
        result.cached += 1
        return "cached", f"Overall {cached.overall_mean:.2f}"
    inputs = ReviewInput(paper_text=paper.full_text, paper_id=paper.id, title=paper.title)
    try:
        report = review(inputs, deps)
    except PAPER_ERRORS as exc:
        result.failures[paper.id] = f"{type(exc).__name__}: {exc}"
        return "failed", result.failures[paper.id]
    record = record_from_report(paper.id, report, key)
    write_record(path, record)
    result.records[paper.id] = record
    result.reviewed += 1
    return "reviewed", f"Overall {record.overall_mean:.2f} in {record.wall_time_s:.0f} s"
