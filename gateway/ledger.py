"""Per-run ledger of every LLM call, its totals, and the budget check that guards each call."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

from pydantic import BaseModel, Field

from gateway.errors import BudgetExceededError
from gateway.settings import BudgetSettings
from gateway.types import LedgerEntry


class Totals(BaseModel):
    """Sums over ledger entries. Cache hits count as calls but cost nothing."""

    calls: int = 0
    cache_hits: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_prompt_tokens: int = 0
    cache_write_tokens: int = 0
    cost_usd: float = 0.0
    uncached_cost_usd: float = 0.0
    latency_s: float = 0.0
    by_role: dict[str, Totals] = Field(default_factory=dict)

    @property
    def total_tokens(self) -> int:
        """Paid prompt plus completion tokens."""
        return self.prompt_tokens + self.completion_tokens

    @property
    def cache_savings_usd(self) -> float:
        """What providers' prompt caches saved on paid calls (response-cache hits aside)."""
        return self.uncached_cost_usd - self.cost_usd


def _add(totals: Totals, entry: LedgerEntry) -> None:
    totals.calls += 1
    totals.latency_s += entry.latency_s
    if entry.cache_hit:
        totals.cache_hits += 1
        return
    totals.prompt_tokens += entry.prompt_tokens
    totals.completion_tokens += entry.completion_tokens
    totals.cached_prompt_tokens += entry.cached_prompt_tokens
    totals.cache_write_tokens += entry.cache_write_tokens
    totals.cost_usd += entry.cost_usd
    totals.uncached_cost_usd += entry.cost_without_caching_usd


def sum_entries(entries: Iterable[LedgerEntry]) -> Totals:
    """Totals of ``entries``, overall and per role; tokens and cost only for paid calls."""
    totals = Totals()
    for entry in entries:
        _add(totals, entry)
        _add(totals.by_role.setdefault(entry.role, Totals()), entry)
    return totals


class BudgetNames(NamedTuple):
    """The settings that hold a ledger's limits, named in the error that stops a call."""

    max_total_tokens: str
    max_cost_usd: str


RUN_BUDGET = BudgetNames("budget.max_total_tokens", "budget.max_cost_usd")
IDEA_BUDGET = BudgetNames("pipeline.idea_max_total_tokens", "pipeline.idea_max_cost_usd")


class Ledger:
    """Thread-safe list of calls, mirrored line by line to ``ledger.jsonl`` when given a path."""

    def __init__(self, path: Path | None = None, *, resume: bool = False) -> None:
        self.path = path
        self._entries: list[LedgerEntry] = []
        self._lock = threading.Lock()
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            if resume and path.is_file():
                self._entries = read_entries(path)
                _end_with_newline(path)

    def record(self, entry: LedgerEntry) -> None:
        """Append ``entry`` (and its JSON line to the file)."""
        with self._lock:
            self._entries.append(entry)
            if self.path is not None:
                with self.path.open("a", encoding="utf-8") as handle:
                    handle.write(entry.model_dump_json() + "\n")

    @property
    def entries(self) -> list[LedgerEntry]:
        """A copy of the entries so far."""
        with self._lock:
            return list(self._entries)

    def totals(self) -> Totals:
        """Sums over all entries."""
        return sum_entries(self.entries)

    def check_budget(
        self,
        budget: BudgetSettings,
        *,
        tokens: int,
        cost_usd: float,
        names: BudgetNames = RUN_BUDGET,
    ) -> None:
        """Raise before a call whose worst case (``tokens``, ``cost_usd``) breaks the budget.

        ``names`` are the settings that hold the limits, for the error's advice.
        """
        spent = self.totals()
        if (
            budget.max_total_tokens is not None
            and spent.total_tokens + tokens > budget.max_total_tokens
        ):
            raise BudgetExceededError(
                f"Token budget reached: {spent.total_tokens} tokens spent, the next call may use "
                f"up to {tokens}, the budget is {budget.max_total_tokens}. Raise "
                f"{_advice(names.max_total_tokens)} to go on."
            )
        if budget.max_cost_usd is not None and spent.cost_usd + cost_usd > budget.max_cost_usd:
            raise BudgetExceededError(
                f"Cost budget reached: ${spent.cost_usd:.4f} spent, the next call may cost up to "
                f"${cost_usd:.4f}, the budget is ${budget.max_cost_usd:.2f}. Raise "
                f"{_advice(names.max_cost_usd)} to go on."
            )


def _advice(setting: str) -> str:
    """``budget.max_cost_usd (AUTOSCHOLAR_BUDGET__MAX_COST_USD)``: a setting and its variable."""
    return f"{setting} (AUTOSCHOLAR_{setting.upper().replace('.', '__')})"


def _end_with_newline(path: Path) -> None:
    """Close a torn last line so the next row starts on a line of its own."""
    with path.open("rb+") as handle:
        if handle.seek(0, 2) == 0:
            return
        handle.seek(-1, 2)
        if handle.read(1) != b"\n":
            handle.write(b"\n")


def read_entries(path: Path) -> list[LedgerEntry]:
    """The rows of a ``ledger.jsonl``; a torn last line (a killed writer) is skipped."""
    entries: list[LedgerEntry] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        try:
            entries.append(LedgerEntry.model_validate_json(line))
        except ValueError:
            continue
    return entries


class ScopedLedger(Ledger):
    """A ledger for one part of a run (one idea) that also records into the run's ledger.

    Its own budget is checked first, then the run's: an idea stops at its cap, and the run
    stops at the run's cap whichever idea spends the last dollar.
    """

    def __init__(
        self,
        path: Path | None,
        parent: Ledger,
        budget: BudgetSettings,
        *,
        resume: bool = False,
        names: BudgetNames = IDEA_BUDGET,
    ) -> None:
        super().__init__(path, resume=resume)
        self.parent = parent
        self.budget = budget
        self.names = names

    def record(self, entry: LedgerEntry) -> None:
        """Record here and in the parent ledger."""
        super().record(entry)
        self.parent.record(entry)

    def check_budget(
        self,
        budget: BudgetSettings,
        *,
        tokens: int,
        cost_usd: float,
        names: BudgetNames = RUN_BUDGET,
    ) -> None:
        """Check this scope's budget, then the run's (``budget``)."""
        super().check_budget(self.budget, tokens=tokens, cost_usd=cost_usd, names=self.names)
        self.parent.check_budget(budget, tokens=tokens, cost_usd=cost_usd, names=names)
