"""What the coder is told: result tables, the previous round's outcome, and the prompts."""

from __future__ import annotations

from pathlib import Path

from gateway.prompts import render
from scientist.experiments.models import RoundRecord, RunOutcome
from scientist.ideas.models import Idea
from scientist.plan.models import ExperimentPlan, PlannedRun, run_line

PROMPTS = Path(__file__).parent / "prompts"


def results_table(baseline: RunOutcome, runs: list[RunOutcome], max_runs: int | None = None) -> str:
    """A Markdown table: one row per group and metric, one column per run (mean ± stderr).

    ``max_runs`` (the coder's profile: ``coder_table_runs``) keeps the baseline and the latest
    runs, since for the embedded model older columns only lengthen the prompt; None: all.
    """
    latest = runs if max_runs is None else runs[-(max_runs - 1) :]
    shown = [baseline, *latest]
    header = "| group | metric | " + " | ".join(_column(r) for r in shown) + " |"
    rule = "|" + " --- |" * (len(shown) + 2)
    rows = []
    for group, result in baseline.results.items():
        for metric in result.means:
            cells = [_cell(run, group, metric) for run in shown]
            rows.append(f"| {group} | {metric} | " + " | ".join(cells) + " |")
    extra = sorted(
        {(g, m) for r in runs for g, res in r.results.items() for m in res.means}
        - {(g, m) for g, res in baseline.results.items() for m in res.means}
    )
    for group, metric in extra:
        cells = [_cell(run, group, metric) for run in shown]
        rows.append(f"| {group} | {metric} | " + " | ".join(cells) + " |")
    return "\n".join([header, rule, *rows])


def _column(run: RunOutcome) -> str:
    return f"{run.run_name} (baseline)" if run.run_name == "run_0" else run.run_name


def _cell(run: RunOutcome, group: str, metric: str) -> str:
    result = run.results.get(group)
    if result is None or metric not in result.means:
        return "–"
    mean, stderr = result.means[metric], result.stderrs.get(metric)
    return f"{mean:.4g}" if stderr is None else f"{mean:.4g} ± {stderr:.2g}"


def last_round_summary(record: RoundRecord | None) -> str:
    """The previous coding round's outcome, in words the coder can act on."""
    if record is None:
        return ""
    run = record.run
    if record.status == "ok" and run is not None:
        return f"{run.run_name} ran successfully in {run.seconds:.0f} s; its results are above."
    if record.status == "run_failed" and run is not None:
        return (
            f"{run.run_name} FAILED ({run.status}: {run.reason}). Fix experiment.py; the run "
            f"will be retried as {run.run_name}. Error output (last lines):\n{run.error_tail}"
        )
    if record.status == "no_change":
        return "You did not change experiment.py, so nothing was run. Make a concrete edit."
    if record.status == "timeout":
        return "Your previous edit ran out of time. Make a smaller, focused change."
    return "The editor failed in the previous round; try again with a small, focused change."


def code_prompt(
    idea: Idea,
    *,
    round_index: int,
    max_rounds: int,
    run_name: str,
    table: str,
    last_round: str,
    feedback: str | None,
    plan: ExperimentPlan | None = None,
    planned: PlannedRun | None = None,
) -> str:
    """The message for one coding round; with a plan, the plan and the run this round makes."""
    return render(
        PROMPTS,
        "code_round.j2",
        title=idea.Title,
        experiment=idea.Experiment,
        round=round_index,
        max_rounds=max_rounds,
        run_name=run_name,
        command=f"python experiment.py --out_dir={run_name}",
        results_table=table,
        last_round=last_round,
        feedback=feedback or "",
        plan=plan.brief() if plan is not None else "",
        planned_run=f"{run_name} {run_line(planned)}" if planned is not None else "",
    )


def plot_prompt(idea: Idea, runs: list[RunOutcome], error: str, feedback: str | None) -> str:
    """The message for a plotting round."""
    listing = "\n".join(
        f"- {r.run_name}" + (" (baseline)" if r.run_name == "run_0" else "") for r in runs
    )
    return render(
        PROMPTS,
        "plot_round.j2",
        title=idea.Title,
        runs=listing,
        error=error,
        feedback=feedback or "",
    )


def notes_prompt(idea: Idea, figures: list[str], feedback: str | None) -> str:
    """The message for the notes round."""
    return render(
        PROMPTS,
        "notes_round.j2",
        title=idea.Title,
        figures=", ".join(figures),
        feedback=feedback or "",
    )
