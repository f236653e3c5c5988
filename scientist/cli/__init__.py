"""``scientist``: the paper-writing side's command line. Each command is a plain function."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from core.cli_support import (
    PresetOpt,
    QuietOpt,
    SetOpt,
    VerboseOpt,
    console,
    fail,
    print_settings,
    set_verbosity,
    settings_from_flags,
    version_option,
)
from core.report import summary_table
from gateway.errors import AutoscholarError
from scientist.cli import bench as bench_cli
from scientist.cli import experiments as experiments_cli
from scientist.cli import ideas as ideas_cli
from scientist.cli import literature as literature_cli
from scientist.cli import pipeline as pipeline_cli
from scientist.cli import report as report_cli
from scientist.cli import writeup as writeup_cli
from scientist.cli.demo import run_demo
from service.cli import serve_command

app = typer.Typer(help="Generate research papers from code templates.", no_args_is_help=True)
out = Console()
err = console  # stderr: progress and notes, silenced by -q


@app.command()
def settings(preset: PresetOpt = None, set_: SetOpt = None) -> None:
    """Print the effective settings (preset < environment < --set), secrets masked."""
    print_settings(preset, set_)


@app.command()
def demo(preset: PresetOpt = "debug", set_: SetOpt = None, count: int = 2) -> None:
    """Ask the ideas model for structured research ideas; print them and the usage summary."""
    try:
        cfg = settings_from_flags(preset, set_)
        model = cfg.llm.models.ideas
        err.print(
            f"[bold]ideas model:[/] {model}"
            + (
                " (embedded SmolLM2-135M: proves the pipeline, not a good researcher)"
                if model == "local"
                else ""
            )
        )
        with err.status("generating ideas…"):
            result = run_demo(cfg, count=count)
    except AutoscholarError as exc:
        raise typer.Exit(fail(exc)) from exc
    table = Table(title="Ideas")
    for column in ("Name", "Title", "Interest.", "Feas.", "Novelty"):
        table.add_column(column)
    for idea in result.ideas.ideas:
        table.add_row(
            idea.Name,
            idea.Title,
            str(idea.Interestingness),
            str(idea.Feasibility),
            str(idea.Novelty),
        )
    out.print(table)
    out.print(summary_table(result.totals))
    out.print(f"run folder: {result.run_dir}")


@app.callback()
def _root(
    version: Annotated[bool, version_option("scientist")] = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = 0,
) -> None:
    """Generate research papers from code templates."""
    set_verbosity(quiet, verbose)


def _serve_command() -> None:
    """Register ``serve`` from service/ (the CLI entry is the one place that names it)."""

    app.command(name="serve")(serve_command)


for _stage in (
    ideas_cli,
    literature_cli,
    experiments_cli,
    writeup_cli,
    pipeline_cli,
    report_cli,
    bench_cli,
):
    _stage.register(app)
_serve_command()


def main() -> None:
    """Console-script entry point."""
    app()
