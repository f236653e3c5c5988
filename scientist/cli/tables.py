"""The outcome tables of ``scientist run`` and ``scientist batch``: one line per row.

Long names are shortened (run.json keeps them whole), a status's reason is cut at the
column's edge (``cut_statuses`` lists those in full, and run.json holds them), and when
the terminal is narrow the least important columns are left out, so an 80-column
terminal shows run, idea, stage, status and decision on one line per idea.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rich import box
from rich.table import Table
from rich.text import Text

from scientist.pipeline.models import IdeaOutcome, RunManifest
from scientist.runs.batch import BatchResult


@dataclass(frozen=True)
class Column:
    """A column of the outcome table: kept in ``priority`` order (0 first) while it fits."""

    header: str
    priority: int
    width: int
    flexible: bool = False
    right: bool = False


COLUMNS: tuple[Column, ...] = (
    Column("run", 1, 16),
    Column("idea", 0, 22),
    Column("stage", 3, 11),
    # The status with its reason: as wide as the terminal allows, cut with an ellipsis.
    Column("status", 2, 200, flexible=True),
    Column("Overall", 5, 13, right=True),
    Column("decision", 4, 8),
    Column("cost $", 7, 8, right=True),
    Column("tokens", 8, 8, right=True),
    Column("s", 6, 6, right=True),
)
FLEXIBLE_MIN = 12
"""Fewest characters the flexible (status) column is given when columns are chosen."""

Row = dict[str, str]


def shorten(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, keeping its start and its end (names that share
    a prefix stay apart): ``adaptive_dual_…e_noise`` for 22."""
    if len(text) <= limit:
        return text
    tail = (limit - 1) // 3
    return text[: limit - 1 - tail] + "…" + text[len(text) - tail :]


def idea_row(label: str, outcome: IdeaOutcome) -> Row:
    """One idea's cells, its name shortened; ``name`` (no column) keeps both names whole."""
    overall = "" if outcome.overall is None else f"{outcome.overall:.2f}"
    if outcome.revised_overall is not None:
        overall += f" → {outcome.revised_overall:.2f}"
    return {
        "name": f"{label} · {outcome.name}",
        "run": shorten(label, 16),
        "idea": shorten(outcome.name, 22),
        "stage": outcome.stage,
        "status": outcome.status + (f": {outcome.reason}" if outcome.reason else ""),
        "Overall": overall,
        "decision": outcome.decision or "",
        "cost $": f"{outcome.cost_usd:.4f}",
        "tokens": str(outcome.tokens),
        "s": f"{outcome.seconds:.0f}",
    }


def run_row(label: str, status: str, reason: str | None) -> Row:
    """The one row of a run that took no idea past the ideas stage (or failed before)."""
    return {
        "name": label,
        "run": shorten(label, 16),
        "idea": "-",
        "stage": "ideas",
        "status": status + (f": {reason}" if reason else ""),
    }


def run_rows(label: str, manifest: RunManifest) -> list[Row]:
    """A run's rows: one per idea, or the run's status and reason when no idea went past the
    ideas stage."""
    rows = [idea_row(label, o) for o in manifest.ideas]
    return rows or [run_row(label, manifest.status, manifest.reason)]


def batch_rows(results: Sequence[BatchResult]) -> list[Row]:
    """One row per idea of every run; one row for a run that took no idea past the ideas
    stage (or failed before), with its status and reason."""
    rows: list[Row] = []
    for result in results:
        label = Path(result.task.template).name or result.task.template
        if not result.ideas:
            rows.append(run_row(label, result.status, result.reason))
        rows += [idea_row(label, o) for o in result.ideas]
    return rows


def _natural(column: Column, rows: Sequence[Row]) -> int:
    longest = max((len(row.get(column.header, "")) for row in rows), default=0)
    return min(column.width, max(len(column.header), longest))


def _needed(column: Column, rows: Sequence[Row]) -> int:
    natural = _natural(column, rows)
    return min(natural, FLEXIBLE_MIN) if column.flexible else natural


def table_width(widths: Sequence[int]) -> int:
    """Characters a row takes in this table style: no outer edges, one space of padding on
    each inner side and a one-character rule between columns."""
    return sum(widths) + 3 * len(widths) - 3 if widths else 0


def fitting_columns(columns: Sequence[Column], rows: Sequence[Row], width: int) -> list[Column]:
    """``columns`` in table order, leaving out the least important until a row fits ``width``."""
    kept: list[Column] = []
    for column in sorted(columns, key=lambda c: c.priority):
        trial = [*kept, column]
        if not kept or table_width([_needed(c, rows) for c in trial]) <= width:
            kept = trial
    return [c for c in columns if c in kept]


def table_columns(rows: Sequence[Row], width: int | None) -> list[Column]:
    """The columns shown: ``run`` only for rows of several runs; by priority within ``width``
    (None: every column)."""
    several_runs = len({row.get("run") for row in rows}) > 1
    columns = [c for c in COLUMNS if several_runs or c.header != "run"]
    return columns if width is None else fitting_columns(columns, rows, width)


def outcome_table(rows: Sequence[Row], title: str = "Ideas", width: int | None = None) -> Table:
    """The outcome table, one line per row, its columns chosen by ``table_columns``."""
    columns = table_columns(rows, width)
    table = Table(title=title, box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for column in columns:
        table.add_column(
            column.header,
            justify="right" if column.right else "left",
            max_width=column.width,
            # A flexible column may be narrowed to fit; its cells stay one line (see below).
            no_wrap=not column.flexible,
            overflow="ellipsis",
        )
    for row in rows:
        cells = [row.get(c.header, "") for c in columns]
        table.add_row(*(Text(cell, no_wrap=True, overflow="ellipsis") for cell in cells))
    return table


def cut_statuses(rows: Sequence[Row], width: int | None) -> list[str]:
    """``name: status`` in full for each row whose status the table cuts at ``width``."""
    if width is None:
        return []
    fixed = [_natural(c, rows) for c in table_columns(rows, width) if not c.flexible]
    room = width - table_width([*fixed, 0])
    return [f"{row['name']}: {row['status']}" for row in rows if len(row["status"]) > room]


def run_table(label: str, manifest: RunManifest, width: int | None = None) -> Table:
    """The end-of-run table of ``scientist run`` and ``resume``."""
    return outcome_table(run_rows(label, manifest), width=width)


def batch_table(results: Sequence[BatchResult], width: int | None = None) -> Table:
    """The table ``scientist batch`` ends with."""
    return outcome_table(batch_rows(results), title="Batch", width=width)
