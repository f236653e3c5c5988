"""Threshold, calibrators (against scikit-learn) and cross-validation."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

from reviewer.calibration import fit
from reviewer.calibration.errors import CalibrationError


def test_best_threshold_splits_midway_between_scores() -> None:
    assert fit.best_threshold([0, 0, 1, 1], [1, 2, 3, 4]) == 2.5
    assert fit.best_threshold([0, 0, 1, 1], [4, 4, 6, 6]) == 5.0


def test_best_threshold_maximises_balanced_not_plain_accuracy() -> None:
    # 1 accept among 9 rejects: plain accuracy prefers rejecting all (0.9); balanced
    # accuracy prefers the split at 5.5 (TPR 1, TNR 7/9).
    y = [1, 0, 0, 0, 0, 0, 0, 0, 0, 0]
    score = [6, 6, 6, 5, 5, 5, 5, 5, 5, 5]
    assert fit.best_threshold(y, score) == 5.5


def test_constant_scores_fall_back_to_the_majority_class() -> None:
    assert fit.best_threshold([0, 0, 0, 1], [5, 5, 5, 5]) == 6.0  # reject all
    assert fit.best_threshold([1, 1, 1, 0], [5, 5, 5, 5]) == 4.0  # accept all


def test_best_threshold_needs_both_classes() -> None:
    with pytest.raises(CalibrationError):
        fit.best_threshold([1, 1], [3, 4])


def _noisy(n: int = 300, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    return y, np.round(4 + 1.5 * y + rng.normal(0, 1.5, n))


def test_logistic_matches_sklearn_unpenalised() -> None:
    y, score = _noisy()
    ours = fit.fit_logistic(y, score)
    ref = LogisticRegression(penalty=None, tol=1e-10, max_iter=1000).fit(score[:, None], y)
    assert ours.a == pytest.approx(ref.coef_[0, 0], rel=1e-3)
    assert ours.b == pytest.approx(ref.intercept_[0], rel=1e-3)


def test_logistic_stays_finite_on_separated_classes() -> None:
    cal = fit.fit_logistic([0, 0, 1, 1], [1, 2, 8, 9])
    assert np.isfinite(cal.a) and cal.a > 0
    assert cal.probability(1) < 0.05 and cal.probability(9) > 0.95


def test_logistic_of_a_constant_score_predicts_the_accept_rate() -> None:
    cal = fit.fit_logistic([1, 0, 0, 0], [5, 5, 5, 5])
    assert cal.a == 0 and cal.probability(5) == pytest.approx(0.25)


def test_isotonic_matches_sklearn() -> None:
    y, score = _noisy(seed=1)
    ours = fit.fit_isotonic(y, score)
    ref = IsotonicRegression(out_of_bounds="clip").fit(score, y)
    grid = np.linspace(score.min() - 1, score.max() + 1, 57)
    assert fit.probabilities(ours, grid) == pytest.approx(ref.predict(grid), abs=1e-12)
    assert all(a <= b for a, b in zip(ours.y, ours.y[1:], strict=False))


def test_folds_are_stratified_and_sized_by_the_smaller_class() -> None:
    y = np.array([1] * 3 + [0] * 10)
    assert fit.fold_count(y) == 3
    folds = fit.stratified_folds(y, 3, seed=0)
    for fold in range(3):
        assert y[folds == fold].sum() == 1  # one accepted paper in each fold
    with pytest.raises(CalibrationError, match="at least 2 accepted"):
        fit.fold_count([1, 0, 0, 0])


def test_cross_validation_scores_each_fold_with_a_fit_from_the_other_folds() -> None:
    y, score = _noisy(n=60, seed=2)
    cv = fit.cross_validate(y, score, "isotonic", seed=4)
    assert cv.k == 5
    for fold in range(cv.k):
        held, train = cv.folds == fold, cv.folds != fold
        threshold = fit.best_threshold(y[train], score[train])
        calibrator = fit.fit_isotonic(y[train], score[train])
        assert cv.thresholds[fold] == threshold
        assert cv.decision[held].tolist() == (score[held] >= threshold).astype(float).tolist()
        assert cv.probability[held] == pytest.approx(fit.probabilities(calibrator, score[held]))


def test_held_out_probabilities_do_not_see_their_own_labels() -> None:
    # Isotonic regression fitted in-sample on pure noise looks well calibrated; held out,
    # its Brier score must be worse than the in-sample one.
    rng = np.random.default_rng(9)
    y, score = rng.integers(0, 2, 200), rng.normal(size=200)
    in_sample = fit.probabilities(fit.fit_isotonic(y, score), score)
    held_out = fit.cross_validate(y, score, "isotonic", seed=0).probability
    assert np.mean((held_out - y) ** 2) > np.mean((in_sample - y) ** 2) + 0.01
