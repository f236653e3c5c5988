"""``scientist run``, ``resume`` and ``batch``: the paper pipeline from the command line."""

from __future__ import annotations

import json
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from pydantic import BaseModel, Field
from rich.console import Console
from rich.markup import escape
from rich.text import Text

from core.cli_support import (
    JsonOpt,
    PresetOpt,
    SetOpt,
    console,
    emit_json,
    fail_json,
    settings_from_flags,
)
from core.report import summary_table
from core.runstore import RunPaths
from gateway.errors import EXIT_FAILED, AutoscholarError, MissingDependencyError
from gateway.ledger import Totals, read_entries, sum_entries
from scientist.cli.copilot import terminal_copilot
from scientist.cli.live import LiveView
from scientist.cli.tables import (
    Row,
    batch_rows,
    cut_statuses,
    outcome_table,
    run_rows,
)
from scientist.cli.tables import batch_table as batch_table  # where tests look for it
from scientist.ideas.given import GivenIdeaError, as_setting, dropped_scores, read_ideas
from scientist.pipeline.models import IdeaOutcome, PipelineEvent, RunManifest
from scientist.runs.batch import (
    BatchResult,
    BatchTask,
    Executor,
    LocalProcessExecutor,
    progress_line,
    run_batch,
)
from scientist.runs.run import resume_pipeline, run_pipeline
from scientist.runs.wiring import RunRequest

if TYPE_CHECKING:
    from scientist.runs.ray_executor import TaskEvent

out = Console()
err = console  # stderr: progress and notes, silenced by -q
CopilotOpt = Annotated[
    bool, typer.Option("--copilot", help="Pause after each stage for approve / edit / feedback.")
]
IdeaOpt = Annotated[
    Path | None,
    typer.Option(
        "--idea",
        help="Your own idea, in Markdown: a '# Title' line, then the idea's text. It is used "
        "instead of generated ideas, verbatim, and novelty-checked.",
    ),
]
IdeaJsonOpt = Annotated[
    Path | None,
    typer.Option(
        "--idea-json", help="Your own idea(s) in ideas.json's form: one idea object or a list."
    ),
]
TopicOpt = Annotated[
    str | None, typer.Option("--topic", help="Steer idea generation to this topic.")
]
RefineOpt = Annotated[
    bool,
    typer.Option(
        "--refine-idea", help="Refine your idea with the reflection rounds (default: verbatim)."
    ),
]
StopOpt = Annotated[
    bool,
    typer.Option(
        "--stop-if-not-novel",
        help="Do not run your idea if the novelty check finds it not novel (default: the "
        "verdict is reported and it runs).",
    ),
]


def own_idea_overrides(
    idea: Path | None, idea_json: Path | None, topic: str | None, *, refine: bool, stop: bool
) -> tuple[list[str], int]:
    """The settings that carry ``--idea``/``--idea-json``/``--topic`` (run.json's overrides
    replay them on resume), and how many ideas were given."""
    if idea is not None and idea_json is not None:
        raise GivenIdeaError("Give your idea once: --idea (Markdown) or --idea-json, not both.")
    if topic is not None and (idea is not None or idea_json is not None):
        raise GivenIdeaError(
            "--topic steers the ideas the model generates; with your own idea there are none "
            "to steer. Leave out --topic, or put the direction into your idea."
        )
    ideas = read_ideas(idea, "markdown") if idea is not None else []
    if idea_json is not None:
        ideas = read_ideas(idea_json, "json")
    overrides: list[str] = []
    if ideas:
        for name in dropped_scores(ideas):
            err.print(
                f"note: the scores of {name} are dropped: a researcher's own idea is not "
                "scored (--refine-idea lets the model score it)."
            )
        overrides.append(f"ideas.given={json.dumps(as_setting(ideas))}")
    if topic is not None:
        overrides.append(f"ideas.topic={json.dumps(topic)}")
    if refine:
        overrides.append("ideas.refine_given=true")
    if stop:
        overrides.append("pipeline.skip_given_not_novel=true")
    return overrides, len(ideas)


def report_run(run: RunPaths, manifest: RunManifest) -> None:
    """The outcome table, the usage summary and where the PDFs and reviews are."""
    if manifest.status != "no_ideas":  # a run that wrote nothing says why in its reason
        for note in manifest.notes:
            err.print(Text.assemble(("note: ", "yellow"), note))
    if manifest.status == "no_ideas":
        reason = manifest.reason or ""
        hint = (
            "; pipeline.skip_not_novel=false runs ideas found not novel"
            if "novelty" in reason and "skip_given_not_novel" not in reason
            else ""
        )
        err.print(
            Text.assemble(
                ("No paper was written: ", "yellow"),
                f"{manifest.reason}. See {run.ideas_json}{hint}.",
            )
        )
    print_outcomes(run_rows(run.root.name, manifest), "Ideas")
    if run.ledger.is_file():
        out.print(summary_table(sum_entries(read_entries(run.ledger))))
    for o in manifest.ideas:
        if o.paper_pdf:
            out.print(f"paper:  {escape(str(o.paper_pdf))}", soft_wrap=True)
        if o.review_json:
            out.print(f"review: {escape(str(o.review_json))}", soft_wrap=True)
    out.print(
        f"run folder: {escape(str(run.root))}  (status {manifest.status}, {manifest.wall_s:.0f} s)",
        soft_wrap=True,  # a path never wraps
    )


class RunCommandOutput(BaseModel):
    """What ``scientist run --json`` and ``scientist resume --json`` print."""

    run_dir: str
    status: str
    reason: str | None = None
    wall_s: float
    ideas: list[IdeaOutcome]
    totals: Totals = Field(description="LLM calls, tokens and cost of the whole run (ledger).")
    exit_code: int


class BatchCommandOutput(BaseModel):
    """What ``scientist batch --json`` prints: each run's result and the exit code."""

    runs: list[BatchResult]
    exit_code: int


def run_output(run: RunPaths, manifest: RunManifest) -> RunCommandOutput:
    """The JSON document of a finished (or stopped) run."""
    totals = sum_entries(read_entries(run.ledger)) if run.ledger.is_file() else Totals()
    return RunCommandOutput(
        run_dir=str(run.root),
        status=manifest.status,
        reason=manifest.reason,
        wall_s=manifest.wall_s,
        ideas=manifest.ideas,
        totals=totals,
        exit_code=run_exit_code(manifest),
    )


def finish_run(run: RunPaths, manifest: RunManifest, as_json: bool) -> None:
    """Report the run (a document under --json, tables otherwise) and exit with its code."""
    if as_json:
        emit_json(run_output(run, manifest))
    else:
        report_run(run, manifest)
    raise typer.Exit(run_exit_code(manifest))


def run_exit_code(manifest: RunManifest) -> int:
    """0 when the run ended with at least one idea done; 1 when it failed, was interrupted,
    took no idea past the ideas stage, or every idea it ran failed or stopped."""
    done = manifest.status == "done" and any(o.status == "done" for o in manifest.ideas)
    return 0 if done else 1


def print_outcomes(rows: list[Row], title: str) -> None:
    """The outcome table in the terminal's width, then in full each status it had to cut."""
    out.print(outcome_table(rows, title, width=out.width))
    for line in cut_statuses(rows, out.width):
        out.print(Text(f"  {line}"), soft_wrap=True)


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
    idea: IdeaOpt = None,
    idea_json: IdeaJsonOpt = None,
    topic: TopicOpt = None,
    refine_idea: RefineOpt = False,
    stop_if_not_novel: StopOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Ideas → experiments → write-up → review for one template, in a new run folder."""
    overrides = list(set_ or [])
    try:
        own, given = own_idea_overrides(
            idea, idea_json, topic, refine=refine_idea, stop=stop_if_not_novel
        )
    except AutoscholarError as exc:
        raise typer.Exit(fail_json(exc, as_json)) from exc
    overrides += own
    if ideas is not None or given > 1:  # several ideas of your own: each one runs
        overrides.append(f"pipeline.ideas_to_run={ideas or given}")
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
        raise typer.Exit(fail_json(exc, as_json)) from exc
    finish_run(paths, manifest, as_json)


def resume(run_dir: str, copilot: CopilotOpt = False, as_json: JsonOpt = False) -> None:
    """Continue a run after a crash or Ctrl-C, from the last completed step of each idea."""
    view = LiveView(err)
    try:
        with live(view, enabled=not copilot):
            paths, manifest = resume_pipeline(
                run_dir, copilot=terminal_copilot if copilot else None, on_event=view
            )
    except AutoscholarError as exc:
        raise typer.Exit(fail_json(exc, as_json)) from exc
    finish_run(paths, manifest, as_json)


def batch(
    templates: Annotated[str, typer.Option(help="Comma-separated template names or folders.")],
    ideas_per_template: Annotated[int, typer.Option(help="Ideas run per template.")] = 1,
    parallel: Annotated[int, typer.Option(help="Runs at once (processes; local only).")] = 1,
    preset: PresetOpt = None,
    set_: SetOpt = None,
    executor: Annotated[
        str,
        typer.Option(
            help="local: a process pool here; ray: one Ray task per run on a cluster "
            "(cluster.* settings; each run reserves its CPUs, GPUs and memory)."
        ),
    ] = "local",
    ray_address: Annotated[
        str | None,
        typer.Option(
            "--ray-address",
            help="Ray cluster to join: HOST:PORT of the head, ray://HOST:10001 or auto "
            "(default cluster.address; none: a private Ray instance here).",
        ),
    ] = None,
    idea: IdeaOpt = None,
    idea_json: IdeaJsonOpt = None,
    topic: TopicOpt = None,
    refine_idea: RefineOpt = False,
    stop_if_not_novel: StopOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Paper runs for several templates at once on a process pool or a Ray cluster; one
    failure stops no other. --idea, --idea-json and --topic apply to every template."""
    try:
        own, _ = own_idea_overrides(
            idea, idea_json, topic, refine=refine_idea, stop=stop_if_not_novel
        )
    except AutoscholarError as exc:
        raise typer.Exit(fail_json(exc, as_json)) from exc
    overrides = [*(set_ or []), *own, f"pipeline.ideas_to_run={ideas_per_template}"]
    tasks = [
        BatchTask(template=name.strip(), preset=preset or "default", overrides=overrides)
        for name in templates.split(",")
        if name.strip()
    ]

    def show(result: BatchResult) -> None:
        err.print(Text(progress_line(result)))

    view = LiveView(err)
    try:
        chosen = batch_executor(executor, parallel, preset, set_, ray_address, view)
        with live(view, enabled=executor == "ray"):
            results = run_batch(tasks, chosen, on_result=show)
    except AutoscholarError as exc:
        raise typer.Exit(fail_json(exc, as_json)) from exc
    code = EXIT_FAILED if any(r.status in ("failed", "interrupted") for r in results) else 0
    if as_json:
        emit_json(BatchCommandOutput(runs=results, exit_code=code))
    else:
        print_outcomes(batch_rows(results), "Batch")
    raise typer.Exit(code)


def batch_executor(
    kind: str,
    parallel: int,
    preset: str | None,
    set_: list[str] | None,
    ray_address: str | None,
    view: LiveView,
) -> Executor:
    """The executor ``--executor`` names; Ray's feeds the live table with every run's node."""
    if kind == "local":
        return LocalProcessExecutor(parallel)
    if kind != "ray":
        raise typer.BadParameter("--executor must be local or ray")
    settings = settings_from_flags(preset, set_, {"cluster.address": ray_address})
    try:  # Ray is the optional `cluster` extra: loaded only when asked for
        from scientist.runs.ray_executor import RayExecutor
    except ImportError as exc:
        raise MissingDependencyError(
            "--executor ray needs Ray: pip install 'autoscholar[cluster]'."
        ) from exc
    return RayExecutor(settings.cluster, on_event=lambda event: view(node_event(event)))


def node_event(event: TaskEvent) -> PipelineEvent:
    """A run's event for the live table: its row names the template, the idea and the node."""
    where = f"{Path(event.template).name} · {event.event.idea or '(run)'} @ {event.node}"
    return event.event.model_copy(update={"idea": where})


def register(app: typer.Typer) -> None:
    """Add run, resume and batch to ``app``."""
    app.command()(run)
    app.command()(resume)
    app.command()(batch)
