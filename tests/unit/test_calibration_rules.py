"""Edges of the calibration fit and metrics that a flipped comparison or an off-by-one would
move: class checks, tie-breaking, fold sizes, bin edges, bootstrap percentiles (issue #24)."""

from __future__ import annotations

import numpy as np
import pytest

from reviewer.calibration import fit
from reviewer.calibration import metrics as m
from reviewer.calibration.errors import CalibrationError, UndefinedMetricError
from reviewer.review.decision import IsotonicCalibrator, LogisticCalibrator

# --- fit -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("labels", [[0, 0, 0], [1, 1, 1]])
def test_a_threshold_needs_an_accepted_and_a_rejected_paper(labels: list[int]) -> None:
    with pytest.raises(
        CalibrationError, match=r"^choosing a threshold needs both accepted and rejected papers$"
    ):
        fit.best_threshold(labels, [3, 5, 7])


def test_a_fit_names_a_score_of_the_wrong_length() -> None:
    with pytest.raises(UndefinedMetricError, match=r"^score has shape \(3,\), expected \(2,\)$"):
        fit.best_threshold([0, 1], [1, 2, 3])


def test_threshold_candidates_run_from_below_to_above_every_score() -> None:
    candidates = fit.threshold_candidates(np.array([7.0, 3.0, 5.0, 3.0]))
    assert candidates.tolist() == [2.0, 4.0, 6.0, 8.0]


def test_ties_in_balanced_accuracy_go_to_more_correct_papers_then_the_lower_threshold() -> None:
    # Thresholds 2.5 (TPR 1, TNR 1/2) and 5.5 (TPR 1/2, TNR 1) both have balanced accuracy
    # 0.75; 5.5 gets 5 of 6 papers right, 2.5 only 4.
    y, score = [0, 0, 1, 0, 0, 1], [1, 2, 3, 4, 5, 6]
    assert fit.best_threshold(y, score) == 5.5
    # Balanced accuracy decides before the number right, however close the runner-up: 8.5
    # (0.9, 10 right) beats 11.5 (0.75, 11 right).
    assert fit.best_threshold([0] * 8 + [1, 0, 0, 1], range(1, 13)) == 8.5
    # A full tie (same balanced accuracy, same number right): the lower threshold.
    assert fit.best_threshold([1, 0, 1, 0], [1, 2, 3, 4]) == 0.0


def test_the_threshold_rule_is_score_at_or_above_accepts() -> None:
    # Every accepted paper at 6, every rejected one at 5: the split lies between them and a
    # score equal to it is an accept in cross-validation's held-out decisions.
    y = [1, 1, 1, 0, 0, 0] * 2
    score = [6, 6, 6, 5, 5, 5] * 2
    assert fit.best_threshold(y, score) == 5.5
    cv = fit.cross_validate(y, score, "logistic", seed=0)
    assert cv.decision.tolist() == [float(v) for v in y]


def test_a_held_out_score_equal_to_the_threshold_is_an_accept() -> None:
    # The accepted paper at 6 is held out in one fold; the others put the threshold at 6.0.
    y = [1, 1, 1, 1, 1, 0, 0, 0, 0, 0]
    score = [6, 7, 7, 7, 7, 5, 5, 5, 5, 5]
    cv = fit.cross_validate(y, score, "isotonic", seed=0)
    fold = int(cv.folds[0])
    assert cv.thresholds[fold] == 6.0
    assert cv.decision[0] == 1.0


def test_fit_calibrator_returns_the_kind_asked_for() -> None:
    y, score = [0, 0, 1, 1, 0, 1], [2, 3, 6, 7, 4, 5]
    assert isinstance(fit.fit_calibrator("logistic", y, score), LogisticCalibrator)
    assert isinstance(fit.fit_calibrator("isotonic", y, score), IsotonicCalibrator)


def test_logistic_of_an_imbalanced_sample_matches_the_unpenalised_intercept() -> None:
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(5)
    y = (rng.random(400) < 0.15).astype(int)  # few accepts: the intercept is far from 0
    score = np.round(4 + 2.0 * y + rng.normal(0, 1.5, 400))
    ours = fit.fit_logistic(y, score)
    ref = LogisticRegression(penalty=None, tol=1e-10, max_iter=1000).fit(score[:, None], y)
    assert ours.b == pytest.approx(ref.intercept_[0], rel=1e-3)
    assert ours.a == pytest.approx(ref.coef_[0, 0], rel=1e-3)


def test_logistic_of_a_constant_score_with_one_class_stays_finite() -> None:
    cal = fit.fit_logistic([1, 1, 1], [5, 5, 5])
    assert cal.a == 0 and 0.99 < cal.probability(5) < 1
    cal = fit.fit_logistic([0, 0, 0], [5, 5, 5])
    assert cal.a == 0 and np.isfinite(cal.b) and 0 < cal.probability(5) < 0.01


def test_logistic_of_one_class_predicts_its_clipped_rate_with_slope_zero() -> None:
    # No accepted (or no rejected) paper: no slope to learn, whatever the scores.
    cal = fit.fit_logistic([1, 1, 1], [2, 5, 9])
    assert cal.a == 0 and cal.probability(2) == pytest.approx(1 - 1e-6)
    cal = fit.fit_logistic([0, 0, 0, 0], [2, 5, 9, 1])
    assert cal.a == 0 and cal.probability(9) == pytest.approx(1e-6)


def test_logistic_of_two_symmetric_scores_by_hand() -> None:
    # Accept rates 1/3 at score 1 and 2/3 at score 2. Standardised, the scores are -1 and +1,
    # so by symmetry the intercept is 0 and the slope s solves
    # 2 * (3 * sigmoid(s) - 2) + LOGISTIC_L2 * s = 0 (without the penalty: s = ln 2).
    from scipy.optimize import brentq

    y, score = [0, 0, 1, 0, 1, 1], [1, 1, 1, 2, 2, 2]
    s = brentq(lambda v: 2 * (3 / (1 + np.exp(-v)) - 2) + fit.LOGISTIC_L2 * v, 0, 5)
    assert s == pytest.approx(np.log(2), rel=0.01) and s < np.log(2)
    cal = fit.fit_logistic(y, score)
    assert cal.a == pytest.approx(2 * s, rel=1e-9)  # spread 0.5
    assert cal.b == pytest.approx(-1.5 * cal.a, rel=1e-9)  # centre 1.5
    assert cal.probability(1.5) == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("y", "score"),
    [([0, 0, 1, 1], [1, 2, 8, 9]), ([0, 1, 0, 1, 1, 0, 1], [2, 3, 3, 5, 6, 1, 4])],
)
def test_logistic_fit_is_the_penalised_optimum(y: list[int], score: list[float]) -> None:
    # At the optimum the gradient of (negative log-likelihood + L2/2 * standardised slope^2)
    # vanishes; separated classes (first case) have no unpenalised optimum at all.
    cal = fit.fit_logistic(y, score)
    labels, values = np.array(y, float), np.array(score, float)
    centre, spread = values.mean(), values.std()
    z = (values - centre) / spread
    slope, intercept = cal.a * spread, cal.b + cal.a * centre
    p = 1 / (1 + np.exp(-(slope * z + intercept)))
    assert np.sum((p - labels) * z) + fit.LOGISTIC_L2 * slope == pytest.approx(0, abs=1e-8)
    assert np.sum(p - labels) == pytest.approx(0, abs=1e-8)


def test_isotonic_pools_violators_and_keeps_one_point_per_score() -> None:
    cal = fit.fit_isotonic([1, 0, 0, 1, 1], [1, 2, 3, 4, 4])
    assert cal.x == [1.0, 2.0, 3.0, 4.0]
    assert cal.y == pytest.approx([1 / 3, 1 / 3, 1 / 3, 1.0])


@pytest.mark.parametrize(
    ("accepted", "rejected", "k"),
    [(2, 2, 2), (2, 9, 2), (9, 3, 3), (5, 5, 5), (12, 30, 5)],
)
def test_fold_count_is_the_smaller_class_up_to_five(accepted: int, rejected: int, k: int) -> None:
    assert fit.fold_count([1] * accepted + [0] * rejected) == k


@pytest.mark.parametrize(("accepted", "rejected"), [(1, 5), (5, 1), (0, 4)])
def test_fold_count_needs_two_papers_of_each_class(accepted: int, rejected: int) -> None:
    with pytest.raises(
        CalibrationError,
        match=rf"got {accepted} accepted and {rejected} rejected\. Use more papers \(--limit\)",
    ):
        fit.fold_count([1] * accepted + [0] * rejected)


def test_stratified_folds_deal_each_class_evenly_and_follow_the_seed() -> None:
    y = np.array([1] * 7 + [0] * 11)
    folds = fit.stratified_folds(y, 3, seed=1)
    assert sorted(np.bincount(folds[y == 1]).tolist()) == [2, 2, 3]
    assert sorted(np.bincount(folds[y == 0]).tolist()) == [3, 4, 4]
    assert folds.tolist() == fit.stratified_folds(y, 3, seed=1).tolist()
    seeds = {tuple(fit.stratified_folds(y, 3, seed=s).tolist()) for s in range(5)}
    assert len(seeds) > 1


def test_cross_validation_uses_the_calibrator_kind_asked_for() -> None:
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 80)
    score = np.round(4 + 1.5 * y + rng.normal(0, 1.5, 80))
    logistic = fit.cross_validate(y, score, "logistic", seed=0)
    isotonic = fit.cross_validate(y, score, "isotonic", seed=0)
    assert logistic.folds.tolist() == isotonic.folds.tolist()
    assert logistic.decision.tolist() == isotonic.decision.tolist()
    assert not np.allclose(logistic.probability, isotonic.probability)
    held = logistic.folds == 0
    train = ~held
    expected = fit.probabilities(fit.fit_logistic(y[train], score[train]), score[held])
    assert logistic.probability[held] == pytest.approx(expected)


# --- metrics -------------------------------------------------------------------------------------


@pytest.mark.parametrize("labels", [[], [[0, 1], [1, 0]], [0, 0.5, 1], [-1, 1]])
def test_labels_must_be_a_flat_list_of_zeros_and_ones(labels: object) -> None:
    with pytest.raises(UndefinedMetricError, match="labels"):
        m.check_labels(labels)  # type: ignore[arg-type]


def test_values_are_checked_for_shape_finiteness_and_range() -> None:
    assert m.check_values([0, 1], 2, "p", unit=True).tolist() == [0.0, 1.0]  # both ends allowed
    assert m.check_values([-3, 7], 2, "score").tolist() == [-3.0, 7.0]
    with pytest.raises(UndefinedMetricError, match=r"p must lie in \[0, 1\]"):
        m.check_values([-0.01, 0.5], 2, "p", unit=True)
    with pytest.raises(UndefinedMetricError, match=r"p must lie in \[0, 1\]"):
        m.check_values([0.5, 1.01], 2, "p", unit=True)
    with pytest.raises(UndefinedMetricError, match=r"score holds 2 NaN/inf"):
        m.check_values([np.nan, 1, np.inf], 3, "score")
    with pytest.raises(UndefinedMetricError, match=r"score has shape \(2,\), expected \(3,\)"):
        m.check_values([1, 2], 3, "score")


@pytest.mark.parametrize("labels", [[0, 0, 0], [1, 1, 1]])
def test_rank_metrics_need_both_classes(labels: list[int]) -> None:
    for metric in (m.roc_auc, m.roc_points):
        with pytest.raises(UndefinedMetricError, match="both accepted and rejected"):
            metric(labels, [1, 2, 3])


def test_error_rates_need_papers_of_their_class() -> None:
    assert m.false_negative_rate([1, 1, 0], [1, 0, 0]) == 0.5
    with pytest.raises(UndefinedMetricError, match="FNR needs at least one accepted"):
        m.false_negative_rate([0, 0, 0], [1, 0, 0])
    with pytest.raises(UndefinedMetricError, match="FPR needs at least one rejected"):
        m.false_positive_rate([1, 1], [1, 0])
    with pytest.raises(UndefinedMetricError):
        m.balanced_accuracy([0, 0], [1, 0])


def test_roc_points_step_per_distinct_score_from_the_highest() -> None:
    fpr, tpr = m.roc_points([1, 0, 1, 0], [4, 3, 2, 1])
    assert fpr.tolist() == [0.0, 0.0, 0.5, 0.5, 1.0]
    assert tpr.tolist() == [0.0, 0.5, 0.5, 1.0, 1.0]


def test_spearman_needs_two_values() -> None:
    with pytest.raises(UndefinedMetricError, match="two non-constant"):
        m.spearman([1], [2])
    with pytest.raises(UndefinedMetricError, match="two non-constant"):
        m.spearman([1, 2, 3], [4, 4, 4])


def test_reliability_bins_are_closed_on_the_left_and_report_their_statistics() -> None:
    bins = m.reliability_bins([1, 0, 1, 1], [0.1, 0.15, 0.2, 0.7], n_bins=5)
    assert [(b.lo, b.hi, b.count) for b in bins] == [
        (pytest.approx(0.0), pytest.approx(0.2), 2),  # 0.1 and 0.15
        (pytest.approx(0.2), pytest.approx(0.4), 1),  # 0.2 starts its own bin
        (pytest.approx(0.6), pytest.approx(0.8), 1),
    ]
    assert bins[0].mean_probability == pytest.approx(0.125) and bins[0].accept_rate == 0.5
    assert bins[2].mean_probability == pytest.approx(0.7) and bins[2].accept_rate == 1.0
    assert m.expected_calibration_error([1, 0, 1, 1], [0.1, 0.15, 0.2, 0.7], n_bins=5) == (
        pytest.approx((abs(0.25 - 1) + abs(0.2 - 1) + abs(0.7 - 1)) / 4)
    )


def test_bootstrap_interval_is_the_central_percentiles_of_the_values() -> None:
    values = iter(range(1000))
    interval = m.bootstrap_ci(lambda idx: float(next(values)), 10)  # 1000 resamples by default
    assert (interval.used, interval.skipped) == (1000, 0)
    assert (interval.lo, interval.hi) == pytest.approx(np.percentile(range(1000), [2.5, 97.5]))
    values = iter(range(100))
    half = m.bootstrap_ci(lambda idx: float(next(values)), 10, n_resamples=100, level=0.5)
    assert (half.lo, half.hi) == pytest.approx(np.percentile(range(100), [25, 75]))


def test_bootstrap_resamples_every_paper_with_replacement() -> None:
    seen: list[np.ndarray] = []

    def statistic(idx: np.ndarray) -> float:
        seen.append(idx)
        return 0.0

    m.bootstrap_ci(statistic, 6, n_resamples=200, seed=3)
    stacked = np.stack(seen)
    assert stacked.shape == (200, 6)
    assert set(stacked.ravel().tolist()) == set(range(6))  # 0 and 5 both drawn
    assert any(len(set(row.tolist())) < 6 for row in stacked)  # some paper drawn twice
    again: list[np.ndarray] = []
    m.bootstrap_ci(lambda idx: again.append(idx) or 0.0, 6, n_resamples=200, seed=3)
    assert np.array_equal(np.stack(again), stacked)
    default: list[np.ndarray] = []
    m.bootstrap_ci(lambda idx: default.append(idx) or 0.0, 6, n_resamples=200)
    seed_0: list[np.ndarray] = []
    m.bootstrap_ci(lambda idx: seed_0.append(idx) or 0.0, 6, n_resamples=200, seed=0)
    assert np.array_equal(np.stack(default), np.stack(seed_0))
    assert not np.array_equal(np.stack(default), stacked)


def test_roc_points_sort_the_scores_first() -> None:
    fpr, tpr = m.roc_points([1, 0, 1, 0], [1, 4, 2, 3])
    assert fpr.tolist() == [0.0, 0.5, 1.0, 1.0, 1.0]
    assert tpr.tolist() == [0.0, 0.0, 0.0, 0.5, 1.0]
    fpr, tpr = m.roc_points([0, 1], [1, 2])  # two papers: a step for each
    assert fpr.tolist() == [0.0, 0.0, 1.0] and tpr.tolist() == [0.0, 1.0, 1.0]


def test_rates_and_f1_where_counts_could_cancel_out() -> None:
    assert m.false_positive_rate([0, 0], [1, 0]) == 0.5  # fp == tn
    assert m.false_negative_rate([1, 1], [1, 0]) == 0.5  # tp == fn
    assert m.f1([1, 0], [0, 1]) == 0.0  # tp + fp == fn
    assert m.f1([1, 0], [1, 1]) == pytest.approx(2 / 3)  # tp == fp, no fn
    assert m.spearman([1, 2], [3, 4]) == pytest.approx(1.0)  # two values are enough


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: m.check_labels([]), "labels must be a non-empty 1-D array"),
        (lambda: m.check_labels([[0, 1]]), "labels must be a non-empty 1-D array"),
        (lambda: m.check_labels([0, 2]), r"labels must be 0 \(reject\) or 1 \(accept\)"),
        (lambda: m.roc_auc([0, 1], [1, 2, 3]), r"score has shape \(3,\), expected \(2,\)"),
        (lambda: m.roc_points([0, 1], [1, 2, 3]), r"score has shape \(3,\), expected \(2,\)"),
        (lambda: m.roc_auc([1, 1], [1, 2]), "ROC-AUC needs both accepted and rejected papers"),
        (lambda: m.roc_points([1, 1], [1, 2]), "ROC curve needs both accepted and rejected papers"),
        (lambda: m.accuracy([0, 1], [0, 2]), r"decision must lie in \[0, 1\]"),
        (lambda: m.brier([0, 1], [0.2, 1.2]), r"probability must lie in \[0, 1\]"),
        (lambda: m.reliability_bins([0, 1], [0.2, 1.2]), r"probability must lie in \[0, 1\]"),
        (
            lambda: m.expected_calibration_error([0, 1], [-0.1, 1]),
            r"probability must lie in \[0, 1\]",
        ),
        (lambda: m.spearman([1, 2, np.nan], [1, 2, 3]), "x holds 1 NaN/inf"),
        (lambda: m.spearman([1, 2, 3], [1, np.inf, 3]), "z holds 1 NaN/inf"),
        (lambda: m.spearman([1, 2, 3], [3, 3, 3]), "Spearman needs two non-constant series"),
        (lambda: m.false_positive_rate([1, 1], [1, 0]), "FPR needs at least one rejected paper"),
        (lambda: m.false_negative_rate([0, 0], [1, 0]), "FNR needs at least one accepted paper"),
        (lambda: m.f1([0, 0], [0, 0]), "F1 needs an accepted paper or an accept vote"),
        (
            lambda: m.balanced_accuracy([1, 1], [1, 0]),
            "balanced accuracy needs both accepted and rejected papers",
        ),
        (
            lambda: m.bootstrap_ci(lambda i: m.roc_auc(np.ones(i.size), i), 4, n_resamples=10),
            r"no bootstrap resample had a value \(10 skipped\)",
        ),
    ],
)
def test_each_undefined_or_bad_input_says_what_was_wrong(call: object, message: str) -> None:
    with pytest.raises(UndefinedMetricError, match=f"^{message}$"):
        call()  # type: ignore[operator]
