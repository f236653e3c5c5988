"""Rows of held-out figures: one per reviewer or baseline, each metric with a bootstrap interval.

A row is specified by one statistic per metric, a function of resampled paper indices (so
that exact expectations and seeded draws bootstrap the same way as plain predictions), or
a sentence saying why the metric does not apply. All statistics of a row are bootstrapped in
one pass over the same resamples, so that its five decision metrics share one confusion
matrix per resample.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from pydantic import BaseModel

from reviewer.calibration import metrics as m
from reviewer.calibration.errors import UndefinedMetricError
from reviewer.calibration.fit import CalibratorKind, CrossValidated, cross_validate
from reviewer.calibration.metrics import FloatArray

Statistic = m.Statistic

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
    counts = m.confusion_by_index(y, decision)
    stats: dict[str, Statistic | str] = {
        "balanced_accuracy": lambda i: counts(i).balanced_accuracy(),
        "accuracy": lambda i: counts(i).accuracy(),
        "f1": lambda i: counts(i).f1(),
        "fpr": lambda i: counts(i).false_positive_rate(),
        "fnr": lambda i: counts(i).false_negative_rate(),
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


def value_on_all_papers(statistic: Statistic | str, n: int) -> MetricValue:
    """The statistic on all ``n`` papers (no interval yet), or why it has no value."""
    if isinstance(statistic, str):
        return MetricValue(value=None, reason=statistic)
    try:
        return MetricValue(value=statistic(np.arange(n, dtype=np.intp)))
    except UndefinedMetricError as exc:
        return MetricValue(value=None, reason=f"undefined: {exc}")


def with_interval(on_all: MetricValue, resampled: m.Resampled) -> MetricValue:
    """The value on all papers with its 95% bootstrap interval, or with why it has none."""
    try:
        interval = resampled.interval()
    except UndefinedMetricError as exc:
        return MetricValue(value=on_all.value, reason=f"no interval: {exc}")
    return MetricValue(value=on_all.value, lo=interval.lo, hi=interval.hi, skipped=interval.skipped)


def score_row(spec: RowSpec, *, n_resamples: int, seed: int) -> Row:
    """Every metric of a row, its intervals from one pass over the same seeded resamples."""
    statistics = {name: spec.statistics[name] for name in METRICS}
    values = {name: value_on_all_papers(s, spec.n) for name, s in statistics.items()}
    defined = {
        name: s
        for name, s in statistics.items()
        if not isinstance(s, str) and values[name].value is not None
    }
    resampled = m.bootstrap(defined, spec.n, n_resamples=n_resamples, seed=seed)
    for name, samples in resampled.items():
        values[name] = with_interval(values[name], samples)
    return Row(name=spec.name, rule=spec.rule, n=spec.n, metrics=values, notes=spec.notes)
