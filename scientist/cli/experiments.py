"""``scientist`` commands of the experiments stage, registered on the main app.

``scientist template check DIR``, ``scientist template list``, ``scientist baseline TEMPLATE``
and ``scientist experiment RUN_DIR --idea NAME``. Each command is a plain function.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from core.cli_support import (
    PresetOpt,
    SetOpt,
    console,
    fail,
    progress_bars,
    settings_from_flags,
)
from core.runstore import open_run
from core.settings import Settings
from gateway.errors import AutoscholarError
from graphs.experiments import run_experiments
from scientist.experiments.editor import AiderCLI
from scientist.experiments.environment import EnvStore
from scientist.experiments.feedback import results_table
from scientist.experiments.inputs import find_idea, idea_folder, template_of
from scientist.experiments.models import ExperimentRecord
from scientist.experiments.rounds import ExperimentDeps, ExperimentProgress
from scientist.experiments.runner import SandboxRunner
from scientist.experiments.template_check import TemplateCheck, check_template
from scientist.experiments.workspace import BASELINE, make_baseline
from scientist.ideas.models import Idea
from scientist.ideas.template import (
    Template,
    load_template,
    resolve_template,
    shipped_templates,
)

out = Console()
err = console  # stderr: progress and notes, silenced by -q
template_app = typer.Typer(help="Research templates: list them, check one.", no_args_is_help=True)
TemplateArg = Annotated[str, typer.Argument(help="A template folder, or a shipped template name.")]


@template_app.command("check")
def check_command(
    template: TemplateArg,
    static: Annotated[
        bool, typer.Option("--static", help="Only the files; do not run the baseline and plot.")
    ] = False,
    preset: PresetOpt = None,
    set_: SetOpt = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="The TemplateCheck as one JSON document on stdout.")
    ] = False,
) -> None:
    """Validate a template: files, JSON, seed ideas, then its baseline and plot.py in the
    sandbox (in a temporary copy). Exit code 1 when a check fails."""
    try:
        cfg = settings_from_flags(preset, set_)
        path = resolve_template(template)
        runner = None if static else SandboxRunner.for_template(cfg, path)
        with err.status("checking (the baseline runs in the sandbox)…"):
            report = check_template(path, runner, EnvStore.from_settings(cfg))
    except AutoscholarError as exc:
        raise typer.Exit(fail(exc)) from exc
    if as_json:
        typer.echo(report.model_dump_json(indent=2))
    else:
        out.print(check_table(report))
    raise typer.Exit(0 if report.passed else 1)


def check_table(report: TemplateCheck) -> Table:
    """The check report as a table, one row per check."""
    verdict = "[green]passed[/]" if report.passed else "[red]FAILED[/]"
    table = Table(title=f"template {report.template}: {verdict}")
    table.add_column("check")
    table.add_column("result")
    table.add_column("detail", overflow="fold")
    for item in report.items:
        table.add_row(item.name, "[green]ok[/]" if item.ok else "[red]fail[/]", item.detail)
    return table


@template_app.command("list")
def list_command() -> None:
    """The shipped templates, and whether each has a baseline (run_0) on this machine."""
    table = Table(title="shipped templates")
    table.add_column("name")
    table.add_column("baseline run_0")
    for name in shipped_templates():
        has = (resolve_template(name) / BASELINE / "final_info.json").is_file()
        table.add_row(name, "yes" if has else f"no: run `scientist baseline {name}`")
    out.print(table)


def baseline_command(template: TemplateArg, preset: PresetOpt = None, set_: SetOpt = None) -> None:
    """Run the template's baseline (run_0) and plot.py in the sandbox, in the template folder."""
    try:
        cfg = settings_from_flags(preset, set_)
        path = resolve_template(template)
        start = time.perf_counter()
        with err.status(f"running {path.name}'s baseline in the sandbox…"):
            report = make_baseline(path, SandboxRunner.for_template(cfg, path))
    except AutoscholarError as exc:
        raise typer.Exit(fail(exc)) from exc
    outcome = report.outcome
    if outcome.status != "ok":
        err.print(f"[bold red]baseline failed[/] ({outcome.status}): {outcome.reason}")
        err.print(outcome.error_tail)
        raise typer.Exit(1)
    out.print(results_table(outcome, []))
    out.print(f"run_0 in {outcome.seconds:.1f} s; {path / BASELINE}")
    if report.plot is not None and report.plot.status != "ok":
        err.print(f"[yellow]plot.py failed[/] ({report.plot.reason}):\n{report.plot.error_tail}")
        raise typer.Exit(1)
    out.print(f"figures: {', '.join(report.figures) or 'none'}")
    out.print(f"total {time.perf_counter() - start:.1f} s")


def experiment_command(
    run_dir: Annotated[Path, typer.Argument(help="A run folder holding ideas.json.")],
    idea: Annotated[str, typer.Option("--idea", help="The idea's Name in ideas.json.")],
    rounds: Annotated[int | None, typer.Option(help="Coding rounds (max_rounds).")] = None,
    template: Annotated[
        str | None, typer.Option(help="Template; default the 'template' key of ideas.json.")
    ] = None,
    feedback: Annotated[str | None, typer.Option(help="Guidance for the coder.")] = None,
    preset: PresetOpt = None,
    set_: SetOpt = None,
) -> None:
    """Run the experiment stage for one idea: Aider edits, the sandbox runs, up to N rounds,
    then plots and notes; writes <run>/<idea>/experiments.json."""
    try:
        cfg = settings_from_flags(preset, set_, {"experiments.max_rounds": rounds or None})
        run = open_run(run_dir)
        chosen = find_idea(run, idea)
        tmpl = load_template(template_of(run, template))
        editor = AiderCLI(cfg)
        _warn_local(cfg)
        record = _run_with_progress(cfg, editor, chosen, idea_folder(run, chosen), tmpl, feedback)
    except AutoscholarError as exc:
        raise typer.Exit(fail(exc)) from exc
    out.print(rounds_table(record))
    runs = [r.run for r in record.rounds if r.run is not None and r.run.status == "ok"]
    out.print(results_table(record.baseline, runs))
    out.print(f"{idea_folder(run, chosen) / 'experiments.json'} ({record.seconds:.0f} s)")
    if record.status != "ok":
        err.print(f"[bold red]experiment stage failed:[/] {record.reason}")
        raise typer.Exit(1)


def _warn_local(cfg: Settings) -> None:
    if cfg.llm.models.coder == "local":
        err.print(
            "[yellow]coder model: local (embedded SmolLM2-135M) — it exercises the pipeline; "
            "expect rounds in which it changes nothing.[/]"
        )


def _run_with_progress(
    cfg: Settings,
    editor: AiderCLI,
    idea: Idea,
    idea_dir: Path,
    template: Template,
    feedback: str | None,
) -> ExperimentRecord:
    total = cfg.experiments.max_rounds
    with progress_bars(err) as progress:
        task = progress.add_task("starting", total=total)

        def on_event(event: ExperimentProgress) -> None:
            label = f"{event.stage} {event.round}/{event.total_rounds}"
            if event.stage == "baseline":
                label = "baseline run_0"
            progress.update(task, description=f"{label}: {event.status} {event.detail}".strip())
            if event.stage == "experiment" and event.status not in ("editing", "running"):
                progress.update(task, completed=event.round)
            if event.status not in ("editing", "running"):
                progress.console.print(f"{label}: {event.status} ({event.elapsed_s:.0f} s)")

        deps = ExperimentDeps(
            settings=cfg,
            editor=editor,
            runner=SandboxRunner.for_template(cfg, template.path),
            on_progress=on_event,
        )
        return run_experiments(idea, idea_dir, template, deps, feedback=feedback)


def rounds_table(record: ExperimentRecord) -> Table:
    """One row per round: kind, status, run, time, tokens, changed files."""
    table = Table(title=f"{record.idea_name}: experiment rounds ({record.template})")
    for column in ("#", "kind", "status", "run", "seconds", "tokens in/out", "changed"):
        table.add_column(column)
    for r in record.rounds:
        run = r.run.run_name + f" ({r.run.status})" if r.run else (r.run_name or "")
        if r.plot_run is not None:
            run = f"plot.py ({r.plot_run.status})"
        tokens = f"{r.tokens_sent or 0}/{r.tokens_received or 0}" if r.tokens_sent else "–"
        row = (str(r.index), r.kind, r.status, run, f"{r.seconds:.0f}", tokens)
        table.add_row(*row, ", ".join(r.changed_files) or "–")
    return table


def register(app: typer.Typer) -> None:
    """Add this stage's commands to ``app``."""
    app.add_typer(template_app, name="template")
    app.command("baseline")(baseline_command)
    app.command("experiment")(experiment_command)
