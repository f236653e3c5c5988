"""What a run cost: a rich table of the ledger's totals, printed at the end of every run."""

from __future__ import annotations

from rich.table import Table

from gateway.ledger import Totals


def summary_table(totals: Totals, title: str = "LLM usage") -> Table:
    """Calls, cache hits, tokens, cost and time per role, with a total row."""
    table = Table(title=title)
    for column in (
        "role",
        "calls",
        "cache hits",
        "prompt tok",
        "completion tok",
        "cost USD",
        "time s",
    ):
        table.add_column(column, justify="left" if column == "role" else "right")
    for role, part in sorted(totals.by_role.items()):
        table.add_row(role, *_cells(part))
    table.add_row("total", *_cells(totals), style="bold")
    return table


def _cells(t: Totals) -> list[str]:
    return [
        str(t.calls),
        str(t.cache_hits),
        f"{t.prompt_tokens:,}",
        f"{t.completion_tokens:,}",
        f"{t.cost_usd:.4f}",
        f"{t.latency_s:.1f}",
    ]
