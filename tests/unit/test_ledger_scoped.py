"""A scoped (per-idea) ledger: records into the run's too, enforces both budgets, resumes."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.settings import BudgetSettings
from gateway.errors import BudgetExceededError
from gateway.ledger import BudgetNames, Ledger, ScopedLedger, read_entries
from gateway.types import LedgerEntry


def _entry(tokens: int) -> LedgerEntry:
    return LedgerEntry(
        role="writer",
        model="m",
        prompt_tokens=tokens,
        completion_tokens=0,
        cost_usd=0.0,
        latency_s=0.0,
        cache_hit=False,
    )


def test_records_in_both_and_checks_the_idea_budget_first(tmp_path: Path) -> None:
    run = Ledger(tmp_path / "ledger.jsonl")
    idea = ScopedLedger(
        tmp_path / "idea" / "ledger.jsonl", run, BudgetSettings(max_total_tokens=100)
    )
    idea.record(_entry(60))
    assert len(run.entries) == 1 and len(read_entries(tmp_path / "ledger.jsonl")) == 1
    idea.check_budget(BudgetSettings(), tokens=40, cost_usd=0)
    with pytest.raises(BudgetExceededError):
        idea.check_budget(BudgetSettings(), tokens=41, cost_usd=0)


def test_the_run_budget_applies_through_any_idea(tmp_path: Path) -> None:
    run = Ledger(None)
    first = ScopedLedger(None, run, BudgetSettings())
    second = ScopedLedger(None, run, BudgetSettings())
    first.record(_entry(90))
    with pytest.raises(BudgetExceededError, match="Token budget"):
        second.check_budget(BudgetSettings(max_total_tokens=100), tokens=20, cost_usd=0)


def test_resume_reads_what_was_spent_and_skips_a_torn_line(tmp_path: Path) -> None:
    path = tmp_path / "ledger.jsonl"
    Ledger(path).record(_entry(70))
    with path.open("a") as handle:
        handle.write('{"role": "wri')  # a writer killed mid-line
    resumed = Ledger(path, resume=True)
    assert resumed.totals().prompt_tokens == 70
    resumed.record(_entry(5))
    assert [e.prompt_tokens for e in read_entries(path)] == [70, 5]
    with pytest.raises(BudgetExceededError):
        resumed.check_budget(BudgetSettings(max_total_tokens=100), tokens=26, cost_usd=0)


def test_resume_of_a_clean_file_adds_no_blank_line(tmp_path: Path) -> None:
    path = tmp_path / "ledger.jsonl"
    Ledger(path).record(_entry(1))
    before = path.read_bytes()
    Ledger(path, resume=True)
    assert path.read_bytes() == before


@pytest.mark.parametrize(
    ("idea_budget", "run_budget", "advice"),
    [
        (
            BudgetSettings(max_total_tokens=10),
            BudgetSettings(),
            "Raise pipeline.idea_max_total_tokens (AUTOSCHOLAR_PIPELINE__IDEA_MAX_TOTAL_TOKENS)",
        ),
        (
            BudgetSettings(max_cost_usd=0.01),
            BudgetSettings(),
            "Raise pipeline.idea_max_cost_usd (AUTOSCHOLAR_PIPELINE__IDEA_MAX_COST_USD)",
        ),
        (
            BudgetSettings(),
            BudgetSettings(max_total_tokens=10),
            "Raise budget.max_total_tokens (AUTOSCHOLAR_BUDGET__MAX_TOTAL_TOKENS)",
        ),
        (
            BudgetSettings(),
            BudgetSettings(max_cost_usd=0.01),
            "Raise budget.max_cost_usd (AUTOSCHOLAR_BUDGET__MAX_COST_USD)",
        ),
    ],
)
def test_the_error_names_the_setting_whose_cap_was_reached(
    idea_budget: BudgetSettings, run_budget: BudgetSettings, advice: str
) -> None:
    idea = ScopedLedger(None, Ledger(None), idea_budget)
    with pytest.raises(BudgetExceededError) as caught:
        idea.check_budget(run_budget, tokens=11, cost_usd=0.02)
    assert f"{advice} to go on." in str(caught.value)


def test_the_callers_names_for_the_run_budget_reach_the_run_ledger() -> None:
    idea = ScopedLedger(None, Ledger(None), BudgetSettings())
    names = BudgetNames("batch.max_total_tokens", "batch.max_cost_usd")
    with pytest.raises(BudgetExceededError, match=r"Raise batch\.max_cost_usd \(AUTOSCHOLAR_BATCH"):
        idea.check_budget(BudgetSettings(max_cost_usd=0.01), tokens=1, cost_usd=0.02, names=names)
