"""Fitting: the threshold that maximises balanced accuracy, logistic and isotonic calibrators,
and stratified cross-validation so that a fit is never scored on the papers it was fitted on.

The calibrators are scikit-learn's fits, imported on first use (see ``metrics``), on inputs
checked here, so without scikit-learn's second round of checks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from reviewer.calibration.errors import CalibrationError
from reviewer.calibration.metrics import (
    FloatArray,
    check_labels,
    check_values,
    sklearn_on_checked_inputs,
)
from reviewer.review.decision import IsotonicCalibrator, LogisticCalibrator

CalibratorKind = Literal["logistic", "isotonic"]
Calibrator = LogisticCalibrator | IsotonicCalibrator
MAX_FOLDS = 5
# A weak L2 penalty on the standardised slope keeps the logistic fit finite when the
# classes are perfectly separated (the unpenalised maximum-likelihood slope is infinite).
LOGISTIC_L2 = 1e-2


def _inputs(y: npt.ArrayLike, score: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    labels = check_labels(y)
    return labels, check_values(score, labels.size, "score")


def _require_both_classes(labels: FloatArray, what: str) -> None:
    positives = int(labels.sum())
    if positives == 0 or positives == labels.size:
        raise CalibrationError(f"{what} needs both accepted and rejected papers")


def threshold_candidates(score: FloatArray) -> FloatArray:
    """Below every score, each midpoint between neighbouring distinct scores, above every one."""
    unique = np.unique(score)
    midpoints = (unique[:-1] + unique[1:]) / 2
    return np.concatenate(([unique[0] - 1.0], midpoints, [unique[-1] + 1.0]))


def best_threshold(y: npt.ArrayLike, score: npt.ArrayLike) -> float:
    """The threshold t of ``score >= t -> accept`` with the highest balanced accuracy.

    Ties go to the higher accuracy, then to the lower threshold; a threshold lies midway
    between observed scores so that unseen scores are split where the data gave no evidence.
    """
    labels, values = _inputs(y, score)
    _require_both_classes(labels, "choosing a threshold")
    candidates = threshold_candidates(values)
    votes = values[None, :] >= candidates[:, None]
    positives = labels.sum()
    negatives = labels.size - positives
    tpr = (votes & (labels == 1)).sum(axis=1) / positives
    tnr = (~votes & (labels == 0)).sum(axis=1) / negatives
    balanced = np.round((tpr + tnr) / 2, 12)
    correct = np.round(tpr * positives + tnr * negatives, 9)
    best = np.lexsort((candidates, -correct, -balanced))[0]
    return float(candidates[best])


def fit_logistic(y: npt.ArrayLike, score: npt.ArrayLike) -> LogisticCalibrator:
    """Platt scaling: logistic regression on the standardised score, slope weakly penalised.

    A constant score, or a single class, gives slope 0 and the accept rate as the probability.
    """
    from sklearn.linear_model import LogisticRegression

    labels, values = _inputs(y, score)
    spread = float(values.std())
    if spread == 0 or labels.min() == labels.max():
        rate = float(np.clip(labels.mean(), 1e-6, 1 - 1e-6))
        return LogisticCalibrator(a=0.0, b=float(np.log(rate / (1 - rate))))
    centre = float(values.mean())
    # The same objective as LOGISTIC_L2: sklearn adds slope**2 / (2 C) and leaves the intercept
    # unpenalised. newton-cholesky is Newton's method, so the optimum is reached to the last
    # digits (lbfgs would stop at its tolerance and move the saved calibrator).
    model = LogisticRegression(C=1 / LOGISTIC_L2, solver="newton-cholesky", tol=1e-12)
    with sklearn_on_checked_inputs():
        model.fit(((values - centre) / spread)[:, None], labels)
    slope, intercept = float(model.coef_[0, 0]), float(model.intercept_[0])
    return LogisticCalibrator(a=slope / spread, b=intercept - slope * centre / spread)


def fit_isotonic(y: npt.ArrayLike, score: npt.ArrayLike) -> IsotonicCalibrator:
    """Non-decreasing accept rate by score (pool-adjacent-violators), one point per score."""
    from sklearn.isotonic import IsotonicRegression

    labels, values = _inputs(y, score)
    xs = np.unique(values)
    with sklearn_on_checked_inputs():
        fitted = IsotonicRegression(out_of_bounds="clip").fit(values, labels).predict(xs)
    return IsotonicCalibrator(x=xs.tolist(), y=fitted.tolist())


def fit_calibrator(kind: CalibratorKind, y: npt.ArrayLike, score: npt.ArrayLike) -> Calibrator:
    """A calibrator of the named kind, fitted on these papers."""
    return fit_logistic(y, score) if kind == "logistic" else fit_isotonic(y, score)


def probabilities(calibrator: Calibrator, score: npt.ArrayLike) -> FloatArray:
    """The calibrator's accept probability for each score."""
    values = np.asarray(score, dtype=np.float64)
    return np.array([calibrator.probability(float(s)) for s in values], dtype=np.float64)


def fold_count(y: npt.ArrayLike) -> int:
    """min(5, size of the smaller class); at least 2 or cross-validation is impossible."""
    labels = check_labels(y)
    smaller = int(min(labels.sum(), labels.size - labels.sum()))
    if smaller < 2:
        raise CalibrationError(
            f"cross-validation needs at least 2 accepted and 2 rejected papers; got "
            f"{int(labels.sum())} accepted and {int(labels.size - labels.sum())} rejected. "
            "Use more papers (--limit) or fix the failed reviews."
        )
    return min(MAX_FOLDS, smaller)


def stratified_folds(y: npt.ArrayLike, k: int, seed: int) -> npt.NDArray[np.intp]:
    """A fold number per paper; each class is shuffled and dealt round-robin to k folds.

    Not sklearn's StratifiedKFold: it deals papers to folds differently for the same seed,
    which would move every held-out figure already reported (e.g. the mean human rating's
    balanced accuracy 0.875 -> 0.870).
    """
    labels = check_labels(y)
    rng = np.random.default_rng(seed)
    folds = np.empty(labels.size, dtype=np.intp)
    for cls in (0.0, 1.0):
        members = rng.permutation(np.flatnonzero(labels == cls))
        folds[members] = np.arange(members.size) % k
    return folds


@dataclass(frozen=True)
class CrossValidated:
    """Held-out decisions and probabilities: each paper's come from a fit without it."""

    decision: FloatArray
    probability: FloatArray
    folds: npt.NDArray[np.intp]
    thresholds: list[float]
    k: int


def cross_validate(
    y: npt.ArrayLike, score: npt.ArrayLike, kind: CalibratorKind, seed: int
) -> CrossValidated:
    """Stratified k-fold: fit threshold and calibrator on k-1 folds, apply them to the rest."""
    labels, values = _inputs(y, score)
    k = fold_count(labels)
    folds = stratified_folds(labels, k, seed)
    decision, probability = np.empty(labels.size), np.empty(labels.size)
    thresholds = []
    for fold in range(k):
        held, train = folds == fold, folds != fold
        threshold = best_threshold(labels[train], values[train])
        calibrator = fit_calibrator(kind, labels[train], values[train])
        decision[held] = (values[held] >= threshold).astype(np.float64)
        probability[held] = probabilities(calibrator, values[held])
        thresholds.append(threshold)
    return CrossValidated(decision, probability, folds, thresholds, k)
