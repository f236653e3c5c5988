"""``reviewer check PAPER.pdf``: only the checks (no LLM), for authors before submission and
for CI: references looked up, citations, numbers and cross-references checked, the closest
prior work listed."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from core.cli_support import JsonOpt, PresetOpt, SetOpt, emit_json, fail_json, settings_from_flags
from core.literature.factory import build_literature
from core.settings import Settings
from gateway.errors import EXIT_FAILED, AutoscholarError
from reviewer.checks.models import ChecksReport
from reviewer.checks.run import run_checks
from reviewer.review.pdf_child import read_pdf

out = Console()


def check_pdf(pdf: Path, settings: Settings) -> ChecksReport:
    """Read ``pdf`` in the bounded child the review uses, then run every check on it with
    the literature cascade of ``literature.sources``; no model is built or called."""
    limits = settings.review
    reading = read_pdf(
        pdf,
        max_pages=limits.max_pages,
        max_mb=limits.max_pdf_mb,
        timeout_s=limits.pdf_timeout_s,
        memory_mb=limits.pdf_memory_mb,
    )
    paper = reading.paper
    literature = build_literature(settings)
    return run_checks(str(pdf), paper.title, paper.page_texts, literature, settings.checks)


def check_command(
    paper: Annotated[Path, typer.Argument(help="The paper, a PDF.")],
    preset: PresetOpt = None,
    set_: SetOpt = None,
    as_json: JsonOpt = False,
    fail_on_findings: Annotated[
        bool,
        typer.Option("--fail-on-findings", help="Exit 1 when there is any finding (for CI)."),
    ] = False,
) -> None:
    """Check a paper without any LLM: references looked up in the literature (checks.*,
    literature.sources), in-text citations, numbers against the tables, references to
    figures, tables, sections and equations, and the closest prior work. Exit 0 when the
    checks ran (findings or not; 1 with --fail-on-findings and a finding), 2 for an unusable
    PDF, 3 for the settings."""
    try:
        report = check_pdf(paper, settings_from_flags(preset, set_))
    except AutoscholarError as exc:
        raise typer.Exit(fail_json(exc, as_json)) from exc
    if as_json:
        emit_json(report)
    else:
        out.print(summary(report))
    raise typer.Exit(EXIT_FAILED if fail_on_findings and report.findings else 0)


def summary(report: ChecksReport) -> Group:
    """One screen: the findings table, reference counts, the closest prior work, notes."""
    table = Table(title=f"Checks: {report.title or report.source}")
    table.add_column("page", justify="right")
    table.add_column("kind")
    table.add_column("message")
    for finding in report.findings:
        page = str(finding.page) if finding.page is not None else "?"
        table.add_row(page, finding.kind, Text(finding.message))
    counts = ", ".join(f"{n} {s.replace('_', ' ')}" for s, n in report.reference_counts().items())
    lines: list[Table | Text] = [
        table if report.findings else Text("No findings.", style="bold"),
        Text(f"References: {len(report.references)} in the bibliography ({counts})."),
    ]
    for check in report.references:
        if check.status in ("not_found", "mismatch"):
            why = f" — {'; '.join(check.differences)}" if check.differences else ""
            where = f"p.{check.entry.page}"
            lines.append(Text(f"  {check.status} ({where}): {check.entry.raw[:160]}{why}"))
    if report.prior_work:
        lines.append(Text(f"Closest prior work ({report.prior_work_status}):"))
        for prior in report.prior_work:
            year = f" ({prior.year})" if prior.year else ""
            lines.append(Text(f"  {prior.title}{year} {prior.url or ''}".rstrip()))
    else:
        lines.append(Text(f"Closest prior work: none ({report.prior_work_status})."))
    lines += [Text(f"Note: {note}", style="yellow") for note in report.notes]
    lines.append(Text(f"{report.pages} pages checked in {report.seconds:.1f} s."))
    return Group(*lines)
