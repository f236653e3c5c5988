"""Numeric aggregation of the ensemble's final reviews: mean and spread per score."""

from __future__ import annotations

import statistics

from reviewer.review.form import SCORE_FIELDS, ReviewerResult, ScoreStats


def score_stats(values: list[int]) -> ScoreStats:
    """Mean, population standard deviation, range and the values themselves."""
    if not values:
        raise ValueError("score_stats needs at least one value")
    return ScoreStats(
        mean=statistics.fmean(values),
        std=statistics.pstdev(values),
        min=min(values),
        max=max(values),
        values=list(values),
    )


def aggregate_scores(results: list[ReviewerResult]) -> dict[str, ScoreStats]:
    """Per score field, the statistics over every reviewer's final review (ordered by index)."""
    ordered = sorted(results, key=lambda r: r.index)
    return {
        name: score_stats([int(getattr(r.final, name)) for r in ordered]) for name in SCORE_FIELDS
    }
