"""Numbers and figures from experiments.json: tables and figure blocks built by code.

The model never writes a number into a table: the results tables are generated here
from ``ExperimentRecord`` (mean ± standard error per run, group and metric), and the
same numbers, as text, are what the writer prompts show.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from pydantic import BaseModel, ConfigDict
from pylatex import NoEscape, Tabular
from pylatex.utils import escape_latex

from scientist.experiments.models import ExperimentRecord, RunOutcome
from scientist.writeup.latex import plain_to_latex

METRICS_PER_TABLE = 4


class FigureInfo(BaseModel):
    """A figure copied into paper/: file name, label and the note about it."""

    model_config = ConfigDict(frozen=True)

    file: str
    label: str
    description: str


class TableInfo(BaseModel):
    """A results table: label and its LaTeX (a complete table float)."""

    model_config = ConfigDict(frozen=True)

    label: str
    latex: str


def run_label(run: RunOutcome) -> str:
    """A readable name for a run: the baseline, or Run i."""
    if run.run_name == "run_0":
        return "Baseline"
    match = re.fullmatch(r"run_(\d+)", run.run_name)
    return f"Run {match.group(1)}" if match else run.run_name


def fmt(value: float) -> str:
    """A result as the tables and prompts write it (4 significant digits)."""
    return f"{value:.4g}"


def metric_names(runs: list[RunOutcome]) -> list[str]:
    """Every metric name across runs and groups, in first-seen order."""
    names: dict[str, None] = {}
    for run in runs:
        for group in run.results.values():
            names.update(dict.fromkeys(group.means))
    return list(names)


def results_text(record: ExperimentRecord) -> str:
    """The results as plain lines for prompts: run, group, metric = mean ± stderr."""
    lines = []
    for run in record.successful_runs():
        for group, result in run.results.items():
            cells = []
            for metric, mean in result.means.items():
                stderr = result.stderrs.get(metric)
                cells.append(f"{metric} = {fmt(mean)}" + (f" ± {fmt(stderr)}" if stderr else ""))
            lines.append(f"{run_label(run)} ({run.run_name}), {group}: " + "; ".join(cells))
    return "\n".join(lines) or "(no successful runs)"


def result_values(record: ExperimentRecord) -> list[float]:
    """Every number in the results (means and standard errors)."""
    values: list[float] = []
    for run in record.successful_runs():
        for result in run.results.values():
            values += list(result.means.values()) + list(result.stderrs.values())
    return values


def _cell(run: RunOutcome, group: str, metric: str) -> str:
    result = run.results.get(group)
    if result is None or metric not in result.means:
        return "--"
    mean, stderr = result.means[metric], result.stderrs.get(metric)
    return f"${fmt(mean)} \\pm {fmt(stderr)}$" if stderr is not None else f"${fmt(mean)}$"


def results_tables(record: ExperimentRecord) -> list[TableInfo]:
    """Results tables (a table per 4 metrics): rows run × group, mean ± stderr cells."""
    runs = record.successful_runs()
    metrics = metric_names(runs)
    tables = []
    for start in range(0, len(metrics), METRICS_PER_TABLE):
        chunk = metrics[start : start + METRICS_PER_TABLE]
        label = "tab:results" if start == 0 else f"tab:results{start // METRICS_PER_TABLE + 1}"
        tables.append(TableInfo(label=label, latex=_table(runs, chunk, label)))
    return tables


def _table(runs: list[RunOutcome], metrics: list[str], label: str) -> str:
    tabular = Tabular("ll" + "r" * len(metrics), booktabs=True)
    tabular.add_row(["Run", "Group", *(plain_to_latex(m) for m in metrics)], escape=False)
    tabular.add_hline()
    for run in runs:
        for group in run.results:
            cells = [_cell(run, group, m) for m in metrics]
            row = [escape_latex(run_label(run)), plain_to_latex(group), *cells]
            tabular.add_row([NoEscape(c) for c in row])
    caption = "Mean $\\pm$ standard error per run and group, as measured (experiments.json)."
    return "\n".join(
        [
            "\\begin{table}[htbp]",
            "\\centering",
            "\\small",
            f"\\caption{{{caption}}}",
            f"\\label{{{label}}}",
            "\\resizebox{\\linewidth}{!}{%" if len(metrics) > 2 else "{%",
            tabular.dumps(),
            "}",
            "\\end{table}",
        ]
    )


def figure_label(file: str) -> str:
    """``fig:<stem>`` with only safe characters."""
    return "fig:" + re.sub(r"[^A-Za-z0-9]+", "-", Path(file).stem).strip("-").lower()


def collect_figures(record: ExperimentRecord, idea_dir: Path, paper_dir: Path) -> list[FigureInfo]:
    """Copy the record's PNGs (or every PNG in the idea folder) into paper/; missing ones skip."""
    notes = [(f.path, f.description) for f in record.figures]
    if not notes:
        notes = [(p.name, "") for p in sorted(idea_dir.glob("*.png"))]
    figures, seen = [], set()
    for rel, description in notes:
        source = (idea_dir / rel).resolve()
        if not source.is_file() or not source.is_relative_to(idea_dir.resolve()):
            continue
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", source.name)
        if name in seen or source.suffix.lower() not in (".png", ".jpg", ".jpeg", ".pdf"):
            continue
        seen.add(name)
        shutil.copyfile(source, paper_dir / name)
        figures.append(FigureInfo(file=name, label=figure_label(name), description=description))
    return figures


def figure_latex(figure: FigureInfo) -> str:
    """A figure float for a copied image, captioned with its (escaped) note."""
    caption = plain_to_latex(figure.description.strip() or Path(figure.file).stem.replace("_", " "))
    return "\n".join(
        [
            "\\begin{figure}[htbp]",
            "\\centering",
            f"\\includegraphics[width=0.8\\linewidth]{{{figure.file}}}",
            f"\\caption{{{caption}}}",
            f"\\label{{{figure.label}}}",
            "\\end{figure}",
        ]
    )


def figures_text(figures: list[FigureInfo]) -> str:
    """The figure list for prompts: label, file and note."""
    lines = [f"Figure~\\ref{{{f.label}}} ({f.file}): {f.description or 'no note'}" for f in figures]
    return "\n".join(lines) or "(no figures)"
