"""Structured output: the schema each backend is sent, and what a reply must look like."""

from __future__ import annotations

import json

import pytest
from pydantic import BaseModel, Field

from gateway._litellm import load_litellm
from gateway.structured import (
    InvalidReply,
    grammar_safe,
    parse_reply,
    response_format,
    schema_text,
    structured_mode,
)


class Review(BaseModel):
    summary: str
    score: int = Field(ge=1, le=10)


class Bounds(BaseModel):
    single: int = Field(ge=3, le=3)
    offset: int = Field(ge=50, le=60)
    widest: int = Field(ge=0, le=100)
    too_wide: int = Field(ge=0, le=101)
    optional: int | None = Field(None, ge=1, le=4)
    few: list[int] = Field(max_length=8)
    many: list[int] = Field(max_length=9)


class Many(BaseModel):
    fields: list[int] = Field(min_length=0)
    values: dict[str, int]


def test_bounded_integers_are_listed_for_the_grammar_when_the_list_is_short() -> None:
    props = grammar_safe(Bounds.model_json_schema())["properties"]
    assert props["single"]["enum"] == [3]
    assert props["offset"]["enum"] == list(range(50, 61))
    assert props["widest"]["enum"] == list(range(101))  # 101 values: still listed
    assert "enum" not in props["too_wide"]  # 102 values: left to pydantic


def test_an_optional_score_is_bounded_for_the_grammar_too() -> None:
    any_of = grammar_safe(Bounds.model_json_schema())["properties"]["optional"]["anyOf"]
    assert {"type": "null"} in any_of
    integer = next(option for option in any_of if option.get("type") == "integer")
    assert integer["enum"] == [1, 2, 3, 4]


def test_list_bounds_the_grammar_cannot_survive_are_dropped() -> None:
    props = grammar_safe(Bounds.model_json_schema())["properties"]
    assert props["few"]["maxItems"] == 8
    assert "maxItems" not in props["many"]
    assert Bounds.model_json_schema()["properties"]["many"]["maxItems"] == 9  # a copy


def test_the_json_schema_mode_sends_the_schema_openai_style() -> None:
    assert response_format("json_schema", Review) == {
        "type": "json_schema",
        # strict=False: pydantic's schemas use keywords OpenAI's strict mode refuses.
        "json_schema": {"name": "Review", "schema": Review.model_json_schema(), "strict": False},
    }


def test_the_schema_in_the_prompt_is_compact_json() -> None:
    text = schema_text(Review)
    assert json.loads(text) == Review.model_json_schema()
    assert ", " not in text and '": ' not in text  # no spaces: fewer prompt tokens


def test_a_model_litellm_cannot_place_falls_back_to_json_mode(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def unmapped(model: str) -> bool:
        raise Exception(f"This model isn't mapped yet. model={model}")

    monkeypatch.setattr(load_litellm(), "supports_response_schema", unmapped)
    assert structured_mode("custom/thing", {}) == "json_object"


def test_a_pretty_printed_fenced_reply_parses() -> None:
    reply = '```json\n{\n  "summary": "ok",\n  "score": 7\n}\n```'
    assert parse_reply(reply, Review) == Review(summary="ok", score=7)


def test_a_fenced_reply_cut_off_before_the_closing_fence_parses() -> None:
    assert parse_reply('```json\n{"summary": "ok", "score": 7}', Review).score == 7


def test_code_fences_inside_the_json_survive_the_unwrapping() -> None:
    summary = "Runs ```python\\nprint(1)\\n``` as shown."
    reply = f'```json\n{{"summary": "{summary}", "score": 5}}\n```'
    assert parse_reply(reply, Review).summary == "Runs ```python\nprint(1)\n``` as shown."


def test_a_bare_fence_is_an_invalid_reply_not_a_crash() -> None:
    with pytest.raises(InvalidReply, match="not valid JSON"):
        parse_reply("```json", Review)


def test_errors_are_listed_one_per_line_with_their_path() -> None:
    with pytest.raises(InvalidReply) as info:
        parse_reply('{"summary": 3, "score": 11}', Review)
    assert info.value.errors.splitlines() == [
        "- summary: Input should be a valid string",
        "- score: Input should be less than or equal to 10",
    ]


def test_an_error_about_the_whole_reply_is_placed_at_the_root() -> None:
    with pytest.raises(InvalidReply) as info:
        parse_reply("[1, 2]", Review)
    assert info.value.errors.startswith("- (root): Input should be a valid dictionary")


def test_a_reply_with_many_errors_is_told_about_the_first_twenty() -> None:
    values = {f"k{n}": "x" for n in range(30)}
    with pytest.raises(InvalidReply) as info:
        parse_reply(json.dumps({"fields": [], "values": values}), Many)
    lines = info.value.errors.splitlines()
    assert len(lines) == 20 and lines[0].startswith("- values.k0:")
