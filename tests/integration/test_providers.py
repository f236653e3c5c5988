"""Provider conformance: the gateway, unchanged, through litellm to loopback fakes of OpenAI,
Anthropic and Gemini that speak their real wire protocols (``tests/provider_fakes.py``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import pytest
from pydantic import BaseModel, Field

from core.settings import Settings
from gateway import Gateway
from gateway._litellm import load_litellm
from gateway.types import LedgerEntry
from reviewer.review.form import ReviewForm, review_form
from tests.provider_fakes import (
    PROVIDERS,
    Provider,
    ProviderFakes,
)
from tests.provider_replies import load_reviews

pytestmark = pytest.mark.integration
SettingsFactory = Callable[..., Settings]
# About 2,000 fake tokens: past every provider's minimum cacheable prefix (1,024).
PAPER = (
    "We study how weight decay shapes grokking in small transformers trained on modular "
    "arithmetic, and measure when validation accuracy jumps. "
) * 55


class Verdict(BaseModel):
    """A small schema with the shapes the pipeline uses: enum, bounded list, nested model."""

    class Paper(BaseModel):
        title: str = Field(min_length=5)
        year: int = Field(ge=1990, le=2030)

    decision: Literal["query", "novel", "not_novel"]
    reasons: list[str] = Field(min_length=2, max_length=4)
    closest: list[Paper] = Field(min_length=1)
    done: bool


@pytest.fixture
def fakes(provider_fakes: ProviderFakes) -> ProviderFakes:
    """The three fakes (tests/conftest.py), with the dummy keys litellm wants."""
    return provider_fakes


def _gateway(make_settings: SettingsFactory, fakes: ProviderFakes, provider: Provider) -> Gateway:
    return Gateway(make_settings(**fakes.overrides(provider)))


def _ask(question: str) -> list[dict[str, Any]]:
    return [
        {"role": "system", "content": "You review ML papers."},
        {"role": "user", "content": f"The paper:\n{PAPER}", "cache": True},
        {"role": "user", "content": question},
    ]


def _priced(entry: LedgerEntry) -> tuple[float, float]:
    """(cost, uncached cost) of the row's tokens at litellm's rates for its model."""
    info = load_litellm().get_model_info(entry.model)
    rate_in, rate_out = info["input_cost_per_token"], info["output_cost_per_token"]
    read = info["cache_read_input_token_cost"]
    write = info.get("cache_creation_input_token_cost") or rate_in
    fresh = entry.prompt_tokens - entry.cached_prompt_tokens - entry.cache_write_tokens
    cost = fresh * rate_in + entry.cached_prompt_tokens * read + entry.cache_write_tokens * write
    out = entry.completion_tokens * rate_out
    return cost + out, entry.prompt_tokens * rate_in + out


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_review_comes_back_validated_priced_and_cached(
    provider: Provider, make_settings: SettingsFactory, fakes: ProviderFakes
) -> None:
    gw = _gateway(make_settings, fakes, provider)
    model = fakes.model(provider)
    form = review_form(gw.settings.profile(model))
    first = gw.complete(_ask("Review the paper."), role="reviewer", schema=form)
    again = gw.complete(_ask("Review it once more."), role="reviewer", schema=form)
    assert isinstance(first, ReviewForm) and isinstance(again, ReviewForm)
    assert first.model_dump() in load_reviews()  # a real GPT-4o review, kept whole
    cold, warm = gw.ledger.entries
    for entry in (cold, warm):
        assert entry.model == model and entry.schema_name == "ReviewForm"
        assert entry.prompt_tokens > 1024 and entry.completion_tokens > 100
        assert entry.cost_usd > 0
        assert (entry.cost_usd, entry.uncached_cost_usd) == pytest.approx(_priced(entry))
    assert cold.cached_prompt_tokens == 0
    assert warm.cached_prompt_tokens > 1024  # the shared paper prefix was read from the cache
    assert warm.cache_savings_usd > 0
    assert gw.ledger.totals().cached_prompt_tokens == warm.cached_prompt_tokens


def test_anthropic_writes_the_marked_prefix_then_reads_it(
    make_settings: SettingsFactory, fakes: ProviderFakes
) -> None:
    gw = _gateway(make_settings, fakes, "anthropic")
    gw.complete(_ask("Is it novel?"), role="writer", schema=Verdict)
    gw.complete(_ask("Is it sound?"), role="writer", schema=Verdict)
    cold, warm = gw.ledger.entries
    assert cold.cache_write_tokens > 1024 and cold.cached_prompt_tokens == 0
    assert cold.cost_usd > cold.uncached_cost_usd  # a cache write costs 1.25x the input rate
    assert warm.cached_prompt_tokens == cold.cache_write_tokens and warm.cache_write_tokens == 0
    first = fakes.requests_to("anthropic")[0].body
    marked = [b for m in first["messages"] for b in m["content"] if "cache_control" in b]
    assert [b["text"] for b in marked] == [f"The paper:\n{PAPER}"]
    assert first["output_format"]["schema"]["properties"]["decision"]["enum"][1] == "novel"


@pytest.mark.parametrize("provider", ["openai", "gemini"])
def test_automatic_cachers_get_no_breakpoints_but_the_schema(
    provider: Provider, make_settings: SettingsFactory, fakes: ProviderFakes
) -> None:
    gw = _gateway(make_settings, fakes, provider)
    verdict = gw.complete(_ask("Is it novel?"), role="ideas", schema=Verdict)
    assert verdict.decision == "novel" and verdict.done and 2 <= len(verdict.reasons) <= 4
    (received,) = fakes.requests_to(provider)
    assert "cache_control" not in str(received.body)
    if provider == "openai":
        fmt = received.body["response_format"]
        assert fmt["type"] == "json_schema" and fmt["json_schema"]["name"] == "Verdict"
    else:
        config = received.body["generationConfig"]
        assert config["response_mime_type"] == "application/json"
        assert "decision" in str(config.get("response_json_schema") or config["responseSchema"])


@pytest.mark.parametrize("provider", PROVIDERS)
def test_free_text_is_plain_prose(
    provider: Provider, make_settings: SettingsFactory, fakes: ProviderFakes
) -> None:
    gw = _gateway(make_settings, fakes, provider)
    text = gw.complete([{"role": "user", "content": "Write the abstract."}], role="writer")
    assert text.startswith("The proposed method") and not any(c in text for c in "%&#_$")
    assert gw.ledger.entries[0].cost_usd > 0


def test_anthropic_forced_tool_replies_carry_the_json(fakes: ProviderFakes) -> None:
    # Claude models without native structured output get the schema as a forced tool.
    litellm = load_litellm()
    fmt = {
        "type": "json_schema",
        "json_schema": {"name": "Verdict", "schema": Verdict.model_json_schema()},
    }
    reply = litellm.completion(
        model="anthropic/claude-legacy-fake",
        messages=[{"role": "user", "content": "Is it novel?"}],
        response_format=fmt,
        api_base=fakes.url("anthropic"),
        max_tokens=500,
    )
    body = fakes.requests_to("anthropic")[0].body
    assert body["tool_choice"]["type"] == "tool" and "output_format" not in body
    assert Verdict.model_validate_json(reply.choices[0].message.content).decision == "novel"


def test_overrides_put_every_role_on_the_named_models(fakes: ProviderFakes) -> None:
    llm = fakes.overrides("gemini", reviewer="anthropic")["llm"]
    assert llm["models"]["reviewer"] == "anthropic/claude-sonnet-4-5"
    assert llm["models"]["meta_reviewer"] == llm["models"]["writer"] == "gemini/gemini-2.5-flash"
    assert set(llm["api_bases"]) == {fakes.model(p) for p in PROVIDERS}
    ensemble = fakes.overrides(reviewers=PROVIDERS)["review"]["models"]
    assert ensemble == [fakes.model(p) for p in PROVIDERS]


def test_a_mixed_ensemble_loads_as_settings(
    make_settings: SettingsFactory, fakes: ProviderFakes
) -> None:
    settings = make_settings(**fakes.overrides("openai", reviewers=PROVIDERS))
    assert settings.review.models == [fakes.model(p) for p in PROVIDERS]
    assert settings.llm.api_bases[fakes.model("gemini")] == fakes.url("gemini")
