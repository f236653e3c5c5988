"""The response cache answers only the very same call: model B never gets model A's reply.

What decides a reply (model, messages, response format, temperature, max_tokens and, for the
embedded model, the weights served) is in the key; what does not (timeouts, keys, base URLs)
is not, and the key of a call stays the same from one release to the next.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from pydantic import BaseModel

from core.settings import Settings
from gateway import Gateway, LLMResponse, ResponseCache, ScriptedLLM
from gateway.cache import cache_key
from gateway.types import ChatMessage, LLMRequest
from tests.priced_llm import PRICED_MODEL, PricedLLM

SettingsFactory = Callable[..., Settings]
ASK = [{"role": "user", "content": "Rate this."}]


class Verdict(BaseModel):
    accept: bool


@pytest.fixture
def cache(tmp_path: Path) -> ResponseCache:
    return ResponseCache(tmp_path / "cache.sqlite")


def test_model_b_never_gets_model_as_reply(
    make_settings: SettingsFactory, cache: ResponseCache
) -> None:
    llm = ScriptedLLM(lambda request: f"reply of {request.model}")
    gw = Gateway(make_settings(), backend=llm, cache=cache)
    assert gw.complete(ASK, role="writer", model="openai/model-a") == "reply of openai/model-a"
    assert gw.complete(ASK, role="writer", model="openai/model-b") == "reply of openai/model-b"
    assert gw.complete(ASK, role="writer", model="openai/model-a") == "reply of openai/model-a"
    assert [r.model for r in llm.requests] == ["openai/model-a", "openai/model-b"]


def test_a_different_response_format_is_a_miss(
    make_settings: SettingsFactory, cache: ResponseCache
) -> None:
    # The same model, messages and schema, asked in JSON mode and then with a JSON schema.
    llm = ScriptedLLM(['{"accept": false}', '{"accept": true}'])
    replies = []
    for mode in ("json_object", "json_schema"):
        settings = make_settings(llm={"structured_modes": {"openai/m": mode}})
        gw = Gateway(settings, backend=llm, cache=cache)
        replies.append(gw.complete(ASK, role="reviewer", schema=Verdict, model="openai/m"))
    assert replies == [Verdict(accept=False), Verdict(accept=True)]
    first, second = llm.requests
    assert first.messages == second.messages
    assert first.response_format is not None and second.response_format is not None
    assert (first.response_format["type"], second.response_format["type"]) == (
        "json_object",
        "json_schema",
    )


def test_a_different_max_tokens_is_a_miss(
    make_settings: SettingsFactory, cache: ResponseCache
) -> None:
    llm = ScriptedLLM(["cut short", "in full"])
    gw = Gateway(make_settings(), backend=llm, cache=cache)
    assert gw.complete(ASK, role="writer", max_tokens=16) == "cut short"
    assert gw.complete(ASK, role="writer", max_tokens=4096) == "in full"
    assert gw.complete(ASK, role="writer", max_tokens=16) == "cut short"
    assert [r.max_tokens for r in llm.requests] == [16, 4096]


def test_defaults_and_the_same_values_given_explicitly_share_an_entry(
    make_settings: SettingsFactory, cache: ResponseCache
) -> None:
    settings = make_settings(llm={"temperature": 0.3})
    llm = ScriptedLLM(["once"])
    gw = Gateway(settings, backend=llm, cache=cache)
    gw.complete(ASK, role="writer")
    default_max = settings.profile(settings.llm.models.for_role("writer")).default_max_tokens
    assert (llm.requests[0].temperature, llm.requests[0].max_tokens) == (0.3, default_max)
    assert gw.complete(ASK, role="writer", temperature=0.3, max_tokens=default_max) == "once"
    assert len(llm.requests) == 1


def test_a_temperature_of_zero_is_not_the_default(
    make_settings: SettingsFactory, cache: ResponseCache
) -> None:
    llm = ScriptedLLM(["sampled", "greedy"])
    gw = Gateway(make_settings(llm={"temperature": 0.7}), backend=llm, cache=cache)
    gw.complete(ASK, role="writer")
    assert gw.complete(ASK, role="writer", temperature=0.0) == "greedy"
    assert [r.temperature for r in llm.requests] == [0.7, 0.0]


def test_other_embedded_weights_are_a_miss(
    make_settings: SettingsFactory, cache: ResponseCache
) -> None:
    llm = ScriptedLLM(["from Q4_0", "from Q8_0"])

    def ask(quantization: str, model: str = "local") -> str:
        settings = make_settings(local={"quantization": quantization})
        return Gateway(settings, backend=llm, cache=cache).complete(ASK, role="writer", model=model)

    assert ask("Q4_0") == "from Q4_0"
    assert ask("Q8_0") == "from Q8_0"
    assert ask("Q4_0") == "from Q4_0"
    assert len(llm.requests) == 2


def test_the_embedded_weights_do_not_split_a_remote_models_entries(
    make_settings: SettingsFactory, cache: ResponseCache
) -> None:
    llm = ScriptedLLM(["remote"])
    for quantization in ("Q4_0", "Q8_0"):
        settings = make_settings(local={"quantization": quantization})
        gw = Gateway(settings, backend=llm, cache=cache)
        assert gw.complete(ASK, role="writer", model="openai/m") == "remote"
    assert len(llm.requests) == 1


def test_a_hit_costs_nothing_and_makes_no_attempt(
    make_settings: SettingsFactory, cache: ResponseCache
) -> None:
    llm = PricedLLM(["word " * 100])
    gw = Gateway(make_settings(), backend=llm, cache=cache)
    gw.complete(ASK, role="writer", model=PRICED_MODEL, max_tokens=200)
    gw.complete(ASK, role="writer", model=PRICED_MODEL, max_tokens=200)
    paid, hit = gw.ledger.entries
    assert (paid.cache_hit, paid.attempts, paid.completion_tokens) == (False, 1, 100)
    assert paid.cost_usd > 0 and paid.uncached_cost_usd == paid.cost_usd
    assert (hit.cache_hit, hit.attempts, hit.cost_usd, hit.uncached_cost_usd) == (True, 0, 0, 0)
    assert gw.ledger.totals().cost_usd == paid.cost_usd


def test_a_cached_reply_is_served_when_the_budget_allows_no_paid_call(
    make_settings: SettingsFactory, cache: ResponseCache
) -> None:
    # A run stopped at its budget and resumed replays what it already paid for.
    llm = PricedLLM(["paid once"])
    Gateway(make_settings(), backend=llm, cache=cache).complete(
        ASK, role="writer", model=PRICED_MODEL, max_tokens=1000
    )
    broke = make_settings(budget={"max_cost_usd": 0.0, "max_total_tokens": 1})
    resumed = Gateway(broke, backend=llm, cache=cache)
    assert resumed.complete(ASK, role="writer", model=PRICED_MODEL, max_tokens=1000) == "paid once"
    assert len(llm.requests) == 1


def test_the_key_of_a_call_is_stable_across_releases() -> None:
    # sha256 of the canonical JSON: sorted keys, no spaces, UTF-8 text as is. A change here
    # would orphan every reply cached so far, so it must be deliberate.
    request = LLMRequest(
        model="openai/gpt-4o",
        messages=[
            ChatMessage(role="system", content="Review.", cache=True),
            ChatMessage(role="user", content="Résumé ✓"),
        ],
        response_format={"type": "json_object"},
        temperature=0.0,
        max_tokens=64,
        timeout_s=5,
        api_base="http://127.0.0.1:1",
    )
    canonical = (
        '{"max_tokens":64,"messages":[{"content":"Review.","role":"system"},'
        '{"content":"Résumé ✓","role":"user"}],"model":"openai/gpt-4o",'
        '"response_format":{"type":"json_object"},"temperature":0.0,"variant":""}'
    )
    expected = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    assert cache_key({**request.cache_payload(), "variant": ""}) == expected
    assert expected == "576f7121ddc6289ffe263cd722a1f649fba14abe72c4a335c8b8f79c4747eec6"


def test_a_stored_reply_comes_back_whole(tmp_path: Path) -> None:
    path = tmp_path / "new" / "dirs" / "cache.sqlite"  # a fresh data dir
    reply = LLMResponse(
        text="Résumé ✓",
        prompt_tokens=12,
        completion_tokens=3,
        cost_usd=0.25,
        finish_reason="length",
        cached_prompt_tokens=8,
        cache_write_tokens=4,
        uncached_cost_usd=0.5,
    )
    ResponseCache(path).put("k", "openai/gpt-4o", reply)
    reopened = ResponseCache(path)
    assert reopened.get("k") == reply
    assert reopened.get("other") is None


def test_one_entry_per_key_and_the_last_write_wins(cache: ResponseCache) -> None:
    cache.put("a", "m", LLMResponse(text="first"))
    cache.put("a", "m", LLMResponse(text="second"))
    cache.put("b", "m", LLMResponse(text="other"))
    assert len(cache) == 2
    assert cache.get("a") == LLMResponse(text="second")


def test_reviewers_in_threads_share_one_cache(cache: ResponseCache) -> None:
    # The reviewer ensemble calls the gateway from a thread pool.
    def store(i: int) -> None:
        cache.put(f"key-{i}", "m", LLMResponse(text=f"reply {i}"))

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(store, range(20)))
    assert len(cache) == 20
    assert cache.get("key-7") == LLMResponse(text="reply 7")
