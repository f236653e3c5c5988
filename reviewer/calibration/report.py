"""The files a calibration run writes: calibration.json, report.md, roc.png, reliability.png."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import Field

from reviewer.calibration.evaluate import METRICS, MetricValue, Row
from reviewer.calibration.metrics import FloatArray
from reviewer.calibration.plots import Curve, plot_reliability, plot_roc
from reviewer.review.decision import Calibration

LENGTH_CAVEAT = (
    "Text length is a confound: accepted papers are camera-ready versions (longer). "
    "A reviewer should beat the text-length rows to show it reads the paper."
)


class CalibrationFile(Calibration):
    """calibration.json: what ``reviewer review`` loads, plus where it came from.

    ``load_calibration`` reads it as a plain :class:`Calibration`, which ignores the extras.
    """

    model: str = Field(description="The reviewer model (or the reviews file) calibrated.")
    settings: dict[str, Any] = Field(description="The settings that produced the scores.")
    data: dict[str, Any] = Field(description="The papers: path, counts, --limit and --seed.")
    cv: dict[str, Any] = Field(description="Held-out (cross-validated) figures of every row.")


@dataclass(frozen=True)
class Figures:
    """What the plots show: ROC curves, and the reviewer's held-out probabilities."""

    roc: list[Curve]
    reliability: tuple[FloatArray, FloatArray]


def cell(value: MetricValue) -> str:
    """'0.65 [0.60, 0.70]', '0.65' without an interval, or '—' without a value."""
    if value.value is None:
        return "—"
    if value.lo is None or value.hi is None:
        return f"{value.value:.3f}"
    return f"{value.value:.3f} [{value.lo:.3f}, {value.hi:.3f}]"


def markdown_table(rows: list[Row]) -> str:
    """One row per reviewer or baseline, one column per metric."""
    head = ["reviewer / baseline", "rule", "n", *METRICS.values()]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        cells = [row.name, row.rule, str(row.n), *(cell(row.metrics[k]) for k in METRICS)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def footnotes(rows: list[Row]) -> list[str]:
    """Each row's own notes, why a cell is empty, and how many resamples were skipped."""
    notes = []
    for row in rows:
        label = f"{row.name} ({row.rule})"
        notes += [f"{label}: {note}" for note in row.notes]
        notes += [
            f"{label}, {METRICS[key]}: {value.reason}"
            for key, value in row.metrics.items()
            if value.reason
        ]
        skipped = [f"{METRICS[k]} {v.skipped}" for k, v in row.metrics.items() if v.skipped]
        if skipped:
            notes.append(
                f"{label}: bootstrap resamples skipped because the metric is undefined on them "
                f"(e.g. one class only): {', '.join(skipped)}"
            )
    return notes


def render_report(calibration: CalibrationFile, rows: list[Row], notes: list[str]) -> str:
    """report.md: what was calibrated, the table, the fit, the notes and the figures."""
    data, cv = calibration.data, calibration.cv
    parts = [
        "# Reviewer calibration",
        f"Reviewer: **{rows[0].name}** (model `{calibration.model}`). Data: `{data['path']}`, "
        f"{data['n_papers']} papers ({data['n_accept']} accepted), --limit {data['limit']}, "
        f"--seed {data['seed']}.",
        f"Every figure is held out: threshold and calibrator are fitted on the other folds of "
        f"a stratified {cv['k']}-fold split (seed {cv['seed']}), never on the papers they "
        f"score. ROC-AUC and Spearman use the continuous score. Intervals: 95% percentile "
        f"bootstrap over papers, {cv['bootstrap_resamples']} seeded resamples.",
        "## Held-out figures",
        markdown_table(rows),
        "## Fitted on all papers (saved in calibration.json)",
        f"- threshold: accept when mean Overall ≥ {calibration.threshold:g}\n"
        f"- calibrator: `{calibration.calibrator.model_dump_json()}`\n"
        f"- provenance: {calibration.provenance}",
        "## Notes",
        "\n".join(f"- {note}" for note in [*notes, *footnotes(rows), LENGTH_CAVEAT]),
        "## Figures",
        "![ROC curve](roc.png)",
        "![Reliability diagram](reliability.png)",
    ]
    return "\n\n".join(parts) + "\n"


def write_outputs(
    out_dir: Path,
    calibration: CalibrationFile,
    rows: list[Row],
    figures: Figures,
    notes: list[str],
) -> dict[str, Path]:
    """Write every file; return their paths by name."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "calibration": out_dir / "calibration.json",
        "report": out_dir / "report.md",
        "roc": plot_roc(figures.roc, out_dir / "roc.png"),
        "reliability": plot_reliability(
            *figures.reliability,
            out_dir / "reliability.png",
            title=f"Reliability of {rows[0].name} (held out)",
        ),
    }
    paths["calibration"].write_text(
        json.dumps(calibration.model_dump(mode="json"), indent=1) + "\n", encoding="utf-8"
    )
    paths["report"].write_text(render_report(calibration, rows, notes), encoding="utf-8")
    return paths
