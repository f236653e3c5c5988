"""What the gateway sends, what it records, and how it re-asks for structured output."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pydantic import BaseModel

from core.settings import Settings
from gateway import Gateway, LLMRequest, LLMResponse, ResponseCache, ScriptedLLM
from gateway._litellm import load_litellm
from gateway.cache import cache_key
from gateway.errors import StructuredOutputError
from gateway.gateway import estimate_prompt_tokens
from gateway.structured import InvalidReply, parse_reply
from gateway.types import ChatMessage

SettingsFactory = Callable[..., Settings]
ASK = [{"role": "user", "content": "Rate this."}]


class Verdict(BaseModel):
    accept: bool


class Replies:
    """A backend that answers with whole responses (finish reason, usage), in order."""

    def __init__(self, *responses: LLMResponse) -> None:
        self._responses = list(responses)
        self.requests: list[LLMRequest] = []

    def generate(self, request: LLMRequest) -> LLMResponse:
        self.requests.append(request)
        return self._responses.pop(0)


def _ticks(*times: float) -> Callable[[], float]:
    clock: Iterator[float] = iter(times)
    return lambda: next(clock)


def test_a_cache_written_by_an_earlier_release_is_still_read(
    make_settings: SettingsFactory, tmp_path: Path
) -> None:
    # The key of a remote call is the request's reply-deciding fields plus an empty variant.
    settings = make_settings(llm={"temperature": 0.2})
    request = LLMRequest(
        model="openai/m",
        messages=[ChatMessage(role="user", content="Rate this.")],
        temperature=0.2,
        max_tokens=128,
    )
    cache = ResponseCache(tmp_path / "cache.sqlite")
    cache.put(
        cache_key({**request.cache_payload(), "variant": ""}), "openai/m", LLMResponse(text="old")
    )
    llm = ScriptedLLM([])
    gw = Gateway(settings, backend=llm, cache=cache)
    assert gw.complete(ASK, role="writer", model="openai/m", max_tokens=128) == "old"
    assert llm.requests == []


def test_a_structured_cache_hit_is_recorded_under_its_schema(
    make_settings: SettingsFactory, tmp_path: Path
) -> None:
    llm = ScriptedLLM(['{"accept": true}'])
    gw = Gateway(make_settings(), backend=llm, cache=ResponseCache(tmp_path / "c.sqlite"))
    for _ in range(2):
        assert gw.complete(ASK, role="reviewer", schema=Verdict) == Verdict(accept=True)
    assert [(e.cache_hit, e.schema_name) for e in gw.ledger.entries] == [
        (False, "Verdict"),
        (True, "Verdict"),
    ]


def test_a_reply_cut_off_at_the_token_limit_is_reasked_with_a_note(
    make_settings: SettingsFactory,
) -> None:
    backend = Replies(
        LLMResponse(text='{"acc', finish_reason="length"),
        LLMResponse(text='{"accept": tru', finish_reason="stop"),
        LLMResponse(text='{"accept": true}', finish_reason="stop"),
    )
    gw = Gateway(make_settings(llm={"structured_reasks": 2}), backend=backend)
    assert gw.complete(ASK, role="reviewer", schema=Verdict) == Verdict(accept=True)
    cut_off, ended = (backend.requests[n].messages[-1].content for n in (1, 2))
    assert cut_off == _reask(
        _errors('{"acc') + "\n- the reply was cut off at the token limit: be more concise"
    )
    assert ended == _reask(_errors('{"accept": tru'))  # it ended on its own, just wrongly


def _errors(reply: str) -> str:
    with pytest.raises(InvalidReply) as info:
        parse_reply(reply, Verdict)
    return info.value.errors


def _reask(errors: str) -> str:
    return (
        "Your reply did not validate against the required JSON schema.\nErrors:\n"
        f"{errors}\nReply again with one corrected JSON object only."
    )


def test_the_instruction_is_a_user_turn_of_its_own_after_a_system_prompt(
    make_settings: SettingsFactory,
) -> None:
    llm = ScriptedLLM(['{"accept": false}'])
    system = {"role": "system", "content": "You review."}
    Gateway(make_settings(), backend=llm).complete([system], role="reviewer", schema=Verdict)
    sent = llm.requests[0].messages
    assert [(m.role, m.content) for m in sent[:1]] == [("system", "You review.")]
    assert len(sent) == 2 and sent[1].role == "user" and '"accept"' in sent[1].content


def test_the_instruction_joins_the_last_user_turn_and_keeps_the_conversation(
    make_settings: SettingsFactory,
) -> None:
    llm = ScriptedLLM(['{"accept": false}'])
    turns = [
        {"role": "system", "content": "You review."},
        {"role": "user", "content": "Paper."},
        {"role": "assistant", "content": "Draft review."},
        {"role": "user", "content": "Decide."},
    ]
    Gateway(make_settings(), backend=llm).complete(turns, role="reviewer", schema=Verdict)
    sent = llm.requests[0].messages
    assert [m.content for m in sent[:3]] == ["You review.", "Paper.", "Draft review."]
    assert len(sent) == 4 and sent[3].content.startswith("Decide.\n\n")


def test_the_last_error_names_the_model_and_quotes_the_start_of_the_reply(
    make_settings: SettingsFactory,
) -> None:
    runaway = "x" * 1000
    llm = ScriptedLLM([runaway])
    gw = Gateway(make_settings(llm={"structured_reasks": 0}), backend=llm)
    with pytest.raises(StructuredOutputError) as info:
        gw.complete(ASK, role="reviewer", schema=Verdict, model="openai/m")
    error = info.value
    assert error.model == "openai/m" and error.raw == runaway
    message = str(error)
    assert f"Last reply: {'x' * 600!r}\n" in message  # the start, not a whole runaway reply
    assert message.endswith(
        "Try a more capable model for this role, raise llm.structured_reasks, or raise the "
        "profile's output cap (profiles.compact.* or profiles.full.*) if the reply was cut off."
    )


def test_without_a_tokenizer_a_prompt_counts_a_token_per_four_characters(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_tokenizer(**_: object) -> int:
        raise Exception("cannot load the tokenizer")

    monkeypatch.setattr(load_litellm(), "token_counter", no_tokenizer)
    request = LLMRequest(
        model="custom/model",
        messages=[
            ChatMessage(role="system", content="s" * 401),
            ChatMessage(role="user", content="u" * 398),
        ],
    )
    assert estimate_prompt_tokens(request) == 199 + 4 * 2  # whole tokens, plus 4 per message


def test_a_prompt_is_counted_with_the_models_own_tokenizer() -> None:
    # gpt-4o's tokenizer (o200k) needs far fewer tokens for this text than the default one.
    messages = [ChatMessage(role="user", content="Évaluation: 统计显著性, p ≤ 0.05. " * 20)]
    counter = load_litellm().token_counter
    own = counter(model="gpt-4o", messages=[m.wire() for m in messages])
    assert own < counter(messages=[m.wire() for m in messages])
    assert estimate_prompt_tokens(LLMRequest(model="gpt-4o", messages=messages)) == own


def test_each_call_records_its_latency_and_the_providers_usage(
    make_settings: SettingsFactory,
) -> None:
    backend = Replies(
        LLMResponse(
            text="ok",
            prompt_tokens=1200,
            completion_tokens=5,
            cached_prompt_tokens=1024,
            cache_write_tokens=7,
            cost_usd=0.001,
            uncached_cost_usd=0.004,
        )
    )
    gw = Gateway(make_settings(), backend=backend, clock=_ticks(100.0, 100.25))
    gw.complete(ASK, role="writer", model="openai/m")
    (entry,) = gw.ledger.entries
    assert (entry.role, entry.model, entry.schema_name) == ("writer", "openai/m", None)
    assert entry.latency_s == 0.25
    assert (entry.prompt_tokens, entry.completion_tokens) == (1200, 5)
    assert (entry.cached_prompt_tokens, entry.cache_write_tokens) == (1024, 7)
    assert (entry.cost_usd, entry.uncached_cost_usd) == (0.001, 0.004)


def test_the_request_carries_the_configured_timeout_and_the_models_base_url(
    make_settings: SettingsFactory,
) -> None:
    settings = make_settings(
        llm={"request_timeout_s": 42.0, "api_bases": {"openai/served": "http://127.0.0.1:9/v1"}}
    )
    llm = ScriptedLLM(["a", "b"])
    gw = Gateway(settings, backend=llm)
    gw.complete(ASK, role="writer", model="openai/served")
    gw.complete(ASK, role="writer", model="openai/elsewhere")
    served, elsewhere = llm.requests
    assert (served.timeout_s, served.api_base) == (42.0, "http://127.0.0.1:9/v1")
    assert (elsewhere.timeout_s, elsewhere.api_base) == (42.0, None)


def test_the_roles_model_answers_unless_a_model_is_named(make_settings: SettingsFactory) -> None:
    settings = make_settings(llm={"models": {"writer": "openai/writer-model"}})
    llm = ScriptedLLM(["a", "b"])
    gw = Gateway(settings, backend=llm)
    gw.complete(ASK, role="writer")
    gw.complete(ASK, role="writer", model="openai/other")
    assert [r.model for r in llm.requests] == ["openai/writer-model", "openai/other"]
    assert [e.model for e in gw.ledger.entries] == ["openai/writer-model", "openai/other"]
