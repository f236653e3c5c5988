"""Gateway behaviour with the scripted model: re-asks, budgets, ledger, cache."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from pydantic import BaseModel, Field

from core.settings import Settings
from gateway import Gateway, Ledger, ResponseCache, ScriptedLLM
from gateway.errors import BudgetExceededError, ScriptExhaustedError, StructuredOutputError

SettingsFactory = Callable[..., Settings]
ASK = [{"role": "user", "content": "Rate this."}]


class Score(BaseModel):
    label: str = Field(max_length=20)
    score: int = Field(ge=1, le=10)


class Scores(BaseModel):
    items: list[Score] = Field(min_length=1)


def test_validation_failure_is_reasked_with_the_error(make_settings: SettingsFactory) -> None:
    script = ScriptedLLM(
        ['{"items": [{"label": "a", "score": 11}]}', '{"items": [{"label": "a", "score": 9}]}']
    )
    gw = Gateway(make_settings(), backend=script)
    result = gw.complete(ASK, role="reviewer", schema=Scores)
    assert result == Scores(items=[Score(label="a", score=9)])
    second = script.requests[1].messages
    assert second[-2].role == "assistant" and '"score": 11' in second[-2].content
    assert (
        "items.0.score" in second[-1].content and "less than or equal to 10" in second[-1].content
    )
    assert [e.schema_name for e in gw.ledger.entries] == ["Scores", "Scores"]


def test_structured_error_quotes_the_last_reply(make_settings: SettingsFactory) -> None:
    settings = make_settings(llm={"structured_reasks": 1})
    script = ScriptedLLM(["not json at all", "still not json"])
    gw = Gateway(settings, backend=script)
    with pytest.raises(StructuredOutputError, match="still not json") as info:
        gw.complete(ASK, role="reviewer", schema=Scores)
    assert info.value.raw == "still not json"
    assert "2 attempts" in str(info.value)
    assert script.remaining == 0


def test_fenced_json_is_accepted(make_settings: SettingsFactory) -> None:
    gw = Gateway(make_settings(), backend=ScriptedLLM(['```json\n{"label": "x", "score": 3}\n```']))
    assert gw.complete(ASK, role="reviewer", schema=Score) == Score(label="x", score=3)


def test_schema_instruction_ends_the_prompt_after_the_shared_prefix(
    make_settings: SettingsFactory,
) -> None:
    script = ScriptedLLM(['{"label": "x", "score": 3}'])
    Gateway(make_settings(), backend=script).complete(
        [{"role": "system", "content": "You review."}, *ASK], role="reviewer", schema=Score
    )
    system, *_, last = script.requests[0].messages
    assert system.role == "system" and system.content == "You review."  # a stable prefix
    assert last.role == "user" and last.content.startswith(ASK[-1]["content"])
    assert '"score"' in last.content and "JSON schema" in last.content
    fmt = script.requests[0].response_format
    assert fmt is not None and fmt["type"] == "json_object"
    assert fmt["schema"]["properties"]["score"]["enum"] == list(range(1, 11))


def test_script_running_out_fails_loudly(make_settings: SettingsFactory) -> None:
    gw = Gateway(make_settings(), backend=ScriptedLLM(["only one"]))
    gw.complete(ASK, role="writer")
    with pytest.raises(ScriptExhaustedError, match="ran out of turns after 1"):
        gw.complete([{"role": "user", "content": "again"}], role="writer")


def test_cache_hit_skips_the_backend(make_settings: SettingsFactory, tmp_path: Path) -> None:
    script = ScriptedLLM(["first answer"])
    gw = Gateway(make_settings(), backend=script, cache=ResponseCache(tmp_path / "c.sqlite"))
    assert gw.complete(ASK, role="writer") == "first answer"
    assert gw.complete(ASK, role="writer") == "first answer"
    assert len(script.requests) == 1
    hits = [e.cache_hit for e in gw.ledger.entries]
    assert hits == [False, True]
    assert gw.ledger.totals().cache_hits == 1
    with pytest.raises(ScriptExhaustedError):  # different sampling parameters: a new call
        gw.complete(ASK, role="writer", temperature=0.0)


def test_cache_survives_a_new_gateway(make_settings: SettingsFactory, tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    Gateway(make_settings(), backend=ScriptedLLM(["kept"]), cache=ResponseCache(path)).complete(
        ASK, role="writer"
    )
    resumed = Gateway(make_settings(), backend=ScriptedLLM([]), cache=ResponseCache(path))
    assert resumed.complete(ASK, role="writer") == "kept"


def test_token_budget_stops_before_the_call(make_settings: SettingsFactory) -> None:
    settings = make_settings(
        budget={"max_total_tokens": 1000}, profiles={"compact": {"default_max_tokens": 500}}
    )
    script = ScriptedLLM(["word " * 600, "never sent"])
    gw = Gateway(settings, backend=script)
    gw.complete(ASK, role="writer")
    with pytest.raises(BudgetExceededError, match="AUTOSCHOLAR_BUDGET__MAX_TOTAL_TOKENS"):
        gw.complete(ASK, role="writer")
    assert len(script.requests) == 1 and script.remaining == 1


def test_ledger_totals_equal_the_sum_of_calls(
    make_settings: SettingsFactory, tmp_path: Path
) -> None:
    ledger = Ledger(tmp_path / "ledger.jsonl")
    script = ScriptedLLM(["a b c", "d e", '{"label": "x", "score": 2}'])
    gw = Gateway(make_settings(), backend=script, ledger=ledger)
    gw.complete(ASK, role="writer")
    gw.complete([{"role": "user", "content": "more please"}], role="ideas")
    gw.complete(ASK, role="reviewer", schema=Score)
    entries = ledger.entries
    totals = ledger.totals()
    assert totals.calls == 3
    assert totals.prompt_tokens == sum(e.prompt_tokens for e in entries)
    assert totals.completion_tokens == sum(e.completion_tokens for e in entries) == 3 + 2 + 4
    assert set(totals.by_role) == {"writer", "ideas", "reviewer"}
    assert sum(t.calls for t in totals.by_role.values()) == 3
    lines = (tmp_path / "ledger.jsonl").read_text().splitlines()
    assert len(lines) == 3 and '"role":"ideas"' in lines[1]


def test_a_timeout_of_the_embedded_model_is_not_retried(make_settings: SettingsFactory) -> None:
    from gateway.errors import LLMTimeoutError, LocalModelError

    llm = ScriptedLLM([LLMTimeoutError("Timeout", model="local"), "late answer"])
    gw = Gateway(make_settings(), backend=llm)
    with pytest.raises(LocalModelError, match="did not answer within"):
        gw.complete([{"role": "user", "content": "hi"}], role="writer", model="local")
    assert len(llm.requests) == 1  # a retry would queue behind the abandoned request


def test_a_timeout_of_a_remote_model_is_retried(make_settings: SettingsFactory) -> None:
    from gateway.errors import LLMTimeoutError

    llm = ScriptedLLM([LLMTimeoutError("Timeout", model="openai/x"), "second try"])
    settings = make_settings(llm={"backoff_initial_s": 0, "backoff_max_s": 0})
    gw = Gateway(settings, backend=llm)
    reply = gw.complete([{"role": "user", "content": "hi"}], role="writer", model="openai/x")
    assert reply == "second try" and len(llm.requests) == 2


def test_the_embedded_model_gets_time_for_every_allowed_token(
    make_settings: SettingsFactory,
) -> None:
    from gateway.types import LLMRequest

    gw = Gateway(make_settings(local={"min_tokens_per_s": 4.0}))
    request = LLMRequest(model="local", messages=[], max_tokens=2048, timeout_s=180)
    assert gw._local_timeout(request) == 2048 / 4.0 + 120.0
