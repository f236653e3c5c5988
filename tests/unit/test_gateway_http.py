"""The gateway over real HTTP (litellm → a local fake OpenAI server that misbehaves on purpose)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from pydantic import BaseModel

from core.settings import Settings
from gateway import Gateway, ResponseCache
from gateway.errors import (
    AuthenticationFailedError,
    BudgetExceededError,
    ContextLengthError,
    RetriesExhaustedError,
    UnknownModelError,
)
from gateway.ratelimit import ModelGates
from gateway.retry import RetryPolicy
from tests.clock import ManualClock
from tests.fakes import Behaviour, FakeOpenAI

SettingsFactory = Callable[..., Settings]
MODEL = "openai/fake-model"
ASK = [{"role": "user", "content": "Say hello."}]


def _gateway(
    make_settings: SettingsFactory, fake: FakeOpenAI, **kwargs: object
) -> tuple[Gateway, list[float]]:
    overrides: dict[str, object] = {
        "llm": {
            "models": {"writer": MODEL},
            "api_bases": {MODEL: fake.url},
            "request_timeout_s": 10,
            "max_retries": 3,
        },
        **kwargs,
    }
    waits: list[float] = []
    settings = make_settings(**overrides)
    retry = RetryPolicy(max_retries=3, initial_s=0.5, max_s=4.0, sleep=waits.append)
    return Gateway(settings, retry=retry), waits


def test_plain_call_records_usage(make_settings: SettingsFactory, fake_openai: FakeOpenAI) -> None:
    gw, _ = _gateway(make_settings, fake_openai)
    assert gw.complete(ASK, role="writer") == "hello"
    (entry,) = gw.ledger.entries
    assert (entry.prompt_tokens, entry.completion_tokens, entry.attempts) == (11, 7, 1)
    assert fake_openai.requests[0]["messages"][-1]["content"] == "Say hello."


def test_429s_are_waited_out_at_the_models_gate(
    make_settings: SettingsFactory, fake_openai: FakeOpenAI
) -> None:
    fake_openai.script = [
        Behaviour(kind="status", status=429),
        Behaviour(kind="status", status=429),
    ]
    clock = ManualClock()
    gate_waits: list[float] = []

    def sleep(seconds: float) -> None:
        gate_waits.append(seconds)
        clock.now += seconds

    gw, waits = _gateway(make_settings, fake_openai)
    gw.gates = ModelGates(clock=clock, sleep=sleep)
    assert gw.complete(ASK, role="writer") == "hello"
    assert len(fake_openai.requests) == 3  # litellm and openai made no retries of their own
    assert waits == []  # not the retry policy: the gate's backoff (1 s, then 2 s, jittered)
    assert len(gate_waits) == 2 and 1.0 <= gate_waits[0] <= 1.1 and 2.0 <= gate_waits[1] <= 2.2
    (entry,) = gw.ledger.entries
    assert (entry.attempts, entry.rate_limited) == (1, 2)
    assert entry.backoff_wait_s == pytest.approx(sum(gate_waits))


def test_retry_then_success_on_dropped_connection(
    make_settings: SettingsFactory, fake_openai: FakeOpenAI
) -> None:
    fake_openai.script = [Behaviour(kind="drop")]
    gw, waits = _gateway(make_settings, fake_openai)
    assert gw.complete(ASK, role="writer") == "hello"
    assert len(fake_openai.requests) == 2 and len(waits) == 1


def test_retry_on_5xx_is_bounded(make_settings: SettingsFactory, fake_openai: FakeOpenAI) -> None:
    fake_openai.default = Behaviour(kind="status", status=503)
    gw, waits = _gateway(make_settings, fake_openai)
    with pytest.raises(RetriesExhaustedError, match="after 4 attempts"):
        gw.complete(ASK, role="writer")
    assert len(fake_openai.requests) == 4 and len(waits) == 3
    assert gw.ledger.entries == []


def test_bad_key_raises_typed_error_without_retry(
    make_settings: SettingsFactory, fake_openai: FakeOpenAI
) -> None:
    fake_openai.default = Behaviour(kind="status", status=401)
    gw, waits = _gateway(make_settings, fake_openai)
    with pytest.raises(AuthenticationFailedError, match="rejected the API key") as info:
        gw.complete(ASK, role="writer")
    assert info.value.model == MODEL
    assert len(fake_openai.requests) == 1 and waits == []


def test_unknown_model_raises_typed_error(
    make_settings: SettingsFactory, fake_openai: FakeOpenAI
) -> None:
    fake_openai.default = Behaviour(kind="status", status=404)
    gw, _ = _gateway(make_settings, fake_openai)
    with pytest.raises(UnknownModelError, match="does not know model"):
        gw.complete(ASK, role="writer")
    assert len(fake_openai.requests) == 1


def test_context_too_long_is_permanent(
    make_settings: SettingsFactory, fake_openai: FakeOpenAI
) -> None:
    fake_openai.default = Behaviour(
        kind="status",
        status=400,
        error="This model's maximum context length is 8192 tokens. However, you requested 9000.",
    )
    gw, waits = _gateway(make_settings, fake_openai)
    with pytest.raises(ContextLengthError, match="shorten the input"):
        gw.complete(ASK, role="writer")
    assert len(fake_openai.requests) == 1 and waits == []


def test_missing_key_fails_before_any_request(
    make_settings: SettingsFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    gw = Gateway(make_settings(llm={"models": {"writer": "anthropic/claude-sonnet-4-5"}}))
    with pytest.raises(AuthenticationFailedError, match="ANTHROPIC_API_KEY"):
        gw.complete(ASK, role="writer")


def test_second_identical_call_is_a_cache_hit(
    make_settings: SettingsFactory, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    gw, _ = _gateway(make_settings, fake_openai)
    gw.cache = ResponseCache(tmp_path / "cache.sqlite")
    assert gw.complete(ASK, role="writer") == gw.complete(ASK, role="writer") == "hello"
    assert len(fake_openai.requests) == 1
    totals = gw.ledger.totals()
    assert (totals.calls, totals.cache_hits, totals.prompt_tokens) == (2, 1, 11)


def test_budget_stop_sends_nothing(make_settings: SettingsFactory, fake_openai: FakeOpenAI) -> None:
    fake_openai.default = Behaviour(content="x", prompt_tokens=300, completion_tokens=300)
    gw, _ = _gateway(make_settings, fake_openai, budget={"max_total_tokens": 850})
    gw.complete(ASK, role="writer", max_tokens=300)
    with pytest.raises(BudgetExceededError, match="600 tokens spent"):
        gw.complete([{"role": "user", "content": "again"}], role="writer", max_tokens=300)
    assert len(fake_openai.requests) == 1


class Verdict(BaseModel):
    novel: bool
    reason: str


def test_structured_reask_over_http(
    make_settings: SettingsFactory, fake_openai: FakeOpenAI
) -> None:
    fake_openai.script = [
        Behaviour(content='{"novel": "maybe"}'),
        Behaviour(content='{"novel": true, "reason": "no prior work"}'),
    ]
    gw, _ = _gateway(make_settings, fake_openai)
    assert gw.complete(ASK, role="writer", schema=Verdict) == Verdict(
        novel=True, reason="no prior work"
    )
    second = fake_openai.requests[1]
    assert second["response_format"] == {"type": "json_object"}
    assert "reason: Field required" in second["messages"][-1]["content"]
