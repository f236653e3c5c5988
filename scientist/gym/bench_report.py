"""The files and the terminal table of ``scientist bench``: bench.json, bench.md, profiles.png
(ρ(τ) of every method, best attempt and best submission) and aup_vs_cost.png."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from rich.markup import escape
from rich.table import Table

from scientist.gym.profiles import (
    BASELINE,
    VARIANTS,
    BenchScores,
    MethodSummary,
    TaskScores,
    Variant,
    VariantScore,
    profile_steps,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

TITLES: dict[Variant, str] = {"best_attempt": "best attempt", "best_submission": "best submission"}
TAU_TICKS = (1, 1.1, 1.25, 1.5, 2, 3, 5, 10, 20, 50, 100, 1000, 10_000)


@dataclass(frozen=True)
class BenchFiles:
    """Where :func:`write_bench` put its four files."""

    json: Path
    markdown: Path
    profiles: Path
    aup_vs_cost: Path


def write_bench(scores: BenchScores, folder: Path) -> BenchFiles:
    """Write bench.json, bench.md, profiles.png and aup_vs_cost.png into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    files = BenchFiles(
        json=folder / "bench.json",
        markdown=folder / "bench.md",
        profiles=folder / "profiles.png",
        aup_vs_cost=folder / "aup_vs_cost.png",
    )
    files.json.write_text(scores.model_dump_json(indent=2) + "\n", encoding="utf-8")
    files.markdown.write_text(markdown_report(scores, files), encoding="utf-8")
    plot_profiles(scores, files.profiles)
    plot_aup_vs_cost(scores, files.aup_vs_cost)
    return files


def load_bench(path: Path) -> BenchScores:
    """bench.json back as :class:`BenchScores`."""
    return BenchScores.model_validate_json(path.read_text(encoding="utf-8"))


def bench_table(scores: BenchScores) -> Table:
    """One row per method: AUP of both variants and cost; the best method first."""
    title = f"AUP over {len(scores.tasks)} tasks (higher is better, at most {scores.log10_tau_max})"
    table = Table(title=title)
    for header in ("method", "AUP best attempt", "AUP best submission", "episodes", "cost $"):
        table.add_column(header, justify="left" if header == "method" else "right")
    table.add_column("$ / episode", justify="right")
    table.add_column("tokens / episode", justify="right")
    for row in scores.methods:
        table.add_row(escape(row.method), *_summary_cells(row))
    return table


def _summary_cells(row: MethodSummary) -> list[str]:
    """AUPs, episodes, total and mean cost, mean tokens ('—' for the baseline's cost)."""
    aups = [f"{row.aup_best_attempt:.3f}", f"{row.aup_best_submission:.3f}"]
    if row.cost is None:
        return [*aups, "—", "—", "—", "—"]
    cost = row.cost
    return [
        *aups,
        str(cost.episodes),
        f"{cost.cost_usd:.4f}",
        f"{cost.cost_usd_per_episode:.4f}",
        f"{cost.tokens_per_episode:.0f}",
    ]


def markdown_report(scores: BenchScores, files: BenchFiles | None = None) -> str:
    """bench.md: the AUP table, the per-task table, the notes and how to read them."""
    parts = [
        "# Bench: performance profiles and AUP",
        _HOW_TO_READ.format(log_tau=scores.log10_tau_max, tau=scores.tau_max, eps=scores.epsilon),
        "## AUP and cost",
        _markdown_summary(scores),
        "## Per task",
        "Each cell: best value over the attempts (performance ratio; 1 = best). "
        "`—` no valid value; *italic* ratio: infeasible (no value, or worse than the baseline).",
        *(_markdown_task(task) for task in scores.tasks),
    ]
    notes = _notes(scores)
    if notes:
        parts += ["## Notes", "\n".join(f"- {n}" for n in notes)]
    if files is not None:
        parts += [
            "## Plots",
            f"![performance profiles]({files.profiles.name})",
            f"![AUP against cost]({files.aup_vs_cost.name})",
        ]
    return "\n\n".join(parts) + "\n"


_HOW_TO_READ = """\
Methods are the models (all their attempts) and the template's `baseline`. On each task a
method's performance ratio r is how far it is from the best method there: 1 is the best,
2 means half as good (the best value divided by its value, or its value divided by the best
when lower is better). A method with no valid value, or one worse than the baseline, is
infeasible and gets (1 + {eps}) × the worst feasible ratio on that task. The profile
ρ(τ) is the fraction of tasks on which a method is within a factor τ of the best; AUP is
the area under ρ against log10 τ for τ from 1 to {tau:.3g}, at most {log_tau:.1f} (best
on every task). Higher is better. Definitions: MLGym (Nathani et al. 2025) after Dolan &
Moré (2002); see `scientist/gym/profiles.py`."""


def _markdown_summary(scores: BenchScores) -> str:
    head = [
        "method",
        "AUP best attempt",
        "AUP best submission",
        "episodes",
        "cost $",
        "$ / episode",
        "tokens / episode",
    ]
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    for row in scores.methods:
        lines.append("| " + " | ".join([_md(row.method), *_summary_cells(row)]) + " |")
    return "\n".join(lines)


def _markdown_task(task: TaskScores) -> str:
    baseline = "none" if task.baseline is None else f"{task.baseline:.4g}"
    head = f"### {_md(task.task)} ({task.direction} is better, baseline {baseline})"
    table_head = "| method | episodes | best attempt | best submission |\n|---|---:|---|---|"
    lines = [head, "", table_head]
    for row in task.methods:
        cells = [_cell(row.best_attempt), _cell(row.best_submission)]
        lines.append(f"| {_md(row.method)} | {row.episodes} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _cell(score: VariantScore) -> str:
    value = "—" if score.value is None else f"{score.value:.4g}"
    if score.ratio is None:
        return f"{value} (not scored)"
    ratio = f"{score.ratio:.3f}" if score.feasible else f"*{score.ratio:.3f}*"
    return f"{value} ({ratio})"


def _notes(scores: BenchScores) -> list[str]:
    """Tasks left out of a profile, and tasks whose values were shifted above zero."""
    notes = []
    for task in scores.tasks:
        for variant in VARIANTS:
            note = task.notes(variant)
            if not note.scored:
                notes.append(
                    f"{_md(task.task)}, {TITLES[variant]}: no method has a valid value; "
                    "left out of this profile."
                )
            elif note.shift:
                notes.append(
                    f"{_md(task.task)}, {TITLES[variant]}: values ≤ 0, shifted by "
                    f"{note.shift:.4g} before the ratios."
                )
    return notes


def _md(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return text.replace("|", "\\|").replace("\n", " ")


def plot_profiles(scores: BenchScores, path: Path) -> Path:
    """ρ(τ) of every method as steps on a log τ axis: best attempt left, best submission right."""
    fig, axes = _pyplot().subplots(1, 2, figsize=(11.0, 4.5), sharey=True)
    for ax, variant in zip(axes, VARIANTS, strict=True):
        _draw_profiles(ax, scores, variant)
    axes[0].set_ylabel("ρ(τ): fraction of tasks with ratio ≤ τ")
    return _save(fig, path)


def _draw_profiles(ax: Axes, scores: BenchScores, variant: Variant) -> None:
    for row in scores.methods:
        taus, rhos = profile_steps(scores.ratios(row.method, variant), scores.tau_max)
        style = "--" if row.method == BASELINE else "-"
        label = f"{row.method} (AUP {row.aup(variant):.3f})"
        ax.step(taus, rhos, where="post", linestyle=style, label=label)
    ax.set_xscale("log")
    ticks = [t for t in TAU_TICKS if t <= scores.tau_max]
    ax.set_xticks(ticks, labels=[f"{t:g}" for t in ticks])
    ax.set_xticks([], minor=True)
    ax.set(xlim=(1.0, scores.tau_max), ylim=(-0.02, 1.02), xlabel="τ (performance ratio)")
    ax.set_title(f"Performance profile, {TITLES[variant]}")
    ax.legend(loc="lower right", fontsize="small")


def plot_aup_vs_cost(scores: BenchScores, path: Path) -> Path:
    """AUP against mean API cost per episode; the baseline's AUPs as horizontal lines
    (dashed: best attempt, dotted: best submission)."""
    fig, ax = _pyplot().subplots(figsize=(6.5, 4.5))
    for i, row in enumerate(scores.methods):
        color = f"C{i % 10}"
        if row.cost is None:
            ax.axhline(row.aup_best_attempt, color=color, linestyle="--", label=row.method)
            ax.axhline(row.aup_best_submission, color=color, linestyle=":")
            continue
        x = row.cost.cost_usd_per_episode
        ax.scatter([x], [row.aup_best_attempt], color=color, marker="o", label=row.method)
        ax.scatter([x], [row.aup_best_submission], color=color, marker="o", facecolors="none")
        ax.annotate(
            row.method,
            (x, row.aup_best_attempt),
            fontsize="x-small",
            textcoords="offset points",
            xytext=(5, 4),
        )
    ax.set(xlabel="mean API cost per episode (USD)", ylabel="AUP")
    ax.set_title("AUP against cost (filled: best attempt, hollow: best submission)", fontsize=10)
    ax.legend(loc="best", fontsize="small")
    return _save(fig, path)


def _pyplot() -> ModuleType:
    """pyplot on the Agg backend; imported on first use (slow to import, only plots need it)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    _pyplot().close(fig)
    return path
