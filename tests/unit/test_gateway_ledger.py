"""The ledger: what each call cost, the totals a report shows, and resuming after a kill."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.settings import BudgetSettings
from gateway.errors import BudgetExceededError
from gateway.ledger import Ledger, ScopedLedger, read_entries, sum_entries
from gateway.types import LedgerEntry


def _entry(
    role: str = "writer", *, tokens: int = 10, hit: bool = False, **fields: float
) -> LedgerEntry:
    values: dict[str, float] = {"cost_usd": 0.0, "latency_s": 0.0} | fields
    return LedgerEntry(
        role=role,
        model="m",
        prompt_tokens=tokens,
        completion_tokens=1,
        cache_hit=hit,
        **values,
    )


def test_totals_add_up_every_call_and_count_hits_apart() -> None:
    entries = [
        _entry("writer", latency_s=1.5, cache_write_tokens=3, cached_prompt_tokens=2),
        _entry("writer", latency_s=0.25, hit=True, cache_write_tokens=50),
        _entry("reviewer", latency_s=2.0, cache_write_tokens=4, cost_usd=0.5),
        _entry("reviewer", latency_s=0.25, hit=True, cost_usd=9.0),
    ]
    totals = sum_entries(entries)
    assert (totals.calls, totals.cache_hits) == (4, 2)
    assert totals.latency_s == 4.0  # the time waited, hits included
    assert (totals.prompt_tokens, totals.completion_tokens) == (20, 2)  # paid calls only
    assert (totals.cache_write_tokens, totals.cached_prompt_tokens) == (7, 2)
    assert totals.cost_usd == 0.5
    writer, reviewer = totals.by_role["writer"], totals.by_role["reviewer"]
    assert (writer.calls, writer.cache_hits, writer.latency_s) == (2, 1, 1.75)
    assert (reviewer.cache_write_tokens, reviewer.cost_usd) == (4, 0.5)


def test_the_ledger_makes_its_run_directory(tmp_path: Path) -> None:
    path = tmp_path / "runs" / "r1" / "idea_1" / "ledger.jsonl"
    Ledger(path).record(_entry())
    assert len(read_entries(path)) == 1


def test_only_a_resumed_run_counts_what_the_file_already_holds(tmp_path: Path) -> None:
    path = tmp_path / "ledger.jsonl"
    Ledger(path).record(_entry(tokens=90))
    assert Ledger(path).totals().calls == 0  # a new run in the same place starts at zero
    assert Ledger(path, resume=True).totals().prompt_tokens == 90


def test_resuming_a_run_killed_before_its_first_call(tmp_path: Path) -> None:
    path = tmp_path / "ledger.jsonl"
    path.touch()
    resumed = Ledger(path, resume=True)
    assert resumed.totals().calls == 0
    resumed.record(_entry(tokens=5))
    assert path.read_text().count("\n") == 1
    assert [e.prompt_tokens for e in read_entries(path)] == [5]


def test_a_row_that_lost_only_its_newline_is_kept_on_resume(tmp_path: Path) -> None:
    path = tmp_path / "ledger.jsonl"
    path.write_text(_entry(tokens=70).model_dump_json())  # killed before the "\n"
    resumed = Ledger(path, resume=True)
    resumed.record(_entry(tokens=5))
    assert [e.prompt_tokens for e in read_entries(path)] == [70, 5]
    assert resumed.totals().prompt_tokens == 75


def test_a_torn_one_character_line_is_closed_on_resume(tmp_path: Path) -> None:
    path = tmp_path / "ledger.jsonl"
    path.write_text("{")
    Ledger(path, resume=True).record(_entry(tokens=5))
    assert [e.prompt_tokens for e in read_entries(path)] == [5]


def test_blank_lines_do_not_hide_the_rows_after_them(tmp_path: Path) -> None:
    path = tmp_path / "ledger.jsonl"
    rows = [_entry(tokens=n).model_dump_json() for n in (1, 2, 3)]
    path.write_text(f"{rows[0]}\n\n{rows[1]}\n   \n{rows[2]}\n")
    assert [e.prompt_tokens for e in read_entries(path)] == [1, 2, 3]


def test_an_idea_keeps_its_own_ledger_file_and_resumes_its_own_spend(tmp_path: Path) -> None:
    run = Ledger(tmp_path / "ledger.jsonl")
    idea_path = tmp_path / "idea_1" / "ledger.jsonl"
    ScopedLedger(idea_path, run, BudgetSettings()).record(_entry(tokens=60))
    assert [e.prompt_tokens for e in read_entries(idea_path)] == [60]
    cap = BudgetSettings(max_total_tokens=100)
    assert ScopedLedger(idea_path, Ledger(), cap).totals().calls == 0  # not resumed: fresh
    resumed = ScopedLedger(idea_path, Ledger(), cap, resume=True)
    assert resumed.totals().prompt_tokens == 60
    with pytest.raises(BudgetExceededError):  # 61 spent before the restart + 40 > 100
        resumed.check_budget(BudgetSettings(), tokens=40, cost_usd=0)
