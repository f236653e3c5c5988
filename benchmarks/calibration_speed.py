"""Bootstrap cost of the calibration metrics: scikit-learn's checks off (as shipped) against on.

``reviewer calibrate`` gives every figure a 95% bootstrap interval, so each metric runs once
per resample and row: tens of thousands of calls on a few hundred papers, where
scikit-learn's argument and input checks cost more than its arithmetic. Our metrics check
their inputs themselves and call scikit-learn under ``sklearn_on_checked_inputs`` (its
checks off); a row's five decision metrics share one confusion matrix per resample.
Three paths, timed in the same run on the rows ``reviewer calibrate --reviews`` scores:

- plain: scikit-learn's and SciPy's public one-call functions with their checks, one call
  per metric (``roc_auc_score``, ``balanced_accuracy_score``, ``accuracy_score``,
  ``f1_score``, ``confusion_matrix`` for FPR and FNR, ``spearmanr``, ``brier_score_loss``),
  one bootstrap per metric: what the code did before this change;
- checks on: our metrics and ``evaluate.score_row`` with ``sklearn_on_checked_inputs`` made
  a no-op, so scikit-learn validates every call again;
- shipped: as the package runs them.

Per call: the metric groups on the same resamples of the reviewer's row (median us).
Per row: ``score_row`` over N resamples, checks on against shipped in alternating order
(median of rounds); the reviewer's row also by the plain path. Every path's figures are
checked against the shipped ones: identical with the checks on, within 1e-12 for plain.
Data: the ICLR 2022 split in ../shared with its stored GPT-4o reviews, else the 20 shipped
synthetic papers. Prints tables and, as its last stdout line, one JSON object.
"""

from __future__ import annotations

import argparse
import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields
from importlib.metadata import version
from pathlib import Path
from unittest import mock

import numpy as np
from _common import emit_json, fmt, make_console, median
from rich.table import Table
from scipy.stats import spearmanr
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    brier_score_loss,
    confusion_matrix,
    f1_score,
    roc_auc_score,
)

from reviewer.calibration import evaluate as e
from reviewer.calibration import metrics as m
from reviewer.calibration import run as r
from reviewer.calibration.baselines import mean_ratings
from reviewer.calibration.data import labels, load_papers, load_reviews
from reviewer.calibration.errors import UndefinedMetricError
from reviewer.calibration.fit import cross_validate
from reviewer.calibration.metrics import FloatArray, IndexArray

ICLR = Path(__file__).resolve().parents[2] / "shared" / "data" / "iclr2022"
SAMPLE = Path(__file__).resolve().parents[1] / "samples" / "calibration"
TOLERANCE = 1e-12
GROUPS = {
    "ROC-AUC": ["roc_auc"],
    "5 decision metrics (one matrix)": ["balanced_accuracy", "accuracy", "f1", "fpr", "fnr"],
    "Spearman": ["spearman"],
    "Brier": ["brier"],
    "ECE (numpy in every path)": ["ece"],
}
PATHS = ("plain", "checks_on", "shipped")


@contextlib.contextmanager
def sklearn_checks_on() -> Iterator[None]:
    """Our metrics with scikit-learn's argument and input checks back on."""
    with mock.patch.object(m, "sklearn_on_checked_inputs", contextlib.nullcontext):
        yield


@contextlib.contextmanager
def as_shipped() -> Iterator[None]:
    """Our metrics as the package runs them."""
    yield


# --- the plain path: one scikit-learn or SciPy call per metric -----------------------------------


@dataclass(frozen=True)
class Predictions:
    """One row's per-paper arrays: labels, score, vote, probability and Spearman target."""

    y: FloatArray
    score: FloatArray
    decision: FloatArray
    prob: FloatArray
    target: FloatArray

    def take(self, idx: IndexArray) -> Predictions:
        """The papers ``idx`` (a resample)."""
        return Predictions(*(getattr(self, f.name)[idx] for f in fields(self)))


def _weighted(p: Predictions) -> dict[str, FloatArray]:
    """Each paper as an accept vote weighted by its vote and a reject vote by the rest."""
    ones = np.ones(p.y.size)
    return {
        "y_true": np.concatenate((p.y, p.y)),
        "y_pred": np.concatenate((ones, 0 * ones)),
        "sample_weight": np.concatenate((p.decision, 1 - p.decision)),
    }


def _both_classes(p: Predictions) -> Predictions:
    if p.y.min() == p.y.max():
        raise UndefinedMetricError("one class")
    return p


def _defined(value: float) -> float:
    if np.isnan(value):
        raise UndefinedMetricError("no value")
    return float(value)


def _error_rate(p: Predictions, truth: int) -> float:
    """FPR (truth 0) or FNR (truth 1) from scikit-learn's confusion matrix."""
    matrix = confusion_matrix(labels=[0, 1], **_weighted(p))
    wrong, total = matrix[truth, 1 - truth], matrix[truth].sum()
    return _defined(wrong / total if total else np.nan)


PLAIN: dict[str, Callable[[Predictions], float]] = {
    "balanced_accuracy": lambda p: float(balanced_accuracy_score(**_weighted(_both_classes(p)))),
    "accuracy": lambda p: float(accuracy_score(**_weighted(p))),
    "f1": lambda p: _defined(f1_score(**_weighted(p), zero_division=np.nan)),
    "roc_auc": lambda p: float(roc_auc_score(_both_classes(p).y, p.score)),
    "fpr": lambda p: _error_rate(p, 0),
    "fnr": lambda p: _error_rate(p, 1),
    "spearman": lambda p: _defined(spearmanr(p.score, p.target).statistic),
    "brier": lambda p: float(brier_score_loss(p.y, p.prob)),
    "ece": lambda p: m.expected_calibration_error(p.y, p.prob),
}


def plain_statistics(pred: Predictions) -> dict[str, e.Statistic]:
    """The plain path as statistics of resampled indices."""

    def statistic(metric: Callable[[Predictions], float]) -> e.Statistic:
        return lambda idx: metric(pred.take(idx))

    return {name: statistic(metric) for name, metric in PLAIN.items()}


def plain_row(pred: Predictions, n_resamples: int) -> dict[str, e.MetricValue]:
    """The reviewer's row as before this change: one bootstrap per metric, plain calls."""
    values = {}
    for name, statistic in plain_statistics(pred).items():
        value = e.value_on_all_papers(statistic, pred.y.size)
        interval = m.bootstrap_ci(statistic, pred.y.size, n_resamples=n_resamples, seed=0)
        values[name] = e.MetricValue(
            value=value.value, lo=interval.lo, hi=interval.hi, skipped=interval.skipped
        )
    return values


# --- data and rows -------------------------------------------------------------------------------


def data_files() -> tuple[Path, Path, str]:
    """Papers, reviews and a label: the ICLR split when ../shared has it, else the sample."""
    if (ICLR / "calibration.jsonl").is_file() and (ICLR / r.PEER_FILE).is_file():
        return ICLR / "calibration.jsonl", ICLR / r.PEER_FILE, "ICLR 2022 (../shared)"
    return SAMPLE / "iclr_small.jsonl", SAMPLE / "iclr_small_reviews.csv", "shipped sample"


def load_rows(data: Path, reviews: Path) -> tuple[Predictions, list[e.RowSpec]]:
    """The reviewer's CV predictions, and every row spec of ``reviewer calibrate --reviews``
    (the reviews are the peer file, so there is no peer row)."""
    scores = load_reviews(reviews)
    papers = [p for p in load_papers(data) if p.id in scores]
    y = labels(papers)
    score = np.array([scores[p.id] for p in papers], dtype=np.float64)
    cv = cross_validate(y, score, "logistic", seed=0)
    pred = Predictions(y, score, cv.decision, cv.probability, mean_ratings(papers))
    options = r.CalibrateOptions(data=data)
    specs = r.reviewer_specs("reviewer", y, score, cv, papers, options)
    return pred, specs + r.baseline_specs(papers, y, options)


def same_figures(a: dict[str, e.MetricValue], b: dict[str, e.MetricValue]) -> float:
    """The largest difference between two rows' figures; raises if one has a figure the
    other lacks."""
    worst = 0.0
    for name in e.METRICS:
        for x, z in (
            (a[name].value, b[name].value),
            (a[name].lo, b[name].lo),
            (a[name].hi, b[name].hi),
        ):
            if (x is None) != (z is None):
                raise AssertionError(f"{name}: {x} against {z}")
            worst = max(worst, 0.0 if x is None or z is None else abs(x - z))
        if a[name].skipped != b[name].skipped:
            raise AssertionError(f"{name}: {a[name].skipped} against {b[name].skipped} skipped")
    return worst


# --- timing --------------------------------------------------------------------------------------


GroupCall = Callable[[IndexArray], list[float]]


def all_of(statistics: list[e.Statistic]) -> GroupCall:
    """One call of several statistics on the same resample."""
    return lambda idx: [statistic(idx) for statistic in statistics]


def group_calls(pred: Predictions, resamples: list[IndexArray]) -> dict[str, dict[str, GroupCall]]:
    """Per metric group and path, one call of the group's metrics on a resample."""
    plain = plain_statistics(pred)
    ours = e.standard_statistics(pred.y, pred.score, pred.decision, pred.prob, pred.target)
    calls: dict[str, dict[str, GroupCall]] = {}
    for group, names in GROUPS.items():
        mine = [s for n in names if not isinstance(s := ours[n], str)]
        calls[group] = {"plain": all_of([plain[n] for n in names]), "ours": all_of(mine)}
        for idx in resamples:  # the paths agree before they are timed
            a, b = calls[group]["plain"](idx), calls[group]["ours"](idx)
            if max(abs(x - z) for x, z in zip(a, b, strict=True)) > TOLERANCE:
                raise AssertionError(f"{group}: plain {a} against ours {b}")
    return calls


def time_group(call: GroupCall, resamples: list[IndexArray]) -> float:
    """Median microseconds of one call, cycling through resamples (so no cache is warm)."""
    times = []
    for idx in resamples:
        start = time.perf_counter()
        call(idx)
        times.append((time.perf_counter() - start) * 1e6)
    return median(times) or 0.0


def per_call(pred: Predictions, calls: int, rounds: int) -> dict[str, dict[str, float]]:
    """Median us per call of each metric group on each path, on the same resamples."""
    rng = np.random.default_rng(1)
    n = pred.y.size
    resamples = [rng.integers(0, n, size=n) for _ in range(calls)]
    paths = group_calls(pred, resamples)
    runs: dict[str, dict[str, list[float]]] = {g: {p: [] for p in PATHS} for g in GROUPS}
    for round_ in range(rounds):
        order = PATHS if round_ % 2 == 0 else PATHS[::-1]
        for path in order:
            setting = sklearn_checks_on() if path == "checks_on" else as_shipped()
            with setting:
                for group, call in paths.items():
                    fn = call["plain" if path == "plain" else "ours"]
                    runs[group][path].append(time_group(fn, resamples))
    return {g: {p: median(v) or 0.0 for p, v in by_path.items()} for g, by_path in runs.items()}


def time_row(spec: e.RowSpec, n_resamples: int) -> tuple[float, e.Row]:
    """Seconds of one ``score_row``, and the row."""
    start = time.perf_counter()
    row = e.score_row(spec, n_resamples=n_resamples, seed=0)
    return time.perf_counter() - start, row


def per_row(specs: list[e.RowSpec], n_resamples: int, rounds: int) -> dict[str, dict[str, float]]:
    """Median ms per resample of every row, checks on and shipped, figures compared."""
    out: dict[str, dict[str, float]] = {}
    for position, spec in enumerate(specs):
        times: dict[str, list[float]] = {"checks_on": [], "shipped": []}
        rows: dict[str, e.Row] = {}
        for round_ in range(rounds):
            order = ("checks_on", "shipped") if round_ % 2 == 0 else ("shipped", "checks_on")
            for path in order:
                with sklearn_checks_on() if path == "checks_on" else as_shipped():
                    seconds, rows[path] = time_row(spec, n_resamples)
                times[path].append(seconds * 1000 / n_resamples)
        if rows["checks_on"] != rows["shipped"]:
            raise AssertionError(f"{spec.name}: the checks changed a figure")
        out[f"{position + 1}. {spec.name} ({spec.rule})"] = {
            path: median(v) or 0.0 for path, v in times.items()
        }
    return out


# --- output --------------------------------------------------------------------------------------


def report_calls(calls: dict[str, dict[str, float]], n: int) -> None:
    """The per-call table."""
    table = Table(title=f"One call on a resample of {n} papers (median us)")
    for column in ("metrics", "plain sklearn/scipy", "checks on", "shipped", "plain / shipped"):
        table.add_column(column, justify="left" if column == "metrics" else "right")
    for group, row in calls.items():
        ratio = row["plain"] / row["shipped"] if row["shipped"] else None
        table.add_row(
            group, fmt(row["plain"]), fmt(row["checks_on"]), fmt(row["shipped"]), fmt(ratio, 2)
        )
    make_console().print(table)


def report_rows(rows: dict[str, dict[str, float]], plain_ms: float, n_resamples: int) -> None:
    """The per-row table, with totals and the plain path's reviewer row."""
    table = Table(title=f"score_row over {n_resamples} resamples (median ms per resample)")
    for column in ("row", "checks on", "shipped", "on / shipped"):
        table.add_column(column, justify="left" if column == "row" else "right")
    for name, row in rows.items():
        table.add_row(
            name,
            fmt(row["checks_on"], 2),
            fmt(row["shipped"], 2),
            fmt(row["checks_on"] / row["shipped"], 2),
        )
    on, shipped = (sum(row[p] for row in rows.values()) for p in ("checks_on", "shipped"))
    table.add_row("all rows", fmt(on, 2), fmt(shipped, 2), fmt(on / shipped, 2))
    console = make_console()
    console.print(table)
    first = next(iter(rows.values()))["shipped"]
    console.print(
        f"reviewer row by the plain path (one bootstrap per metric, plain calls): "
        f"{plain_ms:.2f} ms per resample, {plain_ms / first:.2f}x the shipped {first:.2f} ms"
    )
    console.print(f"all rows as shipped: {shipped:.1f} s per 1000 resamples")


def main() -> None:
    """Load the rows, check and time every path, print the tables and the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resamples", type=int, default=200, help="bootstrap resamples per row")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per row")
    parser.add_argument("--calls", type=int, default=200, help="resamples per timed call group")
    args = parser.parse_args()
    data, reviews, label = data_files()
    pred, specs = load_rows(data, reviews)
    make_console().print(f"data: {label}, {pred.y.size} papers, {len(specs)} rows")
    calls = per_call(pred, args.calls, args.rounds)
    report_calls(calls, pred.y.size)
    rows = per_row(specs, args.resamples, args.rounds)
    plain_times, plain_diff = [], 0.0
    for _ in range(args.rounds):
        start = time.perf_counter()
        plain = plain_row(pred, args.resamples)
        plain_times.append((time.perf_counter() - start) * 1000 / args.resamples)
        shipped = e.score_row(specs[0], n_resamples=args.resamples, seed=0).metrics
        plain_diff = max(plain_diff, same_figures(plain, shipped))
    if plain_diff > TOLERANCE:
        raise AssertionError(f"the plain path moved a figure by {plain_diff:.3g}")
    plain_ms = median(plain_times) or 0.0
    report_rows(rows, plain_ms, args.resamples)
    on, shipped_ms = (sum(row[p] for row in rows.values()) for p in ("checks_on", "shipped"))
    first = next(iter(rows.values()))["shipped"]
    emit_json(
        {
            "data": label,
            "n_papers": int(pred.y.size),
            "versions": {name: version(name) for name in ("scikit-learn", "scipy", "numpy")},
            "resamples": args.resamples,
            "rounds": args.rounds,
            "per_call_us": calls,
            "per_row_ms_per_resample": rows,
            "all_rows_ms_per_resample": {"checks_on": on, "shipped": shipped_ms},
            "ratio_checks_on_over_shipped": on / shipped_ms,
            "reviewer_row_ms_per_resample": {"plain": plain_ms, "shipped": first},
            "ratio_plain_over_shipped": plain_ms / first,
            "plain_max_abs_diff": plain_diff,
            "checks_on_figures_identical": True,
        }
    )


if __name__ == "__main__":
    main()
