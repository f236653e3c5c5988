"""Baselines computed from the same papers: human reviewers, text length, always-reject.

The single random human reviewer (rating ≥ 6 votes accept) uses the exact expectation over
each paper's reviewers where the metric is linear in the votes or pairs (balanced accuracy,
accuracy, FPR, FNR, ROC-AUC; F1 from the expected confusion matrix), as
``human_baseline.json`` does. Spearman, Brier and ECE are means over seeded draws of one
reviewer per paper.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from reviewer.calibration import metrics as m
from reviewer.calibration.data import CalibrationPaper
from reviewer.calibration.errors import UndefinedMetricError
from reviewer.calibration.evaluate import RowSpec, Statistic, score_row_spec, standard_statistics
from reviewer.calibration.fit import CalibratorKind, cross_validate
from reviewer.calibration.metrics import FloatArray, IndexArray

ACCEPT_RATING = 6
RATING_VALUES = np.arange(1, 11)


def mean_ratings(papers: list[CalibrationPaper]) -> FloatArray:
    """Each paper's mean human rating (the Spearman target)."""
    return np.array([np.mean(p.ratings) for p in papers], dtype=np.float64)


def vote_shares(papers: list[CalibrationPaper]) -> FloatArray:
    """Each paper's share of reviewers rating it ≥ 6: a random reviewer's expected vote."""
    return np.array([np.mean(np.array(p.ratings) >= ACCEPT_RATING) for p in papers])


def rating_distributions(papers: list[CalibrationPaper]) -> FloatArray:
    """Row i: the share of paper i's reviewers giving each rating 1..10."""
    dist = np.zeros((len(papers), RATING_VALUES.size))
    for i, paper in enumerate(papers):
        for rating in paper.ratings:
            dist[i, rating - 1] += 1 / len(paper.ratings)
    return dist


def pairwise_win_matrix(papers: list[CalibrationPaper]) -> FloatArray:
    """K[i, j] = P(rating of i > rating of j) + P(equal) / 2, one random reviewer each."""
    dist = rating_distributions(papers)
    wins = (RATING_VALUES[:, None] > RATING_VALUES[None, :]).astype(np.float64)
    wins += 0.5 * np.eye(RATING_VALUES.size)
    return dist @ wins @ dist.T


def expected_auc(wins: FloatArray, y: FloatArray, idx: IndexArray) -> float:
    """Exact expected ROC-AUC of one random reviewer's rating over the papers ``idx``."""
    positives, negatives = idx[y[idx] == 1], idx[y[idx] == 0]
    if positives.size == 0 or negatives.size == 0:
        raise UndefinedMetricError("ROC-AUC needs both accepted and rejected papers")
    return float(wins[np.ix_(positives, negatives)].mean())


def rating_draws(
    papers: list[CalibrationPaper], draws: int, seed: int
) -> tuple[FloatArray, FloatArray | None]:
    """``draws`` seeded picks of one rating per paper, and the mean of the paper's others.

    The second array is None when some paper has a single rating (no "others").
    """
    rng = np.random.default_rng(seed)
    picked = np.empty((draws, len(papers)))
    others = np.empty((draws, len(papers)))
    for i, paper in enumerate(papers):
        ratings = np.array(paper.ratings, dtype=np.float64)
        choice = rng.integers(0, ratings.size, size=draws)
        picked[:, i] = ratings[choice]
        if ratings.size > 1:
            others[:, i] = (ratings.sum() - ratings[choice]) / (ratings.size - 1)
    has_others = all(len(p.ratings) > 1 for p in papers)
    return picked, (others if has_others else None)


def _mean_over_draws(
    metric: Callable[[FloatArray, FloatArray], float], first: FloatArray, second: FloatArray
) -> Statistic:
    """A statistic: the mean over draws (rows) of ``metric(first[d, idx], second[d, idx])``."""

    def statistic(idx: IndexArray) -> float:
        return float(np.mean([metric(a[idx], b[idx]) for a, b in zip(first, second, strict=True)]))

    return statistic


def single_reviewer_spec(
    papers: list[CalibrationPaper], y: FloatArray, *, kind: CalibratorKind, seed: int, draws: int
) -> RowSpec:
    """One random human reviewer per paper, rating ≥ 6 as accept, against the decision."""
    stats = standard_statistics(y, None, vote_shares(papers), None, "")
    wins = pairwise_win_matrix(papers)
    stats["roc_auc"] = lambda idx: expected_auc(wins, y, idx)
    picked, others = rating_draws(papers, draws, seed)
    if others is None:
        stats["spearman"] = "a paper has a single rating, so no mean of the others"
    else:
        stats["spearman"] = _mean_over_draws(m.spearman, picked, others)
    probs = np.array([cross_validate(y, draw, kind, seed).probability for draw in picked])
    labels = np.broadcast_to(y, probs.shape)
    stats["brier"] = _mean_over_draws(m.brier, labels, probs)
    stats["ece"] = _mean_over_draws(m.expected_calibration_error, labels, probs)
    notes = [
        "exact expectation over each paper's reviewers for Bal. acc., Acc., FPR, FNR and "
        "ROC-AUC; F1 from the expected confusion matrix",
        f"Spearman (against the mean of the paper's *other* ratings), Brier and ECE "
        f"(CV {kind} calibrator on the drawn rating): mean over {draws} seeded draws",
        "optimistic: the decision was largely made from these ratings",
    ]
    return RowSpec("human: single random reviewer", "rating ≥ 6", y.size, stats, notes)


def mean_rating_spec(
    papers: list[CalibrationPaper], y: FloatArray, *, kind: CalibratorKind, seed: int
) -> RowSpec:
    """The mean of all human ratings as a score (an upper bound: it made the decision)."""
    spec = score_row_spec(
        "human: mean of all ratings",
        y,
        mean_ratings(papers),
        "it is the target",
        kind=kind,
        seed=seed,
    )
    spec.notes.append("optimistic: the decision was largely made from these ratings")
    return spec


def length_spec(
    papers: list[CalibrationPaper],
    y: FloatArray,
    target: FloatArray,
    *,
    kind: CalibratorKind,
    seed: int,
    body_only: bool,
) -> RowSpec:
    """Characters of text as the score: the whole text, or the text before References."""
    if body_only:
        name, score = "text length (before References)", [p.body_chars for p in papers]
    else:
        name, score = "text length (full text)", [len(p.full_text) for p in papers]
    values = np.array(score, dtype=np.float64)
    return score_row_spec(name, y, values, target, kind=kind, seed=seed)


def always_reject_spec(y: FloatArray, *, kind: CalibratorKind, seed: int) -> RowSpec:
    """Reject everything; its probability is the training folds' accept rate."""
    constant = np.zeros(y.size)
    probability = cross_validate(y, constant, kind, seed).probability
    stats = standard_statistics(y, constant, np.zeros(y.size), probability, "constant score")
    notes = ["ROC-AUC of a constant score is 0.5 (every pair tied)"]
    return RowSpec("always reject", "reject all", y.size, stats, notes)
