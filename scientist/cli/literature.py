"""``scientist literature index PATH...`` and ``scientist literature search QUERY``."""

from __future__ import annotations

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
    settings_from_flags,
)
from core.literature.factory import build_literature, index_path
from core.literature.models import SearchResult
from core.literature.offline import IndexStats, build_index
from gateway.errors import AutoscholarError

literature_app = typer.Typer(
    help="The literature layer: build the offline index, try a query.", no_args_is_help=True
)
out = Console()
err = console  # stderr: progress and notes, silenced by -q


def index_command(
    paths: Annotated[list[Path], typer.Argument(help=".jsonl/.bib files or folders of them.")],
    preset: PresetOpt = None,
    set_: SetOpt = None,
) -> None:
    """Build the offline index (SQLite FTS5, BM25) from local .jsonl and .bib files."""
    try:
        cfg = settings_from_flags(preset, set_)
        with err.status("indexing…"):
            stats = build_index(paths, index_path(cfg))
    except AutoscholarError as exc:
        raise typer.Exit(fail(exc)) from exc
    out.print(index_summary(stats))


def index_summary(stats: IndexStats) -> str:
    """One line per fact of a build."""
    files = "\n".join(f"  {p}" for p in stats.files) or "  (no .jsonl or .bib files found)"
    return (
        f"indexed {stats.records} papers ({stats.skipped_duplicates} duplicates skipped) "
        f"in {stats.seconds:.2f} s into {stats.path}\nfrom:\n{files}"
    )


def search_command(
    query: Annotated[str, typer.Argument(help="What to look for.")],
    limit: Annotated[int, typer.Option(help="Results to show.")] = 10,
    source: Annotated[
        list[str] | None,
        typer.Option(help="Ask only these sources (semantic_scholar, openalex, offline)."),
    ] = None,
    bibtex: Annotated[bool, typer.Option(help="Print each result's BibTeX entry.")] = False,
    preset: PresetOpt = None,
    set_: SetOpt = None,
) -> None:
    """Run one query through the cascade and show what each source did."""
    try:
        cfg = settings_from_flags(preset, set_, {"literature.sources": source or None})
        with err.status(f"searching {', '.join(cfg.literature.sources)}…"):
            result = build_literature(cfg).search(query, limit)
    except AutoscholarError as exc:
        raise typer.Exit(fail(exc)) from exc
    out.print(results_table(result))
    out.print(outcomes_table(result))
    if bibtex:
        for paper in result.papers:
            out.print(paper.bibtex, markup=False, highlight=False)
    raise typer.Exit(0 if result.papers else 1)


def results_table(result: SearchResult) -> Table:
    """Rank, key, year, venue, citations and title of each paper."""
    table = Table(title=f"{len(result.papers)} results for {result.query!r}")
    for column in ("#", "key", "year", "venue", "cites", "title"):
        table.add_column(column, justify="right" if column in {"#", "year", "cites"} else "left")
    for rank, paper in enumerate(result.papers, 1):
        table.add_row(
            str(rank),
            paper.citation_key,
            str(paper.year or ""),
            (paper.venue or "")[:30],
            "" if paper.citation_count is None else str(paper.citation_count),
            paper.title,
        )
    return table


def outcomes_table(result: SearchResult) -> Table:
    """What each source asked did: answered (cached or not), or why it failed."""
    table = Table(title="sources")
    for column in ("source", "ok", "results", "seconds", "note"):
        table.add_column(column)
    for o in result.outcomes:
        note = "cached" if o.cached else (o.error or "")
        table.add_row(o.source, "yes" if o.ok else "no", str(o.results), f"{o.seconds:.2f}", note)
    return table


literature_app.command("index")(index_command)
literature_app.command("search")(search_command)


def register(app: typer.Typer) -> None:
    """Add this stage's commands to ``app``."""
    app.add_typer(literature_app, name="literature")
