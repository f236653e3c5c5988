"""The ROC curve and the reliability diagram, as PNG files (matplotlib's Agg backend)."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from reviewer.calibration import metrics as m
from reviewer.calibration.errors import UndefinedMetricError
from reviewer.calibration.metrics import FloatArray

if TYPE_CHECKING:
    from matplotlib.figure import Figure

Curve = tuple[str, FloatArray, FloatArray]  # label, labels y, scores


def _pyplot() -> ModuleType:
    """pyplot on the Agg backend (files only, no display needed).

    Imported on first use: pyplot takes ~0.4 s to import, and every ``reviewer`` command
    imports this module when the CLI registers ``calibrate``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_roc(curves: list[Curve], path: Path) -> Path:
    """One ROC curve per (label, y, score), with its AUC in the legend, and the chance line."""
    fig, ax = _pyplot().subplots(figsize=(5.5, 5.0))
    for label, y, score in curves:
        try:
            fpr, tpr = m.roc_points(y, score)
            auc = m.roc_auc(y, score)
        except UndefinedMetricError:
            continue
        # Tied scores form one diagonal segment, as the AUC (ties count 1/2) measures it.
        ax.plot(fpr, tpr, label=f"{short(label)} (AUC {auc:.2f})")
    ax.plot([0, 1], [0, 1], linestyle=":", color="grey", label="chance")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", xlim=(0, 1), ylim=(0, 1))
    ax.set_title("ROC of the continuous score against the decision")
    ax.legend(loc="lower right", fontsize="small")
    return _save(fig, path)


def plot_reliability(
    y: FloatArray, probability: FloatArray, path: Path, *, title: str, n_bins: int = 10
) -> Path:
    """Observed accept rate against held-out predicted probability, per bin, with counts."""
    bins = m.reliability_bins(y, probability, n_bins)
    fig, ax = _pyplot().subplots(figsize=(5.5, 5.0))
    ax.plot([0, 1], [0, 1], linestyle=":", color="grey", label="perfect calibration")
    xs = [b.mean_probability for b in bins]
    ax.plot(xs, [b.accept_rate for b in bins], marker="o", label="held-out (CV)")
    for b in bins:
        ax.annotate(
            str(b.count),
            (b.mean_probability, b.accept_rate),
            fontsize="x-small",
            textcoords="offset points",
            xytext=(4, -10),
        )
    ax.set(
        xlabel="predicted accept probability",
        ylabel="observed accept rate",
        xlim=(0, 1),
        ylim=(0, 1),
    )
    ax.set_title(short(title, 60), fontsize="medium")
    ax.legend(loc="upper left", fontsize="small")
    return _save(fig, path)


def short(label: str, width: int = 45) -> str:
    """A label cut to ``width`` characters, so that legends and titles fit the figure."""
    return label if len(label) <= width else label[: width - 1] + "…"


def _save(fig: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    _pyplot().close(fig)
    return path
