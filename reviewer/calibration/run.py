"""Both modes of ``reviewer calibrate``: from stored reviews, or by running the review graph.

Either way the reviewer's aggregated Overall per paper is scored on held-out folds beside
baselines from the same papers, a threshold and calibrator are fitted on all papers for
use, and calibration.json, report.md and two PNGs are written.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from core.resources import CHECKOUT, shipped_path
from reviewer.calibration import baselines as b
from reviewer.calibration.data import (
    CalibrationPaper,
    labels,
    load_papers,
    load_reviews,
    select_papers,
)
from reviewer.calibration.evaluate import Row, RowSpec, score_row, score_row_spec
from reviewer.calibration.fit import (
    CalibratorKind,
    CrossValidated,
    best_threshold,
    cross_validate,
    fit_calibrator,
)
from reviewer.calibration.metrics import FloatArray
from reviewer.calibration.model_reviews import (
    ModelReviews,
    PaperReviewer,
    PaperStatus,
    review_papers,
)
from reviewer.calibration.report import CalibrationFile, Figures, write_outputs
from reviewer.review.reviewing import ReviewDeps

# The real ICLR 2022 data is never shipped: the project's CI has it in ../shared beside the
# checkout; anyone else passes --data or sets review.calibration_data.
DEFAULT_DATA = CHECKOUT.parent / "shared" / "data" / "iclr2022" / "calibration.jsonl"
# 20 synthetic records in the same layout, shipped so the whole path runs anywhere (--data sample).
SAMPLE_DATA = shipped_path("samples", "calibration", "iclr_small.jsonl")
PEER_FILE = "ai-scientist-reviews_gpt-4o-2024-05-13_fewshot_1_reflect_5_ensemble_5.csv"
PEER_LABEL = "AI Scientist GPT-4o (stored reviews)"
DEFAULT_RULE = 6.0  # review.accept_threshold's default: "Overall >= 6 means accept"


@dataclass(frozen=True)
class CalibrateOptions:
    """What to calibrate on and how; every field has a command-line flag."""

    data: Path = DEFAULT_DATA
    out_dir: Path = Path("calibration")
    limit: int | None = None
    seed: int = 0
    calibrator: CalibratorKind = "logistic"
    n_resamples: int = 1000
    human_draws: int = 20
    peer_reviews: Path | None = None  # None: the stored AI Scientist CSV beside --data, if any


@dataclass(frozen=True)
class ReviewerSource:
    """Who made the scores being calibrated, and with which settings."""

    label: str
    model: str
    settings: dict[str, Any]
    reviews_file: Path | None = None


@dataclass
class Outcome:
    """What a calibration run produced."""

    rows: list[Row]
    calibration: CalibrationFile
    paths: dict[str, Path]
    notes: list[str] = field(default_factory=list)


def calibrate_from_reviews(options: CalibrateOptions, reviews: Path) -> Outcome:
    """Fit and score a reviewer from a file of its reviews, without calling any model."""
    papers, scores = load_papers(options.data), load_reviews(reviews)
    covered = [p for p in papers if p.id in scores]
    notes = []
    if len(covered) < len(papers):
        notes.append(
            f"{len(papers) - len(covered)} of {len(papers)} papers have no review in "
            f"{reviews.name} and are left out"
        )
    if unknown := len(set(scores) - {p.id for p in papers}):
        notes.append(f"{unknown} reviews in {reviews.name} are of papers not in the data")
    chosen = select_papers(covered, options.limit, options.seed)
    source = ReviewerSource(
        reviews.stem, "unknown (scores read from a file)", {"reviews": str(reviews)}, reviews
    )
    return evaluate_and_write(chosen, {p.id: scores[p.id] for p in chosen}, source, options, notes)


def calibrate_with_model(
    options: CalibrateOptions,
    deps: ReviewDeps,
    review: PaperReviewer,
    on_paper: Callable[[str, PaperStatus, str], None] | None = None,
) -> tuple[Outcome, ModelReviews]:
    """Review a sample of the papers' full text with ``review`` (cached per paper), then fit
    and score."""
    papers = select_papers(load_papers(options.data), options.limit, options.seed)
    done = review_papers(papers, deps, options.out_dir / "reviews", review, on_paper)
    scores = {pid: r.overall_mean for pid, r in done.records.items()}
    notes = [
        f"{len(done.failures)} paper(s) could not be reviewed and are left out: "
        + "; ".join(f"{k}: {v[:120]}" for k, v in done.failures.items())
    ]
    notes = notes if done.failures else []
    notes.append(
        f"{done.reviewed} paper(s) reviewed and {done.cached} read from "
        f"{options.out_dir / 'reviews'} in {done.wall_time_s:.0f} s"
    )
    settings = deps.settings.review
    model = ", ".join(settings.models) or deps.settings.llm.models.reviewer
    source = ReviewerSource(
        label=f"{model} ×{settings.num_reviewers}, {settings.num_reflections} reflections",
        model=model,
        settings={
            "preset": deps.settings.preset,
            "review": settings.model_dump(mode="json"),
            "llm_models": deps.settings.llm.models.model_dump(),
        },
    )
    kept = [p for p in papers if p.id in scores]
    return evaluate_and_write(kept, scores, source, options, notes), done


def evaluate_and_write(
    papers: list[CalibrationPaper],
    scores: dict[str, float],
    source: ReviewerSource,
    options: CalibrateOptions,
    notes: list[str],
) -> Outcome:
    """Held-out rows for the reviewer and every baseline, the final fit, and the files."""
    y = labels(papers)
    score = np.array([scores[p.id] for p in papers], dtype=np.float64)
    cv = cross_validate(y, score, options.calibrator, options.seed)
    specs = [*reviewer_specs(source.label, y, score, cv, papers, options)]
    specs += peer_specs(papers, y, source, options, notes)
    specs += baseline_specs(papers, y, options)
    rows = [score_row(s, n_resamples=options.n_resamples, seed=options.seed) for s in specs]
    calibration = final_fit(y, score, source, options, rows, cv.k, notes)
    figures = Figures(
        roc=[
            (source.label, y, score),
            ("text length (full text)", y, _lengths(papers)),
            ("human: mean of all ratings", y, b.mean_ratings(papers)),
        ],
        reliability=(y, cv.probability),
    )
    paths = write_outputs(options.out_dir, calibration, rows, figures, notes)
    return Outcome(rows=rows, calibration=calibration, paths=paths, notes=notes)


def _lengths(papers: list[CalibrationPaper]) -> FloatArray:
    return np.array([len(p.full_text) for p in papers], dtype=np.float64)


def reviewer_specs(
    label: str,
    y: FloatArray,
    score: FloatArray,
    cv: CrossValidated,
    papers: list[CalibrationPaper],
    options: CalibrateOptions,
) -> list[RowSpec]:
    """The calibrated reviewer with its CV threshold, and with the default Overall ≥ 6 rule."""
    target = b.mean_ratings(papers)
    kind, seed = options.calibrator, options.seed
    return [
        score_row_spec(label, y, score, target, kind=kind, seed=seed, cv=cv),
        score_row_spec(
            label, y, score, target, kind=kind, seed=seed, cv=cv, fixed_threshold=DEFAULT_RULE
        ),
    ]


def peer_path(options: CalibrateOptions, source: ReviewerSource) -> Path | None:
    """The stored peer reviews to compare with, unless absent or the reviewer itself."""
    path = options.peer_reviews or options.data.parent / PEER_FILE
    if not path.is_file():
        return None
    if source.reviews_file is not None and source.reviews_file.resolve() == path.resolve():
        return None
    return path


def peer_specs(
    papers: list[CalibrationPaper],
    y: FloatArray,
    source: ReviewerSource,
    options: CalibrateOptions,
    notes: list[str],
) -> list[RowSpec]:
    """The stored AI Scientist reviews on the covered papers, with the Overall ≥ 6 rule."""
    path = peer_path(options, source)
    if path is None:
        return []
    peer = load_reviews(path)
    keep = np.array([p.id in peer for p in papers])
    if keep.sum() < len(papers):
        notes.append(f"{PEER_LABEL} covers {int(keep.sum())} of {len(papers)} papers")
    sub_y = y[keep]
    if min(sub_y.sum(), sub_y.size - sub_y.sum()) < 2:
        notes.append(f"{PEER_LABEL}: too few covered papers of each class for a row")
        return []
    sub = [p for p in papers if p.id in peer]
    score = np.array([peer[p.id] for p in sub], dtype=np.float64)
    return [
        score_row_spec(
            PEER_LABEL,
            sub_y,
            score,
            b.mean_ratings(sub),
            kind=options.calibrator,
            seed=options.seed,
            fixed_threshold=DEFAULT_RULE,
        )
    ]


def baseline_specs(
    papers: list[CalibrationPaper], y: FloatArray, options: CalibrateOptions
) -> list[RowSpec]:
    """Human reviewers, text length and always-reject on the same papers."""
    kind, seed, target = options.calibrator, options.seed, b.mean_ratings(papers)
    return [
        b.single_reviewer_spec(papers, y, kind=kind, seed=seed, draws=options.human_draws),
        b.mean_rating_spec(papers, y, kind=kind, seed=seed),
        b.length_spec(papers, y, target, kind=kind, seed=seed, body_only=False),
        b.length_spec(papers, y, target, kind=kind, seed=seed, body_only=True),
        b.always_reject_spec(y, kind=kind, seed=seed),
    ]


def final_fit(
    y: FloatArray,
    score: FloatArray,
    source: ReviewerSource,
    options: CalibrateOptions,
    rows: list[Row],
    k: int,
    notes: list[str],
) -> CalibrationFile:
    """Threshold and calibrator fitted on all papers, with the held-out figures beside them."""
    raw = best_threshold(y, score)
    threshold = float(min(max(raw, 1.0), 10.0))
    if threshold != raw:
        notes.append(f"the best threshold {raw:g} lies off the 1-10 scale; saved as {threshold:g}")
    ba, auc = rows[0].metrics["balanced_accuracy"], rows[0].metrics["roc_auc"]
    if auc.lo is not None and auc.lo <= 0.5:
        notes.append(
            f"the held-out ROC-AUC interval of {source.label} includes 0.5: its scores show no "
            "signal on these papers, so the fitted threshold and calibrator mean little"
        )
    provenance = (
        f"reviewer calibrate: {source.label} on {y.size} papers of {options.data.name} "
        f"({int(y.sum())} accept); threshold maximising balanced accuracy, "
        f"{options.calibrator} calibrator; held-out ({k}-fold) balanced accuracy "
        f"{_fmt(ba.value)} [{_fmt(ba.lo)}, {_fmt(ba.hi)}], ROC-AUC {_fmt(auc.value)}"
    )
    return CalibrationFile(
        threshold=threshold,
        calibrator=fit_calibrator(options.calibrator, y, score),
        provenance=provenance,
        model=source.model,
        settings=source.settings,
        data={
            "path": str(options.data),
            "n_papers": int(y.size),
            "n_accept": int(y.sum()),
            "limit": options.limit,
            "seed": options.seed,
        },
        cv={
            "k": k,
            "seed": options.seed,
            "bootstrap_resamples": options.n_resamples,
            "rows": [r.model_dump(mode="json") for r in rows],
            "notes": notes,
        },
    )


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"
