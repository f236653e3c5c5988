"""``scientist report RUN_DIR``: write the run's report.html, a page a person can open."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from core.cli_support import fail
from gateway.errors import AutoscholarError
from scientist.runs.report_page import ReportSummary, write_report

out = Console()


def report(
    run_dir: Annotated[
        Path, typer.Argument(metavar="RUN_DIR", help="A run folder made by `scientist run`.")
    ],
    as_json: Annotated[
        bool,
        typer.Option("--json", help="The report's path and its rows as JSON (ReportSummary)."),
    ] = False,
) -> None:
    """Write RUN_DIR/report.html: each idea's stage, novelty, scores, decision, cost and time,
    usage per stage, the plots, and links to the papers and reviews. Exit code 2 when
    RUN_DIR is not a run folder or its run.json is unreadable."""
    try:
        summary = write_report(run_dir)
    except AutoscholarError as exc:
        raise typer.Exit(fail(exc)) from exc
    if as_json:
        typer.echo(summary.model_dump_json(indent=2))
    else:
        print_summary(summary)


def print_summary(summary: ReportSummary) -> None:
    """One line: where the page is and what it shows."""
    ran = sum(1 for row in summary.ideas if row.ran)
    out.print(
        f"report: {escape(summary.report)}  (status {summary.status}, {ran} of "
        f"{len(summary.ideas)} ideas run, ${summary.total.cost_usd:.4f})",
        soft_wrap=True,
    )


def register(app: typer.Typer) -> None:
    """Add ``report`` to ``app``."""
    app.command()(report)
