"""Prompt caching: breakpoints on the wire, cached tokens read back, priced at cached rates."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from core.report import summary_table
from core.settings import Settings
from gateway import Gateway, ResponseCache
from gateway._litellm import load_litellm
from gateway.backends import LiteLLMBackend, wire_messages
from gateway.cache import cache_key
from gateway.gateway import as_messages
from gateway.ledger import Ledger, read_entries, sum_entries
from gateway.types import ChatMessage, LedgerEntry, LLMRequest, LLMResponse

SettingsFactory = Callable[..., Settings]
OPENAI, ANTHROPIC, GEMINI = (
    "openai/gpt-4o",
    "anthropic/claude-sonnet-4-5",
    "gemini/gemini-2.5-flash",
)
PAPER = ChatMessage(role="user", content="A long paper shared by every reviewer.", cache=True)
ASK = ChatMessage(role="user", content="Review it.")


def _rates(model: str) -> dict[str, float]:
    info = load_litellm().get_model_info(model)
    return {
        "in": info["input_cost_per_token"],
        "out": info["output_cost_per_token"],
        "read": info["cache_read_input_token_cost"],
        "write": info.get("cache_creation_input_token_cost") or info["input_cost_per_token"],
    }


# --- what goes on the wire -----------------------------------------------------------------


def test_anthropic_gets_cache_control_blocks_on_marked_messages_only() -> None:
    wired = wire_messages(ANTHROPIC, [PAPER, ASK])
    assert wired[0] == {
        "role": "user",
        "content": [
            {"type": "text", "text": PAPER.content, "cache_control": {"type": "ephemeral"}}
        ],
    }
    assert wired[1] == {"role": "user", "content": "Review it."}


@pytest.mark.parametrize("model", [OPENAI, GEMINI, "openai/local", "local"])
def test_other_providers_get_plain_messages(model: str) -> None:
    assert wire_messages(model, [PAPER, ASK]) == [
        {"role": "user", "content": PAPER.content},
        {"role": "user", "content": "Review it."},
    ]


def test_the_backend_sends_breakpoints_to_litellm(monkeypatch: pytest.MonkeyPatch) -> None:
    litellm = load_litellm()
    sent: list[dict[str, Any]] = []

    def completion(**kwargs: Any) -> Any:
        sent.append(kwargs)
        return _reply(litellm.Usage(prompt_tokens=10, completion_tokens=2, total_tokens=12))

    monkeypatch.setattr(litellm, "completion", completion)
    for model in (ANTHROPIC, OPENAI):
        LiteLLMBackend().generate(LLMRequest(model=model, messages=[PAPER, ASK]))
    assert "cache_control" in sent[0]["messages"][0]["content"][0]
    assert sent[1]["messages"][0] == {"role": "user", "content": PAPER.content}


def test_message_dicts_may_carry_the_cache_flag() -> None:
    (msg,) = as_messages([{"role": "user", "content": "x", "cache": True}])
    assert msg.cache is True and msg.wire() == {"role": "user", "content": "x"}


def test_the_cache_flag_leaves_the_response_cache_key_alone() -> None:
    marked = LLMRequest(model=OPENAI, messages=[PAPER, ASK])
    plain = LLMRequest(model=OPENAI, messages=[PAPER.model_copy(update={"cache": False}), ASK])
    assert cache_key(marked.cache_payload()) == cache_key(plain.cache_payload())
    # The key is the one computed before the flag existed: messages are role and content.
    assert marked.cache_payload()["messages"][0] == {"role": "user", "content": PAPER.content}


# --- cached tokens and cost ----------------------------------------------------------------


def _reply(usage: Any) -> Any:
    litellm = load_litellm()
    choice = {
        "index": 0,
        "finish_reason": "stop",
        "message": {"role": "assistant", "content": "{}"},
    }
    return litellm.ModelResponse(choices=[choice], usage=usage)


def _normalised(model: str, usage: Any, monkeypatch: pytest.MonkeyPatch) -> LLMResponse:
    monkeypatch.setattr(load_litellm(), "completion", lambda **_: _reply(usage))
    return LiteLLMBackend().generate(LLMRequest(model=model, messages=[ASK]))


def test_openai_cached_tokens_are_priced_at_the_cached_rate(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from litellm.types.utils import PromptTokensDetailsWrapper

    usage = load_litellm().Usage(
        prompt_tokens=2000,
        completion_tokens=100,
        total_tokens=2100,
        prompt_tokens_details=PromptTokensDetailsWrapper(cached_tokens=1536),
    )
    got = _normalised(OPENAI, usage, monkeypatch)
    r = _rates(OPENAI)
    assert (got.prompt_tokens, got.cached_prompt_tokens, got.cache_write_tokens) == (2000, 1536, 0)
    assert got.cost_usd == pytest.approx(464 * r["in"] + 1536 * r["read"] + 100 * r["out"])
    assert got.uncached_cost_usd == pytest.approx(2000 * r["in"] + 100 * r["out"])
    assert got.cost_usd < got.uncached_cost_usd


def test_anthropic_reads_and_writes_are_priced_at_their_rates(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from litellm.llms.anthropic.chat.transformation import AnthropicConfig

    # Anthropic's own usage block, normalised by litellm exactly as for a real reply.
    usage = AnthropicConfig().calculate_usage(
        {
            "input_tokens": 50,
            "output_tokens": 200,
            "cache_read_input_tokens": 3000,
            "cache_creation_input_tokens": 400,
        },
        reasoning_content=None,
    )
    got = _normalised(ANTHROPIC, usage, monkeypatch)
    r = _rates(ANTHROPIC)
    assert r["read"] < r["in"] < r["write"]
    # litellm counts every prompt token, as OpenAI does: 50 fresh + 3000 read + 400 written.
    assert got.prompt_tokens == 3450
    assert (got.cached_prompt_tokens, got.cache_write_tokens) == (3000, 400)
    expected = 50 * r["in"] + 3000 * r["read"] + 400 * r["write"] + 200 * r["out"]
    assert got.cost_usd == pytest.approx(expected)
    assert got.uncached_cost_usd == pytest.approx(3450 * r["in"] + 200 * r["out"])


def test_gemini_implicit_cache_hits_are_priced_at_the_cached_rate(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from litellm.llms.vertex_ai.gemini.vertex_and_google_ai_studio_gemini import (
        VertexGeminiConfig,
    )

    usage = VertexGeminiConfig._calculate_usage(
        {
            "usageMetadata": {
                "promptTokenCount": 5000,
                "candidatesTokenCount": 300,
                "totalTokenCount": 5300,
                "cachedContentTokenCount": 4096,
            }
        }
    )
    got = _normalised(GEMINI, usage, monkeypatch)
    r = _rates(GEMINI)
    assert (got.prompt_tokens, got.cached_prompt_tokens) == (5000, 4096)
    assert got.cost_usd == pytest.approx(904 * r["in"] + 4096 * r["read"] + 300 * r["out"])
    assert got.uncached_cost_usd == pytest.approx(5000 * r["in"] + 300 * r["out"])


def test_no_cache_use_costs_the_same_either_way(monkeypatch: pytest.MonkeyPatch) -> None:
    usage = load_litellm().Usage(prompt_tokens=700, completion_tokens=30, total_tokens=730)
    got = _normalised(OPENAI, usage, monkeypatch)
    assert got.cached_prompt_tokens == 0 and got.cost_usd == got.uncached_cost_usd > 0


# --- ledger, totals, report ----------------------------------------------------------------


def _entry(role: str, cost: float, uncached: float, cached: int, hit: bool = False) -> LedgerEntry:
    return LedgerEntry(
        role=role,
        model=ANTHROPIC,
        prompt_tokens=1000,
        completion_tokens=10,
        cost_usd=cost,
        latency_s=0.1,
        cache_hit=hit,
        cached_prompt_tokens=cached,
        cache_write_tokens=0,
        uncached_cost_usd=uncached,
    )


def test_totals_sum_cached_tokens_and_savings_of_paid_calls() -> None:
    totals = sum_entries(
        [
            _entry("reviewer", 0.010, 0.010, 0),
            _entry("reviewer", 0.002, 0.009, 900),
            _entry("meta_reviewer", 0.001, 0.003, 800),
            _entry("reviewer", 0.0, 0.0, 900, hit=True),  # a response-cache hit is free anyway
        ]
    )
    assert totals.cached_prompt_tokens == 1700 and totals.prompt_tokens == 3000
    assert totals.cost_usd == pytest.approx(0.013)
    assert totals.cache_savings_usd == pytest.approx(0.009)
    assert totals.by_role["reviewer"].cache_savings_usd == pytest.approx(0.007)


def test_old_ledger_lines_still_read_and_save_nothing(tmp_path: Path) -> None:
    old = {
        "timestamp": "2026-11-30T10:00:00Z",
        "role": "writer",
        "model": OPENAI,
        "prompt_tokens": 100,
        "completion_tokens": 20,
        "cost_usd": 0.5,
        "latency_s": 1.0,
        "cache_hit": False,
        "attempts": 1,
        "schema_name": None,
    }
    path = tmp_path / "ledger.jsonl"
    path.write_text(json.dumps(old) + "\n", encoding="utf-8")
    (entry,) = read_entries(path)
    assert entry.cached_prompt_tokens == 0 and entry.cache_savings_usd == 0
    totals = sum_entries([entry])
    assert totals.cost_usd == 0.5 and totals.cache_savings_usd == 0


def _rendered(totals: Any) -> str:
    console = Console(record=True, width=140)
    console.print(summary_table(totals))
    return " ".join(console.export_text().split())


def test_the_report_shows_cached_tokens_and_savings() -> None:
    text = _rendered(sum_entries([_entry("reviewer", 0.002, 0.009, 900)]))
    assert "cached" in text and "900" in text
    assert "900 of 1,000 prompt tokens cached (90%), saved $0.0070 of $0.0090" in text


def test_the_report_says_nothing_of_caching_when_none_happened() -> None:
    text = _rendered(sum_entries([_entry("writer", 0.01, 0.01, 0)]))
    assert "Prompt caching" not in text


# --- the gateway records it ----------------------------------------------------------------


class CachedBackend:
    """A backend whose every reply read most of its prompt from a provider cache."""

    def generate(self, request: LLMRequest) -> LLMResponse:
        return LLMResponse(
            text="ok",
            prompt_tokens=1200,
            completion_tokens=5,
            cached_prompt_tokens=1024,
            cache_write_tokens=0,
            cost_usd=0.001,
            uncached_cost_usd=0.004,
        )


def test_the_gateway_records_cache_use_and_no_savings_on_response_cache_hits(
    make_settings: SettingsFactory, tmp_path: Path
) -> None:
    settings = make_settings(llm={"models": {"writer": OPENAI}})
    gw = Gateway(
        settings,
        ledger=Ledger(),
        cache=ResponseCache(tmp_path / "cache.sqlite"),
        backend=CachedBackend(),
    )
    ask = [{"role": "user", "content": "A long shared prefix.", "cache": True}]
    assert gw.complete(ask, role="writer") == gw.complete(ask, role="writer") == "ok"
    paid, hit = gw.ledger.entries
    assert paid.cached_prompt_tokens == 1024
    assert (paid.cost_usd, paid.uncached_cost_usd) == (0.001, 0.004)
    assert hit.cache_hit and hit.cost_usd == 0 and hit.cache_savings_usd == 0
    assert gw.ledger.totals().cache_savings_usd == pytest.approx(0.003)
