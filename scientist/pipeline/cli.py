"""``scientist run``, ``resume`` and ``batch``: the paper pipeline from the command line."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from gateway.cli_support import PresetOpt, SetOpt, fail
from gateway.errors import AutoscholarError
from gateway.ledger import read_entries, sum_entries
from gateway.report import summary_table
from scientist.pipeline.batch import (
    BatchResult,
    BatchTask,
    LocalProcessExecutor,
    run_batch,
)
from scientist.pipeline.copilot import terminal_copilot
from scientist.pipeline.live import LiveView
from scientist.pipeline.models import IdeaOutcome, RunManifest
from scientist.pipeline.run import RunRequest, resume_pipeline, run_pipeline
from scientist.runstore import RunPaths

out = Console()
err = Console(stderr=True, soft_wrap=True)
CopilotOpt = Annotated[
    bool, typer.Option("--copilot", help="Pause after each stage for approve / edit / feedback.")
]


def outcome_table(rows: list[tuple[str, IdeaOutcome]], title: str = "Ideas") -> Table:
    """Idea, stage reached, status, review score, decision, cost, tokens, time.

    The run column appears only when the rows come from more than one run (a batch).
    """
    with_run = len({label for label, _ in rows}) > 1
    table = Table(title=title)
    columns = ["idea", "stage", "status", "Overall", "decision", "cost $", "tokens", "s"]
    for column in ["run", *columns] if with_run else columns:
        table.add_column(column, overflow="fold")
    for label, o in rows:
        status = o.status + (f": {o.reason}" if o.reason else "")
        overall = "" if o.overall is None else f"{o.overall:.2f}"
        if o.revised_overall is not None:
            overall += f" → {o.revised_overall:.2f}"
        cells = [
            o.name,
            o.stage,
            status,
            overall,
            o.decision or "",
            f"{o.cost_usd:.4f}",
            str(o.tokens),
            f"{o.seconds:.0f}",
        ]
        table.add_row(*([label, *cells] if with_run else cells))
    return table


def report_run(run: RunPaths, manifest: RunManifest) -> None:
    """The outcome table, the usage summary and where the PDFs and reviews are."""
    if not manifest.ideas:
        err.print(
            f"[yellow]No idea went past the ideas stage[/] (all failed, were duplicates or were "
            f"found not novel): see {run.ideas_json}; pipeline.skip_not_novel=false keeps those."
        )
    out.print(outcome_table([(run.root.name, o) for o in manifest.ideas]))
    if run.ledger.is_file():
        out.print(summary_table(sum_entries(read_entries(run.ledger))))
    for o in manifest.ideas:
        if o.paper_pdf:
            out.print(f"paper:  {o.paper_pdf}")
        if o.review_json:
            out.print(f"review: {o.review_json}")
    out.print(f"run folder: {run.root}  (status {manifest.status}, {manifest.wall_s:.0f} s)")


def live(view: LiveView, *, enabled: bool = True) -> AbstractContextManager[object]:
    """The live table on a terminal; one line per event otherwise (logs, CI, co-pilot)."""
    return view if enabled and err.is_terminal else nullcontext()


def run(
    template: str,
    preset: PresetOpt = None,
    set_: SetOpt = None,
    copilot: CopilotOpt = False,
    ideas: Annotated[int | None, typer.Option(help="Ideas taken through the pipeline.")] = None,
    improve: Annotated[bool, typer.Option(help="Revise once from the review.")] = False,
) -> None:
    """Ideas → experiments → write-up → review for one template, in a new run folder."""
    overrides = list(set_ or [])
    if ideas is not None:
        overrides.append(f"pipeline.ideas_to_run={ideas}")
    if improve:
        overrides.append("pipeline.improve=true")
    view = LiveView(err)
    request = RunRequest(
        template=template,
        preset=preset or "default",
        overrides=overrides,
        copilot=terminal_copilot if copilot else None,
        on_event=view,
    )
    try:
        with live(view, enabled=not copilot):
            paths, manifest = run_pipeline(request)
    except AutoscholarError as exc:
        raise typer.Exit(fail(exc)) from exc
    report_run(paths, manifest)


def resume(run_dir: str, copilot: CopilotOpt = False) -> None:
    """Continue a run after a crash or Ctrl-C, from the last completed step of each idea."""
    view = LiveView(err)
    try:
        with live(view, enabled=not copilot):
            paths, manifest = resume_pipeline(
                run_dir, copilot=terminal_copilot if copilot else None, on_event=view
            )
    except AutoscholarError as exc:
        raise typer.Exit(fail(exc)) from exc
    report_run(paths, manifest)


def batch(
    templates: Annotated[str, typer.Option(help="Comma-separated template names or folders.")],
    ideas_per_template: Annotated[int, typer.Option(help="Ideas run per template.")] = 1,
    parallel: Annotated[int, typer.Option(help="Runs at once (processes).")] = 1,
    preset: PresetOpt = None,
    set_: SetOpt = None,
) -> None:
    """Paper runs for several templates at once on a process pool; one failure stops no other."""
    overrides = [*(set_ or []), f"pipeline.ideas_to_run={ideas_per_template}"]
    tasks = [
        BatchTask(template=name.strip(), preset=preset or "default", overrides=overrides)
        for name in templates.split(",")
        if name.strip()
    ]

    def show(result: BatchResult) -> None:
        err.print(
            f"{result.task.template}: {result.status} in {result.seconds:.0f} s"
            + (f" ({result.reason})" if result.reason else "")
        )

    results = run_batch(tasks, LocalProcessExecutor(parallel), on_result=show)
    out.print(batch_table(results))
    if any(r.status == "failed" for r in results):
        raise typer.Exit(1)


def batch_table(results: list[BatchResult]) -> Table:
    """One row per idea of every run; a run that failed before its ideas gets one row."""
    rows: list[tuple[str, IdeaOutcome]] = []
    for result in results:
        label = result.task.template
        if not result.ideas:
            rows.append(
                (
                    label,
                    IdeaOutcome(
                        name="-",
                        status="failed",
                        stage="ideas",
                        reason=result.reason or result.status,
                    ),
                )
            )
        rows += [(label, o) for o in result.ideas]
    return outcome_table(rows, title="Batch")


def register(app: typer.Typer) -> None:
    """Add run, resume and batch to ``app``."""
    app.command()(run)
    app.command()(resume)
    app.command()(batch)
