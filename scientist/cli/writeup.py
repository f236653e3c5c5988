"""``scientist write``: the write-up stage's command, registered on the main app."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.console import Console
from rich.progress import Progress, TaskID

from core.cli_support import (
    PresetOpt,
    SetOpt,
    console,
    fail,
    progress_bars,
    settings_from_flags,
)
from core.literature.factory import build_literature
from core.literature.models import Literature
from core.report import summary_table
from core.runstore import open_run
from core.settings import Settings
from gateway import Gateway
from gateway.errors import AutoscholarError
from graphs.writeup import write_paper
from scientist.plan.models import read_plan
from scientist.survey.models import read_review, review_refs
from scientist.writeup.deps import WriteupDeps, WriteupEvent
from scientist.writeup.html import compiler_for
from scientist.writeup.inputs import WriteupTarget, read_related, writeup_targets
from scientist.writeup.models import WriteupRecord
from scientist.writeup.sections import SECTIONS

out = Console()
err = console  # stderr: progress and notes, silenced by -q
Engine = Literal["latex", "weasyprint"]


def register(app: typer.Typer) -> None:
    """Add this stage's commands to ``app``."""
    app.command("write")(write_command)


def writeup_settings(
    preset: str | None,
    assignments: list[str] | None,
    page_limit: int | None = None,
    citation_rounds: int | None = None,
    pdf_engine: str | None = None,
) -> Settings:
    """Settings with the command's shortcut flags applied on top of --set."""
    flags = {
        "writing.page_limit": page_limit,
        "writing.citation_rounds": citation_rounds,
        "writing.pdf_engine": pdf_engine,
    }
    return settings_from_flags(preset, assignments, flags)


def build_literature_for(settings: Settings) -> Literature:
    """The literature cascade of ``literature.sources``."""
    return build_literature(settings)


def write_command(
    run_dir: Annotated[Path, typer.Argument(help="A run folder (holds ideas.json).")],
    idea: Annotated[str | None, typer.Option(help="Only this idea (its Name).")] = None,
    page_limit: Annotated[int | None, typer.Option(help="Pages before references.")] = None,
    citation_rounds: Annotated[int | None, typer.Option(help="Citation search rounds.")] = None,
    pdf_engine: Annotated[
        str | None, typer.Option(help="latex (latexmk) or weasyprint (HTML, no TeX).")
    ] = None,
    preset: PresetOpt = None,
    set_: SetOpt = None,
) -> None:
    """Write each finished idea's paper (LaTeX, real citations, compile-and-fix) into paper/."""
    try:
        if pdf_engine not in (None, "latex", "weasyprint"):
            raise typer.BadParameter("--pdf-engine must be latex or weasyprint")
        cfg = writeup_settings(preset, set_, page_limit, citation_rounds, pdf_engine)
        run = open_run(run_dir)
        targets = writeup_targets(run, idea)
        deps = WriteupDeps(
            gateway=Gateway.from_settings(cfg, run.root),
            settings=cfg,
            literature=build_literature_for(cfg),
            compiler=compiler_for(cfg.writing.pdf_engine, cfg.writing.isolation),
        )
    except AutoscholarError as exc:
        raise typer.Exit(fail(exc)) from exc
    if cfg.llm.models.writer == "local":
        err.print(
            "[yellow]writer model: local (embedded SmolLM2-135M) — it proves the pipeline; "
            "its papers are not meaningful.[/]"
        )
    failures = sum(not _write_one(target, deps, run.ideas_json) for target in targets)
    out.print(summary_table(deps.gateway.ledger.totals()))
    raise typer.Exit(1 if failures else 0)


def _write_one(target: WriteupTarget, deps: WriteupDeps, ideas_json: Path) -> bool:
    """One idea with per-section progress; prints the PDF path or what went wrong."""
    related = read_related(ideas_json, target.idea.Name, deps.settings.writing.novelty_citations)
    with progress_bars(err) as progress:
        tasks: dict[str, TaskID] = {
            spec.name: progress.add_task(f"{target.idea.Name}: {spec.title}", total=2)
            for spec in SECTIONS
        }
        stage = progress.add_task(f"{target.idea.Name}: preflight", total=None)

        def on_event(event: WriteupEvent) -> None:
            _show(progress, tasks, stage, target.idea.Name, event)

        try:
            record = write_paper(
                target.idea,
                target.idea_dir,
                target.record,
                _with_progress(deps, on_event),
                related=related,
                review_papers=review_refs(read_review(target.idea_dir)),
                plan=read_plan(target.idea_dir),
            )
        except AutoscholarError as exc:
            fail(exc)
            return False
    _report(target, record)
    return record.status == "ok"


def _with_progress(deps: WriteupDeps, callback: object) -> WriteupDeps:
    from dataclasses import replace

    return replace(deps, on_progress=callback)  # type: ignore[arg-type]


def _show(
    progress: Progress, tasks: dict[str, TaskID], stage: TaskID, name: str, event: WriteupEvent
) -> None:
    if event.section in tasks and event.stage in ("written", "refined"):
        progress.update(tasks[event.section], completed=1 if event.stage == "written" else 2)
    label = f"{name}: {event.stage}" + (f" {event.section}" if event.section else "")
    progress.update(stage, description=label + (f" ({event.detail})" if event.detail else ""))


def _report(target: WriteupTarget, record: WriteupRecord) -> None:
    paper_dir = target.idea_dir / "paper"
    if record.status == "ok":
        out.print(
            f"[bold green]{target.idea.Name}[/]: {target.idea_dir / str(record.pdf)} "
            f"({record.pages} pages, {record.content_pages} before references; "
            f"{len(record.citations)} citations; {len(record.compile_attempts)} compile attempts)"
        )
    else:
        out.print(f"[bold red]{target.idea.Name}: the paper did not compile[/]")
        for error in record.errors[:10]:
            out.print(f"  {error}")
    warnings = record.warnings + [f"{s.name}: {w}" for s in record.sections for w in s.warnings]
    if warnings:
        out.print(f"  {len(warnings)} warnings (see {paper_dir / 'writeup.json'})")
