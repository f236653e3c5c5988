"""What a run cost: a rich table of the ledger's totals, printed at the end of every run."""

from __future__ import annotations

from rich import box
from rich.table import Table

from gateway.ledger import Totals

# Short headers keep the table inside an 80-column terminal; the caption says what they mean.
COLUMNS: tuple[str, ...] = ("role", "calls", "hits", "prompt", "cached", "output", "USD", "s")
LEGEND = (
    "hits: answered from the response cache; prompt, cached, output: tokens (cached: prompt "
    "tokens read from a provider's prompt cache); s: model time"
)


def summary_table(totals: Totals, title: str = "LLM usage") -> Table:
    """Calls, cache hits, tokens, cost and time per role, with a total row.

    "cached" are prompt tokens a provider read from its prompt cache (they are part of
    "prompt"); the caption says what that caching saved.
    """
    note = caching_note(totals)
    table = Table(
        title=title,
        caption=f"{LEGEND}\n{note}" if note else LEGEND,
        box=box.SIMPLE_HEAD,
        padding=(0, 1),
        pad_edge=False,
        collapse_padding=True,
    )
    for column in COLUMNS:
        if column == "role":
            table.add_column(column, justify="left", no_wrap=True)
        else:
            table.add_column(column, justify="right", no_wrap=True)
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
        f"{t.latency_s:.0f}",
    ]
