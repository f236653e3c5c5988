"""Rows of held-out figures: one per reviewer or baseline, each metric with a bootstrap interval.

A row is specified by one statistic per metric, a function of resampled paper indices (so
that exact expectations and seeded draws bootstrap the same way as plain predictions), or
a sentence saying why the metric does not apply.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from pydantic import BaseModel

from reviewer.calibration import metrics as m
from reviewer.calibration.errors import UndefinedMetricError
from reviewer.calibration.fit import CalibratorKind, CrossValidated, cross_validate
from reviewer.calibration.metrics import FloatArray, IndexArray

Statistic = Callable[[IndexArray], float]

METRICS: dict[str, str] = {
    "balanced_accuracy": "Bal. acc.",
    "accuracy": "Acc.",
    "f1": "F1",
    "roc_auc": "ROC-AUC",
    "fpr": "FPR",
    "fnr": "FNR",
    "spearman": "Spearman",
    "brier": "Brier",
    "ece": "ECE",
}


@dataclass(frozen=True)
class RowSpec:
    """How to compute one row: a statistic (or a reason it does not apply) per metric."""

    name: str
    rule: str
    n: int
    statistics: dict[str, Statistic | str]
    notes: list[str] = field(default_factory=list)


class MetricValue(BaseModel):
    """A metric on all papers with its 95% bootstrap interval, or why it has no value."""

    value: float | None
    lo: float | None = None
    hi: float | None = None
    skipped: int = 0
    reason: str = ""


class Row(BaseModel):
    """One reviewer's or baseline's held-out figures."""

    name: str
    rule: str
    n: int
    metrics: dict[str, MetricValue]
    notes: list[str] = []


def standard_statistics(
    y: FloatArray,
    score: FloatArray | None,
    decision: FloatArray,
    probability: FloatArray | None,
    target: FloatArray | str,
) -> dict[str, Statistic | str]:
    """Statistics from per-paper predictions; ``target`` is the mean human rating or a reason."""
    stats: dict[str, Statistic | str] = {
        "balanced_accuracy": lambda i: m.balanced_accuracy(y[i], decision[i]),
        "accuracy": lambda i: m.accuracy(y[i], decision[i]),
        "f1": lambda i: m.f1(y[i], decision[i]),
        "fpr": lambda i: m.false_positive_rate(y[i], decision[i]),
        "fnr": lambda i: m.false_negative_rate(y[i], decision[i]),
    }
    if score is None:
        stats["roc_auc"] = stats["spearman"] = "no continuous score"
    else:
        stats["roc_auc"] = lambda i: m.roc_auc(y[i], score[i])
        stats["spearman"] = (
            target if isinstance(target, str) else (lambda i: m.spearman(score[i], target[i]))
        )
    if probability is None:
        stats["brier"] = stats["ece"] = "no probability"
    else:
        stats["brier"] = lambda i: m.brier(y[i], probability[i])
        stats["ece"] = lambda i: m.expected_calibration_error(y[i], probability[i])
    return stats


def score_row_spec(
    name: str,
    y: FloatArray,
    score: FloatArray,
    target: FloatArray | str,
    *,
    kind: CalibratorKind,
    seed: int,
    fixed_threshold: float | None = None,
    cv: CrossValidated | None = None,
) -> RowSpec:
    """A row for a continuous score: CV-fitted threshold (or a fixed one) and CV probabilities."""
    cv = cv or cross_validate(y, score, kind, seed)
    if fixed_threshold is None:
        decision, rule = cv.decision, f"CV threshold ({cv.k}-fold)"
    else:
        decision = (score >= fixed_threshold).astype(np.float64)
        rule = f"Overall ≥ {fixed_threshold:g}"
    stats = standard_statistics(y, score, decision, cv.probability, target)
    return RowSpec(name=name, rule=rule, n=y.size, statistics=stats)


def metric_value(statistic: Statistic | str, n: int, n_resamples: int, seed: int) -> MetricValue:
    """The statistic on all papers and its bootstrap interval."""
    if isinstance(statistic, str):
        return MetricValue(value=None, reason=statistic)
    everything = np.arange(n, dtype=np.intp)
    try:
        value = statistic(everything)
    except UndefinedMetricError as exc:
        return MetricValue(value=None, reason=f"undefined: {exc}")
    try:
        interval = m.bootstrap_ci(statistic, n, n_resamples=n_resamples, seed=seed)
    except UndefinedMetricError as exc:
        return MetricValue(value=value, reason=f"no interval: {exc}")
    return MetricValue(value=value, lo=interval.lo, hi=interval.hi, skipped=interval.skipped)


def score_row(spec: RowSpec, *, n_resamples: int, seed: int) -> Row:
    """Every metric of a row, with intervals from the same seeded resamples."""
    values = {
        name: metric_value(spec.statistics[name], spec.n, n_resamples, seed) for name in METRICS
    }
    return Row(name=spec.name, rule=spec.rule, n=spec.n, metrics=values, notes=spec.notes)
