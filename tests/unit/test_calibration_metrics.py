"""Calibration metrics against hand-computed cases and scikit-learn; edge cases raise."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import brier_score_loss, f1_score, roc_auc_score

from reviewer.calibration import metrics as m
from reviewer.calibration.errors import UndefinedMetricError


@pytest.mark.parametrize(
    ("y", "score", "expected"),
    [
        ([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8], 0.75),
        ([0, 1, 0, 1], [1, 1, 2, 2], 0.5),  # every comparison a tie or a split
        ([0, 0, 1, 1, 1], [1, 2, 2, 3, 3], 5.5 / 6),  # one tied pair counts 1/2
        ([1, 1, 0, 0], [3, 4, 1, 2], 1.0),
        ([1, 1, 0, 0], [1, 2, 3, 4], 0.0),
        ([1, 0, 1, 0], [7, 7, 7, 7], 0.5),  # a constant score
    ],
)
def test_roc_auc_by_hand(y: list[int], score: list[float], expected: float) -> None:
    assert m.roc_auc(y, score) == pytest.approx(expected)


def test_roc_auc_and_f1_and_brier_match_sklearn() -> None:
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 300)
    score = np.round(y + rng.normal(0, 1.2, 300), 1)  # rounding makes many ties
    decision = (score > 0.5).astype(float)
    prob = 1 / (1 + np.exp(-score))
    assert m.roc_auc(y, score) == pytest.approx(roc_auc_score(y, score), abs=1e-12)
    assert m.f1(y, decision) == pytest.approx(f1_score(y, decision), abs=1e-12)
    assert m.brier(y, prob) == pytest.approx(brier_score_loss(y, prob), abs=1e-12)


def test_decision_metrics_by_hand() -> None:
    y, d = [1, 1, 0, 0, 0], [1, 0, 0, 0, 1]
    assert m.balanced_accuracy(y, d) == pytest.approx((1 / 2 + 2 / 3) / 2)
    assert m.accuracy(y, d) == pytest.approx(3 / 5)
    assert m.f1(y, d) == pytest.approx(2 / (2 + 1 + 1))
    assert m.false_positive_rate(y, d) == pytest.approx(1 / 3)
    assert m.false_negative_rate(y, d) == pytest.approx(1 / 2)


def test_fractional_votes_give_the_expected_confusion_matrix() -> None:
    # Paper 1 (accepted): 3 of 4 reviewers vote accept; paper 2 (rejected): 1 of 4.
    assert m.balanced_accuracy([1, 0], [0.75, 0.25]) == pytest.approx(0.75)
    assert m.confusion([1, 0], [0.75, 0.25]) == m.Confusion(tp=0.75, fp=0.25, tn=0.75, fn=0.25)


def test_spearman_by_hand_and_with_ties() -> None:
    assert m.spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert m.spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    # ranks of z: 1, 2, 3.5, 5, 3.5 -> Pearson of ranks, computed by hand
    rx, rz = np.array([1, 2, 3, 4, 5.0]), np.array([1, 2, 3.5, 5, 3.5])
    rx, rz = rx - rx.mean(), rz - rz.mean()
    expected = (rx @ rz) / math.sqrt((rx @ rx) * (rz @ rz))
    assert m.spearman([1, 2, 3, 4, 5], [5, 6, 7, 8, 7]) == pytest.approx(expected)


def test_fractional_votes_give_every_decision_metric_from_expected_counts() -> None:
    # Votes 0.5 and 1 on the two accepted papers, 0.25, 0 and 0 on the three rejected ones:
    # expected TP 1.5, FN 0.5, FP 0.25, TN 2.75.
    y, votes = [1, 1, 0, 0, 0], [0.5, 1, 0.25, 0, 0]
    assert m.confusion(y, votes) == m.Confusion(tp=1.5, fp=0.25, tn=2.75, fn=0.5)
    assert m.accuracy(y, votes) == pytest.approx((1.5 + 2.75) / 5)
    assert m.balanced_accuracy(y, votes) == pytest.approx((1.5 / 2 + 2.75 / 3) / 2)
    assert m.f1(y, votes) == pytest.approx(2 * 1.5 / (2 * 1.5 + 0.25 + 0.5))
    assert m.false_positive_rate(y, votes) == pytest.approx(0.25 / 3)
    assert m.false_negative_rate(y, votes) == pytest.approx(0.5 / 2)


def test_spearman_of_a_known_pair_with_ties_in_both() -> None:
    # Ranks (1.5, 1.5, 3, 4) and (1, 2.5, 2.5, 4), centred: (-1, -1, 0.5, 1.5) and
    # (-1.5, 0, 0, 1.5); products sum to 3.75 and each sum of squares is 4.5.
    assert m.spearman([1, 1, 2, 3], [1, 2, 2, 3]) == pytest.approx(3.75 / 4.5)
    assert m.spearman([3, 2, 1, 1], [1, 2, 2, 3]) == pytest.approx(-3.75 / 4.5)


def test_brier_and_ece_by_hand() -> None:
    assert m.brier([1, 0], [0.8, 0.3]) == pytest.approx((0.04 + 0.09) / 2)
    # one paper per bin: |0.9-1| + |0.1-0| + |0.85-1| + |0.2-1|, over 4 papers
    ece = m.expected_calibration_error([1, 0, 1, 1], [0.9, 0.1, 0.85, 0.2])
    assert ece == pytest.approx((0.1 + 0.1 + 0.15 + 0.8) / 4)
    # two papers in one bin: |mean p 0.25 - rate 0.5|
    assert m.expected_calibration_error([1, 0], [0.22, 0.28]) == pytest.approx(0.25)


def test_reliability_bins_count_every_paper_once_and_close_the_last_bin() -> None:
    bins = m.reliability_bins([1, 0, 1, 0], [0.0, 0.05, 1.0, 0.95])
    assert [(b.lo, b.count) for b in bins] == [(0.0, 2), (pytest.approx(0.9), 2)]


@pytest.mark.parametrize(
    "metric",
    [m.roc_auc, m.balanced_accuracy, m.false_positive_rate],
)
def test_one_class_raises_rather_than_returning_zero(metric: object) -> None:
    with pytest.raises(UndefinedMetricError):
        metric([1, 1, 1], [1, 0, 1])  # type: ignore[operator]


def test_f1_without_any_positive_raises_but_missed_positives_score_zero() -> None:
    with pytest.raises(UndefinedMetricError):
        m.f1([0, 0], [0, 0])
    assert m.f1([1, 0], [0, 0]) == 0.0  # a real 0: an accepted paper was missed


@pytest.mark.parametrize(
    "call",
    [
        lambda: m.roc_auc([0, 1], [0.2, float("nan")]),
        lambda: m.brier([0, 1], [0.2, float("nan")]),
        lambda: m.spearman([1, 2, float("nan")], [1, 2, 3]),
        lambda: m.brier([0, 1], [0.2, 1.2]),  # not a probability
        lambda: m.accuracy([0, 2], [0, 1]),  # not a label
        lambda: m.roc_auc([0, 1, 1], [0.1, 0.2]),  # lengths differ
        lambda: m.spearman([1, 1, 1], [1, 2, 3]),  # constant
    ],
)
def test_bad_or_undefined_inputs_raise(call: object) -> None:
    with pytest.raises(UndefinedMetricError):
        call()  # type: ignore[operator]


def test_roc_points_run_from_origin_to_one_with_ties_as_one_step() -> None:
    fpr, tpr = m.roc_points([0, 1, 0, 1], [1, 1, 2, 2])
    assert fpr.tolist() == [0.0, 0.5, 1.0] and tpr.tolist() == [0.0, 0.5, 1.0]


def test_bootstrap_skips_and_counts_one_class_resamples() -> None:
    y = np.array([1, 0, 0, 0, 0, 0])
    score = np.array([0.9, 0.1, 0.2, 0.3, 0.4, 0.5])
    interval = m.bootstrap_ci(lambda i: m.roc_auc(y[i], score[i]), y.size, n_resamples=200)
    assert interval.skipped > 0 and interval.used + interval.skipped == 200
    assert interval.lo == interval.hi == 1.0


def test_bootstrap_is_seeded_and_raises_when_nothing_is_defined() -> None:
    y = np.array([1, 0, 1, 0, 1, 0, 0, 1])
    score = np.arange(8.0)
    first = m.bootstrap_ci(lambda i: m.roc_auc(y[i], score[i]), 8, n_resamples=100, seed=5)
    again = m.bootstrap_ci(lambda i: m.roc_auc(y[i], score[i]), 8, n_resamples=100, seed=5)
    assert first == again and first.lo <= m.roc_auc(y, score) <= first.hi
    with pytest.raises(UndefinedMetricError):
        m.bootstrap_ci(lambda i: m.roc_auc(np.ones(i.size), score[i]), 8, n_resamples=10)
