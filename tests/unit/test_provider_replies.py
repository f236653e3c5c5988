"""The fake providers' responder and prompt cache: valid replies for every pipeline schema."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from pydantic import BaseModel

from core.settings import load_settings
from gateway.profiles import OutputProfile
from gateway.structured import schema_text
from reviewer.review.form import meta_review_reply, reflection_reply, review_form
from scientist.ideas.models import idea_batch
from scientist.ideas.records import idea_reflection, idea_reply, novelty_reply
from scientist.plan.models import plan_reply
from scientist.survey.models import paper_summary, survey_queries, synthesis_schema
from scientist.writeup.citations import selection_schema
from scientist.writeup.models import citation_queries
from tests.provider_fakes import PromptCache
from tests.provider_replies import (
    PROSE,
    Asked,
    GPT4oResponder,
    ScriptedResponder,
    instance_of,
    load_reviews,
    reply_kind,
)

PROFILES = load_settings("default", {}).profiles
SchemaOf = Callable[[OutputProfile], type[BaseModel]]
PIPELINE_SCHEMAS: dict[str, SchemaOf] = {
    "idea_reply": idea_reply,
    "idea_reflection": idea_reflection,
    "novelty_reply": novelty_reply,
    "idea_batch": idea_batch,
    "citation_queries": citation_queries,
    "selection": lambda p: selection_schema(["w2v2013", "bert2019"], p),
    "survey_queries": lambda p: survey_queries(p, 4),
    "paper_summary": paper_summary,
    "survey_synthesis": lambda p: synthesis_schema(["w2v2013", "bert2019"], p),
    "plan_reply": lambda p: plan_reply(p, 4),
}


def _asked(schema: type[BaseModel] | None, *turns: tuple[str, str]) -> Asked:
    """A request as the gateway sends it: the schema in the last user turn, as on the wire."""
    if schema is None:
        return Asked("openai", "gpt-4o", turns)
    instruction = f"Answer.\n\nIt must validate against this JSON schema:\n{schema_text(schema)}"
    return Asked("openai", "gpt-4o", (*turns, ("user", instruction)), schema.model_json_schema())


@pytest.mark.parametrize("profile", ["compact", "full"])
@pytest.mark.parametrize("name", sorted(PIPELINE_SCHEMAS))
def test_every_pipeline_schema_gets_a_valid_instance(name: str, profile: str) -> None:
    schema = PIPELINE_SCHEMAS[name](getattr(PROFILES, profile))
    reply = GPT4oResponder()(_asked(schema))
    schema.model_validate_json(reply)


def test_instances_end_loops() -> None:
    novelty = json.loads(GPT4oResponder()(_asked(novelty_reply(PROFILES.full))))
    reflection = json.loads(GPT4oResponder()(_asked(idea_reflection(PROFILES.full))))
    assert novelty["decision"] == "novel" and reflection["done"] is True


def test_instances_meet_refs_bounds_and_options() -> None:
    schema: dict[str, Any] = {
        "$defs": {"Item": {"type": "object", "properties": {"n": {"$ref": "#/$defs/N"}}}},
        "type": "object",
        "properties": {
            "items": {"type": "array", "items": {"$ref": "#/$defs/Item"}, "minItems": 3},
            "note": {"anyOf": [{"type": "null"}, {"type": "string", "maxLength": 12}]},
            "long": {"type": "string", "minLength": 300},
        },
    }
    schema["$defs"]["N"] = {"type": "integer", "exclusiveMinimum": 4, "maximum": 6}
    got = instance_of(schema)
    assert [item["n"] for item in got["items"]] == [5, 5, 5]
    assert isinstance(got["note"], str) and len(got["note"]) <= 12
    assert len(got["long"]) >= 300


def test_reviews_are_real_gpt4o_reviews_that_the_full_form_accepts() -> None:
    responder, form = GPT4oResponder(), review_form(PROFILES.full)
    replies = [form.model_validate_json(responder(_asked(form))) for _ in range(3)]
    assert [r.model_dump() for r in replies] == load_reviews()[:3]
    assert max(len(r.Weaknesses) for r in replies) >= 6


def test_a_reflection_keeps_the_previous_review_and_is_done() -> None:
    previous = load_reviews()[7]
    asked = _asked(
        reflection_reply(PROFILES.full),
        ("user", "Review this paper."),
        ("assistant", json.dumps(previous)),
    )
    reply = reflection_reply(PROFILES.full).model_validate_json(GPT4oResponder()(asked))
    assert reply.done and reply.review.model_dump() == previous


def test_a_meta_review_is_stitched_from_real_reviews() -> None:
    schema = meta_review_reply(PROFILES.full)
    reply = schema.model_validate_json(GPT4oResponder()(_asked(schema)))
    reviews = load_reviews()
    assert reply.summary == reviews[0]["Summary"] and len(reply.strengths) == 3


def test_kinds_come_from_the_schema_or_the_free_prompt() -> None:
    assert reply_kind(_asked(review_form(PROFILES.compact))) == "review"
    assert reply_kind(_asked(None, ("user", "Write the introduction."))) == "prose"
    free_review = ("user", "Reply with Summary, Strengths, Weaknesses, Questions, Overall.")
    assert reply_kind(_asked(None, free_review)) == "review"
    assert GPT4oResponder()(_asked(None, ("user", "Write."))) == PROSE


def test_scripted_replies_come_first_then_the_fallback() -> None:
    class Pick(BaseModel):
        n: int

    responder = ScriptedResponder(["plain", {"n": 1}, Pick(n=2)])
    asked = _asked(None, ("user", "Go."))
    got: list[Any] = [responder(asked) for _ in range(4)]
    assert got == ["plain", '{"n": 1}', '{"n":2}', PROSE]


def test_automatic_caching_reads_long_repeated_prefixes_in_steps() -> None:
    cache, prefix = PromptCache(min_tokens=100), "p" * 1000
    assert cache.automatic("m", prefix + "first") == 0
    assert cache.automatic("m", prefix + "second", step=64) == 192  # 250 tokens, stepped
    assert cache.automatic("other", prefix + "third") == 0  # caches are per model
    assert cache.automatic("m", "q" * 300 + "short") == 0


def test_breakpoints_are_written_once_then_read() -> None:
    cache = PromptCache(min_tokens=100)
    segments = [("s" * 800, True), ("question one", False)]
    assert cache.explicit("m", segments) == (0, 200)
    assert cache.explicit("m", [("s" * 800, True), ("question two", False)]) == (200, 0)
    longer = [("s" * 800, True), ("t" * 400, True), ("q", False)]
    assert cache.explicit("m", longer) == (200, 100)
    assert cache.explicit("m", [("s" * 80, True)]) == (0, 0)  # below the minimum
