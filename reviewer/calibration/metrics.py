"""Metrics for an accept/reject target: pure functions of arrays, no I/O and no fitting.

Conventions: ``y`` holds 1 (accept) and 0 (reject); ``score`` is any continuous number,
higher meaning more likely accepted; ``decision`` is a vote in [0, 1] (0/1 for one
reviewer, a fraction for an exact expectation over reviewers, in which case the metrics use
the expected confusion matrix); ``prob`` is a probability in [0, 1].

A metric without a value for its input (one class only, constant scores) raises
:class:`UndefinedMetricError`; NaN or infinite inputs raise too. Nothing is set to 0.

The arithmetic is scikit-learn's and SciPy's; this module checks the inputs, turns an
undefined case into that error, and passes fractional votes to scikit-learn as weights.
They are imported on first use: they take ~0.7 s to import, and every ``reviewer``
command imports this module when the CLI registers ``calibrate``.

A bootstrap calls these functions tens of thousands of times on a few hundred papers, where
scikit-learn's argument and input checks cost more than its arithmetic. So each call runs
under :func:`sklearn_on_checked_inputs` (the checks here have been done), the five decision
metrics of one resample share one confusion matrix (:func:`confusion_by_index`), and every
statistic of a row is evaluated on the same resample in one pass (:func:`bootstrap`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from reviewer.calibration.errors import UndefinedMetricError

FloatArray = npt.NDArray[np.float64]
IndexArray = npt.NDArray[np.intp]
Statistic = Callable[[IndexArray], float]


def sklearn_on_checked_inputs() -> AbstractContextManager[None]:
    """scikit-learn's configuration for inputs this package has already checked: no second
    validation of the arguments, no second scan for NaN/inf. The figures do not change."""
    import sklearn

    return sklearn.config_context(skip_parameter_validation=True, assume_finite=True)


def check_labels(y: npt.ArrayLike) -> FloatArray:
    """``y`` as a float array of 0s and 1s; raises on anything else or on no data."""
    arr = np.asarray(y, dtype=np.float64)
    if arr.ndim != 1 or arr.size == 0:
        raise UndefinedMetricError("labels must be a non-empty 1-D array")
    if not np.all((arr == 0) | (arr == 1)):
        raise UndefinedMetricError("labels must be 0 (reject) or 1 (accept)")
    return arr


def check_values(x: npt.ArrayLike, size: int, name: str, *, unit: bool = False) -> FloatArray:
    """``x`` as a finite float array of ``size`` values (in [0, 1] when ``unit``)."""
    arr = np.asarray(x, dtype=np.float64)
    if arr.shape != (size,):
        raise UndefinedMetricError(f"{name} has shape {arr.shape}, expected ({size},)")
    if not np.all(np.isfinite(arr)):
        raise UndefinedMetricError(f"{name} holds {int(np.sum(~np.isfinite(arr)))} NaN/inf")
    if unit and (arr.min() < 0 or arr.max() > 1):
        raise UndefinedMetricError(f"{name} must lie in [0, 1]")
    return arr


def _both_classes(y: FloatArray, metric: str) -> None:
    if y.min() == y.max():
        raise UndefinedMetricError(f"{metric} needs both accepted and rejected papers")


def roc_auc(y: npt.ArrayLike, score: npt.ArrayLike) -> float:
    """Area under the ROC curve of a continuous score (a tie counts 1/2)."""
    from sklearn.metrics import auc, roc_curve

    labels = check_labels(y)
    values = check_values(score, labels.size, "score")
    _both_classes(labels, "ROC-AUC")
    # What roc_auc_score does for two classes, to the last bit, without first binarising
    # labels that are already 0/1 (half its cost).
    with sklearn_on_checked_inputs():
        fpr, tpr, _ = roc_curve(labels, values)
        return float(auc(fpr, tpr))


def roc_points(y: npt.ArrayLike, score: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    """(FPR, TPR) at every distinct threshold, from (0, 0) to (1, 1); ties make one step."""
    from sklearn.metrics import roc_curve

    labels = check_labels(y)
    values = check_values(score, labels.size, "score")
    _both_classes(labels, "ROC curve")
    with sklearn_on_checked_inputs():
        fpr, tpr, _ = roc_curve(labels, values, drop_intermediate=False)
    return fpr, tpr


@dataclass(frozen=True)
class Confusion:
    """Counts (expected counts for fractional votes) of the four outcomes, and the decision
    metrics computed from them, each raising when its denominator is empty."""

    tp: float
    fp: float
    tn: float
    fn: float

    def accuracy(self) -> float:
        """Share of papers decided as they were."""
        return (self.tp + self.tn) / (self.tp + self.fp + self.tn + self.fn)

    def false_positive_rate(self) -> float:
        """Share of rejected papers voted accept."""
        if self.fp + self.tn == 0:
            raise UndefinedMetricError("FPR needs at least one rejected paper")
        return self.fp / (self.fp + self.tn)

    def false_negative_rate(self) -> float:
        """Share of accepted papers voted reject."""
        if self.tp + self.fn == 0:
            raise UndefinedMetricError("FNR needs at least one accepted paper")
        return self.fn / (self.tp + self.fn)

    def balanced_accuracy(self) -> float:
        """Mean of the true-positive and true-negative rates (balanced_accuracy_score's
        arithmetic on the same matrix)."""
        if self.tp + self.fn == 0 or self.fp + self.tn == 0:
            raise UndefinedMetricError("balanced accuracy needs both accepted and rejected papers")
        return (self.tn / (self.tn + self.fp) + self.tp / (self.tp + self.fn)) / 2

    def f1(self) -> float:
        """2TP / ((TP + FN) + (TP + FP)), f1_score's arithmetic for 'accept'."""
        denominator = (self.tp + self.fn) + (self.tp + self.fp)
        if denominator == 0:
            raise UndefinedMetricError("F1 needs an accepted paper or an accept vote")
        return 2 * self.tp / denominator


def _weighted_votes(
    y: npt.ArrayLike, decision: npt.ArrayLike
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Truth, vote and weight for scikit-learn: each paper as an accept vote weighted by its
    vote and a reject vote weighted by the rest, so weighted counts are the expected ones."""
    labels = check_labels(y)
    votes = check_values(decision, labels.size, "decision", unit=True)
    truth = np.concatenate((labels, labels))
    vote = np.concatenate((np.ones(labels.size), np.zeros(labels.size)))
    return truth, vote, np.concatenate((votes, 1 - votes))


def confusion(y: npt.ArrayLike, decision: npt.ArrayLike) -> Confusion:
    """The (expected) confusion matrix of votes in [0, 1] against the labels."""
    from sklearn.metrics import confusion_matrix

    truth, vote, weight = _weighted_votes(y, decision)
    with sklearn_on_checked_inputs():
        matrix = confusion_matrix(truth, vote, labels=[0, 1], sample_weight=weight)
    (tn, fp), (fn, tp) = matrix
    return Confusion(tp=float(tp), fp=float(fp), tn=float(tn), fn=float(fn))


def confusion_by_index(y: FloatArray, decision: FloatArray) -> Callable[[IndexArray], Confusion]:
    """``idx -> confusion(y[idx], decision[idx])`` that remembers the last ``idx`` (by value),
    so that the decision metrics of one bootstrap resample share one confusion matrix."""

    @functools.lru_cache(maxsize=1)
    def of_indices(key: bytes) -> Confusion:
        idx = np.frombuffer(key, dtype=np.intp)
        return confusion(y[idx], decision[idx])

    return lambda idx: of_indices(np.asarray(idx, dtype=np.intp).tobytes())


def accuracy(y: npt.ArrayLike, decision: npt.ArrayLike) -> float:
    """Share of papers decided as they were."""
    return confusion(y, decision).accuracy()


def false_positive_rate(y: npt.ArrayLike, decision: npt.ArrayLike) -> float:
    """Share of rejected papers voted accept; needs a rejected paper."""
    return confusion(y, decision).false_positive_rate()


def false_negative_rate(y: npt.ArrayLike, decision: npt.ArrayLike) -> float:
    """Share of accepted papers voted reject; needs an accepted paper."""
    return confusion(y, decision).false_negative_rate()


def balanced_accuracy(y: npt.ArrayLike, decision: npt.ArrayLike) -> float:
    """Mean of the true-positive and true-negative rates; needs both classes."""
    return confusion(y, decision).balanced_accuracy()


def f1(y: npt.ArrayLike, decision: npt.ArrayLike) -> float:
    """2TP / (2TP + FP + FN) for 'accept'; undefined with no accepted or accept-voted paper."""
    return confusion(y, decision).f1()


def spearman(x: npt.ArrayLike, z: npt.ArrayLike) -> float:
    """Spearman's rank correlation (ties share their average rank); undefined if either is
    constant."""
    from scipy.stats import rankdata

    a = np.asarray(x, dtype=np.float64)
    first, second = check_values(a, a.size, "x"), check_values(z, a.size, "z")
    if a.size < 2 or np.ptp(first) == 0 or np.ptp(second) == 0:
        raise UndefinedMetricError("Spearman needs two non-constant series")
    # spearmanr's statistic, step by step: the Pearson correlation of the ranks. spearmanr
    # itself adds a p-value, which costs as much again and is not reported.
    ranks = rankdata(np.column_stack((first, second)), axis=0)
    return float(np.corrcoef(ranks, rowvar=False)[1, 0])


def brier(y: npt.ArrayLike, prob: npt.ArrayLike) -> float:
    """Mean squared difference between the accept probability and the outcome."""
    from sklearn.metrics import mean_squared_error

    labels = check_labels(y)
    p = check_values(prob, labels.size, "probability", unit=True)
    # The Brier score of a 0/1 outcome is this mean squared error; brier_score_loss gets it
    # by re-deriving the positive label and two (n, 2) arrays, 2.5 times the cost.
    with sklearn_on_checked_inputs():
        return float(mean_squared_error(labels, p))


@dataclass(frozen=True)
class ReliabilityBin:
    """One equal-width probability bin: its papers' mean probability and accept rate."""

    lo: float
    hi: float
    count: int
    mean_probability: float
    accept_rate: float


def _binned(
    y: npt.ArrayLike, prob: npt.ArrayLike, n_bins: int
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Bin edges, and per bin: count, sum of probabilities, number accepted."""
    labels = check_labels(y)
    p = check_values(prob, labels.size, "probability", unit=True)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    index = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, n_bins - 1)
    counts = np.bincount(index, minlength=n_bins).astype(np.float64)
    sums = np.bincount(index, weights=p, minlength=n_bins).astype(np.float64)
    accepted = np.bincount(index, weights=labels, minlength=n_bins).astype(np.float64)
    return edges, counts, sums, accepted


def reliability_bins(
    y: npt.ArrayLike, prob: npt.ArrayLike, n_bins: int = 10
) -> list[ReliabilityBin]:
    """Non-empty bins of [0, 1] (the last one closed) with their calibration statistics."""
    edges, counts, sums, accepted = _binned(y, prob, n_bins)
    return [
        ReliabilityBin(
            lo=float(edges[b]),
            hi=float(edges[b + 1]),
            count=int(counts[b]),
            mean_probability=float(sums[b] / counts[b]),
            accept_rate=float(accepted[b] / counts[b]),
        )
        for b in np.flatnonzero(counts)
    ]


def expected_calibration_error(y: npt.ArrayLike, prob: npt.ArrayLike, n_bins: int = 10) -> float:
    """Count-weighted mean |mean probability - accept rate| over equal-width bins."""
    _, counts, sums, accepted = _binned(y, prob, n_bins)
    return float(np.sum(np.abs(sums - accepted)) / counts.sum())


@dataclass(frozen=True)
class Interval:
    """A percentile bootstrap interval and how many resamples had no value (skipped)."""

    lo: float
    hi: float
    used: int
    skipped: int


@dataclass(frozen=True)
class Resampled:
    """A statistic's values on the bootstrap resamples that had one, and how many had none."""

    values: list[float]
    skipped: int

    def interval(self, level: float = 0.95) -> Interval:
        """The central ``level`` percentile interval; raises when no resample had a value."""
        if not self.values:
            raise UndefinedMetricError(
                f"no bootstrap resample had a value ({self.skipped} skipped)"
            )
        tail = (1 - level) / 2 * 100
        lo, hi = np.percentile(self.values, [tail, 100 - tail])
        return Interval(lo=float(lo), hi=float(hi), used=len(self.values), skipped=self.skipped)


def bootstrap(
    statistics: Mapping[str, Statistic], n: int, *, n_resamples: int = 1000, seed: int = 0
) -> dict[str, Resampled]:
    """Every statistic on each of ``n_resamples`` seeded resamples of ``n`` papers drawn with
    replacement (one index array per resample, shared by all statistics).

    A resample where a statistic is undefined (e.g. one class only, for ROC-AUC) is skipped
    for it and counted; the same seed gives the same resamples whatever the statistics.
    """
    rng = np.random.default_rng(seed)
    values: dict[str, list[float]] = {name: [] for name in statistics}
    skipped = dict.fromkeys(statistics, 0)
    for _ in range(n_resamples):
        idx = rng.integers(0, n, size=n)
        for name, statistic in statistics.items():
            try:
                values[name].append(statistic(idx))
            except UndefinedMetricError:
                skipped[name] += 1
    return {name: Resampled(values[name], skipped[name]) for name in statistics}


def bootstrap_ci(
    statistic: Statistic,
    n: int,
    *,
    n_resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> Interval:
    """Percentile interval of ``statistic(indices)`` over papers resampled with replacement
    (:func:`bootstrap` of one statistic)."""
    resampled = bootstrap({"statistic": statistic}, n, n_resamples=n_resamples, seed=seed)
    return resampled["statistic"].interval(level)
