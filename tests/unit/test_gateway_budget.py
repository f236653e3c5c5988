"""Budgets stop a run before the call that could break them, with nothing sent.

The priced scripted model makes ``budget.max_cost_usd`` bite offline: its replies cost what
openai/gpt-4o charges, and the gateway prices the next call's worst case (the prompt plus
every allowed output token) from the same map.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from core.settings import BudgetSettings, Settings
from gateway import Gateway, Ledger, LedgerEntry, ScriptedLLM
from gateway.errors import BudgetExceededError
from gateway.ledger import ScopedLedger
from tests.priced_llm import COMPLETION_USD, PRICED_MODEL, PROMPT_USD, PricedLLM

SettingsFactory = Callable[..., Settings]
ASK = [{"role": "user", "content": "Rate this."}]  # 10 prompt tokens for gpt-4o's tokenizer
ASK_TOKENS = 10


def _spent(cost_usd: float = 0.0, tokens: int = 0) -> LedgerEntry:
    return LedgerEntry(
        role="writer",
        model=PRICED_MODEL,
        prompt_tokens=tokens,
        completion_tokens=0,
        cost_usd=cost_usd,
        latency_s=0.0,
        cache_hit=False,
    )


def test_the_cost_budget_counts_the_next_calls_worst_case(make_settings: SettingsFactory) -> None:
    # The first reply costs ~$0.005; the next call may cost up to $0.010 (1,000 output
    # tokens): together more than the $0.015 budget, so the second call is never sent.
    settings = make_settings(budget={"max_cost_usd": 0.015})
    llm = PricedLLM(["word " * 500, "never sent"])
    gw = Gateway(settings, backend=llm)
    gw.complete(ASK, role="writer", model=PRICED_MODEL, max_tokens=1000)
    assert gw.ledger.totals().cost_usd == pytest.approx(2 * PROMPT_USD + 500 * COMPLETION_USD)
    with pytest.raises(BudgetExceededError, match="Cost budget reached"):
        gw.complete(ASK, role="writer", model=PRICED_MODEL, max_tokens=1000)
    assert len(llm.requests) == 1 and llm.remaining == 1
    assert len(gw.ledger.entries) == 1  # a stopped call is not a call


def test_a_call_that_fits_the_cost_budget_goes_ahead(make_settings: SettingsFactory) -> None:
    # Same spend, a cheaper next call: $0.005 + up to $0.005 stays under $0.015.
    settings = make_settings(budget={"max_cost_usd": 0.015})
    llm = PricedLLM(["word " * 500, "sent"])
    gw = Gateway(settings, backend=llm)
    gw.complete(ASK, role="writer", model=PRICED_MODEL, max_tokens=1000)
    assert gw.complete(ASK, role="writer", model=PRICED_MODEL, max_tokens=500) == "sent"


def test_a_first_call_dearer_than_the_budget_sends_nothing(make_settings: SettingsFactory) -> None:
    settings = make_settings(budget={"max_cost_usd": 0.005})
    llm = PricedLLM(["never sent"])
    with pytest.raises(BudgetExceededError) as info:
        Gateway(settings, backend=llm).complete(
            ASK, role="writer", model=PRICED_MODEL, max_tokens=1000
        )
    assert llm.requests == []
    message = str(info.value)
    assert "$0.0000 spent" in message and "may cost up to $0.0100" in message
    assert "Raise budget.max_cost_usd (AUTOSCHOLAR_BUDGET__MAX_COST_USD) to go on." in message


def test_a_long_prompt_is_priced_too(make_settings: SettingsFactory) -> None:
    # ~1,000 prompt tokens cost $0.0025 even when a single output token is allowed.
    settings = make_settings(budget={"max_cost_usd": 0.002})
    llm = PricedLLM(["never sent"])
    long_prompt = [{"role": "user", "content": "word " * 1000}]
    with pytest.raises(BudgetExceededError, match=r"may cost up to \$0\.0025"):
        Gateway(settings, backend=llm).complete(
            long_prompt, role="writer", model=PRICED_MODEL, max_tokens=1
        )
    assert llm.requests == []


def test_the_token_budget_counts_the_prompt_and_every_allowed_output_token(
    make_settings: SettingsFactory,
) -> None:
    # 502 tokens spent; the next call may use 10 + 500: 1,012 > 1,000.
    settings = make_settings(budget={"max_total_tokens": 1000})
    llm = ScriptedLLM(["word " * 500, "sent"])
    gw = Gateway(settings, backend=llm)
    gw.complete(ASK, role="writer", model=PRICED_MODEL, max_tokens=500)
    assert gw.ledger.totals().total_tokens == 502
    with pytest.raises(BudgetExceededError) as info:
        gw.complete(ASK, role="writer", model=PRICED_MODEL, max_tokens=500)
    assert len(llm.requests) == 1
    message = str(info.value)
    assert f"502 tokens spent, the next call may use up to {ASK_TOKENS + 500}" in message
    assert "the budget is 1000" in message
    assert "Raise budget.max_total_tokens (AUTOSCHOLAR_BUDGET__MAX_TOTAL_TOKENS)" in message
    # Exactly at the budget is allowed: 502 + 10 + 488 = 1,000.
    assert gw.complete(ASK, role="writer", model=PRICED_MODEL, max_tokens=488) == "sent"


def test_a_long_prompt_counts_against_the_token_budget(make_settings: SettingsFactory) -> None:
    settings = make_settings(budget={"max_total_tokens": 500})
    llm = ScriptedLLM(["never sent"])
    with pytest.raises(BudgetExceededError, match="Token budget reached"):
        Gateway(settings, backend=llm).complete(
            [{"role": "user", "content": "word " * 1000}], role="writer", model=PRICED_MODEL
        )
    assert llm.requests == []


def test_no_budget_means_no_limit(make_settings: SettingsFactory) -> None:
    llm = PricedLLM(["word " * 2000, "word " * 2000])
    gw = Gateway(make_settings(), backend=llm)
    for _ in range(2):
        gw.complete(ASK, role="writer", model=PRICED_MODEL, max_tokens=4000)
    assert gw.ledger.totals().cost_usd > 0.04 and len(llm.requests) == 2


@pytest.mark.parametrize(
    ("budget", "spent", "next_call"),
    [
        (BudgetSettings(max_cost_usd=0.5), _spent(cost_usd=0.25), {"tokens": 1, "cost_usd": 0.25}),
        (BudgetSettings(max_total_tokens=100), _spent(tokens=60), {"tokens": 40, "cost_usd": 0}),
    ],
    ids=["cost", "tokens"],
)
def test_spending_the_budget_exactly_is_allowed(
    budget: BudgetSettings, spent: LedgerEntry, next_call: dict[str, float]
) -> None:
    ledger = Ledger()
    ledger.record(spent)
    ledger.check_budget(budget, tokens=int(next_call["tokens"]), cost_usd=next_call["cost_usd"])
    with pytest.raises(BudgetExceededError):
        over = {"tokens": int(next_call["tokens"]) + 1, "cost_usd": next_call["cost_usd"] * 1.01}
        ledger.check_budget(budget, tokens=over["tokens"], cost_usd=over["cost_usd"])


def test_cache_hits_spend_no_budget() -> None:
    ledger = Ledger()
    hit = _spent(cost_usd=1.0, tokens=1000).model_copy(update={"cache_hit": True})
    ledger.record(hit)
    budget = BudgetSettings(max_cost_usd=0.5, max_total_tokens=10)
    ledger.check_budget(budget, tokens=10, cost_usd=0.5)  # the whole budget is still there


def test_an_idea_stops_at_its_own_cost_cap_and_the_run_at_the_runs(
    make_settings: SettingsFactory,
) -> None:
    run = Ledger()
    settings = make_settings(budget={"max_cost_usd": 0.02})
    llm = PricedLLM(["word " * 500, "word " * 500])
    first = Gateway(settings, backend=llm, ledger=ScopedLedger(None, run, _cap(0.012)))
    first.complete(ASK, role="ideas", model=PRICED_MODEL, max_tokens=500)  # ~$0.005 spent
    with pytest.raises(BudgetExceededError):  # up to $0.010 more: over the idea's $0.012
        first.complete(ASK, role="ideas", model=PRICED_MODEL, max_tokens=1000)
    # A second idea has a cap of its own, but the run's $0.02 counts what the first spent.
    second = first.with_ledger(ScopedLedger(None, run, _cap(0.05)))
    second.complete(ASK, role="ideas", model=PRICED_MODEL, max_tokens=500)
    with pytest.raises(BudgetExceededError):  # ~$0.010 spent + up to $0.010 > $0.02
        second.complete(ASK, role="ideas", model=PRICED_MODEL, max_tokens=1000)
    assert len(llm.requests) == 2 and run.totals().calls == 2


def _cap(usd: float) -> BudgetSettings:
    return BudgetSettings(max_cost_usd=usd)
