"""``scientist ideas TEMPLATE``: ideas with reflection and novelty checks, into ideas.json."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import BaseModel
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress
from rich.table import Table

from core.cli_support import (
    JsonOpt,
    PresetOpt,
    SetOpt,
    console,
    emit_json,
    errors,
    fail_json,
    progress_bars,
    settings_from_flags,
)
from core.literature.factory import build_literature, index_path
from core.report import summary_table
from core.runstore import new_run
from core.settings import Settings
from gateway import Gateway
from gateway.errors import EXIT_USAGE, AutoscholarError
from gateway.ledger import Totals
from graphs.ideas import run_ideas
from scientist.ideas.deps import IdeasDeps, IdeasProgress
from scientist.ideas.records import SORT_KEYS, IdeasFile, SortKey, save_ideas, sort_value
from scientist.ideas.template import Template, load_template

out = Console()
err = console  # stderr: progress and notes, silenced by -q


def ideas_settings(preset: str | None, set_: list[str] | None, **flags: Any) -> Settings:
    """Settings with the command's shortcut flags applied on top of --set."""
    typed = {
        "ideas.num_ideas": flags.get("num_ideas"),
        "ideas.num_reflections": flags.get("reflections"),
        "ideas.novelty_rounds": flags.get("novelty_rounds"),
        "llm.models.ideas": flags.get("model"),
        "ideas.novelty_check": False if flags.get("no_novelty") else None,
    }
    return settings_from_flags(preset, set_, typed)


def ideas_command(
    template: Annotated[str, typer.Argument(help="A template folder or a shipped name.")],
    num_ideas: Annotated[int | None, typer.Option(help="Ideas to generate.")] = None,
    reflections: Annotated[int | None, typer.Option(help="Reflection rounds per idea.")] = None,
    novelty_rounds: Annotated[int | None, typer.Option(help="Novelty rounds per idea.")] = None,
    no_novelty: Annotated[bool, typer.Option("--no-novelty", help="Skip novelty checks.")] = False,
    model: Annotated[str | None, typer.Option(help="litellm model for the ideas role.")] = None,
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Folder for ideas.json; default a new run folder.")
    ] = None,
    sort_by: Annotated[str, typer.Option(help=f"Table order: {', '.join(SORT_KEYS)}.")] = "overall",
    feedback: Annotated[str | None, typer.Option(help="Guidance shown to the idea model.")] = None,
    preset: PresetOpt = None,
    set_: SetOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Generate ideas for a template, refine them, check novelty, write ideas.json."""
    if sort_by not in SORT_KEYS:
        errors.print(f"[bold red]error:[/] --sort-by must be one of {', '.join(SORT_KEYS)}")
        raise typer.Exit(EXIT_USAGE)
    try:
        cfg = ideas_settings(
            preset,
            set_,
            num_ideas=num_ideas,
            reflections=reflections,
            novelty_rounds=novelty_rounds,
            model=model,
            no_novelty=no_novelty,
        )
        tpl = load_template(template)
        folder = out_dir or new_run(cfg.runs_dir, tpl.name).root
        folder.mkdir(parents=True, exist_ok=True)
        deps = IdeasDeps(
            gateway=Gateway.from_settings(cfg, folder),
            settings=cfg,
            literature=build_literature(cfg),
        )
        _warn(cfg)
        result = _run_with_progress(tpl, deps, feedback)
        path = save_ideas(result, folder / "ideas.json")
    except AutoscholarError as exc:
        raise typer.Exit(fail_json(exc, as_json)) from exc
    for failure in result.failures:
        err.print(f"[yellow]idea {failure.index + 1} failed ({failure.stage}):[/] {failure.error}")
    if as_json:
        totals = deps.gateway.ledger.totals()
        emit_json(IdeasCommandOutput(ideas_json=str(path), result=result, totals=totals))
        return
    out.print(ideas_table(result, sort_by))
    out.print(summary_table(deps.gateway.ledger.totals()))
    out.print(f"ideas: {escape(str(path))}", soft_wrap=True)  # a path never wraps


class IdeasCommandOutput(BaseModel):
    """What ``scientist ideas --json`` prints: where ideas.json is, its content, the usage."""

    ideas_json: str
    result: IdeasFile
    totals: Totals


def _warn(cfg: Settings) -> None:
    index = index_path(cfg)
    checking = cfg.ideas.novelty_check and cfg.ideas.novelty_rounds > 0
    if checking and "offline" in cfg.literature.sources and not index.is_file():
        err.print(
            f"[yellow]no offline literature index at {index}: novelty checks use only the "
            "network sources. Build it with `scientist literature index PATH...`.[/]"
        )
    if cfg.llm.models.ideas == "local":
        err.print(
            "[yellow]ideas model: local (embedded SmolLM2-135M) — it exercises the pipeline; "
            "its ideas and verdicts are not meaningful.[/]"
        )


def _run_with_progress(template: Template, deps: IdeasDeps, feedback: str | None) -> IdeasFile:
    """Run with two bars: ideas generated (with reflection rounds) and novelty checks."""
    with progress_bars(err) as progress:
        gen = progress.add_task(f"{template.name}: ideas", total=deps.settings.ideas.num_ideas)
        nov = progress.add_task("novelty checks", total=None, visible=False)
        listener = _listener(progress, gen, nov)
        return run_ideas(template, replace(deps, on_progress=listener), feedback=feedback)


def _listener(progress: Progress, gen: Any, nov: Any) -> Any:
    def on_event(event: IdeasProgress) -> None:
        if event.step == "idea_done":
            progress.advance(gen)
        elif event.step in {"generate", "given", "reflect"}:
            label = f"idea {event.index + 1}: {event.name[:30]} (round {event.round})"
            progress.update(gen, description=label)
        elif event.step == "novelty":
            label = f"novelty {event.name[:30]} (round {event.round}/{event.total_rounds})"
            progress.update(nov, description=label, visible=True)
        elif event.step == "novelty_done":
            progress.update(nov, visible=True)
            progress.advance(nov)

    return on_event


def ideas_table(result: IdeasFile, sort_by: SortKey) -> Table:
    """One row per idea, best first by ``sort_by``; duplicates last."""
    table = Table(title=f"Ideas for {result.template} (sorted by {sort_by})")
    for column in ("#", "Name", "Title", "I", "F", "N", "overall", "refl.", "queries", "novelty"):
        table.add_column(
            column,
            justify="right"
            if len(column) <= 2 or column in {"overall", "refl.", "queries"}
            else "left",
        )
    ordered = sorted(
        result.every_idea(), key=lambda r: (r.status != "kept", -sort_value(r, sort_by))
    )
    for r in ordered:
        verdict: str = r.novelty.status if r.novelty else ""
        if r.status == "duplicate":
            verdict = f"duplicate of {r.duplicate_of}"
        table.add_row(
            str(r.index + 1),
            r.idea.Name,
            _short(r.idea.Title, 70),
            *(_score(v) for v in (r.idea.Interestingness, r.idea.Feasibility, r.idea.Novelty)),
            "–" if r.overall is None else f"{r.overall:.1f}",
            str(r.reflections_used),
            str(len(r.novelty.queries) if r.novelty else 0),
            verdict,
        )
    return table


def _score(value: int | None) -> str:
    return "–" if value is None else str(value)  # a researcher's own idea is not scored


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def register(app: typer.Typer) -> None:
    """Add this stage's commands to ``app``."""
    app.command("ideas")(ideas_command)
