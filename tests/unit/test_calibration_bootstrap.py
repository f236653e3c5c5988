"""The fast bootstrap path: one pass over shared resamples, one confusion matrix per resample,
scikit-learn without its re-checks, and the same figures as scikit-learn's plain calls."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import sklearn
import sklearn.metrics
from scipy.stats import spearmanr
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    brier_score_loss,
    f1_score,
    roc_auc_score,
)

from reviewer.calibration import evaluate as e
from reviewer.calibration import fit
from reviewer.calibration import metrics as m
from reviewer.calibration.errors import UndefinedMetricError


def _papers(n: int = 120, seed: int = 7) -> dict[str, np.ndarray]:
    """Labels, a tied score, fractional votes, probabilities and a target for ``n`` papers."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n).astype(np.float64)
    score = np.round(4 + 1.5 * y + rng.normal(0, 1.5, n))
    return {
        "y": y,
        "score": score,
        "votes": rng.choice([0, 0.25, 1 / 3, 0.5, 2 / 3, 1], size=n),
        "prob": 1 / (1 + np.exp(-(score - 5))),
        "target": score + rng.normal(0, 2, n),
    }


def test_decision_metrics_from_one_matrix_equal_sklearns_weighted_scores() -> None:
    d = _papers()
    y, votes = d["y"], d["votes"]
    truth, vote = np.concatenate((y, y)), np.r_[np.ones(y.size), np.zeros(y.size)]
    weight = np.concatenate((votes, 1 - votes))
    counts = m.confusion(y, votes)
    assert counts.accuracy() == pytest.approx(
        accuracy_score(truth, vote, sample_weight=weight), abs=1e-12
    )
    assert counts.balanced_accuracy() == balanced_accuracy_score(truth, vote, sample_weight=weight)
    assert counts.f1() == pytest.approx(f1_score(truth, vote, sample_weight=weight), abs=1e-12)


def test_continuous_metrics_equal_the_plain_scipy_and_sklearn_calls() -> None:
    d = _papers(seed=11)
    assert m.roc_auc(d["y"], d["score"]) == roc_auc_score(d["y"], d["score"])  # to the bit
    assert m.spearman(d["score"], d["target"]) == spearmanr(d["score"], d["target"]).statistic
    assert m.brier(d["y"], d["prob"]) == pytest.approx(
        brier_score_loss(d["y"], d["prob"]), abs=1e-15
    )


@pytest.mark.parametrize(
    ("patched", "call"),
    [
        ("roc_curve", lambda d: m.roc_auc(d["y"], d["score"])),
        ("confusion_matrix", lambda d: m.accuracy(d["y"], d["votes"])),
        ("mean_squared_error", lambda d: m.brier(d["y"], d["prob"])),
    ],
)
def test_sklearn_skips_its_rechecks_inside_a_metric_and_only_there(
    monkeypatch: pytest.MonkeyPatch, patched: str, call: Callable[[dict[str, np.ndarray]], float]
) -> None:
    real = getattr(sklearn.metrics, patched)
    seen: list[dict[str, object]] = []

    def recording(*args: object, **kwargs: object) -> object:
        seen.append(sklearn.get_config())
        return real(*args, **kwargs)

    monkeypatch.setattr(sklearn.metrics, patched, recording)
    call(_papers())
    assert [(c["skip_parameter_validation"], c["assume_finite"]) for c in seen] == [(True, True)]
    after = sklearn.get_config()
    assert (after["skip_parameter_validation"], after["assume_finite"]) == (False, False)


@pytest.mark.parametrize(
    ("estimator", "fit_one"),
    [
        (LogisticRegression, fit.fit_logistic),
        (IsotonicRegression, fit.fit_isotonic),
    ],
)
def test_calibrators_are_fitted_without_sklearns_rechecks(
    monkeypatch: pytest.MonkeyPatch, estimator: Any, fit_one: Callable[..., object]
) -> None:
    real = estimator.fit
    seen: list[dict[str, object]] = []

    def recording(self: object, *args: object, **kwargs: object) -> object:
        seen.append(sklearn.get_config())
        return real(self, *args, **kwargs)

    monkeypatch.setattr(estimator, "fit", recording)
    d = _papers()
    fit_one(d["y"], d["score"])
    assert [(c["skip_parameter_validation"], c["assume_finite"]) for c in seen] == [(True, True)]
    assert sklearn.get_config()["assume_finite"] is False


def test_bad_input_is_still_refused_with_sklearns_checks_off() -> None:
    with pytest.raises(UndefinedMetricError, match="score holds 1 NaN/inf"):
        m.roc_auc([0, 1, 0], [0.1, np.nan, 0.3])
    with pytest.raises(UndefinedMetricError, match=r"decision must lie in \[0, 1\]"):
        m.accuracy([0, 1], [0.5, 1.5])


def test_confusion_by_index_computes_once_per_index_values_and_never_goes_stale() -> None:
    d = _papers()
    counts = m.confusion_by_index(d["y"], d["votes"])
    idx = np.array([3, 1, 4, 1, 5, 9, 2, 6], dtype=np.intp)
    first = counts(idx)
    assert counts(idx.copy()) is first  # same indices by value: remembered
    assert first == m.confusion(d["y"][idx], d["votes"][idx])
    idx[0] = 7  # the same array, changed: recomputed, not served stale
    assert counts(idx) == m.confusion(d["y"][idx], d["votes"][idx]) != first


def test_bootstrap_gives_every_statistic_the_same_resamples_and_its_own_skips() -> None:
    seen: dict[str, list[np.ndarray]] = {"a": [], "b": []}

    def a(idx: np.ndarray) -> float:
        seen["a"].append(idx.copy())
        return float(idx.sum())

    def b(idx: np.ndarray) -> float:
        seen["b"].append(idx.copy())
        if idx[0] == 0:
            raise UndefinedMetricError("first paper drawn first")
        return 1.0

    out = m.bootstrap({"a": a, "b": b}, 5, n_resamples=300, seed=2)
    assert np.array_equal(np.stack(seen["a"]), np.stack(seen["b"]))
    first_is_zero = int(sum(s[0] == 0 for s in seen["a"]))
    assert 0 < first_is_zero < 300
    assert (out["a"].skipped, len(out["a"].values)) == (0, 300)
    assert (out["b"].skipped, len(out["b"].values)) == (first_is_zero, 300 - first_is_zero)
    assert out["a"].interval() == m.bootstrap_ci(a, 5, n_resamples=300, seed=2)


def test_an_interval_of_no_values_says_how_many_were_skipped() -> None:
    with pytest.raises(
        UndefinedMetricError, match=r"^no bootstrap resample had a value \(7 skipped\)$"
    ):
        m.Resampled(values=[], skipped=7).interval()


def _row(d: dict[str, np.ndarray]) -> e.RowSpec:
    stats = e.standard_statistics(d["y"], d["score"], d["votes"], d["prob"], d["target"])
    return e.RowSpec(name="r", rule="rule", n=d["y"].size, statistics=stats)


def test_one_pass_row_equals_each_metric_bootstrapped_alone() -> None:
    d = _papers(n=60)
    spec = _row(d)
    row = e.score_row(spec, n_resamples=200, seed=3)
    assert list(row.metrics) == list(e.METRICS)
    for name, value in row.metrics.items():
        statistic = spec.statistics[name]
        assert not isinstance(statistic, str)
        alone = m.bootstrap_ci(statistic, spec.n, n_resamples=200, seed=3)
        assert value.value == statistic(np.arange(spec.n, dtype=np.intp))
        assert (value.lo, value.hi, value.skipped) == (alone.lo, alone.hi, alone.skipped)


def test_a_rows_five_decision_metrics_share_one_confusion_matrix_per_resample(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = 0
    real = sklearn.metrics.confusion_matrix

    def counting(*args: object, **kwargs: object) -> object:
        nonlocal calls
        calls += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(sklearn.metrics, "confusion_matrix", counting)
    e.score_row(_row(_papers(n=40)), n_resamples=25, seed=0)
    assert calls == 1 + 25  # all papers once, then once per resample


def _only_on_all_six(idx: np.ndarray) -> float:
    if not np.array_equal(idx, np.arange(6)):
        raise UndefinedMetricError("defined on the full sample only")
    return 0.5


def test_undefined_and_interval_less_metrics_keep_their_reasons() -> None:
    y, score = np.array([1.0, 0, 0, 0, 0, 0]), np.array([6.0, 1, 2, 3, 4, 5])
    stats: dict[str, e.Statistic | str] = dict.fromkeys(e.METRICS, "not measured")
    stats["roc_auc"] = lambda i: m.roc_auc(y[i], score[i])
    stats["f1"] = lambda i: m.f1(y[i] * 0, y[i] * 0)  # never defined
    stats["brier"] = _only_on_all_six
    row = e.score_row(e.RowSpec("r", "rule", 6, stats), n_resamples=50, seed=0)
    assert row.metrics["accuracy"] == e.MetricValue(value=None, reason="not measured")
    assert row.metrics["f1"] == e.MetricValue(
        value=None, reason="undefined: F1 needs an accepted paper or an accept vote"
    )
    assert row.metrics["brier"] == e.MetricValue(
        value=0.5, reason="no interval: no bootstrap resample had a value (50 skipped)"
    )
    auc = row.metrics["roc_auc"]
    assert auc.value == auc.lo == auc.hi == 1.0 and 0 < auc.skipped < 50 and auc.reason == ""
