"""What a run cost: a rich table of the ledger's totals, printed at the end of every run."""

from __future__ import annotations

from rich.table import Table

from gateway.ledger import Totals


def summary_table(totals: Totals, title: str = "LLM usage") -> Table:
    """Calls, cache hits, tokens, cost and time per role, with a total row.

    "cached tok" are prompt tokens a provider read from its prompt cache (they are part of
    "prompt tok"); the caption says what that caching saved.
    """
    table = Table(title=title, caption=caching_note(totals))
    for column in (
        "role",
        "calls",
        "cache hits",
        "prompt tok",
        "cached tok",
        "completion tok",
        "cost USD",
        "time s",
    ):
        table.add_column(column, justify="left" if column == "role" else "right")
    for role, part in sorted(totals.by_role.items()):
        table.add_row(role, *_cells(part))
    table.add_row("total", *_cells(totals), style="bold")
    return table


def caching_note(totals: Totals) -> str | None:
    """One line on providers' prompt caching, or None when no call used it."""
    if not (totals.cached_prompt_tokens or totals.cache_write_tokens):
        return None
    share = totals.cached_prompt_tokens / totals.prompt_tokens if totals.prompt_tokens else 0.0
    return (
        f"Prompt caching: {totals.cached_prompt_tokens:,} of {totals.prompt_tokens:,} prompt "
        f"tokens cached ({share:.0%}), saved ${totals.cache_savings_usd:.4f} "
        f"of ${totals.uncached_cost_usd:.4f}"
    )


def _cells(t: Totals) -> list[str]:
    return [
        str(t.calls),
        str(t.cache_hits),
        f"{t.prompt_tokens:,}",
        f"{t.cached_prompt_tokens:,}",
        f"{t.completion_tokens:,}",
        f"{t.cost_usd:.4f}",
        f"{t.latency_s:.1f}",
    ]
